"""The frozen result of a run (``Segmentation``) and its summary document (summary.json, SPEC §5).

Every writer (summary.json, terminal, reports) is a view of one ``Segmentation``: ``summary(result)``
is the document, and ``result.document`` computes it once per result.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from segkit import __version__
from segkit.customers.profit import has_profit, profit_section
from segkit.config import Config, Tier
from segkit.customers.metrics import LIFECYCLES, CustomerTable, with_clusters
from segkit.customers.tiers import Tiering
from segkit.customers.warnings import derived_warnings, with_chinese
from segkit.errors import render
from segkit.i18n import message
from segkit.ingest.clean import Cleaned
from segkit.ingest.read import RawTable
from segkit.outputs.staging import to_jsonable

if TYPE_CHECKING:
    from segkit.customers.migration import Migration
    from segkit.models.clv.run import ClvResult
    from segkit.models.cluster_validation import Validation
    from segkit.models.kmeans import ClusterResult


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One run's result. Frozen: steps after ``run`` (migration) return a new one. Compared and
    hashed by identity (its tables are polars frames)."""

    config: Config
    raw: RawTable
    cleaned: Cleaned
    table: CustomerTable
    clusters: ClusterResult | None = None
    validation: Validation | None = None
    migration: Migration | None = None  # set by migration.add_migration
    clv: ClvResult | None = None
    notes: tuple[str, ...] = ()
    input_kind: str = "orders"  # "orders" | "customers" (customer-level table)
    coverage: dict[str, Any] = field(default_factory=dict)
    tiering: Tiering | None = None  # the tiers used; None: the config's table
    currency: str | None = None
    currency_source: str = ""
    warnings: tuple[dict[str, Any], ...] = ()
    excluded_implausible_dates: int = 0
    cluster_features: dict[str, Any] | None = None  # clustering features replacing the RFM ones (customer-level input)
    days: pl.DataFrame | None = None  # customer_id, order_date, amount: net per day (CLV selection, backtest)

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers the customers were put in: the config's, quantile bounds, or a preset."""
        return self.config.tiers if self.tiering is None else self.tiering.tiers

    @property
    def customers(self) -> pl.DataFrame:
        return self.table.customers

    @property
    def assignments(self) -> pl.DataFrame:
        """The public columns of assignments.csv, in SPEC order (cluster columns empty when the
        run did not cluster)."""
        df = self.table.customers
        if "cluster" not in df.columns:
            df = with_clusters(df)
        return df.select([c for c in df.columns if not c.startswith("_")])

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        """``summary(self)``, computed once: the result never changes, so neither does its summary.
        Writers read it and never edit it."""
        return summary(self)

    def with_customers(self, customers: pl.DataFrame, **changes: Any) -> Segmentation:
        """A new result whose customer table is ``customers`` (other fields from ``changes``)."""
        return dataclasses.replace(self, table=dataclasses.replace(self.table, customers=customers), **changes)


def _round(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def tier_table(result: Segmentation) -> list[dict[str, Any]]:
    df = result.customers
    total = df["_annual"].sum()
    n = df.height
    g = dict(
        (t, (c, s)) for t, c, s in df.group_by("tier").agg(pl.len(), pl.col("_annual").sum()).iter_rows()
    )
    rows, cum_spend, cum_cust = [], 0, 0
    for t in result.tiers:
        c, s = g.get(t.name, (0, 0))
        cum_spend += s
        cum_cust += c
        rows.append({
            "tier": t.name,
            "zh": t.zh,
            "min": t.min,
            "customers": int(c),
            "share_of_customers": c / n if n else 0.0,
            "annual_spend": s / 1e6,
            "share_of_spend": (s / total) if total > 0 else None,
            "cumulative_share_of_customers": cum_cust / n if n else 0.0,
            "cumulative_share_of_spend": (cum_spend / total) if total > 0 else None,
        })
    return rows


def segment_table(result: Segmentation) -> list[dict[str, Any]]:
    cfg = result.config
    df = result.customers
    n = df.height
    g = {s: (c, m) for s, c, m in
         df.group_by("rfm_segment").agg(pl.len(), pl.col("_monetary").sum()).iter_rows()}
    names = [s.name for s in cfg.segments]
    if "Lost" not in names:
        names.append("Lost")
    names.append("Others")
    zh = {"Others": "其他", "Lost": "流失客户"} | {s.name: s.zh for s in cfg.segments}
    rows = []
    for name in names:
        c, m = g.get(name, (0, 0))
        rows.append({"segment": name, "zh": zh[name], "customers": int(c),
                     "share": c / n if n else 0.0, "monetary": m / 1e6})
    return rows


def count_table(df: pl.DataFrame, col: str, order: list[str] | None = None) -> list[dict[str, Any]]:
    g = dict(df.group_by(col).len().iter_rows())
    keys = order if order is not None else sorted((k for k in g if k is not None), key=str)
    out = [{"value": k, "customers": int(g.get(k, 0))} for k in keys]
    if None in g:
        out.append({"value": None, "customers": int(g[None])})
    return out


def summary(result: Segmentation) -> dict[str, Any]:
    """The summary.json document (SPEC §5)."""
    cfg = result.config
    t = result.table
    df = result.customers
    no_purchase = pl.col("last_order_date").is_null()
    returns_only = df.filter(no_purchase & (pl.col("_monetary") < 0)).height if result.input_kind == "orders" else 0
    doc: dict[str, Any] = {
        "segkit_version": __version__,
        "engine": cfg.engine,
        "as_of": t.windows.as_of.isoformat() if t.windows else None,
        "windows": t.windows.as_dict() if t.windows else None,
        "input": _input_section(result),
        "input_kind": result.input_kind,
        "currency": result.currency,
        "currency_source": result.currency_source or None,
        "coverage": to_jsonable(result.coverage),
        "tiering": to_jsonable(result.tiering.info if result.tiering else {"scheme": cfg.tier_scheme}),
        "customers": df.height,
        "customers_without_purchase": t.no_purchase_customers,
        "customers_returns_only": returns_only,
        "customers_zero_amount_only": t.no_purchase_customers - returns_only,
        "total_monetary": float(df["_monetary"].sum()) / 1e6,
        "total_annual_spend": float(df["_annual"].sum()) / 1e6,
        "tiers": tier_table(result),
        "segments": segment_table(result),
        "segments_others_combinations": t.others_combinations,
        "value_classes": count_table(df, "value_class"),
        "lifecycle": count_table(df, "lifecycle", list(LIFECYCLES)),
        "churn_risk": count_table(df, "churn_risk", ["high", "medium", "low"]),
        "personas": count_table(df, "persona", [p.name for p in cfg.personas]),
        "rfm": {
            "method": cfg.scoring_method,
            "cut_points": t.cut_points,
            "score_means": {k: _round(v) for k, v in t.score_means.items()},
            "population_median_gap_days": t.population_median_gap,
        },
        "data_quality": _data_quality(result),
        "config": to_jsonable(cfg.effective),
    }
    if has_profit(df):
        doc["profit"] = profit_section(df, [t.name for t in result.tiers], [p.name for p in cfg.personas])
    doc.update(_model_sections(result))
    warnings = [*result.warnings]
    if result.clv is not None:
        from segkit.models.clv.run import skipped_warnings

        warnings += skipped_warnings(result.clv)
    doc["warnings"] = [with_chinese(w, doc) for w in (*warnings, *derived_warnings(doc))]
    return doc


def _input_section(result: Segmentation) -> dict[str, Any]:
    raw, q = result.raw, result.cleaned.quality
    return {
        "path": raw.source,
        "name": Path(raw.source).name if raw.source != "<stdin>" else "-",
        "size": raw.size,
        "sha256": raw.sha256,
        "format": raw.format,
        "encoding": raw.encoding,
        "sheet": raw.sheet,
        "header_row": raw.header_row,
        "columns": raw.mapping,
        "rows": q["data_rows"],
        "rejected_rows": q["rejected_rows"],
        "notes": [render(n) for n in raw.notes],  # e.g. mixed encodings
    }


def _data_quality(result: Segmentation) -> dict[str, Any]:
    q, t = result.cleaned.quality, result.table
    return {
        **q,
        "used_rows": q["used_rows"] - t.excluded_after_as_of - result.excluded_implausible_dates,
        "excluded_after_as_of": t.excluded_after_as_of,
        "excluded_implausible_dates": result.excluded_implausible_dates,
        "customers_without_purchase": t.no_purchase_customers,
    }


def _model_sections(result: Segmentation) -> dict[str, Any]:
    """clusters, validation, migration and clv, for the steps that ran."""
    doc: dict[str, Any] = {}
    if result.clusters is not None:
        doc["clusters"] = result.clusters.summary()
    if result.validation is not None:
        doc["validation"] = result.validation.summary()
    if result.migration is not None:
        doc["migration"] = result.migration.summary()
    if result.clv is not None:
        doc["clv"] = result.clv.summary()
    elif result.input_kind == "customers":
        doc["clv"] = {"skipped_reason": message("warning", "no_purchase_history", "en")}
    if result.clv is not None:  # a customer-level table has no churn risk to price
        doc["clv"].update(_value_at_risk(result))
        from segkit.models import outlook

        doc["outlook"] = outlook.summary(result.customers, result.tiers)
    return doc


def _value_at_risk(result: Segmentation) -> dict[str, Any]:
    """clv.value_at_risk (SPEC §3): per tier, priced by p_alive or by the recency level."""
    from segkit.models import value_at_risk as var

    assert result.clv is not None
    tiers = [t.name for t in result.tiers]
    return {"value_at_risk": var.by_tier(result.customers, result.clv, tiers),
            "value_at_risk_rule": var.rule(result.clv)}
