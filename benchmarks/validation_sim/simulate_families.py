"""Seeded simulation harness (issue 22): false-"distinct" rate and power of segkit's verdict.

Every simulated book (``families``) goes through the steps a real book goes through, with
segkit's own code:

1. customer table -> the clustering features (``segkit.models.btyd_null.rfm_features`` = the three
   base features of ``segkit.models.kmeans.feature_frame``; the books have no order ids, so
   frequency = purchase days, as the buy-till-you-die null counts them);
2. ``segkit.models.kmeans.CustomerKMeans`` (k = auto by silhouette in 2..8, n_init 10, random_state 42);
3. CLV: ``segkit.models.clv.fit_clv`` on the book's repeat_purchases / t_last / T / repeat_value
   (BG/NBD + Gamma-Gamma by maximum likelihood, default settings), as ``run_clv`` does;
4. ``segkit.models.nulls.null_evidence``: the split copula and the buy-till-you-die null on the
   fixed-seed sample of at most 2,000 customers, 100 replicates each, k = 2..8, the k rule and the
   intersection-union verdict, exactly as ``segkit segment`` runs them.

The other k rules of ``segkit.models.verdict.choose_k`` (smallest supported k, gap, largest excess)
are recomputed from the same evidence (supported k and weakest-null excess) for comparison.
``run_dataset`` returns one flat dict per book; ``summarise`` turns a list of them into the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from families import Book, Family
from segkit.models import btyd_null
from segkit.models import verdict as vd

SEED = 42  # the run's random_state (segkit's default)
N_CUSTOMERS = 2000
FEATURES = ["log_recency_days", "log_frequency", "log_monetary"]
KS = tuple(range(2, 9))


def clv_fit(book: Book) -> btyd_null.BtydParams | btyd_null.NotRun:
    """BG/NBD + Gamma-Gamma fitted on the book by segkit's CLV step; the null's parameters or why not."""
    import polars as pl
    from segkit.config import ClvSettings
    from segkit.models import clv

    inputs = pl.DataFrame({
        "customer_id": np.arange(book.n).astype(str), "repeat_purchases": book.repeat_purchases,
        "t_last": book.t_last, "T": book.T,
        "repeat_value": pl.Series(book.repeat_value).fill_nan(None),
    })
    res = clv.fit_clv(inputs, ClvSettings())
    gg = res.gamma_gamma
    return btyd_null.btyd_params(res.model, res.counting.params if res.counting else None,
                                 gg.params if gg else None, res.skipped_reason, bool(gg and gg.converged))


def silhouette_k(x_raw: np.ndarray, value: np.ndarray) -> int:
    from segkit.models.kmeans import CustomerKMeans, standardise

    return int(CustomerKMeans("auto", 2, 8, SEED, 10, 10000).fit(standardise(x_raw), value).k_)


def other_rules(choice: vd.KChoice) -> dict[str, int | None]:
    """k by the rules segkit does not use, from the same supported k and weakest-null excess."""
    sup, ex = choice.supported, choice.excess
    if not sup:
        return {"k_smallest": None, "k_gap": None, "k_max_excess": None}
    gap = next(k for k in sup if k + 1 not in ex or ex[k] >= ex[k + 1] - vd.GAP_TOLERANCE or k == sup[-1])
    return {"k_smallest": min(sup), "k_gap": gap, "k_max_excess": max(sup, key=lambda k: (ex[k], -k))}


def new_tests(x_raw: np.ndarray, T: np.ndarray, params: btyd_null.BtydParams | btyd_null.NotRun,
              k_sil: int, replicates: int) -> dict[str, Any]:
    """segkit's null evidence for the book: verdict, k, rule, each null's p."""
    from segkit.models.nulls import BtydInputs, null_evidence

    btyd = params if isinstance(params, btyd_null.NotRun) else BtydInputs(params, T, x_raw)
    t0 = time.process_time()
    ev = null_evidence(x_raw, FEATURES, k_sil, SEED, btyd, KS, replicates=replicates)
    out: dict[str, Any] = {"cpu_nulls_s": time.process_time() - t0, "verdict": ev.verdict.code,
                           "k": ev.choice.k, "k_rule": ev.choice.rule, "supported": list(ev.choice.supported),
                           "excess": {str(k): v for k, v in ev.choice.excess.items()}, **other_rules(ev.choice)}
    for t in ev.tests:
        out[f"p_{t.null}"] = t.p
    out["null_tests"] = ev.summary()
    return out


def run_dataset(family: Family, seed: int, replicates: int = 100) -> dict[str, Any]:
    """One book of ``family`` drawn with ``seed`` through the whole pipeline (module note)."""
    from threadpoolctl import threadpool_limits

    t_start = time.perf_counter()
    c_start = time.process_time()
    with threadpool_limits(limits=1):
        book = family.draw(N_CUSTOMERS, np.random.default_rng([seed, 22]))
        x_raw = btyd_null.rfm_features(book.recency_days, book.frequency, book.monetary)
        k_sil = silhouette_k(x_raw, book.monetary)
        params = clv_fit(book)
        row: dict[str, Any] = {
            "family": family.name, "seed": seed, "groups": family.groups, "k_silhouette": k_sil,
            "one_time_share": float(np.mean(book.frequency == 1)),
            "btyd_ran": not isinstance(params, btyd_null.NotRun),
            "btyd_reason": params.reason if isinstance(params, btyd_null.NotRun) else None,
            **new_tests(x_raw, np.asarray(book.T), params, k_sil, replicates),
        }
    row["wall_s"] = time.perf_counter() - t_start
    row["cpu_s"] = time.process_time() - c_start
    return row


# ------------------------------------------------------------------------------ the table

def _mean(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else None


def _rate(rows: Sequence[dict[str, Any]], test: Any) -> float | None:
    vals = [bool(test(r)) for r in rows]
    return float(np.mean(vals)) if vals else None


def summarise(rows: Sequence[dict[str, Any]], families: Sequence[Family]) -> list[dict[str, Any]]:
    """One line per family: rate of "distinct" (false for one population, power for planted) and
    "inconclusive", k accuracy (planted: verdict distinct and k = planted k) of segkit's rule and of
    the others, how often each null rejects, mean p per null, time per dataset."""
    out = []
    for fam in families:
        rs = [r for r in rows if r["family"] == fam.name]
        if not rs:
            continue
        kk = fam.groups
        line: dict[str, Any] = {"family": fam.name, "planted_k": kk, "seeds": len(rs)}
        line["distinct"] = _rate(rs, lambda r: r["verdict"] == vd.DISTINCT)
        line["inconclusive"] = _rate(rs, lambda r: r["verdict"] == vd.INCONCLUSIVE)
        for key in ("k", "k_smallest", "k_gap", "k_max_excess"):
            line[f"acc_{key}"] = (_rate(rs, lambda r, key=key: r["verdict"] == vd.DISTINCT and r[key] == kk)
                                  if kk > 1 else None)
        line["k_sil_acc"] = _rate(rs, lambda r: r["k_silhouette"] == kk) if kk > 1 else None
        for n in ("split_copula", "btyd"):
            line[f"reject_{n}"] = _rate(rs, lambda r, n=n: (r.get(f"p_{n}") or 1.0) < vd.ALPHA)
            line[f"mean_p_{n}"] = _mean(rs, f"p_{n}")
        line["btyd_not_run"] = int(sum(not r["btyd_ran"] for r in rs))
        line["cpu_nulls_s"], line["cpu_s"] = _mean(rs, "cpu_nulls_s"), _mean(rs, "cpu_s")
        out.append(line)
    return out


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.0f}%"
    if isinstance(v, float):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    return str(v)


COLUMNS = [
    ("family", "family", None), ("k", "planted_k", None), ("seeds", "seeds", None),
    ("\"distinct\"", "distinct", "%"), ("inconclusive", "inconclusive", "%"),
    ("k acc. (segkit: silhouette's k if backed, else smallest supported)", "acc_k", "%"),
    ("k acc. (smallest supported)", "acc_k_smallest", "%"), ("k acc. (gap rule)", "acc_k_gap", "%"),
    ("k acc. (max excess)", "acc_k_max_excess", "%"), ("silhouette k acc.", "k_sil_acc", "%"),
    ("copula rejects", "reject_split_copula", "%"), ("BTYD rejects", "reject_btyd", "%"),
    ("mean p copula", "mean_p_split_copula", None), ("mean p BTYD", "mean_p_btyd", None),
    ("CPU s nulls", "cpu_nulls_s", None), ("CPU s/dataset", "cpu_s", None),
]


def markdown(lines: Sequence[dict[str, Any]]) -> str:
    head = "| " + " | ".join(c[0] for c in COLUMNS) + " |"
    sep = "|" + "|".join(["---"] * len(COLUMNS)) + "|"
    body = []
    for x in lines:
        cells = [_fmt(x.get(key), pct == "%") for _, key, pct in COLUMNS]
        if x.get("btyd_not_run"):
            cells[COLUMNS.index(("BTYD rejects", "reject_btyd", "%"))] += f" ({x['btyd_not_run']} not run)"
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])
