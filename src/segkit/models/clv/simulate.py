"""Draw customer histories from BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma with known parameters.

Used by the benchmarks and the tests: a fit must recover the parameters it was drawn from, and
model selection should find the model that generated the data. Continuous time in days; each
customer's first purchase is at 0 and observation ends at ``T``. The plain functions return
``(x, t_x)``: repeat purchases in (0, T] and the time of the last one (0 without); the
``*_holdout`` ones also the purchases in (T, T + holdout].
"""

from __future__ import annotations

import numpy as np


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, t_x): repeat purchases in (0, T] and the time of the last one (0 without)."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, idx.size) / lam[idx]
        bought = now[idx] <= T[idx]
        got = idx[bought]
        x[got] += 1
        t_x[got] = now[got]
        active[idx[~bought]] = False
        active[got[rng.random(got.size) < p[got]]] = False  # drops out after this purchase
    return x, t_x


def simulate_values(x: np.ndarray, p: float, q: float, v: float, rng: np.random.Generator) -> np.ndarray:
    """Mean value of each customer's x purchases (0 when x = 0): z ~ Gamma(p, nu), nu ~ Gamma(q, v)."""
    nu = rng.gamma(q, 1.0 / v, x.size)
    total = rng.gamma(np.maximum(x, 1) * p, 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)


Draw = tuple[np.ndarray, np.ndarray, np.ndarray]


def _last_of_uniforms(x: np.ndarray, span: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Time of the last of ``x`` uniform purchase times on (0, span] (0 when x = 0)."""
    u = rng.random(x.size)
    return np.where(x > 0, span * u ** (1.0 / np.maximum(x, 1)), 0.0)


def simulate_pareto_nbd_holdout(n: int, r: float, alpha: float, s: float, beta: float, T: np.ndarray, holdout: float,
                                rng: np.random.Generator) -> Draw:
    """Pareto/NBD: lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), lifetime ~ Exp(mu);
    purchases are Poisson(lambda) while alive, so the count in a window is Poisson(lambda x the
    alive part of the window) and the purchase times are uniform on it."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    with np.errstate(divide="ignore", over="ignore"):
        lifetime = rng.exponential(1.0, n) / mu
    span = np.minimum(lifetime, T)
    x = rng.poisson(lam * span).astype(float)
    later = rng.poisson(lam * np.clip(lifetime - T, 0.0, holdout)).astype(float)
    return x, _last_of_uniforms(x, span, rng), later


def _geometric_dropout(n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray, holdout: float,
                       rng: np.random.Generator, at_start: bool) -> Draw:
    """BG/NBD family: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); the customer drops out with
    probability p after each repeat purchase (and, ``at_start``, right after the first purchase:
    MBG/NBD). Without dropout the repeat purchases are N ~ Poisson(lambda T) at uniform times in
    (0, T] and M ~ Poisson(lambda holdout) after T; the customer makes K purchases before dropping
    out, so x = min(K, N), t_x is the x-th of the N sorted uniform times (T Beta(x, N-x+1)) and
    the holdout count is min(K - N, M) when K > N."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = np.clip(rng.beta(a, b, n), 1e-12, 1.0)
    N = rng.poisson(lam * T)
    K = rng.geometric(p) - (1 if at_start else 0)  # numpy's geometric counts trials, >= 1
    x = np.minimum(K, N)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(N - x, 0) + 1), 0.0)
    later = np.minimum(np.maximum(K - N, 0), rng.poisson(lam * holdout))
    return x.astype(float), t_x, later.astype(float)


def simulate_mbg_nbd_holdout(n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray, holdout: float,
                             rng: np.random.Generator) -> Draw:
    """MBG/NBD: P(K = k) = (1-p)^k p, k >= 0 (the first purchase is a dropout chance too)."""
    return _geometric_dropout(n, r, alpha, a, b, T, holdout, rng, at_start=True)


def simulate_bgnbd_holdout(n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray, holdout: float,
                           rng: np.random.Generator) -> Draw:
    """BG/NBD: P(K = k) = (1-p)^(k-1) p, k >= 1 (no dropout right after the first purchase)."""
    return _geometric_dropout(n, r, alpha, a, b, T, holdout, rng, at_start=False)


def simulate_pareto_nbd(n: int, r: float, alpha: float, s: float, beta: float, T: np.ndarray,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, t_x) from Pareto/NBD (see simulate_pareto_nbd_holdout)."""
    x, t_x, _ = simulate_pareto_nbd_holdout(n, r, alpha, s, beta, T, 0.0, rng)
    return x, t_x


def simulate_mbg_nbd(n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, t_x) from MBG/NBD (see simulate_mbg_nbd_holdout)."""
    x, t_x, _ = simulate_mbg_nbd_holdout(n, r, alpha, a, b, T, 0.0, rng)
    return x, t_x
