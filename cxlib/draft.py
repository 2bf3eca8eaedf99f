"""Draft a source mapping from export files: reader options, the table and each column's role.

Pure functions; only the CLI (`cx map draft FILE…`) reads files and writes the result.

    reader = sniff(data, "kontakte.csv")              # {"encoding": "cp1252", "sep": ";", ...}
    frame = read_sample(data, "kontakte.csv", reader)  # the first rows, every cell as text
    columns = profile(frame)                           # one row per column: kind, scale, format, ...
    proposal = propose("kontakte.csv", columns, reader)
    text = to_yaml([proposal])                         # the mapping, `# TODO` where undecided

A column's role comes from its header (German and English synonyms, e.g. Kundennummer /
customer id -> customer_ref, Bewertung / rating -> csat) and from its values (dates and epoch
numbers, 0-10 / 1-5 / 1-10 scores, unique ids, long free text, amounts with a decimal comma).
`agreement` compares a draft with a hand-written mapping column by column.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cxlib import schema
from cxlib.config import fold

SAMPLE_ROWS = 5000
SAMPLE_BYTES = 4_000_000      # the CLI reads at most this much of each file
TEXT_MIN_CHARS = 25          # mean length of a free-text column
CODE_MAX_VALUES = 30         # at most this many distinct values: a code column
NA_TOKENS = ("NA", "N/A", "n/a", "NULL", "null", "None", "-", "k.A.", "#N/A", "nan", "NaN")
EPOCH_S = (946_684_800, 4_102_444_800)                  # 2000-01-01 .. 2100-01-01 in seconds
DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%y", "%d/%m/%Y", "%m/%d/%Y",
                "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%Y%m%d")
SCALES = ((0, 10), (1, 10), (1, 7), (0, 5), (1, 5))       # score scales, checked in this order

# canonical column (or "key": the table's id) -> header words, matched on the folded header
# ("Kunden-Nr." -> "kunden nr", "customerID" -> "customer id"); a pattern matches whole words.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_ref": ("kundennummer", "kunden ?nr", "kundenid", "kunden id", "customer ?(id|no|number|ref)",
                     "client ?(id|no)", "member ?(id|no)", "account ?(id|no)", "user ?id", "kunde", "customer",
                     "mitgliedsnummer", "case concept name", "case ?id", "fall ?id"),
    "key": ("id", "nr", "no", "nummer", "number", "key", "(response|answer|review|post|ticket|case|"
            "complaint|respondent|record|event|contact|interaction|invoice|order|transaction) ?(id|no|nr|number)",
            "bestellnummer", "auftragsnummer", "rechnungsnummer", "belegnummer", "vorgangsnummer", "ticketnummer",
            "concept instance", "fallnummer"),
    "timestamp": ("datum", "date", "time", "timestamp", "zeit", "zeitpunkt", "created( at)?", "erstellt( am)?",
                  "eingang", "(date|time) received", "received", "submitted( at)?", "invoice ?date", "bestelldatum",
                  "order ?date", "time timestamp", "datetime", "uhrzeit", "erfasst( am)?"),
    "nps": ("nps", "recommend", "recommendation", "empfehlung", "weiterempfehlung", "likelihood to recommend",
            "empfehlen"),
    "csat": ("rating", "bewertung", "score", "stars?", "sterne", "satisfaction", "zufriedenheit", "csat",
             "overall", "gesamt(note|urteil)?", "note", "grade"),
    "ces": ("ces", "effort", "aufwand", "customer effort"),
    "comment": ("comment", "comments", "kommentar", "review( text)?", "text", "freitext", "feedback", "verbatim",
                "narrative", "consumer complaint narrative", "explication", "begruendung", "body", "remarks?",
                "anmerkung(en)?", "message", "nachricht", "bemerkung", "beschreibung", "description text"),
    "revenue": ("betrag", "amount", "revenue", "umsatz", "total", "summe", "price", "preis", "wert", "value",
                "(stueck|einzel|unit ?)preis",
                "unit ?price", "netto", "brutto", "payment ?amount", "total ?amount"),
    "product": ("product", "produkt", "artikel", "item", "description", "sku", "tarif", "stock ?code",
                "artikelnummer", "leistung"),
    "category": ("category", "kategorie", "warengruppe", "department( name)?", "class( name)?", "division( name)?",
                 "sparte"),
    "channel": ("channel", "kanal", "submitted via", "via", "medium", "contact", "kontaktweg", "eingangskanal",
                "case channel"),
    "touchpoint": ("activity", "aktivitaet", "touchpoint", "event", "concept name", "step", "schritt", "action",
                   "vorgang", "ereignis", "event ?type"),
    "contact_reason": ("reason", "grund", "anliegen", "issue", "thema", "topic", "subject", "betreff",
                       "kontaktgrund", "kategorie anliegen", "contact reason"),
    "segment": ("segment", "kundengruppe", "customer ?type", "kundentyp", "kundenart"),
    "region": ("region", "country", "land", "state", "bundesland", "ort", "city", "plz", "zip( code)?"),
    "status": ("status", "order ?status", "bestellstatus"),
    "language": ("language", "sprache", "lang"),
    "signup_date": ("signup( date)?", "kunde seit", "customer since", "registered", "registriert( am)?",
                    "vertragsbeginn", "start ?date", "beginn"),
    "churn_date": ("churn( date)?", "kuendigung(sdatum)?", "cancel(led)?( date)?", "end ?date", "vertragsende"),
    "contact_consent": ("consent", "einwilligung", "opt ?in", "permission", "werbeeinwilligung"),
    "survey": ("survey", "umfrage", "befragung", "survey ?type"),
    "direction": ("direction", "richtung"),
    "wait_seconds": ("wait(ing)?( time)?( seconds| s)?", "wartezeit"),
    "handle_seconds": ("duration", "dauer", "handle ?time", "gespraechsdauer", "bearbeitungszeit"),
    "resolved": ("resolved", "geloest", "erledigt", "solved"),
    "campaign_id": ("campaign( id)?", "kampagne", "aktion"),
    "sent_at": ("sent( at)?", "versand(datum)?", "gesendet( am)?", "send date"),
    "responded_at": ("responded( at)?", "response date", "reaktion( am)?", "antwort( am)?"),
}
_PATTERNS = {role: re.compile(r"^(?:" + "|".join(words) + r")$") for role, words in SYNONYMS.items()}
_CONTAINS = {role: re.compile(r"(?:^| )(?:" + "|".join(words) + r")(?: |$)") for role, words in SYNONYMS.items()}
KEY_OF = {t: schema.staged_columns(t)[schema.TABLES[t].names.index(schema.TABLES[t].key[0])]
          for t in schema.TABLES}                               # feedback -> response_id, customers -> customer_ref
SCORES = (schema.NPS, schema.CSAT, schema.CES)
DATES = (schema.TIMESTAMP, schema.SIGNUP_DATE, schema.CHURN_DATE, schema.SENT_AT, schema.RESPONDED_AT)


# --- reading a sample ------------------------------------------------------------------------
def sniff(data: bytes, name: str = "") -> dict:
    """Reader options of a file's bytes: format, and for CSV encoding, sep and na_values.

        sniff(b"Nr;Datum\\n1;01.02.2024\\n", "a.csv") -> {"format": "csv", "encoding": "utf-8", "sep": ";"}
    """
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"):
        return {"format": "excel"}
    if suffix in (".parquet", ".pq"):
        return {"format": "parquet"}
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError as exc:     # a sample may end inside a character
            encoding = "utf-8" if exc.start >= len(data) - 3 else "cp1252"    # Windows exports; latin-1's letters too
    text = data.decode(encoding, errors="ignore").lstrip("\ufeff")
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    try:
        sep = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {s: [line.count(s) for line in lines[:20]] for s in ",;\t|"}
        sep = max(counts, key=lambda s: (min(counts[s] or [0]) > 0, sum(counts[s])))
    return {"format": "csv", "encoding": encoding, "sep": sep}


def read_sample(data: bytes, name: str, reader: dict, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The first `rows` rows of a file as text (trimmed; blank = missing), columns as in its header."""
    if reader.get("format") == "excel":
        frame = pd.read_excel(io.BytesIO(data), sheet_name=reader.get("sheet", 0), dtype=object, nrows=rows,
                              engine="calamine")          # as sources reads it
    elif reader.get("format") == "parquet":
        frame = pd.read_parquet(io.BytesIO(data)).head(rows)
    else:
        text = data.decode(reader.get("encoding", "utf-8"), errors="replace").lstrip("\ufeff")
        frame = pd.read_csv(io.StringIO(text), sep=reader.get("sep", ","), dtype=str, keep_default_na=False,
                            na_filter=False, nrows=rows, on_bad_lines="skip")
    text = frame.astype(object).where(frame.notna(), "").astype(str)
    return text.apply(lambda s: s.str.strip()).replace("", np.nan).set_axis([str(c).strip() for c in frame.columns],
                                                                              axis=1)


# --- profiling values --------------------------------------------------------------------------
def header_words(column: str) -> str:
    """A header as lower-case words: 'customerID' -> 'customer id', 'Kunden-Nr.' -> 'kunden nr', '_id' -> 'id'."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)", " ", str(column))
    return re.sub(r"[^a-z0-9]+", " ", fold(spaced)).strip()


def header_roles(column: str) -> list[str]:
    """Roles a header names, exact matches first: 'Kundennummer' -> ['customer_ref']."""
    words = header_words(column)
    exact = [role for role, pattern in _PATTERNS.items() if pattern.match(words)]
    inner = [role for role, pattern in _CONTAINS.items() if role not in exact and pattern.search(words)]
    return exact + inner


def profile(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column of a text sample: column, filled, distinct, unique, kind, detail, example.

    kind: empty | date | epoch | score | number | bool | id | text | code | other; detail holds
    the date format (`iso`, '%d.%m.%Y', `epoch_ms`), `date_only`, the score scale `(lo, hi)`,
    the decimal sign, the mean text length and the n/a codes found.
    """
    rows = [_profile_column(frame[c]) | {"column": c} for c in frame.columns]
    columns = ["column", "filled", "distinct", "unique", "kind", "detail", "example"]
    return pd.DataFrame(rows, columns=columns)


def _profile_column(values: pd.Series) -> dict:
    filled = values.dropna()
    na_codes = sorted(set(filled[filled.isin(NA_TOKENS)]))
    filled = filled[~filled.isin(NA_TOKENS)]
    base = {"filled": len(filled), "distinct": filled.nunique(),
            "unique": bool(len(filled) == len(values) and filled.is_unique and len(filled) > 1),
            "example": str(filled.iloc[0])[:40] if len(filled) else "", "detail": {"na": na_codes} if na_codes else {}}
    if filled.empty:
        return base | {"kind": "empty"}
    numbers = pd.to_numeric(filled, errors="coerce")
    comma = pd.to_numeric(filled.str.replace(".", "", regex=False).str.replace(",", ".", regex=False), errors="coerce")
    if numbers.notna().all():
        whole = numbers.eq(numbers.round()).all()
        lo, hi = numbers.min(), numbers.max()
        if whole and EPOCH_S[0] * 1000 <= lo and hi <= EPOCH_S[1] * 1000:
            return base | {"kind": "epoch", "detail": base["detail"] | {"dates": "epoch_ms"}}
        if whole and EPOCH_S[0] <= lo and hi <= EPOCH_S[1] and filled.str.len().eq(10).all():
            return base | {"kind": "epoch", "detail": base["detail"] | {"dates": "epoch_s"}}
        fits = [(a, b) for a, b in SCALES if whole and a <= lo and hi <= b and hi >= b - 1 and lo <= a + 1]
        scale = min(fits, key=lambda s: (s[0] != lo, s[1])) if fits else None
        if scale and numbers.nunique() >= 3:
            return base | {"kind": "score", "detail": base["detail"] | {"scale": scale}}
        if whole and set(numbers.unique()) <= {0, 1}:
            return base | {"kind": "bool"}
        return base | {"kind": "number", "detail": base["detail"] | {"decimal": ".", "whole": bool(whole)}}
    if comma.notna().all() and filled.str.contains(",", regex=False).any() and \
            filled.str.fullmatch(r"-?\d{1,3}(\.\d{3})*(,\d+)?|-?\d+(,\d+)?").all():
        return base | {"kind": "number", "detail": base["detail"] | {"decimal": ","}}
    dates = _date_format(filled)
    if dates:
        return base | {"kind": "date", "detail": base["detail"] | dates}
    if filled.map(fold).isin(["ja", "nein", "yes", "no", "true", "false", "j", "n", "y"]).all():
        return base | {"kind": "bool"}
    length = filled.str.len().mean()
    if min(CODE_MAX_VALUES, len(filled) / 2) >= base["distinct"] or base["distinct"] <= 0.05 * len(filled):
        return base | {"kind": "code"}
    if length >= TEXT_MIN_CHARS and filled.str.contains(" ").mean() > 0.5:
        return base | {"kind": "text", "detail": base["detail"] | {"chars": round(float(length))}}
    if base["unique"]:
        return base | {"kind": "id"}
    return base | {"kind": "other"}


def _date_format(filled: pd.Series) -> dict:
    """{'dates': 'iso' or a strptime format, 'date_only': bool} when ≥ 95% of the values parse, else {}."""
    sample = filled.head(500)
    if not sample.str.contains(r"\d").all() or sample.str.len().min() < 6:
        return {}
    date_only = not sample.str.contains(r"\d{1,2}:\d{2}").any()
    iso = pd.to_datetime(sample, format="ISO8601", errors="coerce", utc=True)
    if iso.notna().mean() >= 0.95 and sample.str.match(r"\d{4}-\d{2}-\d{2}").mean() >= 0.95:
        return {"dates": "iso", "date_only": date_only,
                "offset": bool(sample.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$").any())}
    fits = [f for f in DATE_FORMATS if pd.to_datetime(sample, format=f, errors="coerce").notna().mean() >= 0.95]
    if not fits:
        return {}
    return {"dates": fits[0], "date_only": date_only, "ambiguous": fits[1:2] if {"%d/%m/%Y", "%m/%d/%Y"} & set(fits[:2])
            and len(fits) > 1 else []}


# --- proposing ---------------------------------------------------------------------------------
def propose(file: str, columns: pd.DataFrame, reader: dict | None = None) -> dict:
    """A mapping entry for one file from its profile (see `profile`).

    Output: {"file", "table", "reader", "columns": {canonical: spec}, "constants", "ignore",
    "why": {canonical: reason}, "todo": [sentences]}. Undecided points go to `todo`.
    """
    reader = dict(reader or {})
    rows = columns.set_index("column")
    roles = {c: header_roles(c) for c in rows.index}
    table, table_todo = _choose_table(rows, roles)
    todo = list(table_todo)
    cols: dict[str, dict | str] = {}
    why: dict[str, str] = {}
    targets = set(schema.staged_columns(table)) - {KEY_OF[table]}

    def take(canonical: str, source: str, spec: dict | None = None, reason: str = "") -> None:
        cols[canonical] = {"from": source, **spec} if spec else source
        why[canonical] = reason

    used: set[str] = set()
    # 1. the row key: a unique column named like an id, else any unique id-like column
    key = KEY_OF[table]
    key_role = "customer_ref" if key == schema.CUSTOMER_REF else "key"
    keyish = [c for c in rows.index if rows.at[c, "unique"] and key_role in roles[c] and rows.at[c, "kind"] != "text"]
    unique = [c for c in rows.index if rows.at[c, "unique"] and (rows.at[c, "kind"] in ("id", "other") or (
        rows.at[c, "kind"] == "number" and rows.at[c, "detail"].get("whole")))]
    for c in keyish + [c for c in unique if c not in keyish and "customer_ref" not in roles[c]]:
        take(key, c, reason="unique in the sample")
        used.add(c)
        break
    else:
        repeated = [c for c in rows.index if _PATTERNS["key"].match(header_words(c))
                    and rows.at[c, "kind"] in ("id", "number", "code", "other")]
        if repeated and table != "customers":
            take(key, repeated[0], reason="named like an id, but repeated")
            used.add(repeated[0])
            todo.append(f"{key}: {repeated[0]!r} repeats (several rows per {key.removesuffix('_id')}): "
                        f"aggregate the rows on it, or map another id")
        else:
            cols[key] = {"row_number": True}
            why[key] = "no unique column: the row number"
            todo.append(f"{key}: no unique column found; the row number is used (stable only if the file never changes)")
    # 2. columns named by their header (free text: the fullest column first)
    for c in sorted(rows.index, key=lambda c: -rows.at[c, "filled"] * rows.at[c, "detail"].get("chars", 0)):
        if c in used:
            continue
        for role in roles[c]:
            if role in ("key",) or role not in targets or role in cols:
                continue
            spec = _spec(role, rows.loc[c], todo, c)
            if spec is None:
                continue
            take(role, c, spec or None, f"header {c!r}")
            used.add(c)
            break
    # 3. columns recognised by their values (several unnamed scores: a ratings table, decided by hand)
    scores = [c for c in rows.index if c not in used and rows.at[c, "kind"] == "score"]
    if len(scores) > 2:
        todo.append(f"{len(scores)} rating columns ({', '.join(scores[:6])}{' …' if len(scores) > 6 else ''}): "
                    f"a ratings table; map each rating as its own feedback entry (csat on its scale)")
    for c in sorted(rows.index, key=lambda c: -rows.at[c, "detail"].get("chars", 0)):    # longest text first
        if c in used:
            continue
        kind, detail = rows.at[c, "kind"], rows.at[c, "detail"]
        role = None
        if kind in ("date", "epoch"):
            role = next((r for r in DATES if r in targets and r not in cols), None)
        elif kind == "score" and len(scores) <= 2:
            role = next((r for r in SCORES if r in targets and r not in cols
                         and (r != schema.NPS or detail["scale"] == (0, 10))
                         and (r != schema.CES or detail["scale"] == (1, 7))), None)
        elif kind == "text":
            role = next((r for r in (schema.COMMENT, schema.TEXT) if r in targets and r not in cols), None)
        elif kind == "number" and schema.REVENUE in targets and schema.REVENUE not in cols:
            role = schema.REVENUE if detail.get("decimal") == "," else None
        if role:
            spec = _spec(role, rows.loc[c], todo, c)
            if spec is not None:
                take(role, c, spec or None, f"values ({kind})")
                used.add(c)
        elif kind == "score" and len(scores) <= 2:
            todo.append(f"{c!r} holds scores {detail['scale'][0]}-{detail['scale'][1]}: a second rating? "
                        f"(map it as its own feedback entry, or ignore it)")
    # unit price and quantity: revenue = quantity x price
    quantity = next((c for c in rows.index if c not in used and rows.at[c, "kind"] == "number"
                     and re.fullmatch(r"quantity|qty|menge|anzahl|stueck(zahl)?|amount of items", header_words(c))), None)
    price = cols.get(schema.REVENUE)
    if quantity and isinstance(price, str) and re.search(r"price|preis", header_words(price)):
        cols[schema.REVENUE] = {"from": quantity, "multiply": price}
        why[schema.REVENUE] = f"{quantity} x {price}"
        used.add(quantity)
    # 4. required columns nobody filled
    constants: dict = {}
    for canonical in schema.staged_columns(table):
        if canonical in cols or canonical not in _required(table):
            continue
        guess = {schema.CHANNEL: "web", schema.TOUCHPOINT: _default_touchpoint(table, rows),
                 schema.CONTACT_CONSENT: False, schema.TIMESTAMP: "2024-01-01", schema.SENT_AT: "2024-01-01"}
        if canonical == schema.CUSTOMER_REF:
            cols[canonical] = {"row_number": True}
            todo.append("customer_ref: no customer column found; every row is its own customer (the row number)")
            continue
        constants[canonical] = guess.get(canonical, "TODO")
        todo.append(f"{canonical}: no column found; the constant {constants[canonical]!r} is a placeholder")
    decimal = {rows.at[c, "detail"].get("decimal") for c in rows.index if rows.at[c, "kind"] == "number"}
    if "," in decimal:
        reader |= {"decimal": ",", "thousands": "."}
    na = sorted({v for d in rows["detail"] for v in d.get("na", [])})
    if na:
        reader["na_values"] = na
    ignore = [c for c in rows.index if c not in used]
    return {"file": file, "table": table, "reader": reader, "columns": cols, "constants": constants,
            "ignore": ignore, "why": why, "todo": todo}


def _required(table: str) -> list[str]:
    return [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[table].required]


def _choose_table(rows: pd.DataFrame, roles: dict[str, list[str]]) -> tuple[str, list[str]]:
    """The canonical table with the most evidence: named roles and value kinds."""
    named = {r for rs in roles.values() for r in rs[:1]}
    kinds = rows["kind"].value_counts().to_dict()
    complaints = any(re.search(r"complaint|beschwerde|reklamation|ticket", header_words(c)) for c in rows.index)
    evidence = {      # ties go to the first: a unique customer column makes a customers table
        "customers": (2 * len(named & {"contact_consent", "signup_date", "churn_date"}) + ("segment" in named))
        * any(rows.at[c, "unique"] and "customer_ref" in roles[c] for c in rows.index),
        "feedback": 2 * len(named & {"nps", "csat", "ces"}) + kinds.get("score", 0) + ("comment" in named)
        + bool(kinds.get("text")),
        "events": 2 * ("touchpoint" in named) + 2 * complaints
        + len(named & {"channel", "contact_reason", "direction", "wait_seconds", "handle_seconds", "resolved"}),
        "orders": 2 * bool(named & {"revenue"}) + bool(named & {"product", "category", "status"}),
        "campaigns": 2 * len(named & {"campaign_id", "sent_at", "responded_at"}),
    }
    order = sorted(evidence, key=lambda t: -evidence[t])
    best = order[0]
    todo = []
    if evidence[best] == 0:
        best = "feedback" if kinds.get("text") else "events"
        todo.append(f"table: nothing in the file points to a table; {best} is a guess")
    elif evidence[order[1]] == evidence[best]:
        todo.append(f"table: {best} or {order[1]} (the columns fit both)")
    return best, todo


def _spec(role: str, row: pd.Series, todo: list[str], column: str) -> dict | None:
    """The spec of `column` as `role` ({} = plain), or None when its values do not fit the role."""
    kind, detail = row["kind"], row["detail"]
    if role in DATES:
        if kind in ("bool", "code") and role != schema.TIMESTAMP:
            todo.append(f"{role}: {column!r} is a flag ({row['example']!r}), not a date: map its values to dates "
                        f"(`values:`) or ignore it")
            return None
        if kind == "epoch":
            return {"dates": detail["dates"]}
        if kind != "date":
            return None
        if detail.get("ambiguous"):
            todo.append(f"{role}: {column!r} parses as {detail['dates']} and as {detail['ambiguous'][0]}: which one?")
        return {} if detail["dates"] == "iso" else {"dates": [detail["dates"]]}
    if role in SCORES:
        if kind != "score":
            return None
        lo, hi = detail["scale"]
        if role == schema.NPS and (lo, hi) != (0, 10) and not (header_words(column) == "nps" and hi == 10):
            todo.append(f"nps: {column!r} is on {lo}-{hi}, not 0-10; mapped as csat on its scale instead")
            return None
        if role == schema.CES and (lo, hi) != (1, 7):
            return None
        return {"scale": [lo, hi]} if role == schema.CSAT and (lo, hi) != (1, 5) else {}
    if role in (schema.COMMENT, schema.TEXT):
        return {} if kind in ("text", "other", "code") else None
    if role == schema.REVENUE:
        return {} if kind == "number" else None
    if role in (schema.CUSTOMER_REF, schema.CAMPAIGN_ID):
        return {} if kind in ("id", "number", "other", "code") else None
    if role == schema.CONTACT_CONSENT or role == schema.RESOLVED:
        return {} if kind == "bool" else None
    if role in (schema.WAIT_SECONDS, schema.HANDLE_SECONDS):
        return {} if kind in ("number", "score") else None
    if role in (schema.CHANNEL, schema.TOUCHPOINT, schema.CONTACT_REASON, schema.SEGMENT, schema.SURVEY,
                schema.STATUS, schema.DIRECTION, schema.LANGUAGE):
        if kind not in ("code", "bool", "other", "id") and not (kind == "text" and row["distinct"] <= 0.2 * row["filled"]):
            return None
        todo.append(f"{role}: check that the values of {column!r} are taxonomy codes or aliases "
                    f"(else add `values:`), e.g. {row['example']!r}")
        return {}
    return {}


def _default_touchpoint(table: str, rows: pd.DataFrame) -> str:
    return "complaint" if any("complaint" in header_words(c) or "beschwerde" in header_words(c)
                              for c in rows.index) else "service_contact"


# --- writing ------------------------------------------------------------------------------------
def to_yaml(proposals: list[dict], name: str = "draft", timezone: str = "Europe/Berlin") -> str:
    """The source mapping of `proposals` as YAML text, a comment per decision, `# TODO` where undecided."""
    files = ", ".join(p["file"] for p in proposals)
    lines = [f"# Draft source mapping for {files}, written by `cx map draft`.",
             "# Check every line (the TODO ones first), then try it:",
             f"#   cx run --only 01_validate_clean -p source=config/sources/{name}.yml",
             f"name: {name}",
             f"description: {_scalar('Draft mapping of ' + files)}",
             "defaults:",
             f"  timezone: {timezone}        # TODO: the time zone of timestamps without an offset",
             "tables:"]
    for table in schema.TABLES:
        entries = [p for p in proposals if p["table"] == table]
        if entries:
            lines.append(f"  {table}:")
        for p in entries:
            lines.append(f"    - file: {_scalar(p['file'])}")
            reader = {k: v for k, v in p["reader"].items() if not (k == "format" and v == "csv")}
            if reader:
                lines.append(f"      reader: {_flow(reader)}")
            lines.append("      columns:")
            for canonical, spec in p["columns"].items():
                reason = p["why"].get(canonical, "")
                lines.append(f"        {canonical}: {_flow(spec)}" + (f"   # {reason}" if reason else ""))
            if p["constants"]:
                lines.append("      constants:")
                lines += [f"        {c}: {_flow(v)}   # TODO: placeholder" for c, v in p["constants"].items()]
            lines.append(f"      ignore: {_flow(p['ignore'])}")
            lines += [f"      # TODO: {t}" for t in p["todo"]]
    return "\n".join(lines) + "\n"


def _scalar(value) -> str:
    """A YAML scalar safe inside flow collections: plain when it reads back the same, else double-quoted."""
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z_][\w .\-/]*", value) and not value.endswith(" ")
        return value if plain and yaml.safe_load(value) == value else json.dumps(value, ensure_ascii=False)
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip().removesuffix("...").strip()


def _flow(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


# --- measuring ----------------------------------------------------------------------------------
def roles_of(entries: list[dict]) -> dict[str, str]:
    """Source column -> canonical column of mapping entries (`from`, then template fields; a source
    column used twice keeps its first role). Entries as in a mapping file's `tables.<t>` lists."""
    out: dict[str, str] = {}
    specs = [(canonical, {"from": spec} if isinstance(spec, str) else (spec or {}))
             for entry in entries for canonical, spec in (entry.get("columns") or {}).items()]
    for canonical, spec in [s for s in specs if "from" in s[1]] + [s for s in specs if "template" in s[1]]:
        sources = [spec["from"]] if "from" in spec else re.findall(r"\{([^{}]+)\}", str(spec["template"]))
        for source in sources:
            out.setdefault(source, canonical)
    return out


def agreement(proposal: dict, mapping: dict) -> dict:
    """How a draft entry agrees with a hand-written mapping (parsed YAML) on the same file.

    Output: {"file", "table", "table_right", "mapped", "mapped_right", "columns", "columns_right"}:
    `mapped` = source columns the hand-written mapping maps, `mapped_right` = of those, the ones
    the draft maps to the same canonical column of the same table; `columns` = every column of
    the file, `columns_right` = same canonical column or both left unmapped.
    """
    entries = [(table, e) for table, es in (mapping.get("tables") or {}).items()
               for e in (es if isinstance(es, list) else [es]) if Path(str(e.get("file"))).name == proposal["file"]]
    tables = {t for t, _ in entries}
    hand = roles_of([e for _, e in entries])
    drafted = roles_of([{"columns": proposal["columns"]}]) if proposal["table"] in tables else {}
    every = list(dict.fromkeys([*proposal["ignore"], *roles_of([{"columns": proposal["columns"]}]), *hand]))
    right = [c for c in hand if drafted.get(c) == hand[c]]
    return {"file": proposal["file"], "table": proposal["table"], "table_right": proposal["table"] in tables,
            "mapped": len(hand), "mapped_right": len(right), "columns": len(every),
            "columns_right": sum(drafted.get(c) == hand.get(c) for c in every)}
