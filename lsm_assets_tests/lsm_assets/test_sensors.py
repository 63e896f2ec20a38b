"""Sensors and the re-evaluation automation against a real instance (``instance_for_test``) and real files."""

import datetime as dt
import shutil

import dagster as dg
import geopandas as gpd
import pytest
import yaml

from lsm_assets import sensors
from lsm_assets.definitions import defs
from lsm_assets.intake_ops import EVALUATION_ASSETS
from lsm_assets.materialize import resources_for
from lsm_assets.partitions import PERIOD, STUDY_AREA, area_period_key, area_period_partitions
from lsm_core import catalog
from lsm_core.intake import READY_MARKER

PERIOD_1 = "201901-202012"
KEY_1 = str(area_period_key("karst", PERIOD_1))
AREA_ASSETS = ["study_area_grid", "drainage", "terrain_factors", "proximity_factors", "landslide_inventory"]


@pytest.fixture
def world(demo_data, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    monkeypatch.setenv("LSM_SETTLE_S", "0")
    with dg.instance_for_test() as instance:
        yield data, instance


def _tick(sensor, instance, data, cursor=None) -> dg.SensorResult:
    """One tick: the sensor's result, its partitions added and its run requests resolved as the daemon does."""
    # a context manager: the resources are nested (IO managers and catalog on one paths resource)
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources=resources_for(data)) as ctx:
        result = sensor(ctx)
    for req in result.dynamic_partitions_requests or []:  # what the daemon does before creating the runs
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    job = defs.resolve_implicit_global_asset_job_def()
    for req in result.run_requests:  # a partition key the job does not know, or a mixed selection, raises
        req.with_resolved_tags_and_config(target_definition=job, dynamic_partitions_requests=[],
                                          dynamic_partitions_store=instance)
    return result


def _materialized(instance, asset, partition, **metadata):
    """Record a materialization in the instance (the runs that produce it are tested in test_pipeline)."""
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition, metadata=metadata))


def _names(req: dg.RunRequest) -> set[str]:
    return {k.path[-1] for k in req.asset_selection}


@pytest.mark.integration
def test_insar_sensor_takes_in_deliveries_versions_and_requests_runs(world):
    data, instance = world
    inc = data / "incoming" / "insar" / "karst"
    bad = inc / "broken"
    shutil.copytree(inc / f"s1_asc_t055_{PERIOD_1}", bad)
    (bad / "timeseries.tif").write_bytes(b"")
    first = _tick(sensors.insar_delivery_sensor, instance, data)
    # every good delivery archived, the bad one quarantined with its reason, partitions registered
    assert "is empty (0 bytes)" in (data / "quarantine" / "insar" / "karst" / "broken.reason.txt").read_text()
    assert set(instance.get_dynamic_partitions(STUDY_AREA)) == {"karst", "loess"}
    assert PERIOD_1 in instance.get_dynamic_partitions(PERIOD)
    # the areas' own assets were never materialized: those runs come first
    assert sorted(r.run_key for r in first.run_requests) == ["area:karst", "area:loess"]
    assert _names(first.run_requests[0]) == set(AREA_ASSETS)

    for area in ("karst", "loess"):
        for asset in AREA_ASSETS:
            _materialized(instance, asset, area)
    second = _tick(sensors.insar_delivery_sensor, instance, data, first.cursor)
    by_key = {r.partition_key: r for r in second.run_requests}
    assert len(by_key) == 4 and all(r.run_key.startswith("insar:") for r in second.run_requests)
    req = by_key[KEY_1]
    assert {"environment_factors", "deformation_rate", "prone_area_evaluation"} <= _names(req)  # a new period: all
    assert req.tags["lsm/delivery_version"] == "1" and req.tags["lsm/replaces"] == "none"

    # the period's run happened; the provider then re-delivers the same period: version 2
    v1 = data / "archive" / "insar" / "karst" / f"s1_asc_t055_{PERIOD_1}"
    _materialized(instance, "deformation_rate", KEY_1, delivery=str(v1))
    again = inc / "reprocessed"
    shutil.copytree(v1, again)
    (again / "intake.json").unlink()
    (again / READY_MARKER).touch()
    third = _tick(sensors.insar_delivery_sensor, instance, data, second.cursor)
    (req,) = [r for r in third.run_requests if r.partition_key == KEY_1]
    assert req.tags["lsm/delivery_version"] == "2" and req.tags["lsm/replaces"] == f"version 1 ({v1.name})"
    assert "environment_factors" not in _names(req) and {"deformation_rate", "factor_stack"} <= _names(req)
    assert (v1 / "timeseries.tif").exists() and (v1.parent / "reprocessed" / "timeseries.tif").exists()


def _correction_file(data, path):
    """Two new events and one corrected event (redated) of karst's inventory, as GeoJSON in WGS84."""
    inv = gpd.read_file(data / "study_areas" / "karst" / "inventory.gpkg")
    fixed = inv.iloc[[0]].assign(event_date="2020-03-01")
    new = inv.iloc[[1, 2]].assign(event_id=["karst-new-1", "karst-new-2"], event_date=["2023-05-01", "2023-06-02"])
    out = gpd.GeoDataFrame(gpd.pd.concat([fixed, new]), crs=inv.crs).drop(columns=["init_x", "init_y"])
    out.to_crs("EPSG:4326").to_file(path)
    return str(inv.iloc[0]["event_id"])


@pytest.mark.integration
def test_inventory_sensor_revises_events_then_requests_the_evaluations(world):
    data, instance = world
    instance.add_dynamic_partitions(STUDY_AREA, ["karst"])
    instance.add_dynamic_partitions(PERIOD, [PERIOD_1])
    dg.materialize(defs.assets, selection=["study_area_grid", "landslide_inventory"], partition_key="karst",
                   instance=instance, resources=resources_for(data))
    _materialized(instance, "prone_areas", KEY_1)  # one mapped period; the other has no map yet
    inc = data / "incoming" / "inventory" / "karst"
    inc.mkdir(parents=True)
    fixed_id = _correction_file(data, inc / "update.geojson")
    (inc / "future.csv").write_text("event_id,date,x,y\nf-1,2099-01-01,400000,2855000\n")

    first = _tick(sensors.inventory_update_sensor, instance, data)
    assert "dated in the future" in (data / "quarantine" / "inventory" / "karst" / "future.csv.reason.txt").read_text()
    (req,) = first.run_requests
    assert req.partition_key == "karst" and _names(req) == {"landslide_inventory"}
    assert req.tags["lsm/inventory_changes"] == "2 new, 1 corrected, 0 unchanged"
    assert req.tags["lsm/corrections"].startswith(f"{fixed_id}: date")
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        assert catalog.event_revisions(con, "karst", fixed_id)["revision"].tolist() == [1, 2]
        events = catalog.read_events(con, "karst", "EPSG:32649").set_index("event_id")
    assert str(events.loc[fixed_id, "event_date"])[:10] == "2020-03-01" and "karst-new-2" in events.index

    # until the inventory run has succeeded, nothing else is requested (and the same request is repeated)
    waiting = _tick(sensors.inventory_update_sensor, instance, data, first.cursor)
    assert [r.run_key for r in waiting.run_requests] == [req.run_key]
    run = dg.materialize(defs.assets, selection=["landslide_inventory"], partition_key="karst", instance=instance,
                         resources=resources_for(data), tags={**req.tags, "dagster/run_key": req.run_key})
    assert run.success
    meta = run.asset_materializations_for_node("landslide_inventory")[0].metadata
    assert meta["events_with_corrections"].value == 1 and meta["events"].value == len(events)
    evaluate = _tick(sensors.inventory_update_sensor, instance, data, waiting.cursor)
    (ev,) = evaluate.run_requests
    assert ev.partition_key == KEY_1 and _names(ev) == set(EVALUATION_ASSETS)
    assert ev.run_key == f"{req.run_key}:{PERIOD_1}"
    assert not _tick(sensors.inventory_update_sensor, instance, data, evaluate.cursor).run_requests


@pytest.mark.integration
def test_reevaluation_skips_combinations_without_delivery_and_waits_for_the_cron(world):
    data, instance = world
    instance.add_dynamic_partitions(STUDY_AREA, ["karst"])
    instance.add_dynamic_partitions(PERIOD, [PERIOD_1, "202101-202212", "201602-201706"])
    area_period = [k.path[-1] for a in defs.assets for k in a.keys if a.partitions_def == area_period_partitions]
    for asset in AREA_ASSETS:
        _materialized(instance, asset, "karst")
    for asset in area_period:  # karst x 201901-202012 was evaluated; the other combinations never were
        _materialized(instance, asset, KEY_1)
    monday = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               evaluation_time=monday - dt.timedelta(hours=2))
    assert before.total_requested == 0
    _materialized(instance, "landslide_inventory", "karst")  # the inventory changed during the week
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor,
                                              evaluation_time=monday - dt.timedelta(hours=1))
    assert quiet.total_requested == 0  # not before the tick
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor,
                                             evaluation_time=monday + dt.timedelta(minutes=1))
    requested = {(a, str(p)) for a in area_period + AREA_ASSETS
                 for p in tick.get_requested_partitions(dg.AssetKey(a))}
    assert ("positive_samples", KEY_1) in requested and ("prone_area_evaluation", KEY_1) in requested
    assert {p for _, p in requested} == {KEY_1}  # no combination without a delivery, nothing area-only
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor,
                                              evaluation_time=monday + dt.timedelta(minutes=2))
    assert after.total_requested == 0


def test_sensors_and_automation_are_on_by_default():
    by_name = {s.name: s for s in defs.sensors}
    assert set(by_name) == {"insar_delivery_sensor", "inventory_update_sensor", "reevaluation_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in by_name.values())
    # a sensor without a target cannot request runs of an asset selection (the daemon refuses them)
    assert by_name["insar_delivery_sensor"].asset_selection is not None
    assert by_name["inventory_update_sensor"].asset_selection is not None


def test_sensor_run_config_keeps_only_the_selected_ops(tmp_path, monkeypatch):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"ops": {"trained_models": {"config": {"models": ["lightgbm"]}},
                                            "susceptibility_map": {"config": {"scheduler_address": "serial"}}}}))
    monkeypatch.setenv("LSM_RUN_CONFIG", str(path))
    assert sensors.run_config_for(["trained_models", "factor_stack"]) == {
        "ops": {"trained_models": {"config": {"models": ["lightgbm"]}}}}
    assert sensors.run_config_for(["landslide_inventory"]) == {}


@pytest.mark.integration
def test_a_tick_that_died_after_moving_the_drops_is_caught_up(world):
    """The runs come from the archive, not from what a tick moved: nothing is missed after a crash."""
    from lsm_assets.registry import area_grids
    from lsm_core.event_intake import intake_inventories
    from lsm_core.intake import intake_deliveries

    data, instance = world
    grids, _ = area_grids(data)
    for area in ("karst", "loess"):
        for asset in AREA_ASSETS:
            _materialized(instance, asset, area)
    inc = data / "incoming" / "inventory" / "karst"
    inc.mkdir(parents=True)
    _correction_file(data, inc / "update.geojson")
    # a tick moved everything to the archive and was killed before returning its run requests
    assert len(intake_deliveries(data, grids, settle_s=0).accepted) == 4
    assert len(intake_inventories(data, grids, data / "warehouse" / "lsm.duckdb", settle_s=0).accepted) == 1
    insar = _tick(sensors.insar_delivery_sensor, instance, data)
    assert len(insar.run_requests) == 4 and all(r.run_key.startswith("insar:") for r in insar.run_requests)
    inventory = _tick(sensors.inventory_update_sensor, instance, data)
    assert [r.partition_key for r in inventory.run_requests] == ["karst"]
