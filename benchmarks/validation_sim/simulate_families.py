"""Seeded simulation harness for issue 22: false-"distinct" rate and power of the null tests.

Every simulated book (``families``) goes through the pipeline a real book goes through:

1. customer table -> the clustering features (``btyd_null.rfm_features`` = the three base
   features of ``segkit.cluster.feature_frame``);
2. ``segkit.cluster.CustomerKMeans`` (k = auto by silhouette in 2..8, n_init 10, random_state 42);
3. CLV: ``segkit.clv.fit_clv`` on the book's repeat_purchases / t_last / T / repeat_value
   (BG/NBD + Gamma-Gamma by maximum likelihood, default settings), as ``run_clv`` does;
4. the nulls, all on the same fixed-seed sample of at most 2,000 customers (``segkit.nulltest``):
   - *old*: ``segkit.nulltest.null_test`` (copula, R² of scikit-learn k-means at the silhouette's
     k, 100 replicates) alone decides, as segkit did before issue 22; the BTYD null with the same
     statistic is recorded beside it (``old_btyd_p``);
   - *new*: chain statistics (R², simplified silhouette) over k = 2..8 (``kcurve``) against the
     copula, the split copula (``split_copula``) and the BTYD null (100 replicates each), max-T
     p-values; then for each set of nulls in ``VARIANTS`` (split + BTYD = ``MAIN``, copula + BTYD,
     all three) ``verdict.choose_k`` (every rule recorded) and the intersection-union
     ``verdict.verdict``.

``run_dataset`` returns one flat dict per book; ``summarise`` turns a list of them into the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import btyd_null
import kcurve
import verdict as vd
from families import Book, Family
from split_copula import SplitCopula

SEED = 42  # the run's random_state (segkit's default)
N_CUSTOMERS = 2000


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
    return btyd_null.btyd_params(res.bgnbd.params if res.bgnbd else None, gg.params if gg else None,
                                 res.skipped_reason, bool(gg and gg.converged))


def silhouette_k(x_raw: np.ndarray, value: np.ndarray) -> int:
    from segkit.models.kmeans import CustomerKMeans, standardise

    return int(CustomerKMeans("auto", 2, 8, SEED, 10, 10000).fit(standardise(x_raw), value).k_)


def old_tests(x_raw: np.ndarray, k: int, sampler: btyd_null.BtydSampler | None,
              replicates: int) -> tuple[float, float | None]:
    """(copula p, BTYD p) of segkit's pre-issue-22 statistic: R² of scikit-learn k-means at k."""
    from segkit.models import nulls as nulltest

    cop = nulltest.null_test(x_raw, k, SEED, replicates=replicates)
    if sampler is None:
        return cop.p, None
    rows = nulltest.sample_rows(x_raw.shape[0], nulltest.SAMPLE, SEED)
    rng = np.random.default_rng([SEED, 3])
    with nulltest._one_thread():
        obs = nulltest.kmeans_r2(x_raw[rows], k, SEED)
        null = np.array([nulltest.kmeans_r2(sampler.sample(rows.size, rng), k, SEED) for _ in range(replicates)])
    return cop.p, float((1 + (null >= obs).sum()) / (replicates + 1))


VARIANTS = {"sb": ("split_copula", "btyd"), "cb": ("copula", "btyd"), "csb": ("copula", "split_copula", "btyd")}
MAIN = "sb"  # the recommended set of nulls (NOTES.md)


def new_tests(x_raw: np.ndarray, T: np.ndarray, params: btyd_null.BtydParams | btyd_null.NotRun,
              k_sil: int, replicates: int) -> dict[str, Any]:
    """Curves of the three nulls on the fixed-seed sample; k and verdict for every variant."""
    from segkit.models import nulls as nulltest

    rows = nulltest.sample_rows(x_raw.shape[0], nulltest.SAMPLE, SEED)
    xs = x_raw[rows]
    observed = kcurve.chain(xs, SEED)
    samplers = {"copula": lambda: nulltest.GaussianCopula(xs, SEED).sample,
                "split_copula": lambda: SplitCopula(xs, SEED, nulltest.GaussianCopula).sample}
    if not isinstance(params, btyd_null.NotRun):
        samplers["btyd"] = lambda: btyd_null.BtydSampler(params, T[rows]).sample
    out: dict[str, Any] = {}
    curves = {}
    for name, make in samplers.items():
        t0 = time.process_time()
        curves[name] = kcurve.curve_test(name, xs, make(), SEED, replicates, observed=observed)
        out[f"cpu_{name}_s"] = time.process_time() - t0
        out[f"p_{name}"] = curves[name].p
    for tag, names in VARIANTS.items():
        cs = [curves[n] for n in names if n in curves]
        missing = [vd.not_run(n, params.reason) for n in names if n not in curves and isinstance(params, btyd_null.NotRun)]
        choice = vd.choose_k(cs, k_sil)
        entries = vd.results_at(cs, choice, missing)
        out[f"verdict_{tag}"] = vd.verdict(entries).code
        out[f"k_{tag}"] = choice.k
        out[f"k_rule_{tag}"] = choice.rule
        out[f"k_smallest_{tag}"] = vd.choose_k(cs, k_sil, how="smallest").k
        out[f"k_max_excess_{tag}"] = vd.choose_k(cs, k_sil, how="max_excess").k
        out[f"k_gap_{tag}"] = vd.choose_k(cs, k_sil, how="gap").k
        out[f"excess_{tag}"] = choice.excess
        if tag == MAIN:
            out["null_tests"] = [e.summary() for e in entries]
    return out


def run_dataset(family: Family, seed: int, replicates: int = 100, old: bool = True) -> dict[str, Any]:
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
            **new_tests(x_raw, book.T, params, k_sil, replicates),
        }
        if old:
            sampler = None if isinstance(params, btyd_null.NotRun) else btyd_null.BtydSampler(params, book.T)
            row["old_copula_p"], row["old_btyd_p"] = old_tests(x_raw, k_sil, sampler, replicates)
            row["old_distinct"] = row["old_copula_p"] < vd.ALPHA
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


def summarise(rows: Sequence[dict[str, Any]], families: Sequence[Family], main: str = MAIN) -> list[dict[str, Any]]:
    """One line per family: rate of "distinct" (false for one population, power for planted) per
    variant of the null set, k accuracy (planted: verdict distinct and k = planted k), the rate at
    which each null rejects, mean p per null, the old (copula alone) rate, time per dataset."""
    out = []
    for fam in families:
        rs = [r for r in rows if r["family"] == fam.name]
        if not rs:
            continue
        kk = fam.groups
        line: dict[str, Any] = {"family": fam.name, "planted_k": kk, "seeds": len(rs)}
        for tag in VARIANTS:
            line[f"distinct_{tag}"] = _rate(rs, lambda r, t=tag: r[f"verdict_{t}"] == vd.DISTINCT)
            line[f"inconclusive_{tag}"] = _rate(rs, lambda r, t=tag: r[f"verdict_{t}"] == vd.INCONCLUSIVE)
            for rule in ("gap", "smallest", "max_excess"):
                have = [r for r in rs if f"k_{rule}_{tag}" in r]
                line[f"k_acc_{rule}_{tag}"] = (_rate(have, lambda r, t=tag, u=rule, g=kk: r[f"verdict_{t}"] == vd.DISTINCT
                                                     and r[f"k_{u}_{t}"] == g) if kk > 1 and have else None)
        line["k_sil_acc"] = _rate(rs, lambda r, g=kk: r["k_silhouette"] == g) if kk > 1 else None
        for n in ("copula", "split_copula", "btyd"):
            line[f"reject_{n}"] = _rate(rs, lambda r, n=n: (r.get(f"p_{n}") or 1.0) < vd.ALPHA)
            line[f"mean_p_{n}"] = _mean(rs, f"p_{n}")
        line["btyd_not_run"] = int(sum(not r["btyd_ran"] for r in rs))
        olds = [r for r in rs if "old_distinct" in r]
        line["old_distinct"] = _rate(olds, lambda r: r["old_distinct"]) if olds else None
        line["old_btyd_reject"] = (_rate([r for r in olds if r.get("old_btyd_p") is not None],
                                         lambda r: r["old_btyd_p"] < vd.ALPHA) if olds else None)
        line["wall_s"], line["cpu_s"] = _mean(rs, "wall_s"), _mean(rs, "cpu_s")
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
    ("\"distinct\" split+BTYD", "distinct_sb", "%"), ("inconclusive", "inconclusive_sb", "%"),
    ("k acc. (smallest supported k, default)", "k_acc_smallest_sb", "%"), ("k acc. (gap rule)", "k_acc_gap_sb", "%"),
    ("k acc. (max excess)", "k_acc_max_excess_sb", "%"),
    ("\"distinct\" copula+BTYD", "distinct_cb", "%"), ("\"distinct\" all three", "distinct_csb", "%"),
    ("silhouette k acc.", "k_sil_acc", "%"),
    ("copula rejects", "reject_copula", "%"), ("split rejects", "reject_split_copula", "%"),
    ("BTYD rejects", "reject_btyd", "%"),
    ("mean p copula", "mean_p_copula", None), ("mean p split", "mean_p_split_copula", None),
    ("mean p BTYD", "mean_p_btyd", None),
    ("old: copula alone \"distinct\"", "old_distinct", "%"), ("old stat: BTYD rejects", "old_btyd_reject", "%"),
    ("CPU s/dataset", "cpu_s", None),
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
