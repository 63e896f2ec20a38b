"""Landslide inventories: read, validate and normalise event files (DESIGN 5)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.crs import CRS
from shapely.geometry import Point

from lsm_core.errors import InventoryError
from lsm_core.grid import AreaGrid
from lsm_core.io import check_overlap, read_vector

__all__ = ["events_after", "events_before", "read_inventory"]

EVENT_COLUMNS = ["event_id", "event_date", "init_x", "init_y", "geometry"]
ID_FIELDS = ("event_id", "id", "landslide_id")
DATE_FIELDS = ("event_date", "date")
GEOMETRY_TYPES = {"Point", "Polygon", "MultiPolygon"}
INVENTORY_SUFFIXES = (".gpkg", ".geojson", ".json", ".csv")


def read_inventory(path: str | Path, grid: AreaGrid, *, today: dt.date | None = None,
                   date_hint: str | None = None) -> gpd.GeoDataFrame:
    """Events of one inventory file as (event_id, event_date, init_x, init_y, geometry) in the area CRS.

    Accepts GeoPackage / GeoJSON (polygons or points, any CRS: reprojected, initiation points
    included) and CSV with ``x``, ``y`` columns in the area CRS. The initiation point is
    ``init_x``/``init_y`` when given (in the file's CRS), else the polygon centroid (DESIGN 6).
    Raises InventoryError naming the file for missing ids, missing, unparseable or future dates
    (after ``today``, default: the current UTC date), duplicate ids, empty or non-areal/point
    geometries, or events outside the area. ``date_hint`` is added to the errors about missing dates
    (why this area needs them).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        gdf, source_crs = _read_csv(path, grid), grid.crs
    else:
        gdf = read_vector(path)
        if gdf.crs is None:
            raise InventoryError("vector layer has no CRS", path)
        source_crs = gdf.crs
        if CRS.from_user_input(source_crs) != CRS.from_user_input(grid.crs):
            gdf = gdf.to_crs(grid.crs)
        if len(gdf):
            check_overlap(path, gdf.total_bounds, grid)
    if gdf.empty:
        raise InventoryError("the file holds no events", path)
    id_col = _pick(gdf, ID_FIELDS, path, "event id")
    try:
        date_col = _pick(gdf, DATE_FIELDS, path, "event date")
    except InventoryError as exc:
        raise InventoryError(_hinted(str(exc).removeprefix(f"{path}: "), date_hint), path) from None
    raw_ids = gdf[id_col]
    missing = raw_ids.isna() | raw_ids.astype(str).str.strip().isin(["", "nan", "None"])
    if missing.any():
        raise InventoryError(f"{int(missing.sum())} events have no event id (rows {np.flatnonzero(missing)[:5].tolist()})",
                             path)
    ids = raw_ids.astype(str).str.strip()
    dates = pd.to_datetime(gdf[date_col], errors="coerce")
    if dates.isna().any():
        bad = ids[dates.isna()].head(5).tolist()
        raise InventoryError(_hinted(f"missing or unparseable event dates for ids {bad}", date_hint), path)
    today = today or dt.datetime.now(dt.UTC).date()
    future = dates.dt.date > today
    if future.any():
        bad = [f"{i} ({d:%Y-%m-%d})" for i, d in zip(ids[future].head(5), dates[future].head(5), strict=True)]
        raise InventoryError(f"{int(future.sum())} events are dated in the future (after {today}): {bad}", path)
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise InventoryError(f"duplicate event ids {dup[:5]}", path)
    if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        bad = ids[gdf.geometry.isna() | gdf.geometry.is_empty].head(5).tolist()
        raise InventoryError(f"events without geometry: {bad}", path)
    kinds = set(gdf.geometry.geom_type)
    if not kinds <= GEOMETRY_TYPES:
        raise InventoryError(f"geometries must be points or polygons, found {sorted(kinds - GEOMETRY_TYPES)}", path)
    geom = gdf.geometry.make_valid() if (~gdf.geometry.is_valid).any() else gdf.geometry
    if {"init_x", "init_y"} <= set(gdf.columns):
        init = gpd.GeoSeries(gpd.points_from_xy(gdf["init_x"].astype(float), gdf["init_y"].astype(float)),
                             crs=source_crs).to_crs(grid.crs)
        init_x, init_y = init.x.to_numpy(), init.y.to_numpy()
    else:
        # a point event is its own initiation point; a polygon uses its centroid (DESIGN 6)
        c = geom.centroid
        init_x, init_y = c.x.to_numpy(), c.y.to_numpy()
    if not (np.isfinite(init_x).all() and np.isfinite(init_y).all()):
        raise InventoryError("missing or non-numeric initiation points (init_x, init_y)", path)
    rows, cols = grid.rowcol(init_x, init_y)
    outside = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    if outside.any():
        raise InventoryError(f"{int(outside.sum())} events lie outside the study area, e.g. "
                             f"{ids[outside].head(3).tolist()}", path)
    out = gpd.GeoDataFrame({"event_id": ids.to_numpy(), "event_date": dates.dt.date.to_numpy(),
                            "init_x": init_x, "init_y": init_y}, geometry=geom.to_numpy(), crs=grid.crs)
    return out.sort_values(["event_date", "event_id"], kind="stable").reset_index(drop=True)


def _hinted(message: str, hint: str | None) -> str:
    return message if hint is None else f"{message}; {hint}"


def _pick(gdf: pd.DataFrame, names: tuple[str, ...], path: Path, what: str) -> str:
    for n in names:
        if n in gdf.columns:
            return n
    raise InventoryError(f"no {what} column (expected one of {list(names)}; found {list(gdf.columns)})", path)


def _read_csv(path: Path, grid: AreaGrid) -> gpd.GeoDataFrame:
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise InventoryError(f"cannot read CSV ({exc})", path) from exc
    if not {"x", "y"} <= set(df.columns):
        raise InventoryError(f"CSV needs x and y columns in the area CRS {grid.crs}; found {list(df.columns)}", path)
    xy = df[["x", "y"]].astype(float).to_numpy()
    if not np.isfinite(xy).all():
        raise InventoryError("non-numeric or missing x/y", path)
    return gpd.GeoDataFrame(df, geometry=[Point(x, y) for x, y in xy], crs=grid.crs)


def events_before(events: gpd.GeoDataFrame, date) -> gpd.GeoDataFrame:
    """Events dated on or before ``date``."""
    return events[pd.to_datetime(events["event_date"]) <= pd.Timestamp(date)]


def events_after(events: gpd.GeoDataFrame, date) -> gpd.GeoDataFrame:
    """Events dated strictly after ``date`` (the later events that POR/LOR score)."""
    return events[pd.to_datetime(events["event_date"]) > pd.Timestamp(date)]
