"""The null-reference test and stability: they must say "no" on one population and "yes" on groups.

Data where the truth is known: one smooth population drawn from a Gaussian copula with skewed
marginals and an integer frequency with a heavy spike at 1 (no groups at all), and a mixture of
three well separated groups. Each goes through the same clustering and validation as a real book.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.special import ndtr

from segkit import config
from segkit.models import nulls as nulltest
from segkit.models.kmeans import cluster_customers, standardise
from segkit.models.cluster_validation import validate

CFG = config.load(None, use_env=False)
AS_OF = dt.date(2025, 1, 1)


def one_population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """recency (days), frequency (orders, integer, ~35% at 1), monetary: one Gaussian copula."""
    rng = np.random.default_rng(seed)
    r = np.array([[1.0, -0.5, -0.3], [-0.5, 1.0, 0.7], [-0.3, 0.7, 1.0]])
    u = ndtr(rng.standard_normal((n, 3)) @ np.linalg.cholesky(r).T)
    recency = stats.expon.ppf(u[:, 0], scale=60).round()
    frequency = stats.geom.ppf(u[:, 1], 0.35)
    monetary = stats.lognorm.ppf(u[:, 2], s=1.2, scale=800).round(2)
    return recency, frequency, monetary


def three_groups(n_each: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occasional small buyers, regular mid buyers and frequent large buyers, well apart."""
    rng = np.random.default_rng(seed)
    parts = []
    for rec, freq, mon in ((200, 1.5, 150), (40, 8, 3000), (5, 60, 80000)):
        parts.append((rng.gamma(20, rec / 20, n_each).round(), 1 + rng.poisson(freq - 1, n_each),
                      rng.lognormal(np.log(mon), 0.25, n_each).round(2)))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def customers(recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> pl.DataFrame:
    """A customer table with the columns clustering and validation read."""
    n = len(recency)
    return pl.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "last_order_date": [AS_OF - dt.timedelta(days=int(d)) for d in recency],
        "recency_days": recency.astype(np.int64), "frequency": frequency.astype(np.int64),
        "monetary": monetary, "annual_spend": monetary,
        "tier": np.where(monetary > np.median(monetary), "key", "standard"),
        "rfm_segment": np.where(frequency > 1, "loyal", "new"),
        "cluster": pl.Series([None] * n, dtype=pl.Int64), "cluster_label": pl.Series([None] * n, dtype=pl.String),
    })


def run(cols, cfg=CFG):
    cr = cluster_customers(customers(*cols), cfg)
    return cr, validate(cr, cfg)


@pytest.fixture(scope="module")
def separated():
    return run(three_groups(300, 5))


def test_one_population_is_not_called_distinct_in_19_of_20_seeds():
    verdicts = [run(one_population(300, seed))[1] for seed in range(20)]
    assert sum(v.distinct for v in verdicts) <= 1
    for v in verdicts:
        assert v.null_test.replicates == nulltest.REPLICATES
        if not v.distinct:
            assert v.verdict.startswith("No evidence of distinct customer groups")
            assert v.verdict_zh.startswith("没有证据表明存在不同的客户群")
            assert v.summary()["groups"] == 1
    # the descriptive tests are significant all the same: that is why they cannot decide
    assert all(v.anova["log_monetary"]["p"] < 0.01 for v in verdicts)


def test_three_separated_groups_are_distinct_with_k_3(separated):
    cr, v = separated
    assert cr.k == 3 and v.distinct
    nt = v.null_test
    assert nt.p == pytest.approx(1 / (nulltest.REPLICATES + 1))
    assert nt.statistic > max(nt.null_statistics)
    assert v.verdict.startswith("3 distinct customer groups") and v.verdict_zh.startswith("存在 3 个不同的客户群")
    assert v.summary()["groups"] == 3
    assert all(j >= nulltest.STABLE for j in v.stability.per_cluster)


def test_reported_p_is_the_monte_carlo_p_of_the_replicates(separated):
    _, v = separated
    s = v.summary()["null_test"]
    null = np.array(s["null_statistics"])
    assert len(null) == s["replicates"] == nulltest.REPLICATES
    assert s["p"] == (1 + np.sum(null >= s["statistic"])) / (len(null) + 1)
    assert s["null_mean"] == pytest.approx(null.mean()) and s["null_sd"] == pytest.approx(null.std(ddof=1))


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


def test_p_follows_the_statistic_not_anova():
    """Swap in a statistic: the replicates beat the data, so the same groups are not 'distinct'."""
    cols = three_groups(60, 1)
    x_raw = np.log1p(np.column_stack([cols[0], cols[1], cols[2]]))
    calls = []

    def statistic(x, k, seed, n_init):
        calls.append(len(x))
        return 0.0 if len(calls) == 1 else 1.0  # observed first, then every replicate

    nt = nulltest.null_test(x_raw, 3, 42, replicates=100, statistic=statistic)
    assert len(calls) == 101 and nt.p == 1.0 and not nt.rejects
    real = nulltest.null_test(x_raw, 3, 42, replicates=100)
    assert real.rejects and real.p == pytest.approx(1 / 101)


def test_observed_statistic_is_scikit_learn_kmeans_r2():
    from sklearn.cluster import KMeans

    x_raw = np.log1p(np.column_stack(one_population(300, 3)))
    x = standardise(x_raw)
    ref = KMeans(n_clusters=2, n_init=nulltest.N_INIT, random_state=42).fit(x)
    got = nulltest.kmeans_r2(x_raw, 2, 42)
    assert got == pytest.approx(1 - ref.inertia_ / ((x - x.mean(0)) ** 2).sum(), rel=1e-12)


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


def test_null_test_is_deterministic_and_subsamples_large_books():
    x_raw = np.log1p(np.column_stack(one_population(3000, 2)))
    a = nulltest.null_test(x_raw, 2, 7, replicates=5, sample=1000)
    b = nulltest.null_test(x_raw, 2, 7, replicates=5, sample=1000)
    assert a.null_statistics == b.null_statistics and a.statistic == b.statistic
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
