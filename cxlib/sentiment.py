"""Learned sentiment of comments: trained at run time on the company's own scored comments (or on
a labelled file), per language, with the word lists of config/sentiment.yml as the fallback.

A comment's class comes from the score its author gave (`score_classes`: NPS 0-6 negative, 7-8
neutral, 9-10 positive; CSAT or stars: the bottom `csat_points` points of the answer's scale
negative, the top `csat_points` positive, the rest neutral) or from a labelled file
(`training_classes`). `learn` trains per language a TF-IDF model (word 1-2-grams + character
3-5-grams within words) with a class-balanced logistic regression fitted by stochastic gradient
descent, measures it on held-out comments (k-fold cross-validation over distinct texts) beside the
majority baseline and the word lists, and labels every German or English comment, scored or not.
With fewer than `min_labelled` labelled texts in a language, or when the model does not beat the
word lists on held-out texts, that language keeps the word lists (`text.sentiment`). Comments in
other languages are counted, never scored.

    classes = sentiment.training_classes(comments, labels)          # negative / neutral / positive / NA
    learned = sentiment.learn(comments["comment"], language, classes, lexicon)
    learned["sentiment"]                     # per comment: sentiment, sentiment_score, method
    sentiment.quality_table(learned)         # held-out accuracy, macro-F1, recall beside the baselines
    sentiment.describe_quality(learned)      # which method ran, why, and how good it is

Nothing is downloaded: the model is fitted on the data at hand. Texts are de-duplicated before
they are vectorised (sparse matrices), so a million comments cost what their distinct texts cost,
and each is analysed into n-grams once (`TextFeatures`), however many folds and fits use it. The
memory is bounded, not proportional to the comments: the model is cross-validated on a stratified
random sample of at most `MAX_EVAL` labelled texts and fitted on one of at most `MAX_TRAIN` (both
seeded; `learned["samples"]` and the reason say when a sample was drawn), and it labels the
comments 20,000 distinct texts at a time; the word lists read `text.BATCH` texts at a time.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_union

from . import text
from .schema import CSAT, CSAT_MAX, CSAT_MIN, NPS, RESPONSE_ID, require
from .text import LANGUAGES, OTHER, SENTIMENTS, TextError

# Defaults; config/sentiment.yml `learned:` overrides them, keyword arguments override both.
RULE = {"nps_negative": 6, "nps_positive": 9, "csat_points": 2}
MIN_LABELLED = 300        # distinct labelled texts before a model is tried (smallest measured crossover; see config/sentiment.yml)
MAX_TRAIN = 50_000        # distinct labelled texts per language the final model is fitted on (stratified sample)
MAX_EVAL = 10_000         # distinct labelled texts per language the cross-validation uses (stratified sample)
FOLDS = 5
C = 1.0                   # inverse L2 penalty of the logistic regression (as scikit-learn's LogisticRegression C)
EPOCHS = 20
METHODS = {"learned": "learned model", "word lists": "word lists", "majority": "always the most frequent class"}
LANGUAGE_LABELS = {"de": "German", "en": "English", OTHER: "other languages"}
ALIASES = {"neg": "negative", "neu": "neutral", "pos": "positive", "negativ": "negative", "positiv": "positive"}


def settings(lexicon: dict | None = None, **overrides) -> dict:
    """The learned-sentiment settings: module defaults < `learned:` of config/sentiment.yml < overrides.

        settings(lexicon, min_labelled=500)["min_labelled"] -> 500
    """
    defaults = {**RULE, "min_labelled": MIN_LABELLED, "max_train": MAX_TRAIN, "max_eval": MAX_EVAL,
                "folds": FOLDS, "C": C, "epochs": EPOCHS}
    given = (lexicon or {}).get("learned") or {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TextError(f"config/sentiment.yml learned: unknown setting(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **given, **{k: v for k, v in overrides.items() if v is not None}}


# --- classes to learn from ----------------------------------------------------------------------
def score_classes(feedback: pd.DataFrame, lexicon: dict | None = None, *, nps_negative: int | None = None,
                  nps_positive: int | None = None, csat_points: int | None = None) -> pd.Series:
    """'negative' / 'neutral' / 'positive' per answer from its score, NA without one. NPS when
    answered: <= nps_negative (6) negative, >= nps_positive (9) positive, between neutral. Else
    CSAT (stars) on the answer's scale: top = `csat_max` (missing: 5), bottom = `csat_min` when
    mapped, else 0 when some answer on that scale is below 1, else 1; the bottom `csat_points` (2)
    points negative, the top ones positive, the rest neutral (one point each end on a scale
    shorter than five points).

        score_classes(pd.DataFrame({"nps": [3, 8, None], "csat": [None, None, 5]})) -> [negative, neutral, positive]
    """
    rule = settings(lexicon, nps_negative=nps_negative, nps_positive=nps_positive, csat_points=csat_points)
    index = feedback.index
    nan = pd.Series(np.nan, index=index, dtype="float64")
    nps = pd.to_numeric(feedback.get(NPS, nan), errors="coerce").astype("float64")
    csat = pd.to_numeric(feedback.get(CSAT, nan), errors="coerce").astype("float64")
    top = pd.to_numeric(feedback.get(CSAT_MAX, nan), errors="coerce").astype("float64").fillna(5.0)
    observed_low = csat.groupby(top).transform("min")
    low = (pd.to_numeric(feedback.get(CSAT_MIN, nan), errors="coerce").astype("float64")
           .fillna(pd.Series(np.where(observed_low < 1, 0.0, 1.0), index=index)))
    points = np.maximum(1, np.minimum(int(rule["csat_points"]), (top - low) // 2))
    from_nps = np.select([nps <= rule["nps_negative"], nps >= rule["nps_positive"]], ["negative", "positive"], "neutral")
    from_csat = np.select([csat <= low + points - 1, csat >= top - points + 1], ["negative", "positive"], "neutral")
    out = pd.Series(np.where(nps.notna(), from_nps, np.where(csat.notna(), from_csat, None)), index=index, dtype="str")
    return out.rename("sentiment_class")


def training_classes(comments: pd.DataFrame, labels: pd.DataFrame | None = None, lexicon: dict | None = None, *,
                     col_id: str = RESPONSE_ID, **rule) -> pd.Series:
    """Class per comment to learn from: the `sentiment` of a labelled file (`labels`: response id
    + sentiment, case-insensitive negative / neutral / positive, blank = no label) where it has
    one, else the score's class (`score_classes`). Raises on an unknown label.

        training_classes(comments, pd.DataFrame({"response_id": ["r1"], "sentiment": ["Negative"]}))
    """
    scored = score_classes(comments, lexicon, **rule)
    if labels is None or "sentiment" not in labels.columns:
        return scored
    for frame, name in ((comments, "comments"), (labels, "labels")):
        if col_id not in frame.columns:
            raise TextError(f"training_classes: {name} lack the column {col_id}")
    given = (labels[[col_id, "sentiment"]].astype({col_id: "str"}).drop_duplicates(col_id, keep="last")
             .assign(sentiment=lambda d: d["sentiment"].astype("str").str.strip().str.lower().replace(ALIASES))
             .loc[lambda d: d["sentiment"].notna() & d["sentiment"].ne("")])
    unknown = given.loc[~given["sentiment"].isin(SENTIMENTS)]
    if len(unknown):
        raise TextError(f"sentiment labels must be negative, neutral or positive; found {sorted(unknown['sentiment'].unique())[:5]} "
                        f"(first {col_id}s: {unknown[col_id].head(3).tolist()})")
    mapped = comments[col_id].astype("str").map(given.set_index(col_id)["sentiment"])
    return pd.Series(mapped.to_numpy(), index=comments.index, dtype="str").fillna(scored).rename(scored.name)


def label_source(comments: pd.DataFrame, labels: pd.DataFrame | None = None, *, col_id: str = RESPONSE_ID) -> str:
    """'labels' when a labelled file with sentiments covers some comment, else 'scores'."""
    if labels is None or "sentiment" not in labels.columns or col_id not in comments.columns:
        return "scores"
    has = labels.loc[labels["sentiment"].astype("str").str.strip().ne("") & labels["sentiment"].notna(), col_id]
    return "labels" if comments[col_id].astype("str").isin(has.astype("str")).any() else "scores"


# --- the model ------------------------------------------------------------------------------------
ANALYZERS = ({"ngram_range": (1, 2)}, {"analyzer": "char_wb", "ngram_range": (3, 5)})   # word 1-2-grams, character 3-5-grams within words
MAX_FEATURES = 300_000    # terms kept per analyzer (the most frequent)


def _min_df(n_texts: int) -> int:
    return 2 if n_texts >= 1000 else 1


def _vectorizer(analyzer: dict, min_df: int, vocabulary: Sequence[str] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(**analyzer, min_df=min_df, max_features=MAX_FEATURES, sublinear_tf=True, lowercase=False,
                           dtype=np.float32, vocabulary=vocabulary)


def _classifier(n_texts: int, *, C: float = C, epochs: int = EPOCHS, seed: int = 0) -> SGDClassifier:  # noqa: N803
    return SGDClassifier(loss="log_loss", penalty="l2", alpha=1.0 / (C * max(n_texts, 1)), class_weight="balanced",
                         max_iter=epochs, tol=None, random_state=seed)


def model(n_texts: int, *, C: float = C, epochs: int = EPOCHS, seed: int = 0) -> Pipeline:  # noqa: N803
    """Unfitted pipeline on folded texts: TF-IDF of word 1-2-grams and character 3-5-grams within
    words (sublinear tf; terms of one text only dropped from 1,000 texts on), then a class-balanced
    logistic regression (log loss, L2 penalty 1 / (C n), the objective of LogisticRegression(C))
    fitted by stochastic gradient descent in `epochs` passes over the `n_texts` training texts.
    `TextFeatures.fit` fits the same model without analysing a text twice."""
    features = make_union(*(_vectorizer(a, _min_df(n_texts)) for a in ANALYZERS))
    return Pipeline([("features", features), ("classifier", _classifier(n_texts, C=C, epochs=epochs, seed=seed))])


class Fitted(NamedTuple):
    """A `model` fitted by `TextFeatures.fit`: the pipeline (for any text) and, per analyzer, its
    TF-IDF transformer and the column of each term of the pool (-1: not a feature)."""

    pipeline: Pipeline
    columns: list


class TextFeatures:
    """The n-grams of distinct folded texts (the pool), each text analysed once: the analysis is
    most of the cost of fitting `model`. `fit` fits `model` on texts of the pool and `predict`
    labels texts with it; both give, to the last bit, what `model` fitted and applied on the texts
    themselves gives (same terms, idf, matrix, classifier and predictions), so the folds of a
    cross-validation and the final fit share one pass over the texts.

        features = TextFeatures(folded)                                  # folded texts (kept once each)
        fitted = features.fit(features.rows(folded[:800]), classes[:800])
        label, score = features.predict(fitted, folded[800:])            # texts outside the pool too
    """

    def __init__(self, folded: Sequence[str]):
        self.texts = pd.unique(pd.Series(folded, dtype="str").fillna("").to_numpy(dtype=object))
        self.position = pd.Series(np.arange(len(self.texts)), index=self.texts)
        self.counts = [_emitted(self.texts, analyzer) for analyzer in ANALYZERS]

    def rows(self, folded: Sequence[str]) -> np.ndarray:
        """Positions of the `folded` texts in the pool; -1 for a text not in it."""
        keys = pd.Series(folded, dtype="str").fillna("").to_numpy(dtype=object)
        return self.position.reindex(keys).fillna(-1).to_numpy(dtype=np.int64)

    def fit(self, rows: Sequence[int], classes: Sequence[str], *, C: float = C, epochs: int = EPOCHS,  # noqa: N803
            seed: int = 0) -> Fitted:
        """`model(len(rows))` fitted on the pool's texts at `rows` (in that order) and their `classes`."""
        rows = np.asarray(rows, dtype=np.int64)
        min_df = _min_df(len(rows))
        parts = [_fit_counts(counts, terms, rank, rows, min_df) for counts, terms, rank in self.counts]
        vectorizers = []
        for analyzer, (_, transformer, kept, _) in zip(ANALYZERS, parts):
            vectorizer = _vectorizer(analyzer, min_df, vocabulary=list(kept))
            vectorizer.idf_ = transformer.idf_
            vectorizers.append(vectorizer)
        matrix = sparse.hstack([part[0] for part in parts]).tocsr()        # as FeatureUnion stacks them
        classifier = _classifier(len(rows), C=C, epochs=epochs, seed=seed).fit(matrix, np.asarray(classes))
        return Fitted(Pipeline([("features", make_union(*vectorizers)), ("classifier", classifier)]),
                      [(transformer, columns) for _, transformer, _, columns in parts])

    def predict(self, fitted: Fitted, folded: pd.Series, *, chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
        """(class, P(positive) - P(negative)) per folded text: from the pool's counts for its texts,
        through the pipeline for others (as `_predict`), `chunk` texts at a time."""
        rows, classifier = self.rows(folded), fitted.pipeline.named_steps["classifier"]
        inside, label, score = rows >= 0, np.empty(len(rows), dtype=object), np.zeros(len(rows))
        mine = rows[inside]
        proba = [classifier.predict_proba(sparse.hstack([
            transformer.transform(_select(counts, mine[i:i + chunk], columns), copy=False)
            for (counts, _, _), (transformer, columns) in zip(self.counts, fitted.columns)]).tocsr())
            for i in range(0, len(mine), chunk)]
        label[inside], score[inside] = _classes_and_scores(classifier.classes_, proba, len(mine))
        if not inside.all():
            label[~inside], score[~inside] = _predict(fitted.pipeline, pd.Series(folded, dtype="str")[~inside], chunk=chunk)
        return label, score


def _emitted(texts: np.ndarray, analyzer: dict) -> tuple[sparse.csr_array, np.ndarray, np.ndarray]:
    """(counts, terms, alphabetical rank of each term) of `texts`: per text its distinct terms in
    the order the analyzer first emits them (as a vectorizer meets them), with their counts."""
    analyze = CountVectorizer(lowercase=False, **analyzer).build_analyzer()
    vocabulary: dict[str, int] = {}
    indices, counts, indptr = array("q"), array("i"), array("q", [0])
    for doc in texts:
        seen: dict[int, int] = {}
        for term in analyze(doc):
            j = vocabulary.setdefault(term, len(vocabulary))
            seen[j] = seen.get(j, 0) + 1
        indices.extend(seen)
        counts.extend(seen.values())
        indptr.append(len(indices))
    terms = np.array(list(vocabulary), dtype=object)
    rank = np.empty(len(terms), dtype=np.int64)
    rank[np.argsort(terms, kind="stable")] = np.arange(len(terms))
    matrix = sparse.csr_array((np.frombuffer(counts, dtype=np.intc).astype(np.float32), np.frombuffer(indices, dtype=np.int64),
                               np.frombuffer(indptr, dtype=np.int64)), shape=(len(texts), len(terms)))
    return matrix, terms, rank


def _fit_counts(counts: sparse.csr_array, terms: np.ndarray, rank: np.ndarray, rows: np.ndarray, min_df: int) -> tuple:
    """What `_vectorizer(analyzer, min_df)` fitted on the texts at `rows` gives, from their counts:
    (TF-IDF matrix, fitted TfidfTransformer, kept terms, column of each pool term or -1). The steps
    and the order of the entries within a row are scikit-learn's CountVectorizer's (terms numbered
    as first met, renumbered alphabetically, the rare ones dropped, the MAX_FEATURES most frequent
    kept), so the matrix is the same to the last bit."""
    sub = counts[rows]
    met = pd.unique(sub.indices)                            # pool term ids in the order the texts meet them
    number = np.full(len(terms), -1, dtype=np.int64)
    number[met] = np.arange(len(met))
    matrix = sparse.csr_array((sub.data.copy(), number[sub.indices].astype(np.int32), sub.indptr.astype(np.int32)),
                              shape=(len(rows), len(met)))
    matrix.sort_indices()
    by_name = np.argsort(rank[met])                         # numbers in the alphabetical order of their terms
    alphabetical = np.empty(len(met), dtype=np.int32)
    alphabetical[by_name] = np.arange(len(met))
    matrix.indices = alphabetical.take(matrix.indices, mode="clip")
    mask = np.bincount(matrix.indices, minlength=len(met)) >= min_df
    if mask.sum() > MAX_FEATURES:
        totals = np.asarray(matrix.sum(axis=0)).ravel()
        chosen = np.zeros(len(met), dtype=bool)
        chosen[np.where(mask)[0][(-totals[mask]).argsort()[:MAX_FEATURES]]] = True
        mask = chosen
    kept = np.where(mask)[0]
    if not len(kept):
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    matrix = sparse.csr_matrix(matrix[:, kept])
    transformer = TfidfTransformer(sublinear_tf=True).fit(matrix)
    columns = np.full(len(terms), -1, dtype=np.int64)
    columns[met[by_name[kept]]] = np.arange(len(kept))
    return transformer.transform(matrix, copy=False), transformer, terms[met[by_name[kept]]], columns


def _select(counts: sparse.csr_array, rows: np.ndarray, columns: np.ndarray) -> sparse.csr_matrix:
    """The counts of the texts at `rows` in the fitted terms' columns (`columns`: pool term ->
    column or -1), as a fitted vectorizer counts them."""
    sub = counts[rows]
    column = columns[sub.indices]
    keep = column >= 0
    per_row = np.bincount(np.repeat(np.arange(len(rows)), np.diff(sub.indptr))[keep], minlength=len(rows))
    matrix = sparse.csr_matrix((sub.data[keep], column[keep].astype(np.int32), np.r_[0, np.cumsum(per_row)].astype(np.int32)),
                               shape=(len(rows), int(columns.max()) + 1))
    matrix.sort_indices()
    return matrix


def _distinct(texts: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes per row, folded distinct texts): vectorise each distinct text once."""
    codes, uniques = pd.factorize(pd.Series(texts, dtype="str").fillna(""))
    return codes, text.fold_series(pd.Series(uniques, dtype="str")).fillna("")


def _sample(frame: pd.DataFrame, by: str, limit: int, seed: int) -> pd.DataFrame:
    """At most `limit` rows, stratified by `by` (every class keeps its share)."""
    if len(frame) <= limit:
        return frame
    return frame.groupby(by, group_keys=False).sample(frac=limit / len(frame), random_state=seed)


def _predict(fitted: Pipeline, folded: pd.Series, *, chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """(class, P(positive) - P(negative)) per folded text, `chunk` texts at a time (bounded memory:
    a chunk's sparse character n-grams take ~0.2 GB at 20,000 reviews, ~1 GB at 100,000)."""
    values = folded.to_numpy()
    proba = [fitted.predict_proba(values[i:i + chunk]) for i in range(0, len(values), chunk)]
    return _classes_and_scores(fitted.classes_, proba, len(values))


def _classes_and_scores(classes: np.ndarray, proba: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(most probable class, P(positive) - P(negative)) from chunks of predicted probabilities."""
    proba = np.vstack(proba or [np.zeros((0, len(classes)))])
    names = list(classes)
    column = lambda c: proba[:, names.index(c)] if c in names else np.zeros(n)  # noqa: E731
    return np.asarray(classes)[proba.argmax(axis=1)], column("positive") - column("negative")


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict:
    """{n, accuracy, macro_f1, recall_negative, recall_neutral, recall_positive} of `predicted`
    against `truth` (rows with both); macro-F1 over the classes present in `truth`, recall NaN for
    an absent class.

        scores(["negative", "positive"], ["negative", "negative"]) -> accuracy 0.5, macro_f1 0.333...
    """
    frame = pd.DataFrame({"t": pd.Series(truth, dtype="str").to_numpy(), "p": pd.Series(predicted, dtype="str").to_numpy()}).dropna()
    hit = frame["t"].eq(frame["p"])
    out = {"n": len(frame), "accuracy": float(hit.mean()) if len(frame) else math.nan}
    f1s = []
    for cls in SENTIMENTS:
        support, chosen = frame["t"].eq(cls), frame["p"].eq(cls)
        tp = int((support & chosen).sum())
        out[f"recall_{cls}"] = tp / support.sum() if support.any() else math.nan
        if support.any():
            f1s.append(2 * tp / (support.sum() + chosen.sum()))
    return {"n": out["n"], "accuracy": out["accuracy"], "macro_f1": float(np.mean(f1s)) if f1s else math.nan,
            **{f"recall_{c}": out[f"recall_{c}"] for c in SENTIMENTS}}


def _majority(truth: pd.Series) -> str:
    counts = truth.value_counts()
    return counts.index[counts.eq(counts.max())].sort_values()[0]


def cross_validate(folded: pd.Series, classes: pd.Series, *, folds: int = FOLDS, seed: int = 0,
                   features: TextFeatures | None = None, **fit) -> tuple[pd.Series, pd.Series]:
    """Out-of-fold predictions on distinct labelled texts: (model, majority) per text, each text
    predicted by the model fitted on the other folds (stratified k-fold, k = `folds` or the size
    of the smallest class, at least 2); classes with one text only are left out. `features`: a
    `TextFeatures` pool holding the texts (default: one made of them)."""
    counts = classes.value_counts()
    keep = classes.isin(counts.index[counts >= 2])
    folded, classes = folded.loc[keep], classes.loc[keep]
    k = int(min(folds, counts.loc[counts >= 2].min()))
    learned = pd.Series(pd.NA, index=classes.index, dtype="str")
    majority = learned.copy()
    features = TextFeatures(folded) if features is None else features
    rows, y = features.rows(folded), classes.to_numpy()
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, y):
        fitted = features.fit(rows[train], y[train], seed=seed, **fit)
        learned.iloc[test] = features.predict(fitted, folded.iloc[test])[0]
        majority.iloc[test] = _majority(classes.iloc[train])
    return learned, majority


# --- per language ---------------------------------------------------------------------------------
def learn(texts: pd.Series, languages: pd.Series, classes: pd.Series, lexicon: dict, *, min_labelled: int | None = None,
          max_train: int | None = None, max_eval: int | None = None, folds: int | None = None, seed: int = 0) -> dict:
    """Sentiment of every comment, learned per language where enough labelled texts exist.

    In: `texts` (comments), `languages` ('de' / 'en' / 'other' / NA, same index), `classes` (class
    to learn from or NA, same index: `training_classes`), `lexicon` (config/sentiment.yml; its
    `learned:` block overrides the defaults, keyword arguments override it).
    Per language: the distinct labelled texts are cross-validated (`max_eval` at most, stratified)
    beside the majority class and the word lists; the model is fitted on `max_train` at most and
    kept when it has `min_labelled` labelled texts and a higher held-out macro-F1 than the word
    lists, else the word lists label that language.

    Out: {"sentiment": DataFrame (index of `texts`): sentiment, sentiment_score (-1...1), method
    ('learned' / 'word lists'; NA for empty texts and other languages), "languages": DataFrame
    language, comments, labelled, method, reason, trusted; "quality": DataFrame language, method,
    n, accuracy, macro_f1, recall_negative, recall_neutral, recall_positive; "models": {language:
    fitted pipeline}; "samples": {language: {trained, labelled}} (texts the model was fitted on, of
    the distinct labelled ones); "settings"}.
    """
    opts = settings(lexicon, min_labelled=min_labelled, max_train=max_train, max_eval=max_eval, folds=folds)
    fit = {"C": float(opts["C"]), "epochs": int(opts["epochs"])}
    texts = pd.Series(texts, dtype="str")
    for other, name in ((languages, "languages"), (classes, "classes")):
        if not pd.Series(other).index.equals(texts.index):
            raise TextError(f"learn: {name} must have the same index as texts")
    lang = pd.Series(languages, dtype="str")
    present = texts.str.strip().str.len().fillna(0).gt(0)
    out = pd.DataFrame({"sentiment": pd.Series(pd.NA, index=texts.index, dtype="str"),
                        "sentiment_score": np.nan, "method": pd.Series(pd.NA, index=texts.index, dtype="str")})
    rows, quality, models, samples = [], [], {}, {}
    for language in LANGUAGES:
        mine = present & lang.eq(language)
        if not mine.any():
            continue
        labelled = (pd.DataFrame({"text": texts.loc[mine & classes.notna()], "cls": classes.loc[mine & classes.notna()]})
                    .drop_duplicates("text").assign(folded=lambda d: text.fold_series(d["text"]))
                    .drop_duplicates("folded").loc[lambda d: d["folded"].str.len().gt(0)])
        entry = {"language": language, "comments": int(mine.sum()), "labelled": len(labelled)}
        sample = _sample(labelled, "cls", int(opts["max_eval"]), seed)
        measured = {"word lists": (sample["cls"], _word_lists(sample["text"], language, lexicon)["sentiment"])}
        learned = fitted = None
        counts = sample["cls"].value_counts()
        if counts.ge(2).sum() < 2:      # a model needs two classes with two texts each
            reason = ("no comment carries a score or a label" if labelled.empty else
                      f"{len(labelled):,} labelled texts, not two classes with two texts each "
                      f"({', '.join(f'{c} {n:,}' for c, n in counts.items())})")
        elif len(labelled) < int(opts["min_labelled"]):
            reason = f"{len(labelled):,} labelled texts, fewer than the {int(opts['min_labelled']):,} a model needs"
            measured["majority"] = (sample["cls"], pd.Series(_majority(sample["cls"]), index=sample.index))
        else:           # the texts of the cross-validation and of the final fit, each analysed once
            train = _sample(labelled, "cls", int(opts["max_train"]), seed)
            features = TextFeatures(labelled.loc[labelled.index.isin(sample.index.union(train.index)), "folded"])
            learned, majority = cross_validate(sample["folded"], sample["cls"], folds=int(opts["folds"]), seed=seed,
                                               features=features, **fit)
            measured = {"learned": (sample["cls"], learned), **measured, "majority": (sample["cls"], majority)}
        table = _rows(language, measured)
        quality += table
        f1 = {r["method"]: r["macro_f1"] for r in table}
        if learned is not None and not f1["learned"] > f1["word lists"]:
            reason = (f"the model's held-out macro-F1 ({f1['learned']:.2f}) is not above the word lists' "
                      f"({f1['word lists']:.2f})")
        elif learned is not None:
            fitted = features.fit(features.rows(train["folded"]), train["cls"].to_numpy(), seed=seed, **fit)
            models[language] = fitted.pipeline
            samples[language] = {"trained": len(train), "labelled": len(labelled)}
            reason = (f"trained on {len(train):,} labelled texts" if len(train) == len(labelled) else
                      f"trained on a random sample of {len(train):,} of the {len(labelled):,} labelled texts")
        predict = partial(features.predict, fitted) if fitted is not None else None
        out.loc[mine] = _label(texts.loc[mine], language, lexicon, predict).to_numpy()
        rows.append({**entry, "method": "learned" if fitted is not None else "word lists", "reason": reason})
    quality = pd.DataFrame(quality, columns=["language", "method", "n", "accuracy", "macro_f1",
                                             *[f"recall_{c}" for c in SENTIMENTS]])
    languages_table = pd.DataFrame(rows, columns=["language", "comments", "labelled", "method", "reason"])
    trusted = [_beats(quality, r["language"], r["method"]) for r in rows]
    return {"sentiment": out.astype({"sentiment": "str", "sentiment_score": "float64", "method": "str"}),
            "languages": languages_table.assign(trusted=pd.Series(trusted, dtype="boolean")),
            "quality": quality.astype({"n": "int64"}), "models": models, "samples": samples, "settings": opts,
            "other": int((present & ~lang.isin(LANGUAGES)).sum())}


def _word_lists(texts: pd.Series, language: str, lexicon: dict) -> pd.DataFrame:
    """`text.sentiment` of texts in one language, each distinct text scored once."""
    codes, uniques = pd.factorize(pd.Series(texts, dtype="str").fillna(""))
    scored = text.sentiment(pd.Series(uniques, dtype="str"), language, lexicon)
    return pd.DataFrame({"sentiment": scored["sentiment"].to_numpy()[codes],
                         "sentiment_score": scored["sentiment_score"].to_numpy()[codes]}, index=texts.index)


def _label(texts: pd.Series, language: str, lexicon: dict, predict: Callable | None, *,
           batch: int = text.BATCH) -> pd.DataFrame:
    """sentiment, sentiment_score, method of non-empty texts in one language: a fitted model's
    when given (`predict`: folded texts -> (class, score), e.g. `partial(_predict, pipeline)`;
    each distinct text once, `batch` of them folded and predicted at a time), else the word lists'."""
    if predict is None:
        return _word_lists(texts, language, lexicon).assign(method="word lists")
    codes, uniques = pd.factorize(pd.Series(texts, dtype="str").fillna(""))
    parts = [predict(text.fold_series(pd.Series(uniques[i:i + batch], dtype="str")).fillna(""))   # a batch at a time
             for i in range(0, len(uniques), batch)] or [(np.empty(0, dtype=object), np.zeros(0))]
    label, score = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return pd.DataFrame({"sentiment": label[codes], "sentiment_score": score[codes], "method": "learned"}, index=texts.index)


def _rows(language: str, measured: dict) -> list[dict]:
    return [{"language": language, "method": m, **scores(t, p)} for m, (t, p) in measured.items() if len(t)]


def _beats(quality: pd.DataFrame, language: str, method: str):
    """True when `method` has a higher held-out macro-F1 than the majority class in `language`;
    NA when not measured."""
    mine = quality.loc[quality["language"].eq(language)].set_index("method")["macro_f1"]
    if method not in mine.index or "majority" not in mine.index:
        return pd.NA
    return bool(mine[method] > mine["majority"])


def apply(learned: dict, texts: pd.Series, languages: pd.Series, lexicon: dict) -> pd.DataFrame:
    """Label other texts (tickets, e-mails, complaint texts) with the method `learn` chose per
    language: sentiment, sentiment_score, method; NA for empty texts and other languages."""
    texts = pd.Series(texts, dtype="str")
    lang = pd.Series(languages, dtype="str")
    if not lang.index.equals(texts.index):
        raise TextError("apply: languages must have the same index as texts")
    present = texts.str.strip().str.len().fillna(0).gt(0)
    out = pd.DataFrame({"sentiment": pd.Series(pd.NA, index=texts.index, dtype="str"),
                        "sentiment_score": np.nan, "method": pd.Series(pd.NA, index=texts.index, dtype="str")})
    for language in LANGUAGES:
        mine = present & lang.eq(language)
        if mine.any():
            fitted = learned["models"].get(language)
            predict = partial(_predict, fitted) if fitted is not None else None
            out.loc[mine] = _label(texts.loc[mine], language, lexicon, predict).to_numpy()
    return out.astype({"sentiment": "str", "sentiment_score": "float64", "method": "str"})


# --- what the report may say ---------------------------------------------------------------------
def trusted(learned: dict) -> bool:
    """True when every German or English comment was labelled by a method that beats always
    answering the most frequent class in held-out macro-F1 (measured, per language); False when
    one language's method does not or could not be measured (no scored or labelled comments)."""
    table = learned["languages"]
    return bool(len(table)) and bool(table["trusted"].fillna(False).all())


def require_trusted(learned: dict) -> None:
    """Raise Missing unless `trusted`: sentiment shares are then not shown as findings."""
    table = learned["languages"]
    require(len(table), "no German or English comments", enable="feedback.comment in German or English")
    unmeasured = table.loc[table["trusted"].isna(), "language"].map(LANGUAGE_LABELS).tolist()
    require(not unmeasured, f"the sentiment of {' and '.join(unmeasured)} comments could not be checked against "
            "scores or labels, so its shares are not shown as findings",
            enable="feedback.nps or feedback.csat with the comments, or a labelled file (labels: response id + sentiment)")
    weak = table.loc[~table["trusted"].fillna(False).astype(bool), "language"].map(LANGUAGE_LABELS).tolist()
    require(not weak, f"the sentiment of {' and '.join(weak)} comments does not beat always answering the most frequent "
            "class on held-out comments, so its shares are not shown as findings",
            enable="more scored or labelled comments in that language")


def findings(learned: dict) -> pd.Series | None:
    """The comments' sentiment when it may be shown as a finding (`trusted`), else None (e.g. for
    `text.theme_gap(..., sentiments=findings(learned))`, which then leaves out the negative share)."""
    return learned["sentiment"]["sentiment"] if trusted(learned) else None


def quality_table(learned: dict) -> pd.DataFrame:
    """The held-out quality for readers: language, method (the one used marked 'used'), texts,
    accuracy, macro-F1, recall negative / neutral / positive (2 decimals; '–' when a class is
    absent)."""
    quality = learned["quality"]
    cols = ["language", "method", "used", "texts", "accuracy", "macro-F1", "recall negative", "recall neutral",
            "recall positive"]
    if quality.empty:
        return pd.DataFrame(columns=cols)
    used = quality["language"].map(learned["languages"].set_index("language")["method"])
    table = (quality.assign(used=np.where(quality["method"].eq(used), "used", ""),
                            language=quality["language"].map(LANGUAGE_LABELS), method=quality["method"].map(METHODS))
             .rename(columns={"n": "texts", "macro_f1": "macro-F1", **{f"recall_{c}": f"recall {c}" for c in SENTIMENTS}})
             .round(2)[cols])
    return table.astype("object").where(table.notna(), "–")


def describe_quality(learned: dict) -> str:
    """Markdown sentences per language: which method labelled the comments and why, its held-out
    accuracy, macro-F1 and recall of the negative ones beside the majority class and the word
    lists (with n), and that agreement with the score (or label) is what is measured."""
    table = learned["languages"]
    if table.empty:
        return "No German or English comment to label with a sentiment."
    opts = learned["settings"]
    quality = learned["quality"].set_index(["language", "method"])
    parts = []
    for row in table.itertuples():
        name = LANGUAGE_LABELS[row.language]
        used = "a model learned from the company's own comments" if row.method == "learned" else "the word lists"
        text_ = f"**{name}** ({row.comments:,} comments, {row.labelled:,} distinct with a score or label): {used} ({row.reason})."
        if (row.language, row.method) in quality.index:
            q = quality.loc[(row.language, row.method)]
            text_ += (f" On {int(q['n']):,} held-out texts it agrees with the score or label for {q['accuracy']:.0%} "
                      f"(macro-F1 {q['macro_f1']:.2f}" + (f", finds {q['recall_negative']:.0%} of the negative ones)"
                                                        if not math.isnan(q["recall_negative"]) else ")"))
            others = [f"{METHODS[m]} {quality.loc[(row.language, m), 'accuracy']:.0%} / {quality.loc[(row.language, m), 'macro_f1']:.2f}"
                      for m in ("majority", "word lists", "learned") if m != row.method and (row.language, m) in quality.index]
            if others:
                text_ += f"; for comparison (accuracy / macro-F1): {'; '.join(others)}."
            else:
                text_ += "."
            if not bool(row.trusted if row.trusted is not pd.NA else False):
                text_ += " It does **not** beat always answering the most frequent class: its shares are not findings."
        else:
            text_ += " Its quality cannot be measured: no comment in this language carries a score or a label."
        parts.append(text_)
    if learned.get("other"):
        parts.append(f"{learned['other']:,} comments in other languages are counted, not labelled.")
    parts.append(f"What is measured is agreement with the class of the score the customer gave ({describe_rule(opts)}) "
                 "or of a label, on texts the model did not see (cross-validated); a comment can be negative about "
                 "one thing and still come with a good score.")
    return " ".join(parts)


def describe_rule(opts: dict | None = None) -> str:
    """The score -> class rule in words."""
    rule = {**RULE, **(opts or {})}
    neg, pos, points = int(rule["nps_negative"]), int(rule["nps_positive"]), int(rule["csat_points"])
    return (f"NPS 0–{neg} negative, {neg + 1}–{pos - 1} neutral, {pos}–10 positive; CSAT or stars: the bottom {points} "
            f"points of the scale negative, the top {points} positive, the middle neutral")


def shares_by(sentiments: pd.Series, groups: pd.Series, *, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Share (%) of negative / neutral / positive comments per group (rows with a sentiment and a
    group; groups in `order` when given, absent ones left out) plus n.

        shares_by(learned["sentiment"]["sentiment"], metrics.nps_category(comments["nps"]))
    """
    frame = pd.DataFrame({"group": pd.Series(groups).to_numpy(), "sentiment": pd.Series(sentiments, dtype="str").to_numpy()}).dropna()
    share = (pd.crosstab(frame["group"], frame["sentiment"], normalize="index").mul(100)
             .reindex(columns=list(SENTIMENTS), fill_value=0.0))
    share = share.assign(n=frame["group"].value_counts().reindex(share.index).astype("int64"))
    if order is not None:
        share = share.reindex([g for g in order if g in share.index])
    return share.rename_axis(index="group", columns=None)


def shares_title(share: pd.DataFrame) -> str:
    """Title of the shares chart (`shares_by` on NPS categories) that states the finding: the
    negative share of detractors' comments and the positive share of promoters'."""
    parts = []
    if "detractor" in share.index:
        parts.append(f"{share.loc['detractor', 'negative']:.0f}% of detractors' comments are negative")
    if "promoter" in share.index:
        parts.append(f"{share.loc['promoter', 'positive']:.0f}% of promoters' positive")
    return ", ".join(parts) or "Sentiment of the comments by group"
