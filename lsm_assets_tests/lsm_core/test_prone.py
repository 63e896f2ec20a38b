"""Tests of prone-area extraction (DESIGN 6 "Prone areas") and natural breaks on hand-made rasters."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from scipy import ndimage

from lsm_core.errors import ConfigError, GridMismatchError, LsmError
from lsm_core.grid import AreaGrid
from lsm_core.io import read_raster, write_raster
from lsm_core.prone import (
    MASK_NODATA,
    classify,
    natural_breaks,
    open_close,
    prone_areas,
    raster_natural_breaks,
    sample_valid,
)

GRID = AreaGrid.from_bounds("EPSG:32647", (500000, 4000000, 500300, 4000200), 10)  # 20 rows x 30 cols, 100 m2 px


def _write(tmp_path, name, arr, grid=GRID, names=("probability",)):
    arr = np.asarray(arr, dtype="float32")
    return write_raster(tmp_path / name, arr[None] if arr.ndim == 2 else arr, grid, list(names))


def _run(tmp_path, prob, *, tag="a", **kw):
    path = prob if not isinstance(prob, np.ndarray) else _write(tmp_path, f"p_{tag}.tif", prob)
    kw.setdefault("opening_radius_px", 0)
    kw.setdefault("closing_radius_px", 0)
    kw.setdefault("min_area_m2", 0)
    out = prone_areas(path, kw.pop("threshold", 0.5), tmp_path / f"m_{tag}.tif", tmp_path / f"m_{tag}.gpkg", **kw)
    return out, read_raster(tmp_path / f"m_{tag}.tif")[0], gpd.read_file(tmp_path / f"m_{tag}.gpkg")


def _smooth_field(seed=0):
    rng = np.random.default_rng(seed)
    p = ndimage.gaussian_filter(rng.random(GRID.shape), 1.5)
    p = (p - p.min()) / (p.max() - p.min())
    p[2:5, 24:28] = np.nan
    return p


def test_three_by_three_blob_is_kept_or_removed_by_min_area(tmp_path):
    prob = np.zeros(GRID.shape)
    prob[5:8, 5:8] = 0.9  # 9 pixels = 900 m2
    kept, mask, gdf = _run(tmp_path, prob, tag="kept", min_area_m2=900)
    assert kept.n_polygons == 1 and mask.sum() == 9 and gdf.area_m2.tolist() == [900.0]
    gone, mask, gdf = _run(tmp_path, prob, tag="gone", min_area_m2=901)
    assert gone.n_polygons == 0 and mask.sum() == 0 and len(gdf) == 0
    assert gone.n_removed_clusters == 1 and gone.removed_area_m2 == 900.0
    assert list(gdf.columns) == ["prone_id", "n_pixels", "area_m2", "mean_probability", "mean_abs_velocity_mm_yr",
                                 "geometry"]


def test_opening_removes_a_one_pixel_speck(tmp_path):
    prob = np.zeros(GRID.shape)
    prob[4:10, 4:10] = 0.8
    prob[15, 20] = 0.99
    _, mask, _ = _run(tmp_path, prob, opening_radius_px=1)
    assert mask[15, 20] == 0
    assert mask[5:9, 5:9].all() and mask[4, 4] == 0  # a radius-1 disk is a cross: the square loses its corners
    assert mask.sum() == 36 - 4


def test_closing_fills_a_one_pixel_hole_and_keeps_the_shape(tmp_path):
    prob = np.zeros(GRID.shape)
    prob[3:10, 3:10] = 0.8
    prob[6, 6] = 0.1
    _, mask, gdf = _run(tmp_path, prob, closing_radius_px=1)
    expected = np.zeros(GRID.shape)
    expected[3:10, 3:10] = 1
    np.testing.assert_array_equal(mask, expected)
    assert len(gdf) == 1 and len(gdf.geometry.iloc[0].interiors) == 0


def test_closing_keeps_prone_pixels_on_the_raster_edge(tmp_path):
    prob = np.zeros(GRID.shape)
    prob[:, :3] = 0.9  # a convex shape on three raster edges: its closing is itself
    prob[-4:, -5:] = 0.9  # another one in the opposite corner
    _, mask, _ = _run(tmp_path, prob, closing_radius_px=2)
    np.testing.assert_array_equal(mask == 1, prob > 0.5)


def test_polygons_count_areas_means_and_ids(tmp_path):
    prob = np.zeros(GRID.shape)
    prob[2:6, 10:15] = 0.7  # 20 px, first in row-major order
    prob[12:15, 3:6] = 0.9  # 9 px
    prob[15, 6] = 0.6  # touches the 3x3 block only at a corner: its own cluster under 4-connectivity
    prob[12, 3] = np.nan  # nodata inside a cluster is not prone
    vel = np.full(GRID.shape, -10.0)
    vel[2:6, 10:15] = np.nan  # no velocity at all over the first polygon
    vel[13, 4] = 40.0
    vpath = _write(tmp_path, "v.tif", np.stack([vel, np.ones(GRID.shape)]), names=("velocity_mm_yr", "quality"))
    out, mask, gdf = _run(tmp_path, prob, velocity_path=vpath)
    assert out.n_polygons == 3 and out.prone_pixels == 20 + 8 + 1
    assert out.valid_pixels == GRID.n_pixels - 1
    assert out.prone_share == pytest.approx(29 / (GRID.n_pixels - 1))
    assert gdf.prone_id.tolist() == [1, 2, 3]
    assert gdf.n_pixels.tolist() == [20, 8, 1]
    np.testing.assert_allclose(gdf.area_m2, [2000, 800, 100])
    np.testing.assert_allclose(gdf.geometry.area, gdf.area_m2)
    np.testing.assert_allclose(gdf.mean_probability, [0.7, 0.9, 0.6], rtol=1e-6)
    assert np.isnan(gdf.mean_abs_velocity_mm_yr[0])
    np.testing.assert_allclose(gdf.mean_abs_velocity_mm_yr[1:], [(7 * 10 + 40) / 8, 10.0])
    assert gdf.geometry.is_valid.all() and gdf.crs == GRID.crs
    assert gdf.geometry.iloc[0].bounds == (500100.0, 4000140.0, 500150.0, 4000180.0)
    with rasterio.open(tmp_path / "m_a.tif") as src:
        assert src.dtypes[0] == "uint8" and src.nodata == MASK_NODATA
        assert src.read(1)[12, 3] == MASK_NODATA


def test_no_velocity_gives_nan_means(tmp_path):
    prob = np.zeros(GRID.shape)
    prob[5:8, 5:8] = 0.9
    _, _, gdf = _run(tmp_path, prob)
    assert gdf.mean_abs_velocity_mm_yr.isna().all()


@pytest.mark.parametrize("radii", [(1, 1), (1, 2), (2, 0)])
def test_windowed_equals_whole_array_and_reference(tmp_path, radii):
    prob = _smooth_field()
    path = _write(tmp_path, "p.tif", prob)
    kw = dict(opening_radius_px=radii[0], closing_radius_px=radii[1], min_area_m2=500, threshold=0.55)
    small, mask_s, gdf_s = _run(tmp_path, path, tag="small", block=4, **kw)
    whole, mask_w, gdf_w = _run(tmp_path, path, tag="whole", block=512, **kw)
    np.testing.assert_array_equal(mask_s, mask_w)
    assert {k: v for k, v in small.as_dict().items() if k not in ("raster", "gpkg")} == \
        {k: v for k, v in whole.as_dict().items() if k not in ("raster", "gpkg")}
    assert gdf_s.drop(columns="geometry").equals(gdf_w.drop(columns="geometry"))
    assert all(a.equals(b) for a, b in zip(gdf_s.geometry, gdf_w.geometry, strict=True))
    # an independent whole-array reference: scipy morphology on the padded array, scipy labelling
    valid = np.isfinite(prob)
    ref = open_close(np.where(valid, prob, 0) >= 0.55, *radii) & valid
    lab, _ = ndimage.label(ref)
    sizes = np.bincount(lab.ravel())
    ref &= sizes[lab] * 100 >= 500
    np.testing.assert_array_equal(mask_w == 1, ref)
    assert whole.n_polygons == len(np.unique(lab[ref])) > 1


def test_grid_mismatch_names_the_file(tmp_path):
    prob_path = _write(tmp_path, "p.tif", _smooth_field())
    other = AreaGrid.from_bounds("EPSG:32647", (500000, 4000000, 500310, 4000200), 10)
    vel_path = _write(tmp_path, "v.tif", np.zeros(other.shape), grid=other)
    with pytest.raises(GridMismatchError, match="p.tif"):
        prone_areas(prob_path, 0.5, tmp_path / "m.tif", tmp_path / "m.gpkg", expected_grid=other)
    with pytest.raises(GridMismatchError, match="v.tif"):
        prone_areas(prob_path, 0.5, tmp_path / "m.tif", tmp_path / "m.gpkg", velocity_path=vel_path)
    assert not (tmp_path / "m.tif").exists() and not (tmp_path / "m.gpkg").exists()


@pytest.mark.parametrize("kw", [{"threshold": 63}, {"threshold": -0.1}, {"opening_radius_px": -1},
                                {"closing_radius_px": 1.5}, {"min_area_m2": -5}])
def test_bad_parameters_raise_config_error(tmp_path, kw):
    with pytest.raises(ConfigError):
        _run(tmp_path, _smooth_field(), **kw)


# --- natural breaks ---------------------------------------------------------------------------------

def _brute_force_breaks(values, k):
    u = np.sort(values)
    best, best_cuts = np.inf, None
    for cuts in itertools.combinations(range(1, len(u)), k - 1):
        ssd = sum(((g - g.mean()) ** 2).sum() for g in np.split(u, cuts))
        if ssd < best - 1e-12:
            best, best_cuts = ssd, cuts
    return np.array([(u[c - 1] + u[c]) / 2 for c in best_cuts])


def test_natural_breaks_known_answer():
    np.testing.assert_allclose(natural_breaks([1, 2, 3, 10, 11, 12, 20, 21, 22], 3), [6.5, 16.0])
    np.testing.assert_allclose(natural_breaks([0.1, 0.1, 0.1, 0.2, 0.8, 0.9, 0.9, np.nan], 2), [0.5])


@pytest.mark.parametrize("seed,k", [(0, 2), (1, 3), (2, 4), (3, 3), (4, 5)])
def test_natural_breaks_match_brute_force(seed, k):
    values = np.random.default_rng(seed).gamma(2.0, size=11)
    np.testing.assert_allclose(natural_breaks(values, k), _brute_force_breaks(values, k))


def test_natural_breaks_need_enough_distinct_values():
    with pytest.raises(LsmError, match="distinct"):
        natural_breaks([0.2, 0.2, 0.3], 3)


def test_classify_is_lower_inclusive_and_zero_for_nodata():
    out = classify([0.0, 0.2, 0.25, 0.5, 0.99, np.nan], [0.2, 0.5])
    assert out.dtype == np.uint8 and out.tolist() == [1, 2, 2, 3, 3, 0]
    with pytest.raises(ConfigError):
        classify([0.1], [0.5, 0.2])


def test_raster_sample_and_breaks_do_not_depend_on_the_block(tmp_path):
    path = _write(tmp_path, "p.tif", _smooth_field())
    a, b = sample_valid(path, 50, seed=3, block=4), sample_valid(path, 50, seed=3, block=512)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 50 and np.isfinite(a).all()
    assert not np.array_equal(a, sample_valid(path, 50, seed=4))
    np.testing.assert_array_equal(raster_natural_breaks(path, 5, sample=200, block=4),
                                  raster_natural_breaks(path, 5, sample=200, block=512))
    assert len(sample_valid(path, 10_000)) == np.isfinite(_smooth_field()).sum()


def _per_value_breaks(values, k):
    """natural_breaks as it was before issue 13: the same programme, one NumPy pass per last value j."""
    u, w = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    m = len(u)
    cw, cx, cxx = (np.concatenate([[0.0], np.cumsum(x)]) for x in (w, w * u, w * u * u))
    cost, start = np.full((k, m), np.inf), np.zeros((k, m), dtype=np.int64)
    for j in range(m):
        i = np.arange(j + 1)
        sx, sw = cx[j + 1] - cx[i], cw[j + 1] - cw[i]
        ssd = np.maximum(cxx[j + 1] - cxx[i] - sx * sx / sw, 0.0)
        cost[0, j] = ssd[0]
        if j:
            total = cost[:-1, :j] + ssd[None, 1:]
            best = np.argmin(total, axis=1)
            cost[1:, j] = total[np.arange(k - 1), best]
            start[1:, j] = best + 1
    breaks, j = [], m - 1
    for c in range(k - 1, 0, -1):
        i = start[c, j]
        breaks.append((u[i - 1] + u[i]) / 2)
        j = i - 1
    return np.array(breaks[::-1])


@pytest.mark.parametrize("cells", [2**16, 7, 1000])
def test_chunked_natural_breaks_equal_the_per_value_programme(cells, monkeypatch):
    """Issue 13: the cost table done a chunk at a time gives the very same breaks, ties and tiny chunks included."""
    import lsm_core.prone as prone_module

    monkeypatch.setattr(prone_module, "_JENKS_CELLS", cells)
    rng = np.random.default_rng(7)
    samples = [rng.random(3000), np.round(rng.beta(0.3, 3, 4000), 3), rng.integers(0, 12, 500).astype(float),
               np.repeat([0.1, 0.5, 0.9], 4), np.float32(rng.random(2500)).astype(np.float64)]
    for values in samples:
        for k in (2, 3, 5, 7):
            if len(np.unique(values)) >= k:
                np.testing.assert_array_equal(natural_breaks(values, k, sample=10**6), _per_value_breaks(values, k))
