"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): log-likelihood with
analytic gradient, fit, p_alive and expected purchases, as lifetimes' ``BetaGeoFitter`` (no penalizer).
Parameters ``(r, alpha, a, b)`` in days."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from segkit.models.clv.fitting import Fit, GroupedLogLik, Histories, maximise_grouped, subsample
from segkit.models.clv.fitting import by_count as _by_count

NAMES = ("r", "alpha", "a", "b")
BGNBD_STARTS = [np.log([1.0, 1.0, 1.0, 1.0]), np.log([0.5, 2.0, 0.5, 2.0]), np.log([0.2, 0.5, 2.0, 8.0])]
NO_DROPOUT = 1e-6  # a / (a + b) below this: the BG/NBD found no dropout (it is then an NBD)


def bgnbd_loglik(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                 grad: bool = False, counts: tuple[Any, ...] | None = None) -> Any:
    """Per-customer BG/NBD log-likelihood, params = (r, alpha, a, b); with ``grad`` also the
    (n, 4) matrix of its derivatives with respect to the parameters.

    ll = ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x) - ln B(a, b)
         + ln[ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]   (FHL 2005, eq. 6)
    """
    from scipy.special import digamma, gammaln

    r, alpha, a, b = params
    ux, inv = counts if counts is not None else _by_count(x)
    uc = np.maximum(ux, 1.0)
    a12 = (gammaln(r + ux) - math.lgamma(r) + r * math.log(alpha)
           + math.lgamma(a + b) + gammaln(b + ux) - math.lgamma(b) - gammaln(a + b + ux))[inv]
    log_ab = (math.log(a) - np.log(b + uc - 1))[inv]
    rx = r + x
    la_T, la_t = np.log(alpha + T), np.log(alpha + t_x)
    a3 = -rx * la_T
    a4 = np.where(x > 0, log_ab - rx * la_t, -np.inf)
    mx = np.maximum(a3, a4)
    tail = mx + np.log(np.exp(a3 - mx) + np.exp(a4 - mx))
    ll = a12 + tail
    if not grad:
        return ll
    w3, w4 = np.exp(a3 - tail), np.exp(a4 - tail)
    d_ab = digamma(a + b) - digamma(a + b + ux)
    g = np.empty((x.size, 4))
    g[:, 0] = (digamma(r + ux) - digamma(r))[inv] + math.log(alpha) - w3 * la_T - w4 * la_t
    g[:, 1] = r / alpha - rx * (w3 / (alpha + T) + w4 / (alpha + t_x))
    g[:, 2] = d_ab[inv] + w4 / a
    g[:, 3] = (d_ab + digamma(b + ux) - digamma(b))[inv] - w4 / (b + np.maximum(x, 1) - 1)
    return ll, g


def bgnbd_p_alive(params: tuple[Any, ...], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """lifetimes' BetaGeoFitter.conditional_probability_alive."""
    from scipy.special import expit

    r, alpha, a, b = params
    log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x == 0, 1.0, expit(-log_div))


def bgnbd_expected(params: tuple[Any, ...], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """lifetimes' conditional_expected_number_of_purchases_up_to_time: E[purchases in (T, T+t]]."""
    from scipy.special import hyp2f1

    r, alpha, a, b = params
    _a, _b, _c = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    # 2F1 is negative when c = a + b + x - 1 < 0 (a + b < 1, one-time buyers): keep its sign and
    # work with its log size, falling back to Euler's transformation where 2F1 itself overflows.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp = hyp2f1(_a, _b, _c, z)
        euler = hyp2f1(_c - _a, _c - _b, _c, z)
        ln_hyp = np.where(np.isfinite(hyp), np.log(np.abs(hyp)), np.log(np.abs(euler)) + (_c - _a - _b) * np.log1p(-z))
        sign = np.sign(np.where(np.isfinite(hyp), hyp, euler))
    first = (a + b + x - 1) / (a - 1)
    second = 1 - sign * np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))
    denom = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return first * second / denom


# ----------------------------------------------------------------------------- Gamma-Gamma


def _grouped(h: Histories) -> GroupedLogLik:
    """The log-likelihood of distinct histories ``h``: per row, and with ``grad`` the gradient of
    the weighted total (each row stands for ``h.weight`` customers)."""
    counts = _by_count(h.x)

    def f(theta: np.ndarray, grad: bool) -> Any:
        if not grad:
            return bgnbd_loglik(theta, h.x, h.t_x, h.T, False, counts)
        ll, g = bgnbd_loglik(theta, h.x, h.t_x, h.T, True, counts)
        return ll, h.weight @ g
    return f


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Fit:
    """MLE of (r, alpha, a, b) in days. Time is rescaled to max(T) = 10 while fitting (as lifetimes
    does), which changes only alpha's scale. a -> 0 (with b free) is the no-dropout edge of the
    model and a valid optimum; r or alpha at the edge is not. The likelihood is evaluated once per
    distinct (x, t_x, T), weighted by how many customers share it (as lifetimes does)."""
    scale = 10.0 / float(T.max())
    xs, tf, Tf = x.astype(float), t_x.astype(float), T.astype(float)
    data = Histories.group(xs, tf, Tf).scaled(scale)
    sample = subsample(xs, tf, Tf)
    fit = maximise_grouped(_grouped, data, BGNBD_STARTS, NAMES, sample=sample.scaled(scale) if sample else None)
    r, alpha, a, b = fit.params
    fit.params = (r, alpha / scale, a, b)
    fit.converged = fit.converged and not {"r", "alpha"} & set(fit.at_bound)
    # in days the log-likelihood differs from the rescaled one by the Jacobian of the rescaling
    fit.log_likelihood = float(bgnbd_loglik(np.array(fit.params), xs, tf, Tf, counts=_by_count(xs)).sum())
    return fit
