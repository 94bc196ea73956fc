"""Turn an odd but legitimate input into bytes the CSV reader can scan.

- compressed exports (.gz, .zst, .xz, .bz2, recognised by their magic bytes) are decompressed,
  within the unpacked-size limit;
- a FIFO or process substitution (``<(zcat orders.csv.gz)``) is read to its end (its size on disk
  is 0, so it must not be judged by ``stat``);
- UTF-16 text (Excel's "Unicode text": a BOM, tab-separated) is transcoded to UTF-8;
- CR-only line endings (old Mac exports) become LF;
- a file mixing UTF-8 lines with lines in another encoding is decoded line by line, and the
  counts are reported, so no row turns into mojibake silently.

Line numbers are preserved by every step, so messages still name the right rows.
"""

from __future__ import annotations

import bz2
import codecs
import hashlib
import lzma
import re
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from segkit.errors import DataError, IOFailure, UsageError, option
from segkit.ingest.columns import _ALIAS_INDEX, normalize

if TYPE_CHECKING:
    from segkit.config import Config

MB = 1 << 20
HEAD = 64 * 1024
MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2"}
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class Limits:
    """How far a reader may unpack an input (a decompression bomb stops here)."""

    unpacked_bytes: int = 2048 * MB
    shared_strings: int = 20_000_000


def limits_for(cfg: Config) -> Limits:
    """The limits a Config sets (``input.max_unpacked_mb``, ``input.max_shared_strings``)."""
    return Limits(int(cfg.max_unpacked_mb * MB), int(cfg.max_shared_strings))


@dataclass
class Prepared:
    """Bytes for the CSV reader, and what was done to get them."""

    data: bytes
    sha256: str  # of the input as given (the compressed file, the stream)
    size: int
    encoding: str  # what to tell the decoder ("" = automatic)
    notes: list[str] = field(default_factory=list)
    source_encoding: str | None = None  # shown instead of the decoder's pick (e.g. utf-16)


def _compression(head: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)


def _is_utf16_name(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf16", "utf16le", "utf16be")


def needs_preparing(p: Path, head: bytes, encoding: str) -> bool:
    """True when ``p`` is not a regular file, is compressed, UTF-16, or has CR-only line ends."""
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode):
        return True
    return (_compression(head) is not None or head.startswith(UTF16_BOMS) or _is_utf16_name(encoding)
            or _cr_only(head))


def _cr_only(head: bytes) -> bool:
    return b"\r" in head and b"\n" not in head


def read_head(p: Path) -> bytes:
    try:
        mode = p.stat().st_mode
        if not stat.S_ISREG(mode):
            return b""  # a stream: reading its head would consume it
        with p.open("rb") as fh:
            return fh.read(HEAD)
    except OSError as exc:
        raise IOFailure(f"{p}: cannot read ({exc.strerror}); check the file's permissions") from None


def prepare_path(p: Path, encoding: str, limits: Limits) -> Prepared:
    """Read ``p`` whole (a stream, a compressed or UTF-16 or CR-only file) and normalise it."""
    try:
        with p.open("rb") as fh:
            data = _read_limited(fh, limits.unpacked_bytes, str(p))
    except OSError as exc:
        raise IOFailure(f"{p}: read failed ({exc.strerror})") from None
    if not data:
        raise DataError(f"{p}: no data (the file or stream is empty); export the orders again")
    return prepare_bytes(data, str(p), encoding, limits)


def prepare_bytes(data: bytes, source: str, encoding: str, limits: Limits) -> Prepared:
    sha, size = hashlib.sha256(data).hexdigest(), len(data)
    notes: list[str] = []
    kind = _compression(data[:8])
    if kind:
        data = decompress(data, kind, source, limits)
        notes.append(f"decompressed {source} ({kind}, {size:,} -> {len(data):,} bytes)")
        if data.startswith((b"PK\x03\x04", b"PAR1")):
            raise DataError(f"{source}: a compressed Excel or Parquet file; decompress it first and give that file")
    shown = None
    if data.startswith(UTF16_BOMS) or _is_utf16_name(encoding):
        data, shown = _from_utf16(data, source, encoding), "utf-16"
        encoding = ""
    if _cr_only(data[:HEAD]):
        data = data.replace(b"\r", b"\n")
        notes.append(f"{source}: old Mac line endings (CR only) read as line breaks")
    return Prepared(data, sha, size, encoding, notes, shown)


def _read_limited(fh: BinaryIO, limit: int, source: str) -> bytes:
    chunks, total = [], 0
    while chunk := fh.read(16 * MB):
        total += len(chunk)
        if total > limit:
            raise DataError(too_big(source, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def too_big(source: str, limit: int) -> str:
    return (f"{source}: unpacks to more than {limit // MB:,} MB (a decompression bomb, or a very large export); "
            f"raise the limit with {option('input.max_unpacked_mb')} if you trust the file, or convert it to Parquet")


def decompress(data: bytes, kind: str, source: str, limits: Limits) -> bytes:
    """Decompress in steps so that no more than ``limits.unpacked_bytes`` are ever produced."""
    limit = limits.unpacked_bytes
    try:
        if kind == "zstd":
            return _zstd(data, source, limit)
        if kind == "gzip":
            return _gzip(data, source, limit)
        return _streams(data, kind, source, limit)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
        raise DataError(f"{source}: corrupt {kind} data ({exc}); copy or export the file again") from None


def _streams(data: bytes, kind: str, source: str, limit: int) -> bytes:
    """xz or bzip2: every stream, one after the other (``cat a.bz2 b.bz2``, pbzip2 and pixz write
    several); NUL bytes between xz streams are stream padding."""
    out = bytearray()
    pending = data
    while pending:
        d = lzma.LZMADecompressor() if kind == "xz" else bz2.BZ2Decompressor()
        out += d.decompress(pending, max_length=limit + 1 - len(out))
        while len(out) <= limit and not d.eof and not d.needs_input:
            out += d.decompress(b"", max_length=limit + 1 - len(out))
        if len(out) > limit:
            raise DataError(too_big(source, limit))
        if not d.eof:
            raise DataError(f"{source}: the {kind} data ends early (truncated copy?); copy or export the file again")
        pending = d.unused_data.lstrip(b"\x00") if kind == "xz" else d.unused_data
    return bytes(out)


def _gzip(data: bytes, source: str, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=47)
    out = bytearray()
    pending = data
    while pending:
        out += d.decompress(pending, limit + 1 - len(out))
        if len(out) > limit:
            raise DataError(too_big(source, limit))
        if d.unconsumed_tail:
            pending = d.unconsumed_tail
        elif d.eof and d.unused_data.strip(b"\x00"):  # concatenated gzip members
            pending, d = d.unused_data, zlib.decompressobj(wbits=47)
        else:
            pending = b""
    if not d.eof:
        raise DataError(f"{source}: the gzip data ends early (truncated copy?); copy or export the file again")
    return bytes(out)


def _zstd(data: bytes, source: str, limit: int) -> bytes:
    import zstandard

    out = bytearray()
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        while chunk := reader.read(16 * MB):
            out += chunk
            if len(out) > limit:
                raise DataError(too_big(source, limit))
    except zstandard.ZstdError as exc:
        raise DataError(f"{source}: corrupt zstd data ({exc}); copy or export the file again") from None
    return bytes(out)


def _from_utf16(data: bytes, source: str, encoding: str) -> bytes:
    codec = "utf-16" if data.startswith(UTF16_BOMS) else (encoding or "utf-16")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count("\n".encode(codec)[-2:]) + 1
        raise DataError(f"{source}: line {line} is not valid UTF-16; export it again as UTF-16 or UTF-8 text") from None
    except LookupError:
        raise UsageError(f"{option('input.encoding')} {encoding}: unknown encoding; try utf-16 or utf-8") from None
    return text.lstrip("\ufeff").encode("utf-8")


# ------------------------------------------------------------------------------ mixed encodings

def decode_lines(source: str, data: bytes, fallback: str) -> tuple[str, list[str]] | None:
    """Decode a file that is not valid UTF-8 as a whole.

    When some non-ASCII lines are valid UTF-8 and others are not, the file mixes encodings:
    each line is decoded in its own (UTF-8, else ``fallback``) and a note gives the counts and the
    first lines of each kind. Returns None when the file is simply in ``fallback`` (no UTF-8 lines).
    """
    lines = data.split(b"\n")
    utf8_rows: list[int] = []
    other_rows: list[int] = []
    out = []
    for i, line in enumerate(lines, start=1):
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        try:
            out.append(line.decode("utf-8-sig" if i == 1 else "utf-8"))
            utf8_rows.append(i)
        except UnicodeDecodeError:
            try:
                out.append(line.decode(fallback))
            except UnicodeDecodeError:
                msg = (f"{source}: line {i} is neither UTF-8 nor {fallback} text; "
                       f"export the file as UTF-8 CSV or give its encoding with {option('input.encoding')}")
                raise DataError(msg) from None
            other_rows.append(i)
    if not utf8_rows or not other_rows:
        return None
    note = (f"warning: {source} mixes encodings: {len(utf8_rows):,} line(s) are UTF-8 (e.g. line "
            f"{', '.join(map(str, utf8_rows[:3]))}) and {len(other_rows):,} are {fallback} (e.g. line "
            f"{', '.join(map(str, other_rows[:3]))}); each line was decoded in its own encoding - check those rows")
    return "\n".join(out), [note]


# ------------------------------------------------------------------------------ duplicate headers

_POLARS_DUP = re.compile(r"^(.*)_duplicated_\d+$")


def original_headers(headers: list[str]) -> list[str]:
    """The header texts before the CSV reader made them unique (``amount_duplicated_0`` -> ``amount``)."""
    present = set(headers)
    out = []
    for h in headers:
        m = _POLARS_DUP.match(h)
        out.append(m.group(1) if m and m.group(1) in present else h)
    return out


def check_duplicate_headers(texts: list[str], names: list[str], mapping: dict[str, str], source: str) -> None:
    """Refuse two columns with one header text when that text names a column segkit would use.

    ``texts`` are the header cells as in the file, ``names`` the unique names the reader gave them.
    ``--map role=<one of the names>`` picks one and the run goes on.
    """
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        positions.setdefault(t, []).append(i)
    for text, where in positions.items():
        role = _ALIAS_INDEX.get(normalize(text))
        if len(where) < 2 or role is None or role in mapping:
            continue  # not a column segkit would use, or --map already says which column plays it
        choices = " or ".join(f"{option('columns.' + role)}=\"{names[i]}\" (column {i + 1})" for i in where[:2])
        msg = (f"{source}: columns {where[0] + 1} and {where[1] + 1} are both named '{text}'; "
               f"rename one in the file, or pick one with {choices}")
        raise DataError(msg)


__all__ = ["Limits", "Prepared", "check_duplicate_headers", "decode_lines", "needs_preparing",
           "original_headers", "prepare_bytes", "prepare_path", "read_head", "too_big"]
