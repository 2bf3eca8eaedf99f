"""Every public dataset in ../shared/data/real through `cx run` with its mapping in
config/sources/ alone, the facts of its FACTS.json (or of the folder README where a dataset has
none) asserted from results.json and the processed tables; on the German reader comments (hand
labels mapped through `labels:`), the German course reviews and the English reviews (stars),
stage 02's learned sentiment beats the majority class and the word lists on held-out texts. One
run per dataset; skipped when ../shared is absent. The data are not part of this repository."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import ROOT
from cxlib import text
from test_shapes import GENERIC, run_source, skipped

REAL = ROOT.parent / "shared" / "data" / "real"
pytestmark = pytest.mark.real_data


def facts(dataset: str) -> dict:
    path = REAL / dataset / "FACTS.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """dataset -> (done, results, tables) of one `cx run` on its folder, made on first use."""
    runs: dict[str, tuple] = {}

    def get(dataset: str, *, taxonomy: str | None = GENERIC, notebooks: dict | None = None,
            only: list[str] | None = None):
        folder = REAL / dataset
        if not folder.is_dir():
            pytest.skip(f"{folder} not present (../shared absent)")
        if dataset not in runs:
            project = tmp_path_factory.mktemp(dataset)
            runs[dataset] = run_source(project, f"config/sources/{dataset}.yml", folder, taxonomy=taxonomy,
                                       notebooks=notebooks, only=only)
        done = runs[dataset][0]
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return runs[dataset]

    return get


def learned_sentiment(results: dict, language: str) -> pd.DataFrame:
    """Stage 02's recorded held-out sentiment quality in `language` (method -> n, accuracy,
    macro_f1, recall_*), after asserting that the learned model labelled that language and beat
    both always answering the most frequent class and the word lists in macro-F1."""
    recorded = results["feedback"]["sentiment_quality"]
    used = pd.DataFrame(recorded["methods"]).set_index("language").loc[language]
    assert used["method"] == "learned" and bool(used["trusted"]) and recorded["trusted"]
    quality = pd.DataFrame(recorded["quality"]).loc[lambda d: d["language"].eq(language)].set_index("method")
    f1 = quality["macro_f1"]
    assert f1["learned"] > f1["majority"] and f1["learned"] > f1["word lists"], quality
    assert quality["n"].nunique() == 1                     # all three measured on the same held-out texts
    return quality


def test_telco_churn(real_run):
    done, results, tables = real_run("telco_churn_ibm", taxonomy=None)
    customers = tables["customers"]
    assert results["tables"]["customers"] == 7043 and int(customers["churn_date"].notna().sum()) == 1869
    assert customers["segment"].unique().tolist() == ["private"]
    skips = skipped(results)
    assert {"feedback.nps", "journey.funnel", "value.historic"} <= set(skips)
    assert "journey.tenure" not in skips                   # signup and churn dates: the life table runs


def test_garden_centre_survey(real_run):
    done, results, tables = real_run("nps_garden_retail_fr")
    nps, csat = results["feedback"]["nps"], results["feedback"]["csat"]
    assert (results["tables"]["feedback"], nps["n"], round(nps["value"], 1)) == (13954, 13612, 53.4)
    assert csat["n"] == 13893                              # satisfaction answered, top two of 0-10 = 9 and 10
    assert round(csat["value"], 1) == round(100 * (2799 + 4504) / 13893, 1)
    assert tables["feedback"]["comment"].notna().sum() == 3839
    assert tables["feedback"]["language"].unique().tolist() == ["fr"]      # counted, not scored as en/de
    skips = skipped(results)
    assert skips["feedback.trend"].startswith("all dated answers fall in one month")
    assert {"journey.funnel", "moments.impact", "value.historic"} <= set(skips)


def test_womens_clothing_reviews(real_run):
    done, results, tables = real_run("womens_clothing_reviews_en")
    raw = pd.read_csv(REAL / "womens_clothing_reviews_en" / "reviews.csv")
    feedback = tables["feedback"]
    assert len(feedback) == len(raw) == 23486
    csat = results["feedback"]["csat"]
    assert csat["n"] == 23486 and csat["value"] == pytest.approx(100 * raw["Rating"].ge(4).mean())
    assert feedback["timestamp"].isna().all() and feedback["customer_id"].isna().all()
    assert "feedback.trend" in skipped(results) and "feedback.nps" in skipped(results)
    quality = learned_sentiment(results, "en")             # classes from the stars: 1-2 / 3 / 4-5
    assert quality.loc["learned", "n"] == 10_000 and quality.loc["learned", "macro_f1"] > 0.55
    assert "labels" not in tables and "labels" not in results["tables"]


def test_cfpb_complaint_log(real_run):
    done, results, tables = real_run("cfpb_complaints")
    f = facts("cfpb_complaints")
    events = tables["events"]
    assert len(events) == f["rows"] and events["customer_id"].isna().all()
    years = events["timestamp"].dt.year.astype(str).value_counts().to_dict()
    assert years == f["complaints_per_year"]                 # date-only values stay in their year
    assert events["timestamp"].min().strftime("%Y-%m-%d") == f["date_received_min"]
    assert events["timestamp"].max().strftime("%Y-%m-%d") == f["date_received_max"]
    via = f["submitted_via"]
    assert events["channel"].value_counts().to_dict() == {
        "web": via["Web"], "partner": via["Referral"], "phone": via["Phone"], "letter": via["Postal mail"]}
    assert int(events["text"].notna().sum()) == f["narratives_nonempty"]
    assert int(events["resolved"].sum()) == 1000 - f["company_response"]["In progress"] - f["company_response"][
        "Untimely response"]
    counts = pd.DataFrame(results["complaint_counts"])
    by_year = counts.assign(year=counts["month"].str[:4]).groupby("year")["complaints"].sum()
    assert by_year[by_year.gt(0)].to_dict() == f["complaints_per_year"]
    product = f["product"]
    credit = sum(v for k, v in product.items() if k.startswith("Credit reporting"))
    contacts = {row["moment"]: row["contacts"] for row in results["moments_candidates"]}
    assert contacts["complaint_data"] == credit == 793
    skips = skipped(results)
    assert skips["journey.funnel"] == "the 1,000 events carry no customer id, so they form no journeys"
    assert {"moments.churn", "moments.contact_list", "feedback.nps"} <= set(skips)


def test_permit_and_fine_process_logs(real_run):
    done, results, tables = real_run("eventlog_receipt_wabo", notebooks={"03_journey": {
        "funnel_steps": ["request", "processing", "decision"], "step_pairs": [["request", "decision"]],
        "highlight_pair": ["request", "decision"], "opportunity_steps": []}})
    f = facts("eventlog_receipt_wabo")
    receipt, fines = f["receipt"], f["roadtraffic100traces"]
    events = tables["events"]
    assert len(events) == receipt["rows"] + fines["rows"]
    assert tables["customers"].shape[0] == receipt["cases"] + fines["cases"]           # derived: one per case
    permit = events.loc[~events["customer_id"].isin(tables["orders"]["customer_id"])]
    per_channel = receipt["events_per_channel"]
    assert permit["channel"].value_counts().to_dict() == {
        "web": per_channel["Internet"], "store": per_channel["Desk"], "letter": per_channel["Post"],
        "email": per_channel["e-mail"], "system": per_channel["Intern"]}
    assert (permit["touchpoint"] == "request").sum() == receipt["activity_counts"]["Confirmation of receipt"]
    assert permit["timestamp"].min() == pd.Timestamp(receipt["timestamp_min_utc"])
    assert permit["timestamp"].max() == pd.Timestamp(receipt["timestamp_max_utc"])
    orders = tables["orders"]
    assert len(orders) == fines["activity_counts"]["Create Fine"]
    assert round(orders["revenue"].sum(), 2) == fines["fine_amount_on_Create_Fine"]["sum"]
    funnel = {row["step"]: row["customers"] for row in results["journey"]["funnel"]}
    assert funnel["request"] == receipt["cases"]
    assert "journey.funnel" not in skipped(results)


def test_german_course_reviews(real_run):
    done, results, tables = real_run("de_course_reviews_bestande")
    f = facts("de_course_reviews_bestande")
    feedback = tables["feedback"]
    assert len(feedback) == f["rows"]
    assert feedback["csat"].value_counts().rename(lambda s: str(int(s))).to_dict() == f["score"]
    years = feedback["timestamp"].dt.year.astype(str).value_counts().to_dict()
    assert years == f["reviews_per_year_from_date"]                                    # epoch milliseconds
    assert feedback["timestamp"].min() == pd.Timestamp(f["date_epoch_ms_min_utc"])
    csat = results["feedback"]["csat"]
    assert csat["n"] == f["rows"] and csat["value"] == pytest.approx(100 * (f["score"]["4"] + f["score"]["5"]) / f["rows"])
    assert feedback["language"].unique().tolist() == ["de"]
    assert "feedback.trend" not in skipped(results)
    quality = learned_sentiment(results, "de")             # classes from the 0-5 score: 0-1 / 2-3 / 4-5
    distinct = text.fold_series(feedback["comment"]).nunique()      # texts are measured once (6,236 of 6,642)
    assert quality.loc["learned", "n"] == distinct and quality.loc["learned", "macro_f1"] > 0.55


def test_german_reader_comments(real_run):
    done, results, tables = real_run("de_comments_omp")
    f = facts("de_comments_omp")
    feedback = tables["feedback"]
    assert len(feedback) == f["rows"] and feedback["comment"].notna().sum() == f["rows"]
    assert feedback["language"].unique().tolist() == ["de"]
    skips = skipped(results)
    assert {"feedback.nps", "feedback.csat", "feedback.trend"} <= set(skips)
    assert "feedback.theme_model" in skips                  # sentiment-only labels train no theme model
    labels = tables["labels"]                              # the hand labels, mapped through `labels:`
    assert results["tables"]["labels"] == f["rows"] and labels["response_id"].isin(feedback["response_id"]).all()
    assert labels["sentiment"].value_counts().to_dict() == {k.lower(): v for k, v in f["label"].items()}
    assert labels["themes"].isna().all()                   # sentiment only: not labelled for themes
    quality = learned_sentiment(results, "de")             # trained and measured on the labels, no scores
    assert quality.loc["learned", "n"] == f["rows"] - f["duplicate_text"] and quality.loc["learned", "macro_f1"] > 0.4


def test_ratings_tables_drivers(real_run):
    done, results, tables = real_run("survey_drivers")
    f = facts("survey_drivers")
    mobi, yp = f["ecsi_mobile_mobi"], f["yellowpages_customerSat"]
    feedback = tables["feedback"]
    assert len(feedback) == 19 * mobi["rows"] + 10 * yp["rows"]
    assert tables["customers"].shape[0] == mobi["rows"] + yp["rows"]
    overall = feedback.loc[feedback["touchpoint"].eq("overall")]
    assert len(overall) == mobi["rows"] + yp["rows"]
    yp_overall = overall.loc[overall["response_id"].str.endswith("-q1"), "csat"]         # ids end in the item
    assert round(yp_overall.mean(), 3) == yp["column_mean"]["q1"]
    assert yp_overall.value_counts().rename(lambda s: str(int(s))).to_dict() == yp["q1_overall_dist"]
    drivers = results["drivers"]               # the aspects most respondents rated: the Yellow Pages survey
    assert [row["driver"] for row in drivers][-1] == "delivery"
    assert {row["driver"] for row in drivers} == {"price_value", "product_quality", "delivery"}
    assert {row["n"] for row in drivers} == {yp["rows"]} and sum(row["share"] for row in drivers) == pytest.approx(100)
    assert "moments.drivers" not in skipped(results)


def test_online_retail_orders(real_run):
    done, results, tables = real_run("online_retail_uci")
    f = facts("online_retail_uci")
    orders = tables["orders"]
    assert len(orders) == f["invoices"] - f["guest_invoices"]
    assert orders["customer_id"].nunique() == f["customers"]
    assert round(orders["revenue"].sum(), 2) == f["revenue_sum_known_customers"]
    bought = orders.loc[orders["status"].eq("completed")].groupby("customer_id").size()
    per = f["purchase_invoices_per_customer"]
    assert (len(bought), int(bought.eq(1).sum()), int(bought.max())) == (
        per["customers_with_purchases"], per["one_time_buyers"], per["max"])
    repeat = results["journey"]["repeat_customer_rate"]
    assert repeat["n"] == per["customers_with_purchases"]
    assert repeat["value"] == pytest.approx((per["customers_with_purchases"] - per["one_time_buyers"]) / repeat["n"])
    assert "value.historic" not in skipped(results)


def test_bank_campaign(real_run):
    done, results, tables = real_run("campaign_bank_marketing")
    f = facts("campaign_bank_marketing")
    campaigns = tables["campaigns"]
    assert len(campaigns) == f["rows"] and int(campaigns["responded_at"].notna().sum()) == f["y"]["yes"]
    rate = campaigns.assign(responded=campaigns["responded_at"].notna()).groupby("campaign_id")["responded"].mean()
    assert rate.round(4).to_dict() == {f"telemarketing-{k}": v for k, v in f["response_rate_by_contact"].items()}
    months = campaigns["sent_at"].dt.strftime("%b").str.lower().value_counts().to_dict()
    assert months == f["month"]
    response = results["journey"]["campaign_response_rate"]
    assert (response["n"], response["value"]) == (f["rows"], pytest.approx(f["y"]["yes"] / f["rows"]))
    assert "journey.campaigns" not in skipped(results)
