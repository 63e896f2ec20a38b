"""The synthetic world: file contracts, determinism, and the physics later modules are scored against."""

import csv
import datetime as dt
import re
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio import features

from lsm_core.area import load_area, period_bounds
from lsm_core.delivery import load_delivery
from lsm_core.io import band_names, grid_of, read_raster
from lsm_core.synthetic import AREAS, area_grid, generate_area, generate_demo, ndvi_dates

NAMES = ("karst", "loess")
TINY = 0.03  # 210 x 210 cells: enough to exercise every writer twice


@pytest.fixture(scope="module")
def cfgs(demo_data):
    return {a: load_area(demo_data / "study_areas" / a) for a in NAMES}


@pytest.fixture(scope="module")
def deliveries(demo_data):
    return {a: [load_delivery(p) for p in sorted((demo_data / "incoming" / "insar" / a).iterdir())] for a in NAMES}


@pytest.fixture(scope="module")
def inventories(cfgs):
    return {a: gpd.read_file(cfgs[a].layers["inventory"]) for a in NAMES}


def truth(cfg, name: str) -> np.ndarray:
    return read_raster(cfg.folder / "truth" / name)[0]


def slope_deg(dem: np.ndarray, res: float) -> np.ndarray:
    gy, gx = np.gradient(dem.astype(np.float64), res)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def burn(polygons, grid) -> np.ndarray:
    if len(polygons) == 0:
        return np.zeros(grid.shape, bool)
    return features.rasterize([(g, 1) for g in polygons], out_shape=grid.shape, transform=grid.affine).astype(bool)


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    return a.reshape(a.shape[0] // k, k, a.shape[1] // k, k).mean(axis=(1, 3))


def fit_velocity(ts: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope (mm/yr) per pixel over the valid epochs, and the number of valid epochs."""
    ok = ~np.isnan(ts)
    n = ok.sum(0)
    tt, yy = np.where(ok, t[:, None, None], 0.0), np.where(ok, ts, 0.0)
    st, sy, stt, sty = tt.sum(0), yy.sum(0), (tt * tt).sum(0), (tt * yy).sum(0)
    den = n * stt - st ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (n * sty - st * sy) / den, np.nan), n


# --------------------------------------------------------------------------- determinism and size


def test_same_seed_gives_identical_files_and_another_seed_another_dem(tmp_path):
    a, b, c, d = tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "d"
    generate_demo(a, seed=3, scale=TINY)
    generate_demo(b, seed=3, scale=TINY, workers=2)  # side by side: the same bytes
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as executor:  # the caller's (lsm demo: its workers)
        generate_demo(d, seed=3, scale=TINY, executor=executor)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(f.suffix == ".gpkg" for f in files) and any(f.name == "timeseries.tif" for f in files)
    for other in (b, d):
        assert files == sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
        differing = [str(f) for f in files if (a / f).read_bytes() != (other / f).read_bytes()]
        assert differing == []
    generate_area("loess", c, seed=4, scale=TINY)
    dem_a = read_raster(a / "study_areas" / "loess" / "dem.tif")
    dem_c = read_raster(c / "study_areas" / "loess" / "dem.tif")
    assert dem_a.shape == dem_c.shape and not np.allclose(dem_a, dem_c)


def test_scale_multiplies_the_area_at_the_same_resolution():
    for spec in AREAS.values():
        g1, g4 = area_grid(spec, 1.0), area_grid(spec, 4.0)
        assert g1.shape == (1200, 1200) and g1.resolution_m == g4.resolution_m == 10.0
        assert g4.n_pixels / g1.n_pixels == pytest.approx(4.0, rel=0.02)
        # the 20 m InSAR and 30 m NDVI grids nest exactly in the area grid
        assert all((b / 60).is_integer() for b in area_grid(spec, 0.37).bounds)


def test_unknown_area_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic area"):
        generate_area("atlantis", tmp_path)


# --------------------------------------------------------------------------- file contracts


def test_area_yaml_loads_and_names_every_layer(cfgs):
    for name, cfg in cfgs.items():
        assert cfg.crs == AREAS[name].crs and cfg.resolution_m == 10.0
        assert all(p.exists() for p in cfg.layers.values()), cfg.layers
        grid_of(cfg.layers["dem"]).check_same(cfg.grid)
        assert band_names(cfg.layers["dem"]) == ["elevation_m"]
        rain = grid_of(cfg.layers["rainfall"])
        assert rain.resolution_m == 1000.0 and rain.crs == cfg.grid.crs
        x0, y0, x1, y1 = cfg.grid.bounds
        rx0, ry0, rx1, ry1 = rain.bounds
        assert rx0 <= x0 and ry0 <= y0 and rx1 >= x1 and ry1 >= y1  # the pipeline has to window and resample it
        assert np.isfinite(read_raster(cfg.layers["rainfall"])).all()
        for period in AREAS[name].periods:
            scenes = cfg.ndvi_in(*period_bounds(period))
            assert len(scenes) >= 3 and [s.date for s in scenes] == ndvi_dates(period)
            for s in scenes:
                g = grid_of(s.path)
                assert g.resolution_m == 30.0 and g.bounds == pytest.approx(cfg.grid.bounds)
                nd = read_raster(s.path)
                assert np.nanmin(nd) >= -0.2 and np.nanmax(nd) <= 0.95 and np.isfinite(nd).mean() > 0.9


def test_vector_layers(cfgs):
    for cfg in cfgs.values():
        litho = gpd.read_file(cfg.layers["lithology"])
        assert litho.crs == cfg.grid.crs and set(litho.geom_type) == {"Polygon"}
        assert litho["unit_code"].dtype.kind == "i" and litho["unit_name"].map(type).eq(str).all()
        assert litho["unit_code"].nunique() >= 3
        # the units tile the area without gaps or overlaps
        x0, y0, x1, y1 = cfg.grid.bounds
        assert litho.area.sum() == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-9)
        assert litho.union_all().area == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-9)
        for key, kind in (("faults", "LineString"), ("rivers", "LineString"), ("roads", "LineString"),
                          ("buildings", "Point"), ("mining", "Point")):
            gdf = gpd.read_file(cfg.layers[key])
            assert len(gdf) > 0 and set(gdf.geom_type) == {kind} and gdf.crs == cfg.grid.crs, key
            bx0, by0, bx1, by1 = gdf.total_bounds
            assert bx0 >= x0 - 1e-6 and by0 >= y0 - 1e-6 and bx1 <= x1 + 1e-6 and by1 <= y1 + 1e-6, key


def test_deliveries_load_and_match_their_contract(cfgs, deliveries):
    for name, dels in deliveries.items():
        spec, grid = AREAS[name], cfgs[name].grid
        assert [d.period for d in dels] == list(spec.periods)
        for d in dels:
            assert d.area == name and d.kind == spec.insar_kind and d.coherence_path is not None
            assert d.heading_deg == spec.heading_deg and d.incidence_deg == spec.incidence_deg
            igrid = grid_of(d.data_path)
            assert igrid.crs == grid.crs and igrid.resolution_m == 20.0 and igrid.bounds == pytest.approx(grid.bounds)
            grid_of(d.coherence_path).check_same(igrid)
            coh = read_raster(d.coherence_path)[0]
            data = read_raster(d.data_path)
            assert 0 <= coh.min() and coh.max() <= 1
            assert np.isnan(data[-1][coh < 0.3]).all() and np.isfinite(data[-1][coh >= 0.6]).all()
            r, c = igrid.rowcol(*d.reference_point)
            assert coh[r, c] > 0.5 and np.abs(data[:, r, c]).max() < 1e-6  # values are relative to it
            # the reference point lies on stable ground
            vt = read_raster(cfgs[name].folder / "truth" / f"velocity_{d.period}.tif")[0]
            tr, tc = grid.rowcol(*d.reference_point)
            assert abs(vt[tr, tc]) < 0.1
            if d.kind == "timeseries":
                assert data.shape[0] == len(d.dates) == len(band_names(d.data_path))
                assert band_names(d.data_path) == [x.isoformat() for x in d.dates]
                assert d.period_start <= d.dates[0] and d.dates[-1] <= d.period_end
                assert set(np.diff([x.toordinal() for x in d.dates])) == {12}
                assert np.nanmax(np.abs(data[0])) == 0.0  # displacements since the first acquisition
            else:
                assert data.shape[0] == 1 and d.unit == "mm/yr"


def test_inventory_contract(cfgs, inventories):
    for name, inv in inventories.items():
        spec, grid = AREAS[name], cfgs[name].grid
        assert list(inv.columns) == ["event_id", "event_date", "init_x", "init_y", "geometry"]
        assert inv["event_id"].is_unique and inv["event_id"].str.fullmatch(rf"{name}-\d{{4}}").all()
        assert inv["event_date"].dtype.kind == "M" and (inv["event_date"].dt.normalize() == inv["event_date"]).all()
        assert set(inv.geom_type) == {"Polygon"} and inv.is_valid.all() and inv.crs == grid.crs
        inits = shapely.points(inv["init_x"], inv["init_y"])
        assert inv.contains(gpd.GeoSeries(inits, crs=grid.crs, index=inv.index)).all()
        # the initiation point lies in the upslope part of the polygon: higher than the centroid
        dem = read_raster(cfgs[name].layers["dem"])[0]
        ir, ic = grid.rowcol(inv["init_x"].to_numpy(), inv["init_y"].to_numpy())
        cr, cc = grid.rowcol(inv.centroid.x.to_numpy(), inv.centroid.y.to_numpy())
        assert (dem[ir, ic] > dem[cr, cc]).mean() > 0.9
        ha = inv.area / 1e4
        assert ha.min() >= 0.49 and ha.max() <= 5.1 and 0.6 < ha.median() < 2.5
        # dates start years before the first period and run past every period end
        first = period_bounds(spec.periods[0])[0]
        assert inv["event_date"].min() < np.datetime64(first - dt.timedelta(days=3 * 365))
        for period in spec.periods:
            assert (inv["event_date"] > np.datetime64(period_bounds(period)[1])).sum() >= 3, period


# --------------------------------------------------------------------------- the physics


def test_landslide_density_rises_with_slope(cfgs, inventories):
    for name, cfg in cfgs.items():
        slope = slope_deg(read_raster(cfg.layers["dem"])[0], cfg.resolution_m)
        landslide = burn(inventories[name].geometry, cfg.grid)
        cls = np.digitize(slope, [10, 20, 30])  # 0-10, 10-20, 20-30, >= 30 degrees
        density = [landslide[cls == k].mean() for k in range(4)]
        assert all(np.diff(density) > 0), (name, density)
        assert density[0] < 0.01


def test_true_velocity_follows_true_hazard_and_stable_ground_is_still(cfgs):
    for name, cfg in cfgs.items():
        hazard, unstable = truth(cfg, "hazard.tif"), truth(cfg, "unstable.tif")
        assert 0 <= hazard.min() and hazard.max() <= 1 and set(np.unique(unstable)) == {0, 1}
        top, bottom = hazard >= np.quantile(hazard, 0.9), hazard <= np.median(hazard)
        for period in AREAS[name].periods:
            v = np.abs(truth(cfg, f"velocity_{period}.tif"))
            assert v[top].mean() > 3 * v[bottom].mean(), (name, period)
            # outside unstable slopes and subsidence bowls (unrelated to hazard) the ground is still
            still = v[(unstable == 0) & (hazard < 0.1) & ~subsidence(cfg)]
            assert np.median(still) < 0.05 and np.quantile(still, 0.99) < 1.0
            assert v.max() > 10  # some slopes move fast


def subsidence(cfg) -> np.ndarray:
    """Pixels within 3.5 sigma of a subsidence bowl of truth/bowls.csv."""
    with open(cfg.folder / "truth" / "bowls.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "subsidence"]
    x, y = cfg.grid.pixel_centers()
    out = np.zeros(cfg.grid.shape, bool)
    for r in rows:
        out |= np.hypot(x - float(r["x"]), y - float(r["y"])) < 3.5 * float(r["sigma_m"])
    return out


def test_unstable_slopes_that_have_not_failed_yet_exist(cfgs, inventories):
    for name, cfg in cfgs.items():
        hazard, unstable = truth(cfg, "hazard.tif"), truth(cfg, "unstable.tif")
        with open(cfg.folder / "truth" / "sites.csv") as f:
            sites = list(csv.DictReader(f))
        inv = inventories[name]
        for period in AREAS[name].periods:
            end = period_bounds(period)[1]
            failed = burn(inv.geometry[inv["event_date"] <= np.datetime64(end)], cfg.grid)
            v = np.abs(truth(cfg, f"velocity_{period}.tif"))
            hidden = (unstable == 1) & ~failed & (v > 5)
            # deforming, no polygon yet: what makes random negatives noisy
            assert hidden.sum() > 200, (name, period)
            assert np.median(hazard[hidden]) > 2 * np.median(hazard) and hazard[hidden].mean() > 1.5 * hazard.mean()
        # some of them fail after the last period (the later events that score prediction)
        last_end = period_bounds(AREAS[name].periods[-1])[1]
        later = [s for s in sites if s["failure"] and dt.date.fromisoformat(s["failure"]) > last_end]
        never = [s for s in sites if not s["failure"]]
        assert later and never
        assert all(s["event_id"] in set(inv["event_id"]) for s in later)


def test_fitted_timeseries_velocity_matches_truth(cfgs, deliveries):
    for d in deliveries["karst"]:
        ts = read_raster(d.data_path)
        t = np.array([(x - d.dates[0]).days / 365.25 for x in d.dates])
        v, n = fit_velocity(ts, t)
        true = block_mean(read_raster(cfgs["karst"].folder / "truth" / f"velocity_{d.period}.tif")[0], 2)
        ok = n >= 20
        assert ok.mean() > 0.8
        assert np.corrcoef(v[ok], true[ok])[0, 1] > 0.9, d.period


def test_velocity_delivery_matches_truth(cfgs, deliveries):
    for d in deliveries["loess"]:
        v = read_raster(d.data_path)[0]
        true = block_mean(read_raster(cfgs["loess"].folder / "truth" / f"velocity_{d.period}.tif")[0], 2)
        ok = np.isfinite(v)
        assert ok.mean() > 0.8 and np.corrcoef(v[ok], true[ok])[0, 1] > 0.85


def test_truth_readme_describes_every_file(cfgs):
    for name, cfg in cfgs.items():
        text = (cfg.folder / "truth" / "README.md").read_text()
        files = sorted(p.name for p in (cfg.folder / "truth").iterdir() if p.name != "README.md")
        assert files == sorted(["hazard.tif", "unstable.tif", "sites.csv", "bowls.csv", "knobs.yaml"]
                               + [f"velocity_{p}.tif" for p in AREAS[name].periods])
        assert all(f"`{f}`" in text for f in files)
        assert re.search(r"\d+ landslides", text)


def test_synthetic_is_a_package_of_four_parts_with_the_old_entry_points():
    import importlib

    import lsm_core.synthetic as syn

    for part in ("terrain", "hazard", "motion", "knobs", "insar", "writer", "toy"):
        importlib.import_module(f"lsm_core.synthetic.{part}")
    assert syn.generate_demo is importlib.import_module("lsm_core.synthetic.writer").generate_demo
    for old in ("_synthetic_terrain", "_synthetic_hazard", "_synthetic_insar"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"lsm_core.{old}")


def test_toy_area_puts_landslides_on_steep_deforming_ground():
    from lsm_core.synthetic import TOY_BANDS, toy_area
    from lsm_core.synthetic.toy import session_folder

    toy = toy_area(seed=3)
    assert toy.folder.parent == session_folder()  # removed at interpreter exit
    assert toy.stack.names == list(TOY_BANDS) and toy.grid.shape == (40, 40)
    assert toy.probability.grid == toy.grid and len(toy.events) == 6
    slope, velocity, _ = toy.stack.read()
    prob = toy.probability.read()[0]
    r, c = toy.grid.rowcol(toy.events.geometry.centroid.x.to_numpy(), toy.events.geometry.centroid.y.to_numpy())
    scar = np.zeros(toy.grid.shape, bool)
    scar[r[:-1], c[:-1]] = True  # the first five; the sixth (latest) is a surprise the factors do not show
    assert slope[scar].mean() > slope[~scar].mean() + 10 and velocity[scar].mean() > velocity[~scar].mean() + 5
    assert prob[scar].min() > np.quantile(prob, 0.8) > prob[r[-1], c[-1]]
    np.testing.assert_array_equal(toy_area(seed=3).stack.read(), toy.stack.read())  # seeded
    assert toy_area(seed=3).folder != toy.folder
