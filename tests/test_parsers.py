"""Typed parsing of amounts, dates, customer ids and totals rows (SPEC §2)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segkit.ingest.clean import TOTALS_PATTERN, parse_amount, parse_customer_id, parse_date, to_money


def amounts(values):
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(parse_amount(pl.col("v")))["v"].to_list()


def dates(values, fmt=""):
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(parse_date(pl.col("v"), fmt).alias("v"))["v"].to_list()


@pytest.mark.parametrize(("text", "value"), [
    ("1234.5", 1234.5),
    ("1,234.50", 1234.5),
    ("¥1,234.50", 1234.5),
    ("￥ 12,345,678.90", 12345678.9),
    ("$99", 99.0),
    ("€ 7.25", 7.25),
    ("(1,234.00)", -1234.0),
    ("(￥1,234.00)", -1234.0),
    ("-￥35,708.40", -35708.4),
    ("￥-35,708.40", -35708.4),
    (" 12 ", 12.0),
    ("1.5E+06", 1500000.0),
    ("-0.5", -0.5),
    ("100元", 100.0),
    ("RMB 1,234.00", 1234.0),
    ("USD1,000", 1000.0),
    ("1,234.00-", -1234.0),  # SAP's trailing minus
    ("1，234", 1234.0),  # full-width comma
])
def test_amount_formats(text, value):
    assert amounts([text]) == [pytest.approx(value, abs=1e-9)]


@pytest.mark.parametrize("text", ["abc", "1.2.3", "12abc", "--5", "inf", "nan", "N/A", "1,2a", "5-5", "-"])
def test_unparsable_amount_is_null_not_zero(text):
    assert amounts([text]) == [None]


@pytest.mark.parametrize(("text", "value"), [
    ("2024-01-05", dt.date(2024, 1, 5)),
    ("2024-1-5", dt.date(2024, 1, 5)),
    ("2024/01/05", dt.date(2024, 1, 5)),
    ("2024/1/5", dt.date(2024, 1, 5)),
    ("2024.01.05", dt.date(2024, 1, 5)),
    ("20240105", dt.date(2024, 1, 5)),
    ("2024年1月5日", dt.date(2024, 1, 5)),
    ("2024年01月05日 13:45", dt.date(2024, 1, 5)),
    ("2024-01-05 08:26:00", dt.date(2024, 1, 5)),
    ("2024-01-05T08:26:00", dt.date(2024, 1, 5)),
    ("2024-01-05 08:26:00.123", dt.date(2024, 1, 5)),
    ("45296", dt.date(2024, 1, 5)),  # Excel serial
    ("45296.75", dt.date(2024, 1, 5)),  # serial with a time of day
    ("61", dt.date(1900, 3, 1)),
])
def test_date_formats(text, value):
    assert dates([text]) == [value]


@pytest.mark.parametrize("text", ["2024-13-01", "2024-02-30", "yesterday", "05/01/2024", "2024-01-05 garbage",
                                  "0", "99999999"])
def test_unparsable_date_is_null(text):
    assert dates([text]) == [None]


def test_explicit_date_format():
    assert dates(["05/01/2024", "2024-01-05"], "%d/%m/%Y") == [dt.date(2024, 1, 5), None]
    assert dates(["12/1/2010 8:26"], "%m/%d/%Y %H:%M") == [dt.date(2010, 12, 1)]


def test_customer_id_keeps_leading_zeros_and_drops_float_suffix():
    s = pl.DataFrame({"v": ["000123", " C-9 ", "17850.0", "17850.5", "", None]})
    assert s.select(parse_customer_id(pl.col("v")))["v"].to_list() == ["000123", "C-9", "17850", "17850.5", None, None]


@pytest.mark.parametrize(("cell", "is_total"), [
    ("合计", True), ("合 计", True), ("总　计", True), ("小计", True), ("总计", True), ("合计：", True), ("本页小计", True),
    ("Total", True), ("TOTAL:", True), ("Subtotal", True), ("Grand Total", True),
    ("Total Wine & More", False), ("客户合计公司", False), ("totally", False), ("C001", False),
])
def test_totals_pattern(cell, is_total):
    assert pl.Series([cell]).str.contains(TOTALS_PATTERN)[0] is is_total


def test_money_conversion_is_correctly_rounded():
    got = to_money(pl.Series([15_300_000, 88_719_855_400_000, -1, None])).to_list()
    assert got == [15.3, 88719855.4, -0.000001, None]
