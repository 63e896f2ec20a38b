"""The DuckDB catalog (``data/warehouse/lsm.duckdb``): landslide events and result tables.

The spatial extension is loaded from the ``duckdb-extension-spatial`` wheel, so nothing is
downloaded at run time (``INSTALL spatial`` needs the internet).

Every write is one transaction (``transaction``): a failed write leaves the tables as they were.
DuckDB lets one process at a time open the file for writing; writers open a short-lived
connection and wait their turn with a back-off (``connect``), so partitions materialized side by
side, the daemon's run queue and the sensors share the file without failing or losing rows.

Landslide events: ``landslide_events`` holds the newest revision of every (area, event id);
``landslide_event_revisions`` keeps every revision ever ingested (revision number, source file,
ingest time). A known id with another date or geometry is a correction: a new revision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_spatial
import geopandas as gpd
import pandas as pd
import shapely

__all__ = ["Correction", "EventChanges", "InventoryState", "append_events", "append_rows", "connect", "event_revisions",
           "inventory_state", "read_events", "replace_partition_rows", "spatial_extension_path", "transaction",
           "upsert_events"]

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS landslide_events (
    area        VARCHAR NOT NULL,
    event_id    VARCHAR NOT NULL,
    event_date  DATE NOT NULL,
    init_point  GEOMETRY NOT NULL,
    polygon     GEOMETRY,
    source_file VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    revision    INTEGER DEFAULT 1,
    PRIMARY KEY (area, event_id)
)
"""

REVISIONS_DDL = """
CREATE TABLE IF NOT EXISTS landslide_event_revisions (
    area        VARCHAR NOT NULL,
    event_id    VARCHAR NOT NULL,
    revision    INTEGER NOT NULL,
    event_date  DATE NOT NULL,
    init_point  GEOMETRY NOT NULL,
    polygon     GEOMETRY,
    source_file VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    PRIMARY KEY (area, event_id, revision)
)
"""

# Coordinates closer than this (area CRS units, metres) are the same geometry: re-reading and
# reprojecting one file must not look like a correction.
GEOMETRY_TOLERANCE = 1e-3


def spatial_extension_path() -> Path:
    """Path of the spatial extension shipped in the duckdb-extension-spatial wheel."""
    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    return root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


LOCK_TIMEOUT_S = 120.0


def _create_if_missing(path: Path) -> None:
    """Create the catalog file atomically, with its schema, unless it exists.

    DuckDB writes a new file's header after creating it, so a second process opening the path in
    between reads "not a valid DuckDB database file". The file is built under a private name and
    hard-linked into place: the link fails when another process got there first, and no process
    ever sees a half-written catalog.
    """
    if path.exists():
        return
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}.creating")
    try:
        with contextlib.closing(duckdb.connect(str(scratch))) as con, transaction(con):
            _ensure_schema(con)
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
            leftover.unlink(missing_ok=True)


def _open(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting while another process holds DuckDB's write lock.

    DuckDB lets one process at a time open a file for writing. Partitions materialized side by
    side each hold the catalog for one short transaction, so a writer waits its turn instead of failing.
    """
    deadline, pause = time.monotonic() + timeout_s, 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False, timeout_s: float = LOCK_TIMEOUT_S, *,
            spatial: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the spatial extension loaded and the schema in place.

    Waits up to ``timeout_s`` seconds while another process holds the file's lock. Keep it open
    only for one write (or read): other processes wait while it is open. ``spatial=False`` skips
    loading the extension, for work without ST_ functions (the tables of the learning and zoning
    assets): DuckDB checks the extension's signature on every load, about 0.2 s of CPU a
    connection, while the GEOMETRY type itself is built in.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not read_only:
        _create_if_missing(path)
    con = _open(path, read_only, timeout_s)
    try:
        if spatial:
            con.execute(f"LOAD '{spatial_extension_path()}'")
        if not read_only:
            with transaction(con):
                _ensure_schema(con)
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back (nothing changed) when it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(EVENTS_DDL)
    con.execute(REVISIONS_DDL)
    have = {r[0] for r in con.execute("DESCRIBE landslide_events").fetchall()}
    if "revision" not in have:  # a catalog from before revisions: its rows become revision 1
        con.execute("ALTER TABLE landslide_events ADD COLUMN revision INTEGER DEFAULT 1")
        con.execute("""INSERT INTO landslide_event_revisions
                       SELECT area, event_id, 1, event_date, init_point, polygon, source_file, ingested_at
                       FROM landslide_events""")


@dataclass(frozen=True)
class Correction:
    """A known event id that came with another date or geometry: its new revision."""

    event_id: str
    old_revision: int
    new_revision: int
    changed: tuple[str, ...]  # "date" and/or "geometry"
    old_date: dt.date
    new_date: dt.date

    def __str__(self) -> str:
        what = " and ".join(self.changed)
        dates = f" ({self.old_date} -> {self.new_date})" if "date" in self.changed else ""
        return f"{self.event_id}: {what}{dates}, revision {self.old_revision} -> {self.new_revision}"


@dataclass(frozen=True)
class EventChanges:
    """What one ingest of an inventory did to the catalog."""

    added: tuple[str, ...]
    corrected: tuple[Correction, ...]
    unchanged: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.corrected)

    def summary(self) -> str:
        text = f"{len(self.added)} new, {len(self.corrected)} corrected, {self.unchanged} unchanged"
        return text + "".join(f"\n  corrected {c}" for c in self.corrected)


def _same_geometry(a_wkb, b_wkb) -> bool:
    if a_wkb is None or b_wkb is None:
        return a_wkb is None and b_wkb is None
    a, b = shapely.from_wkb(bytes(a_wkb)), shapely.from_wkb(bytes(b_wkb))
    return bool(a.equals_exact(b, GEOMETRY_TOLERANCE) or a.equals(b))


def _same(a: tuple, b: tuple) -> tuple[str, ...]:
    """What differs between two (date, init_wkb, poly_wkb) versions of an event."""
    changed = []
    if a[0] != b[0]:
        changed.append("date")
    if not (_same_geometry(a[1], b[1]) and _same_geometry(a[2], b[2])):
        changed.append("geometry")
    return tuple(changed)


def upsert_events(con: duckdb.DuckDBPyConnection, area: str, events: gpd.GeoDataFrame, source_file: str,
                  ingested_at: dt.datetime | None = None) -> EventChanges:
    """Add new events and new revisions of corrected ones, in one transaction; returns what changed.

    ``events`` as from ``inventory.read_inventory`` (area CRS). The same event again (same id, date
    and geometry) changes nothing. A known id with another date or geometry gets a new revision,
    which becomes the one used, unless ``source_file`` itself already delivered exactly this
    version (re-reading an old file does not undo a later correction).
    """
    ingested_at = ingested_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if events.empty:
        return EventChanges((), (), 0)
    polygons = [g if g.geom_type in ("Polygon", "MultiPolygon") else None for g in events.geometry]
    incoming = pd.DataFrame({
        "event_id": events["event_id"].astype(str).to_numpy(),
        "event_date": pd.to_datetime(events["event_date"]).dt.date.to_numpy(),
        "init_wkb": shapely.to_wkb(shapely.points(events["init_x"].astype(float), events["init_y"].astype(float))),
        "poly_wkb": [None if g is None else shapely.to_wkb(g) for g in polygons],
    })
    with transaction(con):
        current = {r[0]: r[1:] for r in con.execute(
            """SELECT event_id, event_date, ST_AsWKB(init_point), ST_AsWKB(polygon), revision
               FROM landslide_events WHERE area = ?""", [area]).fetchall()}
        from_source: dict[str, list[tuple]] = {}
        for r in con.execute("""SELECT event_id, event_date, ST_AsWKB(init_point), ST_AsWKB(polygon)
                                FROM landslide_event_revisions WHERE area = ? AND source_file = ?""",
                             [area, source_file]).fetchall():
            from_source.setdefault(r[0], []).append(r[1:])
        rows, added, corrected, unchanged = [], [], [], 0
        for ev in incoming.itertuples(index=False):
            version = (ev.event_date, ev.init_wkb, ev.poly_wkb)
            old = current.get(ev.event_id)
            if old is None:
                added.append(ev.event_id)
                rows.append((ev.event_id, 1, *version))
                continue
            changed = _same(old[:3], version)
            if not changed or any(not _same(v, version) for v in from_source.get(ev.event_id, [])):
                unchanged += 1
                continue
            rev = int(old[3] or 1) + 1
            corrected.append(Correction(ev.event_id, int(old[3] or 1), rev, changed, old[0], ev.event_date))
            rows.append((ev.event_id, rev, *version))
        if rows:
            _write_revisions(con, area, rows, source_file, ingested_at)
    return EventChanges(tuple(added), tuple(corrected), unchanged)


def _write_revisions(con: duckdb.DuckDBPyConnection, area: str, rows: list[tuple], source_file: str,
                     ingested_at: dt.datetime) -> None:
    df = pd.DataFrame(rows, columns=["event_id", "revision", "event_date", "init_wkb", "poly_wkb"]).assign(
        area=area, source_file=source_file, ingested_at=ingested_at)
    con.register("incoming_events", df)
    try:
        con.execute("""INSERT INTO landslide_event_revisions
                       SELECT area, event_id, revision, event_date, ST_GeomFromWKB(init_wkb),
                              CASE WHEN poly_wkb IS NULL THEN NULL ELSE ST_GeomFromWKB(poly_wkb) END,
                              source_file, ingested_at FROM incoming_events""")
        # the newest revision is the one used: update known ids in place, insert new ones
        con.execute("""UPDATE landslide_events AS e SET event_date = r.event_date, init_point = r.init_point,
                              polygon = r.polygon, source_file = r.source_file, ingested_at = r.ingested_at,
                              revision = r.revision
                       FROM landslide_event_revisions AS r, incoming_events AS i
                       WHERE r.area = ? AND r.event_id = i.event_id AND r.revision = i.revision
                         AND e.area = r.area AND e.event_id = r.event_id AND i.revision > 1""", [area])
        con.execute("""INSERT INTO landslide_events
                       SELECT area, event_id, event_date, ST_GeomFromWKB(init_wkb),
                              CASE WHEN poly_wkb IS NULL THEN NULL ELSE ST_GeomFromWKB(poly_wkb) END,
                              source_file, ingested_at, revision FROM incoming_events WHERE revision = 1""")
    finally:
        con.unregister("incoming_events")


def append_events(con: duckdb.DuckDBPyConnection, area: str, events: gpd.GeoDataFrame, source_file: str,
                  ingested_at: dt.datetime | None = None) -> int:
    """``upsert_events``, returning only the number of new events (older callers)."""
    return len(upsert_events(con, area, events, source_file, ingested_at).added)


def read_events(con: duckdb.DuckDBPyConnection, area: str, crs: str, *, before: dt.date | None = None,
                after: dt.date | None = None) -> gpd.GeoDataFrame:
    """Events of ``area`` in their newest revision (optionally dated on/before ``before`` or strictly
    after ``after``), polygon geometry. Point-only events keep their initiation point as geometry.
    """
    sql = """SELECT event_id, event_date, ST_X(init_point) AS init_x, ST_Y(init_point) AS init_y,
                    ST_AsWKB(coalesce(polygon, init_point)) AS wkb, source_file, ingested_at,
                    coalesce(revision, 1) AS revision
             FROM landslide_events WHERE area = ?"""
    params: list = [area]
    if before is not None:
        sql += " AND event_date <= ?"
        params.append(before)
    if after is not None:
        sql += " AND event_date > ?"
        params.append(after)
    df = con.execute(sql + " ORDER BY event_date, event_id", params).df()
    geom = shapely.from_wkb([bytes(b) for b in df.pop("wkb")]) if len(df) else []
    return gpd.GeoDataFrame(df, geometry=geom, crs=crs)


def event_revisions(con: duckdb.DuckDBPyConnection, area: str, event_id: str | None = None) -> pd.DataFrame:
    """Every revision of the area's events (or one event): id, revision, date, WKT geometry, source, ingest time."""
    sql = """SELECT event_id, revision, event_date, ST_AsText(init_point) AS init_point,
                    ST_AsText(polygon) AS polygon, source_file, ingested_at
             FROM landslide_event_revisions WHERE area = ?"""
    params: list = [area]
    if event_id is not None:
        sql += " AND event_id = ?"
        params.append(event_id)
    return con.execute(sql + " ORDER BY event_id, revision", params).df()


@dataclass(frozen=True)
class InventoryState:
    """The inventory state of an area: event count, latest event date, latest ingest time, revision count."""

    n_events: int  # current events (one per event id)
    latest_event_date: dt.date | None  # None without events
    latest_ingest: dt.datetime | None  # UTC, None without events
    n_revisions: int  # all revisions (a correction raises it without adding events)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def inventory_state(con: duckdb.DuckDBPyConnection, area: str) -> InventoryState:
    """The inventory state an evaluation used: event count, latest event date, latest ingest time,
    and how many revisions exist (a correction raises it without adding events)."""
    row = con.execute("SELECT count(*), max(event_date), max(ingested_at) FROM landslide_events WHERE area = ?",
                      [area]).fetchone()
    rev = con.execute("SELECT count(*) FROM landslide_event_revisions WHERE area = ?", [area]).fetchone()
    assert row is not None and rev is not None  # aggregates always return one row
    n, last_event, last_ingest = row
    n_rev = rev[0]
    return InventoryState(n_events=int(n), latest_event_date=last_event, latest_ingest=last_ingest,
                          n_revisions=int(n_rev))


def _create_or_widen(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create ``table`` from the registered ``incoming_rows`` or add the columns it lacks (older catalogs)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM incoming_rows LIMIT 0")
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    for name, dtype, *_ in con.execute("DESCRIBE incoming_rows").fetchall():
        if name not in have:  # rows written before the column existed read as NULL
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {dtype}')


def replace_partition_rows(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame, area: str,
                           period: str) -> int:
    """Replace the rows of one (area, period) in a result table (created from ``df`` on first use).

    One transaction: if the insert fails, the partition keeps its old rows.
    """
    df = df.assign(area=area, period=period)
    con.register("incoming_rows", df)
    try:
        with transaction(con):
            _create_or_widen(con, table)
            con.execute(f"DELETE FROM {table} WHERE area = ? AND period = ?", [area, period])
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
    finally:
        con.unregister("incoming_rows")
    return len(df)


def append_rows(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame) -> int:
    """Append rows to a history table (created from ``df`` on first use), in one transaction; nothing is deleted."""
    con.register("incoming_rows", df)
    try:
        with transaction(con):
            _create_or_widen(con, table)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
    finally:
        con.unregister("incoming_rows")
    return len(df)
