"""Record lifetimes' Pareto/NBD and MBG/NBD fits, for tests/test_clv_models.py.

lifetimes 0.11.3 needs an older stack than segkit's, so this runs in its own environment:

    python3 -m venv /tmp/lt-venv
    /tmp/lt-venv/bin/pip install "numpy<2" "pandas<2" "scipy<1.12" "lifetimes==0.11.3"
    /tmp/lt-venv/bin/python tests/data/record_lifetimes_models.py

Data sets (as segkit's tests/data/record_lifetimes.py builds them):

- ``cdnow``: lifetimes' CDNOW summary (2,357 customers, weeks, calibration 39 weeks), the data
  of the published fits (Pareto/NBD: r 0.553, alpha 10.58, s 0.606, beta 11.67); horizon 39.
- ``cdnow_daily``: the same customers from lifetimes' ``CDNOW_sample.txt`` transactions in
  segkit's conventions: purchase days (days with a positive amount), daily periods, as_of
  1998-07-01 (the day after the last transaction); horizon 365.
- ``non_uk``: ../shared/datasets/online_retail_non_uk.csv (rows without CustomerID left out,
  amount = Quantity x UnitPrice, the invoice date's day, days before as_of 2011-12-10 whose net
  amount is positive); horizon 365.

Frequency / recency / T come from lifetimes' own ``summary_data_from_transaction_data``
(for cdnow: the shipped summary). Fits, no penalizer:

- ``ParetoNBDFitter().fit`` with its defaults (Nelder-Mead on the raw parameters, tol 1e-4, one
  random start drawn from N(1, 0.05)) after ``np.random.seed(SEED)``; the same fit with seeds
  0..4 is recorded as ``pareto_nbd_seeds`` to show how far lifetimes' own answer moves;
- ``ModifiedBetaGeoFitter().fit`` with its defaults first (BFGS from log-parameters 0.1),
  then the other starts / tolerances of FIT_TRIES when it stops with "precision loss".

Writes into tests/data/: per data set ``lifetimes_models_<name>.json`` (parameters, total
log-likelihood in the data's time unit computed by lifetimes' own functions at its
parameters, lifetimes' minimised objective, fit settings, versions) and
``lifetimes_models_<name>.csv.gz`` (per customer: frequency, recency, T and, per model,
log-likelihood, p_alive and expected purchases over the horizon; for Pareto/NBD also lifetimes'
``conditional_probability_of_n_purchases_up_to_time`` for k in PMF_K over the horizon, which
the holdout score of ``--clv-model auto`` uses).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import lifetimes
import numpy as np
import pandas as pd
import scipy
from lifetimes import ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

HERE = Path(__file__).resolve().parent
OUT = HERE  # tests/data
DATASETS = HERE.parents[1] / ".." / "shared" / "datasets"
SEED = 0
PMF_K = (0, 1, 2, 5)  # Pareto/NBD conditional P(k purchases over the horizon), recorded per customer
FIT_TRIES = [  # lifetimes' own default first; its BFGS stops with "precision loss" on some data
    (None, 1e-7), (np.zeros(4), 1e-7), (np.log([0.5, 2.0, 0.5, 2.0]), 1e-7), (None, 1e-6), (np.zeros(4), 1e-6),
]


# ------------------------------------------------------------------------------- data sets

def cdnow_weeks() -> pd.DataFrame:
    s = load_cdnow_summary_data_with_monetary_value()
    return s[["frequency", "recency", "T"]]


def cdnow_daily(as_of: str) -> pd.DataFrame:
    path = files("lifetimes") / "datasets" / "CDNOW_sample.txt"
    tx = pd.read_csv(str(path), sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "amount"],
                     dtype={"master_id": str, "customer_id": str, "date": str})
    tx = tx.assign(date=pd.to_datetime(tx["date"], format="%Y%m%d"))
    return _summary(tx[["customer_id", "date", "amount"]], as_of)


def online_retail(path: Path, as_of: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"CustomerID": str, "InvoiceNo": str, "StockCode": str})
    df = df[df["CustomerID"].notna() & (df["CustomerID"] != "")]
    df = df.assign(
        customer_id=df["CustomerID"].astype(float).astype(int).astype(str),
        date=pd.to_datetime(df["InvoiceDate"].str[:10]),
        amount=df["Quantity"].astype(float) * df["UnitPrice"].astype(float),
    )
    return _summary(df[["customer_id", "date", "amount"]], as_of)


def _summary(tx: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """Purchase days (positive net per customer and day) before as_of -> lifetimes' summary."""
    tx = tx[tx["date"] < pd.Timestamp(as_of)]
    days = tx.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
    days = days[days["amount"] > 0]
    s = summary_data_from_transaction_data(days, "customer_id", "date", observation_period_end=as_of, freq="D")
    return s[["frequency", "recency", "T"]]


# ------------------------------------------------------------------------------------ fits

def fit_pareto(s: pd.DataFrame, seed: int) -> ParetoNBDFitter:
    np.random.seed(seed)
    with np.errstate(all="ignore"):
        return ParetoNBDFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])


def fit_mbg(s: pd.DataFrame) -> tuple[ModifiedBetaGeoFitter, dict[str, Any]]:
    for init, tol in FIT_TRIES:
        try:
            with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
                m = ModifiedBetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"],
                                                                  initial_params=init, tol=tol)
            return m, {"initial_log_params": None if init is None else init.tolist(), "tol": tol}
        except ConvergenceError:
            continue
    raise RuntimeError("ModifiedBetaGeoFitter did not converge from any start")


def pareto_ll(params: list[float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(ParetoNBDFitter._conditional_log_likelihood(params, x, t_x, T))


def mbg_ll(params: list[float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """lifetimes' MBG/NBD objective is a mean; one customer at a time gives each one's ll."""
    logp = np.log(params)
    one = np.ones(1)
    return np.array([-ModifiedBetaGeoFitter._negative_log_likelihood(logp, x[i:i + 1], t_x[i:i + 1], T[i:i + 1], one, 0.0)
                     for i in range(x.size)])


# ---------------------------------------------------------------------------------- record

def record(name: str, s: pd.DataFrame, meta: dict[str, Any], horizon: float) -> None:
    s = s.sort_index()
    x, t_x, T = s["frequency"].to_numpy(float), s["recency"].to_numpy(float), s["T"].to_numpy(float)
    pnbd = fit_pareto(s, SEED)
    mbg, how = fit_mbg(s)
    p_par = [float(pnbd.params_[k]) for k in ("r", "alpha", "s", "beta")]
    m_par = [float(mbg.params_[k]) for k in ("r", "alpha", "a", "b")]
    with np.errstate(all="ignore"):
        out = s.assign(
            pnbd_ll=pareto_ll(p_par, x, t_x, T),
            pnbd_p_alive=np.asarray(pnbd.conditional_probability_alive(x, t_x, T)),
            pnbd_expected=np.asarray(pnbd.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T)),
            **{f"pnbd_pmf_{k}": np.asarray(pnbd.conditional_probability_of_n_purchases_up_to_time(k, horizon, x, t_x, T))
               for k in PMF_K},
            mbg_ll=mbg_ll(m_par, x, t_x, T),
            mbg_p_alive=np.asarray(mbg.conditional_probability_alive(x, t_x, T)),
            mbg_expected=np.asarray(mbg.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T)),
        )
    out.index.name = "customer_id"
    OUT.mkdir(exist_ok=True)
    with gzip.open(OUT / f"lifetimes_models_{name}.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        out.to_csv(fh, float_format="%.12g")
    seeds = [dict(zip(("r", "alpha", "s", "beta"), map(float, fit_pareto(s, k).params_))) for k in range(5)]
    doc = {
        "lifetimes_version": lifetimes.__version__,
        **meta,
        "horizon": horizon,
        "customers": int(len(s)),
        "repeat_customers": int((s["frequency"] > 0).sum()),
        "pareto_nbd": dict(zip(("r", "alpha", "s", "beta"), p_par)),
        "pareto_nbd_log_likelihood": float(out["pnbd_ll"].sum()),
        "pareto_nbd_fit": {"method": "Nelder-Mead (lifetimes default)", "tol": 1e-4, "seed": SEED,
                           "objective_scaled": float(pnbd._negative_log_likelihood_)},
        "pareto_nbd_seeds": seeds,
        "mbg_nbd": dict(zip(("r", "alpha", "a", "b"), m_par)),
        "mbg_nbd_log_likelihood": float(out["mbg_ll"].sum()),
        "mbg_nbd_fit": {**how, "method": "BFGS on log-parameters (lifetimes default)",
                        "objective_scaled_mean": float(mbg._negative_log_likelihood_)},
        "versions": {"numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
                     "python": sys.version.split()[0]},
    }
    (OUT / f"lifetimes_models_{name}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(name, doc["customers"], doc["pareto_nbd"], doc["mbg_nbd"], how)


def main() -> None:
    record("cdnow", cdnow_weeks(),
           {"dataset": "lifetimes.datasets cdnow_customers_summary_with_transactions", "time_unit": "week"}, 39)
    record("cdnow_daily", cdnow_daily("1998-07-01"),
           {"dataset": "lifetimes.datasets CDNOW_sample.txt", "as_of": "1998-07-01", "time_unit": "day"}, 365)
    record("non_uk", online_retail(DATASETS / "online_retail_non_uk.csv", "2011-12-10"),
           {"dataset": "online_retail_non_uk.csv", "as_of": "2011-12-10", "time_unit": "day"}, 365)


if __name__ == "__main__":
    main()
