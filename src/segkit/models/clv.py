"""Who is still a customer and what they are worth: BG/NBD and Gamma-Gamma (SPEC §3, CLV).

Conventions are those of the ``lifetimes`` package with daily periods, so the numbers can be
checked against it:

- a purchase day is a day on which the customer's net amount is positive (returns and credit
  notes are not purchases; a day whose returns outweigh its purchases is not a purchase day);
- ``repeat_purchases`` = purchase days - 1, ``t_last`` = days from the first to the last purchase
  day, ``T`` = days from the first purchase day to ``as_of``;
- ``repeat_value`` = mean net amount of the repeat purchase days (the first day is left out).

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") is fitted by maximum
likelihood on every customer with a purchase; Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and
CLV") on the repeat customers whose ``repeat_value`` is positive. Both log-likelihoods are
vectorised numpy/scipy.special code with analytic gradients, minimised over the logarithms of the
parameters with L-BFGS-B from several starting points (Nelder-Mead polishes a start that L-BFGS-B
could not finish). No penalizer. Per-customer outputs:

- ``p_alive``: P(still active | history); 1 for customers with one purchase day (the model lets
  customers drop out only right after a repeat purchase: lifetimes' convention);
- ``expected_purchases``: expected purchase days in the next ``horizon_days``;
- ``expected_purchase_value``: Gamma-Gamma conditional mean value per purchase day (customers with
  one purchase day get the population mean);
- ``predicted_revenue``: expected purchases x expected value, discounted when
  ``annual_discount_rate`` > 0 (purchases are spread over the horizon in 30-day steps).

When the data cannot support a fit the columns stay empty and ``ClvResult.skipped_reason`` says
why; the run goes on.
"""

from __future__ import annotations

from typing import Any

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from segkit.ingest.clean import MICRO
from segkit.config import ClvSettings

CLV_COLUMNS = ("p_alive", "expected_purchases", "expected_purchase_value", "predicted_revenue")
CHURN_LEVELS = ("high", "medium", "low")
LOG_BOUND = 25.0  # parameters are searched in [e^-25, e^25]; a fit that reaches the edge did not converge
DISCOUNT_STEP_DAYS = 30



# ---------------------------------------------------------------------------- model inputs

def model_inputs(lines: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """One row per customer with a purchase day before ``as_of``.

    ``lines``: customer_id, order_date (date), amount (micro-units), as ``ingest/clean.py`` returns them.
    Returns customer_id, repeat_purchases, t_last, T (whole days, Int64) and repeat_value (mean
    net amount of the repeat purchase days in currency units; null without a repeat purchase).
    """
    days = (
        lines.lazy()
        .filter(pl.col("order_date") < as_of)
        .group_by("customer_id", "order_date")
        .agg(pl.col("amount").sum().alias("net"))
        .filter(pl.col("net") > 0)
    )
    per = days.group_by("customer_id").agg(
        pl.col("order_date").min().alias("first"),
        pl.col("order_date").max().alias("last"),
        pl.len().alias("days"),
        pl.col("net").sum().alias("total"),
        pl.col("net").sort_by("order_date").first().alias("first_net"),
    )
    repeat = (pl.col("days") - 1).cast(pl.Int64)
    return (
        per.select(
            "customer_id",
            repeat.alias("repeat_purchases"),
            (pl.col("last") - pl.col("first")).dt.total_days().cast(pl.Int64).alias("t_last"),
            (pl.lit(as_of) - pl.col("first")).dt.total_days().cast(pl.Int64).alias("T"),
            pl.when(repeat > 0)
            .then((pl.col("total") - pl.col("first_net")).cast(pl.Float64) / MICRO / repeat)
            .alias("repeat_value"),
        )
        .sort("customer_id")
        .collect()
    )


CUSTOMER_INPUTS = ("purchase_days", "first_purchase_day", "last_purchase_day", "repeat_value")


def inputs_from_base(base: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """The same model inputs from an engine's customer base table (columns purchase_days,
    first_purchase_day, last_purchase_day, repeat_value in micro-units: the summed net of the
    purchase days after the first), for when the order lines are not kept."""
    repeat = (pl.col("purchase_days") - 1).cast(pl.Int64)
    return (
        base.filter(pl.col("purchase_days") > 0)
        .select(
            "customer_id",
            repeat.alias("repeat_purchases"),
            (pl.col("last_purchase_day") - pl.col("first_purchase_day")).dt.total_days().cast(pl.Int64).alias("t_last"),
            (pl.lit(as_of) - pl.col("first_purchase_day")).dt.total_days().cast(pl.Int64).alias("T"),
            pl.when(repeat > 0).then(pl.col("repeat_value").cast(pl.Float64) / MICRO / repeat).alias("repeat_value"),
        )
        .sort("customer_id")
    )


# --------------------------------------------------------------------------------- BG/NBD

def _by_count(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct purchase counts and the index of each customer's: the special functions of the
    likelihoods depend on the parameters and the count only, so they are evaluated once per count."""
    ux, inv = np.unique(x, return_inverse=True)
    return ux, inv


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
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(_a, _b, _c, z))
        alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log1p(-z)
    ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, alt)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))
    denom = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return first * second / denom


# ----------------------------------------------------------------------------- Gamma-Gamma

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

@dataclass
class Fit:
    params: tuple[float, ...]
    log_likelihood: float
    converged: bool
    message: str = ""
    at_bound: tuple[str, ...] = ()  # parameters that ran to the edge of the search box


GRAD_TOL = 1e-6  # largest |d mean-ll / d log-parameter| accepted as a stationary point
# loglik(theta, grad, rows): per-row log-likelihood (and its gradient with grad) for the rows selected
LogLik = Callable[[np.ndarray, bool, "np.ndarray | None"], Any]
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]

MULTISTART_SAMPLE = 5000  # starts are compared on a fixed-seed sample of this many customers


def _objective(loglik: Callable[[np.ndarray, bool], Any], n: int) -> Objective:
    """Mean negative log-likelihood over log-parameters, with its gradient (as lifetimes, the mean
    keeps the scale independent of n)."""
    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(z)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, g = loglik(theta, True)
        value = -ll.sum() / n
        if not np.isfinite(value):
            return 1e300, np.zeros_like(z)
        return value, -(g.sum(axis=0) * theta) / n
    return f


def _projected(z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The gradient with the components that push against a bound zeroed (a boundary optimum)."""
    low, high = z <= -LOG_BOUND + 1e-6, z >= LOG_BOUND - 1e-6
    return np.where((low & (g > 0)) | (high & (g < 0)), 0.0, g)


def _minimise(f: Objective, z0: np.ndarray) -> tuple[np.ndarray, float, bool, str]:
    """L-BFGS-B; a line search that stops on a flat ridge still counts when the projected gradient
    is ~0; otherwise Nelder-Mead continues from where it stopped."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    bounds = [(-LOG_BOUND, LOG_BOUND)] * z0.size
    # L-BFGS-B's tiny BLAS calls cost milliseconds each when BLAS wakes its thread pool
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9})
    z, msg = res.x, str(res.message)
    if np.max(np.abs(_projected(z, f(z)[1]))) < GRAD_TOL:
        return z, float(res.fun), True, msg
    nm = minimize(lambda v: f(np.clip(v, -LOG_BOUND, LOG_BOUND))[0], z, method="Nelder-Mead",
                  options={"maxfev": 1500, "xatol": 1e-9, "fatol": 1e-14})
    z = np.clip(nm.x, -LOG_BOUND, LOG_BOUND)
    value, g = f(z)
    return z, float(value), bool(np.max(np.abs(_projected(z, g))) < GRAD_TOL), f"{msg}; Nelder-Mead: {nm.message}"


def maximise(loglik: LogLik, starts: list[np.ndarray], n: int, names: tuple[str, ...]) -> Fit:
    """Maximum likelihood over log-parameters from several starts.

    ``loglik(theta, grad, rows)`` returns per-row ll and d ll / d theta for the rows selected
    (``rows`` None = all). With more than MULTISTART_SAMPLE rows the starts are compared on a
    fixed-seed sample and the best sample optimum is refined on all rows (the others are tried
    in turn when it does not converge there).
    """
    rows = None
    if n > MULTISTART_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(n, MULTISTART_SAMPLE, replace=False))
    m = n if rows is None else rows.size
    f_start = _objective(lambda th, g: loglik(th, g, rows), m)
    tried = sorted((_minimise(f_start, z0) for z0 in starts), key=lambda t: (not t[2], t[1]))
    if rows is not None:
        f_all = _objective(lambda th, g: loglik(th, g, None), n)
        for z, _v, _ok, _msg in tried:
            z, value, ok, msg = _minimise(f_all, z)
            if ok:
                break
        tried = [(z, value, ok, msg)]
    z, value, ok, msg = tried[0]
    edge = tuple(nm for nm, zi in zip(names, z) if abs(zi) >= LOG_BOUND - 1e-3)
    return Fit(tuple(float(v) for v in np.exp(z)), -value * n, ok, msg, edge)


BGNBD_STARTS = [np.log([1.0, 1.0, 1.0, 1.0]), np.log([0.5, 2.0, 0.5, 2.0]), np.log([0.2, 0.5, 2.0, 8.0])]
GG_STARTS = [np.log([1.0, 1.0, 1.0]), np.log([5.0, 3.0, 2.0]), np.log([0.5, 5.0, 10.0])]
NO_DROPOUT = 1e-6  # a / (a + b) below this: the BG/NBD found no dropout (it is then an NBD)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Fit:
    """MLE of (r, alpha, a, b) in days. Time is rescaled to max(T) = 10 while fitting (as lifetimes
    does), which changes only alpha's scale. a -> 0 (with b free) is the no-dropout edge of the
    model and a valid optimum; r or alpha at the edge is not."""
    scale = 10.0 / float(T.max())
    xs, ts, Ts = x.astype(float), t_x * scale, T * scale
    counts = _by_count(xs)

    def loglik(th: np.ndarray, grad: bool, rows: np.ndarray | None) -> Any:
        if rows is None:
            return bgnbd_loglik(th, xs, ts, Ts, grad, counts)
        return bgnbd_loglik(th, xs[rows], ts[rows], Ts[rows], grad)

    fit = maximise(loglik, BGNBD_STARTS, x.size, ("r", "alpha", "a", "b"))
    r, alpha, a, b = fit.params
    fit.params = (r, alpha / scale, a, b)
    fit.converged = fit.converged and not {"r", "alpha"} & set(fit.at_bound)
    # in days the log-likelihood differs from the rescaled one by the Jacobian of the rescaling
    fit.log_likelihood = float(bgnbd_loglik(np.array(fit.params), xs, t_x.astype(float), T.astype(float),
                                            counts=counts).sum())
    return fit


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


# ------------------------------------------------------------------------------ the step

@dataclass
class ClvResult:
    settings: ClvSettings
    values: pl.DataFrame  # customer_id + CLV_COLUMNS (+ repeat_purchases), for customers with a purchase
    bgnbd: Fit | None = None
    gamma_gamma: Fit | None = None
    customers_fitted: int = 0
    repeat_customers: int = 0
    value_customers: int = 0
    independence_r: float | None = None
    skipped_reason: str | None = None
    value_skipped_reason: str | None = None
    backtest: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fitted(self) -> bool:
        return self.bgnbd is not None and self.bgnbd.converged and self.skipped_reason is None

    @property
    def dropout(self) -> float | None:
        """a / (a + b): the mean probability of dropping out after a purchase."""
        if not self.fitted or self.bgnbd is None:
            return None
        _r, _alpha, a, b = self.bgnbd.params
        return a / (a + b)

    @property
    def churn_from_p_alive(self) -> bool:
        """p_alive decides churn_risk only when the model fitted and found dropout at all."""
        dropout = self.dropout  # None unless the model fitted
        return dropout is not None and dropout >= NO_DROPOUT

    def summary(self) -> dict[str, Any]:
        """summary.json["clv"] (SPEC §5)."""
        doc: dict[str, Any]
        if not self.fitted or self.bgnbd is None:
            doc = {"skipped_reason": self.skipped_reason, "horizon_days": self.settings.horizon_days}
        else:
            params: dict[str, dict[str, float]] = {"bgnbd": dict(zip(("r", "alpha", "a", "b"), self.bgnbd.params))}
            ll = {"bgnbd": self.bgnbd.log_likelihood}
            models = ["BG/NBD"]
            if self.gamma_gamma is not None and self.value_skipped_reason is None:
                models.append("Gamma-Gamma")
                params["gamma_gamma"] = dict(zip(("p", "q", "v"), self.gamma_gamma.params))
                ll["gamma_gamma"] = self.gamma_gamma.log_likelihood
            doc = {
                "models": models,
                "params": params,
                "log_likelihood": ll,
                "horizon_days": self.settings.horizon_days,
                "annual_discount_rate": self.settings.annual_discount_rate,
                "customers_fitted": self.customers_fitted,
                "repeat_customers": self.repeat_customers,
                "value_customers": self.value_customers,
                "value_skipped_reason": self.value_skipped_reason,
                "independence_check": {
                    "pearson_r_frequency_value": self.independence_r,
                    "note": "Gamma-Gamma assumes the value per purchase does not depend on purchase "
                            f"frequency; |r| above {INDEPENDENCE_WARN} raises the warning clv_value_dependence.",
                },
                "dropout_probability_mean": self.dropout,
                "no_dropout": not self.churn_from_p_alive,
            }
        rule = churn_rule(self)
        doc["churn_rule"] = churn_rule_text(rule)
        doc["churn_rule_code"] = rule
        if self.backtest is not None:
            doc["backtest"] = self.backtest
        return doc


def churn_rule(res: ClvResult) -> dict[str, Any]:
    """Which rule churn_risk follows: a code (``p_alive``, ``recency_no_dropout`` or ``recency``) and
    the figures its sentence needs; the sentence itself is in the message catalogs."""
    s = res.settings
    if res.churn_from_p_alive:
        return {"code": "p_alive", "high": s.churn_high, "medium": s.churn_medium}
    if res.fitted:
        return {"code": "recency_no_dropout", "dropout": res.dropout}
    return {"code": "recency"}


def churn_rule_text(rule: dict[str, Any], lang: str = "en") -> str:
    """The churn rule in words, in the report language."""
    from segkit.i18n import message

    fields = {k: v for k, v in rule.items() if k != "code"}
    return message("ui", f"churn_rule_{rule['code']}", lang, **fields)


def _empty_values(inputs: pl.DataFrame) -> pl.DataFrame:
    return inputs.select(
        "customer_id", "repeat_purchases",
        *[pl.lit(None, pl.Float64).alias(c) for c in CLV_COLUMNS],
    )


def discounted_revenue(params: tuple[Any, ...], horizon: int, rate: float, x: np.ndarray, t_x: np.ndarray,
                       T: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Expected value of the purchases in the horizon; with a discount rate, each 30-day step's
    expected purchases are discounted at (1 + rate) ** (step end / 365)."""
    if rate == 0:
        return bgnbd_expected(params, horizon, x, t_x, T) * value
    total, before = np.zeros(x.size), np.zeros(x.size)
    for end in [*range(DISCOUNT_STEP_DAYS, horizon, DISCOUNT_STEP_DAYS), horizon]:
        cum = bgnbd_expected(params, end, x, t_x, T)
        total += (cum - before) / (1 + rate) ** (end / 365)
        before = cum
    return total * value


def fit_clv(inputs: pl.DataFrame, s: ClvSettings) -> ClvResult:
    """Fit both models on ``model_inputs`` and predict for every customer in it."""
    x = inputs["repeat_purchases"].to_numpy().astype(float)
    t_x = inputs["t_last"].to_numpy().astype(float)
    T = inputs["T"].to_numpy().astype(float)
    out = ClvResult(s, _empty_values(inputs), customers_fitted=inputs.height,
                    repeat_customers=int((x > 0).sum()))
    if out.repeat_customers < s.min_repeat_customers:
        out.skipped_reason = (f"{out.repeat_customers} customers bought on more than one day; the model needs "
                              f"at least {s.min_repeat_customers} (clv.min_repeat_customers)")
        return out
    if float(T.max()) <= 0:
        out.skipped_reason = "every first purchase is on the last day; there is no history to fit"
        return out
    out.bgnbd = bgnbd = fit_bgnbd(x, t_x, T)
    if not bgnbd.converged:
        out.skipped_reason = f"BG/NBD fit did not converge ({bgnbd.message})"
        return out
    params = bgnbd.params
    p_alive = bgnbd_p_alive(params, x, t_x, T)
    expected = bgnbd_expected(params, s.horizon_days, x, t_x, T)
    value, revenue = _value_model(out, inputs, params, x, t_x, T)
    out.values = inputs.select("customer_id", "repeat_purchases").with_columns(
        pl.Series("p_alive", p_alive).fill_nan(None), pl.Series("expected_purchases", expected).fill_nan(None),
        pl.Series("expected_purchase_value", value, dtype=pl.Float64).fill_nan(None),
        pl.Series("predicted_revenue", revenue, dtype=pl.Float64).fill_nan(None),
    )
    return out


def _value_model(out: ClvResult, inputs: pl.DataFrame, bgnbd_params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray,
                 T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-Gamma on repeat customers with a positive repeat value; (value, revenue) per customer
    or two arrays of NaN (-> null) with ``value_skipped_reason`` set."""
    s = out.settings
    m_all = inputs["repeat_value"].fill_null(0.0).to_numpy()
    use = (x > 0) & (m_all > 0)
    out.value_customers = int(use.sum())
    nan = np.full(x.size, np.nan)
    if out.value_customers < s.min_repeat_customers:
        out.value_skipped_reason = (f"{out.value_customers} repeat customers with a positive value; "
                                    f"the value model needs at least {s.min_repeat_customers}")
        return nan, nan
    if np.ptp(x[use]) > 0 and np.ptp(m_all[use]) > 0:
        out.independence_r = float(np.corrcoef(x[use], m_all[use])[0, 1])
    out.gamma_gamma = fit_gamma_gamma(x[use], m_all[use])
    gg = out.gamma_gamma
    if not gg.converged or gg.params[1] <= 1:
        why = "did not converge" if not gg.converged else f"q = {gg.params[1]:.3g} <= 1 leaves the mean value undefined"
        out.value_skipped_reason = f"Gamma-Gamma fit {why}"
        return nan, nan
    m = np.where(use, m_all, 0.0)
    xv = np.where(use, x, 0.0)  # a repeat customer with a non-positive value gets the population mean
    value = gg_expected_value(gg.params, xv, m)
    revenue = discounted_revenue(bgnbd_params, s.horizon_days, s.annual_discount_rate, x, t_x, T, value)
    return value, revenue


INDEPENDENCE_WARN = 0.3  # |r| of frequency and value above which Gamma-Gamma's assumption is doubtful


def skipped_warnings(res: ClvResult) -> list[dict[str, Any]]:
    """summary.json warnings: clv_skipped (SPEC §10) and clv_value_dependence."""
    out = []
    if res.skipped_reason:
        out.append({"code": "clv_skipped", "message": f"CLV not estimated: {res.skipped_reason}"})
    elif res.value_skipped_reason:
        out.append({"code": "clv_skipped",
                    "message": f"expected value and predicted revenue not estimated: {res.value_skipped_reason}"})
    r = res.independence_r
    if not res.skipped_reason and not res.value_skipped_reason and r is not None and abs(r) > INDEPENDENCE_WARN:
        out.append({"code": "clv_value_dependence",
                    "message": f"purchase frequency and value per purchase are correlated (r = {r:.2f}); Gamma-Gamma "
                               "assumes they are independent, so expected_purchase_value leans toward the average"})
    return out


# --------------------------------------------------------------------- attach to customers

def attach(customers: pl.DataFrame, res: ClvResult) -> pl.DataFrame:
    """A new customer table with the CLV columns after churn_risk, and churn_risk read from
    p_alive for repeat customers when the model fitted."""
    s = res.settings
    vals = res.values.rename({"repeat_purchases": "_repeat_purchases"})
    df = customers.drop([c for c in (*CLV_COLUMNS, "_repeat_purchases") if c in customers.columns])
    df = df.join(vals, on="customer_id", how="left")
    if res.churn_from_p_alive:
        pa = pl.col("p_alive")
        df = df.with_columns(
            pl.when(pl.col("_repeat_purchases").fill_null(0) > 0)
            .then(pl.when(pa < s.churn_high).then(pl.lit("high"))
                  .when(pa < s.churn_medium).then(pl.lit("medium")).otherwise(pl.lit("low")))
            .otherwise(pl.col("churn_risk")).alias("churn_risk")
        )
    cols = [c for c in df.columns if c not in CLV_COLUMNS]
    at = cols.index("churn_risk") + 1
    return df.select([*cols[:at], *CLV_COLUMNS, *cols[at:]])


def run_clv(customers: pl.DataFrame, as_of: dt.date, s: ClvSettings) -> ClvResult:
    """Both models on the CLV inputs the customer table carries (``_purchase_days``,
    ``_first_purchase_day``, ``_last_purchase_day``, ``_repeat_value``): the order lines are not
    read again."""
    base = customers.select(pl.col("customer_id"), *[pl.col(f"_{c}").alias(c) for c in CUSTOMER_INPUTS])
    inputs = inputs_from_base(base, as_of)
    if not s.enabled:
        res = ClvResult(s, _empty_values(inputs))
        res.skipped_reason = "switched off in the config (clv.enabled = false)"
        return res
    return fit_clv(inputs, s)
