"""cxlib.themes on hand-made comments: labelled themes, the trained theme model against the
keywords, and theme discovery (NMF topics) with scrubbed quotes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlib import text, themes
from cxlib.schema import Missing
from cxlib.text import TextError



def test_theme_truth_from_a_labelled_file(tax):
    codes = list(tax.themes())
    comments = pd.DataFrame({"response_id": ["a", "b", "c"]}, index=[7, 8, 9])
    labels = pd.DataFrame({"response_id": ["a", "b", "x"], "themes": ["invoice;price", "", "outage"]})
    out = themes.theme_truth(comments, labels, codes)
    assert out.columns.tolist() == codes and out.index.tolist() == [7, 8, 9]
    assert out.loc[7, ["invoice", "price"]].tolist() == [True, True] and out.loc[7].sum() == 2
    assert not out.loc[8].any() and out.loc[8].notna().all()          # labelled: no theme
    assert out.loc[9].isna().all()                                     # not labelled
    assert themes.theme_truth(comments, None, codes).isna().all().all()
    sentiment_only = labels.assign(themes=pd.Series([None, None, None], dtype="str"))
    assert themes.theme_truth(comments, sentiment_only, codes).isna().all().all()   # missing: not labelled for themes
    with pytest.raises(TextError, match="not in the taxonomy"):
        themes.theme_truth(comments, labels.assign(themes=["invoice", "billing", ""]), codes)


# 'zorg' is an invoice word the keywords do not know; the hotline texts use the keyword 'hotline'
FILL = ["my account", "on monday", "for the flat", "this month", "at home", "again", "for my mother", "since june",
        "in the office", "twice"]
TEXTS = pd.Series([f"the zorgs were wrong {f}" for f in FILL] + [f"{f} a zorg came" for f in FILL]
                  + [f"the hotline kept me {f}" for f in FILL] + [f"nothing special {f}" for f in FILL])
LABELS = pd.DataFrame({"response_id": [f"r{i}" for i in range(40)],
                       "themes": ["invoice"] * 20 + ["hotline_waiting"] * 10 + [""] * 10})


@pytest.fixture(scope="module")
def learned(tax):
    comments = pd.DataFrame({"response_id": LABELS["response_id"], "comment": TEXTS})
    truth = themes.theme_truth(comments, LABELS, list(tax.themes()))
    lang = pd.Series("en", index=TEXTS.index)
    keywords = text.tag_themes(TEXTS, tax, languages=lang)
    return themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=30, min_positive=5), keywords, truth


def test_theme_model_replaces_the_keywords_only_where_it_is_better(learned, tax):
    found, keywords, truth = learned
    q = found["quality"]
    assert found["labelled"] == 40
    assert q.loc["invoice", ["support", "keywords_f1"]].tolist() == [20, 0.0]     # keywords never find 'zorg'
    assert q.loc["invoice", "model_f1"] > 0.9 and q.loc["invoice", "method"] == "model"
    assert q.loc["hotline_waiting", "keywords_f1"] == 1.0 and q.loc["hotline_waiting", "method"] == "keywords"
    assert q.loc["price", "method"] == "keywords" and np.isnan(q.loc["price", "keywords_f1"])
    assert found["tags"]["invoice"].tolist() == [True] * 20 + [False] * 20
    assert found["tags"]["hotline_waiting"].equals(keywords["hotline_waiting"].astype("boolean"))
    assert found["reason"] == "the model beats the keywords on 1 of 2 themes with 5+ mentions"
    words = themes.describe_theme_model(found, tax)
    assert words.startswith("40 distinct German or English comments carry theme labels")
    assert "The trained model tags Invoice (held-out F1 1.00 against 0.00 for the keywords)" in words
    table = themes.theme_quality_table(found, tax)
    assert table["theme"].tolist() == ["Invoice", "Hotline waiting time"] and table["used"].tolist() == ["trained model", "keywords"]
    assert table["keywords: F1"].tolist() == ["0.00", "1.00"] and table.loc[1, "model: F1"] != "nan"
    assert themes.theme_quality_table(found, tax, lang="de")["verwendet"].tolist() == ["trainiertes Modell", "Stichwörter"]
    assert "Das trainierte Modell vergibt" in themes.describe_theme_model(found, tax, lang="de")


def test_too_few_labelled_texts_keep_the_keywords(learned, tax):
    _, keywords, truth = learned
    lang = pd.Series("en", index=TEXTS.index)
    found = themes.learn_themes(TEXTS, lang, truth, keywords, min_labelled=41)
    assert found["reason"] == "40 labelled texts, fewer than the 41 a theme model needs"
    assert found["quality"]["method"].eq("keywords").all() and found["tags"].equals(keywords)
    assert themes.describe_theme_model(found).endswith("The keyword lists tag every theme.")
    unlabelled = themes.learn_themes(TEXTS, lang, truth.iloc[:0].reindex(truth.index), keywords)
    assert unlabelled["labelled"] == 0 and unlabelled["quality"]["support"].eq(0).all()
    assert themes.theme_quality_table(unlabelled, tax).empty


SIZES, PARTS = ["small", "large", "tight", "loose", "petite"], ["sleeves", "waist", "hips", "shoulders"]
FIT = [f"the {s} size fit at the {p}" for s in SIZES for p in PARTS] + [f"size runs {s} around the {p}" for s in SIZES for p in PARTS]
DELIVERY = [f"Anna Lange: parcel courier delivery came {d} via {c}" for d in ["monday", "tuesday", "friday", "late", "early"]
            for c in ["dhl", "post", "ups", "hermes"]]


def test_topics_find_what_no_theme_covers_with_scrubbed_quotes(tax, stopwords, lexicon):
    texts = pd.Series(FIT + DELIVERY + ["Die Rechnung"])
    lang = pd.Series(["en"] * 60 + ["de"], index=texts.index)
    tags = text.tag_themes(texts, tax, languages=lang)
    out = themes.discover_topics(texts, lang, stopwords, lexicon, tags=tags, taxonomy=tax, topics=2, min_texts=20,
                                 names=pd.Series(["Anna Lange"]))
    assert out.columns.tolist() == ["language", "topic", "terms", "comments", "share", "theme", "theme_share", "untagged", "quote"]
    assert out["language"].tolist() == ["en", "en"] and out["topic"].tolist() == [1, 2]      # German: too few texts
    assert out["comments"].tolist() == [40, 20] and out["share"].round(2).tolist() == [66.67, 33.33]
    fit, delivery = out.iloc[0], out.iloc[1]
    assert {"fit", "hips", "waist"} <= set(fit["terms"].split(", ")) and fit["untagged"] == 100.0 and fit["theme"] == ""
    assert {"courier", "parcel", "delivery"} <= set(delivery["terms"].split(", "))
    assert delivery["theme"] == "Delivery / provisioning" and delivery["theme_share"] == 100.0 and delivery["untagged"] == 0.0
    assert "[name]" in delivery["quote"] and "Anna" not in delivery["quote"]
    assert not out["terms"].str.contains("anna|lange").any()
    words = themes.describe_topics(out)
    assert words == ("In the English comments NMF finds 2 topics. Topics most of whose comments no theme covers, "
                     f"candidates for the taxonomy: *{fit['terms'].split(', ')[0]}* ({fit['terms']}: 67% of comments, "
                     "100% of them without a theme).")


def test_topics_on_thin_data(stopwords, lexicon):
    few = pd.Series(["the hotline", "a bill"])
    out = themes.discover_topics(few, pd.Series("en", index=few.index), stopwords, lexicon)
    assert out.empty and themes.describe_topics(out) == "Too few German or English comments to find topics in."
    with pytest.raises(Missing, match="fewer than 50 distinct"):
        themes.require_topics(out)
    untagged = themes.discover_topics(pd.Series(FIT), pd.Series("en", index=range(40)), stopwords, lexicon, topics=2,
                                      min_texts=20)
    assert untagged["untagged"].isna().all() and untagged["theme"].eq("").all()
    assert themes.describe_topics(untagged) == "In the English comments NMF finds 2 topics."


def test_coverage_sentence(tax):
    tags = pd.DataFrame({"invoice": pd.array([True, False, False, pd.NA], dtype="boolean"),
                         "price": pd.array([False, False, True, pd.NA], dtype="boolean")})
    assert themes.describe_coverage(tags) == "1 of 3 German and English comments (33.3%) mention no theme."
    assert themes.describe_coverage(tags.iloc[3:]) == "No German or English comment to tag with a theme."
