import shutil
import subprocess

import numpy as np
import pytest
import rasterio

from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid
from lsm_core.hydrology import route_d8
from lsm_core.io import band_names, read_raster
from lsm_core.terrain import (
    FLAT_ASPECT,
    TERRAIN_BANDS,
    aspect_deg,
    aspect_sidecar,
    eastness,
    flow_accumulation,
    northness,
    plan_curvature,
    profile_curvature,
    relief_m,
    slope_deg,
    terrain_factors,
    twi,
)

RES = 10.0
# gdaldem sums the 3 x 3 window in float32; on a ~500 m DEM that costs ~1e-4 m, hence these bounds
SLOPE_TOL_DEG = 1e-3
ASPECT_TOL_DEG = 0.02  # where slope >= 1 deg; gentler slopes make the direction ill-conditioned


def _dem(h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    dem = 500 + 30 * np.sin(xx / 7.0) * np.cos(yy / 9.0) + 0.8 * xx + rng.normal(0, 0.5, (h, w))
    dem[20:23, 20:23] = 400.0  # a flat pit: aspect of its centre is "flat"
    return dem.astype(np.float32)


def _grid(shape, crs="EPSG:32633"):
    return AreaGrid.from_bounds(crs, (500000, 4000000, 500000 + shape[1] * RES, 4000000 + shape[0] * RES), RES)


def _write_dem(path, dem, nodata=-9999.0):
    grid = _grid(dem.shape)
    with rasterio.open(path, "w", driver="GTiff", width=dem.shape[1], height=dem.shape[0], count=1, dtype="float32",
                       crs=grid.crs, transform=grid.affine, nodata=nodata) as dst:
        dst.write(np.where(np.isnan(dem), nodata, dem).astype("float32"), 1)
    return grid


def _gdaldem(mode, src, dst, *extra):
    subprocess.run(["gdaldem", mode, str(src), str(dst), "-q", *extra], check=True)
    with rasterio.open(dst) as ds:
        return ds.read(1, masked=True)


def _angle_diff(a, b):
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.skipif(shutil.which("gdaldem") is None, reason="gdaldem (gdal-bin) not installed")
@pytest.mark.parametrize("edges", [False, True])
def test_slope_and_aspect_match_gdaldem_horn(tmp_path, edges):
    dem = _dem()
    _write_dem(tmp_path / "dem.tif", dem)
    extra = ["-compute_edges"] if edges else []
    ref_slope = _gdaldem("slope", tmp_path / "dem.tif", tmp_path / "slope.tif", *extra)
    ref_aspect = _gdaldem("aspect", tmp_path / "dem.tif", tmp_path / "aspect.tif", *extra)
    slope, aspect = slope_deg(dem, RES), aspect_deg(dem, RES)
    compare = np.ones(dem.shape, bool)
    if edges:
        compare[[0, 0, -1, -1], [0, -1, 0, -1]] = False  # gdaldem's corner windows are special-cased
    else:
        compare[[0, -1], :] = compare[:, [0, -1]] = False  # gdaldem leaves edges nodata
    assert not ref_slope.mask[compare].any()
    np.testing.assert_allclose(slope[compare], ref_slope.data[compare], atol=SLOPE_TOL_DEG, rtol=0)
    flat = ref_aspect.mask & compare  # gdaldem marks zero-gradient cells nodata
    assert flat.sum() == 1 and aspect[flat] == FLAT_ASPECT
    steep = compare & ~flat & (slope >= 1.0)
    assert _angle_diff(aspect[steep], ref_aspect.data[steep]).max() < ASPECT_TOL_DEG


@pytest.mark.parametrize(("dzdx", "dzdy", "expected"), [(-0.1, 0, 90.0), (0, -0.1, 0.0), (0.1, 0, 270.0),
                                                        (0, 0.1, 180.0), (-0.1, -0.1, 45.0)])
def test_plane_slope_and_aspect_exact_up_to_the_edges(dzdx, dzdy, expected):
    yy, xx = np.mgrid[0:6, 0:7]
    dem = 100 + dzdx * xx * RES - dzdy * yy * RES  # rows run south, so north-up y = -row
    np.testing.assert_allclose(slope_deg(dem, RES), np.degrees(np.arctan(np.hypot(dzdx, dzdy))), atol=1e-9)
    assert _angle_diff(aspect_deg(dem, RES), expected).max() < 1e-9
    assert aspect_deg(np.full((4, 4), 7.0), RES).tolist() == np.full((4, 4), FLAT_ASPECT).tolist()


def test_curvature_conventions_on_quadratic_surfaces():
    radius = 500.0
    yy, xx = np.mgrid[0:30, 0:40]
    x, y = xx * RES, -yy * RES
    dome = -((x - 100) ** 2) / (2 * radius)  # convex profile, slope along x
    np.testing.assert_allclose(profile_curvature(dome, RES)[15, 15:35], 1 / radius, rtol=1e-9)
    np.testing.assert_allclose(profile_curvature(-dome, RES)[15, 15:35], -1 / radius, rtol=1e-9)
    ridge = -((x - 200) ** 2) / (2 * radius) + 0.3 * y  # a ridge crest running north-south
    assert plan_curvature(ridge, RES)[15, 20] == pytest.approx(1 / radius)
    assert plan_curvature(-ridge, RES)[15, 20] == pytest.approx(-1 / radius)
    flat = np.full((5, 5), 3.0)
    assert (plan_curvature(flat, RES) == 0).all() and (profile_curvature(flat, RES) == 0).all()


def test_relief_is_max_minus_min_within_the_radius():
    dem = np.zeros((21, 21))
    dem[10, 10] = 50.0
    rel = relief_m(dem, RES, radius_m=30.0)  # 3 px disk
    assert rel[10, 13] == 50 and rel[12, 12] == 50  # 3 px and 2.83 px away
    assert rel[10, 14] == 0 and rel[13, 13] == 0  # 4 px and 4.24 px away
    dem[10, 11] = np.nan
    rel = relief_m(dem, RES, radius_m=30.0)
    assert np.isnan(rel[10, 11]) and rel[10, 12] == 50



@pytest.mark.parametrize("radius_m", [10.0, 30.0, 100.0, 123.0])
def test_relief_equals_the_disk_footprint_filter(radius_m):
    # relief_m runs the disk max / min as separable rectangle filters: the same values as the plain
    # footprint filter of scipy, NaN cells and array edges included
    from scipy import ndimage

    rng = np.random.default_rng(3)
    dem = rng.normal(size=(61, 47)).cumsum(0).cumsum(1)
    dem[rng.random(dem.shape) < 0.05] = np.nan
    dem[:2] = np.nan
    rad = int(round(radius_m / RES))
    yy, xx = np.mgrid[-rad:rad + 1, -rad:rad + 1]
    disk = xx * xx + yy * yy <= rad * rad
    nan = np.isnan(dem)
    hi = ndimage.maximum_filter(np.where(nan, -np.inf, dem), footprint=disk, mode="nearest")
    lo = ndimage.minimum_filter(np.where(nan, np.inf, dem), footprint=disk, mode="nearest")
    np.testing.assert_array_equal(relief_m(dem, RES, radius_m=radius_m), np.where(nan, np.nan, hi - lo))

def test_nodata_propagates_without_eroding_neighbours():
    dem = _dem().astype(np.float64)
    dem[10:13, 10:13] = np.nan
    for f in (slope_deg, aspect_deg, northness, eastness, plan_curvature, profile_curvature, relief_m):
        out = f(dem, RES)
        assert np.isnan(out[10:13, 10:13]).all(), f.__name__
        assert np.isfinite(np.delete(out.ravel(), np.flatnonzero(np.isnan(dem)))).all(), f.__name__


def test_flow_accumulation_on_a_plane_counts_upslope_cells():
    yy, _ = np.mgrid[0:8, 0:5]
    acc = flow_accumulation(100.0 - yy, RES)  # drains south
    np.testing.assert_array_equal(acc, yy + 1.0)


def test_pits_and_flats_drain_and_every_cell_is_counted_once():
    dem = np.full((9, 9), 10.0)
    dem[4, 4] = 0.0  # a pit in a flat plateau
    dem[0, 3] = 5.0  # the only low outlet
    dem[6, 1] = np.nan  # a void: its rim is an outlet too
    routing = route_d8(dem, RES)
    acc = flow_accumulation(dem, RES)
    outlets = (routing.direction == -1) & ~np.isnan(dem)
    assert acc[outlets].sum() == np.count_nonzero(~np.isnan(dem))
    assert np.isnan(acc[6, 1]) and acc[4, 4] >= 1
    interior = np.zeros_like(outlets)
    interior[1:-1, 1:-1] = True
    interior[5:8, 0:3] = False  # cells touching the void may leave through it
    assert not (outlets & interior).any()


def test_twi_values_and_flat_guard():
    assert twi(np.array([10.0]), np.array([45.0]), RES)[0] == pytest.approx(np.log(100.0))
    assert twi(np.array([1.0]), np.array([0.0]), RES, min_tan_slope=1e-3)[0] == pytest.approx(np.log(10.0 / 1e-3))
    assert np.isnan(twi(np.array([np.nan]), np.array([5.0]), RES)[0])


def test_windowed_terrain_factors_equal_whole_array(tmp_path):
    dem = _dem(70, 90, seed=3)
    dem[30:34, 40:45] = np.nan
    grid = _write_dem(tmp_path / "dem.tif", dem)
    out = terrain_factors(tmp_path / "dem.tif", grid, tmp_path / "terrain.tif", block=37, relief_radius_m=30.0,
                          aspect_path=aspect_sidecar(tmp_path / "terrain.tif"))
    assert band_names(out) == list(TERRAIN_BANDS) and "aspect_deg" not in TERRAIN_BANDS
    got = read_raster(out)
    slope = slope_deg(dem, RES)
    whole = {"slope_deg": slope, "northness": northness(dem, RES), "eastness": eastness(dem, RES),
             "plan_curvature": plan_curvature(dem, RES),
             "profile_curvature": profile_curvature(dem, RES), "relief_m": relief_m(dem, RES, 30.0),
             "twi": twi(flow_accumulation(dem, RES), slope, RES)}
    for i, name in enumerate(TERRAIN_BANDS):
        np.testing.assert_array_equal(got[i], whole[name].astype(np.float32), err_msg=name)
    side = aspect_sidecar(tmp_path / "terrain.tif")
    assert side.name == "terrain__aspect.tif" and band_names(side) == ["aspect_deg"]
    np.testing.assert_array_equal(read_raster(side)[0], aspect_deg(dem, RES).astype(np.float32))


def test_northness_and_eastness_are_cos_and_sin_of_aspect_and_zero_when_flat():
    dem = _dem().astype(np.float64)
    a, n, e = aspect_deg(dem, RES), northness(dem, RES), eastness(dem, RES)
    sloped = a != FLAT_ASPECT
    assert (~sloped).sum() == 1 and n[~sloped] == 0 and e[~sloped] == 0
    np.testing.assert_allclose(n[sloped], np.cos(np.radians(a[sloped])), atol=1e-12)
    np.testing.assert_allclose(e[sloped], np.sin(np.radians(a[sloped])), atol=1e-12)
    assert np.abs(n).max() <= 1 and np.abs(e).max() <= 1


def test_aspects_either_side_of_north_are_neighbours_not_opposites():
    """1 and 359 degrees face almost the same way: their (northness, eastness) are close, unlike their degrees."""
    x = np.arange(5.0)[None, :] * RES
    y = np.arange(5.0)[:, None] * RES
    tilt = np.radians(1.0)
    # planes falling towards 1 and 359 degrees (north is row 0, so downslope north = z rising with the row)
    planes = [0.3 * (y * np.cos(t) - x * np.sin(t)) for t in (tilt, -tilt)]
    (a1, n1, e1), (a2, n2, e2) = [(aspect_deg(p, RES)[2, 2], northness(p, RES)[2, 2], eastness(p, RES)[2, 2])
                                  for p in planes]
    assert a1 == pytest.approx(1.0) and a2 == pytest.approx(359.0)
    assert np.hypot(n1 - n2, e1 - e2) == pytest.approx(2 * np.sin(tilt), abs=1e-9)


def test_terrain_needs_a_projected_crs(tmp_path):
    dem = _dem(8, 8)
    _write_dem(tmp_path / "dem.tif", dem)
    grid = AreaGrid("EPSG:4326", (0.0001, 0, 10, 0, -0.0001, 45), 8, 8)
    with pytest.raises(ConfigError, match="projected"):
        terrain_factors(tmp_path / "dem.tif", grid, tmp_path / "t.tif")


def test_dem_in_another_crs_is_reprojected_onto_the_grid(tmp_path):
    """A DEM delivered in geographic coordinates still yields terrain factors on the UTM area grid."""
    from rasterio.warp import transform_bounds

    from lsm_core.grid import AreaGrid
    from lsm_core.io import RasterFile, write_raster

    grid = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 401200, 2851000), 20)
    x, y = grid.pixel_centers()
    plane = (0.2 * (x - 400000)).astype("float32")  # 0.2 m/m eastward rise: slope 11.31 deg, aspect 270
    w, s, e, n = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
    pad = 0.002
    geo = AreaGrid("EPSG:4326", ((e - w + 2 * pad) / 200, 0.0, w - pad, 0.0, -(n - s + 2 * pad) / 200, n + pad), 200, 200)
    lon, lat = geo.pixel_centers()
    from pyproj import Transformer

    ux, _ = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
    write_raster(tmp_path / "dem_wgs84.tif", (0.2 * (ux - 400000))[None].astype("float32"), geo, ["dem"])
    out = terrain_factors(tmp_path / "dem_wgs84.tif", grid, tmp_path / "terrain.tif")
    slope = RasterFile(out).band("slope_deg")[2:-2, 2:-2]
    north, east = (RasterFile(out).band(b)[2:-2, 2:-2] for b in ("northness", "eastness"))
    assert plane.shape == grid.shape
    np.testing.assert_allclose(np.median(slope), np.degrees(np.arctan(0.2)), atol=0.05)
    # aspect 270 (facing west): eastness -1, northness 0
    np.testing.assert_allclose([np.median(north), np.median(east)], [0, -1], atol=0.01)


def test_terrain_takes_the_routed_accumulation_window_by_window(tmp_path):
    """With the drainage's accumulation, TWI uses it and the DEM is not routed again."""
    from lsm_core.drainage import drainage
    from lsm_core.io import RasterFile

    dem = _dem(70, 90, seed=3)
    grid = _write_dem(tmp_path / "dem.tif", dem)
    routed = RasterFile(drainage(tmp_path / "dem.tif", grid, tmp_path / "drainage.tif", burn_rivers_m=0.0))
    a = read_raster(terrain_factors(tmp_path / "dem.tif", grid, tmp_path / "a.tif", block=37,
                                    flow_accumulation_cells=routed))
    b = read_raster(terrain_factors(tmp_path / "dem.tif", grid, tmp_path / "b.tif", block=37))
    np.testing.assert_array_equal(a, b)
