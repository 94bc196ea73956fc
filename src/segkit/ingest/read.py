"""Read an export losslessly into a frame of text columns.

Every cell is kept as text; segkit's own parsers in ``ingest/clean.py`` type the values, so nothing is
turned into a null or a zero by type inference. The result carries ``__row``: the row number a
spreadsheet program would show for that record (header row included in the count).

CSV: decoded strictly as UTF-8 (BOM allowed), else GB18030, else as ``encoding`` says; the
delimiter is sniffed from , ; tab | (a .tsv file is tab-separated). Title rows above the header are
skipped: the first 20 rows are scanned for the row with the most recognised column names.
Excel (.xlsx .xlsm .xls) goes through polars' calamine engine (fastexcel) with every cell as text.
Parquet is read as is and its columns cast to text.
"""

from __future__ import annotations

from typing import Any

import codecs
import csv
import hashlib
import io
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from segkit.errors import DataError, InputNotFoundError, IOFailure, UsageError, option
from segkit.ingest.columns import alias_score, resolve
from segkit.ingest.sources import (Limits, Prepared, check_duplicate_headers, decode_lines, needs_preparing,
                      original_headers, prepare_bytes, prepare_path, read_head, too_big)

ROW = "__row"
HEADER_SCAN_ROWS = 20
EXCEL_EXT = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
CHUNK = 16 << 20


@dataclass
class RawTable:
    """Text columns of the input plus where they came from."""

    source: str  # the name shown in messages
    frame: pl.LazyFrame  # String columns (original headers) + __row
    headers: list[str]
    mapping: dict[str, str]  # role -> header
    format: str  # csv | excel | parquet
    header_row: int  # 1-based row of the header
    size: int
    sha256: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)
    csv_source: Path | bytes | None = None  # what ``frame`` scans (CSV only), for ``scan_typed``
    parquet_source: Path | None = None  # the Parquet file ``frame`` scans, for ``scan_typed``
    warnings: list[dict[str, Any]] = field(default_factory=list)  # summary.json warnings the reading raises
    pending: _FileCheck | None = None  # sha256 and the UTF-8 check still running (``background``)

    def verify(self) -> bool:
        """Wait for a background file check; False when the file turned out not to be UTF-8
        (the caller then reads it again with ``background=False``)."""
        if self.pending is None:
            return True
        self.sha256, utf8, _ = self.pending.result()
        self.pending = None
        return utf8


def read_input(
    path: str,
    *,
    encoding: str = "",
    sheet: str | int = "",
    mapping: dict[str, str] | None = None,
    stdin: io.BufferedIOBase | None = None,
    limits: Limits | None = None,
    background: bool = False,
) -> RawTable:
    """Open ``path`` (or ``-`` for CSV on stdin) and resolve its columns.

    ``background``: for a CSV file whose first 256 KiB are UTF-8, hash and check the whole file
    in a thread while the caller reads it; the caller must then call ``RawTable.verify()``.
    """
    mapping = mapping or {}
    limits = limits or Limits()
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        if stdin is None and sys.stdin.isatty():
            msg = "reading CSV from stdin, but stdin is a terminal; pipe a file in (segkit segment - < orders.csv)"
            raise UsageError(msg)
        data = stream.read(limits.unpacked_bytes + 1)
        if len(data) > limits.unpacked_bytes:
            raise DataError(too_big("<stdin>", limits.unpacked_bytes))
        if not data.strip():
            raise DataError("<stdin>: no data (the input is empty); export the orders again")
        return _read_prepared(prepare_bytes(data, "<stdin>", encoding, limits), "<stdin>", mapping, ".csv")
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{path}: no such file; check the path (run `ls` in that folder)")
    if p.is_dir():
        raise InputNotFoundError(f"{path}: is a folder, not a file; give the export file itself")
    head = read_head(p)
    if needs_preparing(p, head, encoding):  # a stream, compressed, UTF-16, or CR-only line ends
        ext = Path(p.stem).suffix.lower() if p.suffix.lower() in (".gz", ".zst", ".xz", ".bz2") else p.suffix.lower()
        return _read_prepared(prepare_path(p, encoding, limits), str(p), mapping, ext)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise IOFailure(f"{path}: cannot read ({exc.strerror}); check the file's permissions") from None
    if size == 0:
        raise DataError(f"{path}: the file is empty; export the orders again")
    ext = p.suffix.lower()
    if head.startswith(b"PAR1") or ext == ".parquet":
        return _read_parquet(p, mapping)
    if ext in EXCEL_EXT or head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        from segkit.ingest.xlsx_guard import check_workbook

        cells = check_workbook(p, limits)
        return _read_excel(p, sheet, mapping, size, cells)
    return _read_csv_path(p, encoding, mapping, background)


# ----------------------------------------------------------------------------------------- CSV

def _scan_file(p: Path) -> tuple[str, bool, bytes]:
    """One pass: sha256, whether the bytes are valid UTF-8, and the first 256 KiB."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8 = True
    head = b""
    try:
        with p.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                if len(head) < 262144:
                    head += chunk[: 262144 - len(head)]
                # plain ASCII needs no decoding, unless a character was cut at the last chunk's end
                if utf8 and not (chunk.isascii() and decoder.getstate()[0] == b""):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
            if utf8:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8 = False
    except OSError as exc:
        raise IOFailure(f"{p}: read failed ({exc.strerror})") from None
    return digest.hexdigest(), utf8, head


class _FileCheck(threading.Thread):
    """``_scan_file`` in a thread (hashlib and file reads release the GIL)."""

    def __init__(self, p: Path) -> None:
        super().__init__(daemon=True)
        self.p = p
        self._result: tuple[str, bool, bytes] | None = None
        self._error: IOFailure | None = None
        self.start()

    def run(self) -> None:
        try:
            self._result = _scan_file(self.p)
        except IOFailure as exc:
            self._error = exc

    def result(self) -> tuple[str, bool, bytes]:
        self.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _read_head(p: Path) -> bytes:
    try:
        with p.open("rb") as fh:
            return fh.read(262144)
    except OSError as exc:
        raise IOFailure(f"{p}: read failed ({exc.strerror})") from None


def _utf8_head(head: bytes) -> bool:
    """The head decodes as UTF-8 (a character cut at the end of the head is allowed)."""
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _check_text(source: str, head: bytes) -> None:
    if b"\x00" in head[:8192]:
        msg = (f"{source}: this is not a text file (it holds NUL bytes); "
               "export the orders as CSV or Excel (.xlsx)")
        raise DataError(msg)


def _decode_strict(source: str, data: bytes, encoding: str) -> tuple[str, str]:
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise UsageError(f"{option('input.encoding')} {encoding}: unknown encoding; try utf-8 or gb18030") from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            msg = f"{source}: line {line} is not valid {encoding}; try {option('input.encoding')} gb18030 or utf-8"
            raise DataError(msg) from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        msg = (f"{source}: line {line} is neither UTF-8 nor GB18030 text; "
               f"export the file as UTF-8 CSV or give its encoding with {option('input.encoding')}")
        raise DataError(msg) from None


def _head_rows(text: str, delimiter: str) -> list[list[str]]:
    lines = text.splitlines()[: HEADER_SCAN_ROWS * 4]
    reader = csv.reader(lines, delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= HEADER_SCAN_ROWS:
                break
    except csv.Error:
        pass
    return rows


def _sniff(text: str, ext: str) -> tuple[str, int]:
    """Pick the delimiter and the 0-based header row: the row with the most recognised names."""
    candidates = ["\t"] if ext in (".tsv", ".tab") else [",", ";", "\t", "|"]
    best: tuple[int, int, int, str] | None = None  # (score, -row, width, delimiter)
    for d in candidates:
        for i, row in enumerate(_head_rows(text, d)):
            key = (alias_score(row), -i, len(row), d)
            if best is None or key > best:
                best = key
    if best is not None and best[0] > 0:
        return best[3], -best[1]
    # No recognised name anywhere: take the delimiter that splits the first line most.
    first = text.splitlines()[0] if text else ""
    return max(candidates, key=first.count), 0


def _read_csv_path(p: Path, encoding: str, mapping: dict[str, str], background: bool = False) -> RawTable:
    want_utf8 = encoding.lower().replace("-", "").replace("_", "") in ("", "utf8", "utf8sig")
    pending = None
    if background and want_utf8:
        head = _read_head(p)
        if _utf8_head(head):
            pending, sha, utf8 = _FileCheck(p), "", True
    if pending is None:
        sha, utf8, head = _scan_file(p)
    source = str(p)
    _check_text(source, head)
    size = p.stat().st_size
    if utf8 and want_utf8:
        text_head = head.decode("utf-8-sig", errors="ignore")
        delimiter, header_idx = _sniff(text_head, p.suffix.lower())
        lf = _scan(p, delimiter, header_idx, source)
        raw = _finish_csv(lf, source, size, sha, "utf-8", delimiter, header_idx, mapping, p)
        raw.pending = pending
        return raw
    data = p.read_bytes()
    return _read_csv_bytes(data, source, encoding, mapping, p.suffix.lower(), sha=sha, size=size)


def _read_prepared(prep: Prepared, source: str, mapping: dict[str, str], ext: str) -> RawTable:
    raw = _read_csv_bytes(prep.data, source, prep.encoding, mapping, ext, sha=prep.sha256, size=prep.size)
    raw.notes.extend(prep.notes)
    raw.encoding = prep.source_encoding or raw.encoding
    return raw


def _read_csv_bytes(
    data: bytes, source: str, encoding: str, mapping: dict[str, str], ext: str,
    *, sha: str | None = None, size: int | None = None,
) -> RawTable:
    if not data.strip():
        raise DataError(f"{source}: no data (the input is empty); export the orders again")
    _check_text(source, data[:8192])
    text, used = _decode_strict(source, data, encoding)
    mixed = decode_lines(source, data, used) if used != "utf-8" else None  # never silent mojibake
    text, notes = mixed if mixed is not None else (text, [])
    delimiter, header_idx = _sniff(text[:262144], ext)
    utf8 = text.encode("utf-8") if used != "utf-8" else data
    lf = _scan(utf8, delimiter, header_idx, source)
    raw = _finish_csv(lf, source, size if size is not None else len(data),
                      sha or hashlib.sha256(data).hexdigest(), used, delimiter, header_idx, mapping, utf8)
    raw.notes.extend(notes)
    return raw


def _scan(src: Path | bytes, delimiter: str, header_idx: int, source: str,
          types: dict[str, pl.DataType] | None = None) -> pl.LazyFrame:
    try:
        lf = pl.scan_csv(
            src, separator=delimiter, skip_rows=header_idx, infer_schema=False,
            truncate_ragged_lines=True, row_index_name=ROW, row_index_offset=header_idx + 2,
            raise_if_empty=False, glob=False, with_column_names=_name_blank_headers,
            schema_overrides=types, ignore_errors=bool(types),
        )
        lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        msg = f"{source}: cannot parse as CSV ({str(exc).splitlines()[0]}); check the delimiter and quoting"
        raise DataError(msg) from None
    return lf


def scan_typed(raw: RawTable, types: dict[str, pl.DataType]) -> pl.LazyFrame:
    """The CSV or Parquet file behind ``raw`` scanned again with some columns typed (by polars'
    CSV parser; for Parquet, its stored numbers cast). A cell that cannot be read as its type
    becomes null (the caller re-reads such rows as text)."""
    if raw.parquet_source is not None:
        lf = pl.scan_parquet(raw.parquet_source)
        return _parquet_frame(lf, lf.collect_schema(), raw.headers, types)
    assert raw.csv_source is not None and raw.delimiter is not None
    return _scan(raw.csv_source, raw.delimiter, raw.header_row - 1, raw.source, types)


def _name_blank_headers(names: list[str]) -> list[str]:
    """A header cell left empty becomes column_N (N = its 1-based position), so --map can name it."""
    return [n if n.strip() else f"column_{i + 1}" for i, n in enumerate(names)]


def _finish_csv(lf: pl.LazyFrame, source: str, size: int, sha: str, encoding: str | None, delimiter: str,
                header_idx: int, mapping: dict[str, str], src: Path | bytes) -> RawTable:
    headers = [c for c in lf.collect_schema().names() if c != ROW]
    check_duplicate_headers(original_headers(headers), headers, mapping, source)
    mapping_found = resolve(headers, mapping, source)
    notes = [f"read {source} as {encoding}, delimiter {delimiter!r}"
             + (f", header on row {header_idx + 1}" if header_idx else "")]
    return RawTable(source, lf, headers, mapping_found, "csv", header_idx + 1, size, sha,
                    encoding=encoding, delimiter=delimiter, notes=notes, csv_source=src)


# --------------------------------------------------------------------------------------- Excel

def _sha256(p: Path) -> str:
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _first_used_row(p: Path, sheet_name: str) -> int:
    """1-based row where calamine's range starts (it trims leading empty rows)."""
    if p.suffix.lower() not in (".xlsx", ".xlsm"):
        return 1
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
        try:
            ws = wb[sheet_name]
            for i, row in enumerate(ws.iter_rows(min_row=1, max_row=200, values_only=True), start=1):
                if any(v is not None and str(v) != "" for v in row):
                    return i
        finally:
            wb.close()
    except (OSError, KeyError, ValueError):
        return 1
    return 1


def _read_excel(p: Path, sheet: str | int, mapping: dict[str, str], size: int,
                cells: dict[str, int] | None = None) -> RawTable:
    """The chosen sheet, or the first whose header row holds the required columns (a sheet of more
    than ``xlsx_columns.WIDE_CELLS`` cells: only the columns the run needs, see ``_read_wide``)."""
    import fastexcel

    source = str(p)
    try:
        reader = fastexcel.read_excel(str(p))
    except fastexcel.FastExcelError as exc:
        first = str(exc).splitlines()[0]
        msg = f"{source}: not a readable Excel workbook ({first}); open it in Excel and save it as .xlsx or CSV"
        raise DataError(msg) from None
    from segkit.ingest.xlsx_guard import hidden_sheets

    hidden = hidden_sheets(p) if sheet in ("", None) else set()
    names = [n for n in reader.sheet_names if n not in hidden] or reader.sheet_names
    chosen = _chosen_sheets(source, names, sheet) if not hidden else names
    errors: list[str] = []
    for name in chosen:
        try:
            wide = _read_wide(p, name, mapping, size, cells or {})
            df = pl.DataFrame() if wide else reader.load_sheet(name, header_row=None, dtypes="string").to_polars()
        except fastexcel.FastExcelError as exc:
            errors.append(f"sheet '{name}': {str(exc).splitlines()[0]}")
            continue
        except DataError as exc:
            wide, df = None, pl.DataFrame()
            if len(chosen) == 1:
                raise
            errors.append(exc.args[0])
            continue
        if wide is not None:
            return wide
        if df.height == 0:
            errors.append(f"sheet '{name}' is empty")
            continue
        try:
            return _sheet_table(p, name, df, mapping, size)
        except DataError as exc:
            if len(chosen) == 1:
                raise
            errors.append(exc.args[0])  # the message with its option references
    if len(errors) == 1:
        raise DataError(errors[0])
    msg = (f"{source}: no sheet has the required columns (customer_id, order_date, amount); "
           f"pick one with {option('input.sheet')} and name columns with {option('columns')} ({'; '.join(errors)[:300]})")
    raise DataError(msg)


def _chosen_sheets(source: str, names: list[str], sheet: str | int) -> list[str]:
    """The sheet asked for (by name, or by 0-based position), else every sheet in order."""
    if sheet == "" or sheet is None:
        return names
    if isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
        idx = int(sheet)
        if not 0 <= idx < len(names):
            msg = f"{source}: {option('input.sheet')} {sheet}: the workbook has {len(names)} sheet(s): {', '.join(names)}"
            raise DataError(msg)
        return [names[idx]]
    if sheet in names:
        return [sheet]
    raise DataError(f"{source}: no sheet '{sheet}'; sheets are: {', '.join(names)}")


def _header(df: pl.DataFrame, mapping: dict[str, str], label: str) -> tuple[int, list[str], dict[str, str]]:
    """The header row among the first rows of ``df`` (the most recognised names), its column
    names, and the role of each (DataError when a required column is missing or repeated)."""
    head = df.head(HEADER_SCAN_ROWS).rows()
    scores = [alias_score(r) for r in head]
    header_idx = max(range(len(scores)), key=lambda i: (scores[i], -i))
    headers = _unique_headers(head[header_idx])
    texts = [str(c).strip() if c is not None and str(c).strip() else h for c, h in zip(head[header_idx], headers)]
    check_duplicate_headers(texts, headers, mapping, label)
    return header_idx, headers, resolve(headers, mapping, label)


def _sheet_table(p: Path, name: str, df: pl.DataFrame, mapping: dict[str, str], size: int) -> RawTable:
    """One sheet's cells as text below the header row found by alias score (DataError when the
    header lacks a required column or repeats one)."""
    header_idx, headers, found = _header(df, mapping, f"{p} (sheet '{name}')")
    header_row = _first_used_row(p, name) + header_idx
    body = df.slice(header_idx + 1)
    body.columns = headers
    return _excel_table(p, name, body, (headers, headers), found, header_row, size)


def _excel_table(p: Path, name: str, body: pl.DataFrame, headers: tuple[list[str], list[str]],
                 found: dict[str, str], header_row: int, size: int) -> RawTable:
    """The RawTable of a sheet's ``body`` (the rows below ``header_row``, columns ``headers[0]``
    of the sheet's ``headers[1]``)."""
    source = str(p)
    body = body.with_row_index(ROW, offset=header_row + 1)
    notes = [f"read {source}, sheet '{name}'" + (f", header on row {header_row}" if header_row > 1 else "")]
    kept, every = headers
    if len(kept) < len(every):
        notes.append(f"read {len(kept)} of the sheet's {len(every)} columns (a large sheet: only the columns used)")
    return RawTable(source, body.lazy(), kept, found, "excel", header_row, size, _sha256(p), sheet=name,
                    notes=notes, warnings=_formula_warnings(p, name, body, every, found))


def _read_wide(p: Path, name: str, mapping: dict[str, str], size: int, cells: dict[str, int]) -> RawTable | None:
    """A sheet of more than ``WIDE_CELLS`` cells, reading only its mapped columns and its first
    column (None for a smaller sheet, or one whose XML is not plain: the whole sheet is read)."""
    import tempfile
    import zipfile

    from segkit.ingest import xlsx_columns as xc
    from segkit.ingest.xlsx_guard import sheet_member

    if max(cells.values(), default=0) <= xc.WIDE_CELLS:
        return None  # every sheet is small (or the workbook is not a zip: .xls)
    with zipfile.ZipFile(p) as book:
        member = sheet_member(book, name)
        if member is None or cells.get(member, 0) <= xc.WIDE_CELLS:
            return None
        with tempfile.TemporaryDirectory(prefix="segkit-xlsx-") as tmp:
            try:
                with book.open(member) as fh:
                    head = xc.head_rows(fh)
            except xc.NotPlain:
                return None
            xc.write_copy(p, member, Path(tmp) / "head.xlsx", head[1])
            df, top = _trimmed(_load_sheet(Path(tmp) / "head.xlsx", name))
            header_idx, headers, found = _header(df, mapping, f"{p} (sheet '{name}')")
            kept = [h for h in headers if h == headers[0] or h in found.values()]
            header_row = head[0] + top[0] + header_idx
            with book.open(member) as fh:
                rows = xc.narrow_rows(fh, [top[1] + 1 + headers.index(h) for h in kept], header_row)
                xc.write_copy(p, member, Path(tmp) / "narrow.xlsx", rows)
            body = _load_sheet(Path(tmp) / "narrow.xlsx", name).slice(1)
    body = body.select(body.columns[: len(kept)])
    body = body.with_columns(pl.lit(None, pl.String).alias(f"_{i}") for i in range(body.width, len(kept)))
    body.columns = kept
    return _excel_table(p, name, body, (kept, headers), found, header_row, size)


def _trimmed(df: pl.DataFrame) -> tuple[pl.DataFrame, tuple[int, int]]:
    """``df`` without its first row and column (``xlsx_columns.head_rows``' marker) and without the
    leading rows and columns that hold no value, as the reader trims a sheet; and how many rows
    and columns that dropped after the marker."""
    df = df.slice(1).select(df.columns[1:])
    used = [c for c in df.columns if df[c].null_count() < df.height]
    col = df.columns.index(used[0]) if used else 0
    df = df.select(df.columns[col:])
    filled = df.select(pl.any_horizontal(pl.all().is_not_null()).arg_true().first()).item() if df.width else None
    row = int(filled) if filled is not None else 0
    return df.slice(row), (row, col)


def _load_sheet(p: Path, name: str) -> pl.DataFrame:
    import fastexcel

    return fastexcel.read_excel(str(p)).load_sheet(name, header_row=None, dtypes="string").to_polars()


MOSTLY = 0.5  # an amount column with more formula cells without values than this share: exit 65


def _formula_warnings(p: Path, name: str, body: pl.DataFrame, headers: list[str],
                      found: dict[str, str]) -> list[dict[str, Any]]:
    """``formulas_without_values`` for each money column (amount, quantity, unit_price) holding
    formula cells saved without a value (a program that writes formulas without computing them:
    each reads as 0 or empty); a DataError when they are most of the column's rows. The sheet's
    XML is scanned only when the column holds a 0 or an empty cell."""
    roles = [r for r in ("amount", "quantity", "unit_price") if r in found]
    if p.suffix.lower() not in (".xlsx", ".xlsm") or body.height == 0 or not roles:
        return []
    zero = [pl.col(found[r]).str.strip_chars().fill_null("").is_in(["", "0", "0.0"]).any().alias(r) for r in roles]
    if not any(body.select(zero).row(0)):
        return []
    from segkit.customers.warnings import catalog_warning
    from segkit.ingest.xlsx_guard import formulas_without_values

    counts, first = formulas_without_values(p, name)
    out = []
    for role in roles:
        header = found[role]
        cells = counts.get(first + headers.index(header), 0)
        if cells > MOSTLY * body.height:
            msg = (f"{p}: {cells:,} of {body.height:,} cells of the {role} column '{header}' (sheet '{name}') are "
                   "formulas saved without their values, so they would read as 0 or empty; open the workbook in "
                   "Excel or LibreOffice and save it again (that stores the values), or export it as CSV")
            raise DataError(msg)
        if cells:
            out.append(catalog_warning("formulas_without_values", cells=cells, role=role, column=header))
    return out


def _unique_headers(cells: Sequence[object]) -> list[str]:
    out: list[str] = []
    for i, c in enumerate(cells):
        name = str(c).strip() if c is not None and str(c).strip() else f"column_{i + 1}"
        base, n = name, 1
        while name in out:
            n += 1
            name = f"{base}_{n}"
        out.append(name)
    return out


# ------------------------------------------------------------------------------------- Parquet

def _read_parquet(p: Path, mapping: dict[str, str]) -> RawTable:
    source = str(p)
    try:
        lf = pl.scan_parquet(p)
        schema = lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{source}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    headers = list(schema.names())
    found = resolve(headers, mapping, source)
    nested = [name for name, dtype in schema.items() if dtype.is_nested() or dtype == pl.Object]
    for role, name in found.items():
        if name in nested:
            msg = (f"{source}: column '{name}' ({role}) holds {schema[name]} values, not one value per "
                   f"row; flatten it or map another column ({option('columns.' + role)}=...)")
            raise DataError(msg)
    headers = [h for h in headers if h not in nested]  # unused lists and structs are left out
    return RawTable(source, _parquet_frame(lf, schema, headers), headers, found, "parquet", 1, p.stat().st_size,
                    _sha256(p), notes=[f"read {source} as Parquet"], parquet_source=p)


def _parquet_frame(lf: pl.LazyFrame, schema: pl.Schema, headers: list[str],
                   types: dict[str, pl.DataType] | None = None) -> pl.LazyFrame:
    """Every column in ``headers`` as text (dates as ISO text), those in ``types`` cast to that
    type instead (null where the value does not convert), and the row number."""
    casts = []
    for name in headers:
        col, dtype = pl.col(name), schema[name]
        if types and name in types:
            casts.append(col.cast(types[name], strict=False))
        elif dtype == pl.Date:
            casts.append(col.dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            casts.append(col.dt.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            casts.append(col.cast(pl.String))
    return lf.select(casts).with_row_index(ROW, offset=2)


def parquet_numeric(raw: RawTable, headers: list[str]) -> bool:
    """Whether the Parquet file behind ``raw`` stores every one of ``headers`` as integers,
    decimals or float64: numbers whose text, parsed back, is the same float64 (a float32's
    shortest text is not: 7.1 as float32 is 7.099999904632568 as float64)."""
    if raw.parquet_source is None:
        return False
    schema = pl.scan_parquet(raw.parquet_source).collect_schema()
    return all(schema[h].is_integer() or schema[h] == pl.Float64 or isinstance(schema[h], pl.Decimal)
               for h in headers)
