"""Tests for lsm_core.sampling: positives, random / buffer / InSAR-PU negatives, windowed uniform draws."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import ndimage

from lsm_core.errors import ConfigError, ModelError, SamplingError
from lsm_core.grid import AreaGrid
from lsm_core.inventory import events_before
from lsm_core.io import RasterFile, write_raster
from lsm_core.sampling import (
    META_COLUMNS,
    buffer_negatives,
    extract_factors,
    insar_pu_negatives,
    n_negatives,
    positive_samples,
    random_negatives,
    sample_pixels,
)

GRID = AreaGrid.from_bounds("EPSG:32649", (500000, 2800000, 502400, 2802400), 10.0)  # 240 x 240 pixels
BANDS = ["slope_deg", "plan_curvature", "rainfall_mm_yr", "lithology", "velocity_mm_yr"]
PERIOD_END = dt.date(2020, 6, 30)


@dataclass
class World:
    stack: RasterFile
    hazard: np.ndarray          # true failure probability per pixel (0..1)
    events: gpd.GeoDataFrame    # all events, before and after PERIOD_END
    known: gpd.GeoDataFrame     # events dated on/before PERIOD_END
    unstable: np.ndarray        # (k, 2) x, y of deforming slopes that have not failed yet


def _field(rng: np.random.Generator, sigma_px: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.normal(size=GRID.shape), sigma_px)
    return (f - f.mean()) / f.std()


def _spread_sites(rng, hazard, k, min_sep_m=300.0):
    """Up to k pixel centres with hazard > 0.8, at least min_sep_m apart, away from the edges and nodata corner."""
    x, y = GRID.pixel_centers()
    r, c = np.nonzero(hazard > 0.8)
    keep = (r > 40) & (r < 220) & (c > 20) & (c < 220)
    r, c = r[keep], c[keep]
    sites: list[tuple[float, float]] = []
    for i in rng.permutation(r.size):
        p = (x[r[i], c[i]], y[r[i], c[i]])
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= min_sep_m for q in sites):
            sites.append(p)
        if len(sites) == k:
            break
    return np.array(sites)


def _make_world(folder) -> World:
    rng = np.random.default_rng(42)
    slope = np.clip(25 + 12 * _field(rng, 10), 0, 70)
    curv = 0.01 * _field(rng, 4)
    rain = 1200 + 100 * _field(rng, 30)
    lith = 1.0 + (_field(rng, 25) > 0) + (_field(rng, 20) > 0.8)
    hazard = 1 / (1 + np.exp(-(0.25 * (slope - 30) + 1.0 * (lith == 3) + 50 * curv)))
    sites = _spread_sites(rng, hazard, 14)
    assert len(sites) == 14
    ev_xy, unstable = sites[:10], sites[10:]
    # active landslides and unstable-not-yet-failed slopes deform; the rest is InSAR noise (mm/yr)
    x, y = GRID.pixel_centers()
    vel = rng.normal(0, 1.5, GRID.shape) - 3 * hazard
    for sx, sy in sites:
        vel -= 25 * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * 80.0 ** 2))
    data = np.stack([slope, curv, rain, lith, vel]).astype("float32")
    data[:, :20, :30] = np.nan  # one nodata corner, as the stack's single mask
    path = write_raster(folder / "stack.tif", data, GRID, BANDS, tags={"categorical": "lithology"})
    dates = [dt.date(2016 + i // 2, 3 + i, 10) for i in range(8)] + [dt.date(2021, 5, 1), dt.date(2022, 7, 1)]
    geoms = [shapely.Point(p).buffer(40.0) for p in ev_xy]
    # a point-only event and a polygon too small to hold a pixel centre (both before the period end)
    px, py = float(x[100, 120]), float(y[100, 120])
    geoms += [shapely.Point(px, py), shapely.box(px + 6, py + 6, px + 8, py + 8)]
    dates += [dt.date(2019, 1, 1), dt.date(2019, 2, 1)]
    ids = [f"ls{i:02d}" for i in range(len(geoms))]
    cent = shapely.centroid(np.array(geoms))
    events = gpd.GeoDataFrame({"event_id": ids, "event_date": dates, "init_x": shapely.get_x(cent),
                               "init_y": shapely.get_y(cent)}, geometry=geoms, crs=GRID.crs)
    return World(RasterFile(path), hazard, events, events_before(events, PERIOD_END), unstable)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return _make_world(tmp_path_factory.mktemp("sampling"))


@pytest.fixture(scope="module")
def positives(world) -> pd.DataFrame:
    return positive_samples(world.events, world.stack, PERIOD_END)


def _centres(df):
    return shapely.points(df["x"].to_numpy(), df["y"].to_numpy())


def _hazard(world, df) -> float:
    return float(world.hazard[df["row"], df["col"]].mean())


def test_positives_carry_event_ids_and_only_events_before_the_period_end(world, positives):
    assert list(positives.columns) == META_COLUMNS + BANDS
    assert set(positives["landslide_id"]) == set(world.known["event_id"])  # ls00..ls07, ls10, ls11
    assert not {"ls08", "ls09"} & set(positives["landslide_id"])
    assert (positives["label"] == 1).all() and (positives["strategy"] == "positive").all()
    assert positives["pu_score"].isna().all() and np.isfinite(positives[BANDS].to_numpy()).all()
    assert not positives.duplicated(["row", "col"]).any()
    geom = world.known.set_index("event_id").geometry
    centres = _centres(positives)
    for eid, g in geom.items():
        sel = (positives["landslide_id"] == eid).to_numpy()
        if g.geom_type == "Polygon" and g.area > 1000:
            # GDAL's rule: centre inside, or on the boundary (the circles pass through pixel centres)
            assert shapely.covers(g, centres[sel]).all() and 40 < sel.sum() < 60
    # the point and the sub-pixel polygon each give the one pixel that holds them
    pts = positives[positives["landslide_id"].isin(["ls10", "ls11"])]
    assert pts[["landslide_id", "row", "col"]].values.tolist() == [["ls11", 99, 121], ["ls10", 100, 120]]
    assert positives.attrs["events_without_pixels"] == []
    np.testing.assert_allclose(positives[BANDS], extract_factors(world.stack, positives["row"], positives["col"]))


def test_positives_need_events_before_the_period_end(world):
    with pytest.raises(SamplingError, match=r"2015-12-31.*first event is dated 2016-03-10"):
        positive_samples(world.events, world.stack, "2015-12-31")
    with pytest.raises(SamplingError, match="inventory is empty"):
        positive_samples(world.events.iloc[:0], world.stack, PERIOD_END)


def test_random_negatives_avoid_known_polygons_and_are_seeded(world, positives):
    n = n_negatives(len(positives))
    neg = random_negatives(world.stack, world.known, n, seed=3)
    assert len(neg) == n == len(positives) and (neg["label"] == 0).all() and neg["landslide_id"].isna().all()
    assert not shapely.intersects(world.known.union_all(), _centres(neg)).any()
    assert np.isfinite(neg[BANDS].to_numpy()).all() and not neg.duplicated(["row", "col"]).any()
    pd.testing.assert_frame_equal(neg, random_negatives(world.stack, world.known, n, seed=3))
    other = random_negatives(world.stack, world.known, n, seed=4)
    assert len(other.merge(neg, on=["row", "col"])) < 0.1 * n
    assert n_negatives(100, 2.5) == 250
    with pytest.raises(ConfigError, match="ratio"):
        n_negatives(100, 0)


def test_buffer_negatives_keep_their_distance_and_paper_b_condition(world, positives):
    neg = buffer_negatives(world.stack, world.known, 400, buffer_m=300, seed=1)
    d = shapely.distance(world.known.union_all(), _centres(neg))
    assert (d > 300).all() and d.min() < 320  # exact: some negatives sit just beyond the buffer
    lim = buffer_negatives(world.stack, world.known, 400, buffer_m=300, max_slope_deg=15,
                           max_abs_velocity_mm_yr=5, seed=1)
    assert ((lim["slope_deg"] < 15) | (lim["velocity_mm_yr"].abs() < 5)).all()
    assert (lim["slope_deg"] >= 15).any()  # OR: steep pixels pass on their low velocity
    assert (buffer_negatives(world.stack, world.known, 400, buffer_m=300, max_slope_deg=15, seed=1)["slope_deg"]
            < 15).all()
    assert _hazard(world, lim) < _hazard(world, neg)
    with pytest.raises(SamplingError, match=r"asked for 400 buffer negatives.*only \d+ exist"):
        buffer_negatives(world.stack, world.known, 400, buffer_m=2000, seed=1)


def test_insar_pu_negatives_are_stable_and_less_hazardous_than_random(world, positives):
    n = len(positives)
    neg, diag = insar_pu_negatives(world.stack, positives, n, n_estimators=30, seed=0)
    rnd = random_negatives(world.stack, world.known, n, seed=0)
    buf = buffer_negatives(world.stack, world.known, n, buffer_m=300, seed=0)
    assert (neg["velocity_mm_yr"].abs() < 5).all() and (neg["strategy"] == "insar_pu").all()
    assert neg.merge(positives, on=["row", "col"]).empty
    h = {"positive": _hazard(world, positives), "random": _hazard(world, rnd), "buffer": _hazard(world, buf),
         "insar_pu": _hazard(world, neg)}
    print("mean true hazard:", {k: round(v, 3) for k, v in h.items()}, "pool:", diag.pool_size)
    assert h["insar_pu"] < h["random"] - 0.05 and h["insar_pu"] < h["buffer"] and h["positive"] > 0.8
    # no negative on an unstable-not-yet-failed slope (they deform faster than the threshold)
    assert shapely.distance(shapely.points(world.unstable), _centres(neg)[:, None]).min() > 80
    assert neg["pu_score"].between(0, diag.score_cutoff).all()
    assert diag.features == tuple(BANDS[:4]) and diag.pool_scored == diag.pool_size > 30_000
    assert diag.negative_scores.mean < diag.pool_scores.mean
    assert sum(diag.pool_scores.histogram_counts) == diag.pool_size - diag.n_never_out_of_bag
    # as_dict: the JSON the negative_samples asset puts in its metadata, in the shape it always had
    d = diag.as_dict()
    assert json.loads(json.dumps(d)) == d and d["features"] == BANDS[:4] and d["pool_size"] == diag.pool_size
    assert d["pool_scores"]["histogram"]["counts"] == list(diag.pool_scores.histogram_counts)
    assert d["pool_scores"]["median"] == diag.pool_scores.quantiles["median"] and "mean" in d["negative_scores"]
    again, _ = insar_pu_negatives(world.stack, positives, n, n_estimators=30, seed=0)
    pd.testing.assert_frame_equal(neg, again)


def test_insar_pu_subsamples_a_large_pool_and_reports_a_small_one(world, positives):
    neg, diag = insar_pu_negatives(world.stack, positives, 100, n_estimators=10, max_pool=5_000, seed=0)
    assert diag.pool_subsampled and diag.pool_scored == 5_000 and len(neg) == 100
    with pytest.raises(SamplingError, match=r"holds \d+ pixels but 200 negatives"):
        insar_pu_negatives(world.stack, positives, 200, threshold_mm_yr=0.01, seed=0)
    pool = int((np.abs(world.stack.band("velocity_mm_yr")) < 0.1).sum())  # positives all move faster
    with pytest.raises(SamplingError, match=f"lowest 50% of the pool holds only {pool // 2} of {pool}"):
        insar_pu_negatives(world.stack, positives, pool * 3 // 4, threshold_mm_yr=0.1, n_estimators=5, seed=0)


def test_insar_pu_caps_the_positives_of_the_classifier_seeded(world, positives):
    cap = len(positives) // 3
    a, diag = insar_pu_negatives(world.stack, positives, 100, n_estimators=10, max_positives=cap, seed=0)
    b, _ = insar_pu_negatives(world.stack, positives, 100, n_estimators=10, max_positives=cap, seed=0)
    full, full_diag = insar_pu_negatives(world.stack, positives, 100, n_estimators=10, seed=0)
    assert diag.n_positives_in_classifier == cap and diag.n_positives == len(positives)
    assert full_diag.n_positives_in_classifier == len(positives)
    pd.testing.assert_frame_equal(a, b)
    assert len(full) == len(a) == 100


def test_a_constant_pu_feature_is_named(tmp_path, world, positives):
    data = world.stack.read()
    data[3] = np.where(np.isnan(data[3]), np.nan, 2.0)  # one lithology everywhere
    flat = RasterFile(write_raster(tmp_path / "flat.tif", data, GRID, BANDS))
    pos = positive_samples(world.events, flat, PERIOD_END)
    with pytest.raises(ModelError, match="'lithology'"):
        insar_pu_negatives(flat, pos, 50, n_estimators=5, seed=0)
    with pytest.raises(ConfigError, match="no velocity band 'v'"):
        insar_pu_negatives(flat, pos, 50, velocity_band="v", seed=0)


@pytest.mark.parametrize("block", [64, 100])
def test_samples_do_not_depend_on_the_block_size(world, positives, block):
    pd.testing.assert_frame_equal(positives, positive_samples(world.events, world.stack, PERIOD_END, block=block))
    for draw in (lambda b: random_negatives(world.stack, world.known, 300, seed=5, block=b),
                 lambda b: buffer_negatives(world.stack, world.known, 300, buffer_m=250, seed=5, block=b),
                 lambda b: insar_pu_negatives(world.stack, positives, 300, n_estimators=10, seed=5, block=b)[0]):
        pd.testing.assert_frame_equal(draw(512), draw(block))


def test_uniform_sampler_draws_evenly_and_reads_only_needed_blocks(world, monkeypatch):
    s = sample_pixels(world.stack, 4000, seed=0, block=64)
    n_valid = GRID.n_pixels - 20 * 30
    assert s.n_candidates == n_valid and len(np.unique(s.rows * 240 + s.cols)) == 4000
    # share of draws in the top half vs the top half's share of valid pixels (binomial sd ~ 0.008)
    top = (n_valid / 2 - 20 * 30) / n_valid
    assert abs((s.rows < 120).mean() - top) < 0.03
    every = sample_pixels(world.stack, n_valid, lambda w, d: d[0] > 40, seed=0, block=64, allow_fewer=True)
    assert (every.values[:, 0] > 40).all() and len(every.rows) == every.n_candidates
    with pytest.raises(SamplingError, match=f"asked for {n_valid + 1} .* only {n_valid} exist"):
        sample_pixels(world.stack, n_valid + 1, seed=0, block=64)
    reads = []
    orig = RasterFile.read
    monkeypatch.setattr(RasterFile, "read", lambda self, w=None, b=None: reads.append(w) or orig(self, w, b))
    df = extract_factors(world.stack, [5, 6, 200], [5, 7, 230], block=64)
    assert len(reads) == 2 and df.shape == (3, 5) and df.iloc[:2].isna().all().all()
    assert np.isfinite(df.iloc[2]).all()


def test_insar_pu_on_the_synthetic_world_avoids_unstable_slopes(tmp_path):
    from lsm_core.inventory import read_inventory
    from lsm_core.io import raster_on_grid, read_raster
    from lsm_core.synthetic import generate_area
    from lsm_core.terrain import relief_m, slope_deg

    info = generate_area("loess", tmp_path, scale=0.06)  # 294 x 294 pixels, about 1.5 s
    area = tmp_path / "study_areas" / "loess"
    dem = RasterFile(area / "dem.tif")
    grid, z = dem.grid, dem.read()[0].astype(float)
    vel = raster_on_grid(f"{info['deliveries'][0]}/velocity.tif", grid)[0]  # period 201602-201706
    data = np.stack([slope_deg(z, grid.resolution_m), relief_m(z, grid.resolution_m),
                     raster_on_grid(area / "rainfall.tif", grid)[0], vel]).astype("float32")
    data[:, ~np.isfinite(data).all(axis=0)] = np.nan
    stack = RasterFile(write_raster(tmp_path / "stack.tif", data, grid,
                                    ["slope_deg", "relief_m", "rainfall_mm_yr", "velocity_mm_yr"]))
    events = read_inventory(area / "inventory.gpkg", grid)
    pos = positive_samples(events, stack, "2017-06-30")
    rnd = random_negatives(stack, events_before(events, "2017-06-30"), len(pos), seed=0)
    pu, _ = insar_pu_negatives(stack, pos, len(pos), n_estimators=50, seed=0)
    hazard, unstable = read_raster(area / "truth" / "hazard.tif")[0], read_raster(area / "truth" / "unstable.tif")[0]
    h = {k: float(hazard[d["row"], d["col"]].mean()) for k, d in {"pos": pos, "random": rnd, "insar_pu": pu}.items()}
    u = {k: float(unstable[d["row"], d["col"]].mean()) for k, d in {"random": rnd, "insar_pu": pu}.items()}
    print("synthetic loess: mean true hazard", h, "share on unstable slopes", u)
    assert h["insar_pu"] < h["random"] < h["pos"] and u["insar_pu"] <= u["random"]


def test_subsample_per_class_caps_each_label_and_is_seeded():
    from lsm_core.sampling import subsample_per_class

    t = pd.DataFrame({"label": [1] * 50 + [0] * 500, "v": np.arange(550)})
    s = subsample_per_class(t, 100, seed=3)
    assert (s["label"] == 1).sum() == 50 and (s["label"] == 0).sum() == 100
    assert s.equals(subsample_per_class(t, 100, seed=3)) and not s.equals(subsample_per_class(t, 100, seed=4))
    assert subsample_per_class(t, None, seed=0) is t
    # a fold region without negatives of a strategy (Ecuador's buffer negatives, 500 m from every landslide)
    assert subsample_per_class(t.iloc[:0], 100, seed=0).empty


def test_draw_negatives_refuses_an_unknown_strategy(tmp_path):
    import pytest

    from lsm_core.errors import ConfigError
    from lsm_core.sampling import draw_negatives

    with pytest.raises(ConfigError, match="unknown negative strategy 'nearest'"):
        draw_negatives("nearest", None, None, None, 10, seed=0)  # type: ignore[arg-type]


def test_pu_ablation_is_insar_pu_without_the_velocity_pool(world, positives):
    from lsm_core.sampling import draw_negatives, pu_negatives

    n = len(positives)
    pu, diag = pu_negatives(world.stack, positives, n, n_estimators=10, seed=0)
    _, insar = insar_pu_negatives(world.stack, positives, n, n_estimators=10, seed=0)
    assert (pu["strategy"] == "pu").all() and len(pu) == n and pu.merge(positives, on=["row", "col"]).empty
    # the pool is every valid non-positive pixel: the insar_pu pool plus the fast-moving pixels
    valid = int(np.isfinite(world.stack.read()).all(axis=0).sum())
    assert diag.pool_size == valid - len(positives) > insar.pool_size
    assert diag.threshold_mm_yr is None and diag.features == insar.features
    assert pu["pu_score"].between(0, diag.score_cutoff).all()
    via, _ = draw_negatives("pu", world.stack, world.known, positives, n, seed=0, pu_exclude=["velocity_mm_yr"],
                            n_estimators=10)
    pd.testing.assert_frame_equal(pu, via)


@pytest.mark.parametrize("strategy", ["insar_pu", "pu"])
def test_fold_pu_negatives_never_saw_the_folds_test_positives(world, positives, strategy):
    from lsm_core.sampling import fold_pu_negatives
    from lsm_core.yardstick import common_folds

    folds = common_folds(positives, 3, seed=0)
    pf = folds.positive_folds(positives)
    neg, diags = fold_pu_negatives(world.stack, positives, strategy, pf, folds.region, 3, n_estimators=5,
                                   max_pool=20_000, seed=0)
    ids = positives["landslide_id"].astype(str).to_numpy()
    region = folds.region(neg["x"].to_numpy(), neg["y"].to_numpy())
    for d in diags:
        f = d.fold
        test_ids, train_ids = set(ids[pf == f]), set(ids[pf != f])
        # the classifier of fold f was fitted on the other folds' landslides only, all of them
        assert test_ids and not test_ids & set(d.positive_ids) and set(d.positive_ids) == train_ids
        mine = neg[neg["cv_fold"] == f]
        assert len(mine) == d.n_train_negatives + d.n_test_negatives and d.n_test_negatives > 0
        assert (region[neg["cv_fold"] == f] == f).sum() == d.n_test_negatives
        assert d.as_dict()["positive_ids"] == list(d.positive_ids) and json.dumps(d.as_dict())
    assert (neg["strategy"] == strategy).all() and neg.merge(positives, on=["row", "col"]).empty
    if strategy == "insar_pu":
        assert (neg["velocity_mm_yr"].abs() < 5).all()
    # behaviour: garbling the factor values of fold 0's test positives leaves fold 0's negatives unchanged
    garbled = positives.copy()
    rng = np.random.default_rng(1)
    garbled.loc[pf == 0, "slope_deg"] = rng.uniform(0, 70, int((pf == 0).sum()))
    garbled.loc[pf == 0, "rainfall_mm_yr"] = rng.uniform(900, 1500, int((pf == 0).sum()))
    again, _ = fold_pu_negatives(world.stack, garbled, strategy, pf, folds.region, 3, n_estimators=5,
                                 max_pool=20_000, seed=0)
    pd.testing.assert_frame_equal(again[again["cv_fold"] == 0].reset_index(drop=True),
                                  neg[neg["cv_fold"] == 0].reset_index(drop=True))
    # ... while it does change the negatives of a fold that trains on them
    assert not again[again["cv_fold"] == 1].reset_index(drop=True).equals(neg[neg["cv_fold"] == 1].reset_index(drop=True))


def test_area_sample_is_uniform_over_valid_pixels_and_independent_of_random(world):
    from lsm_core.sampling import area_sample, training_negatives

    a = area_sample(world.stack, 2000, seed=0)
    r = random_negatives(world.stack, world.known, 2000, seed=0)
    assert (a["strategy"] == "area_sample").all() and np.isfinite(a[BANDS].to_numpy()).all()
    assert len(a.merge(r, on=["row", "col"])) < 200  # its own stream: not the random negatives' pixels
    both = pd.concat([r.assign(cv_fold=-1), a.assign(cv_fold=-1), r.assign(cv_fold=2)], ignore_index=True)
    assert len(training_negatives(both)) == len(r)


@pytest.mark.parametrize("buffer_m", [30.0, 250.0])
def test_buffer_mask_is_the_exact_distance_test(world, buffer_m):
    """The polygonal inner buffer that spares most pixels the exact test marks exactly the pixels within buffer_m."""
    from lsm_core.sampling import _Footprints

    grid = world.stack.grid
    near = _Footprints(world.known, grid, buffer_m)
    x, y = grid.pixel_centers()
    exact = shapely.dwithin(world.known.union_all(), shapely.points(x.ravel(), y.ravel()), buffer_m).reshape(x.shape)
    mask = np.zeros(grid.shape, bool)
    for b in grid.windows(100):
        r, c = b.write.toslices()
        mask[r, c] = near.mask(b.write)
    np.testing.assert_array_equal(mask, exact)
    assert exact.any() and not exact.all()


def test_draws_from_a_cached_stack_equal_draws_from_the_file(world, positives):
    from lsm_core.sampling import fold_pu_negatives, pu_negatives

    cached = world.stack.cached()
    region = lambda x, y: (np.asarray(x) > GRID.bounds[0] + 1200).astype(int)  # noqa: E731
    folds = region(positives["x"], positives["y"])
    for stack in (world.stack, cached, cached):  # the second cached pass reads from memory
        got = [random_negatives(stack, world.known, 300, seed=5),
               buffer_negatives(stack, world.known, 300, buffer_m=250, seed=5),
               insar_pu_negatives(stack, positives, 300, n_estimators=5, seed=5)[0],
               pu_negatives(stack, positives, 300, n_estimators=5, seed=5)[0],
               fold_pu_negatives(stack, positives, "insar_pu", folds, region, 2, n_estimators=5, max_pool=5000,
                                 seed=5)[0]]
        if stack is world.stack:
            want = got
        for a, b in zip(want, got, strict=True):
            pd.testing.assert_frame_equal(a, b)
    assert cached.cached_bytes > 0
