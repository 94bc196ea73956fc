"""Writers for assignments, summary.json and rejected rows; atomic output directories.

Files are first written under temporary names in the output directory and renamed into place
only when every file of the run has been written, so a failed run leaves the previous outputs
intact.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

from .errors import OutputError

INJECTION_START = ("=", "+", "-", "@")
ROW_FORMATS = ("csv", "json", "jsonl", "parquet", "table")


def defuse_text(df: pl.DataFrame, keep: tuple[str, ...] = ("customer_id",)) -> pl.DataFrame:
    """Prefix ``'`` to text cells starting with = + - @ (CWE-1236), except the ``keep`` columns."""
    exprs = []
    for name, dtype in df.schema.items():
        if dtype == pl.String and name not in keep:
            c = pl.col(name)
            risky = pl.any_horizontal([c.str.starts_with(ch) for ch in INJECTION_START])
            exprs.append(pl.when(risky).then(pl.lit("'") + c).otherwise(c).alias(name))
    return df.with_columns(exprs) if exprs else df


def to_jsonable(obj):
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


def json_bytes(doc: dict) -> bytes:
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
        msg = f"--format {fmt}: choose one of {', '.join(ROW_FORMATS)}"
        raise OutputError(msg)
    return buf.getvalue()


class StagedDir:
    """Collect a run's files under temporary names; ``commit`` renames them all into place."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._staged: list[tuple[Path, Path]] = []
        self._remove: list[Path] = []
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise OutputError(f"cannot create output folder {directory}: a file has that name; choose another -o") from None
        except OSError as exc:
            msg = f"cannot create output folder {directory}: {exc.strerror}; choose another -o or fix its permissions"
            raise OutputError(msg) from None
        if not os.access(self.directory, os.W_OK):
            raise OutputError(f"cannot write in output folder {directory}; choose another -o or fix its permissions")

    def _tmp(self, name: str) -> Path:
        return self.directory / f".{name}.{os.getpid()}.tmp"

    def write(self, name: str, writer: Callable[[Path], None]) -> None:
        tmp = self._tmp(name)
        try:
            writer(tmp)
        except OSError as exc:
            self.discard()
            msg = f"cannot write {self.directory / name}: {exc.strerror}"
            raise OutputError(msg) from None
        except BaseException:
            self.discard()
            raise
        self._staged.append((tmp, self.directory / name))

    def write_bytes(self, name: str, data: bytes) -> None:
        self.write(name, lambda p: p.write_bytes(data))

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
        done = []
        for tmp, final in self._staged:
            try:
                os.replace(tmp, final)
            except PermissionError:
                self.discard()
                msg = (f"cannot replace {final}: it is open in another program (Excel?) or read-only; "
                       "close it and run again")
                raise OutputError(msg) from None
            except OSError as exc:
                self.discard()
                raise OutputError(f"cannot write {final}: {exc.strerror}") from None
            done.append(final)
        for stale in self._remove:
            if stale.exists():
                stale.unlink()
        self._staged = []
        return done

    def discard(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []

