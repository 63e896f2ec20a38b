"""Tests of the weighted JS-divergence threshold (DESIGN 6) against a naive one-pass-per-threshold reference."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from lsm_core.errors import ConfigError, GridMismatchError, LsmError, SamplingError
from lsm_core.threshold import (
    FactorBins,
    JSHistogramAccumulator,
    js_divergence,
    js_threshold_curve,
    plot_js_curve,
    weights_from,
)

LN2 = math.log(2.0)
FAST = settings(max_examples=25, deadline=None)


# --- the naive reference: one pass over the pixels per threshold (also used by benchmarks/bench_threshold.py) ---

def _naive_js(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    kl_pm = sum(pi * math.log(pi / mi) for pi, mi in zip(p, m, strict=True) if pi > 0)
    kl_qm = sum(qi * math.log(qi / mi) for qi, mi in zip(q, m, strict=True) if qi > 0)
    return 0.5 * kl_pm + 0.5 * kl_qm


def _naive_hist(values: np.ndarray, bins: FactorBins, i: int) -> np.ndarray:
    codes = bins.codes[i]
    if codes is not None:
        return np.array([np.count_nonzero(values == c) for c in codes], dtype=np.float64)
    rng = (np.float64(bins.lo[i]), np.float64(bins.hi[i]))
    return np.histogram(values, bins=bins.n_bins, range=rng)[0].astype(np.float64)


def naive_js_curve(probability: np.ndarray, factors: np.ndarray, positive: np.ndarray, bins: FactorBins,
                   weights: np.ndarray | None = None, thresholds_pct: Iterable[float] = range(1, 100),
                   valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D(t), JS per factor, pixels above) by masking p >= t/100 and histogramming every factor, per threshold."""
    n = factors.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, float) / np.sum(weights)
    ok = np.isfinite(factors).all(axis=0)
    if bins.nodata is not None:
        ok &= (factors != bins.nodata).all(axis=0)
    if valid is not None:
        ok &= valid
    p_hist = [_naive_hist(factors[i][ok & positive], bins, i) for i in range(n)]
    prob = probability.astype(np.float64)
    ok &= np.isfinite(prob)
    d, js, above = [], [], []
    for t in thresholds_pct:
        sel = ok & (prob >= t / 100)
        above.append(int(sel.sum()))
        if not sel.any():
            d.append(np.nan)
            js.append([np.nan] * n)
            continue
        row = [_naive_js(p_hist[i], _naive_hist(factors[i][sel], bins, i)) for i in range(n)]
        js.append(row)
        d.append(float(np.dot(w, row)))
    return np.array(d), np.array(js), np.array(above)


# --- synthetic stacks ---

CATEGORICAL = {0: [2.0, 5.0, 7.0, 11.0], 1: [0.5, 1.5, 2.5]}


def make_stack(seed: int, rows: int = 23, cols: int = 31, *, dtype=np.float32, prob_dtype=np.float32,
               holes: bool = True, nodata: float | None = None):
    """Probability, factors (2 categorical + 4 continuous, one on bin edges), positive mask, valid mask."""
    rng = np.random.default_rng(seed)
    shape = (rows, cols)
    f = np.empty((6, *shape), dtype)
    f[0] = rng.choice(CATEGORICAL[0], size=shape)
    f[1] = rng.choice(CATEGORICAL[1], size=shape)
    f[2] = rng.normal(10, 3, shape)
    f[3] = rng.uniform(-1, 1, shape)
    # values on (and one ulp either side of) the 32-bin edges of [0.1, 0.7]
    e = np.linspace(0.1, 0.7, 33)
    on_edges = np.concatenate([e, np.nextafter(e[1:], -1), np.nextafter(e[:-1], 2)])
    f[4] = rng.choice(on_edges, size=shape)
    f[4, -1, -2:] = 0.1, 0.7
    f[5] = rng.exponential(2.0, shape)
    lin = 0.4 * (f[0] == 5) + 0.3 * f[3] + 0.5 * f[4] + rng.normal(0, 0.3, shape)
    prob = (1 / (1 + np.exp(-3 * (lin - 0.5)))).astype(prob_dtype)
    # probabilities exactly on (and one ulp either side of) the thresholds t/100
    t = rng.integers(1, 100, size=prob.size // 4) / 100
    edge = np.concatenate([t, np.nextafter(t, 0), np.nextafter(t, 1)]).astype(prob_dtype)
    flat = prob.reshape(-1)
    flat[rng.choice(prob.size, edge.size, replace=False)] = edge
    positive = rng.random(shape) < 0.05 + 0.3 * prob
    valid = np.ones(shape, bool)
    if holes:
        f[rng.integers(0, 6, 20), rng.integers(0, rows, 20), rng.integers(0, cols, 20)] = np.nan
        prob[rng.integers(0, rows, 10), rng.integers(0, cols, 10)] = np.nan
        valid[: rows // 5, : cols // 4] = False
        if nodata is not None:
            f[rng.integers(0, 6, 15), rng.integers(0, rows, 15), rng.integers(0, cols, 15)] = nodata
    return prob, f, positive, valid


# --- js_divergence ---

hist = st.lists(st.integers(0, 20), min_size=1, max_size=8)


@FAST
@given(data=st.data())
def test_js_symmetric_bounded_and_zero_only_for_equal(data):
    p = data.draw(hist.filter(lambda h: sum(h) > 0))
    q = data.draw(st.lists(st.integers(0, 20), min_size=len(p), max_size=len(p)).filter(lambda h: sum(h) > 0))
    js = js_divergence(p, q)
    assert js == js_divergence(q, p)
    assert 0.0 <= js <= LN2
    assert js == pytest.approx(jensenshannon(p, q) ** 2, abs=1e-12)
    equal = np.allclose(np.divide(p, sum(p)), np.divide(q, sum(q)), rtol=0, atol=1e-15)
    assert (js == 0.0) == equal
    assert js_divergence(p, [3 * x for x in p]) == 0.0


def test_js_extremes_and_bad_input():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(LN2, abs=1e-15)
    assert js_divergence([4, 0, 0], [0, 2, 2]) <= LN2
    for p, q in (([1, 2], [1, 2, 3]), ([0, 0], [1, 1]), ([-1, 2], [1, 1]), ([np.nan, 1], [1, 1])):
        with pytest.raises(LsmError):
            js_divergence(p, q)


# --- weights ---

@FAST
@given(ranks=st.integers(1, 12).flatmap(lambda n: st.permutations(range(1, n + 1))))
def test_expert_weights_formula(ranks):
    n = len(ranks)
    w = weights_from("expert", n, expert_ranks=ranks)
    expected = np.array([(n - r + 1) / (n * (n + 1) / 2) for r in ranks])
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert w.sum() == pytest.approx(1.0)
    assert w[int(np.argmin(ranks))] == w.max()


def test_equal_and_importance_weights_and_errors():
    np.testing.assert_allclose(weights_from("equal", 4), [0.25] * 4)
    np.testing.assert_allclose(weights_from("importance", 3, importances=[2, 1, 1]), [0.5, 0.25, 0.25])
    bad = [
        dict(scheme="importance", importances=[1, 2]),
        dict(scheme="importance", importances=[1, -1, 1]),
        dict(scheme="importance", importances=[0, 0, 0]),
        dict(scheme="importance"),
        dict(scheme="expert", expert_ranks=[1, 2]),
        dict(scheme="expert", expert_ranks=[0, 1, 2]),
        dict(scheme="expert", expert_ranks=[1, 2, 4]),
        dict(scheme="expert", expert_ranks=[1, 2.5, 3]),
        dict(scheme="magic"),
    ]
    for kw in bad:
        with pytest.raises(ConfigError):
            weights_from(kw.pop("scheme"), 3, **kw)


# --- the curve ---

@FAST
@given(seed=st.integers(0, 2**31), prob64=st.booleans(), stack64=st.booleans(), nodata=st.booleans(),
       step=st.sampled_from([1, 5]))
def test_fast_curve_equals_naive(seed, prob64, stack64, nodata, step):
    nd = -9999.0 if nodata else None
    prob, f, positive, valid = make_stack(seed, dtype=np.float64 if stack64 else np.float32,
                                          prob_dtype=np.float64 if prob64 else np.float32, nodata=nd)
    w = np.random.default_rng(seed).uniform(0.1, 2.0, f.shape[0])
    ts = range(1, 100, step)
    curve = js_threshold_curve(prob, f, positive, categorical=CATEGORICAL, weights=w, thresholds_pct=ts,
                               valid=valid, nodata=nd)
    bins = FactorBins.from_stack(f, categorical=CATEGORICAL, valid=valid, nodata=nd)
    d, js, above = naive_js_curve(prob, f, positive, bins, w, ts, valid)
    np.testing.assert_array_equal(curve.n_pixels_above, above)
    np.testing.assert_allclose(curve.d, d, rtol=0, atol=1e-9)
    np.testing.assert_allclose(curve.js_per_factor, js, rtol=0, atol=1e-9)
    assert curve.t_star_pct == ts[int(np.nanargmin(d))]
    np.testing.assert_allclose(curve.weights, w / w.sum())


@FAST
@given(lo=st.floats(-1e4, 1e4), width=st.floats(1e-3, 1e4), n_bins=st.sampled_from([1, 2, 3, 7, 32, 100]),
       f32=st.booleans(), seed=st.integers(0, 2**31))
def test_bin_index_is_exact_on_and_next_to_edges(lo, width, n_bins, f32, seed):
    dtype = np.float32 if f32 else np.float64
    e = np.linspace(lo, lo + width, n_bins + 1)
    near = np.concatenate([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf),
                           np.random.default_rng(seed).uniform(lo, lo + width, 500)]).astype(dtype)
    v = near[(near >= near[0]) & (near <= near[n_bins])]  # inside the range of the first and last edge
    bins = FactorBins.from_stack(v[None, :], n_bins=n_bins)
    expected = np.searchsorted(bins.edges(0)[1:-1], v, side="right")
    np.testing.assert_array_equal(bins.index(0, v), expected)
    np.testing.assert_array_equal(np.bincount(expected, minlength=n_bins), _naive_hist(v, bins, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probabilities_on_and_next_to_thresholds(dtype):
    t = np.arange(1, 100) / 100
    prob = np.concatenate([t, np.nextafter(t, 0), np.nextafter(t, 1), [0.0, 1.0]]).astype(dtype)[None, :]
    f = np.random.default_rng(0).normal(size=(1, *prob.shape))
    for ts in (range(1, 100), [1, 3, 50, 99]):
        curve = js_threshold_curve(prob, f, np.ones(prob.shape, bool), thresholds_pct=ts)
        expected = [(prob.astype(np.float64) >= x / 100).sum() for x in ts]
        np.testing.assert_array_equal(curve.n_pixels_above, expected)


@pytest.mark.parametrize("dtype, lo, width", [(np.float32, 5000.37, 1.7), (np.float64, 1e9 + 0.3, 1e-4)])
def test_large_magnitudes_take_the_careful_paths(dtype, lo, width):
    # float32 arithmetic is not precise enough for 5000 + [0, 2), float64 not for 1e9 + [0, 1e-4)
    prob, f, positive, valid = make_stack(9, dtype=dtype)
    e = np.linspace(lo, lo + width, 33).astype(dtype)
    pool = np.concatenate([e + k * np.spacing(e) for k in range(-64, 65)])  # on and a few ulp around the edges
    pool = pool[(pool >= e[0]) & (pool <= e[-1])]
    f[5] = np.resize(np.random.default_rng(9).permutation(pool), f[5].shape)
    f[5, -1, -2:] = e[0], e[-1]
    curve = js_threshold_curve(prob, f, positive, categorical=CATEGORICAL, valid=valid)
    bins = FactorBins.from_stack(f, categorical=CATEGORICAL, valid=valid)
    d, _, above = naive_js_curve(prob, f, positive, bins, None, range(1, 100), valid)
    np.testing.assert_array_equal(curve.n_pixels_above, above)
    np.testing.assert_allclose(curve.d, d, rtol=0, atol=1e-9)
    v = pool.astype(dtype)
    np.testing.assert_array_equal(bins.index(5, v), np.searchsorted(bins.edges(5)[1:-1], v, side="right"))


def test_uneven_thresholds_use_the_same_rule():
    prob, f, positive, valid = make_stack(7)
    ts = [0.5, 1, 2, 5, 10, 33.3, 50, 63, 99.5, 100]
    curve = js_threshold_curve(prob, f, positive, categorical=CATEGORICAL, thresholds_pct=ts, valid=valid)
    d, _, above = naive_js_curve(prob, f, positive, FactorBins.from_stack(f, categorical=CATEGORICAL, valid=valid),
                                 None, ts, valid)
    np.testing.assert_array_equal(curve.n_pixels_above, above)
    np.testing.assert_allclose(curve.d, d, rtol=0, atol=1e-9)


@FAST
@given(seed=st.integers(0, 2**31), c=st.floats(1e-3, 1e3))
def test_scaling_weights_leaves_curve_unchanged(seed, c):
    prob, f, positive, valid = make_stack(seed)
    w = np.random.default_rng(seed).uniform(0.0, 1.0, f.shape[0]) + 1e-3
    acc = JSHistogramAccumulator(FactorBins.from_stack(f, categorical=CATEGORICAL, valid=valid))
    acc.update(prob, f, valid, positive)
    a, b = acc.curve(w), acc.curve(c * w)
    np.testing.assert_allclose(a.d, b.d, rtol=1e-12, atol=1e-15)
    assert a.t_star_pct == b.t_star_pct


@FAST
@given(seed=st.integers(0, 2**31), row_cuts=st.lists(st.integers(1, 22), max_size=3),
       col_cuts=st.lists(st.integers(1, 30), max_size=3))
def test_blockwise_accumulation_equals_one_shot(seed, row_cuts, col_cuts):
    prob, f, positive, valid = make_stack(seed)
    rs, cs = [0, *sorted(set(row_cuts)), prob.shape[0]], [0, *sorted(set(col_cuts)), prob.shape[1]]
    windows = [(slice(r0, r1), slice(c0, c1))
               for r0, r1 in zip(rs[:-1], rs[1:], strict=True) for c0, c1 in zip(cs[:-1], cs[1:], strict=True)]
    bins = FactorBins.from_blocks(((f[:, r, c], valid[r, c]) for r, c in windows), categorical=[0, 1])
    whole = FactorBins.from_stack(f, categorical=[0, 1], valid=valid)
    assert bins == whole
    np.testing.assert_array_equal(whole.codes[0], CATEGORICAL[0])
    acc = JSHistogramAccumulator(bins)
    for r, c in windows:
        acc.update(prob[r, c], f[:, r, c], valid[r, c], positive[r, c])
    blocked = acc.curve()
    one = js_threshold_curve(prob, f, positive, categorical=[0, 1], valid=valid)
    np.testing.assert_array_equal(blocked.d, one.d)
    np.testing.assert_array_equal(blocked.js_per_factor, one.js_per_factor)
    np.testing.assert_array_equal(blocked.n_pixels_above, one.n_pixels_above)
    assert blocked.t_star_pct == one.t_star_pct


def test_merge_and_positive_table_match_single_accumulator():
    prob, f, positive, valid = make_stack(3)
    bins = FactorBins.from_stack(f, categorical=CATEGORICAL, valid=valid)
    one = JSHistogramAccumulator(bins)
    one.update(prob, f, valid, positive)
    # the other worker rebuilt equal bins, as a pickled copy would be
    top, bottom = JSHistogramAccumulator(bins), JSHistogramAccumulator(FactorBins.from_stack(
        f, categorical=CATEGORICAL, valid=valid))
    top.update(prob[:10], f[:, :10], valid[:10], positive[:10])
    bottom.update(prob[10:], f[:, 10:], valid[10:])
    bottom.add_positive_values(f[:, 10:][:, positive[10:] & valid[10:]].T)
    top.merge(bottom)
    np.testing.assert_array_equal(top.curve().d, one.curve().d)
    with pytest.raises(LsmError, match="equal bins"):
        top.merge(JSHistogramAccumulator(FactorBins.from_stack(f, categorical=CATEGORICAL, n_bins=16)))


def test_thresholds_without_pixels_are_skipped():
    prob, f, positive, _ = make_stack(11, holes=False)
    prob = np.clip(prob, 0, 0.3)
    curve = js_threshold_curve(prob, f, positive, categorical=CATEGORICAL)
    assert np.all(curve.n_pixels_above[30:] == 0) and np.all(curve.n_pixels_above[:30] > 0)
    assert np.all(np.isnan(curve.d[30:])) and np.all(np.isnan(curve.js_per_factor[30:]))
    assert np.all(np.isfinite(curve.d[:30]))
    assert curve.t_star_pct <= 30
    with pytest.raises(LsmError, match="no valid pixel"):
        js_threshold_curve(np.full(prob.shape, np.nan), f, positive, categorical=CATEGORICAL)
    with pytest.raises(SamplingError):
        js_threshold_curve(prob, f, np.zeros(prob.shape, bool), categorical=CATEGORICAL)


def test_positive_given_as_indices():
    prob, f, positive, _ = make_stack(5, holes=False)
    by_mask = js_threshold_curve(prob, f, positive, categorical=CATEGORICAL)
    by_flat = js_threshold_curve(prob, f, np.flatnonzero(positive), categorical=CATEGORICAL)
    by_rc = js_threshold_curve(prob, f, np.nonzero(positive), categorical=CATEGORICAL)
    np.testing.assert_array_equal(by_mask.d, by_flat.d)
    np.testing.assert_array_equal(by_mask.d, by_rc.d)


def test_shape_mismatch_raises_grid_error():
    prob, f, positive, valid = make_stack(1)
    with pytest.raises(GridMismatchError, match=r"probability shape \(23, 30\).*factor stack shape \(6, 23, 31\)"):
        js_threshold_curve(prob[:, :30], f, positive[:, :30], categorical=CATEGORICAL)
    acc = JSHistogramAccumulator(FactorBins.from_stack(f, categorical=CATEGORICAL))
    with pytest.raises(GridMismatchError, match="valid mask shape"):
        acc.update(prob, f, valid[:5])


def test_values_outside_the_bins_are_errors():
    prob, f, positive, _ = make_stack(2, holes=False)
    bins = FactorBins.from_stack(f[:, :10], categorical=CATEGORICAL)
    acc = JSHistogramAccumulator(bins)
    g = f.copy()
    g[0, 0, 0] = 3.0
    with pytest.raises(ConfigError, match="categorical factor 0 has codes \\[3.0\\]"):
        acc.update(prob, g)
    g = f.copy()
    g[2, 0, 0] = 1e6
    with pytest.raises(ConfigError, match="factor 2 has values"):
        acc.update(prob, g)
    for ts in ([5, 5], [0, 50], [50, 101]):
        with pytest.raises(ConfigError):
            JSHistogramAccumulator(bins, ts)


def test_plot_is_written_atomically(tmp_path):
    prob, f, positive, valid = make_stack(4)
    curve = js_threshold_curve(prob, f, positive, categorical=CATEGORICAL, valid=valid)
    out = plot_js_curve(curve, tmp_path / "js_threshold.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["js_threshold.png"]


def test_raster_driver_equals_the_in_memory_curve(tmp_path):
    from lsm_core.grid import AreaGrid
    from lsm_core.io import RasterArray, RasterFile, write_raster
    from lsm_core.stack import build_factor_stack
    from lsm_core.threshold import js_threshold_for_rasters

    grid = AreaGrid.from_bounds("EPSG:32647", (0, 0, 1200, 800), 10)  # 80 x 120
    rng = np.random.default_rng(4)
    cont = rng.normal(size=(2, *grid.shape)).astype("float32")
    cont[0, :5, :5] = np.nan
    lith = rng.choice([1.0, 3.0, 4.0], size=(1, *grid.shape)).astype("float32")
    prob = (1 / (1 + np.exp(-cont[1]))).astype("float32")
    write_raster(tmp_path / "c.tif", cont, grid, ["slope_deg", "twi"])
    write_raster(tmp_path / "l.tif", lith, grid, ["lithology"], tags={"categorical": "lithology"})
    mask = RasterArray(np.ones(grid.shape, "float32"), grid, ["valid"], dtype="uint8", nodata=None).write(
        tmp_path / "m.tif")
    build_factor_stack([(RasterFile(tmp_path / "c.tif"), ["slope_deg", "twi"]),
                        (RasterFile(tmp_path / "l.tif"), ["lithology"])], mask, tmp_path / "stack.tif", block=32)
    p = RasterArray(prob, grid, ["susceptibility"]).write(tmp_path / "p.tif")
    stack = RasterFile(tmp_path / "stack.tif").read()
    pos = np.zeros(grid.shape, bool)
    pos[np.unravel_index(np.argsort(-np.nan_to_num(prob).ravel())[:300], grid.shape)] = True
    pos &= np.isfinite(stack).all(axis=0)
    names = ["slope_deg", "twi", "lithology"]
    fast = js_threshold_for_rasters(p.path, tmp_path / "stack.tif", stack[:, pos].T, factor_names=names, block=32)
    ref = js_threshold_curve(RasterFile(p.path).read()[0], stack, pos, categorical=[2], factor_names=names)
    np.testing.assert_allclose(fast.d, ref.d, atol=1e-12, equal_nan=True)
    assert fast.t_star_pct == ref.t_star_pct


def test_factor_weights_by_name():
    import pytest

    from lsm_core.errors import ConfigError
    from lsm_core.threshold import factor_weights

    names = ["slope", "ndvi", "velocity"]
    np.testing.assert_allclose(factor_weights("equal", names), [1 / 3] * 3)
    np.testing.assert_allclose(factor_weights("importance", names, importance={"slope": 3.0, "ndvi": 1.0}),
                               [0.75, 0.25, 0.0])
    np.testing.assert_allclose(factor_weights("expert", names, expert_ranking=["velocity", "slope", "ndvi"]),
                               [2 / 6, 1 / 6, 3 / 6])
    with pytest.raises(ConfigError, match="missing \\['ndvi'\\]"):
        factor_weights("expert", names, expert_ranking=["velocity", "slope"])


def test_polarised_map_pins_t_star_at_the_grid_edge_and_reports_the_share_above():
    """Easy negatives make a model call half the area ~1: D(t) keeps falling to 99 % (issue 12, the threshold)."""
    slope = np.random.default_rng(0).uniform(0.0, 40.0, (60, 60))  # degrees
    positive = slope > 30.0
    spread = js_threshold_curve(slope / 40.0, slope[None], positive)
    assert spread.t_star_pct == 75.0 and not spread.t_star_at_grid_edge
    assert spread.share_above_t_star == pytest.approx(np.mean(slope / 40.0 >= 0.75))
    polarised = 1.0 / (1.0 + np.exp(-2.0 * (slope - 20.0)))  # everything above 20 degrees scores ~1
    curve = js_threshold_curve(polarised, slope[None], positive)
    assert curve.t_star_pct == 99.0 and curve.t_star_at_grid_edge
    assert curve.share_above_t_star == pytest.approx(np.mean(polarised >= 0.99)) and curve.n_valid == slope.size
    # the prone area at t* = 99 % holds slopes down to ~22 degrees: far more than the landslide-like > 30
    assert curve.share_above_t_star > 1.5 * np.mean(positive)
