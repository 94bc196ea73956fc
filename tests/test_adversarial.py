"""Hostile and unlucky use: outputs as one atomic set, input text kept inert, odd files read,
and every user mistake ending in its documented exit code with a short message (issue 14).

Most runs are in-process (Typer's runner) on a real slice of the Online Retail data; the few
that need a real process (closed streams, signals) use ``run_cli``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from conftest import SEGKIT, dataset, write_csv
from segkit.outputs import staging as output
from segkit.cli.app import app

FAST = ["--k", "3", "--no-report", "-q"]


def invoke(*args: str, input: bytes | None = None):
    """Run the CLI in-process; the result has exit_code, stdout_bytes and stderr."""
    result = CliRunner().invoke(app, list(args), input=input, env={"NO_COLOR": "1", "SEGKIT_CONFIG": ""})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an exception escaped handle_errors: a traceback for the user
    return result


def one_error(result, code: int, *needles: str) -> str:
    err = result.stderr
    assert result.exit_code == code, err
    assert "Traceback" not in err and "\x1b" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 2 and lines[0].startswith("segkit: error:"), err
    for n in needles:
        assert n in err, err
    return err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> Path:
    """3,000 real order lines (151 customers) of the Online Retail data, with a customer id."""
    df = pl.read_csv(dataset("online_retail_2010-12.csv"), infer_schema=False)
    df = df.filter(pl.col("CustomerID").is_not_null()).head(3000)
    path = tmp_path_factory.mktemp("retail") / "retail.csv"
    df.write_csv(path)
    return path


@pytest.fixture(scope="module")
def baseline(retail, tmp_path_factory) -> Path:
    """One complete run (reports included) of the retail slice: the outputs later runs must not spoil."""
    out = tmp_path_factory.mktemp("baseline") / "out"
    result = invoke("segment", str(retail), "-o", str(out), "--k", "3", "-q")
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture
def previous_set(baseline, tmp_path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for p in baseline.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    return out


# ------------------------------------------------------------------ 1-4: data loss and integrity

def test_unwritable_summary_json_leaves_every_output_intact(retail, previous_set, tmp_path):
    before = snapshot(previous_set)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke("segment", str(retail), "-o", str(previous_set), "--as-of", "2010-12-05",
                    "--summary-json", str(blocker / "summary.json"), *FAST)
    one_error(result, 73, str(blocker))
    assert snapshot(previous_set) == before  # same names, same bytes, no temp file left


@pytest.mark.parametrize("case", ["summary_is_input", "summary_is_output", "out_holds_input", "previous_is_output"])
def test_outputs_may_not_overwrite_the_input_previous_or_each_other(retail, previous_set, tmp_path, case):
    inp = tmp_path / "assignments.csv"
    inp.write_bytes(retail.read_bytes())
    args = {"summary_is_input": ["-o", str(tmp_path / "o"), "--summary-json", str(inp)],
            "summary_is_output": ["-o", str(previous_set), "--summary-json", str(previous_set / "report.html")],
            "out_holds_input": ["-o", str(tmp_path)],
            "previous_is_output": ["-o", str(previous_set), "--previous", str(previous_set)]}[case]
    before = snapshot(previous_set)
    one_error(invoke("segment", str(inp), *args, *FAST), 2, "overwrite" if case != "summary_is_output" else "report.html")
    assert inp.read_bytes() == retail.read_bytes()
    assert snapshot(previous_set) == before


def test_temp_files_are_recognisable_and_stale_ones_removed(retail, previous_set):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = previous_set / f"{output.TMP_PREFIX}{dead.pid}-0badc0de-report.xlsx"
    old_live = previous_set / f"{output.TMP_PREFIX}1-0badc0de-summary.json"  # pid 1 lives, file is 2 days old
    young_live = previous_set / f"{output.TMP_PREFIX}1-00c0ffee-summary.json"
    foreign = previous_set / ".segkit-tmp-notes.txt"  # not our pattern: left alone
    for p in (stale, old_live, young_live, foreign):
        p.write_bytes(b"x" * 1000)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_live, (two_days_ago, two_days_ago))
    result = invoke("segment", str(retail), "-o", str(previous_set), *FAST)
    assert result.exit_code == 0, result.stderr
    assert not stale.exists() and not old_live.exists()
    assert young_live.exists() and foreign.exists()


def test_disk_full_while_staging_leaves_no_temp_file(retail, previous_set, monkeypatch):
    before = snapshot(previous_set)
    real_write, calls = output._write_synced, []

    def fill_disk(path, data):
        calls.append(path)
        if Path(path).name.endswith("summary.json"):
            Path(path).write_bytes(data[:100])  # part written, then the disk is full
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(output, "_write_synced", fill_disk)
    result = invoke("segment", str(retail), "-o", str(previous_set), "--as-of", "2010-12-06", *FAST)
    one_error(result, 73, "No space left on device", "nothing was replaced")
    assert any(Path(c).name.endswith("summary.json") for c in calls)
    assert snapshot(previous_set) == before


def test_sigterm_removes_temp_files_and_exits_143(tmp_path):
    """In-process: a SIGTERM while files are staged removes them (the handler the CLI installs)."""
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    output.install_signal_cleanup()
    try:
        staged = output.StagedDir(tmp_path)
        staged.write_bytes("assignments.csv", b"a,b\n")
        assert [p.name for p in tmp_path.iterdir()][0].startswith(output.TMP_PREFIX)
        with pytest.raises(output.Terminated) as info:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert info.value.exit_code == 143
        assert list(tmp_path.iterdir()) == []
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def test_sigterm_during_a_real_run_leaves_previous_outputs(tmp_path):
    """A real process on the full December data, terminated while it stages its files."""
    data = dataset("online_retail_2010-12.csv")
    out = tmp_path / "out"
    out.mkdir()
    (out / "assignments.csv").write_bytes(b"previous run\n")
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("SEGKIT_CONFIG", None)
    proc = subprocess.Popen([*SEGKIT, "segment", str(data), "-o", str(out), "--max-bad-rows", "0.5", "--k", "3", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if any(p.name.startswith(output.TMP_PREFIX) for p in out.iterdir()):
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.005)
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 143, f"the run ended ({proc.returncode}) before its files were staged: {err}"
    assert "terminated" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["assignments.csv"]
    assert (out / "assignments.csv").read_bytes() == b"previous run\n"


def test_summary_records_each_output_sha256(baseline):
    doc = json.loads((baseline / "summary.json").read_text(encoding="utf-8"))
    names = sorted(p.name for p in baseline.iterdir() if p.name != "summary.json")
    assert sorted(doc["outputs"]) == names == ["assignments.csv", "outlook.csv", "report.html", "report.xlsx"]
    assert all(doc["outputs"][n] == sha(baseline / n) for n in names)
    assert output.verify_set(baseline) == []


def test_a_kill_between_renames_is_detectable(retail, previous_set, monkeypatch):
    """The renames are the only non-atomic moment: stop after three of them (as a kill would); the
    outlook.csv of both runs is byte for byte the same (a few days of December 2010), so the mix
    shows in assignments.csv and report.xlsx."""
    real_replace, calls = os.replace, []

    def replace_then_die(src, dst):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies here
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", replace_then_die)
    result = invoke("segment", str(retail), "-o", str(previous_set), "--as-of", "2010-12-07", "--k", "3", "-q")
    assert result.exit_code == 130
    assert [Path(c).name for c in calls] == ["assignments.csv", "outlook.csv", "report.xlsx"]
    # summary.json is renamed last, so the old one still describes the old set: the mix shows
    assert sorted(output.verify_set(previous_set)) == ["assignments.csv", "report.xlsx"]
    assert not [p for p in previous_set.iterdir() if p.name.startswith(output.TMP_PREFIX)]


# ------------------------------------------------------------------ 5-8: hostile input

EVIL = ["\x1b[2J\x1b[H", "[red]boom[/red]", "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\", "\u202eevil", "[b]"]


@pytest.fixture(scope="module")
def evil_csv(tmp_path_factory) -> Path:
    rows = [[f"C{i % 12}", EVIL[i % 12 % len(EVIL)] + f"name{i % 12}", f"2024-0{1 + i % 9}-1{i % 10}", str(100 + i)]
            for i in range(60)]
    return write_csv(tmp_path_factory.mktemp("evil") / "evil.csv", ["customer", "customer name", "date", "amount"], rows)


def test_escape_sequences_and_markup_from_data_stay_inert(evil_csv, tmp_path):
    table = invoke("segment", str(evil_csv), "-o", "-", "--format", "table", "--k", "2", "-q")
    assert table.exit_code == 0, table.stderr
    text = table.stdout_bytes.decode()
    assert "\x1b" not in text and "\u202e" not in text
    assert "[b]name4" in text  # Rich markup from the data is shown, not applied
    assert "\\x1b[2J" in text
    insp = invoke("inspect", str(evil_csv))
    assert insp.exit_code == 0 and "\x1b" not in insp.stdout + insp.stderr
    hdr = tmp_path / "hdr.csv"
    hdr.write_text("cust\x1b[2Jomer,[red]x[/red],amount\n1,2,3\n", encoding="utf-8")
    err = one_error(invoke("segment", str(hdr), "-o", str(tmp_path / "o"), "--input-kind", "orders"), 65,
                    "[red]x[/red]", "\\x1b[2J")
    assert "\x1b" not in err


def test_formula_like_customer_ids_are_neutralised_and_read_back(tmp_path):
    ids = ["=1+2", "+SUM(A1)", "-42", "@cmd", "'=already", "plain"]
    rows = [[cid, f"2024-0{m}-01", str(100 * (i + 1) * m)] for i, cid in enumerate(ids) for m in (1, 3, 5)]
    src = write_csv(tmp_path / "ids.csv", ["customer", "date", "amount"], rows)
    first = tmp_path / "first"
    assert invoke("segment", str(src), "-o", str(first), *FAST).exit_code == 0
    with open(first / "assignments.csv", encoding="utf-8", newline="") as fh:
        written = {r["customer_id"] for r in csv.DictReader(fh)}
    assert written == {"'=1+2", "'+SUM(A1)", "'-42", "'@cmd", "''=already", "plain"}
    second = tmp_path / "second"
    result = invoke("segment", str(src), "-o", str(second), "--previous", str(first), *FAST)
    assert result.exit_code == 0, result.stderr
    doc = json.loads((second / "summary.json").read_text(encoding="utf-8"))
    assert doc["migration"]["changes"] == {"up": 0, "down": 0, "same": 6, "new": 0}
    assert doc["migration"]["lost_customers"] == 0


@pytest.mark.parametrize("template", ["{date.__class__.__mro__}", "{as_of!r}", "{date:%Y}", "{0}", "out-{", "{as_of[0]}"])
def test_output_template_allows_only_documented_fields(retail, tmp_path, template):
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / template), *FAST), 2, "{as_of}")
    assert list(tmp_path.iterdir()) == []


def _workbook(path: Path, rows: int, pad_bytes: int = 0) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("orders")
    sheet.write_row(0, 0, ["customer", "date", "amount"])
    for i in range(rows):
        sheet.write_row(i + 1, 0, [f"C{i}", "2024-05-01", 100 + i])
    book.close()
    if pad_bytes:
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("xl/media/pad.bin", b"\0" * pad_bytes)
    return path


def test_xlsx_decompression_bomb_is_refused(tmp_path):
    bomb = _workbook(tmp_path / "bomb.xlsx", 30, pad_bytes=40 << 20)
    assert bomb.stat().st_size < 200_000
    one_error(invoke("inspect", str(bomb), "--max-unpacked-mb", "16"), 65, "16 MB", "--max-unpacked-mb")
    assert invoke("inspect", str(bomb), "--max-unpacked-mb", "64").exit_code == 0


def test_xlsx_shared_string_count_is_bounded(tmp_path):
    book = _workbook(tmp_path / "s.xlsx", 30)
    cfg = tmp_path / "s.toml"
    cfg.write_text("[input]\nmax_shared_strings = 10\n", encoding="utf-8")
    one_error(invoke("inspect", str(book), "--config", str(cfg)), 65, "shared strings")
    # a workbook that declares more strings than it holds is judged by the declaration
    lying = tmp_path / "lying.xlsx"
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(lying, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("sharedStrings.xml"):
                data = data.replace(b'uniqueCount="', b'uniqueCount="9999999', 1)
            dst.writestr(info, data)
    cfg.write_text("[input]\nmax_shared_strings = 1000000\n", encoding="utf-8")
    one_error(invoke("inspect", str(lying), "--config", str(cfg)), 65, "declares")


def test_gzip_bomb_is_refused(tmp_path):
    plain = b"customer,date,amount\n" + b"A,2024-01-01,5\n" * 1_500_000  # 22 MB
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(plain))
    one_error(invoke("inspect", str(bomb), "--max-unpacked-mb", "8"), 65, "8 MB")
    one_error(invoke("inspect", "-", "--max-unpacked-mb", "8", input=gzip.compress(plain)), 65, "8 MB")
    one_error(invoke("inspect", "-", "--max-unpacked-mb", "8", input=plain), 65, "<stdin>", "8 MB")


# ------------------------------------------------------------------ 9-11: odd but legitimate files

@pytest.fixture(scope="module")
def retail_assignments(retail, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("plain") / "out"
    assert invoke("segment", str(retail), "-o", str(out), *FAST).exit_code == 0
    return (out / "assignments.csv").read_bytes()


def _variant(kind: str, retail: Path, tmp: Path) -> tuple[list[str], bytes | None]:
    data = retail.read_bytes()
    if kind == "utf16-tab":
        rows = list(csv.reader(io.StringIO(data.decode())))
        buf = io.StringIO()
        csv.writer(buf, delimiter="\t", lineterminator="\r\n").writerows(rows)
        p = tmp / "unicode.txt"
        p.write_bytes(codecs.BOM_UTF16_LE + buf.getvalue().encode("utf-16-le"))
        return [str(p)], None
    if kind == "utf16-flag":
        p = tmp / "unicode.csv"
        p.write_bytes(data.decode().encode("utf-16"))
        return [str(p), "--encoding", "utf-16"], None
    if kind == "cr-only":
        p = tmp / "mac.csv"
        p.write_bytes(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
        return [str(p)], None
    if kind == "gz":
        p = tmp / "orders.csv.gz"
        p.write_bytes(gzip.compress(data))
        return [str(p)], None
    if kind == "zst":
        import zstandard

        p = tmp / "orders.csv.zst"
        p.write_bytes(zstandard.ZstdCompressor().compress(data))
        return [str(p)], None
    if kind == "stdin-gz":
        return ["-"], gzip.compress(data)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["utf16-tab", "utf16-flag", "cr-only", "gz", "zst", "stdin-gz"])
def test_odd_files_read_like_the_plain_csv(kind, retail, retail_assignments, tmp_path):
    args, stdin = _variant(kind, retail, tmp_path)
    out = tmp_path / "out"
    result = invoke("segment", *args, "-o", str(out), *FAST, input=stdin)
    assert result.exit_code == 0, result.stderr
    assert (out / "assignments.csv").read_bytes() == retail_assignments


def test_fifo_is_read_to_its_end(retail, retail_assignments, tmp_path):
    fifo = tmp_path / "orders.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(retail.read_bytes()))
    writer.start()
    out = tmp_path / "out"
    result = invoke("segment", str(fifo), "-o", str(out), *FAST)
    writer.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert (out / "assignments.csv").read_bytes() == retail_assignments


def test_mixed_encodings_are_reported_not_mangled(tmp_path):
    names = ["华东商贸", "北方批发", "南粤食品"]
    lines = ["customer,customer name,date,amount"]
    lines += [f"C{i % 3},{names[i % 3]},2024-0{1 + i % 9}-15,{100 + i}" for i in range(30)]
    # data lines 1, 5, 9, ... 29 (8 of 30) in GB18030, the other 22 in UTF-8
    data = b"\n".join(ln.encode("gb18030" if i % 4 == 1 else "utf-8") for i, ln in enumerate(lines)) + b"\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    result = invoke("segment", str(path), "-o", str(tmp_path / "o"), "--k", "2", "--no-report")
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert "mixes encodings" in err and "22 line(s) are UTF-8" in err and "8 are gb18030" in err
    doc = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert any("22 line(s) are UTF-8" in n for n in doc["input"]["notes"])  # for scripts run with -q
    got = pl.read_csv(tmp_path / "o" / "assignments.csv", infer_schema=False)
    assert dict(zip(got["customer_id"], got["customer_name"])) == {f"C{i}": names[i] for i in range(3)}


def test_duplicate_header_refused_unless_mapped(tmp_path):
    rows = [["A", "2024-01-01", "10", "99"], ["B", "2024-02-01", "20", "98"], ["A", "2024-03-01", "5", "97"]]
    path = write_csv(tmp_path / "dup.csv", ["customer", "date", "amount", "amount"], rows)
    one_error(invoke("inspect", str(path)), 65, "columns 3 and 4", "'amount'", "--map amount=")
    second = invoke("segment", str(path), "-o", str(tmp_path / "o"), "--map", "amount=amount_duplicated_0", *FAST)
    assert second.exit_code == 0, second.stderr
    doc = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert doc["total_monetary"] == 99 + 98 + 97
    xlsx = tmp_path / "dup.xlsx"
    import xlsxwriter

    book = xlsxwriter.Workbook(str(xlsx))
    sheet = book.add_worksheet()
    for r, row in enumerate([["customer", "date", "amount", "amount"], *rows]):
        sheet.write_row(r, 0, row)
    book.close()
    one_error(invoke("inspect", str(xlsx)), 65, "columns 3 and 4", "--map amount=\"amount_2\"")


def test_truncated_previous_is_refused(retail, baseline, tmp_path):
    cut = tmp_path / "cut"
    cut.mkdir()
    data = (baseline / "assignments.csv").read_bytes()
    (cut / "summary.json").write_bytes((baseline / "summary.json").read_bytes())
    (cut / "assignments.csv").write_bytes(data[: len(data) // 2])  # mid-row
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o"), "--previous", str(cut), *FAST),
              65, "middle of a row")
    lines = data.splitlines(keepends=True)
    (cut / "assignments.csv").write_bytes(b"".join(lines[:-10]))  # whole rows missing
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o"), "--previous", str(cut), *FAST),
              65, "changed after its run")  # summary.json's sha256 of assignments.csv
    doc = json.loads((baseline / "summary.json").read_text(encoding="utf-8"))
    doc.pop("outputs")  # a summary without hashes: the customer count still finds the cut
    (cut / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o"), "--previous", str(cut), *FAST),
              65, f"{len(lines) - 11} rows but summary.json says {len(lines) - 1} customers")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ 12: no exit 1 on user mistakes

def test_placeholder_date_9999_never_exit_1(tmp_path):
    rows = [[f"C{i % 6}", f"2024-0{1 + i % 6}-1{i % 10}", str(10 + i)] for i in range(30)] + [["C9", "9999-12-31", "20"]]
    path = write_csv(tmp_path / "d.csv", ["customer", "date", "amount"], rows)
    result = invoke("segment", str(path), "-o", str(tmp_path / "o"), "--k", "2", "--no-report", "-q")
    assert result.exit_code == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert doc["as_of"] == "2024-06-20"  # the day after the latest real order, not 10000-01-01
    assert any("9999-12-31" in w["message"] for w in doc["warnings"])  # left out, and said so
    one_error(invoke("backtest", str(path), "--holdout-days", "30", "-q"), 65, "9999-12-31", "--as-of")
    few = write_csv(tmp_path / "few.csv", ["customer", "date", "amount"], [["A", "2024-01-01", "1"], ["B", "9999-12-31", "2"]])
    one_error(invoke("segment", str(few), "-o", str(tmp_path / "o2"), *FAST), 65, "9999-12-31")


def test_values_named_like_internal_columns(tmp_path):
    """Channel values and tier names equal to the names segkit uses inside ("a", "len", "tier")."""
    rows = [[f"C{i}", f"2024-0{1 + i % 9}-0{1 + i % 9}", str(1000 * (i + 1) ** 2), ["a", "b", "len", "tier"][i % 4]]
            for i in range(24)]
    path = write_csv(tmp_path / "c.csv", ["customer", "date", "amount", "channel"], rows)
    cfg = tmp_path / "t.toml"
    cfg.write_text('[[tiers]]\nname = "a"\nmin = 100000\n[[tiers]]\nname = "len"\n', encoding="utf-8")
    result = invoke("segment", str(path), "-o", str(tmp_path / "o"), "--config", str(cfg), "--k", "2", "-q", "--no-report")
    assert result.exit_code == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    chan = doc["validation"]["chi2"]["channel"]
    assert chan["levels"] == 4 and chan["n"] == 24
    assert [t["tier"] for t in doc["tiers"]] == ["a", "len"]


@pytest.mark.parametrize("toml, key", [
    ("[input]\namount_unit = nan", "input.amount_unit"),
    ("[churn]\nhigh = inf", "churn.high"),
    ("[clustering]\nrandom_state = -1", "clustering.random_state"),
    ("[analysis]\nyear = 99999", "analysis.year"),
    ('[analysis]\nas_of = "0001-01-01"', "analysis.as_of"),
    ("[analysis]\nrfm_window_days = 100000000", "analysis.rfm_window_days"),
    ("[clustering]\nsilhouette_sample = 1", "clustering.silhouette_sample"),
    ("[clustering]\nn_init = 100000000", "clustering.n_init"),
    ("[[tiers]]\nname = \"x\"\nmin = nan\n[[tiers]]\nname = \"y\"", "tiers[0].min"),
])
def test_bad_config_values_exit_78(retail, tmp_path, toml, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml + "\n", encoding="utf-8")
    start = time.monotonic()
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o"), "--config", str(cfg), *FAST), 78, key)
    assert time.monotonic() - start < 10  # n_init 1e8 used to hang


def test_binary_toml_exit_78_and_bom_toml_is_read(retail, tmp_path):
    cfg = tmp_path / "bin.toml"
    cfg.write_bytes(bytes(range(256)) * 4)
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o"), "--config", str(cfg), *FAST), 78, "UTF-8")
    bom = tmp_path / "bom.toml"
    bom.write_bytes(codecs.BOM_UTF8 + b'[output]\nlang = "zh"\n')
    result = invoke("config", "show", "--config", str(bom))
    assert result.exit_code == 0, result.stderr
    assert 'lang = "zh"' in result.stdout


@pytest.mark.parametrize("flag", [["--seed", "-1"], ["--year", "99999"], ["--as-of", "0001-01-01"],
                                  ["--amount-unit", "nan"], ["--lang", "fr"], ["--max-bad-rows", "5"],
                                  ["--k", "1"], ["--report", "pdf"], ["--max-unpacked-mb", "0"], ["--map", "bogus=x"]])
def test_bad_command_line_values_exit_2(retail, tmp_path, flag):
    one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o"), *flag), 2, flag[0])
    assert not (tmp_path / "o").exists()


def test_unwritable_sample_path_exit_73(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(invoke("sample", "-o", str(blocker / "s.csv"), "--rows", "50"), 73, str(blocker / "s.csv"))


def test_memory_exhausted_exit_74(retail, tmp_path, monkeypatch):
    from segkit import pipeline

    def exhausted(*_a, **_k):
        raise MemoryError

    monkeypatch.setattr(pipeline, "run", exhausted)
    err = one_error(invoke("segment", str(retail), "-o", str(tmp_path / "o")), 74, "out of memory")
    assert "Parquet" in err and "--engine spark" in err


def _shell(cmd: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "SEGKIT": " ".join(SEGKIT)}
    env.pop("SEGKIT_CONFIG", None)
    return subprocess.run(["bash", "-c", cmd], capture_output=True, env=env, cwd=tmp_path, timeout=300)


def test_closed_or_full_standard_streams(tmp_path):
    src = write_csv(tmp_path / "o.csv", ["customer", "date", "amount"],
                    [["A", "2024-01-01", "10"], ["B", "2024-01-02", "20"], ["C", "2024-02-01", "5"]])
    no_stdin = _shell(f'$SEGKIT segment - -o out <&-', tmp_path)
    assert no_stdin.returncode == 2 and b"stdin is closed" in no_stdin.stderr, no_stdin.stderr
    full = _shell(f"$SEGKIT segment {src} -o - --k 2 -q > /dev/full", tmp_path)
    assert full.returncode == 74 and b"stdout" in full.stderr and b"Traceback" not in full.stderr, full.stderr
    no_stderr = _shell(f"$SEGKIT segment {src} -o out --k 2 --no-report 2>&-", tmp_path)
    assert no_stderr.returncode == 0 and no_stderr.stdout == b""  # nothing leaks onto stdout
    assert (tmp_path / "out" / "assignments.csv").exists()
    no_stderr_err = _shell("$SEGKIT segment missing.csv -o out 2>&-", tmp_path)
    assert no_stderr_err.returncode == 66 and no_stderr_err.stdout == b""


# ------------------------------------------------------------------ 13: reproducible workbook

def test_report_xlsx_is_byte_identical_across_runs(retail, baseline, tmp_path):
    time.sleep(1.1)  # the workbook clock has one-second resolution
    out = tmp_path / "again"
    assert invoke("segment", str(retail), "-o", str(out), "--k", "3", "-q").exit_code == 0
    for name in ("assignments.csv", "report.xlsx", "report.html"):
        assert (out / name).read_bytes() == (baseline / name).read_bytes(), name


# ------------------------------------------------------------------ fuzz: the reader never crashes

def test_reader_fuzz_never_exit_1_or_traceback(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("fuzz")
    cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
    row = st.lists(cell, min_size=1, max_size=5)
    texts = st.builds(
        lambda header, rows, sep, end: end.join(sep.join(r) for r in [header, *rows]) + end,
        st.sampled_from([["customer", "date", "amount"], ["客户编码", "日期", "金额"], ["customer", "date"]]),
        st.lists(row, max_size=8), st.sampled_from([",", ";", "\t", "|"]), st.sampled_from(["\n", "\r\n", "\r"]))
    encoded = st.builds(lambda t, enc: t.encode(enc, errors="replace"), texts,
                        st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16", "latin-1", "cp1252"]))
    payload = st.one_of(st.binary(max_size=300), encoded, encoded.map(gzip.compress))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=payload, ext=st.sampled_from([".csv", ".txt", ".xlsx", ".csv.gz"]))
    def check(data: bytes, ext: str) -> None:
        path = folder / f"f{ext}"
        path.write_bytes(data)
        result = invoke("inspect", str(path))  # raises if an exception escaped
        assert result.exit_code in (0, 2, 65, 66, 74), result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr

    check()


def test_neutralising_round_trips_any_text():
    """defuse_text then undefuse gives back every value (the bijection --previous relies on)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    prefixes = st.text(alphabet="'=+-@ ", max_size=4)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.builds(str.__add__, prefixes, st.text(max_size=6)), min_size=1, max_size=20))
    def check(values: list[str]) -> None:
        df = pl.DataFrame({"v": values})
        written = output.defuse_text(df)["v"].to_list()
        assert all(not w.startswith(tuple(output.INJECTION_START)) for w in written)
        back = written and pl.DataFrame({"v": written}).select(output.undefuse(pl.col("v")))["v"].to_list()
        assert back == values

    check()


def test_backtest_json_may_not_overwrite_the_input_and_refuses_placeholder_dates(tmp_path):
    rows = [["A", "2024-01-01", "10"], ["B", "9999-12-31", "20"], ["A", "2024-02-01", "5"]]
    path = write_csv(tmp_path / "d.csv", ["customer", "date", "amount"], rows)
    before = path.read_bytes()
    one_error(invoke("backtest", str(path), "--holdout-days", "30", "--json", str(path)), 2, "overwrite")
    assert path.read_bytes() == before
    one_error(invoke("backtest", str(path), "--holdout-days", "30", "-q"), 65, "9999-12-31")  # 2 of 3 rows


def test_named_fifo_holding_a_customer_table_does_not_hang(tmp_path):
    """Auto-detection of a customer-level table reads the input twice; a FIFO cannot be: one clear error."""
    fifo = tmp_path / "customers.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"Channel,Region,Fresh,Milk\n1,2,300,400\n2,3,100,50\n"))
    writer.start()
    results = []
    run = threading.Thread(target=lambda: results.append(invoke("segment", str(fifo), "-o", str(tmp_path / "o"))))
    run.start()
    run.join(timeout=60)
    if run.is_alive():  # unblock the reader so the test run can end, then fail
        with open(fifo, "wb"):
            pass
        run.join(timeout=10)
        pytest.fail("segment blocked re-opening the FIFO")
    writer.join(timeout=10)
    one_error(results[0], 65, "no customer_id column")
