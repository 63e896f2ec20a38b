"""End to end on a live instance: `dagster dev` (webserver + daemon), drops in incoming/, the GraphQL API.

One small area (karst, scale 0.08) has its area-only assets materialized beforehand. Then, with
the instance running: an InSAR delivery for a new period is dropped and the sensor-requested run
must map and evaluate it; the instance is stopped, an inventory update (two new events, one correction) is
dropped while it is down, and after a restart it must be processed exactly once, with the
evaluation history gaining rows that record the new inventory state; the delivery must not be
processed again. Finally one partition is launched through the GraphQL mutation the UI uses.
"""

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import dagster as dg
import geopandas as gpd
import pandas as pd
import pytest
import yaml

from lsm_assets.definitions import defs
from lsm_assets.materialize import run_partition
from lsm_assets.registry import register
from lsm_assets_tests import dagster_dev
from lsm_core import catalog
from lsm_core.synthetic import generate_demo

ROOT = Path(__file__).resolve().parents[2]
FIRST, NEW = "201901-202012", "202101-202212"
MODELS = ["logistic_regression", "lightgbm"]
# the runs the sensors request use this (LSM_RUN_CONFIG): two models, few samples, one process per run
FAST = {"execution": {"config": {"in_process": {}}}, "ops": {
    "negative_samples": {"config": {"bags": 10, "cv_folds": 3}},
    "trained_models": {"config": {"models": MODELS, "max_samples_per_class": 300, "spatial_cv_folds": 3}},
    "shap_importance": {"config": {"models": MODELS, "n_explain": 50, "n_bootstrap": 2}},
    "susceptibility_map": {"config": {"scheduler_address": "serial"}}}}
RUNS = """query Runs($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
  ... on Runs { results { runId status creationTime endTime tags { key value } } } } }"""
MATERIALIZATIONS = """query M($key: AssetKeyInput!, $partitions: [String!]) { assetOrError(assetKey: $key) {
  ... on Asset { assetMaterializations(partitions: $partitions) { partition runId timestamp
    metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }"""
LAUNCH = """mutation L($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""
RUN = """query R($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.loads(resp.read())
    assert "errors" not in out, out["errors"]
    return out["data"]


class LiveInstance:
    """`dagster dev` in its own session; stopped by its PID (and its process group) even when a test fails."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log, self.proc, self.port = env, log, None, None

    def start(self) -> None:
        self.proc, self.port = dagster_dev.start(self.env, self.log)

    def stop(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            dagster_dev.stop(proc)


def _runs(port: int, key: str, value: str) -> list[dict]:
    return _gql(port, RUNS, {"tags": [{"key": key, "value": value}]})["runsOrError"]["results"]


def _wait_for(port: int, predicate, what: str, timeout_s: float = 900):
    deadline = time.monotonic() + timeout_s
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(2)


def _sensor_runs(port: int, sensor: str) -> list[dict]:
    runs = _runs(port, "dagster/sensor_name", sensor)
    failed = [r for r in runs if r["status"] in ("FAILURE", "CANCELED")]
    assert not failed, f"{sensor} runs failed: {failed}"
    return runs


def _tag(run: dict, key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def _latest(port: int, asset: str, partition: str) -> dict | None:
    mats = _gql(port, MATERIALIZATIONS, {"key": {"path": [asset]}, "partitions": [partition]})
    mats = mats["assetOrError"]["assetMaterializations"]
    return max(mats, key=lambda m: float(m["timestamp"])) if mats else None


def _meta(mat: dict) -> dict:
    return {e["label"]: e.get("intValue", e.get("text")) for e in mat["metadataEntries"]}


@pytest.fixture
def live_world(tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("run_queue:\n  max_concurrent_runs: 2\ntelemetry:\n  enabled: false\n")
    generate_demo(data, seed=7, scale=0.08)
    shutil.rmtree(data / "study_areas" / "loess")
    shutil.rmtree(data / "incoming" / "insar" / "loess")
    pending = tmp_path / "pending"
    shutil.move(data / "incoming" / "insar" / "karst" / f"s1_asc_t055_{NEW}", pending / f"s1_asc_t055_{NEW}")
    shutil.rmtree(data / "incoming" / "insar" / "karst" / f"s1_asc_t055_{FIRST}")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the area's own assets, as after `lsm materialize`
        register(instance, data)
        result = run_partition(defs, instance, data, "karst")
        assert result.success, result.error
    (tmp_path / "run_config.yaml").write_text(yaml.safe_dump(FAST))
    env = {**os.environ, "DAGSTER_HOME": str(home), "LSM_DATA_ROOT": str(data), "LSM_SENSOR_INTERVAL_S": "5",
           "LSM_SETTLE_S": "3", "LSM_RUN_CONFIG": str(tmp_path / "run_config.yaml")}
    live = LiveInstance(env, tmp_path / "dagster_dev.log")
    try:
        yield data, pending, live
    finally:
        live.stop()


def _inventory_update(data: Path, path: Path) -> tuple[str, int, int]:
    """Two events dated after the first period and a redated one, in WGS84; returns the corrected id and counts."""
    inv = gpd.read_file(data / "study_areas" / "karst" / "inventory.gpkg")
    fixed = inv.iloc[[0]].assign(event_date="2019-03-03")
    new = inv.iloc[[1, 2]].assign(event_id=["karst-2024-a", "karst-2024-b"], event_date=["2024-04-01", "2024-05-02"])
    out = gpd.GeoDataFrame(pd.concat([fixed, new]), crs=inv.crs).drop(columns=["init_x", "init_y"])
    out.to_crs("EPSG:4326").to_file(path)
    return str(inv.iloc[0]["event_id"]), len(inv) + 2, len(inv) + 3


@pytest.mark.slow
@pytest.mark.integration
def test_live_instance_processes_drops_across_a_restart(live_world):
    data, pending, live = live_world
    live.start()
    port = live.port
    assert not _runs(port, "dagster/sensor_name", "insar_delivery_sensor")  # nothing redone at start-up

    t0 = time.monotonic()
    shutil.copytree(pending / f"s1_asc_t055_{NEW}", data / "incoming" / "insar" / "karst" / f"s1_asc_t055_{NEW}")
    insar = _wait_for(port, lambda: [r for r in _sensor_runs(port, "insar_delivery_sensor")
                                     if r["status"] == "SUCCESS"], "the new period's run")
    t_insar = time.monotonic() - t0
    assert _tag(insar[0], "dagster/partition") == f"{NEW}|karst" and _tag(insar[0], "lsm/delivery_version") == "1"
    for asset in ("deformation_rate", "factor_stack", "susceptibility_map", "prone_area_evaluation"):
        assert _latest(port, asset, f"{NEW}|karst") is not None, asset
    before = _meta(_latest(port, "prone_area_evaluation", f"{NEW}|karst"))

    live.stop()  # the second drop arrives while the instance is down
    fixed_id, n_events, n_revisions = _inventory_update(data, data.parent / "update_2024.geojson")
    (data / "incoming" / "inventory" / "karst").mkdir(parents=True)
    shutil.move(data.parent / "update_2024.geojson", data / "incoming" / "inventory" / "karst" / "update_2024.geojson")
    live.start()
    port = live.port
    t1 = time.monotonic()

    def evaluated():
        runs = _sensor_runs(port, "inventory_update_sensor")
        evals = [r for r in runs if _tag(r, "dagster/partition") not in (None, "karst")]
        return runs if len(evals) == 1 and all(r["status"] == "SUCCESS" for r in runs) else None

    inventory_runs = _wait_for(port, evaluated, "the inventory run and the re-evaluation of the mapped period")
    t_inventory = time.monotonic() - t1
    assert sorted(_tag(r, "dagster/partition") for r in inventory_runs) == [f"{NEW}|karst", "karst"]
    assert all(_tag(r, "lsm/inventory_changes") == "2 new, 1 corrected, 0 unchanged" for r in inventory_runs)
    assert all(_tag(r, "lsm/corrections").startswith(f"{fixed_id}: date") for r in inventory_runs)
    # nothing processed twice: still exactly one run for the delivery, one inventory run
    assert len(_runs(port, "dagster/sensor_name", "insar_delivery_sensor")) == 1
    assert len(inventory_runs) == 2

    after = _meta(_latest(port, "prone_area_evaluation", f"{NEW}|karst"))
    assert after["evaluations_in_history"] == before["evaluations_in_history"] + 1
    assert (after["inventory_events"], after["inventory_revisions"]) == (n_events, n_revisions)
    assert before["inventory_events"] == n_events - 2
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        hist = con.execute("""SELECT inventory_n_events, inventory_n_revisions, count(*) FROM prone_area_evaluation
                              WHERE area = 'karst' AND period = ? GROUP BY ALL ORDER BY 1""", [NEW]).fetchall()
    assert [(h[0], h[1]) for h in hist] == [(n_events - 2, n_events - 2), (n_events, n_revisions)]

    # one partition launched the way the UI does it
    t2 = time.monotonic()
    leaf = [{"path": ["deformation_susceptibility_contingency"]}]
    params = {"selector": {"repositoryLocationName": "lsm", "repositoryName": "__repository__",
                           "jobName": "__ASSET_JOB", "assetSelection": leaf, "assetCheckSelection": []},
              "runConfigData": {"execution": {"config": {"in_process": {}}}},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": f"{NEW}|karst"},
                                             {"key": "dagster/partition/period", "value": NEW},
                                             {"key": "dagster/partition/study_area", "value": "karst"}]}}
    launched = _gql(port, LAUNCH, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = _wait_for(port, lambda: (s := _gql(port, RUN, {"id": run_id})["runOrError"]["status"]) in
                       ("SUCCESS", "FAILURE", "CANCELED") and s, "the launched run", timeout_s=300)
    assert status == "SUCCESS"
    assert _latest(port, "deformation_susceptibility_contingency", f"{NEW}|karst")["runId"] == run_id
    t_launch = time.monotonic() - t2
    timings = {"drop_to_new_period_evaluated_s": round(t_insar, 1),
               "restart_to_inventory_reevaluated_s": round(t_inventory, 1), "graphql_launch_s": round(t_launch, 1)}
    print("LIVE TIMINGS", json.dumps(timings))
    (Path(os.environ.get("LSM_LIVE_TIMINGS", "/dev/null"))).write_text(json.dumps(timings))
