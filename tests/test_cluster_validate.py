"""Clustering and validation: every statistic equals scipy's / scikit-learn's on the same data."""

from __future__ import annotations

import csv
import json

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from conftest import SAMPLE_DIR, dataset, run_cli, write_csv
from segkit import config, pipeline
from segkit.models.kmeans import CustomerKMeans, sample_index, standardise
from segkit.models.cluster_validation import chi_square, eta_squared, r_squared

CFG = config.load(None, use_env=False)
REL = 1e-9


@pytest.fixture(scope="module")
def retail():
    """The real non-UK Online Retail book, segmented once for the module."""
    return pipeline.run(str(dataset("online_retail_non_uk.csv")), CFG)


@pytest.fixture(scope="module")
def sample_result():
    return pipeline.run(str(SAMPLE_DIR / "orders.xlsx"), CFG)


def _check_against_scipy(res):
    cr, v = res.clusters, res.validation
    labels = cr.labels
    groups = sorted(set(labels.tolist()))
    for j, feat in enumerate(cr.features):
        parts = [cr.x_raw[labels == g, j] for g in groups]
        f, p = stats.f_oneway(*parts)
        h, kp = stats.kruskal(*parts)
        assert v.anova[feat]["f"] == pytest.approx(f, rel=REL)
        assert v.anova[feat]["p"] == pytest.approx(p, rel=REL, abs=1e-300)
        assert v.kruskal[feat]["h"] == pytest.approx(h, rel=REL)
        assert v.kruskal[feat]["p"] == pytest.approx(kp, rel=REL, abs=1e-300)
        # eta² from the ANOVA F: F = (SSB/(k-1)) / (SSW/(n-k))  =>  eta² = F(k-1) / (F(k-1) + n-k)
        k, n = len(groups), len(labels)
        assert v.anova[feat]["eta2"] == pytest.approx(f * (k - 1) / (f * (k - 1) + n - k), rel=1e-7)
        tukey = stats.tukey_hsd(*parts)
        for pair in v.tukey[feat]:
            assert pair["p"] == pytest.approx(tukey.pvalue[pair["a"], pair["b"]], rel=REL, abs=1e-12)
    customers = cr.customers.filter(pl.col("cluster").is_not_null())
    for name, got in v.chi2.items():
        if "chi2" not in got:
            continue
        ct = pd_crosstab(customers["cluster"].to_list(), customers[name].to_list())
        chi2, p, dof, expected = stats.chi2_contingency(ct, correction=False)
        assert got["chi2"] == pytest.approx(chi2, rel=REL)
        assert got["p"] == pytest.approx(p, rel=REL, abs=1e-300)
        assert got["dof"] == dof
        assert got["cramers_v"] == pytest.approx(np.sqrt(chi2 / (ct.sum() * (min(ct.shape) - 1))), rel=REL)
        assert got["low_expected_share"] == pytest.approx((expected < 5).mean())
    idx = cr.sample_index
    assert v.silhouette == pytest.approx(silhouette_score(cr.x[idx], labels[idx]), rel=REL)
    assert v.calinski_harabasz == pytest.approx(calinski_harabasz_score(cr.x, labels), rel=REL)
    assert v.davies_bouldin == pytest.approx(davies_bouldin_score(cr.x, labels), rel=REL)


def pd_crosstab(a, b):
    """Contingency table by plain counting (rows: sorted a, columns: sorted b; nulls left out)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    ra, rb = sorted({x for x, _ in pairs}), sorted({y for _, y in pairs})
    t = np.zeros((len(ra), len(rb)), dtype=int)
    for x, y in pairs:
        t[ra.index(x), rb.index(y)] += 1
    return t


def test_validation_equals_scipy_on_real_data(retail):
    assert retail.clusters.k >= 2
    _check_against_scipy(retail)
    assert "region" in retail.validation.chi2  # Country stands in for region


def test_validation_equals_scipy_on_shipped_sample(sample_result):
    _check_against_scipy(sample_result)
    # p-values only for attributes that did not build the clusters; tier and segment are counts only
    assert set(sample_result.validation.chi2) == {"channel", "region", "customer_type"}
    v = sample_result.validation
    customers = sample_result.clusters.customers.filter(pl.col("cluster").is_not_null())
    for name in ("tier", "rfm_segment"):
        table = v.cross_tables[name]
        assert set(table) == {"rows", "columns", "counts"}
        expected = pd_crosstab([str(c) for c in customers["cluster"].to_list()], customers[name].to_list())
        assert table["counts"] == expected.tolist()


def test_r2_against_scikit_learn_and_scipy(retail):
    cr = retail.clusters
    n, k = len(cr.labels), cr.k
    # scikit-learn's Calinski-Harabasz index is (B/(k-1)) / (W/(n-k)), so R² = B/(B+W) follows from it
    ch = calinski_harabasz_score(cr.x, cr.labels)
    assert retail.validation.r2 == pytest.approx(ch * (k - 1) / (ch * (k - 1) + n - k), rel=1e-9)
    # each standardised feature has total SS = n, so R² is the mean of the per-feature eta², and
    # eta² follows from scipy's one-way ANOVA F: eta² = F(k-1) / (F(k-1) + n-k)
    etas = []
    for j in range(cr.x.shape[1]):
        f = stats.f_oneway(*[cr.x[cr.labels == c, j] for c in range(k)]).statistic
        etas.append(f * (k - 1) / (f * (k - 1) + n - k))
    assert retail.validation.r2 == pytest.approx(np.mean(etas), rel=1e-9)


def test_clusters_numbered_by_descending_mean_monetary(retail, sample_result):
    for res in (retail, sample_result):
        means = [p["mean_monetary"] for p in res.clusters.profiles]
        assert means == sorted(means, reverse=True)
        df = res.customers.filter(pl.col("cluster").is_not_null())
        recomputed = df.group_by("cluster").agg(pl.col("monetary").mean()).sort("cluster")["monetary"].to_list()
        assert recomputed == pytest.approx(means)
        assert df["cluster_label"].null_count() == 0
        assert len({p["label"] for p in res.clusters.profiles}) == res.clusters.k


def test_auto_k_is_best_silhouette_on_the_sample(sample_result):
    cr = sample_result.clusters
    best = max(cr.silhouette_by_k, key=lambda k: cr.silhouette_by_k[k])
    assert cr.k == best and set(cr.silhouette_by_k) == set(range(2, 9))
    # recompute one candidate by hand with scikit-learn
    xs = cr.x[sample_index(len(cr.x), CFG.silhouette_sample, CFG.random_state)]
    labels = KMeans(n_clusters=3, n_init=10, random_state=42).fit(xs).labels_
    assert cr.silhouette_by_k[3] == pytest.approx(silhouette_score(xs, labels), rel=REL)


def test_auto_k_on_a_large_book_fits_candidates_on_a_sample():
    rng = np.random.default_rng(1)
    x = standardise(np.vstack([rng.normal(c, 0.3, size=(4000, 3)) for c in (0, 3, 6)]))
    m = CustomerKMeans(k="auto", silhouette_sample=2000).fit(x, x[:, 0])
    assert m.k_ == 3 and len(m.labels_) == len(x) and len(m.sample_index_) == 2000
    # numbering: cluster 0 has the highest mean of the value column
    means = [x[m.labels_ == c, 0].mean() for c in range(3)]
    assert means == sorted(means, reverse=True)


def test_fixed_k_and_determinism(tmp_path):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    for out in (out1, out2):
        proc = run_cli("segment", str(SAMPLE_DIR / "orders.xlsx"), "-o", str(out), "--k", "4", "-q", "--no-report")
        assert proc.returncode == 0, proc.stderr.decode()
    assert (out1 / "assignments.csv").read_bytes() == (out2 / "assignments.csv").read_bytes()
    doc = json.loads((out1 / "summary.json").read_text(encoding="utf-8"))
    assert doc["clusters"]["k"] == 4 and doc["clusters"]["k_choice"] == "fixed"
    with open(out1 / "assignments.csv", encoding="utf-8") as fh:
        assert {r["cluster"] for r in csv.DictReader(fh)} == {"0", "1", "2", "3"}
    v = doc["validation"]
    # R² and scikit-learn's Calinski-Harabasz index describe the same split: CH = (R²/(k-1)) / ((1-R²)/(n-k))
    n, k, ch = doc["clusters"]["customers_clustered"], 4, v["calinski_harabasz"]
    assert v["r2"] == pytest.approx(ch * (k - 1) / (ch * (k - 1) + n - k), rel=1e-9)
    assert -1 <= v["silhouette"] <= 1 and v["davies_bouldin"] > 0
    assert v["verdict_text"].startswith("4 distinct customer groups" if v["distinct"] else "No evidence")
    assert "4 个" in v["verdict_zh"]
    assert v["k_rule"] == "fixed" and v["verdict"] in ("distinct", "none", "inconclusive")
    for t in v["null_tests"]:  # a fixed k is tested at that k
        assert set(t) >= {"null", "method", "statistic", "null_mean", "null_sd", "replicates", "p"} and t["k"] == 4
    assert set(v["stability"]) >= {"per_cluster", "mean"} and len(v["stability"]["per_cluster"]) == 4
    assert v["distinct"] == all(t["p"] < 0.01 for t in v["null_tests"])
    assert v["verdict"] == ("distinct" if v["distinct"] else
                            "inconclusive" if any(t["p"] < 0.01 for t in v["null_tests"]) else "none")
    assert set(v["anova"]) == set(v["kruskal"]) == {"log_recency_days", "log_frequency", "log_monetary"}


def test_chi_square_on_uci_wholesale_channel_by_region():
    """The real UCI table: Channel × Region against scipy, by hand-built contingency counts."""
    with open(dataset("uci_wholesale_customers.csv"), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    a = pl.Series([r["Channel"] for r in rows])
    b = pl.Series([r["Region"] for r in rows])
    got = chi_square(a, b)
    ct = pd_crosstab(a.to_list(), b.to_list())
    assert ct.sum() == 440 and ct.sum(axis=1).tolist() == [298, 142]
    chi2, p, dof, _ = stats.chi2_contingency(ct, correction=False)
    assert (got["chi2"], got["dof"]) == (pytest.approx(chi2, rel=REL), dof)
    assert got["p"] == pytest.approx(p, rel=REL)


def test_kmeans_on_uci_spend_columns_anova_and_r2():
    with open(dataset("uci_wholesale_customers.csv"), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]
    raw = np.log1p(np.array([[float(r[c]) for c in cols] for r in rows]))
    x = standardise(raw)
    m = CustomerKMeans(k=3).fit(x, raw.sum(axis=1))
    ref = KMeans(n_clusters=3, n_init=10, random_state=42).fit(x)
    assert r_squared(x, m.labels_) == pytest.approx(1 - ref.inertia_ / ((x - x.mean(0)) ** 2).sum(), rel=1e-9)
    for j in range(len(cols)):
        assert eta_squared(raw[:, j], m.labels_) == pytest.approx(
            eta_squared(raw[:, j], ref.labels_), rel=1e-12)


def _lines_csv(tmp_path, rows):
    return write_csv(tmp_path / "x.csv", ["customer", "order", "date", "amount"], rows)


@pytest.mark.parametrize(("rows", "reason"), [
    ([["A", "1", "2024-01-01", "5"]], "only 1 customer"),
    ([["A", "1", "2024-01-01", "5"], ["B", "2", "2024-01-01", "5"], ["C", "3", "2024-01-01", "5"]], "identical"),
    ([["A", "1", "2024-01-01", "5"], ["B", "2", "2024-01-02", "-5"]], "only 1 customer"),
])
def test_degenerate_data_skips_clustering_with_a_reason(tmp_path, rows, reason):
    out = tmp_path / "o"
    proc = run_cli("segment", str(_lines_csv(tmp_path, rows)), "-o", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "clustering skipped" in proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert reason in doc["clusters"]["skipped_reason"]
    assert doc["clusters"]["k"] is None and doc["validation"]["skipped_reason"]
    with open(out / "assignments.csv", encoding="utf-8") as fh:
        assert all(r["cluster"] == "" for r in csv.DictReader(fh))


def test_fewer_distinct_customers_than_k_reduces_k(tmp_path):
    rows = [[c, str(i), "2024-01-01" if c in "AB" else "2024-06-01", "5" if c in "AB" else "500"]
            for i, c in enumerate("ABCD")]
    out = tmp_path / "o"
    proc = run_cli("segment", str(_lines_csv(tmp_path, rows)), "-o", str(out), "--no-report", "--k", "5", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["clusters"]["k"] == 2 and "reduced to 2" in doc["clusters"]["reduced_reason"]
    # one tier only: the cross-table of cluster × tier has one column, and no test is made of it
    assert doc["validation"]["cross_tables"]["tier"]["counts"] == [[2], [2]]
    assert "tier" not in doc["validation"]["chi2"]


def test_customers_without_purchase_are_left_out_and_counted(tmp_path):
    rows = [[c, str(i), f"2024-0{i % 9 + 1}-01", str(10 * (i + 1))] for i, c in enumerate("ABCDEFGH")]
    rows.append(["R", "99", "2024-03-01", "-40"])
    out = tmp_path / "o"
    proc = run_cli("segment", str(_lines_csv(tmp_path, rows)), "-o", str(out), "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["clusters"]["customers_excluded_no_purchase"] == 1
    assert doc["clusters"]["customers_clustered"] == 8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silhouette_equals_scikit_learn_including_singletons_and_ties(seed):
    from segkit.models.kmeans import silhouette

    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(size=(300, 3)), [[9, 9, 9]], np.zeros((5, 3))])  # a singleton, duplicates
    labels = np.concatenate([rng.integers(0, 4, 300), [7], np.full(5, 2)])
    assert silhouette(x, labels) == pytest.approx(silhouette_score(x, labels), rel=1e-12)


def test_tukey_above_25000_df_takes_infinite_df_as_r_does():
    """Above 25,000 error df the p-values are the studentized range at infinite df (R's ptukey);
    within 1e-3 (relative) of scipy's finite-df integral, and the mean differences are scipy's."""
    from segkit.models.cluster_validation import TUKEY_DF_INFINITE, tukey_hsd

    rng = np.random.default_rng(5)
    parts = [rng.normal(loc, 1.0, size) for loc, size in ((0.0, 12_000), (0.03, 9_000), (0.05, 10_000))]
    assert sum(map(len, parts)) - 3 > TUKEY_DF_INFINITE
    diff, p = tukey_hsd(parts)
    ref = stats.tukey_hsd(*parts)
    assert np.allclose(diff, ref.statistic, rtol=1e-12, atol=1e-15)
    off = ~np.eye(3, dtype=bool)
    assert np.all((p[off] > 1e-4) & (p[off] < 0.99))  # a range where the two integrals can be compared
    assert np.allclose(p[off], ref.pvalue[off], rtol=1e-3)
    mse = sum(pt.var(ddof=1) * (len(pt) - 1) for pt in parts) / (sum(map(len, parts)) - 3)
    se = np.sqrt(mse / 2 * (1 / len(parts[0]) + 1 / len(parts[1])))
    assert p[0, 1] == pytest.approx(stats.studentized_range.sf(abs(diff[0, 1]) / se, 3, np.inf), rel=1e-12)
    small = [pt[:500] for pt in parts]
    assert np.array_equal(tukey_hsd(small)[1], stats.tukey_hsd(*small).pvalue)
