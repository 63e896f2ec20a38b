"""Materialize the asset graph for every registered partition, partitions side by side.

Area-only assets (grid, inventory, drainage, terrain, proximity) run once per area; as soon as an area's run
has finished, its area x period runs are submitted. Each sample table registered with ``lsm add-table`` is
one run of ``sample_table_evaluation`` (its partition), independent of the areas. Runs go to a pool of
worker processes, one per core by default, so independent partitions use every core; each run is an
ordinary Dagster run in the given (persistent) instance and shows in the UI like one launched there.
"""

from __future__ import annotations

import gc
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
    "negative_samples": {"config": {"bags": 100, "max_positives": None, "max_pool": 300_000, "fold_bags": 30,
                                      "fold_max_pool": 300_000, "fold_max_positives": None, "pu_ablation": True}},
    "trained_models": {"config": {"forest_trees": 300, "forest_tuning_trees": 300, "mlp_tuning_patience": 20,
                                  "gbdt_binned": False, "lightgbm_bins": 255,
                                  "tuning_max_per_class": None, "cv_max_samples_per_class": None,
                                  "mlp_tuning_max_per_class": None, "mlp_cv_max_samples_per_class": None,
                                  "without_velocity_models": ["logistic_regression", "svm", "mlp", "random_forest",
                                                              "gbdt", "lightgbm"],
                                  "retune_without_velocity": True}},
    "shap_importance": {"config": {"agnostic_method": "kernel", "tree_rows": None}},
}}
PRESETS = {"default": None, "thorough": THOROUGH_CONFIG}
TABLE_ASSET = "sample_table_evaluation"  # one partition per registered sample table


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
    table: bool = False  # a sample table's run (partition_key is the table's name)

    @property
    def label(self) -> str:
        return f"table {self.partition_key}" if self.table else self.partition_key


def _keys(defs: dg.Definitions, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetKey]:
    return [k for a in (defs.assets or []) for k in a.keys if a.partitions_def == partitions_def]


def config_for(run_config: dict | None, asset_names: Sequence[str]) -> dict | None:
    """``run_config`` reduced to the ops of ``asset_names`` (a run rejects the config of ops it does not run)."""
    if not run_config:
        return run_config
    ops = {k: v for k, v in (run_config.get("ops") or {}).items() if k in asset_names}
    rest = {k: v for k, v in run_config.items() if k != "ops"}
    return {**rest, "ops": ops} if ops else rest or None


def run_partition(defs: dg.Definitions, instance: dg.DagsterInstance, data_root: str | Path,
                  partition_key: str, run_config: dict | None = None,
                  selection: Sequence[str] | None = None, table: bool = False) -> RunOutcome:
    """Materialize every asset (or the ``selection``) of ``partition_key``'s partitions definition (area, or
    area x period; ``table``: the sample table ``partition_key``) in process. ``run_config`` is reduced to the
    ops the run has."""
    if table:
        selection = [TABLE_ASSET]
    keys = selection or _keys(defs, area_period_partitions if "|" in partition_key else study_area_partitions)
    run_config = config_for(run_config, [k if isinstance(k, str) else k.path[-1] for k in keys])
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
    return RunOutcome(partition_key, result.run_id, result.success, time.perf_counter() - start, error, table)


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
    # every run imports them: import them at start-up, while the caller still prepares (generates the demo data)
    import lsm_assets.definitions  # noqa: F401
    from lsm_core import mlp

    mlp.compile_kernels()  # loads the MLP's cached epoch loop and builds numba's typed lists: ~1 s, once per worker
    # The cyclic garbage collector otherwise walks the imported modules' objects again and again (Dagster's
    # runs allocate many small containers): measured on the karst demo partition, 1765 collections took
    # 1.5 s; with the start-up objects frozen and fewer young-generation passes, 111 took 0.4 s.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def start_workers(max_workers: int | None = None) -> ProcessPoolExecutor:
    """The worker processes of ``materialize_all`` (one per core by default), started now.

    Each one imports the asset definitions as it starts (3-4 CPU s), so a caller that starts them before
    other work (``lsm demo`` before generating its data) does not wait for that when the runs begin.
    The caller shuts the pool down.
    """
    workers = max_workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init)
    for _ in range(workers):  # a spawn pool starts a process per task waiting for one
        pool.submit(os.getpid)
    return pool


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
                   run_config: dict | None, table: bool = False) -> RunOutcome:
    from lsm_assets.definitions import defs

    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return run_partition(defs, instance, data_root, partition_key, run_config, table=table)


def merge_run_config(base: dict | None, extra: dict | None) -> dict:
    """``extra`` run config over ``base`` (op by op, config field by field)."""
    ops = {k: {"config": dict(v.get("config", {}))} for k, v in (base or {}).get("ops", {}).items()}
    for op, v in (extra or {}).get("ops", {}).items():
        ops.setdefault(op, {"config": {}})["config"].update(v.get("config", {}))
    return {**(extra or {}), "ops": ops}


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, reg: Registration, data_root: str | Path,
                    areas: Sequence[str] | None = None, run_config: dict | None = None,
                    max_workers: int | None = None,
                    on_done: Callable[[RunOutcome], None] | None = None,
                    tables: Sequence[str] = (), pool: ProcessPoolExecutor | None = None) -> list[RunOutcome]:
    """Run area-only assets per area, then area x period assets per accepted (area, period), and
    ``sample_table_evaluation`` per sample table in ``tables``.

    ``run_config`` ({"ops": {asset: {"config": {...}}}}) tunes the area x period and table runs, e.g. fewer
    models in tests; each run gets the ops it has. ``max_workers``: worker processes (default: one per core);
    1, or an ephemeral instance that other processes cannot reach, runs everything here, one run after the
    other, with ``defs``. With workers, the runs use ``lsm_assets.definitions.defs``. ``on_done`` is called
    with each finished run (e.g. to move a progress bar). ``pool``: workers already started (``start_workers``;
    the caller shuts them down), else they are started and shut down here.
    """
    notify = on_done or (lambda _: None)
    areas = list(reg.areas if areas is None else areas)
    pairs = [str(area_period_key(a, p)) for a in areas for a2, p in reg.pairs if a2 == a]
    workers = max_workers or os.cpu_count() or 1
    if workers == 1 or instance.is_ephemeral:
        results = []
        for area in areas:
            for key in [area, *(k for k in pairs if k.endswith(f"|{area}"))]:
                results.append(run_partition(defs, instance, data_root, key, run_config if "|" in key else None))
                notify(results[-1])
        for name in tables:
            results.append(run_partition(defs, instance, data_root, name, run_config, table=True))
            notify(results[-1])
        return results

    pair_config = merge_run_config(SIDE_BY_SIDE_CONFIG, run_config)
    ref, root = instance.get_ref(), str(data_root)
    results: list[RunOutcome] = []
    runner = start_workers(workers) if pool is None else pool
    try:
        pending: dict[Future, str] = {runner.submit(_run_in_worker, ref, root, a, None): a for a in areas}
        pending |= {runner.submit(_run_in_worker, ref, root, t, run_config, True): f"table:{t}" for t in tables}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                results.append(fut.result())
                notify(results[-1])
                if "|" not in key and not key.startswith("table:"):  # an area is ready: its periods can start
                    pending |= {runner.submit(_run_in_worker, ref, root, k, pair_config): k for k in pairs
                                if k.endswith(f"|{key}")}
    finally:
        if pool is None:
            runner.shutdown()
    order = {k: i for i, k in enumerate([*areas, *pairs, *(f"table:{t}" for t in tables)])}
    return sorted(results, key=lambda r: order[f"table:{r.partition_key}" if r.table else r.partition_key])


def choose_runs(reg: Registration, areas: Sequence[str] = (), tables: Sequence[str] = ()
                ) -> tuple[list[str], list[str]]:
    """The study areas and sample tables ``lsm materialize --area ... --table ...`` runs: every one of both
    without a filter, else exactly those named (``--area`` alone runs no table, ``--table`` alone no area).

    ConfigError names an unknown name, and says so when an area name is a table's or the other way round.
    """
    from lsm_core.errors import ConfigError

    for names, known, other, what, other_what, flag, other_flag in (
            (areas, reg.areas, reg.tables, "study area", "sample table", "--area", "--table"),
            (tables, reg.tables, reg.areas, "sample table", "study area", "--table", "--area")):
        for name in names:
            if name in known:
                continue
            if name in other:
                raise ConfigError(f"{name!r} is not a {what} but a {other_what}: use {other_flag} {name}")
            raise ConfigError(f"unknown {what} {name!r} ({flag}; known: {', '.join(known) or 'none'})")
    if not areas and not tables:
        return list(reg.areas), list(reg.tables)
    return list(dict.fromkeys(areas)), list(dict.fromkeys(tables))
