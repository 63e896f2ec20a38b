"""The state of a data root at a glance: areas, their periods, what is stale and what sits in quarantine.

A partition (area, period) is stale when it has never been evaluated, when the area's inventory
changed after its last evaluation (new or corrected events: POR / LOR are out of date), or when a
newer delivery version of its period was accepted after that evaluation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lsm_core.area import discover_areas
from lsm_core.intake import current_versions

__all__ = ["DataStatus", "Quarantined", "StalePartition", "data_status"]


@dataclass(frozen=True)
class StalePartition:
    area: str
    period: str
    reason: str


@dataclass(frozen=True)
class Quarantined:
    path: str  # relative to the data root
    reason: str


@dataclass(frozen=True)
class DataStatus:
    """Areas, their accepted periods, stale partitions (with why) and quarantined files (with why)."""

    areas: list[str]
    periods: dict[str, list[str]]
    stale: list[StalePartition] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_utc(value: Any) -> dt.datetime | None:
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _last_evaluations(con: duckdb.DuckDBPyConnection | None) -> dict[tuple[str, str], dt.datetime | None]:
    if con is None:
        return {}
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "prone_area_evaluation" not in tables:
        return {}
    rows = con.execute("SELECT area, period, max(evaluated_at) FROM prone_area_evaluation GROUP BY 1, 2").fetchall()
    return {(a, p): _as_utc(t) for a, p, t in rows}


def _latest_ingest(con: duckdb.DuckDBPyConnection | None, area: str) -> dt.datetime | None:
    if con is None:
        return None
    try:
        row = con.execute("SELECT max(ingested_at) FROM landslide_events WHERE area = ?", [area]).fetchone()
        return _as_utc(row[0]) if row else None
    except duckdb.CatalogException:  # no inventory ingested yet
        return None


def quarantined_files(data_root: str | Path) -> list[Quarantined]:
    """Everything in ``quarantine/`` with the reason written beside it (``<name>.reason.txt``)."""
    root = Path(data_root)
    q = root / "quarantine"
    out = []
    for reason_file in sorted(q.rglob("*.reason.txt")) if q.exists() else []:
        item = reason_file.with_name(reason_file.name.removesuffix(".reason.txt"))
        out.append(Quarantined(str(item.relative_to(root)), reason_file.read_text().strip()))
    return out


def data_status(data_root: str | Path, con: duckdb.DuckDBPyConnection | None) -> DataStatus:
    """The status of ``data_root``; ``con``: the catalog (None when it does not exist yet)."""
    areas = discover_areas(Path(data_root) / "study_areas")
    evaluated = _last_evaluations(con)
    periods: dict[str, list[str]] = {}
    stale: list[StalePartition] = []
    for area in areas:
        versions = {v.delivery.period: v for v in current_versions(data_root, area)}
        periods[area] = sorted(versions)
        ingest = _latest_ingest(con, area)
        for period, version in sorted(versions.items()):
            last = evaluated.get((area, period))
            accepted = _as_utc(version.accepted_at)
            if last is None:
                stale.append(StalePartition(area, period, "never evaluated"))
            elif ingest is not None and ingest > last:
                stale.append(StalePartition(area, period, f"inventory changed at {ingest:%Y-%m-%d %H:%M} UTC, "
                                            f"after the last evaluation ({last:%Y-%m-%d %H:%M} UTC)"))
            elif accepted is not None and accepted > last:
                stale.append(StalePartition(area, period, f"delivery version {version.version} accepted at "
                                            f"{accepted:%Y-%m-%d %H:%M} UTC, after the last evaluation"))
    return DataStatus(areas, periods, stale, quarantined_files(data_root))
