"""Stage 05's CLV model in bounded memory: fitted on a seeded sample of customers when there are
more than `max_customers`, predicted a chunk of customers at a time.

The chunks must give what one pass gives (to floating-point rounding, 1e-12); the sample must be the size asked,
the same for the same seed and close to the whole fit (the parameters are seven numbers); the
report must say when the model was fitted on a sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import value
from cxlib.value import clv
from test_value import TRUTH, simulate_orders, simulate_summary


@pytest.fixture(scope="module")
def summary():
    return simulate_summary(3000, TRUTH, seed=4)


@pytest.fixture(scope="module")
def whole_fit(summary):
    return value.fit_clv(summary, method="map")


@pytest.fixture(scope="module")
def sampled_fit(summary):
    return value.fit_clv(summary, method="map", max_customers=1200, seed=3)


def estimates(fit) -> dict:
    return dict(zip(fit.params["parameter"], fit.params["estimate"]))


def test_predictions_a_chunk_at_a_time_equal_one_pass(summary, whole_fit):
    part = summary.iloc[:40]
    whole = value.clv_draws(whole_fit, part, horizon_months=6, annual_discount_rate=0.1, chunk=10_000)
    for chunk in (3, 7, 100):
        chunked = value.clv_draws(whole_fit, part, horizon_months=6, annual_discount_rate=0.1, chunk=chunk)
        assert chunked["ids"].tolist() == whole["ids"].tolist()
        for key in ("purchases", "spend", "p_alive", "clv"):
            assert chunked[key].shape == whole[key].shape == (1, 40)
            np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-12, atol=0)
        assert_frame_equal(value.expected_purchases(whole_fit, part, days=90, chunk=chunk),
                           value.expected_purchases(whole_fit, part, days=90, chunk=10_000), rtol=1e-12)
    assert whole["clv"].min() > 0
    with pytest.raises(value.ValueInputError, match="chunk must be at least 1"):
        value.clv_draws(whole_fit, part, horizon_months=6, annual_discount_rate=0.1, chunk=0)


def test_the_model_is_fitted_on_a_seeded_sample_of_at_most_max_customers(summary, whole_fit, sampled_fit, monkeypatch):
    assert (whole_fit.fitted_customers, whole_fit.customers) == (3000, 3000)
    assert (sampled_fit.fitted_customers, sampled_fit.customers) == (1200, 3000)
    assert sampled_fit.repeat_buyers == whole_fit.repeat_buyers          # the checks look at every customer
    from pymc_marketing.clv import BetaGeoModel
    seen = []
    original = BetaGeoModel.fit
    monkeypatch.setattr(BetaGeoModel, "fit", lambda self, data, **k: seen.append(data["customer_id"].tolist())
                        or original(self, data=data, **k))
    again = value.fit_clv(summary, method="map", max_customers=1200, seed=3)
    other = value.fit_clv(summary, method="map", max_customers=1200, seed=4)
    assert [len(s) for s in seen] == [1200, 1200] and seen[0] != seen[1]
    assert set(seen[0]) <= set(summary["customer_id"]) and seen[0] == sorted(seen[0])     # in the summary's order
    assert_frame_equal(again.params, sampled_fit.params)                 # the same seed, the same fit
    assert not again.params["estimate"].equals(other.params["estimate"])
    whole, sampled = estimates(whole_fit), estimates(sampled_fit)
    assert sampled["r"] / sampled["alpha"] == pytest.approx(whole["r"] / whole["alpha"], rel=0.15)
    assert sampled["a"] / (sampled["a"] + sampled["b"]) == pytest.approx(whole["a"] / (whole["a"] + whole["b"]), rel=0.25)
    with pytest.raises(value.ValueInputError, match="max_customers must be at least 1"):
        value.fit_clv(summary, method="map", max_customers=0)


def test_customer_value_says_when_the_model_was_fitted_on_a_sample(monkeypatch):
    orders = simulate_orders(900, TRUTH, days=730, seed=5)
    hist = value.historic_value(orders)
    monkeypatch.setattr(clv, "MAX_FIT_CUSTOMERS", 600)
    res = value.customer_value(orders, hist, horizon_months=6, holdout_months=6)
    assert res.status == "fitted" and res.details["fitted_customers"] == 600 and res.details["customers"] == 900
    assert res.message.endswith("The model was fitted on a random sample of 600 of them.")
    assert value.describe_value_model(res, lang="de").endswith(
        "Das Modell wurde auf einer Zufallsstichprobe von 600 davon geschätzt.")
    assert len(res.customers) == 900 and res.customers["clv"].notna().all()       # every customer predicted
    assert res.total["total"] == pytest.approx(res.customers["clv"].sum())
    assert res.holdout is not None and res.holdout.iloc[-1]["customers"] > 600   # the check scores every customer
    monkeypatch.setattr(clv, "MAX_FIT_CUSTOMERS", 10_000)
    whole = value.customer_value(orders, hist, horizon_months=6, holdout_months=0)
    assert "random sample" not in whole.message and whole.details["fitted_customers"] == 900
    assert "Zufallsstichprobe" not in value.describe_value_model(whole, lang="de")
