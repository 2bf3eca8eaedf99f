"""One business case: the tables restricted to a product, a segment or journey stages.

    tables = journey.apply_focus(tables, "product:Breitband; segment:business", taxonomy=taxonomy)
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis.expr.types as ir

from cxlib import engine
from cxlib.schema import CATEGORY, CUSTOMER_ID, PRODUCT, SEGMENT, STAGE

FOCUS_KEYS = ("product", "segment", "journey")
from cxlib.journey.base import (
    JourneyError, _tbl,
)


def parse_focus(focus: str | Mapping | None) -> dict[str, str]:
    """'product:broadband; segment:business' (or a dict) → {'product': 'broadband', 'segment': 'business'}.

    Keys: product (product or category of an order), segment, journey (a stage code or
    several separated by ','). '' or None → no focus.
    """
    if not focus:
        return {}
    if isinstance(focus, Mapping):
        items = {str(k).strip(): str(v).strip() for k, v in focus.items() if v not in (None, "")}
    else:
        parts = [p.strip() for p in str(focus).split(";") if p.strip()]
        bad = [p for p in parts if ":" not in p]
        if bad:
            raise JourneyError(f"focus: expected 'key:value' parts separated by ';', got {bad}")
        items = {k.strip(): v.strip() for k, v in (p.split(":", 1) for p in parts)}
    unknown = sorted(set(items) - set(FOCUS_KEYS))
    if unknown:
        raise JourneyError(f"focus: unknown key(s) {unknown}; use {', '.join(FOCUS_KEYS)}")
    return items


def apply_focus(tables: Mapping[str, object], focus: str | Mapping | None, *, taxonomy=None,
                col_customer: str = CUSTOMER_ID) -> dict[str, ir.Table]:
    """Restrict the tables (customers, events, orders, campaigns, …) to one business case.

    segment: customers of that segment. product: customers with an order of that product (or
    category), and only those orders. journey: only events of those stages (events need
    stage; with `taxonomy` the stage codes are checked), and only customers with such events.
    Every table with a customer column keeps only the focused customers. Returns a new dict
    of Ibis tables.
    """
    spec = parse_focus(focus)
    out = {name: engine.table(t) for name, t in tables.items()}
    if not spec:
        return out
    keep = None
    if "segment" in spec:
        c = _tbl(out.get("customers"), "customers", [col_customer, SEGMENT]) if "customers" in out else None
        if c is None:
            raise JourneyError("focus segment: needs the customers table")
        keep = c.filter(c[SEGMENT] == spec["segment"]).select(col_customer)
    if "product" in spec:
        if "orders" not in out:
            raise JourneyError("focus product: needs the orders table")
        o = _tbl(out["orders"], "orders", [col_customer, PRODUCT])
        match = o[PRODUCT] == spec["product"]
        if CATEGORY in o.columns:
            match = match | (o[CATEGORY] == spec["product"])
        out["orders"] = o.filter(match.fill_null(False))
        buyers = out["orders"].select(col_customer).distinct()
        keep = buyers if keep is None else keep.semi_join(buyers, col_customer)
    if keep is not None:
        out = {name: (t.semi_join(keep, col_customer) if col_customer in t.columns else t)
               for name, t in out.items()}
    if "journey" in spec:
        stages = [s.strip() for s in spec["journey"].split(",") if s.strip()]
        if taxonomy is not None:
            unknown = [s for s in stages if s not in taxonomy.codes("stages")]
            if unknown:
                raise JourneyError(f"focus journey: unknown stage(s) {unknown}; use {taxonomy.codes('stages')}")
        if "events" in out:
            e = _tbl(out["events"], "events", [STAGE, col_customer])
            out["events"] = e.filter(e[STAGE].isin(stages))
            travellers = out["events"].select(col_customer).distinct()
            out = {name: (t.semi_join(travellers, col_customer) if name != "events" and col_customer in t.columns else t)
                   for name, t in out.items()}
    return out
