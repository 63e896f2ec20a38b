"""Partitions (DESIGN 3): dynamic study areas x dynamic monitoring periods."""

from __future__ import annotations

import dagster as dg

STUDY_AREA = "study_area"
PERIOD = "period"

study_area_partitions = dg.DynamicPartitionsDefinition(name=STUDY_AREA)
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
