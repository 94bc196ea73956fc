"""Cost of the CLV step alone on simulated customers (SPEC §8 counts it among the model steps: benchmarks/model_steps.py).

Draws N customers from known BG/NBD and Gamma-Gamma parameters (see segkit.models.clv.simulate), then
times the fit of both models and the per-customer predictions, best of --repeat runs, and prints
the recovered parameters next to the true ones.

    .venv/bin/python benchmarks/clv_cost.py --customers 100000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import polars as pl

from segkit import config
from segkit.models import clv
from segkit.models.clv.simulate import simulate_bgnbd, simulate_values

TRUE_BG = {"r": 0.8, "alpha": 60.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 2.0, "q": 3.5, "v": 500.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.customers
    T = np.floor(rng.uniform(30, 730, n))
    x, t_x = simulate_bgnbd(n, *TRUE_BG.values(), T, rng)
    m = simulate_values(x, *TRUE_GG.values(), rng)
    inputs = pl.DataFrame({"customer_id": np.arange(n).astype(str), "repeat_purchases": x.astype(np.int64),
                           "t_last": t_x, "T": T, "repeat_value": pl.Series(m).replace(0.0, None)})
    settings = config.ClvSettings()
    clv.fit_clv(inputs.head(1000), settings)  # imports scipy once, outside the timing
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = clv.fit_clv(inputs, settings)
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "customers": n,
        "repeat_customers": int((x > 0).sum()),
        "fit_and_predict_seconds_best": round(min(times), 3),
        "fit_and_predict_seconds_all": [round(t, 3) for t in times],
        "true": {"bgnbd": TRUE_BG, "gamma_gamma": TRUE_GG},
        "fitted": res.summary()["params"],
    }, indent=2))


if __name__ == "__main__":
    main()
