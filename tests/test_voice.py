"""cxlib.voice and cxlib.voice_comments: what stage 02 shows on thin data (exact values on hand-made frames) and
its sentences."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cxlib import metrics, voice, voice_comments
from cxlib.schema import Missing

UTC = "UTC"


def answers(n_nps: int = 0, n_csat: int = 0, *, segment=None, month: str | None = "2024-03-05") -> pd.DataFrame:
    """n_nps NPS answers (half 10, half 3) then n_csat CSAT answers on 0-10 (alternating 9 and 5)."""
    n = n_nps + n_csat
    return pd.DataFrame({
        "response_id": [f"r{i}" for i in range(n)],
        "timestamp": pd.Series(pd.Timestamp(month, tz=UTC) if month else pd.NaT, index=range(n),
                               dtype="datetime64[us, UTC]"),
        "nps": [10.0 if i % 2 == 0 else 3.0 for i in range(n_nps)] + [np.nan] * n_csat,
        "csat": [np.nan] * n_nps + [9.0 if i % 2 == 0 else 5.0 for i in range(n_csat)],
        "csat_max": [np.nan] * n_nps + [10.0] * n_csat,
        "ces": np.nan,
        "segment": pd.Series(segment, index=range(n), dtype="str"),
        "comment": pd.Series(None, index=range(n), dtype="str"),
    }).pipe(metrics.add_period, "month")


def two_months(df: pd.DataFrame) -> pd.DataFrame:
    half = np.arange(len(df)) >= len(df) // 2
    return df.assign(timestamp=df["timestamp"].where(~half, pd.Timestamp("2024-04-05", tz=UTC))).pipe(metrics.add_period)


# --- which KPIs -----------------------------------------------------------------------------
def test_available_kpis_counts_answers_and_treats_an_absent_column_as_none():
    assert voice.available_kpis(answers(0, 4)) == ["csat"]
    assert voice.available_kpis(answers(4, 4)) == ["nps", "csat"]
    assert voice.available_kpis(answers(4).drop(columns=["csat", "ces"])) == ["nps"]
    assert voice.available_kpis(answers(0, 0)) == []
    assert voice.main_kpi(["csat", "ces"]) == "csat" and voice.main_kpi([]) == "nps"


def test_headline_without_nps_answers_is_missing_and_csat_uses_each_answers_scale():
    fb = answers(0, 4)                                     # 9, 5, 9, 5 on 0-10: two in the top two points
    with pytest.raises(Missing, match="no NPS answers") as caught:
        voice.headline(fb, "nps")
    assert caught.value.enable.startswith("feedback.nps")
    est = voice.headline(fb, "csat")
    low, high = metrics.wilson_interval(2, 4)
    assert est == pytest.approx({"value": 50.0, "ci_low": 100 * float(low), "ci_high": 100 * float(high), "n": 4})
    old = fb.drop(columns="csat_max").assign(csat=[4.0, 2.0, 5.0, 1.0])   # processed data before csat_max: 1-5
    assert voice.headline(old, "csat")["value"] == 50.0


def test_headline_table_and_sentences_show_only_the_kpis_there_and_never_nan():
    results = {"csat": {"value": 50.0, "ci_low": 15.0, "ci_high": 85.0, "n": 4},
               "ces": {"value": 6.0, "ci_low": np.nan, "ci_high": np.nan, "n": 1}, "group_by": ["segment"]}
    table = voice.headline_table(results)
    assert table["KPI"].tolist() == ["CSAT", "CES"] and table["answers"].tolist() == ["4", "1"]
    assert table["interval from"].tolist() == ["15.0%", "–"] and table["value"].tolist() == ["50.0%", "6.00"]
    assert voice.headline_table(results, "de")["Wert"].tolist() == ["50,0\u00a0%", "6,00"]
    text = voice.describe_headline(results, min_n=100)
    assert text.startswith("CSAT is 50.0% (95% interval 15.0% to 85.0%, n = 4).")
    assert "CES is 6.00 (n = 1: too few answers for an interval)." in text and "nan" not in text
    assert voice.describe_headline({}) == "The selection holds no NPS, CSAT or CES answers."
    assert voice.describe_headline(results, min_n=100, lang="de").startswith(
        "Der CSAT beträgt 50,0\u00a0% (95-%-Intervall 15,0\u00a0% bis 85,0\u00a0%, n = 4).")
    with pytest.raises(Missing, match="no NPS, CSAT or CES answers"):
        voice.headline_table({"group_by": ["segment"]})


# --- cuts --------------------------------------------------------------------------------------
def test_one_segment_or_none_recorded_is_missing_with_what_would_enable_it():
    with pytest.raises(Missing, match=r"all answers come from one segment \(private\)") as caught:
        voice.kpi_cuts(answers(6, segment="private"), ["segment"], ["nps"])
    assert caught.value.enable == "customers.segment with two or more values"
    derived = answers(6)                                   # customers derived from feedback: no segment
    with pytest.raises(Missing, match="no segment is recorded") as caught:
        voice.kpi_cuts(derived, ["segment"], ["nps"])
    assert caught.value.enable == "customers.segment"
    with pytest.raises(Missing, match="no touchpoint"):
        voice.check_cut(derived, ["touchpoint"], ["nps"])   # column absent
    with pytest.raises(Missing, match="no NPS, CSAT or CES answers"):
        voice.check_cut(derived, ["segment"], [])
    mixed = answers(6).assign(segment=pd.Series(["a", "a", "a", None, None, None], dtype="str"))
    with pytest.raises(Missing, match=r"one segment \(a\)"):        # unknown values are no second group
        voice.check_cut(mixed, ["segment"], ["nps"])


def test_cuts_for_the_kpis_there_small_groups_greyed_and_never_ranked():
    fb = pd.concat([answers(0, 120, segment="business"), answers(0, 10, segment="private")], ignore_index=True)
    cuts = voice.kpi_cuts(fb, ["segment"], ["csat"], min_n=100)
    assert list(cuts) == ["csat"]
    table = cuts["csat"]
    assert table["segment"].tolist() == ["business", "private"] and table["n"].tolist() == [120, 10]
    assert table["value"].tolist() == [50.0, 50.0] and table["small"].tolist() == [False, True]
    assert table["rank"].tolist() == [1, pd.NA]
    assert "Only **business** has at least 100 answers (CSAT 50.0%): no group is ranked." in \
        voice.describe_groups(cuts, ["segment"], min_n=100)
    shown = voice.cut_table(cuts, ["segment"])
    assert shown.columns.tolist()[:3] == ["KPI", "segment", "answers"]
    assert shown.loc[1, "rank"] == "–" and shown.loc[1, "p-value (adjusted)"] == "–"
    record = voice.cuts_record(cuts)
    assert record["by_segment"]["kpi"].tolist() == ["csat", "csat"] and "p_value" not in record["by_group"]["csat"]


# --- over time ---------------------------------------------------------------------------------
def test_trend_needs_dates_and_two_periods():
    with pytest.raises(Missing, match="the answers have no dates") as caught:
        voice.kpi_trends(answers(6, month=None), ["nps"])
    assert caught.value.enable == "feedback.timestamp"
    with pytest.raises(Missing) as caught:
        voice.kpi_trends(answers(6), ["nps"])
    assert caught.value.reason == "all dated answers fall in one month (2024-03)"
    trends = voice.kpi_trends(two_months(answers(0, 8)), ["csat"], min_n=1)
    assert list(trends) == ["csat"] and trends["csat"]["period"].tolist() == ["2024-03", "2024-04"]
    assert trends["csat"]["value"].tolist() == [50.0, 50.0]
    shown = voice.trend_table(trends)
    assert shown["period"].tolist() == ["Mar 2024", "Apr 2024"] and shown.loc[0, "change to the previous period"] == "–"
    record = voice.trend_record({"nps": metrics.kpi_trend(two_months(answers(8)), min_n=1), **trends})
    assert record["kpi"].tolist() == ["nps", "nps", "csat", "csat"] and record["period"].tolist()[:2] == ["2024-03", "2024-04"]
    assert record.columns.tolist()[:2] == ["kpi", "period"] and {"change_low", "p_adjusted", "small"} <= set(record.columns)


def test_word_of_mouth_only_with_nps():
    with pytest.raises(Missing, match="no NPS answers"):
        voice.word_of_mouth(two_months(answers(0, 8)))
    with pytest.raises(Missing, match="one month"):
        voice.word_of_mouth(answers(8))
    wom = voice.word_of_mouth(two_months(answers(8)), min_n=1)
    assert wom["promoters"].tolist() == [50.0, 50.0] and wom["detractors"].tolist() == [50.0, 50.0]


def test_describe_trend_one_large_period_is_no_movement():
    trend = metrics.kpi_trend(two_months(answers(0, 8)).iloc[:6], kpi="csat", min_n=3)   # March 4, April 2
    assert voice.describe_trend({"csat": trend}) == \
        "CSAT was 50.0% in Mar 2024 (n = 4). 1 period(s) have too few answers to be compared."
    assert voice.describe_trend({"csat": trend}, lang="de") == \
        "Der CSAT lag bei 50,0\u00a0% im März 2024 (n = 4). 1 Periode(n) haben zu wenige Antworten für einen Vergleich."


# --- sample size ---------------------------------------------------------------------------------
def test_sample_size_plan_for_csat_and_missing_for_ces_only():
    fb = pd.concat([answers(0, 120, segment="business"), answers(0, 10, segment="private")], ignore_index=True)
    plan = voice.sample_size_plan(fb, ["segment"], "csat", margin=5, min_n=100)
    assert plan["needed"] == metrics.sample_size(5, kpi="csat", share=50.0) == 385
    assert plan["small"].to_dict("records") == [{"segment": "private", "n": 10, "missing": 375}]
    assert voice.describe_sample_size(plan, ["segment"]) == (
        "A CSAT within ±5 percentage points needs about **385 answers** per group. 1 group(s) have fewer than "
        "`min_answers` = 100 answers: private (n = 10, 375 more needed).")
    nps = voice.sample_size_plan(answers(8, segment="a"), ["segment"], "nps", margin=5)
    assert nps["needed"] == metrics.sample_size(5, kpi="nps", promoters=50, detractors=50)
    assert voice.describe_sample_size(nps, ["segment"]).startswith("An NPS within ±5 points")
    unknown = voice.sample_size_plan(answers(8), ["segment"], "nps", margin=5)     # no segment known: no group
    assert unknown["groups"] == 0 and unknown["small"].empty
    ces_only = answers(0, 0).assign(ces=pd.Series([5.0]))
    with pytest.raises(Missing, match="no NPS or CSAT answers"):
        voice.sample_size_plan(ces_only, ["segment"], "ces")


# --- comments --------------------------------------------------------------------------------------
def test_comments_and_their_languages():
    fb = pd.DataFrame({"comment": pd.Series(["Gut", " ", None, "Bien"], dtype="str"),
                       "language": pd.Series([None, "en", "en", "French"], dtype="str")})
    got = voice.comments(fb)
    assert got.index.tolist() == [0, 3]
    assert voice.comments(fb.drop(columns="comment")).empty
    detected = pd.Series(["de", "en"], index=got.index, name="language")
    assert voice.comment_languages(got, detected).tolist() == ["de", "other"]      # the mapped language wins
    mapped = pd.DataFrame({"language": pd.Series(["de-CH", "English", "", "xx", None], dtype="str")})
    assert voice.comment_languages(mapped, pd.Series(["en", "de", "de", "de", "en"])).tolist() == \
        ["de", "en", "de", "other", "en"]
    assert voice.comment_languages(got.drop(columns="language"), detected).equals(detected)
    with pytest.raises(Missing, match="no comments"):
        voice_comments.require_comments(voice.comments(fb.iloc[1:3]))
    voice_comments.require_known_language(pd.Series(["other", "en"]))
    with pytest.raises(Missing, match="no German or English comments"):
        voice_comments.require_known_language(pd.Series(["other", None], dtype="str"))


def test_scored_comments_guard():
    categories = pd.Series(["detractor", "promoter", "passive", None])
    voice_comments.require_scored_comments(categories, pd.Series(["negative", "positive", "neutral", "neutral"]))
    with pytest.raises(Missing, match="no comment from passives to compare"):
        voice_comments.require_scored_comments(categories, pd.Series(["negative", "positive", None, "neutral"]))
    voice_comments.require_scored_comments(categories.iloc[:2], pd.Series(["negative", "positive"]), needed=("detractor", "promoter"))
    with pytest.raises(Missing, match="no German or English comment comes with an NPS answer"):
        voice_comments.require_scored_comments(pd.Series([None, None], dtype="str"), pd.Series(["negative", "positive"]))
    with pytest.raises(Missing) as info:                  # French comments with NPS: the language is what is missing
        voice_comments.require_scored_comments(categories, pd.Series([None] * 4, dtype="object"))
    assert (info.value.reason, info.value.enable) == ("no German or English comments",
                                                      "feedback.comment in German or English")


def stub_inputs(comments: pd.DataFrame, languages: pd.Series, sentiments: pd.Series, *, trusted: bool = True):
    """The Comments the comment tables read: comments (with nps), languages, the learned sentiment."""
    learned = {"sentiment": pd.DataFrame({"sentiment": sentiments.to_numpy()}, index=comments.index),
               "languages": pd.DataFrame({"language": ["en"], "comments": [len(comments)], "labelled": [len(comments)],
                                          "method": ["learned"], "reason": [""], "trusted": pd.array([trusted], "boolean")}),
               "quality": pd.DataFrame({"language": ["en", "en"], "method": ["learned", "majority"], "n": [400, 400],
                                        "accuracy": [0.8, 0.5], "macro_f1": [0.7, 0.22], "recall_negative": [0.6, 0.0],
                                        "recall_neutral": [0.5, 0.0], "recall_positive": [0.9, 1.0]})}
    return voice_comments.Comments(comments=comments, language=languages.set_axis(comments.index), learned=learned,
                                   theme_model={}, taxonomy=None, stopwords={}, lexicon={}, scrub={})


def test_language_and_sentiment_tables_for_readers():
    comments = pd.DataFrame({"comment": ["a", "b", "c", "d"], "language": pd.Series(["fr", None, "FR ", "it"], dtype="str"),
                             "nps": [2.0, 10.0, np.nan, 3.0]})
    languages = pd.Series(["other", "en", "other", "other"])
    sentiments = pd.Series(["negative", "positive", None, "negative"], dtype="object")
    inputs = stub_inputs(comments, languages, sentiments)
    table = voice_comments.language_table(inputs)
    assert table.to_dict("list") == {"language": ["other (fr, it)", "English"], "comments": ["3", "1"],
                                     "read for": ["counted only", "themes and sentiment"]}
    assert voice_comments.language_table(inputs, "de")["Sprache"].tolist() == ["andere (fr, it)", "Englisch"]
    assert voice_comments.describe_languages(languages) == (
        "1 of 4 comments are in German or English and are read for themes and sentiment; 3 in other languages are "
        "counted only.")
    assert voice_comments.describe_languages(pd.Series(["other"])).startswith("None of the 1 comments is in German or English")
    assert voice_comments.describe_sentiment(inputs) == (
        "Of 3 German and English comments, 33% positive, 0% neutral, 67% negative (learned from the scored comments: English).")
    got = voice_comments.sentiment_table(inputs)
    assert list(got.columns) == ["NPS group", "negative", "positive", "not scored", "all"]
    assert got.values.tolist() == [["detractors", "2", "0", "0", "2"], ["promoters", "0", "1", "0", "1"],
                                   ["no NPS answer", "0", "0", "1", "1"], ["all", "2", "1", "1", "4"]]
    assert voice_comments.describe_sentiment_quality(inputs.learned) == (
        "On comments the method did not see, the sentiment agrees with the score for: English 80% (macro-F1 0.70, "
        "most frequent class 0.22).")
    with pytest.raises(Missing, match="does not beat"):
        voice_comments.sentiment_table(stub_inputs(comments, languages, sentiments, trusted=False))


def test_the_stage_inputs_carry_the_comments_into_setup_and_findings():
    comments = pd.DataFrame({"comment": ["a", "b", "c", "d"], "nps": [2.0, 10.0, np.nan, 3.0]})
    read = stub_inputs(comments, pd.Series(["other", "en", "other", "other"]),
                       pd.Series(["negative", "positive", None, "negative"], dtype="object"))
    fb = answers(4)
    read = dataclasses.replace(read, theme_model={"labelled": 0})
    inputs = voice.Inputs(**{f.name: getattr(read, f.name) for f in dataclasses.fields(read)},
                          answers=fb, feedback=fb, kpis=["nps"], kpi="nps")
    record = voice.setup_record(inputs, group_by=["segment"])
    assert record["comments"] == {"total": 4, "other": 3, "en": 1}
    assert record["sentiment_quality"]["trusted"] and "theme_model" not in record       # no theme labels: left out
    assert voice.describe_findings({}, inputs, group_by=["segment"]) == (
        "- Of 3 German and English comments, 33% positive, 0% neutral, 67% negative (learned from the "
        "scored comments: English). On comments the method did not see, the sentiment agrees with the score for: "
        "English 80% (macro-F1 0.70, most frequent class 0.22).")


def test_answered_span_without_dates():
    assert voice.answered_span(answers(3, month=None)) == {"responses": 3, "from": "no dates", "to": "no dates"}
    assert voice.answered_period(answers(3, month=None)) == {"from": None, "to": None}
    assert voice.answered_period(two_months(answers(4))) == {"from": "2024-03-05", "to": "2024-04-05"}
    assert voice.answered_span(two_months(answers(4))) == {"responses": 4, "from": "2024-03-05", "to": "2024-04-05"}


# --- sentences (moved from metrics) ------------------------------------------------------------------
def textbook() -> pd.Series:
    return pd.Series([10.0] * 15 + [9.0] * 15 + [8.0] * 13 + [7.0] * 12 + [6.0] * 20 + [0.0] * 25, name="nps")


def grouped_frame() -> pd.DataFrame:
    scores = [10.0] * 60 + [8.0] * 20 + [3.0] * 20 + [10.0] * 30 + [8.0] * 30 + [3.0] * 40 + [10.0, 10.0, 7.0, 1.0, 2.0]
    return pd.DataFrame({"segment": ["a"] * 100 + ["b"] * 100 + ["c"] * 5, "nps": scores})


def trend_frame() -> pd.DataFrame:
    def month(day: str, promoters: int, passives: int, detractors: int) -> pd.DataFrame:
        n = promoters + passives + detractors
        return pd.DataFrame({"timestamp": pd.Timestamp(day, tz=UTC),
                             "nps": [10.0] * promoters + [7.0] * passives + [2.0] * detractors}, index=range(n))
    return pd.concat([month("2024-01-10", 60, 80, 60), month("2024-02-10", 62, 76, 62),
                      month("2024-03-10", 140, 40, 20), month("2024-04-10", 10, 20, 20)], ignore_index=True)


def test_describe_functions_state_the_numbers():
    est = metrics.nps_estimate(textbook())
    assert voice.describe_estimate(est, "nps") == "NPS is -15.0 (95% interval -31.0 to +1.8, n = 100)."
    assert "indicative only" in voice.describe_estimate(est, "nps", min_n=200)
    assert voice.describe_estimate({"n": 0}, "csat") == "No CSAT answers in the selection."
    table = metrics.kpi_by(grouped_frame(), ["segment"], min_n=100)
    text = voice.describe_groups({"nps": table}, ["segment"], min_n=100)
    assert "**a** has the highest NPS (+40.0, n = 100)" in text and "**b** the lowest (-10.0" in text
    assert "shown greyed, not ranked: c" in text and "Significantly different" in text
    trend = metrics.kpi_trend(trend_frame(), min_n=100)
    assert "Mar 2024 (+60.0 points vs the period before)" in voice.describe_trend({"nps": trend})


def test_describe_groups_with_a_group_of_missing_values():
    df = pd.DataFrame({"segment": pd.Series(["a"] * 100 + ["b"] * 100 + [None] * 100, dtype="str"),
                       "nps": [8.0] * 100 + [3.0] * 100 + [10.0] * 100})
    text = voice.describe_groups({"nps": metrics.kpi_by(df, ["segment"], min_n=100)}, ["segment"], min_n=100)
    assert "Of 2 groups with at least 100 answers, **a** has the highest NPS" in text and "**b** the lowest" in text
    assert "Answers without a recorded value ((none), n = 100) are shown but not ranked." in text
    assert "(none) (+" in text                                 # still tested against the rest


def test_describe_trend_starts_and_ends_with_periods_large_enough():
    # April (n 50) is small: the sentence runs from January to March, not to April's -20
    trend = metrics.kpi_trend(trend_frame(), min_n=100)
    assert voice.describe_trend({"nps": trend}).startswith(
        "NPS went from +0.0 in Jan 2024 (n = 200) to +60.0 in Mar 2024 (n = 200).")
    assert "1 period(s) have too few answers" in voice.describe_trend({"nps": trend})
    tiny = metrics.kpi_trend(trend_frame(), min_n=1000)             # no period is large enough: all shown
    assert voice.describe_trend({"nps": tiny}).startswith("NPS went from +0.0 in Jan 2024 (n = 200) to -20.0 in Apr 2024 (n = 50).")


def test_ratings_table_kpis_come_from_the_overall_rating():
    ratings = pd.DataFrame({"response_id": [f"r{i}" for i in range(6)],
                            "touchpoint": ["overall", "price_value", "delivery", "overall", "price_value", "delivery"],
                            "csat": [10.0, 2.0, 3.0, 9.0, 1.0, 2.0], "csat_max": 10.0})
    kept = voice.overall_answers(ratings)
    assert kept["response_id"].tolist() == ["r0", "r3"]
    assert voice.headline(kept, "csat")["value"] == 100.0           # both overall ratings in the top two of 1-10
    assert voice.headline(ratings, "csat")["value"] == pytest.approx(100 / 3)   # what mixing the aspects would say
    assert voice.describe_overall(ratings, kept, lang="de").startswith("Die Daten bewerten 2 Aspekt(e)")
    assert voice.describe_overall(ratings, kept) == (
        "The data rate 2 aspect(s) besides the overall experience: the KPIs below are read from the 2 overall ratings; "
        "the 4 aspect ratings are left out here (the moments-of-truth stage weighs the aspects as drivers of the "
        "overall rating).")
    assert voice.overall_answers(ratings, touchpoint="price_value") is ratings          # a touchpoint chosen on purpose
    survey = ratings.assign(touchpoint=["service_contact", None, "order", None, None, "order"])
    assert voice.overall_answers(survey) is survey and voice.describe_overall(survey, survey) == ""
    assert voice.overall_answers(ratings.drop(columns="touchpoint")).shape == (6, 3)


def test_stage_texts_come_from_the_locale_files():
    from cxlib import locale, sentiment

    en, de = locale.texts("en")["feedback"], locale.texts("de")["feedback"]
    assert en["definitions"] == metrics.DEFINITIONS and en["axes"] == metrics.AXES      # results.json keeps this wording
    assert en["comments"]["words"]["method"] == {**sentiment.METHODS, "keywords": "keywords", "model": "trained model"}
    assert de["comments"]["words"]["read"] == {True: "Themen und Stimmung", False: "nur gezählt"}
    cut = pd.DataFrame({"segment": ["business", None], "region": ["north", "south"]})
    assert voice.group_names(cut, ["segment", "region"], "de").tolist() == ["business / north", "(keine Angabe) / south"]
    assert voice._fmt(float("nan"), "nps", "de") == "k. A." and voice._fmt(None, "ces") == "n/a"
    inputs = type("Kpis", (), {"kpis": ["nps", "ces"]})()
    assert voice.describe_definitions(inputs, lang="de") == (
        "**Definitionen.**\n\n- " + de["definitions"]["nps"] + "\n- CES = mittlerer Aufwand auf 1–7 (höher = leichter); "
        "95-%-t-Intervall")
