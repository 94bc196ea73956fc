"""--engine spark gives the polars engine's results: assignments.csv byte for byte, summary.json
equal but for the engine fields, the same data-quality counts and rejected rows.

Runs the command line in this process against one local Spark session (local[2]) for the module.
"""

from __future__ import annotations

import json
import shutil
import sys

import polars as pl
import pytest

pytest.importorskip("pyspark")

from conftest import SAMPLE_DIR, dataset, run_cli, write_csv  # noqa: E402
from spark_fixtures import spark  # noqa: E402,F401

pytestmark = pytest.mark.spark
ENGINE_KEYS = ("engine",)


def _segment(path, out, engine: str, *extra: str):
    return run_cli("segment", str(path), "-o", str(out), "-q", "--no-report", "--engine", engine, *extra)


def _summary(out) -> dict:
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ENGINE_KEYS:
        doc.pop(key, None)
    for key in ("engine", "spark_master"):
        doc["config"]["input"].pop(key, None)
    doc["config"]["output"].pop("dir")  # each engine writes to its own folder here
    doc.get("outputs", {}).pop("rejected_rows.csv", None)  # Spark's is a bounded sample, compared below
    return doc


def _assert_same_run(tmp_path, path, *extra: str) -> dict:
    outs = {}
    for engine in ("polars", "spark"):
        outs[engine] = tmp_path / engine
        proc = _segment(path, outs[engine], engine, *extra)
        assert proc.returncode == 0, (engine, proc.stderr.decode())
    a, b = (outs[e] / "assignments.csv" for e in ("polars", "spark"))
    assert a.read_bytes() == b.read_bytes()
    want, got = _summary(outs["polars"]), _summary(outs["spark"])
    assert got == want
    json_doc = json.loads((outs["spark"] / "summary.json").read_text(encoding="utf-8"))
    assert json_doc["engine"] == "spark"
    rejected = [outs[e] / "rejected_rows.csv" for e in ("polars", "spark")]
    assert rejected[0].exists() == rejected[1].exists()
    if rejected[0].exists():  # Spark writes the first REJECTED_SAMPLE rows, with the same numbers
        from segkit.engines.spark import REJECTED_SAMPLE

        cols = ["row", "column", "reason", "value"]
        want_rows = pl.read_csv(rejected[0], infer_schema=False).select(cols).head(REJECTED_SAMPLE)
        assert pl.read_csv(rejected[1], infer_schema=False).select(cols).equals(want_rows)
    return want


@pytest.mark.parametrize("name", ["online_retail_2010-12.csv"])
def test_real_datasets(tmp_path, name):
    doc = _assert_same_run(tmp_path, dataset(name), "--max-bad-rows", "0.5")
    assert doc["customers"] > 300
    assert doc["data_quality"]["rejected_rows"] > 0  # the rows without CustomerID


def test_same_refusal_above_max_bad_rows(tmp_path):
    """36.8% of the December lines have no CustomerID: both engines refuse with the same message."""
    path = dataset("online_retail_2010-12.csv")
    procs = [_segment(path, tmp_path / e, e) for e in ("polars", "spark")]
    assert procs[0].returncode == procs[1].returncode == 65
    assert procs[0].stderr == procs[1].stderr
    assert b"missing customer_id" in procs[1].stderr


def test_chinese_gb18030_export_with_title_rows(tmp_path):
    doc = _assert_same_run(tmp_path, SAMPLE_DIR / "orders_zh.csv")
    assert doc["input"]["encoding"] == "gb18030" and doc["input"]["header_row"] > 1
    assert doc["data_quality"]["totals_rows"] >= 1


@pytest.mark.parametrize("lang,encoding", [("en", "utf-8"), ("zh", "gb18030")])
def test_messy_samples(tmp_path, lang, encoding):
    path = tmp_path / f"messy_{lang}.csv"
    proc = run_cli("sample", "-o", str(path), "--no-cost", "--rows", "4000", "--messy", "--lang", lang,
                   "--encoding", encoding, "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    _assert_same_run(tmp_path, path)


def test_bad_blank_and_totals_rows(tmp_path):
    rows = [
        ["C1", "O1", "2024-01-05", "¥1,200.50"], ["", "", "", ""], ["C2", "O2", "2024/02/30", "10"],
        ["C3", "O3", "20240301", "(300.00)"], ["C3", "O4", "45400", "1,000.00-"], ["合计", "", "", "1,900"],
        ["C4", "O5", "2024年3月1日", "abc"], ["  ", "O6", "2024-03-02", "5"], ["C5", "O7", "2024-03-03 10:00", "5"],
        ["C1", "O8", "2024-04-01", "1e3"], ["Total", "", "", ""], ["C6", "O9", "2024-04-02", "€ 7"],
    ] * 20
    path = write_csv(tmp_path / "bad.csv", ["客户编码", "单据编号", "单据日期", "价税合计"], rows)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n\n   \nC7,O10,2024-04-03,1\n")
    doc = _assert_same_run(tmp_path, path, "--max-bad-rows", "0.5")
    q = doc["data_quality"]
    assert q["blank_rows"] == 20 + 3 and q["totals_rows"] == 40
    assert q["rejected_reasons"] == {"missing customer_id": 20, "unparsable amount (not a number)": 20,
                                     "unparsable order_date (not a date)": 20}


def test_parquet_with_as_of_and_returns(tmp_path):
    path = tmp_path / "orders.parquet"
    assert run_cli("sample", "-o", str(path), "--no-cost", "--rows", "3000", "-q").returncode == 0
    _assert_same_run(tmp_path, path, "--as-of", "2025-06-30")


def test_quantity_times_price_and_amount_unit(tmp_path):
    rows = [[f"K{i % 37}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", str(1 + i % 5), f"{(i % 97) / 7:.4f}"]
            for i in range(2000)]
    path = write_csv(tmp_path / "qp.csv", ["customer", "date", "qty", "price"], rows)
    _assert_same_run(tmp_path, path, "--amount-unit", "10000")


def test_folder_and_glob_equal_one_file(tmp_path, spark):
    """Spark reads a folder of part files; the customers equal those of the concatenated file."""
    rows = [[f"K{i % 53}", f"O{i // 3}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", f"{(i * 37) % 1000}.25"]
            for i in range(3000)]
    header = ["customer", "order", "date", "amount"]
    whole = write_csv(tmp_path / "whole.csv", header, rows)
    parts = tmp_path / "parts"
    parts.mkdir()
    for k in range(3):
        write_csv(parts / f"part-{k}.csv", header, rows[k * 1000:(k + 1) * 1000])
    ref = tmp_path / "ref"
    assert _segment(whole, ref, "polars").returncode == 0
    for source in (parts, parts / "part-*.csv"):
        out = tmp_path / ("dir" if source == parts else "glob")
        proc = _segment(source, out, "spark")
        assert proc.returncode == 0, proc.stderr.decode()
        assert (out / "assignments.csv").read_bytes() == (ref / "assignments.csv").read_bytes()


def test_rejected_row_numbers_in_part_files(tmp_path, spark):
    header = ["customer", "date", "amount"]
    parts = tmp_path / "parts"
    parts.mkdir()
    write_csv(parts / "a.csv", header, [["A", "2024-01-01", "1"]] * 50 + [["A", "bad", "1"]])
    write_csv(parts / "b.csv", header, [["B", "2024-01-02", "x"]] + [["B", "2024-01-02", "2"]] * 60)
    out = tmp_path / "out"
    assert _segment(parts, out, "spark").returncode == 0
    rejected = pl.read_csv(out / "rejected_rows.csv", infer_schema=False)
    got = [(r["file"].rsplit("/", 1)[-1], r["row"], r["reason"]) for r in rejected.iter_rows(named=True)]
    assert got == [("a.csv", "52", "unparsable order_date (not a date)"),
                   ("b.csv", "2", "unparsable amount (not a number)")]


def test_file_read_in_many_splits(tmp_path, spark):
    """A file Spark reads in several splits (as every big file is) keeps its row numbers and
    results: lines are numbered within their split and the splits' line counts are added back."""
    rows = [[f"K{i % 61}", f"O{i // 4}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", f"{(i * 53) % 900}.5"]
            for i in range(12000)]
    for i in range(5, 12000, 997):  # bad rows spread over every split
        rows[i][2 + i % 2] = "bad"
    path = write_csv(tmp_path / "split.csv", ["customer", "order", "date", "amount"], rows)
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(64 << 10))  # ~6 splits of this 400 kB file
    try:
        assert spark.read.text(str(path)).rdd.getNumPartitions() >= 5
        _assert_same_run(tmp_path, path, "--max-bad-rows", "0.5")
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")


def test_excel_input_is_a_usage_error(tmp_path):
    proc = _segment(SAMPLE_DIR / "orders.xlsx", tmp_path / "x", "spark")
    assert proc.returncode == 2
    message = proc.stderr.decode()
    assert "orders.xlsx" in message and "--engine polars" in message and "Traceback" not in message


def test_without_pyspark_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    path = write_csv(tmp_path / "o.csv", ["customer", "date", "amount"], [["A", "2024-01-01", "1"]])
    proc = _segment(path, tmp_path / "x", "spark")
    assert proc.returncode == 2
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "segkit[spark]" in lines[0]


def test_customer_level_table_read_alike(tmp_path):
    """A per-customer spend table (no order lines) is recognised by both engines alike."""
    _assert_same_run(tmp_path, dataset("uci_wholesale_customers.csv"))


@pytest.fixture(autouse=True)
def _clean_outputs(tmp_path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_clv_inputs_match_the_order_lines(tmp_path, spark, cfg):
    """The seam's CLV columns (purchase days, first/last, repeat value) against the polars lines."""
    from segkit.ingest.clean import clean
    from segkit.engines.spark import reduce
    from segkit.ingest.read import read_input

    path = tmp_path / "s.csv"
    assert run_cli("sample", "-o", str(path), "--no-cost", "--rows", "3000", "--messy", "-q").returncode == 0
    out = reduce(str(path), cfg, session=spark)
    lines = clean(read_input(str(path)), cfg).lines
    days = lines.group_by("customer_id", "order_date").agg(pl.col("amount").sum())
    pos = days.filter(pl.col("amount") > 0).sort("order_date")
    want = pos.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("purchase_days"), pl.col("order_date").min().alias("first_purchase_day"),
        pl.col("order_date").max().alias("last_purchase_day"),
        (pl.col("amount").sum() - pl.col("amount").first()).alias("repeat_value"))
    got = out.base.filter(pl.col("purchase_days") > 0).select(want.columns)
    assert got.sort("customer_id").equals(want.sort("customer_id"))
    assert want.height > 5 and want["repeat_value"].sum() > 0


def test_engine_seam_returns_the_polars_customer_table(tmp_path, spark, cfg):
    """segkit.engines.customer_table(..., "spark") returns the polars engine's base table exactly."""
    from segkit.engines import customer_table

    path = tmp_path / "s.csv"
    assert run_cli("sample", "-o", str(path), "--no-cost", "--rows", "3000", "--messy", "-q").returncode == 0
    base_p, q_p = customer_table(str(path), cfg, "polars")
    base_s, q_s = customer_table(str(path), cfg, "spark")
    assert base_s.schema == base_p.schema
    assert base_s.sort("customer_id").equals(base_p.sort("customer_id"))
    assert (q_s.windows, q_s.population_median_gap, q_s.roles) == (q_p.windows, q_p.population_median_gap, q_p.roles)
    assert all(q_s.counts[k] == q_p.counts[k] for k in q_s.counts)


def _odd_keys_rows() -> list[list[str]]:
    """A first column that is no key (empty on some good rows, a totals label on one), ids and
    dates whose texts differ but read alike, and amounts that are not plain numbers."""
    rows = []
    for i in range(1200):
        cid = ["17850", "17850.0", " C1", "C1", f"K{i % 40}"][i % 5]
        date = ["2024-03-05", "2024/3/5", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"][i % 3]
        amount = ["12.5", "¥1,200.00", "(3.00)", f"{i % 90}.25", "-7"][i % 5 if i % 7 else 2]
        rows.append(["" if i % 11 == 0 else str(i), cid, f"O{i // 3}", date, amount])
    rows += [["合计", "", "", "", "99999"], ["1200", "C1", "O9", "no date", "5"], ["1201", "小计", "", "", "5"]]
    return rows


@pytest.mark.parametrize("odd_limit", [None, 0])
def test_typed_pass_sets_aside_only_the_rows_it_cannot_vouch_for(tmp_path, spark, monkeypatch, odd_limit):
    """The typed pass sums rows on their raw key texts and classifies only the rows it cannot vouch
    for; with more odd key texts than it sets aside (odd_limit 0) every row is classified. Both
    give the polars engine's results."""
    from segkit.engines import spark as spark_engine
    from segkit.engines import spark_typed

    calls = []
    classify_all = spark_engine._classify_all
    monkeypatch.setattr(spark_engine, "_classify_all", lambda *a: calls.append(1) or classify_all(*a))
    if odd_limit is not None:
        monkeypatch.setattr(spark_typed, "ODD_LIMIT", odd_limit)
    path = write_csv(tmp_path / "odd.csv", ["序号", "客户编码", "单据编号", "单据日期", "价税合计"], _odd_keys_rows())
    doc = _assert_same_run(tmp_path, path, "--max-bad-rows", "0.5")
    assert calls == ([1] if odd_limit == 0 else [])
    assert doc["data_quality"]["totals_rows"] == 2 and doc["customers"] == 10  # 17850, C1, K4, K9, ... K39


def test_a_thousand_lines_per_customer(tmp_path):
    rows = [[f"K{i % 7}", f"O{i // 5}", f"2024-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}", f"{(i * 31) % 500}.75"]
            for i in range(7000)]
    _assert_same_run(tmp_path, write_csv(tmp_path / "deep.csv", ["customer", "order", "date", "amount"], rows))


def test_parquet_folder_equals_one_file(tmp_path, spark):
    """Spark reads a folder of Parquet parts; the customers equal those of the whole file."""
    whole = tmp_path / "orders.parquet"
    assert run_cli("sample", "-o", str(whole), "--no-cost", "--rows", "3000", "-q").returncode == 0
    df = pl.read_parquet(whole)
    parts = tmp_path / "parts"
    parts.mkdir()
    step = -(-df.height // 3)
    for k in range(3):
        df.slice(k * step, step).write_parquet(parts / f"part-{k}.parquet")
    ref, out = tmp_path / "ref", tmp_path / "folder"
    assert _segment(whole, ref, "polars").returncode == 0
    proc = _segment(parts, out, "spark")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (out / "assignments.csv").read_bytes() == (ref / "assignments.csv").read_bytes()
