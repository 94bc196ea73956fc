"""Refuse an .xlsx/.xlsm that would unpack beyond the limits before the Excel reader opens it.

A workbook is a zip archive: a few kilobytes can declare (or really hold) gigabytes of XML, and
the reader would then run out of memory. Checked here, in one streaming pass with bounded memory:
the sizes the archive declares, the bytes it really unpacks to, and the number of shared strings
(declared in ``sharedStrings.xml`` and counted).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from segkit.errors import DataError, option
from segkit.ingest.sources import MB, Limits

_COUNT = re.compile(rb'uniqueCount="(\d+)"')
CHUNK = 1 << 20


def _refuse(source: str, what: str, limit_text: str) -> DataError:
    return DataError(f"{source}: {what}, above the limit of {limit_text} (a decompression bomb, or a very large "
                     f"workbook); raise it with {option('input.max_unpacked_mb')} if you trust the file, or export it as CSV/Parquet")


def check_workbook(p: Path, limits: Limits) -> None:
    """Raise DataError when the workbook at ``p`` exceeds ``limits``; other zip damage is left to the reader."""
    source = str(p)
    try:
        archive = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (.xls) or unreadable: the reader reports it
    with archive:
        infos = archive.infolist()
        declared = sum(i.file_size for i in infos)
        limit = limits.unpacked_bytes
        if declared > limit:
            raise _refuse(source, f"declares {declared / MB:,.0f} MB unpacked", f"{limit // MB:,} MB")
        total = 0
        for info in infos:
            total = _unpack(archive, info, total, limit, limits.shared_strings, source)


def _unpack(archive: zipfile.ZipFile, info: zipfile.ZipInfo, total: int, limit: int,
            max_strings: int, source: str) -> int:
    """Stream one member, counting bytes (and shared strings); return the running total."""
    shared = info.filename.lower().endswith("sharedstrings.xml")
    strings, tail = 0, b""
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _refuse(source, f"unpacks to more than {limit // MB:,} MB", f"{limit // MB:,} MB")
                if not shared:
                    continue
                if strings == 0 and not tail:
                    _declared_strings(chunk, max_strings, source)
                window = tail + chunk
                strings += window.count(b"<si>") + window.count(b"<si ") - tail.count(b"<si>") - tail.count(b"<si ")
                tail = chunk[-3:]
                if strings > max_strings:
                    raise _refuse(source, f"holds more than {max_strings:,} shared strings", f"{max_strings:,}")
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        msg = f"{source}: damaged workbook ({info.filename}: {exc}); open it in Excel and save it again"
        raise DataError(msg) from None
    except NotImplementedError:
        return total  # a compression method zipfile lacks: the reader decides
    return total


def _declared_strings(head: bytes, max_strings: int, source: str) -> None:
    for m in _COUNT.finditer(head[:4096]):
        n = int(m.group(1))
        if n > max_strings:
            raise _refuse(source, f"declares {n:,} shared strings", f"{max_strings:,}")
