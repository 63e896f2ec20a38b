"""Register study areas and monitoring periods as dynamic partitions, from the data folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from lsm_assets.partitions import PERIOD, STUDY_AREA
from lsm_core.area import discover_areas
from lsm_core.intake import archived_deliveries, intake_deliveries


@dataclass(frozen=True)
class Registration:
    """Areas and periods known after a registration pass, and what intake accepted or rejected."""

    areas: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # (area, period) with an accepted delivery
    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]  # (quarantined folder, reason)

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(sorted({p for _, p in self.pairs}))


def register(instance: dg.DagsterInstance, data_root: str | Path) -> Registration:
    """Take in dropped deliveries, then add every area and accepted period as a dynamic partition."""
    data_root = Path(data_root)
    areas = discover_areas(data_root / "study_areas")
    result = intake_deliveries(data_root, set(areas))
    pairs = tuple((d.area, d.period) for d in archived_deliveries(data_root) if d.area in areas)
    _add(instance, STUDY_AREA, areas)
    _add(instance, PERIOD, sorted({p for _, p in pairs}))
    return Registration(tuple(areas), pairs, tuple(str(d.folder) for d in result.accepted),
                        tuple((str(p), r) for p, r in result.rejected))


def _add(instance: dg.DagsterInstance, name: str, keys: list[str]) -> None:
    new = [k for k in keys if not instance.has_dynamic_partition(name, k)]
    if new:
        instance.add_dynamic_partitions(name, new)
