"""Tests of cxlib.demo: helpers on hand-made inputs, determinism, file formats and messiness
against the ground truth, planted effects, verbatim templates, has_exports, atomic writing,
the demo.yml mapping over the written exports, and runs in chunks (write_demo): ids unique
across chunks, the ground truth the sum of the chunks', one chunk identical to generate."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from cxlib import demo, metrics, text
from cxlib.demo import base, exports, sentences, writers
from cxlib.demo import company as generator
from cxlib.config import load_taxonomy
from cxlib.sources import map_sources

ROOT = Path(__file__).resolve().parents[1]
N, SEED = 3000, 7
CSV = {"crm_kunden.csv": (";", "latin-1"), "bestellungen.csv": (";", "utf-8"), "kampagnen_versand.csv": (";", "utf-8"),
       "umfrage_antworten.csv": (",", "utf-8"), "web_sessions.csv": (",", "utf-8"), "web_logins.csv": (",", "utf-8")}


@pytest.fixture(scope="module")
def company() -> demo.DemoCompany:
    return demo.generate(N, SEED)


@pytest.fixture(scope="module")
def raw(company, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    (out / ".gitkeep").touch()
    demo.write_exports(company, out)
    return out


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(ROOT / "config" / "taxonomy.yml")


def read_csv(raw: Path, name: str) -> pd.DataFrame:
    sep, encoding = CSV[name]
    return pd.read_csv(raw / name, sep=sep, encoding=encoding, dtype=str, keep_default_na=False)


def contact_frames(company) -> pd.DataFrame:
    return pd.concat([df for name, df in company.files.items() if name.startswith("kontakte_")], ignore_index=True)


# --- helpers on hand-made inputs ------------------------------------------------------------
def test_euro_formats_german_money_with_thousands():
    got = base._euro(np.array([0, 5, 3999, 99999, 100000, 123456789, -1]))
    expected = pd.Series(["0,00", "0,05", "39,99", "999,99", "1.000,00", "1.234.567,89", None], dtype="str")
    assert_series_equal(got, expected)


def test_strftime_matches_formats_and_keeps_missing():
    t = np.array(["2024-03-05T14:22:09", "NaT", "2025-12-31T00:00:00"], dtype="datetime64[s]")
    assert base._strftime(t, "%d.%m.%Y %H:%M").tolist()[::2] == ["05.03.2024 14:22", "31.12.2025 00:00"]
    assert base._strftime(t, "%Y-%m-%dT%H:%M:%SZ").tolist()[0] == "2024-03-05T14:22:09Z"
    assert base._strftime(t, "%d.%m.%Y").isna().tolist() == [False, True, False]
    assert len(base._strftime(t[:0], "%d.%m.%Y")) == 0


def test_with_duplicates_repeats_eligible_rows_next_to_their_original():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": [str(i) for i in range(300)]})
    out, k = exports._with_duplicates(rng, frame, np.arange(300) < 10)
    assert k == 3 and len(out) == 303
    dup = out[out.duplicated()]
    assert dup["a"].astype(int).lt(10).all()
    assert (out.index[out.duplicated(keep="last")] + 1).tolist() == dup.index.tolist()


def test_expand_alternatives():
    assert sentences._expand("A [x|y] B[| C]") == ["A x B", "A x B C", "A y B", "A y B C"]


# --- API edge cases ---------------------------------------------------------------------------
def test_generate_rejects_no_customers():
    with pytest.raises(ValueError, match="at least 1"):
        demo.generate(0)


def test_generate_one_customer_gives_consistent_files():
    tiny = demo.generate(1, 3)
    assert tiny.ground_truth["people"]["crm_people"] == 1
    assert len(tiny.files["crm_kunden.csv"]) == 2          # the person and one test account
    assert set(tiny.files) >= {"crm_kunden.csv", "web_sessions.csv", "web_logins.csv", "umfrage_antworten.csv",
                               "bestellungen.csv", "kampagnen_versand.csv"}


def test_same_seed_same_company_other_seed_differs(company):
    again = demo.generate(N, SEED)
    assert list(again.files) == list(company.files)
    for name, frame in company.files.items():
        assert_frame_equal(again.files[name], frame, obj=name)
    assert again.ground_truth == company.ground_truth
    assert_frame_equal(again.comment_labels, company.comment_labels)
    other = demo.generate(N, SEED + 1)
    assert not other.files["crm_kunden.csv"].equals(company.files["crm_kunden.csv"])
    assert other.ground_truth != company.ground_truth


# --- files: names, encodings, separators, formats ----------------------------------------------
def test_written_files_and_truth(company, raw):
    names = {p.name for p in raw.iterdir() if p.is_file() and p.name != ".gitkeep"}
    assert names == set(company.files)
    assert {f"kontakte_{y}_Q{q}.xlsx" for y in (2024, 2025) for q in range(1, 5)} <= names
    assert not [p for p in raw.iterdir() if p.name.startswith(".demo-")]
    truth = json.loads((raw / "_truth" / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth == company.ground_truth
    labels = pd.read_csv(raw / "_truth" / "comment_labels.csv", dtype=str, keep_default_na=False)
    assert labels.columns.tolist() == ["response_id", "language", "themes", "sentiment", "has_pii"]
    assert len(labels) == len(company.comment_labels) == company.ground_truth["responses"]["with_comment"]


@pytest.mark.parametrize("name", sorted(CSV))
def test_csv_files_read_back_as_generated(company, raw, name):
    back = read_csv(raw, name)
    assert_frame_equal(back, company.files[name].astype(str).where(company.files[name].notna(), ""), check_dtype=False)


def test_crm_is_latin1_with_umlauts_and_decimal_commas(company, raw):
    data = (raw / "crm_kunden.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    crm = read_csv(raw, "crm_kunden.csv")
    assert crm.columns[0] == "Kundennummer" and "Kündigungsdatum" in crm.columns
    assert crm["Kundennummer"].str.fullmatch(r"K\d{7}").all()
    assert crm["Nachname"].str.contains("[äöüß]").any() and crm["Vorname"].str.contains("[äöüÖ]").any()
    assert set(crm["Region"]) == {"Nord", "Süd", "West", "Ost"}
    money = crm["Monatlicher Umsatz"][crm["Monatlicher Umsatz"] != ""]
    assert money.str.fullmatch(r"\d{1,3}(\.\d{3})*,\d{2}").all() and money.str.contains(r"\.").any()
    leads = crm["Kunde seit"] == ""
    assert leads.mean() == pytest.approx(0.40, abs=0.03)
    assert (crm.loc[leads, "Monatlicher Umsatz"] == "").all()
    assert set(crm["Einwilligung Kontakt"]) == {"ja", "nein", ""}
    dates = crm[["Erfasst am", "Kunde seit", "Kündigungsdatum"]].stack()
    assert dates[dates != ""].str.fullmatch(r"\d\d\.\d\d\.\d{4}").all()


def test_orders_survey_web_formats(raw):
    orders = read_csv(raw, "bestellungen.csv")
    assert orders["Betrag"].str.fullmatch(r"\d{1,3}(\.\d{3})*,\d{2}").all()
    assert set(orders["Status"]) == {"abgeschlossen", "storniert", "offen"}
    assert set(orders["Auftragsart"]) == {"Neuvertrag", "Verlängerung", "Zusatzoption", "Zusatzkauf"}
    assert (orders.loc[orders["Status"] == "storniert", "Stornodatum"] != "").all()
    survey = read_csv(raw, "umfrage_antworten.csv")
    formats = {"iso": r"\d{4}-\d\d-\d\d \d\d:\d\d", "de_time": r"\d\d\.\d\d\.\d{4} \d\d:\d\d", "de_date": r"\d\d\.\d\d\.\d{4}"}
    shares = {k: survey["Eingang"].str.fullmatch(p).mean() for k, p in formats.items()}
    assert sum(shares.values()) == pytest.approx(1.0) and min(shares.values()) > 0.1
    assert survey["Kommentar"].str.contains("[äöüß]").any()
    web = read_csv(raw, "web_sessions.csv")
    assert web["started_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert {"home", "tariffs", "cart", "checkout", "quote_request", "service"} <= set(web["page_type"])


def test_contact_workbooks(company, raw):
    book = pd.read_excel(raw / "kontakte_2025_Q1.xlsx", sheet_name="Kontakte", engine="calamine")
    assert_frame_equal(book[["Kontakt-ID", "Kundennummer", "Kanal", "Anliegen"]],
                       company.files["kontakte_2025_Q1.xlsx"][["Kontakt-ID", "Kundennummer", "Kanal", "Anliegen"]],
                       check_dtype=False)
    kinds = book["Zeitpunkt"].map(type)
    text = book["Zeitpunkt"][kinds == str]
    assert 0.02 < len(text) / len(book) < 0.1
    assert text.str.fullmatch(r"\d\d\.\d\d\.2025 \d\d:\d\d").all()
    stamps = pd.to_datetime(book["Zeitpunkt"][kinds != str])
    assert stamps.between("2025-01-01", "2025-04-01").all()
    waits = book["Wartezeit (Sek.)"]
    assert waits.notna().any() and book.loc[waits.notna(), "Kanal"].isin(["Telefon", "Hotline", "phone"]).all()
    contacts = contact_frames(company)
    assert {"Telefon", "Hotline", "phone", "E-Mail", "Chat", "Brief"} <= set(contacts["Kanal"])
    assert set(contacts["Anliegen"]) == set(demo.REASON_LABELS.values())
    assert set(contacts["Gelöst"].dropna()) == {"ja", "nein"}


def test_no_local_time_in_the_dst_gap(company):
    """Naive local times between 02:00 and 03:00 do not exist (or are ambiguous) on DST days."""
    contacts = company.truth["contacts"]["timestamp"]
    feedback = company.truth["feedback"]["timestamp"]
    assert not contacts.dt.hour.eq(2).any() and not feedback.dt.hour.eq(2).any()


# --- messiness matches the ground truth ---------------------------------------------------------
def test_duplicates_match_ground_truth(company):
    gt = company.ground_truth["duplicate_rows"]
    for name in ("crm_kunden.csv", "web_sessions.csv", "umfrage_antworten.csv", "bestellungen.csv", "kampagnen_versand.csv"):
        assert company.files[name].duplicated().sum() == gt[name] == round(0.01 * (len(company.files[name]) - gt[name])), name
    per_file = sum(int(df.duplicated().sum()) for name, df in company.files.items() if name.startswith("kontakte_"))
    assert per_file == gt["kontakte_*.xlsx"] > 0
    assert not company.files["web_logins.csv"].duplicated(["visitor_id"]).any()


def test_test_accounts_match_ground_truth(company):
    gt = company.ground_truth["test_accounts"]
    crm = company.files["crm_kunden.csv"]
    test = crm[(crm["Nachname"] == "Test") | crm["E-Mail"].str.endswith("@example.test", na=False)]
    assert len(test) == gt["crm_rows"] == round(0.003 * N)
    assert sorted(test["Kundennummer"]) == gt["customer_refs"]
    refs = set(gt["customer_refs"])
    assert contact_frames(company)["Kundennummer"].isin(refs).sum() == gt["contacts"] > 0
    assert company.files["bestellungen.csv"]["Kundennummer"].isin(refs).sum() == gt["orders"] > 0
    assert company.files["umfrage_antworten.csv"]["Kundennummer"].isin(refs).sum() == gt["survey_responses"]


def test_scores_and_consent_match_ground_truth(company):
    gt = company.ground_truth
    survey = company.files["umfrage_antworten.csv"].drop_duplicates()
    counts = gt["scores_out_of_range"]
    assert (survey["Weiterempfehlung"] == "99").sum() == counts["nps_99_keine_angabe"] > 0
    assert (survey["Weiterempfehlung"] == "11").sum() == counts["nps_11"] > 0
    assert survey["Zufriedenheit"].isin(["0", "6"]).sum() == counts["csat_out_of_range"] > 0
    assert survey["Aufwand"].isin(["0", "8"]).sum() == counts["ces_out_of_range"]
    crm = company.files["crm_kunden.csv"].drop_duplicates()
    real = crm[~crm["Kundennummer"].isin(gt["test_accounts"]["customer_refs"])]
    assert real["Einwilligung Kontakt"].isna().sum() == gt["consent"]["missing"]
    assert gt["consent"]["missing"] / N == pytest.approx(0.25, abs=0.03)
    assert gt["people"]["customers"] + gt["people"]["leads"] == N == len(real)


def test_rows_in_ground_truth(company):
    assert company.ground_truth["rows"] == {name: len(df) for name, df in company.files.items()}
    assert company.ground_truth["period"] == {"start": "2024-01-01", "end": "2025-12-31"}
    assert company.ground_truth["seed"] == SEED


# --- planted effects in the generated truth -----------------------------------------------------
def realised(company, effect: str) -> dict:
    return company.ground_truth["effects"][effect]["realised"]


def test_unclear_invoice_lowers_nps(company):
    r = realised(company, "invoice_unclear_nps")
    assert r["nps_diff"] < -20 and r["n_exposed"] >= 100


def test_unclear_invoice_effect_recomputed_from_truth_tables(company):
    """The exposure flag agrees with an independent look-back over the truth tables."""
    fb = company.truth["feedback"].sort_values("timestamp")
    inv = company.truth["contacts"].query("contact_reason == 'invoice_unclear' and direction == 'inbound'")
    hit = pd.merge_asof(fb, inv[["customer_ref", "timestamp"]].assign(t=inv["timestamp"]).sort_values("timestamp"),
                        on="timestamp", by="customer_ref", tolerance=pd.Timedelta(days=60))["t"].notna()
    assert hit.to_numpy().tolist() == fb["x_invoice"].tolist()
    nps = fb["nps"]
    diff = metrics.nps(nps[hit.to_numpy()]) - metrics.nps(nps[~hit.to_numpy()])
    assert diff < -20


def test_long_provisioning_makes_detractors(company):
    r = realised(company, "provisioning_delay")
    assert r["long_share_of_broadband_orders"] == pytest.approx(0.2, abs=0.05)
    assert r["detractor_share_long"] > r["detractor_share_short"] + 0.1 and r["nps_diff"] < -15


def test_long_hotline_waits_raise_complaints_and_effort(company):
    r = realised(company, "hotline_wait")
    assert r["long_wait_share"] == pytest.approx(0.18, abs=0.04)
    assert r["complaint_ratio"] > 5 and r["ces_diff"] < -0.8


def test_outage_notice_is_a_magic_moment(company):
    r = realised(company, "outage_notification")
    assert r["nps_diff_vs_affected_without_notice"] > 0 and r["nps_diff_vs_all_not_notified"] > 0


def test_billing_spike_is_the_only_out_of_control_month(company):
    r = realised(company, "billing_complaint_spike")
    assert r["outlier_months"] == ["2025-03"]
    assert r["spike_month_rate"] == pytest.approx(3 * r["other_months_mean_rate"], rel=0.2)
    contacts = company.truth["contacts"]
    billing = contacts[contacts["contact_reason"] == "complaint_billing"]
    by_month = billing["timestamp"].dt.strftime("%Y-%m").value_counts()
    assert by_month.idxmax() == "2025-03" and len(by_month) == 24


def test_repeat_customers_convert_more_than_new_leads(company):
    r = realised(company, "repeat_customer_conversion")
    assert r["conversion_existing_customers"] == pytest.approx(0.65, abs=0.05)
    assert r["conversion_new_leads"] == pytest.approx(0.12, abs=0.03)


def test_churn_effects_point_the_right_way(company):
    assert realised(company, "unresolved_service_failure_churn")["ratio_vs_all_customers"] > 1.2
    assert realised(company, "provisioning_delay")["churn_by_end_ratio"] > 1.0


def test_detractors_mention_the_invoice_more(company):
    r = realised(company, "invoice_theme_in_detractor_comments")
    assert r["share_detractor"] > 3 * r["share_promoter"] and r["n_promoter"] >= 100


# --- verbatims ----------------------------------------------------------------------------------
def keyword_themes(texts: list[str], lang: str, taxonomy) -> list[set[str]]:
    """Themes the analysis' keyword tagger (cxlib.text.tag_themes) finds in each text."""
    tags = text.tag_themes(pd.Series(texts, dtype="str"), taxonomy, languages=lang)
    return [set(tags.columns[row.fillna(False).to_numpy(dtype=bool)]) for _, row in tags.iterrows()]


def test_sentences_carry_their_theme_keywords_only(taxonomy):
    themes = taxonomy.themes()
    assert set(demo.THEMES) == set(themes)
    variants = demo.sentence_variants()
    assert {sentiment for _, _, sentiment in variants} == {"positive", "neutral", "negative"}
    for lang in ("de", "en"):
        pairs = [(theme, v) for (theme, lg, _), vs in variants.items() if lg == lang for v in vs]
        found = keyword_themes([v for _, v in pairs], lang, taxonomy)
        assert [(t, v, f) for (t, v), f in zip(pairs, found) if f != {t}] == []
        fillers = [s for (lg, _), ss in [*demo.OPENERS.items(), *demo.CLOSERS.items()] if lg == lang for s in ss]
        assert keyword_themes(fillers, lang, taxonomy) == [set()] * len(fillers)


def test_every_theme_has_sentences_in_both_languages():
    variants = demo.sentence_variants()
    for theme in demo.THEMES:
        for lang in ("de", "en"):
            for sentiment in ("positive", "neutral", "negative"):
                assert variants.get((theme, lang, sentiment)), (theme, lang, sentiment)


def test_comment_labels(company, taxonomy):
    labels = company.comment_labels
    survey = company.files["umfrage_antworten.csv"].drop_duplicates()
    comments = survey.set_index("Antwort-ID").loc[labels["response_id"], "Kommentar"]
    assert comments.notna().all()
    assert set(labels["language"]) == {"de", "en", "other"}
    shares = labels["language"].value_counts(normalize=True)
    assert shares["de"] == pytest.approx(0.72, abs=0.05) and shares["other"] < 0.06
    codes = set(labels["themes"].str.split("|").explode())
    assert codes <= set(taxonomy.themes()) and "invoice" in codes
    assert set(labels["sentiment"]) == {"positive", "neutral", "negative"}
    pii = comments[labels["has_pii"].to_numpy()]
    assert len(pii) > 0 and pii.str.contains(r"@\w|\d{3} ?\d{7}").all()
    for lang in ("de", "en"):
        rows = labels["language"].eq(lang).to_numpy()
        found = keyword_themes(comments[rows].tolist(), lang, taxonomy)
        assert found == [set(t.split("|")) for t in labels["themes"][rows]]


def test_comments_with_personal_data_are_signed_with_the_writers_crm_name_and_number(company):
    labels = company.comment_labels
    survey = company.files["umfrage_antworten.csv"].drop_duplicates("Antwort-ID").set_index("Antwort-ID")
    crm = company.files["crm_kunden.csv"].drop_duplicates("Kundennummer").set_index("Kundennummer")
    pii = survey.loc[labels.loc[labels["has_pii"], "response_id"]]
    signed = pii.loc[pii["Kundennummer"].notna()]
    assert 0 < len(signed) <= 0.05 * len(labels)                                    # a small share of comments
    name = crm.loc[signed["Kundennummer"], "Vorname"].to_numpy() + " " + crm.loc[signed["Kundennummer"], "Nachname"].to_numpy()
    assert all(re.search(re.escape(n) + ".{0,20}" + re.escape(k) + r"\)?$", c)
               for n, k, c in zip(name, signed["Kundennummer"], signed["Kommentar"]))
    assert signed["Kommentar"].str.contains(r"(?:Gruß|Grüße|MfG|Regards|Sincerely|Cheers),? ", regex=True).all()
    clean = survey.loc[labels.loc[~labels["has_pii"], "response_id"], "Kommentar"]
    assert not clean.str.contains(r"\bK\d{7}\b|@", regex=True).any()                # nobody else signs


# --- has_exports and atomic writing -------------------------------------------------------------
def test_has_exports(tmp_path):
    assert not demo.has_exports(tmp_path / "missing")
    assert not demo.has_exports(tmp_path)
    (tmp_path / ".gitkeep").touch()
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "comment_labels.csv").write_text("a\n")
    (tmp_path / ".demo-123").mkdir()
    (tmp_path / ".demo-123" / "crm_kunden.csv").write_text("a\n")
    (tmp_path / "notes.txt").write_text("a\n")
    assert not demo.has_exports(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "kontakte.XLSX").write_bytes(b"x")
    assert demo.has_exports(tmp_path)


@pytest.mark.parametrize("name", ["export.csv", "table.parquet"])
def test_has_exports_sees_each_data_format(tmp_path, name):
    (tmp_path / name).write_text("a\n")
    assert demo.has_exports(tmp_path)


def test_write_exports_returns_paths_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    small = demo.generate(40, 1)
    paths = demo.write_exports(small, tmp_path / "ok")
    assert sorted(p.name for p in paths) == sorted([*small.files, "ground_truth.json", "comment_labels.csv"])
    assert all(p.is_file() for p in paths) and demo.has_exports(tmp_path / "ok")
    calls = []

    def failing(frame, path, *, sep, encoding, append=False):
        calls.append(path.name)
        if len(calls) == 3:
            raise OSError("disk full")
        path.write_text("partial")

    monkeypatch.setattr(writers, "_write_csv", failing)
    target = tmp_path / "fail"
    with pytest.raises(OSError, match="disk full"):
        demo.write_exports(small, target)
    assert list(target.iterdir()) == []


def test_addon_purchases_are_one_off_orders_of_active_customers(company):
    gt = company.ground_truth
    realised = gt["effects"]["repeat_purchases"]["realised"]
    orders = company.files["bestellungen.csv"]
    real = orders[~orders["Kundennummer"].isin(gt["test_accounts"]["customer_refs"])].drop_duplicates()
    addons = real[real["Auftragsart"] == "Zusatzkauf"]
    assert len(addons) == realised["addon_orders"] > 2 * (len(real) - len(addons))
    assert set(addons["Produktkategorie"]) == {"Zusatzprodukte"}
    assert set(real.loc[real["Produktkategorie"] == "Zusatzprodukte", "Auftragsart"]) == {"Zusatzkauf"}
    assert set(addons["Produkt"]) == set(realised["addon_orders_by_product"]) == {n for n, _ in demo.ADDON_PRODUCTS}
    assert set(addons["Status"]) == {"abgeschlossen"}
    assert addons[["Stornodatum", "Bereitstellung Start", "Aktivierung", "Erste Rechnung"]].isna().all().all()
    euros = addons["Betrag"].str.replace(".", "", regex=False).str.replace(",", ".", regex=False).astype(float)
    assert euros.between(*gt["planted"]["repeat_purchases"]["spend_range_eur"]).all()
    assert realised["customers_with_2plus_addon_days"] > 0.3 * realised["customers_with_addons"]
    # while active: after the customer's signup (first activation), before churn
    t = company.truth["customers"].set_index("customer_ref")
    at = pd.to_datetime(addons["Bestelldatum"], format="%d.%m.%Y %H:%M")
    signup, churn = t.loc[addons["Kundennummer"], "signup_date"].to_numpy(), t.loc[addons["Kundennummer"], "churn_date"].to_numpy()
    assert (at.to_numpy() >= signup).all()
    assert (pd.isna(churn) | (at.to_numpy() < churn)).all()


def test_addons_leave_every_other_file_and_effect_unchanged(company, monkeypatch):
    monkeypatch.setattr(generator, "_addons", lambda rng, persons, orders, leadins: orders.iloc[:0])
    without = demo.generate(N, SEED)
    for name, frame in company.files.items():
        if name != "bestellungen.csv":
            assert_frame_equal(frame, without.files[name], obj=name)
    effects = {k: v for k, v in company.ground_truth["effects"].items() if k != "repeat_purchases"}
    assert effects == {k: v for k, v in without.ground_truth["effects"].items() if k != "repeat_purchases"}
    contracts = company.files["bestellungen.csv"].loc[lambda d: d["Auftragsart"] != "Zusatzkauf"]
    assert len(contracts.drop_duplicates()) == len(without.files["bestellungen.csv"].drop_duplicates())


# --- the demo.yml mapping over the exports ------------------------------------------------------
def test_demo_mapping_maps_every_file(company, raw, taxonomy):
    staged = map_sources(ROOT / "config" / "sources" / "demo.yml", raw, taxonomy)
    expected = company.ground_truth["staged_rows_demo_mapping"]
    assert {t: len(df) for t, df in staged.tables.items()} == expected
    assert set(staged.inputs["file"]) == set(company.files)
    customers, events, feedback = staged.tables["customers"], staged.tables["events"], staged.tables["feedback"]
    assert customers["is_test"].sum() == company.ground_truth["test_accounts"]["crm_rows"]
    assert customers["pii_email"].notna().mean() > 0.9
    for column, section in (("touchpoint", "touchpoints"), ("channel", "channels"), ("contact_reason", "contact_reasons")):
        assert set(events[column].dropna()) <= set(taxonomy.codes(section)), column
    assert set(events["touchpoint"]) >= {"order", "provisioning_start", "activation", "first_invoice", "order_cancelled",
                                         "renewal", "campaign_sent", "campaign_response", "cancellation", "quote",
                                         "consultation", "complaint", "outage_notification", "web_visit"}
    assert events["timestamp"].between(pd.Timestamp("2023-12-31", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")).all()
    assert feedback["nps"].isna().sum() >= company.ground_truth["scores_out_of_range"]["nps_99_keine_angabe"]
    assert set(feedback["survey"]) == {"relationship", "transactional"}
    assert staged.tables["orders"]["revenue"].gt(0).all() and staged.tables["orders"]["revenue"].max() > 1000
    assert set(staged.tables["orders"]["status"]) == {"completed", "cancelled", "pending"}
    addon_ids = set(staged.tables["orders"].loc[lambda d: d["category"] == "Zusatzprodukte", "order_id"])
    addon_events = events[events["event_id"].str.rsplit("-", n=1).str[0].isin(addon_ids)]
    assert len(addon_events) >= len(addon_ids) > 0 and set(addon_events["touchpoint"]) == {"order"}


# --- runs in chunks (write_demo) ----------------------------------------------------------------
CHUNK, CHUNKS, CHUNK_SEED = 300, 3, 5
ID_COLUMNS = {"crm_kunden.csv": "Kundennummer", "bestellungen.csv": "Bestellnummer", "umfrage_antworten.csv": "Antwort-ID",
              "kampagnen_versand.csv": "Versand-ID", "web_sessions.csv": "session_id", "web_logins.csv": "visitor_id"}


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 per file; of an Excel workbook its parts' contents (the zip stores write times)."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                data = b"".join(name.encode() + book.read(name) for name in sorted(book.namelist()))
        else:
            data = path.read_bytes()
        out[path.relative_to(folder).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def read_raw(raw: Path, name: str) -> pd.DataFrame:
    if name.endswith(".parquet"):
        return pd.read_parquet(raw / name)
    return read_csv(raw, name)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    """A run of 3 chunks of 300 customers, its ground truth, and each chunk's own ground truth."""
    out = tmp_path_factory.mktemp("chunked")
    events = []
    demo.write_demo(out, CHUNK * CHUNKS, CHUNK_SEED, chunk_customers=CHUNK, progress=events.append)
    assert [e["chunk"] for e in events] == [1, 2, 3] and events[-1]["customers"] == CHUNK * CHUNKS
    chunk, parts = demo.Chunk(count=CHUNKS, excel=False), []
    for _ in range(CHUNKS):
        company, chunk = demo.generate_chunk(CHUNK, CHUNK_SEED, chunk, truth_tables=False)
        parts.append(company.ground_truth)
    truth = json.loads((out / "_truth" / "ground_truth.json").read_text(encoding="utf-8"))
    return out, truth, parts


def test_chunk_sizes():
    assert demo.chunk_sizes(600, 250) == [250, 250, 100]
    assert demo.chunk_sizes(500, 250) == [250, 250] and demo.chunk_sizes(1, 250) == [1]
    with pytest.raises(ValueError, match="at least 1"):
        demo.chunk_sizes(10, 0)


def test_one_chunk_writes_what_generate_writes(tmp_path):
    demo.write_exports(demo.generate(CHUNK, CHUNK_SEED), tmp_path / "whole")
    demo.write_demo(tmp_path / "fits", CHUNK, CHUNK_SEED, chunk_customers=CHUNK)
    demo.write_demo(tmp_path / "smaller", CHUNK, CHUNK_SEED, chunk_customers=10 * CHUNK)
    whole = file_digests(tmp_path / "whole")
    assert any(name.endswith(".xlsx") for name in whole)
    assert file_digests(tmp_path / "fits") == whole == file_digests(tmp_path / "smaller")


def test_chunks_number_ids_on_so_no_id_repeats(chunked):
    raw, truth, _ = chunked
    for name, column in ID_COLUMNS.items():
        rows = read_raw(raw, name).drop_duplicates()
        assert not rows[column].duplicated().any(), name
    contacts = pd.concat([read_raw(raw, name) for name in truth["rows"] if name.startswith("kontakte_")], ignore_index=True)
    assert not contacts.drop_duplicates()["Kontakt-ID"].duplicated().any()
    crm = read_raw(raw, "crm_kunden.csv").drop_duplicates()
    assert crm["Kundennummer"].tolist() == sorted(crm["Kundennummer"]) and len(crm) == CHUNK * CHUNKS + 3
    test_mails = crm.loc[crm["Kundennummer"].isin(truth["test_accounts"]["customer_refs"]), "E-Mail"]
    assert len(test_mails) == 3 and not test_mails.duplicated().any()
    logins = read_raw(raw, "web_logins.csv")
    assert set(logins["crm_id"]) <= set(crm["Kundennummer"])


def test_chunks_share_outages_and_campaign_send_times(chunked):
    raw, truth, parts = chunked
    assert truth["outages"] == parts[0]["outages"] == parts[2]["outages"] and len(truth["outages"]) == 12
    sends = read_raw(raw, "kampagnen_versand.csv").drop_duplicates()
    blasts = sends[~sends["Kampagne"].str.endswith("Kundenbrief")]
    assert blasts.groupby("Kampagne")["Versand am"].nunique().eq(1).all() and blasts["Kampagne"].nunique() == 16


def test_chunked_ground_truth_adds_up_the_chunks(chunked):
    raw, truth, parts = chunked
    assert truth["chunks"] == {"count": CHUNKS, "customers_per_chunk": CHUNK}
    for key in ("crm_people", "customers", "leads", "churned", "business"):
        assert truth["people"][key] == sum(p["people"][key] for p in parts), key
    assert truth["people"]["crm_people"] == CHUNK * CHUNKS
    assert truth["rows"] == {name: sum(p["rows"][name] for p in parts) for name in parts[0]["rows"]}
    assert truth["rows"] == {name: len(read_raw(raw, name)) for name in truth["rows"]}
    assert truth["duplicate_rows"]["kontakte_*.parquet"] > 0 and "kontakte_*.xlsx" not in truth["duplicate_rows"]
    for name in ("crm_kunden.csv", "bestellungen.csv", "umfrage_antworten.csv", "web_sessions.csv", "kampagnen_versand.csv"):
        assert read_raw(raw, name).duplicated().sum() == truth["duplicate_rows"][name], name
    assert truth["test_accounts"]["customer_refs"] == sorted(r for p in parts for r in p["test_accounts"]["customer_refs"])
    assert truth["staged_rows_demo_mapping"] == {t: sum(p["staged_rows_demo_mapping"][t] for p in parts)
                                                 for t in truth["staged_rows_demo_mapping"]}
    labels = pd.read_csv(raw / "_truth" / "comment_labels.csv", dtype=str)
    assert len(labels) == truth["responses"]["with_comment"] == sum(p["responses"]["with_comment"] for p in parts)
    assert not labels["response_id"].duplicated().any()


def test_chunked_rates_are_the_rates_of_the_pooled_chunks(chunked):
    _, truth, parts = chunked
    assert set(truth["effects"]) == set(parts[0]["effects"])

    def pooled(effect, rate, n):
        ns = [p["effects"][effect]["realised"][n] for p in parts]
        rates = [p["effects"][effect]["realised"][rate] for p in parts]
        return sum(r * k for r, k in zip(rates, ns) if k) / sum(ns)

    conversion = truth["effects"]["repeat_customer_conversion"]["realised"]
    assert conversion["conversion_existing_customers"] == pytest.approx(
        pooled("repeat_customer_conversion", "conversion_existing_customers", "n_existing"), abs=1e-5)
    assert conversion["n_existing"] == sum(p["effects"]["repeat_customer_conversion"]["realised"]["n_existing"] for p in parts)
    hotline = truth["effects"]["hotline_wait"]["realised"]
    assert hotline["long_wait_share"] == pytest.approx(pooled("hotline_wait", "long_wait_share", "phone_contacts"), abs=1e-5)
    billing = truth["effects"]["billing_complaint_spike"]["realised"]["monthly"]
    assert [m["complaints"] for m in billing] == [sum(p["effects"]["billing_complaint_spike"]["realised"]["monthly"][i]["complaints"]
                                                      for p in parts) for i in range(24)]


def test_chunked_exports_map_with_the_demo_mapping(chunked, taxonomy):
    raw, truth, _ = chunked
    staged = map_sources(ROOT / "config" / "sources" / "demo.yml", raw, taxonomy)
    assert {t: len(df) for t, df in staged.tables.items()} == truth["staged_rows_demo_mapping"]
    events = staged.tables["events"]
    assert events["timestamp"].between(pd.Timestamp("2023-12-31", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")).all()
    assert {"complaint", "outage_notification", "consultation"} <= set(events["touchpoint"])


def test_excel_workbooks_are_not_appended_to(tmp_path):
    frame = pd.DataFrame({"Kontakt-ID": ["KT-1"], "Zeitpunkt": [pd.Timestamp("2024-01-02 10:00")]})
    with writers.ExportFolder(tmp_path) as folder:
        folder.add({"kontakte_2024_Q1.xlsx": frame}, pd.DataFrame({"response_id": []}))
        with pytest.raises(ValueError, match="written once"):
            folder.add({"kontakte_2024_Q1.xlsx": frame}, pd.DataFrame({"response_id": []}))
    assert list(tmp_path.iterdir()) == []


def test_chunked_run_looks_like_one_chunk_of_its_size(chunked):
    _, truth, _ = chunked
    whole = demo.generate(CHUNK * CHUNKS, CHUNK_SEED).ground_truth

    def shape(obj, skip=("rows", "duplicate_rows", "chunks", "customer_refs", "monthly", "contacts_by_reason")):
        return {k: shape(v) for k, v in obj.items() if k not in skip} if isinstance(obj, dict) else None

    assert shape(truth) == shape(whole)
    assert truth["test_accounts"]["crm_rows"] == whole["test_accounts"]["crm_rows"] == 3
    kind = lambda name: name.rsplit("_", 2)[0] if name.startswith("kontakte_") else name   # noqa: E731
    totals = [pd.Series(gt["rows"]).groupby(kind).sum() for gt in (truth, whole)]
    assert (totals[0] / totals[1]).between(0.8, 1.25).all(), totals
