"""Partitions (DESIGN 3): dynamic study areas x dynamic monitoring periods.

Periods are each area's own (an InSAR delivery's months), so the area x period grid holds
combinations that can never exist (karst has no delivery for loess's periods). An area without InSAR
declares its periods in area.yaml (``periods``, written by ``lsm add-area``). They are not
errors: the period assets' roots (``environment_factors``, ``deformation_rate``) skip them with
``skip_missing_combination``, which logs the reason and records it as an observation of the
partition, and Dagster then skips everything downstream. "Materialize all" and backfills finish
green, and the combination's page says why it stays empty. Sensors and schedules never ask for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from lsm_core.area_scope import declared_periods
from lsm_core.intake import current_versions

STUDY_AREA = "study_area"
PERIOD = "period"

SAMPLE_TABLE = "sample_table"

study_area_partitions = dg.DynamicPartitionsDefinition(name=STUDY_AREA)
# table mode: one partition per sample table registered with `lsm add-table` (data/tables/<name>.yaml)
sample_table_partitions = dg.DynamicPartitionsDefinition(name=SAMPLE_TABLE)
period_partitions = dg.DynamicPartitionsDefinition(name=PERIOD)
area_period_partitions = dg.MultiPartitionsDefinition({PERIOD: period_partitions, STUDY_AREA: study_area_partitions})


def area_of(key: str | dg.MultiPartitionKey) -> str:
    """The study area of a partition key (area-only or area x period)."""
    return key.keys_by_dimension[STUDY_AREA] if isinstance(key, dg.MultiPartitionKey) else _split(key)[0]


def period_of(key: str | dg.MultiPartitionKey) -> str | None:
    """The monitoring period of a partition key, or None for area-only partitions."""
    return key.keys_by_dimension[PERIOD] if isinstance(key, dg.MultiPartitionKey) else _split(key)[1]


def _split(key: str) -> tuple[str, str | None]:
    # multi-partition keys arrive as plain strings in some contexts: "<period>|<area>" (alphabetical dimensions)
    if "|" in key:
        period, area = key.split("|")
        return area, period
    return key, None


def area_period_key(area: str, period: str) -> dg.MultiPartitionKey:
    """The multi-partition key of an area and a period."""
    return dg.MultiPartitionKey({STUDY_AREA: area, PERIOD: period})


def missing_combination_reason(data_root: str | Path, area: str, period: str) -> str | None:
    """Why (area, period) can never be computed (no accepted InSAR delivery of the area for it and not one of
    the periods its area.yaml declares), else None."""
    periods = sorted({v.delivery.period for v in current_versions(data_root, area)})
    declared = declared_periods(Path(data_root) / "study_areas" / area)
    if period in periods or period in declared:
        return None
    return (f"not applicable: study area {area!r} has no accepted InSAR delivery for period {period!r} "
            f"(its periods: {', '.join(periods + declared) or 'none'}); skipped, with everything downstream")


def no_insar_reason(data_root: str | Path, area: str, period: str) -> str | None:
    """Why (area, period), a period the area declares, has no deformation layer (no InSAR delivery), else None."""
    if any(v.delivery.period == period for v in current_versions(data_root, area)):
        return None
    return (f"no InSAR: study area {area!r} has no accepted InSAR delivery for period {period!r} (a period its "
            "area.yaml declares); the velocity is left out of the factor stack and InSAR-PU is skipped")


def skip_missing_combination(context: dg.AssetExecutionContext, reason: str) -> Iterator[dg.AssetObservation]:
    """Log why this partition is skipped and record it on the partition (an observation, not a materialization)."""
    context.log.warning(reason)
    yield dg.AssetObservation(asset_key=context.asset_key, partition=context.partition_key,
                              metadata={"status": "not applicable", "reason": reason})
