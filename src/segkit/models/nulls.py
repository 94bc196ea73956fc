"""Are there distinct groups at all? One-population nulls, the verdict, and bootstrap stability.

Tests on the clustering features across the clusters found from them are significant by
construction, also on one smooth population. This module asks the question that is not circular
(SPEC §4), against every plausible one-population null at once:

- **Statistic** (``models.kcurve``): a k-means chain on the fixed-seed sample of at most
  ``SAMPLE`` customers gives, for every k in the run's range, R² and the mean simplified
  silhouette. The data and every replicate go through the same procedure, so the Monte-Carlo p is
  exact for any such statistic; one max-T test per null covers every (statistic, k) pair.
- **Copula null** (after SigClust, Liu, Hayes, Nobel & Marron 2008): a Gaussian copula with the
  features' empirical marginals and rank correlation, drawn *separately* for one-time buyers
  (frequency 1: recency and spend only) and repeat buyers (``SplitCopula``): a split into one-time
  and repeat buyers is what one population of buyers produces, so it is part of the null. Each
  replicate maps a multivariate normal through the observed feature's empirical quantile function,
  so it draws observed values and keeps ties; the copula correlation is calibrated so that the
  replicates' normal-score correlation matches the data's.
- **Buy-till-you-die null** (``models.btyd_null``): customers simulated from the run's own CLV fit
  (counting model + Gamma-Gamma), each with their own observation time T.
- **Verdict** (``models.verdict``): ``distinct`` only when every null rejects at p < ``ALPHA`` at
  the same k (intersection-union), ``none`` when none rejects, ``inconclusive`` otherwise; a null
  that could not be run never rejects. k is the silhouette's when the nulls support it, else the
  smallest k they support.
- **Stability** (Hennig 2007, ``fpc::clusterboot``): for each bootstrap resample of the same
  sample, k-means is refitted; each reported cluster, restricted to the resampled customers, is
  matched to its best new cluster by Jaccard similarity; the mean over resamples per cluster is
  its stability (>= 0.75 stable, < 0.5 dissolved). Stability is high on one population too, so it
  does not show that groups exist.

The false-"distinct" rate and the power of this design were measured on simulated books where
the truth is known (``benchmarks/validation_sim``, docs/statistics.md).
"""

from __future__ import annotations

from typing import Any

import warnings
from contextlib import contextmanager
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata
from collections.abc import Callable, Iterator

from segkit.models.btyd_null import BtydParams, BtydSampler, NotRun
from segkit.models.kcurve import CurveTest, chain, curve_test
from segkit.models.verdict import ALPHA as ALPHA, KChoice, NullResult, Verdict, choose_k, not_run, results_at, verdict

REPLICATES = 100  # the smallest B with which p < 0.01 is reachable: 1 / (B + 1) = 0.0099
RESAMPLES = 20
# The nulls and stability run on a fixed-seed sample of at most SAMPLE customers: their cost does
# not grow with the book (benchmarks/validation_sim/bench_costs.py). Stability refits with N_INIT
# starts, so that a well separated structure is not missed by a poor start.
SAMPLE = 1000
N_INIT = 3
METHODS = {
    "split_copula": "Gaussian copula with the features' empirical marginals and rank correlation, "
                    "one-time and repeat buyers drawn apart",
    "copula": "Gaussian copula with the features' empirical marginals and rank correlation",
    "btyd": "customers simulated from the run's own purchase model + Gamma-Gamma fit, each with their own T",
}
STATISTIC = ("k-means chain on the standardised features: R² and mean simplified silhouette for each k, "
             "one max-T test per null over every (statistic, k)")
STABLE, DISSOLVED = 0.75, 0.5


@contextmanager
def _one_thread() -> Iterator[None]:
    """One OpenMP thread for a loop of small k-means fits (see cluster.CustomerKMeans); entered
    once per loop, since entering it costs as much as a fit on 1,000 customers."""
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


def calibration_draws(n: int) -> int:
    """Draws per calibration round of a copula of n customers: ten per customer, 5,000 to 20,000
    (the data's own correlation is known to about 1/sqrt(n); more draws would not make the
    calibration more accurate). At the 1,000-customer test sample: 10,000."""
    return min(20000, max(5000, 10 * n))


class GaussianCopula:
    """One-population null of a sample: empirical marginals joined by a Gaussian copula."""

    def __init__(self, x: np.ndarray, seed: int, calibration_rounds: int = 4, calibration_size: int | None = None):
        calibration_size = calibration_size or calibration_draws(x.shape[0])
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


MIN_PART = 20  # with fewer one-time or repeat buyers than this, one copula for all customers


class SplitCopula:
    """One-population null that keeps one-time and repeat buyers apart: the observed number of
    one-time buyers from a copula of their own (recency, spend) with frequency 1, the repeat buyers
    from a copula of all their features. One latent correlation cannot reproduce "frequency 1 means
    recency = tenure"; a split into one-time and repeat buyers is what one population of buyers
    produces, so only structure *within* the parts can beat this null."""

    def __init__(self, x_raw: np.ndarray, seed: int, frequency_column: int = 1):
        one = x_raw[:, frequency_column] <= np.log1p(1.0) + 1e-12
        self.shape = x_raw.shape
        self.fcol = frequency_column
        self.n_one = int(one.sum())
        self.others = [c for c in range(x_raw.shape[1]) if c != frequency_column]
        small = min(self.n_one, self.shape[0] - self.n_one) < MIN_PART
        size = calibration_draws(self.shape[0])  # both parts calibrated as precisely as the whole
        self.fallback = GaussianCopula(x_raw, seed) if small else None
        self.one = None if small else GaussianCopula(x_raw[one][:, self.others], seed, calibration_size=size)
        self.rep = None if small else GaussianCopula(x_raw[~one], seed, calibration_size=size)

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        if self.fallback is not None:
            return self.fallback.sample(m, rng)
        assert self.one is not None and self.rep is not None
        n_one = self.n_one if m == self.shape[0] else int(rng.binomial(m, self.n_one / self.shape[0]))
        out = np.empty((m, self.shape[1]))
        out[:n_one, self.others] = self.one.sample(n_one, rng)
        out[:n_one, self.fcol] = np.log1p(1.0)
        out[n_one:] = self.rep.sample(m - n_one, rng)
        return out


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Fixed-seed sample of at most ``size`` row indices (sorted); all rows when n <= size."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 2]).choice(n, size=size, replace=False))


@dataclass(frozen=True)
class BtydInputs:
    """What the buy-till-you-die null needs, row for row with the clustering features: the fitted
    parameters, each customer's observation time T (days) and the observed features with purchase
    days as the frequency (what the purchase model counts)."""

    params: BtydParams
    T: np.ndarray
    features: np.ndarray


@dataclass(frozen=True)
class Evidence:
    """Every null's figures at the reported k, the k choice and the verdict."""

    tests: tuple[NullResult, ...]
    choice: KChoice
    verdict: Verdict
    ks: tuple[int, ...]
    sample_size: int
    customers: int

    def summary(self) -> list[dict[str, Any]]:
        """``validation.null_tests``: one entry per null."""
        return [dict(t.summary(), method=METHODS[t.null], alpha=ALPHA, sample_size=self.sample_size,
                     customers=self.customers) for t in self.tests]


def candidate_ks(distinct: int, n: int, k: int, k_min: int, k_max: int) -> tuple[int, ...]:
    """The k the nulls test: the run's auto-k range (and a fixed k), at most the ``distinct`` rows
    of the ``n`` customers - 1."""
    cap = min(distinct, n - 1)
    low, top = max(2, min(k_min, k)), min(max(k_max, k), cap)
    return tuple(range(low, max(top, low) + 1))


@dataclass(frozen=True)
class EarlyNull:
    """One null's curve test computed before ``null_evidence`` runs, beside k-means or after the
    purchase-model fit, with what it was drawn from (``inputs``, first the null's name):
    ``null_evidence`` uses it only when its own inputs are the same."""

    curve: CurveTest
    inputs: tuple[Any, ...]

    def fits(self, inputs: tuple[Any, ...]) -> bool:
        return len(inputs) == len(self.inputs) and all(_same(a, b) for a, b in zip(self.inputs, inputs))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


def _copula_inputs(xs: np.ndarray, features: list[str], seed: int, replicates: int,
                   ks: tuple[int, ...]) -> tuple[Any, ...]:
    split = len(features) > 1 and features[1] == "log_frequency"
    return ("split_copula" if split else "copula", xs, seed, replicates, ks)


def copula_null(xs: np.ndarray, features: list[str], seed: int, ks: tuple[int, ...],
                replicates: int = REPLICATES, observed: dict[str, np.ndarray] | None = None) -> EarlyNull:
    """The (split) copula null's test of the sample ``xs`` (module note)."""
    inputs = _copula_inputs(xs, features, seed, replicates, ks)
    null = SplitCopula(xs, seed) if inputs[0] == "split_copula" else GaussianCopula(xs, seed)
    return EarlyNull(curve_test(inputs[0], xs, null.sample, seed, replicates, ks=ks, observed=observed), inputs)


def _btyd_inputs(btyd: BtydInputs, rows: np.ndarray, seed: int, replicates: int,
                 ks: tuple[int, ...]) -> tuple[Any, ...]:
    return ("btyd", btyd.features[rows], btyd.T[rows], btyd.params, seed, replicates, ks)


def btyd_null(btyd: BtydInputs, rows: np.ndarray, seed: int, ks: tuple[int, ...], replicates: int = REPLICATES,
              observed: dict[str, np.ndarray] | None = None) -> EarlyNull:
    """The buy-till-you-die null's test of the sample ``rows`` (module note); ``observed``: the
    chain of the same feature rows, when already computed."""
    inputs = _btyd_inputs(btyd, rows, seed, replicates, ks)
    sampler = BtydSampler(btyd.params, inputs[2]).sample
    return EarlyNull(curve_test("btyd", inputs[1], sampler, seed, replicates, ks=ks, observed=observed), inputs)


def null_evidence(x_raw: np.ndarray, features: list[str], k: int, seed: int, btyd: BtydInputs | NotRun,
                  ks: tuple[int, ...], fixed_k: bool = False, replicates: int = REPLICATES,
                  sample: int = SAMPLE, early: tuple[EarlyNull, ...] = ()) -> Evidence:
    """The copula and buy-till-you-die nulls on one fixed-seed sample; k and the verdict (module
    note). ``early``: tests computed beforehand, each used when it is the one these arguments give."""
    rows = sample_rows(x_raw.shape[0], sample, seed)
    xs = x_raw[rows]
    wanted = [_copula_inputs(xs, features, seed, replicates, ks)]
    missing: list[NullResult] = []
    if isinstance(btyd, NotRun):
        missing.append(not_run("btyd", btyd.reason))
    else:
        wanted.append(_btyd_inputs(btyd, rows, seed, replicates, ks))
    done = [next((e.curve for e in early if e.fits(w)), None) for w in wanted]
    observed = _observed(xs, wanted, done, seed, ks)
    jobs: list[Callable[[], CurveTest]] = [lambda: copula_null(xs, features, seed, ks, replicates, observed).curve]
    if not isinstance(btyd, NotRun):
        same = np.array_equal(xs, wanted[1][1])
        jobs.append(lambda: btyd_null(btyd, rows, seed, ks, replicates, observed if same else None).curve)
    todo = [job for job, curve in zip(jobs, done) if curve is None]
    # numpy releases the GIL in the replicates' array work: the nulls run side by side on two cores
    with ThreadPoolExecutor(max_workers=max(len(todo), 1)) as pool:
        computed = iter(list(pool.map(lambda job: job(), todo)))
    curves = [curve if curve is not None else next(computed) for curve in done]
    choice = _choice(choose_k(curves, k), k, fixed_k, bool(missing))
    tests = results_at(curves, choice, missing)
    return Evidence(tuple(tests), choice, verdict(tests), ks, len(rows), x_raw.shape[0])


def _observed(xs: np.ndarray, wanted: list[tuple[Any, ...]], done: list[CurveTest | None], seed: int,
              ks: tuple[int, ...]) -> dict[str, np.ndarray] | None:
    """The chain of the sample's observed features, shared by the nulls still to run: from a test
    already run on the same rows, else computed (None when no null is left to run)."""
    if all(curve is not None for curve in done):
        return None
    for w, curve in zip(wanted, done):
        if curve is not None and np.array_equal(w[1], xs):
            return dict(zip(curve.stats, curve.observed))
    return chain(xs, seed, ks=ks)


def _choice(found: KChoice, k: int, fixed_k: bool, missing: bool) -> KChoice:
    """A fixed k is tested as given; without every null, the nulls do not move k."""
    if fixed_k:  # k outside the tested range (fewer distinct customers): strongest k, as without a choice
        return dataclasses.replace(found, k=k, rule="fixed" if k in found.excess else "silhouette")
    if missing and found.rule in ("null evidence", "silhouette confirmed"):
        return dataclasses.replace(found, k=k, rule="silhouette")
    return found


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
