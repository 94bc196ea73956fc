#!/usr/bin/env python3
"""Portable expression layers, measured: can one Narwhals expression carry segkit's rules on
polars and on Spark at the speed of the native code (issue 20)?

Command (1,000,000 rows; the Spark session starts before the timings; best of 3, interleaved)::

    PYTHONPATH=src python -m segkit sample --rows 1000000 --customers 10000 -o /tmp/el.csv --no-cost
    PYTHONPATH=src python benchmarks/expression_layers.py --csv /tmp/el.csv

Input: the sample's customer_name, amount and order_date columns as text, with every tenth row
replaced by an odd cell (totals labels in several spellings, currency signs and codes, brackets,
SAP trailing minus, "- 12", "1,2,3", "12 34", full-width digits, Unicode spaces, 1e999, invalid
and out-of-calendar dates, 年月日, times after the date). Three rules are written once with
Narwhals (``nw_rules``): (1) strip Unicode whitespace and flag totals rows with
``rules.TOTALS_PATTERN``; (2) the amount parser of ``rules`` (signs, brackets, trailing minus,
thousands separators, cast); (3) Y-M-D dates (``rules.YMD``, any separator, optional time). They run
on a polars LazyFrame and on a PySpark DataFrame through Narwhals 2.29, next to segkit's native
``clean.parse_amount``/``clean.parse_date`` (polars) and ``spark_rules.is_totals``/
``parse_amount``/``parse_date`` (Spark), on the same Parquet file. Polars 2.1.0, PySpark 4.3.0
(``local[2]``, ANSI mode on, its default), 2 cores; Spark results go to the ``noop`` sink, polars
results are collected.

Measured (seconds, best of 3; the three runs in brackets)::

    engine  rules              native                   Narwhals                 Narwhals/native
    polars  all three          4.40 (5.43 4.40 5.33)    2.48 (3.01 2.48 2.98)    0.56
    polars  totals flag        0.05                     0.07                     1.4
    polars  amount             2.55                     1.26                     0.49
    polars  date               1.54                     1.24                     0.81
    Spark   all three          14.36 (19.75 15.60 14.36) 21.52 (26.76 21.52 25.10) 1.50

Identity: on polars, Narwhals and native agree on all 1,000,000 rows for the three columns; on
Spark too, once every pattern goes through ``rules.java``; Narwhals on polars and Narwhals on
Spark agree with each other row for row. Given the Rust patterns as written, Spark fails
(``PatternSyntaxException: Unknown inline modifier``: Java has no ``(?P<name>``); with only that
fixed, 15,336 rows differ: ``TOTALſ`` (long s; Java's ``(?i)`` folds ASCII only) and
``Sub\\u00a0total`` are no longer totals rows (11,765 rows), ``1\\u00a0234.5`` is null instead
of 1234.5 (3,571 rows; Java's ``\\s`` is ASCII).

What Narwhals could not express, or expressed differently:

* Regular expressions go to each engine unchanged (polars: Rust ``regex``; Spark: ``rlike``/
  ``regexp_replace``, i.e. ``java.util.regex``). The portable layer does not make the patterns
  portable: ``rules.java`` is needed exactly as now.
* ``str.strip_chars()`` without characters strips ASCII whitespace on Spark (``trim`` with
  ``string.whitespace``) but Unicode whitespace on polars; the rules pass ``rules.WHITE_SPACE``.
* No ``str.extract``/``extract_groups``: the date's groups are written out with a replacement
  (``${y}-${m}-${d}``), split on "-" and zero-padded (``zfill``) before ``to_date``.
* ``str.replace`` (first match only) is not implemented for Spark; ``replace_all`` stands in
  (the patterns concerned are anchored).
* No non-strict cast or ``to_date``: polars' cast is strict and Spark's ANSI mode raises, so only
  text the rule has accepted is cast, and a calendar check (month lengths, leap years) written in
  the expression guards ``to_date``; where the native code casts every ``\\d`` match
  non-strictly, ``\\d`` becomes ``[0-9]`` on polars (a full-width "２０２４" would raise).
* No ``translate`` and no per-engine fast path: the native Spark code skips the regular
  expressions for plain numbers and ISO dates (``F.translate``, ``substring``); the portable
  expression runs them on every cell. Only the Y-M-D date rule was written: yyyymmdd and Excel
  serials (``rules.COMPACT_DATE``, ``rules.SERIAL``) are left out, so the polars date column is
  not like for like (the native parser tries three formats on every cell).

Reading the numbers: on polars Narwhals only builds polars expressions, so its cost is that of
the expression written; it is faster here because it matches ``[0-9]`` instead of Unicode
``\\d``, casts only accepted text and tries one date format, not because of the layer (segkit's
ingest also runs the parsers on distinct dates and on the amounts the plain cast left). On Spark
the one portable expression is 1.50x the native columns. Narwhals therefore does not carry the
rules at full speed on both engines, still needs the Java dialect, and needs workarounds for
four missing or differing operations: segkit keeps ``rules.py`` as the single source, with one
expression builder per engine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import narwhals as nw
import polars as pl

from segkit.ingest import clean, rules

ROOT = Path(__file__).resolve().parents[1]
WS = rules.WHITE_SPACE

# Odd cells put on every tenth row, beside the sample's ordinary ones.
ODD_NAMES = ["合计", "  Total: ", "Subtotal", "本页合计", "grand total", "TOTALſ", "\u3000合 计", "Totals\n",
             "Total\u00a0", "total x", "", None, "  Acme  ", "\u2003Acme\u2003", "Sub total：", "小计", "Sub\u00a0total"]
ODD_AMOUNTS = ["¥1,234.50", "(1,234.00)", "1,234.00-", "- 12", "$(12)", "(1.5)元", "RMB 1 234.5", "1,2,3",
               "12 34", "abc", "", None, "1e3", ".5", "5.", "１２", "\u00a012.5\u2003", "12.5\n", "1e999",
               "USD1,000", "-0", "+7", "12,345,678.9-", "EUR 3,000.00", "￥ 88", "1,234.5.6", "--5", "1\u00a0234.5"]
ODD_DATES = ["2024-01-05", "2024/1/5", "2024.01.05", "2024年1月5日", "2024-01-05 12:30:00",
             "2024-01-05T12:30:00Z", "2024-02-30", "2023-02-29", "2024-02-29", "0000-01-01", "9999-12-31",
             "２０２４-01-05", " 2024-1-5 ", "2024-01-05\n", "2024-13-01", "x", "", None, "\u30002024/12/31",
             "2024 / 3 / 7"]


def make_input(csv: Path, out: Path, rows: int) -> None:
    df = pl.read_csv(csv, infer_schema=False, columns=["customer_name", "amount", "order_date"], n_rows=rows)
    n = df.height
    idx = pl.int_range(0, n, eager=True)
    def odd(values: list[str | None], col: str) -> pl.Series:
        s = pl.Series(values, dtype=pl.String)
        picked = s.gather((idx // 10) % len(values))
        return pl.select(pl.when(idx % 10 == 7).then(picked).otherwise(df[col])).to_series().alias(col)
    pl.DataFrame([idx.alias("id"), odd(ODD_NAMES, "customer_name"), odd(ODD_AMOUNTS, "amount"),
                  odd(ODD_DATES, "order_date")]).write_parquet(out)


# ------------------------------------------------------------------ the rules, once, in Narwhals


def nw_rules(rx: Callable[..., str]) -> list[nw.Expr]:
    """Totals flag, amount and date as Narwhals expressions. ``rx(pattern, digits=...)`` gives a
    pattern in the engine's regex dialect: Narwhals passes patterns through unchanged."""
    name = nw.col("customer_name").str.strip_chars(WS)  # default strip is ASCII-only on Spark
    totals = name.str.contains(rx(rules.TOTALS_PATTERN))

    s = nw.col("amount").str.strip_chars(WS)
    paren = s.str.contains(rx(rules.BRACKETED))
    t = s.str.replace_all(rx(rules.SIGNS), "").str.replace_all(rx(rules.BRACKETS), "").str.strip_chars(WS)
    t = t.str.replace_all(rx(rules.SIGN_SPACE), "$1")  # str.replace (first match): not on Spark
    trailing = t.str.contains(rx(rules.TRAILING_MINUS, digits="unicode"))
    t = nw.when(trailing).then(t.str.replace_all(rx(rules.MINUS_TAIL), "")).otherwise(t)
    ok = t.str.contains(rx(rules.number_pattern(".")))
    # cast only the text that is a number: a strict cast (polars) or ANSI mode (Spark) raises on the rest
    value = nw.when(ok).then(t.str.replace_all(rx(rules.SEPARATORS["."]), "")).cast(nw.Float64)
    signed = nw.when(paren | trailing).then(-value.abs()).otherwise(value)
    amount = nw.when(signed.is_finite()).then(signed)

    d = nw.col("order_date").str.strip_chars(WS)
    ymd = rx(rules.YMD_DATE) + rx(rules.YMD_TIME, digits="unicode")
    # no str.extract in Narwhals: the groups are written out by a replacement, then split
    parts = nw.when(d.str.contains(ymd)).then(d.str.replace_all(ymd, "${y}-${m}-${d}")).str.split("-")
    y, m, dd = (parts.list.get(i) for i in range(3))
    yi, mi, di = (p.cast(nw.Int32) for p in (y, m, dd))
    leap = ((yi % 4 == 0) & (yi % 100 != 0)) | (yi % 400 == 0)
    dim = (nw.when(mi == 2).then(nw.when(leap).then(29).otherwise(28))
           .when(mi.is_in([4, 6, 9, 11])).then(30).otherwise(31))
    valid = (yi >= 1) & (mi >= 1) & (mi <= 12) & (di >= 1) & (di <= dim)
    # no non-strict to_date in Narwhals: only valid dates reach it
    iso = nw.concat_str([y, m.str.zfill(2), dd.str.zfill(2)], separator="-")
    date = nw.when(valid).then(iso).str.to_date("%Y-%m-%d")
    return [nw.col("id"), totals.alias("totals"), amount.alias("amount"), date.alias("order_date")]


def rust(pattern: str, digits: str = "ascii") -> str:
    """Rust dialect for polars; ``\\d`` is ASCII where the digits are cast (a strict cast raises on
    "２０２４", which the native code's non-strict parse turns into null)."""
    return pattern if digits == "unicode" else pattern.replace(r"\d", "[0-9]")


# ------------------------------------------------------------------------- native and Narwhals runs


def polars_native_exprs() -> list[pl.Expr]:
    return [pl.col("id"),
            pl.col("customer_name").str.strip_chars().str.contains(rules.TOTALS_PATTERN).alias("totals"),
            clean.parse_amount(pl.col("amount")).alias("amount"),
            clean.parse_date(pl.col("order_date")).alias("order_date")]


def polars_native(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.select(polars_native_exprs()).collect()


def polars_narwhals(lf: pl.LazyFrame) -> pl.DataFrame:
    return nw.from_native(lf).select(*nw_rules(rust)).to_native().collect()


def spark_native(sdf):
    from segkit.engines import spark_rules as R
    from pyspark.sql import functions as F
    return sdf.select("id", R.is_totals(F.col("customer_name")).alias("totals"),
                      R.parse_amount(F.col("amount")).alias("amount"),
                      R.parse_date(F.col("order_date")).alias("order_date"))


def spark_narwhals(sdf, rx: Callable[..., str] = rules.java):
    return nw.from_native(sdf).select(*nw_rules(rx)).to_native()


def as_is(pattern: str, digits: str = "ascii") -> str:
    return pattern


def named_groups_only(pattern: str, digits: str = "ascii") -> str:
    """The least a Rust pattern needs to compile in Java: ``(?P<name>`` -> ``(?<name>``."""
    return pattern.replace("(?P<", "(?<")


def first_error(exc: Exception) -> str:
    text = str(exc)
    if "java_exception" in dir(exc):
        text = str(exc.java_exception.toString())  # type: ignore[attr-defined]
        cause = exc.java_exception.getCause()  # type: ignore[attr-defined]
        while cause is not None:
            text = str(cause.toString())
            cause = cause.getCause()
    return text.splitlines()[0][:300]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def differences(a: pl.DataFrame, b: pl.DataFrame, src: pl.DataFrame) -> dict[str, list]:
    """Per output column: the input cells (distinct) where ``a`` and ``b`` differ, with both values."""
    a, b = a.sort("id"), b.sort("id")
    inputs = {"totals": "customer_name", "amount": "amount", "order_date": "order_date"}
    out = {}
    for col, inp in inputs.items():
        diff = ~a[col].eq_missing(b[col])
        rows = pl.DataFrame({"cell": src.sort("id")[inp].filter(diff), "a": a[col].filter(diff).cast(pl.String),
                             "b": b[col].filter(diff).cast(pl.String)})
        counts = rows.group_by("cell", "a", "b").len().sort("len", descending=True)
        out[col] = [[repr(c), x, y, k] for c, x, y, k in counts.iter_rows()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default="/tmp/el.csv")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/el_work")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cells = work / "cells.parquet"
    make_input(Path(args.csv), cells, args.rows)
    src = pl.read_parquet(cells)
    print(f"input: {src.height:,} rows, {src.filter(pl.col('id') % 10 == 7).height:,} odd", flush=True)

    results: dict = {"rows": src.height, "times": {}, "diffs": {}}
    lf = pl.scan_parquet(cells)
    times: dict[str, list[float]] = {"polars native": [], "polars narwhals": []}
    for _ in range(args.repeat):
        times["polars native"].append(timed(lambda: polars_native(lf)))
        times["polars narwhals"].append(timed(lambda: polars_narwhals(lf)))
    # per rule: which of the three makes the difference on polars
    native_cols = polars_native_exprs()
    for i, col in enumerate(("totals", "amount", "order_date"), start=1):
        for kind in ("native", "narwhals"):
            times.setdefault(f"polars {kind} {col}", [])
        for _ in range(args.repeat):
            times[f"polars native {col}"].append(timed(lambda: lf.select(native_cols[i]).collect()))
            times[f"polars narwhals {col}"].append(
                timed(lambda: nw.from_native(lf).select(nw_rules(rust)[i]).to_native().collect()))
    pn, pw = polars_native(lf), polars_narwhals(lf)
    results["diffs"]["polars: native vs narwhals"] = differences(pn, pw, src)

    from segkit.engines.spark import local_session
    spark = local_session("local[2]", {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"})
    sdf = spark.read.parquet(str(cells))
    sdf.count()

    def run(df) -> None:
        df.write.format("noop").mode("overwrite").save()

    times.update({"spark native": [], "spark narwhals": []})
    for _ in range(args.repeat):
        times["spark native"].append(timed(lambda: run(spark_native(sdf))))
        times["spark narwhals"].append(timed(lambda: run(spark_narwhals(sdf))))

    def to_polars(df, name: str) -> pl.DataFrame:
        path = work / name
        df.write.mode("overwrite").parquet(str(path))
        return pl.read_parquet(path / "*.parquet")

    sn, sw = to_polars(spark_native(sdf), "sn"), to_polars(spark_narwhals(sdf), "sw")
    results["diffs"]["spark: native vs narwhals (java() patterns)"] = differences(sn, sw, src)
    for label, rx in (("Rust patterns as written", as_is), ("Rust patterns, (?P< -> (?<", named_groups_only)):
        key = f"spark: native vs narwhals ({label})"
        try:
            results["diffs"][key] = differences(sn, to_polars(spark_narwhals(sdf, rx), "sr"), src)
        except Exception as exc:  # noqa: BLE001
            results["diffs"][key] = f"error: {first_error(exc)}"
    results["diffs"]["narwhals: polars vs spark"] = differences(pw, sw, src)
    spark.stop()

    results["times"] = {k: {"best": min(v), "all": v} for k, v in times.items()}
    for k, v in results["times"].items():
        print(f"{k:28s} best {v['best']:.2f} s  ({', '.join(f'{x:.2f}' for x in v['all'])})")
    for k, v in results["diffs"].items():
        print(f"\n{k}:")
        if isinstance(v, str):
            print("  " + v)
            continue
        for col, rows in v.items():
            print(f"  {col}: {sum(r[3] for r in rows):,} rows differ" + (":" if rows else ""))
            for r in rows:
                print(f"    {r[0]}: {r[1]} vs {r[2]} ({r[3]:,} rows)")
    (work / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
