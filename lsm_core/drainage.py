"""The area's drainage, routed once: D8 flow accumulation, watersheds and slope units on the area grid.

TWI (``terrain``) needs the flow accumulation and the distance-decay factors (``proximity``) need the
units; both come from one D8 routing of the DEM with the mapped rivers burnt in, so the DEM is read
and routed once per area instead of once per factor family. Burning makes D8 streams follow the
mapped rivers rather than DEM artefacts, which is what both TWI and the units should see.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.windows import Window

from lsm_core.errors import GridMismatchError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid
from lsm_core.hydrology import accumulate, grid_pixel_size, route_d8
from lsm_core.io import RasterFile, RasterWriter, raster_on_grid
from lsm_core.proximity import Features, _feature_mask, slope_units, watersheds

__all__ = ["DRAINAGE_BANDS", "drainage", "read_units"]

DRAINAGE_BANDS = ("flow_accumulation_cells", "watershed", "slope_unit")


def drainage(dem: str | Path | np.ndarray, grid: AreaGrid, out_path: str | Path, rivers: Features | None = None, *,
             watershed_area_m2: float = 1e6, slope_unit_area_m2: float = 1e5, burn_rivers_m: float = 10.0,
             block: int = DEFAULT_BLOCK) -> Path:
    """Write DRAINAGE_BANDS as a float32 COG: accumulation in cells (itself included), unit labels (NaN = nodata).

    ``rivers`` are burnt ``burn_rivers_m`` metres deep before routing. Watersheds are sub-catchments of
    streams draining at least ``watershed_area_m2``; slope units are the two banks of sub-catchments
    of streams draining at least ``slope_unit_area_m2`` (m2). Memory: the D8 routing of the whole DEM
    (about 40 bytes per pixel at the peak); labels stay exact in float32 up to 2^24 units. ``block``:
    rows x cols of each window written.
    """
    z = raster_on_grid(dem, grid, reproject=True)[0] if isinstance(dem, (str, Path)) else np.asarray(dem, np.float32)
    if z.shape != grid.shape:
        raise GridMismatchError(f"DEM of shape {z.shape} is not on the grid {grid.shape}")
    if rivers is not None and burn_rivers_m > 0:
        z = z - burn_rivers_m * _feature_mask(rivers, grid, Window(0, 0, grid.width, grid.height))
    routing = route_d8(z, grid_pixel_size(grid))
    del z
    bands = [accumulate(routing).astype(np.float32),
             watersheds(routing, stream_area_m2=watershed_area_m2).astype(np.float32),
             slope_units(routing, stream_area_m2=slope_unit_area_m2).astype(np.float32)]
    del routing
    for labels in bands[1:]:
        labels[labels == 0] = np.nan
    with RasterWriter(out_path, grid, DRAINAGE_BANDS) as out:
        for b in grid.windows(block):
            rows, cols = b.write.toslices()
            out.write(np.stack([a[rows, cols] for a in bands]), b.write)
    return Path(out_path)


def read_units(drainage_raster: str | Path | RasterFile) -> dict[str, np.ndarray]:
    """Watershed and slope-unit labels (int32, 0 = nodata) of a drainage raster, as ``proximity`` takes them."""
    f = drainage_raster if isinstance(drainage_raster, RasterFile) else RasterFile(drainage_raster)
    return {name: np.nan_to_num(f.band(name), nan=0).astype(np.int32) for name in ("watershed", "slope_unit")}
