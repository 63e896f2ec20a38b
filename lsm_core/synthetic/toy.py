"""A toy study area small enough for docstring examples and first steps in a notebook.

``toy_area()`` writes, in a folder you name or a temporary one, a 40 x 40 pixel grid of 10 m cells:
a factor stack (slope, |deformation| velocity, NDVI), six dated landslide polygons and a
probability map. Five landslides sit on steep, deforming ground, so the methods have a signal to
find; the sixth and latest (``ls-6``, 2022) is a surprise on gentle, stable ground that the map
misses, so POR / LOR have something to report. The numbers mean nothing beyond that. For a
realistic world with ground truth use ``generate_demo``.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from scipy import ndimage

from lsm_core.grid import AreaGrid
from lsm_core.io import RasterFile, write_raster
from lsm_core.terrain import slope_deg

__all__ = ["TOY_BANDS", "ToyArea", "session_folder", "toy_area"]

TOY_BANDS = ("slope_deg", "velocity_mm_yr", "ndvi")
_CRS = "EPSG:32648"  # UTM 48N: a projected CRS in metres, as every study area must have
_LANDSLIDES = [  # (row, col) of the top-left pixel of a 3 x 3 pixel scar, event date
    ((6, 6), dt.date(2019, 5, 1)), ((8, 28), dt.date(2019, 8, 1)), ((14, 12), dt.date(2020, 6, 1)),
    ((26, 30), dt.date(2020, 7, 1)), ((30, 8), dt.date(2022, 6, 1)), ((20, 22), dt.date(2022, 9, 1)),
]


@dataclass
class ToyArea:
    """The toy area's grid, files (rasters on that grid) and landslide inventory (one row per event)."""

    grid: AreaGrid
    stack: RasterFile  # TOY_BANDS: slope (deg), velocity (mm/yr), NDVI (unitless)
    probability: RasterFile  # susceptibility 0..1
    events: gpd.GeoDataFrame  # event_id, event_date, polygon geometry (grid CRS)
    folder: Path


@functools.cache
def session_folder() -> Path:
    """This process's folder of temporary toy areas, removed when the interpreter exits."""
    # Removed at exit rather than with the ToyArea object: its RasterFiles may outlive it.
    path = Path(tempfile.mkdtemp(prefix="lsm_toy_"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def toy_area(folder: str | Path | None = None, *, seed: int = 0) -> ToyArea:
    """Write the toy area in ``folder`` (None: a new folder inside ``session_folder()``) and return it."""
    out = Path(tempfile.mkdtemp(dir=session_folder()) if folder is None else folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 40
    grid = AreaGrid(_CRS, (10.0, 0.0, 500_000.0, 0.0, -10.0, 3_000_400.0), n, n)
    scar = np.zeros((n, n), dtype=bool)
    for (r, c), _ in _LANDSLIDES[:-1]:  # the last one leaves no trace in the factors: a surprise
        scar[r:r + 3, c:c + 3] = True
    near = ndimage.gaussian_filter(scar.astype(float), 3.0)
    near /= near.max()
    dem = 300.0 + 40.0 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 4.0) * 4 + 25.0 * near
    slope = slope_deg(dem, 10.0) + 25.0 * near
    velocity = 12.0 * near + rng.normal(scale=1.0, size=(n, n))
    ndvi = np.clip(0.7 - 0.4 * near + rng.normal(scale=0.05, size=(n, n)), 0.0, 1.0)
    stack = write_raster(out / "stack.tif", np.stack([slope, velocity, ndvi]), grid, TOY_BANDS)
    prob = np.clip(0.05 + 0.9 * near + rng.normal(scale=0.03, size=(n, n)), 0.0, 1.0)
    probability = write_raster(out / "probability.tif", prob[None], grid, ["probability"])
    a, _, xmin, _, e, ymax = grid.transform
    polygons = [shapely.box(xmin + c * a, ymax + (r + 3) * e, xmin + (c + 3) * a, ymax + r * e) for (r, c), _ in _LANDSLIDES]
    events = gpd.GeoDataFrame({"event_id": [f"ls-{i + 1}" for i in range(len(_LANDSLIDES))],
                               "event_date": [d for _, d in _LANDSLIDES]}, geometry=polygons, crs=grid.crs)
    return ToyArea(grid, RasterFile(stack), RasterFile(probability), events, out)
