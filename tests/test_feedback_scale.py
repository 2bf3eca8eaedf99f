"""Stage 02's text work at scale: bounded samples and fixed-size batches give what one pass gives.

The tokenising functions (language, word-list sentiment, keyword themes, uncovered terms) read a
batch of texts at a time, the learned models label the comments a batch at a time, and the models
learn on seeded random samples of at most `max_train` texts; `voice.prepare` keeps only the
columns the sections read and builds the CRM names' pattern once. Each test fails if a batch
changed a result, if a learner saw more texts than its budget, or if a sample were not the same
for the same seed.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from cxlib import feedback_table, metrics, privacy, report, sentiment, text, themes, voice, voice_comments

GERMAN = ["Die Rechnung ist falsch und viel zu hoch", "Hotline nie erreichbar, ich habe lange gewartet",
          "Der Techniker war sehr freundlich, aber der Router ist kaputt", "Alles gut, schnelle Lieferung",
          "Nicht gut: Störung seit Tagen, kein Internet", "Preis ist okay, aber die Abrechnung ist unklar",
          "Gruß Anna Lange, Kundennummer K0000171", "Super Service im Shop"]
ENGLISH = ["The invoice was wrong again", "Great service, quick delivery", "Waited an hour on the hotline",
           "The router broke after a week, not happy", "Price is fair but the bill is confusing",
           "Outage for three days and nobody called back", "Friendly technician", "Thanks, Jo Wu"]
OTHER = ["Très bon service", "Servicio excelente"]


def corpus(n: int = 90, seed: int = 3) -> pd.Series:
    """`n` comments drawn with repeats from German, English and other-language ones, plus an empty
    and a missing one, on an index that is not 0..n-1."""
    rng = np.random.default_rng(seed)
    pool = np.array(GERMAN + ENGLISH + OTHER + [" ", None], dtype=object)
    return pd.Series(pool[rng.integers(0, len(pool), n)], index=np.arange(1000, 1000 + 2 * n, 2), dtype="str")


# --- batches --------------------------------------------------------------------------------------
def test_language_sentiment_themes_and_folding_per_batch_equal_one_pass(stopwords, lexicon, tax, monkeypatch):
    texts = corpus()
    lang = text.detect_language(texts, stopwords, lexicon=lexicon)
    assert set(lang.dropna()) == {"de", "en", "other"}
    assert_series_equal(text.detect_language(texts, stopwords, lexicon=lexicon, batch=4), lang)
    assert_frame_equal(text.sentiment(texts, lang, lexicon, batch=3), text.sentiment(texts, lang, lexicon))
    assert_frame_equal(text.tag_themes(texts, tax, languages=lang, batch=2), text.tag_themes(texts, tax, languages=lang))
    whole = text.fold_series(texts)
    monkeypatch.setattr(text, "BATCH", 5)
    assert_series_equal(text.fold_series(texts), whole)


def test_the_token_tables_never_hold_more_than_a_batch(stopwords, lexicon, tax, monkeypatch):
    texts = corpus(60)
    lang = text.detect_language(texts, stopwords, lexicon=lexicon)
    tags = text.tag_themes(texts, tax, languages=lang)
    sizes, tokenize = [], text.tokenize
    monkeypatch.setattr(text, "tokenize", lambda t: sizes.append(len(t)) or tokenize(t))
    text.detect_language(texts.str.cat(pd.Series(np.arange(60).astype(str), index=texts.index), sep=" "),
                         stopwords, lexicon=lexicon, batch=7)          # 60 distinct texts, 7 at a time
    text.sentiment(texts, lang, lexicon, batch=7)
    text.uncovered_terms(texts, tags, tax, stopwords, languages=lang, lexicon=lexicon, batch=7)
    assert sizes and max(sizes) <= 7


def test_uncovered_terms_per_batch_of_distinct_comments_equal_one_pass(stopwords, lexicon, tax):
    texts = corpus(120)
    lang = text.detect_language(texts, stopwords, lexicon=lexicon)
    tags = text.tag_themes(texts, tax, languages=lang)
    names = pd.Series(["Anna Lange", "Jo Wu", None])
    whole = text.uncovered_terms(texts, tags, tax, stopwords, languages=lang, lexicon=lexicon, min_comments=2, names=names)
    assert len(whole) and not whole["term"].str.contains("anna|lange|jo wu").any()     # names masked
    for batch in (1, 4, 1000):
        parts = text.uncovered_terms(texts, tags, tax, stopwords, languages=lang, lexicon=lexicon, min_comments=2,
                                     names=names, batch=batch)
        assert_frame_equal(parts, whole)
    pattern = privacy.name_pattern(names, keep=text.common_words(stopwords, lexicon))
    assert_frame_equal(text.uncovered_terms(texts, tags, tax, stopwords, languages=lang, lexicon=lexicon, min_comments=2,
                                            names_pattern=pattern, batch=5), whole)
    # each comment counts: the counts are those of one row per comment
    once = texts.loc[lang.isin(["de", "en"]).to_numpy()].drop_duplicates()
    times = texts.value_counts()
    top = whole.iloc[0]
    holding = [t for t in once if top["term"] in " ".join(text.tokenize(pd.Series([t]))["token"])]
    assert top["comments"] <= sum(times[t] for t in holding)


def reference_quotes(feedback: pd.DataFrame, tags: pd.DataFrame, per_theme: int, ascending: bool) -> list[tuple]:
    """(theme, position) of the quotes as the definition says: per theme in taxonomy order, its
    comments by score (missing last), ties by position."""
    out = []
    for theme in tags.columns:
        rows = [i for i in range(len(feedback)) if bool(tags[theme].fillna(False).iloc[i])]
        score = feedback["nps"].to_numpy(dtype=float)
        rows.sort(key=lambda i: (np.isnan(score[i]), (score[i] if ascending else -score[i]) if not np.isnan(score[i]) else 0, i))
        out += [(theme, i) for i in rows[:per_theme]]
    return out


@pytest.mark.parametrize("ascending", [True, False])
def test_quotes_are_the_best_scored_comments_of_each_theme(tax, ascending):
    texts = corpus(80)
    rng = np.random.default_rng(1)
    feedback = pd.DataFrame({"comment": texts, "customer_id": [f"C{i}" for i in range(len(texts))],
                             "nps": np.where(rng.random(len(texts)) < 0.2, np.nan, rng.integers(0, 11, len(texts)))},
                            index=texts.index)
    tags = text.tag_themes(texts, tax, languages="de").loc[:, ["invoice", "hotline_waiting", "outage", "price"]]
    quotes = text.example_quotes(feedback, tags, per_theme=3, ascending=ascending, names=["Anna Lange"])
    expected = reference_quotes(feedback, tags, 3, ascending)
    assert list(zip(quotes["theme"], quotes["customer_id"])) == [(t, f"C{i}") for t, i in expected]
    np.testing.assert_array_equal(quotes["nps"].to_numpy(dtype=float), [feedback["nps"].iloc[i] for _, i in expected])
    assert not quotes["quote"].str.contains("Anna|K0000171").any()
    assert quotes.columns.tolist() == ["theme", "quote", "customer_id", "nps"]
    assert text.example_quotes(feedback, tags.iloc[:, :0], per_theme=3).empty


# --- the learned models: samples and batches ------------------------------------------------------------
FILLER = [f"{a} {b}" for a in ["the parcel", "my order", "the router box", "the tariff", "the letter", "the contract"]
          for b in ["came on tuesday", "is here", "was discussed", "moved", "sits in the hall", "for march"]]
TOY = pd.Series([f"{f} grotty" for f in FILLER] + [f"middling {f}" for f in FILLER[:30]]
                + [f"zappy {f} zappy" for f in FILLER[:24]])
CLASSES = pd.Series(["negative"] * 36 + ["neutral"] * 30 + ["positive"] * 24, dtype="str")
EN = pd.Series("en", index=TOY.index, dtype="str")


def fitted_sizes(monkeypatch) -> list[int]:
    sizes, fit = [], sentiment.TextFeatures.fit
    monkeypatch.setattr(sentiment.TextFeatures, "fit", lambda self, rows, *a, **k: sizes.append(len(rows)) or fit(self, rows, *a, **k))
    return sizes


def test_sentiment_learns_on_a_seeded_sample_of_at_most_max_train_texts(lexicon, monkeypatch):
    sizes = fitted_sizes(monkeypatch)
    small = sentiment.learn(TOY, EN, CLASSES, lexicon, min_labelled=20, max_train=30, max_eval=40)
    assert max(sizes) <= 40 + 1 and sizes[-1] <= 30 + 1               # folds of the eval sample, then the final fit
    assert small["samples"]["en"] == {"trained": sizes[-1], "labelled": 90}
    assert small["languages"].loc[0, "reason"] == f"trained on a random sample of {sizes[-1]} of the 90 labelled texts"
    again = sentiment.learn(TOY, EN, CLASSES, lexicon, min_labelled=20, max_train=30, max_eval=40)
    assert_frame_equal(again["sentiment"], small["sentiment"])
    assert again["samples"] == small["samples"]
    assert_frame_equal(again["quality"], small["quality"])
    whole = sentiment.learn(TOY, EN, CLASSES, lexicon, min_labelled=20)
    assert whole["samples"]["en"] == {"trained": 90, "labelled": 90}
    assert whole["languages"].loc[0, "reason"] == "trained on 90 labelled texts"
    sentences = voice_comments.describe_sentiment_quality(small)
    assert "English: learned on a random sample of" in sentences and "of 90 distinct labelled comments" in sentences
    assert "random sample" not in voice_comments.describe_sentiment_quality(whole)
    assert "Zufallsstichprobe" in voice_comments.describe_sentiment_quality(small, lang="de")


def test_the_model_labels_the_comments_per_batch_as_in_one_pass(lexicon):
    learned = sentiment.learn(TOY, EN, CLASSES, lexicon, min_labelled=20)
    new = pd.Series([f"{f} zappy" for f in FILLER] + ["grotty", "zappy middling", "grotty"] + FILLER[:5], dtype="str")
    predict = partial(sentiment._predict, learned["models"]["en"])
    whole = sentiment._label(new, "en", lexicon, predict)
    for batch in (1, 7):
        assert_frame_equal(sentiment._label(new, "en", lexicon, predict, batch=batch), whole)
    assert whole["sentiment"].iloc[len(FILLER)] == "negative"


# 'zorg' is an invoice word the keywords do not know; the hotline texts use the keyword 'hotline'
FILL = [f"{a} {b}" for a in ["my account", "on monday", "for the flat", "this month", "at home"]
        for b in ["again", "for my mother", "since june", "in the office", "twice", "today"]]
TEXTS = pd.Series([f"the zorgs were wrong {f}" for f in FILL] + [f"the hotline kept me {f}" for f in FILL]
                  + [f"nothing special {f}" for f in FILL])
LABELS = pd.DataFrame({"response_id": [f"r{i}" for i in range(90)], "themes": ["invoice"] * 30 + ["hotline_waiting"] * 30 + [""] * 30})


@pytest.fixture(scope="module")
def theme_inputs(tax):
    comments = pd.DataFrame({"response_id": LABELS["response_id"], "comment": TEXTS})
    truth = themes.theme_truth(comments, LABELS, list(tax.themes()))
    lang = pd.Series("en", index=TEXTS.index)
    return lang, truth, text.tag_themes(TEXTS, tax, languages=lang)


def test_theme_model_learns_on_a_seeded_sample_of_at_most_max_train_texts(theme_inputs, monkeypatch):
    lang, truth, keywords = theme_inputs
    whole = themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=30, min_positive=5)
    same = themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=30, min_positive=5, max_train=90)
    assert_frame_equal(same["tags"], whole["tags"])
    assert same["reason"] == whole["reason"] and "random sample" not in whole["reason"]
    assert_frame_equal(same["quality"], whole["quality"])                  # a budget above the data changes nothing
    seen, fit_predict = [], themes._fit_predict
    monkeypatch.setattr(themes, "_fit_predict", lambda x, *a, **k: seen.append(frozenset(x)) or fit_predict(x, *a, **k))
    small = themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=30, min_positive=5, max_train=45)
    assert seen and max(map(len, seen)) <= 45
    sample = frozenset().union(*seen)                                     # every text a fold or the final fit saw
    assert len(sample) == 45 and small["labelled"] == 90
    assert small["quality"].loc["invoice", "support"] + small["quality"].loc["hotline_waiting", "support"] <= 45
    assert small["reason"].endswith("(learned and measured on a random sample of 45 of the 90 labelled texts)")
    seen.clear()
    again = themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=30, min_positive=5, max_train=45)
    assert frozenset().union(*seen) == sample
    assert_frame_equal(again["quality"], small["quality"])
    assert again["tags"].equals(small["tags"])
    seen.clear()
    themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=30, min_positive=5, max_train=45, seed=1)
    assert len(frozenset().union(*seen)) == 45 and frozenset().union(*seen) != sample      # another seed, another sample


def test_theme_model_tags_per_batch_as_in_one_pass(theme_inputs):
    _, truth, _ = theme_inputs
    x = text.fold_series(TEXTS).to_numpy()
    y = truth[["invoice", "hotline_waiting", "price"]].astype(bool)
    new = np.array(["a zorg again", "the hotline", "zorgs and the hotline", "nothing", "", "zorg zorg"] * 3, dtype=object)
    whole = themes._fit_predict(x, y, new, ["invoice", "hotline_waiting", "price"], 0)
    for batch in (1, 4):
        assert_frame_equal(themes._fit_predict(x, y, new, ["invoice", "hotline_waiting", "price"], 0, batch=batch), whole)
    assert whole["invoice"].iloc[0] and not whole["price"].any()          # a theme without mentions: constant


# --- lean frames in prepare -------------------------------------------------------------------------------
def stage_tables(n: int = 160) -> dict:
    texts = corpus(n, seed=5)
    rng = np.random.default_rng(2)
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(40)],
                              "segment": pd.Series(["private", "business"] * 20, dtype="str"),
                              "region": pd.Series(["north", "south", "east", "west"] * 10, dtype="str"),
                              "signup_date": pd.Timestamp("2023-01-01", tz="UTC")})
    feedback = pd.DataFrame({
        "response_id": [f"R{i}" for i in range(n)], "customer_id": [f"C{i % 40}" for i in range(n)],
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 120, n), unit="D"),
        "survey": "transactional", "touchpoint": pd.Series(["service_contact", "order"] * (n // 2), dtype="str"),
        "nps": rng.integers(0, 11, n).astype(float), "csat": np.nan, "csat_max": np.nan, "ces": np.nan,
        "comment": texts.to_numpy(), "language": pd.Series(None, index=range(n), dtype="str")})
    events = pd.DataFrame({"customer_id": [f"C{i}" for i in range(40)], "touchpoint": "service_contact",
                           "timestamp": pd.Timestamp("2024-02-01", tz="UTC"), "channel": "phone"})
    names = pd.DataFrame({"pii_name": ["Anna Lange", "Jo Wu"] * 20})
    return {"feedback": feedback, "customers": customers, "events": events, "reidentification": names, "labels": None}


def test_prepare_keeps_the_columns_the_sections_read_and_gives_the_same_results(tax, stopwords, lexicon):
    tables = stage_tables()
    every = voice.prepare(tables, tax, (stopwords, lexicon))
    lean = voice.prepare(tables, tax, (stopwords, lexicon), group_by=["segment", "period"])
    assert {"segment", "region", "signup_date"} <= set(every.answers.columns)
    assert "segment" in lean.answers.columns and not {"region", "signup_date"} & set(lean.answers.columns)
    assert lean.comments.columns.tolist() == [c for c in voice.COMMENT_COLUMNS if c in tables["feedback"].columns]
    assert_frame_equal(lean.comments, every.comments[lean.comments.columns])
    assert (report.to_jsonable(voice.setup_record(lean, group_by=["segment"]))
            == report.to_jsonable(voice.setup_record(every, group_by=["segment"])))
    for a, b in zip(voice.kpi_cuts(lean.feedback, ["segment"], lean.kpis, min_n=10).values(),
                    voice.kpi_cuts(every.feedback, ["segment"], every.kpis, min_n=10).values()):
        assert_frame_equal(a, b)
    assert_frame_equal(lean.learned["sentiment"], every.learned["sentiment"])
    assert_frame_equal(lean.tags, every.tags)
    filtered = voice.prepare(tables, tax, (stopwords, lexicon), group_by=["segment"], filters={"region": "north"})
    assert filtered.answers["region"].eq("north").all() and "signup_date" not in filtered.answers.columns


def test_the_names_pattern_is_built_once_from_the_distinct_names(tax, stopwords, lexicon, monkeypatch):
    tables = stage_tables()
    calls, build = [], privacy.name_pattern
    monkeypatch.setattr(voice, "name_pattern", lambda names, **k: calls.append(len(names)) or build(names, **k))
    inputs = voice.prepare(tables, tax, (stopwords, lexicon), group_by=["segment"])
    assert calls == [2]                                            # 40 CRM rows, 2 distinct names
    assert inputs.scrub["names_pattern"] == build(tables["reidentification"]["pii_name"],
                                                  keep=text.common_words(stopwords, lexicon))
    monkeypatch.setattr(privacy, "name_pattern", lambda *a, **k: pytest.fail("built again"))
    quotes = voice_comments.example_quotes(inputs, min_n=1)
    terms = voice_comments.uncovered_terms(inputs)
    assert not quotes["quote"].str.contains("Anna|Lange|Jo Wu").any() and not terms["term"].str.contains("anna|lange").any()
    unnamed = voice.prepare({**tables, "reidentification": None}, tax, (stopwords, lexicon))
    assert unnamed.scrub["names_pattern"] is None


def test_sections_on_the_columns_they_read_equal_the_whole_frame(tax, stopwords, lexicon):
    inputs = voice.prepare(stage_tables(), tax, (stopwords, lexicon))
    trends = voice.kpi_trends(inputs.feedback, inputs.kpis, min_n=10)
    assert_frame_equal(trends["nps"], metrics.kpi_trend(inputs.feedback, kpi="nps", min_n=10))
    assert_frame_equal(voice.word_of_mouth(inputs.feedback, min_n=10), metrics.word_of_mouth(inputs.feedback, min_n=10))


def test_nothing_filtered_out_is_no_copy():
    answers = pd.DataFrame({"segment": ["a", "b"], "timestamp": pd.Timestamp("2024-01-02", tz="UTC")})
    assert feedback_table.filter_feedback(answers, {"segment": ""}) is answers
    assert feedback_table.filter_feedback(answers, {}, start="2024-01-01") is answers
    assert feedback_table.filter_feedback(answers, {"segment": "a"})["segment"].tolist() == ["a"]
