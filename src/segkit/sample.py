"""Synthetic wholesale order lines for demos, tests and benchmarks.

The shape follows a distributor's book: a few strategic accounts and a long tail of small shops
(annual spend drawn per tier so all five default tiers are populated), multi-line orders, about
1% return lines, channels (offline, online, distributor), regions, customer types, new customers,
customers who stopped buying, and customers growing or shrinking over two years. Deterministic
for a given seed. Vectorised with numpy: 10 million lines take seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from segkit.errors import UsageError, option

END_DATE = dt.date(2026, 10, 31)
SPAN_DAYS = 730

TIER_RANGES = [  # (share of customers, low, high) of yearly spend
    (0.015, 10e6, 40e6),
    (0.04, 3e6, 10e6),
    (0.10, 1e6, 3e6),
    (0.20, 3e5, 1e6),
    (0.645, 5e3, 3e5),
]
CHANNELS = {"en": ["offline", "online", "distributor"], "zh": ["线下", "线上", "经销"]}
CHANNEL_P = [0.55, 0.2, 0.25]
TYPES = {
    "en": [["retail store", "supermarket", "restaurant chain"], ["online shop"], ["distributor", "agent"]],
    "zh": [["零售门店", "连锁超市", "餐饮连锁"], ["网店"], ["经销商", "代理商"]],
}
REGIONS = {
    "en": ["East", "South", "North", "Central", "Southwest", "Northwest", "Northeast"],
    "zh": ["华东", "华南", "华北", "华中", "西南", "西北", "东北"],
}
REGION_P = [0.3, 0.22, 0.18, 0.12, 0.09, 0.05, 0.04]
CATEGORIES = {
    "en": ["beverages", "snacks", "dairy", "household", "personal care", "frozen"],
    "zh": ["饮料", "休闲食品", "乳制品", "家居清洁", "个人护理", "冷冻食品"],
}
NAME_PARTS = {
    "en": (["Sunrise", "Golden", "Harbor", "Maple", "Summit", "Blue River", "Evergreen", "Pioneer",
            "Oak", "Silver", "Red Rock", "Lakeside", "Northstar", "Crown", "Valley"],
           ["Trading", "Foods", "Mart", "Supply", "Stores", "Wholesale", "Retail", "Market"],
           ["Co.", "Ltd.", "Inc.", "Group", "LLC"]),
    "zh": (["上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "沈阳", "苏州", "重庆"],
           ["恒达", "华联", "金鑫", "永辉", "盛世", "佳和", "鸿运", "同福", "万家", "瑞丰", "新星", "德顺"],
           ["商贸有限公司", "便利店", "超市", "食品经营部", "贸易公司", "连锁有限公司"]),
}
COST_HEADER = {"en": "cost", "zh": "成本金额"}
MARGIN_RANGE = (0.05, 0.35)  # gross margin per line, drawn uniformly
HEADERS = {
    "en": ["order_id", "order_date", "customer_id", "customer_name", "channel", "region",
           "customer_type", "category", "quantity", "unit_price", "amount"],
    "zh": ["单据编号", "单据日期", "客户编码", "客户名称", "渠道", "区域", "客户类型", "商品类别",
           "数量", "含税单价", "价税合计"],
}


@dataclass(frozen=True)
class Profiles:
    """What drives each synthetic customer's orders (arrays indexed by customer)."""

    tier: np.ndarray  # index into TIER_RANGES
    spend: np.ndarray  # yearly spend
    start_day: np.ndarray  # first active day, 0..SPAN_DAYS
    end_day: np.ndarray  # last active day
    trend: np.ndarray  # log growth per day

    @property
    def active_years(self) -> np.ndarray:
        return (self.end_day - self.start_day) / 365.0


def generate(rows: int, customers: int, *, seed: int = 7, lang: str = "en",
             end: dt.date = END_DATE, cost: bool = False) -> pl.DataFrame:
    """Order lines as a frame with typed columns (dates as Date, money as Float64).

    The steps draw from one generator in a fixed order, so a seed always gives the same lines.
    ``cost`` adds a last column, the cost of each line (a gross margin of 5-35%), drawn from a
    second generator so the other columns are the same with or without it.
    """
    _check_arguments(rows, customers, lang)
    rng = np.random.default_rng(seed)
    prof = _profiles(rng, customers)
    lines = _lines_per_customer(rng, prof, rows)
    per_order = np.clip(np.round(1 + np.log10(np.maximum(prof.spend, 1e4) / 1e4)), 1, 8).astype(np.int64)
    n_orders = -(-lines // per_order)
    day = _order_days(rng, prof, n_orders)
    order_of_line, cust_of_line = _line_orders(lines, n_orders, per_order)
    values = _line_values(rng, prof, lines, cust_of_line)
    cust = _customer_attributes(rng, prof.tier, lang)
    df = _assemble(rng, values, cust, day, order_of_line, cust_of_line, lang, end)
    return with_cost(df, seed, lang) if cost else df


def with_cost(df: pl.DataFrame, seed: int, lang: str) -> pl.DataFrame:
    """``df`` with the cost of each line: amount x (1 - margin), to the cent (returns carry
    their cost back, so it has the amount's sign)."""
    margin = np.random.default_rng([seed, 1]).uniform(*MARGIN_RANGE, df.height)
    amount = df[HEADERS[lang][-1]].to_numpy()
    return df.with_columns(pl.Series(COST_HEADER[lang], np.round(amount * (1 - margin), 2)))


def _check_arguments(rows: int, customers: int, lang: str) -> None:
    if rows < 1 or customers < 1:
        raise UsageError(f"{option('rows')} and {option('customers')} must be at least 1")
    if customers > rows:
        raise UsageError(f"{option('customers')} ({customers}) cannot exceed {option('rows')} ({rows}): "
                         "every customer needs a line")
    if lang not in ("en", "zh"):
        raise UsageError(f"{option('lang')} {lang}: choose en or zh")


def _profiles(rng: np.random.Generator, n: int) -> Profiles:
    """Yearly spend by tier; an activity span (some new in the last year, some stopped); a trend."""
    shares = np.array([t[0] for t in TIER_RANGES])
    tier_of = rng.choice(len(TIER_RANGES), size=n, p=shares / shares.sum())
    for t in range(len(TIER_RANGES)):  # every tier present even in small samples
        if n >= 2 * len(TIER_RANGES):
            tier_of[t * 2: t * 2 + 2] = t
    lo = np.array([t[1] for t in TIER_RANGES])[tier_of]
    hi = np.array([t[2] for t in TIER_RANGES])[tier_of]
    spend = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    start_day = np.zeros(n)
    end_day = np.full(n, float(SPAN_DAYS))
    kind = rng.random(n)
    new = kind < 0.12
    stopped = (kind >= 0.12) & (kind < 0.22)
    start_day[new] = rng.uniform(SPAN_DAYS - 365, SPAN_DAYS - 30, new.sum())
    end_day[stopped] = rng.uniform(120, SPAN_DAYS - 90, stopped.sum())
    trend = rng.normal(0.0, 0.45, n) / 365.0
    return Profiles(tier_of, spend, start_day, end_day, trend)


def _lines_per_customer(rng: np.random.Generator, prof: Profiles, rows: int) -> np.ndarray:
    """More lines for bigger and longer-active accounts, at least one each, ``rows`` in all."""
    weight = prof.spend ** 0.6 * np.maximum(prof.active_years, 0.1)
    lines = np.maximum(1, np.floor(weight / weight.sum() * (rows - len(weight))).astype(np.int64) + 1)
    short = rows - lines.sum()
    if short > 0:
        np.add.at(lines, rng.choice(len(weight), size=short, p=weight / weight.sum()), 1)
    return lines


def _order_days(rng: np.random.Generator, prof: Profiles, n_orders: np.ndarray) -> np.ndarray:
    """Order days by inverse-CDF sampling of an exponential trend inside each active span."""
    cust_of_order = np.repeat(np.arange(len(n_orders)), n_orders)
    u = rng.random(int(n_orders.sum()))
    a, b, k = prof.start_day[cust_of_order], prof.end_day[cust_of_order], prof.trend[cust_of_order]
    small = np.abs(k) < 1e-9
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        x = np.where(small, a + u * (b - a),
                     a + np.log1p(u * np.expm1(k * (b - a))) / np.where(small, 1.0, k))
    return np.clip(np.floor(x), 0, SPAN_DAYS).astype(np.int64)


def _line_orders(lines: np.ndarray, n_orders: np.ndarray,
                 per_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order and the customer of every line."""
    line_order_start = np.concatenate([[0], np.cumsum(n_orders)[:-1]])
    cust_of_line = np.repeat(np.arange(len(lines)), lines)
    within = np.arange(int(lines.sum())) - np.repeat(np.concatenate([[0], np.cumsum(lines)[:-1]]), lines)
    return line_order_start[cust_of_line] + within // per_order[cust_of_line], cust_of_line


def _line_values(rng: np.random.Generator, prof: Profiles, lines: np.ndarray,
                 cust_of_line: np.ndarray) -> dict[str, np.ndarray]:
    """Quantity, unit price and amount per line; about 1% are returns of part of an earlier line."""
    rows = len(cust_of_line)
    years = np.maximum(prof.active_years[cust_of_line], 0.05)
    amount = prof.spend[cust_of_line] * years / lines[cust_of_line] * rng.lognormal(0.0, 0.5, rows)
    price = np.round(np.exp(rng.uniform(np.log(2), np.log(400), rows)), 2)
    qty = np.maximum(1, np.round(amount / price)).astype(np.int64)
    ret = rng.random(rows) < 0.01
    qty = np.where(ret, -np.maximum(1, qty // 4), qty)
    return {"_ret": ret, "quantity": qty, "unit_price": price, "amount": np.round(qty * price, 2)}


def _customer_attributes(rng: np.random.Generator, tier_of: np.ndarray, lang: str) -> pl.DataFrame:
    """Id, name, channel, region and type per customer; strategic accounts are offline or distributors."""
    n = len(tier_of)
    ch = rng.choice(3, size=n, p=CHANNEL_P)
    ch[tier_of == 0] = np.where(rng.random((tier_of == 0).sum()) < 0.5, 2, 0)
    type_idx = np.array([rng.integers(len(TYPES[lang][c])) for c in ch])
    region = rng.choice(len(REGIONS[lang]), size=n, p=REGION_P)
    p1, p2, p3 = NAME_PARTS[lang]
    sep = " " if lang == "en" else ""
    names = [sep.join((p1[i % len(p1)], p2[(i // len(p1)) % len(p2)], p3[(i * 7 + 3) % len(p3)]))
             + (f" {i}" if lang == "en" else f"{i}号") for i in range(n)]
    return pl.DataFrame({
        "_c": np.arange(n),
        "customer_id": [f"{i + 1:06d}" for i in range(n)],
        "customer_name": names,
        "channel": [CHANNELS[lang][c] for c in ch],
        "region": [REGIONS[lang][r] for r in region],
        "customer_type": [TYPES[lang][c][t] for c, t in zip(ch, type_idx)],
    })


def _assemble(rng: np.random.Generator, values: dict[str, np.ndarray], cust: pl.DataFrame, day: np.ndarray,
              order_of_line: np.ndarray, cust_of_line: np.ndarray, lang: str, end: dt.date) -> pl.DataFrame:
    """One frame of lines in date order; returns come 1-29 days after their order, ids RT/SO."""
    rows = len(cust_of_line)
    ret = values["_ret"]
    cats = CATEGORIES[lang]
    df = pl.DataFrame({
        "_c": cust_of_line,
        "_o": order_of_line,
        "_ret": ret,
        "_day": day[order_of_line] + np.where(ret, rng.integers(1, 30, rows), 0),
        "category": np.array(cats)[rng.integers(len(cats), size=rows)],
        "quantity": values["quantity"],
        "unit_price": values["unit_price"],
        "amount": values["amount"],
    })
    start = end - dt.timedelta(days=SPAN_DAYS)
    df = (
        df.with_columns(pl.col("_day").clip(0, SPAN_DAYS))
        .join(cust, on="_c", how="left")
        .with_columns(
            (pl.lit(start) + pl.duration(days=pl.col("_day"))).alias("order_date"),
            pl.when(pl.col("_ret"))
            .then(pl.format("RT{}", pl.col("_o").cast(pl.String).str.zfill(8)))
            .otherwise(pl.format("SO{}", pl.col("_o").cast(pl.String).str.zfill(8)))
            .alias("order_id"),
        )
        .sort("order_date", "order_id", "_c")
        .select(HEADERS["en"])
    )
    if lang == "zh":
        df.columns = HEADERS["zh"]
    return df


def write(df: pl.DataFrame, path: Path, *, encoding: str = "utf-8", messy: bool = False) -> None:
    """Write as CSV (.csv/.tsv), Excel (.xlsx) or Parquet (.parquet) by the file's extension.

    ``messy`` imitates an ERP export: a title row and an export-date row above the header,
    currency-formatted amounts (￥1,234.50), mixed date styles, and a 合计/Total row at the end.
    """
    ext = path.suffix.lower()
    zh = df.columns[0] == HEADERS["zh"][0]
    if messy:
        df = _messy(df, zh)
    if ext == ".parquet":
        df.write_parquet(path)
        return
    if ext in (".xlsx", ".xlsm"):
        _write_xlsx(df, path, messy, zh)
        return
    if ext not in (".csv", ".tsv", ".txt"):
        raise UsageError(f"{path}: choose a .csv, .tsv, .xlsx or .parquet file name")
    sep = "\t" if ext == ".tsv" else ","
    text = df.write_csv(separator=sep)
    if messy:
        title = ("华东某商贸有限公司 销售出库明细表" if zh else "Sample Trading Co. sales detail") + sep * (df.width - 1)
        exported = ("导出日期：" if zh else "Exported: ") + END_DATE.isoformat() + sep * (df.width - 1)
        text = f"{title}\n{exported}\n{text}"
    path.write_bytes(text.encode(encoding))


def _messy(df: pl.DataFrame, zh: bool) -> pl.DataFrame:
    amount, date = df.columns[len(HEADERS["en"]) - 1], df.columns[1]
    n = df.height
    idx = pl.int_range(0, n)
    money = pl.col(amount)
    formatted = (
        pl.when(money < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        + pl.lit("￥" if zh else "$")
        + _thousands(money.abs())
    )
    d = pl.col(date)
    date_txt = (
        pl.when(idx % 3 == 0).then(d.dt.strftime("%Y年%-m月%-d日" if zh else "%Y/%m/%d"))
        .when(idx % 3 == 1).then(d.dt.strftime("%Y/%m/%d"))
        .otherwise(d.dt.strftime("%Y-%m-%d"))
    )
    out = df.with_columns(date_txt.alias(date), formatted.alias(amount)).with_columns(pl.all().cast(pl.String))
    total = df[amount].sum()
    total_row: dict[str, str | None] = {c: None for c in out.columns}
    total_row[out.columns[0]] = "合计" if zh else "Total"
    total_row[amount] = ("￥" if zh else "$") + f"{total:,.2f}"
    return pl.concat([out, pl.DataFrame([total_row], schema=out.schema)])


def _thousands(x: pl.Expr) -> pl.Expr:
    cents = (x * 100).round(0).cast(pl.Int64)
    whole = (cents // 100).cast(pl.String)
    frac = (cents % 100).cast(pl.String).str.zfill(2)
    # insert thousands separators by reversing, chunking and reversing back
    grouped = whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse().str.strip_chars_start(",")
    return grouped + pl.lit(".") + frac


def _write_xlsx(df: pl.DataFrame, path: Path, messy: bool, zh: bool) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("订单" if zh else "orders")
    if messy:
        ws.append(["华东某商贸有限公司 销售出库明细表" if zh else "Sample Trading Co. sales detail"])
        ws.append([("导出日期：" if zh else "Exported: ") + END_DATE.isoformat()])
    ws.append(df.columns)
    for row in df.iter_rows():
        ws.append(list(row))
    wb.save(path)
