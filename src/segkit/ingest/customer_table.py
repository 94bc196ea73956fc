"""Customer-level input: one row per customer (客户销售汇总表) instead of order lines.

Many analysts only have a customer summary: customer, annual sales (or several spend columns, e.g.
by category), order count, last order date. ``input.kind = "customers"`` (``--input-kind
customers``) reads it; with ``auto`` a table without an order date column is read this way.

Columns, by the same alias matching as order exports plus customer-level names:
- customer_id (optional: without one, the row position, 1 for the first data row, is the id);
- spend: one column named like annual sales / sales / amount / 年销售额; without one, every other
  numeric column is a spend column and their sum is the customer's spend (the UCI wholesale file:
  Fresh, Milk, Grocery, Frozen, Detergents_Paper, Delicassen);
- optional: frequency (order count), last_order_date, recency_days, customer_name, channel, region,
  customer_type (codes such as Channel = 1/2 are kept as text attributes).

What it supports: tiers (the spend is the annual spend), R/F/M scores for the metrics present (an
RFM segment and value class need all three), personas on tier and attributes, clustering
(log1p of each spend column, plus log recency and log frequency when present) and validation.
What it cannot: tier migration by date windows, yoy growth and lifecycle (no prior year), churn
risk (no gaps between orders), CLV (no purchase history). Those stay empty, and the summary says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import datetime as dt
import hashlib
import io
from io import BufferedIOBase
from pathlib import Path

import polars as pl

from segkit.ingest.clean import MICRO, MONEY_LIMIT_MICRO, check_money
from segkit.config import Config
from segkit.errors import DataError, InputNotFoundError, option
from segkit.customers.metrics import (CustomerTable, assignment_columns, others_combinations, persona_expr, rfm_scores,
                       score_cut_points, segment_expr, value_class_expr)
from segkit.customers.tiers import Tiering, resolve as resolve_tiers
from segkit.ingest.columns import ALIASES, normalize

if TYPE_CHECKING:
    from segkit.result import Segmentation

EXTRA_ALIASES = {
    "spend": ("annual sales", "annual spend", "annual revenue", "total sales", "spend", "monetary", "sales",
              "amount", "revenue", "年销售额", "年度销售额", "年采购额", "年度采购额", "销售额", "采购额", "金额",
              "销售金额", "价税合计"),
    "frequency": ("frequency", "orders", "order count", "number of orders", "orders count", "订单数", "下单次数",
                  "购买次数", "订单数量"),
    "last_order_date": ("last order date", "last order", "last purchase", "last purchase date", "most recent order",
                        "最近下单日期", "最后下单日期", "最近购买日期", "最近订单日期", "最后交易日期"),
    "recency_days": ("recency", "recency days", "days since last order", "最近购买天数", "距上次购买天数"),
}
TEXT_ROLES = ("customer_id", "customer_name", "channel", "region", "customer_type")


def looks_like_customer_table(input_path: str, cfg: Config, exc: DataError) -> bool:
    """Auto-detection: the order reader failed on a missing column and the table has no order
    date column at all (an order export missing only its customer id stays an error)."""
    text = str(exc)
    if (": no order_date column" not in text and ": no customer_id column" not in text) or "order_date" in cfg.columns:
        return False
    return not any(normalize(h) in DATE_ALIASES for h in _headers(input_path))


DATE_ALIASES = {normalize(a) for a in (*ALIASES["order_date"], "order_date")}


def unrecognised(input_path: str, cfg: Config) -> str | None:
    """For auto-detection: a message when no column of the table is one segkit knows (neither an
    order export's nor a customer table's), so a file of arbitrary columns is not read as
    customers; None when some column maps."""
    from segkit.ingest.columns import _shown

    headers = _headers(input_path)
    if resolve(headers, cfg.columns):
        return None
    return (f"{input_path}: no column is one segkit recognises (columns: {_shown(headers) or 'none'}); expected "
            "order lines with customer_id, order_date and amount (or quantity and unit_price), or a customer table "
            f"with a customer id and a spend column (annual sales, amount); name the columns with {option('columns')} "
            "role=header")


def _headers(input_path: str) -> list[str]:
    p = Path(input_path)
    if p.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".parquet"):
        return _read(input_path, None)[0].columns
    with p.open("rb") as fh:
        head = fh.read(1 << 16)
    text = head.decode("utf-8-sig", errors="replace") if not head.startswith(b"\xff") else ""
    first = text.splitlines()[0] if text else ""
    import csv

    return next(csv.reader([first], delimiter="\t" if first.count("\t") > first.count(",") else ","), [])


def _read(input_path: str, stdin: BufferedIOBase | None) -> tuple[pl.DataFrame, str, int, str, str]:
    """The table with polars' type inference over every row; (frame, source, size, sha256, format)."""
    if input_path == "-":
        data, source, ext = (stdin or __import__("sys").stdin.buffer).read(), "<stdin>", ".csv"
    else:
        p = Path(input_path)
        if not p.is_file():
            raise InputNotFoundError(f"{input_path}: no such file; check the path")
        data, source, ext = p.read_bytes(), input_path, p.suffix.lower()
    sha = hashlib.sha256(data).hexdigest()
    try:
        if ext in (".xlsx", ".xlsm", ".xls"):
            return pl.read_excel(io.BytesIO(data), infer_schema_length=None), source, len(data), sha, "excel"
        if ext == ".parquet":
            return pl.read_parquet(io.BytesIO(data)), source, len(data), sha, "parquet"
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("gb18030")
        sep = "\t" if ext == ".tsv" or text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else ","
        df = pl.read_csv(io.BytesIO(text.encode("utf-8")), separator=sep, infer_schema_length=None,
                         try_parse_dates=True)
        return df, source, len(data), sha, "csv"
    except (pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{source}: cannot read it as a customer table ({str(exc).splitlines()[0]})") from None


def resolve(headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """role -> header for the customer-level roles found (mapping first, then aliases)."""
    index = {normalize(a): r for r in TEXT_ROLES for a in (*ALIASES[r], r)}
    index |= {normalize(a): r for r, aliases in EXTRA_ALIASES.items() for a in (*aliases, r)}
    found = {r: h for r, h in mapping.items() if h in headers}
    if "amount" in found:
        found["spend"] = found.pop("amount")
    for h in headers:
        role = index.get(normalize(h))
        if role and role not in found and h not in found.values():
            found[role] = h
    return found


def _spend_micro(spend: list[str], cfg: Config) -> pl.Expr:
    """A row's spend in micro-units (Float64, not yet rounded)."""
    return pl.sum_horizontal([pl.col(c) for c in spend]) * (cfg.amount_unit * MICRO)


def _rows_kept(df: pl.DataFrame, spend: list[str], source: str, cfg: Config) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows with a usable spend, and the others as rejected rows: a missing or non-numeric
    spend, or one that is not a finite amount segkit can sum exactly (inf, NaN, 1e308)."""
    missing = pl.any_horizontal([pl.col(c).is_null() for c in spend])
    finite = pl.all_horizontal([pl.col(c).is_finite() for c in spend])
    too_large = ~(_spend_micro(spend, cfg).abs() < MONEY_LIMIT_MICRO)
    reason = (pl.when(missing).then(pl.lit("missing or non-numeric spend"))
              .when(~finite).then(pl.lit("spend is not a finite number"))
              .when(too_large).then(pl.lit("amount too large")))
    df = df.with_row_index("row", offset=2).with_columns(reason.alias("_reason"))  # the header is row 1
    rejected = df.filter(pl.col("_reason").is_not_null()).select(
        pl.col("row"), pl.lit("spend").alias("column"), pl.col("_reason").alias("reason"))
    if df.height and rejected.height / df.height > cfg.max_bad_rows:
        raise DataError(f"{source}: {rejected.height:,} of {df.height:,} rows have no usable spend "
                        f"(first: row {rejected['row'][0]}, {rejected['reason'][0]}); fix the spend columns")
    kept = df.filter(pl.col("_reason").is_null()).drop("_reason")
    check_money(source, float(kept.select(_spend_micro(spend, cfg).abs().sum()).item() or 0.0))
    return kept, rejected


def build(df: pl.DataFrame, cfg: Config, source: str) -> tuple[CustomerTable, Tiering, dict[str, Any], list[str],
                                                               dict[str, Any], dict[str, Any]]:
    """The customer table of a customer-level frame.

    Returns the table, its tiering, the column mapping, the spend columns, the clustering features
    and the quality counts.
    """
    found = resolve(df.columns, cfg.columns)
    numeric = [c for c, t in df.schema.items() if t.is_numeric() and c not in found.values()]
    spend = [found["spend"]] if "spend" in found else numeric
    if not spend:
        raise DataError(f"{source}: no spend column (annual sales, amount, 销售额, or numeric columns); "
                        f"name it with {option('columns.amount')}=\"<header>\"")
    data_rows = df.height
    df, rejected = _rows_kept(df.with_columns([pl.col(c).cast(pl.Float64, strict=False) for c in spend]),
                              spend, source, cfg)
    cid = (pl.col(found["customer_id"]).cast(pl.String) if "customer_id" in found
           else (pl.col("row") - 1).cast(pl.String))
    cols = [cid.alias("customer_id"), _spend_micro(spend, cfg).round(0).cast(pl.Int64).alias("_annual"),
            *[pl.col(c).clip(lower_bound=0).log1p().alias(f"_spend:{c}") for c in spend]]
    for role in ("customer_name", "channel", "region", "customer_type"):
        if role in found:
            cols.append(pl.col(found[role]).cast(pl.String).alias(role))
    last = (pl.col(found["last_order_date"]).cast(pl.String).str.slice(0, 10).str.to_date(strict=False)
            if "last_order_date" in found else pl.lit(None, pl.Date))
    cols.append(last.alias("last_order_date"))
    freq = (pl.col(found["frequency"]).cast(pl.Int64, strict=False) if "frequency" in found
            else pl.lit(None, pl.Int64))
    cols.append(freq.alias("frequency"))
    rec = (pl.col(found["recency_days"]).cast(pl.Int64, strict=False) if "recency_days" in found
           else pl.lit(None, pl.Int64))
    cols.append(rec.alias("_recency_given"))
    base = df.select(cols)
    if base["customer_id"].n_unique() != base.height:
        dup = base.filter(pl.col("customer_id").is_duplicated())["customer_id"][0]
        raise DataError(f"{source}: customer id '{dup}' appears twice; a customer-level table has one row per customer")
    tiering = resolve_tiers(cfg, base["_annual"], None)
    table = _table(base, cfg, found, tiering)
    features = {f"log_{c}": pl.col(f"_spend:{c}") for c in spend} if len(spend) > 1 else {
        "log_monetary": pl.col("monetary").clip(lower_bound=0).log1p()}
    if table.customers["recency_days"].null_count() == 0:
        features["log_recency_days"] = pl.col("recency_days").cast(pl.Float64).log1p()
    if table.customers["frequency"].null_count() == 0:
        features["log_frequency"] = pl.col("frequency").cast(pl.Float64).log1p()
    quality = {"rows_read": data_rows + 1, "blank_rows": 0, "totals_rows": 0, "data_rows": data_rows,
               "rejected_rows": rejected.height, "rejected_share": rejected.height / data_rows if data_rows else 0.0,
               "used_rows": data_rows - rejected.height,
               "rejected_reasons": dict(rejected.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
                                        .iter_rows())}
    mapping = {("amount" if r == "spend" else r): h for r, h in found.items()}
    if "customer_id" not in found:
        mapping["customer_id"] = "(row position)"
    return table, tiering, mapping, spend, features, {"quality": quality, "rejected": rejected}


def _table(base: pl.DataFrame, cfg: Config, found: dict[str, Any], tiering: Tiering) -> CustomerTable:
    from segkit.customers.windows import make_windows

    latest = cast(dt.date | None, base["last_order_date"].max())
    as_of = cfg.as_of or (latest + dt.timedelta(days=1) if latest else None)
    win = None if as_of is None else make_windows(cfg, as_of - dt.timedelta(days=1))  # no dates: no as_of
    since = pl.lit(None, pl.Int64) if win is None else (pl.lit(win.as_of) - pl.col("last_order_date")).dt.total_days()
    recency = pl.coalesce(since, pl.col("_recency_given"))
    df = base.with_columns(
        recency.alias("recency_days"), pl.col("_annual").alias("_monetary"), pl.lit(None, pl.Int64).alias("_prior"),
        pl.lit(None, pl.Date).alias("first_order_date"),
    )
    have = {"r": df["recency_days"].null_count() == 0, "f": df["frequency"].null_count() == 0, "m": True}
    df = df.with_columns(pl.col("frequency").fill_null(0)).with_columns(rfm_scores(cfg, df.height))
    df = df.with_columns([pl.when(pl.lit(have[k])).then(pl.col(f"{k}_score")).otherwise(pl.lit(None, pl.Int8))
                          .alias(f"{k}_score") for k in "rfm"])
    if not have["f"]:
        df = df.with_columns(pl.lit(None, pl.Int64).alias("frequency"))
    full = all(have.values())
    means = {k: (float(cast(float, df[k].mean())) if df[k].null_count() < df.height else None)
             for k in ("r_score", "f_score", "m_score")}
    none = pl.lit(None, pl.String)
    value_class = value_class_expr(cast(dict[str, float], means)) if full else none
    df = df.with_columns(
        (pl.concat_str([pl.col("r_score"), pl.col("f_score"), pl.col("m_score")]) if full else none).alias("rfm_score"),
        (segment_expr(cfg) if full else none).alias("rfm_segment"),
        value_class.alias("value_class"),
        tiering.expr().alias("tier"),
        pl.lit(None, pl.Float64).alias("yoy_growth"),
        none.alias("lifecycle"), none.alias("churn_risk"),
        (pl.col("_monetary") / MICRO).alias("monetary"), (pl.col("_annual") / MICRO).alias("annual_spend"),
        pl.lit(None, pl.Float64).alias("prior_annual_spend"),
    )
    present: set[str] = {r for r in ("customer_name", "channel", "region", "customer_type") if r in found}
    df = df.with_columns(persona_expr(cfg, present).alias("persona"))
    df = df.sort(["_annual", "customer_id"], descending=[True, False])
    cut_points = {m: v for m, v in score_cut_points(df).items()
                  if have[{"recency_days": "r", "frequency": "f", "monetary": "m"}[m]]}
    spend_cols = [c for c in df.columns if c.startswith("_spend:")]
    customers = df.select([*assignment_columns(present, clusters=False), "_monetary", "_annual", "_prior", *spend_cols])
    return CustomerTable(customers=customers, windows=win, cut_points=cut_points,
                         others_combinations=others_combinations(cfg) if full else [],
                         score_means={k: v for k, v in means.items() if v is not None})


def run_customers(input_path: str, cfg: Config, *, stdin: BufferedIOBase | None = None, detected: bool = False) -> Segmentation:
    """The pipeline's read-to-customer-table part for a customer-level table (a Segmentation)."""
    from segkit.customers import date_coverage as coverage
    from segkit.ingest.clean import Cleaned
    from segkit.customers.warnings import catalog_warning
    from segkit.i18n import message
    from segkit.ingest.read import RawTable
    from segkit.customers.tiers import tier_guidance
    from segkit.result import Segmentation

    df, source, size, sha, fmt = _read(input_path, stdin)
    table, tiering, mapping, spend, features, q = build(df, cfg, source)
    present: set[str] = {r for r in ("customer_name", "channel", "region", "customer_type") if r in mapping}
    raw = RawTable(source=source, frame=df.lazy(), headers=list(df.columns), mapping=mapping, format=fmt,
                   header_row=1, size=size, sha256=sha)
    cleaned = Cleaned(lines=pl.DataFrame(), rejected=q["rejected"], quality=q["quality"],
                      roles=tuple(r for r in ("channel", "region", "customer_type") if r in present))
    how = "detected: no order date column" if detected else "input.kind = customers"
    notes = [f"{source}: read as a customer-level table, one row per customer ({how}); spend = "
             + " + ".join(spend)]
    if "customer_id" not in {r for r, h in mapping.items() if h != "(row position)"}:
        notes.append(f"{source}: no customer id column; the row position (1 = first data row) is the id")
    cov = coverage.unknown()
    currency = cfg.currency or None
    tiering, guidance = tier_guidance(table.customers, tiering, cfg, cov, currency)
    no_history = {"en": message("warning", "no_purchase_history", "en"),
                  "zh": message("warning", "no_purchase_history", "zh")}
    warnings = (catalog_warning("customer_input"), catalog_warning("clv_skipped", reason=no_history),
                *(w for w in guidance if w["code"] != "short_coverage"))
    return Segmentation(cfg, raw, cleaned, table, notes=tuple(notes), input_kind="customers", coverage=cov,
                        tiering=tiering, currency=currency, currency_source="config" if cfg.currency else "",
                        warnings=warnings, cluster_features=features)
