"""Occasions, campaign relevance and disversion on small hand-made frames: exact values, the thin
cases (no occasions section, no birth dates, no events, no campaigns, short history) and the
consent gate and CSV safety of the occasion list."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import disversion, engine, occasions, occasions_days, relevance, report, schema
from cxlib import occasions_describe as describe
from cxlib import occasions_figures as occasion_figures
from cxlib.config import Taxonomy, load_taxonomy
from tests.figure_checks import caption, close_figures, title  # noqa: F401


def check_figure(figure, *, bars: int, n: str) -> None:
    """A house-style bar figure: `bars` bars, a title, a caption with n."""
    patches = [p for p in figure.axes[0].patches if p.get_height() > 0 and p.get_width() > 0]
    assert len(patches) == bars and title(figure) and f"n = {n}" in caption(figure)

ROOT = Path(__file__).resolve().parents[1]


def utc(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)), dtype="datetime64[us]").dt.tz_localize("Europe/Berlin").dt.tz_convert("UTC")


def day(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)), dtype="datetime64[us]")


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy(ROOT / "config" / "taxonomy.yml")


@pytest.fixture(scope="module")
def types(tax):
    return occasions.occasion_types(tax)


def customers_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "segment": ["private", "business", "private", "private"],
        "signup_date": utc("2020-02-29", "2023-06-15", "2025-06-01", None),
        "churn_date": utc(None, None, "2025-11-30", None),
        "contact_consent": pd.array([True, True, False, True], dtype="boolean"),
        "consent_channels": ["E-Mail, Telefon", "Brief", "E-Mail", None],
    })


def events_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["A", "B", "B", "C"],
        "timestamp": utc("2025-12-20 10:00", "2025-12-28 09:00", "2025-12-01 11:00", "2025-12-30 08:00"),
        "touchpoint": ["complaint", "activation", "complaint", "first_invoice"],
        "resolved": pd.array([True, None, False, None], dtype="boolean"),
    })


# --- definitions and calendar ----------------------------------------------------------------------
def test_occasion_types_from_the_taxonomy(types):
    assert types["occasion"].tolist() == ["contract_anniversary", "renewal_window", "first_invoice", "activation_completed",
                                          "complaint_resolved", "birthday", "name_day"]
    renewal = types.set_index("occasion").loc["renewal_window"]
    assert (renewal["derive"], renewal["term_months"], renewal["lead_days"], renewal["owner"]) == ("term_end", 24, 60, "sales")
    assert occasions.occasion_types(load_taxonomy(ROOT / "config" / "taxonomy.yml"), term_months=12) \
        .set_index("occasion").loc["renewal_window", "term_months"] == 12


def test_no_occasions_section_is_missing_and_a_bad_derivation_an_error():
    with pytest.raises(schema.Missing, match="no occasions"):
        occasions.occasion_types(Taxonomy({}))
    with pytest.raises(occasions.OccasionError, match="derive must be one of"):
        occasions.occasion_types(Taxonomy({"occasions": {"x": {"derive": "astrology"}}}))


def test_read_name_days(tmp_path):
    path = tmp_path / "days.csv"
    path.write_text("# a comment\nname,day\nJürgen,04-23\nKlaus,12-06\n", encoding="utf-8")
    assert_frame_equal(occasions.read_name_days(path), pd.DataFrame({
        "name": pd.Series(["juergen", "klaus"], dtype="str"), "month": [4, 12], "day": [23, 6]}))
    assert occasions.read_name_days("").empty
    path.write_text("name,day\nJürgen,23.04.\n", encoding="utf-8")
    with pytest.raises(occasions.OccasionError, match="rows \\[2\\]"):
        occasions.read_name_days(path)


def test_the_german_calendar_example_reads_and_holds_a_few_hundred_names():
    cal = occasions.read_name_days(ROOT / "config" / "name_days_de.csv")
    assert len(cal) >= 250 and cal["name"].is_unique
    got = cal.set_index("name").loc[["juergen", "klaus", "anna"], ["month", "day"]].values.tolist()
    assert got == [[4, 23], [12, 6], [7, 26]]


def test_first_names_and_name_days_hyphenated_use_the_first_part():
    reid = pd.DataFrame({"customer_id": ["A", "B", "C", "D"],
                         "pii_name": ["Hans-Jürgen Müller", "Klaus Weber", "Uwe Schmidt", None]})
    names = occasions.first_names(reid)
    assert names["first_name"].tolist() == ["hans-juergen", "klaus", "uwe"]
    cal = pd.DataFrame({"name": ["hans", "klaus"], "month": [6, 12], "day": [24, 6]})
    assert occasions.name_day_of(names, cal).values.tolist() == [["A", 6, 24], ["B", 12, 6]]
    assert occasions.first_names(None).empty


# --- dates (the engine's calendar: tests/test_occasions_engine.py) -------------------------------------
def test_local_day_uses_the_time_zone():
    assert occasions.local_day(utc("2025-03-04 00:30")).tolist() == [pd.Timestamp("2025-03-04")]
    assert occasions.local_day(utc("2025-03-04 00:30"), "UTC").tolist() == [pd.Timestamp("2025-03-03")]


def test_availability_says_what_is_missing(types):
    cust = customers_frame()
    av = occasions.availability(types, cust, events=None).set_index("occasion")
    assert av["available"].to_dict() == {"contract_anniversary": True, "renewal_window": True, "first_invoice": False,
                                         "activation_completed": False, "complaint_resolved": False, "birthday": False,
                                         "name_day": False}
    assert av.loc["birthday", "reason"] == "no birth dates" and av.loc["birthday", "enable"].startswith("customers.birth_date")
    assert av.loc["first_invoice", "enable"] == "events.touchpoint = first_invoice"
    with pytest.raises(schema.Missing, match="Birthday: no birth dates"):
        occasions.require_occasion(av.reset_index(), "birthday")
    occasions.require_occasion(av.reset_index(), "contract_anniversary")
    with pytest.raises(schema.Missing, match="no occasion can be derived"):
        occasions.require_any(av.reset_index().assign(available=False))


def test_occasion_dates_from_customers_events_and_names(types):
    names = pd.DataFrame({"customer_id": ["B"], "first_name": ["klaus"]})
    cal = pd.DataFrame({"name": ["klaus"], "month": [1], "day": [10]})
    got = occasions.occasion_dates(types, customers_frame(), start="2026-01-01", end="2026-01-31", events=events_frame(),
                                   names=names, name_days=cal)
    expected = pd.DataFrame({
        "customer_id": ["A", "B", "B", "C"],
        "occasion": ["complaint_resolved", "activation_completed", "name_day", "first_invoice"],
        "date": day("2026-01-03", "2026-01-04", "2026-01-10", "2026-01-06"),
        "window_start": day("2025-12-27", "2025-12-28", "2026-01-07", "2025-12-30"),
    }).astype({"customer_id": "str", "occasion": "str"})
    assert_frame_equal(got, expected)
    # the unresolved complaint of B (2025-12-01 + 14 days) gives no date; C's invoice falls before C churned
    due = occasions.due_occasions(got, customers_frame(), as_of="2025-12-31", horizon_days=5)
    assert due["occasion"].tolist() == ["complaint_resolved", "activation_completed"]      # C churned, name day after 5 days


def test_value_tiers_and_counts(types, tax):
    cust = customers_frame()
    orders = pd.DataFrame({"customer_id": ["A", "B", "B", "C"], "timestamp": utc("2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"),
                           "revenue": [100.0, 50.0, 80.0, 10.0], "status": ["completed", "completed", "cancelled", "completed"]})
    tiers = occasions.value_tiers(cust, orders, as_of="2025-12-31", shares=(0.25, 0.25))
    assert tiers.values.tolist() == [["A", 100.0, "high"], ["B", 50.0, "medium"], ["C", 10.0, "low"], ["D", 0.0, "low"]]
    due = pd.DataFrame({"customer_id": ["A", "B", "A"], "occasion": ["contract_anniversary", "contract_anniversary", "name_day"],
                        "date": day("2026-01-02", "2026-01-03", "2026-01-04"), "window_start": day("2025-12-20", "2025-12-21", "2026-01-01")})
    counts = occasions.occasion_counts(due, cust, tiers, types)
    anniversary = counts.loc[counts["occasion"] == "contract_anniversary"]
    assert anniversary[["by", "group", "customers"]].values.tolist() == [
        ["all", "all", 2], ["segment", "business", 1], ["segment", "private", 1], ["value_tier", "high", 1], ["value_tier", "medium", 1]]
    assert counts.loc[(counts["occasion"] == "renewal_window"), "customers"].tolist() == [0]
    av = occasions.availability(types, cust, names=due.assign(first_name="x")[["customer_id", "first_name"]],
                                name_days=pd.DataFrame({"name": ["x"], "month": [1], "day": [4]}))
    record = occasions.counts_record(counts, av, as_of="2025-12-31", horizon_days=30)
    assert record["counts"][0] == {"occasion": "contract_anniversary", "label": "Contract anniversary", "owner": "marketing",
                                   "customers": 2, "by_segment": {"business": 1, "private": 1},
                                   "by_value_tier": {"high": 1, "medium": 1}}
    text = describe.describe_counts(counts, av, horizon_days=30)
    assert "**3**" in text and "Contract anniversary 2" in text and "nan" not in text
    assert describe.describe_counts(counts.assign(customers=0), av, horizon_days=30).startswith("No occasion falls")
    inputs = SimpleNamespace(available=av, customers=cust, orders=orders, as_of="2025-12-31", due=due, usable=types)
    assert_frame_equal(occasions.due_counts(inputs, shares=(0.25, 0.25)), counts)       # the section's one call
    with pytest.raises(schema.Missing):
        occasions.due_counts(SimpleNamespace(**{**vars(inputs), "available": av.assign(available=False)}))
    german = describe.describe_counts(counts, av, horizon_days=30, lang="de")
    assert german.startswith("In den nächsten 30 Tagen gibt es **3** Anlässe")
    table = describe.counts_table(counts, av, tax, lang="de")
    assert list(table.columns[:3]) == ["Anlass", "zuständig", "alle Kunden"] and table.iloc[0, 2] == "2"
    figure = occasion_figures.counts_figure(counts, horizon_days=30, as_of="2025-12-31", lang="de")
    check_figure(figure, bars=int(counts.loc[counts["by"] == "all", "customers"].gt(0).sum()), n="3")


# --- the occasion list: consent gate and CSV safety ------------------------------------------------------
def test_occasion_list_is_consent_gated_and_safe_to_open(types, tax, tmp_path):
    due = pd.DataFrame({"customer_id": ["A", "B", "D", "Z"],
                        "occasion": ["contract_anniversary", "renewal_window", "name_day", "name_day"],
                        "date": day("2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"),
                        "window_start": day("2025-12-19", "2025-11-04", "2026-01-01", "2026-01-02")})
    listed = occasions.occasion_list(due, customers_frame(), types, tax, channels=["email", "letter", "phone"])
    assert listed[["customer_id", "status", "channel"]].astype(object).where(listed.notna(), None).values.tolist() == [
        ["B", "included", "letter"], ["A", "included", "email"], ["D", "excluded_no_consent", None],
        ["Z", "excluded_other", None]]
    counts = occasions.occasion_list_counts(listed)
    assert counts == {"included": 2, "excluded_no_consent": 1, "excluded_other": 1, "candidates": 4, "customers_included": 2,
                      "exclusion_reasons": {"no explicit consent for a direct channel": 1, "unknown customer": 1}}
    reid = pd.DataFrame({"customer_id": ["A", "B", "D"], "customer_ref": ["=HYPERLINK(1)", "K2", "K4"],
                         "pii_name": ["Anna A", "Bernd B", "Dora D"], "pii_email": ["a@x.de", "b@x.de", None]})
    export = occasions.occasion_list_export(listed, reid)
    assert list(export.columns) == ["customer_ref", "customer_id", "channel", "occasion", "owner", "date", "contact_from"]
    path = report.write_contact_list(export, tmp_path, name="occasion_list.csv")
    text = path.read_text(encoding="utf-8")
    assert "'=HYPERLINK(1)" in text and "Anna" not in text and "@" not in text
    with pytest.raises(occasions.OccasionError, match="no customer_ref for 1"):
        occasions.occasion_list_export(listed, reid.iloc[1:])


def test_a_later_opt_out_in_the_consent_log_wins(types, tax):
    due = pd.DataFrame({"customer_id": ["A"], "occasion": ["contract_anniversary"], "date": day("2026-01-02"),
                        "window_start": day("2025-12-19")})
    log = pd.DataFrame({"customer_id": ["A"], "timestamp": utc("2025-10-01"), "channel": [None], "consent": [False]})
    listed = occasions.occasion_list(due, customers_frame(), types, tax, consent_log=log)
    assert listed["status"].tolist() == ["excluded_no_consent"]


# --- campaign relevance ------------------------------------------------------------------------------------
def test_label_sends_marks_sends_in_an_occasion_lead_time():
    campaigns = pd.DataFrame({"campaign_id": ["k1", "k1", "k2"], "customer_id": ["A", "B", "A"],
                              "sent_at": utc("2025-12-28 09:00", "2025-12-10 09:00", "2026-01-04 09:00"),
                              "responded_at": utc("2025-12-29 10:00", None, None)})
    windows = pd.DataFrame({"customer_id": ["A", "A"], "occasion": ["contract_anniversary", "name_day"],
                            "date": occasions_days.as_day_numbers(day("2026-01-03", "2026-01-04")).astype("int64"),
                            "window_start": occasions_days.as_day_numbers(day("2025-12-20", "2026-01-01")).astype("int64")})
    labelled = relevance.label_sends(campaigns, customers_frame(), windows, fatigue_days=30,
                                     types=pd.DataFrame({"occasion": ["contract_anniversary", "name_day"]}))
    sends = engine.to_pandas(labelled).sort_values(["sent_at"]).reset_index(drop=True)
    assert sends[["customer_id", "responded", "segment", "prior_contacts"]].values.tolist() == [
        ["B", False, "business", 0], ["A", True, "private", 0], ["A", False, "private", 1]]
    assert sends["occasion"].astype(object).where(sends["occasion"].notna(), None).tolist() == [
        None, "contract_anniversary", "name_day"]
    counts = relevance.send_counts(labelled)
    assert int(counts["sends"].sum()) == 3 and counts["occasion_timed"].tolist() == [False, True, True]
    empty = relevance.send_counts(relevance.label_sends(campaigns.iloc[0:0], customers_frame(), windows))
    with pytest.raises(schema.Missing, match="no campaign contacts"):
        relevance.occasion_response(empty)


def test_risk_ratio_and_mantel_haenszel():
    rr = relevance.risk_ratio(30, 100, 10, 100)
    assert (round(rr["ratio"], 6), round(rr["ci_low"], 2), round(rr["ci_high"], 2)) == (3.0, 1.55, 5.8)
    strata = pd.DataFrame({"k1": [10, 6], "n1": [50, 20], "k0": [10, 4], "n0": [100, 40]})
    mh = relevance.mantel_haenszel(strata)
    # R = 10*100/150 + 6*40/60 = 10.667; S = 10*50/150 + 4*20/60 = 4.667
    assert mh["ratio"] == pytest.approx(10.666667 / 4.666667, rel=1e-6) and mh["strata"] == 2
    assert mh["ci_low"] < mh["ratio"] < mh["ci_high"] and mh["p_value"] == pytest.approx(0.0124, abs=1e-4)
    assert np.isnan(relevance.mantel_haenszel(strata.assign(k1=0, k0=0))["ratio"])


def sends_frame(timed_rate=0.3, other_rate=0.1, n=200) -> pd.DataFrame:
    """Labelled sends (one row each) counted by their labels (`relevance.send_counts`)."""
    rows = []
    for timed, rate in ((True, timed_rate), (False, other_rate)):
        for i in range(n):
            rows.append({"campaign_id": f"k{i % 2}", "customer_id": f"{timed}{i}", "responded": i < rate * n,
                         "segment": "private", "occasion": "name_day" if timed else None,
                         "prior_contacts": i % 4, "send_day": occasions_days.as_day_number("2025-01-01")})
    return relevance.send_counts(pd.DataFrame(rows))


def test_occasion_response_and_by_occasion(types):
    sends = sends_frame()
    out = relevance.occasion_response(sends)
    assert (out["occasion_timed"]["rate"], out["other"]["rate"], out["ratio"]["ratio"]) == (0.3, 0.1, pytest.approx(3.0))
    assert out["adjusted"]["ratio"] == pytest.approx(3.0) and out["adjusted"]["strata"] == 2
    assert "**3.00 times**" in describe.describe_relevance(out)
    assert "**3,00-mal**" in describe.describe_relevance(out, lang="de") and "Kampagne" in describe.describe_relevance(out, lang="de")
    table = relevance.response_by_occasion(sends, types)
    assert table["occasion"].tolist() == ["name_day", "other"] and table["ratio"].round(6).tolist() == [3.0, 1.0]
    assert int(sends["sends"].sum()) == 400 and len(sends) < 400            # counted, not one row per send
    with pytest.raises(schema.Missing, match="no campaign send coincided"):
        relevance.occasion_response(sends.assign(occasion_timed=False))


def test_fatigue_bands_and_a_falling_slope():
    sends = relevance.send_counts(pd.DataFrame({
        "prior_contacts": [0] * 100 + [1] * 100 + [5] * 100, "segment": "private", "campaign_id": "k", "occasion": None,
        "send_day": occasions_days.as_day_number("2025-01-01"),
        "responded": [True] * 20 + [False] * 80 + [True] * 10 + [False] * 90 + [True] * 5 + [False] * 95}))
    bands = relevance.fatigue(sends, bands=(0, 1, 3))
    assert bands[["band", "sends", "responses"]].values.tolist() == [["0", 100, 20], ["1", 100, 10], ["3+", 100, 5]]
    slope = relevance.fatigue_slope(sends)
    assert slope["rate_ratio_per_contact"] < 1 and slope["ci_high"] < 1
    change = round(100 * (slope["rate_ratio_per_contact"] - 1))
    assert f"**{change:+d}%**" in describe.describe_fatigue(bands, slope, fatigue_days=90)
    assert f"**{change:+d}\u00a0%**" in describe.describe_fatigue(bands, slope, fatigue_days=90, lang="de")
    figure = occasion_figures.fatigue_figure(bands, fatigue_days=90, slope=slope)
    check_figure(figure, bars=3, n="300")
    with pytest.raises(schema.Missing, match="too few distinct contact counts"):
        relevance.fatigue_slope(sends.assign(prior_contacts=0))


# --- disversion -----------------------------------------------------------------------------------------------
def test_disversion_by_month_counts_regular_customers_in_the_window():
    cust = pd.DataFrame({"customer_id": ["A", "B", "C"], "segment": "private",
                         "signup_date": utc("2023-01-01", "2023-01-01", "2024-06-01"), "churn_date": utc(None, "2025-01-15", None)})
    orders = pd.DataFrame({"customer_id": ["A", "A", "A", "B", "B", "C", "C", "C"],
                           "timestamp": utc("2024-01-05", "2024-03-05", "2024-12-20", "2024-03-01", "2024-04-01", "2024-06-01",
                                            "2025-01-20", "2025-02-10"),
                           "status": ["completed"] * 6 + ["cancelled", "completed"]})
    monthly = disversion.disversion_by_month(cust, orders, min_orders=2, window_days=365)
    # 2025-01-31: A (2 orders since 2024-01-31) regular; B churned; C's second order was cancelled
    assert monthly[["month", "customers", "regular"]].values.tolist() == [["2025-01", 2, 1]]
    with pytest.raises(schema.Missing, match="shorter than the 400-day window"):
        disversion.disversion_by_month(cust, orders, window_days=400)
    with pytest.raises(schema.Missing, match="no completed orders"):
        disversion.disversion_by_month(cust, orders.iloc[0:0])
    with pytest.raises(schema.Missing, match="fewer than two months"):
        disversion.disversion_trend(monthly)


def test_disversion_trend_and_campaign_comparison():
    monthly = pd.DataFrame({"month": ["2025-01", "2025-02"], "customers": [100, 100], "regular": [10, 30]})
    monthly = monthly.assign(rate=monthly["regular"] / monthly["customers"])
    trend = disversion.disversion_trend(monthly)
    assert trend["difference"] == pytest.approx(20.0) and trend["ci_low"] > 0
    assert "rose by 20.0 points" in describe.describe_disversion(trend, min_orders=2, window_days=365)
    assert "stieg um 20,0 Punkte" in describe.describe_disversion(trend, min_orders=2, window_days=365, lang="de")
    recorded = {"disversion": {"trend": {**trend, "last_month": "2025-02"}}}
    assert describe.describe_findings(recorded) == "- The share of regular customers rose to **30.0%** in Feb 2025."
    assert describe.describe_findings({"disversion": {"trend": {**trend, "difference": None}}}) == ""   # JSON null
    # four customers, all signed up long before; R1 and R2 get the campaign, R1 buys twice after it
    cust = pd.DataFrame({"customer_id": ["R1", "R2", "N1", "N2"], "segment": "private", "signup_date": utc(*["2020-01-01"] * 4),
                         "churn_date": utc(*[None] * 4)})
    orders = pd.DataFrame({"customer_id": ["R1", "R1", "N1", "N2"], "timestamp": utc("2025-02-01", "2025-03-01", "2024-01-01", "2025-12-01"),
                           "status": "completed"})
    sends = pd.DataFrame({"campaign_id": "k", "customer_id": ["R1", "R2"], "sent_at": utc("2025-01-10 09:00", "2025-01-10 09:00")})
    out = disversion.campaign_disversion(sends, cust, orders, follow_days=180, window_days=365)
    assert out[["campaign_id", "recipients", "rate", "matched_rate", "difference"]].values.tolist() == [
        ["k", 2, 0.5, 0.0, 50.0], ["all campaigns", 2, 0.5, 0.0, 50.0]]
    with pytest.raises(schema.Missing, match="no campaign with 400 days"):
        disversion.campaign_disversion(sends, cust, orders, follow_days=400)


def test_prepare_on_customers_only_gives_occasions_and_no_sends(tax):
    inputs = relevance.prepare({"customers": customers_frame(), "orders": None, "events": None, "campaigns": None}, None, tax,
                               as_of="2025-06-10", horizon_days=10)
    assert inputs.as_of == pd.Timestamp("2025-06-10") and inputs.sends.empty
    assert inputs.due[["customer_id", "occasion"]].values.tolist() == [["B", "contract_anniversary"], ["B", "renewal_window"]]
    assert inputs.usable["occasion"].tolist() == ["contract_anniversary", "renewal_window"]
    with pytest.raises(schema.Missing, match="no campaign contacts"):
        relevance.occasion_response(inputs.sends)
    with pytest.raises(schema.Missing, match="no campaign contacts"):
        relevance.fatigue(inputs.sends)
    with pytest.raises(schema.Missing, match="no completed orders"):
        disversion.disversion_by_month(inputs.customers, inputs.orders)
    assert relevance.prepare({"customers": customers_frame()}, None, Taxonomy({}), as_of="2025-06-10").due.empty
