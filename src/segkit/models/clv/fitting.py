"""Maximum likelihood shared by the CLV models: ``Fit``, the multi-start optimiser on
log-parameters, and grouped histories for the models that fit one weighted row per distinct
``(x, t_x, T)`` (Pareto/NBD, MBG/NBD).

Design (both optimisers): parameters are searched on their logarithms inside a box (default
``[-LOG_BOUND, LOG_BOUND]``) with L-BFGS-B and the model's analytic gradient of the mean
log-likelihood; a line search that stops on a flat ridge still counts when the projected gradient
is ~0, otherwise Nelder-Mead continues from where L-BFGS-B stopped; with more than
``MULTISTART_SAMPLE`` customers the starts are compared on a fixed-seed sample and the best sample
optimum is refined on all customers (when no start converged on the sample, only the best sample
optimum is refined, by L-BFGS-B alone). ``maximise`` works on one row per customer (BG/NBD,
Gamma-Gamma); ``maximise_grouped`` on weighted ``Histories`` with per-parameter bounds and an
optional stop rule that abandons a search path (Pareto/NBD uses it at its no-dropout edge, which
it fits in closed form).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_BOUND = 25.0  # parameters are searched in [e^-25, e^25]; a fit that reaches the edge did not converge
ABANDONED = "abandoned by the stop rule"
GRAD_TOL = 1e-6  # largest |d mean-ll / d log-parameter| accepted as a stationary point
MULTISTART_SAMPLE = 5000  # starts are compared on a fixed-seed sample of this many customers

# loglik(theta, grad, rows): per-row log-likelihood (and its gradient with grad) for the rows selected
LogLik = Callable[[np.ndarray, bool, "np.ndarray | None"], Any]
# grouped loglik(theta, grad): per-row log-likelihood; with grad (ll, g) where g (k,) is the gradient in
# theta of the weighted total sum(weight * ll) (the model sums per distinct history or pair)
GroupedLogLik = Callable[[np.ndarray, bool], Any]
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
# stop(theta, mean negative log-likelihood): True abandons the search path (see minimise)
StopRule = Callable[[np.ndarray, float], bool]


class _Abandoned(Exception):
    """Raised inside the objective when a stop rule abandons the search path."""

    def __init__(self, z: np.ndarray, value: float) -> None:
        super().__init__("abandoned")
        self.z, self.value = z.copy(), value


@dataclass
class Fit:
    """A maximum-likelihood fit: parameters in the data's own units, total log-likelihood."""

    params: tuple[float, ...]
    log_likelihood: float
    converged: bool
    message: str = ""
    at_bound: tuple[str, ...] = ()  # parameters that ran to the edge of the search box
    names: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float]:
        """Parameter name -> value."""
        return dict(zip(self.names, self.params))


def by_count(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct purchase counts and the index of each customer's: the special functions of the
    likelihoods depend on the parameters and the count only, so they are evaluated once per count."""
    ux, inv = np.unique(x, return_inverse=True)
    return ux, inv


# ------------------------------------------------------------------------- grouped histories

@dataclass(frozen=True)
class Histories:
    """Distinct customer histories and how many customers share each (``weight``).

    The likelihoods of these models depend on a customer only through ``(x, t_x, T)``; with whole
    days most customers share their history with others, so fitting one row per distinct history
    (weighted) gives the same likelihood at a fraction of the cost.
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weight: np.ndarray

    @property
    def customers(self) -> int:
        """Number of customers the rows stand for."""
        return int(self.weight.sum())

    @classmethod
    def group(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
              weights: np.ndarray | None = None) -> Histories:
        """Rows of identical ``(x, t_x, T)`` merged, their weights (default 1 each) summed."""
        return cls.group_with_inverse(x, t_x, T, weights)[0]

    @classmethod
    def group_with_inverse(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                           weights: np.ndarray | None = None) -> tuple[Histories, np.ndarray]:
        """``group`` and, per input row, the index of its grouped row."""
        x, t_x, T = (np.asarray(a, dtype=float) for a in (x, t_x, T))
        w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=float)
        (ux, ut, uT), inverse = unique_rows(x, t_x, T)
        weight = np.bincount(inverse, weights=w, minlength=ux.size)
        return cls(ux, ut, uT, weight), inverse

    def scaled(self, factor: float) -> Histories:
        """The same histories with the time axis multiplied by ``factor``."""
        return Histories(self.x, self.t_x * factor, self.T * factor, self.weight)


def unique_rows(*cols: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows of equal-length columns (sorted) and each input row's index among them.
    Whole non-negative numbers (days) are packed into one int64 key and sorted once; other
    values go through a lexsort. Both are several times faster than ``np.unique(axis=0)``."""
    n = cols[0].size
    if n == 0:
        return tuple(c[:0] for c in cols), np.zeros(0, dtype=np.intp)
    packed = _packed_key(cols)
    if packed is not None:
        _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
        return tuple(c[first] for c in cols), inverse.ravel()
    order = np.lexsort(cols[::-1])
    srt = [c[order] for c in cols]
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for c in srt:
        new[1:] |= c[1:] != c[:-1]
    gid = np.cumsum(new) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = gid
    return tuple(c[new] for c in srt), inverse


def _packed_key(cols: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """One int64 per row ordering the rows as a lexsort would, or None when the columns are not
    whole non-negative numbers small enough to pack."""
    key = np.zeros(cols[0].size, dtype=np.int64)
    room = 2**62
    for c in cols:
        top = float(c.max()) if c.size else 0.0
        if c.min() < 0 or top >= 2**31 or not np.array_equal(c, np.floor(c)):
            return None
        span = int(top) + 1
        if room // span < 1:
            return None
        room //= span
        key = key * span + c.astype(np.int64)
    return key


def check_inputs(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """Raise ValueError unless 0 <= t_x <= T, x >= 0 whole, and t_x = 0 when x = 0 (lifetimes' checks)."""
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError("x, t_x and T must have the same shape")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("x (repeat purchases) must be whole numbers >= 0")
    if np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("t_x must lie in [0, T]")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("t_x must be 0 for customers without a repeat purchase")


def sample_rows(n: int, size: int | None, seed: int = 0) -> np.ndarray | None:
    """Sorted row indices of a fixed-seed sample of ``size`` of ``n`` rows; None (all rows) when
    ``size`` is None or there are not more than ``size`` rows."""
    if size is None or n <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def subsample(x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
              size: int = MULTISTART_SAMPLE, seed: int = 0) -> Histories | None:
    """A fixed-seed sample of ``size`` customers, grouped; None when there are not more than ``size``."""
    rows = sample_rows(x.size, size, seed)
    return None if rows is None else Histories.group(x[rows], t_x[rows], T[rows])


# ------------------------------------------------------------------------------ optimiser

def _objective(loglik: Callable[[np.ndarray, bool], Any], n: int) -> Objective:
    """Mean negative log-likelihood over log-parameters, with its gradient (as lifetimes, the mean
    keeps the scale independent of n)."""
    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(z)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, g = loglik(theta, True)
        value = -ll.sum() / n
        if not np.isfinite(value):
            return 1e300, np.zeros_like(z)
        return value, -(g.sum(axis=0) * theta) / n
    return f


def _weighted_objective(loglik: GroupedLogLik, weight: np.ndarray, stop: StopRule | None = None) -> Objective:
    """Mean negative log-likelihood over log-parameters, with its gradient (the mean keeps the
    scale independent of the number of customers, as lifetimes does). With ``stop``, a point
    where ``stop(theta, value)`` holds abandons the search (``_Abandoned``)."""
    n = float(weight.sum())

    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(z)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            ll, g = loglik(theta, True)
            value = -float(weight @ ll) / n
            grad = -np.asarray(g) * theta / n
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(z)
        if stop is not None and stop(theta, value):
            raise _Abandoned(z, value)
        return value, grad
    return f


Bounds = np.ndarray  # (k, 2): lower and upper bound of each log-parameter


def default_bounds(k: int) -> Bounds:
    """[-LOG_BOUND, LOG_BOUND] for each of k log-parameters."""
    return np.tile([-LOG_BOUND, LOG_BOUND], (k, 1))


def _projected(z: np.ndarray, g: np.ndarray, bounds: Bounds) -> np.ndarray:
    """The gradient with the components that push against a bound zeroed (a boundary optimum)."""
    low, high = z <= bounds[:, 0] + 1e-6, z >= bounds[:, 1] - 1e-6
    return np.where((low & (g > 0)) | (high & (g < 0)), 0.0, g)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """L-BFGS-B's tiny BLAS calls cost milliseconds each when BLAS wakes its thread pool."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def minimise(f: Objective, z0: np.ndarray, bounds: Bounds | None = None,
             polish: bool = True) -> tuple[np.ndarray, float, bool, str]:
    """L-BFGS-B from ``z0`` inside ``bounds`` (default: ``default_bounds``); Nelder-Mead
    continues when the projected gradient is not ~0 (unless ``polish`` is False). Returns (z,
    value, converged, message); a path abandoned by the objective's stop rule returns where it
    stopped, not converged."""
    box = default_bounds(z0.size) if bounds is None else bounds
    try:
        return _minimise(f, np.clip(z0, box[:, 0], box[:, 1]), box, polish)
    except _Abandoned as stop:
        return stop.z, stop.value, False, ABANDONED


def _minimise(f: Objective, z0: np.ndarray, box: Bounds, polish: bool = True) -> tuple[np.ndarray, float, bool, str]:
    from scipy.optimize import minimize

    with _one_blas_thread():
        res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=[tuple(b) for b in box],
                       options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9})
    z, msg = res.x, str(res.message)
    if np.max(np.abs(_projected(z, f(z)[1], box))) < GRAD_TOL:
        return z, float(res.fun), True, msg
    if not polish:
        return z, float(res.fun), False, msg
    nm = minimize(lambda v: f(np.clip(v, box[:, 0], box[:, 1]))[0], z, method="Nelder-Mead",
                  options={"maxfev": 1500, "xatol": 1e-9, "fatol": 1e-14})
    z = np.clip(nm.x, box[:, 0], box[:, 1])
    value, g = f(z)
    ok = bool(np.max(np.abs(_projected(z, g, box))) < GRAD_TOL)
    return z, float(value), ok, f"{msg}; Nelder-Mead: {nm.message}"


def maximise(loglik: LogLik, starts: list[np.ndarray], n: int, names: tuple[str, ...]) -> Fit:
    """Maximum likelihood over log-parameters from several starts.

    ``loglik(theta, grad, rows)`` returns per-row ll and d ll / d theta for the rows selected
    (``rows`` None = all). With more than MULTISTART_SAMPLE rows the starts are compared on a
    fixed-seed sample and the best sample optimum is refined on all rows (the others are tried
    in turn when it does not converge there).
    """
    rows = sample_rows(n, MULTISTART_SAMPLE)
    m = n if rows is None else rows.size
    f_start = _objective(lambda th, g: loglik(th, g, rows), m)
    tried = sorted((minimise(f_start, z0) for z0 in starts), key=lambda t: (not t[2], t[1]))
    if rows is not None:
        f_all = _objective(lambda th, g: loglik(th, g, None), n)
        for z, _v, _ok, _msg in tried:
            z, value, ok, msg = minimise(f_all, z)
            if ok:
                break
        tried = [(z, value, ok, msg)]
    z, value, ok, msg = tried[0]
    edge = tuple(nm for nm, zi in zip(names, z) if abs(zi) >= LOG_BOUND - 1e-3)
    return Fit(tuple(float(v) for v in np.exp(z)), -value * n, ok, msg, edge, names)


def maximise_grouped(loglik: Callable[[Histories], GroupedLogLik], data: Histories, starts: list[np.ndarray],
             names: tuple[str, ...], sample: Histories | None = None, bounds: Bounds | None = None,
             stop: Callable[[Histories], StopRule] | None = None) -> Fit:
    """Maximum likelihood over log-parameters from several starts.

    ``loglik(histories)`` returns the per-row log-likelihood function of those histories
    (``f(theta, grad)``). With a ``sample`` the starts are compared on it and the best sample
    optimum is refined on ``data``. The returned log-likelihood is the weighted total on ``data``
    (in its time unit); ``params`` are those of ``data``'s time unit too. ``at_bound`` names the
    parameters that ended within 1e-3 of a bound of the log-parameter box. ``stop(histories)``
    gives a rule that abandons a search path (the model then knows a better answer, e.g. an
    edge of the parameter space it evaluates in closed form); abandoned paths do not converge.
    """
    box = default_bounds(len(names)) if bounds is None else bounds
    first = sample if sample is not None else data
    f_first = _weighted_objective(loglik(first), first.weight, stop(first) if stop else None)
    tried = sorted((minimise(f_first, z0, box) for z0 in starts), key=lambda t: (not t[2], t[1]))
    if sample is not None:
        f_all = _weighted_objective(loglik(data), data.weight, stop(data) if stop else None)
        # the sample optima are refined in turn until one converges; when none converged on the
        # sample (a likelihood rising along a ridge to the edge), only the best is refined, with
        # L-BFGS-B alone: each Nelder-Mead pass on all the data would cost up to 1,500 evaluations
        settled = [t for t in tried if t[2]] or tried[:1]
        for z, value, ok, msg in settled:
            if msg == ABANDONED:
                continue
            z, value, ok, msg = minimise(f_all, z, box, polish=settled[0][2])
            if ok:
                break
        tried = [(z, value, ok, msg)]
    z, value, ok, msg = tried[0]
    edge = tuple(nm for nm, zi, (lo, hi) in zip(names, z, box) if zi <= lo + 1e-3 or zi >= hi - 1e-3)
    return Fit(tuple(float(v) for v in np.exp(z)), -value * data.customers, ok, msg, edge, names)
