"""True ground motion of a synthetic area under its knobs: deformation bowls and the LOS velocity they give.

Part of ``lsm_core.synthetic`` (the generator in ``writer``, the knobs in ``knobs``). Speeds are mm/yr:
downslope along the slope surface for slope bowls and the background creep, vertical sinking for
subsidence bowls; LOS velocities are positive towards the satellite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsm_core.grid import AreaGrid
from lsm_core.synthetic.hazard import Event, Period, Site, Terrain, add_bowl, los_factor
from lsm_core.synthetic.knobs import WorldKnobs
from lsm_core.synthetic.terrain import Rng, los_vector, smooth_field

__all__ = ["Bowl", "background_creep", "motion_bowls", "precursory_flags", "true_velocity"]


@dataclass
class Bowl:
    """A Gaussian patch of motion: centre (m), width (1 sigma, m) and peak speed per monitoring period (mm/yr)."""

    kind: str                 # "unstable_slope", "landslide_creep" (downslope) or "subsidence" (vertical)
    source: str               # site / event index or "mine" / "depression"
    x: float
    y: float
    sigma_m: float
    speeds: tuple[float, ...]


def precursory_flags(rng: Rng, n_sites: int, share: float) -> np.ndarray:
    """Which unstable slopes creep detectably before failing: each with probability ``share`` (own stream)."""
    return rng.random(n_sites) < share


def _site_speeds(s: Site, creeps: bool, periods: list[Period]) -> tuple[float, ...]:
    """Peak downslope speed of an unstable slope in each period (mm/yr)."""
    out = []
    for i, (p0, p1) in enumerate(periods):
        if s.onset > p1:
            v = 0.0
        elif s.failure is not None and s.failure < p0:
            v = 0.5 * s.v0_mm_yr  # the failed mass keeps creeping, whether or not it crept before
        elif creeps:
            active = min(1.0, (p1 - max(s.onset, p0)).days / (p1 - p0).days)
            v = s.v0_mm_yr * s.accel ** i * active
        else:
            v = 0.0  # unstable, but it fails without a detectable precursor
        out.append(round(float(v), 3))
    return tuple(out)


def _random_centre(rng: Rng, grid: AreaGrid, sigma: float) -> tuple[float, float]:
    """A uniformly random point at least 3 sigma inside the area."""
    x0, y0, x1, y1 = grid.bounds
    m = min(3 * sigma, (x1 - x0) / 4, (y1 - y0) / 4)
    return round(float(rng.uniform(x0 + m, x1 - m)), 1), round(float(rng.uniform(y0 + m, y1 - m)), 1)


def motion_bowls(rng: Rng, grid: AreaGrid, slope: np.ndarray, mining: np.ndarray, sites: list[Site],
                 creeping: np.ndarray, events: list[Event], periods: list[Period], knobs: WorldKnobs) -> list[Bowl]:
    """Every deformation bowl of the area: unstable slopes, creeping landslides, subsidence unrelated to hazard.

    ``slope``: pixel slope (deg); ``mining``: mining site coordinates (n x 2, m); ``creeping``: the
    precursory flag of each site. With ``knobs.deformation_on_hazard`` False the slope and landslide
    bowls move to uniformly random places (their speeds unchanged).
    """
    bowls = []
    for i, s in enumerate(sites):
        bowls.append(Bowl("unstable_slope", f"site {i}", s.x, s.y, s.sigma_m, _site_speeds(s, bool(creeping[i]),
                                                                                              periods)))
    for j, e in enumerate(events):
        if e.creep_mm_yr > 0 and e.site < 0:
            c = e.polygon.centroid
            speeds = tuple(e.creep_mm_yr if e.date < p0 else 0.0 for p0, _ in periods)
            bowls.append(Bowl("landslide_creep", f"event {j}", round(c.x, 1), round(c.y, 1),
                              round(float(np.sqrt(e.polygon.area) / 3.0), 1), speeds))
    if not knobs.deformation_on_hazard:
        for b in bowls:
            b.x, b.y = _random_centre(rng, grid, b.sigma_m)
    km2 = grid.n_pixels * grid.resolution_m ** 2 / 1e6
    n_sub = int(rng.poisson(knobs.subsidence_per_km2 * km2))
    n_mine = min(len(mining), n_sub // 2 + n_sub % 2)
    x, y = grid.pixel_centers()
    gentle = np.flatnonzero((slope < 15).ravel())
    picks = rng.choice(len(mining), size=n_mine, replace=False) if n_mine else np.empty(0, int)
    for k in range(n_sub):
        sigma = round(float(rng.uniform(60, 200)), 1)
        rate = round(float(rng.uniform(*knobs.subsidence_mm_yr)), 2)
        if k < n_mine:
            cx, cy, src = float(mining[picks[k], 0]), float(mining[picks[k], 1]), "mine"
        else:
            idx = int(rng.choice(gentle)) if gentle.size else int(rng.integers(grid.n_pixels))
            cx, cy, src = float(x.flat[idx]), float(y.flat[idx]), "depression"
        bowls.append(Bowl("subsidence", src, round(cx, 1), round(cy, 1), sigma, tuple(rate for _ in periods)))
    return bowls


def background_creep(rng: Rng, hazard: np.ndarray, on_hazard: bool) -> np.ndarray:
    """Slow soil creep (mm/yr downslope) 2 h^2: h the true hazard, or a field unrelated to it with the same values."""
    if on_hazard:
        h = hazard.astype(np.float32)
    else:
        # the hazard's own values, reordered by an independent smooth field: same spread, no link to hazard
        field = smooth_field(rng, hazard.shape, 100.0)
        h = np.empty(hazard.size, np.float32)
        h[np.argsort(field, axis=None)] = np.sort(hazard, axis=None)
        h = h.reshape(hazard.shape)
    return (2.0 * h ** 2).astype(np.float32)


def true_velocity(grid: AreaGrid, terr: Terrain, background: np.ndarray, bowls: list[Bowl], n_periods: int,
                  heading_deg: float, incidence_deg: float, knobs: WorldKnobs) -> list[np.ndarray]:
    """True mean LOS velocity (mm/yr, + towards the satellite) of each period from the background creep and bowls."""
    u = los_vector(heading_deg, incidence_deg)
    # without the projection the satellite sees the whole speed, as motion away from it
    along = los_factor(terr, u) if knobs.los_projection else np.float32(-1.0)
    down = float(-u[2]) if knobs.los_projection else -1.0  # LOS per mm of sinking
    out = []
    for i in range(n_periods):
        slide = background.copy()
        sink = np.zeros(grid.shape, np.float32)
        for b in bowls:
            if b.speeds[i] > 0:
                add_bowl(sink if b.kind == "subsidence" else slide, grid, b.x, b.y, b.sigma_m, b.speeds[i])
        out.append((slide * along + sink * down).astype(np.float32))
    return out
