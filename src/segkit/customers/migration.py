"""Tier migration against an earlier run's assignments.csv.

``tier_change`` is up / down / same by the position of the tiers in the current config (the first
tier is the highest), ``new`` for customers absent from the previous run. Customers of the previous
run absent from this one are ``lost``. The matrix has the previous tiers (plus ``new``) as rows
and the current tiers (plus ``lost``) as columns, with customer counts and spend: current annual
spend, and for the ``lost`` column the annual spend they had in the previous run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from segkit.customers.sums import group_fsums
from segkit.ingest.clean import MICRO
from segkit.errors import DataError, InputNotFoundError, UsageError, option
from segkit.outputs.staging import undefuse

if TYPE_CHECKING:
    from segkit.result import Segmentation

PLACEHOLDER = re.compile(r"\{(as_of|date)\}")


@dataclass(frozen=True)
class Migration:
    previous: str
    customers: pl.DataFrame
    changes: dict[str, Any]
    lost: pl.DataFrame
    row_labels: list[str]
    column_labels: list[str]
    counts: list[list[int]]
    spend: list[list[float]]
    unknown_previous_tiers: list[str] = field(default_factory=list)
    movers: pl.DataFrame | None = None  # who moved up, down, was new or lost, by spend change
    tier_bounds: dict[str, Any] | None = None  # {"previous", "current", "changed"} when the earlier bounds are known
    at_previous_bounds: dict[str, Any] | None = None  # the moves with this run re-tiered at the earlier bounds

    def summary(self) -> dict[str, Any]:
        return {
            "previous": self.previous,
            "changes": self.changes,
            "lost_customers": self.lost.height,
            "lost": self.lost.to_dicts(),
            "row_labels": self.row_labels,
            "column_labels": self.column_labels,
            "matrix": {"tiers": self.column_labels[:-1], "counts": self.counts, "spend": self.spend},
            "unknown_previous_tiers": self.unknown_previous_tiers,
            "movers": self._mover_counts(),
            "tier_bounds": self.tier_bounds,
            "at_previous_bounds": self.at_previous_bounds,
        }

    def _mover_counts(self) -> dict[str, int]:
        """Customers per movement, in MOVEMENTS order (a group-by alone has no fixed order)."""
        if self.movers is None:
            return {}
        counts = dict(self.movers.group_by("movement").len().iter_rows())
        return {m: int(counts[m]) for m in MOVEMENTS if m in counts}


MAX_SUMMARY_BYTES = 256 << 20  # a summary.json is small; /dev/zero or a huge file is not one


MAX_PREVIOUS_BYTES = 4 << 30


def read_summary(path: Path) -> dict[str, Any] | None:
    """An earlier run's summary.json, read at most ``MAX_SUMMARY_BYTES``; None when it is missing,
    too large (a link to /dev/zero) or not a JSON object."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SUMMARY_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_SUMMARY_BYTES:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _run_as_of(directory: Path) -> dt.date | None:
    """The as_of of an earlier output folder (from its summary.json, else its name)."""
    doc = read_summary(directory / "summary.json")
    try:
        return dt.date.fromisoformat(doc["as_of"]) if doc is not None else None
    except (ValueError, KeyError, TypeError):
        pass
    try:
        return dt.date.fromisoformat(directory.name[:10])
    except ValueError:
        return None


def find_previous(previous: str, template: str, as_of: dt.date | None, out: Path | None) -> Path | None:
    """Resolve ``--previous``: a file, a folder holding assignments.csv, or ``auto``.

    ``auto`` with ``-o base/{as_of}`` picks the folder under ``base/`` of the latest run whose as_of
    is before this one; with a fixed ``-o`` it compares with the assignments already there. It
    returns None when there is no earlier run (the first run of a schedule).
    """
    if previous != "auto":
        p = Path(previous)
        if p.is_dir():
            p = p / "assignments.csv"
        if not p.is_file():
            msg = f"{option('previous')} {previous}: no assignments.csv there; give an earlier run's folder or its assignments.csv"
            raise InputNotFoundError(msg)
        return p
    match = PLACEHOLDER.search(template)
    if match is None:
        candidate = (out or Path(template)) / "assignments.csv"
        return candidate if candidate.is_file() else None
    if as_of is None:
        msg = (f"{option('previous')} auto: this input has no dates, so no as_of to find the run before it; "
               f"give {option('previous')} PATH (an earlier run's folder)")
        raise UsageError(msg)
    base = Path(template[: match.start()] + "x").parent  # the folder holding the dated runs
    if not base.is_dir():
        return None
    runs = []
    for child in base.iterdir():
        if child.is_dir() and (child / "assignments.csv").is_file() and child != out:
            run_as_of = _run_as_of(child)
            if run_as_of is not None and run_as_of < as_of:
                runs.append((run_as_of, child.name, child))
    if not runs:
        return None
    return max(runs)[2] / "assignments.csv"


def read_previous(path: Path) -> pl.DataFrame:
    df, sha = _read_previous_csv(path)
    missing = [c for c in ("customer_id", "tier", "annual_spend") if c not in df.columns]
    if missing:
        msg = f"{option('previous')} {path}: not a segkit assignments.csv (no column '{missing[0]}')"
        raise DataError(msg)
    _check_complete(path, df, sha)
    # undo the leading ' that protects spreadsheet users from formulas (ids and names alike)
    undo = [undefuse(pl.col(c)).alias(c) for c in ("customer_id", "customer_name") if c in df.columns]
    df = df.with_columns(undo)
    dups = df.filter(pl.col("customer_id").is_duplicated())["customer_id"].unique(maintain_order=True)
    if dups.len():
        shown = ", ".join(f"'{v}'" for v in dups.head(5).to_list()) + (", ..." if dups.len() > 5 else "")
        msg = (f"{option('previous')} {path}: {dups.len():,} customer id(s) appear more than once ({shown}); "
               "an assignments.csv has one row per customer - remove the repeated rows")
        raise DataError(msg)
    return df.select(
        "customer_id",
        *([pl.col("customer_name")] if "customer_name" in df.columns else []),
        pl.col("tier").alias("previous_tier"),
        pl.col("annual_spend").cast(pl.Float64, strict=False).alias("previous_annual_spend"),
    )


def _read_previous_csv(path: Path) -> tuple[pl.DataFrame, str]:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_PREVIOUS_BYTES + 1)
    except OSError as exc:
        raise DataError(f"{option('previous')} {path}: cannot read it ({exc.strerror})") from None
    if data and not data.endswith(b"\n"):
        msg = f"{option('previous')} {path}: the file ends in the middle of a row (truncated copy?); use a complete assignments.csv"
        raise DataError(msg)
    if len(data) > MAX_PREVIOUS_BYTES:
        msg = f"{option('previous')} {path}: larger than {MAX_PREVIOUS_BYTES >> 30} GB, not a segkit assignments.csv"
        raise DataError(msg)
    try:
        return pl.read_csv(data, infer_schema=False), hashlib.sha256(data).hexdigest()
    except pl.exceptions.PolarsError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{option('previous')} {path}: cannot read it as segkit assignments ({first})") from None


def _check_complete(path: Path, df: pl.DataFrame, sha: str) -> None:
    """The file its run's summary.json describes: the sha256 recorded in summary.json["outputs"]
    (when the file still sits beside its summary.json), else at least the customers it counted.

    (An analyst who edits or merges assignments by hand uses the file without that summary.json.)
    """
    summary = path.with_name("summary.json")
    if not summary.exists():
        return
    doc = read_summary(summary)
    if doc is None:
        msg = (f"{option('previous')} {path}: the {summary.name} beside it cannot be read as a segkit summary "
               "(too large or not JSON); use the complete folder of that run")
        raise DataError(msg)
    recorded = doc.get("outputs", {}).get(path.name) if isinstance(doc.get("outputs"), dict) else None
    if isinstance(recorded, str) and recorded != sha:
        msg = (f"{option('previous')} {path}: changed after its run (its sha256 differs from the one in "
               f"{summary.name}); use the run's own file, or copy the edited file to a folder of its own")
        raise DataError(msg)
    customers = doc.get("customers")
    if isinstance(customers, int) and df.height < customers:
        msg = (f"{option('previous')} {path}: {df.height:,} rows but {summary.name} says {customers:,} customers "
               "(truncated copy?); use the complete folder of that run")
        raise DataError(msg)


def _tier_change(rank: dict[str, int]) -> pl.Expr:
    cur_rank = pl.col("tier").replace_strict(rank, default=None, return_dtype=pl.Int64)
    prev_rank = pl.col("previous_tier").replace_strict(rank, default=None, return_dtype=pl.Int64)
    return (pl.when(pl.col("previous_tier").is_null()).then(pl.lit("new"))
            .when(prev_rank.is_null()).then(pl.lit(None, pl.String))
            .when(cur_rank < prev_rank).then(pl.lit("up"))
            .when(cur_rank > prev_rank).then(pl.lit("down"))
            .otherwise(pl.lit("same")).alias("tier_change"))


def _matrix(joined: pl.DataFrame, lost: pl.DataFrame, tier_names: list[str]) -> dict[str, Any]:
    """Changes and the previous x current matrix (counts and spend) of a joined table holding
    previous_tier, tier, tier_change and _annual."""
    rows = tier_names + ["new"]
    cols = tier_names + ["lost"]
    counts = [[0] * len(cols) for _ in rows]
    spend = [[0.0] * len(cols) for _ in rows]
    cells = joined.group_by(pl.col("previous_tier").fill_null("new"), "tier").agg(
        pl.len(), pl.col("_annual").sum()
    )
    for p, c, n, s in cells.iter_rows():
        if p in rows and c in cols:
            counts[rows.index(p)][cols.index(c)] = int(n)
            spend[rows.index(p)][cols.index(c)] = s / MICRO
    lost_spend = group_fsums(lost, "previous_tier", ["previous_annual_spend"])  # floats read back: exact sums
    for p, n in lost.group_by("previous_tier").len().iter_rows():
        if p in rows:
            counts[rows.index(p)][-1] = int(n)
            spend[rows.index(p)][-1] = lost_spend[p][0]
    changes = {k: 0 for k in ("up", "down", "same", "new")}
    changes.update({k: int(v) for k, v in joined.group_by("tier_change").len().iter_rows() if k is not None})
    return {"changes": changes, "row_labels": rows, "column_labels": cols,
            "matrix": {"tiers": tier_names, "counts": counts, "spend": spend}}


def compare(customers: pl.DataFrame, previous_path: Path, tier_names: list[str],
            current_bounds: list[dict[str, Any]] | None = None) -> Migration:
    prev = read_previous(previous_path)
    rank = {name: i for i, name in enumerate(tier_names)}
    unknown = sorted(set(prev["previous_tier"].drop_nulls()) - set(rank))
    joined = customers.join(
        prev.select("customer_id", "previous_tier", pl.col("previous_annual_spend").alias("_previous_annual")),
        on="customer_id", how="left", maintain_order="left")
    joined = joined.with_columns(_tier_change(rank))
    lost = prev.join(customers.select("customer_id"), on="customer_id", how="anti").sort(
        ["previous_annual_spend", "customer_id"], descending=[True, False], nulls_last=True
    )
    m = _matrix(joined, lost, tier_names)
    bounds, at_previous = _at_previous_bounds(joined, lost, previous_path, current_bounds)
    moved = movers(joined, lost)
    joined = joined.drop("_previous_annual")
    return Migration(str(previous_path), joined, m["changes"], lost, m["row_labels"], m["column_labels"],
                     m["matrix"]["counts"], m["matrix"]["spend"], unknown, moved, bounds, at_previous)


def previous_bounds(previous_path: Path) -> list[dict[str, Any]] | None:
    """The tier bounds of the earlier run ([{name, zh, min}], highest tier first), from the
    summary.json beside its assignments.csv; None when there is none to read."""
    try:
        doc = json.loads(previous_path.with_name("summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tiers = ((doc.get("tiering") or {}).get("tiers") or doc.get("tiers")) if isinstance(doc, dict) else None
    if not isinstance(tiers, list) or not tiers:
        return None
    try:
        return [{"name": str(t.get("name", t.get("tier"))), "zh": str(t.get("zh") or t.get("name", t.get("tier"))),
                 "min": None if t.get("min") is None else float(t["min"])} for t in tiers]
    except (AttributeError, TypeError, ValueError):
        return None


def _same_bounds(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(ts: list[dict[str, Any]]) -> list[tuple[str, float | None]]:
        return [(t["name"], None if t["min"] is None else round(t["min"], 2)) for t in ts]
    return key(a) == key(b)


def _at_previous_bounds(joined: pl.DataFrame, lost: pl.DataFrame, previous_path: Path,
                        current: list[dict[str, Any]] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The earlier and current bounds, and, when they differ, the moves with this run's customers
    re-tiered at the earlier run's bounds (spend bounds only: the retail preset's order criteria
    are not applied again)."""
    previous = previous_bounds(previous_path)
    if previous is None or current is None:
        return None, None
    changed = not _same_bounds(previous, current)
    bounds = {"previous": previous, "current": current, "changed": changed}
    if not changed:
        return bounds, None
    names = [t["name"] for t in previous]
    expr = pl.lit(names[-1])
    for t in reversed(previous[:-1]):
        if t["min"] is not None:
            expr = pl.when(pl.col("_annual") >= round(t["min"] * MICRO)).then(pl.lit(t["name"])).otherwise(expr)
    retiered = joined.with_columns(expr.alias("tier"))
    retiered = retiered.with_columns(_tier_change({n: i for i, n in enumerate(names)}))
    return bounds, _matrix(retiered, lost, names)


MOVEMENTS = ("up", "down", "new", "lost")


def movers(joined: pl.DataFrame, lost: pl.DataFrame) -> pl.DataFrame:
    """One row per customer who moved up, down, was new or was lost, with spend then and now.

    Sorted by movement (up, down, new, lost), then by the size of the spend change (largest
    first), then customer_id. A new customer's spend then is empty (change = spend now); a lost
    customer's spend now is 0.
    """
    name = [pl.col("customer_name")] if "customer_name" in joined.columns else []
    cur = joined.filter(pl.col("tier_change").is_in(["up", "down", "new"])).select(
        "customer_id", *name, pl.col("tier_change").alias("movement"), "previous_tier", "tier",
        pl.col("_previous_annual").alias("previous_annual_spend"), pl.col("annual_spend"),
    )
    gone = lost.select(
        "customer_id", *([pl.col("customer_name")] if name and "customer_name" in lost.columns else
                         [pl.lit(None, pl.String).alias("customer_name")] if name else []),
        pl.lit("lost").alias("movement"), "previous_tier", pl.lit(None, pl.String).alias("tier"),
        "previous_annual_spend", pl.lit(0.0).alias("annual_spend"),
    )
    df = pl.concat([cur, gone.cast(cur.schema)], how="vertical")
    change = pl.col("annual_spend") - pl.col("previous_annual_spend").fill_null(0.0)
    order = pl.col("movement").replace_strict({m: i for i, m in enumerate(MOVEMENTS)}, return_dtype=pl.Int8)
    return (df.with_columns(change.round(2).alias("spend_change"))
            .sort([order, pl.col("spend_change").abs(), "customer_id"], descending=[False, True, False]))


def add_migration(result: Segmentation, previous_path: Path) -> Segmentation:
    """A new result: ``result`` compared with an earlier run's assignments.csv (its migration,
    and tier_change in the customer table). ``result`` itself is left as it was."""
    tier_names = [t.name for t in result.tiers]
    current = [{"name": t.name, "zh": t.zh, "min": t.min} for t in result.tiers]
    migration = compare(result.customers, previous_path, tier_names, current)
    warnings = result.warnings
    if migration.tier_bounds and migration.tier_bounds["changed"]:
        warnings = (*warnings, bounds_warning(migration, result.currency))
    return result.with_customers(migration.customers, migration=migration, warnings=warnings)


def bounds_warning(migration: Migration, currency: str | None) -> dict[str, Any]:
    """tier_bounds_changed (SPEC §10): the moves mix customers' changes with moved bounds."""
    from segkit.customers.tiers import suggestion_text
    from segkit.customers.warnings import catalog_warning

    assert migration.tier_bounds is not None and migration.at_previous_bounds is not None
    b, ch = migration.tier_bounds, migration.at_previous_bounds["changes"]

    def text(tiers: list[dict[str, Any]]) -> dict[str, str]:
        bounded = [t for t in tiers if t["min"] is not None]
        return {"en": suggestion_text(bounded, currency), "zh": suggestion_text(bounded, currency, zh=True)}

    return catalog_warning("tier_bounds_changed", previous=text(b["previous"]), current=text(b["current"]),
                           up=ch["up"], down=ch["down"], same=ch["same"])


def movers_of(result: Segmentation) -> pl.DataFrame | None:
    """The movers table of a result compared with an earlier run, or None."""
    return None if result.migration is None else result.migration.movers
