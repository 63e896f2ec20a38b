"""Landslide-prone areas from a susceptibility map (DESIGN 6 "Prone areas"), and natural-breaks classes.

Conventions:

- A pixel is a prone candidate when its probability (0..1) is >= the threshold, compared in float64.
  Nodata pixels and everything outside the grid count as background (not prone).
- Morphology: binary opening then closing with disk structuring elements (``x^2 + y^2 <= r^2``, in
  pixels), on the infinite plane: the closing never removes prone pixels on the raster edge. The
  closing may bridge nodata pixels, but the result is masked back to valid pixels.
- Clusters and polygons use 4-connectivity (rasterio.features.shapes' default), so a polygon never
  touches another one of the same cluster only at a corner.
- Windowed: each block is read with a halo of ``2 * (opening + closing radius)`` pixels, the
  reach of the two operations, so the result equals the whole-array result for any block size.
- Labelling is tiled: blocks are labelled one by one, labels that meet across block edges are
  joined by a union-find (scipy csgraph) and sizes summed per cluster. Memory is O(raster width +
  number of clusters + output polygons), never O(pixels). ``prone_id`` numbers the kept clusters
  by their first pixel in row-major order, so ids do not depend on the block size either.
  Kept instead of ``dask_image.ndmeasure.label`` (benchmarks/bench_label.py, 9 M-pixel mask,
  512-pixel blocks): the same partition as ``scipy.ndimage.label``, dask-image about 20x slower
  and 4x the peak memory of this two-pass labelling, whose first pass (sizes for the area
  filter) holds O(width + clusters) memory.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from numpy.typing import ArrayLike
from rasterio.features import shapes
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.affinity import affine_transform
from shapely.geometry import shape

from lsm_core.errors import ConfigError, GridMismatchError, LsmError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid, Block
from lsm_core.io import RasterWriter, band_names, grid_of, read_raster, write_vector

__all__ = ["DEFAULT_MIN_AREA_M2", "MASK_NODATA", "VELOCITY_BAND", "ProneAreasResult", "check_grids", "classify", "disk",
           "natural_breaks", "open_close", "prone_areas", "raster_natural_breaks", "sample_valid", "velocity_band"]

DEFAULT_MIN_AREA_M2 = 2500.0  # 25 pixels at 10 m: smaller specks are noise at the scale of a slope
MASK_NODATA = 255
VELOCITY_BAND = "velocity_mm_yr"
_FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class ProneAreasResult:
    """What ``prone_areas`` wrote and counted: output paths, threshold (0..1), pixel counts, areas (m2), shares (0..1)."""

    raster: str  # the 0/1 uint8 COG (255 = nodata)
    gpkg: str  # the polygons (layer ``prone_areas``)
    threshold: float  # probability 0..1
    n_polygons: int  # kept 4-connected clusters
    prone_pixels: int  # after opening, closing and the area filter
    valid_pixels: int  # pixels with a probability
    prone_area_m2: float
    prone_share: float  # prone / valid pixels, 0..1 (NaN without valid pixels)
    raw_share: float  # share at or above the threshold before morphology and the area filter, 0..1
    n_removed_clusters: int  # clusters under ``min_area_m2``
    removed_area_m2: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def disk(radius_px: int) -> np.ndarray:
    """Boolean disk structuring element of radius ``radius_px`` pixels (2r+1 square)."""
    y, x = np.ogrid[-radius_px:radius_px + 1, -radius_px:radius_px + 1]
    return x * x + y * y <= radius_px * radius_px


def open_close(mask: ArrayLike, opening_radius_px: int = 1, closing_radius_px: int = 1) -> np.ndarray:
    """Binary opening then closing (disk radii in pixels); outside the array is background."""
    out = np.asarray(mask, dtype=bool)
    if opening_radius_px > 0:
        # scipy's zero border is exactly the infinite-plane opening with a background outside
        out = ndimage.binary_opening(out, structure=disk(opening_radius_px))
    if closing_radius_px > 0:
        r = closing_radius_px
        # pad so the erosion half of the closing sees the dilated pad, not a zero border that
        # would strip prone pixels on the raster edge
        closed = ndimage.binary_closing(np.pad(out, r), structure=disk(r))
        out = closed[r:-r, r:-r]
    return out


def velocity_band(path: str | Path) -> int:
    """1-based band of the velocity (mm/yr): the band named ``velocity_mm_yr``, else band 1."""
    names = [n.lower() for n in band_names(path)]
    return names.index(VELOCITY_BAND) + 1 if VELOCITY_BAND in names else 1


def check_grids(reference: AreaGrid | None, *paths: str | Path | None) -> AreaGrid:
    """The common grid of the rasters; GridMismatchError names the first file off ``reference`` (or the first file)."""
    ref, ref_name = reference, "the expected grid"
    for p in paths:
        if p is None:
            continue
        g = grid_of(p)
        if ref is None:
            ref, ref_name = g, str(p)
            continue
        try:
            ref.check_same(g)
        except GridMismatchError as exc:
            raise GridMismatchError(f"not on the grid of {ref_name}: {exc}", p) from None
    if ref is None:
        raise LsmError("no raster given")
    return ref


def _validate(threshold: float, opening: int, closing: int, min_area_m2: float) -> None:
    if not (np.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ConfigError(f"threshold is a probability in 0..1, got {threshold} (a percentage? pass t/100)")
    for name, r in (("opening_radius_px", opening), ("closing_radius_px", closing)):
        if int(r) != r or r < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {r}")
    if not min_area_m2 >= 0:
        raise ConfigError(f"min_area_m2 must be >= 0, got {min_area_m2}")


def _blocks(path: Path, grid: AreaGrid, threshold: float, opening: int, closing: int, block: int):
    """Per block, for its own pixels: (block, probability, valid, filtered mask, candidate count)."""
    halo = 2 * (opening + closing)
    for blk in grid.windows(block, halo):
        prob = read_raster(path, blk.read, [1])[0].astype(np.float64)
        valid = np.isfinite(prob)
        raw = np.zeros(prob.shape, dtype=bool)
        np.greater_equal(prob, threshold, out=raw, where=valid)
        mask = open_close(raw, opening, closing)[blk.inner]
        valid, prob, raw = valid[blk.inner], prob[blk.inner], raw[blk.inner]
        yield blk, prob, valid, mask & valid, int(raw.sum())


def _pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distinct (a, b) label pairs where both sides of a block edge are labelled."""
    both = (a > 0) & (b > 0)
    return np.unique(np.stack([a[both], b[both]], axis=1), axis=0)


def _label_pass(blocks, grid: AreaGrid) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Tiled labelling: per-block offsets, cluster of every block label, its size and first pixel."""
    offsets, counts, firsts, pairs = [], [], [], []
    bottom = np.zeros(grid.width, dtype=np.int64)  # global labels of the last row labelled per column
    right = np.zeros(0, dtype=np.int64)
    n_total = n_valid = n_raw = 0
    for blk, _, valid, mask, raw in blocks:
        w = blk.write
        lab, n = ndimage.label(mask, structure=_FOUR)
        gl = np.where(lab > 0, lab.astype(np.int64) + n_total, 0)
        ids, first, cnt = np.unique(lab.ravel(), return_index=True, return_counts=True)
        sel = ids > 0
        counts.append(cnt[sel])
        firsts.append((w.row_off + first[sel] // w.width) * grid.width + w.col_off + first[sel] % w.width)
        cols = slice(w.col_off, w.col_off + w.width)
        if w.row_off > 0:
            pairs.append(_pairs(bottom[cols], gl[0]))
        if w.col_off > 0:
            pairs.append(_pairs(right, gl[:, 0]))
        bottom[cols], right = gl[-1], gl[:, -1]
        offsets.append(n_total)
        n_total += n
        n_valid += int(valid.sum())
        n_raw += raw
    count = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    first = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
    if n_total == 0:
        return offsets, np.zeros(0, np.int64), count, first, n_valid, n_raw
    edges = np.concatenate(pairs) - 1 if pairs else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_total, n_total))
    _, cluster = connected_components(graph, directed=False)
    return offsets, cluster, count, first, n_valid, n_raw


def prone_areas(probability_path: str | Path, threshold: float, out_raster: str | Path, out_gpkg: str | Path, *,
                opening_radius_px: int = 1, closing_radius_px: int = 1, min_area_m2: float = DEFAULT_MIN_AREA_M2,
                velocity_path: str | Path | None = None, expected_grid: AreaGrid | None = None,
                block: int = DEFAULT_BLOCK) -> ProneAreasResult:
    """Prone-area 0/1 uint8 COG (255 = nodata) and polygons (GeoPackage) for probability >= ``threshold`` (0..1).

    Steps: threshold, opening, closing, removal of 4-connected clusters under ``min_area_m2`` (m2),
    polygons with ``prone_id``, ``n_pixels``, ``area_m2``, ``mean_probability`` and
    ``mean_abs_velocity_mm_yr`` (NaN without a velocity raster or valid velocity). Both outputs are
    written atomically. A raster off ``expected_grid`` (or off the probability grid) raises
    GridMismatchError naming the file. Returns a ``ProneAreasResult`` (pixel counts, shares of the valid area).

    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()
    >>> s = prone_areas(toy.probability.path, 0.5, toy.folder / "prone.tif", toy.folder / "prone.gpkg")
    >>> s.n_polygons, s.prone_pixels, s.prone_area_m2, round(s.prone_share, 3)
    (4, 218, 21800.0, 0.136)
    """
    _validate(threshold, opening_radius_px, closing_radius_px, min_area_m2)
    prob_path = Path(probability_path)
    grid = check_grids(expected_grid, prob_path, velocity_path)
    a, b, _, d, e, _ = grid.transform
    pixel_m2 = abs(a * e - b * d)
    args = (prob_path, grid, float(threshold), int(opening_radius_px), int(closing_radius_px), block)

    offsets, cluster, count, first, n_valid, n_raw = _label_pass(_blocks(*args), grid)
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    size = np.bincount(cluster, weights=count, minlength=n_clusters).astype(np.int64)
    start = np.full(n_clusters, np.iinfo(np.int64).max)
    np.minimum.at(start, cluster, first)
    kept = np.flatnonzero(size * pixel_m2 >= min_area_m2)
    kept = kept[np.argsort(start[kept], kind="stable")]
    n_kept = len(kept)
    final = np.zeros(n_clusters, dtype=np.int64)
    final[kept] = np.arange(1, n_kept + 1)
    final_of_label = np.concatenate([[0], final[cluster]])  # index: global block label (0 = background)

    sum_p = np.zeros(n_kept + 1)
    sum_v = np.zeros(n_kept + 1)
    n_v = np.zeros(n_kept + 1)
    pieces: dict[int, list] = defaultdict(list)
    vband = velocity_band(velocity_path) if velocity_path is not None else None
    tags = {"threshold": repr(float(threshold)), "opening_radius_px": str(opening_radius_px),
            "closing_radius_px": str(closing_radius_px), "min_area_m2": repr(float(min_area_m2))}
    with RasterWriter(out_raster, grid, ["prone"], dtype="uint8", nodata=MASK_NODATA, tags=tags) as writer:
        for (blk, prob, valid, mask, _), offset in zip(_blocks(*args), offsets, strict=True):
            lab, _ = ndimage.label(mask, structure=_FOUR)
            pid = final_of_label[np.where(lab > 0, lab.astype(np.int64) + offset, 0)]
            on = pid > 0
            writer.write(np.where(valid, on, MASK_NODATA).astype(np.uint8), blk.write)
            sum_p += np.bincount(pid[on], weights=prob[on], minlength=n_kept + 1)
            if vband is not None and velocity_path is not None:  # vband is set only with a velocity raster
                v = np.abs(read_raster(velocity_path, blk.write, [vband])[0].astype(np.float64))
                ok = on & np.isfinite(v)
                sum_v += np.bincount(pid[ok], weights=v[ok], minlength=n_kept + 1)
                n_v += np.bincount(pid[ok], minlength=n_kept + 1)
            _polygon_pieces(pid, on, blk, pieces)

    n_px = size[kept]
    to_map = [a, b, d, e, grid.transform[2], grid.transform[5]]
    # simplify(0) drops the collinear vertices left where block pieces were joined
    geoms = [affine_transform(shapely.simplify(shapely.union_all(pieces[i]), 0), to_map) for i in range(1, n_kept + 1)]
    mean_v = np.full(n_kept + 1, np.nan)
    np.divide(sum_v, n_v, out=mean_v, where=n_v > 0)
    gdf = gpd.GeoDataFrame({"prone_id": np.arange(1, n_kept + 1, dtype=np.int32), "n_pixels": n_px,
                            "area_m2": n_px * pixel_m2, "mean_probability": sum_p[1:] / np.maximum(n_px, 1),
                            "mean_abs_velocity_mm_yr": mean_v[1:]},
                           geometry=gpd.GeoSeries(geoms, crs=grid.crs), crs=grid.crs)
    write_vector(out_gpkg, gdf, layer="prone_areas")
    n_prone = int(n_px.sum())
    share = n_prone / n_valid if n_valid else float("nan")
    return ProneAreasResult(raster=str(out_raster), gpkg=str(out_gpkg), threshold=float(threshold),
                            n_polygons=int(n_kept), prone_pixels=n_prone, valid_pixels=int(n_valid),
                            prone_area_m2=float(n_prone * pixel_m2), prone_share=share,
                            raw_share=n_raw / n_valid if n_valid else float("nan"),
                            n_removed_clusters=int(n_clusters - n_kept),
                            removed_area_m2=float((size.sum() - n_prone) * pixel_m2))


def _polygon_pieces(pid: np.ndarray, on: np.ndarray, blk: Block, pieces: dict[int, list]) -> None:
    """Add the block's polygons per prone id, in pixel coordinates of the grid (exact integers)."""
    if not on.any():
        return
    # pixel coordinates keep shared block edges bit-identical, so the union per id is exact
    shift = Affine.translation(blk.write.col_off, blk.write.row_off)
    for geom, value in shapes(pid.astype(np.int32), mask=on, connectivity=4, transform=shift):
        pieces[int(value)].append(shape(geom))


# --- natural breaks -------------------------------------------------------------------------------

def sample_valid(path: str | Path, n: int, *, seed: int = 0, band: int = 1, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Up to ``n`` valid values of a raster band, a seeded uniform sample that does not depend on ``block``."""
    from lsm_core.io import RasterFile
    from lsm_core.sampling import sample_pixels

    drawn = sample_pixels(RasterFile(path), n, seed=seed, block=block, allow_fewer=True)
    return drawn.values[:, band - 1]


_JENKS_CELLS = 2**16  # cells of the chunk of natural_breaks' cost table done at once (fits in cache)


def natural_breaks(values: ArrayLike, k: int = 5, *, sample: int = 5000, seed: int = 0) -> np.ndarray:
    """Fisher-Jenks natural breaks: the k-1 class boundaries minimising the within-class sum of squares.

    Exact dynamic programme on the distinct finite values (weighted by their counts) of a seeded
    sample of at most ``sample`` values. A boundary is the midpoint between the largest value of
    one class and the smallest of the next; classes are lower-inclusive (see ``classify``).

    Kept instead of ``mapclassify.FisherJenks`` (benchmarks/bench_jenks.py): both find the same
    classes (100 % of values, equal within-class sum of squares); mapclassify is about 2x faster
    once loaded, but importing it compiles its numba kernel (about 2 s), so the first call in a
    fresh process - each Dagster step is one - is about 15x slower than this one (0.13 s at the
    default 5000 values).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) > sample:
        v = np.random.default_rng(seed).choice(v, size=sample, replace=False)
    u, w = np.unique(v, return_counts=True)
    if k < 2 or len(u) < k:
        raise LsmError(f"natural breaks need k >= 2 and at least k distinct values; got k={k}, {len(u)} distinct")
    m = len(u)
    cw, cx, cxx = (np.concatenate([[0.0], np.cumsum(x)]) for x in (w, w * u, w * u * u))
    cost = np.full((k, m), np.inf)
    start = np.zeros((k, m), dtype=np.int64)
    # Last values of a class, a chunk at a time (one array op over the chunk instead of one per value:
    # the per-value loop spent most of its time in NumPy call overhead). Every cost is the same float
    # expression as in the per-value programme and ties go to the first start, so the breaks are the same.
    rows = max(1, _JENKS_CELLS // m)
    for j0 in range(0, m, rows):
        last = np.arange(j0, min(j0 + rows, m))
        i = np.arange(last[-1] + 1)  # first value of the last class
        with np.errstate(divide="ignore", invalid="ignore"):  # i > last: no class, masked below
            sx, sw = cx[last + 1, None] - cx[None, i], cw[last + 1, None] - cw[None, i]
            ssd = np.maximum(cxx[last + 1, None] - cxx[None, i] - sx * sx / sw, 0.0)
        cost[0, last] = ssd[:, 0]
        if j0 == 0:  # a single value holds no two classes
            last, ssd = last[1:], ssd[1:]
        if not last.size:
            continue
        ssd = ssd[:, 1:]  # previous classes end at i - 1
        ssd[i[None, 1:] > last[:, None]] = np.inf
        r = np.arange(last.size)
        for c in range(1, k):
            total = cost[c - 1, None, :last[-1]] + ssd
            best = np.argmin(total, axis=1)
            cost[c, last] = total[r, best]
            start[c, last] = best + 1
    breaks, j = [], m - 1
    for c in range(k - 1, 0, -1):
        i = start[c, j]
        breaks.append((u[i - 1] + u[i]) / 2)
        j = i - 1
    return np.array(breaks[::-1])


def raster_natural_breaks(path: str | Path, k: int = 5, *, sample: int = 5000, seed: int = 0,
                          block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Natural breaks (k classes) of a raster's first band from a seeded, block-independent sample."""
    return natural_breaks(sample_valid(path, sample, seed=seed, block=block), k, sample=sample, seed=seed)


def classify(prob: ArrayLike, breaks: ArrayLike) -> np.ndarray:
    """Class 1..len(breaks)+1 (uint8), class c+1 from ``breaks[c-1]`` inclusive upwards; 0 for NaN."""
    p = np.asarray(prob, dtype=np.float64)
    br = np.asarray(breaks, dtype=np.float64)
    if br.ndim != 1 or np.any(np.diff(br) <= 0) or not np.isfinite(br).all():
        raise ConfigError(f"breaks must be finite and strictly increasing, got {br.tolist()}")
    out = np.zeros(p.shape, dtype=np.uint8)
    ok = np.isfinite(p)
    out[ok] = np.searchsorted(br, p[ok], side="right") + 1
    return out
