"""The Spark engine's parsing rules give the polars engine's results on odd values.

One local SparkSession for the module; each check runs the two engines' parsers on the same
corpus (hand-picked edge cases plus random strings over the characters the parsers care about)
and compares every value.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

pytest.importorskip("pyspark")

from segkit.ingest import clean  # noqa: E402
from spark_fixtures import spark  # noqa: E402,F401

pytestmark = pytest.mark.spark

EDGE = [
    None, "", "  ", "0", "-0", "1", "+5", ".5", "5.", "1e5", "1E+05", "-.5e3", "1e400", "inf", "NaN",
    "1_000", "0x10", "1.5d", "١٢٣", "５", "1,234.50", "¥1,234.50", "￥ 1 234,50", "$(1,234.00)",
    "(12)", "-(12)", "12-", "1,234.00-", "1.2.3", "RMB 12", "12元", "usd12", "€ 3.10", "£-4",
    "\u00a012\u3000", "\u200912\u2009", "1.0E7", "4.9e-324", "--5", "+-5", "12 -", "(1.5)元",
]
DATES = [
    None, "", "2024-01-05", "2024/1/5", "2024.01.05", "2024年1月5日", "2024 年 1 月 5 日",
    "2024-01-05 08:26:00", "2024-01-05T08:26", "2024-01-05 08:26:00.123Z", "2024-01-05 8:26+08:00",
    "2024-01-05 00:00:00", "2024-01-05 ١٢:٣٠", "20240105", "20241399", "2024-02-29", "2023-02-29",
    "1900-02-29", "2000-02-29", "0000-01-01", "9999-12-31", "45000", "45000.75", "1", "0", "2958465",
    "2958466", "12345678", "2024-13-01", "2024-00-10", "2024-04-31", "1582-10-10", "0001-01-01", "2024-1-32", "24-01-05", "2024/01/05 12:00 PM",
    "٢٠٢٤-01-05", "2024-01-05\u3000", "\t20240105 ",
]
IDS = [None, "", " 17850.0 ", "17850.00", "000123", "A-1.0", "17850.05", "١٢.0", "12.", "  x  "]


def _corpus(chars: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(chars) for _ in range(rng.randint(1, 10))) for _ in range(n)]


def _compare(spark, values: list, polars_expr, spark_expr, dtype=pl.String) -> None:
    expected = pl.DataFrame({"t": values}, schema={"t": pl.String}).select(polars_expr(pl.col("t")).alias("v"))
    sdf = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i long, t string")
    got = pl.from_arrow(sdf.select("i", spark_expr(sdf["t"]).alias("v")).toArrow()).sort("i")
    want = expected["v"].to_physical()
    got = got["v"].cast(expected["v"].dtype).to_physical()  # dates as day numbers: year 0 is allowed
    differ = want.ne_missing(got)
    mismatch = list(zip(pl.Series(values).filter(differ), want.filter(differ), got.filter(differ)))
    assert not mismatch, mismatch[:20]


def test_amounts_match(spark):
    from segkit.engines import spark_rules as R

    values = EDGE + _corpus("0123456789.,-+eE()$¥ 元x", 1500, 1) + _corpus("0123456789.-", 800, 5) + [
        "-", ".", "-.", "-.5", "-5.", "5-5", "5.-", "..5", "-" + "9" * 400, "9" * 400, "0005.50"]
    _compare(spark, values, clean.parse_amount, R.parse_amount)


def test_decimal_comma_amounts_match(spark):
    from segkit.engines import spark_rules as R

    values = EDGE + _corpus("0123456789.,-+eE()$¥ 元x", 1500, 11) + _corpus("0123456789.,", 800, 12) + [
        "22.657,60", "1.234", "1,234", "12,5", "1,2,3", "12 34", "1.234,5-", ",5", "5,", "(1.234,00)"]
    _compare(spark, values, lambda e: clean.parse_amount(e, ","), lambda c: R.parse_amount(c, ","))


def test_dates_match(spark):
    from segkit.engines import spark_rules as R

    values = DATES + _corpus("0123456789-/.年月日 T:", 1500, 2) + [
        f"{y}-{m}-{d}" for y in (1900, 2000, 2023, 2024) for m in range(0, 14) for d in (0, 1, 28, 29, 30, 31, 32)] + [
        f"{y}-{m:02d}-{d:02d}" for y in (1900, 2000, 2023, 2024) for m in range(0, 14) for d in (0, 1, 28, 29, 30, 31, 32)
    ] + ["2024-01-0５", "2024-01-+5", "2024-01- 5", "2024+01-05", "202401-05-", "-2024-1-05", "2024-01-05 "]
    _compare(spark, values, clean.parse_date, R.parse_date)


@pytest.mark.parametrize("fmt", ["%d/%m/%Y", "%m/%d/%Y %H:%M", "%d.%m.%y", "%Y%m%d"])
def test_date_formats_match(spark, fmt):
    from segkit.engines import spark_rules as R

    values = ["05/01/2024", "5/1/2024", "31/12/2023", "12/31/2023 13:45", "05.01.24", "20240105",
              "2024-01-05", "29/02/2023", "01/05/2024 07:00", ""]
    _compare(spark, values, lambda e: clean.parse_date(e, fmt), lambda c: R.parse_date(c, fmt))


def test_customer_ids_and_totals_match(spark):
    from segkit.engines import spark_rules as R

    _compare(spark, IDS + _corpus("0123456789. ", 500, 3), clean.parse_customer_id, R.parse_customer_id)
    totals = ["合计", "合 计", "本页小计", "总计：", "Total", "TOTAL:", "Grand Total", "subtotal", "Sub Totals",
              "totally", "Total sales", "客户合计", "  合计  ", "Totals：", "grandtotal", None, "",
              "\u3000合计", "全部合计", "本期 总 计", "sTotal", "gRAND total", "tOtAlS", "x Total", "17850", "Harbor"]
    _compare(spark, totals,
             lambda e: e.str.strip_chars().str.contains(clean.TOTALS_PATTERN).fill_null(False),
             lambda c: F_coalesce_false(R.is_totals(c)))


def F_coalesce_false(c):
    from pyspark.sql import functions as F

    return F.coalesce(c, F.lit(False))


def test_micro_units_match(spark):
    from segkit.engines import spark_rules as R

    rng = random.Random(4)
    values = [f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 4)}f}" for _ in range(3000)] + ["0.5", "1.5", "2.5", "-0.5",
                                                                                          "0.0000005", "0.0000015"]
    for unit in (1.0, 10000.0, 0.01):
        _compare(spark, values,
                 lambda e: (clean.parse_amount(e) * (unit * clean.MICRO)).round(0),
                 lambda c: R.to_micro(R.parse_amount(c), unit))
