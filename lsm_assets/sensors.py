"""Sensors: InSAR deliveries and inventory updates dropped in ``data/incoming/`` start runs (DESIGN 5).

Both are on by default. Each tick takes in what has settled (``lsm_core.intake``,
``lsm_core.event_intake``), then derives the runs to request from what is *archived*, not from
what this tick moved: a tick interrupted after moving a file (daemon stopped, crash) is caught up
by the next one, and ``run_key``s (one per delivery version, one per inventory file and period)
keep anything from running twice. The cursor only remembers which archived items are settled.

Tunables (environment, read when the code location loads): ``LSM_SENSOR_INTERVAL_S`` (30),
``LSM_SETTLE_S`` (30; seconds a drop must stay unchanged), ``LSM_RUN_CONFIG`` (a YAML run config
for the runs the sensors and the re-evaluation request, e.g. the thorough preset or fewer models).
"""


import json
import os
from pathlib import Path

import dagster as dg
import yaml

from lsm_assets.intake_ops import DEFORMATION_ROOT, EVALUATION_ASSETS, deformation_source, evaluated_partitions
from lsm_assets.partitions import area_period_key, area_period_partitions, period_of, study_area_partitions
from lsm_assets.registry import area_grids, new_partitions_requests
from lsm_assets.resources import DuckDBCatalog, LsmPaths
from lsm_core.event_intake import intake_inventories, inventory_records
from lsm_core.intake import ArchivedDelivery, current_versions, intake_deliveries

INTERVAL_S = int(os.environ.get("LSM_SENSOR_INTERVAL_S", "30"))
RUNNING = dg.DefaultSensorStatus.RUNNING
MAX_DONE = 5000  # cursor entries kept; older items are re-checked cheaply through their run keys


def settle_seconds() -> float:
    """Seconds a drop must stay unchanged before it is judged (``LSM_SETTLE_S``, default 30)."""
    return float(os.environ.get("LSM_SETTLE_S", "30"))


def run_config_for(asset_names: list[str]) -> dict:
    """``LSM_RUN_CONFIG``'s run config, reduced to the ops of ``asset_names`` (a run rejects config of other ops)."""
    path = os.environ.get("LSM_RUN_CONFIG")
    if not path:
        return {}
    config = yaml.safe_load(Path(path).read_text()) or {}
    ops = {k: v for k, v in (config.get("ops") or {}).items() if k in asset_names}
    return {**config, "ops": ops} if ops else {k: v for k, v in config.items() if k != "ops"}


def _request(run_key: str, partition_key: str, keys: list[dg.AssetKey], tags: dict[str, str]) -> dg.RunRequest:
    names = [k.path[-1] for k in keys]
    return dg.RunRequest(run_key=run_key, partition_key=partition_key, asset_selection=keys,
                         run_config=run_config_for(names), tags={k: v[:1000] for k, v in tags.items()})


def _run_for(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    return runs[0] if runs else None


def _done(context: dg.SensorEvaluationContext) -> list[str]:
    return json.loads(context.cursor)["done"] if context.cursor else []


def _cursor(done: list[str]) -> str:
    return json.dumps({"done": done[-MAX_DONE:]})


def _keys_of(context: dg.SensorEvaluationContext, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetKey]:
    graph = context.repository_def.asset_graph
    return sorted((k for k in graph.materializable_asset_keys if graph.get(k).partitions_def == partitions_def),
                  key=lambda k: k.to_user_string())


def _area_ready(context: dg.SensorEvaluationContext, area: str) -> bool:
    return all(area in context.instance.get_materialized_partitions(k)
               for k in _keys_of(context, study_area_partitions))


def _delivery_request(context: dg.SensorEvaluationContext, v: ArchivedDelivery, key: str,
                      first: bool) -> dg.RunRequest:
    graph = context.repository_def.asset_graph
    if first:  # a new period: every area x period asset (the environment factors too)
        keys = _keys_of(context, area_period_partitions)
    else:  # a new version: the velocity and everything computed from it
        keys = sorted(dg.AssetSelection.assets(DEFORMATION_ROOT).downstream().resolve(graph),
                      key=lambda k: k.to_user_string())
    replaces = f"version {v.version - 1} ({v.replaces})" if v.replaces else "none"
    context.log.info(f"{key}: delivery {v.delivery.folder.name} version {v.version} replaces {replaces}; "
                     f"requesting {len(keys)} assets")
    return _request(f"insar:{v.key}", key, keys, {"lsm/delivery": v.delivery.folder.name,
                                                  "lsm/delivery_version": str(v.version),
                                                  "lsm/replaces": replaces})


@dg.sensor(name="insar_delivery_sensor", minimum_interval_seconds=INTERVAL_S, default_status=RUNNING,
           asset_selection=dg.AssetSelection.all(),
           description="Watches data/incoming/insar/<area>/. A settled delivery (delivery.yaml present and nothing "
           "changed for LSM_SETTLE_S seconds, or a _READY marker) is opened and validated, archived as the next "
           "version of its period (or quarantined with a .reason.txt), its period registered as a partition, and "
           "deformation_rate and everything downstream requested for that area and period.")
def insar_delivery_sensor(context: dg.SensorEvaluationContext, paths: LsmPaths) -> dg.SensorResult:
    grids, broken = area_grids(paths.root)
    result = intake_deliveries(paths.root, grids, settle_s=settle_seconds(), broken_areas=broken)
    for v in result.accepted:
        context.log.info(f"accepted {v.delivery.folder} as version {v.version} of {v.delivery.area}:"
                         f"{v.delivery.period}" + (f", replacing {v.replaces}" if v.replaces else ""))
    for folder, reason in result.rejected:
        context.log.error(f"quarantined {folder}: {reason}")
    for folder, reason in result.held:
        context.log.info(f"holding {folder}: {reason}")
    done, requests, setups = _done(context), [], {}
    versions = [v for v in current_versions(paths.root) if v.delivery.area in grids]
    for v in versions:
        key = str(area_period_key(v.delivery.area, v.delivery.period))
        source = deformation_source(context.instance, key)
        if v.key in done or source == str(v.delivery.folder) or _run_for(context.instance, f"insar:{v.key}"):
            done += [] if v.key in done else [v.key]
            continue
        if not _area_ready(context, v.delivery.area):  # the area's own assets first, then this period
            setups[v.delivery.area] = _request(f"area:{v.delivery.area}", v.delivery.area,
                                               _keys_of(context, study_area_partitions), {})
            continue
        requests.append(_delivery_request(context, v, key, first=source is None))
    parts = new_partitions_requests(context.instance, list(grids), [v.delivery.period for v in versions])
    return dg.SensorResult(run_requests=[*setups.values(), *requests], dynamic_partitions_requests=parts,
                           cursor=_cursor(done))


@dg.sensor(name="inventory_update_sensor", minimum_interval_seconds=INTERVAL_S, default_status=RUNNING,
           asset_selection=dg.AssetSelection.all(),
           description="Watches data/incoming/inventory/<area>/ (GeoPackage, GeoJSON, CSV with x, y). A settled "
           "file is validated (CRS, geometry, ids, dates not in the future, inside the area), its events added to "
           "the DuckDB catalog (a known id with another date or geometry becomes a new revision), and it is "
           "archived (or quarantined with a .reason.txt). Then landslide_inventory is re-run for the area and, "
           "once it succeeded, prone_area_evaluation and model_comparison for every mapped period of the area.")
def inventory_update_sensor(context: dg.SensorEvaluationContext, paths: LsmPaths,
                            lsm_catalog: DuckDBCatalog) -> dg.SensorResult:
    grids, broken = area_grids(paths.root)
    result = intake_inventories(paths.root, grids, lsm_catalog.path, settle_s=settle_seconds(),
                                broken_areas=broken)
    for r in result.accepted:
        context.log.info(f"accepted {r.received_as} for {r.area}: {r.summary()}")
        for c in r.corrected:
            context.log.warning(f"{r.area}: corrected event {c}")
    for path, reason in result.rejected:
        context.log.error(f"quarantined {path}: {reason}")
    for path, reason in result.held:
        context.log.info(f"holding {path}: {reason}")
    done, requests = _done(context), []
    for rec in inventory_records(paths.root):
        item = f"{rec.area}:{rec.record_id}"
        if item in done or rec.area not in grids:
            continue
        tags = {"lsm/inventory_file": rec.received_as, "lsm/inventory_changes": rec.summary(),
                "lsm/corrections": "; ".join(rec.corrected) or "none"}
        if not (rec.added or rec.corrected):
            context.log.info(f"{rec.received_as}: nothing new for {rec.area}")
            done.append(item)
            continue
        run = _run_for(context.instance, f"inventory:{item}")
        if run is None:
            requests.append(_request(f"inventory:{item}", rec.area, [dg.AssetKey("landslide_inventory")], tags))
        elif run.status == dg.DagsterRunStatus.SUCCESS:  # the inventory is fresh: re-score every mapped period
            keys = evaluated_partitions(context.instance, rec.area)
            context.log.info(f"{rec.received_as}: re-evaluating {rec.area} for {[period_of(k) for k in keys]}")
            requests += [_request(f"inventory:{item}:{period_of(k)}", k, [dg.AssetKey(a) for a in EVALUATION_ASSETS],
                                  tags) for k in keys]
            done.append(item)
        elif run.is_finished:
            context.log.error(f"{rec.received_as}: landslide_inventory run {run.run_id} ended {run.status.value}; "
                              "the events are in the catalog and the next re-evaluation will use them")
            done.append(item)
    return dg.SensorResult(run_requests=requests, cursor=_cursor(done))
