"""Cluster validation: are there distinct groups at all, and how do the bands differ?

The question that decides the verdict is answered by ``models.nulls``: the clustering's strength
against every plausible one-population null (a copula of the observed features, one-time and
repeat buyers apart; customers simulated from the run's own buy-till-you-die fit), and bootstrap
stability per cluster. ``verdict`` is ``distinct`` only when every null rejects at p < 0.01,
``none`` when none does, ``inconclusive`` otherwise; unless distinct, the clusters are value bands
cut from a continuum (k = 1 is an allowed conclusion).

Everything else here is descriptive and labelled so. Tests of the clustering features across the
clusters found from them are significant by construction, also on one smooth population (Chen &
Witten 2023; Gao, Bien & Witten 2022), so they describe how the bands differ and never decide
whether groups exist. Every number is scipy's or scikit-learn's on the same data (tests compare):
- one-way ANOVA (``scipy.stats.f_oneway``) of each clustering feature, on the transformed but
  unstandardised values, with eta² = between-group SS / total SS;
- Kruskal-Wallis (``scipy.stats.kruskal``) with epsilon² = H / (n - 1);
- Tukey HSD (``scipy.stats.tukey_hsd``) for every pair of clusters;
- R² = between-cluster SS / total SS on the standardised features; silhouette (``cluster.silhouette``,
  equal to scikit-learn's) on the same fixed-seed sample as auto-k, read as Kaufman & Rousseeuw do;
  Calinski-Harabasz and Davies-Bouldin on all clustered customers.
Chi-square tests of independence (``scipy.stats.chi2_contingency``, no continuity correction, with
Cramér's V and the share of expected counts below 5) only for attributes that did not build the
clusters (channel, region, customer_type); cluster × tier and × rfm_segment are plain cross-tables,
since tier and RFM segment are made from the same recency, frequency and spend.
"""

from __future__ import annotations

from typing import Any

import math
from collections.abc import Callable
import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segkit.models.kmeans import ClusterResult, clustering_features, distinct_rows, silhouette, standardise
from segkit.config import Config
from segkit.customers.metrics import ATTRIBUTE_ROLES
from segkit.i18n import message
from segkit.models.btyd_null import NotRun, btyd_params, rfm_features
from segkit.models.nulls import (ALPHA, SAMPLE, BtydInputs, EarlyNull, Evidence, Stability, btyd_null,
                                 candidate_ks, copula_null, null_evidence, sample_rows, stability)
from segkit.models.verdict import DISTINCT

LOW_EXPECTED_WARN = 0.2
CATEGORICAL = ATTRIBUTE_ROLES  # attributes not used to build the clusters
CROSS_TABLES = ("tier", "rfm_segment")  # built from the clustering features: counts only
DESCRIPTIVE_NOTE = (
    "Descriptive: these tests compare the clusters on the features that built them, so they are "
    "significant by construction, also on one population (Chen & Witten 2023; Gao, Bien & Witten 2022). "
    "They describe how the bands differ; they are not evidence that distinct groups exist."
)
DESCRIPTIVE_NOTE_ZH = (
    "描述性统计：这些检验比较的是用来构建类别的特征本身，因此必然显著，即使数据只来自一个总体"
    "（Chen & Witten 2023；Gao, Bien & Witten 2022）。它们说明各分段如何不同，不能证明存在不同的客户群。"
)
STABILITY_NOTE = ("Stability shows whether a cluster is reproduced on resampled data; it is high on one "
                  "population too, so it does not show that groups exist.")
STABILITY_NOTE_ZH = "稳定性说明一个类别在重抽样数据上能否重现；单一总体的数据同样可以很稳定，因此它不能证明存在不同的客户群。"
SILHOUETTE_READING = (  # Kaufman & Rousseeuw (1990): upper bound, reading (en, zh)
    (0.25, "no substantial structure", "无实质性结构"),
    (0.5, "weak structure, could be artificial", "结构弱，可能是人为的"),
    (0.7, "reasonable structure", "结构合理"),
    (float("inf"), "strong structure", "结构强"),
)


def finite(x: Any) -> float | None:
    """A statistic for summary.json: a float, or None where it is NaN or infinite."""
    x = float(x)
    return x if math.isfinite(x) else None


def r_squared(x: np.ndarray, labels: np.ndarray) -> float:
    """Between-cluster sum of squares over total sum of squares, all columns together."""
    total = ((x - x.mean(axis=0)) ** 2).sum()
    within = sum(((x[labels == c] - x[labels == c].mean(axis=0)) ** 2).sum() for c in np.unique(labels))
    return float(1 - within / total) if total > 0 else float("nan")


def eta_squared(values: np.ndarray, labels: np.ndarray) -> float:
    total = ((values - values.mean()) ** 2).sum()
    between = sum(
        (labels == c).sum() * (values[labels == c].mean() - values.mean()) ** 2 for c in np.unique(labels)
    )
    return float(between / total) if total > 0 else float("nan")


TOP_LEVELS = 50  # columns of a cross table: the most frequent levels, then OTHERS
OTHERS = "(others)"


def cross_table(a: pl.Series, b: pl.Series, top: int = TOP_LEVELS) -> dict[str, Any]:
    """Counts of two categorical series (rows: sorted levels of a; nulls left out); no test.

    The columns are the ``top`` most frequent levels of ``b`` (``TOP_LEVELS``, 50; ties broken
    by name) and, when ``b`` has more, one column ``"(others)"`` summing the rest: a column with
    200,000 distinct regions gives a table of 51 columns, in time linear in the rows, and
    summary.json stays small (``chi_square`` reports the number of distinct levels as ``levels``).
    """
    df = pl.DataFrame({"a": a, "b": b}).drop_nulls().with_columns(pl.col("b").cast(pl.String))
    freq = df.group_by("b").len().sort(["len", "b"], descending=[True, False])
    kept = freq["b"].head(top)
    if freq.height > top:
        df = df.with_columns(pl.when(pl.col("b").is_in(kept.implode())).then(pl.col("b"))
                             .otherwise(pl.lit(OTHERS)).alias("b"))
    # the "=" prefix keeps a level named like the index column ("a") from colliding with it
    df = df.with_columns((pl.lit("=") + pl.col("b")).alias("b"))
    table = df.group_by("a", "b").len().pivot(on="b", index="a", values="len").fill_null(0).sort("a")
    cols = sorted(c for c in table.columns if c != "a" and c != "=" + OTHERS)
    cols += ["=" + OTHERS] if "=" + OTHERS in table.columns else []
    return {"rows": [str(r) for r in table["a"].to_list()], "columns": [c[1:] for c in cols],
            "counts": table.select(cols).to_numpy().astype(np.int64).tolist()}


def chi_square(a: pl.Series, b: pl.Series) -> dict[str, Any]:
    """Chi-square test of independence of two categorical series (rows with a null are left out)."""
    table = cross_table(a, b)
    obs = np.array(table["counts"], dtype=np.int64).reshape(len(table["rows"]), len(table["columns"]))
    if obs.shape[0] < 2 or obs.shape[1] < 2:
        which = "cluster" if obs.shape[0] < 2 else "the other variable"
        return {"skipped_reason": f"{which} has a single level; no association to test",
                "levels": obs.shape[1], "n": int(obs.sum())}
    chi2, p, dof, expected = stats.chi2_contingency(obs, correction=False)
    n = obs.sum()
    v = math.sqrt(chi2 / (n * (min(obs.shape) - 1)))
    low = float((expected < 5).mean())
    return {"chi2": float(chi2), "dof": int(dof), "p": float(p), "cramers_v": v,
            "low_expected_share": low, "n": int(n), "table": table,
            "levels": pl.DataFrame({"a": a, "b": b}).drop_nulls()["b"].n_unique()}


def silhouette_reading(s: float | None) -> tuple[str, str] | None:
    if s is None:
        return None
    return next((en, zh) for top, en, zh in SILHOUETTE_READING if s < top)


@dataclass
class Validation:
    anova: dict[str, Any] = field(default_factory=dict)
    kruskal: dict[str, Any] = field(default_factory=dict)
    tukey: dict[str, Any] = field(default_factory=dict)
    chi2: dict[str, Any] = field(default_factory=dict)
    cross_tables: dict[str, Any] = field(default_factory=dict)
    evidence: Evidence | None = None
    stability: Stability | None = None
    r2: float | None = None
    silhouette: float | None = None
    calinski_harabasz: float | None = None
    davies_bouldin: float | None = None
    k: int | None = None
    verdict: str = ""
    verdict_zh: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped_reason: str | None = None

    @property
    def distinct(self) -> bool:
        return self.evidence is not None and self.evidence.verdict.code == DISTINCT

    def summary(self) -> dict[str, Any]:
        reading = silhouette_reading(self.silhouette)
        ev = self.evidence
        tests = ev.summary() if ev else []
        return {
            "distinct": self.distinct, "groups": (self.k if self.distinct else 1) if self.k else None,
            "verdict": ev.verdict.code if ev else None, "verdict_text": self.verdict, "verdict_zh": self.verdict_zh,
            "null_tests": tests, "null_test": tests[0] if tests else None,
            "k_rule": ev.choice.rule if ev else None,
            "k_supported": list(ev.choice.supported) if ev else [],
            "stability": dict(self.stability.summary(), note=STABILITY_NOTE, note_zh=STABILITY_NOTE_ZH)
            if self.stability else None,
            "descriptive_note": DESCRIPTIVE_NOTE, "descriptive_note_zh": DESCRIPTIVE_NOTE_ZH,
            "anova": self.anova, "kruskal": self.kruskal, "tukey_hsd": self.tukey, "chi2": {
                k: {kk: vv for kk, vv in v.items() if kk != "table"} for k, v in self.chi2.items()
            },
            "contingency_tables": {k: v["table"] for k, v in self.chi2.items() if "table" in v},
            "cross_tables": self.cross_tables,
            "r2": self.r2, "silhouette": self.silhouette,
            "silhouette_reading": reading[0] if reading else None,
            "silhouette_reading_zh": reading[1] if reading else None,
            "calinski_harabasz": self.calinski_harabasz, "davies_bouldin": self.davies_bouldin,
            "alpha": ALPHA, "warnings": self.warnings, "skipped_reason": self.skipped_reason,
        }


def btyd_inputs(cr: ClusterResult, customers: pl.DataFrame, clv: Any, as_of: Any) -> BtydInputs | NotRun:
    """The buy-till-you-die null's inputs for the clustered customers (``cr.ids``), from the run's
    CLV result (``models.clv.run.ClvResult``) and ``as_of``; or why it cannot be drawn."""
    return _btyd_inputs_of(cr.ids, customers, clv, as_of)


def _btyd_inputs_of(ids: pl.Series | None, customers: pl.DataFrame, clv: Any, as_of: Any) -> BtydInputs | NotRun:
    if clv is None or ids is None or "_purchase_days" not in customers.columns:
        return NotRun("no purchase history to fit a purchase model to")
    gg = clv.gamma_gamma
    params = btyd_params(clv.model, clv.counting.params if clv.counting else None, gg.params if gg else None,
                         clv.skipped_reason, bool(gg and gg.converged))
    if isinstance(params, NotRun):
        return params
    first = pl.coalesce("_first_purchase_day", "first_order_date")
    df = pl.DataFrame({"customer_id": ids}).join(customers.select(
        "customer_id", (pl.lit(as_of) - first).dt.total_days().alias("T"), "recency_days",
        pl.col("_purchase_days").clip(lower_bound=1).alias("days"), "monetary",
    ), on="customer_id", how="left", maintain_order="left")
    T = df["T"].fill_null(0).to_numpy().astype(np.int64)
    x = rfm_features(df["recency_days"].to_numpy(), df["days"].to_numpy(), df["monetary"].to_numpy())
    return BtydInputs(params, np.maximum(T, 1), x)


def evidence_for(cr: ClusterResult, cfg: Config, btyd: BtydInputs | NotRun, early: tuple[EarlyNull, ...] = ()
                 ) -> Evidence:
    """Every null against the clustering features of ``cr``, at the k the run tests; ``early``:
    tests run beforehand from a ``NullPlan``."""
    fit = cr.fitted()
    ks = candidate_ks(cr.distinct_rows, fit.x_raw.shape[0], fit.k, cfg.k_min, cfg.k_max)
    return null_evidence(fit.x_raw, cr.features, fit.k, cfg.random_state, btyd, ks, fixed_k=cfg.k != "auto",
                         early=early)


@dataclass(frozen=True)
class NullPlan:
    """What the nulls will test, from the customer table alone, before k-means has run: the
    features ``cluster_customers`` will cluster, their fixed-seed sample and the k range auto-k (or
    the fixed k) will give. Its tests are used only where they match what ``evidence_for`` would run."""

    features: list[str]
    ids: pl.Series
    x_raw: np.ndarray
    rows: np.ndarray
    ks: tuple[int, ...]
    seed: int

    def copula(self) -> EarlyNull:
        return copula_null(self.x_raw[self.rows], self.features, self.seed, self.ks)

    def btyd(self, customers: pl.DataFrame, clv: Any, as_of: Any) -> EarlyNull | None:
        """The buy-till-you-die null's test from the run's CLV fit (None: it cannot be drawn)."""
        inputs = _btyd_inputs_of(self.ids, customers, clv, as_of)
        return None if isinstance(inputs, NotRun) else btyd_null(inputs, self.rows, self.seed, self.ks)


def null_plan(customers: pl.DataFrame, cfg: Config, custom: dict[str, pl.Expr] | None = None) -> NullPlan | None:
    """The ``NullPlan`` of a customer table; None when there will be nothing to cluster."""
    features, frame, x_raw, _ = clustering_features(customers, cfg, custom)
    if x_raw is None:
        return None
    distinct = distinct_rows(standardise(x_raw))
    k = cfg.k_min if cfg.k == "auto" else min(int(cfg.k), distinct)
    ks = candidate_ks(distinct, x_raw.shape[0], k, cfg.k_min, cfg.k_max)
    rows = sample_rows(x_raw.shape[0], SAMPLE, cfg.random_state)
    return NullPlan(features, frame["customer_id"], x_raw, rows, ks, cfg.random_state)


def validate(cr: ClusterResult, cfg: Config, roles: tuple[str, ...] = (),
             evidence: Evidence | Callable[[], Evidence] | None = None,
             btyd: BtydInputs | NotRun | None = None) -> Validation:
    """The verdict (from ``evidence``, else computed with ``btyd``), stability and the descriptive
    statistics of a clustering. ``evidence`` may be a call that waits for nulls running in a
    thread: it is made after the descriptive statistics."""
    v = Validation()
    if cr.labels is None:
        v.skipped_reason = cr.skipped_reason
        v.verdict, v.verdict_zh = _in_both(lambda lang: message("verdict", "skipped", lang, reason=cr.skipped_reason))
        return v
    fit = cr.fitted()
    v.k = fit.k
    v.stability = stability(fit.x, fit.labels, fit.k, cfg.random_state)
    describe_features(v, cr)
    customers = cr.customers.filter(pl.col("cluster").is_not_null())
    cluster_col = customers["cluster"].cast(pl.String)
    for name in CROSS_TABLES:
        v.cross_tables[name] = cross_table(cluster_col, customers[name].cast(pl.String))
    for name in [c for c in CATEGORICAL if c in roles]:
        res = chi_square(cluster_col, customers[name].cast(pl.String))
        v.chi2[name] = res
        if res.get("low_expected_share", 0) > LOW_EXPECTED_WARN:
            v.warnings.append(
                f"cluster × {name}: {res['low_expected_share']:.0%} of expected counts are below 5; "
                "the chi-square p-value is approximate"
            )
    fit_indices(v, cr)
    if evidence is None:
        v.evidence = evidence_for(cr, cfg, btyd or NotRun("no purchase-model fit"))
    else:
        v.evidence = evidence() if callable(evidence) else evidence
    v.verdict, v.verdict_zh = verdict(v.evidence, fit.k)
    return v


def describe_features(v: Validation, cr: ClusterResult) -> None:
    """ANOVA, Kruskal-Wallis and Tukey HSD per clustering feature (descriptive, see the module note)."""
    fit = cr.fitted()
    labels, x_raw = fit.labels, fit.x_raw
    groups = np.unique(labels)
    for j, feat in enumerate(cr.features):
        col = x_raw[:, j]
        parts = [col[labels == c] for c in groups]
        if np.ptp(col) == 0:
            v.anova[feat] = {"f": None, "p": None, "eta2": None, "skipped_reason": "constant feature"}
            v.kruskal[feat] = {"h": None, "p": None, "epsilon2": None, "skipped_reason": "constant feature"}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a group with zero variance: scipy says so, we report the numbers
            f, p = stats.f_oneway(*parts)
            h, kp = stats.kruskal(*parts)
        v.anova[feat] = {"f": finite(f), "p": finite(p), "eta2": finite(eta_squared(col, labels))}
        v.kruskal[feat] = {"h": finite(h), "p": finite(kp), "epsilon2": finite(h / (len(col) - 1))}
        if all(len(pt) >= 2 for pt in parts):
            diff, p = tukey_hsd(parts)
            v.tukey[feat] = [{"a": int(groups[a]), "b": int(groups[b]), "mean_diff": finite(diff[a, b]),
                              "p": finite(p[a, b])}
                             for a in range(len(groups)) for b in range(a + 1, len(groups))]


TUKEY_DF_INFINITE = 25_000  # R's ptukey (dlarg): above this many error degrees of freedom, df = infinity


def tukey_hsd(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Tukey HSD mean differences and p-values of every pair of groups, as ``scipy.stats.tukey_hsd``.

    Above ``TUKEY_DF_INFINITE`` error degrees of freedom the studentized range distribution is
    taken at infinite df, as R's ``ptukey`` does (relative change in p below 1e-3 there): scipy
    integrates over df up to 100,000 df, which took 2.7 s for 8 clusters of 100,000 customers."""
    n = np.array([len(pt) for pt in parts], dtype=np.float64)
    df = float(n.sum() - len(parts))
    if df <= TUKEY_DF_INFINITE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zero within-group variance: p-values are still defined
            res = stats.tukey_hsd(*parts)
        return res.statistic, res.pvalue
    means = np.array([pt.mean() for pt in parts])
    mse = sum(float(pt.var(ddof=1)) * (len(pt) - 1) for pt in parts) / df
    diff = means[:, None] - means[None, :]
    se = np.sqrt(mse / 2 * (1 / n[:, None] + 1 / n[None, :]))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.abs(diff) / se
    return diff, stats.studentized_range.sf(q, len(parts), np.inf)


def fit_indices(v: Validation, cr: ClusterResult) -> None:
    fit = cr.fitted()
    labels, x, idx = fit.labels, fit.x, fit.sample_index
    groups = np.unique(labels)
    v.r2 = finite(r_squared(x, labels))
    if len(np.unique(labels[idx])) > 1 and len(idx) > len(np.unique(labels[idx])):
        known = cr.sample_silhouette  # auto-k scored this partition of the sample already
        v.silhouette = finite(known if known is not None else silhouette(x[idx], labels[idx]))
    if len(groups) > 1 and len(labels) > len(groups):
        v.calinski_harabasz = finite(calinski_harabasz_score(x, labels))
        v.davies_bouldin = finite(davies_bouldin_score(x, labels))


def verdict(ev: Evidence, k: int) -> tuple[str, str]:
    """The one-sentence answer, in English and Chinese, from the nulls alone (SPEC §4)."""
    return _in_both(lambda lang: _verdict_text(ev, k, lang))


def _verdict_text(ev: Evidence, k: int, lang: str) -> str:
    v = ev.verdict

    def names(nulls: tuple[str, ...]) -> str:
        return message("verdict", "and", lang).join(message("verdict", f"null_{n}", lang) for n in nulls)

    figures = _figures(ev, lang)
    if v.code == DISTINCT:
        return message("verdict", "groups", lang, k=k, rejected=names(v.rejected), figures=figures)
    if not v.rejected:
        return message("verdict", "continuum", lang, k=k, kept=names(v.not_rejected), figures=figures)
    if not v.not_rejected:
        reason = next(t.reason for t in ev.tests if not t.ran)
        return message("verdict", "not_run", lang, k=k, rejected=names(v.rejected), missing=names(v.not_run),
                       reason=reason, figures=figures)
    meaning = message("verdict", "meaning_btyd" if "btyd" in v.not_rejected else "meaning_copula", lang)
    return message("verdict", "inconclusive", lang, k=k, rejected=names(v.rejected), kept=names(v.not_rejected),
                   meaning=meaning, figures=figures)


def _figures(ev: Evidence, lang: str) -> str:
    parts = []
    for t in ev.tests:
        name = message("verdict", f"short_{t.null}", lang)
        if not t.ran:
            parts.append(message("verdict", "null_not_run", lang, name=name, reason=t.reason))
            continue
        parts.append(message("verdict", "null_figure", lang, name=name, k=t.k, p=t.p, statistic=t.statistic,
                             statistic_name=message("verdict", f"stat_{t.statistic_name}", lang),
                             null_mean=t.null_mean, null_sd=t.null_sd))
    sampled = message("verdict", "sampled", lang, sample_size=ev.sample_size) if ev.sample_size < ev.customers else ""
    replicates = max(t.replicates for t in ev.tests)
    return message("verdict", "figures", lang, tests=message("verdict", "sep", lang).join(parts), replicates=replicates,
                   k_low=ev.ks[0], k_top=ev.ks[-1], sampled=sampled)


def _in_both(text: Callable[[str], str]) -> tuple[str, str]:
    return text("en"), text("zh")
