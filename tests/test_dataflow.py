"""One-way data flow: a run's result is frozen, a later step derives a new result, and what the
command line writes (summary.json) is the library's summary of that one result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random

import pytest

from conftest import run_cli, write_csv


def _orders(path, seed: int, customers: int = 40):
    """Order lines of ``customers`` customers over two years, with channel and region."""
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    rows = []
    for c in range(customers):
        scale = rng.choice((50, 400, 3000))
        for _ in range(rng.randint(1, 12)):
            day = start + dt.timedelta(days=rng.randint(0, 729))
            rows.append([f"C{c:03d}", day.isoformat(), f"{rng.uniform(0.2, 2.0) * scale:.2f}",
                         rng.choice(("retail", "online")), rng.choice(("north", "south", "east"))])
    return write_csv(path, ["customer", "date", "amount", "channel", "region"], rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the command line, the second compared with the first (--previous)."""
    base = tmp_path_factory.mktemp("dataflow")
    first, second = _orders(base / "first.csv", 1), _orders(base / "second.csv", 2, customers=45)
    for name, extra in (("a", []), ("b", ["--previous", str(base / "a")])):
        src = first if name == "a" else second
        proc = run_cli("segment", str(src), "-o", str(base / name), "--no-report", "-q", *extra)
        assert proc.returncode == 0, proc.stderr.decode()
    return base, second


def _library(path, out, previous=None):
    """The library call with the config the command line used (``-o out``; the library writes no reports anyway)."""
    from segkit import config, pipeline
    from segkit.customers.migration import add_migration

    cfg = config.load(None, {"output.dir": str(out)}, use_env=False)
    result = pipeline.run(str(path), cfg)
    return result if previous is None else add_migration(result, previous)


def test_summary_json_is_the_library_summary(runs):
    from segkit.result import summary
    from segkit.outputs.staging import json_bytes

    base, second = runs
    written = json.loads((base / "b" / "summary.json").read_text(encoding="utf-8"))
    result = _library(second, base / "b", base / "a" / "assignments.csv")
    expected = json.loads(json_bytes(summary(result)))
    outputs = written.pop("outputs")
    assert written == expected
    assert written["migration"]["changes"]["new"] == 5  # C040..C044 are not in the first run
    movers = written["migration"]["movers"]  # in a fixed order, so two runs write the same bytes
    assert list(movers) == [m for m in ("up", "down", "new", "lost") if m in movers] and movers["new"] == 5
    # the one field the library cannot know: the sha256 of each file the command line wrote
    assert outputs == {name: hashlib.sha256((base / "b" / name).read_bytes()).hexdigest()
                       for name in ("assignments.csv", "movers.csv", "outlook.csv")}


def test_the_result_is_frozen_and_later_steps_derive_a_new_one(runs):
    from segkit.customers.migration import add_migration

    base, second = runs
    result = _library(second, base / "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.clv = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.table.customers = result.customers.head(1)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.cleaned.lines = result.cleaned.lines.head(1)  # type: ignore[misc]
    before = result.assignments
    compared = add_migration(result, base / "a" / "assignments.csv")
    assert compared is not result and result.migration is None
    assert result.assignments.equals(before) and "tier_change" not in before.columns
    assert compared.assignments["tier_change"].null_count() < compared.assignments.height
    assert compared.document["migration"] == compared.migration.summary()
    assert "migration" not in result.document
