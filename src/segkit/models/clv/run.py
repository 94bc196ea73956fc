"""Who is still a customer and what they are worth: a counting model (BG/NBD by default;
Pareto/NBD, MBG/NBD, or ``auto``: ``clv.model``) and Gamma-Gamma (SPEC §3, CLV, CLV models).

Conventions are those of the ``lifetimes`` package with daily periods, so the numbers can be
checked against it:

- a purchase day is a day on which the customer's net amount is positive (returns and credit
  notes are not purchases; a day whose returns outweigh its purchases is not a purchase day);
- ``repeat_purchases`` = purchase days - 1, ``t_last`` = days from the first to the last purchase
  day, ``T`` = days from the first purchase day to ``as_of``;
- ``repeat_value`` = mean net amount of the repeat purchase days (the first day is left out).

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") is fitted by maximum
likelihood on every customer with a purchase; Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and
CLV") on the repeat customers whose ``repeat_value`` is positive. With more than
``clustering.fit_sample`` such customers a fit runs on a fixed-seed sample of that many of them
(``fit_rows``, SPEC §9) and every customer is still scored with the fitted parameters. Both
log-likelihoods are vectorised numpy/scipy.special code with analytic gradients, minimised over the logarithms of the
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
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from segkit.config import ClvSettings
from segkit.models.clv.fitting import Fit, sample_rows
from segkit.models.clv.gamma_gamma import fit_gamma_gamma, gg_expected_value
from segkit.models.clv.inputs import CUSTOMER_INPUTS, inputs_from_base
from segkit.models.clv.registry import DEFAULT, ModelSpec, get

CLV_COLUMNS = ("p_alive", "expected_purchases", "expected_purchase_value", "predicted_revenue")
CHURN_LEVELS = ("high", "medium", "low")
DISCOUNT_STEP_DAYS = 30



@dataclass
class ClvResult:
    settings: ClvSettings
    values: pl.DataFrame  # customer_id + CLV_COLUMNS (+ repeat_purchases), for customers with a purchase
    model: str = DEFAULT  # the counting model used (registry name)
    counting: Fit | None = None  # its fit on every customer
    max_T: float = 0.0  # the longest history in days (Pareto/NBD's dropout figure is over it)
    selection: dict[str, Any] | None = None  # clv.model = auto: what was compared and why this model
    gamma_gamma: Fit | None = None
    customers_fitted: int = 0
    repeat_customers: int = 0
    value_customers: int = 0
    independence_r: float | None = None
    skipped_reason: str | None = None
    value_skipped_reason: str | None = None
    backtest: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    fit_sample: int | None = None  # clustering.fit_sample; the fits ran on samples when below the counts
    counting_rows: int = 0  # customers the counting model was fitted on
    value_rows: int = 0  # customers Gamma-Gamma was fitted on

    @property
    def spec(self) -> ModelSpec:
        return get(self.model)

    @property
    def bgnbd(self) -> Fit | None:
        """The counting fit when it is BG/NBD (None for the other models)."""
        return self.counting if self.model == "bgnbd" else None

    @property
    def fitted(self) -> bool:
        return self.counting is not None and self.counting.converged and self.skipped_reason is None

    @property
    def dropout_measure(self) -> tuple[str, float] | None:
        """How much dropout the fit found, as (what the figure is, value): a/(a+b), the mean
        probability of dropping out after a purchase, for BG/NBD and MBG/NBD; the share of
        customers expected to drop out within the longest history for Pareto/NBD."""
        if not self.fitted or self.counting is None:
            return None
        return self.spec.dropout(self.counting.params, self.max_T)

    @property
    def dropout(self) -> float | None:
        measure = self.dropout_measure
        return None if measure is None else measure[1]

    @property
    def churn_from_p_alive(self) -> bool:
        """p_alive decides churn_risk only when the model fitted and found dropout at all."""
        return self.counting is not None and self.fitted and not self.spec.no_dropout(self.counting.params, self.max_T)

    def summary(self) -> dict[str, Any]:
        """summary.json["clv"] (SPEC §5)."""
        doc: dict[str, Any]
        if not self.fitted or self.counting is None:
            doc = {"model": self.model, "skipped_reason": self.skipped_reason,
                   "horizon_days": self.settings.horizon_days}
        else:
            spec = self.spec
            params: dict[str, dict[str, float]] = {spec.name: dict(zip(spec.param_names, self.counting.params))}
            ll = {spec.name: self.counting.log_likelihood}
            models = [spec.label]
            if self.selection is not None:
                models = [str(s["label"]) for s in self.selection["scores"]]
            if self.gamma_gamma is not None and self.value_skipped_reason is None:
                models.append("Gamma-Gamma")
                params["gamma_gamma"] = dict(zip(("p", "q", "v"), self.gamma_gamma.params))
                ll["gamma_gamma"] = self.gamma_gamma.log_likelihood
            measure = self.dropout_measure
            doc = {
                "model": self.model,
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
                "dropout_probability_mean": self.dropout if spec.name != "pareto_nbd" else None,
                "dropout": None if measure is None else {"measure": measure[0], "value": measure[1]},
                "no_dropout": not self.churn_from_p_alive,
            }
        rule = churn_rule(self)
        doc["churn_rule"] = churn_rule_text(rule)
        doc["churn_rule_code"] = rule
        if self.selection is not None:
            doc["selection"] = self.selection
        if self.backtest is not None:
            doc["backtest"] = self.backtest
        sampled = self.sample_doc()
        if sampled is not None:
            doc["fit_sample"] = sampled
        return doc

    def sample_doc(self) -> dict[str, Any] | None:
        """summary.json["clv"]["fit_sample"] when a fit ran on a sample (None otherwise): its size,
        the customers each fit used and a sentence in English and Chinese."""
        counting = self.counting_rows < self.customers_fitted
        value = self.gamma_gamma is not None and self.value_rows < self.value_customers
        if self.fit_sample is None or not (counting or value) or self.counting is None:
            return None
        return {"size": self.fit_sample, "seed": FIT_SAMPLE_SEED, "counting_customers": self.counting_rows,
                "value_customers": self.value_rows if self.gamma_gamma is not None else None,
                "note": f"the CLV models were fitted on a fixed-seed sample of at most {self.fit_sample:,} customers "
                        f"(of {self.customers_fitted:,}); p_alive, expected purchases and value are computed for "
                        "every customer with the fitted parameters",
                "note_zh": f"CLV 模型在固定随机种子抽取的至多 {self.fit_sample:,} 位客户（共 "
                           f"{self.customers_fitted:,} 位）上拟合；存活概率、预期购买次数和价值按拟合参数为每位客户计算"}


def churn_rule(res: ClvResult) -> dict[str, Any]:
    """Which rule churn_risk follows: a code (``p_alive``, ``recency_no_dropout`` or ``recency``) and
    the figures its sentence needs; the sentence itself is in the message catalogs."""
    s = res.settings
    if res.churn_from_p_alive:
        return {"code": "p_alive", "high": s.churn_high, "medium": s.churn_medium}
    if res.fitted and res.dropout_measure is not None:
        measure, value = res.dropout_measure
        return {"code": "recency_no_dropout", "model": res.spec.label, "measure": measure, "dropout": value}
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


def discounted_revenue(spec: ModelSpec, params: tuple[Any, ...], horizon: int, rate: float, x: np.ndarray, t_x: np.ndarray,
                       T: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Expected value of the purchases in the horizon; with a discount rate, each 30-day step's
    expected purchases are discounted at (1 + rate) ** (step end / 365)."""
    if rate == 0:
        return spec.expected(params, horizon, x, t_x, T) * value
    total, before = np.zeros(x.size), np.zeros(x.size)
    for end in [*range(DISCOUNT_STEP_DAYS, horizon, DISCOUNT_STEP_DAYS), horizon]:
        cum = spec.expected(params, end, x, t_x, T)
        total += (cum - before) / (1 + rate) ** (end / 365)
        before = cum
    return total * value


FIT_SAMPLE_SEED = 0  # the fixed seed of the fit samples (as the multi-start sample's)


def fit_rows(n: int, fit_sample: int | None) -> np.ndarray | None:
    """The rows a CLV fit uses out of ``n``: None (all) up to ``fit_sample``, else a fixed-seed sample."""
    return sample_rows(n, fit_sample, FIT_SAMPLE_SEED)


def fit_clv(inputs: pl.DataFrame, s: ClvSettings, model: str | None = None,
            fit_sample: int | None = None) -> ClvResult:
    """Fit the counting model (``model``, else ``s.model``; ``auto`` without a selection falls back
    to the default) and Gamma-Gamma on ``model_inputs`` and predict for every customer in it.
    Each fit runs on a fixed-seed sample of ``fit_sample`` of its customers when it has more."""
    name = model or s.model
    spec = get(DEFAULT if name == "auto" else name)
    x = inputs["repeat_purchases"].to_numpy().astype(float)
    t_x = inputs["t_last"].to_numpy().astype(float)
    T = inputs["T"].to_numpy().astype(float)
    out = ClvResult(s, _empty_values(inputs), model=spec.name, customers_fitted=inputs.height,
                    repeat_customers=int((x > 0).sum()), max_T=float(T.max()) if T.size else 0.0,
                    fit_sample=fit_sample)
    if out.repeat_customers < s.min_repeat_customers:
        out.skipped_reason = (f"{out.repeat_customers} customers bought on more than one day; the model needs "
                              f"at least {s.min_repeat_customers} (clv.min_repeat_customers)")
        return out
    if float(T.max()) <= 0:
        out.skipped_reason = "every first purchase is on the last day; there is no history to fit"
        return out
    rows = fit_rows(x.size, fit_sample)
    out.counting = fit = spec.fit(x, t_x, T) if rows is None else spec.fit(x[rows], t_x[rows], T[rows])
    out.counting_rows = x.size if rows is None else rows.size
    if not fit.converged:
        out.skipped_reason = f"{spec.label} fit did not converge ({fit.message})"
        return out
    params = fit.params
    p_alive = spec.p_alive(params, x, t_x, T)
    expected = spec.expected(params, s.horizon_days, x, t_x, T)
    value, revenue = _value_model(out, inputs, params, x, t_x, T)
    out.values = inputs.select("customer_id", "repeat_purchases").with_columns(
        pl.Series("p_alive", p_alive).fill_nan(None), pl.Series("expected_purchases", expected).fill_nan(None),
        pl.Series("expected_purchase_value", value, dtype=pl.Float64).fill_nan(None),
        pl.Series("predicted_revenue", revenue, dtype=pl.Float64).fill_nan(None),
    )
    return out


def _value_model(out: ClvResult, inputs: pl.DataFrame, params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray,
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
    pick = np.flatnonzero(use)
    rows = fit_rows(pick.size, out.fit_sample)
    pick = pick if rows is None else pick[rows]
    out.value_rows = pick.size
    out.gamma_gamma = fit_gamma_gamma(x[pick], m_all[pick])
    gg = out.gamma_gamma
    if not gg.converged or gg.params[1] <= 1:
        why = "did not converge" if not gg.converged else f"q = {gg.params[1]:.3g} <= 1 leaves the mean value undefined"
        out.value_skipped_reason = f"Gamma-Gamma fit {why}"
        return nan, nan
    m = np.where(use, m_all, 0.0)
    xv = np.where(use, x, 0.0)  # a repeat customer with a non-positive value gets the population mean
    value = gg_expected_value(gg.params, xv, m)
    revenue = discounted_revenue(out.spec, params, s.horizon_days, s.annual_discount_rate, x, t_x, T, value)
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
    p_alive for repeat customers when the model fitted.

    Only repeat customers: BG/NBD lets customers drop out only after a repeat purchase, so its
    p_alive is 1 for one-time buyers; Pareto/NBD and MBG/NBD give them a p_alive below 1. To keep
    churn_risk comparable across ``clv.model`` (and across runs that ``auto`` may send to another
    model), one-time buyers keep the recency rule ([churn]) whatever the model."""
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


def run_clv(customers: pl.DataFrame, as_of: dt.date, s: ClvSettings, model: str | None = None,
            fit_sample: int | None = None) -> ClvResult:
    """Both models on the CLV inputs the customer table carries (``_purchase_days``,
    ``_first_purchase_day``, ``_last_purchase_day``, ``_repeat_value``): the order lines are not
    read again. ``fit_sample`` (``clustering.fit_sample``; None: no limit) caps the customers each fit uses."""
    base = customers.select(pl.col("customer_id"), *[pl.col(f"_{c}").alias(c) for c in CUSTOMER_INPUTS])
    inputs = inputs_from_base(base, as_of)
    if not s.enabled:
        res = ClvResult(s, _empty_values(inputs))
        res.skipped_reason = "switched off in the config (clv.enabled = false)"
        return res
    return fit_clv(inputs, s, model, fit_sample)
