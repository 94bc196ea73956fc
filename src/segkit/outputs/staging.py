"""Writers for assignments, summary.json and rejected rows; the run's outputs as one set.

Every file of a run is first written under a temporary name beside its final path
(``.segkit-tmp-<pid>-<token>-<name>``) and renamed into place only when every file has been
written, so a run that fails before that point leaves the previous outputs untouched.
``summary.json`` is renamed last and records the sha256 of each other output under
``outputs``: a reader can tell that a set is one run's (see ``verify_set``). Temporary files
are removed when the run fails, on SIGTERM/SIGHUP/SIGINT, and (when a run was killed outright) by the
next run writing to the same folder.
"""

from __future__ import annotations

from typing import Any

import hashlib
import io
import json
import math
import os
import re
import secrets
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from segkit.errors import DataError, OutputError, option
from types import FrameType

INJECTION_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV injection: TAB and CR too
ROW_FORMATS = ("csv", "json", "jsonl", "parquet", "table")
TMP_PREFIX = ".segkit-tmp-"
STALE_AFTER_S = 24 * 3600  # a temp file of a live process is stale only after this long
_TMP_NAME = re.compile(r"^\.segkit-tmp-(\d+)-[0-9a-f]+-")
_RISKY = "^'*[" + "".join(re.escape(c) if c.isprintable() else f"\\x{ord(c):02x}" for c in INJECTION_START) + "]"
# (a value already starting with quotes before such a character gets one more; --previous undoes it)
_ACTIVE: set[Path] = set()  # temp files of this process, removed on SIGTERM/SIGHUP/SIGINT


def defuse_text(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text cells starting with = + - @, TAB or CR (CWE-1236).

    A value that already starts with quotes before such a character gets one more, so
    ``undefuse`` restores every value exactly.
    """
    exprs = []
    for name, dtype in df.schema.items():
        if dtype == pl.String:
            c = pl.col(name)
            exprs.append(pl.when(c.str.contains(_RISKY)).then(pl.lit("'") + c).otherwise(c).alias(name))
    return df.with_columns(exprs) if exprs else df


def undefuse(expr: pl.Expr) -> pl.Expr:
    """Inverse of ``defuse_text`` for one column."""
    return pl.when(expr.str.contains("^'" + _RISKY[1:])).then(expr.str.slice(1)).otherwise(expr)


def to_jsonable(obj: Any) -> Any:
    """Replace NaN/inf by None and dates by ISO strings, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return to_jsonable(obj.item())
    return obj


def json_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(to_jsonable(doc), ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode()


def rows_bytes(df: pl.DataFrame, fmt: str) -> bytes:
    """One writer for every row format of the assignments (csv, json, jsonl, parquet)."""
    buf = io.BytesIO()
    if fmt == "csv":
        defuse_text(df).write_csv(buf)
    elif fmt == "json":
        buf.write(json.dumps(to_jsonable(df.to_dicts()), ensure_ascii=False).encode() + b"\n")
    elif fmt == "jsonl":
        df.write_ndjson(buf)
    elif fmt == "parquet":
        df.write_parquet(buf)
    else:
        msg = f"{option('format')} {fmt}: choose one of {', '.join(ROW_FORMATS)}"
        raise OutputError(msg)
    return buf.getvalue()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------- temporary files

def temp_path(final: Path) -> Path:
    """A recognisable temporary name beside ``final`` (same folder, so the rename is atomic)."""
    return final.with_name(f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{final.name}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def clean_stale(directory: Path, now: float | None = None) -> list[Path]:
    """Remove temp files left in ``directory`` by killed runs; return what was removed.

    A temp file is stale when the process that wrote it is gone, or when it is older than a day.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            if old or not _pid_alive(int(m.group(1))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; carries the exit code (128 + signal number)."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.exit_code = 128 + signum


def _remove_active() -> None:
    for p in list(_ACTIVE):
        try:
            os.unlink(p)
        except OSError:
            pass
        _ACTIVE.discard(p)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    _remove_active()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def install_signal_cleanup() -> None:
    """On SIGTERM/SIGHUP/SIGINT remove this process's temp files, then stop (exit 143/129/130).

    SIGHUP (the terminal closed, an ssh session dropped) is handled as SIGTERM; a run under
    ``nohup`` ignores it and goes on.
    """
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    for sig in (signal.SIGTERM, signal.SIGINT, *([hangup] if hangup is not None else [])):
        if sig == hangup and signal.getsignal(sig) == signal.SIG_IGN:  # nohup
            continue
        try:
            signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread
            return


# ------------------------------------------------------------------------------ the set

class StagedDir:
    """Collect a run's files under temporary names; ``commit`` renames them all into place.

    Files are renamed in the order they were staged; stage ``summary.json`` last. ``hashes``
    gives the sha256 of each file staged so far (for the summary's ``outputs``).
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._staged: list[tuple[Path, Path]] = []
        self._hashes: dict[str, str] = {}
        self._remove: list[Path] = []
        self._streams: list[tuple[Path, bytes]] = []
        _make_dir(self.directory)
        clean_stale(self.directory)

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()  # nothing left to discard after a commit

    def write(self, name: str, writer: Callable[[Path], None], directory: Path | None = None) -> None:
        final = (directory or self.directory) / name
        tmp = temp_path(final)
        _ACTIVE.add(tmp)
        self._staged.append((tmp, final))
        try:
            writer(tmp)
            self._hashes[name] = file_sha256(tmp)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {final}: {exc.strerror}; nothing was replaced") from None
        except BaseException:
            self.discard()
            raise

    def write_bytes(self, name: str, data: bytes) -> None:
        self.write(name, lambda p: _write_synced(p, data))

    def write_elsewhere(self, final: Path, data: bytes) -> None:
        """A file outside the folder (``--summary-json PATH``), committed with the set.

        A link is written through (its target is replaced, never the link); a pipe, a character
        device or a shell's descriptor (``/dev/stdout``, ``>(jq .)``) is written in place after
        the set is committed (see ``resolve_target``).
        """
        target, stream = resolve_target(Path(final))
        if stream:
            self._streams.append((target, data))
            return
        _make_dir(target.parent)
        clean_stale(target.parent)
        self.write(target.name, lambda p: _write_synced(p, data), directory=target.parent)
        self._hashes.pop(target.name, None)

    def hashes(self) -> dict[str, str]:
        return dict(self._hashes)

    def remove_on_commit(self, name: str) -> None:
        """A file of an earlier run that this run does not produce (e.g. rejected_rows.csv)."""
        self._remove.append(self.directory / name)

    def _preflight(self) -> None:
        """Check every target can be replaced before renaming any, so a run is all or nothing."""
        for _, final in self._staged:
            if final.is_dir():
                self.discard()
                raise OutputError(f"cannot write {final}: a folder has that name; move it or choose another -o")
            if final.exists():
                try:
                    with final.open("ab"):
                        pass
                except PermissionError:
                    self.discard()
                    msg = (f"cannot replace {final}: it is open in another program (Excel?) or read-only; "
                           "close it and run again")
                    raise OutputError(msg) from None

    def commit(self) -> list[Path]:
        self._preflight()
        for stale in self._remove:  # before the renames: summary.json, last, then describes the set
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:
                self.discard()
                raise OutputError(f"cannot remove {stale} of an earlier run: {exc.strerror}") from None
        done = []
        for tmp, final in self._staged:
            try:
                os.replace(tmp, final)
            except OSError as exc:
                self.discard()
                why = ("it is open in another program (Excel?) or read-only; close it and run again"
                       if isinstance(exc, PermissionError) else exc.strerror)
                raise OutputError(f"cannot replace {final}: {why}") from None
            _ACTIVE.discard(tmp)
            done.append(final)
        self._staged = []
        for target, data in self._streams:
            write_stream(target, data)
        self._streams = []
        return done

    def discard(self) -> None:
        for tmp, _ in self._staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            _ACTIVE.discard(tmp)
        self._staged = []


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot create output folder {directory}: a file has that name; choose another -o") from None
    except OSError as exc:
        msg = f"cannot create output folder {directory}: {exc.strerror}; choose another -o or fix its permissions"
        raise OutputError(msg) from None
    if not os.access(directory, os.W_OK):
        raise OutputError(f"cannot write in output folder {directory}; choose another -o or fix its permissions")


_FD_LINK = re.compile(r"^/(proc/(self|thread-self|\d+)|dev)/fd/\d+$")


def _names_a_descriptor(path: Path) -> bool:
    """``path`` or a link it goes through is an open descriptor (/dev/stdout, /dev/fd/63)."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on nested links
        current = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        if _FD_LINK.match(current):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    return False


def resolve_target(path: Path) -> tuple[Path, bool]:
    """Where a file the user named is written: ``(path, True)`` for a stream (a pipe, a character
    device such as /dev/null or a terminal, a descriptor such as /dev/stdout), written in place;
    otherwise ``(file, False)``: the regular file the path names through its links (created when
    missing), replaced atomically so that the link itself stays a link. A block device, a socket
    or a folder is refused (exit 73)."""
    if _names_a_descriptor(path):
        return path, True
    try:
        mode = os.stat(path).st_mode  # follows links
    except FileNotFoundError:
        return Path(os.path.realpath(path)), False  # a new file, or where a dangling link points
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}; give another path") from None
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return path, True
    if stat.S_ISREG(mode):
        return Path(os.path.realpath(path)), False
    kind = "a folder" if stat.S_ISDIR(mode) else "a block device" if stat.S_ISBLK(mode) else "not a regular file"
    raise OutputError(f"cannot write {path}: it is {kind}; give the path of a file")


def write_stream(path: Path, data: bytes) -> None:
    """Write ``data`` to a pipe or device as a shell redirection would (no temp file, no rename)."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_file(path: Path, data: bytes) -> None:
    """One file outside an output set (``--summary-json`` with ``-o -``, ``backtest --json``),
    written atomically, through links, or as a stream (see ``resolve_target``)."""
    target, stream = resolve_target(Path(path))
    if stream:
        write_stream(target, data)
        return
    with StagedDir(target.parent) as staged:
        staged.write_elsewhere(target, data)
        staged.commit()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# ------------------------------------------------------------------------------ reading back

MAX_SUMMARY_BYTES = 256 << 20


def verify_set(directory: Path) -> list[str]:
    """Names of outputs in ``directory`` whose sha256 differs from its summary.json (empty: one run's set)."""
    summary = Path(directory) / "summary.json"
    try:
        with open(summary, "rb") as fh:
            data = fh.read(MAX_SUMMARY_BYTES + 1)  # /dev/zero or a huge file is not a summary
        if len(data) > MAX_SUMMARY_BYTES:
            raise ValueError("too large")
        recorded = json.loads(data.decode("utf-8"))["outputs"]
        if not isinstance(recorded, dict):
            raise TypeError("outputs is not a table")
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise DataError(f"{summary}: missing or without an 'outputs' table; run segkit again") from None
    bad = []
    for name, sha in recorded.items():
        p = Path(directory) / name
        if not p.is_file() or file_sha256(p) != sha:
            bad.append(name)
    return bad
