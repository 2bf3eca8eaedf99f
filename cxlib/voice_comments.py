"""The comments of stage 02_feedback (voice of the customer): their language, sentiment and themes,
example quotes, terms and topics no theme covers, and how well the text analysis measures them, as
tables and sentences in English or German (`lang`).

`voice.prepare` reads the comments once into the `Comments` part of its `Inputs` (language per
comment, `sentiment.learn`, `themes.learn_themes`); the functions here take it and raise
`schema.Missing` when the comments cannot support a section: no comments, none in German or
English, no comment from detractors or promoters, a sentiment that does not beat always
answering the most frequent class.

    voice_comments.language_table(inputs, "de")        # Sprache, Kommentare, gelesen für
    voice_comments.theme_gap(inputs, min_n=100)        # Missing("no comment from promoters to compare")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from . import locale, metrics, sentiment, text, themes
from .config import Taxonomy
from .schema import COMMENT, LANGUAGE, NPS, require

NO_KNOWN_LANGUAGE = "no German or English comments"
NO_KNOWN_LANGUAGE_ENABLE = "feedback.comment in German or English"
NPS_GROUPS = ("detractor", "passive", "promoter")


def _texts(lang: str) -> dict:
    """The comment tables' texts in `lang` (`feedback.comments` of `cxlib/locales/feedback.<lang>.yml`):
    columns (labels beyond the shared locale file), words (coded values: language, nps_group,
    sentiment, method, read), method_note, measured and of (the label quality table)."""
    return locale.texts(lang)["feedback"]["comments"]


# --- the prepared comments ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Comments:
    """The comments of the selection as `voice.prepare` reads them (its `Inputs` extend this)."""

    comments: pd.DataFrame          # answers with a comment
    language: pd.Series             # language per comment: de / en / other
    learned: dict                   # `sentiment.learn`
    theme_model: dict               # `themes.learn_themes`; its tags are the comments' themes
    taxonomy: Taxonomy
    stopwords: dict
    lexicon: dict
    scrub: dict                     # names_pattern (the CRM names') and customer_number pattern to mask in quotes and terms

    @property
    def tags(self) -> pd.DataFrame:
        return self.theme_model["tags"]

    @property
    def category(self) -> pd.Series:
        return metrics.nps_category(self.comments[NPS]) if NPS in self.comments.columns else \
            pd.Series(None, index=self.comments.index, dtype="object")


# --- language and sentiment ----------------------------------------------------------------------------
def require_comments(comments: pd.DataFrame) -> None:
    """Raise Missing when there is no comment to analyse."""
    require(len(comments), "no comments in the selection", enable="feedback.comment")


def require_known_language(languages: pd.Series, known: Sequence[str] = ("de", "en")) -> None:
    """Raise Missing unless some comment is in a language the text analysis reads (`known`)."""
    require(languages.isin(list(known)).any(), NO_KNOWN_LANGUAGE, enable=NO_KNOWN_LANGUAGE_ENABLE)


def require_scored_comments(categories: pd.Series, sentiments: pd.Series,
                            needed: Sequence[str] = ("detractor", "passive", "promoter")) -> None:
    """Raise Missing unless German or English comments (a sentiment) come from each NPS category
    in `needed` (`categories` from `metrics.nps_category`, aligned with `sentiments`)."""
    require(sentiments.notna().any(), NO_KNOWN_LANGUAGE, enable=NO_KNOWN_LANGUAGE_ENABLE)
    scored = categories.loc[sentiments.notna().to_numpy()]
    require(scored.notna().any(), "no German or English comment comes with an NPS answer",
            enable="feedback.nps with feedback.comment")
    absent = [c for c in needed if not scored.eq(c).any()]
    require(not absent, f"no comment from {' or '.join(a + 's' for a in absent)} to compare",
            enable="feedback.nps with feedback.comment")


def comments_record(inputs: Comments) -> dict:
    """results.json entry `comments`: {total, <language>: count}; raises Missing without comments."""
    require_comments(inputs.comments)
    return {"comments": {"total": len(inputs.comments), **inputs.language.value_counts().to_dict()}}


def language_table(inputs: Comments, lang: str = "en", *, col_language: str = LANGUAGE) -> pd.DataFrame:
    """Comments per language as a report shows them: language (German, English, or other with the
    mapped codes, e.g. 'other (fr)'), comments, read for (themes and sentiment, or counted only);
    most first."""
    require_comments(inputs.comments)
    found, languages, words = inputs.comments, inputs.language, _texts(lang)["words"]
    if col_language in found.columns:
        mapped = found[col_language].astype("str").str.strip().str.lower().replace("", None)
        codes = ", ".join(sorted(mapped.loc[languages.eq("other").to_numpy()].dropna().unique()))
    else:
        codes = ""
    other = words["language"]["other"] + (f" ({codes})" if codes else "")
    known = languages.isin(list(text.LANGUAGES))
    table = (pd.DataFrame({"language": languages.map({c: words["language"][c] for c in text.LANGUAGES}).fillna(other)
                           .to_numpy(), "read": known.map(words["read"]).to_numpy()})
             .value_counts(["language", "read"]).rename("comments").reset_index()
             .sort_values(["comments", "language"], ascending=[False, True], kind="mergesort").reset_index(drop=True))
    return locale.display_table(table, lang, columns=["language", "comments", "read"], labels=_texts(lang)["columns"])


def describe_languages(languages: pd.Series, *, lang: str = "en") -> str:
    """One sentence: how many comments the text analysis reads (German, English) and how many it
    only counts (other languages)."""
    read = int(languages.isin(list(text.LANGUAGES)).sum())
    other, total, de = len(languages) - read, _n(len(languages), lang), lang == "de"
    if not other:
        return (f"Alle {total} Kommentare sind deutsch oder englisch: in allen werden Themen und Stimmung gelesen." if de
                else f"All {total} comments are in German or English: themes and sentiment are read in all of them.")
    if not read:
        return (f"Keiner der {total} Kommentare ist deutsch oder englisch: sie werden gezählt, Themen und Stimmung aber "
                "nur in diesen zwei Sprachen gelesen." if de else f"None of the {total} comments is in German or "
                "English: they are counted, but themes and sentiment are read only in these two languages.")
    return (f"{_n(read, lang)} von {total} Kommentaren sind deutsch oder englisch und werden auf Themen und Stimmung "
            f"gelesen; {_n(other, lang)} in anderen Sprachen werden nur gezählt." if de else
            f"{_n(read, lang)} of {total} comments are in German or English and are read for themes and sentiment; "
            f"{_n(other, lang)} in other languages are counted only.")


def sentiment_table(inputs: Comments, lang: str = "en") -> pd.DataFrame:
    """Comments by NPS group (detractors, passives, promoters, no NPS answer, all) and sentiment
    (negative, neutral, positive, not scored = other language) as a report shows them; rows and
    columns without comments left out. Raises Missing unless the sentiment may be shown as a
    finding (`sentiment.require_trusted`)."""
    require_comments(inputs.comments)
    sentiment.require_trusted(inputs.learned)
    words = _texts(lang)["words"]
    group = pd.Series(inputs.category.to_numpy(), dtype="object").fillna("none")
    mood = pd.Series(inputs.learned["sentiment"]["sentiment"].to_numpy(), dtype="object").fillna("not_scored")
    rows = [g for g in (*NPS_GROUPS, "none") if group.eq(g).any()]
    cols = [m for m in (*text.SENTIMENTS, "not_scored") if mood.eq(m).any()]
    table = pd.crosstab(group, mood).reindex(index=rows, columns=cols, fill_value=0)
    table = table.assign(all=table.sum(axis=1))
    if len(table) > 1:
        table = pd.concat([table, table.sum().to_frame("all").T])
    table = (table.rename(columns={m: f"{m}_n" for m in text.SENTIMENTS}).rename_axis(index="nps_group", columns=None)
             .reset_index())
    return locale.display_table(table, lang, codes={"nps_group": words["nps_group"]}, labels=_texts(lang)["columns"],
                                kinds={c: "count" for c in table.columns if c != "nps_group"})


def describe_sentiment(inputs: Comments, *, lang: str = "en") -> str:
    """One sentence on the sentiment of the German and English comments and how it was read."""
    scored, de = inputs.learned["sentiment"]["sentiment"].dropna(), lang == "de"
    if scored.empty:
        return ("Kein Kommentar ist deutsch oder englisch, daher wird keiner bewertet." if de else
                "No comment is in German or English, so none is scored.")
    shares = scored.value_counts(normalize=True)
    words = _texts(lang)["words"]["sentiment"]
    parts = ", ".join(f"{locale.format_percent(shares.get(m, 0.0), lang, decimals=0)} {words[m]}"
                      for m in ("positive", "neutral", "negative"))
    return (f"Von {_n(len(scored), lang)} deutschen und englischen Kommentaren sind {parts} ({method_note(inputs.learned, lang)})."
            if de else f"Of {_n(len(scored), lang)} German and English comments, {parts} "
            f"({method_note(inputs.learned, lang)}).")


def method_note(learned: Mapping, lang: str = "en") -> str:
    """Which method labelled which language: 'learned from the scored comments: German; word lists: English'
    ('learned from the hand-labelled comments' when `learned["source"]` is 'labels')."""
    table, words = learned["languages"], _texts(lang)["words"]
    if table.empty:
        return words["language"]["other"]
    how = _texts(lang)["method_note"]
    labelled = learned.get("source") == "labels"                 # trained on a labelled file, not on scores
    return "; ".join(f"{how['learned_labels' if m == 'learned' and labelled else m]}: "
                     f"{', '.join(words['language'][c] for c in group['language'])}"
                     for m, group in table.groupby("method", sort=False))


def describe_sentiment_quality(learned: Mapping, *, lang: str = "en") -> str:
    """One sentence on how well the sentiment was measured: per language, the held-out accuracy and
    macro-F1 of the method used beside always answering the most frequent class, and which models
    learned on a random sample of the labelled comments (`learned["samples"]`)."""
    quality, words, de = learned["quality"].set_index(["language", "method"]), _texts(lang)["words"], lang == "de"
    parts = []
    for row in learned["languages"].itertuples():
        if (row.language, row.method) not in quality.index:
            continue
        q = quality.loc[(row.language, row.method)]
        base = (quality.loc[(row.language, "majority"), "macro_f1"] if (row.language, "majority") in quality.index
                else math.nan)
        accuracy = locale.format_percent(q["accuracy"], lang, decimals=0)
        f1, f1_base = (locale.format_number(v, lang, decimals=2) for v in (q["macro_f1"], base))
        parts.append(f"{words['language'][row.language]} {accuracy} (Makro-F1 {f1}, häufigste Klasse {f1_base})" if de
                     else f"{words['language'][row.language]} {accuracy} (macro-F1 {f1}, most frequent class {f1_base})")
    if not parts:
        return ""
    sampled = [(words["language"][lang_], s["trained"], s["labelled"])
               for lang_, s in learned.get("samples", {}).items() if s["trained"] < s["labelled"]]
    samples = "".join(
        f" {name}: gelernt auf einer Zufallsstichprobe von {_n(trained, lang)} der {_n(of, lang)} verschiedenen bewerteten Kommentare."
        if de else f" {name}: learned on a random sample of {_n(trained, lang)} of {_n(of, lang)} distinct labelled comments."
        for name, trained, of in sampled)
    return ("Auf Kommentaren, die das Verfahren nicht gesehen hat, stimmt die Stimmung mit der Bewertung überein: "
            if de else "On comments the method did not see, the sentiment agrees with the score for: ") + "; ".join(parts) + "." + samples


def sentiment_quality_record(inputs: Comments) -> dict:
    """results.json entry `sentiment_quality`: methods per language, held-out quality, trusted."""
    require_comments(inputs.comments)
    require_known_language(inputs.language)
    learned = inputs.learned
    return {"sentiment_quality": {"methods": learned["languages"], "quality": learned["quality"],
                                  "trusted": sentiment.trusted(learned)}}


def sentiment_quality_table(inputs: Comments, lang: str = "en") -> pd.DataFrame:
    """The held-out quality of each sentiment method as a report shows it: language, method, used,
    texts, accuracy, macro-F1, recall of negative / neutral / positive comments; raises Missing
    without German or English comments."""
    sentiment_quality_record(inputs)
    learned = inputs.learned
    quality, words = learned["quality"], _texts(lang)["words"]
    used = quality["language"].map(learned["languages"].set_index("language")["method"])
    table = quality.assign(used=quality["method"].eq(used))
    cols = ["language", "method", "used", "n", "accuracy", "macro_f1", "recall_negative", "recall_neutral",
            "recall_positive"]
    labels = {**_texts(lang)["columns"], "n": locale.label("comments", lang)}
    return locale.display_table(table, lang, columns=cols, labels=labels,
                                codes={"language": words["language"], "method": words["method"]},
                                kinds={"macro_f1": "score"})


def sentiment_shares(inputs: Comments) -> pd.DataFrame:
    """Share (%) of negative / neutral / positive comments per NPS group (`sentiment.shares_by`) with
    n; raises Missing unless the sentiment is a finding and each NPS group left comments."""
    require_comments(inputs.comments)
    sentiment.require_trusted(inputs.learned)
    sentiments = inputs.learned["sentiment"]["sentiment"]
    require_scored_comments(inputs.category, sentiments)
    return sentiment.shares_by(sentiments, inputs.category, order=list(NPS_GROUPS))


# --- themes, quotes, uncovered terms, topics, measured quality -------------------------------------
def theme_gap(inputs: Comments, *, min_n: int = 100, lang: str = "en") -> pd.DataFrame:
    """`text.theme_gap` of the comments' themes between detractors and promoters (the negative share
    only when the sentiment is a finding); raises Missing without comments of both groups."""
    require_comments(inputs.comments)
    require_scored_comments(inputs.category, inputs.learned["sentiment"]["sentiment"], needed=("detractor", "promoter"))
    return text.theme_gap(inputs.tags, inputs.category, inputs.taxonomy, sentiments=sentiment.findings(inputs.learned),
                          min_n=min_n, lang=lang)


def example_quotes(inputs: Comments, *, per_theme: int = 2, top: int = 6, min_n: int = 100,
                   lang: str = "en") -> pd.DataFrame:
    """Up to `per_theme` masked quotes for each of the `top` themes detractors raise most (lowest
    scores first) as a report shows them: theme, quote, customer pseudonym, NPS answer."""
    gap = theme_gap(inputs, min_n=min_n, lang=lang)
    chosen = gap.loc[gap["mentions"] > 0, "theme"].head(top).tolist()
    quotes = text.example_quotes(inputs.comments, inputs.tags[chosen], per_theme=per_theme,
                                 keep=text.common_words(inputs.stopwords, inputs.lexicon), **inputs.scrub)
    return locale.display_table(quotes.assign(theme=quotes["theme"].map(lambda c: inputs.taxonomy.label("themes", c, lang))),
                                lang, labels=_texts(lang)["columns"], kinds={NPS: "count"})


def uncovered_terms(inputs: Comments, *, top: int = 12) -> pd.DataFrame:
    """`text.uncovered_terms` of the German and English comments (personal data masked)."""
    require_comments(inputs.comments)
    require_known_language(inputs.language)
    return text.uncovered_terms(inputs.comments[COMMENT], inputs.tags, inputs.taxonomy, inputs.stopwords,
                                languages=inputs.language, lexicon=inputs.lexicon, top=top, **inputs.scrub)


def topics(inputs: Comments, *, lang: str = "en") -> pd.DataFrame:
    """`themes.discover_topics` of the German and English comments (quotes masked); raises Missing
    with too few comments."""
    require_comments(inputs.comments)
    require_known_language(inputs.language)
    found = themes.discover_topics(inputs.comments[COMMENT], inputs.language, inputs.stopwords, inputs.lexicon,
                                   tags=inputs.tags, taxonomy=inputs.taxonomy, lang=lang,
                                   keep=text.common_words(inputs.stopwords, inputs.lexicon), **inputs.scrub)
    themes.require_topics(found)
    return found


def theme_model_record(inputs: Comments) -> dict:
    """results.json entry `theme_model` (quality per theme); raises Missing without theme labels."""
    themes.require_theme_labels(inputs.theme_model)
    return {"theme_model": inputs.theme_model["quality"].reset_index()}


def theme_model_table(inputs: Comments, lang: str = "en") -> pd.DataFrame:
    """`themes.theme_quality_table` of the trained theme model; raises Missing without theme labels."""
    themes.require_theme_labels(inputs.theme_model)
    return themes.theme_quality_table(inputs.theme_model, inputs.taxonomy, lang=lang)


def review_record(quality: Mapping) -> dict:
    """results.json entry `text_quality_real_reviews` of a `review_quality`: themes (all, held out), sentiment."""
    return {"text_quality_real_reviews": {k: quality[k] for k in ("themes", "themes_held_out", "sentiment")}}


def review_quality(reviews, inputs: Comments, *, step: int = 1, lang: str = "en") -> dict:
    """`text.review_quality` on labelled reviews (`sources.read_labelled_reviews`: (reviews, labels)
    or None, which raises Missing)."""
    require(reviews is not None, "no labelled reviews given", enable="the parameters real_reviews and review_labels")
    return text.review_quality(*reviews, inputs.taxonomy, inputs.stopwords, inputs.lexicon, step=step, lang=lang)


def label_quality(inputs: Comments, truth: pd.DataFrame | None) -> dict:
    """Language, themes and sentiment of the comments measured against labelled comments (`truth`:
    response_id, language, themes, sentiment, from `sources.read_comment_labels`; None raises
    Missing): {language, themes, sentiment} quality tables."""
    require_comments(inputs.comments)
    require(truth is not None, "no labelled comments beside the raw exports", enable="_truth/comment_labels.csv")
    tags = inputs.tags
    check = (inputs.comments[["response_id"]].assign(detected=inputs.language).join(inputs.learned["sentiment"])
             .join(tags).merge(truth, on="response_id"))
    known = check["language"].isin(text.LANGUAGES)
    return {"language": text.language_quality(check["detected"], check["language"]),
            "themes": text.theme_quality(check.loc[known, list(tags.columns)],
                                         text.parse_labels(check.loc[known, "themes"], list(tags.columns))),
            "sentiment": text.sentiment_quality(check["sentiment_x"], check["sentiment_y"], check["language"])}


def label_quality_table(quality: Mapping, lang: str = "en", *, taxonomy: Taxonomy | None = None) -> pd.DataFrame:
    """The `label_quality` tables in one as a report shows it: measured (language, themes,
    sentiment), of (a language or a theme; 'all' overall), cases, accuracy, precision, recall, F1."""
    words = _texts(lang)["words"]
    what = _texts(lang)["measured"]
    parts = [quality["language"].rename(columns={"language": "of"}).assign(measure=what["language"]),
             quality["themes"].rename(columns={"theme": "of", "support": "n"}).assign(measure=what["themes"]),
             quality["sentiment"].rename(columns={"language": "of"}).assign(measure=what["sentiment"])]
    table = pd.concat(parts, ignore_index=True).reindex(columns=["measure", "of", "n", "accuracy", "precision", "recall",
                                                                  "f1"])
    theme = (lambda v: taxonomy.label("themes", v, lang)) if taxonomy is not None else str  # noqa: E731
    table = table.assign(of=[words["language"].get(v) or (theme(v) if m == what["themes"] else v)
                             for v, m in zip(table["of"], table["measure"])])
    return locale.display_table(table, lang, labels={**_texts(lang)["columns"], "of": _texts(lang)["of"],
                                                     "n": locale.label("support", lang)}, kinds={"n": "count"})


# --- formatting ----------------------------------------------------------------------------------
def _n(value, lang: str) -> str:
    """A count as the report writes it: 12,345 (en) or 12.345 (de)."""
    return locale.format_number(int(value), lang)
