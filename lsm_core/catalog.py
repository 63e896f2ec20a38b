"""The DuckDB catalog (``data/warehouse/lsm.duckdb``): landslide events and result tables.

The spatial extension is loaded from the ``duckdb-extension-spatial`` wheel, so nothing is
downloaded at run time (``INSTALL spatial`` needs the internet).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import duckdb_extension_spatial
import geopandas as gpd
import pandas as pd
import shapely

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS landslide_events (
    area        VARCHAR NOT NULL,
    event_id    VARCHAR NOT NULL,
    event_date  DATE NOT NULL,
    init_point  GEOMETRY NOT NULL,
    polygon     GEOMETRY,
    source_file VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    PRIMARY KEY (area, event_id)
)
"""


def spatial_extension_path() -> Path:
    """Path of the spatial extension shipped in the duckdb-extension-spatial wheel."""
    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    return root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


LOCK_TIMEOUT_S = 120.0


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
def connect(path: str | Path, read_only: bool = False,
            timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the spatial extension loaded and the schema in place.

    Waits up to ``timeout_s`` seconds while another process holds the file's lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, timeout_s)
    try:
        con.execute(f"LOAD '{spatial_extension_path()}'")
        if not read_only:
            con.execute(EVENTS_DDL)
        yield con
    finally:
        con.close()


def append_events(con: duckdb.DuckDBPyConnection, area: str, events: gpd.GeoDataFrame, source_file: str,
                  ingested_at: dt.datetime | None = None) -> int:
    """Insert events not yet in the table (same area and event id are kept once); returns rows added."""
    if events.empty:
        return 0
    ingested_at = ingested_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    polygons = [g if g.geom_type in ("Polygon", "MultiPolygon") else None for g in events.geometry]
    df = pd.DataFrame({
        "area": area,
        "event_id": events["event_id"].astype(str).to_numpy(),
        "event_date": pd.to_datetime(events["event_date"]).dt.date.to_numpy(),
        "init_wkb": shapely.to_wkb(shapely.points(events["init_x"], events["init_y"])),
        "poly_wkb": [None if g is None else shapely.to_wkb(g) for g in polygons],
        "source_file": source_file,
        "ingested_at": ingested_at,
    })
    before = con.execute("SELECT count(*) FROM landslide_events WHERE area = ?", [area]).fetchone()[0]
    con.register("incoming_events", df)
    con.execute("""
        INSERT OR IGNORE INTO landslide_events
        SELECT area, event_id, event_date, ST_GeomFromWKB(init_wkb),
               CASE WHEN poly_wkb IS NULL THEN NULL ELSE ST_GeomFromWKB(poly_wkb) END,
               source_file, ingested_at
        FROM incoming_events
    """)
    con.unregister("incoming_events")
    after = con.execute("SELECT count(*) FROM landslide_events WHERE area = ?", [area]).fetchone()[0]
    return int(after - before)


def read_events(con: duckdb.DuckDBPyConnection, area: str, crs: str, *, before: dt.date | None = None,
                after: dt.date | None = None) -> gpd.GeoDataFrame:
    """Events of ``area`` (optionally dated on/before ``before`` or strictly after ``after``), polygon geometry.

    Point-only events keep their initiation point as geometry.
    """
    sql = """SELECT event_id, event_date, ST_X(init_point) AS init_x, ST_Y(init_point) AS init_y,
                    ST_AsWKB(coalesce(polygon, init_point)) AS wkb, source_file, ingested_at
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


def inventory_state(con: duckdb.DuckDBPyConnection, area: str) -> dict:
    """The inventory state an evaluation used: event count, latest event date, latest ingest time."""
    n, last_event, last_ingest = con.execute(
        "SELECT count(*), max(event_date), max(ingested_at) FROM landslide_events WHERE area = ?", [area]).fetchone()
    return {"n_events": int(n), "latest_event_date": last_event, "latest_ingest": last_ingest}


def _create_or_widen(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create ``table`` from the registered ``incoming_rows`` or add the columns it lacks (older catalogs)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM incoming_rows LIMIT 0")
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    for name, dtype, *_ in con.execute("DESCRIBE incoming_rows").fetchall():
        if name not in have:  # rows written before the column existed read as NULL
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {dtype}')


def replace_partition_rows(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame, area: str,
                           period: str) -> int:
    """Replace the rows of one (area, period) in a result table (created from ``df`` on first use)."""
    df = df.assign(area=area, period=period)
    con.register("incoming_rows", df)
    try:
        _create_or_widen(con, table)
        con.execute(f"DELETE FROM {table} WHERE area = ? AND period = ?", [area, period])
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
    finally:
        con.unregister("incoming_rows")
    return len(df)


def append_rows(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame) -> int:
    """Append rows to a history table (created from ``df`` on first use); nothing is ever deleted."""
    con.register("incoming_rows", df)
    try:
        _create_or_widen(con, table)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
    finally:
        con.unregister("incoming_rows")
    return len(df)
