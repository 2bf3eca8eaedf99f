"""Text analysis on real feedback nobody here wrote (../shared/data/real; skipped when absent):
English clothing reviews with stars, German course reviews with stars 0-5, German reader comments
labelled negative / neutral / positive.

That the learned sentiment beats the majority class and the word lists on held-out texts of each
set is asserted on the `cx run` of each in tests/test_real_data.py (stage 02 learns it there).
Here: the classes the stars and the hand labels give; that fitting the model from one pass over
the texts (`sentiment.TextFeatures`, what `learn` does) gives to the last bit what scikit-learn's
own vectorizers and classifier give on real reviews; NMF topics on the English reviews."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlib import config, sentiment, text

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
pytestmark = [pytest.mark.real_data,
              pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is absent")]


@pytest.fixture(scope="module")
def lexicon():
    return config.load_yaml(ROOT / "config" / "sentiment.yml")


def womens_reviews() -> pd.DataFrame:
    return (pd.read_csv(REAL / "womens_clothing_reviews_en" / "reviews.csv", index_col=0)
            .loc[lambda d: d["Review Text"].notna()]
            .rename(columns={"Review Text": "comment", "Rating": "csat"})
            .assign(response_id=lambda d: d.index.astype("str"), csat_max=5.0, language="en"))


def course_reviews() -> pd.DataFrame:
    return (pd.read_csv(REAL / "de_course_reviews_bestande" / "bestande_reviews_de.csv")
            .rename(columns={"_id": "response_id", "review": "comment", "score": "csat"})
            .assign(csat_max=5.0, language="de"))


def reader_comments() -> tuple[pd.DataFrame, pd.DataFrame]:
    posts = pd.read_csv(REAL / "de_comments_omp" / "omp_sentiment_posts.csv")
    comments = posts.rename(columns={"ID_Post": "response_id", "text": "comment"}).assign(language="de")
    return comments[["response_id", "comment", "language"]], posts.rename(columns={"ID_Post": "response_id", "label": "sentiment"})


def test_english_reviews_with_stars_1_to_5(lexicon):
    classes = sentiment.training_classes(womens_reviews(), None, lexicon)
    assert classes.value_counts().to_dict() == {"positive": 17448, "neutral": 2823, "negative": 2370}   # 4-5 / 3 / 1-2


def test_german_course_reviews_with_stars_0_to_5(lexicon):
    classes = sentiment.training_classes(course_reviews(), None, lexicon)
    assert classes.value_counts().to_dict() == {"positive": 3331, "neutral": 2182, "negative": 1129}   # 4-5 / 2-3 / 0-1


def test_german_comments_labelled_by_hand(lexicon):
    comments, labels = reader_comments()
    classes = sentiment.training_classes(comments, labels, lexicon)
    assert classes.value_counts().to_dict() == {"neutral": 1865, "negative": 1691, "positive": 43}
    assert sentiment.label_source(comments, labels) == "labels"


def test_one_pass_over_the_texts_fits_what_scikit_learn_fits(lexicon, monkeypatch):
    """`TextFeatures` fitted on 1,600 reviews equals `model(1600).fit` on their texts: the same
    coefficients and, for 400 reviews in its pool and 400 outside, the same classes and scores;
    its pipeline labels raw texts the same. MAX_FEATURES is lowered so that the cut to the most
    frequent terms (and its ties) is exercised too."""
    monkeypatch.setattr(sentiment, "MAX_FEATURES", 3000)
    reviews = womens_reviews().iloc[:2600]
    folded = text.fold_series(reviews["comment"]).drop_duplicates()
    classes = sentiment.training_classes(reviews, None, lexicon).loc[folded.index].to_numpy()
    features = sentiment.TextFeatures(folded.iloc[:2000])
    fitted = features.fit(np.arange(1600), classes[:1600])
    reference = sentiment.model(1600).fit(folded.iloc[:1600].to_numpy(), classes[:1600])
    assert len(reference.named_steps["features"].transformer_list[0][1].vocabulary_) == 3000
    assert np.array_equal(fitted.pipeline.named_steps["classifier"].coef_, reference.named_steps["classifier"].coef_)
    held_out = folded.iloc[1600:]                                  # 400 texts in the pool, the rest outside it
    assert (features.rows(held_out) >= 0).sum() == 400 and len(held_out) > 700
    label, score = features.predict(fitted, held_out)
    expected_label, expected_score = sentiment._predict(reference, held_out)
    assert np.array_equal(label, expected_label) and np.array_equal(score, expected_score)
    assert set(label) == {"negative", "neutral", "positive"}
    raw_label, raw_score = sentiment._predict(fitted.pipeline, held_out)   # the pipeline `apply` uses
    assert np.array_equal(raw_label, expected_label) and np.array_equal(raw_score, expected_score)


def test_topics_find_fit_and_size_in_english_reviews(lexicon):
    """The telecom taxonomy has no theme for fit and size; NMF topics surface it, untagged."""
    from cxlib import themes
    stopwords, tax = config.load_yaml(ROOT / "config" / "stopwords.yml"), config.load_taxonomy(ROOT / "config" / "taxonomy.yml")
    reviews = womens_reviews()
    tags = text.tag_themes(reviews["comment"], tax, languages=reviews["language"])
    topics = themes.discover_topics(reviews["comment"], reviews["language"], stopwords, lexicon, tags=tags, taxonomy=tax)
    assert len(topics) == 8 and topics["language"].eq("en").all()
    sizing = topics.loc[topics["terms"].str.contains(r"\bsize\b") & topics["terms"].str.contains(r"\bsmall\b|\blarge\b")]
    assert len(sizing) >= 1 and sizing["share"].sum() > 10 and sizing["untagged"].gt(50).all()
    assert "candidates for the taxonomy" in themes.describe_topics(topics)
