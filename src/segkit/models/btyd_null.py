"""The buy-till-you-die null: one customer population drawn from the run's own CLV fit.

SPEC §4 (b). The run's counting model (BG/NBD by default; MBG/NBD and Pareto/NBD when the CLV
step used them) and its Gamma-Gamma are the population. Each replicate redraws every sampled customer from the fitted models, keeping the
customer's own observation time ``T`` (whole days from the first purchase day to ``as_of``), and
builds recency, frequency and monetary exactly as segkit builds them from order lines:

- BG/NBD (days): lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b). A customer makes repeat purchase
  days as a Poisson process of rate lambda and drops out right after each repeat purchase with
  probability p (never right after the first purchase: lifetimes' convention). With N ~
  Poisson(lambda T) the events a customer alive throughout would have in (0, T) and M ~
  Geometric(p) the repeat purchase after which they drop out, the repeat purchases are
  x = min(N, M) and the last one is the x-th of N uniform times on (0, T):
  t_x = T * Beta(x, N - x + 1). No loop over customers or purchases.
- whole days as in the data: the last purchase is on day floor(t_x); ``recency_days`` =
  T - floor(t_x) (>= 1, as ``as_of`` is after the last purchase day); ``frequency`` = x + 1
  purchase days, at most T (one purchase day per calendar day);
- Gamma-Gamma: nu ~ Gamma(q, rate v) per customer and a purchase day's value ~ Gamma(p, rate nu),
  so the customer's total over x + 1 purchase days is Gamma((x + 1) p, rate nu): ``monetary`` =
  total net spend (the first purchase day is drawn from the same model; returns are not modelled).

The features are then those of ``models.kmeans.feature_frame``: log1p(recency_days),
log1p(frequency), log1p(max(monetary, 0)) (standardised later by the statistic). The model counts
purchase *days*, so the data side of this null uses purchase days as its frequency too (equal to
``frequency`` when an export has no order ids or one order a day; ``cluster_validation``).

Where the counting model did not fit (CLV skipped) or the Gamma-Gamma did not (too few repeat customers with
a positive value, or no convergence) the null cannot be drawn: ``btyd_params`` returns a ``NotRun``
with the reason and the verdict cannot be "distinct". A converged Gamma-Gamma with q <= 1 is used:
its mean is infinite (so CLV reports no expected value) but it is a proper distribution to draw from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NAME = "btyd"
METHOD = ("R² of k-means against customers simulated from the run's own BG/NBD + Gamma-Gamma fit, "
          "each with their own observation time T")


@dataclass(frozen=True)
class BtydParams:
    """The run's fitted counting model (``model``: bgnbd, mbg_nbd or pareto_nbd, its parameters
    in days as ``models.clv`` reports them) and Gamma-Gamma (p, q, v)."""

    model: str
    counting: tuple[float, ...]
    p: float
    q: float
    v: float


@dataclass(frozen=True)
class NotRun:
    """Why the BTYD null could not be drawn."""

    reason: str


MODELS = ("bgnbd", "mbg_nbd", "pareto_nbd")


def btyd_params(model: str, counting: Sequence[float] | None, gamma_gamma: Sequence[float] | None,
                counting_reason: str | None = None, gamma_gamma_converged: bool = True) -> BtydParams | NotRun:
    """Parameters for the null from the CLV step's fits (``ClvResult.counting.params``,
    ``ClvResult.gamma_gamma.params``), or why the null cannot be drawn.

    ``counting_reason``: the CLV step's ``skipped_reason`` (the counting model did not fit or was
    switched off). The Gamma-Gamma counts as fitted when its fit converged, also with q <= 1, which
    leaves the *expected* value undefined (so CLV skips it) but is a proper spend distribution to
    draw from.
    """
    if counting is None or counting_reason:
        return NotRun(f"purchase model not fitted: {counting_reason or 'CLV skipped'}")
    if model not in MODELS:
        return NotRun(f"no simulator for the purchase model {model}")
    if gamma_gamma is None:
        return NotRun("Gamma-Gamma not fitted: too few repeat customers with a positive value")
    if not gamma_gamma_converged:
        return NotRun("Gamma-Gamma fit did not converge")
    c = tuple(float(v) for v in counting)
    p, q, v = (float(v) for v in gamma_gamma)
    low = min(c[0], c[1], c[3], p, q, v) if len(c) == 4 else -1.0
    if not all(np.isfinite([*c, p, q, v])) or low <= 0 or c[2] < 0:
        return NotRun("fitted parameters out of range")
    return BtydParams(model, c, p, q, v)


def simulate_purchase_days(r: float, alpha: float, a: float, b: float, T: np.ndarray,
                           rng: np.random.Generator, model: str = "bgnbd") -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD repeat purchase days ``x`` in (0, T) and the time ``t_x`` of the last one (0 without).
    ``model="mbg_nbd"``: MBG/NBD (Batislam et al. 2007), where a customer may also leave right after
    the first purchase (M ~ Geometric(p) - 1)."""
    n = T.size
    Tf = T.astype(np.float64)
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n) if a > 0 else np.zeros(n)
    big = np.iinfo(np.int64).max // 4
    m = np.where(drop > 1e-12, rng.geometric(np.clip(drop, 1e-12, 1.0)), big)
    if model == "mbg_nbd":
        m = m - 1
    events = rng.poisson(lam * Tf)
    x = np.minimum(events, m)
    return x.astype(np.int64), _last_of(x, events, Tf, rng)


def simulate_pareto_days(r: float, alpha: float, s: float, beta: float, T: np.ndarray,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987): lambda ~ Gamma(r, alpha), a lifetime
    ~ Exponential(mu) with mu ~ Gamma(s, beta); the repeat purchases are the Poisson events of the
    alive part of (0, T), the last one the x-th of x uniform times there."""
    n = T.size
    Tf = T.astype(np.float64)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    alive = np.minimum(rng.exponential(1.0, n) / np.maximum(mu, 1e-300), Tf)
    x = rng.poisson(lam * alive)
    return x.astype(np.int64), _last_of(x, x, alive, rng)


def _last_of(x: np.ndarray, events: np.ndarray, span: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Time of the x-th of ``events`` uniform times on (0, span) (0 where x = 0)."""
    has = x > 0
    frac = np.zeros(x.size)
    frac[has] = rng.beta(x[has], events[has] - x[has] + 1)
    return np.asarray(frac * span, dtype=np.float64)


def simulate_rfm(params: BtydParams, T: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recency_days, frequency, monetary) of one simulated population with observation times T."""
    T = np.asarray(T, dtype=np.int64)
    c1, c2, c3, c4 = params.counting
    if params.model == "pareto_nbd":
        x, t_x = simulate_pareto_days(c1, c2, c3, c4, T, rng)
    else:
        x, t_x = simulate_purchase_days(c1, c2, c3, c4, T, rng, params.model)
    last_day = np.minimum(np.floor(t_x).astype(np.int64), np.maximum(T - 1, 0))
    frequency = np.minimum(x + 1, np.maximum(T, 1))
    nu = rng.gamma(params.q, 1.0 / params.v, T.size)
    monetary = rng.gamma(frequency * params.p, 1.0 / nu)
    return T - last_day, frequency, monetary


def rfm_features(recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """The three base clustering features of ``segkit.cluster.feature_frame`` (unstandardised)."""
    return np.column_stack([np.log1p(np.asarray(recency_days, dtype=np.float64)),
                            np.log1p(np.asarray(frequency, dtype=np.float64)),
                            np.log1p(np.maximum(np.asarray(monetary, dtype=np.float64), 0.0))])


class BtydSampler:
    """Draws replicate feature matrices for the customers whose observation times are ``T``.

    ``sample(m, rng)`` returns m rows: the customers of ``T`` themselves when m == len(T) (the
    null test's sample), else m observation times drawn from ``T`` with replacement.
    """

    def __init__(self, params: BtydParams, T: np.ndarray):
        self.params = params
        self.T = np.asarray(T, dtype=np.int64)

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        T = self.T if m == self.T.size else rng.choice(self.T, size=m, replace=True)
        return rfm_features(*simulate_rfm(self.params, T, rng))

    __call__ = sample
