"""Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the value per purchase, as lifetimes'
``GammaGammaFitter`` (no penalizer). Independent of the counting model. Parameters ``(p, q, v)``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from segkit.models.clv.fitting import Fit, by_count as _by_count, maximise

GG_STARTS = [np.log([1.0, 1.0, 1.0]), np.log([5.0, 3.0, 2.0]), np.log([0.5, 5.0, 10.0])]


def gg_loglik(params: np.ndarray, x: np.ndarray, m: np.ndarray, grad: bool = False,
              counts: tuple[Any, ...] | None = None) -> Any:
    """Per-customer Gamma-Gamma log-likelihood of the mean value ``m`` of ``x`` repeat purchases,
    params = (p, q, v); with ``grad`` also the (n, 3) derivatives.

    ll = ln G(px+q) - ln G(px) - ln G(q) + q ln v + (px-1) ln m + px ln x - (px+q) ln(xm+v)
    """
    from scipy.special import digamma, gammaln

    p, q, v = params
    ux, inv = counts if counts is not None else _by_count(x)
    px = p * x
    log_m, log_x, log_xmv = np.log(m), np.log(x), np.log(x * m + v)
    lg = (gammaln(p * ux + q) - gammaln(p * ux))[inv]
    ll = lg - math.lgamma(q) + q * math.log(v) + (px - 1) * log_m + px * log_x - (px + q) * log_xmv
    if not grad:
        return ll
    d = digamma(p * ux + q)
    g = np.empty((x.size, 3))
    g[:, 0] = x * ((d - digamma(p * ux))[inv] + log_m + log_x - log_xmv)
    g[:, 1] = d[inv] - digamma(q) + math.log(v) - log_xmv
    g[:, 2] = q / v - (px + q) / (x * m + v)
    return ll, g


def gg_expected_value(params: tuple[Any, ...], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """lifetimes' GammaGammaFitter.conditional_expected_average_profit (m = 0 when x = 0)."""
    p, q, v = params
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * (v * p / (q - 1)) + weight * m


# ------------------------------------------------------------------------------ optimiser


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> Fit:
    """MLE of (p, q, v); values are rescaled to mean 1 while fitting, which changes only v."""
    scale = float(m.mean())
    xs, ms = x.astype(float), m / scale
    counts = _by_count(xs)

    def loglik(th: np.ndarray, grad: bool, rows: np.ndarray | None) -> Any:
        if rows is None:
            return gg_loglik(th, xs, ms, grad, counts)
        return gg_loglik(th, xs[rows], ms[rows], grad)

    fit = maximise(loglik, GG_STARTS, x.size, ("p", "q", "v"))
    p, q, v = fit.params
    fit.params = (p, q, v * scale)
    fit.converged = fit.converged and not fit.at_bound
    fit.log_likelihood = float(gg_loglik(np.array(fit.params), xs, m, counts=counts).sum())
    return fit

