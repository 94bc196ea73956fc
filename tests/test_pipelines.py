"""Runs that cron and shell pipelines can trust: stdout formats, config files, migration, atomicity."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tomllib

import polars as pl
import pytest

from conftest import ROOT, SAMPLE_DIR, run_cli, write_csv
from segkit import config
from segkit.errors import ConfigError

ORDERS = [
    # customer, order, date, amount
    ["A", "1", "2024-03-01", "12000000"], ["B", "2", "2024-03-01", "4000000"],
    ["C", "3", "2024-05-01", "500000"], ["D", "4", "2024-06-01", "1000"],
    ["E", "5", "2024-06-02", "2000"], ["F", "6", "2024-06-03", "3000"],
]


@pytest.fixture
def orders(tmp_path):
    return write_csv(tmp_path / "orders.csv", ["customer", "order", "date", "amount"], ORDERS)


@pytest.fixture(scope="module")
def dir_assignments(tmp_path_factory):
    """assignments.csv of ORDERS written to a folder: the same run for every stdout format."""
    base = tmp_path_factory.mktemp("ref")
    orders = write_csv(base / "orders.csv", ["customer", "order", "date", "amount"], ORDERS)
    out = base / "ref"
    proc = run_cli("segment", str(orders), "-o", str(out), "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    return pl.read_csv(out / "assignments.csv", infer_schema=False)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_stdin_to_stdout_round_trip(dir_assignments, orders, fmt):
    want = dir_assignments
    proc = run_cli("segment", "-", "-o", "-", "--format", fmt, input=orders.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    data = proc.stdout
    if fmt == "csv":
        got = pl.read_csv(io.BytesIO(data), infer_schema=False)
    elif fmt == "json":
        got = pl.DataFrame(json.loads(data))
    elif fmt == "jsonl":
        got = pl.DataFrame([json.loads(line) for line in data.decode().splitlines()])
    else:
        got = pl.read_parquet(io.BytesIO(data))
    assert got.columns == want.columns
    assert got["customer_id"].to_list() == want["customer_id"].to_list()
    assert [str(v) for v in got["tier"]] == want["tier"].to_list()
    assert [float(v) for v in got["annual_spend"]] == [float(v) for v in want["annual_spend"]]
    assert b"Tiers" in proc.stderr  # the summary still goes to stderr


def test_table_format_and_no_ansi(orders):
    proc = run_cli("segment", "-", "-o", "-", "--format", "table", input=orders.read_bytes(),
                   env={"TERM": "dumb"})
    assert proc.returncode == 0, proc.stderr.decode()
    assert "customer_id" in proc.stdout.decode() and b"\x1b[" not in proc.stdout + proc.stderr


def test_summary_json_to_stdout(tmp_path, orders):
    proc = run_cli("segment", str(orders), "-o", str(tmp_path / "o"), "--summary-json", "-", "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["customers"] == 6 and doc["segkit_version"]
    assert doc == json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert sum(t["customers"] for t in doc["tiers"]) == 6
    assert doc["input"]["sha256"] == hashlib.sha256(orders.read_bytes()).hexdigest()
    assert (doc["input"]["rows"], doc["input"]["rejected_rows"]) == (len(ORDERS), 0)


def test_broken_pipe_ends_quietly():
    import subprocess
    import sys

    big = SAMPLE_DIR / "orders.xlsx"
    with subprocess.Popen([sys.executable, "-m", "segkit", "segment", str(big), "-o", "-", "--format", "jsonl",
                           "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p1:
        first = p1.stdout.readline()
        p1.stdout.close()  # like `| head -1`
        err = p1.stderr.read().decode()
        assert p1.wait(timeout=120) == 0, err
    assert first.startswith(b"{") and "Traceback" not in err and "BrokenPipe" not in err


def test_reruns_are_byte_identical(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        proc = run_cli("segment", str(SAMPLE_DIR / "orders_zh.csv"), "-o", str(out), "-q", "--no-report")
        assert proc.returncode == 0, proc.stderr.decode()
        outs.append((out / "assignments.csv").read_bytes())
    assert outs[0] == outs[1]


# ----------------------------------------------------------------------------- config

def test_config_precedence(tmp_path, monkeypatch):
    file_cfg = tmp_path / "file.toml"
    file_cfg.write_text('[analysis]\nas_of = "2024-01-01"\nyear = 2022\n[clustering]\nk = 3\n')
    env_cfg = tmp_path / "env.toml"
    env_cfg.write_text('[analysis]\nas_of = "2023-06-30"\n[input]\nmax_bad_rows = 0.2\n')
    monkeypatch.delenv("SEGKIT_CONFIG", raising=False)
    assert config.load().as_of is None  # defaults
    monkeypatch.setenv("SEGKIT_CONFIG", str(env_cfg))
    c = config.load()  # the env var names the default config file
    assert str(c.as_of) == "2023-06-30" and c.max_bad_rows == 0.2
    assert env_cfg.name in c.sources["analysis.as_of"]
    c = config.load(file_cfg)  # an explicit --config wins over the env var
    assert str(c.as_of) == "2024-01-01" and c.max_bad_rows == 0.05 and c.k == 3
    c = config.load(file_cfg, {"analysis.as_of": "2025-02-02", "clustering.k": "auto"})  # CLI wins
    assert str(c.as_of) == "2025-02-02" and c.year == 2022 and c.k == "auto"
    assert c.sources["analysis.as_of"] == "command line" and c.sources["analysis.year"] == str(file_cfg)


@pytest.mark.parametrize(("text", "needle"), [
    ("[analysis]\nas_off = 1\n", "unknown key 'analysis.as_off'"),
    ("[nonsense]\nx = 1\n", "unknown key 'nonsense'"),
    ("[input]\nmax_bad_rows = 'lots'\n", "'input.max_bad_rows' must be a number"),
    ("[clustering]\nk = 1\n", "clustering.k"),
    ("[analysis]\nas_of = '2024/01/01'\n", "YYYY-MM-DD"),
    ("[[tiers]]\nname = 'a'\nmin = 10\n[[tiers]]\nname = 'b'\nmin = 20\n[[tiers]]\nname = 'c'\n",
     "sorted from the highest min down"),
    ("[[tiers]]\nname = 'a'\nmin = 10\n[[tiers]]\nname = 'b'\nmin = 10\n[[tiers]]\nname = 'c'\n",
     "without overlap"),
    ("[[tiers]]\nname = 'a'\nmin = 10\n[[tiers]]\nname = 'b'\nmin = 5\n", "last tier and must have no min"),
    ("[[segments]]\nname = 'x'\nr = [0, 9]\nf = [1, 5]\nm = [1, 5]\n", "segments[0].r"),
    ("[[personas]]\nname = 'x'\ncolumns = ['channel']\n", "needs exactly one test"),
    ("[columns]\nklant = 'Kunde'\n", "unknown column role 'klant'"),
    ("this is = not toml [\n", "not valid TOML"),
])
def test_bad_config_exit_78(tmp_path, orders, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        config.load(path, use_env=False)
    proc = run_cli("segment", str(orders), "--config", str(path), "-o", str(tmp_path / "o"))
    assert proc.returncode == 78 and "Traceback" not in proc.stderr.decode()
    assert len(proc.stderr.decode().strip().splitlines()) <= 2


def test_missing_config_file_exit_78(tmp_path, orders):
    proc = run_cli("segment", str(orders), "--config", str(tmp_path / "nope.toml"))
    assert proc.returncode == 78 and "not found" in proc.stderr.decode()


def test_custom_three_tier_config(tmp_path):
    cfg = tmp_path / "brand.toml"
    cfg.write_text(
        '[[tiers]]\nname = "high"\nzh = "高"\nmin = 100000\n'
        '[[tiers]]\nname = "mid"\nzh = "中"\nmin = 50000\n'
        '[[tiers]]\nname = "low"\nzh = "低"\n'
        '[[personas]]\nname = "top"\ntier = ["high"]\n', encoding="utf-8")
    rows = [["A", "1", "2024-06-01", "100000"], ["B", "2", "2024-06-01", "99999.99"],
            ["C", "3", "2024-06-01", "50000"], ["D", "4", "2024-06-01", "49999.99"]]
    path = write_csv(tmp_path / "o.csv", ["customer", "order", "date", "amount"], rows)
    out = tmp_path / "out"
    proc = run_cli("segment", str(path), "--config", str(cfg), "-o", str(out), "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    with open(out / "assignments.csv", encoding="utf-8") as fh:
        got = {r["customer_id"]: (r["tier"], r["persona"]) for r in csv.DictReader(fh)}
    assert got == {"A": ("high", "top"), "B": ("mid", ""), "C": ("mid", ""), "D": ("low", "")}
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [t["tier"] for t in doc["tiers"]] == ["high", "mid", "low"]


def test_config_show_and_init(tmp_path):
    proc = run_cli("config", "show")
    assert proc.returncode == 0
    shown = tomllib.loads(proc.stdout.decode())
    assert shown["analysis"]["rfm_window_days"] == 0 and len(shown["tiers"]) == 5
    assert "# from default" in proc.stdout.decode()
    cfg = tmp_path / "w.toml"
    cfg.write_text("[analysis]\nyear = 2024\n")
    proc = run_cli("config", "show", "--config", str(cfg))
    assert f"year = 2024  # from {cfg}" in proc.stdout.decode()
    target = tmp_path / "starter.toml"
    assert run_cli("config", "init", str(target)).returncode == 0
    assert target.read_text(encoding="utf-8") == (ROOT / "configs" / "default.toml").read_text(encoding="utf-8")
    assert config.load(target, use_env=False) == config.load(None, use_env=False)
    again = run_cli("config", "init", str(target))
    assert again.returncode == 73 and "--force" in again.stderr.decode()


# -------------------------------------------------------------------------- migration

MIGRATION_ROWS = [
    # up: regular last year window -> key now
    ["UP", "u1", "2023-06-01", "400000"], ["UP", "u2", "2024-06-01", "3500000"],
    # down: strategic -> growth
    ["DOWN", "d1", "2023-06-01", "11000000"], ["DOWN", "d2", "2024-06-01", "1200000"],
    # same: scattered both times
    ["SAME", "s1", "2023-06-01", "1000"], ["SAME", "s2", "2024-06-01", "2000"],
    # new: first bought after the previous run's as_of
    ["NEW", "n1", "2024-09-01", "50000"],
    # lost: only in the previous run's data?  A customer cannot vanish from history, so the
    # previous assignments get an extra customer by hand below.
]


def test_migration_against_previous_run(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["customer", "order", "date", "amount"], MIGRATION_ROWS)
    prev, cur = tmp_path / "prev", tmp_path / "cur"
    assert run_cli("segment", str(path), "-o", str(prev), "--as-of", "2024-01-01", "-q", "--no-report").returncode == 0
    # a customer of the previous run who is absent now (e.g. merged into another account)
    with open(prev / "assignments.csv", encoding="utf-8") as fh:
        text = fh.read()
    header = text.splitlines()[0].split(",")
    ghost = {c: "" for c in header} | {"customer_id": "GONE", "tier": "key", "annual_spend": "4000000.0"}
    # edited by hand, so it no longer sits beside its run's summary.json (whose sha256 it fails)
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "assignments.csv").write_text(text + ",".join(ghost[c] for c in header) + "\n", encoding="utf-8")
    proc = run_cli("segment", str(path), "-o", str(cur), "--as-of", "2025-01-01", "--previous", str(edited),
                   "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    with open(cur / "assignments.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[-2:] == ["previous_tier", "tier_change"]
    got = {r["customer_id"]: (r["previous_tier"], r["tier"], r["tier_change"]) for r in rows}
    assert got == {
        "UP": ("regular", "key", "up"), "DOWN": ("strategic", "growth", "down"),
        "SAME": ("scattered", "scattered", "same"), "NEW": ("", "scattered", "new"),
    }
    mig = json.loads((cur / "summary.json").read_text(encoding="utf-8"))["migration"]
    assert mig["changes"] == {"up": 1, "down": 1, "same": 1, "new": 1}
    assert mig["lost_customers"] == 1 and mig["lost"][0]["customer_id"] == "GONE"
    rows_, cols = mig["row_labels"], mig["column_labels"]
    counts = mig["matrix"]["counts"]
    assert counts[rows_.index("regular")][cols.index("key")] == 1
    assert counts[rows_.index("strategic")][cols.index("growth")] == 1
    assert counts[rows_.index("new")][cols.index("scattered")] == 1
    assert counts[rows_.index("key")][cols.index("lost")] == 1
    assert mig["matrix"]["spend"][rows_.index("key")][cols.index("lost")] == 4_000_000
    assert mig["matrix"]["spend"][rows_.index("regular")][cols.index("key")] == 3_500_000
    assert sum(map(sum, counts)) == 5


def test_previous_auto_picks_latest_earlier_run(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["customer", "order", "date", "amount"], MIGRATION_ROWS)
    base = tmp_path / "runs"
    template = str(base / "{as_of}")
    for as_of in ("2024-01-01", "2024-07-01", "2024-10-01"):
        proc = run_cli("segment", str(path), "-o", template, "--as-of", as_of, "-q", "--no-report")
        assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.name for p in base.iterdir()) == ["2024-01-01", "2024-07-01", "2024-10-01"]
    proc = run_cli("segment", str(path), "-o", template, "--as-of", "2024-08-01", "--previous", "auto",
                   "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((base / "2024-08-01" / "summary.json").read_text(encoding="utf-8"))
    assert doc["migration"]["previous"] == str(base / "2024-07-01" / "assignments.csv")
    # the first run of a schedule has nothing to compare with: it still succeeds
    proc = run_cli("segment", str(path), "-o", str(tmp_path / "fresh" / "{as_of}"), "--previous", "auto",
                   "--no-report")
    assert proc.returncode == 0 and "no earlier run found" in proc.stderr.decode()


def test_failed_run_leaves_previous_outputs_intact(tmp_path, orders):
    out = tmp_path / "out"
    assert run_cli("segment", str(orders), "-o", str(out), "-q", "--no-report").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # a later run with other data fails when it comes to replace summary.json
    other = write_csv(tmp_path / "other.csv", ["customer", "order", "date", "amount"], ORDERS[:3])
    (out / "summary.json").unlink()
    (out / "summary.json").mkdir()
    proc = run_cli("segment", str(other), "-o", str(out), "--no-report")
    assert proc.returncode == 73 and "summary.json" in proc.stderr.decode()
    assert (out / "assignments.csv").read_bytes() == before["assignments.csv"]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    # a run that fails on bad data never touches the outputs either
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    assert run_cli("segment", str(bad), "-o", str(out)).returncode == 65
    assert (out / "assignments.csv").read_bytes() == before["assignments.csv"]


def test_output_placeholders(tmp_path, orders):
    import datetime as dt

    proc = run_cli("segment", str(orders), "-o", str(tmp_path / "r-{as_of}-{date}"), "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / f"r-2024-06-04-{dt.date.today().isoformat()}" / "assignments.csv").exists()
    bad = run_cli("segment", str(orders), "-o", str(tmp_path / "{nope}"), "--no-report")
    assert bad.returncode == 2 and "placeholders" in bad.stderr.decode()


def test_persona_rule_on_the_category_column(tmp_path):
    """A configured rule may test a column segkit otherwise does not carry (category)."""
    cfg = tmp_path / "p.toml"
    cfg.write_text('[[personas]]\nname = "frozen buyer"\ncolumns = ["category"]\ncontains = ["frozen"]\n',
                   encoding="utf-8")
    rows = [["A", "1", "2024-06-01", "10", "Frozen"], ["A", "2", "2024-06-02", "10", "Frozen"],
            ["A", "3", "2024-06-03", "10", "dairy"], ["B", "4", "2024-06-01", "10", "dairy"]]
    path = write_csv(tmp_path / "c.csv", ["customer", "order", "date", "amount", "category"], rows)
    out = tmp_path / "o"
    proc = run_cli("segment", str(path), "--config", str(cfg), "-o", str(out), "-q", "--no-report")
    assert proc.returncode == 0, proc.stderr.decode()
    with open(out / "assignments.csv", encoding="utf-8") as fh:
        rows_out = list(csv.DictReader(fh))
    assert {r["customer_id"]: r["persona"] for r in rows_out} == {"A": "frozen buyer", "B": ""}
    assert "category" not in rows_out[0]  # not an assignments column
