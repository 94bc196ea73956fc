"""Read only some columns of a large .xlsx sheet.

The Excel reader (calamine) holds every cell of a sheet's range at once, about 70 bytes each at
its peak, whichever columns are asked for: a sheet of 400,000 rows x 200 columns needs more than
5 GB. A sheet holding more than ``WIDE_CELLS`` cells is therefore read in two steps: its first
``HEAD_ROWS`` rows (to find the header row and the column mapping, as for any sheet), then a copy
of the workbook whose sheet keeps only the columns the run needs, streamed from the archive row by
row. Cell values, types and styles are copied as they are, so each kept cell reads as it would in
the whole sheet.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

WIDE_CELLS = 4_000_000  # a sheet with more cells than this is read column by column (about 300 MB)
HEAD_ROWS = 200
CHUNK = 4 << 20

_ROW_OPEN = re.compile(rb"<row\b([^>]*?)(/?)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_CELL_SPLIT = re.compile(rb"<c(?=[\s>/])")
_CELL_REF = re.compile(rb'\sr="([A-Z]{1,3})\d*"')
_OPEN = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet '
         b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
_CLOSE = b"</sheetData></worksheet>"


class NotPlain(Exception):
    """The sheet's XML is not in the plain form this reader copies (e.g. prefixed tags)."""


def col_letters(n: int) -> bytes:
    """1 -> A, 27 -> AA."""
    out = b""
    while n:
        n, r = divmod(n - 1, 26)
        out = bytes([65 + r]) + out
    return out


def col_number(letters: bytes) -> int:
    """A column's number from its letters (A = 1, XFD = 16384)."""
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def sheet_rows(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Each ``<row>`` of a sheet's XML that holds cells: (its 1-based number, the XML after its
    opening tag, without ``</row>``)."""
    buf, number, started = b"", 0, False
    while chunk := fh.read(CHUNK):
        buf += chunk
        if not started:
            at = buf.find(b"<sheetData")
            if at < 0:
                if len(buf) > CHUNK:
                    raise NotPlain
                continue
            buf, started = buf[at:], True
        end = buf.rfind(b"</row>")
        if end < 0:
            continue
        for segment in buf[:end].split(b"</row>"):
            for m in _ROW_OPEN.finditer(segment):  # self-closing rows first, then the open one
                ref = _ROW_NUMBER.search(m.group(1))
                number = int(ref.group(1)) if ref else number + 1
                if not m.group(2):
                    yield number, segment[m.end():]
        buf = buf[end + 6:]
    if not started:
        raise NotPlain


def row_cells(body: bytes, wanted: dict[int, int] | None, number: int = 0) -> Iterator[tuple[int, bytes]]:
    """(1-based column, the cell's XML after ``<c``) for the cells of one row (row ``number``)
    whose column is in ``wanted`` (every cell when None)."""
    if wanted and number and body.count(b'<c r="') == body.count(b"<c ") + body.count(b"<c>"):
        yield from _by_reference(body, wanted, number)  # every cell starts with its reference
        return
    pieces = _CELL_SPLIT.split(body)
    if b' r="' not in body:  # cells by position
        for col in (wanted or range(1, len(pieces))):
            if col < len(pieces):
                yield col, pieces[col]
        return
    col = 0
    for piece in pieces[1:]:
        tag = piece[: piece.find(b">") + 1] or piece
        ref = _CELL_REF.search(tag)
        col = col_number(ref.group(1)) if ref else col + 1
        if wanted is None or col in wanted:
            yield col, piece


def _by_reference(body: bytes, wanted: dict[int, int], number: int) -> Iterator[tuple[int, bytes]]:
    """The wanted cells of a row whose cells all start with ``r="<column><number>"``, found by
    their reference (no look at the other cells)."""
    for col in wanted:
        at = body.find(b'<c r="%s%d"' % (col_letters(col), number))
        if at < 0:
            continue
        tag_end = body.find(b">", at)
        end = tag_end + 1 if body[tag_end - 1:tag_end] == b"/" else body.find(b"</c>", tag_end) + 4
        yield col, body[at + 2:end]


def rewrite_row(number: int, body: bytes, wanted: dict[int, int] | None, shift: int = 0) -> bytes:
    """Row ``number`` with only the ``wanted`` columns, each moved to ``wanted[col]`` (every cell,
    ``shift`` columns to the right, when None); b"" when no cell is left."""
    cells = [b'<c r="%s%d"' % (col_letters(wanted[col] if wanted else col + shift), number)
             + _CELL_REF.sub(b"", piece, count=1) for col, piece in row_cells(body, wanted, number)]
    return b'<row r="%d">' % number + b"".join(cells) + b"</row>" if cells else b""


def head_rows(fh: IO[bytes]) -> tuple[int, list[bytes]]:
    """The sheet's first ``HEAD_ROWS`` rows holding cells, moved one row down and one column right
    of a cell at A1 (so the reader's range starts there, whatever the sheet's first used cell):
    row i + 1 and column j + 1 of what is read are the first row's number + i and column j.
    Returns that first row's number and the rows."""
    out, first = [b'<row r="1"><c r="A1"><v>0</v></c></row>'], 0
    for number, body in sheet_rows(fh):
        first = first or number
        row = rewrite_row(number - first + 2, body, None, shift=1)
        if row:
            out.append(row)
        if len(out) > HEAD_ROWS:
            break
    return first or 1, out


def narrow_rows(fh: IO[bytes], kept: list[int], header_row: int) -> Iterator[bytes]:
    """The rows below ``header_row`` with only the ``kept`` columns (renumbered A, B, ...), after a
    header row of one placeholder cell per kept column (so the range starts at the header, in A)."""
    wanted = {col: i + 1 for i, col in enumerate(kept)}
    yield (b'<row r="%d">' % header_row
           + b"".join(b'<c r="%s%d"><v>0</v></c>' % (col_letters(i + 1), header_row) for i in range(len(kept)))
           + b"</row>")
    for number, body in sheet_rows(fh):
        if number > header_row:
            row = rewrite_row(number, body, wanted)
            if row:
                yield row


def write_copy(src: Path, member: str, dest: Path, rows: Iterable[bytes]) -> None:
    """A copy of workbook ``src`` whose sheet ``member`` holds ``rows`` (every other sheet empty)."""
    with zipfile.ZipFile(src) as book, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as out:
        for info in book.infolist():
            name = info.filename
            if name == member:
                with out.open(name, "w", force_zip64=True) as fh:
                    fh.write(_OPEN)
                    for row in rows:
                        fh.write(row)
                    fh.write(_CLOSE)
            elif name.lower().startswith("xl/worksheets/") and name.lower().endswith(".xml"):
                out.writestr(name, _OPEN + _CLOSE)
            else:
                with book.open(info) as fin, out.open(name, "w", force_zip64=True) as fout:
                    shutil.copyfileobj(fin, fout, CHUNK)
