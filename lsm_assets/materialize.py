"""Materialize the asset graph for every registered partition, area-only assets first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from lsm_assets.partitions import area_period_key, area_period_partitions, study_area_partitions
from lsm_assets.registry import Registration


def resources_for(data_root: str | Path) -> dict:
    """The Definitions' resources, pointed at ``data_root``."""
    from lsm_assets.io_managers import CogIOManager, GridIOManager, TableIOManager
    from lsm_assets.resources import DuckDBCatalog, LsmPaths

    root = str(data_root)
    return {"paths": LsmPaths(data_root=root),
            "lsm_catalog": DuckDBCatalog(path=str(Path(root) / "warehouse" / "lsm.duckdb")),
            "cog_io_manager": CogIOManager(data_root=root),
            "table_io_manager": TableIOManager(data_root=root),
            "grid_io_manager": GridIOManager(data_root=root)}


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, reg: Registration, data_root: str | Path,
                    areas: Sequence[str] | None = None, run_config: dict | None = None,
                    ) -> list[dg.ExecuteInProcessResult]:
    """Run area-only assets per area, then area x period assets per accepted (area, period).

    ``run_config`` ({"ops": {asset: {"config": {...}}}}) tunes the area x period runs, e.g. fewer models in tests.
    """
    assets = list(defs.assets or [])
    area_keys = [k for a in assets for k in a.keys if a.partitions_def == study_area_partitions]
    pair_keys = [k for a in assets for k in a.keys if a.partitions_def == area_period_partitions]
    resources = resources_for(data_root)
    results = []
    for area in areas or reg.areas:
        if area_keys:
            results.append(dg.materialize(assets, selection=area_keys, partition_key=area, instance=instance,
                                          resources=resources))
        for a, period in reg.pairs:
            if a == area and pair_keys:
                results.append(dg.materialize(assets, selection=pair_keys, instance=instance, resources=resources,
                                              partition_key=str(area_period_key(area, period)),
                                              run_config=run_config))
    return results
