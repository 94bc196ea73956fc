"""Pareto/NBD and MBG/NBD (``--clv-model``) against lifetimes 0.11.3 and simulated data, and
``--clv-model auto``'s choice. Fixtures: tests/data/lifetimes_models_*.{json,csv.gz}, recorded by
tests/data/record_lifetimes_models.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from clv_fixtures import recorded
from conftest import dataset
from segkit import config, pipeline
from segkit.models.clv import pareto_nbd
from segkit.models.clv.registry import get
from segkit.models.clv.run import attach, fit_clv
from segkit.models.clv.select import select_model, vuong
from segkit.models.clv.simulate import simulate_bgnbd_holdout, simulate_mbg_nbd, simulate_pareto_nbd, \
    simulate_pareto_nbd_holdout
from segkit.result import summary

CFG = config.load(None, use_env=False)
PREFIX = {"pareto_nbd": "pnbd", "mbg_nbd": "mbg"}


@pytest.mark.parametrize("model", ["pareto_nbd", "mbg_nbd"])
def test_cdnow_as_of_1998_07_01_equals_lifetimes(model):
    """CDNOW_sample in segkit's conventions (purchase days, days, as_of 1998-07-01): the run's
    fit (fit_clv with the model, as --clv-model does) against lifetimes' fitter."""
    ref, _ = recorded("cdnow_daily")
    inputs, cols = _cdnow_inputs()
    res = fit_clv(inputs, CFG.clv, model)
    assert res.fitted and res.model == model and res.counting is not None
    want = [ref[model][k] for k in get(model).param_names]
    np.testing.assert_allclose(res.counting.params, want, rtol=0.01)
    p_alive = res.values["p_alive"].to_numpy()
    assert np.mean(np.abs(p_alive - cols[f"{PREFIX[model]}_p_alive"]) <= 0.005) >= 0.99
    assert res.counting.log_likelihood >= ref[f"{model}_log_likelihood"] - 1e-6
    doc = res.summary()
    assert doc["model"] == model and model in doc["params"] and doc["models"][0] == get(model).label


def test_cdnow_weeks_published_pareto_fit():
    """The published CDNOW fit (weeks, 39-week calibration): r .553, alpha 10.58, s .606, beta 11.67."""
    ref, cols = recorded("cdnow")
    fit = pareto_nbd.fit(cols["frequency"], cols["recency"], cols["T"])
    assert fit.converged
    np.testing.assert_allclose(fit.params, [ref["pareto_nbd"][k] for k in ("r", "alpha", "s", "beta")], rtol=0.01)


@pytest.mark.parametrize(("model", "truth"), [("pareto_nbd", (0.55, 74.0, 0.61, 82.0)),
                                              ("mbg_nbd", (0.52, 43.0, 0.89, 1.61))])
def test_fits_recover_simulated_parameters(model, truth):
    rng = np.random.default_rng(3)
    n = 20_000
    T = np.floor(rng.uniform(60, 730, n))
    sim = simulate_pareto_nbd if model == "pareto_nbd" else simulate_mbg_nbd
    x, t_x = sim(n, *truth, T, rng)
    fit = get(model).fit(x, np.floor(t_x), T)
    assert fit.converged
    np.testing.assert_allclose(fit.params, truth, rtol=0.15)


def draw(sim, params, seed, n=10_000):
    rng = np.random.default_rng(seed)
    T = np.floor(rng.uniform(100, 640, n))
    x, t_x, k = sim(n, *params, T, 180.0, rng)
    return x, np.floor(t_x), T, k


def test_auto_leaves_bgnbd_on_clearly_pareto_data_and_says_why():
    chosen, doc = select_model(*draw(simulate_pareto_nbd_holdout, (0.55, 74.0, 0.61, 82.0), 2), 180.0)
    scores = {s["model"]: s["holdout_log_likelihood"] for s in doc["scores"]}
    assert chosen == "pareto_nbd" == max(scores, key=lambda m: scores[m])
    assert doc["vuong_z"] > 3 and "switching" in doc["reason"] and "Pareto/NBD beats BG/NBD" in doc["reason"]


def test_auto_keeps_bgnbd_on_bgnbd_data():
    chosen, doc = select_model(*draw(simulate_bgnbd_holdout, (0.5, 40.0, 0.7, 3.0), 1), 180.0)
    assert chosen == "bgnbd" and all(s["converged"] for s in doc["scores"])
    assert doc["reason"].startswith("BG/NBD has the highest holdout log-likelihood")


def test_vuong_sign_and_scale():
    a = np.random.default_rng(0).normal(0.1, 1.0, 10_000)
    assert vuong(a, np.zeros_like(a)) == pytest.approx(10.0, rel=0.15)
    assert vuong(np.zeros_like(a), a) < 0


def test_auto_on_online_retail_non_uk_records_its_table():
    cfg = config.load(None, {"clv.model": "auto"}, use_env=False)
    res = pipeline.run(str(dataset("online_retail_non_uk.csv")), cfg, cluster=False)
    c = summary(res)["clv"]
    sel = c["selection"]
    assert c["model"] == sel["chosen"] in ("bgnbd", "pareto_nbd", "mbg_nbd")
    assert [s["model"] for s in sel["scores"]] == ["bgnbd", "pareto_nbd", "mbg_nbd"]
    assert all(s["converged"] and s["holdout_log_likelihood"] < 0 for s in sel["scores"])
    assert sel["holdout_days"] == 90 and sel["customers"] > 300 and sel["reason"]
    assert c["models"][:3] == ["BG/NBD", "Pareto/NBD", "MBG/NBD"]


def test_unknown_model_is_a_config_error():
    with pytest.raises(config.ConfigError):
        config.load(None, {"clv.model": "weibull"}, use_env=False)


def _cdnow_inputs() -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    _ref, cols = recorded("cdnow_daily")
    n = cols["T"].size
    return pl.DataFrame({"customer_id": np.arange(n), "repeat_purchases": cols["frequency"].astype(np.int64),
                         "t_last": cols["recency"].astype(np.int64), "T": cols["T"].astype(np.int64),
                         "repeat_value": pl.Series([None] * n, dtype=pl.Float64)}), cols


def test_churn_risk_reads_p_alive_for_repeat_customers_only_whatever_the_model():
    """MBG/NBD gives one-time buyers p_alive < 1 (BG/NBD gives 1); churn_risk ignores it for them
    so that it stays comparable across models."""
    inputs, _cols = _cdnow_inputs()
    res = fit_clv(inputs, CFG.clv, "mbg_nbd")
    assert res.churn_from_p_alive
    customers = inputs.select("customer_id", pl.lit("low").alias("churn_risk"))
    out = attach(customers, res).join(inputs.select("customer_id", "repeat_purchases"), on="customer_id")
    one_time = out.filter(pl.col("repeat_purchases") == 0)
    assert one_time["p_alive"].min() < 0.5
    assert set(one_time["churn_risk"]) == {"low"}
    assert "high" in set(out.filter(pl.col("repeat_purchases") > 0)["churn_risk"])


def test_auto_keeps_the_default_when_the_calibration_period_is_too_thin():
    import datetime as dt

    from segkit.models.clv.select import select_from_lines

    lines = pl.DataFrame({"customer_id": ["a", "a", "b"],
                          "order_date": [dt.date(2024, 1, 1), dt.date(2024, 3, 1), dt.date(2024, 2, 1)],
                          "amount": [10_000_000, 5_000_000, 7_000_000]})
    chosen, doc = select_from_lines(lines, dt.date(2024, 12, 31), CFG.clv)
    assert chosen == "bgnbd" and doc["scores"] == [] and "keeping BG/NBD" in doc["reason"]
    assert doc["holdout_days"] == 90 and doc["calibration_end"] == "2024-10-02"
