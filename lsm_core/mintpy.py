"""Reader for MintPy's geocoded HDF5 products (``velocity.h5``, ``timeseries.h5``) on the area grid.

MintPy stores the geocoding as ROI_PAC-style attributes: ``X_FIRST``/``Y_FIRST`` are the upper-left
corner of the upper-left pixel, ``X_STEP``/``Y_STEP`` the pixel size (``Y_STEP`` < 0), and the CRS
is ``EPSG``, ``UTM_ZONE`` (e.g. ``13N``) or, for lat/lon products, ``X_UNIT = degrees``. Values are
in metres (``timeseries``) or metres per year (``velocity``); NaN is no-data. Only the rows and
columns a grid window needs are read (h5py slicing is a lazy hyperslab read), then warped onto it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from lsm_core.errors import DeliveryError
from lsm_core.grid import AreaGrid

__all__ = ["DATASETS", "MintpyProduct", "STD_DATASET", "open_mintpy"]

DATASETS = {"timeseries": "timeseries", "velocity": "velocity"}
STD_DATASET = "velocityStd"
# MintPy spells years out ("m/year"); delivery.yaml uses the short forms.
_UNIT_ALIASES = {"m/year": "m/yr", "cm/year": "cm/yr", "mm/year": "mm/yr"}
# Source pixels around a window so resampling kernels (bilinear 1, cubic 2) see all their neighbours.
_PAD = 3


@dataclass(frozen=True)
class MintpyProduct:
    """A geocoded MintPy HDF5 product: data set name, geocoding, band count, unit and dates."""

    path: Path
    dataset: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    height: int
    width: int
    count: int
    unit: str | None
    dates: tuple[dt.date, ...]
    has_std: bool

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    def bounds_in(self, crs: str) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the product in ``crs`` units."""
        a, _, c, _, e, f = self.transform
        b = (c, f + e * self.height, c + a * self.width, f)
        if CRS.from_user_input(crs) == CRS.from_user_input(self.crs):
            return b
        return tuple(transform_bounds(self.crs, crs, *b, densify_pts=21))

    def read_window(self, grid: AreaGrid, window: Window, *, dataset: str | None = None,
                    resampling: Resampling = Resampling.bilinear,
                    warp_options: dict[str, str] | None = None) -> np.ndarray:
        """Bands x rows x cols (float32, file unit, NaN no-data) of ``window`` of ``grid``.

        ``warp_options`` go to GDAL's warper (e.g. fixed ``XSCALE``/``YSCALE`` so that the result
        does not depend on how the grid is cut into windows).
        """
        name = dataset or self.dataset
        h, w = int(window.height), int(window.width)
        out = np.full((self.count if name == self.dataset else 1, h, w), np.nan, dtype=np.float32)
        rows, cols = self._source_slices(grid, window)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            return out
        with _open(self.path) as f:
            ds = f[name]
            sub = ds[:, rows, cols] if ds.ndim == 3 else ds[rows, cols][None]
        src_transform = self.affine @ Affine.translation(cols.start, rows.start)
        reproject(np.ascontiguousarray(sub, dtype=np.float32), out, src_transform=src_transform, src_crs=self.crs,
                  src_nodata=np.nan, dst_transform=_window_affine(grid, window), dst_crs=grid.crs,
                  dst_nodata=np.nan, resampling=resampling, **(warp_options or {}))
        return out

    def _source_slices(self, grid: AreaGrid, window: Window) -> tuple[slice, slice]:
        t = _window_affine(grid, window)
        x0, y1 = t.c, t.f
        x1, y0 = x0 + t.a * window.width, y1 + t.e * window.height
        if CRS.from_user_input(grid.crs) != CRS.from_user_input(self.crs):
            x0, y0, x1, y1 = transform_bounds(grid.crs, self.crs, x0, y0, x1, y1, densify_pts=21)
        a, _, c, _, e, f = self.transform
        c0, c1 = sorted(((x0 - c) / a, (x1 - c) / a))
        r0, r1 = sorted(((y1 - f) / e, (y0 - f) / e))
        # Downsampling widens GDAL's kernels to about one destination pixel: pad by that too.
        pad = _PAD + 2 * math.ceil(max((c1 - c0) / window.width, (r1 - r0) / window.height))
        rows = slice(max(math.floor(r0) - pad, 0), min(math.ceil(r1) + pad, self.height))
        cols = slice(max(math.floor(c0) - pad, 0), min(math.ceil(c1) + pad, self.width))
        return rows, cols


def open_mintpy(path: str | Path, kind: str) -> MintpyProduct:
    """Validate a MintPy ``velocity.h5`` or ``timeseries.h5`` (``kind``) and return its description."""
    path = Path(path)
    name = DATASETS[kind]
    with _open(path) as f:
        if name not in f:
            raise DeliveryError(f"no dataset {name!r} (found {sorted(f.keys())}): not a MintPy {kind} file", path)
        ds = f[name]
        if ds.ndim != (3 if kind == "timeseries" else 2):
            raise DeliveryError(f"dataset {name!r} has shape {ds.shape}; expected "
                                f"{'epochs x rows x cols' if kind == 'timeseries' else 'rows x cols'}", path)
        attrs = {k: _text(v) for k, v in f.attrs.items()}
        missing = [k for k in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP") if k not in attrs]
        if missing:
            raise DeliveryError(f"not geocoded (missing attributes {missing}); run MintPy's geocode.py first", path)
        x0, y0, dx, dy = (float(attrs[k]) for k in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP"))
        dates = _dates(f, path) if kind == "timeseries" else ()
        count = ds.shape[0] if kind == "timeseries" else 1
        height, width = ds.shape[-2:]
        has_std = kind == "velocity" and STD_DATASET in f and f[STD_DATASET].shape == ds.shape
    unit = attrs.get("UNIT")
    unit = _UNIT_ALIASES.get(unit.strip().lower(), unit.strip().lower()) if unit else None
    return MintpyProduct(path, name, _crs(attrs, path), (dx, 0.0, x0, 0.0, dy, y0), int(height), int(width), int(count),
                         unit, dates, has_std)


def _window_affine(grid: AreaGrid, window: Window) -> Affine:
    # Written out because rasterio.windows.transform multiplies Affines with `*`, which warns in affine 3.
    a, _, c, _, e, f = grid.transform
    return Affine(a, 0.0, c + a * window.col_off, 0.0, e, f + e * window.row_off)


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DeliveryError(f"cannot open HDF5 file ({exc})", path) from exc


def _text(value) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return str(value)


def _crs(attrs: dict[str, str], path: Path) -> str:
    epsg = attrs.get("EPSG", "").strip()
    if epsg and epsg.lower() != "none":
        return f"EPSG:{int(float(epsg))}"
    zone = attrs.get("UTM_ZONE", "").strip().upper()
    if zone:
        m = re.fullmatch(r"(\d{1,2})([NS])", zone)
        if not m:
            raise DeliveryError(f"UTM_ZONE {zone!r} is not like '13N'", path)
        return f"EPSG:{(32600 if m.group(2) == 'N' else 32700) + int(m.group(1))}"
    if attrs.get("X_UNIT", "").strip().lower().startswith("deg"):
        return "EPSG:4326"
    raise DeliveryError("no CRS: expected an EPSG, UTM_ZONE or X_UNIT=degrees attribute", path)


def _dates(f: h5py.File, path: Path) -> tuple[dt.date, ...]:
    if "date" not in f:
        raise DeliveryError("no dataset 'date' with the acquisition dates (b'YYYYMMDD')", path)
    out = []
    for raw in f["date"][()]:
        text = _text(raw).strip()
        try:
            out.append(dt.datetime.strptime(text[:8], "%Y%m%d").date())
        except ValueError as exc:
            raise DeliveryError(f"invalid acquisition date {text!r} in dataset 'date'", path) from exc
    return tuple(out)
