"""The state of a data root at a glance: areas, their periods, sample tables, what is stale and what sits in
quarantine.

A partition (area, period) is stale when it has never been evaluated, when the area's inventory
changed after its last evaluation (new or corrected events: POR / LOR are out of date), or when a
newer delivery version of its period was accepted after that evaluation. Periods are those of the
accepted deliveries and those an area.yaml declares (areas without InSAR). A sample table registered
with ``lsm add-table`` is stale when it was never evaluated, or when its table file, its external
table or its spec changed since (the SHA-256 each evaluation recorded in the catalog).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lsm_core.area import discover_areas
from lsm_core.area_scope import declared_periods
from lsm_core.errors import LsmError
from lsm_core.intake import current_versions
from lsm_core.table_registry import FINGERPRINT_COLUMNS, discover_tables, input_fingerprint, load_spec

__all__ = ["DataStatus", "Quarantined", "StalePartition", "TableState", "data_status", "table_states"]


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
class TableState:
    """A registered sample table: its file, when it was last evaluated (UTC, None: never) and whether stale (why)."""

    name: str
    table: str
    last_evaluated: dt.datetime | None
    stale: bool
    reason: str  # "up to date", or why it is stale


@dataclass(frozen=True)
class DataStatus:
    """Areas, their periods, stale partitions (with why), sample tables and quarantined files (with why)."""

    areas: list[str]
    periods: dict[str, list[str]]
    stale: list[StalePartition] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    tables: list[TableState] = field(default_factory=list)

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
        declared = declared_periods(Path(data_root) / "study_areas" / area)  # areas without InSAR
        periods[area] = sorted(set(versions) | set(declared))
        ingest = _latest_ingest(con, area)
        for period in periods[area]:
            version = versions.get(period)
            last = evaluated.get((area, period))
            accepted = None if version is None else _as_utc(version.accepted_at)
            if last is None:
                stale.append(StalePartition(area, period, "never evaluated"))
            elif ingest is not None and ingest > last:
                stale.append(StalePartition(area, period, f"inventory changed at {ingest:%Y-%m-%d %H:%M} UTC, "
                                            f"after the last evaluation ({last:%Y-%m-%d %H:%M} UTC)"))
            elif version is not None and accepted is not None and accepted > last:
                stale.append(StalePartition(area, period, f"delivery version {version.version} accepted at "
                                            f"{accepted:%Y-%m-%d %H:%M} UTC, after the last evaluation"))
    return DataStatus(areas, periods, stale, quarantined_files(data_root), table_states(data_root, con))


def _table_evaluations(con: duckdb.DuckDBPyConnection | None) -> dict[str, dict[str, Any]]:
    """Per table: the last evaluation's time and fingerprint (columns missing in older catalogs read as None)."""
    if con is None:
        return {}
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "sample_table_evaluation" not in tables:
        return {}
    have = {r[0] for r in con.execute("DESCRIBE sample_table_evaluation").fetchall()}
    cols = ["evaluated_at", *FINGERPRINT_COLUMNS]
    select = ", ".join(f"max({c})" if c in have else "NULL" for c in cols)
    rows = con.execute(f"SELECT area, {select} FROM sample_table_evaluation GROUP BY area").fetchall()
    return {r[0]: dict(zip(cols, r[1:], strict=True)) for r in rows}


def table_states(data_root: str | Path, con: duckdb.DuckDBPyConnection | None) -> list[TableState]:
    """Every registered sample table with its last evaluation and whether it is stale (never evaluated, or
    its table file, external table or spec changed since: the SHA-256 recorded with the evaluation differs)."""
    last = _table_evaluations(con)
    out = []
    for name in discover_tables(data_root):
        row = last.get(name)
        try:
            spec = load_spec(data_root, name)
        except LsmError as exc:
            out.append(TableState(name, "", _as_utc(row and row["evaluated_at"]), True, f"spec unusable: {exc}"))
            continue
        if row is None:
            out.append(TableState(name, spec.table, None, True, "never evaluated"))
            continue
        now = input_fingerprint(data_root, spec)
        changed = [what for col, what in FINGERPRINT_COLUMNS.items() if now[col] != row[col]]
        at = _as_utc(row["evaluated_at"])
        if row["table_sha256"] is None:
            reason = "evaluated before input fingerprints were recorded: re-run to be sure"
        elif now["table_sha256"] is None:
            reason = f"table file missing: {spec.table}"
        elif changed:
            reason = f"{', '.join(changed)} changed since the last evaluation"
        else:
            reason = "up to date"
        out.append(TableState(name, spec.table, at, reason != "up to date", reason))
    return out
