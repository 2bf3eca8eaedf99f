"""Verbatims: language, themes, sentiment, quotes and uncovered terms for German and English
comments, offline (no model downloads: word lists from config files).

Inputs are a Series of comments (index kept in every output) and the parsed config:
`stopwords` (config/stopwords.yml), `lexicon` (config/sentiment.yml), `taxonomy`
(config/taxonomy.yml, section `themes`). Read them with `cxlib.config`.

    lang = text.detect_language(fb["comment"], stopwords)          # 'de' / 'en' / 'other' / NA
    tags = text.tag_themes(fb["comment"], taxonomy, languages=lang)  # one boolean column per theme
    sent = text.sentiment(fb["comment"], lang, lexicon)            # sentiment_score, sentiment

All matching is on folded text (lower case, umlauts folded: ä -> ae, ß -> ss, as
`config.fold`) and vectorised with regular expressions on Series or on one long table of
tokens; there is no loop over comments. The token tables are built for `BATCH` distinct texts
at a time, so their memory stays the same however many comments there are (the results are
those of one pass over all texts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import locale, metrics
from .config import Taxonomy, fold
from .privacy import CUSTOMER_NUMBER, PLACEHOLDERS, name_pattern, scrub_pii
from .schema import COMMENT, CUSTOMER_ID, NPS, TEXT

LANGUAGES = ("de", "en")
OTHER = "other"
SENTIMENTS = ("negative", "neutral", "positive")
BATCH = 50_000            # texts tokenised at once (a token table of ~1M rows); results do not depend on it

_WORD = r"[^\W\d_]+(?:['-][^\W\d_]+)*"
_TOKEN = re.compile(rf"{_WORD}|\d+|[.!?;:,]+")
_PUNCT = re.compile(r"^[.!?;:,]+$")


class TextError(ValueError):
    """Unusable input to a text function: a missing column, a malformed lexicon or label."""


# --- normalising and scrubbing ------------------------------------------------------------
def fold_series(texts: pd.Series) -> pd.Series:
    """`config.fold` for a whole Series: NFC, lower case, umlauts folded, whitespace collapsed,
    typographic apostrophes made plain; NA stays NA. `BATCH` texts at a time.

        fold_series(pd.Series(["Geschäfts  Kunde"])) -> ["geschaefts kunde"]
    """
    texts = pd.Series(texts, dtype="str")
    if len(texts) > BATCH:
        return pd.concat([fold_series(texts.iloc[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
    out = texts.str.normalize("NFC").str.strip().str.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("’", "'"), ("‘", "'"), ("´", "'")):
        out = out.str.replace(src, dst, regex=False)
    return out.str.replace(r"\s+", " ", regex=True)


def common_words(stopwords: dict, lexicon: dict | None = None) -> frozenset[str]:
    """Folded words that are language, never names or terms: the stopwords of every language
    (config/stopwords.yml) and, with `lexicon` (config/sentiment.yml), its sentiment words,
    negators, intensifiers and contrast words.

        "lange" in common_words(stopwords, lexicon) -> True     # 'Lange' is also a surname
    """
    words = {w for values in (stopwords or {}).values() for w in _words(values)}
    for language in LANGUAGES:
        entry = (lexicon or {}).get(language) or {}
        words |= {w.rstrip("*") for values in (entry.get("scores") or {}).values() for w in _words(values)}
        words |= set(_words(entry.get("negators"))) | set(_words(entry.get("intensifiers")))
        words |= set(_words(entry.get("contrast")))
    return frozenset(words)


# --- tokens -------------------------------------------------------------------------------------
def tokenize(texts: pd.Series) -> pd.DataFrame:
    """One row per token of the folded texts: columns row (position of the text in `texts`), pos
    (0-based within the text), token; punctuation runs are tokens too (they end clauses)."""
    folded = fold_series(texts).reset_index(drop=True)
    found = folded.str.findall(_TOKEN).explode().dropna()
    if found.empty:
        return pd.DataFrame({"row": pd.Series(dtype="int64"), "pos": pd.Series(dtype="int64"),
                             "token": pd.Series(dtype="str")})
    frame = pd.DataFrame({"row": found.index.to_numpy(dtype="int64"), "token": found.astype("str").to_numpy()})
    return frame.assign(pos=frame.groupby("row").cumcount())[["row", "pos", "token"]].reset_index(drop=True)


def _words(values) -> list[str]:
    return [fold(v) for v in (values or []) if v is not None and str(v).strip()]


# --- language -------------------------------------------------------------------------------------
def _evidence(stopwords: dict, lexicon: dict | None) -> pd.DataFrame:
    """token, language, weight (1 / number of languages listing the token)."""
    rows = [(w, lang) for lang, words in stopwords.items() for w in _words(words)]
    for lang in LANGUAGES:
        scores = ((lexicon or {}).get(lang) or {}).get("scores") or {}
        rows += [(w, lang) for words in scores.values() for w in _words(words) if not w.endswith("*")]
    table = pd.DataFrame(rows, columns=["token", "language"]).drop_duplicates()
    return table.assign(weight=1.0 / table.groupby("token")["language"].transform("size"))


def detect_language(texts: pd.Series, stopwords: dict, *, lexicon: dict | None = None,
                    prior: str = "de", batch: int = BATCH) -> pd.Series:
    """'de', 'en' or 'other' per text, by the function words it uses (config/stopwords.yml, plus
    the words of the sentiment lexicon when given); NA for an empty text. Each word votes for the
    languages listing it (weight 1/number of such languages); the language with the most votes
    wins, a tie involving `prior` goes to `prior`. A text with no known word is German when it has
    an umlaut or ß (and no letter of Turkish, French or Spanish), else 'other'. Languages other than de/en are reported as 'other'.
    Each distinct text is read once, `batch` of them at a time.

        detect_language(pd.Series(["Die Hotline ist nie erreichbar", "Great service"]), sw) -> ['de', 'en']
    """
    if not isinstance(stopwords, dict) or not stopwords:
        raise TextError("detect_language: stopwords must be the parsed config/stopwords.yml (language -> words)")
    texts = pd.Series(texts, dtype="str")
    codes, uniques = pd.factorize(texts)
    if len(uniques) < len(texts):       # each distinct text once (comments repeat)
        found = detect_language(pd.Series(uniques, dtype="str"), stopwords, lexicon=lexicon, prior=prior,
                                batch=batch).to_numpy()
        return pd.Series(np.where(codes >= 0, found[codes], None), index=texts.index, name="language", dtype="str")
    if len(texts) > batch:              # each text's vote is its own: a batch's token table at a time
        return pd.concat([detect_language(texts.iloc[i:i + batch], stopwords, lexicon=lexicon, prior=prior, batch=batch)
                          for i in range(0, len(texts), batch)])
    raw = texts.reset_index(drop=True)
    tokens = tokenize(raw)
    votes = (tokens.merge(_evidence(stopwords, lexicon), on="token")
             .pivot_table(index="row", columns="language", values="weight", aggfunc="sum", fill_value=0.0))
    votes = votes.reindex(index=range(len(raw)), fill_value=0.0)
    langs = list(votes.columns)
    if prior in langs:   # the prior wins ties: tiny bonus
        votes = votes.assign(**{prior: votes[prior] + 1e-9})
    best = votes.idxmax(axis=1) if langs else pd.Series(OTHER, index=votes.index)
    top = votes.max(axis=1) if langs else pd.Series(0.0, index=votes.index)
    umlaut = (raw.str.contains(r"[äöüÄÖÜß]", regex=True).fillna(False).astype(bool)
              & ~raw.str.contains(r"[çşğıÇŞĞİéèêàâñ]", regex=True).fillna(False).astype(bool))
    out = (pd.Series(np.where(top > 1e-6, best.where(best.isin(LANGUAGES), OTHER),
                              np.where(umlaut, "de", OTHER)), dtype="str")
           .where(raw.str.strip().str.len().fillna(0) > 0))
    return pd.Series(out.to_numpy(), index=texts.index, name="language", dtype="str")


# --- themes ------------------------------------------------------------------------------------------
def _keyword_regex(words: Sequence[str]) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(set(words), key=len, reverse=True))


def theme_patterns(taxonomy: Taxonomy, language: str) -> dict[str, str]:
    """Regular expression per theme for one language: keywords as word prefixes on folded text,
    multi-word keywords with any whitespace between the words.

        theme_patterns(tax, "en")["invoice"] -> r"\\b(?:charged|billing|invoice|charge|bill|fee)"
    """
    out = {}
    for code, entry in taxonomy.themes().items():
        words = _words(((entry or {}).get("keywords") or {}).get(language))
        if words:
            out[code] = rf"\b(?:{_keyword_regex(words)})"
    return out


def theme_exclusions(taxonomy: Taxonomy, language: str) -> dict[str, str]:
    """Regular expression per theme of the words and phrases listed under `exclude` (word
    prefixes, like keywords): they are blanked out before the theme's keywords are matched, so
    'download' or 'size down' never count as the outage keyword 'down'."""
    out = {}
    for code, entry in taxonomy.themes().items():
        words = _words(((entry or {}).get("exclude") or {}).get(language))
        if words:
            out[code] = rf"\b(?:{_keyword_regex(words)})\w*"
    return out


def tag_themes(texts: pd.Series, taxonomy: Taxonomy, *, languages: pd.Series | str | None = None,
               batch: int = BATCH) -> pd.DataFrame:
    """One nullable boolean column per theme of the taxonomy (in taxonomy order): True when the
    text mentions a keyword of the theme in its language (after blanking the theme's `exclude`
    phrases). Rows whose language is not German or English, or whose text is empty, are NA in
    every column (counted, left untagged). `languages` = Series aligned with `texts`, one code for
    all, or None (both keyword lists).

        tag_themes(pd.Series(["Die Rechnung ist falsch"]), tax, languages="de")["invoice"] -> [True]
    """
    texts = pd.Series(texts, dtype="str")
    codes = list(taxonomy.themes())
    if languages is None:
        lang = pd.Series("both", index=texts.index)
    elif isinstance(languages, str):
        lang = pd.Series(languages, index=texts.index)
    else:
        if not languages.index.equals(texts.index):
            raise TextError("tag_themes: languages must have the same index as texts")
        lang = languages.astype("str")
    text_codes, (lang_codes, known) = pd.factorize(texts)[0].astype("int64"), pd.factorize(lang)
    key = pd.Series(text_codes * (len(known) + 1) + lang_codes + 1)         # one integer per (text, language)
    if key.duplicated().any():          # each distinct (text, language) once (comments repeat)
        first = ~key.duplicated()
        tagged = tag_themes(texts.loc[first.to_numpy()], taxonomy, languages=lang.loc[first.to_numpy()], batch=batch)
        return tagged.iloc[pd.factorize(key)[0]].set_axis(texts.index)
    if len(texts) > batch:              # each text is tagged on its own
        return pd.concat([tag_themes(texts.iloc[i:i + batch], taxonomy, languages=lang.iloc[i:i + batch], batch=batch)
                          for i in range(0, len(texts), batch)])
    folded = fold_series(texts)
    taggable = folded.str.strip().str.len().fillna(0).gt(0) & lang.isin([*LANGUAGES, "both"])
    patterns = {code: theme_patterns(taxonomy, code) for code in LANGUAGES}
    exclusions = {code: theme_exclusions(taxonomy, code) for code in LANGUAGES}
    result = {}
    for code in codes:
        hit = pd.Series(False, index=texts.index)
        for language in LANGUAGES:
            pattern = patterns[language].get(code)
            if not pattern:
                continue
            rows = lang.isin([language, "both"])
            subject = folded.where(rows)
            if code in exclusions[language]:
                subject = subject.str.replace(exclusions[language][code], " ", regex=True)
            hit = hit | (rows & subject.str.contains(pattern, regex=True).fillna(False).astype(bool))
        result[code] = hit.astype("boolean").where(taggable, pd.NA)
    return pd.DataFrame(result, index=texts.index, columns=codes)


def parse_labels(labels: pd.Series, codes: Sequence[str], *, sep: str = r"[;|,]") -> pd.DataFrame:
    """Theme labels written as text ('invoice;hotline_waiting', '' = no theme) -> one boolean column
    per code. Raises on a label that is not a code."""
    parts = (pd.Series(labels, dtype="str").fillna("").str.split(sep, regex=True).explode().str.strip())
    parts = parts.loc[parts.ne("")]
    unknown = sorted(set(parts) - set(codes))
    if unknown:
        first = parts.loc[parts.isin(unknown)].head(5)
        raise TextError(f"theme labels not in the taxonomy: {unknown}; first rows: {first.to_dict()}")
    hits = {code: labels.index.isin(parts.index[parts.eq(code).to_numpy()]) for code in codes}
    return pd.DataFrame(hits, index=labels.index, columns=list(codes)).rename_axis(index=labels.index.name, columns=None)


# --- sentiment -------------------------------------------------------------------------------------
def _lexicon_tables(lexicon: dict, language: str):
    entry = lexicon.get(language)
    if not isinstance(entry, dict) or "scores" not in entry:
        raise TextError(f"sentiment lexicon: no 'scores' for language '{language}'")
    pairs = [(fold(str(w)), float(score)) for score, words in entry["scores"].items() for w in (words or [])]
    exact = {w: s for w, s in pairs if not w.endswith("*")}
    stems = dict(sorted(((w[:-1], s) for w, s in pairs if w.endswith("*")), key=lambda p: -len(p[0])))
    intens = {fold(str(w)): float(f) for w, f in (entry.get("intensifiers") or {}).items()}
    return (exact, stems, set(_words(entry.get("negators"))), set(_words(entry.get("post_negators"))),
            intens, set(_words(entry.get("contrast"))))


def sentiment(texts: pd.Series, languages: pd.Series | str, lexicon: dict, *,
              threshold: float | None = None, batch: int = BATCH) -> pd.DataFrame:
    """Lexicon sentiment per text: columns sentiment_score (-1...+1) and sentiment
    ('negative' / 'neutral' / 'positive'); NA for empty texts and languages other than de/en.

    Each lexicon word scores -3...+3 (config/sentiment.yml); a negator up to `negation_window`
    words before it in the same clause (German: 'nicht' up to `post_negation_window` words after
    it) multiplies by `negation_factor`; an intensifier right before it multiplies by its factor
    (and scores nothing itself); words after 'but'/'aber' count `contrast_after`, before it
    `contrast_before`. score = sum / sqrt(sum^2 + 15); |score| <= threshold is neutral. `batch`
    texts are tokenised at a time (each text is scored on its own).

        sentiment(pd.Series(["Nicht gut, aber der Techniker war sehr freundlich"]), "de", lex)
    """
    settings = lexicon.get("settings") or {}
    threshold = settings.get("threshold", 0.25) if threshold is None else threshold
    neg_window = int(settings.get("negation_window", 3))
    post_window = int(settings.get("post_negation_window", 2))
    neg_factor = float(settings.get("negation_factor", -0.74))
    after, before = float(settings.get("contrast_after", 1.5)), float(settings.get("contrast_before", 0.5))
    texts = pd.Series(texts, dtype="str")
    lang = (pd.Series(languages, index=texts.index) if isinstance(languages, str) else pd.Series(languages))
    if not lang.index.equals(texts.index):
        raise TextError("sentiment: languages must have the same index as texts")
    if len(texts) > batch:
        return pd.concat([sentiment(texts.iloc[i:i + batch], lang.iloc[i:i + batch], lexicon, threshold=threshold,
                                    batch=batch) for i in range(0, len(texts), batch)])
    lang = lang.astype("str").reset_index(drop=True)
    tokens = tokenize(texts).assign(language=lambda d: lang.to_numpy()[d["row"].to_numpy()] if len(d) else "")
    tokens = tokens.loc[tokens["language"].isin(LANGUAGES)].reset_index(drop=True)
    score = pd.Series(0.0, index=tokens.index)
    negator, post_negator, contrast = (pd.Series(False, index=tokens.index) for _ in range(3))
    intens = pd.Series(1.0, index=tokens.index)
    for language in LANGUAGES:
        mine = tokens["language"].eq(language)
        if not mine.any():
            continue
        exact, stems, negs, posts, boosts, contrasts = _lexicon_tables(lexicon, language)
        words = tokens.loc[mine, "token"]
        found = words.map(exact)
        if stems:
            stem = words.str.extract(f"^({'|'.join(map(re.escape, stems))})", expand=False)
            found = found.fillna(stem.map(stems))
        score = score.mask(mine, found.fillna(0.0).reindex(score.index, fill_value=0.0))
        negator = negator | (mine & tokens["token"].isin(negs))
        post_negator = post_negator | (mine & tokens["token"].isin(posts))
        contrast = contrast | (mine & tokens["token"].isin(contrasts))
        intens = intens.mask(mine, tokens["token"].map(boosts).fillna(1.0))
    punct = tokens["token"].str.match(_PUNCT.pattern)
    clause = (punct | tokens["row"].ne(tokens["row"].shift())).cumsum()
    same = lambda k: clause.shift(k).eq(clause)  # noqa: E731  (token k places away is in the same clause)
    negated = pd.Series(False, index=tokens.index)
    for k in range(1, neg_window + 1):
        negated |= same(k) & negator.shift(k, fill_value=False)
    for k in range(1, post_window + 1):
        negated |= same(-k) & post_negator.shift(-k, fill_value=False)
    boost = intens.shift(1, fill_value=1.0).where(same(1), 1.0)
    feeds_next = intens.ne(1.0) & same(-1) & score.shift(-1, fill_value=0.0).ne(0)
    first_contrast = tokens["pos"].where(contrast).groupby(tokens["row"]).transform("min")
    weight = np.where(first_contrast.isna(), 1.0,
                      np.where(tokens["pos"] > first_contrast, after,
                               np.where(tokens["pos"] < first_contrast, before, 1.0)))
    value = score.where(~feeds_next, 0.0) * boost * np.where(negated, neg_factor, 1.0) * weight
    total = value.groupby(tokens["row"]).sum().reindex(range(len(texts)), fill_value=0.0)
    norm = total / np.sqrt(total**2 + 15.0)
    scored = lang.isin(LANGUAGES) & texts.reset_index(drop=True).str.strip().str.len().fillna(0).gt(0)
    label = np.select([norm > threshold, norm < -threshold], ["positive", "negative"], default="neutral")
    return pd.DataFrame({"sentiment_score": norm.where(scored).to_numpy(dtype=float),
                         "sentiment": pd.Series(label, dtype="str").where(scored).to_numpy()},
                        index=texts.index).astype({"sentiment": "str"})


# --- analysis of themes ------------------------------------------------------------------------------
def theme_gap(tags: pd.DataFrame, categories: pd.Series, taxonomy: Taxonomy, *, sentiments: pd.Series | None = None,
              min_n: int = 100, confidence: float = 0.95, alpha: float = 0.05, lang: str = "en") -> pd.DataFrame:
    """Which themes detractors mention more than promoters. Over the tagged comments (rows not NA):

    Output, one row per theme sorted by difference: theme, label, mentions, share (% of tagged
    comments), detractor_mentions, detractors (tagged comments of detractors), detractor_share (%),
    promoter_mentions, promoters, promoter_share (%), difference (percentage points, detractors -
    promoters), ci_low, ci_high (Newcombe), p_value, p_adjusted (Benjamini-Hochberg over themes),
    significant, small (either group below min_n: never significant), and negative (% of the
    theme's mentions with negative sentiment, when `sentiments` is given).
    `categories` = `metrics.nps_category` of the same rows.
    """
    if not categories.index.equals(tags.index):
        raise TextError("theme_gap: categories must have the same index as tags")
    tagged = tags.loc[tags.notna().all(axis=1)].astype(bool)
    cat = categories.reindex(tagged.index)
    det, pro = tagged.loc[cat.eq("detractor")], tagged.loc[cat.eq("promoter")]
    n_det, n_pro = len(det), len(pro)
    k_det, k_pro = det.sum().astype("int64"), pro.sum().astype("int64")
    diff = metrics.proportion_difference(k_det.to_numpy(), n_det, k_pro.to_numpy(), n_pro, confidence=confidence)
    small = (n_det < min_n) or (n_pro < min_n)
    p = diff["p_value"] * (np.nan if small else 1.0)
    bh = metrics.benjamini_hochberg(p, alpha=alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "theme": list(tagged.columns),
            "label": [taxonomy.label("themes", c, lang) for c in tagged.columns],
            "mentions": tagged.sum().astype("int64").to_numpy(),
            "share": 100 * tagged.sum().to_numpy() / len(tagged) if len(tagged) else np.nan,
            "detractor_mentions": k_det.to_numpy(), "detractors": n_det,
            "detractor_share": 100 * k_det.to_numpy() / n_det if n_det else np.nan,
            "promoter_mentions": k_pro.to_numpy(), "promoters": n_pro,
            "promoter_share": 100 * k_pro.to_numpy() / n_pro if n_pro else np.nan,
            "difference": diff["difference"], "ci_low": diff["ci_low"], "ci_high": diff["ci_high"],
            "p_value": p, "p_adjusted": bh["p_adjusted"], "significant": bh["significant"], "small": small,
        })
    if sentiments is not None:
        neg = pd.Series(sentiments).reindex(tagged.index).eq("negative")
        mentions = tagged.sum()
        out = out.assign(negative=(100 * tagged.mul(neg, axis=0).sum() / mentions.where(mentions > 0)).to_numpy())
    return out.sort_values(["difference", "mentions"], ascending=[False, False], kind="mergesort",
                           na_position="last").reset_index(drop=True)


def example_quotes(feedback: pd.DataFrame, tags: pd.DataFrame, *, per_theme: int = 3, max_chars: int = 240,
                   sort_by: str | None = NPS, ascending: bool = True, columns: Sequence[str] = (CUSTOMER_ID, NPS),
                   names: pd.Series | Sequence[str] | None = None, keep=(),
                   customer_number: str | None = CUSTOMER_NUMBER, col_comment: str = COMMENT,
                   names_pattern: str | None = None) -> pd.DataFrame:
    """Up to `per_theme` quotes per theme, PII masked (`scrub_pii` with the CRM `names`, `keep`
    and `customer_number`, or `names_pattern`: their `privacy.name_pattern` built once) and cut
    to `max_chars`: columns theme, quote, plus `columns` (the customer pseudonym and score by
    default). Quotes of the lowest scores first (sort_by / ascending), ties by position; themes
    in taxonomy order. Only the chosen rows are copied out of `feedback`.
    """
    wanted = [c for c in [col_comment, *columns, *([sort_by] if sort_by else [])] if c]
    missing = [c for c in wanted if c not in feedback.columns]
    if missing:
        raise TextError(f"example_quotes: feedback lacks column(s) {missing}")
    if not tags.index.equals(feedback.index):
        raise TextError("example_quotes: tags must have the same index as feedback")
    hits = tags.fillna(False).astype(bool).to_numpy()
    score = feedback[sort_by].reset_index(drop=True) if sort_by else None
    chosen, theme = [], []
    for j, code in enumerate(tags.columns):          # per theme: the positions of its comments, best first
        pos = np.flatnonzero(hits[:, j])
        if sort_by:
            pos = (pd.DataFrame({"score": score.iloc[pos].reset_index(drop=True), "_order": pos})
                   .sort_values(["score", "_order"], ascending=[ascending, True], kind="mergesort")["_order"].to_numpy())
        chosen.append(pos := pos[:per_theme])
        theme += [code] * len(pos)
    quotes = feedback.iloc[np.concatenate(chosen) if chosen else []].reset_index(drop=True).assign(theme=theme)
    text = (scrub_pii(quotes[col_comment], names=names, keep=keep, customer_number=customer_number,
                      names_pattern=names_pattern)
            .str.replace(r"\s+", " ", regex=True).str.strip())
    cut = text.str.len() > max_chars
    text = text.where(~cut, text.str.slice(0, max_chars - 1).str.rsplit(" ", n=1).str[0] + " …")
    return quotes.assign(quote=text)[["theme", "quote", *[c for c in columns if c]]].reset_index(drop=True)


def uncovered_terms(texts: pd.Series, tags: pd.DataFrame, taxonomy: Taxonomy, stopwords: dict, *,
                    languages: pd.Series, lexicon: dict | None = None, top: int = 15, min_comments: int = 3,
                    min_length: int = 3, names: pd.Series | Sequence[str] | None = None,
                    customer_number: str | None = CUSTOMER_NUMBER, names_pattern: str | None = None,
                    batch: int = BATCH) -> pd.DataFrame:
    """Frequent words and word pairs that no theme keyword covers, per language: candidates for new
    taxonomy keywords. Stopwords (all languages), sentiment words, negators and intensifiers are
    never terms. Counted once per comment. The texts are scrubbed first (`scrub_pii` with the CRM
    `names` and `customer_number`, or `names_pattern` built once from them; common words kept), so
    no name, address or number becomes a term, and a masked piece ends a word pair. Each distinct
    comment (text, language, with or without a theme) is read once and counted as often as it
    occurs, `batch` of them at a time.

    Output: language, term, comments (number of comments using it), share (% of that language's
    tagged comments), untagged (of those, comments with no theme at all); top `top` per language.
    """
    stop = common_words(stopwords, lexicon)
    if names_pattern is None and names is not None:
        names_pattern = name_pattern(names, keep=stop) or ""          # built once for every batch
    lang = pd.Series(languages, dtype="str").reset_index(drop=True)
    theme_free = ~tags.fillna(False).astype(bool).any(axis=1).reset_index(drop=True)
    tagged_rows = tags.notna().all(axis=1).reset_index(drop=True)
    per_lang = lang.loc[tagged_rows].value_counts()
    codes, uniques = pd.factorize(pd.Series(texts, dtype="str"))        # integer keys: no string object per comment
    read = pd.DataFrame({"text": codes, "language": lang, "untagged": theme_free})
    distinct = (read.loc[read["language"].isin(LANGUAGES).to_numpy() & (codes >= 0)]
                .groupby(["text", "language", "untagged"], sort=False).size().rename("weight").reset_index())
    covers = {language: "|".join(f"(?:{p})" for p in theme_patterns(taxonomy, language).values()) for language in LANGUAGES}
    counts = pd.DataFrame({"language": pd.Series(dtype="str"), "term": pd.Series(dtype="str"),
                           "comments": pd.Series(dtype="int64"), "untagged": pd.Series(dtype="int64")})
    for i in range(0, len(distinct), batch):           # running totals: memory of the vocabulary, not of the texts
        part = _term_counts(distinct.iloc[i:i + batch], uniques, stop, covers, min_length=min_length,
                            names_pattern=names_pattern, customer_number=customer_number)
        counts = pd.concat([counts, part]).groupby(["language", "term"], as_index=False)[["comments", "untagged"]].sum()
    counts = counts.loc[lambda d: d["comments"] >= min_comments]
    counts = counts.assign(share=100 * counts["comments"] / counts["language"].map(per_lang).astype(float))
    return (counts.sort_values(["language", "comments", "term"], ascending=[True, False, True], kind="mergesort")
            .groupby("language", sort=False).head(top)
            [["language", "term", "comments", "share", "untagged"]].reset_index(drop=True)
            .astype({"comments": "int64", "untagged": "int64"}))


def _term_counts(distinct: pd.DataFrame, uniques: pd.Index, stop: frozenset, covers: dict[str, str], *,
                 min_length: int, names_pattern: str | None, customer_number: str | None) -> pd.DataFrame:
    """language, term, comments, untagged of `uncovered_terms` for distinct comments (text: its
    position in `uniques`, language, untagged, weight: how many comments they stand for)."""
    placeholders = "|".join(re.escape(p) for p in PLACEHOLDERS)
    texts = pd.Series(uniques[distinct["text"].to_numpy()], dtype="str")
    texts = (scrub_pii(texts, keep=stop, customer_number=customer_number, names_pattern=names_pattern)
             .str.replace(placeholders, " ; ", regex=True))
    lang = distinct["language"].to_numpy()
    tokens = tokenize(texts).assign(language=lambda d: lang[d["row"].to_numpy()] if len(d) else "")
    keep = (tokens["token"].str.fullmatch(_WORD) & tokens["token"].str.len().ge(min_length)
            & ~tokens["token"].isin(stop))
    covered = pd.Series(False, index=tokens.index)
    for language, pattern in covers.items():
        if pattern:
            mine = tokens["language"].eq(language)
            covered |= mine & tokens["token"].str.match(pattern)
    words = tokens.assign(ok=keep & ~covered)
    nxt = words.shift(-1)
    pairs = words.loc[words["ok"] & nxt["ok"].eq(True) & nxt["row"].eq(words["row"]) & nxt["pos"].eq(words["pos"] + 1)]
    terms = pd.concat([
        words.loc[words["ok"], ["row", "language", "token"]].rename(columns={"token": "term"}),
        pairs[["row", "language"]].assign(term=pairs["token"] + " " + nxt.loc[pairs.index, "token"]),
    ]).drop_duplicates(["row", "term"])
    rows = terms["row"].to_numpy()
    weight = distinct["weight"].to_numpy(dtype="int64")[rows]
    return (terms.assign(comments=weight, untagged=weight * distinct["untagged"].to_numpy(dtype="int64")[rows])
            .groupby(["language", "term"], as_index=False)[["comments", "untagged"]].sum())


# --- measured quality ----------------------------------------------------------------------------------
def theme_quality(predicted: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of theme tagging against labels (both boolean frames, same index and
    theme columns; NA predictions count as not tagged). One row per theme plus 'all' (micro
    average): theme, support (labelled), predicted, tp, fp, fn, precision, recall, f1."""
    if not predicted.index.equals(truth.index):
        raise TextError("theme_quality: predicted and truth must have the same index")
    cols = [c for c in truth.columns]
    missing = [c for c in cols if c not in predicted.columns]
    if missing:
        raise TextError(f"theme_quality: predictions lack theme column(s) {missing}")
    pred = predicted[cols].fillna(False).astype(bool)
    true = truth[cols].fillna(False).astype(bool)
    tp, fp, fn = (pred & true).sum(), (pred & ~true).sum(), (~pred & true).sum()
    table = pd.DataFrame({"support": true.sum(), "predicted": pred.sum(), "tp": tp, "fp": fp, "fn": fn})
    table.loc["all"] = table.sum()
    table = table.astype("int64").rename_axis("theme").reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = table["tp"] / table["predicted"].where(table["predicted"] > 0)
        recall = table["tp"] / table["support"].where(table["support"] > 0)
    return table.assign(precision=precision, recall=recall,
                        f1=2 * precision * recall / (precision + recall))


def sentiment_quality(predicted: pd.Series, truth: pd.Series, languages: pd.Series) -> pd.DataFrame:
    """Accuracy of sentiment labels per language and overall ('all'): language, n (labelled and
    scored), accuracy, and the recall of each class (negative, neutral, positive)."""
    frame = pd.DataFrame({"pred": pd.Series(predicted, dtype="str"), "true": pd.Series(truth, dtype="str"),
                          "language": pd.Series(languages, dtype="str")}).dropna(subset=["pred", "true"])
    both = pd.concat([frame, frame.assign(language="all")])
    hit = both.assign(hit=both["pred"].eq(both["true"]))
    out = hit.groupby("language").agg(n=("hit", "size"), accuracy=("hit", "mean"))
    recall = (hit.groupby(["language", "true"])["hit"].mean().unstack("true")
              .reindex(columns=list(SENTIMENTS)).add_prefix("recall_"))
    return out.join(recall).reset_index().astype({"n": "int64"})


def language_quality(predicted: pd.Series, truth: pd.Series) -> pd.DataFrame:
    """Accuracy of language detection per true language and overall ('all'): language, n, accuracy."""
    frame = pd.DataFrame({"pred": pd.Series(predicted, dtype="str"), "true": pd.Series(truth, dtype="str")}).dropna()
    frame = frame.assign(hit=frame["pred"].eq(frame["true"]))
    both = pd.concat([frame.assign(language=frame["true"]), frame.assign(language="all")])
    return (both.groupby("language").agg(n=("hit", "size"), accuracy=("hit", "mean"))
            .reset_index().astype({"n": "int64"}))


# --- words for the report ------------------------------------------------------------------------------
def describe_themes(gap: pd.DataFrame, *, top: int = 3, lang: str = "en") -> str:
    """Markdown sentences on a `theme_gap` table: the themes detractors raise significantly more
    often than promoters, with shares and intervals, or why nothing is called significant."""
    de = lang == "de"
    if gap.empty or gap["mentions"].sum() == 0:
        return ("Kein deutscher oder englischer Kommentar nennt ein Thema der Taxonomie." if de else
                "No German or English comment mentions a theme of the taxonomy.")
    first = gap.iloc[0]
    detractors, promoters = (locale.format_number(int(first[c]), lang) for c in ("detractors", "promoters"))
    base = (f"{detractors} Kritiker und {promoters} Promotoren schrieben einen deutschen oder englischen Kommentar."
            if de else f"{detractors} detractors and {promoters} promoters left a German or English comment.")
    if bool(gap["small"].iloc[0]):
        return base + (" Mindestens eine Gruppe hat zu wenige Kommentare für einen verlässlichen Vergleich." if de else
                       " At least one group has too few comments to compare themes reliably.")
    sig = gap.loc[gap["significant"] & gap["difference"].gt(0)].head(top)
    if sig.empty:
        return base + (" Kein Thema nennen Kritiker signifikant häufiger als Promotoren." if de else
                       " No theme is mentioned significantly more often by detractors than by promoters.")
    pct = lambda v: locale.format_percent(v, lang, share=False)  # noqa: E731
    pts = lambda v, sign=False: locale.format_number(v, lang, decimals=1, sign=sign)  # noqa: E731
    items = "; ".join(
        (f"**{r.label}** ({pct(r.detractor_share)} der Kritiker gegenüber {pct(r.promoter_share)} der Promotoren, "
         f"{pts(r.difference, True)} Punkte, 95-%-Intervall {pts(r.ci_low)} bis {pts(r.ci_high)})") if de else
        (f"**{r.label}** ({pct(r.detractor_share)} of detractors vs {pct(r.promoter_share)} of promoters, "
         f"{pts(r.difference, True)} points, 95% interval {pts(r.ci_low)} to {pts(r.ci_high)})") for r in sig.itertuples())
    return base + (f" Diese Themen nennen Kritiker signifikant häufiger (Benjamini-Hochberg, 5 % FDR): {items}." if de else
                   f" Detractors mention these themes significantly more often (Benjamini-Hochberg, 5% FDR): {items}.")


def gap_table(gap: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """A `theme_gap` table as a report shows it: theme, mentions, shares of detractors and promoters,
    difference with its interval (points), adjusted p-value, significant, negative share."""
    cols = [c for c in ("label", "mentions", "detractor_share", "promoter_share", "difference", "ci_low", "ci_high",
                        "p_adjusted", "significant", "negative") if c in gap.columns]
    return locale.display_table(gap, lang, columns=cols, kinds=dict.fromkeys(["difference", "ci_low", "ci_high"], "points"),
                                labels={"label": locale.label("theme", lang)})


def gap_record(gap: pd.DataFrame) -> pd.DataFrame:
    """The `theme_gap` columns results.json keeps (`feedback.themes`)."""
    return gap.filter(items=["theme", "label", "mentions", "share", "detractors", "detractor_share", "promoters",
                             "promoter_share", "difference", "ci_low", "ci_high", "p_adjusted", "significant", "small",
                             "negative"])


def terms_table(terms: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """An `uncovered_terms` table as a report shows it: language, term, comments, share (%), without a theme."""
    words = locale.texts(lang)["feedback"]["text"]["terms"]
    return locale.display_table(terms, lang, codes={"language": words},
                                labels={"term": words["term"], "untagged": words["untagged"]})


def review_quality(reviews: pd.DataFrame, labels: pd.DataFrame, taxonomy: Taxonomy, stopwords: dict, lexicon: dict, *,
                   step: int = 1, col_comment: str = "comment", col_rating: str = "Rating", lang: str = "en") -> dict:
    """Text analysis measured on labelled reviews (see `sources.read_labelled_reviews`): themes
    against the hand labels (all and the `set == "holdout"` rows), sentiment against the star
    rating (1-2 negative, 3 neutral, 4-5 positive) and language on every `step`-th review.

    Out: {"themes", "themes_held_out"} (theme_quality), "sentiment" (sentiment_quality),
    "summary" (measure, reviews, value: the headline figures) and "shares" (precision, recall,
    held-out precision / recall, accuracy, always-positive share, recall per sentiment, English share).
    """
    tags = tag_themes(reviews.loc[labels.index, col_comment], taxonomy, languages="en")
    truth = parse_labels(labels["themes"], list(taxonomy.themes()))
    held_out = labels.index[labels["set"] == "holdout"]
    scored = reviews.iloc[::step]
    languages = detect_language(scored[col_comment], stopwords, lexicon=lexicon)
    stars = pd.cut(scored[col_rating], [0, 2, 3, 5], labels=list(SENTIMENTS)).astype("str")
    themes, held = theme_quality(tags, truth), theme_quality(tags.loc[held_out], truth.loc[held_out])
    sent = sentiment_quality(sentiment(scored[col_comment], languages, lexicon)["sentiment"], stars, languages)
    every, held_all = themes.set_index("theme").loc["all"], held.set_index("theme").loc["all"]
    en = sent.set_index("language").loc["en"]
    english = int(languages.eq("en").sum())
    shares = {"precision": every["precision"], "recall": every["recall"], "held_out_precision": held_all["precision"],
              "held_out_recall": held_all["recall"], "accuracy": en["accuracy"],
              "always_positive": float(stars.eq("positive").mean()), "english": english / len(scored),
              **{f"recall_{s}": en[f"recall_{s}"] for s in SENTIMENTS}}
    num = lambda v: locale.format_number(v, lang, decimals=2)  # noqa: E731
    summary = pd.DataFrame({
        "measure": locale.texts(lang)["feedback"]["text"]["review_measures"],
        "reviews": [len(labels), len(held_out), int(en["n"]), len(stars), int(en["n"]), len(scored)],
        "value": [f"{num(every['precision'])} / {num(every['recall'])}", f"{num(held_all['precision'])} / {num(held_all['recall'])}",
                  num(en["accuracy"]), num(shares["always_positive"]), " / ".join(num(en["recall_" + s]) for s in SENTIMENTS),
                  f"{locale.format_number(english, lang)} ({locale.format_percent(shares['english'], lang)})"]})
    return {"themes": themes, "themes_held_out": held, "sentiment": sent, "summary": summary, "shares": shares}


def describe_review_quality(quality: dict, *, lang: str = "en") -> str:
    """Two sentences on `review_quality`: theme precision and recall (all, held out) and what
    the sentiment agreement with the stars means."""
    q = {k: locale.format_percent(v, lang, decimals=0) for k, v in quality["shares"].items()}
    if lang == "de":
        return (f"Auf den echten Bewertungen sind {q['precision']} der Themen, die die Stichwörter finden, richtig, und sie "
                f"finden {q['recall']} der Themen, die ein Mensch markiert hat ({q['held_out_precision']} / "
                f"{q['held_out_recall']} auf den zurückgehaltenen Bewertungen, die ehrliche Zahl für neuen Text). Die "
                f"Stimmung stimmt bei {q['accuracy']} der Bewertungen mit den Sternen überein, findet aber nur "
                f"{q['recall_negative']} der 1–2-Sterne- und {q['recall_neutral']} der 3-Sterne-Bewertungen: Stimmungsanteile "
                "sind ein Hinweis, am besten zum Vergleich von Gruppen.")
    return (f"On the real reviews, {q['precision']} of the themes the keywords find are right and they find "
            f"{q['recall']} of the themes a person marked ({q['held_out_precision']} / {q['held_out_recall']} on "
            f"the held-out reviews, the honest figure for new text). Sentiment agrees with the stars for {q['accuracy']} "
            f"of reviews, but finds only {q['recall_negative']} of the 1–2-star ones and {q['recall_neutral']} of "
            "the 3-star ones: read sentiment shares as indicative, best for comparing groups.")


def review_theme_table(quality: dict, lang: str = "en") -> pd.DataFrame:
    """Theme quality on the labelled reviews, themes labelled or predicted, as a report shows it."""
    table = quality["themes"].loc[lambda d: d["support"].gt(0) | d["predicted"].gt(0)]
    return locale.display_table(table, lang, kinds={c: "score" for c in ("precision", "recall", "f1")})
