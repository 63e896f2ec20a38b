"""Checks of a user's own study-area files, run by ``lsm add-area`` before anything is written.

``check_area_files`` opens every file, checks CRS, overlap and the named columns, reprojects an
inventory in another CRS (rather than rejecting it), and reports what the pipeline will and will
not compute. Errors are ``InputFileError`` naming the file and the layer or column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import yaml
from rasterio.crs import CRS

from lsm_core.area import DEFAULT_PARAMETERS, KEY_RE, period_key
from lsm_core.errors import ConfigError, InputFileError
from lsm_core.grid import AreaGrid
from lsm_core.inventory import ID_FIELDS
from lsm_core.io import read_vector
from lsm_core.sample_table import parse_date_column

__all__ = ["DATE_COLUMNS", "RASTER_LAYERS", "VECTOR_LAYERS", "AreaFilesCheck", "area_yaml", "check_area_files",
           "dump_area_yaml", "inventory_period", "needs_normalised_inventory", "write_area_inventory"]

VECTOR_LAYERS = ("boundary", "lithology", "faults", "rivers", "roads", "buildings", "mining")
RASTER_LAYERS = ("rainfall",)
DATE_COLUMNS = ("event_date", "date")
_FACTOR_OF = {"lithology": "lithology code", "faults": "distance decay to faults",
              "rivers": "distance decay to valleys (and river burning for drainage)", "roads": "distance decay to roads",
              "buildings": "distance decay to buildings", "mining": "distance decay to mining sites",
              "rainfall": "rainfall", "ndvi": "NDVI mean"}


@dataclass(frozen=True)
class AreaFilesCheck:
    """Result of ``check_area_files``: the DEM's grid, the inventory's state and the layers present."""

    name: str
    dem: Path
    grid: AreaGrid
    inventory: Path
    n_events: int
    has_dates: bool
    inventory_reprojected_from: str | None
    layers: dict[str, Path]  # optional layers given and checked
    insar: Path | None = None
    lithology_field: str | None = None
    ndvi: tuple[tuple[dt.date, Path], ...] = ()  # (acquisition date, raster)
    notes: list[str] = field(default_factory=list)

    @property
    def missing_layers(self) -> tuple[str, ...]:
        return tuple(k for k in _FACTOR_OF if k not in self.layers and not (k == "ndvi" and self.ndvi))

    def will_compute(self) -> list[str]:
        """What the pipeline computes from these files."""
        from lsm_core.area_scope import VELOCITY_STRATEGIES
        from lsm_core.sampling import NEGATIVE_STRATEGIES
        from lsm_core.terrain import TERRAIN_BANDS

        strategies = [s for s in NEGATIVE_STRATEGIES if s not in VELOCITY_STRATEGIES]
        out = [f"terrain factors from the DEM: {', '.join(TERRAIN_BANDS)}",
               f"positive samples from {self.n_events} inventory events",
               f"negative strategies: {', '.join(strategies)}"]
        out += [_FACTOR_OF[k] for k in self.layers if k in _FACTOR_OF]
        out += [f"NDVI mean over the scenes of each period ({len(self.ndvi)} scenes)"] if self.ndvi else []
        if self.insar is not None:
            out += ["deformation rate from the InSAR deliveries",
                    *(f"negative strategy {k}" for k in VELOCITY_STRATEGIES)]
        if self.has_dates:
            out += ["POR / LOR on events dated after each period"]
        return out

    def will_not_compute(self) -> list[tuple[str, str]]:
        """(what, why) the pipeline leaves out."""
        out = [(_FACTOR_OF[k], f"no {k} layer given") for k in self.missing_layers]
        if self.insar is None:
            out.append(("negative strategy insar_pu and the deformation factor",
                        "no InSAR data for this area (--insar): the velocity is left out and InSAR-PU skipped"))
        if not self.has_dates:
            out.append(("POR / LOR", "not computable: the inventory has no dates (until dated events after the "
                        "period are taken in: lsm ingest-events, or incoming/inventory/<area>/)"))
        return out

    def pipeline_gaps(self, period: str | None = None) -> list[str]:
        """Why the raster pipeline cannot run the area (empty = it can). Missing layers, InSAR and dates are
        not gaps: the area runs without them. A monitoring period is needed: from the InSAR deliveries, the
        inventory's dates, or ``period``."""
        if not self.has_dates and period is None:
            return ["a monitoring period: --period YYYYMM-YYYYMM (the inventory has no event dates to derive one "
                    "from; its events count as known from the period's start)"]
        return []


def _crs_of_raster(path: Path, what: str) -> tuple[CRS, rasterio.Affine, int, int]:
    try:
        with rasterio.open(path) as src:
            crs, transform, width, height = src.crs, src.transform, src.width, src.height
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(f"cannot open the {what} raster ({exc})", path) from None
    if crs is None:
        raise InputFileError(f"the {what} raster has no CRS: assign one (e.g. gdal_edit.py -a_srs EPSG:XXXX)", path)
    return crs, transform, width, height


def _dem_grid(dem: Path) -> AreaGrid:
    crs, transform, width, height = _crs_of_raster(dem, "DEM")
    if crs.is_geographic:
        raise InputFileError(f"the DEM's CRS {crs.to_string()} is geographic (degrees): reproject it to a projected "
                             "CRS in metres (e.g. its UTM zone)", dem)
    if abs(abs(transform.e) - transform.a) > 1e-6 * transform.a or transform.b or transform.d:
        raise InputFileError(f"the DEM's pixels are not square and north-up ({transform.a} x {transform.e})", dem)
    return AreaGrid(crs.to_string(), tuple(transform)[:6], height, width)


def _read_inventory(path: Path, grid: AreaGrid, label: str | None, crs: str | None) -> tuple[gpd.GeoDataFrame,
                                                                                             str | None]:
    """Events as points in the DEM's CRS, and the CRS they were reprojected from (None = same CRS)."""
    if path.suffix.lower() == ".csv":
        try:
            df = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputFileError(f"cannot read the inventory CSV ({exc})", path) from None
        missing = [c for c in ("x", "y", *([label] if label else [])) if c not in df.columns]
        if missing:
            raise InputFileError(f"the inventory has no columns {missing}; it has {list(df.columns)}", path)
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x"], df["y"]), crs=crs or grid.crs)
    else:
        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # pyogrio raises several types for unreadable files
            raise InputFileError(f"cannot read the inventory ({exc})", path) from None
        if gdf.crs is None and crs is None:
            raise InputFileError("the inventory has no CRS", path)
        gdf = gdf.set_crs(crs) if gdf.crs is None else gdf
        if label and label not in gdf.columns:
            raise InputFileError(f"the inventory has no column {label!r}; it has {list(gdf.columns)}", path)
    if label:
        text = gdf[label].astype(str).str.strip().str.lower()
        if not text.isin({"1", "0", "true", "false", "1.0", "0.0"}).all():
            raise InputFileError(f"inventory label column {label!r} is not binary: values "
                                 f"{sorted(gdf[label].astype(str).unique())[:10]}", path)
        gdf = gdf[text.isin({"1", "true", "1.0"}).to_numpy()]
    source = None
    if CRS.from_user_input(gdf.crs) != CRS.from_user_input(grid.crs):
        source = CRS.from_user_input(gdf.crs).to_string()
        gdf = gdf.to_crs(grid.crs)
    return gdf, source


def check_area_files(name: str, dem: str | Path, inventory: str | Path, *, layers: Mapping[str, str | Path] = {},
                     lithology_field: str | None = None, inventory_label: str | None = None,
                     inventory_crs: str | None = None, insar: str | Path | None = None,
                     ndvi: Sequence[tuple[dt.date, str | Path]] = ()) -> AreaFilesCheck:
    """Open and check every file of a new study area; InputFileError names the file and the layer or column.

    ``layers`` maps optional layer names (VECTOR_LAYERS, RASTER_LAYERS) to files. An inventory in
    another CRS than the DEM is reprojected; a CSV inventory has x, y in ``inventory_crs`` (default:
    the DEM's); with ``inventory_label`` only rows labelled 1/True are events.
    """
    if not KEY_RE.match(name):
        raise ConfigError(f"area name {name!r} must use only [a-z0-9_-]")
    unknown = sorted(set(layers) - set(VECTOR_LAYERS) - set(RASTER_LAYERS))
    if unknown:
        raise ConfigError(f"unknown layers {unknown}; known: {list(VECTOR_LAYERS + RASTER_LAYERS)}")
    dem, inventory = Path(dem), Path(inventory)
    grid = _dem_grid(dem)
    events, source = _read_inventory(inventory, grid, inventory_label, inventory_crs)
    if events.empty:
        raise InputFileError("the inventory holds no landslide events", inventory)
    pts = events.geometry.representative_point()
    xmin, ymin, xmax, ymax = grid.bounds
    outside = ~((pts.x >= xmin) & (pts.x <= xmax) & (pts.y >= ymin) & (pts.y <= ymax)).to_numpy()
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InputFileError(f"{int(outside.sum())} of {len(events)} events lie outside the DEM {dem.name} "
                             f"(x {xmin:.0f}..{xmax:.0f}, y {ymin:.0f}..{ymax:.0f} in {grid.crs}), e.g. "
                             f"({pts.x.iloc[i]:.0f}, {pts.y.iloc[i]:.0f}): check the coordinates and their CRS",
                             inventory)
    date_col = next((c for c in DATE_COLUMNS if c in events.columns), None)
    if date_col is not None:
        parse_date_column(events[date_col], date_col, inventory)
    checked: dict[str, Path] = {}
    for key, value in layers.items():
        path = Path(value)
        if key in VECTOR_LAYERS:
            gdf = read_vector(path, grid, reproject=True)  # CRS and overlap, reprojecting a layer in another CRS
            if key == "lithology":
                if not lithology_field or lithology_field not in gdf.columns:
                    raise InputFileError(f"the lithology layer has no column {lithology_field!r} (--lithology-field); "
                                         f"it has {[c for c in gdf.columns if c != 'geometry']}", path)
        else:
            _crs_of_raster(path, key)
        checked[key] = path
    for _, scene in ndvi:
        _crs_of_raster(Path(scene), "NDVI")
    if insar is not None and not Path(insar).is_dir():
        raise InputFileError("the InSAR folder does not exist", insar)
    return AreaFilesCheck(name, dem, grid, inventory, len(events), date_col is not None, source, checked,
                          None if insar is None else Path(insar), lithology_field,
                          tuple(sorted((d, Path(p)) for d, p in ndvi)))


def area_yaml(check: AreaFilesCheck, *, inventory: Path | None = None,
              periods: Sequence[str] = ()) -> dict[str, Any]:
    """The area.yaml mapping of a checked area (absolute paths: the user's files stay where they are).

    ``inventory``: the normalised copy (``write_area_inventory``) when the user's file cannot be read as is;
    ``periods``: monitoring periods declared for an area without InSAR deliveries.
    """
    layers: dict[str, Any] = {"dem": str(check.dem.resolve()),
                              "inventory": str((inventory or check.inventory).resolve())}
    for key, path in check.layers.items():
        if key == "lithology":
            layers[key] = {"path": str(path.resolve()), "code_field": check.lithology_field}
        else:
            layers[key] = str(path.resolve())
    layers["ndvi"] = [{"date": d.isoformat(), "path": str(p.resolve())} for d, p in check.ndvi]
    out = {"name": check.name, "crs": check.grid.crs, "resolution_m": check.grid.resolution_m,
           "bounds": [float(v) for v in check.grid.bounds], "layers": layers,
           "parameters": {**DEFAULT_PARAMETERS, "inventory_has_dates": check.has_dates}}
    return out | ({"periods": sorted(periods)} if periods else {})


def dump_area_yaml(check: AreaFilesCheck, *, inventory: Path | None = None, periods: Sequence[str] = ()) -> str:
    """area.yaml text of a checked area."""
    return yaml.safe_dump(area_yaml(check, inventory=inventory, periods=periods), sort_keys=False)


def inventory_period(check: AreaFilesCheck, inventory_label: str | None = None,
                     inventory_crs: str | None = None) -> str | None:
    """The period ``YYYYMM-YYYYMM`` spanning the inventory's event dates (None without dates)."""
    if not check.has_dates:
        return None
    events, _ = _read_inventory(check.inventory, check.grid, inventory_label, inventory_crs)
    col = next(c for c in DATE_COLUMNS if c in events.columns)
    dates = parse_date_column(events[col], col, check.inventory)
    dates = dates[~np.isnat(dates)]
    return period_key(dates.min().astype(dt.date), dates.max().astype(dt.date))


def needs_normalised_inventory(check: AreaFilesCheck, inventory_label: str | None) -> bool:
    """True when the pipeline cannot read the user's inventory as is (label filter, no dates or no ids)."""
    if inventory_label or not check.has_dates:
        return True
    events, _ = _read_inventory(check.inventory, check.grid, None, None)
    return not any(c in events.columns for c in ID_FIELDS)


def write_area_inventory(check: AreaFilesCheck, out_path: Path, *, inventory_label: str | None = None,
                         inventory_crs: str | None = None, stand_in_date: dt.date | None = None) -> Path:
    """The area's events as a GeoPackage the pipeline reads: event_id (kept or ``ev0001``...), event_date, geometry
    in the DEM's CRS; only rows labelled 1/True with ``inventory_label``.

    An undated inventory gets ``stand_in_date`` (the period's first day) so that the catalog can hold the
    events; area.yaml then says ``inventory_has_dates: false`` and POR / LOR are not computed from it.
    """
    events, _ = _read_inventory(check.inventory, check.grid, inventory_label, inventory_crs)
    id_col = next((c for c in ID_FIELDS if c in events.columns), None)
    ids = (events[id_col].astype(str).to_numpy() if id_col else [f"ev{i + 1:04d}" for i in range(len(events))])
    if check.has_dates:
        col = next(c for c in DATE_COLUMNS if c in events.columns)
        dates = np.datetime_as_string(parse_date_column(events[col], col, check.inventory), unit="D")
    elif stand_in_date is None:
        raise ConfigError("an undated inventory needs a stand-in date (the period's first day)", check.inventory)
    else:
        dates = np.full(len(events), stand_in_date.isoformat())
    gpd.GeoDataFrame({"event_id": ids, "event_date": dates}, geometry=events.geometry.to_numpy(),
                     crs=check.grid.crs).to_file(out_path)
    return out_path
