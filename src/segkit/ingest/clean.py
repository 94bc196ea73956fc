"""Typed parsing and row accounting: text frame -> order lines + rejected rows.

Every row that is not used is counted and explained: blank rows, totals rows (合计/小计/总计/Total/
Subtotal), and rejected rows (missing or unparsable customer id, date or amount) with their source
row number, column and reason. Amounts are kept as whole micro-units (Int64, 1e-6 of the currency
unit) so sums are exact and do not depend on row order.

The rules themselves (patterns, constants, reasons and their order, blank and totals rows, order
keys) are ``ingest/rules.py``'s, which the Spark engine reads too; this module turns them into
polars expressions and runs them.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from segkit.config import Config
from segkit.errors import DataError, clip, option
from segkit.ingest import rules
from segkit.ingest.read import ROW, RawTable
from segkit.ingest.rules import (EXCEL_EPOCH, FIRST_DAY, LAST_DAY, MAX_SERIAL, MICRO, MONEY_LIMIT_MICRO,
                                 OVERFLOW_MICRO, SEPARATORS, SIGNS, TOTALS_PATTERN, number_pattern, profit_role)

__all__ = ["EXCEL_EPOCH", "MAX_SERIAL", "MICRO", "MONEY_LIMIT_MICRO", "TOTALS_PATTERN", "profit_role"]

TEXT_ROLES = ("customer_name", "channel", "region", "customer_type", "category")


def to_money(micro: pl.Series, name: str | None = None) -> pl.Series:
    """Micro-units -> currency units, correctly rounded (polars' own division is not, e.g. 15.3)."""
    ints = micro.fill_null(0).cast(pl.Int64).to_numpy()
    values = ints.astype(np.float64) / MICRO  # exact input, one correctly rounded division
    big = np.abs(ints) >= 1 << 53  # float64(micro) would already be rounded: whole units + fraction
    if big.any():
        whole, frac = np.divmod(ints[big], MICRO)
        values[big] = whole.astype(np.float64) + frac.astype(np.float64) / MICRO
    out = pl.Series(name or micro.name, values, dtype=pl.Float64)
    return out if micro.null_count() == 0 else out.scatter(micro.is_null().arg_true(), None)


def _text(expr: pl.Expr) -> pl.Expr:
    """Stripped text, empty -> null."""
    s = expr.str.strip_chars()
    return pl.when(s != "").then(s)


def _amount_text(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(number text without currency signs and brackets, in brackets, with a trailing minus)."""
    s = expr.str.strip_chars()
    paren = s.str.contains(rules.BRACKETED)
    t = s.str.replace_all(SIGNS, "").str.replace_all(rules.BRACKETS, "").str.strip_chars()
    t = t.str.replace(rules.SIGN_SPACE, "$1")
    trailing_minus = t.str.contains(rules.TRAILING_MINUS)
    t = pl.when(trailing_minus).then(t.str.replace(rules.MINUS_TAIL, "")).otherwise(t)
    return t, paren, trailing_minus


def parse_amount(expr: pl.Expr, decimal: str = ".") -> pl.Expr:
    """Text -> Float64; null when empty or unparsable.

    Accepts thousands separators in groups of three (``1,234.50``; with ``decimal=","``:
    ``1.234,50``), spaces between groups, ¥ ￥ $ € £ 元 and RMB/CNY/USD/EUR/GBP, a leading sign,
    ``(1,234.00)`` and SAP's trailing minus ``1,234.00-`` for negatives, and scientific notation.
    Anything else is null (the caller rejects the row): ``1,2,3`` and ``12 34`` are not numbers.
    """
    t, paren, trailing_minus = _amount_text(expr)
    ok = t.str.contains(number_pattern(decimal))
    digits = t.str.replace_all(SEPARATORS[decimal], "")
    if decimal == ",":
        digits = digits.str.replace(",", ".", literal=True)
    value: pl.Expr = pl.when(ok).then(digits.cast(pl.Float64, strict=False))
    signed = pl.when(paren | trailing_minus).then(-value.abs()).otherwise(value)
    return pl.when(signed.is_finite()).then(signed)


def decimal_evidence(texts: pl.Series) -> dict[str, tuple[int, str | None]]:
    """For each decimal mark: how many of ``texts`` only that reading accepts, and an example.
    ``1.5`` or ``1,234.50`` read only with "."; ``1,5`` or ``1.234,50`` only with ","; ``1,234``
    and ``12`` with both (they decide nothing)."""
    t = _amount_text(pl.col("v"))[0]
    df = pl.DataFrame({"v": texts.cast(pl.String)}).drop_nulls().unique().select(
        pl.col("v"), t.str.contains(number_pattern(".")).alias("."), t.str.contains(number_pattern(",")).alias(","))
    out: dict[str, tuple[int, str | None]] = {}
    for mark, other in ((".", ","), (",", ".")):
        only = df.filter(pl.col(mark) & ~pl.col(other))
        out[mark] = (only.height, only["v"][0] if only.height else None)
    return out


DECIMAL_SAMPLE = 20_000


def resolve_decimal(raw: RawTable, cfg: Config) -> Config:
    """``cfg`` with ``decimal`` set for this input: as configured, or (``auto``) the mark that more
    of the first ``DECIMAL_SAMPLE`` amount cells can only be read with ("." when none decides).
    A note says when the decimal comma was picked or both kinds were seen; the cells the chosen
    reading does not accept become rejected rows, never numbers read the other way."""
    if cfg.decimal != "auto":
        return cfg
    roles = ["amount"] if "amount" in raw.mapping else ["quantity", "unit_price"]
    heads = [raw.mapping[r] for r in roles if r in raw.mapping]
    try:
        sample = _collect(raw.frame.select([pl.col(h).cast(pl.String) for h in heads]).head(DECIMAL_SAMPLE),
                          raw.source)
    except DataError:
        return cfg  # the read itself fails; the full pass reports it (a "." reading until then)
    texts = pl.concat([sample[h] for h in heads]) if heads else pl.Series("v", [], pl.String)
    mark, notes = pick_decimal(texts, raw.source)
    raw.notes.extend(n for n in notes if n not in raw.notes)
    return dataclasses.replace(cfg, decimal=mark)


def pick_decimal(texts: pl.Series, source: str) -> tuple[str, list[str]]:
    """The decimal mark more of ``texts`` can only be read with ("." when none decides), and the
    notes that say so (both engines)."""
    ev = decimal_evidence(texts)
    mark = "," if ev[","][0] > ev["."][0] else "."
    other = "." if mark == "," else ","
    name = {".": "point", ",": "comma"}
    notes = []
    if mark == ",":
        notes.append(f"{source}: amounts read with a decimal comma (detected, e.g. '{clip(ev[','][1])}'); "
                     f"set the decimal mark with {option('input.decimal')}")
    if ev[other][0]:
        notes.append(f"warning: {source}: {ev[other][0]:,} amount(s) can only be read with a decimal "
                     f"{name[other]} (e.g. '{clip(ev[other][1])}'), but most read with a decimal {name[mark]}; "
                     f"they are rejected rows; set the decimal mark with {option('input.decimal')}")
    return mark, notes


def parse_date(expr: pl.Expr, fmt: str = "") -> pl.Expr:
    """Text -> Date; null when empty or unparsable.

    Automatic formats: ISO ``2024-01-05``, ``2024/1/5``, ``2024.01.05``, ``2024年1月5日``, any of
    those followed by a time, ``20240105``, and Excel serial numbers (days since 1899-12-30).
    With ``fmt`` (a strftime format) only that format is accepted.
    """
    s = expr.str.strip_chars()
    if fmt:
        return _in_calendar(pl.coalesce(
            s.str.to_date(fmt, strict=False),
            s.str.to_datetime(fmt, strict=False).dt.date(),
        ))
    ymd = s.str.extract_groups(rules.YMD)
    d1 = pl.concat_str([ymd.struct["y"], ymd.struct["m"], ymd.struct["d"]], separator="-").str.to_date(
        "%Y-%m-%d", strict=False
    )
    compact = s.str.extract(rules.COMPACT_DATE).str.to_date("%Y%m%d", strict=False)
    serial_txt = s.str.extract(rules.SERIAL)
    serial = serial_txt.cast(pl.Float64, strict=False).floor().cast(pl.Int64, strict=False)
    from_serial = pl.when((serial >= 1) & (serial <= MAX_SERIAL)).then(
        pl.lit(EXCEL_EPOCH) + pl.duration(days=serial)
    )
    return _in_calendar(pl.coalesce(d1, compact, from_serial.cast(pl.Date)))


def _in_calendar(date: pl.Expr) -> pl.Expr:
    """Null for a date outside years 1..9999 (``0000-01-01``): such a row is rejected as an
    unparsable date, where it would otherwise fail later as a date no program can hold."""
    return pl.when(date.is_between(pl.lit(FIRST_DAY), pl.lit(LAST_DAY))).then(date)


def parse_customer_id(expr: pl.Expr) -> pl.Expr:
    """Stripped text; ``17850.0`` (an integer written as a float by the exporter) -> ``17850``.

    Leading zeros and every other character are kept.
    """
    s = _text(expr)
    return pl.when(s.str.contains(rules.ID_FLOAT)).then(s.str.replace(rules.ID_FLOAT_TAIL, "")).otherwise(s)


def _persona_uses(cfg: Config, role: str) -> bool:
    return any(role in p.columns for p in cfg.personas)


@dataclass(frozen=True)
class Cleaned:
    # usable rows summed per (customer_id, order_key, order_date, text roles present): amount in
    # micro-units and n, the number of source rows. Every customer metric is a function of these
    # sums, so the full line table never has to be held in memory.
    lines: pl.DataFrame
    rejected: pl.DataFrame  # row, column, reason, value, then the raw mapped columns
    quality: dict[str, Any] = field(default_factory=dict)
    roles: tuple[str, ...] = ()  # optional text roles present
    has_order_id: bool = False
    abs_micro: float = 0.0  # sum of |amount| over the usable rows, micro-units (check_money)


def check_money(source: str, abs_micro: float) -> None:
    """A ``DataError`` when the usable amounts add up (in absolute value) to more than segkit can
    sum exactly: Int64 micro-units would wrap around and give wrong totals."""
    if not abs_micro < MONEY_LIMIT_MICRO:  # NaN too
        msg = (f"{source}: amount too large: the amounts add up to {abs_micro / MICRO:,.0f} (absolute values), "
               f"above the limit of {MONEY_LIMIT_MICRO / MICRO:,.0f} that segkit sums exactly (to 0.000001); "
               f"check the amount column for stray values, or give the amounts in thousands with "
               f"{option('input.amount_unit')} 0.001")
        raise DataError(msg)


def _parse_unique(df: pl.DataFrame, column: str, parser: Callable[[pl.Expr], pl.Expr], out: str,
                  dtype: type[pl.DataType] | None = None) -> pl.DataFrame:
    """Parse each distinct text once and join the result back (dates and ids repeat a lot)."""
    parsed = parser(pl.col(column).cast(pl.String))
    uniq = df.select(pl.col(column).unique()).with_columns((parsed if dtype is None else parsed.cast(dtype)).alias(out))
    # join only the key column, then attach: joining the whole frame would copy every column
    mapped = df.select(column).join(uniq, on=column, how="left", nulls_equal=True, maintain_order="left")
    return df.with_columns(mapped[out])


def _fast_amount(text: pl.Expr, decimal: str) -> pl.Expr:
    """A plain number, by direct cast; null for anything that needs the full parser. With a
    decimal comma only text without a point is plain (``1.234`` is a thousand and more)."""
    if decimal == ",":
        text = pl.when(~text.str.contains(".", literal=True)).then(text.str.replace(",", ".", literal=True))
    fast = text.cast(pl.Float64, strict=False)
    return pl.when(fast.is_finite()).then(fast)


def _parse_slow_amounts(df: pl.DataFrame, role: str, decimal: str) -> pl.DataFrame:
    """Formatted amounts (¥1,234.00, (12.00) ...) left by the fast path go through the full parser."""
    t, p = pl.col(f"t:{role}"), pl.col(f"p:{role}")
    if df.select(t.is_not_null().any()).item():
        df = df.with_columns(pl.when(t.is_not_null()).then(parse_amount(t, decimal)).otherwise(p).alias(f"p:{role}"))
    return df


def _collect(lf: pl.LazyFrame, source: str) -> pl.DataFrame:
    """Run a query over the input; a file polars cannot parse is bad data, not an internal error."""
    try:
        return lf.collect(engine="streaming")
    except pl.exceptions.ComputeError as exc:
        text = str(exc)
        detail = "a quoted field is never closed" if "not properly escaped" in text else text.splitlines()[0][:200]
        msg = (f"{source}: the file cannot be parsed as CSV ({detail}); "
               "look for a stray double quote (\") in the file, or export it again")
        raise DataError(msg) from None


@dataclass(frozen=True)
class _Plan:
    """What ``clean`` reads from a mapped input: the checked roles, the text roles kept, and the
    headers whose raw cells are copied into rejected rows."""

    mapping: dict[str, str]
    checked: tuple[str, ...]  # customer_id, order_date, amount (or quantity, unit_price), then cost or gross_profit
    roles: tuple[str, ...]  # optional text roles present
    has_order_id: bool
    header_of: dict[str, str]  # header -> one role

    @property
    def amounts(self) -> tuple[str, ...]:
        return self.checked[2:]

    def col(self, role: str) -> pl.Expr:
        return pl.col(self.mapping[role])


def _plan(raw: RawTable, cfg: Config) -> _Plan:
    m = raw.mapping
    checked = rules.checked_roles(m)
    roles = tuple(r for r in TEXT_ROLES if r in m and (r != "category" or _persona_uses(cfg, r)))
    return _Plan(dict(m), checked, roles, "order_id" in m, dict(zip(m.values(), m)))


def clean(raw: RawTable, cfg: Config, *, enforce: bool = True, check: bool = True) -> Cleaned:
    """Text frame -> summed order lines, rejected rows and counts.

    ``check``: raise ``DataError`` when there are no data rows or (with ``enforce``) when more than
    ``cfg.max_bad_rows`` of them are rejected; ``check=False`` leaves that to the caller
    (``check_quality``), which cleans only part of a file.
    """
    cfg = _with_decimal(raw, cfg)
    plan = _plan(raw, cfg)
    data, skipped = _drop_skipped(_collect(_cell_texts(raw, plan, cfg.decimal), raw.source))
    parsed, column, value = _classify(data, plan, cfg)
    bad = parsed.filter(pl.col("reason").is_not_null())
    rejected = _rejected_rows(bad.select("row", column.alias("column"), "reason", value.alias("value")), plan, raw)
    usable = parsed.filter(pl.col("reason").is_null())
    abs_micro = float(usable.select(pl.col("amount").abs().cast(pl.Float64).sum()).item() or 0.0)
    if check:
        check_money(raw.source, abs_micro)
    lines = _sum_lines(usable, plan)
    quality = {
        "rows_read": data.height + skipped[rules.BLANK] + skipped[rules.TOTALS],
        "blank_rows": skipped[rules.BLANK],
        "totals_rows": skipped[rules.TOTALS],
        "data_rows": data.height,
        "rejected_rows": rejected.height,
        "rejected_share": rejected.height / data.height if data.height else 0.0,
        "rejected_reasons": rejected_reasons(rejected),
        "used_rows": data.height - bad.height,
    }
    if check:
        check_quality(raw.source, raw.header_row, quality, rejected, cfg, enforce=enforce)
    return Cleaned(lines, rejected, quality, plan.roles, plan.has_order_id, abs_micro)


def _with_decimal(raw: RawTable, cfg: Config) -> Config:
    cfg = resolve_decimal(raw, cfg)
    return dataclasses.replace(cfg, decimal=".") if cfg.decimal == "auto" else cfg


def _classify(data: pl.DataFrame, plan: _Plan, cfg: Config) -> tuple[pl.DataFrame, pl.Expr, pl.Expr]:
    """The data rows parsed, with their reason (null: usable) and amount (and profit) in
    micro-units; and the expressions of the rejected rows' column and value."""
    micro = _amount_micro(plan, cfg)
    profit = _profit_micro(plan, cfg)
    overflow = (micro.abs() >= OVERFLOW_MICRO) | (profit.abs() >= OVERFLOW_MICRO).fill_null(False)
    reason, column, value = _reason_exprs(plan, overflow)
    parsed = _parse_cells(data, plan, cfg).with_columns(
        reason.alias("reason"), pl.when(overflow).then(None).otherwise(micro).cast(pl.Int64).alias("amount"),
        *([pl.when(overflow).then(None).otherwise(profit).cast(pl.Int64).alias("profit")]
          if profit_role(plan.mapping) else []))
    return parsed, column, value


def classify(raw: RawTable, cfg: Config) -> pl.DataFrame:
    """Every row below the header as the rules leave it, in file order: row, skip (blank, totals
    or null), reason (null for a usable or skipped row), customer_id, order_date, amount and
    profit (micro-units, null without a profit column): the per-row view of what ``clean``
    counts and sums, as ``engines.spark.classify`` gives it."""
    cfg = _with_decimal(raw, cfg)
    plan = _plan(raw, cfg)
    cells = _collect(_cell_texts(raw, plan, cfg.decimal), raw.source)
    data, _ = _drop_skipped(cells)
    parsed = _classify(data, plan, cfg)[0]
    profit = pl.col("profit") if "profit" in parsed.columns else pl.lit(None, pl.Int64).alias("profit")
    typed = parsed.select("row", "reason", pl.col("p:customer_id").cast(pl.String).alias("customer_id"),
                          pl.col("p:order_date").alias("order_date"), "amount", profit)
    return cells.select("row", pl.col("_skip").alias("skip")).join(typed, on="row", how="left").sort("row")


def _cell_texts(raw: RawTable, plan: _Plan, decimal: str) -> pl.LazyFrame:
    """Pass 1 (streaming): the text of the cells segkit needs, and whether the row is blank or a
    totals row. Blank = every cell empty or whitespace; totals = 合计/Total/... in the first
    non-empty cell or in the id or name column. Repeating text is held as Categorical (one
    integer per row); amounts are cast on the fly and their text kept only where the plain cast
    failed."""
    cells = [pl.col(h).cast(pl.String) for h in raw.headers]
    first_cell = pl.coalesce(cells).str.strip_chars() if cells else pl.lit(None, pl.String)
    all_empty = pl.all_horizontal([c.is_null() | (c.str.strip_chars() == "") for c in cells])
    totals = first_cell.str.contains(TOTALS_PATTERN).fill_null(False)
    for role in rules.TOTALS_ROLES:
        if role in plan.mapping:
            totals = totals | plan.col(role).str.strip_chars().str.contains(TOTALS_PATTERN).fill_null(False)
    amounts = plan.amounts
    order_id = [_text(plan.col("order_id")).cast(pl.Categorical).alias("t:order_id")] if plan.has_order_id else []
    return raw.frame.select(
        pl.col(ROW).cast(pl.Int64).alias("row"),
        pl.when(all_empty).then(pl.lit(rules.BLANK)).when(totals).then(pl.lit(rules.TOTALS)).alias("_skip"),
        *[_text(plan.col(r)).cast(pl.Categorical).alias(f"t:{r}") for r in plan.checked[:2]],
        *[_text(plan.col(r)).alias(f"t:{r}") for r in amounts],
        *[_text(plan.col(r)).cast(pl.Categorical).alias(r) for r in plan.roles],
        *order_id,
    ).with_columns(
        [_fast_amount(pl.col(f"t:{r}"), decimal).alias(f"p:{r}") for r in amounts]
    ).with_columns(
        [pl.when(pl.col(f"p:{r}").is_null()).then(pl.col(f"t:{r}")).alias(f"t:{r}") for r in amounts]
    )


def _drop_skipped(cells: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """The data rows (blank and totals rows left out) and how many of each were left out."""
    counts = dict(cells.group_by("_skip").len().iter_rows())
    skipped = {kind: int(counts.get(kind, 0)) for kind in (rules.BLANK, rules.TOTALS)}
    data = cells.filter(pl.col("_skip").is_null()) if sum(skipped.values()) else cells
    return data.drop("_skip"), skipped


def _parse_cells(df: pl.DataFrame, plan: _Plan, cfg: Config) -> pl.DataFrame:
    """Typed parsing: ids and dates on their distinct values, amounts with a fast path."""
    df = _parse_unique(df, "t:customer_id", parse_customer_id, "p:customer_id", pl.Categorical)
    df = _parse_unique(df, "t:order_date", lambda e: parse_date(e, cfg.date_format), "p:order_date")
    for r in plan.amounts:
        df = _parse_slow_amounts(df, r, cfg.decimal)
    return df


def _amount_micro(plan: _Plan, cfg: Config) -> pl.Expr:
    amount = pl.col("p:amount") if "amount" in plan.mapping else pl.col("p:quantity") * pl.col("p:unit_price")
    return (amount * (cfg.amount_unit * MICRO)).round(0)


def _profit_micro(plan: _Plan, cfg: Config) -> pl.Expr:
    """Profit per row in micro-units: the gross_profit cell, or amount - cost, each rounded to
    micro-units first so the difference is exact (null without either column)."""
    role = profit_role(plan.mapping)
    if role is None:
        return pl.lit(None, pl.Float64)
    given = (pl.col(f"p:{role}") * (cfg.amount_unit * MICRO)).round(0)
    return rules.profit_micro(role, _amount_micro(plan, cfg), given, operator.sub)


def _reason_exprs(plan: _Plan, overflow: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Why a row is rejected, in which column and with which value: the first reason of
    ``rules.reasons_for`` that holds (a checked role missing or unparsable, else an amount too
    large for micro-units)."""
    m = plan.mapping
    txt = {role: pl.col(f"t:{role}").cast(pl.String) for role in plan.checked}
    missing = {role: txt[role].is_null() & pl.col(f"p:{role}").is_null() for role in plan.checked}
    unparsable = {role: txt[role].is_not_null() & pl.col(f"p:{role}").is_null() for role in plan.checked}

    def when(cond: pl.Expr, message: str, other: pl.Expr | None) -> pl.Expr:
        then = pl.when(cond).then(pl.lit(message))
        return then if other is None else then.otherwise(other)

    reason = rules.reason_expr(plan.checked, when, missing.__getitem__, unparsable.__getitem__, overflow)
    col_role, value_role = rules.overflow_roles(m)
    column: pl.Expr = pl.when(overflow).then(pl.lit(m[col_role]))
    value: pl.Expr = pl.when(overflow).then(pl.col(f"p:{value_role}").cast(pl.String))
    for role in reversed(plan.checked):
        bad = missing[role] | unparsable[role]
        column = pl.when(bad).then(pl.lit(m[role])).otherwise(column)
        value = pl.when(bad).then(txt[role]).otherwise(value)
    return reason, column, value


def _rejected_rows(bad: pl.DataFrame, plan: _Plan, raw: RawTable) -> pl.DataFrame:
    """``bad`` (row, column, reason, value) with the whole row as it stands in the file: every
    column of the input (``raw:<header>``, in file order), not only the mapped ones, so the analyst
    can fix the row at its source (e.g. StockCode and Description beside a missing CustomerID)."""
    present = set(raw.frame.collect_schema().names())
    headers = [h for h in dict.fromkeys([*raw.headers, *plan.header_of]) if h in present and h != ROW]
    if not bad.height:
        return pl.DataFrame(schema={"row": pl.Int64, "column": pl.String, "reason": pl.String,
                                    "value": pl.String, **{f"raw:{h}": pl.String for h in headers}})
    raw_rows = raw.frame.select(pl.col(ROW).cast(pl.Int64).alias("row"),
                                *[pl.col(h).cast(pl.String).alias(f"raw:{h}") for h in headers])
    cells = _collect(raw_rows.filter(pl.col("row").is_in(bad["row"].implode())), raw.source)
    return bad.join(cells, on="row", how="left").sort("row")


def _sum_lines(usable: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """Usable rows summed per (customer, order, date, text roles). Lines without an order id form
    one order per customer and date; since the date is part of the key, the order key can be
    filled in after summing."""
    order = [pl.col("t:order_id")] if plan.has_order_id else []
    profit = [pl.col("profit").sum()] if "profit" in usable.columns else []
    lines = (
        usable.lazy()
        .group_by(pl.col("p:customer_id").alias("customer_id"), pl.col("p:order_date").alias("order_date"),
                  *order, *plan.roles)
        .agg(pl.col("amount").sum(), *profit, pl.len().cast(pl.Int64).alias("n"))
        .collect(engine="streaming")
    )
    order_id = pl.col("t:order_id").cast(pl.String) if plan.has_order_id else None
    key = rules.order_key(order_id, pl.col("order_date").cast(pl.String), pl.coalesce)
    return lines.select(pl.col("customer_id").cast(pl.String), key.alias("order_key"),
                        "order_date", "amount", *[p.meta.output_name() for p in profit], *plan.roles, "n")


def rejected_reasons(rejected: pl.DataFrame) -> dict[str, int]:
    """reason -> rows, most rows first, ties by reason text."""
    if not rejected.height:
        return {}
    return dict(rejected.group_by("reason").len().sort(["len", "reason"], descending=[True, False]).iter_rows())


def check_quality(source: str, header_row: int, quality: dict[str, Any], rejected: pl.DataFrame, cfg: Config,
                  *, enforce: bool = True) -> None:
    """No data rows, or too many rejected rows (above ``cfg.max_bad_rows``): a ``DataError``."""
    data_rows, reasons = quality["data_rows"], quality["rejected_reasons"]
    if data_rows == 0:
        msg = (f"{source}: no data rows below the header (row {header_row}); "
               "check that the export holds orders")
        raise DataError(msg)
    if enforce and rejected.height / data_rows > cfg.max_bad_rows:
        by_col = rejected.group_by("column").len().sort(["len", "column"], descending=[True, False])
        worst_col, worst_n = by_col.row(0)
        top_reason = next(iter(reasons))
        example = rejected.filter(pl.col("column") == worst_col).row(0, named=True)
        raise too_many_rejected(source, rejected.height, data_rows, cfg, (worst_col, worst_n), example, top_reason)


def too_many_rejected(source: str, rejected_n: int, data_rows: int, cfg: Config, worst: tuple[str, int],
                      example: dict[str, Any], top_reason: str) -> DataError:
    """The error for a rejected share above ``cfg.max_bad_rows`` (both engines): the column with the
    most rejected rows, an example row, and the share that would accept them."""
    worst_col, worst_n = worst
    msg = (
        f"{source}: {rejected_n:,} of {data_rows:,} rows ({rejected_n / data_rows:.1%}) "
        f"cannot be used, above max_bad_rows {cfg.max_bad_rows:.0%}; most are in column "
        f"'{worst_col}' ({worst_n:,} rows, e.g. row {example['row']}: {example['reason']}).\n"
        f"Fix that column, map another with {option('columns')}, or accept them with {option('input.max_bad_rows')} "
        f"{math.ceil(rejected_n / data_rows * 100) / 100:g} (a share: 0.05 = 5%); "
        f"`segkit inspect` lists the reasons (most common: {top_reason})."
    )
    return DataError(msg)
