"""The command line as users run it: exit codes, one-line errors, stdout vs stderr."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLE_DIR, run_cli, write_csv

GOOD = [["A", "2024-01-01", "10"], ["B", "2024-01-02", "20"], ["A", "2024-02-01", "5"]]


@pytest.fixture
def good_csv(tmp_path):
    return write_csv(tmp_path / "orders.csv", ["customer", "date", "amount"], GOOD)


def assert_one_error(proc, code, *needles):
    err = proc.stderr.decode()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("segkit: error:")
    for n in needles:
        assert n in err, err
    assert proc.stdout == b""


def test_segment_writes_outputs_and_keeps_stdout_clean(tmp_path, good_csv):
    out = tmp_path / "out"
    proc = run_cli("segment", str(good_csv), "-o", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert "2 customers" in err and "Tiers" in err
    assert "\x1b[" not in err  # no ANSI codes when stderr is not a terminal
    assert (out / "assignments.csv").exists() and (out / "summary.json").exists()
    assert not (out / "rejected_rows.csv").exists()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["customers"] == 2 and doc["input"]["rows"] == 3
    assert [t["tier"] for t in doc["tiers"]] == ["strategic", "key", "growth", "regular", "scattered"]


def test_quiet_prints_nothing(tmp_path, good_csv):
    proc = run_cli("segment", str(good_csv), "-o", str(tmp_path / "o"), "-q", "--no-report")
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""


def test_missing_input_exit_66(tmp_path):
    assert_one_error(run_cli("segment", str(tmp_path / "nope.xlsx"), "-o", str(tmp_path / "o")), 66, "nope.xlsx")


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("empty.csv", b"", "empty"),
    ("header.csv", b"customer,date,amount\r\n", "no data rows"),
    ("garbage.csv", bytes(range(256)) * 40, "not a text file"),
    ("fake.xlsx", b"this is not a workbook at all", "not a readable Excel workbook"),
    ("noamount.csv", "客户编码,日期,数量\nA,2024-01-01,3\n".encode(), "--map amount="),
])
def test_bad_data_exit_65(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    assert_one_error(run_cli("segment", str(path), "-o", str(tmp_path / "o")), 65, needle, name)


def test_too_many_rejected_rows_exit_65_and_threshold_option(tmp_path):
    rows = [[f"C{i}" if i % 4 else "", "2024-01-01", "1"] for i in range(40)]
    path = write_csv(tmp_path / "x.csv", ["customer", "date", "amount"], rows)
    proc = run_cli("segment", str(path), "-o", str(tmp_path / "o"))
    assert_one_error(proc, 65, "column 'customer'", "--max-bad-rows")
    ok = run_cli("segment", str(path), "-o", str(tmp_path / "o"), "--max-bad-rows", "0.3", "-q", "--no-report")
    assert ok.returncode == 0, ok.stderr.decode()
    assert (tmp_path / "o" / "rejected_rows.csv").read_text(encoding="utf-8").count("missing customer_id") == 10


def test_output_folder_cannot_be_created_exit_73(tmp_path, good_csv):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_error(run_cli("segment", str(good_csv), "-o", str(blocker / "sub")), 73, "output folder")


def test_bad_config_exit_78(tmp_path, good_csv):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[analysis]\nas_off = '2024-01-01'\n")
    assert_one_error(run_cli("segment", str(good_csv), "--config", str(cfg)), 78, "as_off")


def test_usage_error_exit_2(good_csv):
    proc = run_cli("segment", str(good_csv), "--no-such-option")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr.decode()
    proc = run_cli("segment", str(good_csv), "--as-of", "01/02/2024")
    assert_one_error(proc, 2, "YYYY-MM-DD")


def test_debug_shows_traceback(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    proc = run_cli("segment", str(path), "--debug", "-o", str(tmp_path / "o"))
    assert proc.returncode == 65 and "Traceback" in proc.stderr.decode()


def test_assignments_to_stdout(good_csv):
    proc = run_cli("segment", str(good_csv), "-o", "-", "--format", "csv")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith("customer_id,first_order_date,last_order_date")
    assert [ln.split(",")[0] for ln in lines[1:]] == ["B", "A"]  # B spent 20, A 15: by annual spend


def test_inspect_reports_without_writing(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["customer", "date", "amount"], [*GOOD, ["", "2024-01-01", "1"]])
    proc = run_cli("inspect", str(path), cwd=tmp_path)
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "customer_id" in out and "missing customer_id" in out and "2024-01-01 .. 2024-02-01" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_sample_command_round_trip(tmp_path):
    path = tmp_path / "s.csv"
    proc = run_cli("sample", "-o", str(path), "--rows", "3000", "--customers", "60", "--seed", "3")
    assert proc.returncode == 0, proc.stderr.decode()
    again = tmp_path / "t.csv"
    run_cli("sample", "-o", str(again), "--rows", "3000", "--customers", "60", "--seed", "3")
    assert path.read_bytes() == again.read_bytes()  # deterministic
    out = tmp_path / "o"
    proc = run_cli("segment", str(path), "-o", str(out), "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["customers"] == 60


def test_shipped_samples_populate_every_tier(tmp_path):
    for name in ("orders.xlsx", "orders_zh.csv"):
        out = tmp_path / name
        proc = run_cli("segment", str(SAMPLE_DIR / name), "-o", str(out), "-q", "--no-report")
        assert proc.returncode == 0, proc.stderr.decode()
        doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert all(t["customers"] > 0 for t in doc["tiers"]), (name, doc["tiers"])


def _command_paths(group, prefix=()):
    """Every leaf command of the Typer app, as the words a user types."""
    for name, cmd in getattr(group, "commands", {}).items():
        path = (*prefix, name)
        if getattr(cmd, "commands", None):
            yield from _command_paths(cmd, path)
        else:
            yield path


def test_every_command_has_help_shown_in_readme():
    import typer

    from conftest import ROOT
    from segkit.cli.app import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = list(_command_paths(typer.main.get_command(app)))
    assert ("segment",) in commands and len(commands) >= 5
    for cmd in commands:
        proc = run_cli(*cmd, "--help")
        assert proc.returncode == 0 and b"Usage:" in proc.stdout, cmd
        assert f"segkit {' '.join(cmd)}" in readme, cmd


def test_unclosed_quote_is_bad_data_not_internal_error(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('customer,date,amount\nA,2024-01-01,5\nB,"2024-01-02,6\nC,2024-01-03,7\n', encoding="utf-8")
    assert_one_error(run_cli("segment", str(path), "-o", str(tmp_path / "o")), 65, "quoted field is never closed")


# A few runs in a child process: the interpreter's own exit code, real pipes, the entry point.

def test_process_exit_codes_and_one_line_errors(tmp_path, good_csv):
    from conftest import run_process

    ok = run_process("segment", str(good_csv), "-o", str(tmp_path / "o"), "-q", "--no-report")
    assert ok.returncode == 0 and ok.stdout == b"" and ok.stderr == b""
    assert_one_error(run_process("segment", str(tmp_path / "nope.csv")), 66, "nope.csv")
    bad = write_csv(tmp_path / "bad.csv", ["customer", "date", "amount"], [["A", "someday", "1"]] * 3)
    assert_one_error(run_process("segment", str(bad), "-o", str(tmp_path / "b")), 65, "order_date")


def test_process_stdin_to_stdout_pipe(good_csv):
    from conftest import run_process

    proc = run_process("segment", "-", "-o", "-", "--format", "csv", input=good_csv.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith("customer_id,") and sorted(ln.split(",")[0] for ln in lines[1:]) == ["A", "B"]
    assert b"Tiers" in proc.stderr
