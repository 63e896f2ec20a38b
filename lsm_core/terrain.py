"""Terrain factors from a DEM: slope, northness / eastness, curvatures, relief, TWI (DESIGN 1, 4).

Aspect is circular (359 degrees is next to 1 degree) and undefined on flat cells, so the models and
the JS threshold's bins get it as northness = cos(aspect) and eastness = sin(aspect) (-1..1, flat
cells 0, 0), never as raw degrees. Aspect in degrees is still written, to a side file
(``aspect_sidecar``), for the projection of LOS velocity onto the downslope direction.

Arrays are DEMs in metres with NaN nodata and a pixel size in metres (a scalar, or (x, y) for
rectangular pixels); results are float64 arrays of the same shape, NaN where the DEM is NaN.

The 3 x 3 operators (slope, aspect, curvatures) follow ``gdaldem -compute_edges``: a neighbour
off the array is extrapolated linearly (2 x edge - next), and one that is nodata (or extrapolated
from nodata) takes the centre cell's value, so the rim of the study area and of voids keeps
values instead of losing a ring of pixels. (gdaldem treats the four corner pixels slightly
differently; only they differ.) Relief ignores nodata and off-array cells in its window. Thanks
to these rules a window read with a halo of ``terrain_halo(...)`` pixels gives exactly the
whole-array result.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
from scipy import ndimage

from lsm_core.errors import ShapeError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid
from lsm_core.hydrology import Res, flow_accumulation, grid_pixel_size, pixel_size
from lsm_core.io import RasterFile, RasterWriter, raster_on_grid, raster_window_on_grid

__all__ = [
    "FLAT_ASPECT", "TERRAIN_BANDS", "aspect_deg", "aspect_sidecar", "eastness", "flow_accumulation", "northness",
    "plan_curvature", "profile_curvature", "relief_m", "slope_deg", "terrain_factors", "terrain_halo", "twi",
]

TERRAIN_BANDS = ("slope_deg", "northness", "eastness", "plan_curvature", "profile_curvature", "relief_m", "twi")
FLAT_ASPECT = -1.0  # aspect of cells with zero gradient: keeps them valid samples, outside 0..360


def _window3(dem: np.ndarray) -> list[np.ndarray]:
    """The 3 x 3 neighbours z1..z9 (row-major, z1 = north-west) as float64; see the module notes on edges."""
    z = np.asarray(dem, dtype=np.float64)
    if z.ndim != 2:
        raise ShapeError(f"DEM must be 2-D, got shape {z.shape}")
    h, w = z.shape
    p = np.pad(z, 1, mode="reflect", reflect_type="odd")  # 2a - b: linear extrapolation past the edge
    out = []
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            nb = p[dr:dr + h, dc:dc + w]
            out.append(np.where(np.isnan(nb), z, nb))
    return out


def _horn(dem: np.ndarray, res_m: Res) -> tuple[np.ndarray, np.ndarray]:
    """Horn (1981) gradient: dz/dx towards east and dz/dy towards north (m/m)."""
    xres, yres = pixel_size(res_m)
    z1, z2, z3, z4, _, z6, z7, z8, z9 = _window3(dem)
    dzdx = ((z3 + 2 * z6 + z9) - (z1 + 2 * z4 + z7)) / (8 * xres)
    dzdy = ((z1 + 2 * z2 + z3) - (z7 + 2 * z8 + z9)) / (8 * yres)
    return dzdx, dzdy


def slope_deg(dem: np.ndarray, res_m: Res) -> np.ndarray:
    """Slope in degrees (0..90), Horn's method as ``gdaldem slope``; ``dem`` in metres, ``res_m`` the pixel size.

    >>> import numpy as np
    >>> ramp = np.add.outer(np.zeros(3), np.arange(3.0) * 10.0)  # rises 10 m per 10 m pixel to the east
    >>> slope_deg(ramp, 10.0)
    array([[45., 45., 45.],
           [45., 45., 45.],
           [45., 45., 45.]])
    """
    dzdx, dzdy = _horn(dem, res_m)
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy)))


def aspect_deg(dem: np.ndarray, res_m: Res) -> np.ndarray:
    """Downslope direction in degrees clockwise from north [0, 360) (Horn, as ``gdaldem aspect``); flat = -1."""
    dzdx, dzdy = _horn(dem, res_m)
    with np.errstate(invalid="ignore"):
        a = np.degrees(np.arctan2(-dzdx, -dzdy)) % 360.0
        a = np.where(a >= 360.0, 0.0, a)  # -tiny % 360 rounds to 360
        return np.where((dzdx == 0) & (dzdy == 0), FLAT_ASPECT, a)


def _downslope_unit(dem: np.ndarray, res_m: Res) -> tuple[np.ndarray, np.ndarray]:
    """North and east components (-1..1) of the unit downslope direction (Horn); 0, 0 on flat cells."""
    dzdx, dzdy = _horn(dem, res_m)
    g = np.hypot(dzdx, dzdy)
    with np.errstate(invalid="ignore", divide="ignore"):
        # downslope = -gradient; a flat cell has no direction: 0, 0 is the mean of all directions
        north, east = np.where(g > 0, 0.0 - dzdy / g, 0.0), np.where(g > 0, 0.0 - dzdx / g, 0.0)  # no -0.0
    nan = np.isnan(g)
    return np.where(nan, np.nan, north), np.where(nan, np.nan, east)


def northness(dem: np.ndarray, res_m: Res) -> np.ndarray:
    """cos(aspect) (-1..1): 1 = facing north, -1 = facing south, 0 = east, west or flat.

    >>> import numpy as np
    >>> north_facing = np.add.outer(np.arange(3.0) * 10.0, np.zeros(3))  # falls towards row 0 (north)
    >>> float(northness(north_facing, 10.0)[1, 1]), float(eastness(north_facing, 10.0)[1, 1])
    (1.0, 0.0)
    """
    return _downslope_unit(dem, res_m)[0]


def eastness(dem: np.ndarray, res_m: Res) -> np.ndarray:
    """sin(aspect) (-1..1): 1 = facing east, -1 = facing west, 0 = north, south or flat."""
    return _downslope_unit(dem, res_m)[1]


def _zt_derivatives(dem: np.ndarray, res_m: Res) -> tuple[np.ndarray, ...]:
    """Zevenbergen & Thorne (1987) p = dz/dx, q = dz/dy (north), r = d2z/dx2, s = d2z/dxdy, t = d2z/dy2."""
    xres, yres = pixel_size(res_m)
    z1, z2, z3, z4, z5, z6, z7, z8, z9 = _window3(dem)
    p = (z6 - z4) / (2 * xres)
    q = (z2 - z8) / (2 * yres)
    r = (z4 + z6 - 2 * z5) / xres**2
    t = (z2 + z8 - 2 * z5) / yres**2
    s = (z3 + z7 - z1 - z9) / (4 * xres * yres)
    return p, q, r, s, t


def profile_curvature(dem: np.ndarray, res_m: Res) -> np.ndarray:
    """Curvature along the slope line in 1/m (minus the 2nd derivative along the gradient): convex > 0, flat = 0.

    Zevenbergen & Thorne (1987) as in ArcGIS and xdem, but in 1/m (not 1/100 m) and with convex
    (upward-bulging, flow accelerating) positive; exact for quadratic surfaces, e.g. 1/R on
    ``z = -x**2 / (2R)`` away from x = 0.
    """
    p, q, r, s, t = _zt_derivatives(dem, res_m)
    g2 = p * p + q * q
    with np.errstate(invalid="ignore", divide="ignore"):
        k = -(p * p * r + 2 * p * q * s + q * q * t) / g2
    return np.where(g2 > 0, k, np.where(np.isnan(g2), np.nan, 0.0))


def plan_curvature(dem: np.ndarray, res_m: Res) -> np.ndarray:
    """Curvature across the slope in 1/m (minus the 2nd derivative along the contour): convex/divergent > 0, flat = 0.

    Zevenbergen & Thorne (1987) planform curvature in 1/m with ridges (flow diverging) positive
    and hollows (flow converging) negative; 1/R on the crest line of ``z = -x**2 / (2R) + c*y``.
    """
    p, q, r, s, t = _zt_derivatives(dem, res_m)
    g2 = p * p + q * q
    with np.errstate(invalid="ignore", divide="ignore"):
        k = -(q * q * r - 2 * p * q * s + p * p * t) / g2
    return np.where(g2 > 0, k, np.where(np.isnan(g2), np.nan, 0.0))


def relief_radius_px(res_m: Res, radius_m: float) -> int:
    """Radius in pixels (at least 1) of a relief window of ``radius_m`` metres."""
    return max(1, int(round(radius_m / min(pixel_size(res_m)))))


def relief_m(dem: np.ndarray, res_m: Res, radius_m: float = 100.0) -> np.ndarray:
    """Local relief in metres: max - min elevation within ``radius_m`` of each cell (circular window)."""
    rad = relief_radius_px(res_m, radius_m)
    z = np.asarray(dem, dtype=np.float64)
    nan = np.isnan(z)
    # mode="nearest" repeats edge cells, which already lie in the disk: the same as ignoring the outside
    hi = _disk_filter(np.where(nan, -np.inf, z), rad, ndimage.maximum_filter1d, np.maximum)
    lo = _disk_filter(np.where(nan, np.inf, z), rad, ndimage.minimum_filter1d, np.minimum)
    return np.where(nan, np.nan, hi - lo)


def _disk_rectangles(rad: int) -> list[tuple[int, int]]:
    """Half-heights and half-widths (dy, dx) of rectangles whose union is the disk x^2 + y^2 <= rad^2.

    A cell (y, x) lies in the disk iff |x| <= w(|y|), w(d) = floor(sqrt(rad^2 - d^2)); w never grows
    with d, so the rectangles |y| <= d, |x| <= w(d) cover exactly the disk; of those with the same w
    the tallest contains the others.
    """
    widths = [int(np.floor(np.sqrt(rad * rad - d * d) + 1e-9)) for d in range(rad + 1)]
    return [(d, w) for d, w in enumerate(widths) if d == rad or widths[d + 1] != w]


def _disk_filter(z: np.ndarray, rad: int, filter1d, combine) -> np.ndarray:
    """``ndimage.maximum_filter`` (or minimum) of ``z`` over the disk footprint of radius ``rad``, mode
    "nearest", as the max (min) of separable rectangle filters: two running 1-D passes per rectangle
    instead of every disk cell per pixel, with exactly the same values (a max over a union of sets is
    the max of the maxima; "nearest" clamps each axis on its own, so it separates too)."""
    out = None
    for dy, dx in _disk_rectangles(rad):
        part = filter1d(filter1d(z, 2 * dx + 1, axis=1, mode="nearest"), 2 * dy + 1, axis=0, mode="nearest")
        out = part if out is None else combine(out, part, out=out)
    assert out is not None
    return out


def twi(acc_cells: np.ndarray, slope: np.ndarray, res_m: Res, min_tan_slope: float = 1e-3) -> np.ndarray:
    """Topographic wetness index ln(a / tan b): a = acc x cell width (m), b = slope (deg), tan b >= min_tan_slope."""
    xres, yres = pixel_size(res_m)
    a = np.asarray(acc_cells, dtype=np.float64) * np.sqrt(xres * yres)  # cell area / contour width
    tan_b = np.maximum(np.tan(np.radians(np.asarray(slope, dtype=np.float64))), min_tan_slope)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(a / tan_b)


def terrain_halo(res_m: Res, relief_radius_m: float) -> int:
    """Pixels of halo a window needs so that every local operator here matches the whole array."""
    return max(1, relief_radius_px(res_m, relief_radius_m))


def local_factors(dem: np.ndarray, res_m: Res, relief_radius_m: float = 100.0) -> dict[str, np.ndarray]:
    """Slope, northness, eastness, plan/profile curvature and relief of a DEM window (see TERRAIN_BANDS)."""
    north, east = _downslope_unit(dem, res_m)
    return {
        "slope_deg": slope_deg(dem, res_m),
        "northness": north,
        "eastness": east,
        "plan_curvature": plan_curvature(dem, res_m),
        "profile_curvature": profile_curvature(dem, res_m),
        "relief_m": relief_m(dem, res_m, relief_radius_m),
    }


def aspect_sidecar(terrain_path: str | Path) -> Path:
    """Path of the aspect raster (degrees, band ``aspect_deg``) written beside a terrain-factor raster."""
    p = Path(terrain_path)
    return p.with_name(f"{p.stem}__aspect{p.suffix}")


def terrain_factors(dem_path: str | Path, grid: AreaGrid, out_path: str | Path, *, block: int = DEFAULT_BLOCK,
                    relief_radius_m: float = 100.0, min_tan_slope: float = 1e-3,
                    flow_accumulation_cells: RasterFile | None = None, aspect_path: str | Path | None = None) -> Path:
    """Write the seven TERRAIN_BANDS of a DEM (resampled to ``grid``) as a float32 COG, window by window.

    ``aspect_path``: also write aspect in degrees (``aspect_deg``, flat = FLAT_ASPECT) there, for the
    downslope projection of LOS velocity; it is not a model factor (see the module notes).

    The local operators read each block with a halo (``terrain_halo``), so memory is a few
    blocks. TWI needs flow accumulation, a global operation: the DEM is routed once as a whole
    (about 35 bytes per pixel at the peak, released before the windowed pass) and only the
    float32 accumulation (4 bytes per pixel) is kept. A 10 m DEM of 10^8 pixels (100 km x
    100 km) therefore needs about 3.5 GB; an area larger than memory needs a tiled flow routing
    (see ``lsm_core.hydrology``) whose accumulation raster is then read here window by window.
    TWI combines that D8 accumulation of the depression-filled DEM with the Horn slope of the
    DEM as given. ``flow_accumulation_cells``: a raster on the grid whose first band is the
    accumulation already routed (``drainage.drainage``); it is then read window by window and the
    DEM is not routed here.
    """
    res = grid_pixel_size(grid)
    if flow_accumulation_cells is not None:
        grid.check_same(flow_accumulation_cells.grid, flow_accumulation_cells.path)
        acc = None
    else:
        acc = flow_accumulation(raster_on_grid(dem_path, grid, reproject=True)[0], res).astype(np.float32)
    halo = terrain_halo(res, relief_radius_m)
    with ExitStack() as stack:
        out = stack.enter_context(RasterWriter(out_path, grid, TERRAIN_BANDS))
        aspect_out = (None if aspect_path is None
                      else stack.enter_context(RasterWriter(aspect_path, grid, ["aspect_deg"])))
        for b in grid.windows(block, halo):
            dem = raster_window_on_grid(dem_path, grid, b.read, reproject=True)[0]
            bands = {k: v[b.inner] for k, v in local_factors(dem, res, relief_radius_m).items()}
            if aspect_out is not None:
                aspect_out.write(aspect_deg(dem, res)[b.inner][None], b.write)
            rows, cols = b.write.toslices()
            if acc is not None:
                acc_w = acc[rows, cols]
            else:
                assert flow_accumulation_cells is not None  # acc is None only when it was given
                acc_w = flow_accumulation_cells.read(b.write, [1])[0]
            bands["twi"] = twi(acc_w, bands["slope_deg"], res, min_tan_slope)
            out.write(np.stack([bands[k] for k in TERRAIN_BANDS]), b.write)
    return Path(out_path)
