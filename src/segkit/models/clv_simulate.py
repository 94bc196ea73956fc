"""Draw customer histories from the BG/NBD and Gamma-Gamma models with known parameters.

Used by the benchmark and the tests: a fit must recover the parameters it was drawn from.
Continuous time in days; each customer's first purchase is at 0 and observation ends at ``T``.
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
