"""The counting models by name: what the CLV step, the backtest and ``auto`` need of each.

Every model is fitted on the same inputs (repeat purchase days ``x``, ``t_x``, ``T`` in days)
and predicts p_alive, expected purchases and the probability of each number of purchases in a
holdout (for ``auto``). Gamma-Gamma (the value per purchase) is independent of the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from segkit.models.clv import bgnbd, mbg_nbd, pareto_nbd
from segkit.models.clv.fitting import Fit

Arr = np.ndarray
DEFAULT = "bgnbd"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # config word: bgnbd | pareto_nbd | mbg_nbd
    label: str  # shown to people: BG/NBD ...
    param_names: tuple[str, ...]
    fit: Callable[[Arr, Arr, Arr], Fit]
    p_alive: Callable[[Any, Arr, Arr, Arr], Arr]
    expected: Callable[[Any, float, Arr, Arr, Arr], Arr]
    log_pmf: Callable[[Any, float, Arr, Arr, Arr, Arr], Arr]  # (params, t, k, x, t_x, T)
    # (params, max T) -> (what the figure is, its value): how much dropout the fit found
    dropout: Callable[[Any, float], tuple[str, float]]
    no_dropout_below: float  # the figure below this: the fit found no dropout (the model is an NBD)

    def no_dropout(self, params: Any, max_T: float) -> bool:
        return self.dropout(params, max_T)[1] < self.no_dropout_below


def _bgnbd_log_pmf(params: Any, t: float, k: Arr, x: Arr, t_x: Arr, T: Arr) -> Arr:
    """BG/NBD: alive at T, p ~ Beta(a, b + x) (x dropout chances survived); p_alive = 1 when x = 0."""
    r, alpha, a, b = params
    p = bgnbd.bgnbd_p_alive(params, x, t_x, T)
    with np.errstate(divide="ignore"):
        log_pa, log_dead = np.log(p), np.log1p(-p)
    alive = mbg_nbd.beta_geometric_log_pmf(r, alpha, a, b + x, t, k, x, T)
    return np.where(k == 0, np.logaddexp(log_dead, log_pa + alive), log_pa + alive)


def _ab_share(params: Any, _max_T: float) -> tuple[str, float]:
    _r, _alpha, a, b = params
    return "a/(a+b)", float(a / (a + b))


def _pareto_share(params: Any, max_T: float) -> tuple[str, float]:
    return f"share dropping out within {max_T:g} days", pareto_nbd.dropout_share(params, max_T)


MODELS: dict[str, ModelSpec] = {
    "bgnbd": ModelSpec("bgnbd", "BG/NBD", bgnbd.NAMES, bgnbd.fit_bgnbd, bgnbd.bgnbd_p_alive,
                       bgnbd.bgnbd_expected, _bgnbd_log_pmf, _ab_share, bgnbd.NO_DROPOUT),
    "pareto_nbd": ModelSpec("pareto_nbd", "Pareto/NBD", pareto_nbd.NAMES, pareto_nbd.fit, pareto_nbd.p_alive,
                            pareto_nbd.expected_purchases, pareto_nbd.conditional_log_pmf, _pareto_share,
                            pareto_nbd.NO_DROPOUT),
    "mbg_nbd": ModelSpec("mbg_nbd", "MBG/NBD", mbg_nbd.NAMES, mbg_nbd.fit, mbg_nbd.p_alive,
                         mbg_nbd.expected_purchases, mbg_nbd.conditional_log_pmf, _ab_share, mbg_nbd.NO_DROPOUT),
}


def get(name: str) -> ModelSpec:
    """The spec of a model name (KeyError names the allowed ones)."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown CLV model {name!r}; one of {', '.join(MODELS)}") from None
