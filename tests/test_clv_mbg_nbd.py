"""MBG/NBD: likelihood against the hand-written formula, gradient against finite differences,
fits against lifetimes' recorded fits and against parameters the data were drawn from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from clv_fixtures import histories, recorded
from segkit.models.clv import mbg_nbd as mb
from segkit.models.clv.simulate import simulate_mbg_nbd

NAMES = ("r", "alpha", "a", "b")
TINY = [(0, 0.0, 30.0), (1, 10.0, 40.0), (3, 25.0, 26.0), (7, 100.0, 300.0), (2, 50.0, 50.0)]


def ll_by_hand(r, alpha, a, b, x, t_x, T):
    """Batislam et al. (2007) eq. 3 (Wagner & Hoppe 2008), with Beta and Gamma functions:
    L = B(a, b+x+1)/B(a, b) G(r+x) a^r / (G(r) (a+T)^(r+x))
        + B(a+1, b+x)/B(a, b) G(r+x) a^r / (G(r) (a+t_x)^(r+x))."""
    beta = lambda u, v: math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))  # noqa: E731
    nbd = math.gamma(r + x) * alpha ** r / math.gamma(r)
    return math.log(beta(a, b + x + 1) / beta(a, b) * nbd / (alpha + T) ** (r + x)
                    + beta(a + 1, b + x) / beta(a, b) * nbd / (alpha + t_x) ** (r + x))


@pytest.mark.parametrize("params", [(0.52, 6.18, 0.89, 1.61), (2.0, 3.0, 0.1, 10.0)])
def test_loglik_matches_hand_formula(params):
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    np.testing.assert_allclose(mb.loglik(params, x, t_x, T), [ll_by_hand(*params, *row) for row in TINY], rtol=1e-12)


def test_gradient_matches_finite_differences():
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    theta = np.array([0.7, 15.0, 0.9, 3.0])
    _, g = mb.loglik(theta, x, t_x, T, grad=True)
    num = approx_fprime(theta, lambda th: mb.loglik(th, x, t_x, T).sum(), 1e-7)
    np.testing.assert_allclose(g.sum(axis=0), num, rtol=1e-5)


@pytest.mark.parametrize("name", ["cdnow", "cdnow_daily"])
def test_fit_equals_lifetimes(name):
    ref, cols = recorded(name)
    x, t_x, T = histories(cols)
    fit = mb.fit(x, t_x, T)
    assert fit.converged and not fit.at_bound
    np.testing.assert_allclose(fit.params, [ref["mbg_nbd"][k] for k in NAMES], rtol=0.01)
    assert fit.log_likelihood >= ref["mbg_nbd_log_likelihood"] - 1e-6
    p_alive = mb.p_alive(fit.params, x, t_x, T)
    assert np.mean(np.abs(p_alive - cols["mbg_p_alive"]) <= 0.005) >= 0.99
    np.testing.assert_allclose(mb.expected_purchases(fit.params, ref["horizon"], x, t_x, T), cols["mbg_expected"],
                               rtol=0.01)


@pytest.mark.parametrize("name", ["cdnow", "cdnow_daily", "non_uk"])
def test_formulas_equal_lifetimes_at_its_parameters(name):
    ref, cols = recorded(name)
    x, t_x, T = histories(cols)
    params = [ref["mbg_nbd"][k] for k in NAMES]
    np.testing.assert_allclose(mb.loglik(params, x, t_x, T), cols["mbg_ll"], rtol=1e-9)
    np.testing.assert_allclose(mb.p_alive(params, x, t_x, T), cols["mbg_p_alive"], atol=1e-9)
    np.testing.assert_allclose(mb.expected_purchases(params, ref["horizon"], x, t_x, T), cols["mbg_expected"],
                               rtol=1e-8)


def test_online_retail_is_the_no_dropout_edge():
    """a -> 0: a and b are not identified; r, alpha, the likelihood and the outputs agree."""
    ref, cols = recorded("non_uk")
    x, t_x, T = histories(cols)
    fit = mb.fit(x, t_x, T)
    assert fit.converged
    lt = ref["mbg_nbd"]
    np.testing.assert_allclose(fit.params[:2], [lt["r"], lt["alpha"]], rtol=0.01)
    assert mb.no_dropout(fit.params) and mb.no_dropout([lt[k] for k in NAMES])
    assert fit.log_likelihood >= ref["mbg_nbd_log_likelihood"] - 1e-6
    assert np.max(np.abs(mb.p_alive(fit.params, x, t_x, T) - cols["mbg_p_alive"])) <= 0.005
    np.testing.assert_allclose(mb.expected_purchases(fit.params, ref["horizon"], x, t_x, T), cols["mbg_expected"],
                               rtol=0.01)


@pytest.mark.parametrize("truth", [(0.8, 60.0, 0.8, 2.5), (2.0, 20.0, 0.2, 5.0)])
def test_fit_recovers_the_parameters_the_data_were_drawn_from(truth):
    rng = np.random.default_rng(3)
    n = 30_000
    T = np.floor(rng.uniform(60, 730, n))
    x, t_x = simulate_mbg_nbd(n, *truth, T, rng)
    fit = mb.fit(x, np.floor(t_x), T)
    assert fit.converged
    np.testing.assert_allclose(fit.params, truth, rtol=0.15)


def test_simulator_mean_matches_the_model():
    """E[X(t)] = b/(a-1) [1 - 2F1(r, b+1; a+b; t/(alpha+t)) (alpha/(alpha+t))^r] (lifetimes'
    ModifiedBetaGeoFitter.expected_number_of_purchases_up_to_time)."""
    r, alpha, a, b, t = 0.8, 30.0, 1.6, 3.0, 365.0
    x, _ = simulate_mbg_nbd(400_000, r, alpha, a, b, np.full(400_000, t), np.random.default_rng(1))
    want = b / (a - 1) * (1 - hyp2f1(r, b + 1, a + b, t / (alpha + t)) * (alpha / (alpha + t)) ** r)
    assert x.mean() == pytest.approx(want, rel=0.01)


def test_customers_without_repeat_purchases_may_have_dropped_out():
    p = mb.p_alive((0.5, 10.0, 0.8, 2.0), np.array([0.0]), np.array([0.0]), np.array([100.0]))
    assert 0 < p[0] < 1


def test_conditional_pmf_sums_to_one_with_the_expected_mean():
    ref, cols = recorded("cdnow")
    x, t_x, T = histories(cols)
    params = [ref["mbg_nbd"][k] for k in NAMES]
    k = np.arange(300.0)[:, None] * np.ones(x.size)
    p = np.exp(np.stack([mb.conditional_log_pmf(params, 39.0, kk, x, t_x, T) for kk in k]))
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose((k * p).sum(axis=0), mb.expected_purchases(params, 39.0, x, t_x, T), rtol=1e-10)


def test_conditional_pmf_matches_simulated_holdouts():
    from segkit.models.clv.simulate import simulate_mbg_nbd_holdout

    truth, n = (0.5, 40.0, 0.7, 3.0), 100_000
    rng = np.random.default_rng(5)
    T = np.floor(rng.uniform(60, 730, n))
    x, t_x, later = simulate_mbg_nbd_holdout(n, *truth, T, 180.0, rng)
    for k in (0, 1, 2):
        predicted = np.exp(mb.conditional_log_pmf(truth, 180.0, np.full(n, k), x, t_x, T)).mean()
        assert np.mean(later == k) == pytest.approx(predicted, abs=0.006)
