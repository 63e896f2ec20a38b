"""Materialize the asset graph for every registered partition, partitions side by side.

Area-only assets (grid, inventory, drainage, terrain, proximity) run once per area; as soon as an area's run
has finished, its area x period runs are submitted. Runs go to a pool of worker processes, one per
core by default, so independent partitions use every core; each run is an ordinary Dagster run in
the given (persistent) instance and shows in the UI like one launched there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import dagster as dg

from lsm_assets.partitions import area_period_key, area_period_partitions, study_area_partitions
from lsm_assets.registry import Registration

# A side-by-side run maps its susceptibility in process: the other cores already run other partitions,
# and a Dask cluster per run would only add start-up time and memory.
SIDE_BY_SIDE_CONFIG = {"ops": {"susceptibility_map": {"config": {"scheduler_address": "serial"}}}}


# The expensive paths the defaults replace, for publication runs (`lsm materialize --preset thorough`):
# benchmarks/bench_demo.py measures how far the defaults move the published numbers from these.
THOROUGH_CONFIG = {"ops": {
    "negative_samples": {"config": {"bags": 100, "max_positives": None, "fold_bags": 30, "fold_max_pool": 300_000,
                                      "fold_max_positives": None}},
    "trained_models": {"config": {"forest_trees": 300, "forest_tuning_trees": 300, "gbdt_binned": False,
                                  "tuning_max_per_class": None, "cv_max_samples_per_class": None,
                                  "without_velocity_models": ["logistic_regression", "svm", "mlp", "random_forest",
                                                              "gbdt", "lightgbm"]}},
    "shap_importance": {"config": {"agnostic_method": "kernel"}},
}}
PRESETS = {"default": None, "thorough": THOROUGH_CONFIG}


def resources_for(data_root: str | Path | dg.EnvVar) -> dict:
    """The Definitions' resources, all on one ``paths`` resource pointed at ``data_root`` (a path or an EnvVar)."""
    from lsm_assets.io_managers import CogIOManager, GridIOManager, TableIOManager
    from lsm_assets.resources import DuckDBCatalog, LsmPaths

    paths = LsmPaths(data_root=data_root if isinstance(data_root, dg.EnvVar) else str(data_root))
    return {"paths": paths, "lsm_catalog": DuckDBCatalog(paths=paths), "cog_io_manager": CogIOManager(paths=paths),
            "table_io_manager": TableIOManager(paths=paths), "grid_io_manager": GridIOManager(paths=paths)}


@dataclass(frozen=True)
class RunOutcome:
    """One finished run: its partition, Dagster run id, success and the first error message, if any."""

    partition_key: str
    run_id: str
    success: bool
    seconds: float
    error: str | None = None


def _keys(defs: dg.Definitions, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetKey]:
    return [k for a in (defs.assets or []) for k in a.keys if a.partitions_def == partitions_def]


def run_partition(defs: dg.Definitions, instance: dg.DagsterInstance, data_root: str | Path,
                  partition_key: str, run_config: dict | None = None,
                  selection: Sequence[str] | None = None) -> RunOutcome:
    """Materialize every asset (or the ``selection``) of ``partition_key``'s partitions definition (area, or
    area x period) in process."""
    keys = selection or _keys(defs, area_period_partitions if "|" in partition_key else study_area_partitions)
    start = time.perf_counter()
    # the checks go along so they run with their assets, as in runs launched from the UI
    result = dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])], selection=keys,
                            partition_key=partition_key, instance=instance, resources=resources_for(data_root),
                            run_config=run_config, raise_on_error=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = None
    if failures:
        err = failures[0].event_specific_data.error
        error = f"{failures[0].step_key}: {err.message.strip() if err else 'failed'}"
    return RunOutcome(partition_key, result.run_id, result.success, time.perf_counter() - start, error)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_init() -> None:
    # One partition per core: the libraries' own thread pools (OpenMP in the GBDT and LightGBM, BLAS)
    # would only oversubscribe the cores, and OpenMP's spinning threads then slow every run down.
    # The variables reach runtimes loaded later; threadpoolctl caps those already loaded.
    from threadpoolctl import threadpool_limits

    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    threadpool_limits(1)
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the process that started it dies, even by SIGKILL.

    Otherwise a killed ``lsm materialize`` leaves its workers behind (Dagster's runs ignore SIGTERM).
    """
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


def _run_in_worker(instance_ref: object, data_root: str, partition_key: str,
                   run_config: dict | None) -> RunOutcome:
    from lsm_assets.definitions import defs

    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return run_partition(defs, instance, data_root, partition_key, run_config)


def merge_run_config(base: dict | None, extra: dict | None) -> dict:
    """``extra`` run config over ``base`` (op by op, config field by field)."""
    ops = {k: {"config": dict(v.get("config", {}))} for k, v in (base or {}).get("ops", {}).items()}
    for op, v in (extra or {}).get("ops", {}).items():
        ops.setdefault(op, {"config": {}})["config"].update(v.get("config", {}))
    return {**(extra or {}), "ops": ops}


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, reg: Registration, data_root: str | Path,
                    areas: Sequence[str] | None = None, run_config: dict | None = None,
                    max_workers: int | None = None,
                    on_done: Callable[[RunOutcome], None] | None = None) -> list[RunOutcome]:
    """Run area-only assets per area, then area x period assets per accepted (area, period).

    ``run_config`` ({"ops": {asset: {"config": {...}}}}) tunes the area x period runs, e.g. fewer models in
    tests. ``max_workers``: worker processes (default: one per core); 1, or an ephemeral instance that
    other processes cannot reach, runs everything here, one run after the other, with ``defs``. With
    workers, the runs use ``lsm_assets.definitions.defs``. ``on_done`` is called with each finished run
    (e.g. to move a progress bar).
    """
    notify = on_done or (lambda _: None)
    areas = list(areas or reg.areas)
    pairs = [str(area_period_key(a, p)) for a in areas for a2, p in reg.pairs if a2 == a]
    workers = max_workers or os.cpu_count() or 1
    if workers == 1 or instance.is_ephemeral:
        results = []
        for area in areas:
            for key in [area, *(k for k in pairs if k.endswith(f"|{area}"))]:
                results.append(run_partition(defs, instance, data_root, key, run_config if "|" in key else None))
                notify(results[-1])
        return results

    pair_config = merge_run_config(SIDE_BY_SIDE_CONFIG, run_config)
    ref, root = instance.get_ref(), str(data_root)
    results: list[RunOutcome] = []
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        pending: dict[Future, str] = {pool.submit(_run_in_worker, ref, root, a, None): a for a in areas}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                results.append(fut.result())
                notify(results[-1])
                if "|" not in key:  # an area is ready: its periods can start
                    pending |= {pool.submit(_run_in_worker, ref, root, k, pair_config): k for k in pairs
                                if k.endswith(f"|{key}")}
    order = {k: i for i, k in enumerate([*areas, *pairs])}
    return sorted(results, key=lambda r: order[r.partition_key])
