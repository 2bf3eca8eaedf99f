"""cxlib.sentiment on hand-made comments: the score -> class rule, labelled files, the learned
model on a separable toy corpus, the fallback to the word lists, the baselines and what the
report may say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from cxlib import config, sentiment, text, voice_comments
from cxlib.schema import Missing
from cxlib.text import TextError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lexicon():
    return config.load_yaml(ROOT / "config" / "sentiment.yml")


# a toy corpus the word lists cannot read (made-up words) but a model separates: the class is
# carried by one marker word, the rest is shared filler
FILLER = ["the parcel came on tuesday", "my order number is here", "about the router box", "we spoke about the tariff",
          "the letter arrived monday", "a question on the contract", "the technician came at noon", "my address moved",
          "the modem sits in the hall", "our flat has two phones", "the bill for march", "a new sim card"]
TOY = pd.Series([f"{f} grotty" for f in FILLER] + [f"middling {f}" for f in FILLER[:10]]
                + [f"zappy {f} zappy" for f in FILLER[:8]], index=range(100, 130))
TOY_CLASSES = pd.Series(["negative"] * 12 + ["neutral"] * 10 + ["positive"] * 8, index=TOY.index, dtype="str")
EN = pd.Series("en", index=TOY.index, dtype="str")


@pytest.fixture(scope="module")
def toy(lexicon):
    return sentiment.learn(TOY, EN, TOY_CLASSES, lexicon, min_labelled=20)


# --- the rule -------------------------------------------------------------------------------------
def test_nps_classes_follow_the_rule():
    nps = pd.DataFrame({"nps": [0, 6, 7, 8, 9, 10, None]}, index=list("abcdefg"))
    out = sentiment.score_classes(nps)
    expected = pd.Series(["negative", "negative", "neutral", "neutral", "positive", "positive", None],
                         index=list("abcdefg"), dtype="str", name="sentiment_class")
    assert_series_equal(out, expected)
    moved = sentiment.score_classes(nps, nps_negative=5, nps_positive=10)
    assert moved.tolist()[:6] == ["negative", "neutral", "neutral", "neutral", "neutral", "positive"]


def test_csat_classes_on_each_answer_scale():
    answers = pd.DataFrame({"csat": [1, 2, 3, 4, 5, 1, 2, 3, 8, 9, 10],
                            "csat_max": [None] * 5 + [3.0] * 3 + [10.0] * 3})
    out = sentiment.score_classes(answers).tolist()
    assert out[:5] == ["negative", "negative", "neutral", "positive", "positive"]           # 1-5 (csat_max missing)
    assert out[5:8] == ["negative", "neutral", "positive"]                                  # 1-3: one point each end
    assert out[8:] == ["neutral", "positive", "positive"]                                   # 1-10
    stars = pd.DataFrame({"csat": [0, 1, 2, 3, 4, 5], "csat_max": 5.0})                     # 0-5: a 0 was given
    assert sentiment.score_classes(stars).tolist() == ["negative", "negative", "neutral", "neutral", "positive", "positive"]


def test_nps_wins_over_csat_and_a_mapped_bottom_is_used():
    both = pd.DataFrame({"nps": [10, None], "csat": [1, 2], "csat_max": [5.0, 5.0], "csat_min": [None, 2.0]})
    assert sentiment.score_classes(both).tolist() == ["positive", "negative"]
    assert sentiment.score_classes(pd.DataFrame({"comment": ["x"]})).isna().all()   # no score columns
    assert sentiment.score_classes(pd.DataFrame({"nps": []})).empty


def test_rule_from_config_and_unknown_setting(lexicon):
    assert sentiment.score_classes(pd.DataFrame({"nps": [7]}), {"learned": {"nps_negative": 7}}).tolist() == ["negative"]
    with pytest.raises(TextError, match="unknown setting"):
        sentiment.settings({"learned": {"min_labeled": 10}})
    assert sentiment.settings(lexicon)["min_labelled"] == sentiment.MIN_LABELLED
    assert "NPS 0–6 negative, 7–8 neutral, 9–10 positive" in sentiment.describe_rule()


def test_labelled_file_wins_over_the_score():
    comments = pd.DataFrame({"response_id": ["r1", "r2", "r3"], "nps": [10, 2, None]}, index=[5, 6, 7])
    labels = pd.DataFrame({"response_id": ["r1", "r3", "r9"], "sentiment": [" Negative", "neu", "positive"]})
    out = sentiment.training_classes(comments, labels)
    assert out.tolist() == ["negative", "negative", "neutral"] and out.index.tolist() == [5, 6, 7]
    assert sentiment.label_source(comments, labels) == "labels"
    assert sentiment.label_source(comments, None) == "scores"
    assert sentiment.training_classes(comments, labels.drop(columns="sentiment")).tolist()[:2] == ["positive", "negative"]
    with pytest.raises(TextError, match="negative, neutral or positive"):
        sentiment.training_classes(comments, labels.assign(sentiment=["bad", "", "x"]))


# --- measures ------------------------------------------------------------------------------------
def test_scores_are_exact():
    out = sentiment.scores(["negative", "negative", "positive", "neutral"], ["negative", "positive", "positive", "negative"])
    assert out["n"] == 4 and out["accuracy"] == 0.5
    # F1: negative 2*1/(2+2) = .5, neutral 0, positive 2*1/(1+2) = 2/3
    assert out["macro_f1"] == pytest.approx((0.5 + 0 + 2 / 3) / 3)
    assert (out["recall_negative"], out["recall_neutral"], out["recall_positive"]) == (0.5, 0.0, 1.0)
    absent = sentiment.scores(["positive", None], ["positive", "negative"])
    assert absent["n"] == 1 and np.isnan(absent["recall_negative"]) and absent["macro_f1"] == 1.0


# --- the learned model -------------------------------------------------------------------------------
def test_model_trained_on_a_separable_corpus_labels_new_texts_exactly(toy, lexicon):
    assert toy["languages"][["language", "comments", "labelled", "method"]].to_dict("records") == [
        {"language": "en", "comments": 30, "labelled": 30, "method": "learned"}]
    assert set(toy["models"]) == {"en"}
    assert toy["sentiment"]["method"].eq("learned").all()
    assert toy["sentiment"]["sentiment"].tolist() == TOY_CLASSES.tolist()      # the training texts themselves
    new = pd.Series(["grotty, the tariff", "zappy tuesday", "middling noon", "the box was grotty", "zappy zappy", ""],
                    index=list("abcdef"))
    out = sentiment.apply(toy, new, pd.Series("en", index=new.index), lexicon)
    assert out["sentiment"].tolist()[:5] == ["negative", "positive", "neutral", "negative", "positive"]
    assert pd.isna(out.loc["f", "sentiment"]) and pd.isna(out.loc["f", "method"])
    assert out["sentiment_score"].iloc[:5].between(-1, 1).all() and out.loc["b", "sentiment_score"] > 0


def test_quality_beside_the_baselines_is_held_out_and_exact_for_the_baselines(toy):
    q = toy["quality"].set_index("method")
    assert q.index.tolist() == ["learned", "word lists", "majority"] and q["n"].eq(30).all()
    # the word lists know none of the marker words: all neutral
    assert q.loc["word lists", "accuracy"] == pytest.approx(10 / 30)
    assert q.loc["word lists", "macro_f1"] == pytest.approx((2 * 10 / (10 + 30)) / 3)
    # the majority of every training fold is negative (12 of 30)
    assert q.loc["majority", "accuracy"] == pytest.approx(12 / 30)
    assert q.loc["majority", "macro_f1"] == pytest.approx((2 * 12 / (12 + 30)) / 3)
    assert q.loc["majority", "recall_negative"] == 1.0 and q.loc["majority", "recall_positive"] == 0.0
    # held out (each text predicted by a model that did not see it): good, not necessarily perfect
    assert q.loc["learned", "macro_f1"] > 0.85 and q.loc["learned", "accuracy"] > 0.85
    assert sentiment.trusted(toy) and bool(toy["languages"]["trusted"].iloc[0])
    sentiment.require_trusted(toy)


def test_too_few_labelled_texts_fall_back_to_the_word_lists(lexicon):
    out = sentiment.learn(TOY, EN, TOY_CLASSES, lexicon, min_labelled=31)
    row = out["languages"].iloc[0]
    assert row["method"] == "word lists" and row["reason"] == "30 labelled texts, fewer than the 31 a model needs"
    assert out["models"] == {}
    words = text.sentiment(TOY, "en", lexicon)
    assert_series_equal(out["sentiment"]["sentiment"], words["sentiment"], check_names=False)
    assert out["quality"]["method"].tolist() == ["word lists", "majority"]
    # word lists (macro-F1 .167) do not beat always answering 'negative' (.190): shares are no finding
    assert not sentiment.trusted(out)
    with pytest.raises(Missing, match="does not beat always answering the most frequent class"):
        sentiment.require_trusted(out)
    assert "does **not** beat" in sentiment.describe_quality(out)


def test_word_lists_kept_when_the_model_is_not_better(lexicon):
    texts = pd.Series(["great service", "really great staff", "great, thanks", "great help", "great job", "great shop",
                       "awful wait", "awful staff", "awful hotline", "awful again", "awful mess", "awful shop"])
    classes = pd.Series(["positive"] * 6 + ["negative"] * 6, dtype="str")
    out = sentiment.learn(texts, pd.Series("en", index=texts.index), classes, lexicon, min_labelled=10)
    row = out["languages"].iloc[0]
    assert row["method"] == "word lists" and "is not above the word lists' (1.00)" in row["reason"]
    assert out["sentiment"]["method"].eq("word lists").all() and out["models"] == {}
    assert sentiment.trusted(out)      # the word lists (1.00) beat the majority (.33)


def test_other_languages_are_counted_never_scored(lexicon):
    texts = pd.concat([TOY, pd.Series(["c'est zappy", "molto grotty", ""], index=[200, 201, 202])])
    lang = pd.concat([EN, pd.Series(["other", "other", "en"], index=[200, 201, 202], dtype="str")])
    classes = pd.concat([TOY_CLASSES, pd.Series(["positive", "negative", "positive"], index=[200, 201, 202], dtype="str")])
    out = sentiment.learn(texts, lang, classes, lexicon, min_labelled=20)
    assert out["sentiment"].loc[[200, 201, 202]].isna().all().all()
    assert out["other"] == 2 and out["languages"]["labelled"].tolist() == [30]
    assert "2 comments in other languages are counted, not labelled." in sentiment.describe_quality(out)


def test_unscored_comments_use_the_word_lists_and_are_not_findings(lexicon):
    texts = pd.Series(["Die Hotline ist super", "awful", ""], index=[1, 2, 3])
    lang = pd.Series(["de", "en", "en"], index=texts.index, dtype="str")
    out = sentiment.learn(texts, lang, pd.Series(pd.NA, index=texts.index, dtype="str"), lexicon)
    assert out["languages"]["method"].tolist() == ["word lists", "word lists"]
    assert out["languages"]["reason"].tolist() == ["no comment carries a score or a label"] * 2
    assert out["sentiment"]["sentiment"].tolist()[:2] == ["positive", "negative"] and pd.isna(out["sentiment"].loc[3, "sentiment"])
    assert out["quality"].empty and out["languages"]["trusted"].isna().all()
    assert not sentiment.trusted(out)
    with pytest.raises(Missing, match="could not be checked"):
        sentiment.require_trusted(out)
    assert "cannot be measured" in sentiment.describe_quality(out)


def test_one_class_only_and_empty_input(lexicon):
    texts = pd.Series(["zappy a", "zappy b"])
    out = sentiment.learn(texts, pd.Series("en", index=texts.index), pd.Series(["positive"] * 2, dtype="str"), lexicon,
                          min_labelled=1)
    assert out["languages"]["reason"].tolist() == ["2 labelled texts, not two classes with two texts each (positive 2)"]
    empty = sentiment.learn(pd.Series([], dtype="str"), pd.Series([], dtype="str"), pd.Series([], dtype="str"), lexicon)
    assert empty["sentiment"].empty and empty["languages"].empty and not sentiment.trusted(empty)
    assert sentiment.describe_quality(empty) == "No German or English comment to label with a sentiment."
    assert sentiment.quality_table(empty).empty
    with pytest.raises(Missing, match="no German or English comments"):
        sentiment.require_trusted(empty)
    with pytest.raises(TextError, match="same index"):
        sentiment.learn(texts, pd.Series(["en"], dtype="str"), pd.Series(["positive"] * 2, dtype="str"), lexicon)


def test_duplicate_texts_are_one_labelled_text(lexicon):
    texts = pd.concat([TOY, TOY.iloc[:5]], ignore_index=True)
    classes = pd.concat([TOY_CLASSES, TOY_CLASSES.iloc[:5]], ignore_index=True)
    out = sentiment.learn(texts, pd.Series("en", index=texts.index), classes, lexicon, min_labelled=20)
    assert out["languages"]["labelled"].tolist() == [30] and out["quality"]["n"].eq(30).all()
    assert len(out["sentiment"]) == 35


# --- for the report -------------------------------------------------------------------------------
def test_quality_table_and_sentences(toy):
    table = sentiment.quality_table(toy)
    assert table.columns.tolist() == ["language", "method", "used", "texts", "accuracy", "macro-F1", "recall negative",
                                      "recall neutral", "recall positive"]
    assert table["method"].tolist() == ["learned model", "word lists", "always the most frequent class"]
    assert table["used"].tolist() == ["used", "", ""] and table["language"].eq("English").all()
    assert table.loc[1, "accuracy"] == 0.33 and table.loc[2, "macro-F1"] == 0.19
    words = sentiment.describe_quality(toy)
    assert words.startswith("**English** (30 comments, 30 distinct with a score or label): a model learned from the "
                            "company's own comments (trained on 30 labelled texts). On 30 held-out texts it agrees with "
                            "the score or label for ")
    assert "always the most frequent class 40% / 0.19; word lists 33% / 0.17." in words
    assert "What is measured is agreement with the class of the score the customer gave" in words
    assert "nan" not in words


def test_shares_by_group():
    sent = pd.Series(["negative", "negative", "positive", "neutral", None], index=[1, 2, 3, 4, 5], dtype="str")
    groups = pd.Series(["detractor", "detractor", "promoter", "promoter", "promoter"], index=[1, 2, 3, 4, 5])
    out = sentiment.shares_by(sent, groups, order=["detractor", "passive", "promoter"])
    expected = pd.DataFrame({"negative": [100.0, 0.0], "neutral": [0.0, 50.0], "positive": [0.0, 50.0], "n": [2, 2]},
                            index=pd.Index(["detractor", "promoter"], name="group"))
    assert_frame_equal(out, expected, check_names=False)


def test_shares_title():
    share = pd.DataFrame({"negative": [62.4, 3.0], "neutral": [30.0, 20.0], "positive": [7.6, 77.0]},
                         index=["detractor", "promoter"])
    assert sentiment.shares_title(share) == "62% of detractors' comments are negative, 77% of promoters' positive"
    assert sentiment.shares_title(share.iloc[:0]) == "Sentiment of the comments by group"


def test_the_comment_chain_runs_without_comments(lexicon, stopwords_and_tax):
    """The load cell of the feedback stage computes these for every shape: none may raise."""
    from cxlib import themes, voice
    stopwords, tax = stopwords_and_tax
    for feedback in (pd.DataFrame({"response_id": ["a"], "nps": [9.0]}),                       # no comment column
                     pd.DataFrame({"response_id": ["a"], "nps": [9.0], "comment": [" "]})):   # blank comment
        comments = voice.comments(feedback)
        language = voice.comment_languages(comments, text.detect_language(comments["comment"], stopwords, lexicon=lexicon))
        learned = sentiment.learn(comments["comment"], language, sentiment.training_classes(comments, None, lexicon), lexicon)
        keywords = text.tag_themes(comments["comment"], tax, languages=language)
        found = themes.learn_themes(comments["comment"], language, themes.theme_truth(comments, None, list(tax.themes())),
                                    keywords)
        assert learned["sentiment"].empty and found["tags"].empty and found["labelled"] == 0
        with pytest.raises(Missing):
            themes.require_theme_labels(found)


@pytest.fixture(scope="module")
def stopwords_and_tax():
    return config.load_yaml(ROOT / "config" / "stopwords.yml"), config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


def test_findings_and_method_note(toy, lexicon):
    assert sentiment.findings(toy).equals(toy["sentiment"]["sentiment"])
    assert voice_comments.method_note(toy) == "learned from the scored comments: English"
    assert voice_comments.method_note({**toy, "source": "labels"}) == "learned from the hand-labelled comments: English"
    assert voice_comments.method_note({**toy, "source": "labels"}, "de") == "aus den von Hand gelabelten Kommentaren gelernt: Englisch"
    fallback = sentiment.learn(TOY, EN, TOY_CLASSES, lexicon, min_labelled=31)      # does not beat the majority
    assert sentiment.findings(fallback) is None
    assert voice_comments.method_note(fallback) == "word lists: English"


def test_a_class_with_one_text_is_no_second_class(lexicon):
    texts = pd.Series([f"zappy {f}" for f in FILLER] + ["grotty once"])
    classes = pd.Series(["positive"] * 12 + ["negative"], dtype="str")
    out = sentiment.learn(texts, pd.Series("en", index=texts.index), classes, lexicon, min_labelled=5)
    assert out["languages"]["method"].tolist() == ["word lists"] and out["models"] == {}
    assert out["languages"]["reason"].tolist() == ["13 labelled texts, not two classes with two texts each (positive 12, negative 1)"]


def test_one_pass_features_equal_the_pipeline_bit_for_bit(monkeypatch):
    """`TextFeatures` (each text analysed once for all folds) fits and predicts exactly what the
    scikit-learn pipeline of `model` fitted on the texts themselves does, also past the term limit."""
    monkeypatch.setattr(sentiment, "MAX_FEATURES", 40)
    texts = pd.Series([f"{w} service {n}" for n, w in enumerate(["good", "bad", "slow", "great", "awful", "fine"] * 30)])
    folded = text.fold_series(texts).drop_duplicates()
    classes = np.where(folded.str.contains("good|great|fine"), "positive", "negative")
    features = sentiment.TextFeatures(folded.iloc[:150])
    fitted = features.fit(np.arange(120), classes[:120])
    reference = sentiment.model(120).fit(folded.iloc[:120].to_numpy(), classes[:120])
    assert np.array_equal(fitted.pipeline.named_steps["classifier"].coef_, reference.named_steps["classifier"].coef_)
    for got, want in zip(features.predict(fitted, folded.iloc[120:]), sentiment._predict(reference, folded.iloc[120:])):
        assert np.array_equal(got, want)
