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

import yaml

from lsm_core.area import period_key
from lsm_core.errors import DeliveryError

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
    ref = raw.get("reference_point")
    coh = folder / "coherence.tif"
    return Delivery(folder, str(raw["area"]), kind, found[kind], unit, start, end, dates,
                    _opt_float(raw.get("heading_deg")), _opt_float(raw.get("incidence_deg")),
                    tuple(float(v) for v in ref) if ref is not None else None, coh if coh.exists() else None)


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
