"""What an incomplete area computes (lsm_core.area_scope): missing layers left out, absent layers, strategies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from shapely.geometry import LineString

from lsm_core import area_scope
from lsm_core.area import load_area
from lsm_core.environment import environment_factors
from lsm_core.errors import ConfigError
from lsm_core.io import RasterFile
from lsm_core.proximity import proximity_factors

CRS = "EPSG:32717"


def _raster(path: Path, values: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="float32", crs=CRS, transform=Affine(10, 0, 700000, 0, -10, 9550400), nodata=-9999) as dst:
        dst.write(values.astype("float32"), 1)
    return path


def _area(tmp_path: Path, layers: dict, **extra) -> Path:
    folder = tmp_path / "study_areas" / "mini"
    folder.mkdir(parents=True)
    _raster(folder / "dem.tif", np.add.outer(np.arange(40.0), np.arange(50.0)))
    (folder / "area.yaml").write_text(yaml.safe_dump({
        "name": "mini", "crs": CRS, "resolution_m": 10, "bounds": [700000, 9550000, 700500, 9550400],
        "layers": {"dem": "dem.tif", "inventory": "inventory.gpkg", **layers}, **extra}))
    return folder


def test_an_area_needs_only_a_dem_and_an_inventory(tmp_path):
    folder = _area(tmp_path, {}, periods=["200001-200012"])
    cfg = load_area(folder)
    assert area_scope.missing_layers(cfg) == area_scope.OPTIONAL_LAYERS
    assert area_scope.inventory_has_dates(cfg)  # unless area.yaml says otherwise
    assert area_scope.declared_periods(folder) == ["200001-200012"]
    (folder / "area.yaml").write_text((folder / "area.yaml").read_text().replace("200001-200012", "2000"))
    with pytest.raises(ConfigError, match=r"mini/area\.yaml.*periods \[2000\] are not of the form YYYYMM-YYYYMM"):
        area_scope.declared_periods(folder)


def test_environment_factors_keep_only_the_layers_given(tmp_path):
    folder = _area(tmp_path, {"rainfall": "rain.tif"})
    _raster(folder / "rain.tif", np.full((40, 50), 1800.0))
    cfg = load_area(folder)
    info = environment_factors(cfg, dt.date(2000, 1, 1), dt.date(2000, 12, 31), tmp_path / "env.tif")
    assert info.bands == ["rainfall_mm_yr"] and set(info.left_out) == {"lithology", "ndvi_mean"}
    env = RasterFile(tmp_path / "env.tif")
    assert env.names == ["rainfall_mm_yr"] and np.allclose(env.read(), 1800.0)
    assert area_scope.absent_reason(env) is None


def test_no_environment_layer_gives_an_absent_layer_the_stack_leaves_out(tmp_path):
    cfg = load_area(_area(tmp_path, {}))
    info = environment_factors(cfg, dt.date(2000, 1, 1), dt.date(2000, 12, 31), tmp_path / "env.tif")
    env = RasterFile(tmp_path / "env.tif")
    assert info.bands == [] and np.isnan(env.read()).all() and env.grid.shape == cfg.grid.shape
    assert area_scope.absent_reason(env) == "no lithology, rainfall or NDVI layer in area.yaml"
    velocity = RasterFile(area_scope.write_absent_layer(cfg.grid, tmp_path / "v.tif", "velocity_mm_yr", "no InSAR"))
    terrain = RasterFile(_raster(tmp_path / "slope.tif", np.ones((40, 50))))
    present, left_out = area_scope.present_sources([(terrain, ["band_1"]), (env, env.names),
                                                    (velocity, ["velocity_mm_yr"])])
    assert [s for s, _ in present] == [terrain]
    assert left_out == {"environment": "no lithology, rainfall or NDVI layer in area.yaml", "velocity_mm_yr": "no InSAR"}


def test_proximity_writes_only_the_bands_whose_layers_exist(tmp_path):
    roads = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame(geometry=[LineString([(700000, 9550200), (700500, 9550200)])], crs=CRS).to_file(roads)
    cfg = load_area(_area(tmp_path, {"roads": str(roads)}))
    bands, left_out = area_scope.proximity_bands(cfg)
    assert bands == ["roads"] and set(left_out) == {"faults", "valleys", "buildings", "mining"}
    out = proximity_factors(cfg.layers, cfg.grid, cfg.layers["dem"], tmp_path / "prox.tif",
                            cfg.parameters["max_distance_m"], bands=bands)
    prox = RasterFile(out)
    assert prox.names == ["roads"]
    v = prox.read()[0]
    assert v[20, 25] == pytest.approx(1.0, abs=0.05) and np.nanmin(v) < v[20, 25]  # decays away from the road


def test_strategies_that_need_the_velocity_are_skipped_with_the_reason():
    run, skipped = area_scope.applicable_strategies(["random", "buffer", "insar_pu", "pu"], ["slope_deg", "twi"])
    assert run == ["random", "buffer", "pu"] and list(skipped) == ["insar_pu"]
    assert "no velocity_mm_yr band" in skipped["insar_pu"]
    run, skipped = area_scope.applicable_strategies(["random", "insar_pu"], ["slope_deg", "velocity_mm_yr"])
    assert run == ["random", "insar_pu"] and skipped == {}


def test_the_pu_ablation_runs_beside_insar_pu_only_when_asked_but_always_without_a_velocity_band():
    every = ["random", "buffer", "insar_pu", "pu"]
    with_velocity, without = ["slope_deg", "velocity_mm_yr"], ["slope_deg"]
    run, skipped = area_scope.applicable_strategies(every, with_velocity, pu_ablation=False)
    assert run == ["random", "buffer", "insar_pu"] and list(skipped) == ["pu"]
    assert "ablation" in skipped["pu"] and "pu_ablation=true" in skipped["pu"]
    assert area_scope.applicable_strategies(every, with_velocity, pu_ablation=True) == (every, {})
    # no InSAR: pu is the area's PU strategy, ablation or not
    run, skipped = area_scope.applicable_strategies(every, without, pu_ablation=False)
    assert run == ["random", "buffer", "pu"] and list(skipped) == ["insar_pu"]


def test_the_sensor_quarantines_undated_updates_of_an_undated_area_and_says_why(tmp_path):
    """inventory_update_sensor's intake: an area added with an undated inventory still needs dated updates."""
    from lsm_core import catalog
    from lsm_core.event_intake import intake_inventories

    _area(tmp_path, {}, periods=["200001-200012"], parameters={"inventory_has_dates": False})
    grids = {"mini": load_area(tmp_path / "study_areas" / "mini").grid}
    inc = tmp_path / "incoming" / "inventory" / "mini"
    inc.mkdir(parents=True)
    (inc / "undated.csv").write_text("event_id,x,y\nu-1,700100,9550100\n")
    (inc / "one_blank.csv").write_text("event_id,date,x,y\nu-2,2001-03-01,700100,9550100\nu-3,,700200,9550200\n")
    (inc / "dated.csv").write_text("event_id,date,x,y\nu-4,2001-03-01,700100,9550100\n")
    db = tmp_path / "warehouse" / "lsm.duckdb"
    res = intake_inventories(tmp_path, grids, db, settle_s=0)
    reasons = {p.name: r for p, r in res.rejected}
    why = "study area 'mini' was added with an undated inventory: an update must date every event"
    assert "no event date column" in reasons["undated.csv"] and why in reasons["undated.csv"]
    assert "missing or unparseable event dates for ids ['u-3']" in reasons["one_blank.csv"]
    assert why in reasons["one_blank.csv"]
    q = tmp_path / "quarantine" / "inventory" / "mini"
    assert why in (q / "undated.csv.reason.txt").read_text() and (q / "one_blank.csv").is_file()
    assert [r.added for r in res.accepted] == [("u-4",)]  # a dated update is taken in
    with catalog.connect(db, read_only=True) as con:
        assert catalog.read_events(con, "mini", CRS)["event_id"].tolist() == ["u-4"]


def test_an_undated_update_of_a_dated_area_gets_the_plain_reason(tmp_path):
    from lsm_core.event_intake import intake_inventory_file

    _area(tmp_path, {})
    grids = {"mini": load_area(tmp_path / "study_areas" / "mini").grid}
    (tmp_path / "undated.csv").write_text("event_id,x,y\nu-1,700100,9550100\n")
    path, reason = intake_inventory_file(tmp_path / "undated.csv", "mini", tmp_path, grids,
                                         tmp_path / "lsm.duckdb", copy=True)
    assert "no event date column" in reason and "undated inventory" not in reason
