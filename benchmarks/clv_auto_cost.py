"""Cost of ``--clv-model auto`` against a single BG/NBD fit, on simulated customers.

Draws N customers from BG/NBD (CDNOW-like parameters, ages 100-640 days) with their purchase days
in a 90-day holdout (segkit.models.clv.simulate), then times, best of --repeat runs:
each model's fit on the calibration histories, the whole selection (three fits, holdout
log-likelihoods, Vuong's z), and the refit of the chosen model on all customers.

    .venv/bin/python benchmarks/clv_auto_cost.py --customers 100000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from segkit.models.clv.registry import MODELS
from segkit.models.clv.select import select_model
from segkit.models.clv.simulate import simulate_bgnbd_holdout

TRUE_BG = (0.55, 40.0, 0.7, 3.0)
HOLDOUT = 90.0


def best_of(repeat: int, f: object) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.process_time()
        out = f()  # type: ignore[operator]
        times.append(time.process_time() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.customers
    T = np.floor(rng.uniform(100, 640, n))
    x, t_x, k = simulate_bgnbd_holdout(n, *TRUE_BG, T, HOLDOUT, rng)
    t_x = np.floor(t_x)
    select_model(x[:2000], t_x[:2000], T[:2000], k[:2000], HOLDOUT)  # imports scipy outside the timing
    fits = {m: round(best_of(args.repeat, lambda m=m: MODELS[m].fit(x, t_x, T))[0], 3) for m in MODELS}
    total, (chosen, doc) = best_of(args.repeat, lambda: select_model(x, t_x, T, k, HOLDOUT))  # type: ignore[misc]
    print(json.dumps({"customers": n, "holdout_days": HOLDOUT, "cpu_seconds_fit": fits,
                      "cpu_seconds_selection": round(total, 3), "chosen": chosen, "reason": doc["reason"]},
                     indent=2))


if __name__ == "__main__":
    main()
