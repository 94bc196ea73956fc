"""The intersection-union verdict over several one-population nulls, and k from the null evidence.

SPEC §4: groups are ``distinct`` only when *every* plausible one-population null rejects at
p < 0.01 (an intersection-union test: its false-"distinct" rate is at most that of the null that
describes the data), ``none`` when no null rejects, ``inconclusive`` otherwise. A null that could
not be run (the BTYD null without a CLV fit) does not reject, so the verdict cannot be
``distinct``; ``verdict`` says which nulls rejected and which were not run.

``choose_k`` reads k from the statistic curves of every null (``kcurve.CurveTest``). When every
null rejects at some common k (max-T adjusted p < alpha there: the groups are distinct), the
silhouette's k is named if every null backs it: adjusted p < alpha there too, or the statistic
there exceeds each null's mean by at least ``CONFIRM_Z`` null SDs (one-sided 1% of a normal; a
pointwise reading is enough here, since the max-T test has already established that there are
groups and only their number is being read); else the smallest k at which every null rejects.
Optionally a gap rule on the excess over the *weaker* null (the smallest standardised excess
across nulls) or the k with the largest one. When no k is supported by every null, the
silhouette's k is kept and the verdict cannot be ``distinct``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.01
DISTINCT, NONE, INCONCLUSIVE = "distinct", "none", "inconclusive"


@dataclass(frozen=True)
class NullResult:
    """One null's evidence as summary.json lists it (``validation.null_tests``)."""

    null: str
    statistic: float | None
    null_mean: float | None
    null_sd: float | None
    replicates: int
    p: float | None
    ran: bool = True
    reason: str | None = None  # why it was not run
    k: int | None = None
    statistic_name: str | None = None  # r2 | ssil: the statistic that decided at k

    @property
    def rejects(self) -> bool:
        return self.ran and self.p is not None and self.p < ALPHA

    def summary(self) -> dict[str, Any]:
        return {"null": self.null, "statistic": self.statistic, "null_mean": self.null_mean,
                "null_sd": self.null_sd, "replicates": self.replicates, "p": self.p, "k": self.k,
                "statistic_name": self.statistic_name,
                "ran": self.ran, "reason": self.reason}


def not_run(null: str, reason: str) -> NullResult:
    return NullResult(null, None, None, None, 0, None, ran=False, reason=reason)


@dataclass(frozen=True)
class Verdict:
    code: str  # distinct | none | inconclusive
    rejected: tuple[str, ...]
    not_rejected: tuple[str, ...]
    not_run: tuple[str, ...]

    @property
    def distinct(self) -> bool:
        return self.code == DISTINCT


def verdict(tests: Sequence[NullResult]) -> Verdict:
    """Intersection-union verdict over ``tests`` (at least one)."""
    if not tests:
        raise ValueError("verdict needs at least one null test")
    rejected = tuple(t.null for t in tests if t.rejects)
    missing = tuple(t.null for t in tests if not t.ran)
    kept = tuple(t.null for t in tests if t.ran and not t.rejects)
    if len(rejected) == len(tests):
        code = DISTINCT
    elif not rejected:
        code = NONE
    else:
        code = INCONCLUSIVE
    return Verdict(code, rejected, kept, missing)


# ----------------------------------------------------------------------------- choosing k

@dataclass(frozen=True)
class KChoice:
    k: int
    rule: str  # "null evidence" | "no common k" | "silhouette"
    supported: tuple[int, ...]  # k at which every null rejects
    excess: dict[int, float]  # weakest-null excess per k


K_RULES = ("confirm", "smallest", "gap", "max_excess")
CONFIRM_Z = 2.326  # null SDs: one-sided 1% of a normal
GAP_TOLERANCE = 1.0  # null SDs: the next k must add more than this to the weakest excess


def choose_k(curves: Sequence[Any], k_silhouette: int, alpha: float = ALPHA, how: str = "confirm") -> KChoice:
    """k from the nulls' curves (``kcurve.CurveTest``, all over the same ks); see the module note.

    The excess of a null at k is its largest standardised excess over the statistics at k
    (``CurveTest.excess_by_k``); the weakest-null excess is the smallest across nulls. Rules in
    order: (1) ``null evidence``: among the supported k (every null rejects there, max-T adjusted
    p < alpha): ``how="confirm"`` (default), the silhouette's k when every null backs it (it is
    supported, or every null's excess there is at least ``CONFIRM_Z``), else the smallest
    supported k (rule ``silhouette confirmed`` or ``null evidence``);
    ``how="smallest"``, the smallest supported k (best k accuracy on the
    planted books of RESULTS.md; it says 2 for three very well separated groups, where every k is
    supported); ``how="gap"``, the smallest supported k whose weakest-null excess the next k does
    not beat by more than GAP_TOLERANCE null SDs (Tibshirani, Walther & Hastie's gap rule with the
    weakest-null excess as the gap; names 3 there, but 3 for most 50/50 books);
    ``how="max_excess"``, the largest weakest-null excess (the rule the issue suggested; it
    over-splits); (2) ``no common k``: every null rejects somewhere but never at the same k:
    the k with the largest weakest-null excess (the verdict is then not ``distinct``);
    (3) ``silhouette``: some null rejects at no k: the silhouette's k is kept."""
    ks = tuple(curves[0].ks)
    weakest = np.vstack([c.excess_by_k for c in curves]).min(axis=0)
    ok = np.asarray((np.vstack([c.p_by_k for c in curves]) < alpha).all(axis=0)).tolist()
    supported = tuple(k for k, good in zip(ks, ok) if good)
    excess = {k: float(e) for k, e in zip(ks, weakest)}
    if supported:
        backed = k_silhouette in supported or excess.get(k_silhouette, -np.inf) >= CONFIRM_Z
        if how == "confirm" and backed:
            return KChoice(k_silhouette, "silhouette confirmed", supported, excess)
        if how in ("smallest", "confirm"):
            k = min(supported)
        elif how == "max_excess":
            k = max(supported, key=lambda kk: (excess[kk], -kk))
        else:
            k = next(kk for kk in supported
                     if kk + 1 not in excess or excess[kk] >= excess[kk + 1] - GAP_TOLERANCE or kk == supported[-1])
        return KChoice(k, "null evidence", supported, excess)
    if all(c.p < alpha for c in curves):
        return KChoice(max(ks, key=lambda kk: (excess[kk], -kk)), "no common k", supported, excess)
    return KChoice(k_silhouette, "silhouette", supported, excess)


def results_at(curves: Sequence[Any], choice: KChoice, not_run_tests: Sequence[NullResult] = ()) -> list[NullResult]:
    """One ``NullResult`` per null for summary.json and ``verdict``.

    With rule ``null evidence`` or ``no common k`` each entry holds its figures at the chosen k
    (p = the max-T adjusted p there). With ``silhouette`` each entry holds its figures where it is
    strongest and p = its max-T p over all (statistic, k): 'does this null reject at any k'. With
    ``silhouette confirmed`` at a k backed by the excess only (not itself supported), the figures
    are at that k and p is the null's max-T p (the test that found the groups).
    Nulls not run are appended."""
    out = []
    pointwise = choice.rule == "silhouette confirmed" and choice.k not in choice.supported
    for c in curves:
        at_choice = choice.rule != "silhouette"
        k = choice.k if at_choice else c.ks[int(np.argmin(c.p_by_k))]
        at = c.at(k)
        out.append(NullResult(c.name, at["statistic"], at["null_mean"], at["null_sd"], c.replicates,
                              at["p"] if at_choice and not pointwise else c.p, k=k, statistic_name=str(at["stat"])))
    return out + list(not_run_tests)
