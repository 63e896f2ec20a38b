"""InSAR deformation rate on the area grid (DESIGN 6, "Deformation rate").

Conventions:

- Time is in decimal years of 365.25 days (2000.0 = 2000-01-01), so a slope is mm per Julian year,
  the same year as the delivery's mm/day -> mm/yr factor.
- LOS is the unit vector from the ground to the satellite in east/north/up; a positive LOS velocity
  is motion towards the satellite (MintPy's sign). For a right-looking SAR (Sentinel-1, ALOS-2,
  UAVSAR) with heading h (flight direction, degrees clockwise from north) and incidence theta
  (degrees from the vertical): ``los = (-sin(theta) cos(h), sin(theta) sin(h), cos(theta))``.
- Downslope is ``(sin(A) cos(b), cos(A) cos(b), -sin(b))`` for slope b and aspect A (degrees
  clockwise from north, the direction the slope faces); a positive downslope velocity moves down
  the slope. ``v_down = v_los / C`` with ``C = los . downslope``.
- Where ``|C| < min_sensitivity`` the projection is ill-conditioned: C is clipped to
  ``+-min_sensitivity`` (keeping its sign), so the velocity stays finite (a lower bound of the
  magnitude, at most ``|v_los| / min_sensitivity``) and the pixel is flagged rather than dropped.
- Quality band: 0 masked (no data, coherence below the threshold, too few epochs, outside the
  delivery), 1 valid, 2 valid but the downslope coefficient was clipped.

Resampling onto the grid is bilinear by default: the deformation field is continuous and usually
coarser than the area grid (nearest would leave blocky steps), and bilinear is linear, so on pixels
with the same valid epochs resampling each epoch then fitting equals fitting then resampling.
GDAL's bilinear renormalises over the valid neighbours, so the NaN footprint of the delivery is
kept rather than eroded by a pixel. Pass ``Resampling.average`` when the grid is much coarser.
The kernel scale is fixed per delivery, so windowed output equals whole-array output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from lsm_core.delivery import Delivery
from lsm_core.errors import ConfigError, DeliveryError, GridMismatchError, InputFileError, ShapeError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid
from lsm_core.io import RasterWriter, band_names, check_overlap, grid_of, raster_window_on_grid, read_raster, warp_scale
from lsm_core.mintpy import STD_DATASET, open_mintpy

__all__ = ["BANDS", "MIN_EPOCHS", "MIN_SENSITIVITY", "DeformationRateResult", "clip_coefficient", "decimal_years",
           "deformation_rate", "downslope_coefficient", "fit_velocity", "los_to_downslope", "los_unit_vector"]

BANDS = ("velocity_mm_yr", "velocity_stderr_mm_yr", "n_epochs", "quality")
QUALITY_MASKED, QUALITY_VALID, QUALITY_CAPPED = 0, 1, 2
MIN_EPOCHS = 5
MIN_SENSITIVITY = 0.2
# Median/percentiles in the summary use at most this many pixels (a fixed global stride), so
# memory stays bounded on large areas and the numbers do not depend on the block size.
_SUMMARY_SAMPLE = 1_000_000


@dataclass(frozen=True)
class DeformationRateResult:
    """What ``deformation_rate`` wrote: source, component, pixel counts, shares (0..1), velocity stats (mm/yr)."""

    kind: str  # "timeseries" or "velocity"
    source: str  # file name of the delivery's data
    unit_in: str  # the delivery's unit
    unit: str  # always "mm/yr"
    component: str  # "los" or "downslope"
    n_dates: int
    n_pixels: int  # grid pixels
    valid_pixels: int  # pixels with a velocity
    valid_share: float  # valid / grid pixels, 0..1
    capped_share: float  # valid pixels whose downslope coefficient was clipped, 0..1
    median_abs_velocity_mm_yr: float | None  # None without valid pixels
    p95_abs_velocity_mm_yr: float | None
    median_stderr_mm_yr: float | None
    min_coherence: float  # 0..1
    min_epochs: int | None  # None for a velocity delivery
    resampling: str  # rasterio Resampling name
    file_bands: int  # bands (epochs) in the delivery file

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def decimal_years(dates: Sequence[dt.date]) -> np.ndarray:
    """Acquisition times in decimal years of 365.25 days (2000.0 = 2000-01-01)."""
    j2000 = dt.date(2000, 1, 1).toordinal()
    return np.array([2000.0 + (d.toordinal() - j2000) / 365.25 for d in dates], dtype=np.float64)


def fit_velocity(displacement_mm: np.ndarray, t_years: np.ndarray, *,
                 min_epochs: int = MIN_EPOCHS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel least-squares velocity (mm/yr), its standard error (mm/yr) and valid-epoch count.

    ``displacement_mm`` is epochs x rows x cols with NaN gaps; pixels with fewer than
    ``min_epochs`` valid epochs get NaN velocity and stderr. The stderr is the ordinary
    least-squares one (residual scatter, ``n - 2`` degrees of freedom), so it assumes residuals
    uncorrelated in time.

    Two pixels moving 8 mm/yr away from the satellite; the second misses an epoch, which leaves it
    fewer than ``min_epochs`` (5) valid epochs, so it gets no velocity:

    >>> import numpy as np
    >>> t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])  # years
    >>> disp = -8.0 * t[:, None, None] + np.array([[0.0, 1.0]])  # epochs x rows x cols, mm
    >>> disp[1, 0, 1] = np.nan
    >>> velocity, stderr, n_epochs = fit_velocity(disp, t)
    >>> velocity, n_epochs
    (array([[-8., nan]], dtype=float32), array([[5, 4]], dtype=int32))
    >>> fit_velocity(disp, t, min_epochs=4)[0]
    array([[-8., -8.]], dtype=float32)
    """
    y = np.asarray(displacement_mm)
    t = np.asarray(t_years, dtype=np.float64)
    if y.ndim != 3 or t.ndim != 1 or y.shape[0] != t.size:
        raise ShapeError(f"need epochs x rows x cols and one time per epoch, got {y.shape} and {t.shape}")
    if min_epochs < 3:
        raise ConfigError(f"min_epochs={min_epochs}: a standard error needs at least 3 epochs")
    tc = t - t.mean()  # centring keeps the sums well conditioned (decimal years are ~2000)
    n = np.zeros(y.shape[1:], dtype=np.int32)
    st, stt, sy, sty = (np.zeros(y.shape[1:]) for _ in range(4))
    # One pass per epoch over 2-D accumulators (never per pixel): memory stays at a few planes.
    for k in range(t.size):
        ok = np.isfinite(y[k])
        yk = np.where(ok, y[k], 0.0).astype(np.float64)
        n += ok
        st += ok * tc[k]
        stt += ok * tc[k] ** 2
        sy += yk
        sty += yk * tc[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        sxx = stt - st * st / n
        good = (n >= min_epochs) & (sxx > 1e-9)
        slope = np.where(good, (sty - st * sy / n) / sxx, np.nan)
        intercept = (sy - slope * st) / n
    # Residuals in a second pass rather than Syy - Sy^2/n, which cancels badly for large displacements.
    rss = np.zeros(y.shape[1:])
    for k in range(t.size):
        r = y[k] - intercept - slope * tc[k]
        rss += np.where(np.isfinite(r), r, 0.0) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        stderr = np.where(good, np.sqrt(rss / (n - 2) / sxx), np.nan)
    return slope.astype(np.float32), stderr.astype(np.float32), n


def los_unit_vector(heading_deg: float | np.ndarray, incidence_deg: float | np.ndarray) -> np.ndarray:
    """Ground-to-satellite unit vector (east, north, up) of a right-looking SAR, stacked on axis 0."""
    h, th = np.radians(heading_deg), np.radians(incidence_deg)
    return np.stack(np.broadcast_arrays(-np.sin(th) * np.cos(h), np.sin(th) * np.sin(h), np.cos(th)))


def downslope_coefficient(slope_deg: np.ndarray, aspect_deg: np.ndarray, heading_deg: float | np.ndarray,
                          incidence_deg: float | np.ndarray) -> np.ndarray:
    """Share of a unit downslope motion seen in LOS (dimensionless, -1..1; NaN where slope/aspect are NaN)."""
    b, a = np.radians(slope_deg), np.radians(aspect_deg)
    e, n, u = los_unit_vector(heading_deg, incidence_deg)
    return e * np.sin(a) * np.cos(b) + n * np.cos(a) * np.cos(b) - u * np.sin(b)


def clip_coefficient(coef: np.ndarray, min_sensitivity: float = MIN_SENSITIVITY) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient with ``|C| < min_sensitivity`` clipped to ``+-min_sensitivity`` (sign kept), and the clipped flag."""
    coef = np.asarray(coef, dtype=np.float64)
    capped = np.abs(np.nan_to_num(coef, nan=np.inf)) < min_sensitivity
    return np.where(capped, np.copysign(min_sensitivity, coef), coef), capped


def los_to_downslope(v_los: np.ndarray, slope_deg: np.ndarray, aspect_deg: np.ndarray,
                     heading_deg: float | np.ndarray, incidence_deg: float | np.ndarray, *,
                     min_sensitivity: float = MIN_SENSITIVITY) -> tuple[np.ndarray, np.ndarray]:
    """Downslope velocity (unit of ``v_los``, positive = downslope) and the flag of clipped (capped) pixels."""
    coef, capped = clip_coefficient(downslope_coefficient(slope_deg, aspect_deg, heading_deg, incidence_deg),
                                    min_sensitivity)
    return (np.asarray(v_los) / coef).astype(np.float32), capped


@dataclass(frozen=True)
class _Source:
    """A delivery file read window by window onto the grid (values in the delivery's unit)."""

    path: Path
    count: int
    read: Callable[[Window], np.ndarray]
    read_std: Callable[[Window], np.ndarray] | None = None


def deformation_rate(delivery: Delivery, grid: AreaGrid, out_path: str | Path, *, min_coherence: float = 0.3,
                     min_epochs: int = MIN_EPOCHS, project_downslope: bool = False,
                     slope_deg_path: str | Path | None = None, aspect_deg_path: str | Path | None = None,
                     min_sensitivity: float = MIN_SENSITIVITY, resampling: Resampling = Resampling.bilinear,
                     block: int = DEFAULT_BLOCK) -> DeformationRateResult:
    """Write the deformation-rate COG (mm/yr, bands ``BANDS``) for a delivery; return a summary for metadata.

    A time series is fitted per pixel (``fit_velocity``); a velocity delivery is converted and
    resampled as it is (stderr from MintPy's ``velocityStd`` if present, else NaN; n_epochs 0).
    ``coherence.tif`` with one band masks whole pixels, with one band per epoch masks epochs.
    With ``project_downslope``, slope/aspect (degrees, on the grid) come from ``slope_deg_path``
    (bands named slope/aspect, e.g. the terrain factors) or from it and ``aspect_deg_path``.
    """
    if not 0.0 <= min_coherence <= 1.0:
        raise ConfigError(f"min_coherence={min_coherence} is not in 0..1")
    if min_epochs < 3:
        raise ConfigError(f"min_epochs={min_epochs}: a standard error needs at least 3 epochs")
    series = delivery.kind == "timeseries"
    src = _open_source(delivery, grid, resampling)
    read_coh = _coherence_reader(delivery, grid, src.count, resampling)
    terrain = _terrain_reader(delivery, grid, slope_deg_path, aspect_deg_path) if project_downslope else None
    t = decimal_years(delivery.dates) if series else None
    scale = np.float32(delivery.to_mm)
    stride = -(-grid.n_pixels // _SUMMARY_SAMPLE)
    counts = {"valid": 0, "capped": 0}
    samples: dict[str, list[np.ndarray]] = {"v": [], "se": []}
    tags = _tags(delivery, min_coherence, min_epochs, project_downslope, min_sensitivity, resampling)
    with RasterWriter(out_path, grid, BANDS, dtype="float32", nodata=np.nan, tags=tags) as writer:
        for blk in grid.windows(block):
            win = blk.write
            # in place: the readers return fresh float32 arrays, and an epochs x block copy is 64 MB
            data = _scaled(src.read(win), scale)
            if read_coh is not None:
                # NaN coherence (outside its footprint) cannot vouch for the pixel, so it masks too.
                np.copyto(data, np.nan, where=~(read_coh(win) >= min_coherence))
            if t is not None:  # a time series delivery
                v, se, n = fit_velocity(data, t, min_epochs=min_epochs)
            else:
                v, n = data[0], np.zeros(data.shape[1:], dtype=np.int32)
                se = src.read_std(win)[0] * scale if src.read_std is not None else np.full_like(v, np.nan)
            capped = np.zeros(v.shape, dtype=bool)
            if terrain is not None:
                # _terrain_reader refused a delivery without them, so both are set here
                assert delivery.heading_deg is not None and delivery.incidence_deg is not None
                slope, aspect = terrain(win)
                coef, capped = clip_coefficient(
                    downslope_coefficient(slope, aspect, delivery.heading_deg, delivery.incidence_deg), min_sensitivity)
                v, se = v / coef, se / np.abs(coef)
            valid = np.isfinite(v)
            quality = np.where(valid, np.where(capped, QUALITY_CAPPED, QUALITY_VALID), QUALITY_MASKED)
            se = np.where(valid, se, np.nan)
            writer.write(np.stack([v, se, n, quality]).astype(np.float32), win)
            counts["valid"] += int(valid.sum())
            counts["capped"] += int((valid & capped).sum())
            pick = valid & _stride_mask(grid, win, stride)
            samples["v"].append(np.abs(v[pick]).astype(np.float32))
            samples["se"].append(se[pick].astype(np.float32))
    return _summary(delivery, grid, src, counts, samples, min_coherence, min_epochs, project_downslope, resampling)


def _scaled(data: np.ndarray, scale: np.float32) -> np.ndarray:
    """``data * scale``, in place when that keeps the dtype (the result is the same either way)."""
    if data.dtype == np.result_type(data.dtype, scale):
        return np.multiply(data, scale, out=data)
    return data * scale


def _open_source(delivery: Delivery, grid: AreaGrid, resampling: Resampling) -> _Source:
    path = delivery.data_path
    if path.suffix != ".h5":
        count, bounds, shape = _raster_info(path, grid.crs)
        _check_count(delivery, count)
        check_overlap(path, bounds, grid)
        return _Source(path, count, _tif_reader(path, grid, resampling))
    prod = open_mintpy(path, delivery.kind)
    _check_count(delivery, prod.count)
    if prod.unit is not None and prod.unit != delivery.unit:
        raise DeliveryError(f"the file's UNIT attribute is {prod.unit!r} but delivery.yaml says {delivery.unit!r}",
                            path)
    if prod.dates and prod.dates != delivery.dates:
        pairs = [f"{a} != {b}" for a, b in zip(prod.dates, delivery.dates, strict=False) if a != b]
        diff = pairs[0] if pairs else f"{len(prod.dates)} dates against {len(delivery.dates)}"
        raise DeliveryError(f"the dates in dataset 'date' differ from delivery.yaml ({diff})", path)
    bounds = prod.bounds_in(grid.crs)
    check_overlap(path, bounds, grid)
    scale = warp_scale(bounds, (prod.height, prod.width), grid)

    def read(win: Window) -> np.ndarray:
        return prod.read_window(grid, win, resampling=resampling, warp_options=scale)

    def read_std(win: Window) -> np.ndarray:
        return prod.read_window(grid, win, dataset=STD_DATASET, resampling=resampling, warp_options=scale)

    return _Source(path, prod.count, read, read_std if prod.has_std else None)


def _check_count(delivery: Delivery, count: int) -> None:
    if delivery.kind == "timeseries" and count != len(delivery.dates):
        raise DeliveryError(f"{count} epochs in the file but delivery.yaml lists {len(delivery.dates)} dates",
                            delivery.data_path)
    if delivery.kind == "velocity" and count != 1:
        raise DeliveryError(f"a velocity delivery needs one band, found {count}", delivery.data_path)


def _raster_info(path: Path, crs: str) -> tuple[int, tuple[float, float, float, float], tuple[int, int]]:
    """Band count, bounds in ``crs`` and shape of a raster; clear errors naming the file."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise GridMismatchError("raster has no CRS", path)
            bounds = tuple(src.bounds)
            if CRS.from_user_input(src.crs) != CRS.from_user_input(crs):
                bounds = tuple(transform_bounds(src.crs, crs, *bounds, densify_pts=21))
            return src.count, bounds, src.shape
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(f"cannot open raster ({exc})", path) from exc


def _tif_reader(path: Path, grid: AreaGrid, resampling: Resampling) -> Callable[[Window], np.ndarray]:
    """Reader of a GeoTIFF's windows on the area grid (all bands, NaN nodata)."""
    return lambda win: raster_window_on_grid(path, grid, win, reproject=True, resampling=resampling)


def _filled(arr: np.ma.MaskedArray) -> np.ndarray:
    return np.ma.filled(arr.astype(np.float32), np.nan)


def _coherence_reader(delivery: Delivery, grid: AreaGrid, n_epochs: int,
                      resampling: Resampling) -> Callable[[Window], np.ndarray] | None:
    path = delivery.coherence_path
    if path is None:
        return None
    count, bounds, shape = _raster_info(path, grid.crs)
    allowed = (1, n_epochs) if delivery.kind == "timeseries" else (1,)
    if count not in allowed:
        raise DeliveryError(f"{count} coherence bands; expected {' or '.join(map(str, sorted(set(allowed))))} "
                            "(one temporal coherence, or one per epoch)", path)
    check_overlap(path, bounds, grid)
    return _tif_reader(path, grid, resampling)


def _terrain_reader(delivery: Delivery, grid: AreaGrid, slope_path: str | Path | None,
                    aspect_path: str | Path | None) -> Callable[[Window], tuple[np.ndarray, np.ndarray]]:
    if delivery.heading_deg is None or delivery.incidence_deg is None:
        raise DeliveryError("heading_deg and incidence_deg are needed to project onto the downslope direction",
                            delivery.folder / "delivery.yaml")
    if slope_path is None:
        raise ConfigError("project_downslope needs slope_deg_path (and aspect bands or aspect_deg_path)")
    slope_path = Path(slope_path)
    aspect_path = Path(aspect_path) if aspect_path is not None else slope_path
    alone_ok = aspect_path != slope_path
    # Terrain must already be on the area grid: resampling aspect (an angle) would mix directions.
    for p in {slope_path, aspect_path}:
        grid.check_same(grid_of(p), p)
    slope_band = _band_index(slope_path, "slope", alone_ok=alone_ok)
    aspect_band = _band_index(aspect_path, "aspect", alone_ok=alone_ok)

    def read(win: Window) -> tuple[np.ndarray, np.ndarray]:
        return read_raster(slope_path, win, [slope_band])[0], read_raster(aspect_path, win, [aspect_band])[0]

    return read


def _band_index(path: str | Path, name: str, *, alone_ok: bool) -> int:
    """1-based index of the band called ``name`` (or ``name_*``); a single-band file is accepted when alone_ok."""
    names = [n.lower() for n in band_names(path)]
    hits = [i for i, n in enumerate(names) if n == name or n.startswith(f"{name}_")]
    if hits:
        return hits[0] + 1
    if alone_ok and len(names) == 1:
        return 1
    raise InputFileError(f"no band named {name!r} (bands: {names})", path)


def _stride_mask(grid: AreaGrid, win: Window, stride: int) -> np.ndarray | bool:
    if stride == 1:
        return True
    rows = np.arange(win.row_off, win.row_off + win.height, dtype=np.int64)[:, None]
    cols = np.arange(win.col_off, win.col_off + win.width, dtype=np.int64)[None, :]
    return (rows * grid.width + cols) % stride == 0


def _tags(delivery: Delivery, min_coherence: float, min_epochs: int, projected: bool, min_sensitivity: float,
          resampling: Resampling) -> dict[str, str]:
    return {
        "unit": "mm/yr", "delivery": delivery.folder.name, "source": delivery.data_path.name, "kind": delivery.kind,
        "period": delivery.period, "component": "downslope" if projected else "los",
        "los_convention": "ground-to-satellite unit vector; positive = towards the satellite",
        "quality": "0 masked, 1 valid, 2 valid but downslope coefficient clipped",
        "min_coherence": str(min_coherence), "min_epochs": str(min_epochs),
        "min_sensitivity": str(min_sensitivity), "resampling": resampling.name,
    }


def _summary(delivery: Delivery, grid: AreaGrid, src: _Source, counts: dict[str, int],
             samples: dict[str, list[np.ndarray]], min_coherence: float, min_epochs: int, projected: bool,
             resampling: Resampling) -> DeformationRateResult:
    v, se = np.concatenate(samples["v"]), np.concatenate(samples["se"])
    se = se[np.isfinite(se)]
    valid = counts["valid"]
    return DeformationRateResult(
        kind=delivery.kind, source=delivery.data_path.name, unit_in=delivery.unit, unit="mm/yr",
        component="downslope" if projected else "los", n_dates=len(delivery.dates),
        n_pixels=grid.n_pixels, valid_pixels=valid, valid_share=valid / grid.n_pixels,
        capped_share=counts["capped"] / valid if valid else 0.0,
        median_abs_velocity_mm_yr=float(np.median(v)) if v.size else None,
        p95_abs_velocity_mm_yr=float(np.percentile(v, 95)) if v.size else None,
        median_stderr_mm_yr=float(np.median(se)) if se.size else None,
        min_coherence=min_coherence, min_epochs=min_epochs if delivery.kind == "timeseries" else None,
        resampling=resampling.name, file_bands=src.count,
    )
