"""End to end on a small synthetic world: register partitions, materialize the graph in a real instance."""

import shutil

import dagster as dg
import numpy as np
import pytest

from lsm_assets.definitions import defs
from lsm_assets.materialize import materialize_all, resources_for
from lsm_assets.partitions import area_period_key
from lsm_assets.registry import register
from lsm_core import catalog
from lsm_core.io import RasterFile
from lsm_core.synthetic import generate_demo

SCALE = 0.12  # ~ 100k pixels per area: the whole graph in well under a minute


@pytest.fixture(scope="module")
def pristine_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_demo(root, seed=7, scale=SCALE)
    return root


@pytest.fixture(scope="module")
def materialized(pristine_world, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    shutil.copytree(pristine_world, data, dirs_exist_ok=True)
    with dg.instance_for_test() as instance:
        reg = register(instance, data)
        results = materialize_all(defs, instance, reg, data)
        yield data, instance, reg, results


@pytest.mark.integration
def test_every_partition_materializes(materialized):
    data, instance, reg, results = materialized
    assert reg.areas == ("karst", "loess") and len(reg.pairs) == 4 and not reg.rejected
    assert all(r.success for r in results)
    assert set(instance.get_dynamic_partitions("study_area")) == {"karst", "loess"}
    for area, period in reg.pairs:
        stack = RasterFile(data / "warehouse" / "factor_stack" / area / f"{period}.tif")
        assert stack.names[-1] == "velocity_mm_yr" and "lithology" in stack.names
        assert 0.5 < np.isfinite(stack.read(bands=[1])).mean() <= 1
    # accepted deliveries moved to the archive, nothing left in incoming
    assert not any((data / "incoming" / "insar").rglob("delivery.yaml"))
    assert len(list((data / "archive" / "insar").rglob("delivery.yaml"))) == 4


@pytest.mark.integration
def test_inventory_lands_in_duckdb_once(materialized):
    data, instance, reg, _ = materialized
    import geopandas as gpd

    source = gpd.read_file(data / "study_areas" / "karst" / "inventory.gpkg")
    with catalog.connect(data / "warehouse" / "lsm.duckdb") as con:
        n = con.execute("SELECT count(*) FROM landslide_events WHERE area = 'karst'").fetchone()[0]
    assert n == len(source)
    again = dg.materialize(defs.assets, selection=["landslide_inventory"], partition_key="karst", instance=instance,
                           resources=resources_for(data))
    meta = again.asset_materializations_for_node("landslide_inventory")[0].metadata
    assert meta["added"].value == 0 and meta["events"].value == len(source)


@pytest.mark.integration
def test_area_without_delivery_for_a_period_fails_clearly(materialized):
    data, instance, reg, _ = materialized
    missing = next(p for p in reg.periods if ("loess", p) not in reg.pairs)
    with pytest.raises(Exception, match=f"no accepted InSAR delivery for area 'loess' and period '{missing}'"):
        dg.materialize(defs.assets, selection=["deformation_rate"], instance=instance, resources=resources_for(data),
                       partition_key=str(area_period_key("loess", missing)))
