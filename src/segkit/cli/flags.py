"""The command-line spelling of each setting, for messages that name one (``errors.option``).

Apart from ``cli.app`` so that the terminal summary can name flags without importing the app.
"""

from __future__ import annotations

OVERRIDE_KEYS = {
    "as_of": "analysis.as_of", "year": "analysis.year", "encoding": "input.encoding",
    "sheet": "input.sheet", "max_bad_rows": "input.max_bad_rows", "amount_unit": "input.amount_unit",
    "date_format": "input.date_format", "k": "clustering.k", "seed": "clustering.random_state",
    "lang": "output.lang", "reports": "output.reports", "output": "output.dir",
    "tiers": "tiering.scheme", "input_kind": "input.kind", "currency": "output.currency",
    "max_unpacked_mb": "input.max_unpacked_mb", "engine": "input.engine", "spark_master": "input.spark_master",
    "decimal": "input.decimal",
}
FLAGS = {key: "--" + name.replace("_", "-") for name, key in OVERRIDE_KEYS.items()} | {
    "clustering.random_state": "--seed", "output.reports": "--report", "output.dir": "--output"}


def flag(key: str) -> str:
    """The command-line spelling of a setting a library message refers to (``errors.option``):
    ``input.max_bad_rows`` -> ``--max-bad-rows``, ``columns.amount`` -> ``--map amount``,
    ``columns`` -> ``--map``, a parameter such as ``previous`` -> ``--previous``."""
    if key == "columns" or key.startswith("columns."):
        return " ".join(("--map", key.removeprefix("columns").removeprefix("."))).strip()
    return FLAGS.get(key) or "--" + key.replace("_", "-")
