"""What each command does once its options are parsed: run the pipeline, write the outputs.

Kept apart from ``cli.py`` so the commands can be called (and tested) without Typer.
"""

from __future__ import annotations

import datetime as dt
import sys
import tomllib
from pathlib import Path

import polars as pl
from rich.console import Console

from . import pipeline
from .config import Config
from .errors import UsageError
from .output import ROW_FORMATS, StagedDir, json_bytes, rows_bytes


def output_dir(template: str, as_of: dt.date, today: dt.date | None = None) -> Path:
    """Fill the {as_of} and {date} placeholders of -o."""
    today = today or dt.date.today()
    try:
        return Path(template.format(as_of=as_of.isoformat(), date=today.isoformat()))
    except (KeyError, IndexError, ValueError):
        msg = f"-o {template}: only the placeholders {{as_of}} and {{date}} are known; remove the others"
        raise UsageError(msg) from None


def segment_command(
    input_path: str,
    cfg: Config,
    *,
    to_stdout: bool = False,
    fmt: str = "csv",
    previous: str | None = None,
    summary_json: str | None = None,
    backtest_days: int | None = None,
    quiet: bool = False,
    progress=None,
    console: Console | None = None,
    stdin=None,
    stdout=None,
) -> pipeline.Segmentation:
    stdout = stdout if stdout is not None else sys.stdout.buffer
    if fmt not in ROW_FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(ROW_FORMATS)}")
    if to_stdout and summary_json == "-":
        raise UsageError("--summary-json - and -o - both want stdout; write the summary to a file instead")
    if backtest_days is not None and backtest_days < 1:
        raise UsageError(f"--backtest {backtest_days}: give the holdout length in days, 1 or more")
    result = pipeline.run(input_path, cfg, progress=progress, stdin=stdin, backtest_days=backtest_days)
    out = None if to_stdout else output_dir(cfg.output_dir, result.table.windows.as_of)
    if previous:
        from .migration import add_migration, find_previous

        prev_path = find_previous(previous, cfg.output_dir, result.table.windows.as_of, out)
        if progress:
            progress("migration")
        add_migration(result, prev_path)
    doc = pipeline.summary(result)
    doc_bytes = json_bytes(doc)
    assignments = result.assignments
    if to_stdout:
        if fmt == "table":
            from .terminal import make_console

            _print_table(assignments, make_console(stderr=False))
        else:
            stdout.write(rows_bytes(assignments, fmt))
            stdout.flush()
    else:
        staged = StagedDir(out)
        staged.write_bytes("assignments.csv", rows_bytes(assignments, "csv"))
        staged.write_bytes("summary.json", doc_bytes)
        if result.migration is not None and result.migration.movers is not None:
            staged.write_bytes("movers.csv", rows_bytes(result.migration.movers, "csv"))
        else:
            staged.remove_on_commit("movers.csv")
        if result.cleaned.rejected.height:
            staged.write_bytes("rejected_rows.csv", rows_bytes(result.cleaned.rejected, "csv"))
        else:
            staged.remove_on_commit("rejected_rows.csv")
        if cfg.reports:
            if progress:
                progress("reports")
            from .report import write_reports

            write_reports(result, doc, staged)
        for name in ("report.xlsx", "report.html"):
            if name.split(".")[1] not in cfg.reports:
                staged.remove_on_commit(name)
        staged.commit()
    if summary_json:
        if summary_json == "-":
            stdout.write(doc_bytes)
            stdout.flush()
        else:
            target = Path(summary_json)
            staged = StagedDir(target.parent)
            staged.write_bytes(target.name, doc_bytes)
            staged.commit()
    if progress is not None and hasattr(progress, "stop"):
        progress.stop()
    if not quiet:
        from .terminal import make_console, print_summary

        print_summary(doc, result, console or make_console(), out)
    return result


TABLE_COLUMNS = ("customer_id", "customer_name", "tier", "annual_spend", "yoy_growth", "rfm_score",
                 "rfm_segment", "cluster", "lifecycle", "churn_risk", "tier_change")


def _print_table(df: pl.DataFrame, console: Console) -> None:
    """``--format table``: the columns a person scans first (csv/json carry them all).

    Amounts get thousands separators; cells never wrap (off a terminal the console is as wide as
    the table, or ``COLUMNS`` when set, where long cells end in an ellipsis).
    """
    from rich.table import Table

    df = df.select([c for c in TABLE_COLUMNS if c in df.columns]).with_columns(
        pl.col("annual_spend").map_elements(lambda x: f"{x:,.2f}", return_dtype=pl.String),
        ((pl.col("yoy_growth") * 100).round(1).cast(pl.String) + "%"),
    )
    table = Table(show_lines=False)
    right = {"annual_spend", "yoy_growth", "cluster"}
    for c in df.columns:
        table.add_column(c, no_wrap=True, overflow="ellipsis", justify="right" if c in right else "left")
    for row in df.iter_rows():
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def backtest_command(input_path: str, cfg: Config, holdout_days: int, *, json_out: str | None = None,
                     quiet: bool = False, console: Console | None = None, stdout=None) -> dict:
    """Fit the CLV model on the history before as_of - N days and score it on the N days after."""
    from .backtest import backtest
    from .clean import clean
    from .features import make_windows
    from .io.read import read_input

    if holdout_days < 1:
        raise UsageError(f"--holdout-days {holdout_days}: give a whole number of days, 1 or more")
    raw = read_input(input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns)
    lines = clean(raw, cfg).lines
    as_of = make_windows(cfg, lines["order_date"].max()).as_of
    doc = {"input": raw.source, **backtest(lines, as_of, holdout_days, cfg.effective)}
    data = json_bytes(doc)
    if json_out == "-":
        stdout = stdout if stdout is not None else sys.stdout.buffer
        stdout.write(data)
        stdout.flush()
    elif json_out:
        target = Path(json_out)
        staged = StagedDir(target.parent)
        staged.write_bytes(target.name, data)
        staged.commit()
    if not quiet:
        from .terminal import make_console, print_backtest

        print_backtest(doc, console or make_console())
    return doc


def inspect_command(input_path: str, cfg: Config, console: Console) -> None:
    from .clean import clean
    from .io.read import read_input
    from .terminal import print_inspect

    raw = read_input(input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns)
    cleaned = clean(raw, cfg, enforce=False)
    print_inspect(raw, cleaned, cfg, console)


def config_show_text(cfg: Config) -> str:
    """The effective config as TOML, each value followed by where it came from."""
    lines = ["# effective segkit configuration; '# from' says where each value came from", ""]
    data = cfg.effective
    src = cfg.sources

    def fmt(v) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {fmt(x)}" for k, x in v.items()) + " }"
        if isinstance(v, float) and v.is_integer():
            return f"{v:.1f}"
        return str(v)

    for section, values in data.items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {fmt(value)}  # from {src.get(f'{section}.{key}', 'default')}")
            lines.append("")
    for section in ("tiers", "segments", "personas", "actions"):
        origin = src.get(section, "default")
        for item in data.get(section, []):
            lines.append(f"[[{section}]]  # from {origin}")
            for key, value in item.items():
                lines.append(f"{key} = {fmt(value)}")
            lines.append("")
    text = "\n".join(lines)
    tomllib.loads(text)  # what we print must itself be a valid config
    return text
