"""segkit command line: parses options, calls the library, maps exceptions to exit codes.

Data goes to stdout only with ``-o -``; everything else (logs, progress, the summary, errors)
goes to stderr. Errors are one or two lines; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional, TYPE_CHECKING

import typer
from rich.console import Console

from segkit import __version__
from segkit.cli.flags import FLAGS, OVERRIDE_KEYS, flag
from segkit.errors import ConfigError, IOFailure, SegkitError, UsageError, render
from segkit.cli.flags import FLAGS, OVERRIDE_KEYS, flag
from collections.abc import Iterator

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from segkit.config import Config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Customer segmentation for wholesale distributors: tiers, RFM, clusters, reports.",
)
config_app = typer.Typer(no_args_is_help=True, help="Show the effective configuration or write a starter file.")
app.add_typer(config_app, name="config")


def err_console() -> Console:
    from segkit.cli.terminal import make_console

    return make_console(stderr=True)


# ------------------------------------------------------------------------- shared options

InputArg = Annotated[str, typer.Argument(help="Orders export: .csv .tsv .txt .xlsx .xlsm .xls .parquet, or - for CSV on stdin.", show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file (default: $SEGKIT_CONFIG, then built-in defaults).")]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", "-m", help="Name a column: role=header, e.g. customer_id=客户编码. Repeatable.")]
SheetOpt = Annotated[Optional[str], typer.Option("--sheet", help="Excel sheet name or 0-based index (default: first sheet with the required columns).")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="CSV encoding (default: UTF-8, then GB18030).")]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="Reference date YYYY-MM-DD (default: day after the latest transaction).")]
YearOpt = Annotated[Optional[int], typer.Option("--year", help="Use calendar year YYYY as the tier window instead of the last 365 days.")]
MaxBadOpt = Annotated[Optional[float], typer.Option("--max-bad-rows", help="Share of rows that may be rejected before failing (default 0.05).")]
UnitOpt = Annotated[Optional[float], typer.Option("--amount-unit", help="Multiply amounts by this (10000 for exports in 万元).")]
DecimalOpt = Annotated[Optional[str], typer.Option("--decimal", help="Decimal mark of the amounts: . (1,234.50), , (1.234,50) or auto (detected per file).")]
DateFmtOpt = Annotated[Optional[str], typer.Option("--date-format", help="strftime format of the date column when automatic parsing does not fit, e.g. %d/%m/%Y.")]
UnpackOpt = Annotated[Optional[int], typer.Option("--max-unpacked-mb", help="Refuse inputs that unpack to more than this many MB (default 2048; guards against decompression bombs).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]


def _parse_map(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        role, sep, header = item.partition("=")
        if not sep or not role.strip() or not header.strip():
            raise UsageError(f"--map {item}: write role=header, e.g. --map customer_id=客户编码")
        out[role.strip()] = header.strip()
    return out


def _overrides(**values: Any) -> dict[str, Any]:
    keys = OVERRIDE_KEYS
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        if name == "columns":
            for role, header in value.items():
                out[f"columns.{role}"] = header
            continue
        out[keys[name]] = value
    return out


def _load_config(path: Path | None, **values: Any) -> Config:
    from segkit import config

    cols = _parse_map(values.pop("columns", None))
    if values.get("k") is not None:
        k = values["k"]
        if k != "auto":
            if not k.isdigit():
                raise UsageError(f"--k {k}: give auto or a whole number of clusters (2 or more)")
            values["k"] = int(k)
    choices = {"tiers": config.CHOICES["tiering.scheme"], "input_kind": config.CHOICES["input.kind"],
               "engine": config.CHOICES["input.engine"], "decimal": config.CHOICES["input.decimal"],
               "clv_model": config.CHOICES["clv.model"]}
    for name, allowed in choices.items():
        if values.get(name) is not None and values[name] not in allowed:
            option_flag = "--" + name.replace("_", "-")
            raise UsageError(f"{option_flag} {values[name]}: choose one of {', '.join(allowed)}")
    if values.get("as_of"):
        try:
            dt.date.fromisoformat(values["as_of"])
        except ValueError:
            raise UsageError(f"--as-of {values['as_of']}: write the date as YYYY-MM-DD") from None
    overrides = _overrides(columns=cols, **values)
    try:
        return config.load(path, overrides)
    except ConfigError as exc:
        key = exc.key
        if key in overrides:  # a bad command-line value is a usage error (exit 2), not a config error
            detail = str(exc).removeprefix("command line: ").removeprefix("config: ")
            value = overrides[key]
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            given = f"--map {key.removeprefix('columns.')}={shown}" if key.startswith("columns.") else f"{FLAGS.get(key, key)} {shown}"
            raise UsageError(f"{given}: {detail}") from None
        raise


MAX_MESSAGE = 4000  # characters of one error message on stderr


def _eprint(text: str) -> None:
    """One message on stderr, control characters from the input made visible; silent when stderr is gone."""
    from segkit.outputs.safetext import plain

    if len(text) > MAX_MESSAGE:  # a message quoting a huge value in full: its start and end
        text = f"{text[:MAX_MESSAGE - 500]} … ({len(text) - MAX_MESSAGE:,} characters left out) … {text[-500:]}"
    try:
        print(plain(text, keep_newlines=True), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


@contextmanager
def handle_errors(debug: bool) -> Iterator[None]:
    """Turn library exceptions into one message on stderr and the exit code of SPEC §7."""
    from segkit.outputs.staging import Terminated

    try:
        yield
    except typer.Exit:
        raise
    except SegkitError as exc:
        if debug:
            traceback.print_exc()
        _eprint(f"segkit: error: {exc.render(flag)}{render(getattr(exc, 'cli_hint', ''), flag)}")
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        _eprint("segkit: interrupted; no output was replaced")
        raise typer.Exit(130) from None
    except Terminated as exc:
        _eprint("segkit: terminated; no output was replaced")
        raise typer.Exit(exc.exit_code) from None
    except MemoryError:
        _eprint("segkit: error: out of memory; convert the input to Parquet, use --engine spark, "
                "or run on a machine with more memory")
        raise typer.Exit(IOFailure.exit_code) from None
    except OSError as exc:  # stdout/stderr full or gone, a disk error while reading
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        _eprint(f"segkit: error: I/O error: {where}{exc.strerror or exc}; check the path, free space and the output stream")
        _detach_stdout()
        raise typer.Exit(IOFailure.exit_code) from None
    except Exception as exc:  # an internal error: say so, keep the traceback for --debug
        if debug:
            traceback.print_exc()
        else:
            _eprint(f"segkit: internal error: {type(exc).__name__}: {exc}\n"
                    "Run again with --debug to see the traceback, and report it.")
        raise typer.Exit(1) from None


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _quiet_broken_pipe() -> None:
    """The downstream command closed the pipe (e.g. `| head`): stop quietly."""
    _detach_stdout()
    raise typer.Exit(0)


CLOSED_STREAMS: set[str] = set()


def _reopen_closed_streams() -> None:
    """A stream closed by the caller (`2>&-`, `<&-`) becomes /dev/null; remember which, so that
    `-` as input or output can be refused with a message instead of failing later."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            CLOSED_STREAMS.add(name)
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))


def _check_streams(input: str, output: str | None) -> None:
    if input == "-" and "stdin" in CLOSED_STREAMS:
        raise UsageError("input is - but stdin is closed; pipe a file in (segkit segment - < orders.csv) or name the file")
    if output == "-" and "stdout" in CLOSED_STREAMS:
        raise IOFailure("stdout is closed, so the output has nowhere to go; redirect it to a file (or use -o DIR)")


class _Progress:
    """One line per step with its elapsed time, on a TTY only (never with --quiet or in a pipe)."""

    LABELS = {"session": "Starting Spark", "spark": "Reading and aggregating with Spark",
              "read": "Reading input", "clean": "Parsing and checking rows", "customers": "Computing customer metrics",
              "cluster": "Clustering customers", "validate": "Testing clusters", "clv": "Fitting the CLV model", "migration": "Comparing with previous run",
              "reports": "Writing reports", "guidance": "Checking coverage and tiers"}

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, step: str) -> None:
        if not self.enabled:
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self.progress is None:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                     console=err_console(), transient=False)
            self.progress.start()
        if self.task is not None:
            self.progress.update(self.task, completed=1, total=1)
        self.task = self.progress.add_task(self.LABELS.get(step, step), total=None)

    def stop(self) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.update(self.task, completed=1, total=1)
            self.progress.stop()
            self.progress = None


# ----------------------------------------------------------------------------- commands

@app.command()
def segment(
    input: InputArg,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output folder (default ./segkit-out; may hold {as_of} and {date}), or - for assignments on stdout.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Format of the assignments on stdout with -o -: csv, json, jsonl, parquet, table.")] = "csv",
    config_path: ConfigOpt = None,
    as_of: AsOfOpt = None,
    year: YearOpt = None,
    mapping: MapOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    max_bad_rows: MaxBadOpt = None,
    amount_unit: UnitOpt = None,
    date_format: DateFmtOpt = None,
    decimal: DecimalOpt = None,
    max_unpacked_mb: UnpackOpt = None,
    k: Annotated[Optional[str], typer.Option("--k", help="Number of clusters (value bands), or auto (best silhouette for k in 2..8). Whether they are distinct groups is decided by a null-reference test, not by k.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random state for k-means and the silhouette sample (default 42).")] = None,
    previous: Annotated[Optional[str], typer.Option("--previous", help="Earlier assignments.csv or output folder for tier migration; auto = latest earlier run beside -o.")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.xlsx and report.html.")] = False,
    report: Annotated[Optional[str], typer.Option("--report", help="Reports to write: xlsx,html (default both).")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Report language: en or zh.")] = None,
    tiers: Annotated[Optional[str], typer.Option("--tiers", help="Tier scheme: config (the [[tiers]] table), quantile (from spend shares), or the preset retail (A >= 100k / B 50-100k / C).")] = None,
    input_kind: Annotated[Optional[str], typer.Option("--input-kind", help="orders (one row per order line), customers (one row per customer), or auto.")] = None,
    currency: Annotated[Optional[str], typer.Option("--currency", help="Currency of the amounts, e.g. GBP or CNY (default: detected).")] = None,
    summary_json: Annotated[Optional[str], typer.Option("--summary-json", help="Also write summary.json to this path, or - for stderr-free stdout.")] = None,
    backtest: Annotated[Optional[int], typer.Option("--backtest", help="Also backtest the CLV model on the last N days (summary.json clv.backtest and a report chart).")] = None,
    clv_model: Annotated[Optional[str], typer.Option("--clv-model", help="CLV counting model: bgnbd (default), pareto_nbd, mbg_nbd, or auto (best on a holdout; BG/NBD unless another is clearly better).")] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help="polars (default, embedded) or spark (pip install 'segkit[spark]'; reads CSV/Parquet paths, globs, folders, URIs).")] = None,
    spark_master: Annotated[Optional[str], typer.Option("--spark-master", help="Spark master for --engine spark, e.g. local[4] or spark://host:7077 (default: the spark-submit session, else $SPARK_REMOTE, else local[*]).")] = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Segment customers: tiers, RFM, clusters, and a test of whether the clusters are distinct groups or value bands of one continuum; writes assignments, summary and reports."""
    from segkit.cli.commands import segment_command

    with handle_errors(debug):
        _check_streams(input, output)
        reports = None
        if report is not None:
            reports = [r.strip() for r in report.split(",") if r.strip()]
        cfg = _load_config(config_path, as_of=as_of, year=year, columns=mapping, sheet=sheet,
                           encoding=encoding, max_bad_rows=max_bad_rows, amount_unit=amount_unit,
                           date_format=date_format, max_unpacked_mb=max_unpacked_mb, decimal=decimal,
                           k=k, seed=seed, lang=lang, reports=reports,
                           output=output if output not in (None, "-") else None, tiers=tiers,
                           input_kind=input_kind, currency=currency,
                           engine=engine, spark_master=spark_master, clv_model=clv_model)
        if no_report:
            cfg = _replace(cfg, reports=())
        progress = _Progress(enabled=not quiet and sys.stderr.isatty())
        try:
            segment_command(input, cfg, to_stdout=output == "-", fmt=fmt, previous=previous,
                            summary_json=summary_json, backtest_days=backtest, quiet=quiet, progress=progress,
                            console=err_console())
        finally:
            progress.stop()


def _replace(cfg: Config, **changes: Any) -> Config:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


@app.command()
def inspect(
    input: InputArg,
    config_path: ConfigOpt = None,
    mapping: MapOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    amount_unit: UnitOpt = None,
    date_format: DateFmtOpt = None,
    decimal: DecimalOpt = None,
    max_unpacked_mb: UnpackOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show the column mapping, row counts, date range, rejected-row reasons and amounts; writes nothing."""
    from segkit.cli.commands import inspect_command

    with handle_errors(debug):
        _check_streams(input, "-")  # the inspection is printed on stdout
        cfg = _load_config(config_path, columns=mapping, sheet=sheet, encoding=encoding,
                           amount_unit=amount_unit, date_format=date_format, max_unpacked_mb=max_unpacked_mb,
                           decimal=decimal)
        from segkit.cli.terminal import make_console

        inspect_command(input, cfg, make_console(stderr=False))


@app.command("backtest")
def backtest_cmd(
    input: InputArg,
    holdout_days: Annotated[int, typer.Option("--holdout-days", help="Length of the holdout: the model is fitted on the history before as_of minus N days.")],
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the backtest as JSON to this file, or - for stdout.")] = None,
    config_path: ConfigOpt = None,
    as_of: AsOfOpt = None,
    mapping: MapOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    max_bad_rows: MaxBadOpt = None,
    amount_unit: UnitOpt = None,
    date_format: DateFmtOpt = None,
    decimal: DecimalOpt = None,
    clv_model: Annotated[Optional[str], typer.Option("--clv-model", help="CLV counting model to check: bgnbd (default), pareto_nbd, mbg_nbd, or auto (chosen on the history before the holdout).")] = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check the CLV model: predict purchases in the last N days from the history before, compare with what happened."""
    from segkit.cli.commands import backtest_command

    with handle_errors(debug):
        _check_streams(input, json_out)
        cfg = _load_config(config_path, as_of=as_of, columns=mapping, sheet=sheet, encoding=encoding,
                           max_bad_rows=max_bad_rows, amount_unit=amount_unit, date_format=date_format,
                           decimal=decimal, clv_model=clv_model)
        backtest_command(input, cfg, holdout_days, json_out=json_out, quiet=quiet, console=err_console())


@config_app.command("show")
def config_show(config_path: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Print the effective configuration as TOML, with where each value came from."""
    from segkit.cli.commands import config_show_text

    with handle_errors(debug):
        from segkit import config

        cfg = config.load(config_path)
        sys.stdout.write(config_show_text(cfg))


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write the commented starter config.")] = Path("segkit.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write a commented starter config (every option with its default).

    An existing file is never overwritten without ``--force``: that is an output segkit cannot
    create, exit 73 (SPEC §7), with the hint; the config itself is not bad, so not 78."""
    from segkit import config
    from segkit.errors import OutputError

    with handle_errors(debug):
        if path.exists() and not force:
            raise OutputError(f"{path} already exists and was left as it is; pass --force to overwrite it, "
                              "or give another path")
        try:
            path.write_text(config.DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from None
        print(f"wrote {path}", file=sys.stderr)


@app.command()
def sample(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .csv, .tsv, .xlsx or .parquet.")],
    rows: Annotated[int, typer.Option("--rows", help="Order lines.")] = 5000,
    customers: Annotated[Optional[int], typer.Option("--customers", help="Customers (default rows / 100, at least 10).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    lang: Annotated[str, typer.Option("--lang", help="Header and value language: en or zh.")] = "en",
    encoding: Annotated[str, typer.Option("--encoding", help="CSV encoding, e.g. utf-8 or gb18030.")] = "utf-8",
    messy: Annotated[bool, typer.Option("--messy", help="Imitate an ERP export: title rows, ￥1,234.50 amounts, mixed date styles, a totals row.")] = False,
    cost: Annotated[bool, typer.Option("--cost/--no-cost", help="Add the cost of each line (gross profit in the reports; the spark engine does not read it).")] = True,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Generate realistic synthetic wholesale order lines for demos and benchmarks."""
    from segkit import sample as sample_mod

    with handle_errors(debug):
        n_customers = customers if customers is not None else max(10, rows // 100)
        df = sample_mod.generate(rows, min(n_customers, rows), seed=seed, lang=lang, cost=cost)
        try:
            sample_mod.write(df, output, encoding=encoding, messy=messy)
        except OSError as exc:
            from segkit.errors import OutputError

            raise OutputError(f"cannot write {output}: {exc.strerror}; choose another -o") from None
        if not quiet:
            print(f"wrote {output}: {df.height:,} order lines, {n_customers:,} customers", file=sys.stderr)


def version_callback(value: bool) -> None:
    if value:
        print(f"segkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")] = False,
) -> None:
    """segkit: who your strategic, key, growth, regular and scattered customers are, and why."""


def _escape_unencodable() -> None:
    """Text the output encoding cannot hold (Chinese names under PYTHONIOENCODING=cp1252, a
    Windows console) is written as \\uXXXX escapes instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                continue


def main() -> None:
    _reopen_closed_streams()
    _escape_unencodable()
    from segkit.outputs.staging import install_signal_cleanup

    install_signal_cleanup()
    app(prog_name="segkit")
