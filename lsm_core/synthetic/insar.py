"""Synthetic InSAR products: coherence, a stable reference point, displacement time series and velocity maps.

Part of ``lsm_core.synthetic`` (the generator in ``writer``). Displacements are mm, velocities mm/yr, along the line
of sight with positive values towards the satellite (the MintPy convention), relative to the
reference point (and, for time series, to the first acquisition).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from lsm_core.synthetic.terrain import Rng, smooth_field, smoothstep

__all__ = ["COHERENCE_MASK", "acquisition_dates", "coherence", "reference_pixel", "timeseries", "velocity_map"]

COHERENCE_MASK = 0.3  # below this the pixel is decorrelated: NaN in the data


def coherence(rng: Rng, ndvi_mean: np.ndarray, slope: np.ndarray, range_slope: np.ndarray, water: np.ndarray,
              incidence_deg: float, veg_loss: float) -> np.ndarray:
    """Temporal coherence 0..1: vegetation, steepness, layover/shadow and water decorrelate the signal."""
    gamma = (0.95 - veg_loss * np.clip(np.nan_to_num(ndvi_mean, nan=0.9) - 0.35, 0, 0.6)
             - 0.25 * smoothstep((slope - 35) / 25) + 0.06 * smooth_field(rng, slope.shape, 3)
             + 0.03 * rng.standard_normal(slope.shape))
    # slopes facing the radar steeper than the incidence angle fold over; those facing away too steeply are shadowed
    geometric = (range_slope > incidence_deg) | (-range_slope > 90 - incidence_deg)
    gamma = np.where(geometric | water, 0.05 + 0.1 * rng.random(slope.shape), gamma)
    return np.clip(gamma, 0.02, 0.99).astype(np.float32)


def reference_pixel(coh: np.ndarray, slope: np.ndarray, speeds: list[np.ndarray], far_from_motion: np.ndarray
                    ) -> tuple[int, int]:
    """Row, col of a coherent, gentle pixel with no motion in any period, nearest the scene centre."""
    ok = (coh > min(0.7, float(np.quantile(coh, 0.9)))) & (slope < 10) & far_from_motion
    for v in speeds:
        ok &= np.abs(v) < 0.05
    if not ok.any():
        ok = coh >= np.nanmax(coh) - 1e-6
    rr, cc = np.nonzero(ok)
    h, w = coh.shape
    k = int(np.argmin((rr - h / 2) ** 2 + (cc - w / 2) ** 2))
    return int(rr[k]), int(cc[k])


def acquisition_dates(start: dt.date, end: dt.date, first_offset_days: int, revisit_days: int = 12) -> list[dt.date]:
    """Sentinel-1 style acquisitions every ``revisit_days`` inside [start, end]."""
    out, d = [], start + dt.timedelta(days=first_offset_days)
    while d <= end:
        out.append(d)
        d += dt.timedelta(days=revisit_days)
    return out


def _white_sigma(coh: np.ndarray, scale: float) -> np.ndarray:
    """Decorrelation noise grows as coherence falls (Cramer-Rao-like sqrt(1 - g^2) / g)."""
    g = np.clip(coh, 0.05, 0.99)
    return (scale * np.sqrt(1 - g ** 2) / g).astype(np.float32)


def timeseries(rng: Rng, velocity: np.ndarray, dates: list[dt.date], coh: np.ndarray, dem: np.ndarray,
               seasonal_amp: np.ndarray, ref: tuple[int, int], res_m: float) -> np.ndarray:
    """Cumulative LOS displacement (epochs x rows x cols, mm) = v t + seasonal + atmosphere + noise, referenced."""
    t = np.array([(d - dates[0]).days / 365.25 for d in dates], np.float32)
    doy = np.array([d.timetuple().tm_yday for d in dates], np.float32)
    shape = velocity.shape
    dz = (dem - dem.mean()).astype(np.float32)
    sigma_w = _white_sigma(coh, 0.8)
    masked = coh < COHERENCE_MASK
    weak = ~masked & (coh < COHERENCE_MASK + 0.1)
    out = np.empty((len(dates), *shape), np.float32)
    first = None
    for k in range(len(dates)):
        # residual troposphere after correction: turbulent (km-scale, ~2 mm) plus a stratified delay ~ height
        atm = 1.1 * smooth_field(rng, shape, 2500 / res_m) + 0.8 * smooth_field(rng, shape, 800 / res_m)
        atm += np.float32(rng.normal(0, 0.004)) * dz
        seas = seasonal_amp * np.float32(np.sin(2 * np.pi * (doy[k] - 150) / 365.25))  # largest after the wet season
        d = velocity * t[k] + seas + atm + sigma_w * rng.standard_normal(shape, dtype=np.float32)
        first = d if first is None else first
        d = d - first  # displacements since the first acquisition
        d -= d[ref]  # relative to the reference point
        d[masked] = np.nan
        if k:  # marginal pixels lose single acquisitions (unwrapping failures), never the first
            d[weak & (rng.random(shape, dtype=np.float32) < 0.15)] = np.nan
        out[k] = d
    return out


def velocity_map(rng: Rng, velocity: np.ndarray, coh: np.ndarray, ref: tuple[int, int], res_m: float) -> np.ndarray:
    """Mean LOS velocity (mm/yr) as an InSAR processor delivers it: residual atmosphere, noise, referenced, masked."""
    v = (velocity + 0.6 * smooth_field(rng, velocity.shape, 3000 / res_m)
         + _white_sigma(coh, 0.4) * rng.standard_normal(velocity.shape, dtype=np.float32))
    v -= v[ref]
    return np.where(coh < COHERENCE_MASK, np.nan, v).astype(np.float32)
