"""Record lifetimes' BG/NBD and Gamma-Gamma fits on the Online Retail files, for test_clv.py.

lifetimes 0.11.3 needs an older stack than segkit's, so this runs in its own environment:

    python3 -m venv /tmp/lt-venv
    /tmp/lt-venv/bin/pip install "numpy<2" "pandas<2" "scipy<1.12" "lifetimes==0.11.3"
    /tmp/lt-venv/bin/python tests/data/record_lifetimes.py

It builds the transactions the way segkit's cleaning does (rows without CustomerID left out,
amount = Quantity x UnitPrice, the invoice date's day), keeps the days before as_of whose net
amount per customer is positive, and lets lifetimes' own summary_data_from_transaction_data
compute frequency / recency / T / monetary_value (daily periods, observation end = as_of). It then
writes, per dataset, the fitted parameters and log-likelihoods (JSON) and every customer's
inputs and outputs (gzipped CSV) into tests/data/.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import lzma
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import lifetimes
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

HERE = Path(__file__).resolve().parent
DATASETS = HERE.parents[1] / ".." / "shared" / "datasets"
HORIZON = 365
CASES = [  # name, file, as_of
    ("non_uk", "online_retail_non_uk.csv", "2011-12-10"),
    ("full", "online_retail_full.csv.xz", "2011-12-10"),
]


def purchase_days(path: Path, as_of: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"CustomerID": str, "InvoiceNo": str, "StockCode": str})
    df = df[df["CustomerID"].notna() & (df["CustomerID"] != "")]
    df = df.assign(
        customer_id=df["CustomerID"].astype(float).astype(int).astype(str),
        date=pd.to_datetime(df["InvoiceDate"].str[:10]),
        amount=df["Quantity"].astype(float) * df["UnitPrice"].astype(float),
    )
    df = df[df["date"] < pd.Timestamp(as_of)]
    days = df.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
    return days[days["amount"] > 0]


FIT_TRIES = [  # lifetimes' own default first; its BFGS stops with "precision loss" on some data
    (None, 1e-7), (np.zeros(4), 1e-7), (np.log([0.5, 2.0, 0.5, 2.0]), 1e-7), (None, 1e-6), (np.zeros(4), 1e-6),
]


def fit_bgnbd(s: pd.DataFrame):
    for init, tol in FIT_TRIES:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # lifetimes prints the optimiser output on failure
                bgf = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"],
                                                            initial_params=init, tol=tol)
            return bgf, {"initial_log_params": None if init is None else init.tolist(), "tol": tol}
        except ConvergenceError:
            continue
    return None, None


def record(name: str, s: pd.DataFrame, meta: dict, horizon: float) -> None:
    s = s.sort_index()
    bgf, how = fit_bgnbd(s)
    rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    out = s.assign(
        p_alive=bgf.conditional_probability_alive(s["frequency"], s["recency"], s["T"]),
        expected_purchases=bgf.conditional_expected_number_of_purchases_up_to_time(
            horizon, s["frequency"], s["recency"], s["T"]),
        expected_purchase_value=ggf.conditional_expected_average_profit(s["frequency"], s["monetary_value"]),
    )
    out.index.name = "customer_id"
    with gzip.open(HERE / f"lifetimes_{name}.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        out.to_csv(fh, float_format="%.10g")
    doc = {
        "lifetimes_version": lifetimes.__version__,
        **meta,
        "horizon": horizon,
        "customers": int(len(s)),
        "repeat_customers": int(len(rep)),
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "bgnbd_fit": how,
        # lifetimes keeps the mean negative log-likelihood on its rescaled time axis
        "bgnbd_mean_neg_log_likelihood_scaled": float(bgf._negative_log_likelihood_),
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
        "gamma_gamma_mean_neg_log_likelihood": float(ggf._negative_log_likelihood_),
        "versions": {"numpy": np.__version__, "pandas": pd.__version__, "python": sys.version.split()[0]},
    }
    (HERE / f"lifetimes_{name}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(name, doc["customers"], doc["bgnbd"], how, doc["gamma_gamma"])


def online_retail(path: Path, as_of: str) -> pd.DataFrame:
    days = purchase_days(path, as_of)
    return summary_data_from_transaction_data(days, "customer_id", "date", monetary_value_col="amount",
                                              observation_period_end=as_of, freq="D")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, file, as_of in CASES:
            path = DATASETS / file
            if path.suffix == ".xz":
                plain = Path(tmp) / path.stem
                if not plain.exists():
                    with lzma.open(path) as src, plain.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                path = plain
            record(name, online_retail(path, as_of), {"dataset": file, "as_of": as_of}, HORIZON)
    # CDNOW (the 2,357-customer sample of Fader & Hardie, as shipped with lifetimes; weeks):
    # the data where BG/NBD and Gamma-Gamma are identified, the published reference fit.
    cdnow = load_cdnow_summary_data_with_monetary_value()
    record("cdnow", cdnow, {"dataset": "lifetimes.datasets cdnow_customers_summary_with_transactions"}, 39)


if __name__ == "__main__":
    main()
