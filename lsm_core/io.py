"""Raster and vector I/O on the area grid, with atomic writes.

Outputs are Cloud-Optimized GeoTIFFs (band names kept as band descriptions), GeoParquet and
GeoPackage, so they open in QGIS as they are. Every write goes to a temporary file in the target
folder and is renamed into place, so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.shutil import copy as rio_copy
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds

from lsm_core.errors import GridMismatchError, InputFileError, ShapeError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid

__all__ = ["COG_COMPRESSION", "COPY_CACHE_BYTES", "SCRATCH_RAW_MAX_BYTES", "CachedRasterFile", "RasterArray",
           "RasterFile", "RasterWriter", "atomic_path", "band_names", "check_overlap", "gdal_cache_max", "grid_of",
           "raster_on_grid", "raster_window_on_grid", "read_raster", "read_vector", "warp_scale", "window_of_bounds",
           "write_raster", "write_table", "write_text", "write_vector"]

SCRATCH_RAW_MAX_BYTES = 512 * 2**20  # RasterWriter's scratch GeoTIFF is left uncompressed up to this size
COPY_CACHE_BYTES = 256 * 2**20  # floor of the block cache during a COG copy (see RasterWriter._copy_cache)
# Compression of the published COGs: ZSTD level 1 writes the same pixel values in about half the CPU time of
# DEFLATE (level 6) and reads faster, at about the same size on float factors (83.6 against 85.6 MB for a
# 16-band 1.44 M-pixel stack). GDAL has read ZSTD GeoTIFFs since 2.3 (QGIS, rasterio wheels, GDAL-based tools).
COG_COMPRESSION = {"COMPRESS": "ZSTD", "LEVEL": "1"}


@contextlib.contextmanager
def gdal_cache_max(n_bytes: int) -> Iterator[None]:
    """Cap GDAL's block cache at ``n_bytes`` inside the block, then give the process its own value back.

    ``rasterio.Env(GDAL_CACHEMAX=...)`` is not enough: it sets the cache size through
    ``GDALSetCacheMax`` but on exit only unsets the config option, so the small cap stays for
    the rest of the process (a warped multi-band read then thrashes: 6.6 s became 189 s).
    """
    previous = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", int(n_bytes))
    try:
        yield
    finally:
        set_gdal_config("GDAL_CACHEMAX", previous)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as GDAL want to create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def grid_of(path: str | Path) -> AreaGrid:
    """The grid (CRS, transform, shape) of a raster file."""
    with _open(path) as src:
        return AreaGrid(src.crs.to_string(), tuple(src.transform)[:6], src.height, src.width)


def band_names(path: str | Path) -> list[str]:
    """Band descriptions of a raster (``band_<i>`` where a band has none)."""
    with _open(path) as src:
        return [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]


def read_raster(path: str | Path, window: Window | None = None, bands: Sequence[int] | None = None) -> np.ndarray:
    """Bands x rows x cols as float32 with nodata as NaN (categorical codes survive as exact floats)."""
    with _open(path) as src:
        return _masked_read(src, window, bands)


def _masked_read(src, window: Window | None, bands: Sequence[int] | None) -> np.ndarray:
    idx = list(bands) if bands is not None else list(range(1, src.count + 1))
    nodata = _nodata_only(src, idx)
    if nodata is None:  # a mask band, alpha band or per-dataset mask: let GDAL read the mask
        arr = src.read(idx, window=window, masked=True)
        return np.ma.filled(arr.astype(np.float32), np.nan)
    # Masks come from the nodata values alone: compare them here rather than have GDAL read the
    # mask band (for a warped read that means warping every band a second time). Same result:
    # GDAL's nodata mask is the pixels equal to the band's nodata, NaN for a NaN nodata.
    arr = src.read(idx, window=window)
    out = arr.astype(np.float32, copy=False)  # a fresh array unless already float32 (then nothing is set)
    for i, nd in enumerate(nodata):
        if nd is not None and not np.isnan(nd):  # NaN nodata is NaN already
            out[i][arr[i] == nd] = np.nan
    return out


def _nodata_only(src, idx: Sequence[int]) -> list[float | None] | None:
    """Per band of ``idx``: its nodata value (None: every pixel valid), if its mask is given by that value
    alone; None if any band has another kind of mask."""
    flags, values = src.mask_flag_enums, src.nodatavals
    out: list[float | None] = []
    for i in idx:
        f = set(flags[i - 1])
        if f == {MaskFlags.all_valid}:
            out.append(None)
        elif f == {MaskFlags.nodata} and values[i - 1] is not None:
            nd, dtype = values[i - 1], np.dtype(src.dtypes[i - 1])
            if np.isnan(nd) and dtype.kind == "f":
                out.append(nd)
            elif dtype.kind in "iu" and float(nd).is_integer() and np.iinfo(dtype).min <= nd <= np.iinfo(dtype).max:
                out.append(int(nd))
            else:  # a float nodata (GDAL compares it with a tolerance) or one the band cannot hold: GDAL's mask
                return None
        else:
            return None
    return out


def _open(path: str | Path):
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(f"cannot open raster ({exc})", path) from exc


def raster_on_grid(path: str | Path, grid: AreaGrid, *, reproject: bool = False,
                   resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """Read a raster onto ``grid`` (bands x rows x cols, NaN nodata).

    A raster on another grid of the same CRS is resampled; one in another CRS is warped only when
    ``reproject`` is true, otherwise GridMismatchError names the file. One that does not overlap
    the area always raises.
    """
    return _read_on_grid(path, grid, reproject, resampling, None)


def raster_window_on_grid(path: str | Path, grid: AreaGrid, window: Window, *, reproject: bool = False,
                          resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """Like ``raster_on_grid`` for one window of the grid, so large areas can be read block by block."""
    return _read_on_grid(path, grid, reproject, resampling, window)


def _read_on_grid(path, grid: AreaGrid, reproject: bool, resampling: Resampling, window: Window | None) -> np.ndarray:
    with _open(path) as src:
        if src.crs is None:
            raise GridMismatchError("raster has no CRS", path)
        same_crs = CRS.from_user_input(src.crs) == CRS.from_user_input(grid.crs)
        if not same_crs and not reproject:
            raise GridMismatchError(f"raster CRS {src.crs.to_string()} differs from the area CRS {grid.crs}", path)
        bounds = _bounds_in(src, grid.crs)
        check_overlap(path, bounds, grid)
        if same_crs and src.shape == grid.shape and np.allclose(tuple(src.transform)[:6], grid.transform, atol=1e-6):
            return _masked_read(src, window, None)
        with WarpedVRT(src, crs=grid.crs, transform=grid.affine, width=grid.width, height=grid.height,
                       resampling=resampling, src_nodata=src.nodata, nodata=np.nan, dtype="float32",
                       **warp_scale(bounds, src.shape, grid)) as vrt:
            return _masked_read(vrt, window, None)


def warp_scale(bounds: Sequence[float], shape: tuple[int, int], grid: AreaGrid) -> dict[str, str]:
    """GDAL warp options fixing the source/destination pixel ratio for a whole raster.

    GDAL otherwise sizes its resampling kernel from each chunk's own ratio, so a pixel read in
    one window differs from the same pixel read in another; one ratio per raster makes windowed
    reads equal whole-raster reads.
    """
    xs = (bounds[2] - bounds[0]) / shape[1] / abs(grid.transform[0])
    ys = (bounds[3] - bounds[1]) / shape[0] / abs(grid.transform[4])
    return {"XSCALE": repr(xs), "YSCALE": repr(ys)}


def _bounds_in(src, crs: str) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    if src.crs == CRS.from_user_input(crs):
        return tuple(src.bounds)
    return tuple(transform_bounds(src.crs, crs, *src.bounds, densify_pts=21))


def check_overlap(path: str | Path, bounds: Sequence[float], grid: AreaGrid) -> None:
    """Raise GridMismatchError when ``bounds`` (area CRS) do not intersect the area grid."""
    xmin, ymin, xmax, ymax = grid.bounds
    bx0, by0, bx1, by1 = bounds
    if bx1 <= xmin or bx0 >= xmax or by1 <= ymin or by0 >= ymax:
        raise GridMismatchError(
            f"layer extent ({bx0:.0f}, {by0:.0f}, {bx1:.0f}, {by1:.0f}) does not overlap the study area "
            f"({xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f})", path)


def window_of_bounds(grid: AreaGrid, bounds: Sequence[float]) -> Window:
    """The grid window covering ``bounds`` (area CRS), rounded outwards and clipped to the grid."""
    w = from_bounds(*bounds, transform=grid.affine).round_offsets("floor").round_lengths("ceil")
    return w.intersection(Window(0, 0, grid.width, grid.height))


def _profile(grid: AreaGrid, count: int, dtype: str, nodata: float | None, block: int) -> dict:
    # The scratch is read once by the COG copy. Up to SCRATCH_RAW_MAX_BYTES it is not compressed at all:
    # compressing it and decompressing it for the copy cost 0.4-0.8 s CPU for a 16-band 1.44 M-pixel stack
    # (the COG is the same either way). A larger one (a national raster) gets the fastest compression that
    # still keeps it small on disk: ZSTD level 1 (about 5x faster than DEFLATE).
    raw = grid.width * grid.height * count * np.dtype(dtype).itemsize <= SCRATCH_RAW_MAX_BYTES
    return dict(driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=dtype, crs=grid.crs,
                transform=grid.affine, nodata=nodata, tiled=True, blockxsize=block, blockysize=block,
                BIGTIFF="IF_SAFER", **({} if raw else {"compress": "zstd", "zstd_level": 1}))


class RasterWriter:
    """Write a multi-band raster window by window, then publish it atomically as a COG.

    Used as a context manager: blocks go to a tiled temporary GeoTIFF; on a clean exit GDAL
    streams it into a Cloud-Optimized GeoTIFF beside the target and renames it into place.
    ``overviews``: build the COG's overviews (for viewing a map zoomed out). A multi-band raster that
    only programs read at full resolution (the factor stack, an InSAR time series) can leave them out:
    they are most of its copy's CPU (a 16-band 1.44 M-pixel stack: 1.7 vs 0.5 s), and its pixels are
    the same either way.
    """

    def __init__(self, path: str | Path, grid: AreaGrid, names: Sequence[str], dtype: str = "float32",
                 nodata: float | None = np.nan, block: int = DEFAULT_BLOCK, tags: dict[str, str] | None = None,
                 overviews: bool = True):
        self.path, self.grid, self.names = Path(path), grid, list(names)
        self.dtype, self.nodata, self.block, self.tags = dtype, nodata, block, tags or {}
        self.overviews = overviews

    def __enter__(self) -> RasterWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmpdir = tempfile.TemporaryDirectory(dir=self.path.parent, prefix=f".{self.path.name}.")
        self._scratch = Path(self._tmpdir.name) / "scratch.tif"
        self._ds = rasterio.open(self._scratch, "w", **_profile(self.grid, len(self.names), self.dtype,
                                                                 self.nodata, self.block))
        for i, name in enumerate(self.names, start=1):
            self._ds.set_band_description(i, name)
        return self

    def write(self, data: np.ndarray, window: Window | None = None) -> None:
        """Write bands x rows x cols (or rows x cols for one band) at ``window`` (whole grid if None)."""
        data = data[None] if data.ndim == 2 else data
        if data.shape[0] != len(self.names):
            raise ShapeError(f"{self.path}: {data.shape[0]} bands given, {len(self.names)} names")
        if self.nodata is not None and np.issubdtype(np.dtype(self.dtype), np.integer):
            data = np.where(np.isnan(data), self.nodata, data) if np.issubdtype(data.dtype, np.floating) else data
        self._ds.write(data.astype(self.dtype), window=window)

    def _copy_cache(self) -> int:
        """Block cache for the COG copy, bytes: two rows of tiles of every band, at least COPY_CACHE_BYTES,
        at most the process's own cache size (GDAL's default: 5 % of RAM).

        A cache smaller than a row of tiles makes the overview pass re-read blocks (64 MB doubled the
        copy of a 15-band 1.44 M-pixel stack); the upper bound keeps a national raster's copy in budget.
        """
        row = 2 * self.grid.width * self.block * len(self.names) * np.dtype(self.dtype).itemsize
        return min(max(COPY_CACHE_BYTES, row), max(int(get_gdal_config("GDAL_CACHEMAX")), COPY_CACHE_BYTES))

    def __exit__(self, exc_type, exc, tb) -> None:
        # tags are written last so that a writer can add what it learned while writing (e.g. band statistics)
        self._ds.update_tags(**self.tags)
        self._ds.close()
        try:
            if exc_type is None:
                # GDAL's block cache (5 % of RAM by default) would otherwise grow with the raster during the copy
                with atomic_path(self.path) as tmp, gdal_cache_max(self._copy_cache()):
                    rio_copy(self._scratch, tmp, driver="COG", BLOCKSIZE=str(self.block), BIGTIFF="IF_SAFER",
                             OVERVIEWS="AUTO" if self.overviews else "NONE", RESAMPLING="NEAREST",
                             **COG_COMPRESSION)
        finally:
            self._tmpdir.cleanup()


def write_raster(path: str | Path, data: np.ndarray, grid: AreaGrid, names: Sequence[str], *,
                 dtype: str = "float32", nodata: float | None = np.nan, tags: dict[str, str] | None = None) -> Path:
    """Write an in-memory array (bands x rows x cols) as a COG with band names; returns the path."""
    with RasterWriter(path, grid, names, dtype=dtype, nodata=nodata, tags=tags) as w:
        w.write(data)
    return Path(path)


def read_vector(path: str | Path, grid: AreaGrid | None = None, *, layer: str | None = None,
                reproject: bool = False) -> gpd.GeoDataFrame:
    """Read a vector layer; with ``grid``, check its CRS and that it overlaps the area (clear errors)."""
    try:
        gdf = gpd.read_file(path, layer=layer)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputFileError(f"cannot read vector layer ({exc})", path) from exc
    if grid is None:
        return gdf
    if gdf.crs is None:
        raise GridMismatchError("vector layer has no CRS", path)
    if CRS.from_user_input(gdf.crs) != CRS.from_user_input(grid.crs):
        if not reproject:
            raise GridMismatchError(f"vector CRS {gdf.crs.to_string()} differs from the area CRS {grid.crs}", path)
        gdf = gdf.to_crs(grid.crs)
    if len(gdf):
        check_overlap(path, gdf.total_bounds, grid)
    return gdf


def write_vector(path: str | Path, gdf: gpd.GeoDataFrame, *, layer: str | None = None) -> Path:
    """Write GeoParquet (``.parquet``) or GeoPackage (``.gpkg``) atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            gdf.to_parquet(tmp, index=False)
        else:
            gdf.to_file(tmp, layer=layer or path.stem, driver="GPKG" if path.suffix == ".gpkg" else None)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


class RasterFile:
    """A raster on disk, opened lazily: grid, band names and window reads without loading it whole."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputFileError("raster not found", self.path)

    @property
    def grid(self) -> AreaGrid:
        return grid_of(self.path)

    @property
    def names(self) -> list[str]:
        return band_names(self.path)

    @property
    def nodata(self) -> float | None:
        with _open(self.path) as src:
            return src.nodata

    @property
    def tags(self) -> dict[str, str]:
        """The dataset's GeoTIFF metadata (what wrote it, units, band statistics...)."""
        with _open(self.path) as src:
            return dict(src.tags())

    def read(self, window: Window | None = None, bands: Sequence[int] | None = None) -> np.ndarray:
        """Bands x rows x cols float32 with NaN nodata (all bands, or 1-based ``bands``)."""
        return read_raster(self.path, window, bands)

    def band(self, name: str, window: Window | None = None) -> np.ndarray:
        """One band by name, rows x cols."""
        names = self.names
        if name not in names:
            raise InputFileError(f"no band named {name!r} (bands: {names})", self.path)
        return self.read(window, [names.index(name) + 1])[0]

    def cached(self, max_bytes: int = 512 * 2**20) -> CachedRasterFile:
        """This raster with its all-band window reads kept in memory (up to ``max_bytes``), for several passes."""
        return CachedRasterFile(self.path, max_bytes=max_bytes)

    def __repr__(self) -> str:
        return f"RasterFile({str(self.path)!r})"


class CachedRasterFile(RasterFile):
    """A ``RasterFile`` that keeps each all-band window it reads, up to ``max_bytes`` in all (then reads as usual).

    For code that passes over the same blocks several times (the negative strategies each draw over the
    whole factor stack): each block is decompressed once. ``read`` returns a fresh copy with the same values
    as ``RasterFile.read``; blocks past the budget are read from disk every time, so memory stays bounded
    on a large area. Grid and band names are read once. The file must not change while the cache lives.
    """

    def __init__(self, path: str | Path, max_bytes: int = 512 * 2**20):
        super().__init__(path)
        self.max_bytes = int(max_bytes)
        self._blocks: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._bytes = 0
        self._grid: AreaGrid | None = None
        self._names: list[str] | None = None

    @property
    def grid(self) -> AreaGrid:
        if self._grid is None:
            self._grid = grid_of(self.path)
        return self._grid

    @property
    def names(self) -> list[str]:
        if self._names is None:
            self._names = band_names(self.path)
        return list(self._names)

    @property
    def cached_bytes(self) -> int:
        """Bytes of the blocks held."""
        return self._bytes

    def read(self, window: Window | None = None, bands: Sequence[int] | None = None) -> np.ndarray:
        if window is None or bands is not None:
            return super().read(window, bands)
        key = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))
        block = self._blocks.get(key)
        if block is None:
            block = super().read(window)
            if self._bytes + block.nbytes > self.max_bytes:
                return block
            self._blocks[key] = block
            self._bytes += block.nbytes
        return block.copy()  # callers may write into what they read

    def __repr__(self) -> str:
        return f"CachedRasterFile({str(self.path)!r}, max_bytes={self.max_bytes})"


class RasterArray:
    """An in-memory raster: bands x rows x cols on a grid, with band names (for small outputs and tests)."""

    def __init__(self, data: np.ndarray, grid: AreaGrid, names: Sequence[str], dtype: str = "float32",
                 nodata: float | None = np.nan):
        self.data = data[None] if data.ndim == 2 else data
        if self.data.shape[1:] != grid.shape:
            raise GridMismatchError(f"array shape {self.data.shape[1:]} differs from the grid {grid.shape}")
        if self.data.shape[0] != len(names):
            raise ShapeError(f"{self.data.shape[0]} bands but {len(names)} names")
        self.grid, self.names, self.dtype, self.nodata = grid, list(names), dtype, nodata

    def write(self, path: str | Path) -> RasterFile:
        """Write as a COG (atomic) and return the file."""
        write_raster(path, self.data, self.grid, self.names, dtype=self.dtype, nodata=self.nodata)
        return RasterFile(path)


def write_table(path: str | Path, df) -> Path:
    """Write a plain pandas DataFrame as Parquet atomically; returns the path."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
