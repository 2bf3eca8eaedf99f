"""Generate the demo company: Telko Nord GmbH, a synthetic German telecom provider whose exports
look like real ones.

`generate(customers, seed)` builds two years (2024-01-01 .. 2025-12-31) of a mobile and
broadband provider: a CRM of customers and leads, contact-centre workbooks, web analytics,
surveys with verbatims, orders with their milestones and campaign sends. It plants known
effects (moments of truth, a billing-complaint spike, repeat-customer conversion, ...) and
measures their realised size on its own truth data, so an analysis can be checked against
`ground_truth`. `generate_chunk` builds one chunk of a larger run (cxlib.demo.build): its own
customers, ids numbered on from the chunks before, the outages and campaign send times of chunk 0.

    company = generate(customers=2000, seed=7)
    company.files["crm_kunden.csv"].head()
    company.ground_truth["effects"]["invoice_unclear_nps"]["realised"]

`customers` counts the people in the CRM (customers and leads, ~40% leads who never ordered);
test accounts come on top. Everything is vectorised with numpy Generators (main, add-ons,
occasion programme), so a seed gives the same company every time. See docs/demo_company.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from cxlib import schema
from cxlib.demo.base import PERIOD_END, PERIOD_START, Chunk, DemoCompany, _at_hours, _ids, _take, _uniform_days
from cxlib.demo.campaigns import _campaigns, _occasion_program
from cxlib.demo.contacts import _contacts_after_churn, _contacts_before_churn
from cxlib.demo.exports import (_append_with_duplicates, _campaign_file, _contact_files, _crm, _customer_numbers,
                                _order_file, _program_file, _signed_comments, _survey_file, _test_accounts,
                                _web_files, _with_duplicates)
from cxlib.demo.feedback import _comments, _responses
from cxlib.demo.truth import _effect_counts, _program_counts, _summary_counts, _truth_tables, ground_truth
from cxlib.demo.vocabulary import PLANTED
from cxlib.demo.web import _web
from cxlib.demo.world import _addons, _before, _churn, _outages, _persons, _sales


def generate(customers: int = 20000, seed: int = 7) -> DemoCompany:
    """Generate the demo company: `customers` CRM people (customers and leads) plus ~0.3% test
    accounts, two years of history, in memory as one world. Same seed, same company.

    Returns a DemoCompany with `files` (file name -> DataFrame as written), `ground_truth`,
    `comment_labels` (response_id, language, themes, sentiment, has_pii) and `truth` (clean
    tables the effects were measured on).
    """
    return generate_chunk(customers, seed)[0]


def generate_chunk(customers: int, seed: int, chunk: Chunk = Chunk(), *,
                   truth_tables: bool = True) -> tuple[DemoCompany, Chunk]:
    """One chunk of `customers` people of a run (`Chunk()`: the whole company). Returns the
    chunk's company (files, comment labels, its own ground truth and the `tally` a run's ground
    truth adds up; truth tables unless `truth_tables` is False) and the Chunk that follows it."""
    if int(customers) < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    n = int(customers)
    rng, addon_rng, program_rng = chunk.streams(seed)
    persons = _persons(rng, n)
    persons, leadins, orders = _sales(rng, persons)
    outages, affected = _outages(rng, persons, chunk.outages)
    contacts = _contacts_before_churn(rng, persons, leadins, orders, affected)
    persons = _churn(rng, persons, orders, contacts)
    contacts, orders = _before(contacts, persons), _before(orders, persons)
    leadins, affected = _before(leadins, persons), _before(affected, persons, "start")
    contacts = _contacts_after_churn(rng, persons, contacts)
    responses = _comments(rng, _responses(rng, persons, contacts, orders, affected))
    campaigns, campaign_sends = _campaigns(rng, persons, chunk.campaign_sends)
    sessions, visitors = _web(rng, persons, leadins, orders, campaigns)

    # test accounts with some activity of their own
    n_test = max(1, int(round(PLANTED["messiness"]["test_account_share"] * n)))
    tests = _test_accounts(rng, n, n_test)
    t_vis = len(visitors) + np.arange(n_test)
    visitors = pd.concat([visitors, pd.DataFrame({"vis": t_vis, "pid": tests["persons"]["pid"].to_numpy()})], ignore_index=True)
    t_days = _uniform_days(rng, np.full(2 * n_test, PERIOD_START), np.full(2 * n_test, PERIOD_END))
    sessions = (pd.concat([sessions, pd.DataFrame({"vis": np.repeat(t_vis, 2), "time": _at_hours(rng, t_days, 9, 17),
                                                   "page": np.tile([0, 7], n_test), "device": 0})], ignore_index=True)
                .sort_values("time", kind="stable").reset_index(drop=True))
    knr = _customer_numbers(rng, n, n_test, chunk.customers_before)
    # add-on purchases from a stream of their own: every other draw (and file) stays as without them
    addons = _addons(addon_rng, persons, orders, leadins)

    all_orders = (pd.concat([orders, addons, tests["orders"]], ignore_index=True).sort_values(["time", "pid"], kind="stable")
                  .reset_index(drop=True))
    first_order = chunk.orders_before + 10 ** 7 + 1
    all_orders = all_orders.assign(order_id=_ids("B", np.arange(len(all_orders)) + first_order, 8).to_numpy())
    all_resp = (pd.concat([responses, tests["responses"]], ignore_index=True).sort_values(["time", "pid"], kind="stable")
                .reset_index(drop=True))
    all_resp = all_resp.assign(response_id=_ids("U", np.arange(1, len(all_resp) + 1) + chunk.responses_before, 8).to_numpy())
    all_contacts = pd.concat([contacts, tests["contacts"]], ignore_index=True)

    files: dict[str, pd.DataFrame] = {}
    dups: dict[str, int] = {}
    crm = _crm(rng, persons, tests["persons"], knr, chunk.tests_before)
    files["crm_kunden.csv"], dups["crm_kunden.csv"] = _with_duplicates(rng, crm, ~crm["Kundennummer"].isin(knr.slice(n).to_pylist()).to_numpy())
    contact_files, dups[f"kontakte_*.{'xlsx' if chunk.excel else 'parquet'}"] = _contact_files(
        rng, all_contacts, knr, n, before=chunk.contacts_before, excel=chunk.excel)
    files.update(contact_files)
    real_web = visitors["pid"].to_numpy()[sessions["vis"].to_numpy()] < n     # test accounts' sessions not duplicated
    web, files["web_logins.csv"] = _web_files(rng, sessions, visitors, knr, chunk.index, chunk.count)
    del sessions                                                              # the largest frames: keep one copy
    files["web_sessions.csv"], dups["web_sessions.csv"] = _with_duplicates(rng, web, real_web)
    del web
    all_resp = _signed_comments(all_resp, crm, knr, n)
    survey, score_counts = _survey_file(rng, all_resp, knr, n)
    files["umfrage_antworten.csv"], dups["umfrage_antworten.csv"] = _with_duplicates(rng, survey, all_resp["pid"].to_numpy() < n)
    order_file = _order_file(all_orders, knr)
    files["bestellungen.csv"], dups["bestellungen.csv"] = _with_duplicates(addon_rng, order_file, all_orders["pid"].to_numpy() < n)
    camp = _campaign_file(campaigns, knr, chunk.sends_before + 1)
    files["kampagnen_versand.csv"], dups["kampagnen_versand.csv"] = _with_duplicates(rng, camp)
    # the occasion programme from a stream of its own: its sends and the options they sell are appended to
    # the campaign and order files; every other row, file and earlier effect stays as without it
    first_name = (crm.drop_duplicates("Kundennummer").set_index("Kundennummer")["Vorname"]
                  .reindex(_take(knr, np.arange(n)).to_numpy()).to_numpy())
    program, options, blasts = _occasion_program(program_rng, persons, orders, contacts, leadins, campaigns, first_name)
    files["kampagnen_versand.csv"], dups["kampagnen_versand.csv"] = _append_with_duplicates(
        program_rng, files["kampagnen_versand.csv"], _program_file(program, knr, chunk.sends_before + len(camp) + 1), dups["kampagnen_versand.csv"])
    options = options.assign(order_id=_ids("B", np.arange(len(options)) + first_order + len(all_orders), 8).to_numpy())
    files["bestellungen.csv"], dups["bestellungen.csv"] = _append_with_duplicates(
        program_rng, files["bestellungen.csv"], _order_file(options, knr), dups["bestellungen.csv"])

    # truth (real people only) and the realised effects
    real_resp = all_resp["pid"].to_numpy() < n
    flags = ["x_invoice", "x_long_provisioning", "x_outage", "x_outage_notified", "x_long_wait", "x_phone", "has_pii"]
    resp_truth = all_resp[real_resp].reset_index(drop=True).astype({c: bool for c in flags})
    w_nps = pd.to_numeric(survey["Weiterempfehlung"], errors="coerce").to_numpy()[real_resp]
    w_ces = pd.to_numeric(survey["Aufwand"], errors="coerce").to_numpy()[real_resp]
    valid_nps = (w_nps >= 0) & (w_nps <= 10)
    valid_ces = (w_ces >= 1) & (w_ces <= 7)
    orders_truth = all_orders[all_orders["pid"].to_numpy() < n].reset_index(drop=True)
    tally = {"summary": _summary_counts(persons, files, dups, knr, n_test, tests, score_counts, contacts, resp_truth),
             "effects": _effect_counts(persons, leadins, orders_truth, contacts, resp_truth, affected, valid_nps, valid_ces),
             "program": _program_counts(program, blasts, options, orders, persons)}
    labels = (resp_truth.loc[resp_truth["comment"].notna(), ["response_id", "language", "themes", "sentiment", "has_pii"]]
              .reset_index(drop=True))
    truth = {}
    if truth_tables:
        truth = _truth_tables(persons, contacts, pd.concat([orders_truth, options], ignore_index=True), resp_truth, campaigns, knr)
        truth["campaigns"] = pd.concat([truth["campaigns"], pd.DataFrame({
            schema.CAMPAIGN_ID: program["name"], schema.CUSTOMER_REF: _take(knr, program["pid"].to_numpy()),
            schema.SENT_AT: program["sent"], schema.RESPONDED_AT: program["responded"]})], ignore_index=True)
    company = DemoCompany(files=files, ground_truth=ground_truth(tally, customers=n, seed=seed, outages=outages),
                          comment_labels=labels, truth=truth, tally=tally)
    following = replace(chunk, index=chunk.index + 1, customers_before=chunk.customers_before + n + n_test,
                        tests_before=chunk.tests_before + n_test, contacts_before=chunk.contacts_before + len(all_contacts),
                        orders_before=chunk.orders_before + len(all_orders) + len(options),
                        responses_before=chunk.responses_before + len(all_resp),
                        sends_before=chunk.sends_before + len(camp) + len(program), outages=outages, campaign_sends=campaign_sends)
    return company, following
