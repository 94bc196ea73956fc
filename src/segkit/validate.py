"""Are the clusters real? ANOVA, Kruskal-Wallis, Tukey HSD, chi-square, R², cluster indices.

Every statistic is scipy's or scikit-learn's on the same data (tests compare them):
- one-way ANOVA (``scipy.stats.f_oneway``) of each clustering feature, on the transformed but
  unstandardised values, with eta² = between-group SS / total SS;
- Kruskal-Wallis (``scipy.stats.kruskal``) with epsilon² = H / (n - 1);
- Tukey HSD (``scipy.stats.tukey_hsd``) for every pair of clusters;
- chi-square tests of independence (``scipy.stats.chi2_contingency``, no continuity correction)
  of cluster × tier, × rfm_segment and × each categorical column present, with Cramér's V and the
  share of expected counts below 5;
- R² = between-cluster SS / total SS on the standardised features; silhouette (``cluster.silhouette``,
  equal to scikit-learn's) on the same fixed-seed sample as auto-k, Calinski-Harabasz and Davies-Bouldin on all clustered customers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from .cluster import ClusterResult, silhouette
from .config import Config

ALPHA = 0.01
LOW_EXPECTED_WARN = 0.2
CATEGORICAL = ("channel", "region", "customer_type")


def _f(x) -> float | None:
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


def chi_square(a: pl.Series, b: pl.Series) -> dict:
    """Chi-square test of independence of two categorical series (rows with a null are left out)."""
    df = pl.DataFrame({"a": a, "b": b}).drop_nulls()
    table = df.group_by("a", "b").len().pivot(on="b", index="a", values="len").fill_null(0).sort("a")
    cols = sorted(c for c in table.columns if c != "a")
    obs = table.select(cols).to_numpy().astype(np.int64)
    if obs.shape[0] < 2 or obs.shape[1] < 2:
        which = "cluster" if obs.shape[0] < 2 else "the other variable"
        return {"skipped_reason": f"{which} has a single level; no association to test",
                "levels": obs.shape[1], "n": int(obs.sum())}
    chi2, p, dof, expected = stats.chi2_contingency(obs, correction=False)
    n = obs.sum()
    v = math.sqrt(chi2 / (n * (min(obs.shape) - 1)))
    low = float((expected < 5).mean())
    return {"chi2": float(chi2), "dof": int(dof), "p": float(p), "cramers_v": v,
            "low_expected_share": low, "n": int(n), "levels": len(cols),
            "table": {"rows": [str(r) for r in table["a"].to_list()], "columns": cols, "counts": obs.tolist()}}


@dataclass
class Validation:
    anova: dict = field(default_factory=dict)
    kruskal: dict = field(default_factory=dict)
    tukey: dict = field(default_factory=dict)
    chi2: dict = field(default_factory=dict)
    r2: float | None = None
    silhouette: float | None = None
    calinski_harabasz: float | None = None
    davies_bouldin: float | None = None
    verdict: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped_reason: str | None = None

    def summary(self) -> dict:
        return {
            "anova": self.anova, "kruskal": self.kruskal, "tukey_hsd": self.tukey, "chi2": {
                k: {kk: vv for kk, vv in v.items() if kk != "table"} for k, v in self.chi2.items()
            },
            "contingency_tables": {k: v["table"] for k, v in self.chi2.items() if "table" in v},
            "r2": self.r2, "silhouette": self.silhouette, "calinski_harabasz": self.calinski_harabasz,
            "davies_bouldin": self.davies_bouldin, "alpha": ALPHA, "verdict": self.verdict,
            "warnings": self.warnings, "skipped_reason": self.skipped_reason,
        }


def validate(cr: ClusterResult, cfg: Config, roles: tuple[str, ...] = ()) -> Validation:
    v = Validation()
    if cr.labels is None:
        v.skipped_reason = cr.skipped_reason
        v.verdict = f"No clusters to test: {cr.skipped_reason}."
        return v
    labels, x, x_raw = cr.labels, cr.x, cr.x_raw
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
        v.anova[feat] = {"f": _f(f), "p": _f(p), "eta2": _f(eta_squared(col, labels))}
        v.kruskal[feat] = {"h": _f(h), "p": _f(kp), "epsilon2": _f(h / (len(col) - 1))}
        if all(len(pt) >= 2 for pt in parts):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zero within-group variance: p-values are still defined
                res = stats.tukey_hsd(*parts)
            pairs = []
            for a in range(len(groups)):
                for b in range(a + 1, len(groups)):
                    pairs.append({"a": int(groups[a]), "b": int(groups[b]),
                                  "mean_diff": _f(res.statistic[a, b]), "p": _f(res.pvalue[a, b]),
                                  "significant": bool(res.pvalue[a, b] < ALPHA)})
            v.tukey[feat] = pairs
    customers = cr.customers.filter(pl.col("cluster").is_not_null())
    cluster_col = customers["cluster"].cast(pl.String)
    for name in ("tier", "rfm_segment", *[c for c in CATEGORICAL if c in roles]):
        res = chi_square(cluster_col, customers[name].cast(pl.String))
        v.chi2[name] = res
        if res.get("low_expected_share", 0) > LOW_EXPECTED_WARN:
            v.warnings.append(
                f"cluster × {name}: {res['low_expected_share']:.0%} of expected counts are below 5; "
                "the chi-square p-value is approximate"
            )
    v.r2 = _f(r_squared(x, labels))
    idx = cr.sample_index
    if len(np.unique(labels[idx])) > 1 and len(idx) > len(np.unique(labels[idx])):
        v.silhouette = _f(silhouette(x[idx], labels[idx]))
    if len(groups) > 1 and len(labels) > len(groups):
        v.calinski_harabasz = _f(calinski_harabasz_score(x, labels))
        v.davies_bouldin = _f(davies_bouldin_score(x, labels))
    v.verdict = verdict(v, cr)
    return v


def verdict(v: Validation, cr: ClusterResult) -> str:
    tested = {f: a["p"] for f, a in v.anova.items() if a.get("p") is not None}
    r2 = f"; the clusters explain {v.r2:.0%} of the variance (R²)" if v.r2 is not None else ""
    failing = [f for f, p in tested.items() if p >= ALPHA]
    untested = [f for f, a in v.anova.items() if a.get("p") is None]
    if tested and not failing and not untested:
        return (f"The {cr.k} clusters are real: every feature differs across them "
                f"(ANOVA p < {ALPHA} for all {len(tested)}){r2}.")
    why = ", ".join([f"{f} (p = {tested[f]:.3g})" for f in failing] + [f"{f} (constant)" for f in untested])
    return f"Not every feature differs across the {cr.k} clusters at p < {ALPHA}: {why}{r2}."
