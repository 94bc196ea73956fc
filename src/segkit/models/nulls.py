"""Are there distinct groups at all? A null-reference test and bootstrap stability of k-means.

Tests on the clustering features across the clusters found from them are significant by
construction, also on one smooth population. This module asks the question that is not circular:

- **Null-reference test** (in the spirit of SigClust, Liu, Hayes, Nobel & Marron 2008): the
  clustering's strength, R² of k-means at the chosen k, is compared with the same statistic on
  replicates drawn from a *one-population* null that keeps each feature's marginal distribution
  and their rank correlation: a Gaussian copula with empirical marginals. Each replicate draws a
  multivariate normal with the features' normal-score correlation and maps each coordinate back
  through the observed feature's empirical quantile function, so it draws observed values and
  reproduces ties such as the spike of customers who bought once. The copula correlation is
  calibrated so that the replicates' normal-score correlation matches the data's (ties would
  otherwise weaken it and make the null too easy to beat). Observed data and every replicate go
  through the same procedure (standardise, k-means with the same ``n_init``), on a fixed-seed
  sample of at most ``sample`` customers. Monte-Carlo p = (1 + #{null >= observed}) / (B + 1).
- **Stability** (Hennig 2007, ``fpc::clusterboot``): for each bootstrap resample of the same
  sample, k-means is refitted; each reported cluster, restricted to the resampled customers, is
  matched to its best new cluster by Jaccard similarity; the mean over resamples per cluster is
  its stability (>= 0.75 stable, < 0.5 dissolved). Stability is high on one population too, so it
  does not show that groups exist.
"""

from __future__ import annotations

from typing import Any

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata
from collections.abc import Iterator

ALPHA = 0.01
REPLICATES = 100  # the smallest B with which p < 0.01 is reachable: 1 / (B + 1) = 0.0099
RESAMPLES = 20
# 121 k-means fits (data, 100 replicates, 20 resamples) must stay within 5 s on 2 cores at any k up
# to 8: 2,000 customers and 3 starts each cost 1.4 s of CPU at k = 8 (benchmarks/validation_cost.py).
# Three starts, not one, so that a well separated structure is not missed by a poor start.
SAMPLE = 2000
N_INIT = 3
METHOD = ("R² of k-means at the chosen k against one-population replicates "
          "(Gaussian copula with the observed marginals and rank correlation)")
STABLE, DISSOLVED = 0.75, 0.5


@contextmanager
def _one_thread() -> Iterator[None]:
    """One OpenMP thread for a loop of small k-means fits (see cluster.CustomerKMeans); entered
    once per loop, since entering it costs as much as a fit on 2,000 customers."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # replicates with fewer distinct rows than k
        yield


def _kmeans_labels(x: np.ndarray, k: int, seed: int, n_init: int) -> tuple[np.ndarray, float]:
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return model.labels_, float(model.inertia_)


def standardised(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return (x - x.mean(axis=0)) / std


def kmeans_r2(x_raw: np.ndarray, k: int, seed: int, n_init: int = N_INIT) -> float:
    """R² = 1 - within SS / total SS of k-means at ``k`` on the standardised columns of ``x_raw``."""
    x = standardised(x_raw)
    total = float(((x - x.mean(axis=0)) ** 2).sum())
    if total == 0:
        return 0.0
    _, inertia = _kmeans_labels(x, k, seed, n_init)
    return 1.0 - inertia / total


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Per column: Phi^-1(rank / (n + 1)), ties sharing their average rank."""
    ranks = rankdata(x, axis=0, method="average")
    return ndtri(ranks / (x.shape[0] + 1))


def _corr(z: np.ndarray) -> np.ndarray:
    sd = z.std(axis=0)
    sd[sd == 0] = 1.0
    zc = (z - z.mean(axis=0)) / sd
    r = zc.T @ zc / z.shape[0]
    np.fill_diagonal(r, 1.0)  # a constant column: uncorrelated, unit variance in the latent normal
    return r


def _nearest_correlation(r: np.ndarray) -> np.ndarray:
    """Symmetric, unit diagonal, eigenvalues at least 1e-6 (a valid Gaussian copula)."""
    r = (r + r.T) / 2
    w, v = np.linalg.eigh(r)
    r = (v * np.maximum(w, 1e-6)) @ v.T
    d = np.sqrt(np.diag(r))
    return r / np.outer(d, d)


class GaussianCopula:
    """One-population null of a sample: empirical marginals joined by a Gaussian copula."""

    def __init__(self, x: np.ndarray, seed: int, calibration_rounds: int = 4, calibration_size: int = 20000):
        self.sorted_ = np.sort(x, axis=0)
        self.target_ = _corr(normal_scores(x))
        r = self.target_.copy()
        rng = np.random.default_rng([seed, 1])
        for _ in range(calibration_rounds):
            sim = self._draw(r, calibration_size, rng)
            r = _nearest_correlation(r + self.target_ - _corr(normal_scores(sim)))
        self.latent_ = r

    def _draw(self, r: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        n, p = self.sorted_.shape
        w, v = np.linalg.eigh(r)  # r = F F' with F = V sqrt(W): also when r is (nearly) singular
        z = rng.standard_normal((m, p)) @ (v * np.sqrt(np.maximum(w, 0.0))).T
        idx = np.minimum((ndtr(z) * n).astype(np.int64), n - 1)
        return np.take_along_axis(self.sorted_, idx, axis=0)

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        return self._draw(self.latent_, m, rng)


@dataclass
class NullTest:
    method: str
    statistic: float
    null_statistics: list[float]
    sample_size: int
    customers: int
    n_init: int

    @property
    def replicates(self) -> int:
        return len(self.null_statistics)

    @property
    def p(self) -> float:
        null = np.asarray(self.null_statistics)
        return float((1 + np.sum(null >= self.statistic)) / (len(null) + 1))

    @property
    def null_mean(self) -> float:
        return float(np.mean(self.null_statistics))

    @property
    def null_sd(self) -> float:
        return float(np.std(self.null_statistics, ddof=1))

    @property
    def rejects(self) -> bool:
        return self.p < ALPHA

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "statistic": self.statistic, "null_mean": self.null_mean,
                "null_sd": self.null_sd, "replicates": self.replicates, "p": self.p, "alpha": ALPHA,
                "sample_size": self.sample_size, "customers": self.customers, "n_init": self.n_init,
                "null_statistics": self.null_statistics}


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Fixed-seed sample of at most ``size`` row indices (sorted); all rows when n <= size."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 2]).choice(n, size=size, replace=False))


Statistic = Callable[[np.ndarray, int, int, int], float]  # (x_raw, k, seed, n_init) -> strength


def null_test(x_raw: np.ndarray, k: int, seed: int, replicates: int = REPLICATES, sample: int = SAMPLE,
              n_init: int = N_INIT, statistic: Statistic = kmeans_r2) -> NullTest:
    """R² at ``k`` on a fixed-seed sample of ``x_raw`` against ``replicates`` one-population draws."""
    rows = sample_rows(x_raw.shape[0], sample, seed)
    xs = x_raw[rows]
    copula = GaussianCopula(xs, seed)
    rng = np.random.default_rng([seed, 3])
    with _one_thread():
        observed = statistic(xs, k, seed, n_init)
        null = [statistic(copula.sample(len(rows), rng), k, seed, n_init) for _ in range(replicates)]
    return NullTest(METHOD, float(observed), [float(s) for s in null], len(rows), x_raw.shape[0], n_init)


def jaccard_best(original: np.ndarray, new: np.ndarray, k: int, k_new: int) -> np.ndarray:
    """For each original cluster: the largest Jaccard similarity with any new cluster (NaN if empty)."""
    table = np.bincount(original * k_new + new, minlength=k * k_new).reshape(k, k_new).astype(np.float64)
    union = table.sum(axis=1)[:, None] + table.sum(axis=0)[None, :] - table
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, table / union, 0.0)
    best = jac.max(axis=1)
    best[table.sum(axis=1) == 0] = np.nan
    return best


@dataclass
class Stability:
    per_cluster: list[float]
    resamples: int
    sample_size: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_cluster))

    def reading(self) -> list[str]:
        return ["stable" if j >= STABLE else "dissolved" if j < DISSOLVED else "weak" for j in self.per_cluster]

    def summary(self) -> dict[str, Any]:
        return {"per_cluster": self.per_cluster, "mean": self.mean, "reading": self.reading(),
                "resamples": self.resamples, "sample_size": self.sample_size,
                "method": "bootstrap Jaccard (Hennig 2007): mean best match of each cluster over resamples",
                "stable_at": STABLE, "dissolved_below": DISSOLVED}


def stability(x: np.ndarray, labels: np.ndarray, k: int, seed: int, resamples: int = RESAMPLES,
              sample: int = SAMPLE, n_init: int = N_INIT) -> Stability:
    """Bootstrap Jaccard of each cluster of ``labels`` (0..k-1) on the standardised features ``x``."""
    rows = sample_rows(x.shape[0], sample, seed)
    xs, ls = x[rows], labels[rows]
    m = len(rows)
    rng = np.random.default_rng([seed, 4])
    scores = np.full((resamples, k), np.nan)
    with _one_thread():
        for b in range(resamples):
            idx = rng.integers(0, m, m)
            k_b = min(k, np.unique(xs[idx], axis=0).shape[0])
            new, _ = _kmeans_labels(xs[idx], k_b, seed + b, n_init)
            first = np.unique(idx, return_index=True)[1]  # one entry per distinct resampled customer
            scores[b] = jaccard_best(ls[idx[first]], new[first], k, k_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cluster absent from every resample
        per = np.nanmean(scores, axis=0)
    return Stability([float(v) if np.isfinite(v) else 0.0 for v in per], resamples, m)
