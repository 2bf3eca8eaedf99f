"""Time units, the DemoCompany and Chunk records, and small vectorised helpers of the demo
generator (days, times of day, ids, strftime, German money text, window look-ups).

    _strftime(np.array(["2024-03-05T14:22:09"], "datetime64[s]"), "%d.%m.%Y %H:%M") -> ["05.03.2024 14:22"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# --- period and time units (all internal times are naive local time, Europe/Berlin) -----
PERIOD_START = np.datetime64("2024-01-01T00:00:00", "s")
PERIOD_END = np.datetime64("2026-01-01T00:00:00", "s")          # exclusive
SECOND = np.timedelta64(1, "s")
MINUTE = 60 * SECOND
DAY = 86400 * SECOND
NAT = np.datetime64("NaT", "s")
LOCAL_TZ = "Europe/Berlin"


@dataclass
class DemoCompany:
    """The demo exports (file name -> DataFrame as written), their ground truth, the truth
    labels of the survey comments, and the clean truth tables the effects were measured on."""

    files: dict[str, pd.DataFrame]
    ground_truth: dict
    comment_labels: pd.DataFrame
    truth: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    tally: dict = field(default_factory=dict, repr=False)      # additive counts the ground truth is made of


@dataclass(frozen=True)
class Chunk:
    """One chunk of customers in a run of `count` chunks: its index, the id counters of the
    chunks before it (Kundennummer, test accounts, Kontakt-ID, Bestellnummer, Antwort-ID,
    Versand-ID: each chunk numbers on from there), the draws every chunk shares (the regional
    outages and the campaign send times of chunk 0; None: draw them) and whether the contacts
    go to Excel workbooks (else Parquet). `Chunk()` is a run of one chunk."""

    index: int = 0
    count: int = 1
    customers_before: int = 0          # persons and test accounts of the chunks before
    tests_before: int = 0
    contacts_before: int = 0
    orders_before: int = 0
    responses_before: int = 0
    sends_before: int = 0
    outages: pd.DataFrame | None = None
    campaign_sends: np.ndarray | None = None
    excel: bool = True

    def streams(self, seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
        """The random streams of the chunk: main, add-on purchases, occasion programme. Chunk 0 has
        the streams of a run of one chunk; chunk c > 0 streams seeded from (seed, c)."""
        if self.index == 0:
            return tuple(np.random.default_rng(s) for s in (seed, [seed, 1], [seed, 2]))
        return tuple(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(self.index, k))) for k in range(3))


# =========================================================================================
# small vectorised helpers
# =========================================================================================
def _days(x) -> np.ndarray:
    """Float days -> timedelta64[s]."""
    return (np.asarray(x, dtype=float) * 86400).astype("int64") * SECOND


def _floor_day(t: np.ndarray) -> np.ndarray:
    return t.astype("datetime64[D]").astype("datetime64[s]")


def _at_hours(rng: np.random.Generator, days: np.ndarray, lo: float = 8, hi: float = 20) -> np.ndarray:
    """A time of day between lo and hi o'clock on each (midnight) day."""
    return _floor_day(days) + (rng.uniform(lo, hi, len(days)) * 3600).astype("int64") * SECOND


def _uniform_days(rng: np.random.Generator, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A random midnight day in [start, end) (end > start, day resolution)."""
    span = np.maximum((end - start) // DAY, 1)
    return _floor_day(start) + (rng.random(len(start)) * span).astype("int64") * DAY


def _pick(rng: np.random.Generator, options, p, n: int) -> np.ndarray:
    return np.asarray(options)[rng.choice(len(options), size=n, p=np.asarray(p) / np.sum(p))]


def _digits(rng: np.random.Generator, n: int, k: int) -> pd.Series:
    """n random digit strings of length k (leading digit not 0)."""
    return pd.Series(rng.integers(10 ** (k - 1), 10 ** k, n)).astype(str)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    arr = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype="int64")), pa.string()), width, "0")
    return pd.Series(pc.binary_join_element_wise(prefix, arr, ""), dtype="str")


_PAD2 = pa.array([f"{i:02d}" for i in range(100)])
_YEARS = pa.array([str(y) for y in range(1900, 2101)])


def _take(values, index) -> pd.Series:
    """values[index] as a `str` Series, built in Arrow (no Python string per row)."""
    arr = values if isinstance(values, pa.Array) else pa.array(np.asarray(values, dtype=object), pa.string())
    return pd.Series(pc.take(arr, pa.array(np.asarray(index, dtype="int64"))), dtype="str")


def _strftime(t: np.ndarray, fmt: str) -> pd.Series:
    """datetime64 array -> strings for the codes %Y %m %d %H %M %S (NaT -> missing).
    Built from integer parts and lookup tables: several times faster than pyarrow's strftime."""
    t = np.asarray(t, dtype="datetime64[s]")
    nat = np.isnat(t)
    tt = np.where(nat, np.datetime64("2000-01-01", "s"), t)
    month, day = tt.astype("datetime64[M]"), tt.astype("datetime64[D]")
    secs = (tt - day).astype("int64")
    parts_of = {"Y": (_YEARS, month.astype("int64") // 12 + 70), "m": (_PAD2, month.astype("int64") % 12 + 1),
                "d": (_PAD2, (day - month.astype("datetime64[D]")).astype("int64") + 1),
                "H": (_PAD2, secs // 3600), "M": (_PAD2, secs // 60 % 60), "S": (_PAD2, secs % 60)}
    parts = []
    for literal, code in re.findall(r"([^%]*)(?:%(.))?", fmt):
        if literal:
            parts.append(pa.scalar(literal))
        if code:
            table, index = parts_of[code]
            parts.append(pc.take(table, pa.array(index, mask=nat)))
    return pd.Series(pc.binary_join_element_wise(*parts, ""), dtype="str")


def _euro(cents: np.ndarray) -> pd.Series:
    """Integer cents -> German money text: 3999 -> '39,99', 123456789 -> '1.234.567,89' (negative -> missing)."""
    cents = np.asarray(cents, dtype="int64")
    euros = np.abs(cents) // 100
    groups = [euros // 10 ** 6, euros // 1000 % 1000, euros % 1000]          # below 1,000 million euros

    def text(values, pad=0):
        out = pc.cast(pa.array(values), pa.string())
        return pc.utf8_lpad(out, pad, "0") if pad else out

    millions = pc.binary_join_element_wise(text(groups[0]), text(groups[1], 3), text(groups[2], 3), ".")
    thousands = pc.binary_join_element_wise(text(groups[1]), text(groups[2], 3), ".")
    whole = pc.if_else(pa.array(groups[0] > 0), millions, pc.if_else(pa.array(groups[1] > 0), thousands, text(groups[2])))
    out = pd.Series(pc.binary_join_element_wise(whole, text(np.abs(cents) % 100, 2), ","), dtype="str")
    return out.where(cents >= 0)


def _translit(names) -> np.ndarray:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "é": "e", "ł": "l", "Ł": "L"})
    return np.array([re.sub(r"[^a-z\-]", "", n.translate(table).lower()) for n in names])


def _first_in_window(left: pd.DataFrame, right: pd.DataFrame, *, by: str, on: str, right_on: str,
                     window: np.timedelta64, direction: str = "backward", keep: tuple = ()) -> pd.DataFrame:
    """For each row of `left`, the nearest row of `right` (same `by`) within `window`
    before (backward) or after (forward) `left[on]`; columns `keep` of right plus `_hit`."""
    lft = left[[by, on]].assign(_pos=np.arange(len(left))).sort_values(on, kind="stable")
    rgt = (right[[by, right_on, *keep]].rename(columns={right_on: "_rt"})
           .assign(_hit=True).sort_values("_rt", kind="stable"))
    merged = pd.merge_asof(lft, rgt, left_on=on, right_on="_rt", by=by, direction=direction,
                           tolerance=pd.Timedelta(window), allow_exact_matches=True)
    merged = merged.sort_values("_pos").reset_index(drop=True)
    return merged.assign(_hit=merged["_hit"].fillna(False).astype(bool))[["_hit", "_rt", *keep]]
