"""IO managers round-trip values, CRS, nodata and band names at the warehouse path of each partition."""

import dagster as dg
import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from lsm_assets.io_managers import CogIOManager, GridIOManager, TableIOManager
from lsm_assets.partitions import area_period_partitions, study_area_partitions
from lsm_assets.resources import LsmPaths
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterArray, RasterFile, write_raster

GRID = AreaGrid.from_bounds("EPSG:32647", (770000, 3930000, 771000, 3930600), 20)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("study_area", ["loess"])
        inst.add_dynamic_partitions("period", ["201602-201706"])
        yield inst


def _contexts(asset: str, key: str, pdef, instance):
    out = dg.build_output_context(asset_key=asset, partition_key=key, asset_partitions_def=pdef, instance=instance)
    inp = dg.build_input_context(asset_key=asset, partition_key=key, asset_partitions_def=pdef, instance=instance,
                                 upstream_output=out)
    return out, inp


def test_cog_io_manager_round_trip_on_area_x_period(tmp_path, instance):
    io = CogIOManager(paths=LsmPaths(data_root=str(tmp_path)))
    data = np.random.default_rng(0).normal(size=(2, *GRID.shape)).astype("float32")
    data[1, :3, :3] = np.nan
    out, inp = _contexts("factor_stack", "201602-201706|loess", area_period_partitions, instance)
    io.handle_output(out, RasterArray(data, GRID, ["slope_deg", "velocity_mm_yr"]))
    loaded = io.load_input(inp)
    assert loaded.path == tmp_path / "warehouse" / "factor_stack" / "loess" / "201602-201706.tif"
    assert loaded.names == ["slope_deg", "velocity_mm_yr"] and loaded.grid == GRID and np.isnan(loaded.nodata)
    np.testing.assert_array_equal(loaded.read(), data)


def test_cog_io_manager_publishes_a_windowed_file_by_rename(tmp_path, instance):
    io = CogIOManager(paths=LsmPaths(data_root=str(tmp_path)))
    scratch = write_raster(tmp_path / "scratch.tif", np.ones((1, *GRID.shape), "float32"), GRID, ["valid"])
    out, inp = _contexts("terrain_factors", "loess", study_area_partitions, instance)
    io.handle_output(out, RasterFile(scratch))
    assert not scratch.exists()
    assert io.load_input(inp).path == tmp_path / "warehouse" / "terrain_factors" / "loess.tif"


def test_missing_partition_output_gets_a_clear_error(tmp_path, instance):
    _, inp = _contexts("terrain_factors", "loess", study_area_partitions, instance)
    with pytest.raises(dg.DagsterInvariantViolationError, match="materialize it first"):
        CogIOManager(paths=LsmPaths(data_root=str(tmp_path))).load_input(inp)


def test_geoparquet_and_grid_round_trip(tmp_path, instance):
    gdf = gpd.GeoDataFrame({"event_id": ["a", "b"], "x": [1.5, 2.5]}, geometry=[Point(770100, 3930100),
                                                                                  Point(770200, 3930200)],
                           crs=GRID.crs)
    io = TableIOManager(paths=LsmPaths(data_root=str(tmp_path)))
    out, inp = _contexts("landslide_inventory", "loess", study_area_partitions, instance)
    io.handle_output(out, gdf)
    back = io.load_input(inp)
    assert back.crs == gdf.crs and back.equals(gdf)
    gio = GridIOManager(paths=LsmPaths(data_root=str(tmp_path)))
    out, inp = _contexts("study_area_grid", "loess", study_area_partitions, instance)
    gio.handle_output(out, GRID)
    assert gio.load_input(inp) == GRID


def test_plain_tables_round_trip_as_parquet(tmp_path, instance):
    import pandas as pd

    df = pd.DataFrame({"model": ["gbdt", "svm"], "auc": [0.91, 0.84]})
    io = TableIOManager(paths=LsmPaths(data_root=str(tmp_path)))
    out, inp = _contexts("model_comparison", "201602-201706|loess", area_period_partitions, instance)
    io.handle_output(out, df)
    back = io.load_input(inp)
    assert type(back) is pd.DataFrame and back.equals(df)
