"""``clv.model = auto``: fit each counting model on a calibration period, score it on the holdout
that follows, and choose.

Score: the holdout log-likelihood of each customer's number of holdout purchase days,
``sum_i ln P(k_i | x_i, t_x_i, T_i)``. It is a proper score of the whole predictive distribution,
including P(no purchase), which is what p_alive and churn_risk are read from, and it is the
models' own currency (all have four parameters, so no penalty is needed). MAE per customer is
shown beside it but does not decide: it is minimised by the median, so with most customers buying
nothing in a holdout it rewards forecasts shrunk toward 0.

Rule: the model with the highest holdout log-likelihood, but BG/NBD (the default) is kept unless
the winner is better by Vuong's test for non-nested models, ``z = sqrt(n) mean(d) / sd(d)`` with
``d_i`` the per-customer difference, at ``z >= VUONG_Z``: small differences on a noisy holdout
should not flip the model from one run to the next.

Holdout: ``clv.auto_holdout_days`` (90) or a quarter of the covered history, whichever is smaller;
customers first seen in the holdout are left out (they have no calibration history).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from segkit.config import ClvSettings
from segkit.models.clv.inputs import model_inputs
from segkit.models.clv.registry import DEFAULT, MODELS, get

VUONG_Z = 1.96  # one-sided 2.5%: leave the default only on clear evidence
RULE = "highest holdout log-likelihood; leave BG/NBD only when Vuong's z >= 1.96"


@dataclass
class Score:
    model: str
    converged: bool
    params: tuple[float, ...] = ()
    holdout_log_likelihood: float | None = None
    mae: float | None = None
    predicted_total: float | None = None
    per_customer: np.ndarray | None = None
    message: str = ""

    def doc(self) -> dict[str, Any]:
        spec = get(self.model)
        return {"model": self.model, "label": spec.label, "converged": self.converged,
                "params": dict(zip(spec.param_names, self.params)),
                "holdout_log_likelihood": self.holdout_log_likelihood, "mae_per_customer": self.mae,
                "predicted_purchases": self.predicted_total, "message": self.message}


def score(model: str, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, k: np.ndarray, holdout_days: float) -> Score:
    """Fit ``model`` on the calibration histories and score the holdout counts ``k``."""
    spec = get(model)
    fit = spec.fit(x, t_x, T)
    if not fit.converged:
        return Score(model, False, tuple(fit.params), message=f"calibration fit did not converge ({fit.message})")
    ll = spec.log_pmf(fit.params, holdout_days, k, x, t_x, T)
    pred = spec.expected(fit.params, holdout_days, x, t_x, T)
    return Score(model, True, tuple(fit.params), float(ll.sum()), float(np.abs(pred - k).mean()),
                 float(pred.sum()), ll)


def vuong(ll_a: np.ndarray, ll_b: np.ndarray) -> float:
    """Vuong's z for non-nested models: sqrt(n) mean(d) / sd(d), d = ll_a - ll_b (> 0 favours a)."""
    d = ll_a - ll_b
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    return float(np.sqrt(d.size) * d.mean() / sd) if sd > 0 else 0.0


def choose(scores: list[Score], z_needed: float = VUONG_Z) -> tuple[str, float | None, str]:
    """(chosen model, Vuong z of the best against the default or None, the reason in words)."""
    ok = [s for s in scores if s.converged]
    if not ok:
        return DEFAULT, None, f"no model converged on the calibration period; keeping {get(DEFAULT).label}"
    best = max(ok, key=lambda s: s.holdout_log_likelihood or -np.inf)
    base = next((s for s in ok if s.model == DEFAULT), None)
    label, default = get(best.model).label, get(DEFAULT).label
    if base is None:
        return best.model, None, f"{label} has the highest holdout log-likelihood ({default} did not converge)"
    if best.model == DEFAULT:
        return DEFAULT, None, f"{default} has the highest holdout log-likelihood"
    assert best.per_customer is not None and base.per_customer is not None
    z = vuong(best.per_customer, base.per_customer)
    gain = (best.holdout_log_likelihood or 0.0) - (base.holdout_log_likelihood or 0.0)
    chosen = best.model if z >= z_needed else DEFAULT
    verdict = "switching" if chosen == best.model else f"keeping {default} (not significant)"
    return chosen, z, (f"{label} beats {default} by {gain:.1f} in holdout log-likelihood "
                       f"(Vuong z = {z:.2f}, needed {z_needed:g}); {verdict}")


def select_model(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, k: np.ndarray,
                 holdout_days: float) -> tuple[str, dict[str, Any]]:
    """Score every model on calibration histories and holdout counts; (chosen, clv.selection)."""
    scores = [score(m, x, t_x, T, k, holdout_days) for m in MODELS]
    chosen, z, why = choose(scores)
    n, actual = int(x.size), int(k.sum())
    reason = f"{why}; {n:,} customers, holdout {holdout_days:g} days, {actual:,} holdout purchase days"
    return chosen, {"chosen": chosen, "default": DEFAULT, "rule": RULE, "holdout_days": holdout_days,
                    "customers": n, "holdout_purchases": actual, "vuong_z": z, "reason": reason,
                    "scores": [s.doc() for s in scores]}


def holdout_days(first_day: dt.date, as_of: dt.date, s: ClvSettings) -> int:
    """``clv.auto_holdout_days`` or a quarter of the covered history, whichever is smaller."""
    return max(1, min(s.auto_holdout_days, (as_of - first_day).days // 4))


def select_from_lines(lines: pl.DataFrame, as_of: dt.date, s: ClvSettings) -> tuple[str, dict[str, Any]]:
    """Calibration histories and holdout counts from the order lines, then ``select_model``.
    Falls back to the default (with the reason) when the calibration period is too thin."""
    first = lines["order_date"].min()
    days = holdout_days(first if isinstance(first, dt.date) else as_of, as_of, s)
    end = as_of - dt.timedelta(days=days)
    cal = model_inputs(lines, end)
    x, t_x, T = (cal[c].to_numpy().astype(float) for c in ("repeat_purchases", "t_last", "T"))
    base = {"chosen": DEFAULT, "default": DEFAULT, "rule": RULE, "holdout_days": days,
            "calibration_end": end.isoformat(), "customers": cal.height, "scores": [], "vuong_z": None}
    repeat = int((x > 0).sum())
    if repeat < s.min_repeat_customers or not T.size or float(T.max()) <= 0:
        why = (f"{repeat} customers bought on more than one day before {end}; comparing models needs "
               f"{s.min_repeat_customers} (clv.min_repeat_customers); keeping {get(DEFAULT).label}")
        return DEFAULT, base | {"reason": why}
    k = _holdout_counts(lines, cal, end, as_of)
    chosen, doc = select_model(x, t_x, T, k, days)
    return chosen, {**doc, "calibration_end": end.isoformat()}


def _holdout_counts(lines: pl.DataFrame, cal: pl.DataFrame, start: dt.date, end: dt.date) -> np.ndarray:
    """Purchase days in [start, end) of each calibration customer (0 without)."""
    held = (lines.lazy().filter((pl.col("order_date") >= start) & (pl.col("order_date") < end))
            .group_by("customer_id", "order_date").agg(pl.col("amount").sum().alias("net"))
            .filter(pl.col("net") > 0).group_by("customer_id").agg(pl.len().cast(pl.Float64).alias("k"))
            .collect())
    return cal.select("customer_id").join(held, on="customer_id", how="left", maintain_order="left")["k"].fill_null(0.0).to_numpy()
