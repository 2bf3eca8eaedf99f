"""What every section of the journey report starts from: the tables restricted to the focus, the
events with their stages (and, for the breakdowns by segment, with the customer's segment), the
event log at a glance and its period.

    data = journey.prepare(catalog.tables(processed_dir, journey.TABLES), taxonomy)
    journey.funnel(data.events, ["web_visit", "quote", "order"])
    journey.funnel(data.events_with_segment, ["web_visit", "quote", "order"], by="segment")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ibis.expr.types as ir
import pandas as pd

from cxlib.journey.focus import apply_focus
from cxlib.journey.stages import attach, overview, period, with_stages

TABLES = ("customers", "events", "orders", "campaigns")      # the processed tables the journey report reads


@dataclass(frozen=True)
class Inputs:
    """The prepared tables (Ibis; None where the processed data lacks one), the event log's
    overview (`overview`) and its first and last timestamp (None for an empty log). `events`
    carry their stage; `events_with_segment` also the customer's segment, a join that only the
    breakdowns by segment pay for."""

    customers: ir.Table | None
    events: ir.Table | None
    events_with_segment: ir.Table | None
    orders: ir.Table | None
    campaigns: ir.Table | None
    log: pd.DataFrame
    start: pd.Timestamp | None
    as_of: pd.Timestamp | None


def prepare(tables: Mapping[str, object], taxonomy, *, focus: str | Mapping | None = None) -> Inputs:
    """`tables` (customers, events, orders, campaigns) restricted to `focus` (see `apply_focus`),
    the events with stage (`with_stages`) and with segment too (`attach`), and the log's overview
    and period."""
    focused = apply_focus(tables, focus, taxonomy=taxonomy)
    events = with_stages(focused["events"], taxonomy)
    log = overview(events)
    start, as_of = period(log)
    return Inputs(customers=focused["customers"], events=events, events_with_segment=attach(events, focused["customers"]),
                  orders=focused.get("orders"),
                  campaigns=focused.get("campaigns"), log=log, start=start, as_of=as_of)
