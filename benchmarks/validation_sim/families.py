"""Customer books with known truth: one-population families and planted groups (issue 22).

Every family draws *orders* in continuous time, then reduces them exactly as segkit reduces order
lines: an order at time t (days after the customer's first purchase) falls on calendar day
floor(t); a purchase day is a day with a positive net amount (all orders here are positive);
``frequency`` = distinct purchase days (an export without ``order_id``), ``recency_days`` =
T - last purchase day, ``monetary`` = total spend, and the CLV inputs of ``segkit.clv``:
``repeat_purchases`` = purchase days - 1, ``t_last``, ``T`` and ``repeat_value`` = mean spend of the
purchase days after the first. ``T`` = whole days from the first purchase to ``as_of`` (>= 1, as
``as_of`` defaults to the day after the last transaction).

Order process of a customer (rate ``lam`` per day, first order at 0, observed until T):
- ``dropout="bgnbd"``: after each repeat order the customer leaves with probability ``p``
  (BG/NBD; the first order is never followed by a drop-out, lifetimes' convention);
- ``dropout="mbgnbd"``: as bgnbd, but also right after the first order (MBG/NBD, Batislam et
  al. 2007): a one-population model of zero-inflated repeat counts;
- ``dropout="lifetime"``: the customer leaves at an exponential lifetime (Pareto/NBD-like);
- ``dropout="none"``.
Value of an order: ``level * noise`` (log-normal noise) or, for Gamma-Gamma families, a
Gamma(p, nu) draw with the customer's nu ~ Gamma(q, rate v).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Rng = np.random.Generator
ORDER_SD = 0.8  # log-normal noise of one order around the customer's spend level (CV ~ 0.9)


@dataclass(frozen=True)
class Book:
    """Customer-level table of one simulated book (all arrays of length n)."""

    recency_days: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    repeat_purchases: np.ndarray
    t_last: np.ndarray
    T: np.ndarray
    repeat_value: np.ndarray  # NaN without a repeat purchase day
    truth: np.ndarray  # planted group of each customer (0 for one population)

    @property
    def n(self) -> int:
        return int(self.T.size)


# ------------------------------------------------------------------ observation times

def t_uniform(lo: int, hi: int) -> Callable[[int, Rng], np.ndarray]:
    """First purchases spread evenly: T uniform on lo..hi whole days."""
    return lambda n, rng: rng.integers(lo, hi + 1, n)


def t_growing(hi: int, growth_per_year: float) -> Callable[[int, Rng], np.ndarray]:
    """A growing base: new customers per day grow by ``growth_per_year`` x a year, so T (days
    since first purchase) has density proportional to exp(-g T) on 1..hi."""
    g = np.log(growth_per_year) / 365.0

    def draw(n: int, rng: Rng) -> np.ndarray:
        u = rng.random(n)
        t = -np.log1p(-u * (1 - np.exp(-g * hi))) / g  # inverse cdf of the truncated exponential
        return np.clip(np.ceil(t), 1, hi).astype(np.int64)
    return draw


# ------------------------------------------------------------------------ order times

def _order_times(lam: np.ndarray, end: np.ndarray, limit: np.ndarray, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Repeat orders of a Poisson process with rate ``lam`` on (0, end), keeping at most ``limit``
    (the first ones) per customer. Returns (customer index, time) of every kept order."""
    counts = rng.poisson(lam * end)
    owner = np.repeat(np.arange(lam.size), counts)
    times = rng.random(owner.size) * end[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    start = np.cumsum(counts) - counts
    rank = np.arange(owner.size) - start[owner]
    keep = rank < limit[owner]
    return owner[keep], times[keep]


def orders(lam: np.ndarray, T: np.ndarray, rng: Rng, dropout: str = "none",
           p: np.ndarray | None = None, lifetime: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, time) of all repeat orders in (0, T) of each customer."""
    n = lam.size
    end = T.astype(np.float64)
    limit = np.full(n, np.iinfo(np.int64).max)
    if dropout in ("bgnbd", "mbgnbd"):
        assert p is not None
        limit = rng.geometric(np.clip(p, 1e-12, 1.0))  # repeat orders up to and including the drop-out
        if dropout == "mbgnbd":  # MBG/NBD: may also leave right after the first order
            limit = limit - 1
    elif dropout == "lifetime":
        assert lifetime is not None
        end = np.minimum(end, lifetime)
    return _order_times(lam, end, limit, rng)


# -------------------------------------------------------------------------- reduction

def reduce_orders(owner: np.ndarray, times: np.ndarray, values: np.ndarray, first_values: np.ndarray,
                  T: np.ndarray, truth: np.ndarray) -> Book:
    """Orders -> purchase days -> the customer table, as segkit builds it."""
    n = T.size
    cust = np.concatenate([np.arange(n), owner])
    day = np.concatenate([np.zeros(n, dtype=np.int64), np.floor(times).astype(np.int64)])
    val = np.concatenate([first_values, values])
    key = cust * (int(T.max()) + 1) + day
    uniq, inv = np.unique(key, return_inverse=True)
    day_value = np.bincount(inv, weights=val)
    day_cust, day_day = uniq // (int(T.max()) + 1), uniq % (int(T.max()) + 1)
    days = np.bincount(day_cust, minlength=n)
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, day_cust, day_day)
    total = np.bincount(day_cust, weights=day_value, minlength=n)
    first = day_value[np.searchsorted(uniq, np.arange(n) * (int(T.max()) + 1))]
    x = days - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        repeat_value = np.where(x > 0, (total - first) / np.maximum(x, 1), np.nan)
    return Book(recency_days=(T - last).astype(np.int64), frequency=days.astype(np.int64), monetary=total,
                repeat_purchases=x.astype(np.int64), t_last=last, T=T.astype(np.int64),
                repeat_value=repeat_value, truth=truth)


def lognormal_values(level: np.ndarray, owner: np.ndarray, sd: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """(repeat order values, first order values): the customer's level times log-normal noise."""
    noise = lambda m: np.exp(sd * rng.standard_normal(m) - sd * sd / 2)  # noqa: E731  mean 1
    return level[owner] * noise(owner.size), level * noise(level.size)


def gamma_values(p: float, q: float, v: float, owner: np.ndarray, n: int, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-Gamma order values: nu ~ Gamma(q, rate v) per customer, value ~ Gamma(p, rate nu)."""
    nu = rng.gamma(q, 1.0 / v, n)
    return rng.gamma(p, 1.0 / nu[owner]), rng.gamma(p, 1.0 / nu)


# ---------------------------------------------------------------------------- families

@dataclass(frozen=True)
class Family:
    """A named generator of books: ``draw(n, rng) -> Book``; ``groups`` = planted k (1 = one population)."""

    name: str
    description: str
    draw: Callable[[int, Rng], Book]
    groups: int = 1
    tags: tuple[str, ...] = field(default_factory=tuple)


def bgnbd_family(name: str, r: float, alpha: float, a: float, b: float, gg: tuple[float, float, float],
                 t_draw: Callable[[int, Rng], np.ndarray], description: str, model: str = "bgnbd") -> Family:
    """One BG/NBD (or MBG/NBD with ``model="mbgnbd"``) + Gamma-Gamma population (alpha in days)."""
    def draw(n: int, rng: Rng) -> Book:
        T = t_draw(n, rng)
        lam = rng.gamma(r, 1.0 / alpha, n)
        p = rng.beta(a, b, n)
        owner, times = orders(lam, T, rng, model, p=p)
        values, first = gamma_values(*gg, owner, n, rng)
        return reduce_orders(owner, times, values, first, T, np.zeros(n, dtype=np.int64))
    return Family(name, description, draw)


def lognormal_family(name: str, description: str, t_draw: Callable[[int, Rng], np.ndarray],
                     rate_median: float = 1 / 90, rate_sd: float = 1.0, spend_median: float = 2000.0,
                     spend_sd: float = 1.0, corr: float = 0.5, life_mean: float = 900.0,
                     zero_share: float = 0.0, pareto_alpha: float | None = None) -> Family:
    """Log-normal order rate and spend level (correlated), exponential lifetimes; optionally a
    share of customers who never return (zero-inflated) or a Pareto spend level."""
    def draw(n: int, rng: Rng) -> Book:
        T = t_draw(n, rng)
        z = rng.standard_normal((n, 2))
        z[:, 1] = corr * z[:, 0] + np.sqrt(1 - corr * corr) * z[:, 1]
        lam = rate_median * np.exp(rate_sd * z[:, 0])
        lam[rng.random(n) < zero_share] = 0.0
        if pareto_alpha is None:
            level = spend_median * np.exp(spend_sd * z[:, 1])
        else:  # Pareto(alpha) spend level through the same Gaussian score (keeps the correlation)
            from scipy.special import ndtr
            level = spend_median * (2 * ndtr(-z[:, 1])) ** (-1 / pareto_alpha)  # median spend_median
        life = rng.exponential(life_mean, n)
        owner, times = orders(lam, T, rng, "lifetime", lifetime=life)
        values, first = lognormal_values(level, owner, ORDER_SD, rng)
        return reduce_orders(owner, times, values, first, T, np.zeros(n, dtype=np.int64))
    return Family(name, description, draw)


def planted_family(shares: tuple[float, ...], sds_apart: float, rate_sd: float = 0.3, spend_sd: float = 0.4,
                   rate_median: float = 1 / 60, spend_median: float = 500.0, life_mean: float = 1500.0,
                   t_draw: Callable[[int, Rng], np.ndarray] | None = None) -> Family:
    """Planted groups in log order rate and log spend level. Group g (0 = largest share) sits
    g * ``sds_apart`` within-group SDs above group 0 in both log rate (SD ``rate_sd``) and log
    spend (SD ``spend_sd``); within a group the two are independent. Exponential lifetimes (mean
    1500 d), T uniform on 180..1095 days."""
    t_draw = t_draw or t_uniform(180, 1095)
    order = np.argsort(shares)[::-1]  # group 0 = the largest
    sizes = np.asarray(shares, dtype=float)[order]
    pct = "/".join(f"{round(100 * s)}" for s in sorted(shares))
    name = f"planted_{pct}_{sds_apart:g}sd"

    def draw(n: int, rng: Rng) -> Book:
        T = t_draw(n, rng)
        counts = np.floor(sizes / sizes.sum() * n).astype(int)
        counts[0] += n - counts.sum()
        g = np.repeat(np.arange(len(sizes)), counts)
        lam = rate_median * np.exp(rate_sd * (sds_apart * g + rng.standard_normal(n)))
        level = spend_median * np.exp(spend_sd * (sds_apart * g + rng.standard_normal(n)))
        life = rng.exponential(life_mean, n)
        owner, times = orders(lam, T, rng, "lifetime", lifetime=life)
        values, first = lognormal_values(level, owner, ORDER_SD, rng)
        return reduce_orders(owner, times, values, first, T, g)
    desc = (f"{len(shares)} planted groups ({pct}%), {sds_apart:g} within-group SDs apart in log rate "
            f"(SD {rate_sd}) and log spend (SD {spend_sd}) per adjacent pair")
    return Family(name, desc, draw, groups=len(shares), tags=("planted",))


DAYS_PER_WEEK = 7.0
CDNOW: dict[str, float] = {"r": 0.243, "alpha": 4.414 * DAYS_PER_WEEK, "a": 0.793, "b": 2.426}  # FHL 2005, weeks -> days
CDNOW_GG = (6.25, 3.74, 15.44)  # Fader, Hardie & Lee (2005b), CDNOW spend per transaction


def one_population_families() -> list[Family]:
    """The one-population families: false-"distinct" must stay rare on each."""
    ln_t = t_uniform(30, 1095)
    return [
        lognormal_family("lognormal", "log-normal rate and spend level, corr 0.5, exponential lifetimes (mean 900 d), "
                         "T uniform 30..1095 d", ln_t),
        lognormal_family("pareto_spend", "as lognormal, spend level Pareto(alpha 1.2)", ln_t, pareto_alpha=1.2),
        bgnbd_family("zero_inflated_mbgnbd", r=0.6, alpha=30.0, a=1.3, b=1.1, gg=(3.0, 3.0, 100.0),
                     t_draw=t_uniform(30, 730), model="mbgnbd",
                     description="zero-inflated retail as one MBG/NBD population (may leave after the first order; "
                                 "r .6, alpha 30 d, a 1.3, b 1.1), GG (3, 3, 100), T 30..730 d"),
        lognormal_family("zero_inflated_retail", "60% never return (rate 0), the rest log-normal (median 1/45 d, "
                         "SD 1.2): ~64% one-time buyers; T uniform 30..730 d", t_uniform(30, 730),
                         rate_median=1 / 45, rate_sd=1.2, zero_share=0.60, spend_sd=0.8, corr=0.3),
        lognormal_family("growing_base", "as lognormal, acquisitions growing 3x a year (T dense near 0, up to 1095 d)",
                         t_growing(1095, 3.0)),
        bgnbd_family("bgnbd_cdnow", CDNOW["r"], CDNOW["alpha"], CDNOW["a"], CDNOW["b"], gg=CDNOW_GG,
                     t_draw=t_uniform(189, 273),
                     description="BG/NBD CDNOW (r .243, alpha 4.41 wk = 30.9 d, a .793, b 2.43), GG (6.25, 3.74, 15.44), "
                                 "T 27..39 weeks"),
        bgnbd_family("bgnbd_b2b", r=2.0, alpha=20.0, a=0.3, b=10.0, gg=(4.0, 4.0, 6000.0), t_draw=t_uniform(30, 1095),
                     description="B2B-like BG/NBD (r 2, alpha 20 d, a .3, b 10), GG (4, 4, 6000), T 30..1095 d"),
        bgnbd_family("bgnbd_churny", r=0.8, alpha=60.0, a=1.2, b=4.0, gg=(2.0, 3.0, 200.0), t_draw=t_uniform(60, 730),
                     description="untuned BG/NBD (r .8, alpha 60 d, a 1.2, b 4), GG (2, 3, 200), T 60..730 d"),
        bgnbd_family("bgnbd_hetero_growing", r=0.15, alpha=8.0, a=0.5, b=6.0, gg=(5.0, 2.5, 40.0),
                     t_draw=t_growing(1095, 2.0),
                     description="untuned BG/NBD (r .15, alpha 8 d, a .5, b 6), GG (5, 2.5, 40), growing base 2x/yr"),
    ]


def planted_families(separations: tuple[float, ...] = (2.0, 4.0, 6.0)) -> list[Family]:
    """Planted groups 50/50, 25/75 and 5/25/70 at each separation."""
    return [planted_family(shares, d) for shares in ((0.5, 0.5), (0.25, 0.75), (0.05, 0.25, 0.70))
            for d in separations]


def all_families() -> list[Family]:
    return one_population_families() + planted_families()
