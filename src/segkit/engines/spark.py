"""Spark engine: the customer table and the data-quality counts computed by Apache Spark.

Same contract as the polars engine (same parsing rules, same customer table to the micro-unit);
everything after it (scores, tiers, clusters, validation, reports) is shared. Spark reads CSV and
Parquet paths, globs, folders and any URI it can read (``s3a://``, ``hdfs://``, ``abfss://``).

Where it runs: an active SparkSession (inside ``spark-submit``), else Spark Connect when
``SPARK_REMOTE`` is set (``sc://host:15002``), else a local session on ``master`` (``local[*]``).

CSV is read as lines (``spark.read.text``) and split with ``from_csv``, so empty lines stay rows
(the polars engine counts them as blank rows) and each line keeps its number in its file. A quoted
field that spans lines is not joined (Spark reads CSV line by line to split big files); its
pieces are rejected rows, counted and explained. Files that are not UTF-8 (GB18030, or the
configured encoding) are read whole per file (at most 2 GB each).

The first pass is ``engines.spark_typed``'s: the rows are summed where they are read on their raw
key texts, with the amounts cast where they are plain numbers, and the rules run once per group;
only the rows it cannot vouch for are read again and classified one by one (all rows, when the
amounts have a decimal comma or the keys have too many odd texts). Jobs after it: the data-quality
counts, the first ``REJECTED_SAMPLE`` rejected rows with their row numbers (only when rows were
rejected), and the order lines, kept, reduced to what ``contract.Reduced`` holds: the lines per
date, the customer base table (two shuffles after the lines), and, when the run reads them, the
tier activity and each customer's net per day. No order line comes back to the driver.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from segkit.errors import ConfigError, DataError, InputNotFoundError, IOFailure, UsageError, option

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession as SparkSessionT
    from pyspark.sql.types import DataType

    from segkit.ingest.clean import Cleaned
    from segkit.config import Config
    from segkit.customers.dates import DateFacts
    from segkit.customers.windows import Windows
    from segkit.engines.contract import Quality, Reduced

REJECTED_SAMPLE = 10_000
CONNECT_PROBE_RETRIES = 4  # back-off 0.05 + 0.2 + 0.8 + 3.2 s before a server is called unreachable
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
CSV_EXT = {".csv", ".tsv", ".txt", ".tab"}
BASE_CONF = {
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "ERROR",
    "spark.sql.session.timeZone": "UTC",
}
# Each file split is its own partition, so a line's place in its partition is its place in the
# split: line numbers without an extra pass over the data.
# hugeMethodLimit: the JVM compiles no method above 8,000 bytes of bytecode (HotSpot's
# HugeMethodLimit) and interprets it instead; Spark's default limit (65,535) lets the generated code
# of the rules' projections grow past that and run interpreted, 5-7x slower (measured: parsing the
# keys of 737,697 summed lines, 63 s against 8.8 s). At 8,000 Spark splits such a stage instead.
RUN_CONF = {"spark.sql.files.openCostInBytes": str(1 << 40), "spark.sql.legacy.javaCharsets": "true",
            "spark.sql.codegen.hugeMethodLimit": "8000"}


class SparkUnavailable(UsageError):
    """PySpark (the optional extra) is not installed."""


class SparkInputError(UsageError):
    """An input the spark engine does not read (Excel workbooks, stdin)."""

    cli_hint = f"; or run with {option('input.engine')} polars"


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        msg = "the spark engine needs PySpark, which is not installed; install it with: pip install 'segkit[spark]'"
        raise SparkUnavailable(msg) from None


# ------------------------------------------------------------------------------------ session

def local_session(master: str, conf: dict[str, str] | None = None):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("segkit").master(master).config("spark.ui.enabled", "false")
    for key, value in {**BASE_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    with _jvm_output_captured() as log:
        try:
            return builder.getOrCreate()
        except Exception as exc:  # py4j / JVM start-up errors: the JVM's last line says why
            last = _last_line(log)
            raise RuntimeError(f"{exc}".strip().splitlines()[0] if str(exc).strip() else last or type(exc).__name__) from None


@contextmanager
def _jvm_output_captured() -> Iterator[Path]:
    """Point file descriptor 2 at a log file while the local JVM starts: the JVM inherits it, so
    its start-up notices and log4j lines (a dozen before any message of segkit's) never reach
    the terminal; segkit's own messages go to stderr as before once it is restored. The log is
    removed when the session stops (the JVM keeps it open until then)."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix="segkit-spark-", suffix=".log")
    saved = os.dup(2)
    try:
        sys.stderr.flush()
        os.dup2(fd, 2)
        yield Path(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
        try:
            os.unlink(name)
        except OSError:
            pass


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def get_session(master: str | None = None):
    """The active session (spark-submit, a notebook), Spark Connect, or a local session."""
    require_pyspark()
    import warnings

    with warnings.catch_warnings():  # PySpark's notice about the pandas version is not ours to show
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession
        return _session(SparkSession, master)


def _session(SparkSession: type[SparkSessionT], master: str | None) -> SparkSessionT:  # noqa: N803 (the class, passed in)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = os.environ.get("SPARK_REMOTE")
    try:
        if remote and not master:
            return _connect(SparkSession, remote)
        if "PYSPARK_GATEWAY_PORT" in os.environ and not master:  # launched by spark-submit
            return SparkSession.builder.appName("segkit").getOrCreate()
        return local_session(master or "local[*]")
    except IOFailure:
        raise
    except Exception as exc:  # py4j / grpc / JVM start-up errors have no common base class
        where = remote if remote and not master else (master or "local[*]")
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise IOFailure(f"cannot start a Spark session on {where}: {first}") from None


def _connect(SparkSession: type[SparkSessionT], remote: str) -> SparkSessionT:  # noqa: N803
    """A Spark Connect session, checked by one call that gives up after a few seconds: the
    client's own policy retries an unreachable server for more than ten minutes, in silence."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    import warnings

    session = SparkSession.builder.remote(remote).getOrCreate()  # no options: setting one is a call
    client = session.client
    policies = client.get_retry_policies()
    client.set_retry_policies([DefaultPolicy(max_retries=CONNECT_PROBE_RETRIES)])
    try:
        with warnings.catch_warnings():  # the client's notice that its retries ran out
            warnings.simplefilter("ignore", UserWarning)
            session.version  # noqa: B018 (a round trip to the server)
    except Exception as exc:  # grpc errors; closing the client spares the exit-time calls their retries
        client.close()
        first = _grpc_details(exc)
        raise IOFailure(f"cannot reach the Spark Connect server at {remote}: {first}; "
                        "check SPARK_REMOTE and that the server is running") from None
    client.set_retry_policies(policies)
    return session


def _grpc_details(exc: BaseException) -> str:
    """The first line of what gRPC says went wrong (the error may be wrapped by the retry loop)."""
    seen: BaseException | None = exc
    while seen is not None:
        details = getattr(seen, "details", None)
        if callable(details) and details():
            return str(details()).strip().splitlines()[0][:200]
        seen = seen.__cause__ or seen.__context__
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ----------------------------------------------------------------------------------- the input

@dataclass
class SparkInput:
    source: str
    format: str  # csv | parquet
    paths: list[str]  # what the Spark reader gets
    headers: list[str]
    mapping: dict[str, str]
    size: int | None = None
    sha256: str | None = None
    files: int = 1
    header_idx: int = 0  # 0-based line of the CSV header
    delimiter: str | None = None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def header_row(self) -> int:
        return self.header_idx + 1


def _local_files(path: str) -> list[Path]:
    from segkit.ingest.read import EXCEL_EXT

    p = Path(path)
    if any(ch in path for ch in "*?["):
        files = [Path(f) for f in sorted(glob.glob(path)) if Path(f).is_file()]
        if not files:
            raise InputNotFoundError(f"{path}: no file matches this pattern; check the path")
    elif p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(("_", ".")))
        if not files:
            raise InputNotFoundError(f"{path}: the folder holds no data files")
    elif p.exists():
        files = [p]
    else:
        raise InputNotFoundError(f"{path}: no such file; check the path (run `ls` in that folder)")
    for f in files:
        if f.suffix.lower() in EXCEL_EXT:
            raise SparkInputError(f"{f}: Excel workbooks are read by the polars engine only; "
                                  "save the sheet as CSV or Parquet to use the spark engine")
        _refuse_compressed(f.name, _magic_compression(f))
    return files


COMPRESSED_EXT = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd",
                  ".zip": "zip", ".lz4": "lz4", ".snappy": "snappy", ".deflate": "deflate", ".7z": "7z"}


def _magic_compression(p: Path) -> str | None:
    from segkit.ingest.sources import _compression

    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return _compression(head) or ("zip" if head.startswith(b"PK\x03\x04") else None)


UNPACK = {"gzip": "gunzip -k", "bzip2": "bunzip2 -k", "xz": "unxz -k", "zstd": "unzstd", "zip": "unzip"}
POLARS_READS = {"gzip", "bzip2", "xz", "zstd"}  # compressions the polars engine reads (ingest/sources.py)


def _refuse_compressed(name: str, found: str | None = None) -> None:
    """Compressed text inputs are refused by name (exit 2): Spark would split or number their lines
    differently from the file (bz2 splits) or not read them at all (xz, zstd, zip); unpacking them
    in the driver would undo what the engine is for (files larger than one machine's disk and
    memory, read in parallel). The message names the fix (docs/large-data.md)."""
    kind = found or COMPRESSED_EXT.get(Path(name.rstrip("/")).suffix.lower())
    if kind is not None:
        unpack = f" (`{UNPACK[kind]} {name}`)" if kind in UNPACK else ""
        polars = f", or read it with {option('input.engine')} polars, which unpacks every stream" if kind in POLARS_READS else ""
        raise SparkInputError(f"{name}: a {kind}-compressed file; the spark engine reads plain CSV and Parquet only: "
                              f"unpack it first{unpack} or convert it to Parquet{polars}")


def _format_of(names: list[str], source: str) -> str:
    from segkit.ingest.read import EXCEL_EXT

    exts = {Path(n.rstrip("/")).suffix.lower() for n in names}
    for n in names:
        _refuse_compressed(n)
    if exts & EXCEL_EXT:
        raise SparkInputError(f"{source}: Excel workbooks are read by the polars engine only; "
                              "save the sheet as CSV or Parquet to use the spark engine")
    if exts and exts <= {".parquet"}:
        return "parquet"
    if ".parquet" in exts:
        raise DataError(f"{source}: mixes Parquet and text files; give one kind at a time")
    return "csv"


def open_input(session: SparkSessionT, path: str, *, encoding: str = "", mapping: dict[str, str] | None = None) -> SparkInput:
    """Find the files, sniff the CSV layout, resolve the columns; reads no data rows."""
    from segkit.ingest.columns import resolve

    if path == "-":
        raise SparkInputError("the spark engine reads files and URIs, not stdin; give a path")
    mapping = mapping or {}
    local = not SCHEME.match(path) or path.startswith("file://")
    if local:
        files = _local_files(path[7:] if path.startswith("file://") else path)
        fmt = "parquet" if all(_is_parquet(f) for f in files) else _format_of([f.name for f in files], path)
        inp = SparkInput(path, fmt, [str(f.resolve()) for f in files], [], {}, files=len(files),
                         size=sum(f.stat().st_size for f in files))
        if any(f.stat().st_size == 0 for f in files):
            raise DataError(f"{next(f for f in files if f.stat().st_size == 0)}: the file is empty; export the orders again")
    else:
        names = _remote_files(session, path)  # also says clearly when nothing is there
        inp = SparkInput(path, _format_of(names, path), [path], [], {}, files=len(names))
    if inp.format == "parquet":
        inp.headers = list(_read_parquet(session, inp).columns)
        if local and len(files) == 1:
            from segkit.ingest.read import _sha256

            inp.sha256 = _sha256(files[0])
        inp.notes.append(f"read {path} as Parquet")
    else:
        _sniff_csv(session, inp, files if local else None, encoding)
    inp.mapping = resolve(inp.headers, mapping, path)
    return inp


def _is_parquet(p: Path) -> bool:
    with p.open("rb") as fh:
        return fh.read(4) == b"PAR1" or p.suffix.lower() == ".parquet"


def _remote_files(session: SparkSessionT, path: str) -> list[str]:
    try:
        return list(session.read.text(path).inputFiles())
    except Exception as exc:  # Hadoop file-system errors arrive as py4j / grpc errors
        raise InputNotFoundError(f"{path}: cannot list ({str(exc).splitlines()[0][:200]})") from None


def _sniff_csv(session: SparkSessionT, inp: SparkInput, files: list[Path] | None, encoding: str) -> None:
    from segkit.ingest.read import _check_text, _decode_strict, _scan_file, _sniff

    if files is not None:
        first = files[0]
        if len(files) == 1:
            inp.sha256, utf8, head = _scan_file(first)
        else:
            with first.open("rb") as fh:
                head = fh.read(262144)
            utf8 = _valid_utf8_prefix(head)
        _check_text(str(first), head)
        plain = encoding.lower().replace("-", "").replace("_", "") in ("", "utf8", "utf8sig")
        if utf8 and plain:
            inp.encoding = "utf-8"
        else:
            for f in files:  # strict decode, as the polars engine does: a bad byte is an error
                _, inp.encoding = _decode_strict(str(f), f.read_bytes(), encoding)
        text = head.decode("utf-8-sig" if inp.encoding == "utf-8" else inp.encoding, errors="ignore")
        ext = first.suffix.lower()
    else:
        text, inp.encoding = _remote_head(session, inp.paths[0], encoding)
        ext = Path(inp.paths[0]).suffix.lower()
    inp.delimiter, inp.header_idx = _sniff(text, ext)
    lines = text.splitlines()
    header_line = lines[inp.header_idx] if inp.header_idx < len(lines) else ""
    cells = next(csv.reader([header_line], delimiter=inp.delimiter), [])
    inp.headers = _header_names(cells)
    inp.notes.append(f"read {inp.source} as {inp.encoding}, delimiter {inp.delimiter!r}"
                     + (f", header on row {inp.header_idx + 1}" if inp.header_idx else ""))


def _valid_utf8_prefix(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the prefix
    return True


def _remote_head(session: SparkSessionT, path: str, encoding: str) -> tuple[str, str]:
    rows = session.read.text(path).limit(80).collect()
    text = "\n".join(r[0] for r in rows)
    if encoding:
        return _binary_head(session, path, encoding), encoding
    if "\ufffd" not in text:
        return text.lstrip("\ufeff"), "utf-8"
    return _binary_head(session, path, "gb18030"), "gb18030"


def _binary_head(session: SparkSessionT, path: str, encoding: str) -> str:
    from pyspark.sql import functions as F

    row = session.read.format("binaryFile").load(path).select(F.substring("content", 1, 262144)).first()
    return bytes(row[0]).decode(encoding, errors="replace") if row else ""


def _header_names(cells: list[str]) -> list[str]:
    """As polars names a CSV header: an empty cell is column_N, a repeated name gets _duplicated_K."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(cells):
        name = c.lstrip("\ufeff") if i == 0 else c
        name = name if name.strip() else f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_duplicated_{seen[name] - 1}"
        else:
            seen[name] = 0
        names.append(name)
    return names


# ------------------------------------------------------------------------------ reading rows

def _read_parquet(session: SparkSessionT, inp: SparkInput) -> SparkFrame:
    try:
        return session.read.parquet(*inp.paths)
    except Exception as exc:
        raise DataError(f"{inp.source}: not readable as Parquet ({str(exc).splitlines()[0][:200]})") from None


def _as_text(c: Column, dtype: DataType) -> object:
    """A typed Parquet column as the text the polars engine makes of it."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return F.date_format(c, "yyyy-MM-dd HH:mm:ss")
    if isinstance(dtype, (T.DoubleType, T.FloatType)):
        d = c.cast("double")
        whole = (d == F.floor(d)) & (F.abs(d) < 1e16)
        return F.when(whole, F.concat(F.floor(d).cast("long").cast("string"), F.lit(".0"))).otherwise(d.cast("string"))
    return c.cast("string")


def raw_rows(session: SparkSessionT, inp: SparkInput) -> SparkFrame:
    """One row per data row: file, block, idx (line within the block or Parquet row index), the
    line's place ``line`` when known (block 0), and the cells as text under their header names."""
    from pyspark.sql import functions as F

    if inp.format == "parquet":
        df = _read_parquet(session, inp)
        cells = [_as_text(F.col(f"`{f.name}`"), f.dataType).alias(f.name) for f in df.schema.fields]
        return df.select(F.col("_metadata.file_path").alias("file"), F.lit(0).cast("long").alias("block"),
                         F.col("_metadata.row_index").alias("idx"), *cells)
    if inp.encoding == "utf-8":
        lines = session.read.text(inp.paths).select(
            F.col("_metadata.file_path").alias("file"), F.col("_metadata.file_block_start").alias("block"),
            (F.monotonically_increasing_id() - F.spark_partition_id().cast("long") * (1 << 33)).alias("idx"),
            F.col("value"))
    else:
        whole = F.regexp_replace(F.decode(F.col("content"), inp.encoding), r"\r?\n\z", "")
        lines = (session.read.format("binaryFile").load(inp.paths)
                 .select(F.col("path").alias("file"), F.lit(0).cast("long").alias("block"),
                         F.posexplode(F.split(whole, r"\r?\n")).alias("idx", "value")))
    ddl = ", ".join(f"c{i} STRING" for i in range(len(inp.headers)))
    parsed = F.from_csv(F.col("value"), ddl, {"sep": inp.delimiter, "escape": '"', "mode": "PERMISSIVE"})
    keep = (F.col("block") > 0) | (F.col("idx") > inp.header_idx)
    return lines.where(keep).select(
        "file", "block", "idx",
        *[parsed[f"c{i}"].alias(h) for i, h in enumerate(inp.headers)])


def row_number_expr(inp: SparkInput):
    """The row a spreadsheet program shows, for rows of block 0 (the others get offsets later)."""
    from pyspark.sql import functions as F

    return F.col("idx") + (2 if inp.format == "parquet" else 1)


# ------------------------------------------------------------------------- rules on every row

def classify(df: SparkFrame, inp: SparkInput, cfg: Config) -> SparkFrame:
    """Adds _skip (blank | totals), _reason, _column, _value, and the typed _customer_id,
    _order_date, _amount (micro-units, long): the rules of ``ingest/rules.py``, as ``clean.clean``
    applies them (the reasons in ``rules.reasons_for`` order).

    Three projections (text, then parsed values, then reasons), each value computed once: one
    expression tree per row would repeat every parser and outgrow Spark's generated code."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R
    from segkit.ingest import rules

    m = inp.mapping
    checked = rules.checked_roles(m)  # no profit roles: _refuse_profit turned them away
    texts = df.select("*", _skip_expr(inp).alias("_skip"),
                      *[R.text(F.col(f"`{m[r]}`")).alias(f"_t_{r}") for r in checked])
    t = {r: F.col(f"_t_{r}") for r in checked}
    parsed = texts.select("*", R.parse_customer_id(t["customer_id"]).alias("_p_customer_id"),
                          R.date_parser(cfg.date_format)(t["order_date"]).alias("_p_order_date"),
                          *[R.parse_amount(t[r], cfg.decimal).alias(f"_p_{r}") for r in checked[2:]])
    p = {r: F.col(f"_p_{r}") for r in checked}
    amount = p["amount"] if "amount" in m else p["quantity"] * p["unit_price"]
    micro = parsed.select("*", R.to_micro(amount, cfg.amount_unit).alias("_micro"))
    overflow = F.abs(F.col("_micro")) >= rules.OVERFLOW_MICRO
    missing = {r: t[r].isNull() & p[r].isNull() for r in checked}
    unparsable = {r: t[r].isNotNull() & p[r].isNull() for r in checked}

    def when(cond: Column, message: str, other: Column | None) -> Column:
        then = F.when(cond, F.lit(message))
        return then if other is None else then.otherwise(other)

    reason = rules.reason_expr(checked, when, missing.__getitem__, unparsable.__getitem__, overflow)
    col_role, value_role = rules.overflow_roles(m)
    column = F.when(overflow, F.lit(m[col_role]))
    value = F.when(overflow, p[value_role].cast("string"))
    for role in reversed(checked):
        bad = missing[role] | unparsable[role]
        column = F.when(bad, F.lit(m[role])).otherwise(column)
        value = F.when(bad, t[role]).otherwise(value)
    return micro.select(
        "*", F.when(F.col("_skip").isNull(), reason).alias("_reason"), column.alias("_column"),
        value.alias("_value"), p["customer_id"].alias("_customer_id"), p["order_date"].alias("_order_date"),
        F.when(~overflow, F.col("_micro")).cast("long").alias("_amount"),
    )


def _skip_expr(inp: SparkInput):
    """blank: every cell empty or whitespace; totals: 合计/Total/... in the first non-null cell or
    in the id or name column."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R
    from segkit.ingest import rules

    cells = [F.col(f"`{h}`") for h in inp.headers]
    all_empty = R.strip(F.concat_ws("", *cells)) == ""  # one trim, not one per cell (nulls drop out)
    totals = F.coalesce(R.is_totals(F.coalesce(*cells)), F.lit(False))
    for role in rules.TOTALS_ROLES:
        if role in inp.mapping:
            totals = totals | F.coalesce(R.is_totals(F.col(f"`{inp.mapping[role]}`")), F.lit(False))
    return F.when(all_empty, F.lit(rules.BLANK)).when(totals, F.lit(rules.TOTALS))


# --------------------------------------------------------------------------- job A: quality

def quality_counts(rows: SparkFrame) -> pl.DataFrame:
    """Rows per (file, block, skip, reason, column), and the absolute money of the usable ones."""
    from pyspark.sql import functions as F

    ok = F.col("_skip").isNull() & F.col("_reason").isNull()
    agg = (rows.groupBy("file", "block", "_skip", "_reason", "_column")
           .agg(F.count(F.lit(1)).alias("n"), F.sum(F.when(ok, F.abs(F.col("_amount")).cast("double"))).alias("abs")))
    return _arrow(agg).select(pl.col("file").cast(pl.String), pl.col("block").cast(pl.Int64),
                              pl.col("_skip", "_reason", "_column").cast(pl.String), pl.col("n").cast(pl.Int64),
                              pl.col("abs").cast(pl.Float64))


def quality_dict(counts: pl.DataFrame, rejected_n: int | None = None) -> dict:
    rows_read = int(counts["n"].sum())
    from segkit.ingest.rules import BLANK, TOTALS

    by_skip = dict(counts.group_by("_skip").agg(pl.col("n").sum()).iter_rows())
    blank, totals = int(by_skip.get(BLANK, 0)), int(by_skip.get(TOTALS, 0))
    data_rows = rows_read - blank - totals
    rej = counts.filter(pl.col("_reason").is_not_null())
    rejected = int(rej["n"].sum())
    reasons = (rej.group_by("_reason").agg(pl.col("n").sum())
               .sort(["n", "_reason"], descending=[True, False]).iter_rows())
    return {
        "rows_read": rows_read,
        "blank_rows": blank,
        "totals_rows": totals,
        "data_rows": data_rows,
        "rejected_rows": rejected,
        "rejected_share": rejected / data_rows if data_rows else 0.0,
        "rejected_reasons": {r: int(n) for r, n in reasons},
        "used_rows": data_rows - rejected,
    }


# -------------------------------------------------------------------- job C: rejected sample

def rejected_sample(session: SparkSessionT, rows: SparkFrame, counts: pl.DataFrame, inp: SparkInput) -> pl.DataFrame:
    """The first REJECTED_SAMPLE rejected rows by file and row, with the raw mapped cells."""
    from pyspark.sql import functions as F

    offsets = _block_offsets(counts, inp)
    bad = rows.where(F.col("_reason").isNotNull())
    if offsets.height:
        table = session.createDataFrame(offsets.rows(), "file string, block long, offset long")
        bad = bad.join(F.broadcast(table), ["file", "block"], "left")
        line = F.col("idx") + F.coalesce(F.col("offset"), F.lit(0))
    else:
        line = F.col("idx")
    row = (line + (2 if inp.format == "parquet" else 1)).alias("row")
    headers = list(dict.fromkeys(inp.mapping.values()))
    out = (bad.select("file", row, F.col("_column").alias("column"), F.col("_reason").alias("reason"),
                      F.col("_value").alias("value"), *[F.col(f"`{h}`").alias(f"raw:{h}") for h in headers])
           .orderBy("file", "row").limit(REJECTED_SAMPLE))
    df = pl.from_arrow(out.toArrow())
    df = df.with_columns(pl.col("row").cast(pl.Int64))
    return df if inp.files > 1 else df.drop("file")


def _block_offsets(counts: pl.DataFrame, inp: SparkInput) -> pl.DataFrame:
    """Lines before each split of a file (title and header lines count: they are lines too)."""
    per = counts.group_by("file", "block").agg(pl.col("n").sum()).sort("file", "block")
    if inp.format == "parquet" or per.filter(pl.col("block") > 0).height == 0:
        return per.clear().select("file", "block", pl.lit(0, pl.Int64).alias("offset"))
    per = per.with_columns(pl.when(pl.col("block") == 0).then(pl.col("n") + inp.header_idx + 1)
                           .otherwise(pl.col("n")).alias("lines"))
    per = per.with_columns((pl.col("lines").cum_sum().over("file") - pl.col("lines")).alias("offset"))
    return per.filter(pl.col("block") > 0).select("file", pl.col("block").cast(pl.Int64), pl.col("offset").cast(pl.Int64))


# ---------------------------------------------------------------------- job B: customer table

def order_lines(rows: SparkFrame, inp: SparkInput, roles: tuple[str, ...]) -> SparkFrame:
    """Usable rows summed per (customer, date, order id, roles): ``clean.Cleaned.lines``."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R
    from segkit.ingest import rules

    m = inp.mapping
    has_order = "order_id" in m
    keys = [F.col("_customer_id").alias("customer_id"), F.col("_order_date").alias("order_date")]
    if has_order:
        keys.append(R.text(F.col(f"`{m['order_id']}`")).alias("_order_id"))
    keys += [R.text(F.col(f"`{m[r]}`")).alias(r) for r in roles]
    ok = rows.where(F.col("_skip").isNull() & F.col("_reason").isNull())
    lines = ok.groupBy(*keys).agg(F.sum("_amount").alias("amount"), F.count(F.lit(1)).alias("n"))
    order_key = rules.order_key(F.col("_order_id") if has_order else None, F.col("order_date").cast("string"),
                                F.coalesce)
    return lines.select("customer_id", order_key.alias("order_key"), "order_date", "amount", *roles, "n")


def customer_base(lines: SparkFrame, win: Windows) -> tuple[SparkFrame, SparkFrame, SparkFrame]:
    """``engines.polars.base_from_lines`` in Spark, in two shuffles (orders, then customers): one row per
    customer, plus the purchase gaps of every customer (for the population median). Both read the
    customers with their gaps, kept (one row per customer, the third frame returned: unpersist it
    after use) so that the second does not shuffle the orders again."""
    from pyspark.sql import functions as F

    from segkit.ingest.rules import is_purchase

    d, lit, amount = F.col("order_date"), F.lit, F.col("amount")
    in_rfm = (lambda c: lit(True)) if win.rfm_start is None else (lambda c: c >= lit(win.rfm_start))
    in_tier = lambda c: c.between(lit(win.tier_start), lit(win.tier_end))  # noqa: E731
    in_prior = lambda c: c.between(lit(win.prior_start), lit(win.prior_end))  # noqa: E731
    orders = lines.where(d < lit(win.as_of)).groupBy("customer_id", "order_key").agg(
        F.min(d).alias("order_date"), F.sum(amount).alias("net"),
        F.sum(F.when(in_rfm(d), amount)).alias("m_rfm"), F.sum(F.when(in_tier(d), amount)).alias("m_tier"),
        F.sum(F.when(in_prior(d), amount)).alias("m_prior"))
    buy = is_purchase(F.col("net"))
    customers = orders.groupBy("customer_id").agg(
        F.coalesce(F.sum("m_rfm"), lit(0)).alias("_monetary"), F.coalesce(F.sum("m_tier"), lit(0)).alias("_annual"),
        F.coalesce(F.sum("m_prior"), lit(0)).alias("_prior"),
        F.min(F.when(buy, d)).alias("first_order_date"), F.max(F.when(buy, d)).alias("last_order_date"),
        F.count_if(buy).alias("_orders_all"), F.count_if(buy & in_rfm(d)).alias("frequency"),
        F.coalesce(F.bool_or(buy & in_tier(d)), lit(False)).alias("_bought_in_window"),
        F.array_sort(F.collect_set(F.when(buy, d))).alias("_days"))
    days = F.col("_days")
    n = F.greatest(F.size(days) - 1, lit(0))
    gaps = F.array_sort(F.zip_with(F.slice(days, 2, n), F.slice(days, 1, n), lambda a, b: F.datediff(a, b)))
    g, k = F.col("_gaps"), F.size(F.col("_gaps"))
    median = F.when(k > 0, (F.element_at(g, F.floor((k - 1) / 2).cast("int") + 1)
                            + F.element_at(g, F.floor(k / 2).cast("int") + 1)) / 2.0)
    with_gaps = customers.select("*", gaps.alias("_gaps")).persist()
    base = with_gaps.select(
        "customer_id", "_monetary", "_annual", "_prior", "first_order_date", "last_order_date",
        "_orders_all", "frequency", "_bought_in_window", median.cast("double").alias("_own_gap"),
        F.datediff(lit(win.as_of), F.col("last_order_date")).alias("recency_days"))
    hist = with_gaps.select(F.explode("_gaps").alias("gap")).groupBy("gap").count()
    return base, hist, with_gaps


def purchase_days(lines: SparkFrame, win: Windows) -> SparkFrame:
    """CLV inputs per customer: days whose summed line amount is positive, the first and last of
    them, and the summed amount of those days after the first (micro-units)."""
    from pyspark.sql import functions as F

    from segkit.ingest.rules import is_purchase

    d = F.col("order_date")
    days = (lines.where(d < F.lit(win.as_of)).groupBy("customer_id", "order_date")
            .agg(F.sum("amount").alias("day_amount")))
    pos = is_purchase(F.col("day_amount"))
    return days.groupBy("customer_id").agg(
        F.count_if(pos).alias("purchase_days"),
        F.min(F.when(pos, d)).alias("first_purchase_day"), F.max(F.when(pos, d)).alias("last_purchase_day"),
        F.coalesce(F.sum(F.when(pos, F.col("day_amount")))
                   - F.min_by(F.col("day_amount"), F.when(pos, d)), F.lit(0)).alias("repeat_value"))


def role_modes(lines: SparkFrame, win: Windows, roles: tuple[str, ...]) -> SparkFrame:
    """Most frequent value per customer of each text role, over source rows; ties: the first by
    code point (``engines.polars._mode``). Three small shuffles for all roles together. The values
    are stripped here (``spark_rules.text``): the typed pass leaves them as read."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R

    lines = lines.where(F.col("order_date") < F.lit(win.as_of))
    # the rows behind each combination of a customer's values first: few per customer, so the
    # values are stacked from a small table instead of from every line (engines.polars._aggregates)
    lines = lines.groupBy("customer_id", *roles).agg(F.sum("n").alias("n"))
    stacked = lines.select("customer_id", "n", F.explode(F.array(*[
        F.struct(F.lit(r).alias("role"), R.text(F.col(r)).alias("value")) for r in roles])).alias("rv"))
    counts = (stacked.where(F.col("rv.value").isNotNull())
              .groupBy("customer_id", F.col("rv.role").alias("role"), F.col("rv.value").alias("value"))
              .agg(F.sum("n").alias("_n")))
    rank = F.struct(-F.col("_n"), F.col("value"))
    return counts.groupBy("customer_id").agg(*[
        F.min_by(F.col("value"), F.when(F.col("role") == r, rank)).alias(r) for r in roles])


def median_of_histogram(hist: pl.DataFrame) -> float | None:
    """The median of the values a histogram (gap, count) describes; polars' median convention
    (mean of the two middle values)."""
    if hist.height == 0:
        return None
    hist = hist.sort("gap")
    total = int(hist["count"].sum())
    cum = hist["count"].cum_sum()
    lo_rank, hi_rank = (total - 1) // 2, total // 2  # 0-based ranks of the middle values
    gaps = hist["gap"]
    lo = gaps[int((cum > lo_rank).arg_max())]
    hi = gaps[int((cum > hi_rank).arg_max())]
    return (lo + hi) / 2


def _to_polars_base(base: pl.DataFrame, roles: tuple[str, ...]) -> pl.DataFrame:
    """The dtypes the polars engine gives the same columns."""
    return base.select(
        pl.col("customer_id").cast(pl.String), pl.col("_monetary").cast(pl.Int64),
        pl.col("_annual").cast(pl.Int64), pl.col("_prior").cast(pl.Int64),
        pl.col("first_order_date").cast(pl.Date), pl.col("last_order_date").cast(pl.Date),
        pl.col("_orders_all").fill_null(0).cast(pl.UInt32), pl.col("frequency").cast(pl.Int64),
        pl.col("_bought_in_window").cast(pl.Boolean), pl.col("_own_gap").cast(pl.Float64),
        pl.col("recency_days").cast(pl.Int64), *[pl.col(r).cast(pl.String) for r in roles],
    ).sort("customer_id")


# ----------------------------------------------------------------------------------- the run

def customer_table(source: str, cfg: Config, *, stdin: io.BufferedIOBase | None = None,
                   session: SparkSessionT | None = None) -> tuple[pl.DataFrame, Quality]:
    """The engine seam (``segkit.engines.customer_table``): (base, quality) with the columns,
    dtypes and units its docstring fixes, computed by Spark."""
    if stdin is not None or source == "-":
        raise SparkInputError("the spark engine reads files and URIs, not stdin; give a path")
    reduced = reduce(source, cfg, master=cfg.spark_master or None, session=session)
    return reduced.base, reduced.quality()


def reduce(path: str, cfg: Config, *, master: str | None = None, session: SparkSessionT | None = None,
           days: bool = False) -> Reduced:
    """Input -> ``contract.Reduced``, by Spark: the data-quality counts, the rejected sample, the
    customer base table and the small aggregates the later steps read; no order line comes back."""
    from segkit.engines.contract import Reduced
    from segkit.ingest.clean import TEXT_ROLES, _persona_uses, check_money

    session = session or get_session(master)
    with _run_conf(session), job_failures(path):
        inp = open_input(session, path, encoding=cfg.encoding, mapping=cfg.columns)
        _refuse_profit(inp)
        roles = tuple(r for r in TEXT_ROLES if r in inp.mapping and (r != "category" or _persona_uses(cfg, r)))
        raw = raw_rows(session, inp)
        cfg = resolve_decimal(raw, inp, cfg)
        done = _typed_pass(session, raw, inp, cfg, roles) if cfg.decimal == "." else None
        done = done or _classify_all(session, raw, inp, cfg, roles)
        try:
            quality = quality_dict(done.counts)
            _check_quality(inp, cfg, quality, done.counts, done.rejected)
            check_money(inp.source, float(done.counts["abs"].fill_null(0.0).sum()))
            head = _head_rows(raw, inp)
            facts, base, pop_gap, activity, daily = _reduce_lines(done.lines, inp.source, cfg, roles, days,
                                                                  keep=not done.persisted)
        finally:
            for frame in done.kept:
                frame.unpersist()
    cleaned = _cleaned(quality, done.rejected, roles, "order_id" in inp.mapping)
    return Reduced(_raw_table(inp, head), cleaned, base, facts, pop_gap, activity, daily)


@dataclass
class _Pass:
    """What a first pass leaves: the order lines (not yet computed), the quality counts (the
    shape of ``quality_counts``), the rejected sample and the frames it keeps."""

    lines: SparkFrame
    counts: pl.DataFrame
    rejected: pl.DataFrame
    kept: list[SparkFrame]
    persisted: bool = False  # the lines are a filter of a kept frame: no need to keep them again


def _classify_all(session: SparkSessionT, raw: SparkFrame, inp: SparkInput, cfg: Config,
                  roles: tuple[str, ...]) -> _Pass:
    """Every row classified by the rules (amounts with a decimal comma, many odd key texts)."""
    rows = _classified(raw, inp, cfg)
    try:
        counts = quality_counts(rows)
        rejected = _rejected(session, rows, counts, counts, inp)
    except BaseException:
        rows.unpersist()
        raise
    return _Pass(order_lines(rows, inp, roles), counts, rejected, [rows])


def _typed_pass(session: SparkSessionT, raw: SparkFrame, inp: SparkInput, cfg: Config,
                roles: tuple[str, ...]) -> _Pass | None:
    """``engines.spark_typed``: the rows summed on their key texts, the keys parsed once per
    group, and only the rows it cannot vouch for classified one by one; None when there are more
    odd key texts than it can set aside (then every row is classified)."""
    from pyspark import StorageLevel

    from segkit.engines import spark_typed as T

    keys = T.group_keys(inp, roles)
    groups = T.parsed(T.summed(raw, inp, cfg, keys), inp, cfg, keys, roles).persist(StorageLevel.MEMORY_AND_DISK)
    kept = [groups]
    try:
        st = T.stats(groups)
        odd = T.odd_texts(groups, keys, st)
        if odd is None:
            groups.unpersist()
            return None
        counts, rejected, lines = T.fast_counts(st), _no_rejects(inp), T.fast_lines(groups, roles)
        if st["bad"] or st["odd"]:
            rows = _classified(raw.where(T.reread_filter(inp, cfg, keys, odd)), inp, cfg)
            kept.append(rows)
            slow = quality_counts(rows)
            counts = pl.concat([counts, slow])
            if slow.filter(pl.col("_reason").is_not_null()).height:
                rejected = _rejected(session, rows, slow, lambda: _split_lines(raw), inp)
            lines = lines.unionByName(order_lines(rows, inp, roles))
    except BaseException:
        for frame in kept:
            frame.unpersist()
        raise
    return _Pass(lines, counts, rejected, kept, persisted=not (st["bad"] or st["odd"]))


def _rejected(session: SparkSessionT, rows: SparkFrame, counts: pl.DataFrame,
              blocks: pl.DataFrame | Callable[[], pl.DataFrame], inp: SparkInput) -> pl.DataFrame:
    """The rejected sample when ``counts`` has rejected rows; ``blocks``: the rows per (file,
    block) of the whole input, or how to count them (only needed when a rejected row lies past a
    file's first split)."""
    rej = counts.filter(pl.col("_reason").is_not_null())
    if not rej.height:
        return _no_rejects(inp)
    if callable(blocks):
        blocks = blocks() if rej.filter(pl.col("block") > 0).height else rej.select("file", "block", "n").clear()
    return rejected_sample(session, rows, blocks, inp)


def _split_lines(raw: SparkFrame) -> pl.DataFrame:
    """Rows per (file, block) of the whole input (its row numbers past the first split)."""
    from pyspark.sql import functions as F

    return _arrow(raw.groupBy("file", "block").agg(F.count(F.lit(1)).alias("n"))).select(
        pl.col("file").cast(pl.String), pl.col("block").cast(pl.Int64), pl.col("n").cast(pl.Int64))


@contextmanager
def _run_conf(session: SparkSessionT) -> Iterator[None]:
    """The run's session settings, set for the run and put back after it."""
    conf = {**RUN_CONF, **_shuffle_conf(session)}
    saved = {k: session.conf.get(k, None) for k in conf}
    for key, value in conf.items():
        session.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                session.conf.unset(key)
            else:
                session.conf.set(key, value)


JOB_HINTS = (  # (words in Spark's message, what to do), the first that matches
    ("maxResultSize", "give the driver a larger result limit, spark.driver.maxResultSize (e.g. 1g)"),
    ("OutOfMemoryError", "give the driver or executors more memory (spark.driver.memory, spark.executor.memory)"),
    ("xecutor", "an executor was lost; check the cluster's logs, then run again"),
    ("FileNotFound", "a file of the input went away while Spark read it; check the path"),
)


@contextmanager
def job_failures(source: str) -> Iterator[None]:
    """A Spark job that fails (the driver's result limit, a lost executor, a file gone, the JVM
    gone) becomes one line and exit 74 (``IOFailure``) instead of a Java stack; segkit's own
    errors pass through."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (Py4JError, PySparkException, ConnectionError) as exc:
        raise job_failure(source, exc) from None


def job_failure(source: str, exc: BaseException) -> IOFailure:
    """The first line of what Spark says went wrong (the first message in the Java cause chain
    that is not a wrapper's), without class names, and what to do."""
    messages = _java_messages(getattr(exc, "java_exception", None)) or [str(exc) or type(exc).__name__]
    lines = [next((ln.strip() for ln in m.splitlines() if ln.strip()), "") for m in messages]
    first = next((ln for ln in lines if ln and not ln.endswith(":")), lines[-1] or type(exc).__name__)
    first = re.sub(r"^(?:[\w$]+\.)+[\w$]*(?:Exception|Error):\s*", "", first)[:300]
    text = "\n".join(messages)
    hint = next((h for words, h in JOB_HINTS if words in text), "check the Spark logs, then run again")
    return IOFailure(f"{source}: the Spark job failed: {first}; {hint}")


def _java_messages(java: Any, depth: int = 8) -> list[str]:
    """The messages of a Java exception and its causes (empty when the JVM is gone)."""
    from py4j.protocol import Py4JError

    out: list[str] = []
    try:
        while java is not None and len(out) < depth:
            out.append(str(java.getMessage() or java.toString()))
            java = java.getCause()
    except (Py4JError, ConnectionError):  # the JVM is gone: the Python text says it
        return []
    return out


def _reduce_lines(lines: SparkFrame, source: str, cfg: Config, roles: tuple[str, ...], days: bool, *,
                  keep: bool = True) -> tuple[DateFacts, pl.DataFrame, float | None, pl.DataFrame | None,
                                              pl.DataFrame | None]:
    """The order lines (kept while the jobs below read them, unless ``keep`` is False: they are a
    filter of a kept frame) -> the date facts (from the lines per date), the base table, the
    population median gap, the tier activity and the days."""
    from pyspark.sql import functions as F

    from segkit.customers.dates import date_facts
    from segkit.customers.tiers import uses_activity

    if keep:
        lines = lines.persist()
    try:
        per_date = lines.groupBy("order_date").agg(F.sum("n").alias("n"), F.count(F.lit(1)).alias("lines"))
        dates = _arrow(per_date).select(pl.col("order_date").cast(pl.Date), pl.col("n").cast(pl.Int64),
                                        pl.col("lines").cast(pl.Int64)).sort("order_date")
        facts = date_facts(dates, cfg, source)
        kept = lines
        if facts.implausible:
            lo, hi = facts.plausible()
            kept = lines.where(F.col("order_date").between(F.lit(lo), F.lit(hi)))
        base, pop_gap = _base(kept, facts.windows, roles)
        activity = _activity(kept, facts.windows) if uses_activity(cfg) else None
        daily = _days(kept) if days else None
    finally:
        if keep:
            lines.unpersist()
    return facts, base, pop_gap, activity, daily


def _arrow(frame: SparkFrame) -> pl.DataFrame:
    df = pl.from_arrow(frame.toArrow())
    assert isinstance(df, pl.DataFrame)
    return df


def _refuse_profit(inp: SparkInput) -> None:
    """Gross profit is computed by the polars engine only: a cost or gross profit column is refused
    rather than silently left out of the results."""
    from segkit.ingest.rules import profit_role

    role = profit_role(inp.mapping)
    if role:
        raise SparkInputError(f"{inp.source}: column '{inp.mapping[role]}' ({role}): gross profit is not "
                              "computed by the spark engine")


def _shuffle_conf(session: SparkSessionT) -> dict[str, str]:
    """Spark's default of 200 shuffle partitions is sized for big shuffles; these shuffle one row
    per customer or order, and 200 tasks per stage cost more than the work itself (on 100k lines,
    local[1]: 46 s against 7 s with 2). One partition per core the session has, unless the
    partitions were configured; Spark Connect (no SparkContext) keeps the server's setting."""
    from pyspark.errors import PySparkNotImplementedError

    if session.conf.get("spark.sql.shuffle.partitions", "200") != "200":
        return {}
    try:
        cores = session.sparkContext.defaultParallelism
    except (PySparkNotImplementedError, AttributeError):
        return {}
    return {"spark.sql.shuffle.partitions": str(max(2, cores))}


def _head_rows(raw: SparkFrame, inp: SparkInput, n: int = 2000) -> pl.DataFrame:
    """The first rows below the header, mapped columns as text (what later steps sample). One file:
    the rows of its first split, in their order (Spark reads the first partitions only)."""
    from pyspark.sql import functions as F

    headers = list(dict.fromkeys(inp.mapping.values()))
    cols = [F.col(f"`{h}`") for h in headers]
    if inp.files == 1:
        first = _arrow(raw.where(F.col("block") == 0).select("idx", *cols).limit(n)).sort("idx").drop("idx")
    else:
        first = _arrow(raw.orderBy("file", "block", "idx").limit(n).select(*cols))
    return first.select(pl.col(c).cast(pl.String) for c in first.columns)


def resolve_decimal(raw: SparkFrame, inp: SparkInput, cfg: Config) -> Config:
    """``cfg`` with the decimal mark of the amounts (``clean.resolve_decimal``, on the first rows)."""
    import dataclasses

    from pyspark.sql import functions as F

    from segkit.ingest.clean import DECIMAL_SAMPLE, pick_decimal

    if cfg.decimal != "auto":
        return cfg
    roles = ["amount"] if "amount" in inp.mapping else ["quantity", "unit_price"]
    heads = [inp.mapping[r] for r in roles if r in inp.mapping]
    sample = pl.from_arrow(raw.select(*[F.col(f"`{h}`").alias(f"c{i}") for i, h in enumerate(heads)])
                           .limit(DECIMAL_SAMPLE).toArrow())
    assert isinstance(sample, pl.DataFrame)
    texts = pl.concat([sample[c].cast(pl.String) for c in sample.columns])
    mark, notes = pick_decimal(texts, inp.source)
    inp.notes.extend(n for n in notes if n not in inp.notes)
    return dataclasses.replace(cfg, decimal=mark)


def _classified(raw: SparkFrame, inp: SparkInput, cfg: Config) -> SparkFrame:
    """Rows classified one by one and kept (memory, spilling to disk) for the jobs that follow:
    only the columns they read."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    rows = classify(raw, inp, cfg)
    headers = list(dict.fromkeys(inp.mapping.values()))
    keep = ["file", "block", "idx", "_skip", "_reason", "_column", "_value", "_customer_id", "_order_date", "_amount"]
    return rows.select(*keep, *[F.col(f"`{h}`") for h in headers]).persist(StorageLevel.MEMORY_AND_DISK)


def _base(lines: SparkFrame, win: Windows, roles: tuple[str, ...]) -> tuple[pl.DataFrame, float | None]:
    """The customer base table (``contract.BASE_SCHEMA`` then the roles) and the population
    median gap, from the plausible order lines."""
    from segkit.engines.contract import BASE_SCHEMA

    base, hist, kept = customer_base(lines, win)
    try:
        frame, pop_gap = _arrow(base), median_of_histogram(_arrow(hist))
    finally:
        kept.unpersist()
    if roles:
        frame = frame.join(_arrow(role_modes(lines, win, roles)), on="customer_id", how="left")
    frame = _to_polars_base(frame, roles).join(_arrow(purchase_days(lines, win)), on="customer_id", how="left")
    frame = frame.rename({c: c.lstrip("_") for c in frame.columns if c.startswith("_")})
    frame = frame.select(*[pl.col(c).cast(getattr(pl, t)) for c, t in BASE_SCHEMA.items()], *roles)
    frame = frame.with_columns(pl.col("purchase_days").fill_null(0), pl.col("repeat_value").fill_null(0))
    return frame, pop_gap


def _activity(lines: SparkFrame, win: Windows) -> pl.DataFrame:
    """``customers.tiers.window_activity`` in Spark: purchase orders and 30-day periods with a
    purchase in the tier window, per customer."""
    from pyspark.sql import functions as F

    from segkit.ingest.rules import is_purchase

    d = F.col("order_date")
    w = lines.where(d.between(F.lit(win.tier_start), F.lit(win.tier_end)))
    orders = (w.groupBy("customer_id", "order_key").agg(F.min(d).alias("order_date"), F.sum("amount").alias("amount"))
              .where(is_purchase(F.col("amount"))))
    period = F.least(F.floor(F.datediff(F.lit(win.tier_end), d) / 30), F.lit(11))
    act = orders.groupBy("customer_id").agg(F.count(F.lit(1)).alias("_window_orders"),
                                            F.countDistinct(period).alias("_window_periods"))
    return _arrow(act).select(pl.col("customer_id").cast(pl.String), pl.col("_window_orders").cast(pl.Int64),
                              pl.col("_window_periods").cast(pl.Int64))


def _days(lines: SparkFrame) -> pl.DataFrame:
    """Each customer's net per day (every plausible day): what CLV selection and the backtest read."""
    from pyspark.sql import functions as F

    daily = lines.groupBy("customer_id", "order_date").agg(F.sum("amount").alias("amount"))
    return _arrow(daily).select(pl.col("customer_id").cast(pl.String), pl.col("order_date").cast(pl.Date),
                                pl.col("amount").cast(pl.Int64))


def _check_quality(inp: SparkInput, cfg: Config, q: dict[str, Any], counts: pl.DataFrame, rejected: pl.DataFrame) -> None:
    if q["data_rows"] == 0:
        msg = (f"{inp.source}: no data rows below the header (row {inp.header_row}); "
               "check that the export holds orders")
        raise DataError(msg)
    if q["rejected_rows"] / q["data_rows"] <= cfg.max_bad_rows:
        return
    top_reason = next(iter(q["rejected_reasons"]))
    by_col = (counts.filter(pl.col("_reason").is_not_null()).group_by("_column").agg(pl.col("n").sum())
              .sort(["n", "_column"], descending=[True, False]))
    worst_col, worst_n = by_col.row(0)
    example = rejected.filter(pl.col("column") == worst_col).row(0, named=True)
    from segkit.ingest.clean import too_many_rejected

    raise too_many_rejected(inp.source, q["rejected_rows"], q["data_rows"], cfg, (worst_col, worst_n), example,
                            top_reason)


def _no_rejects(inp: SparkInput) -> pl.DataFrame:
    headers = list(dict.fromkeys(inp.mapping.values()))
    return pl.DataFrame(schema={"row": pl.Int64, "column": pl.String, "reason": pl.String,
                                "value": pl.String, **{f"raw:{h}": pl.String for h in headers}})


def _raw_table(inp: SparkInput, head: pl.DataFrame):
    from segkit.ingest.read import RawTable

    return RawTable(inp.source, head.lazy(), inp.headers, inp.mapping, inp.format, inp.header_row,
                    inp.size, inp.sha256, encoding=inp.encoding if inp.format == "csv" else None,
                    delimiter=inp.delimiter, notes=inp.notes)


def _cleaned(quality: dict[str, Any], rejected: pl.DataFrame, roles: tuple[str, ...], has_order_id: bool) -> Cleaned:
    from segkit.ingest.clean import Cleaned

    return Cleaned(pl.DataFrame(), rejected, quality, roles, has_order_id)
