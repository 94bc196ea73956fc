"""The rule set of ``ingest/rules.py`` on a table of tricky cells, walked through both engines.

Each entry is a row of an input file and what the rules must make of it: a usable row (its
customer id, order date and amount in micro-units), a row left out (blank, totals) or a rejected
row with its reason. The polars engine (``clean.classify``) always runs the table; the Spark
engine (``engines.spark.classify``) runs it when PySpark is installed. Both must give exactly the
expected result, and every reason of ``rules.REASONS`` must appear in the table.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from segkit import config
from segkit.ingest import clean, rules
from segkit.ingest.read import read_input
from spark_fixtures import spark  # noqa: F401

D = dt.date(2024, 1, 5)


def ok(micro: int, date: dt.date = D, cid: str = "C1") -> tuple[str, dt.date, int]:
    """A usable row: customer id, order date, amount in micro-units."""
    return (cid, date, micro)


# (headers, decimal mark, rows: (cells..., expected)); expected is ok(...), a reason message,
# rules.BLANK or rules.TOTALS
AMOUNT = ("customer id", "order date", "amount", "customer name")
DATE_CELL = "2024-01-05"
TABLES: dict[str, tuple[tuple[str, ...], str, list[tuple[Any, ...]]]] = {
    "amounts": (AMOUNT, ".", [
        ("C1", DATE_CELL, "¥1,234.50", "n", ok(1_234_500_000)),
        ("C1", DATE_CELL, "(12)", "n", ok(-12_000_000)),
        ("C1", DATE_CELL, "-(12)", "n", ok(-12_000_000)),
        ("C1", DATE_CELL, "$(1,234.00)", "n", ok(-1_234_000_000)),
        ("C1", DATE_CELL, "1,234.00-", "n", ok(-1_234_000_000)),
        ("C1", DATE_CELL, "12-", "n", ok(-12_000_000)),
        ("C1", DATE_CELL, "-12.50", "n", ok(-12_500_000)),  # a return
        ("C1", DATE_CELL, "+5", "n", ok(5_000_000)),
        ("C1", DATE_CELL, "12元", "n", ok(12_000_000)),
        ("C1", DATE_CELL, "RMB 12", "n", ok(12_000_000)),
        ("C1", DATE_CELL, "€ 3.10", "n", ok(3_100_000)),
        ("C1", DATE_CELL, "1 234.50", "n", ok(1_234_500_000)),
        ("C1", DATE_CELL, "1，234.50", "n", ok(1_234_500_000)),  # full-width comma
        ("C1", DATE_CELL, "\u300012\u3000", "n", ok(12_000_000)),  # full-width spaces
        ("C1", DATE_CELL, "\u00a012.5\u2009", "n", ok(12_500_000)),
        ("C1", DATE_CELL, "1.5e3", "n", ok(1_500_000_000)),
        ("C1", DATE_CELL, ".5", "n", ok(500_000)),
        ("C1", DATE_CELL, "1e400", "n", "unparsable amount (not a number)"),  # infinite
        ("C1", DATE_CELL, "inf", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "NaN", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "١٢٣", "n", "unparsable amount (not a number)"),  # Arabic-Indic digits
        ("C1", DATE_CELL, "５", "n", "unparsable amount (not a number)"),  # full-width digit
        ("C1", DATE_CELL, "1,2,3", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "12 34", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "1.2.3", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "--5", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "abc", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "", "n", "missing amount"),
        ("C1", DATE_CELL, "\u3000", "n", "missing amount"),
        ("C1", DATE_CELL, "1e13", "n", "amount too large"),  # 1e19 micro-units
        ("C1", DATE_CELL, "8999999999", "n", ok(8_999_999_999_000_000)),
    ]),
    "dates": (AMOUNT, ".", [
        ("C1", "2024-01-05", "1", "n", ok(1_000_000)),
        ("C1", "2024/1/5", "1", "n", ok(1_000_000)),
        ("C1", "2024.01.05", "1", "n", ok(1_000_000)),
        ("C1", "2024年1月5日", "1", "n", ok(1_000_000)),
        ("C1", "2024 年 1 月 5 日", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05 08:26:00", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05T08:26", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05 08:26:00.123Z", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05 8:26+08:00", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05 00:00:00", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05 ١٢:٣٠", "1", "n", ok(1_000_000)),  # digits of a time are not read
        ("C1", "20240105", "1", "n", ok(1_000_000)),
        ("C1", "2024-01-05\u3000", "1", "n", ok(1_000_000)),
        ("C1", "2024-02-29", "1", "n", ok(1_000_000, dt.date(2024, 2, 29))),
        ("C1", "45000", "1", "n", ok(1_000_000, dt.date(2023, 3, 15))),  # Excel serial
        ("C1", "45000.75", "1", "n", ok(1_000_000, dt.date(2023, 3, 15))),
        ("C1", "1", "1", "n", ok(1_000_000, dt.date(1899, 12, 31))),
        ("C1", "2958465", "1", "n", ok(1_000_000, dt.date(9999, 12, 31))),  # MAX_SERIAL
        ("C1", "2958466", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "0", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "2023-02-29", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "2024-13-01", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "2024-1-32", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "20241399", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "12345678", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "24-01-05", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "2024/01/05 12:00 PM", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "٢٠٢٤-01-05", "1", "n", "unparsable order_date (not a date)"),  # digits of a date are read
        ("C1", "2024-01-0５", "1", "n", "unparsable order_date (not a date)"),
        ("C1", "0000-01-01", "1", "n", "unparsable order_date (not a date)"),  # outside years 1..9999
        ("C1", "", "1", "n", "missing order_date"),
    ]),
    "ids and rows": (AMOUNT, ".", [
        (" 17850.0 ", DATE_CELL, "1", "n", ok(1_000_000, cid="17850")),
        ("17850.00", DATE_CELL, "1", "n", ok(1_000_000, cid="17850")),
        ("١٢.0", DATE_CELL, "1", "n", ok(1_000_000, cid="١٢")),  # any digits, kept as text
        ("000123", DATE_CELL, "1", "n", ok(1_000_000, cid="000123")),
        ("A-1.0", DATE_CELL, "1", "n", ok(1_000_000, cid="A-1.0")),
        ("17850.05", DATE_CELL, "1", "n", ok(1_000_000, cid="17850.05")),
        ("", DATE_CELL, "1", "n", "missing customer_id"),
        ("\u3000 ", DATE_CELL, "1", "n", "missing customer_id"),
        # the first reason in rules.REASONS order wins
        ("", "", "", "n", "missing customer_id"),
        ("C1", "x", "x", "n", "unparsable order_date (not a date)"),
        ("C1", "", "1e13", "n", "missing order_date"),
        ("C1", DATE_CELL, "x", "n", "unparsable amount (not a number)"),
        # rows left out before any rule: blank and totals rows
        ("", "", "", "", rules.BLANK),
        ("  ", "\u3000", "\u00a0", " ", rules.BLANK),
        ("合计", "", "999", "", rules.TOTALS),
        ("本页小计", "", "999", "", rules.TOTALS),
        ("总 计：", "", "999", "", rules.TOTALS),
        ("Grand Total:", "", "999", "", rules.TOTALS),
        ("TOTALS", "", "999", "", rules.TOTALS),
        ("Sub Total", DATE_CELL, "999", "", rules.TOTALS),
        ("", "Total", "999", "", rules.TOTALS),  # the first non-empty cell
        ("X9", DATE_CELL, "999", "小计", rules.TOTALS),  # the name column
        ("X9", DATE_CELL, "5", "客户合计", ok(5_000_000, cid="X9")),  # not at the start
        ("Total sales", DATE_CELL, "5", "n", ok(5_000_000, cid="Total sales")),
        ("totally", DATE_CELL, "5", "n", ok(5_000_000, cid="totally")),
        ("totalſ", DATE_CELL, "999", "n", rules.TOTALS),  # a long s folds to s, in both engines
    ]),
    "quantity x unit price": (("customer id", "order date", "quantity", "unit price"), ".", [
        ("C1", DATE_CELL, "2", "3.50", ok(7_000_000)),
        ("C1", DATE_CELL, "-2", "3.50", ok(-7_000_000)),  # a return
        ("C1", DATE_CELL, "2", "(3.50)", ok(-7_000_000)),
        ("C1", DATE_CELL, "", "3.50", "missing quantity"),
        ("C1", DATE_CELL, "two", "3.50", "unparsable quantity (not a number)"),
        ("C1", DATE_CELL, "2", "", "missing unit_price"),
        ("C1", DATE_CELL, "2", "x", "unparsable unit_price (not a number)"),
        ("C1", DATE_CELL, "x", "", "unparsable quantity (not a number)"),  # quantity before unit price
        ("C1", DATE_CELL, "1e10", "1e9", "amount too large"),
    ]),
    "decimal comma": (AMOUNT, ",", [
        ("C1", DATE_CELL, "1.234,50", "n", ok(1_234_500_000)),
        ("C1", DATE_CELL, "22.657,60", "n", ok(22_657_600_000)),
        ("C1", DATE_CELL, "12,5", "n", ok(12_500_000)),
        ("C1", DATE_CELL, "1.234", "n", ok(1_234_000_000)),
        ("C1", DATE_CELL, "1 234,5", "n", ok(1_234_500_000)),
        ("C1", DATE_CELL, "1.234,5-", "n", ok(-1_234_500_000)),
        ("C1", DATE_CELL, "(1.234,00)", "n", ok(-1_234_000_000)),
        ("C1", DATE_CELL, "1,234.50", "n", "unparsable amount (not a number)"),
        ("C1", DATE_CELL, "1.2.3", "n", "unparsable amount (not a number)"),
    ]),
}
# Profit columns are read by the polars engine only (the Spark engine refuses them).
PROFIT_TABLES: dict[str, tuple[tuple[str, ...], str, list[tuple[Any, ...]]]] = {
    "cost": (("customer id", "order date", "amount", "cost"), ".", [
        ("C1", DATE_CELL, "10", "4", ok(10_000_000)),
        ("C1", DATE_CELL, "10", "", "missing cost"),
        ("C1", DATE_CELL, "10", "n/a", "unparsable cost (not a number)"),
        ("C1", DATE_CELL, "x", "n/a", "unparsable amount (not a number)"),  # amount before cost
        ("C1", DATE_CELL, "10", "1e13", "amount too large"),  # the profit would not fit
    ]),
    "gross profit": (("customer id", "order date", "amount", "gross profit"), ".", [
        ("C1", DATE_CELL, "10", "6", ok(10_000_000)),
        ("C1", DATE_CELL, "10", "", "missing gross_profit"),
        ("C1", DATE_CELL, "10", "-", "unparsable gross_profit (not a number)"),
    ]),
}
PROFIT = {("cost", 0): 6_000_000, ("gross profit", 0): 6_000_000}


def _write(path: Path, headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(headers)
        w.writerows(r[:-1] for r in rows)
    return path


def _cfg(decimal: str) -> config.Config:
    return dataclasses.replace(config.load(use_env=False), max_bad_rows=1.0, decimal=decimal)


def _outcome(skip: str | None, reason: str | None, cid: str | None, date: dt.date | None, micro: int | None) -> Any:
    if skip is not None:
        return skip
    if reason is not None:
        return reason
    return (cid, date, micro)


def _check(name: str, rows: list[tuple[Any, ...]], got: list[Any]) -> None:
    assert len(got) == len(rows), (name, len(got), len(rows))
    wrong = [(r[:-1], r[-1], g) for r, g in zip(rows, got) if g != r[-1]]
    assert not wrong, (name, wrong)


def _polars(path: Path, decimal: str) -> list[Any]:
    cfg = _cfg(decimal)
    raw = read_input(str(path), mapping={})
    df = clean.classify(raw, cfg)
    return [_outcome(*r) for r in df.select("skip", "reason", "customer_id", "order_date", "amount").iter_rows()]


@pytest.mark.parametrize("name", list(TABLES) + list(PROFIT_TABLES))
def test_polars_engine_follows_the_table(tmp_path, name):
    headers, decimal, rows = {**TABLES, **PROFIT_TABLES}[name]
    _check(name, rows, _polars(_write(tmp_path / "t.csv", headers, rows), decimal))


@pytest.mark.parametrize("name", list(PROFIT_TABLES))
def test_profit_of_usable_rows(tmp_path, name):
    headers, decimal, rows = PROFIT_TABLES[name]
    raw = read_input(str(_write(tmp_path / "t.csv", headers, rows)), mapping={})
    profit = clean.classify(raw, _cfg(decimal))["profit"].to_list()
    assert {(name, i): profit[i] for i, r in enumerate(rows) if isinstance(r[-1], tuple)} == {
        k: v for k, v in PROFIT.items() if k[0] == name}


def test_every_reason_is_in_the_table():
    seen = {r[-1] for _, _, rows in (*TABLES.values(), *PROFIT_TABLES.values()) for r in rows}
    reasons = [r.message for r in rules.REASONS]
    assert [m for m in reasons if m not in seen] == []
    assert {rules.BLANK, rules.TOTALS} <= seen
    # and the table names no reason the rules do not have
    assert {s for s in seen if isinstance(s, str)} - set(reasons) - {rules.BLANK, rules.TOTALS} == set()
    # every reason the Spark engine can give (no profit columns there) is in its tables
    spark_seen = {r[-1] for _, _, rows in TABLES.values() for r in rows}
    assert [r.message for r in rules.REASONS if r.role not in ("cost", "gross_profit") and r.message not in spark_seen] == []


@pytest.mark.parametrize(("rust", "digits", "java"), [
    (r"^\s*a$", "ascii", r"^\p{IsWhite_Space}*a\z"),
    (r"^\d{4}$", "ascii", r"^[0-9]{4}\z"),
    (r"^\d{4}$", "unicode", r"^\p{Nd}{4}\z"),
    (r"^[\d.,\s]$", "ascii", r"^[0-9.,\p{IsWhite_Space}]\z"),
    (r"^[\d.,\s]$", "unicode", r"^[\p{Nd}.,\p{IsWhite_Space}]\z"),
    (r"[¥$€]|USD", "ascii", r"[¥$€]|USD"),  # $ in a class is a character
    (r"^\(.*\)$", "ascii", r"(?d)^\(.*\)\z"),  # . stops only at \n, as in Rust
    (r"^\.0+$", "ascii", r"^\.0+\z"),  # an escaped point is no wildcard
    (r"^(?P<y>\d{4})", "ascii", r"^(?<y>[0-9]{4})"),
    (r"[]$]$", "ascii", r"[]$]\z"),
    (r"[^$.]$", "ascii", r"[^$.]\z"),
    (r"(?i)^total$|usd", "ascii", r"(?iu)^total\z|usd"),  # Unicode case folding, as Rust's
])
def test_java_dialect(rust, digits, java):
    assert rules.java(rust, digits=digits) == java


# Texts on which the two dialects would part without the derivation: Unicode digits and
# spaces, and the line breaks where Java's $ and . differ from Rust's.
DIALECT_CELLS = [
    (rules.TRAILING_MINUS, "unicode", ["1 234.00-", "١٢-", "1\u3000234-", "12-\n"]),
    (rules.BRACKETED, "ascii", ["(1\r2)", "(1\n2)", "(1\u20282)", "(12)\n", " ( 12 )\u3000元"]),
    (rules.TOTALS_PATTERN, "ascii", ["Total\n", "Total\u3000", "合\u3000计", "grand\u2009total：", "TOTAſ",
                                     "totalſ"]),
    (rules.SIGNS, "ascii", ["uſd", "UſD", "rmb", "\u212aRW"]),
    (rules.YMD_DATE + "$", "ascii", ["2024-01-05", "٢٠٢٤-01-05", "2024\u3000年1月5日", "2024-01-0５"]),
    (rules.YMD_TIME, "unicode", [" ١٢:٣٠", " 12:30\n", "\u300000:00:00", " 12:30:00.5+0800"]),
    (rules.ID_FLOAT, "unicode", ["١٢.0", "12.00\n", "12.0"]),
    (rules.SERIAL, "ascii", ["45000", "45000.5\n", "４５０００"]),
]


@pytest.mark.spark
def test_derived_java_patterns_match_as_the_rust_ones(spark):
    """Each pattern, in Rust (polars) and in the Java form ``rules.java`` derives (Spark), on
    texts where the dialects differ: the same matches. Digits the rules convert afterwards are
    ASCII in Java (the conversion rejects the others in polars), so those patterns are checked
    on ASCII-digit texts only when the match is what differs."""
    import polars as pl
    from pyspark.sql import functions as F

    for pattern, digits, texts in DIALECT_CELLS:
        java = rules.java(pattern, digits=digits)
        want = pl.Series(texts).str.contains(pattern).to_list()
        df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i int, t string")
        got = [r[0] for r in df.orderBy("i").select(F.col("t").rlike(java)).collect()]
        if digits == "ascii":  # non-ASCII digits: Rust matches, Java does not, the value is null in both
            want = [w and not any(c.isdigit() and not c.isascii() for c in t) for w, t in zip(want, texts)]
        assert got == want, (pattern, texts, got, want)


@pytest.mark.spark
@pytest.mark.parametrize("name", list(TABLES))
def test_spark_engine_follows_the_table(tmp_path, spark, name):
    from segkit.engines import spark as S

    headers, decimal, rows = TABLES[name]
    path = _write(tmp_path / "t.csv", headers, rows)
    inp = S.open_input(spark, str(path))
    df = S.classify(S.raw_rows(spark, inp), inp, _cfg(decimal))
    out = df.select(S.row_number_expr(inp).alias("row"), "_skip", "_reason", "_customer_id", "_order_date",
                    "_amount").orderBy("row").collect()
    _check(name, rows, [_outcome(*r[1:]) for r in out])


@pytest.mark.spark
@pytest.mark.parametrize("name", list(PROFIT_TABLES))
def test_spark_engine_refuses_profit_columns(tmp_path, spark, name):
    from segkit.engines import spark as S

    headers, decimal, rows = PROFIT_TABLES[name]
    inp = S.open_input(spark, str(_write(tmp_path / "t.csv", headers, rows)))
    with pytest.raises(S.SparkInputError, match="gross profit is not computed"):
        S._refuse_profit(inp)
