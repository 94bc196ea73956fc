"""clustering.fit_sample (SPEC §9): above that many customers the final k-means fit and the CLV fits
run on a fixed-seed sample and every customer is scored with the fitted model; at or below it
nothing changes. Small books with a small fit_sample stand in for the large ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from sklearn.cluster import KMeans

from segkit import config, pipeline, sample
from segkit.errors import ConfigError
from segkit.models.clv.gamma_gamma import fit_gamma_gamma
from segkit.models.clv.registry import get
from segkit.models.clv.run import CLV_COLUMNS, fit_clv
from segkit.models.clv.simulate import simulate_bgnbd, simulate_values
from segkit.models.kmeans import CustomerKMeans, standardise

CFG = config.load(None, use_env=False)
N, SIL = 500, 200  # fit sample and silhouette sample of the small books


def _rows(n: int, size: int, seed: int) -> np.ndarray:
    """The documented fixed-seed sample, written out here rather than imported."""
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _blobs(n_per: int = 700) -> np.ndarray:
    rng = np.random.default_rng(3)
    return standardise(np.vstack([rng.normal(c, 0.8, size=(n_per, 3)) for c in (0, 2, 4)]))


def test_kmeans_final_fit_runs_on_the_sample_and_labels_everyone_by_nearest_centre():
    x = _blobs()
    n = len(x)
    m = CustomerKMeans(k="auto", silhouette_sample=SIL, fit_sample=N).fit(x, x[:, 0])
    assert len(m.fit_index_) == N and np.array_equal(m.fit_index_, _rows(n, N, 42))
    # the same fit by hand: the best of 10 starts on the silhouette sample, one Lloyd run on the fit sample
    start = KMeans(n_clusters=m.k_, n_init=10, random_state=42).fit(x[_rows(n, SIL, 42)]).cluster_centers_
    direct = KMeans(n_clusters=m.k_, init=start, n_init=1, random_state=42).fit(x[_rows(n, N, 42)])
    order = [int(np.argmin(((direct.cluster_centers_ - c) ** 2).sum(axis=1))) for c in m.cluster_centers_]
    assert sorted(order) == list(range(m.k_))
    np.testing.assert_allclose(m.cluster_centers_, direct.cluster_centers_[order], rtol=1e-9, atol=1e-12)
    # every customer: the nearest fitted centre (KMeans.predict), renumbered as the clusters are
    remap = np.empty(m.k_, dtype=np.int64)
    remap[order] = np.arange(m.k_)
    assert len(m.labels_) == n and np.array_equal(m.labels_, remap[direct.predict(x)])
    # a fit on everyone ends elsewhere: the sample made a difference here
    full = CustomerKMeans(k="auto", silhouette_sample=SIL).fit(x, x[:, 0])
    assert not np.allclose(full.cluster_centers_, m.cluster_centers_, rtol=0, atol=1e-9)


def test_kmeans_at_or_below_fit_sample_is_unchanged():
    x = _blobs()
    old = CustomerKMeans(k="auto", silhouette_sample=SIL).fit(x, x[:, 0])
    for size in (len(x), 10 * len(x)):
        new = CustomerKMeans(k="auto", silhouette_sample=SIL, fit_sample=size).fit(x, x[:, 0])
        assert new.k_ == old.k_ and np.array_equal(new.labels_, old.labels_)
        assert np.array_equal(new.cluster_centers_, old.cluster_centers_) and new.inertia_ == old.inertia_


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """2,000 synthetic customers as segment reads them, with a fit sample of 500."""
    path = tmp_path_factory.mktemp("fit_sample") / "orders.parquet"
    sample.write(sample.generate(8000, 2000, seed=7), path)
    cfg = dataclasses.replace(CFG, silhouette_sample=SIL, fit_sample=N)
    return pipeline.run(str(path), cfg, cluster=False)


def test_segment_clusters_every_customer_on_a_sample_fit_deterministically(book):
    first, second = (pipeline.add_clusters(book, lambda _s: None).clusters for _ in range(2))
    assert first.labels is not None and len(first.labels) > N
    assert np.array_equal(first.labels, second.labels) and first.k == second.k
    centres = np.array([[p["centroid_z"][f] for f in first.features] for p in first.profiles])
    nearest = np.argmin(((first.x[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert np.array_equal(first.labels, nearest)
    doc = first.summary()
    assert f"fixed-seed sample of {N:,} of the {len(first.labels):,} customers" in doc["k_choice"]
    assert f"{N:,} 位客户" in doc["k_choice_zh"]
    assert doc["customers_clustered"] == len(first.labels)


def _clv_inputs(n: int = 2000) -> pl.DataFrame:
    rng = np.random.default_rng(11)
    T = np.floor(rng.uniform(60, 730, n))
    x, t_x = simulate_bgnbd(n, 0.8, 60.0, 0.8, 2.5, T, rng)
    m = simulate_values(x, 2.0, 3.5, 500.0, rng)
    return pl.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], "repeat_purchases": x.astype(np.int64),
                         "t_last": np.round(t_x), "T": T,
                         "repeat_value": pl.Series(np.where(x > 0, m, np.nan)).fill_nan(None)})


@pytest.mark.parametrize("model", ["bgnbd", "mbg_nbd"])
def test_clv_fits_on_the_sample_and_scores_everyone(model):
    inputs = _clv_inputs()
    res = fit_clv(inputs, CFG.clv, model, fit_sample=N)
    x, t_x, T = (inputs[c].to_numpy().astype(float) for c in ("repeat_purchases", "t_last", "T"))
    rows = _rows(x.size, N, 0)
    direct = get(model).fit(x[rows], t_x[rows], T[rows])
    assert res.fitted and res.counting is not None and res.counting.params == direct.params
    m = inputs["repeat_value"].fill_null(0.0).to_numpy()
    value = np.flatnonzero((x > 0) & (m > 0))
    assert value.size > N  # so the value model is sampled too
    picked = value[_rows(value.size, N, 0)]
    assert res.gamma_gamma is not None and res.gamma_gamma.params == fit_gamma_gamma(x[picked], m[picked]).params
    # every customer scored with the sample's parameters
    assert res.values.height == inputs.height
    assert all(res.values[c].null_count() == 0 for c in CLV_COLUMNS)
    np.testing.assert_array_equal(res.values["p_alive"].to_numpy(), get(model).p_alive(direct.params, x, t_x, T))
    doc = res.summary()["fit_sample"]
    assert doc["size"] == N and doc["counting_customers"] == N and doc["value_customers"] == N
    assert f"{N:,}" in doc["note"] and f"{N:,}" in doc["note_zh"]


def test_clv_at_or_below_fit_sample_is_unchanged():
    inputs = _clv_inputs()
    old = fit_clv(inputs, CFG.clv)
    for size in (inputs.height, 10 * inputs.height):
        new = fit_clv(inputs, CFG.clv, fit_sample=size)
        assert new.counting == old.counting and new.gamma_gamma == old.gamma_gamma
        assert new.values.equals(old.values) and new.summary() == old.summary()
        assert "fit_sample" not in new.summary()


def test_segment_below_fit_sample_matches_no_sample(book):
    """The default (far above every shipped book and test) changes nothing: the whole model
    stage with fit_sample at the book's size equals the one with a fit sample of everyone."""
    big = dataclasses.replace(book.config, fit_sample=10**9)
    at = dataclasses.replace(book.config, fit_sample=book.customers.height)
    runs = [pipeline.add_clv(pipeline.add_clusters(dataclasses.replace(book, config=c), lambda _s: None))
            for c in (big, at)]
    assert runs[0].customers.equals(runs[1].customers)
    assert runs[0].clv is not None and runs[1].clv is not None
    assert runs[0].clv.summary() == runs[1].clv.summary() and "fit_sample" not in runs[0].clv.summary()


def test_fit_sample_below_silhouette_sample_is_refused():
    data = config.default_dict()
    data["clustering"] = {**data["clustering"], "fit_sample": 1000, "silhouette_sample": 5000}
    with pytest.raises(ConfigError, match="fit_sample"):
        config.build(data)
    assert CFG.fit_sample >= CFG.silhouette_sample
