"""Hand-made labels beside the exports: labelled reviews to measure the text analysis on, and
the comment labels of a raw folder (`_truth/comment_labels.csv`). Read whole (small files)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxlib import schema
from cxlib.sources.mapping import SourceError


def read_labelled_reviews(reviews_file: str | Path, labels_file: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A real review export with hand-made theme labels, to measure the text analysis on, or None
    when either file is absent (the reviews live outside the repository, in ../shared).

    Reviews (CSV, first column the row id, `Title`, `Review Text`, `Rating`) -> reviews with a
    `comment` (title. text) and `Rating`, rows without text left out; labels (CSV: row_id, themes,
    set) -> indexed by row_id. A labelled row id missing from the reviews is an error.
    """
    reviews_file, labels_file = Path(reviews_file), Path(labels_file)
    if not (reviews_file.is_file() and labels_file.is_file()):
        return None
    reviews = pd.read_csv(reviews_file, index_col=0)
    missing = [c for c in ("Title", "Review Text", "Rating") if c not in reviews.columns]
    if missing:
        raise SourceError(f"{reviews_file}: reviews lack column(s) {missing}; found {list(reviews.columns)}",
                          file=str(reviews_file), column=missing[0])
    reviews = (reviews.loc[lambda d: d["Review Text"].notna()]
               .assign(comment=lambda d: (d["Title"].fillna("") + ". " + d["Review Text"]).str.strip(". ")))
    labels = pd.read_csv(labels_file, index_col="row_id", keep_default_na=False)
    unknown = labels.index.difference(reviews.index)
    if len(unknown):
        raise SourceError(f"{labels_file}: {len(unknown)} labelled row ids are not reviews with text in {reviews_file}; "
                          f"first: {list(unknown[:5])}", file=str(labels_file), column="row_id")
    return reviews, labels


def read_comment_labels(raw_dir: str | Path) -> pd.DataFrame | None:
    """Hand or demo labels of comments beside the exports (`<raw_dir>/_truth/comment_labels.csv`:
    response_id, language, themes, sentiment, ...; all text, blanks kept as ""), or None when
    the folder has none (real exports usually don't)."""
    path = Path(raw_dir) / schema.TRUTH_DIR / schema.COMMENT_LABELS_FILE
    if not path.is_file():
        return None
    labels = pd.read_csv(path, dtype="str", keep_default_na=False)
    missing = [c for c in (schema.RESPONSE_ID, "language", "themes", "sentiment") if c not in labels.columns]
    if missing:
        raise SourceError(f"{path}: comment labels lack column(s) {missing}; found {list(labels.columns)}",
                          file=str(path), column=missing[0])
    return labels
