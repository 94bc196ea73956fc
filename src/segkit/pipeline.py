"""run(): read -> clean -> customer features -> clustering -> validation -> CLV, as one result.

Each step returns a new value and never edits what an earlier step returned; the result is a
frozen ``Segmentation``, and a later step (migration against an earlier run) derives a new one
with ``dataclasses.replace``. Every writer (summary.json, terminal, reports) is a view of that one
object: ``summary(result)`` is the document, and ``result.document`` computes it once per result.
``progress`` is an optional callback ``progress(step: str)`` called as each step starts; the
library never prints.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from segkit import __version__
from segkit.customers import date_coverage as coverage
from segkit.ingest.clean import Cleaned
from segkit.config import Config
from segkit.errors import DataError
from segkit.customers.warnings import catalog_warning, check_dates, derived_warnings, detect_currency, warning, with_chinese
from segkit.i18n import message
from segkit.customers.tiers import apply_scheme, concentration, suggestion_text
from segkit.customers.metrics import LIFECYCLES, CustomerTable, build_customers, with_clusters
from segkit.ingest.read import RawTable, read_input
from segkit.ingest.sources import limits_for
from segkit.outputs.staging import to_jsonable

if TYPE_CHECKING:
    from segkit.models.kmeans import ClusterResult
    from segkit.models.clv import ClvResult
    from segkit.customers.migration import Migration
    from segkit.models.cluster_validation import Validation

Progress = Callable[[str], None]


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
    tiering: dict[str, Any] = field(default_factory=dict)
    currency: str | None = None
    currency_source: str = ""
    warnings: tuple[dict[str, Any], ...] = ()
    excluded_implausible_dates: int = 0
    cluster_features: dict[str, Any] | None = None  # clustering features replacing the RFM ones (customer-level input)

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


def run(
    input_path: str,
    cfg: Config,
    *,
    progress: Progress | None = None,
    stdin: io.BufferedIOBase | None = None,
    cluster: bool = True,
    backtest_days: int | None = None,
) -> Segmentation:
    step = progress or (lambda _s: None)
    step("read")
    result = _customers(input_path, cfg, step, stdin, preload=cluster)
    if cluster:
        result = add_clusters(result, step)
    step("clv")
    return add_clv(result, backtest_days)


def _customers(input_path: str, cfg: Config, step: Progress, stdin: io.BufferedIOBase | None,
               *, preload: bool) -> Segmentation:
    """The read-to-customer-table part, for each engine and input kind."""
    if cfg.engine == "spark" and cfg.input_kind != "customers":
        try:
            raw, cleaned = _spark_lines(input_path, cfg, step)
        except DataError as exc:  # a customer-level table is small: read as the polars engine does
            return _as_customer_table(input_path, cfg, stdin, exc)
        step("customers")
        return _orders(raw, cleaned, cfg)
    if cfg.input_kind == "customers":
        from segkit.ingest.customer_table import run_customers

        return run_customers(input_path, cfg, stdin=stdin)
    try:
        raw = read_input(input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns, stdin=stdin,
                         limits=limits_for(cfg), background=True)
    except DataError as exc:
        return _as_customer_table(input_path, cfg, stdin, exc)
    step("clean")
    from segkit.engines.polars import order_lines

    # The clustering stack (~1 s of imports) loads in a thread while polars works. For a large
    # file it waits for the read to end: the read's group-by is the run's memory peak and the
    # modules' ~100 MB would add to it. A small file has the headroom, and its read hides the imports.
    early = preload and raw.size < PRELOAD_DURING_READ_BELOW
    loader = _Preload("segkit.models.kmeans", "segkit.models.cluster_validation") if early else None
    raw, cleaned = order_lines(raw, cfg, lambda: read_input(
        input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns, stdin=stdin,
        limits=limits_for(cfg)))
    if preload and not early:
        loader = _Preload("segkit.models.kmeans", "segkit.models.cluster_validation")
    step("customers")
    result = _orders(raw, cleaned, cfg)
    if loader is not None:
        loader.join()
    return result


def add_clusters(result: Segmentation, step: Progress) -> Segmentation:
    """k-means on the customer table, then its validation: a new result with both."""
    from segkit.models.kmeans import cluster_customers
    from segkit.models.cluster_validation import validate

    step("cluster")
    clusters = cluster_customers(result.customers, result.config, result.cluster_features)
    step("validate")
    validation = validate(clusters, result.config, result.cleaned.roles)
    return result.with_customers(clusters.customers, clusters=clusters, validation=validation)


def _as_customer_table(input_path: str, cfg: Config, stdin: io.BufferedIOBase | None,
                       exc: DataError) -> Segmentation:
    """An order export that failed to read may be a customer-level table (``input.kind = auto``):
    read it as one when it looks like one, else raise the reader's error. A pipe cannot be read
    twice, so only a regular file is tried again."""
    from segkit.ingest.customer_table import looks_like_customer_table, run_customers

    streamed = input_path == "-" or not Path(input_path).is_file()
    if cfg.input_kind != "auto" or streamed or not looks_like_customer_table(input_path, cfg, exc):
        raise exc
    try:
        return run_customers(input_path, cfg, stdin=stdin, detected=True)
    except DataError:
        raise exc from None


PRELOAD_DURING_READ_BELOW = 256 * 2**20  # bytes of input


class _Preload(threading.Thread):
    """Import the clustering stack (scikit-learn, scipy: about a second of pure Python) in a
    thread while the engine reads the input, which runs in polars without holding the GIL."""

    def __init__(self, *modules: str) -> None:
        super().__init__(daemon=True)
        self.modules = modules
        self.start()

    def run(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except ImportError:
                return  # the step that needs the module imports it again and reports the error


def add_clv(result: Segmentation, holdout_days: int | None = None) -> Segmentation:
    """BG/NBD + Gamma-Gamma on the cleaned lines; CLV columns after churn_risk (SPEC §3, §5).

    A customer-level table has no purchase history: the CLV columns stay empty (the
    customer_input and clv_skipped warnings say why)."""
    from segkit.models.clv import CLV_COLUMNS, attach, run_clv

    if result.input_kind == "customers":
        if holdout_days:
            raise DataError(f"{result.raw.source}: a backtest needs order lines; a customer-level table has none")
        df = result.customers
        cols = [c for c in df.columns if c not in CLV_COLUMNS]
        at = cols.index("churn_risk") + 1
        df = df.with_columns([pl.lit(None, pl.Float64).alias(c) for c in CLV_COLUMNS])
        return result.with_customers(df.select([*cols[:at], *CLV_COLUMNS, *cols[at:]]))
    win = result.table.windows
    clv = run_clv(result.table.customers, win.as_of, result.config.effective)
    if holdout_days:
        from segkit.models.backtest import backtest

        clv = dataclasses.replace(clv, backtest=backtest(result.cleaned.lines, win.as_of, holdout_days,
                                                         result.config.effective))
    return result.with_customers(attach(result.customers, clv), clv=clv)


def _spark_lines(input_path: str, cfg: Config, step: Progress) -> tuple[RawTable, Cleaned]:
    """The spark engine reads and checks every row and sums them to order lines (one row per
    customer, order and date); the polars steps after that are the same for both engines."""
    from segkit.engines.spark import get_session, run as spark_run

    step("session")
    session = get_session(cfg.spark_master or None)
    step("spark")
    out = spark_run(input_path, cfg, session=session, lines=True)
    assert isinstance(out.raw, RawTable) and isinstance(out.cleaned, Cleaned)
    return out.raw, out.cleaned


def _orders(raw: RawTable, cleaned: Cleaned, cfg: Config) -> Segmentation:
    """Customer table of an order-line input, then the guidance steps: plausible dates, tier
    scheme, coverage, currency, concentration."""
    lines, implausible, warnings = check_dates(cleaned.lines, cfg, raw.source)
    cleaned = dataclasses.replace(cleaned, lines=lines)  # later steps (CLV) read only plausible dates
    table = build_customers(lines, cfg, cleaned.roles, raw.source)
    roles = set(cleaned.roles)
    customers, cfg, tiering = apply_scheme(table.customers, cfg, lines, table.windows, roles)
    cov = coverage.assess(lines, table.windows, cfg)
    customers = coverage.apply(customers, cov, cfg, roles, lines)
    table = dataclasses.replace(table, customers=customers)
    currency, source = detect_currency(raw, cfg)
    tiering, guidance = tier_guidance(customers, cfg, cov, tiering, currency)
    return Segmentation(cfg, raw, cleaned, table, notes=tuple(raw.notes), coverage=cov, tiering=tiering,
                        currency=currency, currency_source=source, warnings=(*warnings, *guidance),
                        excluded_implausible_dates=implausible)


def tier_guidance(customers: pl.DataFrame, cfg: Config, cov: dict[str, Any], tiering: dict[str, Any],
                  currency: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tiering with its concentration (when one tier holds most customers or spend), and the
    short_coverage and tier_concentration warnings, for a finished customer table."""
    out = []
    if cov.get("reason"):
        out.append(warning("short_coverage", cov["reason"], cov.get("reason_zh", cov["reason"])))  # catalog texts
    conc = concentration(customers, cfg)
    if conc is None:
        return tiering, out
    names = {t.name: t.zh for t in cfg.tiers}
    by_customers = conc["share_of_customers"] >= conc["share_of_spend"]
    what = "what_customers" if by_customers else "what_spend"
    out.append(catalog_warning(
        "tier_concentration", share=max(conc["share_of_customers"], conc["share_of_spend"]),
        what={"en": message("warning", what, "en"), "zh": message("warning", what, "zh")},
        tier={"en": conc["tier"], "zh": names.get(conc["tier"], conc["tier"])},
        table={"en": suggestion_text(conc["suggested_tiers"], currency),
               "zh": suggestion_text(conc["suggested_tiers"], currency, zh=True)}))
    return {**tiering, "concentration": conc}, out


def _round(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def tier_table(result: Segmentation) -> list[dict[str, Any]]:
    cfg = result.config
    df = result.customers
    total = df["_annual"].sum()
    n = df.height
    g = dict(
        (t, (c, s)) for t, c, s in df.group_by("tier").agg(pl.len(), pl.col("_annual").sum()).iter_rows()
    )
    rows, cum_spend, cum_cust = [], 0, 0
    for t in cfg.tiers:
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
        "as_of": t.windows.as_of.isoformat(),
        "windows": t.windows.as_dict(),
        "input": _input_section(result),
        "input_kind": result.input_kind,
        "currency": result.currency,
        "currency_source": result.currency_source or None,
        "coverage": to_jsonable(result.coverage),
        "tiering": to_jsonable(result.tiering),
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
    doc.update(_model_sections(result))
    warnings = [*result.warnings]
    if result.clv is not None:
        from segkit.models.clv import skipped_warnings

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
        "notes": list(raw.notes),  # e.g. mixed encodings
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
    return doc


def _value_at_risk(result: Segmentation) -> dict[str, Any]:
    """clv.value_at_risk (SPEC §3): per tier, priced by p_alive or by the recency level."""
    from segkit.models import value_at_risk as var

    tiers = [t.name for t in result.config.tiers]
    return {"value_at_risk": var.by_tier(result.customers, result.clv, tiers),
            "value_at_risk_rule": var.rule(result.clv)}
