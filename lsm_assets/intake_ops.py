"""The intake steps shared by the sensors and the ``lsm deliver-insar`` / ``lsm ingest-events`` commands.

The validation, versioning and revision logic lives in ``lsm_core.intake`` and
``lsm_core.event_intake``; this module only connects it to the Dagster instance (partitions, which
partitions are materialized) and names the assets an intake makes stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from lsm_assets.partitions import PERIOD, STUDY_AREA, area_of, area_period_key, period_of
from lsm_assets.registry import area_grids
from lsm_core.event_intake import InventoryRecord, intake_inventory_file
from lsm_core.intake import ArchivedDelivery, intake_delivery

# An inventory update changes what POR/LOR and the prediction-rate AUC score (the later events).
EVALUATION_ASSETS = ["prone_area_evaluation", "model_comparison"]
# A re-delivered period changes the velocity and everything computed from it.
DEFORMATION_ROOT = "deformation_rate"


@dataclass(frozen=True)
class DeliveryOutcome:
    """One delivery taken in: the archived version, or (quarantined folder, reason)."""

    accepted: ArchivedDelivery | None = None
    rejected: tuple[Path, str] | None = None

    @property
    def partition_key(self) -> str:
        d = self.accepted.delivery
        return str(area_period_key(d.area, d.period))


@dataclass(frozen=True)
class EventsOutcome:
    """One inventory file taken in: its record, or (quarantined file, reason); the evaluations it makes stale."""

    accepted: InventoryRecord | None = None
    rejected: tuple[Path, str] | None = None
    evaluation_keys: list[str] = field(default_factory=list)


def deliver_insar(instance: dg.DagsterInstance, data_root: str | Path, folder: str | Path,
                  area: str) -> DeliveryOutcome:
    """Validate and archive one delivery folder (copied, not moved) and register its period partition."""
    grids, broken = area_grids(data_root)
    if area in broken:
        return DeliveryOutcome(rejected=(Path(folder), broken[area]))
    out = intake_delivery(folder, area, data_root, grids, copy=True)
    if not isinstance(out, ArchivedDelivery):
        return DeliveryOutcome(rejected=out)
    for name, key in ((STUDY_AREA, area), (PERIOD, out.delivery.period)):
        if not instance.has_dynamic_partition(name, key):
            instance.add_dynamic_partitions(name, [key])
    return DeliveryOutcome(accepted=out)


def ingest_events(instance: dg.DagsterInstance, data_root: str | Path, file: str | Path, area: str,
                  catalog_path: str | Path) -> EventsOutcome:
    """Validate one inventory file (copied, not moved), add its events to the catalog with revisions, archive it."""
    grids, broken = area_grids(data_root)
    if area in broken:
        return EventsOutcome(rejected=(Path(file), broken[area]))
    out = intake_inventory_file(file, area, data_root, grids, catalog_path, copy=True)
    if not isinstance(out, InventoryRecord):
        return EventsOutcome(rejected=out)
    return EventsOutcome(accepted=out, evaluation_keys=evaluated_partitions(instance, area))


def evaluated_partitions(instance: dg.DagsterInstance, area: str) -> list[str]:
    """Area x period keys of ``area`` whose prone areas exist, so their evaluation can be re-run.

    A period that was never mapped (no delivery, or its first run still pending) is left to that
    first run, which reads the catalog as it is then.
    """
    done = instance.get_materialized_partitions(dg.AssetKey("prone_areas"))
    return sorted(str(area_period_key(area_of(k), period_of(k))) for k in done if area_of(k) == area)


def deformation_source(instance: dg.DagsterInstance, partition_key: str) -> str | None:
    """The delivery folder the latest ``deformation_rate`` of ``partition_key`` was computed from, if any."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(DEFORMATION_ROOT), asset_partitions=[partition_key]), limit=1)
    if not records.records:
        return None
    meta = records.records[0].asset_materialization.metadata
    return str(meta["delivery"].value) if "delivery" in meta else None
