"""Themes of comments beyond the keyword lists: a trained multi-label theme model where enough
labelled texts exist, and theme discovery (NMF topics) that proposes themes the taxonomy lacks.

Keyword themes (`text.tag_themes`, config/taxonomy.yml) stay the transparent default. With a
labelled file (`labels`: response id + themes, e.g. 'invoice;hotline_waiting', blank = none),
`learn_themes` cross-validates one logistic regression per theme on TF-IDF of the labelled texts
(a seeded random sample of `MAX_TRAIN` of them when there are more) and uses it for a theme only
when its held-out F1 beats the keywords' on the same texts; the model then tags every comment,
`BATCH` distinct texts at a time, so its memory does not grow with the number of comments.
`discover_topics` factorises the TF-IDF matrix of each language's comments (NMF) into topics with
their top terms, how many comments they cover, which taxonomy theme they overlap and one example
quote (scrubbed with the names and customer-number pattern the caller passes).

    truth = themes.theme_truth(comments, labels, list(tax.themes()))
    found = themes.learn_themes(comments["comment"], language, truth, tags)   # tags = text.tag_themes(...)
    topics = themes.discover_topics(comments["comment"], language, stopwords, lexicon, tags=tags, **scrub)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import KFold

from . import locale, sentiment, text
from .config import Taxonomy
from .privacy import CUSTOMER_NUMBER, PLACEHOLDERS, scrub_pii
from .schema import RESPONSE_ID, require
from .text import LANGUAGES, TextError

MIN_LABELLED = 300        # distinct labelled texts before a theme model is tried (keywords won below ~170)
MIN_POSITIVE = 10         # labelled texts a theme needs before it gets a model
TOPICS = 8
MAX_TEXTS = 20_000        # comments per language the topics are fitted on (random sample)
MAX_TRAIN = 50_000        # distinct labelled texts the theme model is cross-validated and fitted on (random sample)
BATCH = 20_000            # distinct texts the fitted theme model vectorises at once (one sparse matrix each)
_TERM = re.compile(r"(?u)\b[^\W\d_]{3,}(?:['-][^\W\d_]+)*")   # words of 3+ letters, with ' and - inside


# --- labelled themes -------------------------------------------------------------------------------
def theme_truth(comments: pd.DataFrame, labels: pd.DataFrame | None, codes: Sequence[str], *,
                col_id: str = RESPONSE_ID) -> pd.DataFrame:
    """One nullable boolean column per theme code for the comments (index of `comments`): the
    labelled themes of `labels` (response id + `themes`, codes separated by ; | or , ; blank = no
    theme; a missing value = not labelled for themes), NA for comments without a theme label. Raises
    on a code not in `codes`."""
    empty = pd.DataFrame({c: pd.Series(pd.NA, index=comments.index, dtype="boolean") for c in codes})
    if labels is None or "themes" not in labels.columns:
        return empty
    for frame, name in ((comments, "comments"), (labels, "labels")):
        if col_id not in frame.columns:
            raise TextError(f"theme_truth: {name} lack the column {col_id}")
    given = (labels[[col_id, "themes"]].astype({col_id: "str"}).loc[lambda d: d["themes"].notna()]
             .drop_duplicates(col_id, keep="last").set_index(col_id))
    parsed = text.parse_labels(given["themes"].fillna(""), list(codes))
    rows = comments[col_id].astype("str")
    known = rows.isin(parsed.index).to_numpy()
    out = parsed.reindex(rows.to_numpy()).set_axis(comments.index).astype("boolean")
    return out.where(pd.Series(known, index=comments.index), pd.NA)[list(codes)]


# --- trained theme model ---------------------------------------------------------------------------
def _classifier(n_texts: int, seed: int) -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=1.0 / (sentiment.C * max(n_texts, 1)), class_weight="balanced",
                         max_iter=sentiment.EPOCHS, tol=None, random_state=seed)


def _fit_predict(train_x: np.ndarray, train_y: pd.DataFrame, test_x: np.ndarray, themes: Sequence[str],
                 seed: int, *, batch: int = BATCH) -> pd.DataFrame:
    """Per theme, a binary classifier fitted on the train texts; predictions for the test texts,
    vectorised `batch` at a time (each text's prediction is its own)."""
    features = sentiment.model(len(train_x), seed=seed).named_steps["features"]
    a = features.fit_transform(train_x)
    fitted = {}
    for theme in themes:
        y = train_y[theme].to_numpy(dtype=bool)
        fitted[theme] = _classifier(len(y), seed).fit(a, y) if 0 < y.sum() < len(y) else bool(y.any())
    out = {theme: np.empty(len(test_x), dtype=bool) for theme in themes}
    for i in range(0, len(test_x), batch):
        b = features.transform(test_x[i:i + batch])
        for theme, model in fitted.items():
            out[theme][i:i + batch] = model if isinstance(model, bool) else model.predict(b).astype(bool)
    return pd.DataFrame(out, columns=list(themes))


def learn_themes(texts: pd.Series, languages: pd.Series, truth: pd.DataFrame, keywords: pd.DataFrame, *,
                 min_labelled: int = MIN_LABELLED, min_positive: int = MIN_POSITIVE, folds: int = 5,
                 max_train: int = MAX_TRAIN, seed: int = 0) -> dict:
    """Theme tags with a trained model where it beats the keywords.

    In: `texts`, `languages`, `truth` (`theme_truth`), `keywords` (`text.tag_themes`), same index.
    With at least `min_labelled` distinct labelled German or English texts, every theme with at
    least `min_positive` labelled mentions is cross-validated (k-fold over distinct texts, one
    class-balanced logistic regression per theme on word + character TF-IDF) beside the keywords on
    the same texts; the model replaces the keywords for the themes where its held-out F1 is higher.
    With more than `max_train` distinct labelled texts, both are measured and the model fitted on a
    random sample of `max_train` of them (seeded by `seed`; the reason says so); the fitted model
    tags the comments `BATCH` distinct texts at a time.

    Out: {"tags": like `keywords` (model predictions for those themes), "quality": DataFrame theme,
    support, keywords_precision, keywords_recall, keywords_f1, model_precision, model_recall,
    model_f1, method ('model' / 'keywords'), "labelled": n distinct labelled texts, "reason"}.
    """
    for frame, name in ((languages, "languages"), (truth, "truth"), (keywords, "keywords")):
        if not frame.index.equals(pd.Series(texts).index):
            raise TextError(f"learn_themes: {name} must have the same index as texts")
    codes = list(keywords.columns)
    texts = pd.Series(texts, dtype="str")
    known = pd.Series(languages, dtype="str").isin(LANGUAGES) & texts.str.strip().str.len().fillna(0).gt(0)
    labelled_rows = known & truth[codes].notna().all(axis=1)
    labelled = (pd.DataFrame({"folded": text.fold_series(texts.loc[labelled_rows])})
                .join(truth.loc[labelled_rows, codes].astype(bool)).drop_duplicates("folded"))
    result, of = {"tags": keywords.copy(), "labelled": len(labelled)}, len(labelled)
    if min_labelled <= len(labelled) and max_train < len(labelled):     # a bounded random sample, in the texts' order
        labelled = labelled.iloc[np.sort(np.random.default_rng(seed).choice(len(labelled), max_train, replace=False))]
    kw = keywords.loc[labelled.index, codes].fillna(False).astype(bool)
    quality = _quality(kw, labelled[codes], "keywords")
    if of < min_labelled:
        return {**result, "quality": quality.assign(method="keywords"),
                "reason": f"{of:,} labelled texts, fewer than the {min_labelled:,} a theme model needs"}
    support = labelled[codes].sum()
    trainable = [c for c in codes if support[c] >= min_positive and support[c] < len(labelled)]
    x = labelled["folded"].to_numpy()
    predicted = pd.DataFrame(False, index=labelled.index, columns=trainable)
    for train, test in KFold(min(folds, len(labelled)), shuffle=True, random_state=seed).split(x):
        predicted.iloc[test] = _fit_predict(x[train], labelled[trainable].iloc[train], x[test], trainable, seed).to_numpy()
    quality = quality.join(_quality(predicted, labelled[trainable], "model"), how="left")
    better = [c for c in trainable if quality.loc[c, "model_f1"] > quality.loc[c, "keywords_f1"]
              or (pd.isna(quality.loc[c, "keywords_f1"]) and quality.loc[c, "model_f1"] > 0)]
    quality = quality.assign(method=np.where(quality.index.isin(better), "model", "keywords"))
    if better:
        rows = known & keywords.notna().all(axis=1)
        codes_, distinct = sentiment._distinct(texts.loc[rows])
        fitted = _fit_predict(x, labelled[better], distinct.to_numpy(), better, seed)
        result["tags"] = keywords.astype("boolean").copy()
        result["tags"].loc[rows, better] = fitted.to_numpy()[codes_]
    reason = (f"the model beats the keywords on {len(better)} of {len(trainable)} themes with {min_positive}+ mentions"
              if trainable else f"no theme has {min_positive} labelled mentions")
    if len(labelled) < of:
        reason += f" (learned and measured on a random sample of {len(labelled):,} of the {of:,} labelled texts)"
    return {**result, "quality": quality, "reason": reason}


def _quality(predicted: pd.DataFrame, truth: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """support and <prefix>_precision / _recall / _f1 per theme (F1 = 2tp / (2tp + fp + fn): 0 when
    a labelled theme is never found, NaN when it is neither labelled nor predicted)."""
    table = text.theme_quality(predicted, truth).set_index("theme").drop(index="all")
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * table["tp"] / (2 * table["tp"] + table["fp"] + table["fn"]).where(lambda d: d > 0)
    out = table.assign(f1=f1)[["support", "precision", "recall", "f1"]].rename(
        columns=lambda c: c if c == "support" else f"{prefix}_{c}")
    return out if prefix == "keywords" else out.drop(columns="support")


def require_theme_labels(found: dict) -> None:
    """Raise Missing when no German or English comment carries theme labels (`learn_themes`)."""
    require(found["labelled"] > 0, "no German or English comment carries theme labels",
            enable="a labels table: response id + themes (codes of config/taxonomy.yml)")


def _words(lang: str) -> dict:
    """The theme tables' words in `lang` (`feedback.themes` of `cxlib/locales/feedback.<lang>.yml`):
    columns, method (keywords / trained model) and language."""
    return locale.texts(lang)["feedback"]["themes"]


def theme_quality_table(found: dict, taxonomy: Taxonomy, *, lang: str = "en") -> pd.DataFrame:
    """`learn_themes` quality as a report shows it, themes with labelled mentions: theme, labelled
    mentions, keywords precision / recall / F1, model precision / recall / F1 ('–' when no model
    was tried), used (keywords / model)."""
    q = found["quality"].loc[lambda d: d["support"].gt(0)].reset_index()
    cols = ["theme", "support", "keywords_precision", "keywords_recall", "keywords_f1", "model_precision",
            "model_recall", "model_f1", "method"]
    words = _words(lang)
    table = q.assign(theme=q["theme"].map(lambda c: taxonomy.label("themes", c, lang))).reindex(columns=cols)
    return locale.display_table(table, lang, kinds={c: "score" for c in cols[2:-1]}, labels=words["columns"],
                                codes={"method": words["method"]})


def describe_theme_model(found: dict, taxonomy: Taxonomy | None = None, *, lang: str = "en") -> str:
    """One or two sentences: how many labelled texts, which method tags which themes and why
    (theme labels from `taxonomy` when given)."""
    q, de = found["quality"], lang == "de"
    name = (lambda c: taxonomy.label("themes", c, lang)) if taxonomy is not None else str  # noqa: E731
    used = q.index[q["method"].eq("model")].tolist()
    labelled = locale.format_number(found["labelled"], lang)
    head = (f"{labelled} verschiedene deutsche oder englische Kommentare tragen Themen-Labels ({found['reason']})."
            if de else f"{labelled} distinct German or English comments carry theme labels: {found['reason']}.")
    if not used:
        return head + (" Die Stichwortlisten vergeben jedes Thema." if de else " The keyword lists tag every theme.")
    f1 = lambda c, m: locale.format_number(q.loc[c, f"{m}_f1"], lang, decimals=2)  # noqa: E731
    items = ", ".join((f"{name(c)} (F1 auf zurückgehaltenen Texten {f1(c, 'model')} gegenüber {f1(c, 'keywords')} der "
                       "Stichwörter)") if de else
                      f"{name(c)} (held-out F1 {f1(c, 'model')} against {f1(c, 'keywords')} for the keywords)"
                      for c in used)
    return head + (f" Das trainierte Modell vergibt {items}; die Stichwortlisten die übrigen Themen." if de else
                   f" The trained model tags {items}; the keyword lists tag the other themes.")


# --- theme discovery --------------------------------------------------------------------------------
def discover_topics(texts: pd.Series, languages: pd.Series, stopwords: dict, lexicon: dict | None = None, *,
                    tags: pd.DataFrame | None = None, taxonomy: Taxonomy | None = None, lang: str = "en",
                    topics: int = TOPICS, terms: int = 8, min_texts: int = 50, max_texts: int = MAX_TEXTS,
                    max_chars: int = 200, seed: int = 0, names: pd.Series | Sequence[str] | None = None,
                    keep=(), customer_number: str | None = CUSTOMER_NUMBER, names_pattern: str | None = None) -> pd.DataFrame:
    """Topics of the German and English comments, per language: NMF on TF-IDF of words and word
    pairs (stopwords, sentiment words and masked personal data left out), fitted on at most
    `max_texts` comments (random sample), each distinct text once. A comment belongs to its
    strongest topic. Languages with fewer than `min_texts` distinct texts are left out.

    Out, one row per topic, largest first within a language: language, topic (1, 2, ...), terms
    (top `terms`, comma-separated), comments (of the sample whose strongest topic it is), share (%
    of the language's sampled comments), theme (the taxonomy theme most of them carry, label when
    `taxonomy` is given, '' when none), theme_share (%), untagged (% with no theme at all; NaN
    without `tags`), quote (the comment most typical of the topic, scrubbed with `names`, `keep`,
    `customer_number`, or `names_pattern` built once from them, and cut to `max_chars`).
    """
    cols = ["language", "topic", "terms", "comments", "share", "theme", "theme_share", "untagged", "quote"]
    texts = pd.Series(texts, dtype="str")
    lang_ = pd.Series(languages, dtype="str")
    if not lang_.index.equals(texts.index):
        raise TextError("discover_topics: languages must have the same index as texts")
    stop = sorted(w for w in text.common_words(stopwords, lexicon) if _TERM.fullmatch(w))
    placeholders = "|".join(re.escape(p) for p in PLACEHOLDERS)
    parts = []
    for language in LANGUAGES:
        mine = texts.loc[lang_.eq(language) & texts.str.strip().str.len().fillna(0).gt(0)]
        if len(mine) > max_texts:
            mine = mine.sample(max_texts, random_state=seed)
        codes, uniques = pd.factorize(mine.fillna(""))
        if len(uniques) < min_texts:
            continue
        raw = pd.Series(uniques, dtype="str")
        scrubbed = scrub_pii(raw, names=names, keep=set(keep) | set(stop), customer_number=customer_number,
                             names_pattern=names_pattern)
        clean = text.fold_series(scrubbed.str.replace(placeholders, " ", regex=True))
        vectorizer = TfidfVectorizer(token_pattern=_TERM.pattern, stop_words=stop, ngram_range=(1, 2),
                                     min_df=2, max_df=0.5, sublinear_tf=True, lowercase=False, dtype=np.float32)
        try:
            matrix = vectorizer.fit_transform(clean.fillna(""))
        except ValueError:          # no term in two texts
            continue
        k = int(min(topics, matrix.shape[1], max(1, len(uniques) // 10)))
        nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400)
        weights = nmf.fit_transform(matrix)
        vocabulary = vectorizer.get_feature_names_out()
        best = np.where(weights.max(axis=1) > 0, weights.argmax(axis=1), -1)[codes]     # per sampled comment
        strength = weights.max(axis=1)[codes]
        frame = pd.DataFrame({"topic": best, "strength": strength, "quote": scrubbed.to_numpy()[codes]}, index=mine.index)
        rows = []
        for t in range(k):
            members = frame.loc[frame["topic"].eq(t)]
            top_terms = ", ".join(vocabulary[np.argsort(nmf.components_[t])[::-1][:terms]])
            theme, theme_share, untagged = "", math.nan, math.nan
            if tags is not None and len(members):
                hit = tags.reindex(members.index).fillna(False).astype(bool)
                counts = hit.sum()
                if counts.max() > 0:
                    theme = counts.idxmax()
                    theme = taxonomy.label("themes", theme, lang) if taxonomy is not None else theme
                    theme_share = 100 * counts.max() / len(members)
                else:
                    theme_share = 0.0
                untagged = 100 * float((~hit.any(axis=1)).mean())
            quote = members.sort_values("strength", ascending=False)["quote"].iloc[0] if len(members) else ""
            rows.append({"language": language, "topic": t, "terms": top_terms, "comments": len(members),
                         "share": 100 * len(members) / len(frame), "theme": theme, "theme_share": theme_share,
                         "untagged": untagged, "quote": _cut(quote, max_chars)})
        table = pd.DataFrame(rows).sort_values(["comments", "topic"], ascending=[False, True], kind="mergesort")
        parts.append(table.assign(topic=np.arange(1, len(table) + 1)))
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols].astype({"comments": "int64", "topic": "int64"})


def _cut(value: str, max_chars: int) -> str:
    value = re.sub(r"\s+", " ", str(value)).strip()
    return value if len(value) <= max_chars else value[: max_chars - 1].rsplit(" ", 1)[0] + " …"


def require_topics(topics: pd.DataFrame, *, min_texts: int = 50) -> None:
    """Raise Missing when no language had enough comments to find topics in."""
    require(len(topics), f"fewer than {min_texts} distinct German or English comments to find topics in",
            enable="feedback.comment")


def topics_table(topics: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """A `discover_topics` table as a report shows it: language, topic, top terms, comments, share,
    the theme most carry and its share, share without a theme, the most typical comment."""
    words = _words(lang)
    return locale.display_table(topics, lang, labels=words["columns"], codes={"language": words["language"]},
                                kinds={"topic": "count", "theme_share": "percent", "untagged": "percent"})


def describe_topics(topics: pd.DataFrame, *, top: int = 3, lang: str = "en") -> str:
    """Sentences on `discover_topics`: per language the number of topics and the largest ones that
    no theme covers (most of their comments untagged), with their terms and shares."""
    de = lang == "de"
    if topics.empty:
        return ("Zu wenige deutsche oder englische Kommentare, um Themen zu finden." if de else
                "Too few German or English comments to find topics in.")
    pct = lambda v: locale.format_percent(v, lang, decimals=0, share=False)  # noqa: E731
    parts = []
    for language, group in topics.groupby("language", sort=False):
        name = _words(lang)["language"].get(language, language)
        text_ = (f"In den Kommentaren auf {name} findet NMF {len(group)} Themen." if de else
                 f"In the {name} comments NMF finds {len(group)} topics.")
        if group["untagged"].notna().any():
            gaps = group.loc[group["untagged"].ge(50)].head(top)
            if len(gaps):
                items = "; ".join((f"*{r.terms.split(', ')[0]}* ({r.terms}: {pct(r.share)} der Kommentare, davon "
                                   f"{pct(r.untagged)} ohne Thema)") if de else
                                  (f"*{r.terms.split(', ')[0]}* ({r.terms}: {pct(r.share)} of comments, "
                                   f"{pct(r.untagged)} of them without a theme)") for r in gaps.itertuples())
                text_ += (f" Themen, deren Kommentare meist kein Taxonomie-Thema trägt, Kandidaten für die Taxonomie: "
                          f"{items}." if de else
                          f" Topics most of whose comments no theme covers, candidates for the taxonomy: {items}.")
            else:
                text_ += (" Jedes Thema wird größtenteils von einem Thema der Taxonomie abgedeckt." if de else
                          " Every topic is mostly covered by a theme of the taxonomy.")
        parts.append(text_)
    return " ".join(parts)


def describe_coverage(tags: pd.DataFrame, *, lang: str = "en") -> str:
    """One sentence: how many of the tagged (German and English) comments mention no theme."""
    tagged, de = tags.notna().all(axis=1), lang == "de"
    if not tagged.any():
        return ("Kein deutscher oder englischer Kommentar, dem ein Thema zugeordnet werden kann." if de else
                "No German or English comment to tag with a theme.")
    untagged = int((tagged & ~tags.fillna(False).astype(bool).any(axis=1)).sum())
    n, total = locale.format_number(untagged, lang), locale.format_number(int(tagged.sum()), lang)
    share = locale.format_percent(untagged / tagged.sum(), lang)
    return (f"{n} von {total} deutschen und englischen Kommentaren ({share}) nennen kein Thema." if de else
            f"{n} of {total} German and English comments ({share}) mention no theme.")
