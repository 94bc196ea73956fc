"""What each command does once its options are parsed: run the pipeline, write the outputs.

Kept apart from ``cli.app`` so the commands can be called (and tested) without Typer.
"""

from __future__ import annotations

from io import BufferedIOBase
from typing import Any, BinaryIO, Protocol

import dataclasses
import datetime as dt
import os
import string
import sys
import tomllib
from pathlib import Path

import polars as pl
from rich.console import Console

from segkit import pipeline
from segkit.result import Segmentation
from segkit.config import Config
from segkit.errors import IOFailure, UsageError
from segkit.customers.migration import add_migration, find_previous, movers_of
from segkit.outputs.staging import ROW_FORMATS, StagedDir, json_bytes, rows_bytes, write_file
from segkit.outputs.safetext import plain


class Progress(Protocol):
    """Shows each pipeline step as it starts; ``stop`` ends the display once the outputs are written."""

    def __call__(self, step: str) -> None: ...

    def stop(self) -> None: ...


TEMPLATE_FIELDS = ("as_of", "date")
SET_FILES = ("assignments.csv", "movers.csv", "outlook.csv", "rejected_rows.csv", "report.xlsx", "report.html", "summary.json")


def output_dir(template: str, as_of: dt.date | None, today: dt.date | None = None) -> Path:
    """Fill the {as_of} and {date} placeholders of -o (``undated`` for an input without dates);
    any other field or format spec is refused."""
    today = today or dt.date.today()
    known = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        raise UsageError(f"-o {plain(template)}: unbalanced braces; the placeholders are {known}") from None
    for _, name, spec, conversion in fields:
        if name is not None and (name not in TEMPLATE_FIELDS or spec or conversion):
            msg = f"-o {plain(template)}: only the placeholders {known} are allowed (no other fields, no format specs)"
            raise UsageError(msg)
    return Path(template.format(as_of=as_of.isoformat() if as_of else "undated", date=today.isoformat()))


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_collisions(input_path: str, out: Path | None, summary_json: str | None, previous: Path | None) -> None:
    """Refuse (exit 2) an output that would overwrite the input, --previous or another output."""
    given = [("the input", Path(input_path))] if input_path != "-" else []
    if previous is not None:
        given.append(("--previous", previous))
    outputs = [(f"-o {out}", out / name) for name in SET_FILES] if out is not None else []
    if summary_json and summary_json != "-":
        target = Path(summary_json)
        for what, path in outputs:
            if _same_file(target, path):
                raise UsageError(f"--summary-json {plain(summary_json)} is {path.name} of {what}; give another path")
        outputs.append(("--summary-json", target))
    for flag, path in outputs:
        for what, src in given:
            if _same_file(path, src):
                msg = f"{flag} would overwrite {what} ({plain(src)}); write the outputs somewhere else"
                raise UsageError(msg)


def _explicit_previous(previous: str | None) -> Path | None:
    if not previous or previous == "auto":
        return None
    p = Path(previous)
    return p / "assignments.csv" if p.is_dir() else p


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
    progress: Progress | None = None,
    console: Console | None = None,
    stdin: BufferedIOBase | None = None,
    stdout: BinaryIO | None = None,
) -> Segmentation:
    """Run the pipeline on one input and write its outputs (the set, or assignments on stdout)."""
    stdout = stdout if stdout is not None else sys.stdout.buffer
    _check_options(fmt, to_stdout, summary_json, backtest_days)
    early_out = None if to_stdout else output_dir(cfg.output_dir, dt.date.today())  # a bad template fails now
    fixed = early_out is not None and "{as_of}" not in cfg.output_dir
    check_collisions(input_path, early_out if fixed else None, summary_json, _explicit_previous(previous))
    result = pipeline.run(input_path, cfg, progress=progress, stdin=stdin, backtest_days=backtest_days)
    windows = result.table.windows
    out = None if to_stdout else output_dir(cfg.output_dir, windows.as_of if windows else None)
    result = _compare_with_previous(result, input_path, previous, out, summary_json, progress)
    if out is None:
        _write_stdout(result.assignments, fmt, stdout)
        summary = json_bytes({**result.document, "outputs": {}})
        if summary_json and summary_json != "-":
            write_file(Path(summary_json), summary)
    else:
        summary = _write_set(result, out, summary_json, progress)
    if summary_json == "-":
        stdout.write(summary)
        stdout.flush()
    if progress is not None:
        progress.stop()
    if not quiet:
        from segkit.cli.terminal import make_console, print_summary

        print_summary(result, console or make_console(), out)
    return result


def _check_options(fmt: str, to_stdout: bool, summary_json: str | None, backtest_days: int | None) -> None:
    if fmt not in ROW_FORMATS:
        raise UsageError(f"--format {plain(fmt)}: choose one of {', '.join(ROW_FORMATS)}")
    if to_stdout and summary_json == "-":
        raise UsageError("--summary-json - and -o - both want stdout; write the summary to a file instead")
    if backtest_days is not None:
        from segkit.models.backtest import check_holdout

        check_holdout(backtest_days, "backtest")


NO_EARLIER_RUN = "--previous auto: no earlier run found; tier migration starts with the next run"


def _compare_with_previous(result: Segmentation, input_path: str, previous: str | None, out: Path | None,
                           summary_json: str | None, progress: Progress | None) -> Segmentation:
    """Find the earlier run (``--previous``), check no output overwrites an input; the result with
    the migration added (a new result: the one ``pipeline.run`` returned is left as it was)."""
    cfg, windows = result.config, result.table.windows
    as_of = windows.as_of if windows else None
    prev_path = find_previous(previous, cfg.output_dir, as_of, out) if previous else None
    check_collisions(input_path, out, summary_json, prev_path if previous != "auto" else None)
    if not previous:
        return result
    if progress:
        progress("migration")
    if prev_path is None:
        return dataclasses.replace(result, notes=(*result.notes, NO_EARLIER_RUN))
    return add_migration(result, prev_path)


def _write_stdout(assignments: pl.DataFrame, fmt: str, stdout: BinaryIO) -> None:
    if fmt == "table":
        from segkit.cli.terminal import make_console

        _print_table(assignments, make_console(stderr=False))
    else:
        try:
            stdout.write(_for_terminal(rows_bytes(assignments, fmt), fmt) if _isatty(stdout) else
                         rows_bytes(assignments, fmt))
            stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise IOFailure(f"cannot write the assignments to stdout: {exc.strerror}") from None


def _isatty(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def _for_terminal(data: bytes, fmt: str) -> bytes:
    """Rows shown on a terminal: control characters from the input (ESC sequences in an id)
    written as \\x1b and the like, as everywhere on the terminal; Parquet is refused (exit 2).
    Redirected to a file or a pipe, the rows are written unchanged."""
    if fmt == "parquet":
        raise UsageError("--format parquet writes binary data; redirect stdout to a file (> assignments.parquet)")
    return plain(data.decode("utf-8"), keep_newlines=True).encode("utf-8")


def _write_set(result: Segmentation, out: Path, summary_json: str | None, progress: Progress | None) -> bytes:
    """Stage every output, then summary.json (the result's summary with each output's sha256),
    then rename them all; return summary.json's bytes."""
    cfg = result.config
    with StagedDir(out) as staged:
        staged.write_bytes("assignments.csv", rows_bytes(result.assignments, "csv"))
        movers = movers_of(result)
        if movers is not None:
            staged.write_bytes("movers.csv", rows_bytes(movers, "csv"))
        else:
            staged.remove_on_commit("movers.csv")
        if result.clv is not None:
            from segkit.models.outlook import outlook

            staged.write_bytes("outlook.csv", rows_bytes(outlook(result.assignments, result.tiers), "csv"))
        else:
            staged.remove_on_commit("outlook.csv")
        if result.cleaned.rejected.height:
            staged.write_bytes("rejected_rows.csv", rows_bytes(result.cleaned.rejected, "csv"))
        else:
            staged.remove_on_commit("rejected_rows.csv")
        if cfg.reports:
            if progress:
                progress("reports")
            from segkit.outputs.report import write_reports

            write_reports(result, staged)
        for name in ("report.xlsx", "report.html"):
            if name.split(".")[1] not in cfg.reports:
                staged.remove_on_commit(name)
        data = json_bytes({**result.document, "outputs": staged.hashes()})
        staged.write_bytes("summary.json", data)
        if summary_json and summary_json != "-":
            staged.write_elsewhere(Path(summary_json), data)
        staged.commit()
    return data


TABLE_COLUMNS = ("customer_id", "customer_name", "tier", "annual_spend", "yoy_growth", "rfm_score",
                 "rfm_segment", "cluster", "lifecycle", "churn_risk", "tier_change")
TABLE_DROP_ORDER = ("tier_change", "lifecycle", "cluster", "rfm_score", "yoy_growth", "churn_risk", "rfm_segment", "tier")
TABLE_NAME_FLOOR = 10  # a name is shortened to no fewer cells before a column is left out
TABLE_RIGHT = {"annual_spend", "yoy_growth", "cluster"}


def _table_cells(df: pl.DataFrame) -> pl.DataFrame:
    """The --format table columns as display strings: money with thousands separators, growth in %."""
    df = df.select([c for c in TABLE_COLUMNS if c in df.columns])
    return df.with_columns(
        pl.col("annual_spend").map_elements(lambda x: f"{x:,.2f}", return_dtype=pl.String),
        ((pl.col("yoy_growth") * 100).round(1).cast(pl.String) + "%"),
    ).with_columns(pl.all().cast(pl.String))


def _table_layout(cells: pl.DataFrame, width: int) -> tuple[list[str], dict[str, int]]:
    """Which columns fit in ``width`` cells and the name's width: ids, money and the other codes
    are never cut; the name is shortened first (to TABLE_NAME_FLOOR), then the least needed columns
    are left out (TABLE_DROP_ORDER)."""
    from rich.cells import cell_len

    natural = {c: max([cell_len(c), *(cell_len(v) for v in cells[c].drop_nulls())]) for c in cells.columns}
    cols = list(cells.columns)
    drop = [c for c in TABLE_DROP_ORDER if c in cols]

    def need(columns: list[str], name_width: int) -> int:
        return sum(name_width if c == "customer_name" else natural[c] for c in columns) + 3 * len(columns) + 1

    while True:
        name = natural.get("customer_name", 0)
        if "customer_name" in cols and need(cols, name) > width:
            name = max(min(name, TABLE_NAME_FLOOR), name - (need(cols, name) - width))
        if need(cols, name) <= width or not drop:
            return cols, {**natural, "customer_name": name}
        cols.remove(drop.pop(0))


def _print_table(df: pl.DataFrame, console: Console) -> None:
    """``--format table``: the columns a person scans first (csv/json carry them all).

    Cells never wrap. Ids and amounts are always whole: at a narrow width (``COLUMNS`` or the
    terminal's) the customer name is shortened first, with an ellipsis, then the least needed
    columns are left out, and stderr says which.
    """
    from rich.table import Table
    from rich.text import Text

    cells = _table_cells(df)
    cols, widths = _table_layout(cells, console.width)
    table = Table(show_lines=False)
    for c in cols:
        exact = widths[c]
        table.add_column(c, no_wrap=True, overflow="ellipsis", justify="right" if c in TABLE_RIGHT else "left",
                         min_width=exact, max_width=exact)
    for row in cells.select(cols).iter_rows():  # Text cells: input values are shown, never read as markup
        table.add_row(*[Text(plain(v)) for v in row])
    console.print(table)
    left_out = [c for c in cells.columns if c not in cols]
    if left_out:
        from segkit.cli.terminal import make_console

        make_console().print(f"--format table: {', '.join(left_out)} left out at {console.width} columns; "
                             "-f csv or a wider terminal shows them", markup=False, soft_wrap=True)


def backtest_command(input_path: str, cfg: Config, holdout_days: int, *, json_out: str | None = None,
                     quiet: bool = False, console: Console | None = None, stdout: BinaryIO | None = None) -> dict[str, Any]:
    """Fit the CLV model on the history before as_of - N days and score it on the N days after."""
    from segkit.models.backtest import backtest
    from segkit.ingest.clean import clean
    from segkit.customers.windows import latest_date, make_windows
    from segkit.ingest.read import read_input

    from segkit.models.backtest import check_holdout
    from segkit.ingest.sources import limits_for

    check_holdout(holdout_days, "holdout_days")

    check_collisions(input_path, None, json_out, None)
    raw = read_input(input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns,
                     limits=limits_for(cfg))
    lines = clean(raw, cfg).lines
    as_of = make_windows(cfg, latest_date(lines, cfg, raw.source)).as_of
    doc = {"input": raw.source, **backtest(lines, as_of, holdout_days, cfg.clv, cfg.tiers)}
    data = json_bytes(doc)
    if json_out == "-":
        stdout = stdout if stdout is not None else sys.stdout.buffer
        stdout.write(data)
        stdout.flush()
    elif json_out:
        write_file(Path(json_out), data)
    if not quiet:
        from segkit.cli.terminal import make_console, print_backtest

        print_backtest(doc, console or make_console(), cfg.lang)
    return doc


def inspect_command(input_path: str, cfg: Config, console: Console) -> None:
    from segkit.ingest.clean import clean
    from segkit.ingest.read import read_input
    from segkit.ingest.sources import limits_for
    from segkit.cli.terminal import print_inspect

    raw = read_input(input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns,
                     limits=limits_for(cfg))
    cleaned = clean(raw, cfg, enforce=False)
    print_inspect(raw, cleaned, cfg, console)


def config_show_text(cfg: Config) -> str:
    """The effective config as TOML, each value followed by where it came from."""
    lines = ["# effective segkit configuration; '# from' says where each value came from", ""]
    data = cfg.effective
    src = cfg.sources

    def fmt(v: Any) -> str:
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
