"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987) as lifetimes 0.11.3's ``ParetoNBDFitter``.

While alive a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)`` and stays alive for an
exponential lifetime with rate ``mu ~ Gamma(s, beta)`` (shape, rate). A history is
``(x, t_x, T)``: repeat purchases, time of the last one, time since the first purchase.

Likelihood (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model", eq. 18)::

    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s (J(t_x) - J(T)) ]
    J(y) = int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du
         = (m+y)^-d / d * 2F1(d, t; d+1; z),  d = r+s+x, m = max(alpha, beta),
           z = |alpha-beta| / (m+y), t = r+x if alpha <= beta else s+1

which is lifetimes' ``_log_A_0`` (``A_0 = d (J(t_x) - J(T))``). ``ln J`` is computed as
``base + ln 2F1(1, e; c; z)`` (Euler's transformation, ``_branch``): that 2F1 lies in
``[1, 1/(1-z)]``, so it neither overflows for large ``x`` nor loses ``ln(1-z)`` near ``z = 1``.
Where scipy's ``hyp2f1`` fails (nan, inf or outside that range: large parameters near z = 1) a
quadrature of Euler's integral takes over (``_log_h_quad``).

``J`` depends on a history through ``(x, y)`` only, so the fit evaluates it once per distinct
``(x, t_x)`` and ``(x, T)`` pair of the grouped histories, and only for rows where the dropout
term is not negligible (below e^-40 of the other, bounded without 2F1). The gradient is analytic
except in the 2F1 parameters e and c (no closed form): central differences, six 2F1 values per
pair in one vectorised call. ``fit`` handles the no-dropout edge (s -> 0, the NBD) in closed
form. No penalizer.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy.special import expit, exprel, gammaln, hyp2f1, logsumexp, psi

from segkit.models.clv.fitting import (
    ABANDONED, LOG_BOUND, Fit, Histories, StopRule, check_inputs, subsample, unique_rows,
)
from segkit.models.clv.fitting import GroupedLogLik as LogLik
from segkit.models.clv.fitting import maximise_grouped as maximise

NAMES = ("r", "alpha", "s", "beta")
STARTS = [np.log([1.0, 1.0, 1.0, 1.0]), np.log([0.5, 3.0, 0.5, 10.0]), np.log([2.0, 10.0, 0.2, 1.0])]
FIT_SCALE_T = 10.0  # time is rescaled to max(T) = 10 while fitting (changes only alpha and beta)
# beta (time rescaled to max(T) = 10) is kept below e^9 ~ 8100, i.e. 810 x max(T) in the data's
# unit: beyond it the dropout rates are ~0 or homogeneous (s -> 0 or s, beta -> inf, both valid
# edges of the model); 2F1 near z = 1 there costs scipy 10-100x more per value.
BOUNDS = np.array([[-LOG_BOUND, LOG_BOUND]] * 3 + [[-LOG_BOUND, 9.0]])
FD_STEP = 1e-5  # relative step of the central differences of ln 2F1 in its parameters e and c
NO_DROPOUT = 1e-6  # share of customers expected to drop out within max(T) below this: no dropout


def _params(params: Any) -> tuple[float, float, float, float]:
    r, alpha, s, beta = (float(v) for v in params)
    return r, alpha, s, beta


# ------------------------------------------------------------------------------- J(y)

def _branch(x: np.ndarray, y: np.ndarray, r: float, alpha: float, s: float, beta: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ln J without ln H, e, c, z, 1-z) of ``ln J = base + ln H``, ``H = 2F1(1, e; c; z)``.

    alpha <= beta: base = (1-r-x) ln(alpha+y) - (s+1) ln(beta+y) - ln d, e = s+1, z = (beta-alpha)/(beta+y);
    alpha > beta:  base = -(r+x) ln(alpha+y) - s ln(beta+y) - ln d,      e = r+x, z = (alpha-beta)/(alpha+y);
    c = d+1 = r+s+x+1 in both; 1-z = (min+y)/(max+y) is computed without cancellation.
    """
    d = r + s + x
    ay, by = alpha + y, beta + y
    la, lb = np.log(ay), np.log(by)
    if alpha <= beta:
        base = (1.0 - r - x) * la - (s + 1.0) * lb - np.log(d)
        return base, np.full_like(d, s + 1.0), d + 1.0, (beta - alpha) / by, ay / by
    return -(r + x) * la - s * lb - np.log(d), r + x, d + 1.0, (alpha - beta) / ay, by / ay


LOG_NEGLIGIBLE = -40.0  # a term below e^-40 (4e-18) of another is dropped from their sum


def _log_sj_bound(x: np.ndarray, y: np.ndarray, r: float, alpha: float, s: float, beta: float) -> np.ndarray:
    """An upper bound of ln(s J(y)) without 2F1: 2F1(1, e; c; z) <= 1 / (1 - z) for c > e."""
    base, _e, _c, _z, om = _branch(x, y, r, alpha, s, beta)
    return np.log(s) + base - np.log(om)


def _valid(h: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """scipy's 2F1 is trusted where it is finite and inside its proven range [1, bound]
    (it returns nan, inf or wrong values for large parameters near z = 1)."""
    return np.isfinite(h) & (h >= 1.0 - 1e-12) & (h <= bound * (1.0 + 1e-9))


def _log_h(e: np.ndarray, c: np.ndarray, z: np.ndarray, om: np.ndarray) -> np.ndarray:
    """ln 2F1(1, e; c; z), c > e > 0, 0 <= z < 1: scipy, with the quadrature where scipy fails."""
    with np.errstate(all="ignore"):
        h = hyp2f1(1.0, e, c, z)
        out = np.log(h)
    bad = ~_valid(h, 1.0 / om)
    if bad.any():
        out[bad] = _log_h_quad(e[bad], c[bad], om[bad])
    return out


def log_j(x: np.ndarray, y: np.ndarray, params: Any) -> np.ndarray:
    """``ln J(y)`` (module docstring) elementwise for one parameter vector."""
    base, e, c, z, om = _branch(x, y, *_params(params))
    return base + _log_h(e, c, z, om)


def _log_h_grad(e: np.ndarray, c: np.ndarray, z: np.ndarray, om: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ln H, d ln H/de, d ln H/dc, d ln H/dz) of H = 2F1(1, e; c; z).

    z: analytic, (e/c) 2F1(2, e+1; c+1; z) / H; e and c: central differences with relative step
    FD_STEP; six scipy values per element in one call. Where scipy fails, all four come from
    the quadrature (z by a central difference on ln(1-z))."""
    he, hc = FD_STEP * e, FD_STEP * c
    one, two = np.ones_like(e), np.full_like(e, 2.0)
    with np.errstate(all="ignore"):
        h = hyp2f1(np.stack([one, one, one, one, one, two]),
                   np.stack([e, e + he, e - he, e, e, e + 1.0]),
                   np.stack([c, c, c, c + hc, c - hc, c + 1.0]), z)
        lh = np.log(h[:5])
        dz = e / c * h[5] / h[0]
    bad = ~(_valid(h[:5], 1.0 / om).all(axis=0) & _valid(h[5], 1.0 / om**2))
    if bad.any():
        eb, cb, ob, heb, hcb = e[bad], c[bad], om[bad], he[bad], hc[bad]
        q = [_log_h_quad(eb + de, cb + dc, ob * np.exp(dl)) for de, dc, dl in
             [(0, 0, 0), (heb, 0, 0), (-heb, 0, 0), (0, hcb, 0), (0, -hcb, 0), (0, 0, -FD_STEP), (0, 0, FD_STEP)]]
        lh[:, bad] = np.stack(q[:5])
        dz[bad] = (q[5] - q[6]) / (ob * (np.exp(FD_STEP) - np.exp(-FD_STEP)))  # z = 1 - om
    return lh[0], (lh[1] - lh[2]) / (2 * he), (lh[3] - lh[4]) / (2 * hc), dz


def log_j_grad(x: np.ndarray, y: np.ndarray, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``ln J`` and its (n, 4) derivatives in (r, alpha, s, beta): the explicit terms of
    ``_branch`` analytically, ``ln H`` through ``_log_h_grad`` and the chain rule."""
    r, alpha, s, beta = _params(params)
    base, e, c, z, om = _branch(x, y, r, alpha, s, beta)
    lh, dh_de, dh_dc, dh_dz = _log_h_grad(e, c, z, om)
    d, ay, by = r + s + x, alpha + y, beta + y
    g = np.empty((x.size, 4))
    if alpha <= beta:
        g[:, 0] = -np.log(ay) - 1.0 / d + dh_dc
        g[:, 1] = (1.0 - r - x) / ay - dh_dz / by
        g[:, 2] = -np.log(by) - 1.0 / d + dh_de + dh_dc
        g[:, 3] = -(s + 1.0) / by + dh_dz * ay / by**2
    else:
        g[:, 0] = -np.log(ay) - 1.0 / d + dh_de + dh_dc
        g[:, 1] = -(r + x) / ay + dh_dz * by / ay**2
        g[:, 2] = -np.log(by) - 1.0 / d + dh_dc
        g[:, 3] = -s / by - dh_dz / ay
    return base + lh, g


# ------------------------------------------------------------------- quadrature fallback

QUAD_NODES = 96
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(QUAD_NODES)
QUAD_TAIL = 46.0  # the right piece is integrated until the integrand has fallen by e^-46


def _log_h_quad(e: np.ndarray, c: np.ndarray, om: np.ndarray) -> np.ndarray:
    """ln 2F1(1, e; c; 1-om) by quadrature, for where scipy's 2F1 fails (large e or c near z = 1).

    H = (c-1) int_0^inf exp(g(u)) du, g(u) = -(c-1) u - e ln(om + (1-om) e^-u) (Euler's
    integral with the variable 1-v = e^-u) is log-concave with g(0) = 0 and its maximum at
    u* = ln((1-om)(e-c+1) / ((c-1) om)) when that is positive. On each side of u* the
    variable w = sqrt(g(u*) - g(u)) turns the integrand into exp(-w^2) 2w/|g'(u)|, smooth in w,
    integrated by Gauss-Legendre; u(w) by Newton's method (monotone on a concave function).
    Accurate to ~1e-6 in ln H where scipy fails (checked against mpmath in the tests).
    """
    d, z = c - 1.0, 1.0 - om

    def g(u: np.ndarray) -> np.ndarray:
        return -d * u - e * np.log(om + z * np.exp(-u))

    def dg(u: np.ndarray) -> np.ndarray:
        q = z * np.exp(-u)
        return -d + e * q / (om + q)

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d * om / (z * (e - d))
        mode = np.where((e > d) & (ratio < 1.0), -np.log(ratio), 0.0)
    top = g(mode)
    total = np.zeros(e.shape)
    for right in (True, False):
        span = np.full(e.shape, np.sqrt(QUAD_TAIL)) if right else np.sqrt(np.maximum(top, 0.0))
        w = (_GL_NODES[:, None] + 1.0) / 2.0 * span
        target = top - w**2
        if right:  # left of the root: the first Newton step overshoots, then converges from the right
            u = mode + w**2 / d
        else:  # the chord bound puts the start right of the root
            u = mode * (1.0 - w**2 / np.where(top > 0, top, 1.0))
        with np.errstate(all="ignore"):
            for _ in range(60):
                step = (g(u) - target) / dg(u)
                u = u - np.where(np.isfinite(step), step, 0.0)
                if not right:
                    u = np.clip(u, 0.0, mode)
                if np.all(np.abs(step[np.isfinite(step)]) <= 1e-13 * (1.0 + np.abs(u[np.isfinite(step)]))):
                    break
            f = np.exp(-w**2) * 2.0 * w / np.abs(dg(u))
        total += np.where(span > 0, (_GL_WEIGHTS[:, None] / 2.0 * span * f).sum(axis=0), 0.0)
    return np.log(d) + top + np.log(total)


# ------------------------------------------------------------------------- log-likelihood

class _Pairs:
    """The distinct (x, y) pairs, y in t_x and T, of a set of histories, and each row's two."""

    def __init__(self, h: Histories) -> None:
        (self.x, self.y), inv = unique_rows(np.concatenate([h.x, h.x]), np.concatenate([h.t_x, h.T]))
        self.i_tx, self.i_T = inv[: h.x.size], inv[h.x.size:]
        (self.ux,), self.inv_x = unique_rows(h.x)

    def scaled(self, factor: float) -> _Pairs:
        """The same pairs with y multiplied by ``factor`` (grouping does not change)."""
        out = copy.copy(self)
        out.y = self.y * factor
        return out


def _grouped_loglik(h: Histories, pairs: _Pairs | None = None, per_row: bool = False) -> LogLik:
    """Log-likelihood function ``f(theta, grad)`` of grouped histories (time unit of ``h``):
    per-row ll and, with ``grad``, the weighted total gradient (k,) (``per_row``: the (rows, k)
    per-row gradient). ``pairs`` may be passed when known (rescaling time keeps them)."""
    pairs = pairs if pairs is not None else _Pairs(h)
    x, T, w = h.x, h.T, h.weight
    same = pairs.i_tx == pairs.i_T  # t_x == T: J(t_x) - J(T) = 0
    n_pairs = pairs.x.size

    def f(theta: np.ndarray, grad: bool) -> Any:
        with np.errstate(divide="ignore", under="ignore"):
            return _f(theta, grad)

    def _f(theta: np.ndarray, grad: bool) -> Any:
        r, alpha, s, beta = (float(v) for v in theta)
        la_T, lb_T = np.log(alpha + T), np.log(beta + T)
        f_term = -(r + x) * la_T - s * lb_T
        # rows whose s (J(t_x) - J(T)) is below e^-40 of the first term drop it (exact in double
        # precision); near the no-dropout edge that is nearly every row and 2F1 is skipped
        ub = _log_sj_bound(pairs.x, pairs.y, r, alpha, s, beta)
        rows = ~same & (ub[pairs.i_tx] - f_term > LOG_NEGLIGIBLE)
        need = np.zeros(n_pairs, dtype=bool)
        need[pairs.i_tx[rows]] = need[pairs.i_T[rows]] = True
        lj = np.full(n_pairs, -np.inf)
        gj = np.zeros((n_pairs, 4))
        if need.any() and grad:
            lj[need], gj[need] = log_j_grad(pairs.x[need], pairs.y[need], theta)
        elif need.any():
            lj[need] = log_j(pairs.x[need], pairs.y[need], theta)
        lj1, lj2 = lj[pairs.i_tx], lj[pairs.i_T]
        log_d = np.full(x.size, -np.inf)
        log_d[rows] = lj1[rows] + np.log1p(-np.exp(np.minimum(lj2[rows] - lj1[rows], 0.0)))
        a1 = (gammaln(r + pairs.ux) - gammaln(r))[pairs.inv_x] + r * np.log(alpha) + s * np.log(beta)
        log_b = np.logaddexp(f_term, np.log(s) + log_d)
        ll = a1 + log_b
        if not grad:
            return ll
        p_alive = np.exp(f_term - log_b)
        # the J terms: s J(y) / B times d ln J(y) / d theta, zero where the difference was dropped
        sj1 = np.where(rows, np.exp(np.log(s) + lj1 - log_b), 0.0)
        sj2 = np.where(rows, np.exp(np.log(s) + lj2 - log_b), 0.0)
        g = np.stack([
            (psi(r + pairs.ux) - psi(r))[pairs.inv_x] + np.log(alpha) - p_alive * la_T,
            r / alpha - p_alive * (r + x) / (alpha + T),
            np.log(beta) - p_alive * lb_T + np.exp(log_d - log_b),
            s / beta - p_alive * s / (beta + T),
        ])
        if per_row:
            return ll, g.T + sj1[:, None] * gj[pairs.i_tx] - sj2[:, None] * gj[pairs.i_T]
        by_pair = np.bincount(pairs.i_tx, w * sj1, n_pairs) - np.bincount(pairs.i_T, w * sj2, n_pairs)
        return ll, g @ w + by_pair @ gj
    return f


def loglik(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, grad: bool = False) -> Any:
    """Per-customer log-likelihood of ``(x, t_x, T)``, params = (r, alpha, s, beta); with ``grad``
    also the (n, 4) matrix of its derivatives in the parameters."""
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    h, inverse = Histories.group_with_inverse(x, t_x, T)
    with np.errstate(divide="ignore", under="ignore"):
        out = _grouped_loglik(h, per_row=True)(np.asarray(params, dtype=float), grad)
    if not grad:
        return out[inverse]
    return out[0][inverse], out[1][inverse]


def _nbd_loglik(h: Histories) -> LogLik:
    """Log-likelihood of the NBD, the s -> 0 limit of Pareto/NBD (no dropout), theta = (r, alpha):
    ln G(r+x) - ln G(r) + r ln alpha - (r+x) ln(alpha+T); with ``grad`` the weighted total gradient."""
    (ux,), inv = unique_rows(h.x)

    def f(theta: np.ndarray, grad: bool) -> Any:
        r, alpha = (float(v) for v in theta)
        la_T = np.log(alpha + h.T)
        ll = (gammaln(r + ux) - gammaln(r))[inv] + r * np.log(alpha) - (r + h.x) * la_T
        if not grad:
            return ll
        g = np.stack([(psi(r + ux) - psi(r))[inv] + np.log(alpha) - la_T, r / alpha - (r + h.x) / (alpha + h.T)])
        return ll, g @ h.weight
    return f


# ------------------------------------------------------------------------------------ fit

NBD_STARTS = [np.log([1.0, 1.0]), np.log([0.3, 5.0])]
EDGE_SHARE = 1e-4  # a search path whose dropout share within max(T) falls below this heads to the NBD edge


def _edge(h: Histories) -> tuple[np.ndarray, float]:
    """The no-dropout edge on ``h``: (r, alpha) of the NBD fit and its mean negative log-likelihood."""
    nbd = maximise(_nbd_loglik, h, NBD_STARTS, ("r", "alpha"))
    return np.array(nbd.params), -nbd.log_likelihood / h.customers


def dropout_share(params: Any, horizon: float) -> float:
    """Share of customers expected to drop out within ``horizon`` after their first purchase:
    1 - (beta / (beta + horizon))^s."""
    _r, _alpha, s, beta = _params(params)
    return float(-np.expm1(s * np.log(beta / (beta + horizon))))


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> Fit:
    """MLE of (r, alpha, s, beta) in the time unit of the data (lifetimes' ParetoNBDFitter, no
    penalizer).

    s -> 0 (or beta -> inf) is the no-dropout edge of the model, where it is the NBD and beta is
    not identified. It is fitted first in closed form (two parameters); a multi-start search path
    that reaches a dropout share below EDGE_SHARE without beating the edge is abandoned (there
    2F1 gets slow and the likelihood flat). When no interior optimum beats the edge, the fit
    returns the edge: (r, alpha) of the NBD, s = e^-25, beta at its upper bound, at_bound ("s",).
    r or alpha at the edge of the search box is not converged.
    """
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    check_inputs(x, t_x, T)
    scale = FIT_SCALE_T / float(T.max())
    days = Histories.group(x, t_x, T, weights)
    pairs = _Pairs(days)
    scaled = days.scaled(scale)
    sample = subsample(x, t_x * scale, T * scale) if weights is None else None
    scaled_pairs = pairs.scaled(scale)
    edges: dict[int, tuple[np.ndarray, float]] = {}

    def make(h: Histories) -> LogLik:
        return _grouped_loglik(h, scaled_pairs if h is scaled else None)

    def stop(h: Histories) -> StopRule:
        edges[id(h)] = edge = _edge(h)
        return lambda th, value: dropout_share(th, FIT_SCALE_T) < EDGE_SHARE and value >= edge[1] - 1e-12

    fit_ = maximise(make, scaled, STARTS, NAMES, sample, BOUNDS, stop)
    (r0, a0), f_edge = edges[id(scaled)] if id(scaled) in edges else _edge(scaled)
    if fit_.message == ABANDONED or -fit_.log_likelihood / scaled.customers >= f_edge - 1e-12:
        fit_ = Fit((float(r0), float(a0), float(np.exp(-LOG_BOUND)), float(np.exp(BOUNDS[3, 1]))), 0.0, True,
                   "no dropout: the likelihood is highest at s -> 0, the NBD (beta is not identified)",
                   ("s",), NAMES)
    r, alpha, s, beta = fit_.params
    fit_.params = (r, alpha / scale, s, beta / scale)
    fit_.converged = fit_.converged and not {"r", "alpha"} & set(fit_.at_bound)
    with np.errstate(divide="ignore", under="ignore"):
        fit_.log_likelihood = float(days.weight @ _grouped_loglik(days, pairs)(np.array(fit_.params), False))
    return fit_


def no_dropout(params: Any, horizon: float) -> bool:
    """True when the fit found (practically) no dropout: under NO_DROPOUT of customers are
    expected to drop out within ``horizon`` (use max T); the model is then an NBD and beta is
    not identified."""
    return dropout_share(params, horizon) < NO_DROPOUT


# ---------------------------------------------------------------------------- predictions

def _log_p_parts(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln first term, ln s(J(t_x) - J(T))) of the likelihood bracket, per customer; 2F1 is
    evaluated once per distinct (x, y) pair and only where the second term is not negligible."""
    r, alpha, s, beta = _params(params)
    f_term = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    with np.errstate(divide="ignore"):
        need = (t_x < T) & (_log_sj_bound(x, t_x, r, alpha, s, beta) - f_term > LOG_NEGLIGIBLE)
        log_sd = np.full(x.size, -np.inf)
        if need.any():
            m = int(need.sum())
            (px, py), inv = unique_rows(np.concatenate([x[need], x[need]]), np.concatenate([t_x[need], T[need]]))
            lj = log_j(px, py, params)
            lj1, lj2 = lj[inv[:m]], lj[inv[m:]]
            log_sd[need] = np.log(s) + lj1 + np.log1p(-np.exp(np.minimum(lj2 - lj1, 0.0)))
    return f_term, log_sd


def p_alive(params: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T): lifetimes' ``conditional_probability_alive`` (Fader & Hardie
    2005 note, eq. 36-37), the first term's share of the likelihood bracket."""
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    f_term, g_term = _log_p_parts(params, x, t_x, T)
    return expit(f_term - g_term)


def expected_purchases(params: Any, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T]: lifetimes' ``conditional_expected_number_of_purchases_up_to_time``
    (note eq. 41) = p_alive (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)];
    the bracket over (s-1) is written with exprel so s = 1 needs no special case."""
    x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
    r, alpha, s, beta = _params(params)
    lg = np.log1p(t / (beta + T))  # ln((beta+T+t)/(beta+T))
    bracket = (beta + T) * lg * exprel((1.0 - s) * lg)
    return p_alive(params, x, t_x, T) * (r + x) / (alpha + T) * bracket


PMF_NODES = 48
_PMF_X, _PMF_W = np.polynomial.legendre.leggauss(PMF_NODES)


def conditional_log_pmf(params: Any, t: float, k: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                        ) -> np.ndarray:
    """ln P(k purchases in (T, T+t] | x, t_x, T), the holdout likelihood of ``select``.

    P = (1 - p_alive) [k = 0] + p_alive P(k | alive at T). Alive at T, lambda ~ Gamma(r+x, alpha+T)
    and mu ~ Gamma(s, beta+T) independently; purchases are Poisson(lambda) over the remaining
    lifetime, so with NB(k; u) = P(k purchases in u | alive, lambda integrated out)::

        P(k | alive) = NB(k; t) ((beta+T)/(beta+T+t))^s + int_0^t NB(k; u) s (beta+T)^s (beta+T+u)^-(s+1) du

    (the same quantity as lifetimes' conditional_probability_of_n_purchases_up_to_time, note 028,
    without its 2F1 sums: the integral is smooth and Gauss-Legendre with PMF_NODES nodes is exact
    to ~1e-12).
    """
    k, x, t_x, T = (np.asarray(v, dtype=float) for v in (k, x, t_x, T))
    r, alpha, s, beta = _params(params)
    rp, ap, bp = r + x, alpha + T, beta + T

    def log_nb(u: np.ndarray) -> np.ndarray:
        """ln NB(k; u) for u of shape (n,) or (n, nodes)."""
        kk, rr, aa = (v.reshape(v.shape + (1,) * (u.ndim - 1)) for v in (k, rp, ap))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = gammaln(rr + kk) - gammaln(rr) - gammaln(kk + 1) + rr * np.log(aa / (aa + u)) + kk * np.log(u / (aa + u))
        return np.where((kk == 0) & (u == 0), 0.0, out)

    u = t * (_PMF_X + 1.0) / 2.0  # (nodes,)
    log_w = np.log(t * _PMF_W / 2.0)
    inner = log_nb(np.broadcast_to(u, (x.size, PMF_NODES))) + np.log(s) + s * np.log(bp)[:, None] \
        - (s + 1.0) * np.log(bp[:, None] + u) + log_w
    log_alive = np.logaddexp(log_nb(np.full(x.size, t)) + s * np.log(bp / (bp + t)), logsumexp(inner, axis=1))
    f_term, g_term = _log_p_parts(params, x, t_x, T)
    log_pa = -np.logaddexp(0.0, g_term - f_term)  # ln p_alive
    log_dead = g_term - np.logaddexp(f_term, g_term)  # ln (1 - p_alive)
    return np.where(k == 0, np.logaddexp(log_dead, log_pa + log_alive), log_pa + log_alive)

