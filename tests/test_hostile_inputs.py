"""Hostile inputs from the third red-team pass (issue 25): nothing wrong may end in exit 0, and
nothing may end in exit 1, a Rust abort or a traceback. Each test is named after the behaviour."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import json
from pathlib import Path

import polars as pl
import pytest

from conftest import run_cli, write_csv

FAST = ["--k", "2", "--no-report", "-q"]
HEADER = ["customer_id", "order_date", "amount"]


def orders(n_customers: int = 30, start: dt.date = dt.date(2023, 1, 5)) -> list[list]:
    """A small, plausible order table: three orders per customer."""
    rows = []
    for c in range(n_customers):
        for k in range(3):
            rows.append([f"C{c:03d}", (start + dt.timedelta(days=37 * k + c)).isoformat(), f"{100 + 7 * c + k}.50"])
    return rows


def assignments(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "assignments.csv", infer_schema_length=0)


# ------------------------------------------------------------------------------ money limits

def test_amounts_whose_sum_would_wrap_int64_are_refused_as_too_large(tmp_path: Path) -> None:
    rows = orders() + [["BIG", "2023-03-01", "5e12"], ["BIG", "2023-04-01", "5e12"], ["BIG", "2023-05-01", "5e12"]]
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65, r.stderr
    err = r.stderr.decode()
    assert "amount too large" in err and "9,000,000,000,000" in err and "--amount-unit" in err
    assert not (tmp_path / "out").exists()


def test_amounts_whose_sum_would_wrap_are_refused_on_the_text_path_too(tmp_path: Path) -> None:
    # formatted amounts go through clean.clean, not the typed CSV pass
    rows = orders() + [["BIG", "2023-03-01", "¥5,000,000,000,000"]] * 3
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65 and b"amount too large" in r.stderr, r.stderr


def test_amounts_whose_sum_would_wrap_are_refused_in_parquet(tmp_path: Path) -> None:
    rows = orders() + [["BIG", "2023-03-01", "5e12"]] * 3
    src = tmp_path / "o.parquet"
    pl.DataFrame(rows, schema=HEADER, orient="row").with_columns(pl.col("amount").cast(pl.Float64)).write_parquet(src)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65 and b"amount too large" in r.stderr, r.stderr


def test_large_amounts_below_the_limit_are_summed_exactly(tmp_path: Path) -> None:
    rows = orders() + [["BIG", "2023-03-01", "2e12"], ["BIG", "2023-04-01", "2e12"], ["BIG", "2023-05-01", "0.01"]]
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    big = assignments(tmp_path / "out").filter(pl.col("customer_id") == "BIG")
    assert big["monetary"][0] == "4000000000000.01"


@pytest.mark.parametrize("spend", ["inf", "NaN", "1e308", "9e15", "-inf"])
def test_customer_table_with_a_non_finite_or_huge_spend_rejects_that_row(tmp_path: Path, spend: str) -> None:
    rows = [[f"C{i:03d}", f"{1000 + 37 * i}"] for i in range(60)] + [["ODD", spend]]
    src = write_csv(tmp_path / "c.csv", ["customer_id", "annual sales"], rows)
    r = run_cli("segment", str(src), "--input-kind", "customers", "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    ids = assignments(tmp_path / "out")["customer_id"].to_list()
    assert "ODD" not in ids and len(ids) == 60
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["rejected_rows"] == 1


# ------------------------------------------------------------------------------ compression

def _csv_bytes(rows: list[list], header: bool = True) -> bytes:
    lines = ([",".join(HEADER)] if header else []) + [",".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("kind", ["bz2", "xz"])
def test_concatenated_compressed_streams_are_all_read(tmp_path: Path, kind: str) -> None:
    import bz2
    import lzma

    compress = bz2.compress if kind == "bz2" else lzma.compress
    rows = orders(40)
    half = len(rows) // 2
    src = tmp_path / f"o.csv.{kind}"
    src.write_bytes(compress(_csv_bytes(rows[:half])) + compress(_csv_bytes(rows[half:], header=False)))
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["rows"] == len(rows)
    assert summary["customers"] == 40


def test_truncated_bz2_is_bad_data_not_a_partial_read(tmp_path: Path) -> None:
    import bz2

    data = bz2.compress(_csv_bytes(orders(40)))
    src = tmp_path / "o.csv.bz2"
    src.write_bytes(data[: len(data) // 2])
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65 and b"ends early" in r.stderr, r.stderr


# ------------------------------------------------------------------------------ decimal comma

def _semicolon_csv(path: Path, amounts: list[str]) -> Path:
    rows = orders(len(amounts))
    lines = ["customer_id;order_date;amount"]
    for i, a in enumerate(amounts):
        for r in rows[3 * i: 3 * i + 3]:
            lines.append(f"{r[0]};{r[1]};{a}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_decimal_comma_is_detected_per_file_and_read_exactly(tmp_path: Path) -> None:
    amounts = [f"{1 + i}.{i % 10}57,60" if i % 3 else f"{10 + i},5" for i in range(40)]
    src = _semicolon_csv(tmp_path / "o.csv", amounts)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST[:-1])
    assert r.returncode == 0, r.stderr
    assert b"decimal comma" in r.stderr
    got = dict(assignments(tmp_path / "out").select("customer_id", "monetary").iter_rows())
    assert got["C001"] == "6472.8" and got["C000"] == "31.5"


def test_decimal_option_forces_the_reading_and_rejects_the_others(tmp_path: Path) -> None:
    amounts = [f"{100 + i},25" for i in range(39)] + ["1,234.50"]
    src = _semicolon_csv(tmp_path / "o.csv", amounts)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--decimal", ",", *FAST)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["rejected_rows"] == 3
    assert "C039" not in assignments(tmp_path / "out")["customer_id"].to_list()


def test_a_point_file_never_reads_comma_decimals_as_thousands(tmp_path: Path) -> None:
    # most values decide for ".", so '22,60' cannot be read as 2260: it is a rejected row
    amounts = [f"{100 + i}.25" for i in range(39)] + ["22,60"]
    src = _semicolon_csv(tmp_path / "o.csv", amounts)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST[:-1])
    assert r.returncode == 0, r.stderr
    assert b"decimal comma" in r.stderr and b"--decimal" in r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["rejected_rows"] == 3


@pytest.mark.parametrize("text", ["1,2,3", "12 34", "1.2.3,4", "1,23"])
def test_badly_grouped_amounts_are_rejected_not_glued_together(tmp_path: Path, text: str) -> None:
    rows = orders() + [["ODD", "2023-03-01", text]]
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["rejected_rows"] == 1
    assert "ODD" not in assignments(tmp_path / "out")["customer_id"].to_list()


def test_unknown_decimal_mark_is_a_usage_error(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--decimal", "x", *FAST)
    assert r.returncode == 2 and b"--decimal" in r.stderr


# ------------------------------------------------------------------------------ workbooks

def _workbook(path: Path, rows: list[list], hidden_first: str = "") -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    if hidden_first:
        ws.title = "old"
        ws.append(HEADER)
        ws.append(["HIDDEN", "2023-01-01", "5"])
        ws.sheet_state = hidden_first
        ws = wb.create_sheet("orders")
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_first_sheet_is_skipped_for_the_first_visible_one(tmp_path: Path, state: str) -> None:
    src = _workbook(tmp_path / "o.xlsx", orders(), hidden_first=state)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    ids = assignments(tmp_path / "out")["customer_id"].to_list()
    assert "HIDDEN" not in ids and len(ids) == 30
    # asked for by name, the hidden sheet is still read
    r = run_cli("inspect", str(src), "--sheet", "old")
    assert r.returncode == 0 and b"'old'" in r.stdout, r.stderr


@pytest.mark.parametrize("command", ["segment", "inspect"])
def test_one_stray_cell_at_xfd1048576_is_refused_not_an_abort(tmp_path: Path, command: str) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in [HEADER, *orders(3)]:
        ws.append(r)
    ws["XFD1048576"] = "x"
    wb.save(tmp_path / "o.xlsx")
    args = ["-o", str(tmp_path / "out"), *FAST] if command == "segment" else []
    r = run_cli(command, str(tmp_path / "o.xlsx"), *args)
    assert r.returncode == 65, r.stderr
    assert b"XFD1048576" in r.stderr and b"Traceback" not in r.stderr


def test_a_shared_string_longer_than_excel_allows_is_refused(tmp_path: Path) -> None:
    import zipfile

    import xlsxwriter

    built = tmp_path / "built.xlsx"
    wb = xlsxwriter.Workbook(str(built))
    ws = wb.add_worksheet()
    for i, r in enumerate([[*HEADER, "note"], *[[*o, "PLACEHOLDER"] for o in orders(1000)]]):
        ws.write_row(i, 0, r)
    wb.close()
    bomb = tmp_path / "o.xlsx"  # one 1 MB string used by 3,000 cells: a 60 KB file
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/sharedStrings.xml":
                data = data.replace(b"PLACEHOLDER", b"x" * 1_000_000)
            dst.writestr(item, data)
    assert bomb.stat().st_size < 200_000
    r = run_cli("segment", str(bomb), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65, r.stderr
    assert b"32,767" in r.stderr


def _wide_workbook(path: Path) -> Path:
    """A title row, a header on row 3 starting in column B, unmapped columns between and after the
    mapped ones (one with a blank header), dates as Excel dates, a few empty amounts."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["C1"] = "Sales report 2023"
    header = ["No.", "Customer ID", "note", "Order Date", "", "Amount (USD)", *[f"extra_{i}" for i in range(12)]]
    for j, h in enumerate(header, start=2):
        ws.cell(3, j, h)
    for i in range(240):
        row = [i, f"C{i % 40:03d}", "x" * (i % 3), dt.datetime(2023, 1, 1) + dt.timedelta(days=i), None,
               (10.25 + i) if i % 7 else None, *[f"e{i}-{k}" for k in range(12)]]
        for j, v in enumerate(row, start=2):
            ws.cell(4 + i, j, v)
    wb.save(path)
    return path


def test_a_large_sheet_is_read_with_only_its_mapped_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segkit.ingest import read, xlsx_columns

    src = _wide_workbook(tmp_path / "wide.xlsx")
    whole = read.read_input(str(src))
    assert "extra_3" in whole.headers and "note" in whole.headers  # a small sheet is read whole
    monkeypatch.setattr(xlsx_columns, "WIDE_CELLS", 1000)  # this sheet now counts as large
    narrow = read.read_input(str(src))
    names = narrow.frame.collect_schema().names()
    assert names == [read.ROW, "No.", "Customer ID", "Order Date", "Amount (USD)"]
    assert narrow.headers == names[1:] and narrow.mapping == whole.mapping
    assert narrow.header_row == whole.header_row == 3
    assert any("read 4 of the sheet's 18 columns" in n for n in narrow.notes)
    # each kept cell reads as it does when the whole sheet is read (row numbers, dates, empty cells)
    assert narrow.frame.collect().equals(whole.frame.select(names).collect())


@pytest.mark.parametrize("refs", [False, True])  # cells by position, and cells with their reference
def test_a_large_generated_sheet_reads_its_mapped_cells_as_the_whole_sheet_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refs: bool) -> None:
    import importlib.util

    from segkit.ingest import read, xlsx_columns

    spec = importlib.util.spec_from_file_location("wide_workbook", Path(__file__).parents[1] / "benchmarks" / "wide_workbook.py")
    assert spec is not None and spec.loader is not None
    wide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wide)
    src = wide.write(tmp_path / "wide.xlsx", rows=300, width=30, refs=refs)
    whole = read.read_input(str(src))
    monkeypatch.setattr(xlsx_columns, "WIDE_CELLS", 1000)
    narrow = read.read_input(str(src))
    names = narrow.frame.collect_schema().names()
    assert names == [read.ROW, "customer_id", "order_date", "amount"] and len(whole.headers) == 30
    got = narrow.frame.collect()
    assert got.height == 300 and got.equals(whole.frame.select(names).collect())


def test_a_large_sheet_with_a_missing_column_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segkit.errors import DataError
    from segkit.ingest import read, xlsx_columns

    monkeypatch.setattr(xlsx_columns, "WIDE_CELLS", 1000)
    src = _wide_workbook(tmp_path / "wide.xlsx")
    with pytest.raises(DataError, match="no column 'Revenue'"):
        read.read_input(str(src), mapping={"amount": "Revenue"})


# ------------------------------------------------------------------------------ --previous

def _first_run(tmp_path: Path) -> tuple[Path, Path]:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    first = tmp_path / "first"
    assert run_cli("segment", str(src), "-o", str(first), *FAST).returncode == 0
    return src, first


def test_previous_listing_a_customer_twice_is_refused_naming_it(tmp_path: Path) -> None:
    src, first = _first_run(tmp_path)
    copy = tmp_path / "edited.csv"
    lines = (first / "assignments.csv").read_text().splitlines()
    copy.write_text("\n".join([*lines, lines[1], lines[2]]) + "\n")
    r = run_cli("segment", str(src), "-o", str(tmp_path / "second"), "--previous", str(copy), *FAST)
    assert r.returncode == 65, r.stderr
    assert b"more than once" in r.stderr and lines[1].split(",")[0].encode() in r.stderr


def test_previous_edited_after_its_run_fails_the_hash_check(tmp_path: Path) -> None:
    src, first = _first_run(tmp_path)
    path = first / "assignments.csv"
    path.write_text(path.read_text().replace(",strategic,", ",key,", 1).replace("C00", "C0X", 1))
    r = run_cli("segment", str(src), "-o", str(tmp_path / "second"), "--previous", str(first), *FAST)
    assert r.returncode == 65 and b"changed after its run" in r.stderr, r.stderr


def test_previous_auto_with_a_summary_linked_to_dev_zero_is_a_bounded_read(tmp_path: Path) -> None:
    src, first = _first_run(tmp_path)
    (first / "summary.json").unlink()
    (first / "summary.json").symlink_to("/dev/zero")
    r = run_cli("segment", str(src), "-o", str(first), "--previous", "auto", *FAST, timeout=120)
    assert r.returncode == 65 and b"cannot be read as a segkit summary" in r.stderr, r.stderr


# ------------------------------------------------------------------------------ bounded reads

def test_config_at_dev_zero_is_a_bounded_read_and_a_config_error(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    r = run_cli("segment", str(src), "--config", "/dev/zero", "-o", str(tmp_path / "out"), *FAST, timeout=60)
    assert r.returncode == 78 and b"not a segkit config" in r.stderr, r.stderr


def test_config_nested_20000_deep_is_a_config_error(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    cfg = tmp_path / "deep.toml"
    cfg.write_text("x = " + "[" * 20_000 + "]" * 20_000 + "\n")
    r = run_cli("segment", str(src), "--config", str(cfg), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 78, r.stderr


# ------------------------------------------------------------------------------ --summary-json targets

def _summary_run(tmp_path: Path, target: Path | str, *extra: str) -> subprocess.CompletedProcess:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    return run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--summary-json", str(target), *FAST, *extra)


def test_summary_json_at_a_symlink_writes_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "real.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    r = _summary_run(tmp_path, link)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and link.readlink() == real
    assert json.loads(real.read_text())["customers"] == 30
    assert [p.name for p in real.parent.iterdir()] == ["real.json"]  # no temp file left beside it


def test_summary_json_at_a_dangling_link_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    r = _summary_run(tmp_path, link)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and json.loads((tmp_path / "new.json").read_text())["customers"] == 30


def test_summary_json_linked_to_a_device_writes_to_it_and_keeps_the_node(tmp_path: Path) -> None:
    import stat

    link = tmp_path / "null.json"
    link.symlink_to("/dev/null")
    r = _summary_run(tmp_path, link)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["customers"] == 30


def test_summary_json_at_a_block_device_is_refused_and_the_node_kept(tmp_path: Path) -> None:
    import os
    import stat

    node = tmp_path / "disk"
    try:
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 250))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    r = _summary_run(tmp_path, node)
    assert r.returncode == 73 and b"block device" in r.stderr, r.stderr
    assert stat.S_ISBLK(node.lstat().st_mode)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_summary_json_at_a_fifo_is_written_like_a_pipe(tmp_path: Path) -> None:
    import os
    import stat
    import threading

    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = _summary_run(tmp_path, fifo)
    reader.join(timeout=30)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(got[0])["customers"] == 30


@pytest.mark.parametrize("to_stdout", [False, True])
def test_summary_json_at_a_descriptor_like_dev_stdout_writes_to_that_stream(tmp_path: Path, to_stdout: bool) -> None:
    from conftest import run_process

    link = tmp_path / "stdout"  # what /dev/stdout is: a link to this process's descriptor 1
    link.symlink_to("/proc/self/fd/1")
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    out = ["-o", "-", "--format", "jsonl"] if to_stdout else ["-o", str(tmp_path / "out")]
    r = run_process("segment", str(src), *out, "--summary-json", str(link), *FAST, timeout=120)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink()
    text = r.stdout.decode()
    summary = json.loads(text[text.index("{\n"):])
    assert summary["customers"] == 30


# ------------------------------------------------------------------------------ no exit 1

def test_a_date_in_year_zero_is_a_rejected_row(tmp_path: Path) -> None:
    rows = orders() + [["ZERO", "0000-01-01", "10.00"], ["ZERO", "00000101", "10.00"]]
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    rejected = pl.read_csv(tmp_path / "out" / "rejected_rows.csv", infer_schema_length=0)
    assert rejected["value"].to_list() == ["0000-01-01", "00000101"]
    assert set(rejected["column"]) == {"order_date"}


def test_a_date_in_year_zero_with_a_date_format_is_a_rejected_row(tmp_path: Path) -> None:
    rows = [[c, d.replace("-", "/"), a] for c, d, a in orders()] + [["ZERO", "0000/01/01", "10.00"]]
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "--date-format", "%Y/%m/%d", "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    assert pl.read_csv(tmp_path / "out" / "rejected_rows.csv")["row"].to_list() == [92]


@pytest.mark.parametrize("args", [["segment", "--backtest", "999999999"], ["backtest", "--holdout-days", "999999999"],
                                  ["segment", "--backtest", "0"]])
def test_a_backtest_holdout_beyond_a_century_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    out = ["-o", str(tmp_path / "out")] if args[0] == "segment" else []
    r = run_cli(args[0], str(src), *args[1:], *out, "-q")
    assert r.returncode == 2, r.stderr
    assert b"1 to 36,525" in r.stderr


@pytest.mark.parametrize("toml", [
    '[scoring]\nmethod = "thresholds"\nmonetary = [1e300, 2e300, 3e300, 4e300]\n',
    '[scoring]\nmethod = "thresholds"\nrecency = [1, 2, 3, inf]\n',
    '[[tiers]]\nname = "top"\nmin = 1e300\n[[tiers]]\nname = "rest"\n',
    '[[tiers]]\nname = "top"\nmin = nan\n[[tiers]]\nname = "rest"\n',
])
def test_thresholds_of_1e300_or_not_finite_are_a_config_error(tmp_path: Path, toml: str) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    cfg = tmp_path / "big.toml"
    cfg.write_text(toml)
    r = run_cli("segment", str(src), "--config", str(cfg), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 78, r.stderr
    assert not (tmp_path / "out").exists()


def test_previous_summary_nested_20000_deep_is_bad_data(tmp_path: Path) -> None:
    from segkit.errors import DataError
    from segkit.outputs.staging import verify_set

    src, first = _first_run(tmp_path)
    (first / "summary.json").write_text('{"outputs": ' + "[" * 20_000 + "]" * 20_000 + "}")
    r = run_cli("segment", str(src), "-o", str(tmp_path / "second"), "--previous", str(first), *FAST)
    assert r.returncode == 65 and b"cannot be read as a segkit summary" in r.stderr, r.stderr
    with pytest.raises(DataError):
        verify_set(first)


def test_parquet_with_unused_list_and_struct_columns_reads_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "o.parquet"
    (pl.DataFrame(orders(), schema=HEADER, orient="row")
     .with_columns(tags=pl.concat_list(pl.col("customer_id"), pl.lit("x")), meta=pl.struct("customer_id", "amount"))
     .write_parquet(src))
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    assert assignments(tmp_path / "out").height == 30


def test_parquet_with_a_list_amount_is_bad_data_naming_the_column(tmp_path: Path) -> None:
    src = tmp_path / "o.parquet"
    (pl.DataFrame(orders(), schema=HEADER, orient="row")
     .with_columns(amount=pl.concat_list(pl.col("amount").cast(pl.Float64))).write_parquet(src))
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65, r.stderr
    assert b"column 'amount' (amount) holds List" in r.stderr


# ------------------------------------------------------------------------------ bounded messages

@pytest.mark.parametrize("where", ["title", "map"])
def test_one_huge_line_gives_a_bounded_message(tmp_path: Path, where: str) -> None:
    huge = "Z" * 20_000_000
    src = tmp_path / "o.csv"
    body = "customer_id,order_date,amount\n" + "".join(f"{c},{d},{a}\n" for c, d, a in orders())
    src.write_text((huge + "\n" if where == "title" else "") + body)
    extra = ["--map", f"customer_id={huge[:100_000]}"] if where == "map" else []
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *extra, *FAST)
    assert r.returncode == 65, r.stderr[:500]
    assert len(r.stderr) < 1_000 and b"characters)" in r.stderr, r.stderr[:2000]


def test_an_error_message_on_stderr_is_cut_to_a_few_thousand_characters(capsys: pytest.CaptureFixture[str]) -> None:
    from segkit.cli.app import MAX_MESSAGE, _eprint

    _eprint("segkit: error: " + "x" * 1_000_000 + " the end")
    err = capsys.readouterr().err
    assert len(err) < MAX_MESSAGE + 100 and err.rstrip().endswith("the end") and "characters left out" in err


# ------------------------------------------------------------------------------ output encodings

@pytest.mark.parametrize("command", [["inspect"], ["segment", "-o", "-", "--format", "table"]])
def test_chinese_text_on_a_cp1252_stdout_is_escaped_not_a_unicode_error(tmp_path: Path, command: list[str]) -> None:
    from conftest import run_process

    rows = [[c, d, a, f"客户{c}"] for c, d, a in orders()]
    src = write_csv(tmp_path / "o.csv", ["客户编码", "单据日期", "金额", "客户名称"], rows)
    r = run_process(command[0], str(src), *command[1:], *(FAST if command[0] == "segment" else []),
                    env={"PYTHONIOENCODING": "cp1252"}, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("cp1252")
    assert "\\u5ba2\\u6237" in out and "UnicodeEncodeError" not in r.stderr.decode("cp1252")


# ------------------------------------------------------------------------------ signals

def test_sighup_is_handled_like_sigterm_in_process(tmp_path: Path) -> None:
    import os
    import signal
    import time

    from segkit.outputs import staging

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    staging.install_signal_cleanup()
    try:
        staged = staging.StagedDir(tmp_path)
        staged.write_bytes("assignments.csv", b"a,b\n")
        with pytest.raises(staging.Terminated) as info:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)
        assert info.value.exit_code == 129
        assert list(tmp_path.iterdir()) == []
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def test_sighup_while_writing_removes_the_temp_files_and_keeps_the_previous_outputs(tmp_path: Path) -> None:
    import os
    import signal
    import sys
    import time

    from segkit.outputs.staging import TMP_PREFIX

    src = tmp_path / "o.csv"
    # 20,000 customers: the outputs take long enough to write to be caught while staged
    assert run_cli("sample", "-o", str(src), "--rows", "200000", "--customers", "20000", "-q").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "assignments.csv").write_bytes(b"previous run\n")
    env = {k: v for k, v in os.environ.items() if k != "SEGKIT_CONFIG"}
    # a hang-up as from a closed terminal: the run must not inherit an ignored SIGHUP (as under nohup,
    # where segkit rightly goes on)
    proc = subprocess.Popen([sys.executable, "-m", "segkit", "segment", str(src), "-o", str(out), "--k", "3", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if any(p.name.startswith(TMP_PREFIX) for p in out.iterdir()):
            proc.send_signal(signal.SIGHUP)
            break
        time.sleep(0.005)
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 129, f"the run ended ({proc.returncode}) before its files were staged: {err}"
    assert "terminated" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["assignments.csv"]
    assert (out / "assignments.csv").read_bytes() == b"previous run\n"


# ------------------------------------------------------------------------------ input text as data

def test_a_currency_holding_esc_is_escaped_on_the_terminal(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--currency", "GB\x1b[31mP[red]", "--k", "2",
                "--no-report")
    assert r.returncode == 0, r.stderr
    assert b"\x1b" not in r.stderr and b"GB\\x1b[31MP[RED]" in r.stderr


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_rows_written_to_a_terminal_show_esc_in_ids_escaped(fmt: str) -> None:
    from segkit.cli.commands import _write_stdout

    df = pl.DataFrame({"customer_id": ["\x1b]0;owned\x07C1", "C2"], "monetary": [1.0, 2.0]})
    tty, pipe = _Terminal(), io.BytesIO()
    _write_stdout(df, fmt, tty)
    _write_stdout(df, fmt, pipe)
    shown = tty.getvalue()
    assert b"\x1b" not in shown and b"\x07" not in shown
    assert b"\\x1b]0;owned" in shown or b"\\u001b]0;owned" in shown  # JSON escapes it itself
    assert b"\x1b" in pipe.getvalue() or b"\\u001b" in pipe.getvalue()  # a pipe gets the data as it is


def test_parquet_rows_to_a_terminal_are_refused() -> None:
    from segkit.cli.commands import _write_stdout
    from segkit.errors import UsageError

    with pytest.raises(UsageError, match="redirect stdout"):
        _write_stdout(pl.DataFrame({"customer_id": ["C1"]}), "parquet", _Terminal())


def test_rejected_raw_cells_starting_with_tab_or_cr_then_equals_are_neutralised(tmp_path: Path) -> None:
    rows = orders() + [["C001", "2023-03-01", "\t=cmd|' /C calc'!A0"], ["C002", "2023-03-01", "\r=HYPERLINK(\"x\")"]]
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    rejected = pl.read_csv(tmp_path / "out" / "rejected_rows.csv", infer_schema_length=0)
    assert rejected["raw:amount"].to_list() == ["'\t=cmd|' /C calc'!A0", "'\r=HYPERLINK(\"x\")"]


# ------------------------------------------------------------------------------ formulas without values

def _formula_workbook(path: Path, formula_rows: int) -> Path:
    """xlsxwriter, like many exporters, stores formulas with a cached value of 0 (nothing computed)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Orders")
    ws.write_row(0, 0, ["customer_id", "order_date", "qty", "price", "amount"])
    for i, (c, d, a) in enumerate(orders(), start=1):
        ws.write_row(i, 0, [c, d, 2, float(a) / 2])
        if i <= formula_rows:
            ws.write_formula(i, 4, f"=C{i + 1}*D{i + 1}")
        else:
            ws.write_number(i, 4, float(a))
    wb.close()
    return path


def test_amount_column_of_formulas_without_values_is_bad_data(tmp_path: Path) -> None:
    src = _formula_workbook(tmp_path / "f.xlsx", formula_rows=90)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65, r.stderr
    assert b"formulas saved without their values" in r.stderr and b"'amount'" in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_few_formulas_without_values_are_a_warning(tmp_path: Path) -> None:
    src = _formula_workbook(tmp_path / "f.xlsx", formula_rows=3)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--k", "2", "--no-report")
    assert r.returncode == 0, r.stderr
    warnings = json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]
    found = [w for w in warnings if w["code"] == "formulas_without_values"]
    assert len(found) == 1 and found[0]["message"].startswith("3 cells of the amount column 'amount'")
    assert b"formulas_without_values" in r.stderr or b"3 cells of the amount column" in r.stderr


def test_a_workbook_of_plain_numbers_has_no_formula_warning(tmp_path: Path) -> None:
    src = _formula_workbook(tmp_path / "f.xlsx", formula_rows=0)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    codes = [w["code"] for w in json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]]
    assert "formulas_without_values" not in codes


# ------------------------------------------------------------------------------ many distinct values

def test_cross_tables_keep_the_top_levels_and_sum_the_others() -> None:
    from segkit.models.cluster_validation import OTHERS, TOP_LEVELS, cross_table

    n = 5_000
    a = pl.Series([i % 3 for i in range(n)])
    b = pl.Series(["common" if i % 2 else f"R{i}" for i in range(n)])
    table = cross_table(a, b)
    assert len(table["columns"]) == TOP_LEVELS + 1 and table["columns"][-1] == OTHERS
    assert "common" in table["columns"]
    assert sum(map(sum, table["counts"])) == n


def test_a_region_per_customer_keeps_summary_json_small(tmp_path: Path) -> None:
    n = 3_000
    rows = [[f"C{i:05d}", f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}", f"{100 + i % 977}.25", f"R{i}"] for i in range(n)]
    src = write_csv(tmp_path / "o.csv", [*HEADER, "region"], rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    summary = tmp_path / "out" / "summary.json"
    assert summary.stat().st_size < 100_000
    chi2 = json.loads(summary.read_text())["validation"]["chi2"]["region"]
    assert chi2["levels"] == n


# ------------------------------------------------------------------------------ unknown columns, absurd units

def test_a_table_of_unknown_columns_is_refused_not_read_as_customers(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "ab.csv", ["a", "b"], [[i, 2 * i] for i in range(1, 40)])
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 65, r.stderr
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "ab.csv" in err and "columns: a, b" in err
    assert "customer_id, order_date and amount" in err and "--map" in err
    assert not (tmp_path / "out").exists()


def test_a_customer_table_whose_columns_map_is_still_detected(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "c.csv", ["customer", "annual sales"], [[f"C{i:03d}", 100 + 37 * i] for i in range(40)])
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 0, r.stderr
    assert len(assignments(tmp_path / "out")) == 40


@pytest.mark.parametrize("unit", ["1e-300", "1e-7", "1e12"])
def test_an_absurd_amount_unit_in_the_config_is_a_config_error(tmp_path: Path, unit: str) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    cfg = tmp_path / "segkit.toml"
    cfg.write_text(f"[input]\namount_unit = {unit}\n", encoding="utf-8")
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--config", str(cfg), *FAST)
    assert r.returncode == 78, r.stderr
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "input.amount_unit" in err and "1e-06..1,000,000,000" in err


@pytest.mark.parametrize("unit", ["0.01", "10000"])
def test_a_plausible_amount_unit_is_accepted(tmp_path: Path, unit: str) -> None:
    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--amount-unit", unit, *FAST)
    assert r.returncode == 0, r.stderr


def test_a_backtest_fit_with_a_plus_b_below_one_scores_every_customer(tmp_path):
    """orders_zh.csv with a 365-day holdout fits BG/NBD with a + b < 1 (a = 0.019, b = 0.73): the
    expectation of one-time buyers once came out NaN there and the reports failed (exit 1); now
    every customer gets a finite prediction and the backtest is scored."""
    from conftest import SAMPLE_DIR

    out = tmp_path / "o"
    proc = run_cli("segment", str(SAMPLE_DIR / "orders_zh.csv"), "--tiers", "retail", "--backtest", "365",
                   "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    bt = json.loads((out / "summary.json").read_text(encoding="utf-8"))["clv"]["backtest"]
    assert "skipped_reason" not in bt and bt["params"]["a"] + bt["params"]["b"] < 1
    assert bt["mae_per_customer"] is not None and bt["totals"]["predicted_purchases"] > 0
    assert (out / "report.html").stat().st_size > 0 and (out / "report.xlsx").stat().st_size > 0


def test_a_backtest_whose_fit_predicts_no_finite_number_is_skipped_with_its_reason(monkeypatch):
    """A fit whose expectation is not finite for some customers: the backtest says so and how many,
    instead of the reports failing on the missing numbers."""
    import dataclasses
    import datetime as dt

    import numpy as np
    import polars as pl

    from segkit.config import ClvSettings
    from segkit.models import backtest as bt_mod
    from segkit.models.clv import registry

    spec = registry.get("bgnbd")
    def half_nan(params, t, x, t_x, T):
        out = spec.expected(params, t, x, t_x, T)
        return np.where(np.arange(out.size) % 2 == 0, np.nan, out)
    monkeypatch.setitem(registry.MODELS, "bgnbd", dataclasses.replace(spec, expected=half_nan))
    from segkit import sample

    orders = sample.generate(20000, 500, seed=3)
    lines = orders.select("customer_id", "order_date",
                          (pl.col("amount") * 1_000_000).round().cast(pl.Int64).alias("amount"))  # micro-units
    as_of = orders["order_date"].max() + dt.timedelta(days=1)
    doc = bt_mod.backtest(lines, as_of, 180, ClvSettings(model="bgnbd"))
    assert "predicts no finite number of purchases for" in doc["skipped_reason"], doc
