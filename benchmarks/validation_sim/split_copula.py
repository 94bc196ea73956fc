"""A one-population null that keeps one-time and repeat buyers apart: a Gaussian copula per part.

Retail books are zero-inflated: most customers buy once, and for them frequency is 1 and recency
is their whole tenure. A single Gaussian copula cannot reproduce that (one latent correlation links
recency to frequency across the spike), so it is beaten by one population of one-time and repeat
buyers, which is not what "distinct groups" should mean (SPEC §4: "the split is what one population
of repeat and one-time buyers produces"). This null draws the observed number of one-time buyers
from a copula of their own (recency, monetary) with frequency 1, and the repeat buyers from a
copula of their three features: whatever separates one-time from repeat buyers is in the null,
and only structure *within* the parts can beat it.

``make_copula(x, seed)`` must return an object with ``sample(m, rng) -> (m, p) array`` (segkit's
``nulltest.GaussianCopula``); it is passed in so this module needs numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

NAME = "split_copula"
MIN_PART = 20  # with a part smaller than this, one copula for all customers (the plain copula null)


class SplitCopula:
    """Sampler of the split null for the raw features ``x_raw`` (log1p recency, frequency, monetary)."""

    def __init__(self, x_raw: np.ndarray, seed: int, make_copula: Callable[[np.ndarray, int], Any],
                 frequency_column: int = 1):
        one = x_raw[:, frequency_column] <= np.log1p(1.0) + 1e-12
        self.shape = x_raw.shape
        self.fcol = frequency_column
        self.n_one = int(one.sum())
        self.others = [c for c in range(x_raw.shape[1]) if c != frequency_column]
        self.one_value = float(np.log1p(1.0))
        self.one = make_copula(x_raw[one][:, self.others], seed) if self.n_one >= MIN_PART else None
        self.rep = make_copula(x_raw[~one], seed) if self.shape[0] - self.n_one >= MIN_PART else None
        self.fallback = make_copula(x_raw, seed) if self.one is None or self.rep is None else None

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        if self.fallback is not None:
            return self.fallback.sample(m, rng)
        assert self.one is not None and self.rep is not None
        n_one = self.n_one if m == self.shape[0] else int(rng.binomial(m, self.n_one / self.shape[0]))
        out = np.empty((m, self.shape[1]))
        out[:n_one][:, self.others] = self.one.sample(n_one, rng)
        out[:n_one, self.fcol] = self.one_value
        out[n_one:] = self.rep.sample(m - n_one, rng)
        return out

    __call__ = sample
