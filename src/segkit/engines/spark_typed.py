"""The Spark engine's typed pass: the order lines summed where they are read, the keys of each
group parsed once (the Spark counterpart of ``engines.polars.typed_lines``).

One pass over the rows sums them straight to (customer, order date, order id, attributes) on the
cells' raw text, with the amounts cast only where they are plain numbers (``12``, ``-0.5``): no
regular expression and no totals test runs on a row. The groups (about one per order) are kept,
and the rules of ``ingest/rules.py`` run on their key texts. Rows the pass cannot vouch for (an
amount that is not a plain number, a key text the rules reject or read as a totals label, an empty
or totals first cell) are read again, only those, and classified row by row by ``spark.classify``,
so every row is counted and explained exactly as when every row is classified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql import DataFrame as SparkFrame

    from segkit.config import Config

# Distinct key texts the re-read can test each row against; above it every row is classified
# (a file with that many odd ids or dates is rare, and would spend its time in the re-read).
ODD_LIMIT = 10_000


class SparkInput(Protocol):
    """What this module reads of ``engines.spark.SparkInput``."""

    headers: list[str]
    mapping: dict[str, str]


@dataclass(frozen=True)
class Odd:
    """The key texts of one column whose rows need the row-by-row rules."""

    header: str
    values: tuple[str, ...]
    null: bool


def group_keys(inp: SparkInput, roles: tuple[str, ...]) -> dict[str, str]:
    """role -> header of the columns the lines are summed on."""
    m = inp.mapping
    keys = {"customer_id": m["customer_id"], "order_date": m["order_date"]}
    if "order_id" in m:
        keys["order_id"] = m["order_id"]
    return keys | {r: m[r] for r in roles}


def plain_amount(inp: SparkInput, cfg: Config) -> tuple[Column, Column]:
    """(ok, micro-units) of a row whose money cells are plain numbers: the value the rules give
    them (a plain number is read by its cast there too); ok is False for every other row."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R
    from segkit.ingest import rules

    m = inp.mapping
    cells = {r: F.col(f"`{m[r]}`") for r in rules.checked_roles(m)[2:]}
    value = (cells["amount"].try_cast("double") if "amount" in cells
             else cells["quantity"].try_cast("double") * cells["unit_price"].try_cast("double"))
    micro = R.to_micro(value, cfg.amount_unit)
    plain = F.lit(True)
    for cell in cells.values():
        plain = plain & R.plain_number(cell)
    return F.coalesce(plain & (F.abs(micro) < F.lit(rules.OVERFLOW_MICRO)), F.lit(False)), micro


def first_odd(inp: SparkInput, keys: dict[str, str]) -> list[Column]:
    """The flag of a row whose first cell is empty or a totals label, when that column is not a
    key (a key's texts are tested once per distinct text)."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R

    first = inp.headers[0]
    if first in keys.values():
        return []
    c = F.col(f"`{first}`")
    return [(c.isNull() | F.coalesce(R.is_totals(c), F.lit(False))).alias("_first_odd")]


def summed(raw: SparkFrame, inp: SparkInput, cfg: Config, keys: dict[str, str]) -> SparkFrame:
    """The rows summed on their raw key texts: amount (micro-units of the plain rows), _abs, n
    (plain rows) and _bad (the others)."""
    from pyspark.sql import functions as F

    ok, micro = plain_amount(inp, cfg)
    return raw.groupBy(*[F.col(f"`{h}`").alias(f"_k_{k}") for k, h in keys.items()], *first_odd(inp, keys)).agg(
        F.sum(F.when(ok, micro.cast("long"))).alias("amount"),
        F.sum(F.when(ok, F.abs(micro))).alias("_abs"),
        F.count_if(ok).alias("n"), F.count_if(~ok).alias("_bad"))


def parsed(groups: SparkFrame, inp: SparkInput, cfg: Config, keys: dict[str, str], roles: tuple[str, ...]) -> SparkFrame:
    """The groups as order lines (``spark.order_lines``' columns, keys parsed by the rules), with
    the rows that could not be summed (``_bad``), the usable money (``_abs``), ``_odd`` (a key the
    rules would not accept, a totals label, or a first cell to explain) and, for each key that can
    be odd, its raw text where it is (``_x_<role>``) and whether it is odd by being empty
    (``_null_<role>``)."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R
    from segkit.ingest import rules

    k = {role: F.col(f"_k_{role}") for role in keys}
    # the attributes keep their raw text here: spark.role_modes strips them on its small table of
    # each customer's combinations instead of on every group
    values = {role: (c if role in roles else R.text(c)) for role, c in k.items()}
    values["customer_id"] = R.parse_customer_id(k["customer_id"])
    values["order_date"] = R.date_parser(cfg.date_format)(k["order_date"])
    out = groups.select("*", *[v.alias(f"_p_{role}") for role, v in values.items()])
    odd = _odd_keys(k, inp.headers[0], keys)
    any_odd = F.lit(False)
    for role in odd:
        any_odd = any_odd | F.col(f"_odd_{role}")
    if "_first_odd" in groups.columns:
        any_odd = any_odd | F.col("_first_odd")
    flagged = out.select("*", *[c.alias(f"_odd_{role}") for role, c in odd.items()]).select("*", any_odd.alias("_odd"))
    order_key = rules.order_key(F.col("_p_order_id") if "order_id" in keys else None,
                                F.col("_p_order_date").cast("string"), F.coalesce)
    odd_texts = [c for role in odd for c in (  # a key's raw text only where it is odd: mostly nulls
        F.when(F.col(f"_odd_{role}"), k[role]).alias(f"_x_{role}"),
        (F.col(f"_odd_{role}") & k[role].isNull()).alias(f"_null_{role}"))]
    return flagged.select(
        F.col("_p_customer_id").alias("customer_id"), order_key.alias("order_key"),
        F.col("_p_order_date").alias("order_date"), "amount", *[F.col(f"_p_{r}").alias(r) for r in roles],
        "n", "_bad", "_abs", "_odd", *odd_texts)


def _odd_keys(k: dict[str, Column], first: str, keys: dict[str, str]) -> dict[str, Column]:
    """role -> when its text sends the group's rows to the row-by-row rules (on the parsed values
    ``_p_<role>``): an id or date the rules do not read, a totals label in the id or name column
    (``rules.TOTALS_ROLES``), an empty or totals first cell."""
    from pyspark.sql import functions as F

    from segkit.engines import spark_rules as R
    from segkit.ingest import rules

    def totals(c: Column) -> Column:
        return F.coalesce(R.is_totals(c), F.lit(False))

    odd = {"customer_id": F.col("_p_customer_id").isNull(), "order_date": F.col("_p_order_date").isNull()}
    for role in rules.TOTALS_ROLES:
        if role in keys:
            odd[role] = odd.get(role, F.lit(False)) | totals(k[role])
    for role, header in keys.items():
        if header == first:
            odd[role] = odd.get(role, F.lit(False)) | k[role].isNull() | totals(k[role])
    return odd


def odd_roles(groups: SparkFrame) -> list[str]:
    return [c[len("_x_"):] for c in groups.columns if c.startswith("_x_")]


def stats(groups: SparkFrame) -> dict[str, Any]:
    """One job over the kept groups: rows, their usable money, and how many groups each key marks
    odd (and whether an empty key is odd)."""
    from pyspark.sql import functions as F

    keep = ~F.col("_odd") & (F.col("n") > 0)
    aggs = [F.sum("n").alias("n"), F.sum("_bad").alias("bad"), F.count_if(F.col("_odd")).alias("odd"),
            F.sum(F.when(keep, F.col("n"))).alias("fast_n"), F.sum(F.when(keep, F.col("_abs"))).alias("abs")]
    for role in odd_roles(groups):
        aggs += [F.count(F.col(f"_x_{role}")).alias(f"texts_{role}"),
                 F.coalesce(F.bool_or(F.col(f"_null_{role}")), F.lit(False)).alias(f"null_{role}")]
    return groups.agg(*aggs).collect()[0].asDict()


def odd_texts(groups: SparkFrame, keys: dict[str, str], st: dict[str, Any]) -> list[Odd] | None:
    """The odd texts of each key (None: more than ``ODD_LIMIT`` of them: classify every row
    instead). A job per key that has any, each bringing back at most ``ODD_LIMIT + 1`` texts."""
    from pyspark.sql import functions as F

    out, total = [], 0
    for role in odd_roles(groups):
        if not (st[f"texts_{role}"] or st[f"null_{role}"]):
            continue
        values: list[str] = []
        if st[f"texts_{role}"]:
            key = F.col(f"_x_{role}")
            found = groups.where(key.isNotNull()).select(key).distinct()
            values = sorted(r[0] for r in found.limit(ODD_LIMIT + 1 - total).collect())
            total += len(values)
            if total > ODD_LIMIT:
                return None
        out.append(Odd(keys[role], tuple(values), bool(st[f"null_{role}"])))
    return out


def reread_filter(inp: SparkInput, cfg: Config, keys: dict[str, str], odd: list[Odd]) -> Column:
    """The rows the typed pass set aside: not plain, an odd key text, an odd first cell."""
    from pyspark.sql import functions as F

    ok, _ = plain_amount(inp, cfg)
    want = ~ok
    for flag in first_odd(inp, keys):
        want = want | flag
    for o in odd:
        c = F.col(f"`{o.header}`")
        if o.values:
            want = want | F.coalesce(c.isin(*o.values), F.lit(False))
        if o.null:
            want = want | c.isNull()
    return want


def fast_lines(groups: SparkFrame, roles: tuple[str, ...]) -> SparkFrame:
    """The groups the typed pass vouches for, as ``spark.order_lines`` gives its lines (but the
    attributes as read: ``spark.role_modes`` strips them)."""
    from pyspark.sql import functions as F

    kept = groups.where(~F.col("_odd") & (F.col("n") > 0))
    return kept.select("customer_id", "order_key", "order_date", "amount", *roles, "n")


def fast_counts(st: dict[str, Any]) -> pl.DataFrame:
    """The typed pass's usable rows in the shape of ``spark.quality_counts``."""
    return pl.DataFrame({"file": [None], "block": [0], "_skip": [None], "_reason": [None], "_column": [None],
                         "n": [int(st["fast_n"] or 0)], "abs": [float(st["abs"] or 0.0)]},
                        schema={"file": pl.String, "block": pl.Int64, "_skip": pl.String, "_reason": pl.String,
                                "_column": pl.String, "n": pl.Int64, "abs": pl.Float64})
