"""CLV (BG/NBD + Gamma-Gamma): likelihoods against hand-written formulas, fits against lifetimes'
recorded fits (tests/data/record_lifetimes.py) and against parameters the data were drawn from,
the pipeline columns, the skip path, churn_risk from p_alive and the backtest."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.optimize import approx_fprime

from conftest import dataset, run_cli, write_csv
from segkit import config, pipeline
from segkit.result import summary
from segkit.models import clv
from segkit.models.backtest import backtest
from segkit.models.clv.registry import get
from segkit.models.clv.simulate import simulate_bgnbd, simulate_values

DATA = Path(__file__).parent / "data"
CFG = config.load(None, use_env=False)


def recorded(name: str) -> tuple[dict, dict[str, dict]]:
    ref = json.loads((DATA / f"lifetimes_{name}.json").read_text(encoding="utf-8"))
    with gzip.open(DATA / f"lifetimes_{name}.csv.gz", "rt", encoding="utf-8") as fh:
        rows = {r["customer_id"]: {k: float(v) for k, v in r.items() if k != "customer_id"}
                for r in csv.DictReader(fh)}
    return ref, rows


def arrays(rows: dict[str, dict], *cols: str) -> list[np.ndarray]:
    return [np.array([r[c] for r in rows.values()]) for c in cols]


# ------------------------------------------------------------------ likelihoods by hand

def bgnbd_ll_by_hand(r, alpha, a, b, x, t_x, T):
    """FHL (2005) eq. 6, written with Beta and Gamma functions directly."""
    beta = lambda u, v: math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))  # noqa: E731
    l1 = (beta(a, b + x) / beta(a, b)) * math.gamma(r + x) * alpha ** r / (math.gamma(r) * (alpha + T) ** (r + x))
    l2 = 0.0
    if x > 0:
        l2 = (beta(a + 1, b + x - 1) / beta(a, b)) * math.gamma(r + x) * alpha ** r / (
            math.gamma(r) * (alpha + t_x) ** (r + x))
    return math.log(l1 + l2)


def gg_ll_by_hand(p, q, v, x, m):
    """Density of the mean of x Gamma(p, nu) values with nu ~ Gamma(q, v) (FHL 2005b, eq. 3)."""
    return math.log(math.gamma(p * x + q) / (math.gamma(p * x) * math.gamma(q)) * v ** q
                    * m ** (p * x - 1) * x ** (p * x) / (v + m * x) ** (p * x + q))


TINY = [(0, 0.0, 30.0), (1, 10.0, 40.0), (3, 25.0, 26.0), (7, 100.0, 300.0)]


@pytest.mark.parametrize("params", [(0.5, 20.0, 0.8, 2.5), (2.0, 3.0, 0.1, 10.0)])
def test_bgnbd_loglik_matches_hand_formula(params):
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    got = clv.bgnbd_loglik(np.array(params), x, t_x, T)
    want = [bgnbd_ll_by_hand(*params, *row) for row in TINY]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_gamma_gamma_loglik_matches_hand_formula():
    x, m = np.array([1.0, 2.0, 5.0]), np.array([12.0, 30.5, 7.25])
    got = clv.gg_loglik(np.array([2.0, 3.5, 40.0]), x, m)
    np.testing.assert_allclose(got, [gg_ll_by_hand(2.0, 3.5, 40.0, xi, mi) for xi, mi in zip(x, m)], rtol=1e-12)


def test_gradients_match_finite_differences():
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    theta = np.array([0.7, 15.0, 0.9, 3.0])
    _, g = clv.bgnbd_loglik(theta, x, t_x, T, grad=True)
    num = approx_fprime(theta, lambda th: clv.bgnbd_loglik(th, x, t_x, T).sum(), 1e-7)
    np.testing.assert_allclose(g.sum(axis=0), num, rtol=1e-5)
    xm, m = np.array([1.0, 2.0, 5.0]), np.array([12.0, 30.5, 7.25])
    th = np.array([2.0, 3.5, 40.0])
    _, g = clv.gg_loglik(th, xm, m, grad=True)
    num = approx_fprime(th, lambda t: clv.gg_loglik(t, xm, m).sum(), 1e-7)
    np.testing.assert_allclose(g.sum(axis=0), num, rtol=1e-5)


# ----------------------------------------------------------------- against lifetimes

def _check_outputs(ref: dict, rows: dict, bg: tuple, gg: tuple) -> None:
    x, t_x, T, m = arrays(rows, "frequency", "recency", "T", "monetary_value")
    p_alive = clv.bgnbd_p_alive(bg, x, t_x, T)
    expected = clv.bgnbd_expected(bg, ref["horizon"], x, t_x, T)
    value = clv.gg_expected_value(gg, x, m)
    want_p, want_e, want_v = arrays(rows, "p_alive", "expected_purchases", "expected_purchase_value")
    assert np.max(np.abs(p_alive - want_p)) <= 0.005
    np.testing.assert_allclose(expected, want_e, rtol=0.01)
    np.testing.assert_allclose(value, want_v, rtol=0.01)


def test_cdnow_fit_equals_lifetimes():
    """CDNOW: both models are identified; every parameter within 1% of lifetimes' (whose fit is the
    published one: r 0.243, alpha 4.414, a 0.793, b 2.426; p 6.25, q 3.74, v 15.44)."""
    ref, rows = recorded("cdnow")
    x, t_x, T, m = arrays(rows, "frequency", "recency", "T", "monetary_value")
    bg = clv.fit_bgnbd(x, t_x, T)
    use = (x > 0) & (m > 0)
    gg = clv.fit_gamma_gamma(x[use], m[use])
    assert bg.converged and gg.converged
    np.testing.assert_allclose(bg.params, [ref["bgnbd"][k] for k in ("r", "alpha", "a", "b")], rtol=0.01)
    np.testing.assert_allclose(gg.params, [ref["gamma_gamma"][k] for k in ("p", "q", "v")], rtol=0.01)
    _check_outputs(ref, rows, bg.params, gg.params)


@pytest.mark.parametrize("name", ["full", "non_uk"])
def test_online_retail_fit_equals_lifetimes(name):
    """Online Retail: the BG/NBD optimum is the no-dropout edge (a -> 0), where a and b are not
    identified (lifetimes itself returns a different b from each start). r and alpha, the
    likelihood, and every per-customer output must agree; Gamma-Gamma is identified."""
    ref, rows = recorded(name)
    x, t_x, T, m = arrays(rows, "frequency", "recency", "T", "monetary_value")
    bg = clv.fit_bgnbd(x, t_x, T)
    assert bg.converged
    lt = ref["bgnbd"]
    np.testing.assert_allclose(bg.params[:2], [lt["r"], lt["alpha"]], rtol=0.01)
    assert bg.params[2] / (bg.params[2] + bg.params[3]) < clv.NO_DROPOUT
    assert lt["a"] / (lt["a"] + lt["b"]) < clv.NO_DROPOUT
    ll_lifetimes = clv.bgnbd_loglik(np.array([lt[k] for k in ("r", "alpha", "a", "b")]), x, t_x, T).sum()
    assert bg.log_likelihood >= ll_lifetimes - 1e-6 * abs(ll_lifetimes)
    use = (x > 0) & (m > 0)
    gg = clv.fit_gamma_gamma(x[use], m[use])
    np.testing.assert_allclose(gg.params, [ref["gamma_gamma"][k] for k in ("p", "q", "v")], rtol=0.01)
    _check_outputs(ref, rows, bg.params, gg.params)


def test_fit_recovers_the_parameters_the_data_were_drawn_from():
    rng = np.random.default_rng(3)
    n = 30_000
    T = np.floor(rng.uniform(60, 730, n))
    truth = (0.8, 60.0, 0.8, 2.5)
    x, t_x = simulate_bgnbd(n, *truth, T, rng)
    m = simulate_values(x, 2.0, 3.5, 500.0, rng)
    bg = clv.fit_bgnbd(x, t_x, T)
    np.testing.assert_allclose(bg.params, truth, rtol=0.15)
    use = x > 0
    gg = clv.fit_gamma_gamma(x[use], m[use])
    np.testing.assert_allclose(gg.params, (2.0, 3.5, 500.0), rtol=0.15)


# -------------------------------------------------------------------- segkit end to end

@pytest.fixture(scope="module")
def non_uk():
    return pipeline.run(str(dataset("online_retail_non_uk.csv")), CFG, cluster=False)


@pytest.fixture(scope="module")
def non_uk_days():
    """Each customer's net per day, as the engine reduces the order lines for CLV selection and
    the backtest (the lines themselves are not kept)."""
    from segkit.engines.polars import order_lines, reduce_lines
    from segkit.ingest.read import read_input

    def read():
        return read_input(str(dataset("online_retail_non_uk.csv")))

    days = reduce_lines(*order_lines(read(), CFG, read), CFG, days=True).days
    assert days is not None and days.height > 1000
    return days


def test_model_inputs_equal_lifetimes_summary(non_uk, non_uk_days):
    _ref, rows = recorded("non_uk")
    got = clv.model_inputs(non_uk_days, non_uk.table.windows.as_of)
    assert got["customer_id"].to_list() == sorted(rows)
    want_x, want_t, want_T, want_m = arrays(rows, "frequency", "recency", "T", "monetary_value")
    assert got["repeat_purchases"].to_list() == want_x.astype(int).tolist()
    assert got["t_last"].to_list() == want_t.astype(int).tolist()
    assert got["T"].to_list() == want_T.astype(int).tolist()
    np.testing.assert_allclose(got["repeat_value"].fill_null(0.0).to_numpy(), want_m, rtol=1e-9)


def test_assignments_columns_equal_lifetimes(non_uk):
    _ref, rows = recorded("non_uk")
    a = non_uk.assignments
    cols = a.columns
    i = cols.index("churn_risk")
    assert cols[i + 1:i + 5] == list(clv.CLV_COLUMNS)
    got = {r["customer_id"]: r for r in a.iter_rows(named=True)}
    buyers = [c for c in got if c in rows]
    assert len(buyers) == len(rows)
    for cid in buyers:
        g, w = got[cid], rows[cid]
        assert abs(g["p_alive"] - w["p_alive"]) <= 0.005
        assert g["expected_purchases"] == pytest.approx(w["expected_purchases"], rel=0.01)
        assert g["expected_purchase_value"] == pytest.approx(w["expected_purchase_value"], rel=0.01)
        assert g["predicted_revenue"] == pytest.approx(w["expected_purchases"] * w["expected_purchase_value"], rel=0.02)
    no_purchase = [c for c in got if c not in rows]
    assert all(got[c]["p_alive"] is None for c in no_purchase)


def test_summary_clv_keys(non_uk):
    doc = summary(non_uk)["clv"]
    assert {"models", "params", "log_likelihood", "horizon_days", "customers_fitted"} <= set(doc)
    assert doc["models"] == ["BG/NBD", "Gamma-Gamma"]
    assert doc["customers_fitted"] == 418
    x, m = arrays(recorded("non_uk")[1], "frequency", "monetary_value")
    use = x > 0
    want_r = float(np.corrcoef(x[use], m[use])[0, 1])
    assert doc["independence_check"]["pearson_r_frequency_value"] == pytest.approx(want_r, rel=1e-9)
    # one year of data: the model finds no dropout, so churn_risk stays on the recency rule
    assert doc["no_dropout"] and doc["churn_rule"].startswith("recency")


def _lines(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["customer_id", "order_date", "amount"], orient="row").with_columns(
        pl.col("order_date").str.to_date(), (pl.col("amount") * 1e6).round(0).cast(pl.Int64))


def test_model_inputs_by_hand():
    """Returns and days whose net is not positive are not purchase days; the first day's value is
    left out of the repeat value."""
    lines = _lines([
        ("A", "2024-01-01", 100.0), ("A", "2024-01-01", -20.0), ("A", "2024-01-05", 50.0),
        ("A", "2024-01-09", -10.0), ("A", "2024-01-11", 30.0), ("A", "2024-01-11", 40.0),
        ("B", "2024-01-03", 10.0), ("C", "2024-01-02", -5.0), ("A", "2024-02-01", 999.0),
    ])
    got = {r["customer_id"]: r for r in clv.model_inputs(lines, dt.date(2024, 1, 21)).iter_rows(named=True)}
    assert set(got) == {"A", "B"}
    assert (got["A"]["repeat_purchases"], got["A"]["t_last"], got["A"]["T"]) == (2, 10, 20)
    assert got["A"]["repeat_value"] == pytest.approx((50 + 70) / 2)
    assert (got["B"]["repeat_purchases"], got["B"]["t_last"], got["B"]["T"], got["B"]["repeat_value"]) == (0, 0, 18, None)


def test_too_few_repeat_customers_skips_with_a_warning(tmp_path):
    rows = [[f"C{i}", f"2024-0{1 + i % 3}-1{i % 9}", 100 + i] for i in range(30)]
    rows += [["C1", "2024-05-01", 50], ["C2", "2024-05-02", 60]]
    path = write_csv(tmp_path / "few.csv", ["customer_id", "order_date", "amount"], rows)
    out = tmp_path / "out"
    proc = run_cli("segment", str(path), "-o", str(out), "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "at least 20" in doc["clv"]["skipped_reason"]
    assert [w["code"] for w in doc["warnings"] if w["code"].startswith("clv")] == ["clv_skipped"]
    with open(out / "assignments.csv", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert all(r[c] == "" for r in got for c in clv.CLV_COLUMNS)


def test_churn_risk_follows_p_alive_when_the_model_finds_dropout():
    rng = np.random.default_rng(5)
    n = 3000
    T = np.floor(rng.uniform(60, 730, n))
    x, t_x = simulate_bgnbd(n, 0.8, 60.0, 0.8, 2.5, T, rng)
    inputs = pl.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], "repeat_purchases": x.astype(np.int64),
                           "t_last": np.round(t_x), "T": T, "repeat_value": pl.Series([None] * n, dtype=pl.Float64)})
    s = config.ClvSettings()
    res = clv.fit_clv(inputs, s)
    assert res.churn_from_p_alive and res.value_skipped_reason  # no values: the value model is skipped
    customers = pl.DataFrame({"customer_id": inputs["customer_id"], "churn_risk": ["recency-rule"] * n,
                              "persona": [None] * n}, schema_overrides={"persona": pl.String})
    out = clv.attach(customers, res)
    assert out.columns == ["customer_id", "churn_risk", *clv.CLV_COLUMNS, "persona", "_repeat_purchases"]
    for row in out.iter_rows(named=True):
        if row["_repeat_purchases"] == 0:
            assert row["churn_risk"] == "recency-rule" and row["p_alive"] == 1.0
        else:
            p = row["p_alive"]
            assert row["churn_risk"] == ("high" if p < 0.3 else "medium" if p < 0.7 else "low")
    assert out["expected_purchase_value"].null_count() == n
    rule = res.summary()["churn_rule_code"]
    assert rule == {"code": "p_alive", "high": s.churn_high, "medium": s.churn_medium}
    assert f"high < {s.churn_high:g}" in clv.churn_rule_text(rule, "en")
    assert f"高 < {s.churn_high:g}" in clv.churn_rule_text(rule, "zh") and "p_alive" not in clv.churn_rule_text(rule, "zh")


def test_discounting():
    x, t_x, T = np.array([0.0, 3.0, 10.0]), np.array([0.0, 100.0, 300.0]), np.array([50.0, 200.0, 320.0])
    params, value = (0.8, 60.0, 0.8, 2.5), np.array([10.0, 20.0, 30.0])
    plain = clv.discounted_revenue(get("bgnbd"), params, 365, 0.0, x, t_x, T, value)
    np.testing.assert_array_equal(plain, clv.bgnbd_expected(params, 365, x, t_x, T) * value)
    disc = clv.discounted_revenue(get("bgnbd"), params, 365, 0.1, x, t_x, T, value)
    assert np.all(disc < plain) and np.all(disc > plain / 1.1)


# ---------------------------------------------------------------------------- backtest

def test_backtest_counts_what_happened_in_the_holdout(non_uk, non_uk_days):
    as_of = non_uk.table.windows.as_of
    doc = backtest(non_uk_days, as_of, 60, CFG.clv)
    start = as_of - dt.timedelta(days=60)
    net = defaultdict(float)
    with open(dataset("online_retail_non_uk.csv"), encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["CustomerID"]:
                d = dt.date.fromisoformat(row["InvoiceDate"][:10])
                net[(str(int(float(row["CustomerID"]))), d)] += float(row["Quantity"]) * float(row["UnitPrice"])
    before = {c for (c, d), v in net.items() if d < start and round(v, 6) > 0}
    holdout = [(c, d) for (c, d), v in net.items() if start <= d < as_of and round(v, 6) > 0]
    assert doc["customers"] == len(before)
    assert doc["totals"]["actual_purchases"] == sum(1 for c, _d in holdout if c in before)
    assert doc["new_in_holdout"] == len({c for c, _d in holdout} - before)
    assert sum(r["customers"] for r in doc["calibration_table"]) == len(before)
    assert doc["calibration_end"] == start.isoformat()
    assert doc["mae_per_customer"] > 0


def test_backtest_command_json_and_usage_error(tmp_path):
    path = dataset("online_retail_non_uk.csv")
    proc = run_cli("backtest", str(path), "--holdout-days", "90", "--json", "-", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["holdout_days"] == 90 and doc["totals"]["actual_purchases"] > 0
    bad = run_cli("backtest", str(path), "--holdout-days", "0")
    assert bad.returncode == 2 and b"--holdout-days" in bad.stderr


def test_churn_list_ranks_recent_customers_by_value_at_risk_and_lists_the_long_gone_as_lost():
    from segkit.models.value_at_risk import by_tier
    from segkit.outputs.report.clv_section import churn_warnings, clv_section

    class Res:  # what the report reads of a ClvResult
        churn_from_p_alive = True

    customers = pl.DataFrame({
        "customer_id": ["old", "big", "small", "sure", "onetime"],
        "tier": ["key", "key", "regular", "key", "regular"],
        "churn_risk": ["high", "high", "high", "low", "high"],
        "annual_spend": [0.0, 1000.0, 5000.0, 9000.0, 0.0],
        "prior_annual_spend": [0.0, 3000.0, 100.0, 0.0, 800.0],
        "monetary": [90000.0, 4000.0, 5100.0, 9000.0, 800.0],
        "p_alive": [0.01, 0.2, 0.9, 0.95, 1.0],
        "_repeat_purchases": [5, 4, 6, 3, 0],
        "predicted_revenue": [1.0, 2.0, 3.0, 4.0, 5.0],
        "last_order_date": [dt.date(2020, 1, 1), *[dt.date(2024, 1, 1)] * 4],
    })
    got = churn_warnings(customers, Res(), 10)
    # value at risk: big 3000 x 0.8 = 2400; onetime (recency rule) 800; small 5000 x 0.1 = 500
    assert got["customer_id"].to_list() == ["big", "onetime", "small"]
    assert got["_value_at_risk"].to_list() == pytest.approx([2400.0, 800.0, 500.0])
    doc = {"clv": {"models": ["BG/NBD"], "params": {}, "customers_fitted": 5, "repeat_customers": 4,
                   "horizon_days": 365, "independence_check": {"pearson_r_frequency_value": 0.1}, "churn_rule": "p",
                   "value_at_risk": by_tier(customers, Res(), ["key", "regular"]), "value_at_risk_rule": "p_alive"}}
    sec = clv_section(doc, customers, Res(), [("key", "key"), ("regular", "regular")], "en", 50)
    assert [r["customer_id"] for r in sec["lost"]] == ["old"] and sec["lost_count"] == 1
    key = next(r for r in sec["risk"] if r["tier"] == "key")
    assert key["value_at_risk"] == pytest.approx(0.0 + 2400.0 + 9000 * 0.05)
    assert sum(b["customers"] for b in sec["bins"]) == 4


def test_inputs_from_an_engine_base_table_equal_inputs_from_lines():
    """The engine seam's base table carries purchase_days, first/last purchase day and the summed
    net of the repeat purchase days; the model inputs from it equal those from the lines."""
    lines = _lines([
        ("A", "2024-01-01", 100.0), ("A", "2024-01-01", -20.0), ("A", "2024-01-05", 50.0),
        ("A", "2024-01-09", -10.0), ("A", "2024-01-11", 30.0), ("A", "2024-01-11", 40.0),
        ("B", "2024-01-03", 10.0), ("C", "2024-01-02", -5.0),
    ])
    base = pl.DataFrame({
        "customer_id": ["A", "B", "C"], "purchase_days": [3, 1, 0],
        "first_purchase_day": [dt.date(2024, 1, 1), dt.date(2024, 1, 3), None],
        "last_purchase_day": [dt.date(2024, 1, 11), dt.date(2024, 1, 3), None],
        "repeat_value": [120_000_000, 0, 0],
    })
    as_of = dt.date(2024, 1, 21)
    assert clv.inputs_from_base(base, as_of).equals(clv.model_inputs(lines, as_of))


def test_config_thresholds_are_checked():
    from segkit.errors import ConfigError

    base = config.default_dict()["clv"]
    assert config.clv_settings(base) == config.ClvSettings()
    with pytest.raises(ConfigError, match="churn_high <= churn_medium"):
        config.clv_settings({**base, "churn_high": 0.8, "churn_medium": 0.5})
    with pytest.raises(ConfigError, match="horizon_days"):
        config.clv_settings({**base, "horizon_days": 0})


def test_segment_backtest_reaches_summary_and_reports(tmp_path):
    import openpyxl

    from conftest import SAMPLE_DIR

    out = tmp_path / "out"
    proc = run_cli("segment", str(SAMPLE_DIR / "orders.xlsx"), "-o", str(out), "-q", "--backtest", "60")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    bt = doc["clv"]["backtest"]
    assert bt["holdout_days"] == 60 and bt["customers"] == sum(r["customers"] for r in bt["calibration_table"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="clv"' in html and "Backtest: purchases predicted for the holdout" in html
    assert f"actual {bt['totals']['actual_purchases']:,}" in html
    ws = openpyxl.load_workbook(out / "report.xlsx", read_only=True)["CLV"]
    cells = [c for row in ws.iter_rows(values_only=True) for c in row if c is not None]
    assert "Backtest: purchases predicted for the holdout against what happened" in cells
    r = doc["clv"]["params"]["bgnbd"]["r"]
    assert any(isinstance(c, float) and c == pytest.approx(r, rel=1e-12) for c in cells)


def test_bgnbd_expected_purchases_when_a_plus_b_is_below_one():
    """With a + b < 1 the hypergeometric term of a one-time buyer is negative (c = a + b - 1 < 0);
    the expectation must still be E[(1 - exp(-lambda p t)) / p] over the posterior, checked here by
    Monte Carlo (lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x); alive with certainty for x = 0)."""
    params = (1.0, 50.0, 0.3, 0.5)
    r, alpha, a, b = params
    rng = np.random.default_rng(0)
    T = np.array([200.0, 20.0])
    got = clv.bgnbd_expected(params, 365, np.zeros(2), np.zeros(2), T)
    assert np.all(np.isfinite(got))
    for i, t_obs in enumerate(T):
        p = rng.beta(a, b, 1_000_000)
        lam = rng.gamma(r, 1 / (alpha + t_obs), 1_000_000)
        sim = -np.expm1(-lam * p * 365) / p
        assert abs(got[i] - sim.mean()) < 4 * sim.std() / np.sqrt(sim.size)
