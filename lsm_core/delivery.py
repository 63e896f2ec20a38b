"""InSAR delivery contract (``data/incoming/insar/<area>/<delivery>/delivery.yaml``, DESIGN 5).

Example::

    area: karst
    period_start: 2016-02        # month (YYYY-MM) or a date
    period_end: 2017-06
    unit: mm                     # timeseries: mm | cm | m ; velocity: mm/yr | cm/yr | m/yr | mm/day | m/day
    dates: [2016-02-10, ...]     # timeseries only: one per band of timeseries.tif
    heading_deg: -168.0          # optional: satellite heading, degrees clockwise from north
    incidence_deg: 39.0          # optional: incidence angle, degrees from vertical
    reference_point: [x, y]      # optional: the point the displacements are relative to (area CRS)

plus ``velocity.tif`` or ``timeseries.tif`` (or MintPy's ``velocity.h5`` / ``timeseries.h5``),
optionally ``coherence.tif``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import rasterio
import rasterio.errors
import yaml
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from lsm_core.area import period_key
from lsm_core.errors import DeliveryError, GridMismatchError
from lsm_core.grid import AreaGrid
from lsm_core.io import check_overlap
from lsm_core.mintpy import open_mintpy

__all__ = ["Delivery", "check_delivery_data", "load_delivery"]

TIMESERIES_UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
VELOCITY_UNITS_TO_MM_YR = {"mm/yr": 1.0, "cm/yr": 10.0, "m/yr": 1000.0, "mm/day": 365.25, "m/day": 365250.0}
DATA_FILES = {"timeseries": ("timeseries.tif", "timeseries.h5"), "velocity": ("velocity.tif", "velocity.h5")}


@dataclass(frozen=True)
class Delivery:
    """A validated InSAR delivery: its kind, data file, unit, period and geometry."""

    folder: Path
    area: str
    kind: str  # "timeseries" or "velocity"
    data_path: Path
    unit: str
    period_start: dt.date
    period_end: dt.date
    dates: tuple[dt.date, ...] = ()
    heading_deg: float | None = None
    incidence_deg: float | None = None
    reference_point: tuple[float, float] | None = None
    coherence_path: Path | None = None

    @property
    def period(self) -> str:
        return period_key(self.period_start, self.period_end)

    @property
    def to_mm(self) -> float:
        """Factor that converts the delivery's unit to mm (time series) or mm/yr (velocity)."""
        table = TIMESERIES_UNITS_TO_MM if self.kind == "timeseries" else VELOCITY_UNITS_TO_MM_YR
        return table[self.unit]


def load_delivery(folder: str | Path) -> Delivery:
    """Read and validate a delivery folder; DeliveryError names the file and the problem."""
    folder = Path(folder)
    path = folder / "delivery.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise DeliveryError("delivery.yaml not found", path) from exc
    except yaml.YAMLError as exc:
        raise DeliveryError(f"invalid YAML ({exc})", path) from exc
    if not isinstance(raw, dict):
        raise DeliveryError("expected a mapping at the top level", path)
    found = {kind: next((folder / f for f in files if (folder / f).exists()), None) for kind, files in DATA_FILES.items()}
    kinds = [k for k, p in found.items() if p is not None]
    if len(kinds) != 1:
        raise DeliveryError(f"expected exactly one of velocity.tif/.h5 or timeseries.tif/.h5, found {kinds or 'none'}",
                            folder)
    kind = kinds[0]
    for key in ("area", "period_start", "period_end", "unit"):
        if key not in raw:
            raise DeliveryError(f"missing key {key!r}", path)
    unit = str(raw["unit"]).strip().lower()
    table = TIMESERIES_UNITS_TO_MM if kind == "timeseries" else VELOCITY_UNITS_TO_MM_YR
    if unit not in table:
        raise DeliveryError(f"unknown unit {raw['unit']!r} for a {kind} delivery (expected one of {sorted(table)})",
                            path)
    start, end = _month(raw["period_start"], path, first=True), _month(raw["period_end"], path, first=False)
    if start >= end:
        raise DeliveryError(f"period_start {start} is not before period_end {end}", path)
    dates = tuple(_as_date(d, path) for d in raw.get("dates", []) or [])
    if kind == "timeseries" and len(dates) < 2:
        raise DeliveryError("a time-series delivery needs 'dates' with at least two acquisitions", path)
    if list(dates) != sorted(dates):
        raise DeliveryError("'dates' must be in increasing order", path)
    outside = [d.isoformat() for d in dates if not start <= d <= end]
    if outside:
        raise DeliveryError(f"{len(outside)} dates lie outside the period {start} .. {end}: {outside[:5]}", path)
    ref = raw.get("reference_point")
    if ref is not None and len(ref) != 2:
        raise DeliveryError(f"reference_point must be [x, y], got {ref!r}", path)
    coh = folder / "coherence.tif"
    data_path = found[kind]
    assert data_path is not None  # kind was picked among the files found
    return Delivery(folder, str(raw["area"]), kind, data_path, unit, start, end, dates,
                    _opt_float(raw.get("heading_deg")), _opt_float(raw.get("incidence_deg")),
                    (float(ref[0]), float(ref[1])) if ref is not None else None, coh if coh.exists() else None)


def check_delivery_data(d: Delivery, grid: AreaGrid) -> None:
    """Open the delivery's data before it is accepted; DeliveryError names the file and the problem.

    Checks that the data file is non-empty and readable (its first and last blocks decode), has a
    CRS, overlaps the study area ``grid``, has one band per date in delivery.yaml (time series), and
    that ``coherence.tif``, if present, is readable on the same CRS and shape with one band or one
    per date. Reads a few blocks, not the whole raster.
    """
    if d.data_path.stat().st_size == 0:
        raise DeliveryError("is empty (0 bytes): the copy is incomplete or failed", d.data_path)
    if d.data_path.suffix == ".h5":
        prod = open_mintpy(d.data_path, d.kind)
        crs, shape, count = prod.crs, (prod.height, prod.width), prod.count
        bounds = prod.bounds_in(grid.crs)
    else:
        crs, shape, count, bounds = _probe_tif(d.data_path, grid.crs)
    if d.kind == "timeseries" and count != len(d.dates):
        raise DeliveryError(f"has {count} bands but delivery.yaml lists {len(d.dates)} dates", d.data_path)
    try:
        check_overlap(d.data_path, bounds, grid)
    except GridMismatchError as exc:
        raise DeliveryError(str(exc).split(": ", 1)[-1], d.data_path) from exc
    if d.coherence_path is not None:
        c_crs, c_shape, c_count, _ = _probe_tif(d.coherence_path, grid.crs)
        if CRS.from_user_input(c_crs) != CRS.from_user_input(crs) or c_shape != shape:
            raise DeliveryError(f"coherence grid ({c_crs}, {c_shape[0]} x {c_shape[1]}) differs from the data "
                                f"({crs}, {shape[0]} x {shape[1]})", d.coherence_path)
        if c_count not in (1, count):
            raise DeliveryError(f"coherence has {c_count} bands; expected 1 or {count}", d.coherence_path)


def _probe_tif(path: Path, area_crs: str) -> tuple[str, tuple[int, int], int, tuple[float, float, float, float]]:
    """CRS, shape, band count and bounds (area CRS) of a GeoTIFF whose first and last blocks decode."""
    if path.stat().st_size == 0:
        raise DeliveryError("is empty (0 bytes): the copy is incomplete or failed", path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise DeliveryError("has no CRS (georeference the raster)", path)
            h, w = src.height, src.width
            src.read(1, window=Window(0, 0, min(w, 256), min(h, 256)))
            src.read(src.count, window=Window(max(w - 256, 0), max(h - 256, 0), min(w, 256), min(h, 256)))
            bounds = tuple(src.bounds)
            if src.crs != CRS.from_user_input(area_crs):
                bounds = tuple(transform_bounds(src.crs, area_crs, *bounds, densify_pts=21))
            return src.crs.to_string(), (h, w), src.count, bounds
    except rasterio.errors.RasterioError as exc:
        raise DeliveryError(f"cannot be read as a raster ({exc})", path) from exc


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def _as_date(value, path: Path) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise DeliveryError(f"invalid date {value!r}", path) from exc


def _month(value, path: Path, first: bool) -> dt.date:
    """A period bound: a YYYY-MM month becomes its first (start) or last (end) day."""
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    if len(text) == 7:
        y, m = int(text[:4]), int(text[5:7])
        if first:
            return dt.date(y, m, 1)
        return dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)
    return _as_date(text, path)
