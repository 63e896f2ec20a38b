"""Environmental factors on the area grid: lithology codes, rainfall, NDVI mean over a period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from rasterio import features
from rasterio.enums import Resampling
from rasterio.windows import Window

from lsm_core.area import AreaConfig
from lsm_core.area_scope import environment_bands, write_absent_layer
from lsm_core.errors import ConfigError, InputFileError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterWriter, raster_window_on_grid, read_vector

__all__ = ["BANDS", "CATEGORICAL", "EnvironmentFactorsResult", "environment_factors", "ndvi_mean", "rasterize_codes"]

BANDS = ["lithology", "rainfall_mm_yr", "ndvi_mean"]
CATEGORICAL = ["lithology"]


@dataclass(frozen=True)
class EnvironmentFactorsResult:
    """What ``environment_factors`` wrote: band names, bands left out (band -> why), NDVI scene dates, unit codes."""

    bands: list[str]  # written, in order (subset of BANDS; empty: an absent layer)
    left_out: dict[str, str] = field(default_factory=dict)  # band -> why area.yaml does not give it
    ndvi_scenes: list[str] = field(default_factory=list)  # ISO dates of the scenes averaged
    lithology_units: list[int] = field(default_factory=list)  # sorted lithology codes present

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def rasterize_codes(polygons: gpd.GeoDataFrame, code_field: str, grid: AreaGrid, window: Window, *,
                    mappings: Sequence[Mapping[str, Any]] | None = None) -> np.ndarray:
    """Integer unit codes of the polygons covering each pixel centre of ``window`` (NaN where none).

    ``mappings``: the polygons' ``__geo_interface__``, when the caller rasterizes many windows (rasterio
    would convert every polygon on every call, its coordinates going through Python).
    """
    geoms = polygons.geometry if mappings is None else mappings
    shapes = ((g, int(c)) for g, c in zip(geoms, polygons[code_field], strict=True))
    out = features.rasterize(shapes, out_shape=(int(window.height), int(window.width)), fill=-1,
                             transform=grid.window_transform(window), dtype="int32")
    return np.where(out < 0, np.nan, out).astype("float32")


def ndvi_mean(paths: list[Path], grid: AreaGrid, window: Window) -> np.ndarray:
    """Mean NDVI of several scenes on ``window`` of the grid, ignoring each scene's nodata."""
    total = np.zeros((int(window.height), int(window.width)), "float64")
    count = np.zeros_like(total)
    for p in paths:
        v = raster_window_on_grid(p, grid, window, reproject=True, resampling=Resampling.bilinear)[0]
        ok = np.isfinite(v)
        total[ok] += v[ok]
        count[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype("float32")


def environment_factors(cfg: AreaConfig, start: dt.date, end: dt.date, out_path: str | Path, *,
                        block: int = 512) -> EnvironmentFactorsResult:
    """Write lithology code, rainfall (mm/yr, bilinear) and the NDVI mean of the period's scenes, window by window.

    A band whose layer the area.yaml does not give is left out (``left_out``: band -> why); with none of
    the three, the output is an absent layer (``area_scope.write_absent_layer``) the factor stack skips.
    """
    grid = cfg.grid
    scenes = cfg.ndvi_in(start, end)
    if cfg.ndvi and not scenes:
        raise ConfigError(f"no NDVI scene dated within {start}..{end} (scenes: {[str(s.date) for s in cfg.ndvi]})",
                          cfg.folder / "area.yaml")
    bands, left_out = environment_bands(cfg, start, end)
    have = {b: b in bands for b in BANDS}
    ndvi_scenes = [str(s.date) for s in scenes]
    if not bands:
        write_absent_layer(grid, out_path, "environment", "no lithology, rainfall or NDVI layer in area.yaml",
                           block=block)
        return EnvironmentFactorsResult(bands, left_out, ndvi_scenes)
    lith = read_vector(cfg.layers["lithology"], grid, reproject=True) if have["lithology"] else None
    if lith is not None and cfg.lithology_code_field not in lith.columns:
        raise InputFileError(f"no column {cfg.lithology_code_field!r} (columns: {list(lith.columns)})",
                             cfg.layers["lithology"])
    mappings = [g.__geo_interface__ for g in lith.geometry] if lith is not None else None
    categorical = [b for b in CATEGORICAL if b in bands]
    with RasterWriter(out_path, grid, bands, block=block, tags={"categorical": ",".join(categorical)}) as w:
        for b in grid.windows(block):
            parts = []
            if lith is not None:
                parts.append(rasterize_codes(lith, cfg.lithology_code_field, grid, b.write, mappings=mappings))
            if have["rainfall_mm_yr"]:
                parts.append(raster_window_on_grid(cfg.layers["rainfall"], grid, b.write, reproject=True)[0])
            if scenes:
                parts.append(ndvi_mean([s.path for s in scenes], grid, b.write))
            w.write(np.stack(parts), b.write)
    units = sorted(int(c) for c in lith[cfg.lithology_code_field].unique()) if lith is not None else []
    return EnvironmentFactorsResult(bands, left_out, ndvi_scenes, units)
