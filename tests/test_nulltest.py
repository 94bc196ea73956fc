"""The one-population nulls and stability: they must say "no" on one population and "yes" on groups.

Data where the truth is known: one smooth population drawn from a Gaussian copula with skewed
marginals and an integer frequency with a heavy spike at 1 (no groups at all), and a mixture of
three well separated groups. Each customer gets a purchase history consistent with its recency
and frequency, and goes through the same clustering, CLV fit and validation as a real book.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.special import ndtr

from segkit import config
from segkit.models import nulls as nulltest
from segkit.models.btyd_null import NotRun
from segkit.models.clv.run import run_clv
from segkit.models.kmeans import cluster_customers, standardise
from segkit.models.cluster_validation import btyd_inputs, validate

CFG = config.load(None, use_env=False)
AS_OF = dt.date(2025, 1, 1)
MICRO = 1_000_000


def one_population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """recency (days), frequency (orders, integer, ~35% at 1), monetary: one Gaussian copula."""
    rng = np.random.default_rng(seed)
    r = np.array([[1.0, -0.5, -0.3], [-0.5, 1.0, 0.7], [-0.3, 0.7, 1.0]])
    u = ndtr(rng.standard_normal((n, 3)) @ np.linalg.cholesky(r).T)
    recency = 1 + stats.expon.ppf(u[:, 0], scale=60).round()
    frequency = stats.geom.ppf(u[:, 1], 0.35)
    monetary = stats.lognorm.ppf(u[:, 2], s=1.2, scale=800).round(2)
    return recency, frequency, monetary


def three_groups(n_each: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occasional small buyers, regular mid buyers and frequent large buyers, well apart."""
    rng = np.random.default_rng(seed)
    parts = []
    for rec, freq, mon in ((200, 1.5, 150), (40, 8, 3000), (5, 60, 80000)):
        parts.append((1 + rng.gamma(20, rec / 20, n_each).round(), 1 + rng.poisson(freq - 1, n_each),
                      rng.lognormal(np.log(mon), 0.25, n_each).round(2)))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def customers(recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> pl.DataFrame:
    """A customer table with the columns clustering, CLV and validation read: each customer bought
    on ``frequency`` days, the last ``recency`` days before AS_OF, 3-30 days apart."""
    n = len(recency)
    gaps = np.random.default_rng(n).integers(3, 31, n)
    tenure = (recency + (frequency - 1) * gaps).astype(np.int64)
    first = [AS_OF - dt.timedelta(days=int(d)) for d in tenure]
    last = [AS_OF - dt.timedelta(days=int(d)) for d in recency]
    repeat = np.round(monetary * (frequency - 1) / frequency * MICRO).astype(np.int64)
    return pl.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "first_order_date": first, "last_order_date": last,
        "recency_days": recency.astype(np.int64), "frequency": frequency.astype(np.int64),
        "monetary": monetary, "annual_spend": monetary,
        "tier": np.where(monetary > np.median(monetary), "key", "standard"),
        "rfm_segment": np.where(frequency > 1, "loyal", "new"),
        "cluster": pl.Series([None] * n, dtype=pl.Int64), "cluster_label": pl.Series([None] * n, dtype=pl.String),
        "_purchase_days": frequency.astype(np.int64), "_first_purchase_day": first, "_last_purchase_day": last,
        "_repeat_value": repeat,
    })


def run(cols, cfg=CFG):
    table = customers(*cols)
    cr = cluster_customers(table, cfg)
    clv = run_clv(table, AS_OF, cfg.clv)
    return cr, validate(cr, cfg, btyd=btyd_inputs(cr, table, clv, AS_OF))


@pytest.fixture(scope="module")
def separated():
    return run(three_groups(300, 5))


def test_one_population_is_not_called_distinct_in_9_of_10_seeds():
    verdicts = [run(one_population(300, seed))[1] for seed in range(10)]
    assert sum(v.distinct for v in verdicts) <= 1
    assert sum(v.evidence.tests[1].ran for v in verdicts) >= 5  # the BG/NBD fit converges on most of them
    for v in verdicts:
        assert [t.null for t in v.evidence.tests] == ["split_copula", "btyd"]
        assert all(t.replicates == nulltest.REPLICATES for t in v.evidence.tests if t.ran)
        assert all(t.ran or t.reason.startswith("purchase model not fitted") for t in v.evidence.tests)
        if not v.distinct:
            assert v.verdict.startswith("No evidence of distinct customer groups")
            assert v.verdict_zh.startswith("没有证据表明存在不同的客户群")
            assert v.summary()["groups"] == 1 and v.summary()["verdict"] in ("none", "inconclusive")
    # the descriptive tests are significant all the same: that is why they cannot decide
    assert all(v.anova["log_monetary"]["p"] < 0.01 for v in verdicts)


def test_three_separated_groups_are_distinct_with_k_3(separated):
    cr, v = separated
    assert cr.k == 3 and v.distinct and v.evidence.choice.k == 3
    for t in v.evidence.tests:
        assert t.k == 3 and t.p == pytest.approx(1 / (nulltest.REPLICATES + 1))
        assert t.statistic > t.null_mean + 3 * t.null_sd
    assert v.verdict.startswith("3 distinct customer groups") and v.verdict_zh.startswith("存在 3 个不同的客户群")
    s = v.summary()
    assert s["groups"] == 3 and s["verdict"] == "distinct" and s["distinct"] is True
    assert all(j >= nulltest.STABLE for j in v.stability.per_cluster)


def test_without_a_purchase_model_fit_the_verdict_is_never_distinct(separated):
    cr, _ = separated
    v = validate(cr, CFG, btyd=NotRun("switched off in the config"))
    btyd = v.evidence.tests[-1]
    assert not btyd.ran and btyd.p is None and not v.distinct
    assert v.summary()["verdict"] == "inconclusive"  # the copula still rejects: it says which did what
    assert "could not be run (switched off in the config)" in v.verdict
    assert v.summary()["null_tests"][-1]["reason"] == "switched off in the config"


def test_reported_p_is_the_max_t_p_of_the_replicates(separated):
    _, v = separated
    for entry, t in zip(v.summary()["null_tests"], v.evidence.tests):
        assert entry["replicates"] == nulltest.REPLICATES and entry["p"] == t.p
        # p = (1 + replicates whose largest standardised excess reaches the data's) / (B + 1)
        assert entry["p"] * (nulltest.REPLICATES + 1) == pytest.approx(round(entry["p"] * (nulltest.REPLICATES + 1)))
        assert set(entry) >= {"null", "statistic", "null_mean", "null_sd", "replicates", "p", "k", "method"}


def test_terminal_prints_the_verdict_and_the_stability_caveat(separated):
    import io

    from rich.console import Console

    from segkit.cli.terminal import print_validation

    _, v = separated
    buf = io.StringIO()
    print_validation(v.summary(), Console(file=buf, width=400, no_color=True))
    text = buf.getvalue()
    assert f"Verdict: {v.verdict}" in text
    assert "does not show that groups exist" in text and "not evidence that groups exist" in text
    assert "real" not in text


def test_a_fixed_k_is_tested_at_that_k(separated):
    cr, _ = separated
    table = customers(*three_groups(300, 5))
    cfg = dataclasses.replace(CFG, k=5)
    fixed = cluster_customers(table, cfg)
    v = validate(fixed, cfg, btyd=btyd_inputs(fixed, table, run_clv(table, AS_OF, cfg.clv), AS_OF))
    assert v.evidence.choice.rule == "fixed" and all(t.k == 5 for t in v.evidence.tests)


def test_copula_keeps_marginals_ties_and_rank_correlation():
    rec, freq, mon = one_population(3000, 11)
    x = np.log1p(np.column_stack([rec, freq, mon]))
    cop = nulltest.GaussianCopula(x, 42)
    rep = cop.sample(len(x), np.random.default_rng(0))
    # only observed values are drawn, and the spike of one-order customers is reproduced
    for j in range(3):
        assert np.isin(rep[:, j], x[:, j]).all()
    ones_data, ones_rep = np.mean(x[:, 1] == np.log(2)), np.mean(rep[:, 1] == np.log(2))
    assert ones_data > 0.3 and ones_rep == pytest.approx(ones_data, abs=0.03)
    for j in range(3):
        assert stats.ks_2samp(x[:, j], rep[:, j]).pvalue > 0.01
    rho_data = stats.spearmanr(x).statistic
    rho_rep = stats.spearmanr(rep).statistic
    assert np.abs(rho_data - rho_rep).max() < 0.05


def test_null_evidence_is_deterministic_and_subsamples_large_books():
    x_raw = np.log1p(np.column_stack(one_population(3000, 2)))
    features = ["log_recency_days", "log_frequency", "log_monetary"]
    run_once = lambda: nulltest.null_evidence(x_raw, features, 2, 7, NotRun("none"), (2, 3, 4),  # noqa: E731
                                              replicates=5, sample=1000)
    a, b = run_once(), run_once()
    assert a.tests == b.tests and a.choice == b.choice
    assert (a.sample_size, a.customers) == (1000, 3000)


def test_jaccard_best_by_hand():
    original = np.array([0, 0, 0, 1, 1, 2])
    new = np.array([1, 1, 0, 0, 0, 0])
    # cluster 0 {0,1,2} vs new 1 {0,1}: 2/3; cluster 1 {3,4} vs new 0 {2,3,4,5}: 2/4; cluster 2 {5}: 1/4
    assert nulltest.jaccard_best(original, new, 3, 2).tolist() == pytest.approx([2 / 3, 0.5, 0.25])


def test_stability_dissolves_a_cluster_that_is_an_arbitrary_split():
    """Labels that cut one blob at random are not reproduced; a real split is."""
    rng = np.random.default_rng(0)
    x = standardise(np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(8, 1, (300, 2))]))
    real = (x[:, 0] > 0).astype(np.int64)
    assert min(nulltest.stability(x, real, 2, 42, resamples=10).per_cluster) > 0.95
    noise = rng.integers(0, 2, 600)
    assert max(nulltest.stability(x, noise, 2, 42, resamples=10).per_cluster) < 0.75


def test_early_tests_are_used_only_when_they_are_the_ones_null_evidence_would_run():
    x_raw = np.log1p(np.column_stack(three_groups(200, 4)))
    features = ["log_recency_days", "log_frequency", "log_monetary"]
    rows = nulltest.sample_rows(len(x_raw), 1000, 7)
    plain = nulltest.null_evidence(x_raw, features, 3, 7, NotRun("none"), (2, 3, 4), replicates=9)
    early = nulltest.copula_null(x_raw[rows], features, 7, (2, 3, 4), replicates=9)
    used = nulltest.null_evidence(x_raw, features, 3, 7, NotRun("none"), (2, 3, 4), replicates=9, early=(early,))
    assert used.tests == plain.tests and used.tests[0].p == early.curve.p
    # drawn for another k range or from other rows: not used, the test is run again
    other_ks = nulltest.copula_null(x_raw[rows], features, 7, (2, 3), replicates=9)
    other_rows = nulltest.copula_null(x_raw[rows][::-1], features, 7, (2, 3, 4), replicates=9)
    for stale in (other_ks, other_rows):
        again = nulltest.null_evidence(x_raw, features, 3, 7, NotRun("none"), (2, 3, 4), replicates=9, early=(stale,))
        assert again.tests == plain.tests
    assert not np.array_equal(other_rows.curve.observed, early.curve.observed)  # had it been used, tests would differ
