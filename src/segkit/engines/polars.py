"""The embedded polars engine: input -> (customer base table, quality). Contract in ``__init__``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import operator
from collections.abc import Callable

import polars as pl

from segkit.ingest import rules
from segkit.ingest.clean import (TEXT_ROLES, Cleaned, _collect, _persona_uses, _text, check_quality,
                     check_money, clean, parse_customer_id, resolve_decimal, parse_date, rejected_reasons)
from segkit.ingest.rules import MICRO, OVERFLOW_MICRO, TOTALS_PATTERN, profit_role
from segkit.config import Config
from segkit.errors import DataError
from segkit.customers.windows import Windows
from segkit.customers.dates import date_facts, day_counts
from segkit.customers.tiers import uses_activity, window_activity
from segkit.ingest.read import ROW, RawTable, parquet_numeric, read_input, scan_typed
from segkit.ingest.sources import limits_for
from segkit.engines.contract import Quality, Reduced


def customer_table(source: str, cfg: Config, *, stdin: io.BufferedIOBase | None = None) -> tuple[pl.DataFrame, Quality]:
    def reopen(background: bool = False) -> RawTable:
        return read_input(source, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns, stdin=stdin,
                          limits=limits_for(cfg), background=background)

    reduced = reduce_lines(*order_lines(reopen(True), cfg, reopen), cfg)
    return reduced.base, reduced.quality()


def order_lines(raw: RawTable, cfg: Config, reopen: Callable[[], RawTable]) -> tuple[RawTable, Cleaned]:
    """The summed order lines of ``raw`` (read with ``background=True``): the typed pass for CSV,
    ``clean.clean`` for the rest. ``reopen()`` reads the input again without the background check,
    for a CSV that turns out not to be UTF-8 past its head; the RawTable returned is the one used."""
    if raw.parquet_source is not None:
        return raw, _parquet_lines(raw, cfg)
    if raw.csv_source is None:
        return raw, clean(raw, cfg)
    try:
        cleaned = _csv_lines(raw, cfg)
    except DataError:
        if raw.verify():
            raise
        cleaned = None
    if cleaned is None or not raw.verify():  # not UTF-8 after all: decode it as read_input does
        raw = reopen()
        cleaned = _csv_lines(raw, cfg)
    return raw, cleaned


def _csv_lines(raw: RawTable, cfg: Config) -> Cleaned:
    """The typed pass, or ``clean.clean`` when the amounts have a decimal comma (polars' CSV
    parser would read ``1.234`` as one and a bit)."""
    cfg = resolve_decimal(raw, cfg)
    return clean(raw, cfg) if cfg.decimal == "," else typed_lines(raw, cfg)


def _parquet_lines(raw: RawTable, cfg: Config) -> Cleaned:
    """The typed pass when the Parquet file stores the money columns as numbers (the text path
    would turn them into text and parse them back to the same values), else ``clean.clean``."""
    m = raw.mapping
    numeric = parquet_numeric(raw, [m[r] for r in rules.checked_roles(m)[2:]])  # the money columns
    return typed_lines(raw, cfg) if numeric and cfg.decimal != "," else clean(raw, cfg)


# ------------------------------------------------------------------------------ typed CSV pass
# One streaming pass reads the CSV with the amounts typed by polars' CSV parser and sums it
# straight to (customer, order, date, attributes) on the cells' raw text. Each distinct id, date
# and attribute text is then parsed once by ingest/clean.py's parsers. Rows the pass cannot vouch for (a
# cell polars could not type, an id/date/name that ingest/clean.py would reject or read as a totals row,
# an empty first cell) are read again as text and go through clean.clean, so every row is
# counted and explained exactly as the text path does.

def _roles(raw: RawTable, cfg: Config) -> tuple[str, ...]:
    m = raw.mapping
    return tuple(r for r in TEXT_ROLES if r in m and (r != "category" or _persona_uses(cfg, r)))


def _is_totals(v: pl.Expr) -> pl.Expr:
    return v.str.strip_chars().str.contains(TOTALS_PATTERN).fill_null(False)


def typed_lines(raw: RawTable, cfg: Config) -> Cleaned:
    m = raw.mapping
    roles = _roles(raw, cfg)
    profit_by = profit_role(m)  # cost or gross_profit: typed like the amount, checked like it
    keys = {"customer_id": m["customer_id"], "order_date": m["order_date"]}
    if "order_id" in m:
        keys["order_id"] = m["order_id"]
    keys |= {r: m[r] for r in roles}
    first = raw.headers[0]
    lf = scan_typed(raw, {m[r]: pl.Float64() for r in rules.checked_roles(m)[2:]})  # amounts and profit
    value = pl.col(m["amount"]) if "amount" in m else pl.col(m["quantity"]) * pl.col(m["unit_price"])
    micro = (value * (cfg.amount_unit * MICRO)).round(0)
    ok = (micro.abs() < OVERFLOW_MICRO).fill_null(False)  # null, NaN and inf are not < 9e18
    profit: list[pl.Expr] = []
    if profit_by:  # as clean._profit_micro: each side rounded to micro-units, so the difference is exact
        given = (pl.col(m[profit_by]) * (cfg.amount_unit * MICRO)).round(0)
        gp = rules.profit_micro(profit_by, micro, given, operator.sub)
        ok = ok & (gp.abs() < OVERFLOW_MICRO).fill_null(False)
        profit = [pl.when(ok).then(gp).cast(pl.Int64).sum().alias("profit")]
    extra = [] if first in keys.values() else [
        (pl.col(first).is_null() | _is_totals(pl.col(first))).alias("_first_odd")]
    groups = _collect(
        lf.group_by(*[pl.col(h).alias(k) for k, h in keys.items()], *extra).agg(
            pl.when(ok).then(micro).cast(pl.Int64).sum().alias("amount"),
            *profit,
            pl.when(ok).then(micro.abs()).sum().alias("_abs"),
            ok.sum().cast(pl.Int64).alias("n"),
            (~ok).sum().cast(pl.Int64).alias("_bad"),
        ),
        raw.source,
    )
    # each key parsed as ingest/clean.py does; a value ingest/clean.py would not accept marks its rows
    odd, cols, odd_keys = [], {}, []
    for key, header in keys.items():
        cols[key], odd_values = _parse_key(groups, key, header == first, cfg)
        if odd_values.len():
            v = pl.col(key)
            odd.append((header, odd_values))
            odd_keys.append(v.is_in(odd_values.drop_nulls().implode()).fill_null(False)
                            | (v.is_null() if odd_values.null_count() else pl.lit(False)))
    odd_key = pl.any_horizontal(odd_keys + ([pl.col("_first_odd")] if extra else []) + [pl.lit(False)])
    groups = groups.with_columns(**{f"_p:{k}": c for k, c in cols.items()})
    order_key = rules.order_key(pl.col("_p:order_id") if "order_id" in keys else None,
                                pl.col("_p:order_date").cast(pl.String), pl.coalesce)
    keep = ~odd_key & (pl.col("n") > 0)
    needs_text = bool(groups.select((~keep).any()).item())
    rows_read = int(groups.select(pl.col("n").sum() + pl.col("_bad").sum()).item())
    abs_micro = float(groups.select(pl.col("_abs").filter(keep).sum()).item() or 0.0)
    fast = (groups.filter(keep) if needs_text else groups).select(  # no copy when every group is kept
        pl.col("_p:customer_id").alias("customer_id"), order_key.alias("order_key"),
        pl.col("_p:order_date").alias("order_date"), "amount", *(["profit"] if profit else []),
        *[pl.col(f"_p:{r}").alias(r) for r in roles], "n",
    )
    needs_text = needs_text or bool(groups["_bad"].sum())
    del groups
    fast = fast.rechunk()  # the streaming group-by returns dozens of chunks; the customer table's group-bys run ~2x faster on one
    slow = _reread(raw, cfg, lf, ok, odd, extra, first) if needs_text else None
    return _merge(raw, cfg, fast, slow, rows_read, roles, abs_micro)


def _parse_key(groups: pl.DataFrame, key: str, first: bool, cfg: Config) -> tuple[pl.Series, pl.Series]:
    """(parsed value of every group's ``key``, the texts ingest/clean.py would not accept).

    Ids, dates and names are parsed once per distinct text; an order id (nearly one distinct text
    per group, so hashing them costs more than the parse) is checked group by group.
    ``first``: the key is the file's first column, where an empty cell or a totals label marks a
    row to explain (ingest/clean.py's blank/totals rules)."""
    v = pl.col(key)
    if key == "order_id":
        odd = (v.is_null() | _is_totals(v)) if first else pl.lit(False)
        flags = groups.select(odd.any().alias("odd"), _text(v).eq_missing(v).all().alias("same"))
        odd_values = groups.filter(odd)[key].unique() if flags["odd"][0] else groups[key].clear()
        return (groups[key] if flags["same"][0] else groups.select(_text(v))[key]), odd_values
    u = groups.select(v.unique())
    if key == "customer_id":
        u = u.with_columns(_v=parse_customer_id(v)).with_columns(_odd=pl.col("_v").is_null() | _is_totals(v))
    elif key == "order_date":
        u = u.with_columns(_v=parse_date(v, cfg.date_format)).with_columns(_odd=pl.col("_v").is_null())
    else:
        u = u.with_columns(_v=_text(v), _odd=_is_totals(v) if key == "customer_name" else pl.lit(False))
    if first:
        u = u.with_columns(_odd=pl.col("_odd") | v.is_null() | _is_totals(v))
    return _mapped(groups, u, key), u.filter(pl.col("_odd"))[key]


def _mapped(groups: pl.DataFrame, u: pl.DataFrame, key: str) -> pl.Series:
    """The parsed value of every group's ``key``: by a cheap vectorised form when it agrees with
    the parser on every distinct text, else by joining the distinct texts back."""
    v = pl.col(key)
    good = u.filter(~pl.col("_odd"))
    if u["_v"].dtype == pl.Date:
        cheap = v.str.to_date("%Y-%m-%d", strict=False)
    else:
        cheap = v
    if good.select((cheap.eq_missing(pl.col("_v"))).all()).item():
        return groups.select(cheap.alias(key))[key]
    return groups.select(key).join(u.select(key, "_v"), on=key, how="left", nulls_equal=True,
                                   maintain_order="left")["_v"]


def _reread(raw: RawTable, cfg: Config, typed: pl.LazyFrame, ok: pl.Expr, odd: list[tuple[str, pl.Series]],
            extra: list[pl.Expr], first: str) -> Cleaned:
    """The rows the typed pass set aside, read again as text and cleaned by clean.clean."""
    want = ~ok
    for header, values in odd:
        col = pl.col(header)
        want = want | col.is_in(values.drop_nulls().implode()).fill_null(False)
        if values.null_count():
            want = want | col.is_null()
    if extra:
        want = want | pl.col(first).is_null() | _is_totals(pl.col(first))
    rows = _collect(typed.filter(want).select(ROW), raw.source)[ROW]
    text = _collect(raw.frame.filter(pl.col(ROW).is_in(rows.implode())), raw.source)
    part = RawTable(raw.source, text.lazy(), raw.headers, raw.mapping, raw.format, raw.header_row,
                    raw.size, raw.sha256)
    return clean(part, cfg, check=False)


def _merge(raw: RawTable, cfg: Config, fast: pl.DataFrame, slow: Cleaned | None, rows_read: int,
           roles: tuple[str, ...], abs_micro: float) -> Cleaned:
    if slow is None:
        lines, rejected = fast, clean(_empty(raw), cfg, check=False).rejected
        blank = totals = 0
    else:
        lines = pl.concat([fast, slow.lines.with_columns(pl.col(r).cast(pl.String) for r in roles)])
        rejected, blank, totals = slow.rejected, slow.quality["blank_rows"], slow.quality["totals_rows"]
        abs_micro += slow.abs_micro
    data_rows = rows_read - blank - totals
    quality = {
        "rows_read": rows_read,
        "blank_rows": blank,
        "totals_rows": totals,
        "data_rows": data_rows,
        "rejected_rows": rejected.height,
        "rejected_share": rejected.height / data_rows if data_rows else 0.0,
        "rejected_reasons": rejected_reasons(rejected),
        "used_rows": data_rows - rejected.height,
    }
    check_quality(raw.source, raw.header_row, quality, rejected, cfg)
    check_money(raw.source, abs_micro)
    return Cleaned(lines, rejected, quality, roles, "order_id" in raw.mapping, abs_micro)


def _empty(raw: RawTable) -> RawTable:
    frame = pl.LazyFrame(schema={ROW: pl.UInt32, **{h: pl.String for h in raw.headers}})
    return RawTable(raw.source, frame, raw.headers, raw.mapping, raw.format, raw.header_row, raw.size, raw.sha256)


def reduce_lines(raw: RawTable, cleaned: Cleaned, cfg: Config, *, days: bool = False) -> Reduced:
    """Summed order lines -> ``contract.Reduced``: the date checks and windows on their
    ``day_counts``, then the customer base table, the tier scheme's activity and (``days``) each
    customer's net per day, all from the plausible lines; the lines are not kept."""
    lines = cleaned.lines
    facts = date_facts(day_counts(lines), cfg, raw.source)
    if facts.implausible:
        lo, hi = facts.plausible()
        lines = lines.filter(pl.col("order_date").is_between(pl.lit(lo), pl.lit(hi)))
    activity = window_activity(lines, facts.windows) if uses_activity(cfg) else None
    daily = lines.group_by("customer_id", "order_date").agg(pl.col("amount").sum()) if days else None
    base, pop_gap = base_table(lines, cfg, facts.windows, cleaned.roles)
    cleaned = dataclasses.replace(cleaned, lines=cleaned.lines.clear())
    return Reduced(raw, cleaned, base, facts, pop_gap, activity, daily)


def _between(col: str, start: dt.date, end: dt.date) -> pl.Expr:
    return pl.col(col).is_between(pl.lit(start), pl.lit(end), closed="both")


def base_table(lines: pl.DataFrame, cfg: Config, win: Windows, roles: tuple[str, ...] = ()
               ) -> tuple[pl.DataFrame, float | None]:
    """Plausible order lines -> (base table, population median gap), for the windows
    ``customers.dates.date_facts`` gave; lines on or after as_of are left out here.

    ``lines``: customer_id, order_key, order_date, amount (micro-units), optionally n (source rows
    behind each line) and the text roles; keys may repeat (they are summed here).
    """
    lines = lines.rechunk()  # no-op for the typed pass (it rechunks); the group-bys below are faster on one chunk
    if "n" not in lines.columns:
        lines = lines.with_columns(pl.lit(1, pl.Int64).alias("n"))
    if cfg.as_of is not None:
        lines = lines.filter(pl.col("order_date") < win.as_of)
    # customers as integer codes (a Categorical's physical value): every group-by below is on
    # integers, and (customer, day) pairs are one Int64 key
    lines = lines.with_columns(pl.col("customer_id").cast(pl.String).cast(pl.Categorical))
    lines = lines.with_columns(cid=pl.col("customer_id").to_physical().cast(pl.Int64))
    ids = lines.lazy().group_by("cid").agg(pl.col("customer_id").first())
    parts = _aggregates(lines, cfg, win, roles)
    gaps, pop_gap = _gaps(parts.pop())
    table = ids
    for part in (*parts, gaps):
        table = table.join(part.lazy(), on="cid", how="left")
    out = table.select(
        pl.col("customer_id").cast(pl.String),
        "first_order_date", "last_order_date",
        pl.col("frequency", "orders_all").fill_null(0).cast(pl.Int64),
        "monetary", "annual", "prior", *(["gross_profit"] if "profit" in lines.columns else []),
        pl.col("bought_in_window").fill_null(False),
        pl.col("own_gap").cast(pl.Float64),
        pl.col("purchase_days").fill_null(0).cast(pl.Int64),
        "first_purchase_day", "last_purchase_day",
        pl.col("repeat_value").fill_null(0).cast(pl.Int64),
        *[pl.col(r).cast(pl.String) for r in roles],
    ).collect()
    return out, pop_gap


DAY_BITS = 32


def _day_key(date: str = "order_date") -> pl.Expr:
    """(customer, day) as one sortable Int64: cid in the high bits, days since 1970 + 2^31 below."""
    return pl.col("cid") * (1 << DAY_BITS) + (pl.col(date).cast(pl.Int32).cast(pl.Int64) + (1 << 31))


def _key_cid(key: str = "k") -> pl.Expr:
    return (pl.col(key) // (1 << DAY_BITS)).alias("cid")


def _key_date(key: str = "k") -> pl.Expr:
    return ((pl.col(key) % (1 << DAY_BITS)) - (1 << 31)).cast(pl.Int32).cast(pl.Date).alias("order_date")


def _aggregates(lines: pl.DataFrame, cfg: Config, win: Windows, roles: tuple[str, ...]) -> list[pl.DataFrame]:
    """Per customer code: money, purchase days (CLV), purchases; the modes; and, last, the
    (customer, day) keys of the purchases for the gaps."""
    in_rfm = pl.lit(True) if win.rfm_start is None else pl.col("order_date") >= win.rfm_start
    in_tier = _between("order_date", win.tier_start, win.tier_end)
    lf = lines.lazy()
    profit = [pl.col("profit").filter(in_rfm).sum().alias("gross_profit")] if "profit" in lines.columns else []
    money = lf.group_by("cid").agg(
        pl.col("amount").filter(in_rfm).sum().alias("monetary"), *profit,
        pl.col("amount").filter(in_tier).sum().alias("annual"),
        pl.col("amount").filter(_between("order_date", win.prior_start, win.prior_end)).sum().alias("prior"),
    )
    daily = (lf.group_by(_day_key().alias("k")).agg(pl.col("amount").sum())
             .filter(rules.is_purchase(pl.col("amount"))))
    first = pl.col("k").arg_min()
    days = daily.group_by(_key_cid()).agg(
        pl.len().alias("purchase_days"),
        _key_date().min().alias("first_purchase_day"),
        _key_date().max().alias("last_purchase_day"),
        (pl.col("amount").sum() - pl.col("amount").get(first)).alias("repeat_value"),
    )
    orders = lf.group_by("cid", "order_key").agg(pl.col("order_date").min(), pl.col("amount").sum().alias("net"))
    purchases = orders.filter(rules.is_purchase(pl.col("net"))).select("cid", "order_date")
    buys = purchases.group_by("cid").agg(
        pl.col("order_date").min().alias("first_order_date"),
        pl.col("order_date").max().alias("last_order_date"),
        pl.col("order_date").filter(in_rfm).len().alias("frequency"),
        pl.len().alias("orders_all"),
        in_tier.any().alias("bought_in_window"),
    )
    keys = purchases.select(_day_key().alias("k"))
    if not roles:
        return pl.collect_all([money, days, buys, keys])
    # the source rows behind each combination of a customer's values: few per customer, so the
    # modes below count over a small table instead of grouping every line once per role
    combos = lf.group_by("cid", *roles).agg(pl.col("n").sum()).collect()
    modes = [_mode(combos.lazy(), r) for r in roles]
    return pl.collect_all([money, days, buys, *modes, keys])


def _mode(lf: pl.LazyFrame, role: str) -> pl.LazyFrame:
    """Most frequent value per customer, counted over source rows (ties: the smallest text)."""
    counts = lf.filter(pl.col(role).is_not_null()).group_by("cid", role).agg(pl.col("n").sum())
    return (counts.filter(pl.col("n") == pl.col("n").max().over("cid"))
            .group_by("cid").agg(pl.col(role).cast(pl.String).min()))


def _gaps(keys: pl.DataFrame) -> tuple[pl.DataFrame, float | None]:
    """Whole-day gaps between consecutive distinct purchase dates: median per customer and overall.

    ``keys``: the (customer, day) keys of the purchases; sorted and distinct, a gap is the
    difference of two neighbouring keys of one customer."""
    k = keys["k"].unique().sort().to_frame()
    cid = pl.col("k") // (1 << DAY_BITS)
    gaps = k.select(cid.alias("cid"), pl.when(cid == cid.shift()).then(pl.col("k") - pl.col("k").shift()).alias("gap"))
    gaps = gaps.filter(pl.col("gap").is_not_null())
    pop = gaps.select(pl.col("gap").median()).item() if gaps.height else None
    own = gaps.group_by("cid").agg(pl.col("gap").median().alias("own_gap"))
    return own, None if pop is None else float(pop)
