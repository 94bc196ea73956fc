"""Backtest of the CLV model (SPEC §10): fit on the history before ``as_of - N`` days, predict the
purchase days of the next N days (the holdout), and compare with what happened.

Only customers with a purchase before the holdout are scored (the model cannot predict customers
it has not seen; customers whose first purchase falls in the holdout are counted separately).
A purchase day in the holdout is, as everywhere in the model, a day with positive net amount.
The naive comparison ("each customer keeps repeating at the rate of the calibration period":
repeat purchase days / days since the first purchase x holdout days) shows whether the model adds
anything over a rule of thumb.
"""

from __future__ import annotations

from typing import Any

import datetime as dt

import numpy as np
import polars as pl

from segkit.customers.sums import fsum, group_fsums
from segkit.ingest.clean import MICRO
from segkit.config import ClvSettings, Tier
from segkit.models.outlook import backtest_score
from segkit.models.clv.inputs import model_inputs
from segkit.models.clv.run import fit_clv
from segkit.errors import UsageError, option

TABLE_CAP = 7  # calibration table rows: 0, 1, ..., 6, "7+" repeat purchases
MAX_HOLDOUT_DAYS = 36_525  # a century: longer holdouts leave no history to fit on


def check_holdout(days: int, name: str) -> None:
    """Refuse (exit 2) a holdout that is not 1 .. MAX_HOLDOUT_DAYS days; ``name`` is the setting."""
    if not 1 <= days <= MAX_HOLDOUT_DAYS:
        raise UsageError(f"{option(name)} {days}: give the holdout length in days, 1 to {MAX_HOLDOUT_DAYS:,}")


def holdout_actuals(lines: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """customer_id, actual_purchases (purchase days in [start, end)), actual_revenue (their net)."""
    return (
        lines.lazy()
        .filter((pl.col("order_date") >= start) & (pl.col("order_date") < end))
        .group_by("customer_id", "order_date")
        .agg(pl.col("amount").sum().alias("net"))
        .filter(pl.col("net") > 0)
        .group_by("customer_id")
        .agg(pl.len().cast(pl.Int64).alias("actual_purchases"),
             (pl.col("net").sum().cast(pl.Float64) / MICRO).alias("actual_revenue"))
        .collect()
    )


def calibration_table(df: pl.DataFrame) -> list[dict[str, Any]]:
    bucket = pl.when(pl.col("repeat_purchases") >= TABLE_CAP).then(pl.lit(f"{TABLE_CAP}+")) \
        .otherwise(pl.col("repeat_purchases").cast(pl.String))
    df = df.with_columns(bucket.alias("bucket"), pl.col("repeat_purchases").clip(0, TABLE_CAP).alias("order"))
    # exact sums: a float mean of a group_by changes in its last digit with polars' thread count
    sums = group_fsums(df, ["bucket", "order"], ["predicted", "actual_purchases", "naive"])
    g = df.group_by("bucket", "order").agg(pl.len().alias("customers")).sort("order")
    return [{"repeat_purchases": b, "customers": int(c), "predicted_mean": p / c, "actual_mean": a / c,
             "naive_mean": nv / c}
            for b, o, c in g.iter_rows() for p, a, nv in [sums[(b, o)]]]


def backtest(lines: pl.DataFrame, as_of: dt.date, holdout_days: int, s: ClvSettings,
             tiers: tuple[Tier, ...] = ()) -> dict[str, Any]:
    """The backtest document (also summary.json["clv"]["backtest"] with ``segment --backtest N``);
    with ``tiers`` and a value model, the tier outlook's score too (``models.outlook``)."""
    if holdout_days > (as_of - dt.date.min).days:
        raise UsageError(f"{option('backtest')} {holdout_days}: the holdout starts before year 1; give fewer days")
    start = as_of - dt.timedelta(days=holdout_days)
    doc: dict[str, Any] = {"holdout_days": holdout_days, "calibration_end": start.isoformat(), "as_of": as_of.isoformat()}
    cal = model_inputs(lines, start)
    if cal.height == 0:
        doc["skipped_reason"] = f"no purchase before {start}; choose a shorter holdout"
        return doc
    model = None
    if s.model == "auto":  # chosen on the history before the holdout only: the holdout stays unseen
        from segkit.models.clv.select import select_from_lines

        model, selection = select_from_lines(lines.filter(pl.col("order_date") < start), start, s)
        doc["selection"] = selection
    res = fit_clv(cal, s, model)
    if not res.fitted or res.counting is None:
        doc["skipped_reason"] = res.skipped_reason
        return doc
    params, spec = res.counting.params, res.spec
    x, t_x, T = (cal[c].to_numpy().astype(float) for c in ("repeat_purchases", "t_last", "T"))
    predicted = np.asarray(spec.expected(params, holdout_days, x, t_x, T), dtype=float)
    if not np.isfinite(predicted).all():  # a fit at the edge of its range: no number to score
        bad = int((~np.isfinite(predicted)).sum())
        doc["skipped_reason"] = (f"the {spec.label} fit on the calibration period predicts no finite number of "
                                 f"purchases for {bad:,} of {predicted.size:,} customers "
                                 f"({', '.join(f'{n}={v:.3g}' for n, v in zip(spec.param_names, params))}); "
                                 "choose another holdout length or CLV model")
        return doc
    actual = holdout_actuals(lines, start, as_of)
    df = (
        cal.with_columns(pl.Series("predicted", predicted),
                         pl.Series("naive", x / np.maximum(T, 1) * holdout_days),
                         res.values["expected_purchase_value"])
        .join(actual, on="customer_id", how="left")
        .with_columns(pl.col("actual_purchases").fill_null(0), pl.col("actual_revenue").fill_null(0.0))
    )
    err = (df["predicted"] - df["actual_purchases"]).abs()
    naive_err = (df["naive"] - df["actual_purchases"]).abs()
    doc |= {
        "model": spec.name,
        "params": dict(zip(spec.param_names, params)),
        "customers": cal.height,
        "new_in_holdout": int(actual.join(cal, on="customer_id", how="anti").height),
        "totals": {"predicted_purchases": fsum(df["predicted"].to_list()),
                   "actual_purchases": int(df["actual_purchases"].sum()),
                   "naive_purchases": fsum(df["naive"].to_list())},
        "mae_per_customer": fsum(err.to_list()) / err.len(),
        "naive_mae_per_customer": fsum(naive_err.to_list()) / naive_err.len(),
        "calibration_table": calibration_table(df),
    }
    if res.value_skipped_reason is None:
        doc["totals"]["predicted_revenue"] = fsum((df["predicted"] * df["expected_purchase_value"]).to_list())
        doc["totals"]["actual_revenue"] = fsum(df["actual_revenue"].to_list())
        if tiers:
            doc["outlook"] = backtest_score(df, lines, start, holdout_days, tiers)
    return doc
