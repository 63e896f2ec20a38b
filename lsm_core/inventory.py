"""Landslide inventories: read, validate and normalise event files (DESIGN 5)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point

from lsm_core.errors import InventoryError
from lsm_core.grid import AreaGrid
from lsm_core.io import read_vector

EVENT_COLUMNS = ["event_id", "event_date", "init_x", "init_y", "geometry"]
ID_FIELDS = ("event_id", "id", "landslide_id")
DATE_FIELDS = ("event_date", "date")


def read_inventory(path: str | Path, grid: AreaGrid) -> gpd.GeoDataFrame:
    """Events of one inventory file as (event_id, event_date, init_x, init_y, geometry) in the area CRS.

    Accepts GeoPackage / GeoJSON (polygons or points) and CSV with ``x``, ``y`` columns in the
    area CRS. The initiation point is ``init_x``/``init_y`` when given, else the polygon
    centroid (DESIGN 6). Raises InventoryError naming the file for missing ids or dates,
    duplicate ids, empty geometries or events outside the area.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        gdf = _read_csv(path, grid)
    else:
        gdf = read_vector(path, grid, reproject=True)
    id_col = _pick(gdf, ID_FIELDS, path, "event id")
    date_col = _pick(gdf, DATE_FIELDS, path, "event date")
    dates = pd.to_datetime(gdf[date_col], errors="coerce")
    if dates.isna().any():
        bad = gdf.loc[dates.isna(), id_col].astype(str).head(5).tolist()
        raise InventoryError(f"missing or unparseable event dates for ids {bad}", path)
    ids = gdf[id_col].astype(str)
    if ids.str.strip().eq("").any() or ids.isna().any():
        raise InventoryError("empty event ids", path)
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise InventoryError(f"duplicate event ids {dup[:5]}", path)
    if gdf.geometry.is_empty.any() or gdf.geometry.isna().any():
        raise InventoryError("events without geometry", path)
    geom = gdf.geometry.make_valid() if (~gdf.geometry.is_valid).any() else gdf.geometry
    if {"init_x", "init_y"} <= set(gdf.columns):
        init_x, init_y = gdf["init_x"].astype(float).to_numpy(), gdf["init_y"].astype(float).to_numpy()
    else:
        # a point event is its own initiation point; a polygon uses its centroid (DESIGN 6)
        c = geom.centroid
        init_x, init_y = c.x.to_numpy(), c.y.to_numpy()
    rows, cols = grid.rowcol(init_x, init_y)
    outside = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    if outside.any():
        raise InventoryError(f"{int(outside.sum())} events lie outside the study area, e.g. "
                             f"{ids[outside].head(3).tolist()}", path)
    out = gpd.GeoDataFrame({"event_id": ids.to_numpy(), "event_date": dates.dt.date.to_numpy(),
                            "init_x": init_x, "init_y": init_y}, geometry=geom.to_numpy(), crs=grid.crs)
    return out.sort_values(["event_date", "event_id"], kind="stable").reset_index(drop=True)


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
