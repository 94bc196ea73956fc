"""Cost of the null tests on the 2,000-customer sample (what the model steps at 100k customers pay).

Usage: ../../.venv/bin/python bench_costs.py [--repeat 3]

Times (best of --repeat, wall and CPU, one thread) on one CDNOW-like book:
- btyd_sim: drawing 100 BTYD replicates of 2,000 customers (no clustering);
- old_copula_k / old_btyd_k: segkit's statistic (scikit-learn k-means, n_init 3) at one k, 100 replicates;
- scan_sklearn_19 / scan_sklearn_39: the brief's k scan, scikit-learn at every k in 2..8 with 19 / 39
  replicates per null (both nulls) plus 100 at the chosen k (both nulls);
- copula_build / split_build: fitting the copula null(s) (correlation calibration);
- chain_observed: one chain (k = 2..8) on the observed sample;
- chain_copula / chain_split / chain_btyd: the k-means chain (``kcurve``) over k = 2..8, 100
  replicates, one null (building the null included);
- chain_both: split copula + BTYD, i.e. the whole new test (k scan included).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def best(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import btyd_null as bn
    import families
    import kcurve
    from segkit.models import nulls as nulltest
    from split_copula import SplitCopula
    from threadpoolctl import threadpool_limits

    fam = {f.name: f for f in families.all_families()}["bgnbd_cdnow"]
    book = fam.draw(2000, np.random.default_rng(0))
    x = bn.rfm_features(book.recency_days, book.frequency, book.monetary)
    params = bn.BtydParams(*families.CDNOW.values(), *families.CDNOW_GG)
    sampler = bn.BtydSampler(params, book.T)
    seed, reps = 42, 100

    def sklearn_null(draw: Callable[[int, np.random.Generator], np.ndarray], k: int, b: int) -> None:
        rng = np.random.default_rng(1)
        with nulltest._one_thread():
            nulltest.kmeans_r2(x, k, seed)
            for _ in range(b):
                nulltest.kmeans_r2(draw(2000, rng), k, seed)

    def scan(b: int) -> None:
        copula = nulltest.GaussianCopula(x, seed)
        for draw in (copula.sample, sampler.sample):
            for k in kcurve.KS:
                sklearn_null(draw, k, b)
            sklearn_null(draw, 2, reps)

    def chain_test(which: str) -> None:
        draws = {"copula": lambda: nulltest.GaussianCopula(x, seed).sample, "btyd": lambda: sampler.sample,
                 "split": lambda: SplitCopula(x, seed, nulltest.GaussianCopula).sample}
        observed = kcurve.chain(x, seed)
        for name in (["split", "btyd"] if which == "both" else [which]):
            kcurve.curve_test(name, x, draws[name](), seed, reps, observed=observed)

    cases: dict[str, Callable[[], object]] = {
        "btyd_sim": lambda: [sampler.sample(2000, np.random.default_rng(i)) for i in range(reps)],
        "old_copula_k2": lambda: nulltest.null_test(x, 2, seed),
        "old_btyd_k2": lambda: sklearn_null(sampler.sample, 2, reps),
        "scan_sklearn_19": lambda: scan(19),
        "scan_sklearn_39": lambda: scan(39),
        "copula_build": lambda: nulltest.GaussianCopula(x, seed),
        "split_build": lambda: SplitCopula(x, seed, nulltest.GaussianCopula),
        "chain_observed": lambda: kcurve.chain(x, seed),
        "chain_copula": lambda: chain_test("copula"),
        "chain_split": lambda: chain_test("split"),
        "chain_btyd": lambda: chain_test("btyd"),
        "chain_both": lambda: chain_test("both"),
    }
    out = {}
    with threadpool_limits(limits=1):
        for name, call in cases.items():
            wall, cpu = best(call, args.repeat)
            out[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
            print(f"{name:18s} wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)
    print(json.dumps({"load_average": os.getloadavg(), "costs": out}))


if __name__ == "__main__":
    main()
