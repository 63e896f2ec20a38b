"""Distance-decay factors with the same-unit rule (DESIGN 6; paper b, section 3.2).

``f = 1 - D / Dmax`` for ``D <= Dmax`` and 0 beyond, where ``D`` (metres) runs from a pixel
centre to the nearest pixel touched by a feature - with a unit raster, the nearest such pixel in
the pixel's own unit, which need not be the nearest feature overall. Units are watersheds
(sub-catchments between stream junctions) for valleys and slope units (the two banks of each
sub-catchment) for roads and buildings; faults and mining sites have none.

``proximity_factor`` works on a whole array (an exact EDT per unit bounding box);
``proximity_factors`` writes all five bands window by window (each block grown by Dmax; an exact
separable nearest-pixel search over it, per unit over the box of the unit's block and feature
pixels), so only the unit labels are held at full size and the time grows with the area.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeAlias, TypeGuard

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from numba import njit
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.windows import Window
from scipy import ndimage

from lsm_core.errors import ConfigError, GridMismatchError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid
from lsm_core.hydrology import FlowRouting, Res, grid_pixel_size, route_d8, subcatchments
from lsm_core.io import RasterWriter, raster_on_grid, read_vector

__all__ = ["Features", "PROXIMITY_BANDS", "SOURCE_LAYER", "UNIT_OF", "area_units", "distance_decay",
           "proximity_factor", "proximity_factors", "slope_units", "watersheds"]

PROXIMITY_BANDS = ("faults", "valleys", "roads", "buildings", "mining")
SOURCE_LAYER = {"faults": "faults", "valleys": "rivers", "roads": "roads", "buildings": "buildings", "mining": "mining"}
UNIT_OF = {"faults": None, "valleys": "watershed", "roads": "slope_unit", "buildings": "slope_unit", "mining": None}

Features: TypeAlias = np.ndarray | gpd.GeoDataFrame | gpd.GeoSeries | Iterable[shapely.Geometry]


def distance_decay(distance_m: np.ndarray | float, dmax_m: float) -> np.ndarray:
    """1 - D/Dmax for D <= Dmax (metres), else 0; an infinite D (no feature) gives 0, NaN stays NaN.

    >>> import numpy as np
    >>> distance_decay(np.array([0.0, 500.0, 1000.0, 5000.0, np.inf, np.nan]), dmax_m=1000.0)
    array([1. , 0.5, 0. , 0. , 0. , nan])
    """
    if not dmax_m > 0:
        raise ConfigError(f"maximum influence distance must be positive, got {dmax_m}")
    d = np.asarray(distance_m, dtype=np.float64)
    return np.where(np.isnan(d), np.nan, np.where(d <= dmax_m, 1.0 - np.minimum(d, dmax_m) / dmax_m, 0.0))


def _routing(dem: np.ndarray | FlowRouting, res_m: Res | None) -> FlowRouting:
    if isinstance(dem, FlowRouting):
        return dem
    if res_m is None:
        raise ConfigError("res_m (pixel size in metres) is needed when a DEM is given")
    return route_d8(dem, res_m)


def _cells(area_m2: float, res_m: tuple[float, float]) -> float:
    return max(1.0, area_m2 / (res_m[0] * res_m[1]))


def watersheds(dem: np.ndarray | FlowRouting, res_m: Res | None = None, *, stream_area_m2: float = 1e6) -> np.ndarray:
    """Sub-catchment labels (int32, 0 = nodata): the area draining to each stream link between junctions.

    Streams start where the D8 contributing area reaches ``stream_area_m2``, so that threshold
    sets the unit size: pick it near the catchment area at which the mapped rivers begin. Cells
    that leave the raster without meeting a stream form small edge basins of their own.
    """
    r = _routing(dem, res_m)
    return subcatchments(r, _cells(stream_area_m2, r.res_m))


def slope_units(dem: np.ndarray | FlowRouting, res_m: Res | None = None, *, stream_area_m2: float = 1e5) -> np.ndarray:
    """Slope-unit labels (int32, 0 = nodata): each sub-catchment split into its stream's left and right bank.

    A cell takes the bank from which its flow path enters the stream (facing downstream; at a
    junction the main stem decides); stream cells go with the left bank. Label ``2k - 1`` is the
    left and ``2k`` the right half of sub-catchment ``k``.
    """
    r = _routing(dem, res_m)
    return subcatchments(r, _cells(stream_area_m2, r.res_m), split_banks=True)


def area_units(dem: np.ndarray, grid: AreaGrid, rivers: Features | None = None, *, watershed_area_m2: float = 1e6,
               slope_unit_area_m2: float = 1e5, burn_rivers_m: float = 10.0) -> dict[str, np.ndarray]:
    """Watershed and slope-unit labels of a DEM on ``grid``, routed once with the rivers burnt in (metres)."""
    z = np.asarray(dem)
    if z.shape != grid.shape:
        raise GridMismatchError(f"DEM of shape {z.shape} is not on the grid {grid.shape}")
    if rivers is not None and burn_rivers_m > 0:
        # stream burning: D8 streams then follow the mapped rivers rather than DEM artefacts
        z = z - burn_rivers_m * _feature_mask(rivers, grid, Window(0, 0, grid.width, grid.height))
    routing = route_d8(z, grid_pixel_size(grid))
    return {"watershed": watersheds(routing, stream_area_m2=watershed_area_m2),
            "slope_unit": slope_units(routing, stream_area_m2=slope_unit_area_m2)}


def proximity_factor(features: Features, grid: AreaGrid, dmax_m: float, units: np.ndarray | None = None) -> np.ndarray:
    """Distance-decay factor (0..1, float64) on ``grid`` for a feature mask or geometries in the grid CRS.

    With ``units`` (int labels, 0 = outside every unit -> NaN), the distance is to the nearest
    feature pixel of the same unit and units without a feature get 0. Without units, geometries
    outside the grid but within ``dmax_m`` count too.
    """
    res = grid_pixel_size(grid)
    sampling = (res[1], res[0])
    if units is None:
        pad = 0
        if not _is_raster(features):
            features = _geometries(features, grid)
            xmin, ymin, xmax, ymax = grid.bounds
            if len(features) and not shapely.box(xmin, ymin, xmax, ymax).contains(shapely.envelope(features)).all():
                pad = _halo(dmax_m, res)  # features beyond the rim still act inside
        window = Window(-pad, -pad, grid.width + 2 * pad, grid.height + 2 * pad)
        feat = _feature_mask(features, grid, window)
        dist = ndimage.distance_transform_edt(~feat, sampling=sampling) if feat.any() else np.full(feat.shape, np.inf)
        return distance_decay(dist[pad:pad + grid.height, pad:pad + grid.width], dmax_m)
    units = np.asarray(units)
    if units.shape != grid.shape:
        raise GridMismatchError(f"unit raster of shape {units.shape} is not on the grid {grid.shape}")
    feat = _feature_mask(features, grid, Window(0, 0, grid.width, grid.height)) & (units > 0)
    dist = np.full(grid.shape, np.inf)
    boxes = ndimage.find_objects(np.where(units > 0, units, 0).astype(np.int64))
    for u in np.unique(units[feat]):
        box = boxes[u - 1]
        in_unit = units[box] == u
        # an exact EDT inside the unit's bounding box, seeing only that unit's features
        d = ndimage.distance_transform_edt(~(feat[box] & in_unit), sampling=sampling)
        dist[box][in_unit] = d[in_unit]
    out = distance_decay(dist, dmax_m)
    out[units <= 0] = np.nan
    return out


def proximity_factors(area_layers: Mapping[str, str | Path | Features], grid: AreaGrid, dem: str | Path | np.ndarray,
                      out_path: str | Path, dmax_by_class: Mapping[str, float], *, block: int = DEFAULT_BLOCK,
                      watershed_area_m2: float = 1e6, slope_unit_area_m2: float = 1e5,
                      burn_rivers_m: float = 10.0,
                      units: Mapping[str, np.ndarray] | None = None,
                      bands: Sequence[str] = PROXIMITY_BANDS) -> Path:
    """Write the PROXIMITY_BANDS (0..1, NaN where the DEM is nodata) as a float32 COG, window by window.

    ``area_layers`` maps faults, rivers, roads, buildings and mining to vector files, GeoDataFrames
    or geometries; ``dmax_by_class`` maps each band to its Dmax in metres. Units come from the
    DEM with the rivers burnt ``burn_rivers_m`` deep, so watersheds follow the mapped rivers.
    Memory: D8 routing of the whole DEM (about 40 bytes per pixel at the peak, released) and
    then two int32 unit rasters and a validity mask (9 bytes per pixel) for the windowed pass; per
    block a few arrays of the block grown by the largest Dmax. ``units``: the ``watershed`` and
    ``slope_unit`` labels already routed (``drainage.read_units``); then the DEM only gives the
    valid pixels and the unit parameters are not used. ``bands``: the subset to write (an area without
    some of the layers leaves their bands out).
    """
    res = grid_pixel_size(grid)
    bands = [b for b in PROXIMITY_BANDS if b in bands]
    if not bands:
        raise ConfigError("no proximity band to write")
    missing = [b for b in bands if b not in dmax_by_class]
    if missing:
        raise ConfigError(f"no maximum influence distance for {missing}")
    bad = {b: dmax_by_class[b] for b in bands if not float(dmax_by_class[b]) > 0}
    if bad:
        raise ConfigError(f"maximum influence distances must be positive metres, got {bad}")
    layers = {}
    for band in bands:
        if SOURCE_LAYER[band] not in area_layers:
            raise ConfigError(f"no {SOURCE_LAYER[band]!r} layer for the {band} factor")
        layers[band] = _geometries(area_layers[SOURCE_LAYER[band]], grid)
    z = raster_on_grid(dem, grid, reproject=True)[0] if isinstance(dem, (str, Path)) else np.asarray(dem, dtype=np.float32)
    if z.shape != grid.shape:
        raise GridMismatchError(f"DEM of shape {z.shape} is not on the grid {grid.shape}")
    valid = ~np.isnan(z)
    if units is None:
        units = area_units(z, grid, layers.get("valleys"), watershed_area_m2=watershed_area_m2,
                           slope_unit_area_m2=slope_unit_area_m2, burn_rivers_m=burn_rivers_m)
    elif any(u.shape != grid.shape for u in units.values()):
        raise GridMismatchError(f"unit rasters are not on the grid {grid.shape}")
    del z
    trees = {band: shapely.STRtree(g) for band, g in layers.items()}
    with RasterWriter(out_path, grid, bands) as out:
        for b in grid.windows(block):
            rows, cols = b.write.toslices()
            stack = []
            for band in bands:
                dmax, unit = float(dmax_by_class[band]), UNIT_OF[band]
                d = _block_distance(layers[band], trees[band], grid, b.write, res, dmax,
                                    None if unit is None else units.get(unit))
                f = distance_decay(d, dmax)
                f[~valid[rows, cols]] = np.nan
                stack.append(f)
            out.write(np.stack(stack), b.write)
    return Path(out_path)


def _halo(dmax_m: float, res: tuple[float, float]) -> int:
    """Pixels within which every feature at most ``dmax_m`` away lies."""
    return int(math.ceil(dmax_m / min(res))) + 1


def _block_distance(geoms: np.ndarray, tree: shapely.STRtree, grid: AreaGrid, write: Window, res: tuple[float, float],
                    dmax_m: float, units: np.ndarray | None) -> np.ndarray:
    """Distances (m, inf from ``dmax_m`` on) from the pixels of ``write`` to the features of the grown window."""
    h = _halo(dmax_m, res)
    read = Window(write.col_off - h, write.row_off - h, write.width + 2 * h, write.height + 2 * h)
    feat = _rasterize_window(geoms, tree, grid, read)
    block = (slice(h, h + write.height), slice(h, h + write.width))
    if not feat.any():
        return np.full((write.height, write.width), np.inf)
    if units is None:
        d = _nearest_distance(feat, (0, 0), block, res)
    else:
        d = _nearest_in_units(feat, _padded_slice(units, read), block, res)
    d[d >= dmax_m] = np.inf  # strict, as the KD-tree's distance_upper_bound this replaced
    return d


def _nearest_in_units(feat: np.ndarray, units: np.ndarray, block: tuple[slice, slice],
                      res: tuple[float, float]) -> np.ndarray:
    """Distances (m) from the pixels of ``block`` to the nearest feature pixel of their own unit, inf without one.

    ``feat``, ``units``: the read window's feature mask and unit labels (0 = none). Each unit of the block is
    searched in the box of its block pixels and its feature pixels, seeing only those features: the boxes of
    watersheds and slope units add up to a few blocks, where one search of all the window's features would
    cost the whole read window per unit.
    """
    fr, fc = np.nonzero(feat)
    fu = units[fr, fc]
    ids = np.unique(fu[fu > 0])  # the units with a feature pixel in the window
    qu = units[block]
    out = np.full(qu.shape, np.inf)
    if ids.size == 0:
        return out
    # 1 + index in ids, on the block's pixels and on the feature pixels: find_objects then boxes both per unit
    k = np.minimum(np.searchsorted(ids, qu), ids.size - 1)
    hit = ids[k] == qu
    lab = np.zeros(units.shape, np.int32)
    lab[block] = np.where(hit, k + 1, 0)
    lab[fr[fu > 0], fc[fu > 0]] = np.searchsorted(ids, fu[fu > 0]) + 1
    boxes = ndimage.find_objects(lab)
    for i in np.flatnonzero(np.bincount(k[hit], minlength=ids.size)):
        box = boxes[i]
        in_unit = units[box] == ids[i]
        rows = slice(max(box[0].start, block[0].start), min(box[0].stop, block[0].stop))
        cols = slice(max(box[1].start, block[1].start), min(box[1].stop, block[1].stop))
        d = _nearest_distance(feat[box] & in_unit, (box[0].start, box[1].start), (rows, cols), res)
        mine = in_unit[_from(rows, box[0].start), _from(cols, box[1].start)]
        out[_from(rows, block[0].start), _from(cols, block[1].start)][mine] = d[mine]
    return out


def _from(sl: slice, origin: int) -> slice:
    """The slice ``sl`` of the read window counted from pixel ``origin`` on."""
    return slice(sl.start - origin, sl.stop - origin)


def _nearest_distance(feat: np.ndarray, origin: tuple[int, int], ask: tuple[slice, slice],
                      res: tuple[float, float]) -> np.ndarray:
    """Distances (m) from the read-window pixels ``ask`` to the nearest pixel of ``feat``, inf without one.

    ``feat``: a feature mask from read-window pixel ``origin`` on, holding the pixels asked. The distance to the
    nearest feature pixel is computed as cKDTree computes it (read-window index x resolution, sqrt of the summed
    squares) - the KD-tree this replaced, so the float is the same up to round-off where two feature pixels lie
    equally far and the search picks the one that rounds differently (not on whole-metre grids).
    """
    r0, c0 = origin
    nr, nc = _nearest_pixel(feat, ask[0].start - r0, ask[0].stop - r0, ask[1].start - c0, ask[1].stop - c0,
                            res[1], res[0])
    qr, qc = np.mgrid[ask]
    dr = (nr + r0) * res[1] - qr * res[1]
    dc = (nc + c0) * res[0] - qc * res[0]
    d = np.sqrt(dr * dr + dc * dc)
    d[nr < 0] = np.inf
    return d


def compile_kernels() -> None:
    """Compile the numba kernel into its on-disk cache (``make install`` runs this once; else ~1.7 s per process)."""
    feat = np.zeros((4, 4), bool)
    feat[1, 2] = True
    _nearest_distance(feat, (0, 0), (slice(0, 4), slice(0, 4)), (10.0, 10.0))


@njit(cache=True)
def _nearest_pixel(feat, r0, r1, c0, c1, sr, sc):
    """Row and column (-1: none) of the True pixel of ``feat`` nearest to each pixel of [r0, r1) x [c0, c1).

    Exact and separable (Felzenszwalb & Huttenlocher 2012), with pixels ``sr`` m high and ``sc`` m wide:
    per column the feature row nearest to each asked row, then per asked row the lower envelope of the
    parabolas (x - x_col)^2 + (row distance in that column)^2. Time: feat's pixels + asked rows x its columns,
    so a block grown by Dmax costs a few blocks, where an EDT of the grown window costs (1 + 2 Dmax/block)^2.
    """
    h, w = feat.shape
    n = r1 - r0
    near = np.full((n, w), -1, np.int64)
    last = np.full(w, -1, np.int64)
    for r in range(r1):  # downwards: the last feature row at or above
        for c in range(w):
            if feat[r, c]:
                last[c] = r
            if r >= r0:
                near[r - r0, c] = last[c]
    last[:] = -1
    for r in range(h - 1, r0 - 1, -1):  # upwards: the next one at or below, if nearer
        for c in range(w):
            if feat[r, c]:
                last[c] = r
            if r < r1 and last[c] >= 0 and (near[r - r0, c] < 0 or last[c] - r < r - near[r - r0, c]):
                near[r - r0, c] = last[c]
    out_r = np.full((n, c1 - c0), -1, np.int64)
    out_c = np.full((n, c1 - c0), -1, np.int64)
    v = np.empty(w, np.int64)  # the envelope's columns, left to right
    z = np.empty(w)  # where each starts (m)
    g = np.empty(w)  # its parabola's squared row distance + squared x (m^2)
    for i in range(n):
        k = -1
        for c in range(w):
            if near[i, c] < 0:
                continue
            x = c * sc
            gc = ((near[i, c] - r0 - i) * sr) ** 2 + x * x
            s = -np.inf
            while k >= 0:
                s = (gc - g[k]) / (2.0 * (x - v[k] * sc))
                if s > z[k]:
                    break
                k -= 1
                s = -np.inf
            k += 1
            v[k], z[k], g[k] = c, s, gc
        j = 0
        for q in range(c0, c1 if k >= 0 else c0):
            while j < k and z[j + 1] < q * sc:
                j += 1
            out_r[i, q - c0] = near[i, v[j]]
            out_c[i, q - c0] = v[j]
    return out_r, out_c


def _padded_slice(arr: np.ndarray, window: Window) -> np.ndarray:
    """``arr`` at ``window``, zero where the window leaves the array."""
    out = np.zeros((int(window.height), int(window.width)), arr.dtype)
    r0, c0 = int(window.row_off), int(window.col_off)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + out.shape[0], arr.shape[0]), min(c0 + out.shape[1], arr.shape[1])
    if re > rs and ce > cs:
        out[rs - r0:re - r0, cs - c0:ce - c0] = arr[rs:re, cs:ce]
    return out


def _rasterize_window(geoms: np.ndarray, tree: shapely.STRtree | None, grid: AreaGrid, window: Window) -> np.ndarray:
    """Pixels of ``window`` (may extend past the grid) touched by any geometry."""
    shape = (int(window.height), int(window.width))
    a, b, c, d, e, f = grid.transform
    # built by hand: rasterio.windows.transform multiplies Affines with `*`, which now warns
    col, row = window.col_off, window.row_off
    transform = Affine(a, b, c + a * col + b * row, d, e, f + d * col + e * row)
    if tree is not None:
        x0, y0 = transform.c, transform.f
        x1, y1 = x0 + a * shape[1] + b * shape[0], y0 + d * shape[1] + e * shape[0]
        geoms = geoms[tree.query(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))]
    if len(geoms) == 0:
        return np.zeros(shape, bool)
    return rasterize(((g, 1) for g in geoms), out_shape=shape, transform=transform, all_touched=True, fill=0,
                     dtype="uint8").astype(bool)


def _is_raster(features: Features) -> TypeGuard[np.ndarray]:
    return isinstance(features, np.ndarray) and features.ndim == 2 and features.dtype != object


def _feature_mask(features: Features, grid: AreaGrid, window: Window) -> np.ndarray:
    """A boolean feature mask for ``window``: a raster on the grid as given, geometries rasterised."""
    if _is_raster(features):
        if features.shape != grid.shape:
            raise GridMismatchError(f"feature raster of shape {features.shape} is not on the grid {grid.shape}")
        return _padded_slice(features != 0, window)
    return _rasterize_window(_geometries(features, grid), None, grid, window)


def _geometries(layer: str | Path | Features, grid: AreaGrid) -> np.ndarray:
    """Non-empty geometries of a layer in the grid CRS (a file, GeoDataFrame/GeoSeries or geometries)."""
    if isinstance(layer, (str, Path)):
        # no overlap check: features just outside the area still act within Dmax
        gdf = read_vector(layer)
        if gdf.crs is None:
            raise GridMismatchError("vector layer has no CRS", layer)
        layer = gdf
    if isinstance(layer, (gpd.GeoDataFrame, gpd.GeoSeries)):
        gs = layer.geometry if isinstance(layer, gpd.GeoDataFrame) else layer
        if gs.crs is not None and CRS.from_user_input(gs.crs) != CRS.from_user_input(grid.crs):
            gs = gs.to_crs(grid.crs)
        geoms = np.asarray(gs.values, dtype=object)
    else:
        geoms = np.asarray(list(layer), dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))] if len(geoms) else geoms
    return geoms
