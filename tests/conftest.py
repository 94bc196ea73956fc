from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGKIT_SHARED", ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"
SAMPLE_DIR = ROOT / "sample_data"
SEGKIT = [sys.executable, "-m", "segkit"]

# pytest-xdist workers run with COLUMNS=80 and LINES=24; the terminal output a test sees must not
# depend on whether the suite runs in one process or several (a test sets COLUMNS when it means to).
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"real dataset {path} is missing: ../shared must sit beside the repository")
    return path


def run_process(*args: str, input: bytes | None = None, env: dict | None = None, cwd: Path | None = None,
                timeout: int = 300) -> subprocess.CompletedProcess:
    """Run segkit in a child process, as a user would: for exit codes of the interpreter itself,
    signals, closed or broken streams and the import cost of a bare command."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    for name in ("SEGKIT_CONFIG", "COLUMNS", "LINES"):  # pytest-xdist workers set COLUMNS=80
        if name not in (env or {}):
            full_env.pop(name, None)
    return subprocess.run([*SEGKIT, *args], input=input, capture_output=True, env=full_env,
                          cwd=cwd, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None, cwd: Path | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the segkit command line in this process (no interpreter start-up per call).

    stdin, stdout and stderr are byte buffers that are not terminals, as in a pipe; the result has
    the fields of ``subprocess.CompletedProcess`` so a test reads the same either way.
    """
    from typer.testing import CliRunner

    from segkit.cli.app import app

    # pytest-xdist workers set COLUMNS=80; a test gives COLUMNS itself when it wants a width
    overrides: dict[str, str | None] = {"NO_COLOR": "1", "SEGKIT_CONFIG": None, "COLUMNS": None, "LINES": None,
                                        **(env or {})}
    previous_dir = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), input=input or b"", env=overrides,
                                    catch_exceptions=False, prog_name="segkit")
    finally:
        os.chdir(previous_dir)
    return subprocess.CompletedProcess([*SEGKIT, *args], result.exit_code,
                                       result.stdout_bytes, result.stderr_bytes)


@pytest.fixture
def cfg():
    from segkit import config

    return config.load(None, use_env=False)


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def make_reports(input_path: Path | str, out: Path, previous: Path | None = None, **overrides):
    """Run the pipeline and write both reports (and movers.csv after a migration) through a
    StagedDir, as `segkit segment` does."""
    from segkit import config, pipeline
    from segkit.result import summary
    from segkit.customers.migration import add_migration, movers_of
    from segkit.outputs.staging import StagedDir, rows_bytes
    from segkit.outputs.report import write_reports

    cfg = config.load(None, {"output.reports": ["xlsx", "html"], **overrides}, use_env=False)
    result = pipeline.run(str(input_path), cfg)
    if previous is not None:
        result = add_migration(result, previous)
    doc = summary(result)
    staged = StagedDir(out)
    movers = movers_of(result)
    if movers is not None:
        staged.write_bytes("movers.csv", rows_bytes(movers, "csv"))
    ctx = write_reports(result, staged)
    staged.commit()
    return result, doc, ctx


def _report_run(out: Path, input_path: Path, **overrides) -> dict:
    import openpyxl

    result, doc, ctx = make_reports(input_path, out, **overrides)
    return {"out": out, "result": result, "doc": doc, "ctx": ctx, "wb": openpyxl.load_workbook(out / "report.xlsx"),
            "html": (out / "report.html").read_text(encoding="utf-8")}


@pytest.fixture(scope="session")
def report_en(tmp_path_factory):
    """Both reports of the shipped English sample, written once for every test module."""
    return _report_run(tmp_path_factory.mktemp("report_en"), SAMPLE_DIR / "orders.xlsx")


@pytest.fixture(scope="session")
def report_zh(tmp_path_factory):
    """Both reports of the shipped Chinese sample with --lang zh, written once for every test module."""
    return _report_run(tmp_path_factory.mktemp("report_zh"), SAMPLE_DIR / "orders_zh.csv", **{"output.lang": "zh"})
