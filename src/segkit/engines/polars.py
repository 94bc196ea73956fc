"""The embedded polars engine: input -> (customer base table, quality). Contract in ``__init__``."""

from __future__ import annotations

from typing import BinaryIO

import polars as pl

from ..clean import Cleaned, clean
from ..config import Config
from ..errors import DataError
from ..features import Windows, make_windows
from ..io.read import RawTable, read_input
from . import COUNT_KEYS, InputInfo, Quality


def customer_table(source: str, cfg: Config, *, stdin: BinaryIO | None = None) -> tuple[pl.DataFrame, Quality]:
    raw = read_input(source, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns, stdin=stdin)
    cleaned = clean(raw, cfg)
    return from_cleaned(raw, cleaned, cfg)


def input_info(raw: RawTable) -> InputInfo:
    return InputInfo(raw.source, raw.size, raw.sha256, raw.format, raw.header_row, raw.mapping,
                     headers=raw.headers, encoding=raw.encoding, delimiter=raw.delimiter,
                     sheet=raw.sheet, notes=list(raw.notes))


def from_cleaned(raw: RawTable, cleaned: Cleaned, cfg: Config) -> tuple[pl.DataFrame, Quality]:
    base, windows, excluded, pop_gap = base_from_lines(cleaned.lines, cfg, cleaned.roles, raw.source)
    counts = {**cleaned.quality, "excluded_after_as_of": excluded}
    counts = {k: counts[k] for k in COUNT_KEYS}
    return base, Quality(counts, cleaned.rejected, windows, pop_gap, cleaned.roles, input_info(raw))


def _between(col: str, start, end) -> pl.Expr:
    return pl.col(col).is_between(pl.lit(start), pl.lit(end), closed="both")


def base_from_lines(
    lines: pl.DataFrame, cfg: Config, roles: tuple[str, ...] = (), source: str = "input"
) -> tuple[pl.DataFrame, Windows, int, float | None]:
    """Order lines -> (base table, windows, source rows after as_of, population median gap).

    ``lines``: customer_id, order_key, order_date, amount (micro-units), optionally n (source rows
    behind each line) and the text roles; keys may repeat (they are summed here).
    """
    if lines.height == 0:
        raise DataError(f"{source}: no usable order lines; see rejected_rows.csv or run `segkit inspect`")
    if "n" not in lines.columns:
        lines = lines.with_columns(pl.lit(1, pl.Int64).alias("n"))
    win = make_windows(cfg, lines["order_date"].max())
    after = lines.filter(pl.col("order_date") >= win.as_of)
    lines = lines.filter(pl.col("order_date") < win.as_of)
    if lines.height == 0:
        msg = f"{source}: every transaction is on or after as_of {win.as_of}; choose a later --as-of"
        raise DataError(msg)
    in_rfm = pl.lit(True) if win.rfm_start is None else pl.col("order_date") >= win.rfm_start

    money = lines.group_by("customer_id").agg(
        pl.col("amount").filter(in_rfm).sum().alias("monetary"),
        pl.col("amount").filter(_between("order_date", win.tier_start, win.tier_end)).sum().alias("annual"),
        pl.col("amount").filter(_between("order_date", win.prior_start, win.prior_end)).sum().alias("prior"),
    )
    orders = lines.group_by("customer_id", "order_key").agg(
        pl.col("order_date").min(), pl.col("amount").sum().alias("net")
    )
    purchases = orders.filter(pl.col("net") > 0)
    buys = purchases.group_by("customer_id").agg(
        pl.col("order_date").min().alias("first_order_date"),
        pl.col("order_date").max().alias("last_order_date"),
        pl.col("order_date").filter(in_rfm).len().alias("frequency"),
        pl.len().alias("orders_all"),
        _between("order_date", win.tier_start, win.tier_end).any().alias("bought_in_window"),
    )
    gaps = (
        purchases.select("customer_id", "order_date").unique()
        .sort("customer_id", "order_date")
        .with_columns(pl.col("order_date").diff().over("customer_id").dt.total_days().alias("gap"))
        .filter(pl.col("gap").is_not_null())
    )
    pop_gap = gaps["gap"].median() if gaps.height else None
    own_gap = gaps.group_by("customer_id").agg(pl.col("gap").median().alias("own_gap"))
    days = (
        lines.group_by("customer_id", "order_date").agg(pl.col("amount").sum())
        .filter(pl.col("amount") > 0)
        .group_by("customer_id").agg(
            pl.len().alias("purchase_days"),
            pl.col("order_date").min().alias("first_purchase_day"),
            pl.col("order_date").max().alias("last_purchase_day"),
            (pl.col("amount").sum() - pl.col("amount").sort_by("order_date").first()).alias("repeat_value"),
        )
    )
    base = (
        money.join(buys, on="customer_id", how="left")
        .join(own_gap, on="customer_id", how="left")
        .join(days, on="customer_id", how="left")
        .with_columns(
            pl.col("frequency", "orders_all", "purchase_days", "repeat_value").fill_null(0).cast(pl.Int64),
            pl.col("bought_in_window").fill_null(False),
            pl.col("own_gap").cast(pl.Float64),
        )
    )
    modes = _modes(lines, roles)
    if modes is not None:
        base = base.join(modes, on="customer_id", how="left")
    from . import BASE_SCHEMA

    base = base.select(pl.col("customer_id").cast(pl.String), *list(BASE_SCHEMA)[1:],
                       *[pl.col(r).cast(pl.String) for r in roles])
    return base, win, int(after["n"].sum()), None if pop_gap is None else float(pop_gap)


def _modes(lines: pl.DataFrame, roles: tuple[str, ...]) -> pl.DataFrame | None:
    """Most frequent value per customer for each text role, counted over source rows
    (ties: the alphabetically first)."""
    out = None
    for role in roles:
        mode = (
            lines.filter(pl.col(role).is_not_null())
            .group_by("customer_id", role).agg(pl.col("n").sum())
            .with_columns(pl.col(role).cast(pl.String))  # categorical in, text out; ties by text
            .sort(["customer_id", "n", role], descending=[False, True, False])
            .group_by("customer_id", maintain_order=True).first()
            .select("customer_id", role)
        )
        out = mode if out is None else out.join(mode, on="customer_id", how="full", coalesce=True)
    return out
