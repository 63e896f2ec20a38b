import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point

from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid
from lsm_core.io import band_names, read_raster
from lsm_core.proximity import (
    PROXIMITY_BANDS,
    UNIT_OF,
    area_units,
    distance_decay,
    proximity_factor,
    proximity_factors,
    slope_units,
    watersheds,
)

RES = 10.0
X0, Y0 = 500000.0, 4000000.0
CRS = "EPSG:32633"


def _grid(h, w):
    return AreaGrid.from_bounds(CRS, (X0, Y0, X0 + w * RES, Y0 + h * RES), RES)


def _xy(row, col, h):
    """Map coordinates of (fractional) pixel centre ``row, col`` on a grid of ``h`` rows."""
    return X0 + (col + 0.5) * RES, Y0 + (h - row - 0.5) * RES


def _two_valleys(h=30, w=41):
    """Valleys at columns 5 and 35 draining south, divided by a ridge on column 20."""
    rr, cc = np.mgrid[0:h, 0:w]
    dem = 200.0 - rr + 3.0 * np.minimum(np.abs(cc - 5), np.abs(cc - 35))
    dem[:, 20] += 5.0
    return dem


def test_distance_decay_is_linear_and_cut_off_exactly():
    d = np.array([0.0, 250.0, 999.999, 1000.0, 1000.001, np.inf, np.nan])
    np.testing.assert_allclose(distance_decay(d, 1000.0), [1.0, 0.75, 1e-6, 0.0, 0.0, 0.0, np.nan], atol=1e-12)
    with pytest.raises(ConfigError):
        distance_decay(d, 0.0)


def test_single_feature_pixel_gives_known_values():
    grid = _grid(20, 20)
    feat = np.zeros(grid.shape, bool)
    feat[8, 6] = True
    f = proximity_factor(feat, grid, dmax_m=50.0)
    assert f[8, 6] == 1.0
    assert f[8, 9] == pytest.approx(1 - 30 / 50)
    assert f[11, 10] == pytest.approx(0.0)  # 3-4-5: exactly Dmax
    assert f[8, 11] == 0.0 and f[12, 10] == 0.0  # 50 m and 56.6 m
    assert f[5, 2] == 0.0
    rr, cc = np.mgrid[0:20, 0:20]
    np.testing.assert_allclose(f, np.clip(1 - np.hypot(rr - 8, cc - 6) * RES / 50.0, 0, None), atol=1e-12)


def test_point_geometry_equals_its_pixel_and_counts_from_outside_the_area():
    grid = _grid(20, 20)
    feat = np.zeros(grid.shape, bool)
    feat[8, 6] = True
    from_point = proximity_factor([Point(*_xy(8, 6, 20))], grid, 50.0)
    np.testing.assert_allclose(from_point, proximity_factor(feat, grid, 50.0))
    outside = proximity_factor(gpd.GeoSeries([Point(*_xy(8, -3, 20))], crs=CRS), grid, 50.0)
    assert outside[8, 0] == pytest.approx(1 - 30 / 50) and outside[8, 5] == 0.0


def test_watersheds_and_slope_units_of_two_valleys():
    dem = _two_valleys()
    ws = watersheds(dem, RES, stream_area_m2=20 * RES * RES)
    left, right = np.unique(ws[:, :20]), np.unique(ws[1:, 21:])
    assert len(left) == 1 and len(right) == 1 and left[0] != right[0]
    su = slope_units(dem, RES, stream_area_m2=20 * RES * RES)
    row = su[15]
    # flowing south, the right bank is the west side; the stream cell goes with the left bank
    assert len(set(row[:5])) == 1 and len(set(row[5:20])) == 1 and row[0] != row[6]
    assert row[0] % 2 == 0 and row[6] % 2 == 1
    assert len(set(row[21:35])) == 1 and len(set(row[35:])) == 1 and row[21] != row[36]
    assert (ws > 0).all() and (su > 0).all()


def test_valleys_across_the_ridge_get_zero():
    dem = _two_valleys()
    grid = _grid(*dem.shape)
    ws = watersheds(dem, RES, stream_area_m2=20 * RES * RES)
    river = np.zeros(dem.shape, bool)
    river[:, 5] = True  # only the western valley is mapped
    f = proximity_factor(river, grid, dmax_m=300.0, units=ws)
    np.testing.assert_allclose(f[15, :20], 1 - np.abs(np.arange(20) - 5) * RES / 300.0)
    assert (f[:, 21:] == 0).all()  # within 300 m of the river but behind the ridge
    plain = proximity_factor(river, grid, dmax_m=300.0)
    assert plain[15, 21] == pytest.approx(1 - 160 / 300)


def test_nearest_feature_of_the_same_unit_wins_over_the_nearest_overall():
    grid = _grid(10, 20)
    units = np.ones(grid.shape, np.int32)
    units[:, 10:] = 2
    units[:, 15:] = 3  # a unit without features
    units[0, 0] = 0  # outside every unit
    feat = np.zeros(grid.shape, bool)
    feat[5, 1] = True  # unit 1, far from column 9
    feat[5, 11] = True  # unit 2, two pixels from column 9
    f = proximity_factor(feat, grid, dmax_m=100.0, units=units)
    assert f[5, 9] == pytest.approx(1 - 80 / 100)
    assert f[5, 12] == pytest.approx(0.9)
    assert (f[:, 15:] == 0).all()
    assert np.isnan(f[0, 0])


def test_road_influences_only_its_own_bank():
    h, w = 25, 31
    rr, cc = np.mgrid[0:h, 0:w]
    dem = 100.0 - rr + 2.0 * np.abs(cc - 15)  # one V valley on column 15 draining south
    grid = _grid(h, w)
    su = slope_units(dem, RES, stream_area_m2=60 * RES * RES)  # only the valley floor is a stream
    road = np.zeros(dem.shape, bool)
    road[:, 20] = True  # on the east slope
    f = proximity_factor(road, grid, dmax_m=100.0, units=su)
    assert f[12, 18] == pytest.approx(0.8) and f[12, 24] == pytest.approx(0.6)
    assert (f[12:, :15] == 0).all()  # the west bank is another slope unit


def test_windowed_proximity_factors_equal_whole_array(tmp_path):
    dem = _two_valleys(44, 57)
    dem[30:33, 40:44] = np.nan
    grid = _grid(*dem.shape)
    h = dem.shape[0]
    layers = {
        "faults": gpd.GeoSeries([LineString([_xy(-5, 3.3, h), _xy(50, 41.7, h)])], crs=CRS),
        "rivers": gpd.GeoDataFrame(geometry=[LineString([_xy(0.2, 5.1, h), _xy(43.6, 5.3, h)]),
                                             LineString([_xy(0.4, 35.2, h), _xy(43.5, 34.9, h)])], crs=CRS),
        "roads": [LineString([_xy(3.3, 8.2, h), _xy(20.7, 30.1, h), _xy(40.2, 52.6, h)])],
        "buildings": [Point(*_xy(10.2, 12.6, h)), Point(*_xy(25.4, 44.3, h)), Point(*_xy(33.1, 28.8, h))],
        "mining": gpd.GeoSeries([Point(*_xy(20.3, -4.2, h))], crs=CRS),  # outside the area, within Dmax
    }
    dmax = {"faults": 200.0, "valleys": 120.0, "roads": 90.0, "buildings": 60.0, "mining": 150.0}
    kw = dict(watershed_area_m2=40 * RES * RES, slope_unit_area_m2=15 * RES * RES, burn_rivers_m=5.0)
    out = proximity_factors(layers, grid, dem, tmp_path / "prox.tif", dmax, block=13, **kw)
    assert band_names(out) == list(PROXIMITY_BANDS)
    got = read_raster(out)
    units = area_units(dem, grid, layers["rivers"], **kw)
    source = {"faults": "faults", "valleys": "rivers", "roads": "roads", "buildings": "buildings", "mining": "mining"}
    for i, band in enumerate(PROXIMITY_BANDS):
        u = units[UNIT_OF[band]] if UNIT_OF[band] else None
        whole = proximity_factor(layers[source[band]], grid, dmax[band], units=u)
        whole[np.isnan(dem)] = np.nan
        np.testing.assert_allclose(got[i], whole.astype(np.float32), atol=1e-6, err_msg=band)
        assert np.nanmax(got[i]) > 0.5, band
    assert np.isnan(got[:, 31, 41]).all()
    assert got[4, 20, 0] > 0  # the mining site outside the area reaches in


def test_missing_distances_or_layers_are_config_errors(tmp_path):
    grid = _grid(5, 5)
    dem = np.zeros(grid.shape)
    layers = {k: [] for k in ("faults", "rivers", "roads", "buildings", "mining")}
    dmax = dict.fromkeys(PROXIMITY_BANDS, 100.0)
    with pytest.raises(ConfigError, match="mining"):
        proximity_factors(layers, grid, dem, tmp_path / "p.tif", {k: v for k, v in dmax.items() if k != "mining"})
    with pytest.raises(ConfigError, match="positive"):
        proximity_factors(layers, grid, dem, tmp_path / "p.tif", {**dmax, "roads": 0.0})
    with pytest.raises(ConfigError, match="rivers"):
        proximity_factors({k: v for k, v in layers.items() if k != "rivers"}, grid, dem, tmp_path / "p.tif", dmax)
    out = proximity_factors(layers, grid, dem, tmp_path / "p.tif", dmax)  # empty layers: all zero
    assert (read_raster(out) == 0).all()


def test_drainage_routed_once_gives_the_same_units_and_factors(tmp_path):
    """The drainage raster holds exactly the units proximity_factors would route itself (issue 13)."""
    from lsm_core.drainage import DRAINAGE_BANDS, drainage, read_units
    from lsm_core.hydrology import flow_accumulation

    dem = _two_valleys(44, 57)
    dem[30:33, 40:44] = np.nan
    grid = _grid(*dem.shape)
    h = dem.shape[0]
    rivers = gpd.GeoDataFrame(geometry=[LineString([_xy(0.2, 5.1, h), _xy(43.6, 5.3, h)])], crs=CRS)
    kw = dict(watershed_area_m2=40 * RES * RES, slope_unit_area_m2=15 * RES * RES, burn_rivers_m=5.0)
    path = drainage(dem, grid, tmp_path / "drainage.tif", rivers, block=13, **kw)
    assert band_names(path) == list(DRAINAGE_BANDS)
    units, expected = read_units(path), area_units(dem, grid, rivers, **kw)
    for name in ("watershed", "slope_unit"):
        np.testing.assert_array_equal(units[name], expected[name], err_msg=name)
    from rasterio.windows import Window

    from lsm_core.proximity import _feature_mask

    burnt = dem - 5.0 * _feature_mask(rivers, grid, Window(0, 0, grid.width, grid.height))
    np.testing.assert_array_equal(read_raster(path)[0], flow_accumulation(burnt, RES).astype(np.float32))
    layers = {"faults": [], "rivers": rivers, "roads": [LineString([_xy(3.3, 8.2, h), _xy(40.2, 52.6, h)])],
              "buildings": [], "mining": []}
    dmax = {"faults": 200.0, "valleys": 120.0, "roads": 90.0, "buildings": 60.0, "mining": 150.0}
    a = read_raster(proximity_factors(layers, grid, dem, tmp_path / "a.tif", dmax, **kw))
    b = read_raster(proximity_factors(layers, grid, dem, tmp_path / "b.tif", dmax, units=units))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("res", [(10.0, 10.0), (7.3, 12.9)])
def test_block_distances_without_units_equal_a_kd_tree_over_every_feature_pixel(res):
    """The separable search (issue 13) gives the KD-tree's distances, features beyond the grid included: bit for
    bit on a whole-metre grid, to round-off on any other."""
    import shapely
    from rasterio.windows import Window
    from scipy.spatial import cKDTree

    from lsm_core import proximity

    h, w = 47, 61
    grid = AreaGrid(CRS, (res[0], 0.0, X0, 0.0, -res[1], Y0 + h * res[1]), h, w)
    rng = np.random.default_rng(3)

    def xy(r, c):
        return X0 + c * res[0], Y0 + (h - r) * res[1]

    geoms = np.array([LineString([xy(-9.3, -4.1), xy(30.2, 17.7), xy(52.4, 70.6)]),
                      LineString([xy(r, c) for r, c in rng.uniform(-6, 66, (4, 2))])]
                     + [Point(*xy(*p)) for p in rng.uniform(-8, 70, (5, 2))], dtype=object)
    tree = shapely.STRtree(geoms)
    dmax = 260.0
    halo = proximity._halo(dmax, res)
    for blk in grid.windows(16):
        got = proximity._block_distance(geoms, tree, grid, blk.write, res, dmax, None)
        read = Window(blk.write.col_off - halo, blk.write.row_off - halo, blk.write.width + 2 * halo,
                      blk.write.height + 2 * halo)
        fr, fc = np.nonzero(proximity._rasterize_window(geoms, tree, grid, read))
        qr, qc = np.mgrid[halo:halo + blk.write.height, halo:halo + blk.write.width]
        want, _ = cKDTree(np.column_stack([fr * res[1], fc * res[0]])).query(
            np.column_stack([qr.ravel() * res[1], qc.ravel() * res[0]]), distance_upper_bound=dmax)
        if res[0] == res[1] == 10.0:  # whole-metre coordinates: no rounding, the very same floats
            np.testing.assert_array_equal(got.ravel(), want)
        else:  # two feature pixels equally far may round apart; the search may pick the other one
            np.testing.assert_allclose(got.ravel(), want, rtol=1e-13)
        assert np.isfinite(got).any()


@pytest.mark.parametrize("density", [0.002, 0.03, 0.4])
def test_nearest_distance_equals_a_kd_tree_on_random_masks(density):
    """The lower envelope of the separable search, on sparse and dense masks and any asked sub-window."""
    from scipy.spatial import cKDTree

    from lsm_core.proximity import _nearest_distance

    rng = np.random.default_rng(int(density * 1000))
    for _ in range(40):
        h, w = rng.integers(1, 45, 2)
        feat = rng.random((h, w)) < density
        (r0, r1), (c0, c1) = np.sort(rng.integers(0, h + 1, 2)), np.sort(rng.integers(0, w + 1, 2))
        origin = (int(rng.integers(-5, 5)), int(rng.integers(-5, 5)))
        ask = (slice(r0 + origin[0], r1 + origin[0]), slice(c0 + origin[1], c1 + origin[1]))
        got = _nearest_distance(feat, origin, ask, (RES, RES))
        fr, fc = np.nonzero(feat)
        qr, qc = np.mgrid[ask]
        want = np.full(qr.shape, np.inf)
        if fr.size:
            want = cKDTree(np.column_stack([(fr + origin[0]) * RES, (fc + origin[1]) * RES])).query(
                np.column_stack([qr.ravel() * RES, qc.ravel() * RES]))[0].reshape(qr.shape)
        np.testing.assert_array_equal(got, want)


def test_windowed_same_unit_rule_equals_whole_array_on_many_units(tmp_path):
    """Per-unit searches over small blocks (7 pixels, so most units span several blocks and their halos) give
    the whole-array per-unit EDT: Voronoi units with scattered labels, one unit without features, one large
    unit, features on block edges and in units beyond the halo."""
    h, w = 53, 64
    grid = _grid(h, w)
    rng = np.random.default_rng(7)
    rr, cc = np.mgrid[0:h, 0:w]
    seeds = rng.uniform(0, (h, w), (30, 2))
    nearest = np.argmin((rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2, axis=-1)
    labels = rng.choice(10**6, 30, replace=False) + 1
    ws = labels[nearest].astype(np.int32)
    ws[:, 50:] = 7  # one large unit over many blocks
    su = ws * 2 - (cc < rr).astype(np.int32)  # split along a diagonal
    dem = np.zeros((h, w))
    dem[40:44, 10:20] = np.nan
    ws[np.isnan(dem)] = 0
    su[np.isnan(dem)] = 0
    cells = np.column_stack([rng.integers(0, h, 60), rng.integers(0, w, 60)])
    edges = np.array([[6, 13], [7, 14], [13, 20], [14, 27], [27, 27], [28, 34], [0, 63], [52, 55]])  # block rims
    cells = np.vstack([cells, edges])
    cells = cells[ws[cells[:, 0], cells[:, 1]] != labels[3]]  # a unit without features
    points = [Point(*_xy(r, c, h)) for r, c in cells]
    layers = dict.fromkeys(("faults", "rivers", "roads", "buildings", "mining"), points)
    dmax = {"faults": 300.0, "valleys": 120.0, "roads": 90.0, "buildings": 40.0, "mining": 150.0}
    units = {"watershed": ws, "slope_unit": su}
    got = read_raster(proximity_factors(layers, grid, dem, tmp_path / "p.tif", dmax, block=7, units=units))
    for i, band in enumerate(PROXIMITY_BANDS):
        whole = proximity_factor(points, grid, dmax[band], units=units[UNIT_OF[band]] if UNIT_OF[band] else None)
        whole[np.isnan(dem)] = np.nan
        np.testing.assert_allclose(got[i], whole.astype(np.float32), atol=1e-6, err_msg=band)
        assert 0 < np.mean(got[i] > 0) < 1, band
    assert (ws == labels[3]).sum() > 20 and (got[1][ws == labels[3]] == 0).all()  # valleys: no feature in its unit
