"""The shared optimiser pieces: grouping of histories and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from segkit.models.clv.fitting import Histories, check_inputs, unique_rows


@pytest.mark.parametrize("offset", [0.0, 0.5])  # packed int64 keys and the lexsort path
def test_unique_rows_inverts(offset):
    rng = np.random.default_rng(0)
    cols = [rng.integers(0, k, 2000).astype(float) + offset for k in (5, 30, 40)]
    keys, inverse = unique_rows(*cols)
    want = np.unique(np.stack(cols, 1), axis=0)
    np.testing.assert_array_equal(np.stack(keys, 1), want)
    for k, c in zip(keys, cols):
        np.testing.assert_array_equal(k[inverse], c)


def test_histories_group_sums_weights():
    h = Histories.group(np.array([1.0, 1.0, 0.0]), np.array([3.0, 3.0, 0.0]), np.array([9.0, 9.0, 9.0]))
    assert h.customers == 3 and h.x.tolist() == [0.0, 1.0] and h.weight.tolist() == [1.0, 2.0]


def test_check_inputs():
    ok = np.array([0.0, 2.0]), np.array([0.0, 3.0]), np.array([5.0, 5.0])
    check_inputs(*ok)
    with pytest.raises(ValueError, match="whole"):
        check_inputs(np.array([0.5]), np.array([1.0]), np.array([2.0]))
    with pytest.raises(ValueError, match="t_x must be 0"):
        check_inputs(np.array([0.0]), np.array([1.0]), np.array([2.0]))


def _no_heterogeneity(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1, 2 or 3 purchases per customer (by id) on random days of two years: less spread than any
    Gamma mixture gives, so the BG/NBD likelihood keeps rising as r and alpha grow (no optimum)."""
    rng = np.random.default_rng(5)
    k = 1 + np.arange(n) % 3
    days = [np.sort(rng.choice(730, size=kk, replace=False)) for kk in k]
    first = np.array([d[0] for d in days], float)
    last = np.array([d[-1] for d in days], float)
    return (k - 1).astype(float), last - first, 730 - first


def test_bgnbd_fit_evaluates_each_distinct_history_once(monkeypatch):
    from segkit.models.clv import bgnbd

    x, t_x, T = _no_heterogeneity(8000)
    distinct = Histories.group(x, t_x, T).x.size
    sizes = []
    real = bgnbd.bgnbd_loglik
    monkeypatch.setattr(bgnbd, "bgnbd_loglik", lambda p, xs, *a, **k: sizes.append(xs.size) or real(p, xs, *a, **k))
    bgnbd.fit_bgnbd(x, t_x, T)
    assert distinct < 8000 and max(sizes[:-1]) == distinct  # the last call: the log-likelihood per customer
    assert sizes[-1] == 8000


def test_a_fit_without_an_optimum_refines_one_sample_optimum_with_bounded_work(monkeypatch):
    """No start converges on the sample: only the best sample optimum is refined on all customers,
    by L-BFGS-B alone (no Nelder-Mead pass of up to 1,500 evaluations per start)."""
    from segkit.models.clv import bgnbd

    x, t_x, T = _no_heterogeneity(8000)
    distinct = Histories.group(x, t_x, T).x.size
    sizes = []
    real = bgnbd.bgnbd_loglik
    monkeypatch.setattr(bgnbd, "bgnbd_loglik", lambda p, xs, *a, **k: sizes.append(xs.size) or real(p, xs, *a, **k))
    fit = bgnbd.fit_bgnbd(x, t_x, T)
    assert not fit.converged
    assert 0 < sizes.count(distinct) <= 200
