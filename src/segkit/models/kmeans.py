"""k-means on RFM features: auto-k by silhouette, stable numbering, plain-words labels.

The silhouette picks how many bands to cut; it does not show that the bands are distinct groups
(``models.nulls`` answers that, and k = 1 is an allowed answer there).

Features: log1p(recency_days), log1p(frequency), log1p(max(monetary, 0)), plus any extra
numeric columns named in the config, standardised. Customers without a purchase are left out.
Clusters are numbered by descending mean monetary value (cluster 0 = most valuable).
Degenerate data (too few customers, identical customers) gets a reason instead of a crash.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits
from sklearn.exceptions import ConvergenceWarning
from scipy.spatial.distance import cdist

from segkit.config import Config
from segkit.customers.metrics import with_clusters
from segkit.errors import ConfigError
from segkit.customers.sums import fmean

BASE_FEATURES = ("log_recency_days", "log_frequency", "log_monetary")


def feature_frame(customers: pl.DataFrame, extra: tuple[str, ...] = (),
                  custom: dict[str, pl.Expr] | None = None) -> tuple[list[str], pl.DataFrame]:
    """The clustering features of customers who bought at least once (unstandardised).

    ``custom`` replaces the base features (name -> expression) for inputs without order dates
    (customer-level tables); every customer with all of them present is then clustered.
    """
    bad = [c for c in extra if c not in customers.columns or not customers.schema[c].is_numeric()]
    if bad:
        numeric = [c for c, t in customers.schema.items() if t.is_numeric() and not c.startswith("_")]
        msg = f"config: clustering.extra_features names '{bad[0]}', not a numeric customer column; use one of {', '.join(numeric)}"
        raise ConfigError(msg)
    if custom:
        frame = customers.select("customer_id", pl.col("monetary").alias("_value"),
                                 *[e.alias(n) for n, e in custom.items()],
                                 *[pl.col(c).cast(pl.Float64).fill_null(0.0).alias(c) for c in extra])
        return list(custom) + list(extra), frame.drop_nulls()
    eligible = customers.filter(pl.col("last_order_date").is_not_null())
    names = list(BASE_FEATURES) + list(extra)
    frame = eligible.select(
        "customer_id",
        pl.col("monetary").alias("_value"),
        pl.col("recency_days").cast(pl.Float64).log1p().alias("log_recency_days"),
        pl.col("frequency").cast(pl.Float64).log1p().alias("log_frequency"),
        pl.col("monetary").clip(lower_bound=0).log1p().alias("log_monetary"),
        *[pl.col(c).cast(pl.Float64).fill_null(0.0).alias(c) for c in extra],
    )
    return names, frame


def standardise(x: np.ndarray) -> np.ndarray:
    """z-scores per column (population std); a constant column becomes zeros."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[np.ptp(x, axis=0) == 0] = 1.0
    return (x - mean) / std


def sample_index(n: int, size: int, random_state: int) -> np.ndarray:
    """Fixed-seed sample of at most ``size`` row indices (sorted); all rows when n <= size."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def distinct_rows(x: np.ndarray) -> int:
    """Number of distinct rows of ``x`` (one lexsort; several times faster than
    ``np.unique(axis=0)`` on 100,000 rows)."""
    if x.shape[0] == 0:
        return 0
    srt = x[np.lexsort(x.T[::-1])]
    return int(1 + (srt[1:] != srt[:-1]).any(axis=1).sum())


def silhouettes(x: np.ndarray, labelings: list[np.ndarray], chunk: int = 1024) -> list[float]:
    """Mean silhouette coefficient of each labeling of the same rows, each the same number as
    ``sklearn.metrics.silhouette_score``.

    The distances are computed once, a block of rows at a time, and summed per cluster of every
    labeling with one matrix product: on few features this is several times faster than
    scikit-learn's path, and scoring the candidates of auto-k together shares the distances.
    """
    n = x.shape[0]
    parts = []
    for labels in labelings:
        _, codes = np.unique(labels, return_inverse=True)
        k = int(codes.max()) + 1
        parts.append((codes, k, np.bincount(codes, minlength=k).astype(np.float64)))
    offsets = np.cumsum([0] + [k for _, k, _ in parts])
    onehot = np.zeros((n, offsets[-1]))
    for (codes, _, _), off in zip(parts, offsets):
        onehot[np.arange(n), off + codes] = 1.0
    scores = np.empty((len(parts), n))
    for start in range(0, n, chunk):
        all_sums = cdist(x[start:start + chunk], x) @ onehot
        for j, ((codes, k, counts), off) in enumerate(zip(parts, offsets)):
            sums = all_sums[:, off:off + k]
            own = codes[start:start + chunk]
            rows = np.arange(len(own))
            a = sums[rows, own] / np.maximum(counts[own] - 1, 1)
            means = sums / counts
            means[rows, own] = np.inf
            b = means.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                sc = (b - a) / np.maximum(a, b)
            sc[counts[own] == 1] = 0.0
            scores[j, start:start + chunk] = np.nan_to_num(sc)
    return [float(row.mean()) for row in scores]


def silhouette(x: np.ndarray, labels: np.ndarray, chunk: int = 1024) -> float:
    """Mean silhouette coefficient, the same number as ``sklearn.metrics.silhouette_score``."""
    return silhouettes(x, [labels], chunk)[0]


class CustomerKMeans:
    """k-means with automatic k (best silhouette on a fixed-seed sample) and stable numbering.

    With ``k="auto"`` every candidate k in ``k_min..k_max`` is fitted on the fixed-seed sample of
    at most ``silhouette_sample`` customers (best of ``n_init`` k-means++ starts) and scored by its
    silhouette there; when there are more customers than the sample, the chosen k is then fitted on
    everyone with one Lloyd run started from the sample's best centres (SPEC §4's documented
    equivalent of ``n_init`` starts: the search over starts happens on the sample). A fixed k is
    fitted the same way. This keeps k-means fast on large books (100,000 customers) while the
    choice still rests on the silhouette of the sample. Above ``fit_sample`` customers that last
    Lloyd run is on a fixed-seed sample of ``fit_sample`` customers (SPEC §9), and every customer is
    labelled by its nearest fitted centre (``KMeans.predict``).

    Parameters are stored as given; ``fit`` sets ``k_``, ``labels_``, ``cluster_centers_`` (in the
    standardised space, renumbered), ``silhouette_by_k_``, ``sample_silhouette_`` (the silhouette of
    ``labels_`` when the sample is every customer, else None), ``reduced_reason_`` and
    ``fit_index_`` (the rows of the final fit: all of them unless there are more than ``fit_sample``).
    """

    def __init__(self, k: int | str = "auto", k_min: int = 2, k_max: int = 8, random_state: int = 42,
                 n_init: int = 10, silhouette_sample: int = 5000, fit_sample: int | None = None):
        self.k = k
        self.k_min = k_min
        self.k_max = k_max
        self.random_state = random_state
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.fit_sample = fit_sample  # None: the final fit is on every customer

    def _kmeans(self, k: int, x: np.ndarray, init: np.ndarray | None = None) -> KMeans:
        """Best of ``n_init`` k-means++ starts; with ``init``, one run from those centres."""
        if init is not None:
            return KMeans(n_clusters=k, init=init, n_init=1, random_state=self.random_state).fit(x)
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(x)

    def fit(self, x: np.ndarray, value: np.ndarray) -> CustomerKMeans:
        """Cluster rows of ``x``; number clusters by descending mean of ``value``."""
        # One OpenMP thread: on few features each Lloyd step is tiny, and OpenMP's spin-waiting
        # threads next to polars' pool made a 10,000-customer fit 50x slower on two cores. Entered
        # once for every fit: entering it costs about as much as a small fit.
        with threadpool_limits(limits=1, user_api="openmp"), warnings.catch_warnings():
            # k is capped at the number of distinct rows, so a convergence warning adds nothing
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self._fit(x, value)

    def _fit(self, x: np.ndarray, value: np.ndarray) -> CustomerKMeans:
        n = x.shape[0]
        distinct = distinct_rows(x)
        self.distinct_rows_ = distinct
        self.reduced_reason_ = None
        self.silhouette_by_k_ = {}
        self.sample_silhouette_: float | None = None
        idx = sample_index(n, self.silhouette_sample, self.random_state)
        self.sample_index_ = idx
        self.fit_index_ = idx if len(idx) == n else sample_index(n, self.fit_sample or n, self.random_state)
        if self.k == "auto":
            top = min(self.k_max, distinct, n - 1)
            ks = list(range(self.k_min, top + 1))
            if not ks:
                ks = [2]
                self.reduced_reason_ = f"only {distinct} distinct customers; k fixed at 2"
            xs = x[idx]  # candidates are fitted on the sample; the chosen k is refitted on everyone
            models = {k: self._kmeans(k, xs) for k in ks}
            scorable = [k for k in ks if 1 < len(np.unique(models[k].labels_)) < len(idx)]
            scored = dict(zip(scorable, silhouettes(xs, [models[k].labels_ for k in scorable])))
            best: tuple[float, int, Any] | None = None
            for k in ks:
                score = scored.get(k, float("nan"))
                self.silhouette_by_k_[k] = score
                if best is None or (not np.isnan(score) and (np.isnan(best[0]) or score > best[0])):
                    best = (score, k, models[k])
            assert best is not None  # ks is never empty
            _, self.k_, model = best
            if len(idx) < n:  # the best of n_init starts on the sample is the start on everyone
                model = self._final(self.k_, x, model.cluster_centers_)
            else:  # the sample is everyone: the chosen candidate is the final partition
                self.sample_silhouette_ = scored.get(self.k_)
            if top < self.k_max and self.reduced_reason_ is None:
                self.reduced_reason_ = f"k searched in {self.k_min}..{top} only: {distinct} distinct customers"
        else:
            k = int(self.k)
            if k > distinct:
                self.reduced_reason_ = f"--k {k} reduced to {distinct}: only {distinct} distinct customers"
                k = distinct
            self.k_ = k
            model = self._kmeans(k, x[idx])
            if len(idx) < n:
                model = self._final(k, x, model.cluster_centers_)
        labels = model.labels_ if len(self.fit_index_) == n else model.predict(x)
        means = np.array([value[labels == c].mean() if np.any(labels == c) else -np.inf
                          for c in range(self.k_)])
        order = sorted(range(self.k_), key=lambda c: (-means[c], tuple(model.cluster_centers_[c])))
        remap = np.empty(self.k_, dtype=np.int64)
        remap[order] = np.arange(self.k_)
        self.labels_ = remap[labels]
        self.cluster_centers_ = model.cluster_centers_[order]
        self.inertia_ = float(model.inertia_)  # of the rows fitted (fit_index_)
        return self

    def _final(self, k: int, x: np.ndarray, centres: np.ndarray) -> KMeans:
        """One Lloyd run from ``centres`` on every row, or on the fixed-seed sample ``fit_index_``."""
        rows = self.fit_index_
        return self._kmeans(k, x if len(rows) == x.shape[0] else x[rows], init=centres)


LABEL_WORDS = {
    "log_monetary": (("low value", "低价值"), ("mid value", "中价值"), ("high value", "高价值")),
    "log_frequency": (("occasional", "低频"), ("regular", "中频"), ("frequent", "高频")),
    # recency: a low value is good (recent)
    "log_recency_days": (("recent", "近期活跃"), ("cooling", "活跃度下降"), ("dormant", "长期未购")),
}


SAME_LEVEL_Z = 0.3  # centroids closer than this on a feature get the same word for it


def _levels(z: list[float]) -> list[int]:
    """0 (low) / 1 (mid) / 2 (high) per cluster on one feature, relative to the other clusters:
    each centroid's place between the lowest and the highest centroid, in thirds (k = 2: one low,
    one high). When all centroids lie within SAME_LEVEL_Z of each other the feature does not tell
    the clusters apart and the level comes from the z-score itself (-0.5 / +0.5)."""
    lo, hi = min(z), max(z)
    if hi - lo < SAME_LEVEL_Z:
        mean = sum(z) / len(z)
        return [0 if mean < -0.5 else (2 if mean > 0.5 else 1)] * len(z)
    return [0 if (v - lo) / (hi - lo) < 1 / 3 else (2 if (v - lo) / (hi - lo) > 2 / 3 else 1) for v in z]


def centroid_labels(centers: list[dict[str, float]]) -> list[tuple[str, str]]:
    """Plain words for each cluster (English, Chinese) that tell the clusters apart.

    The words are relative to the run's other clusters: on each of monetary, frequency and
    recency each cluster is placed between the lowest and the highest centroid (``_levels``), so two clusters with mean
    recency 49 and 171 days are "recent" and "dormant", not both "cooling". Custom features name
    the ones that stand out (|z| > 0.5). Clusters whose words still coincide get their number
    added."""
    if not centers:
        return []
    if not any(f in centers[0] for f in LABEL_WORDS):
        words = [[(("high " if z > 0 else "low ") + f.removeprefix("log_"), ("高" if z > 0 else "低") + f.removeprefix("log_"))
                  for f, z in c.items() if abs(z) > 0.5] or [("average", "平均")] for c in centers]
    else:
        feats = [f for f in ("log_monetary", "log_frequency", "log_recency_days") if f in centers[0]]
        levels = {f: _levels([c[f] for c in centers]) for f in feats}
        words = [[LABEL_WORDS[f][levels[f][i]] for f in feats] for i in range(len(centers))]
    labels = [(" · ".join(w[0] for w in ws), "·".join(w[1] for w in ws)) for ws in words]
    seen = [lab[0] for lab in labels]
    return [(en, zh) if seen.count(en) == 1 else (f"{en} (cluster {i})", f"{zh}（第 {i} 类）")
            for i, (en, zh) in enumerate(labels)]


class Fitted(NamedTuple):
    k: int
    x: np.ndarray
    x_raw: np.ndarray
    labels: np.ndarray
    sample_index: np.ndarray


@dataclass
class ClusterResult:
    customers: pl.DataFrame  # with cluster and cluster_label filled
    features: list[str]
    k: int | None = None
    k_choice: str = ""
    k_choice_zh: str = ""
    skipped_reason: str | None = None
    reduced_reason: str | None = None
    x: np.ndarray | None = None  # standardised features of clustered customers
    x_raw: np.ndarray | None = None  # transformed, unstandardised
    labels: np.ndarray | None = None
    sample_index: np.ndarray | None = None
    distinct_rows: int = 0  # distinct rows of x
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    sample_silhouette: float | None = None  # of ``labels`` on the sample, when auto-k scored this very partition
    profiles: list[dict[str, Any]] = field(default_factory=list)
    excluded_customers: int = 0
    ids: pl.Series | None = None  # customer_id of each clustered row (the order of x, x_raw, labels)

    def fitted(self) -> Fitted:
        """The arrays of a clustering that ran; only call it when ``labels`` is set."""
        assert self.labels is not None and self.x is not None and self.x_raw is not None
        assert self.k is not None and self.sample_index is not None
        return Fitted(self.k, self.x, self.x_raw, self.labels, self.sample_index)

    def summary(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "k_choice": self.k_choice,
            "k_choice_zh": self.k_choice_zh,
            "features": self.features,
            "skipped_reason": self.skipped_reason,
            "reduced_reason": self.reduced_reason,
            "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k.items()},
            "customers_clustered": 0 if self.labels is None else int(len(self.labels)),
            "customers_excluded_no_purchase": self.excluded_customers,
            "profiles": self.profiles,
        }


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _profiles(members: pl.DataFrame, k: int, centers: np.ndarray, features: list[str]) -> list[dict[str, Any]]:
    n = members.height
    out: list[dict[str, Any]] = []
    labels = centroid_labels([dict(zip(features, centers[c].tolist())) for c in range(k)])
    for c in range(k):
        g = members.filter(pl.col("cluster") == c)
        center = dict(zip(features, centers[c].tolist()))
        label, label_zh = labels[c]

        def dominant(col: str) -> str | None:
            if col not in g.columns or g.height == 0:
                return None
            counts = g.group_by(col).len().sort(["len", col], descending=[True, False], nulls_last=True)
            top: str | None = counts[col][0]
            return top

        out.append({
            "cluster": c,
            "label": label,
            "label_zh": label_zh,
            "customers": g.height,
            "share": g.height / n if n else 0.0,
            "mean_recency_days": _float(g["recency_days"].mean()),
            "median_recency_days": _float(g["recency_days"].median()),
            "mean_frequency": _float(g["frequency"].mean()),
            "median_frequency": _float(g["frequency"].median()),
            "mean_monetary": fmean(g["monetary"].to_list()),  # exact sums: polars' float mean follows its thread count
            "median_monetary": _float(g["monetary"].median()),
            "mean_annual_spend": fmean(g["annual_spend"].to_list()),
            "median_annual_spend": _float(g["annual_spend"].median()),
            "dominant_tier": dominant("tier"),
            "dominant_segment": dominant("rfm_segment"),
            "dominant_persona": dominant("persona"),
            "centroid_z": center,
        })
    # the same words for two clusters: number them so every label is unique
    seen: dict[str, int] = {}
    for p in out:
        base = p["label"]
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            p["label"] = f"{base} ({seen[base]})"
            p["label_zh"] = f"{p['label_zh']}({seen[base]})"
    return out


def k_choice(cfg: Config, n: int) -> tuple[str, str]:
    """How k was chosen, in English and Chinese: a number of bands, not a discovery (the null
    test in ``models.nulls`` decides whether they are distinct groups). Above ``fit_sample``
    customers it also says that the clusters were fitted on a sample (``fit_note``)."""
    note, note_zh = fit_note(cfg, n)
    if cfg.k != "auto":
        return "fixed" + note, "指定" + note_zh
    sampled = n > cfg.silhouette_sample
    where = f"a fixed-seed sample of {cfg.silhouette_sample:,}" if sampled else "all"
    where_zh = f"固定随机种子抽取的 {cfg.silhouette_sample:,} 位" if sampled else "全部"
    return (f"auto: best silhouette for k in {cfg.k_min}..{cfg.k_max} on {where} customers{note}",
            f"自动：在{where_zh}客户上取 k = {cfg.k_min}..{cfg.k_max} 中轮廓系数最高者{note_zh}")


def fit_note(cfg: Config, n: int) -> tuple[str, str]:
    """'' when all ``n`` customers were fitted; else the clause (en, zh) saying that the final fit
    ran on a fixed-seed sample of ``clustering.fit_sample`` and every customer went to its nearest centre."""
    if n <= cfg.fit_sample:
        return "", ""
    en = (f"; clusters fitted on a fixed-seed sample of {cfg.fit_sample:,} of the {n:,} customers, "
          "every customer assigned to the nearest cluster centre")
    return (en, f"；聚类中心在固定随机种子抽取的 {cfg.fit_sample:,} 位客户（共 {n:,} 位）上拟合，每位客户归入最近的中心")


def k_choice_by_nulls(refit: ClusterResult, cfg: Config, first: ClusterResult) -> ClusterResult:
    """``refit`` (clustered again at the k the nulls chose) saying so, with the silhouettes of the
    first, silhouette-chosen clustering."""
    import dataclasses

    en, zh = k_choice(cfg, len(refit.labels) if refit.labels is not None else 0)
    return dataclasses.replace(
        refit, silhouette_by_k=first.silhouette_by_k,
        k_choice=f"{en}; k = {first.k} was not supported by the one-population nulls, k = {refit.k} is the "
                 "smallest k at which every null rejects",
        k_choice_zh=f"{zh}；k = {first.k} 未获单一总体零假设检验支持，k = {refit.k} 是所有零假设检验均拒绝的最小 k")


def clustering_features(customers: pl.DataFrame, cfg: Config, custom: dict[str, pl.Expr] | None = None
                        ) -> tuple[list[str], pl.DataFrame, np.ndarray | None, str | None]:
    """The feature names, their frame (``feature_frame``) and raw matrix; the matrix is None, with
    the reason, when there is nothing to cluster."""
    features, frame = feature_frame(customers, cfg.extra_features, custom)
    if frame.height < 3:
        return features, frame, None, (f"only {frame.height} customer(s) with a purchase; at least 3 are needed "
                                       "to form 2 clusters")
    x_raw = frame.select(features).to_numpy().astype(np.float64)
    if np.all(np.ptp(x_raw, axis=0) == 0):
        return features, frame, None, "all customers have identical recency, frequency and monetary values"
    return features, frame, x_raw, None


def cluster_customers(customers: pl.DataFrame, cfg: Config,
                      custom: dict[str, pl.Expr] | None = None) -> ClusterResult:
    features, frame, x_raw, reason = clustering_features(customers, cfg, custom)
    excluded = customers.height - frame.height
    result = ClusterResult(customers=with_clusters(customers), features=features, excluded_customers=excluded)
    n = frame.height
    if x_raw is None:
        result.skipped_reason = reason
        return result
    x = standardise(x_raw)
    model = CustomerKMeans(cfg.k, cfg.k_min, cfg.k_max, cfg.random_state, cfg.n_init, cfg.silhouette_sample,
                           cfg.fit_sample)
    model.fit(x, frame["_value"].to_numpy())
    if model.k_ < 2:
        result.skipped_reason = "fewer than 2 distinct customers; no groups to form"
        return result
    members = customers.join(
        frame.select("customer_id").with_columns(pl.Series("_cl", model.labels_)), on="customer_id", how="left",
        maintain_order="left",
    )
    members = members.with_columns(pl.col("_cl").cast(pl.Int64).alias("cluster")).drop("_cl")
    profiles = _profiles(members.filter(pl.col("cluster").is_not_null()), model.k_, model.cluster_centers_, features)
    labels = pl.DataFrame({"cluster": list(range(model.k_)), "_label": [p["label"] for p in profiles]},
                          schema={"cluster": pl.Int64, "_label": pl.String})
    members = members.join(labels, on="cluster", how="left", maintain_order="left").with_columns(
        pl.col("_label").alias("cluster_label")).drop("_label")
    result.customers = with_clusters(customers, members["cluster"], members["cluster_label"])
    result.k = model.k_
    result.k_choice, result.k_choice_zh = k_choice(cfg, n)
    result.reduced_reason = model.reduced_reason_
    result.x, result.x_raw, result.labels = x, x_raw, model.labels_
    result.sample_index = model.sample_index_
    result.distinct_rows = model.distinct_rows_
    result.ids = frame["customer_id"]
    result.silhouette_by_k = model.silhouette_by_k_
    result.sample_silhouette = model.sample_silhouette_
    result.profiles = profiles
    return result
