"""The engine seam (segkit.engines): the polars engine's typed pass gives exactly what the
text path (read_input + clean.clean) gives, and the base table holds what the contract says."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conftest import dataset
from segkit import config
from segkit.ingest.clean import clean
from segkit.engines import BASE_SCHEMA, COUNT_KEYS, customer_table
from segkit.engines.polars import reduce_lines
from segkit.ingest.read import read_input

HOSTILE = """Sales detail export,,,,,
customer_id,customer_name,order_id,order_date,amount,channel
A1,Alpha Ltd,o1,2024-01-05,100.5,online
 A1 ,Alpha Ltd,o1 ,2024-01-06,20,online
17850.0,Beta,o2,2024-02-01,5,retail
17850,Beta,o3,2024/02/03,"1,234.00",retail
,,,,,
  ,Gamma,o4,2024-01-01,5,x
B2,Gamma,o5,2024-13-01,5,x
B2,Gamma,o6,2024-03-01,inf,x
B2,Gamma,o7,2024-03-02,-30,x
B2,Gamma,o8,2024-03-02,(12.00),
B2,Gamma,,2024-03-04,10,
C3,Delta,o9,20240305,7,online
C3,Delta,o10,2024-03-06 10:11:12,8,online
C3,Delta,o11,45000,9,online
Total,,,2024-03-07,999,
X9,小计,,2024-03-07,999,
D4,Eps,o12,2024-03-08,1e3,x
D4,Eps,o13,2024-03-09, 12 ,x
D4,Eps,o13,2024-03-09,+12,x
E5,Zeta,o14,2024-03-10,$5.00,
E5,Zeta,o15,2024-03-11,5.00-,
F6,Eta,o16,2023-03-11,50,
F6,Eta,o17,2022-03-11,40,
F6,Eta,o18,2022-01-11,40,
"""


@pytest.fixture(scope="module")
def cfg():
    return dataclasses.replace(config.load(use_env=False), max_bad_rows=1.0)


def text_path(path, cfg):
    raw = read_input(str(path), encoding=cfg.encoding, mapping=cfg.columns)
    reduced = reduce_lines(raw, clean(raw, cfg), cfg)
    return reduced.base, reduced.quality()


def assert_same_as_text_path(path, cfg):
    base, q = customer_table(str(path), cfg)
    ref, q_ref = text_path(path, cfg)
    assert_frame_equal(base.sort("customer_id"), ref.sort("customer_id"))
    assert q.counts == q_ref.counts
    assert_frame_equal(q.rejected, q_ref.rejected)
    assert (q.windows, q.population_median_gap, q.roles) == (q_ref.windows, q_ref.population_median_gap, q_ref.roles)
    assert (q.input.sha256, q.input.encoding) == (q_ref.input.sha256, q_ref.input.encoding)
    return base, q


def test_real_export_with_missing_and_float_ids(cfg):
    # 15,631 rows without a customer id, ids written as 17850.0, quantity x unit price, returns
    base, q = assert_same_as_text_path(dataset("online_retail_2010-12.csv"), cfg)
    assert q.counts["rejected_reasons"] == {"missing customer_id": 15631}
    assert "17850" in base["customer_id"].to_list()


def test_hostile_rows_are_explained_as_the_text_path_does(tmp_path, cfg):
    path = tmp_path / "hostile.csv"
    path.write_text(HOSTILE, encoding="utf-8")
    base, q = assert_same_as_text_path(path, cfg)
    c = q.counts
    assert (c["blank_rows"], c["totals_rows"]) == (1, 2)
    assert set(c["rejected_reasons"]) == {"missing customer_id", "unparsable order_date (not a date)",
                                          "unparsable amount (not a number)"}
    # " A1 " is A1, "17850.0" is 17850; formatted amounts parsed by the text path's parser
    assert base.filter(pl.col("customer_id") == "A1")["monetary"].item() == 120_500_000
    assert base.filter(pl.col("customer_id") == "17850")["monetary"].item() == 1_239_000_000
    as_of = dataclasses.replace(cfg, as_of=dt.date(2024, 3, 5))
    _, q2 = assert_same_as_text_path(path, as_of)
    assert q2.counts["excluded_after_as_of"] == 7


def test_totals_row_in_a_column_that_is_not_a_key(tmp_path, cfg):
    path = tmp_path / "note_first.csv"
    path.write_text("note,customer_id,order_date,amount\n,A,2024-01-01,5\nx,B,2024-01-02,6\n"
                    "合计,,2024-01-02,11\n", encoding="utf-8")
    _, q = assert_same_as_text_path(path, cfg)
    assert (q.counts["totals_rows"], q.counts["used_rows"]) == (1, 2)


def test_gb18030_after_a_utf8_head_is_decoded_as_gb18030(tmp_path, cfg):
    head = "".join(f"C{i % 50},2024-01-{i % 28 + 1:02d},{i}.5,plain\n" for i in range(20000))
    path = tmp_path / "late.csv"
    path.write_bytes(("customer_id,order_date,amount,channel\n" + head).encode()
                     + "Z1,2024-02-01,3,线上\n".encode("gb18030"))
    assert len(head) > 262144  # the odd bytes lie beyond the head the reader checks first
    base, q = assert_same_as_text_path(path, cfg)
    assert q.input.encoding == "gb18030"
    assert base.filter(pl.col("customer_id") == "Z1")["channel"].item() == "线上"


def test_base_table_contract_and_clv_inputs(tmp_path, cfg):
    path = tmp_path / "clv.csv"
    path.write_text("customer_id,order_id,order_date,amount,region\n"
                    "A,o1,2024-01-01,100,North\nA,o2,2024-01-01,-30,South\nA,o3,2024-01-05,50,South\n"
                    "A,o4,2024-01-09,-80,North\nA,o5,2024-01-09,,North\nB,o6,2024-01-09,-5,\n", encoding="utf-8")
    base, q = customer_table(str(path), cfg)
    assert {c: str(t) for c, t in base.schema.items()} == {**BASE_SCHEMA, "region": "String"}
    assert tuple(q.counts) == COUNT_KEYS
    a = base.filter(pl.col("customer_id") == "A").row(0, named=True)
    # purchases: o1 (100) and o3 (50); o2 and o4 are credit notes; o5 has no amount (rejected)
    assert (a["frequency"], a["orders_all"], a["monetary"]) == (2, 2, 40_000_000)
    assert (a["first_order_date"], a["last_order_date"]) == (dt.date(2024, 1, 1), dt.date(2024, 1, 5))
    assert a["own_gap"] == 4.0
    # days with a positive net: Jan 1 (100 - 30) and Jan 5 (50); Jan 9 nets -80
    assert (a["purchase_days"], a["first_purchase_day"], a["last_purchase_day"], a["repeat_value"]) == (
        2, dt.date(2024, 1, 1), dt.date(2024, 1, 5), 50_000_000)
    # region: North on 2 usable lines, South on 2: a tie goes to the smaller text
    assert a["region"] == "North"
    b = base.filter(pl.col("customer_id") == "B").row(0, named=True)
    assert (b["frequency"], b["purchase_days"], b["repeat_value"], b["first_order_date"], b["region"]) == (
        0, 0, 0, None, None)
    assert q.counts["rejected_reasons"] == {"missing amount": 1}


PROFIT_ROWS = """customer_id,order_id,order_date,amount,{col}
A1,o1,2024-01-05,100.5,60.25
A1,o1,2024-01-06,20,
A1,o2,2024-01-07,20,abc
B2,o3,2024-02-01,"1,234.00","1,000.00"
B2,o4,2024-02-02,10,1e300
B2,o5,2024-02-03,-30,-12.5
C3,o6,2024-03-01,7,(2.00)
C3,o7,2024-03-02,8,4.004
Total,,2024-03-07,999,999
"""


@pytest.mark.parametrize("col", ["cost", "gross_profit"])
def test_a_cost_or_gross_profit_column_takes_the_typed_pass_with_the_text_paths_results(tmp_path, cfg, col,
                                                                                       monkeypatch):
    """Profit per line read by the typed pass: the same customer table (gross profit included),
    counts and rejected rows as the text path, with missing, unparsable and overflowing costs
    rejected as the text path rejects them; and the typed pass, not the text path, read the rows."""
    import segkit.engines.polars as engine

    path = tmp_path / "profit.csv"
    path.write_text(PROFIT_ROWS.format(col=col), encoding="utf-8")
    calls: list[int] = []
    real = engine.typed_lines
    monkeypatch.setattr(engine, "typed_lines", lambda raw, c: calls.append(1) or real(raw, c))
    base, q = assert_same_as_text_path(path, cfg)
    assert calls == [1]
    assert "gross_profit" in base.columns and base["gross_profit"].null_count() < base.height
    assert sum(q.counts["rejected_reasons"].values()) >= 3  # missing, unparsable, too large


def _orders_parquet(path, amount_dtype=pl.Float64):
    frame = pl.DataFrame({
        "customer_id": [" A1 ", "A1", "17850.0", "17850", None, "B2", "B2", "B2", "Total", "C3", "C3", "小计"],
        "order_id": ["o1", "o1 ", "o2", "o3", "o4", "o5", "o6", "o7", None, "o8", "o9", None],
        "order_date": [dt.date(2024, 1, 5), dt.date(2024, 1, 6), dt.date(2024, 2, 1), dt.date(2024, 2, 3),
                       dt.date(2024, 1, 1), None, dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 7),
                       dt.date(2024, 3, 8), dt.date(2024, 3, 9), dt.date(2024, 3, 9)],
        "amount": [100.5, 20.0, 5.0, 1234.0, 5.0, 5.0, float("inf"), -30.0, 999.0, None, 7.1, 11.0],
        "cost": [60.25, 10.0, None, 1000.0, 1.0, 1.0, 1.0, -12.5, 999.0, 1.0, 2.0, 3.0],
        "channel": ["online", "online", "retail", "retail", "x", "x", "x", None, None, "online", "online", None],
    }).with_columns(pl.col("amount").cast(amount_dtype, strict=False))  # inf: null as decimal or integer
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize("amount_dtype", [pl.Float64, pl.Decimal(12, 2), pl.Int64])
def test_parquet_with_numeric_money_takes_the_typed_pass_with_the_text_paths_results(tmp_path, cfg, amount_dtype,
                                                                                    monkeypatch):
    """Amounts stored as numbers are summed straight from the file: the same customer table,
    counts and rejected rows as turning them into text and parsing them back (ids with spaces,
    a missing date, an infinite amount, a missing cost, totals rows)."""
    import segkit.engines.polars as engine

    path = _orders_parquet(tmp_path / "orders.parquet", amount_dtype)
    calls: list[int] = []
    real = engine.typed_lines
    monkeypatch.setattr(engine, "typed_lines", lambda raw, c: calls.append(1) or real(raw, c))
    base, q = assert_same_as_text_path(path, cfg)
    assert calls == [1] and base.height == 4
    assert q.counts["totals_rows"] == 2 and q.counts["rejected_reasons"]


@pytest.mark.parametrize("amount_dtype", [pl.String, pl.Float32])
def test_parquet_with_money_as_text_or_float32_keeps_the_text_path(tmp_path, cfg, amount_dtype, monkeypatch):
    """Text amounts, and float32 ones (7.1 is 7.099999904632568 as a float64 but "7.1" as text),
    go through the text path."""
    import segkit.engines.polars as engine

    path = _orders_parquet(tmp_path / "orders.parquet", amount_dtype)
    monkeypatch.setattr(engine, "typed_lines", lambda raw, c: pytest.fail("typed pass on text or float32 money"))
    assert_same_as_text_path(path, cfg)
