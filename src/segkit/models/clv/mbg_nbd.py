"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) as lifetimes 0.11.3's ``ModifiedBetaGeoFitter``.

As BG/NBD (purchases at Poisson rate ``lambda ~ Gamma(r, alpha)``, dropout with probability
``p ~ Beta(a, b)`` after each purchase), except that a customer may also drop out right after
the first purchase, so a customer without repeat purchases is not certainly alive.

Per-customer log-likelihood (lifetimes' ``_negative_log_likelihood``; Wagner & Hoppe 2008)::

    ll = ln G(r+x) - ln G(r) + r ln alpha
         + ln G(a+b) + ln G(b+x+1) - ln G(b) - ln G(a+b+x+1)
         - (r+x) ln(alpha+T) + ln(1 + exp(A4))
    A4 = ln a - ln(b+x) + (r+x) (ln(alpha+T) - ln(alpha+t_x))

with an analytic gradient; ``p_alive = 1 / (1 + exp(A4))``. No penalizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, gammaln, hyp2f1, psi

from segkit.models.clv.fitting import Fit, Histories, check_inputs, subsample, unique_rows
from segkit.models.clv.fitting import GroupedLogLik as LogLik
from segkit.models.clv.fitting import maximise_grouped as maximise

NAMES = ("r", "alpha", "a", "b")
STARTS = [np.log([1.0, 1.0, 1.0, 1.0]), np.log([0.5, 2.0, 0.5, 2.0]), np.log([0.2, 0.5, 2.0, 8.0])]
FIT_SCALE_T = 10.0  # time is rescaled to max(T) = 10 while fitting (changes only alpha)
NO_DROPOUT = 1e-6  # a / (a + b) below this: the fit found no dropout (the model is then an NBD)


def _params(params: Any) -> tuple[float, float, float, float]:
    r, alpha, a, b = (float(v) for v in params)
    return r, alpha, a, b


def _a4(r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """A4 = ln a - ln(b+x) + (r+x) ln((alpha+T)/(alpha+t_x)), the log-odds of having dropped out."""
    return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))


def _grouped_loglik(h: Histories, per_row: bool = False) -> LogLik:
    """Log-likelihood function ``f(theta, grad)`` of grouped histories (time unit of ``h``): per-row
    ll and, with ``grad``, the weighted total gradient (k,) (``per_row``: the (rows, k) matrix).
    The gamma functions are evaluated once per distinct x."""
    x, t_x, T = h.x, h.t_x, h.T
    (ux,), inv = unique_rows(x)

    def f(theta: np.ndarray, grad: bool) -> Any:
        r, alpha, a, b = (float(v) for v in theta)
        per_x = (gammaln(r + ux) - gammaln(r) + gammaln(b + ux + 1) - gammaln(a + b + ux + 1))[inv]
        la_T, la_t = np.log(alpha + T), np.log(alpha + t_x)
        a4 = np.log(a) - np.log(b + x) + (r + x) * (la_T - la_t)
        ll = (per_x + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
              - (r + x) * la_T + np.logaddexp(0.0, a4))
        if not grad:
            return ll
        dead = expit(a4)  # 1 - p_alive
        d_ab = psi(a + b) - psi(a + b + ux + 1)
        g = np.stack([
            (psi(r + ux) - psi(r))[inv] + np.log(alpha) - la_T + dead * (la_T - la_t),
            r / alpha - (r + x) / (alpha + T) + dead * (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x)),
            d_ab[inv] + dead / a,
            (d_ab + psi(b + ux + 1) - psi(b))[inv] - dead / (b + x),
        ])
        return (ll, g.T) if per_row else (ll, g @ h.weight)
    return f


def loglik(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, grad: bool = False) -> Any:
    """Per-customer log-likelihood, params = (r, alpha, a, b); with ``grad`` also the (n, 4)
    matrix of its derivatives in the parameters."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return _grouped_loglik(Histories(x, t_x, T, np.ones(x.size)), per_row=True)(np.asarray(params, dtype=float), grad)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> Fit:
    """MLE of (r, alpha, a, b) in the time unit of the data (lifetimes' ModifiedBetaGeoFitter, no
    penalizer). a -> 0 (b then free) is the no-dropout edge of the model and a valid optimum;
    r or alpha at the edge of the search box is not converged."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    check_inputs(x, t_x, T)
    scale = FIT_SCALE_T / float(T.max())
    days = Histories.group(x, t_x, T, weights)
    sample = subsample(x, t_x * scale, T * scale) if weights is None else None
    fit_ = maximise(_grouped_loglik, days.scaled(scale), STARTS, NAMES, sample)
    r, alpha, a, b = fit_.params
    fit_.params = (r, alpha / scale, a, b)
    fit_.converged = fit_.converged and not {"r", "alpha"} & set(fit_.at_bound)
    fit_.log_likelihood = float(days.weight @ _grouped_loglik(days)(np.array(fit_.params), False))
    return fit_


def no_dropout(params: Any) -> bool:
    """True when the fit found (practically) no dropout: a / (a + b) < 1e-6."""
    _r, _alpha, a, b = _params(params)
    return a / (a + b) < NO_DROPOUT


def p_alive(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T): lifetimes' ``conditional_probability_alive``
    (Batislam et al. 2007, appendix eq. 5); below 1 also for customers without repeat purchases."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return expit(-_a4(*_params(params), x, t_x, T))


def _log_hyp2f1(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """ln 2F1(a, b; c; z) for 0 <= z < 1, through Euler's transformation where scipy overflows."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        euler = np.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * np.log1p(-z)
    return np.where(np.isfinite(direct), direct, euler)


def expected_purchases(params: Any, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T]: lifetimes' ``conditional_expected_number_of_purchases_up_to_time``
    (Wagner & Hoppe 2008)::

        (a+b+x)/(a-1) [1 - 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t)) ((alpha+T)/(alpha+T+t))^(r+x)]
        / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = _params(params)
    ln_hyp = _log_hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
    second = -np.expm1(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + T + t)))
    return (a + b + x) / (a - 1) * second * p_alive(params, x, t_x, T)


def beta_geometric_log_pmf(r: float, alpha: float, a: float, b_alive: np.ndarray, t: float, k: np.ndarray,
                           x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """ln P(k purchases in (T, T+t] | alive at T) for the BG/NBD family: lambda ~ Gamma(r+x, alpha+T),
    p ~ Beta(a, b_alive) (b + x for BG/NBD, b + x + 1 for MBG/NBD), dropout with probability p
    after each purchase::

        P(0) = NB_0,  P(k) = B(a, b'+k-1)/B(a, b') NB_k + B(a+1, b'+k-1)/B(a, b') (1 - sum_{j<=k} NB_j)

    with NB_j = P(j purchases in t | lambda integrated out) (negative binomial)."""
    from scipy.special import betaln, betainc

    rp, ap = r + x, alpha + T
    q = t / (ap + t)
    log_nb_k = gammaln(rp + k) - gammaln(rp) - gammaln(k + 1) + rp * np.log1p(-q) + k * np.log(q)
    tail = betainc(k + 1, rp, q)  # P(NB > k) = I_q(k+1, r')
    km1 = np.maximum(k - 1, 0)
    with np.errstate(divide="ignore"):
        stay = betaln(a, b_alive + km1) - betaln(a, b_alive) + log_nb_k
        drop = betaln(a + 1, b_alive + km1) - betaln(a, b_alive) + np.log(tail)
    return np.where(k == 0, log_nb_k, np.logaddexp(stay, drop))


def conditional_log_pmf(params: Any, t: float, k: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                        ) -> np.ndarray:
    """ln P(k purchases in (T, T+t] | x, t_x, T) = ln[(1 - p_alive)[k = 0] + p_alive P(k | alive)];
    alive at T the customer has survived x + 1 dropout chances, so p ~ Beta(a, b + x + 1)."""
    k, x, t_x, T = (np.asarray(v, dtype=float) for v in (k, x, t_x, T))
    r, alpha, a, b = _params(params)
    a4 = _a4(r, alpha, a, b, x, t_x, T)
    log_pa, log_dead = -np.logaddexp(0.0, a4), a4 - np.logaddexp(0.0, a4)
    alive = beta_geometric_log_pmf(r, alpha, a, b + x + 1.0, t, k, x, T)
    return np.where(k == 0, np.logaddexp(log_dead, log_pa + alive), log_pa + alive)

