"""Personal data: scrubbing free text, and showing one offending value in a message.

Free text (survey comments, contact notes) is scrubbed before it is written or quoted:
`scrub_pii` masks e-mail addresses, IBANs, customer numbers, phone numbers and names with the
placeholders of `PLACEHOLDERS`; `scrub_free_text` applies it to the free-text columns of the
canonical tables; `describe_scrubbing` says how many texts it changed.

Every error message and log line that quotes a value of the data goes through `example_rows`:
each example names the column, the value and where it is (file and row); a value of a column
marked personal (`PERSONAL_COLUMNS`, or the source columns a mapping maps onto them) is shown as
`[masked]`, any other value is scrubbed and shortened, so no name, CRM number, e-mail address or
phone number reaches stderr, a report, run.json or a log.

    privacy.scrub_pii(pd.Series(["Ruf an: +49 (0) 421 / 82 74 11"]))      # -> ["Ruf an: [phone]"]
    privacy.example_rows(rows, ["Kundennummer"], personal={"Kundennummer"})
    # -> "Kundennummer=[masked] (crm.csv row 3)"
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from cxlib import schema
from cxlib.config import fold


class PrivacyError(ValueError):
    """Unusable input to a scrubbing function (e.g. a customer-number pattern that is no regex)."""


# --- scrubbing free text ----------------------------------------------------------------------
CUSTOMER_NUMBER = r"\bK\d{7}\b"     # customer numbers of the demo CRM (K + 7 digits); pass your CRM's pattern
PLACEHOLDERS = ("[email]", "[iban]", "[customer-no]", "[phone]", "[name]")
_PLACEHOLDER_WORDS = frozenset({"email", "iban", "customer", "phone", "name"})
_LETTER_BEFORE, _LETTER_AFTER = r"(?<![^\W\d_])", r"(?![^\W\d_])"
_POSSESSIVE = r"(?:['’]?s)?"        # Lüdemanns, Müller's: a name with its genitive s is still the name
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_DATE_AHEAD = r"(?!\d{1,2}[./-]\d{1,2}[./-]\d{2,4}(?!\d)|\d{4}-\d{1,2}-\d{1,2}(?!\d))"
_GAP = r"(?: ?[/()-]{0,2} ?)"        # between digits of a phone number: ' ', '/', ' / ', ' (', ') ', '-'

_PII = [
    ("[email]", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    # DE89 3704 0044 0532 0130 00, DE89-3704-..., de89370400440532013000
    ("[iban]", r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,3})?\b"),
    ("[customer-no]", None),                                   # the customer-number pattern of the call
    # 7+ digits with +/00, spaces, / ( ) -: +49 (0) 421 / 82 74 11, 0170/1234567, (030) 1234567; not dates
    ("[phone]", rf"(?<![\w+(]){_DATE_AHEAD}\(?(?:\+|00)?\d(?:{_GAP}\d){{6,}}(?!\w)"),
    ("[name]", r"(?:(?<=\bHerr )|(?<=\bFrau )|(?<=\bHerrn )|(?<=\bMr\. )|(?<=\bMrs\. )|(?<=\bMs\. )"
               r"|(?<=\bMr )|(?<=\bMrs )|(?<=\bMs ))[A-ZÄÖÜ][\w-]+"),
    ("[name]", r"(?i:(?<=my name is )|(?<=mein name ist )|(?<=ich heiße )|(?<=ich heisse ))[\w-]+(?: [A-ZÄÖÜ][\w-]+)?"),
]


def _folded(tokens: pd.Series) -> pd.Series:
    """`config.fold` of each token, typographic apostrophes made plain (as text.fold_series)."""
    return tokens.map(fold, na_action="ignore").astype("str").str.replace(r"[’‘´]", "'", regex=True)


def _trie_regex(words: Sequence[str]) -> str:
    """One regular expression matching exactly `words` (lower case), as a character trie: fast
    for thousands of names where a plain alternation tries every name at every position."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


def name_pattern(names: pd.Series | Sequence[str], *, min_length: int = 3, keep=()) -> str | None:
    """A case-insensitive regular expression for the names in `names` (e.g. the re-identification
    table's pii_name, 'Karl-Heinz Müller'): every distinct name token (also each part of a
    hyphenated one, and its umlaut-folded spelling 'mueller') of at least `min_length` letters,
    matched as a whole word, also with a possessive s ('Müllers', 'Müller's'). A match starts at a
    token that is not in `keep` (folded words such as `text.common_words`: the surname 'Lange'
    alone stays in 'zu lange gewartet') and runs on over following name tokens, `keep` ones
    included ('Thomas Lange' is one match). Names are NFC-normalised first. None when no token
    is left.

        name_pattern(pd.Series(["Anna Lange"]), keep={"lange"})  # matches 'Anna', 'anna lange', not 'lange'
    """
    tokens = pd.Series(name_tokens(names), dtype="str")
    tokens = pd.concat([tokens.str.lower(), _folded(tokens)]).dropna()
    tokens = tokens.loc[tokens.str.len().ge(min_length) & ~tokens.isin(_PLACEHOLDER_WORDS)].drop_duplicates()
    if tokens.empty:
        return None
    kept = {fold(w) for w in keep}
    start = tokens.loc[~_folded(tokens).isin(kept)]
    if start.empty:
        return None
    first, any_ = _trie_regex(sorted(start)), _trie_regex(sorted(tokens))
    return (rf"(?i){_LETTER_BEFORE}(?:{first}){_POSSESSIVE}{_LETTER_AFTER}"
            rf"(?:[\s-]+(?:{any_}){_POSSESSIVE}{_LETTER_AFTER})*")


def name_tokens(names: pd.Series | Sequence[str]) -> list[str]:
    """The distinct name tokens of `names`, NFC-normalised, hyphenated ones also in their parts
    ('Karl-Heinz Müller' -> Karl-Heinz, Müller, Karl, Heinz), in order of appearance: what
    `name_pattern` matches. `name_pattern(name_tokens(names))` is `name_pattern(names)`, so
    parts of a table can hand over their tokens (a vocabulary) instead of every name."""
    full = pd.Series(list(names) if not isinstance(names, pd.Series) else names, dtype="str").dropna()
    tokens = full.str.normalize("NFC").str.findall(_NAME_TOKEN).explode().dropna().astype("str")
    tokens = pd.concat([tokens, tokens.str.split(r"['’-]", regex=True).explode().dropna().astype("str")])
    return tokens.drop_duplicates().tolist()


def scrub_pii(texts: pd.Series, *, names: pd.Series | Sequence[str] | None = None,
              customer_number: str | None = CUSTOMER_NUMBER, keep=(), min_name_length: int = 3,
              names_pattern: str | None = None) -> pd.Series:
    """Mask personal data in free text (NFC-normalised first, so a name typed in decomposed
    Unicode is still found), in this order: e-mail addresses -> [email], IBANs (also with '-'
    between the groups) -> [iban], customer numbers (regular expression `customer_number`, matched
    in any case; default the demo CRM's K + 7 digits; None: skip) -> [customer-no], phone numbers
    (7+ digits with + / 00 and separators such as '+49 (0) 421 / 82 74 11'; dates stay) ->
    [phone], names after Herr/Frau/Mr/Mrs/Ms or 'my name is' / 'mein Name ist' -> [name], and with
    `names` (e.g. the re-identification table's pii_name) every CRM name token, possessives
    included -> [name] (see `name_pattern`; `keep`, min_name_length; `names_pattern`: that pattern
    built once, for text scrubbed in parts). NA stays NA; index kept.

        scrub_pii(pd.Series(["Call me: +49 170 1234567, max@web.de"])) -> ["Call me: [phone], [email]"]
        scrub_pii(pd.Series(["Gruß, Anna Lange"]), names=["Anna Lange"]) -> ["Gruß, [name]"]
    """
    number = None
    if customer_number is not None:
        try:
            number = re.compile(customer_number, re.IGNORECASE)
        except re.error as exc:
            raise PrivacyError(f"scrub_pii: customer_number is not a regular expression: {customer_number!r} "
                               f"({exc})") from exc
    crm = names_pattern if names_pattern is not None else (
        name_pattern(names, min_length=min_name_length, keep=keep) if names is not None else None)
    values = pd.Series(texts, dtype="str")
    codes, distinct = pd.factorize(values)             # each distinct text scrubbed once
    out = pd.Series(distinct, dtype="str").str.normalize("NFC")
    for placeholder, pattern in [*_PII, ("[name]", crm)]:
        pattern = number if placeholder == "[customer-no]" else pattern
        if pattern:
            out = out.str.replace(pattern, placeholder, regex=True)
    return pd.Series(out.array.take(codes, allow_fill=True), index=values.index, name=values.name, dtype="str")


FREE_TEXT = {"feedback": schema.COMMENT, "events": schema.TEXT}      # canonical free-text columns: table -> column


def scrub_free_text(tables: dict[str, pd.DataFrame], *, columns: dict[str, str] | None = None,
                    names: pd.Series | Sequence[str] | None = None, keep=(),
                    customer_number: str | None = CUSTOMER_NUMBER,
                    names_pattern: str | None = None) -> dict[str, pd.DataFrame]:
    """The tables with their free-text columns (`columns`, default `FREE_TEXT`: feedback.comment,
    events.text) passed through `scrub_pii` (with the CRM `names`, `keep`, `customer_number`);
    other tables and columns unchanged, inputs not modified. Notebook 01 applies it before the
    processed tables are written, so no e-mail address, phone number, IBAN, CRM number or CRM name
    reaches data/processed.

        scrub_free_text(cleaned.tables, names=cleaned.reidentification["pii_name"])["feedback"]
    """
    columns = FREE_TEXT if columns is None else columns
    pattern = {"names": names, "keep": keep, "customer_number": customer_number, "names_pattern": names_pattern}
    return {name: (df.assign(**{columns[name]: scrub_pii(df[columns[name]], **pattern).astype(df[columns[name]].dtype)})
                   if columns.get(name) in df.columns else df)
            for name, df in tables.items()}


def scrubbing_counts(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], *,
                     columns: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """table -> (texts changed, texts) of each free-text column `scrub_free_text` passed over."""
    columns = FREE_TEXT if columns is None else columns
    counts = {}
    for name, column in columns.items():
        if name in before and name in after and column in before[name].columns:
            old, new = before[name][column], after[name][column]
            counts[name] = (int((old.fillna("") != new.fillna("")).sum()), int(old.notna().sum()))
    return counts


def describe_scrubbing(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], *,
                       columns: dict[str, str] | None = None) -> str:
    """One sentence on `scrub_free_text`: how many texts of each free-text column had personal
    data masked, e.g. 'Personal data masked in free text: 45 of 2,494 texts in feedback.comment; ...'."""
    return describe_scrubbing_counts(scrubbing_counts(before, after, columns=columns), columns=columns)


def describe_scrubbing_counts(counts: dict[str, tuple[int, int]], *, columns: dict[str, str] | None = None) -> str:
    """`describe_scrubbing` from `scrubbing_counts` (added up over the parts of a table)."""
    columns = FREE_TEXT if columns is None else columns
    parts = [f"{counts[name][0]:,} of {counts[name][1]:,} texts in {name}.{column}"
             for name, column in columns.items() if name in counts]
    if not parts:
        return "No free-text column to scrub."
    return ("Personal data masked in free text (e-mail addresses, phone numbers, IBANs, customer numbers, names of "
            "the CRM) before writing: " + "; ".join(parts) + ".")


# --- values in messages -------------------------------------------------------------------------
# canonical and staged columns whose values identify a person: never quoted in a message
PERSONAL_COLUMNS = frozenset({schema.CUSTOMER_REF, *schema.PII_COLUMNS, schema.COMMENT, schema.TEXT})
MASKED = "[masked]"
MAX_CHARS = 40                      # a quoted value is cut here
N_EXAMPLES = 5


def shown_value(value, *, personal: bool = False) -> str:
    """One value as a message shows it: 'missing'; `MASKED` for a personal column; otherwise
    its repr, scrubbed (`scrub_pii`: e-mail, IBAN, customer number, phone) and cut at
    `MAX_CHARS` characters.

        shown_value("31.02.2024") -> "'31.02.2024'"; shown_value("K0000001", personal=True) -> "[masked]"
    """
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return "missing"
    if personal:
        return MASKED
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, str):
        value = scrub_pii(pd.Series([value])).iloc[0]
        value = value if len(value) <= MAX_CHARS else value[: MAX_CHARS - 1] + "…"
    return repr(value)


def example_row(values: Mapping[str, object], *, file=None, row=None, personal: Collection[str] = ()) -> str:
    """One example for a message: the columns with their values, then where the row is.

        example_row({"Datum": "gestern"}, file="crm.csv", row=7) -> "Datum='gestern' (crm.csv row 7)"
        example_row({"customer_ref": "K1"}, file="crm.csv", row=3) -> "customer_ref=[masked] (crm.csv row 3)"

    A column is personal when it is in `personal` or `PERSONAL_COLUMNS`. Without a file the row
    alone is named ("row 7"); without either nothing is appended.
    """
    shown = ", ".join(f"{column}={shown_value(value, personal=column in personal or column in PERSONAL_COLUMNS)}"
                      for column, value in values.items())
    where = (f"{file} row {row}" if _known(file) and _known(row) else f"row {row}" if _known(row)
             else str(file) if _known(file) else "")
    return f"{shown} ({where})" if where else shown


def _known(value) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and value != value)


def example_rows(rows: pd.DataFrame, columns: Sequence[str], *, personal: Collection[str] = (),
                 file_column: str = schema.SOURCE_FILE, row_column: str = schema.SOURCE_ROW,
                 n: int = N_EXAMPLES) -> str:
    """The first `n` rows of `rows` as `example_row`s joined by '; ': the values of `columns`
    and the row's file and row number from the lineage columns (when present). '' for no rows.

        example_rows(bad, ["nps"]) -> "nps=11.0 (survey.csv row 3); nps=12.0 (survey.csv row 9)"
    """
    head = rows.head(n)
    files = head[file_column] if file_column in head.columns else pd.Series(None, index=head.index, dtype=object)
    numbers = head[row_column] if row_column in head.columns else pd.Series(None, index=head.index, dtype=object)
    return "; ".join(
        example_row(dict(zip(columns, values)), file=f, row=r, personal=personal)
        for values, f, r in zip(head[list(columns)].itertuples(index=False, name=None), files, numbers)
    )
