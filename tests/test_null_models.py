"""Behaviour on data with known truth; each number checked against scipy / scikit-learn.

The modules behind the verdict (SPEC §4): the buy-till-you-die simulator, the k-means chain and
its max-T test, the copula nulls and the intersection-union verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import betaln, gammaln

from segkit.models import btyd_null as bn
from segkit.models import kcurve
from segkit.models import verdict as vd
from segkit.models.nulls import GaussianCopula, SplitCopula

CDNOW_DAYS = (0.243, 4.414 * 7, 0.793, 2.426)


# ---------------------------------------------------------------------------- btyd_null

def bgnbd_pmf(x: int, t: float, r: float, alpha: float, a: float, b: float) -> float:
    """P(X(t) = x) of the BG/NBD (Fader, Hardie & Lee 2005, eq. 8)."""
    log_common = betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r) - gammaln(x + 1)
    first = math.exp(log_common + r * math.log(alpha / (alpha + t)) + x * math.log(t / (alpha + t)))
    if x == 0:
        return first
    tail = 0.0
    for j in range(x):
        tail += math.exp(gammaln(r + j) - gammaln(r) - gammaln(j + 1)) * (t / (alpha + t)) ** j
    second = math.exp(betaln(a + 1, b + x - 1) - betaln(a, b)) * (1 - (alpha / (alpha + t)) ** r * tail)
    return first + second


def test_purchase_days_follow_the_bgnbd_count_distribution():
    rng = np.random.default_rng(1)
    T = np.full(40000, 200)
    x, t_x = bn.simulate_purchase_days(*CDNOW_DAYS, T, rng)
    top = 8
    expected = np.array([bgnbd_pmf(k, 200.0, *CDNOW_DAYS) for k in range(top)])
    observed = np.bincount(np.minimum(x, top), minlength=top + 1)
    f_exp = np.append(expected, 1 - expected.sum()) * x.size
    assert stats.chisquare(observed, f_exp).pvalue > 1e-3
    assert np.all(t_x[x == 0] == 0) and np.all((t_x[x > 0] > 0) & (t_x[x > 0] < 200))


def test_last_purchase_time_is_the_xth_of_the_poisson_events():
    # no drop-out (a -> 0): t_x / T is the maximum of x uniforms, i.e. Beta(x, 1)
    rng = np.random.default_rng(2)
    x, t_x = bn.simulate_purchase_days(50.0, 500.0, 0.0, 1.0, np.full(20000, 100), rng)
    sel = x == 10
    assert sel.sum() > 500
    assert stats.kstest(t_x[sel] / 100, stats.beta(10, 1).cdf).pvalue > 1e-3


def test_rfm_is_built_as_the_data_would_be():
    params = bn.BtydParams("bgnbd", CDNOW_DAYS, 6.25, 3.74, 15.44)
    T = np.random.default_rng(3).integers(1, 300, 5000)
    rec, freq, mon = bn.simulate_rfm(params, T, np.random.default_rng(4))
    assert rec.dtype.kind == "i" and np.all(rec >= 1) and np.all(rec <= T)
    assert np.all(rec[freq == 1] == T[freq == 1])  # one purchase day: as_of - first day
    assert np.all((freq >= 1) & (freq <= T)) and np.all(mon > 0)
    feats = bn.rfm_features(rec, freq, mon)
    np.testing.assert_allclose(feats, np.log1p(np.column_stack([rec, freq, mon])))


def test_spend_follows_gamma_gamma():
    # mean value per purchase day = p v / (q - 1); the customer mean of many days -> p / nu
    params = bn.BtydParams("bgnbd", (5.0, 1.0, 1e-9, 1.0), 2.0, 6.0, 50.0)  # ~ 500 purchase days each
    T = np.full(20000, 100)
    _, freq, mon = bn.simulate_rfm(params, T, np.random.default_rng(5))
    per_day = mon / freq
    assert abs(per_day.mean() / (2.0 * 50.0 / 5.0) - 1) < 0.03
    # p / nu with nu ~ Gamma(q, rate v): inverse gamma with shape q and scale p v
    assert stats.kstest(per_day, stats.invgamma(6.0, scale=100.0).cdf).pvalue > 1e-4


def test_btyd_params_not_run_without_a_fit():
    assert isinstance(bn.btyd_params("bgnbd", None, (1, 1, 1), "only 3 repeat customers"), bn.NotRun)
    assert isinstance(bn.btyd_params("bgnbd", (1, 1, 1, 1), None), bn.NotRun)
    assert isinstance(bn.btyd_params("bgnbd", (1, 1, 1, 1), (1, 2, 3), gamma_gamma_converged=False), bn.NotRun)
    assert isinstance(bn.btyd_params("bgnbd", (1, -1, 1, 1), (1, 2, 3)), bn.NotRun)
    ok = bn.btyd_params("bgnbd", (0.2, 30, 0.8, 2.4), (6, 0.9, 15))  # q <= 1 is still a distribution to draw
    assert isinstance(ok, bn.BtydParams) and ok.q == 0.9
    assert isinstance(bn.btyd_params("pareto_nbd", (0.5, 10, 0.6, 30), (6, 4, 15)), bn.BtydParams)


def test_sampler_keeps_each_customers_T():
    params = bn.BtydParams("bgnbd", CDNOW_DAYS, 6.25, 3.74, 15.44)
    T = np.array([5] * 1000 + [400] * 1000)
    x = bn.BtydSampler(params, T).sample(2000, np.random.default_rng(6))
    assert np.all(np.expm1(x[:1000, 0]) <= 5) and np.expm1(x[1000:, 0]).max() > 5


# ------------------------------------------------------------------------------- kcurve

def blobs(n: int, centres: list[tuple[float, ...]], shares: list[float], sd: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = np.round(np.array(shares) * n).astype(int)
    truth = np.repeat(np.arange(len(centres)), counts)
    return np.asarray(centres)[truth] + sd * rng.standard_normal((truth.size, len(centres[0]))), truth


def test_chain_r2_matches_scikit_learn_kmeans():
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x, _ = blobs(1000, [(0, 0, 0), (4, 1, 0), (1, 5, 2)], [0.5, 0.3, 0.2], 1.0, 7)
    xs = kcurve.standardised(x)
    total = (xs ** 2).sum()
    with threadpool_limits(limits=1):
        sk = np.array([1 - KMeans(k, n_init=10, random_state=0).fit(xs).inertia_ / total for k in kcurve.KS])
    ours = kcurve.r2_curve(x, 0, n_init=3)
    assert np.all(np.abs(ours - sk) < 0.01)  # scikit-learn's best of 10 is a local optimum too
    assert abs(ours[1] - sk[1]) < 1e-3  # k = 3, the planted k


def test_simplified_silhouette_by_hand():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((50, 3))
    c = x[:3].copy()
    d = ((x[:, None, :] - c[None]) ** 2).sum(axis=2)
    labels = d.argmin(axis=1)
    dist = np.sqrt(d)
    want = []
    for i in range(50):
        a = dist[i, labels[i]]
        b = np.min(np.delete(dist[i], labels[i]))
        want.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    assert kcurve._simplified_silhouette(d[None], labels[None])[0] == pytest.approx(np.mean(want))


def test_max_t_p_values():
    ks, stats_ = (2, 3), ("r2", "ssil")
    null = np.random.default_rng(9).standard_normal((99, 2, 2))
    far = kcurve.CurveTest("n", ks, stats_, np.array([[10.0, 0.0], [0.0, 0.0]]), null)
    assert far.p == pytest.approx(1 / 100) and far.p_by_k[0] == pytest.approx(1 / 100)
    assert far.p_by_k[1] > 0.05  # k = 3 has no excess: not rejected
    assert far.at(2)["stat"] == "r2"
    same = kcurve.CurveTest("n", ks, stats_, null[0], null[1:])
    assert same.p > 0.01


def test_max_t_is_calibrated_under_the_null():
    # observed drawn like the replicates: P(p < alpha) <= alpha (exact for exchangeable draws)
    rng = np.random.default_rng(10)
    ps = []
    for _ in range(2000):
        allc = rng.standard_normal((20, 2, 3)) * [1.0, 3.0, 0.5]  # 19 replicates + observed
        ps.append(kcurve.CurveTest("n", (2, 3, 4), ("a", "b"), allc[0], allc[1:]).p)
    ps = np.array(ps)
    for a in (0.05, 0.1, 0.25):
        assert np.mean(ps <= a) <= a + 0.02


# ------------------------------------------------------------------------------ verdict

def nr(name: str, p: float | None, ran: bool = True) -> vd.NullResult:
    return vd.NullResult(name, 0.5, 0.4, 0.01, 100, p, ran=ran)


def test_intersection_union_verdict():
    assert vd.verdict([nr("copula", 0.0099), nr("btyd", 0.0099)]).code == vd.DISTINCT
    assert vd.verdict([nr("copula", 0.0099), nr("btyd", 0.3)]).code == vd.INCONCLUSIVE
    assert vd.verdict([nr("copula", 0.2), nr("btyd", 0.3)]).code == vd.NONE
    assert vd.verdict([nr("copula", 0.01), nr("btyd", 0.0099)]).code == vd.INCONCLUSIVE  # p < 0.01, strictly
    missing = vd.verdict([nr("copula", 0.0099), vd.not_run("btyd", "CLV skipped")])
    assert missing.code == vd.INCONCLUSIVE and missing.not_run == ("btyd",) and missing.rejected == ("copula",)
    assert vd.verdict([nr("copula", 0.5), vd.not_run("btyd", "CLV skipped")]).code == vd.NONE
    with pytest.raises(ValueError):
        vd.verdict([])


def fake_curve(name: str, excess: list[float], p: list[float]) -> kcurve.CurveTest:
    """A CurveTest-like object with given excess and adjusted p per k (one statistic)."""
    class Fake:
        ks = (2, 3, 4)
        stats = ("r2",)
        replicates = 100
        excess_by_k = np.array(excess)
        p_by_k = np.array(p)

    f = Fake()
    f.name, f.p = name, float(min(p))
    return f  # type: ignore[return-value]


def test_choose_k_from_the_weaker_null():
    a = fake_curve("copula", [3.0, 5.0, 4.0], [0.0099, 0.0099, 0.0099])
    b = fake_curve("btyd", [9.0, 4.0, 8.0], [0.0099, 0.0099, 0.0099])
    choice = vd.choose_k([a, b], 4, how="max_excess")
    assert choice.k == 3 and choice.rule == "null evidence"  # weakest excess 3, 4, 4: a tie goes to the smaller k
    assert vd.choose_k([a, b], 4, how="smallest").k == 2
    assert vd.choose_k([a, b], 4) == vd.KChoice(4, "silhouette confirmed", (2, 3, 4), {2: 3.0, 3: 4.0, 4: 4.0})
    assert vd.choose_k([a, b], 5).k == 2  # the silhouette's k not supported: the smallest supported k
    assert vd.choose_k([a, b], 4, how="gap").k == 2  # weakest 3, 4, 4: k = 3 adds only one SD
    c = fake_curve("btyd", [9.0, 4.0, 8.0], [0.5, 0.0099, 0.0099])
    # k = 2 not supported by c (adjusted p 0.5), but both excesses there are >= CONFIRM_Z null SDs
    assert vd.choose_k([a, c], 2) == vd.KChoice(2, "silhouette confirmed", (3, 4), {2: 3.0, 3: 4.0, 4: 4.0})
    weak = fake_curve("copula", [2.0, 5.0, 4.0], [0.0099, 0.0099, 0.0099])
    assert vd.choose_k([weak, c], 2).k == 3 and vd.choose_k([a, c], 4, how="max_excess").k == 3
    g = fake_curve("btyd", [3.0, 9.0, 9.0], [0.0099, 0.0099, 0.0099])
    assert vd.choose_k([g, g], 4, how="gap").k == 3 and vd.choose_k([g, g], 4, how="smallest").k == 2
    e = fake_curve("btyd", [9.0, 4.0, 8.0], [0.0099, 0.5, 0.5])
    e.p = 0.0099
    f = fake_curve("copula", [3.0, 5.0, 4.0], [0.5, 0.0099, 0.5])
    assert vd.choose_k([f, e], 4).rule == "no common k"
    d = fake_curve("btyd", [1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    assert vd.choose_k([a, d], 4) == vd.KChoice(4, "silhouette", (), {2: 1.0, 3: 1.0, 4: 1.0})


# ----------------------------------------------------------------- end to end, known truth

def test_one_btyd_population_is_not_rejected_by_its_own_null():
    params = bn.BtydParams("bgnbd", CDNOW_DAYS, 6.25, 3.74, 15.44)
    T = np.random.default_rng(11).integers(189, 274, 600)
    sampler = bn.BtydSampler(params, T)
    ps = [kcurve.curve_test("btyd", sampler.sample(600, np.random.default_rng(s)), sampler, 42, 39).p
          for s in range(4)]
    assert max(ps) > 0.01 and np.median(ps) > 0.05


def test_separated_groups_are_distinct_and_one_population_is_not():
    copula = GaussianCopula
    params = bn.BtydParams("bgnbd", (0.8, 60.0, 1.2, 4.0), 2.0, 3.0, 200.0)
    # three well separated groups of RFM customers (occasional small, regular, frequent large)
    rng = np.random.default_rng(12)
    parts = [(rng.gamma(20, r / 20, 150), 1 + rng.poisson(f - 1, 150), rng.lognormal(math.log(m), 0.25, 150))
             for r, f, m in ((200, 1.5, 150), (40, 8, 3000), (5, 60, 80000))]
    groups = bn.rfm_features(*(np.concatenate([p[i] for p in parts]) for i in range(3)))
    T = np.maximum(np.expm1(groups[:, 0]).round().astype(int), 1) + 100
    curves = [kcurve.curve_test("copula", groups, copula(groups, 42).sample, 42, 100),
              kcurve.curve_test("btyd", groups, bn.BtydSampler(params, T).sample, 42, 100)]
    choice = vd.choose_k(curves, 3)
    v = vd.verdict(vd.results_at(curves, choice))
    assert v.code == vd.DISTINCT and choice.supported == tuple(range(2, 9))
    # every k is supported: the silhouette's 3 is confirmed; the smallest-k rule would say 2,
    # the gap rule finds the planted 3 as well
    assert (choice.k, choice.rule) == (3, "silhouette confirmed")
    assert vd.choose_k(curves, 3, how="smallest").k == 2 and vd.choose_k(curves, 2, how="gap").k == 3
    # one population: the BTYD null's own draws are "none" or at most "inconclusive"
    one = bn.BtydSampler(params, T).sample(T.size, np.random.default_rng(13))
    curves = [kcurve.curve_test("copula", one, copula(one, 42).sample, 42, 100),
              kcurve.curve_test("btyd", one, bn.BtydSampler(params, T).sample, 42, 100)]
    assert vd.verdict(vd.results_at(curves, vd.choose_k(curves, 2))).code != vd.DISTINCT


# ------------------------------------------------------------------------- split_copula

def test_split_copula_keeps_one_time_buyers_apart():
    rng = np.random.default_rng(14)
    n_one = 600
    freq = np.concatenate([np.ones(n_one), 2 + rng.poisson(3, 400)])
    rec = np.concatenate([rng.integers(100, 700, n_one), rng.integers(1, 60, 400)])
    x = bn.rfm_features(rec, freq, rng.lognormal(5, 1, 1000))
    draw = SplitCopula(x, 0).sample(1000, np.random.default_rng(15))
    one = draw[:, 1] == np.log1p(1.0)
    assert one.sum() == n_one
    assert np.expm1(draw[one, 0]).min() >= 100 and np.expm1(draw[~one, 0]).max() < 60  # recency stays with its part
    assert SplitCopula(x[n_one - 10:], 0).fallback is not None  # 10 one-time buyers: one copula


def test_split_copula_contains_a_one_time_repeat_population():
    rng = np.random.default_rng(16)
    n_one = 700
    T = rng.integers(30, 730, 1200)
    freq = np.concatenate([np.ones(n_one), 1 + np.maximum(1, rng.poisson(T[n_one:] / 60))])
    rec = np.concatenate([T[:n_one], np.maximum(1, (T[n_one:] * rng.beta(1, 4, 500)).astype(int))])
    x = bn.rfm_features(rec, freq, rng.lognormal(6, 1, 1200) * freq)
    assert kcurve.curve_test("split", x, SplitCopula(x, 42).sample, 42, 39).p > 0.05


def test_a_pointwise_confirmed_k_keeps_the_verdict_of_the_max_t_test():
    """Both nulls reject at k = 3 only (max-T over 10 pairs); the silhouette's k = 2 beats both
    nulls by more than CONFIRM_Z null SDs: k = 2 is named, with each null's figures there and its
    max-T p, and the groups stay distinct."""
    rng = np.random.default_rng(3)
    curves = []
    for name in ("split_copula", "btyd"):
        null = rng.standard_normal((100, 2, 5))
        observed = np.zeros((2, 5))
        observed[:, 0], observed[:, 1] = 2.5, 10.0
        curves.append(kcurve.CurveTest(name, (2, 3, 4, 5, 6), ("r2", "ssil"), observed, null))
    assert all(c.p_by_k[0] >= vd.ALPHA and c.p_by_k[1] < vd.ALPHA for c in curves)
    choice = vd.choose_k(curves, 2)
    assert choice.k == 2 and choice.rule == "silhouette confirmed" and choice.supported == (3,)
    tests = vd.results_at(curves, choice)
    assert [t.k for t in tests] == [2, 2] and all(t.p == c.p < vd.ALPHA for t, c in zip(tests, curves))
    assert all(abs(t.statistic - 2.5) < 1e-12 for t in tests)
    assert vd.verdict(tests).code == vd.DISTINCT
    assert vd.choose_k(curves, 2, how="smallest").k == 3
