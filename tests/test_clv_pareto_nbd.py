"""Pareto/NBD: likelihood against hand-written formulas, gradient against finite differences,
the 2F1 fallback against mpmath values, fits against lifetimes' recorded fits and against
parameters the data were drawn from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from clv_fixtures import histories, recorded
from segkit.models.clv import pareto_nbd as pn
from segkit.models.clv.simulate import simulate_pareto_nbd

NAMES = ("r", "alpha", "s", "beta")
TINY = [(0, 0.0, 30.0), (1, 10.0, 40.0), (3, 25.0, 26.0), (7, 100.0, 300.0), (2, 50.0, 50.0)]


def ll_by_integral(r, alpha, s, beta, x, t_x, T):
    """SMC (1987) / Fader & Hardie (2005) eq. 11 with the dropout integral done numerically:
    L = G(r+x) a^r b^s / G(r) [ (a+T)^-(r+x) (b+T)^-s + s int_tx^T (a+u)^-(r+x) (b+u)^-(s+1) du ]."""
    integral = quad(lambda u: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), t_x, T, epsabs=0, epsrel=1e-13)[0]
    front = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    return front + math.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s * integral)


def ll_lifetimes_formula(r, alpha, s, beta, x, t_x, T):
    """lifetimes' eq. 18-20 (its _log_A_0), written with scalar hyp2f1."""
    if alpha < beta:
        lo, hi, t = alpha, beta, r + x
    else:
        lo, hi, t = beta, alpha, s + 1
    d = r + s + x
    a0 = (hyp2f1(d, t, d + 1, (hi - lo) / (hi + t_x)) / (hi + t_x) ** d
          - hyp2f1(d, t, d + 1, (hi - lo) / (hi + T)) / (hi + T) ** d)
    front = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    return front + math.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s / d * a0)


@pytest.mark.parametrize("params", [(0.55, 10.58, 0.61, 11.67), (0.5, 20.0, 0.8, 2.5), (2.0, 3.0, 1.3, 40.0)])
def test_loglik_matches_hand_formulas(params):
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    got = pn.loglik(params, x, t_x, T)
    np.testing.assert_allclose(got, [ll_by_integral(*params, *row) for row in TINY], rtol=1e-9)
    np.testing.assert_allclose(got, [ll_lifetimes_formula(*params, *row) for row in TINY], rtol=1e-12)


def test_gradient_matches_finite_differences():
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    for theta in (np.array([0.7, 15.0, 0.9, 3.0]), np.array([0.7, 3.0, 0.9, 15.0])):  # both 2F1 branches
        _, g = pn.loglik(theta, x, t_x, T, grad=True)
        num = approx_fprime(theta, lambda th: pn.loglik(th, x, t_x, T).sum(), 1e-7)
        np.testing.assert_allclose(g.sum(axis=0), num, rtol=1e-5)


# (e, c - e, 1 - z) -> ln 2F1(1, e; c; z) by mpmath 1.4.1 (mp.dps = 50; hyp2f1 and Euler's
# integral agree to 15 digits); scipy 1.17's hyp2f1 returns nan or inf at all of them
MPMATH = [
    (1000.0, 1.0, 1e-6, 8.754377493532159), (300.0, 0.5, 1e-4, 7.844192985793199),
    (10.0, 100.0, 1e-3, 0.09612599764308235), (3.0, 300.0, 1e-2, 0.00988278133304196),
    (186.57, 0.3497, 5.2703e-4, 6.890527999214142), (1.5, 100.0, 1e-6, 0.015037862058418343),
]


def test_2f1_falls_back_to_quadrature_where_scipy_fails():
    e, t, om, want = (np.array(c) for c in zip(*MPMATH))
    assert not np.isfinite(hyp2f1(1.0, e, e + t, 1 - om)).any()
    np.testing.assert_allclose(pn._log_h(e, e + t, 1 - om, om), want, rtol=1e-6, atol=1e-9)


def test_quadrature_equals_scipy_where_scipy_is_good():
    rng = np.random.default_rng(0)
    e, t, om = np.exp(rng.uniform(0, 4, 300)), np.exp(rng.uniform(-3, 3, 300)), np.exp(rng.uniform(-7, -0.1, 300))
    h = hyp2f1(1.0, e, e + t, 1 - om)
    good = pn._valid(h, 1 / om)
    np.testing.assert_allclose(pn._log_h_quad(e[good], e[good] + t[good], om[good]), np.log(h[good]), atol=1e-6)


@pytest.mark.parametrize("name", ["cdnow", "cdnow_daily"])
def test_fit_equals_lifetimes(name):
    """Every parameter within 1% of lifetimes' (CDNOW weeks: the published r 0.553, alpha 10.58,
    s 0.606, beta 11.67), p_alive within 0.005 for >= 99% of customers (in fact all), expected
    purchases within 1%, and a likelihood at least as high."""
    ref, cols = recorded(name)
    x, t_x, T = histories(cols)
    fit = pn.fit(x, t_x, T)
    assert fit.converged and not fit.at_bound
    np.testing.assert_allclose(fit.params, [ref["pareto_nbd"][k] for k in NAMES], rtol=0.01)
    assert fit.log_likelihood >= ref["pareto_nbd_log_likelihood"] - 1e-6
    p_alive = pn.p_alive(fit.params, x, t_x, T)
    assert np.mean(np.abs(p_alive - cols["pnbd_p_alive"]) <= 0.005) >= 0.99
    np.testing.assert_allclose(pn.expected_purchases(fit.params, ref["horizon"], x, t_x, T), cols["pnbd_expected"],
                               rtol=0.01)


@pytest.mark.parametrize("name", ["cdnow", "cdnow_daily", "non_uk"])
def test_formulas_equal_lifetimes_at_its_parameters(name):
    ref, cols = recorded(name)
    x, t_x, T = histories(cols)
    params = [ref["pareto_nbd"][k] for k in NAMES]
    np.testing.assert_allclose(pn.loglik(params, x, t_x, T), cols["pnbd_ll"], rtol=1e-9)
    np.testing.assert_allclose(pn.p_alive(params, x, t_x, T), cols["pnbd_p_alive"], atol=1e-9)
    np.testing.assert_allclose(pn.expected_purchases(params, ref["horizon"], x, t_x, T), cols["pnbd_expected"],
                               rtol=1e-8)


def test_online_retail_is_the_no_dropout_edge():
    """One year of Online Retail: the optimum is s -> 0 (no dropout), where beta is not identified
    (lifetimes returns a different beta from each seed). r, alpha, the likelihood and every
    per-customer output must agree."""
    ref, cols = recorded("non_uk")
    x, t_x, T = histories(cols)
    fit = pn.fit(x, t_x, T)
    assert fit.converged and fit.at_bound == ("s",)
    lt = ref["pareto_nbd"]
    np.testing.assert_allclose(fit.params[:2], [lt["r"], lt["alpha"]], rtol=0.01)
    assert pn.no_dropout(fit.params, T.max()) and pn.no_dropout([lt[k] for k in NAMES], T.max())
    assert fit.log_likelihood == pytest.approx(ref["pareto_nbd_log_likelihood"], rel=1e-8)
    assert np.max(np.abs(pn.p_alive(fit.params, x, t_x, T) - cols["pnbd_p_alive"])) <= 0.005
    np.testing.assert_allclose(pn.expected_purchases(fit.params, ref["horizon"], x, t_x, T), cols["pnbd_expected"],
                               rtol=0.01)


@pytest.mark.parametrize("truth", [(0.55, 74.0, 0.6, 82.0), (2.0, 20.0, 3.0, 300.0)])
def test_fit_recovers_the_parameters_the_data_were_drawn_from(truth):
    rng = np.random.default_rng(3)
    n = 20_000
    T = np.floor(rng.uniform(60, 730, n))
    x, t_x = simulate_pareto_nbd(n, *truth, T, rng)
    fit = pn.fit(x, np.floor(t_x), T)
    assert fit.converged
    np.testing.assert_allclose(fit.params, truth, rtol=0.15)


def test_weights_equal_repeated_customers():
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*TINY))
    w = np.array([5.0, 3.0, 1.0, 2.0, 4.0])
    params = (0.7, 15.0, 0.9, 3.0)
    rep = [np.repeat(a, w.astype(int)) for a in (x, t_x, T)]
    from segkit.models.clv.fitting import Histories
    h = Histories.group(x, t_x, T, w)
    ll, g = pn._grouped_loglik(h)(np.array(params), True)
    ll_rep, g_rep = pn.loglik(params, *rep, grad=True)
    assert h.weight @ ll == pytest.approx(ll_rep.sum(), rel=1e-12)
    np.testing.assert_allclose(g, g_rep.sum(axis=0), rtol=1e-9)


def test_simulator_mean_matches_the_model():
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (lifetimes'
    expected_number_of_purchases_up_to_time)."""
    r, alpha, s, beta, t = 0.8, 30.0, 1.7, 90.0, 365.0
    x, _ = simulate_pareto_nbd(400_000, r, alpha, s, beta, np.full(400_000, t), np.random.default_rng(1))
    want = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    assert x.mean() == pytest.approx(want, rel=0.01)


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="t_x"):
        pn.fit(np.array([1.0, 0.0]), np.array([5.0, 1.0]), np.array([4.0, 3.0]))


@pytest.mark.parametrize("name", ["cdnow", "cdnow_daily", "non_uk"])
def test_conditional_pmf_equals_lifetimes(name):
    """P(k purchases over the horizon | history) against lifetimes'
    conditional_probability_of_n_purchases_up_to_time (note 028) at lifetimes' parameters."""
    ref, cols = recorded(name)
    x, t_x, T = histories(cols)
    params = [ref["pareto_nbd"][k] for k in NAMES]
    for k in (0, 1, 2, 5):
        got = np.exp(pn.conditional_log_pmf(params, ref["horizon"], np.full(x.size, k), x, t_x, T))
        np.testing.assert_allclose(got, cols[f"pnbd_pmf_{k}"], atol=1e-10, rtol=1e-6)


def test_conditional_pmf_sums_to_one_with_the_expected_mean():
    ref, cols = recorded("cdnow")
    x, t_x, T = (a[:300] for a in histories(cols))
    params = [ref["pareto_nbd"][k] for k in NAMES]
    k = np.arange(300.0)[:, None] * np.ones(x.size)
    p = np.exp(np.stack([pn.conditional_log_pmf(params, 39.0, kk, x, t_x, T) for kk in k]))
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose((k * p).sum(axis=0), pn.expected_purchases(params, 39.0, x, t_x, T), rtol=1e-10)


def test_conditional_pmf_matches_simulated_holdouts():
    from segkit.models.clv.simulate import simulate_pareto_nbd_holdout

    truth, n = (0.55, 74.0, 0.61, 82.0), 60_000
    rng = np.random.default_rng(5)
    T = np.floor(rng.uniform(60, 730, n))
    x, t_x, later = simulate_pareto_nbd_holdout(n, *truth, T, 180.0, rng)
    for k in (0, 1, 2):  # 0.008 is about 3.5 standard errors of a share
        predicted = np.exp(pn.conditional_log_pmf(truth, 180.0, np.full(n, k), x, t_x, T)).mean()
        assert np.mean(later == k) == pytest.approx(predicted, abs=0.008)
