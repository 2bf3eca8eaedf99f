"""One canonical column of a batch: source text -> typed canonical values.

`column_values(src, name, column, spec, override, ctx, taxonomy, note)` takes the working
frame of a batch (source columns as text, canon flags, `WORK_FILE`, `WORK_ROW`) and returns
the typed values of canonical column `name` for every row: constants, templates, value maps,
defaults, code lists, taxonomy aliases, numbers, booleans and dates in the reader's formats.
Values that do not parse become missing and are counted in `ctx.bad` (`BadValues`) over all
batches of the entry; `BadValues.decide` at the end of the entry stops the run when a column's
share is above `max_unparseable_share`. Every rule notes the rows it touched through `note`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxlib import privacy, reshape, schema
from cxlib.config import Taxonomy, fold
from cxlib.sources.mapping import (
    CANON, EPOCH_UNITS, FALSE_WORDS, JOINED, N_EXAMPLES, SHOWN, TRUE_WORDS, TZ_SUFFIX, UNITS, UTC_SUFFIX, WORK_FILE, WORK_ROW,
    YAML_BOOL_SPELLINGS, SourceError, literal,
)

class BadValues:
    """Unparseable values per column of one entry, counted over its batches: values, bad values,
    the first N_EXAMPLES bad rows and every bad row's file and number (in file order)."""

    def __init__(self):
        self.columns: dict[tuple, dict] = {}

    def add(self, bad: pd.Series, text: pd.Series, src: pd.DataFrame, name: str, shown: str, kind: str,
            formats, note) -> None:
        """Count one batch's `bad` values of `text` (canonical column `name` from source `shown`)."""
        n_bad = int(bad.sum())
        note(kind, f"unparseable {kind} set to missing", n_bad, subject=f"{name} from {shown}")
        found = self.columns.setdefault((name, shown, kind), {"bad": 0, "values": 0, "formats": formats,
                                                              "examples": [], "rows": [], "files": {}})
        found["values"] += int(text.notna().sum())
        if not n_bad:
            return
        rows = src.loc[bad, [WORK_FILE, WORK_ROW]].assign(value=text.loc[bad].astype(object))
        shown_rows = sum(len(e) for e in found["examples"])
        if shown_rows < N_EXAMPLES:
            found["examples"].append(rows.head(N_EXAMPLES - shown_rows))
        found["bad"] += n_bad
        found["rows"].append(rows[WORK_ROW].astype("int64").to_numpy())
        found["files"] |= dict.fromkeys(pd.unique(rows[WORK_FILE]))

    def decide(self, ctx: Context, note) -> None:
        """At the end of the entry: more than max_unparseable_share bad values of a column stop the
        run (the first such column, its totals, first rows and files); fewer are noted with examples."""
        limit = float(ctx.options["max_unparseable_share"])
        for (name, shown, kind), found in self.columns.items():
            if not found["bad"]:
                continue
            rows = pd.concat(found["examples"], ignore_index=True)
            examples = examples_of(rows, rows["value"], shown,
                                 personal=name in privacy.PERSONAL_COLUMNS or shown in ctx.personal)
            how = (f" (dates: {found['formats']!r}, timezone {ctx.options['timezone']})" if kind == "dates" else
                   f" (decimal {ctx.options.get('decimal') or '.'!r}, thousands {ctx.options.get('thousands')!r})"
                   if kind == "numbers" else "")
            if found["bad"] / found["values"] > limit:
                ctx.fail(f"{', '.join(found['files'])}: column {shown!r} (-> {name}): {found['bad']} of "
                         f"{found['values']} values are not valid {kind}{how}, more than max_unparseable_share "
                         f"{limit:g}; first rows: {examples}", file=str(rows[WORK_FILE].iloc[0]), column=shown,
                         rows=np.concatenate(found["rows"]).tolist())
            note.describe(kind, f"unparseable {kind} set to missing", f"{name} from {shown!r}: {examples}",
                          subject=f"{name} from {shown}")


@dataclass(frozen=True)
class Context:
    """The entry being mapped: messages name `mapping` and `label`; `files` are the entry's data
    files, `personal` the source columns whose values messages mask, `bad` counts unparseable values."""

    mapping: str
    table: str
    label: str
    options: dict
    personal: frozenset[str] = frozenset()
    files: tuple[str, ...] = ()
    bad: BadValues = field(default_factory=BadValues)

    def fail(self, problem: str, *, file: str | None = None, column: str | None = None,
             rows: list[int] | None = None):
        raise SourceError(f"{self.mapping}: {self.label}: {problem}", file=file, column=column, rows=rows)


def column_values(src: pd.DataFrame, name: str, column: schema.Column, spec: dict | None, override: pd.Series | None,
            ctx: Context, taxonomy: Taxonomy, note) -> pd.Series:
    """The typed values of canonical column `name` for every row of `src`."""
    index = src.index
    if spec is None:
        text, canon = pd.Series(np.nan, index=index, dtype="str"), pd.Series(True, index=index)
    elif "constant" in spec:
        text, canon = pd.Series(literal(spec["constant"]), index=index, dtype="str"), pd.Series(True, index=index)
    elif "template" in spec:
        lineage = {reshape.ROW_FIELD: src[WORK_ROW].astype("int64").astype("str"), reshape.FILE_FIELD: src[WORK_FILE].astype("str")}
        text = pd.Series("", index=index, dtype="str")
        for part, named in reshape.template_parts(spec["template"]):
            text = text + part + ("" if named is None else lineage[named] if named in lineage else src[named])
        canon = pd.Series(False, index=index)
    elif "row_number" in spec:
        text, canon = src[WORK_ROW].astype("int64").astype("str"), pd.Series(True, index=index)
    else:
        text, canon = src[spec["from"]].astype("str"), canon_flags(src, spec["from"])
    spec = spec or {}
    blank = text.isna()
    shown = (spec.get(SHOWN) or spec.get("from", "").replace(JOINED, "") or spec.get("template")
             or ("row number" if "row_number" in spec else f"constant {spec.get('constant')!r}"))
    if spec.get("na_values"):
        na = [literal(v) for v in spec["na_values"]]
        hit = text.isin(na)
        note("na_values", "values set to missing by na_values", int(hit.sum()), f"{name} ({na})", subject=name)
        text = text.mask(hit)
    if spec.get("values") and not column.separator:      # a list column maps each of its codes
        vmap = _value_map(spec["values"])
        hit = text.isin(list(vmap))
        note("values", "values mapped by the value map", int(hit.sum()), name, subject=name)
        text, canon = text.mask(hit, text.map(vmap)).astype("str"), canon | hit
    if "default" in spec:
        missing = text.isna()
        note("default", "blanks filled with the default", int(missing.sum()), f"{name} = {spec['default']!r}", subject=name)
        text, canon = text.fillna(literal(spec["default"])).astype("str"), canon | missing
    elif column.separator and set(spec) & {"from", "template"}:
        empty = blank & text.isna()          # a blank cell of a mapped list column: the empty list (no code applies)
        note("default", "blank cells read as an empty list (no code applies)", int(empty.sum()), name, subject=name)
        text = text.mask(empty, "").astype("str")
    if override is not None:
        hit = override.notna()
        text, canon = text.mask(hit, override).astype("str"), canon | hit
    if column.separator:
        text = _code_list(text, spec.get("values"), column, taxonomy, name, note)
    elif column.codes:
        text = _normalise_codes(text, column.codes, taxonomy, name, note)
    if name == schema.LANGUAGE:
        codes = reshape.language_codes(text)
        changed = codes.ne(text) & text.notna()
        pairs = pd.DataFrame({"a": text[changed], "b": codes[changed]}).drop_duplicates().head(3)
        shown_changes = ", ".join(f"{a!r} -> {b!r}" for a, b in pairs.itertuples(index=False))
        note("codes", "language names normalised to ISO 639-1 codes", int(changed.sum()), f"{name}: {shown_changes}",
             subject=name)
        text = codes
    typed = _typed(text, canon, column.dtype, name, shown, src, spec, ctx, note)
    if "unit" in spec and UNITS[spec["unit"]] != 1.0:
        note("unit", f"{spec['unit']} converted to seconds", int(typed.notna().sum()), name, subject=name)
        typed = typed * UNITS[spec["unit"]]
    if "multiply" in spec:
        factor = _typed(src[spec["multiply"]].astype("str"), canon_flags(src, spec["multiply"]), "float", name,
                        spec["multiply"], src, {}, ctx, note)
        note("multiply", f"values multiplied by {spec['multiply']!r}", int(typed.notna().sum()), name,
             subject=name)
        typed = typed * factor
    return typed


def _value_map(values: dict) -> dict[str, str | float]:
    """Value map keys as trimmed text (YAML booleans expanded to their spellings)."""
    out: dict[str, str | float] = {}
    for key, value in values.items():
        keys = YAML_BOOL_SPELLINGS[key] if isinstance(key, bool) else (literal(key),)
        out |= {k: literal(value) for k in keys}
    return out


def _code_list(text: pd.Series, values: dict | None, column: schema.Column, taxonomy: Taxonomy, name: str,
               note) -> pd.Series:
    """A list column's cells ('Lieferung; billing|price') -> canonical codes joined by
    `column.separator` ('delivery;billing;price'): split at ; | or comma, each code through the
    value map and the taxonomy aliases, repeats dropped; '' stays the empty list, missing stays
    missing; unknown codes are left for the validation gate."""
    parts = text.dropna().str.split(r"[;|,]", regex=True).explode().str.strip().astype("str")
    parts = parts.loc[parts.ne("")]
    if values:
        vmap = _value_map(values)
        hit = parts.isin(list(vmap))
        note("values", "codes mapped by the value map", int(hit.sum()), name, subject=name)
        parts = parts.mask(hit, parts.map(vmap)).astype("str").loc[lambda d: d.notna() & d.ne("")]
    if column.codes:
        parts = _normalise_codes(parts, column.codes, taxonomy, name, note)
    joined = (parts.rename("code").rename_axis("row").reset_index().drop_duplicates()
              .groupby("row", sort=False)["code"].agg(column.separator.join))
    return text.mask(text.notna(), joined.reindex(text.index).fillna("")).astype("str")


def _normalise_codes(text: pd.Series, section: str, taxonomy: Taxonomy, name: str, note) -> pd.Series:
    """Spellings -> canonical codes through the taxonomy aliases (case, blanks, umlauts ignored;
    a code set of `schema.CODE_SETS` also takes the spellings of `schema.CODE_ALIASES`);
    unknown values are left as they are for the validation gate."""
    if section in taxonomy.data:
        aliases = taxonomy.aliases(section)
    elif section in schema.CODE_SETS:
        aliases = {**{fold(k): v for k, v in schema.CODE_ALIASES.get(section, {}).items()},
                   **{fold(c): c for c in schema.CODE_SETS[section]}}
    else:
        return text
    distinct = pd.unique(text.dropna())
    lookup = {v: aliases.get(fold(v), v) for v in distinct}   # once per distinct value, not per row
    out = text.map(lookup, na_action="ignore").astype("str")
    changed = out.ne(text) & text.notna()
    examples = ", ".join(f"{privacy.shown_value(a)} -> {privacy.shown_value(b)}"
                         for a, b in list({k: v for k, v in lookup.items() if k != v}.items())[:3])
    note("codes", "values normalised by taxonomy alias", int(changed.sum()), f"{name}: {examples}", subject=name)
    known = set(aliases.values())
    unknown = out.notna() & ~out.isin(known)
    shown = ", ".join(privacy.shown_value(v) for v in pd.unique(out[unknown])[:N_EXAMPLES])
    note("codes", f"values not in taxonomy section {section} (left for the validation gate)", int(unknown.sum()),
         f"{name}: {shown}", subject=name)
    return out


def _typed(text: pd.Series, canon: pd.Series, dtype: str, name: str, shown: str, src: pd.DataFrame,
           spec: dict, ctx: Context, note) -> pd.Series:
    options = ctx.options
    if dtype == "string":
        return text.astype("str")
    if dtype in ("float", "int"):
        values = _to_number(text, canon, options.get("decimal") or ".", options.get("thousands"))
        if dtype == "int":
            values = values.where(values.eq(values.round()))
        bad = text.notna() & values.isna()
        ctx.bad.add(bad, text, src, name, shown, "numbers", None, note)
        return values.astype("Int64") if dtype == "int" else values.astype("float64")
    if dtype == "bool":
        words = {**{w: True for w in TRUE_WORDS}, **{w: False for w in FALSE_WORDS}}
        values = text.str.lower().map(words, na_action="ignore").astype("boolean")
        ctx.bad.add(text.notna() & values.isna(), text, src, name, shown, "booleans", None, note)
        return values
    if dtype in ("datetime", "date"):
        tz = str(options["timezone"])
        formats = spec.get("dates", "iso")
        values = _to_datetime(text.where(~canon), formats, tz)
        epochs = [f for f in ([formats] if isinstance(formats, str) else formats) if f in EPOCH_UNITS]
        values = values.mask(canon & text.notna(), _to_datetime(text.where(canon), ["iso", *epochs], tz))
        ctx.bad.add(text.notna() & values.isna(), text, src, name, shown, "dates", formats, note)
        if dtype == "date":
            return values.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().astype("datetime64[us]")
        return values
    raise ValueError(f"unknown canonical dtype {dtype!r} of column {name}")


def _to_number(text: pd.Series, canon: pd.Series, decimal: str, thousands: str | None) -> pd.Series:
    """Text -> float64; source text uses the reader's decimal and thousands signs, canonical text a dot."""
    source = text.where(~canon)
    if thousands:
        source = source.str.replace(thousands, "", regex=False)
    if decimal != ".":
        source = source.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(source.where(~canon, text), errors="coerce").astype("float64")


def _to_datetime(text: pd.Series, formats, tz: str) -> pd.Series:
    """Text -> datetime64[us, UTC]. Formats are tried in order, each on the values still
    unparsed. Values with an offset are converted; naive date-times are local time of `tz`;
    dates without a time of day stay on their calendar date (midnight UTC); epoch_ms / epoch_s
    count (milli)seconds since 1970-01-01 UTC."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if formats in ("iso", "dayfirst"):
        steps = ["iso", formats] if formats == "dayfirst" else ["iso"]
    else:
        steps = [formats] if isinstance(formats, str) else list(formats)
    for step in steps:
        todo = text.notna() & result.isna()
        if not todo.any():
            break
        values = text.loc[todo]
        if step in EPOCH_UNITS:
            parsed = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit=EPOCH_UNITS[step], utc=True,
                                    errors="coerce")
        elif step in ("iso", "dayfirst"):
            aware = values.str.contains(TZ_SUFFIX, regex=True)
            dated = ~aware & reshape.date_only_text(values)
            naive = ~aware & ~dated
            kwargs = {"format": "ISO8601"} if step == "iso" else {"format": "mixed", "dayfirst": True}
            parsed = pd.concat([
                pd.to_datetime(values.loc[aware].str.replace(UTC_SUFFIX, "Z", regex=True), utc=True,
                               errors="coerce", **kwargs),
                _localise(pd.to_datetime(values.loc[dated], errors="coerce", **kwargs), "UTC"),
                _localise(pd.to_datetime(values.loc[naive], errors="coerce", **kwargs), tz),
            ])
        elif "%z" in step or "%Z" in step:
            parsed = pd.to_datetime(values, format=step, utc=True, errors="coerce")
        else:
            zone = "UTC" if reshape.date_only_format(step) else tz
            parsed = _localise(pd.to_datetime(values, format=step, errors="coerce"), zone)
        result = result.mask(todo, parsed.reindex(text.index).dt.as_unit("us"))
    return result


def _localise(naive: pd.Series, tz: str) -> pd.Series:
    """Naive local times -> UTC (an ambiguous autumn hour counts as standard time; a skipped
    spring hour is moved forward)."""
    naive = pd.to_datetime(naive, errors="coerce")
    if naive.dt.tz is not None:
        return naive.dt.tz_convert("UTC")
    return naive.dt.tz_localize(tz, ambiguous=np.zeros(len(naive), dtype=bool),
                                nonexistent="shift_forward").dt.tz_convert("UTC")


def examples_of(rows: pd.DataFrame, values: pd.Series, column: str = "value", *, personal: bool = False,
              n: int = N_EXAMPLES) -> str:
    """"Datum='31.02.2024' (crm.csv row 3); Datum='gestern' (crm.csv row 7)" for the first n rows
    (`privacy.example_rows`: a personal column's values are masked, others scrubbed and shortened)."""
    frame = pd.DataFrame({column: values.astype(object), WORK_FILE: rows[WORK_FILE], WORK_ROW: rows[WORK_ROW]}, index=rows.index)
    return privacy.example_rows(frame, [column], personal={column} if personal else (), file_column=WORK_FILE,
                                row_column=WORK_ROW, n=n)




def normalise_ids(refs: pd.Series, src: pd.DataFrame, ctx: Context, note) -> pd.Series:
    """Customer numbers in one spelling: Unicode NFKC (no-break and full-width characters), blanks
    and zero-width characters at either end removed, and upper case unless the reader option
    `ids_case_sensitive` is true (k0000002 and K0000002 are one customer: CRM and ERP numbers
    are case-insensitive almost everywhere, and a split customer would silently lose or gain
    consent, while a wrong merge shows as a conflicting duplicate key in cleaning). The log counts
    the values changed and names their rows, never the numbers."""
    out = refs.astype("str")
    wide = out.notna() & ~out.str.isascii().fillna(True).astype(bool)     # NFKC is slow: only where it can matter
    if wide.any():
        out = out.mask(wide, out.loc[wide].str.normalize("NFKC"))
    out = out.str.strip(" \t\r\n\u00a0\u200b\u200c\u200d\u2060\ufeff")
    if not ctx.options.get("ids_case_sensitive", False):
        out = out.str.upper()
    out = out.mask(out.eq(""))
    changed = refs.astype("str").ne(out) & refs.notna()
    how = "blanks" if ctx.options.get("ids_case_sensitive", False) else "blanks, case"
    note("ids", f"customer numbers normalised ({how})", int(changed.sum()),
         examples_of(src.loc[changed], refs.loc[changed], schema.CUSTOMER_REF, personal=True, n=3) if changed.any() else "",
         subject=schema.CUSTOMER_REF)
    return out


def canon_flags(src: pd.DataFrame, column: str) -> pd.Series:
    """The canonical-cell flags of a source column (all False for plain text files)."""
    flags = src.get(CANON + column)
    return pd.Series(False, index=src.index) if flags is None else flags.fillna(False).astype(bool)
