"""A wide .xlsx that unpacks far beyond its size: ROWS order lines of customer_id, order_date and
amount followed by WIDTH - 3 filler columns (issue 25's workbook bomb: 400,000 rows x 200
columns, about 3 MB that unpack to about 1.2 GB of sheet XML).

    python benchmarks/wide_workbook.py OUT.xlsx [ROWS] [WIDTH] [refs]

(``refs``: every filler cell carries its reference, r="D2", as Excel writes it.)

The sheet XML is streamed into the archive, so writing takes little memory at any size.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="orders" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_BOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
DATES = 360  # distinct order dates, held as shared strings (2023-01-01 + i days)
CUSTOMERS = 5_000


def _shared_strings(width: int) -> tuple[bytes, int]:
    """Shared strings: the header cells, then the dates; and the index of the first date."""
    import datetime as dt

    headers = ["customer_id", "order_date", "amount", *[f"extra_{i}" for i in range(4, width + 1)]]
    day0 = dt.date(2023, 1, 1)
    dates = [(day0 + dt.timedelta(days=i)).isoformat() for i in range(DATES)]
    items = "".join(f"<si><t>{s}</t></si>" for s in [*headers, *dates])
    n = len(headers) + len(dates)
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{n}" '
           f'uniqueCount="{n}">{items}</sst>')
    return xml.encode(), len(headers)


def _rows(rows: int, width: int, first_date: int, refs: bool = False) -> Iterator[bytes]:
    """Yield the sheet XML in blocks of rows (filler cells hold the small number 7; with ``refs``
    each filler cell carries its reference, as Excel writes them)."""
    filler = "<c><v>7</v></c>" * (width - 3)
    if refs:
        filler = "".join(f'<c r="{_letters(j)}%(r)d"><v>7</v></c>' for j in range(4, width + 1))
    header = "".join(f'<c t="s"><v>{i}</v></c>' for i in range(width))
    yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet '
           f'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
           f'<row r="1">{header}</row>').encode()
    block: list[str] = []
    for r in range(2, rows + 2):
        customer = 100_000 + (r * 7919) % CUSTOMERS
        day = first_date + (r * 31) % DATES
        a, b, c = (f' r="{col}{r}"' if refs else "" for col in "ABC")
        block.append(f'<row r="{r}"><c{a}><v>{customer}</v></c><c{b} t="s"><v>{day}</v></c>'
                     f'<c{c}><v>{10 + r % 490}.5</v></c>{filler % {"r": r} if refs else filler}</row>')
        if len(block) == 2000:
            yield "".join(block).encode()
            block = []
    yield ("".join(block) + "</sheetData></worksheet>").encode()


def _letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def write(path: Path, rows: int = 400_000, width: int = 200, refs: bool = False) -> Path:
    """Write the workbook to ``path`` and return it."""
    strings, first_date = _shared_strings(width)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _BOOK_RELS)
        z.writestr("xl/sharedStrings.xml", strings)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            for chunk in _rows(rows, width, first_date, refs):
                sheet.write(chunk)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1])
    n_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000
    n_width = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    write(out, n_rows, n_width, refs=len(sys.argv) > 4 and sys.argv[4] == "refs")
    print(f"{out}: {out.stat().st_size:,} bytes")
