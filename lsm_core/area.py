"""Study-area configuration (``data/study_areas/<area>/area.yaml``, DESIGN 5).

Example::

    name: karst
    crs: EPSG:32649
    resolution_m: 10
    bounds: [520000, 2840000, 532000, 2852000]      # xmin ymin xmax ymax, metres
    layers:
      dem: dem.tif
      lithology: {path: lithology.gpkg, code_field: unit_code}
      faults: faults.gpkg
      rivers: rivers.gpkg
      roads: roads.gpkg
      buildings: buildings.gpkg
      mining: mining.gpkg
      rainfall: rainfall.tif
      ndvi:
        - {date: 2016-04-15, path: ndvi/ndvi_20160415.tif}
      inventory: inventory.gpkg
    parameters:
      max_distance_m: {faults: 20000, valleys: 5000, roads: 5000, buildings: 2000, mining: 10000}
      sampling_ratio: 1.0
      deformation_threshold_mm_yr: 5.0
      buffer_m: 500

Paths are relative to the area folder. Only ``dem`` and ``inventory`` are mandatory: a missing optional
layer's factor is left out of the stack (``lsm_core.area_scope``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid

__all__ = ["DEFAULT_PARAMETERS", "KEY_RE", "MANDATORY_LAYERS", "PERIOD_RE", "REQUIRED_LAYERS", "AreaConfig", "NdviScene",
           "discover_areas", "load_area", "period_bounds", "period_key", "write_area_mask"]

KEY_RE = re.compile(r"^[a-z0-9_-]+$")
PERIOD_RE = re.compile(r"^(\d{4})(\d{2})-(\d{4})(\d{2})$")
REQUIRED_LAYERS = ("dem", "lithology", "faults", "rivers", "roads", "buildings", "mining", "rainfall", "ndvi", "inventory")
# an area needs only these; the other layers' factors are left out when absent (lsm_core.area_scope)
MANDATORY_LAYERS = ("dem", "inventory")

DEFAULT_PARAMETERS: dict[str, Any] = {
    "max_distance_m": {"faults": 20000.0, "valleys": 5000.0, "roads": 5000.0, "buildings": 2000.0, "mining": 10000.0},
    "sampling_ratio": 1.0,
    "deformation_threshold_mm_yr": 5.0,
    "buffer_m": 500.0,
}


@dataclass(frozen=True)
class NdviScene:
    """One NDVI raster and its acquisition date."""

    date: dt.date
    path: Path


@dataclass(frozen=True)
class AreaConfig:
    """A validated area.yaml: grid definition, absolute input paths and parameters."""

    name: str
    folder: Path
    crs: str
    resolution_m: float
    bounds: tuple[float, float, float, float]
    layers: dict[str, Path]
    ndvi: tuple[NdviScene, ...]
    lithology_code_field: str = "unit_code"
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> AreaGrid:
        return AreaGrid.from_bounds(self.crs, self.bounds, self.resolution_m)

    def ndvi_in(self, start: dt.date, end: dt.date) -> list[NdviScene]:
        """NDVI scenes dated within [start, end]."""
        return [s for s in self.ndvi if start <= s.date <= end]


def load_area(folder: str | Path) -> AreaConfig:
    """Read and validate ``<folder>/area.yaml``; ConfigError names the file and the problem."""
    folder = Path(folder)
    path = folder / "area.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError("area.yaml not found", path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML ({exc})", path) from exc
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level", path)
    name = str(raw.get("name", folder.name))
    if not KEY_RE.match(name) or name != folder.name:
        raise ConfigError(f"name {name!r} must match the folder name and use only [a-z0-9_-]", path)
    for key in ("crs", "resolution_m", "bounds", "layers"):
        if key not in raw:
            raise ConfigError(f"missing key {key!r}", path)
    bounds = tuple(float(v) for v in raw["bounds"])
    if len(bounds) != 4 or bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
        raise ConfigError(f"bounds must be [xmin, ymin, xmax, ymax], got {raw['bounds']}", path)
    layers_raw = raw["layers"]
    missing = [k for k in MANDATORY_LAYERS if k not in layers_raw]
    if missing:
        raise ConfigError(f"missing layers {missing}", path)
    layers: dict[str, Path] = {}
    code_field = "unit_code"
    for key, value in layers_raw.items():
        if key == "ndvi":
            continue
        if isinstance(value, dict):
            code_field = value.get("code_field", code_field) if key == "lithology" else code_field
            value = value["path"]
        layers[key] = folder / value
    ndvi = tuple(sorted((NdviScene(_date(s["date"], path), folder / s["path"]) for s in layers_raw.get("ndvi") or []),
                        key=lambda s: s.date))
    params = {**DEFAULT_PARAMETERS, **(raw.get("parameters") or {})}
    params["max_distance_m"] = {**DEFAULT_PARAMETERS["max_distance_m"], **params.get("max_distance_m", {})}
    return AreaConfig(name, folder, str(raw["crs"]), float(raw["resolution_m"]), bounds, layers, ndvi,
                      code_field, params)


def _date(value: Any, path: Path) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"invalid date {value!r}", path) from exc


def period_key(start: dt.date, end: dt.date) -> str:
    """Partition key ``YYYYMM-YYYYMM`` of a monitoring period."""
    return f"{start:%Y%m}-{end:%Y%m}"


def period_bounds(key: str) -> tuple[dt.date, dt.date]:
    """First day of the start month and last day of the end month of a period key."""
    m = PERIOD_RE.match(key)
    if not m:
        raise ConfigError(f"period key {key!r} is not of the form YYYYMM-YYYYMM")
    y0, m0, y1, m1 = (int(g) for g in m.groups())
    end_next = dt.date(y1 + (m1 == 12), m1 % 12 + 1, 1)
    return dt.date(y0, m0, 1), end_next - dt.timedelta(days=1)


def discover_areas(root: str | Path) -> list[str]:
    """Names of the study areas under ``root`` (folders holding an area.yaml), sorted."""
    root = Path(root)
    return sorted(p.parent.name for p in root.glob("*/area.yaml")) if root.exists() else []


def write_area_mask(cfg: AreaConfig, out_path: str | Path, *, block: int = 512) -> tuple[Path, int]:
    """Write the area's valid-pixel mask (1 where the DEM has data and, if given, inside the boundary).

    Window by window; returns the path and the number of valid pixels. A DEM in another CRS is
    reprojected onto the grid; one that misses the area raises GridMismatchError naming the file.
    """
    import numpy as np
    from rasterio import features

    from lsm_core.io import RasterWriter, raster_window_on_grid, read_vector

    grid = cfg.grid
    boundary = read_vector(cfg.layers["boundary"], grid, reproject=True) if "boundary" in cfg.layers else None
    n_valid = 0
    with RasterWriter(out_path, grid, ["valid"], dtype="uint8", nodata=None, block=block) as w:
        for b in grid.windows(block):
            dem = raster_window_on_grid(cfg.layers["dem"], grid, b.write, reproject=True)[0]
            valid = np.isfinite(dem)
            if boundary is not None:
                inside = features.geometry_mask(boundary.geometry, out_shape=dem.shape, invert=True,
                                                transform=grid.window_transform(b.write))
                valid &= inside
            n_valid += int(valid.sum())
            w.write(valid.astype("uint8"), b.write)
    return Path(out_path), n_valid
