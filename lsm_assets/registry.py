"""Register study areas and monitoring periods as dynamic partitions, from the data folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from lsm_assets.partitions import PERIOD, SAMPLE_TABLE, STUDY_AREA
from lsm_core.area import discover_areas, load_area
from lsm_core.area_scope import declared_periods
from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid
from lsm_core.intake import archived_deliveries, intake_deliveries
from lsm_core.table_registry import discover_tables


@dataclass(frozen=True)
class Registration:
    """Areas and periods known after a registration pass, and what intake accepted or rejected."""

    areas: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # (area, period) with an accepted delivery
    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]  # (quarantined folder, reason)
    tables: tuple[str, ...] = ()  # sample tables registered with `lsm add-table`

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(sorted({p for _, p in self.pairs}))


def register(instance: dg.DagsterInstance, data_root: str | Path, settle_s: float = 0.0) -> Registration:
    """Take in dropped deliveries, then add every area, accepted or declared period and registered sample table
    as a dynamic partition.

    ``settle_s`` 0: a command run by hand judges every delivery now (the sensor waits for drops to settle).
    """
    data_root = Path(data_root)
    areas = discover_areas(data_root / "study_areas")
    grids, broken = area_grids(data_root)
    result = intake_deliveries(data_root, grids, settle_s=settle_s, broken_areas=broken)
    pairs = known_pairs(data_root, areas)
    _add(instance, STUDY_AREA, areas)
    _add(instance, PERIOD, sorted({p for _, p in pairs}))
    tables = discover_tables(data_root)
    _add(instance, SAMPLE_TABLE, tables)
    return Registration(tuple(areas), pairs, tuple(str(v.delivery.folder) for v in result.accepted),
                        tuple((str(p), r) for p, r in result.rejected), tuple(tables))


def area_grids(data_root: str | Path) -> tuple[dict[str, AreaGrid], dict[str, str]]:
    """The grid of every study area under ``data_root/study_areas``, and why the others' area.yaml is unusable."""
    root = Path(data_root) / "study_areas"
    grids, broken = {}, {}
    for area in discover_areas(root):
        try:
            grids[area] = load_area(root / area).grid
        except ConfigError as exc:
            broken[area] = f"held until area.yaml is fixed: {exc}"
    return grids, broken


def known_pairs(data_root: str | Path, areas: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(area, period) of every accepted delivery of a known area, and of every period an area.yaml declares
    (areas without InSAR)."""
    pairs = {(d.area, d.period) for d in archived_deliveries(data_root) if d.area in areas}
    pairs |= {(a, p) for a in areas for p in declared_periods(Path(data_root) / "study_areas" / a)}
    return tuple(sorted(pairs))


def new_partitions_requests(instance: dg.DagsterInstance, areas: list[str],
                            periods: list[str]) -> list[dg.AddDynamicPartitionsRequest]:
    """Requests that add the areas and periods the instance does not know yet (for a SensorResult)."""
    out = []
    for name, keys in ((STUDY_AREA, areas), (PERIOD, periods)):
        new = sorted({k for k in keys if not instance.has_dynamic_partition(name, k)})
        if new:
            out.append(dg.AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=new))
    return out


def _add(instance: dg.DagsterInstance, name: str, keys: list[str]) -> None:
    new = [k for k in keys if not instance.has_dynamic_partition(name, k)]
    if new:
        instance.add_dynamic_partitions(name, new)
