"""Refuse an .xlsx/.xlsm that would unpack beyond the limits before the Excel reader opens it.

A workbook is a zip archive: a few kilobytes can declare (or really hold) gigabytes of XML, and
the reader would then run out of memory. Checked here, in one streaming pass with bounded memory:
the sizes the archive declares, the bytes it really unpacks to, and the number of shared strings
(declared in ``sharedStrings.xml`` and counted), shared strings longer than Excel allows (one
string repeated in thousands of cells would be copied into each), and the area each sheet spans
(the reader allocates every cell from A1 to the last used one, so one stray cell at XFD1048576
asks for hundreds of GB).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from segkit.errors import DataError, option
from segkit.ingest.sources import MB, Limits
from segkit.ingest.xlsx_columns import col_number

_COUNT = re.compile(rb'uniqueCount="(\d+)"')
CHUNK = 1 << 20
EXCEL_MAX_CHARS = 32_767  # Excel's own limit on the text of a cell
# the XML of one shared string may escape each character (&quot; is 6 bytes) and carry rich text runs
MAX_STRING_BYTES = EXCEL_MAX_CHARS * 8 + 65_536
_SI = re.compile(rb"</?si[ >]")
_ROW = re.compile(rb'<row r="(\d+)"')
_COL = re.compile(rb'<c r="([A-Z]{1,3})\d')
BYTES_PER_CELL = 16  # what the reader holds for each cell of a sheet's range, at least


def _refuse(source: str, what: str, limit_text: str) -> DataError:
    return DataError(f"{source}: {what}, above the limit of {limit_text} (a decompression bomb, or a very large "
                     f"workbook); raise it with {option('input.max_unpacked_mb')} if you trust the file, or export it as CSV/Parquet")


def check_workbook(p: Path, limits: Limits) -> dict[str, int]:
    """Raise DataError when the workbook at ``p`` exceeds ``limits``; other zip damage is left to the reader.

    Returns the number of cells each sheet's XML holds, by archive member (empty for a non-zip)."""
    source = str(p)
    try:
        archive = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError):
        return {}  # not a zip (.xls) or unreadable: the reader reports it
    cells: dict[str, int] = {}
    with archive:
        infos = archive.infolist()
        declared = sum(i.file_size for i in infos)
        limit = limits.unpacked_bytes
        if declared > limit:
            raise _refuse(source, f"declares {declared / MB:,.0f} MB unpacked", f"{limit // MB:,} MB")
        total = 0
        for info in infos:
            total = _unpack(archive, info, total, limit, limits.shared_strings, source, cells)
    return cells


class _Scan:
    """What one member's stream shows, chunk by chunk: shared strings (count, longest), or a
    sheet's last row and widest column."""

    def __init__(self, name: str, max_strings: int, source: str, limit: int) -> None:
        lower = name.lower()
        self.shared = lower.endswith("sharedstrings.xml")
        self.sheet = lower.startswith("xl/worksheets/") and lower.endswith(".xml")
        self.name, self.max_strings, self.source, self.limit = name, max_strings, source, limit
        self.strings, self.tail, self.since, self.rows, self.cols, self.cells = 0, b"", 0, 0, 0, 0

    def feed(self, chunk: bytes) -> None:
        if self.shared:
            self._strings(chunk)
        elif self.sheet:
            self.cells += chunk.count(b"<c ") + chunk.count(b"<c>")
            rows = _ROW.findall(chunk)
            if rows:
                self.rows = max(self.rows, int(rows[-1]))
            for letters in set(_COL.findall(self.tail + chunk)):
                self.cols = max(self.cols, col_number(letters))
            self.tail = chunk[-16:]

    def _strings(self, chunk: bytes) -> None:
        if self.strings == 0 and not self.tail:
            _declared_strings(chunk, self.max_strings, self.source)
        window = self.tail + chunk
        self.strings += window.count(b"<si>") + window.count(b"<si ") - self.tail.count(b"<si>") - self.tail.count(b"<si ")
        if self.strings > self.max_strings:
            raise _refuse(self.source, f"holds more than {self.max_strings:,} shared strings", f"{self.max_strings:,}")
        last = len(self.tail)  # ``since`` counts up to here; the gap between two <si>/</si> tags is one string's XML
        for m in _SI.finditer(window):
            if m.end() <= len(self.tail):
                continue  # seen with the previous chunk
            self.since += max(m.start() - last, 0)
            self._check_gap()
            self.since, last = 0, m.start()
        self.since += len(window) - last
        self._check_gap()
        self.tail = chunk[-4:]

    def _check_gap(self) -> None:
        if self.since > MAX_STRING_BYTES:
            msg = (f"{self.source}: a shared string is longer than Excel's {EXCEL_MAX_CHARS:,} characters per cell "
                   "(a workbook built to exhaust memory, or not written by Excel); open it in Excel and save it "
                   "again, or export it as CSV")
            raise DataError(msg)

    def done(self) -> None:
        cells = self.rows * self.cols
        if self.sheet and cells * BYTES_PER_CELL > self.limit:
            col = "".join(_letters(self.cols))
            msg = (f"{self.source}: sheet {self.name} spans A1:{col}{self.rows} ({cells:,} cells), more than "
                   f"{self.limit // MB:,} MB to hold; delete the stray cells far from the data (Ctrl+End shows "
                   f"the last one) or export the sheet as CSV, or raise {option('input.max_unpacked_mb')}")
            raise DataError(msg)


def _letters(n: int) -> list[str]:
    out: list[str] = []
    while n:
        n, r = divmod(n - 1, 26)
        out.insert(0, chr(65 + r))
    return out


def hidden_sheets(p: Path) -> set[str]:
    """Names of the sheets a workbook marks hidden or veryHidden (empty when unknown)."""
    import html

    try:
        with zipfile.ZipFile(p) as archive, archive.open("xl/workbook.xml") as fh:
            xml = fh.read(16 * MB)
    except (zipfile.BadZipFile, KeyError, OSError, zlib.error, EOFError, NotImplementedError):
        return set()
    out = set()
    for tag in re.findall(rb"<(?:\w+:)?sheet\b[^>]*>", xml):
        state = re.search(rb'\bstate="(\w+)"', tag)
        name = re.search(rb'\bname="([^"]*)"', tag)
        if state and name and state.group(1) in (b"hidden", b"veryHidden"):
            out.add(html.unescape(name.group(1).decode("utf-8", "replace")))
    return out


def _unpack(archive: zipfile.ZipFile, info: zipfile.ZipInfo, total: int, limit: int,
            max_strings: int, source: str, cells: dict[str, int]) -> int:
    """Stream one member, counting bytes (and shared strings, or a sheet's span and cells into
    ``cells``); return the running total."""
    scan = _Scan(info.filename, max_strings, source, limit)
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _refuse(source, f"unpacks to more than {limit // MB:,} MB", f"{limit // MB:,} MB")
                scan.feed(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        msg = f"{source}: damaged workbook ({info.filename}: {exc}); open it in Excel and save it again"
        raise DataError(msg) from None
    except NotImplementedError:
        return total  # a compression method zipfile lacks: the reader decides
    scan.done()
    if scan.sheet:
        cells[info.filename] = scan.cells
    return total


def _declared_strings(head: bytes, max_strings: int, source: str) -> None:
    for m in _COUNT.finditer(head[:4096]):
        n = int(m.group(1))
        if n > max_strings:
            raise _refuse(source, f"declares {n:,} shared strings", f"{max_strings:,}")


_CELL = re.compile(rb'<c r="([A-Z]{1,3})\d+"[^>]*?(?:/>|>(.*?)</c>)', re.S)
_VALUE = re.compile(rb"<v>([^<]*)</v>")


def sheet_member(archive: zipfile.ZipFile, sheet_name: str) -> str | None:
    """The archive member holding the sheet called ``sheet_name`` (workbook.xml and its rels)."""
    import html

    try:
        book = archive.read("xl/workbook.xml")[: 16 * MB]
        rels = archive.read("xl/_rels/workbook.xml.rels")[: 16 * MB]
    except (KeyError, zipfile.BadZipFile, zlib.error, OSError):
        return None
    rid = None
    for tag in re.findall(rb"<(?:\w+:)?sheet\b[^>]*>", book):
        name = re.search(rb'\bname="([^"]*)"', tag)
        ref = re.search(rb'\br:id="([^"]*)"', tag) or re.search(rb'\b\w+:id="([^"]*)"', tag)
        if name and ref and html.unescape(name.group(1).decode("utf-8", "replace")) == sheet_name:
            rid = ref.group(1)
    for tag in re.findall(rb"<Relationship\b[^>]*>", rels):
        if rid is not None and re.search(rb'\bId="' + re.escape(rid) + rb'"', tag):
            target = re.search(rb'\bTarget="([^"]*)"', tag)
            if target:
                path = target.group(1).decode("utf-8", "replace")
                return path.lstrip("/") if path.startswith("/") else "xl/" + path
    return None


def formulas_without_values(p: Path, sheet_name: str) -> tuple[dict[int, int], int]:
    """Per column (1 = A) of one sheet: formula cells whose saved value is missing or 0 (a
    workbook written by a program that does not compute formulas: every such amount reads as 0
    or empty); and the sheet's first used column. Empty when the sheet cannot be found."""
    counts: dict[int, int] = {}
    first = 0
    try:
        with zipfile.ZipFile(p) as archive:
            member = sheet_member(archive, sheet_name)
            if member is None:
                return counts, 1
            with archive.open(member) as fh:
                tail = b""
                while chunk := fh.read(CHUNK):
                    window = tail + chunk
                    end = max(window.rfind(b"<c "), 0)  # the last cell may go on in the next chunk
                    first = _count_formulas(window[:end], counts, first)
                    tail = window[end:] if end or len(window) < 16 * CHUNK else b""  # never one huge cell
                first = _count_formulas(tail, counts, first)
    except (zipfile.BadZipFile, KeyError, zlib.error, OSError, EOFError, NotImplementedError):
        return {}, 1
    return counts, first or 1


def _count_formulas(xml: bytes, counts: dict[int, int], first: int) -> int:
    for m in _CELL.finditer(xml):
        col = col_number(m.group(1))
        first = col if not first else min(first, col)
        body = m.group(2) or b""
        if b"<f" not in body:
            continue
        value = _VALUE.search(body)
        try:
            empty = value is None or float(value.group(1)) == 0
        except ValueError:
            empty = False  # a text or error value
        if empty:
            counts[col] = counts.get(col, 0) + 1
    return first
