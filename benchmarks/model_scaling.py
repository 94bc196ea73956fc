"""Time and peak memory of each model step of `segkit segment` as the number of customers grows.

Usage: python benchmarks/model_scaling.py [--customers 100k,1m,3m] [--rows-per-customer 4]
                                          [--fit-sample N] [--out FILE.md]

For each size, synthetic order lines (``segkit.sample.generate``, seed 7, as
``benchmarks/model_steps.py``) are written to a Parquet file and read by ``pipeline.run`` without
clustering, which builds the customer table as ``segkit segment`` does. Then the model steps of
``segkit.pipeline`` run once each in the pipeline's order, timed, and once more under tracemalloc
for their peak of Python-visible memory (numpy and polars' Python side; polars' Rust buffers are
not traced):

- ``cluster``: auto-k on the silhouette sample and the final fit (``pipeline.add_clusters``);
- ``clv``: the counting model + Gamma-Gamma and every customer's predictions (``add_clv``);
- ``validate``: the nulls, stability and descriptive statistics (``add_validation``);

and, to see what grows with the number of customers, the parts that run on everyone: the final
Lloyd run of k-means from the sample's centres (``k-means final fit``), the BG/NBD and
Gamma-Gamma fits (``CLV fits``) and the predictions from fitted parameters (``CLV scoring``).
``post-engine`` is the peak of the three steps run together after the customer table exists.
``--fit-sample N`` sets ``[clustering] fit_sample`` (the fits then run on a sample of N).
``--segment-rss`` measures instead the peak RSS of a whole ``segkit segment --input-kind customers
--no-report`` process on a customer-level CSV of each size (spend, orders, last order date: the
post-engine steps without CLV, which needs order lines), and its growth per customer.

Prints a markdown table (µs and bytes per customer beside the totals) and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parse_count(text: str) -> int:
    """100k -> 100000, 3m -> 3000000."""
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def measure(call: Callable[[], Any]) -> tuple[float, int, Any]:
    """(wall seconds of one call, tracemalloc peak bytes of a second call, the first call's result)."""
    gc.collect()
    t0 = time.perf_counter()
    out = call()
    wall = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return wall, peak, out


def base_result(customers: int, rows: int, cfg: Any) -> Any:
    """The customer table of ``rows`` synthetic order lines of ``customers`` customers."""
    from segkit import pipeline, sample

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.parquet"
        sample.write(sample.generate(rows, customers, seed=7), path)
        return pipeline.run(str(path), cfg, cluster=False)


def final_fit_parts(clustered: Any, fit_sample: int) -> dict[str, Callable[[], Any]]:
    """The final fits and the scoring, as calls: on every customer, or on the fixed-seed sample
    of ``fit_sample`` (and ``predict`` for everyone) when there are more, as the steps do."""
    import numpy as np
    import polars as pl
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from segkit.models.clv.bgnbd import bgnbd_expected, bgnbd_p_alive, fit_bgnbd
    from segkit.models.clv.gamma_gamma import fit_gamma_gamma, gg_expected_value
    from segkit.models.clv.inputs import CUSTOMER_INPUTS, inputs_from_base
    from segkit.models.clv.run import fit_rows
    from segkit.models.kmeans import sample_index

    cr = clustered.clusters
    x_all = cr.x
    fit_x = sample_index(len(x_all), fit_sample, 42)
    with threadpool_limits(limits=1, user_api="openmp"):  # the sample's best start, as CustomerKMeans
        start = KMeans(n_clusters=cr.k, n_init=10, random_state=42).fit(x_all[cr.sample_index]).cluster_centers_

    def kmeans_final() -> Any:
        with threadpool_limits(limits=1, user_api="openmp"):
            model = KMeans(n_clusters=cr.k, init=start, n_init=1, random_state=42).fit(x_all[fit_x])
            return model.labels_ if len(fit_x) == len(x_all) else model.predict(x_all)

    base = clustered.table.customers.select(pl.col("customer_id"),
                                            *[pl.col(f"_{c}").alias(c) for c in CUSTOMER_INPUTS])
    ins = inputs_from_base(base, clustered.table.windows.as_of)
    x = ins["repeat_purchases"].to_numpy().astype(float)
    t_x = ins["t_last"].to_numpy().astype(float)
    T = ins["T"].to_numpy().astype(float)
    m = ins["repeat_value"].fill_null(0.0).to_numpy()
    use = np.flatnonzero((x > 0) & (m > 0))
    rows = fit_rows(x.size, fit_sample)
    rows = np.arange(x.size) if rows is None else rows
    value_rows = fit_rows(use.size, fit_sample)
    picked = use if value_rows is None else use[value_rows]

    def clv_fits() -> Any:
        return fit_bgnbd(x[rows], t_x[rows], T[rows]), fit_gamma_gamma(x[picked], m[picked])

    params, gg = (f.params for f in clv_fits())
    repeat = np.isin(np.arange(x.size), use)

    def clv_scoring() -> Any:
        return (bgnbd_p_alive(params, x, t_x, T), bgnbd_expected(params, 365, x, t_x, T),
                gg_expected_value(gg, np.where(repeat, x, 0.0), np.where(repeat, m, 0.0)))

    return {"k-means final fit": kmeans_final, "CLV fits": clv_fits, "CLV scoring": clv_scoring}


def quiet(_step: str) -> None:
    """A progress callback that says nothing."""


def run_size(customers: int, rows: int, fit_sample: int | None) -> list[tuple[str, float, int]]:
    from segkit import config, pipeline

    cfg = config.load(None, use_env=False)
    if fit_sample is not None:
        cfg = dataclasses.replace(cfg, fit_sample=fit_sample)
    t0 = time.perf_counter()
    base = base_result(customers, rows, cfg)
    print(f"{customers:,} customers: table built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out: list[tuple[str, float, int]] = []
    wall, peak, clustered = measure(lambda: pipeline.add_clusters(base, quiet))
    out.append(("cluster (auto-k + final fit)", wall, peak))
    wall, peak, with_clv = measure(lambda: pipeline.add_clv(clustered))
    out.append(("clv (fits + scoring)", wall, peak))
    wall, peak, _ = measure(lambda: pipeline.add_validation(with_clv, quiet))
    out.append(("validate (nulls, stability)", wall, peak))
    out.append(("model steps together", sum(r[1] for r in out), max(r[2] for r in out)))
    wall, peak, _ = measure(lambda: pipeline.add_models(base, quiet))
    out.append(("post-engine pipeline (add_models, as segment runs the steps)", wall, peak))
    for name, call in final_fit_parts(with_clv, cfg.fit_sample).items():
        wall, peak, _ = measure(call)
        out.append((f"  of which {name}", wall, peak))
    return out


def segment_rss(customers: int, fit_sample: int | None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of ``segkit segment`` on a customer-level CSV of ``customers`` rows."""
    import datetime as dt
    import os
    import subprocess

    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    days = rng.integers(0, 730, customers)
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "customers.csv", Path(tmp) / "out"
        pl.DataFrame({"customer_id": [f"C{i:08d}" for i in range(customers)],
                      "annual_sales": np.round(rng.lognormal(10, 1.5, customers), 2),
                      "orders": rng.geometric(0.2, customers),
                      "last_order_date": np.datetime64(dt.date(2025, 12, 30)) - days.astype("timedelta64[D]"),
                      }).write_csv(path)
        cmd = [sys.executable, "-m", "segkit", "segment", str(path), "--input-kind", "customers", "--no-report",
               "-q", "-o", str(out)]
        env = dict(os.environ)
        if fit_sample is not None:
            cfg = Path(tmp) / "fit.toml"
            cfg.write_text(f"[clustering]\nfit_sample = {fit_sample}\n")
            cmd += ["--config", str(cfg)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if status != 0:
            raise SystemExit(f"segkit segment failed on {customers:,} customers (status {status})")
        return wall, usage.ru_maxrss * 1024


def rss_table(sizes: list[int], fit_sample: int | None) -> str:
    rows = {n: segment_rss(n, fit_sample) for n in sizes}
    lines = ["| customers | segment wall s | peak RSS MiB | RSS growth bytes/customer (from the smallest) |",
             "|---:|---:|---:|---:|"]
    n0, (_, r0) = sizes[0], rows[sizes[0]]
    for n, (wall, rss) in rows.items():
        slope = f"{(rss - r0) / (n - n0):.0f}" if n > n0 else ""
        lines.append(f"| {n:,} | {wall:.1f} | {rss / 2**20:,.0f} | {slope} |")
    return "\n".join(lines)


def table(results: dict[int, list[tuple[str, float, int]]]) -> str:
    lines = ["| customers | step | wall s | µs/customer | peak MiB (traced) | bytes/customer |",
             "|---:|---|---:|---:|---:|---:|"]
    for n, rows in results.items():
        for name, wall, peak in rows:
            lines.append(f"| {n:,} | {name} | {wall:.2f} | {wall / n * 1e6:.2f} | {peak / 2**20:.0f} | {peak / n:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", default="100k,1m,3m")
    ap.add_argument("--rows-per-customer", type=int, default=4)
    ap.add_argument("--fit-sample", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--segment-rss", action="store_true")
    args = ap.parse_args()
    if args.segment_rss:
        text = rss_table([parse_count(c) for c in args.customers.split(",")], args.fit_sample)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return
    run_size(5_000, 20_000, args.fit_sample)  # imports and first calls, kept out of the figures
    results: dict[int, list[tuple[str, float, int]]] = {}
    for n in (parse_count(c) for c in args.customers.split(",")):
        results[n] = run_size(n, n * args.rows_per_customer, args.fit_sample)
        print(table({n: results[n]}), file=sys.stderr)
    text = table(results)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text += f"\n\nPeak RSS of the whole process (table building included): {rss:,.0f} MiB\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
