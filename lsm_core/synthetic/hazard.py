"""Ground truth of the synthetic study areas: hazard, unstable slopes, landslide events, velocities, NDVI.

Part of ``lsm_core.synthetic`` (the generator in ``writer``). Lengths are metres, velocities mm/yr (positive =
towards the satellite for line-of-sight values), dates are ``datetime.date``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio import features
from scipy import ndimage

from lsm_core.grid import AreaGrid
from lsm_core.synthetic.terrain import Landscape, Rng, distance_to, rasterize_lines, smooth_field, smoothstep

__all__ = ["Event", "Period", "Site", "Terrain", "draw_sites_and_events", "hazard_field", "label_raster",
           "add_bowl", "los_factor", "ndvi_base", "ndvi_scene", "observe_ndvi", "seasonal_date", "unstable_mask"]

Period = tuple[dt.date, dt.date]


@dataclass
class Site:
    """An unstable slope: a Gaussian deformation bowl that may fail at a known date."""

    x: float
    y: float
    sigma_m: float          # bowl width (1 sigma), m
    v0_mm_yr: float         # downslope speed at the bowl centre in the first period, mm/yr
    accel: float            # speed factor per later period (>= 1: slopes speed up towards failure)
    onset: dt.date          # deformation starts
    failure: dt.date | None  # landslide date, or None if it has not failed within the inventory's span
    event: int = -1         # index of its landslide in the event list, -1 if none


@dataclass
class Event:
    """A landslide: polygon, date, initiation point, and post-failure creep (mm/yr, 0 if dormant)."""

    polygon: shapely.Polygon
    date: dt.date
    init_x: float
    init_y: float
    creep_mm_yr: float
    site: int = -1          # index of the unstable slope it came from, -1 for sudden failures


def hazard_field(rng: Rng, grid: AreaGrid, land: Landscape, slope: np.ndarray, rain_z: np.ndarray) -> np.ndarray:
    """True failure propensity 0..1: logistic of slope, weak rock, fault/river/road/mining proximity, a random field."""
    res = grid.resolution_m
    weak = np.zeros(max(land.units) + 1, np.float32)
    for code, (_, w) in land.units.items():
        weak[code] = w
    d_fault = distance_to(rasterize_lines(grid, land.faults), res)
    d_river = distance_to(rasterize_lines(grid, [ln for ln, order in land.rivers if order <= 2]), res)
    d_road = distance_to(rasterize_lines(grid, [ln for ln, _ in land.roads]), res)
    mines = np.zeros(grid.shape, bool)
    if len(land.mining):
        r, c = grid.rowcol(land.mining[:, 0], land.mining[:, 1])
        mines[r, c] = True
    d_mine = distance_to(mines, res)
    z = (-7.6 + 7.5 * smoothstep((slope - 5.0) / 40.0) + 1.8 * weak[land.lithology]
         + 1.3 * np.exp(-d_fault / 800.0) + 0.9 * np.exp(-d_river / 250.0) + 1.1 * np.exp(-d_road / 100.0)
         + 0.7 * np.exp(-d_mine / 350.0) + 0.3 * rain_z + 0.6 * smooth_field(rng, grid.shape, 1500.0 / res))
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def seasonal_date(rng: Rng, start: dt.date, end: dt.date) -> dt.date:
    """A date in [start, end], most likely in the monsoon / rainy season (July +- 1.5 months)."""
    for _ in range(1000):
        year = int(rng.integers(start.year, end.year + 1))
        doy = int(np.clip(rng.normal(200, 45), 1, 365))
        d = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
        if start <= d <= end:
            return d
    return start + dt.timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def _ellipse_window(grid: AreaGrid, cx: float, cy: float, de: float, dn: float, half_l: float, half_w: float,
                    grow: float) -> tuple[tuple[slice, slice], np.ndarray]:
    """Window and mask of the pixels inside an ellipse (axes along / across the downslope direction)."""
    res = grid.resolution_m
    r0, c0 = (int(v) for v in grid.rowcol(cx, cy))
    k = int(half_l * grow / res) + 2
    rs = slice(max(r0 - k, 0), min(r0 + k + 1, grid.height))
    cs = slice(max(c0 - k, 0), min(c0 + k + 1, grid.width))
    a, _, xoff, _, e, yoff = grid.transform
    px = xoff + a * (np.arange(cs.start, cs.stop) + 0.5) - cx
    py = yoff + e * (np.arange(rs.start, rs.stop) + 0.5) - cy
    dx, dy = np.meshgrid(px, py)
    along, across = dx * de + dy * dn, -dx * dn + dy * de
    return (rs, cs), (along / (half_l * grow)) ** 2 + (across / (half_w * grow)) ** 2 <= 1.0


def _outline(rng: Rng, cx: float, cy: float, de: float, dn: float, half_l: float, half_w: float) -> shapely.Polygon:
    """A landslide outline: an ellipse along the slope with a wider toe and a wavy margin (0.1 m vertices)."""
    phi = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + sum(rng.uniform(-0.05, 0.05) * np.cos(m * phi + rng.uniform(0, 2 * np.pi)) for m in (2, 3, 5))
    along = half_l * wobble * np.cos(phi)
    across = half_w * wobble * np.sin(phi) * (1 + 0.2 * np.cos(phi))  # cos(phi) > 0 is downslope: the toe spreads
    x = cx + along * de - across * dn
    y = cy + along * dn + across * de
    return shapely.Polygon(np.round(np.column_stack([x, y]), 1))


@dataclass
class Terrain:
    """Rasters events are drawn on: smoothed slope (deg), downslope unit vector (east, north), pixel slope, DEM (m)."""

    slope: np.ndarray
    down_e: np.ndarray
    down_n: np.ndarray
    slope_px: np.ndarray
    dem: np.ndarray

    def z(self, grid: AreaGrid, x: float, y: float) -> float:
        """Elevation (m) of the pixel holding (x, y)."""
        r, c = (int(v) for v in grid.rowcol(x, y))
        return float(self.dem[r, c])


def _try_event(rng: Rng, grid: AreaGrid, terr: Terrain, taken: np.ndarray, crown: tuple[float, float],
               area_m2: float, ratio: float) -> tuple[shapely.Polygon, float, float] | None:
    """Place one landslide below ``crown`` if it fits on free ground inside the area; returns polygon and init point."""
    r, c = (int(v) for v in grid.rowcol(*crown))
    if not (0 <= r < grid.height and 0 <= c < grid.width) or terr.slope[r, c] < 12:
        return None
    de, dn = float(terr.down_e[r, c]), float(terr.down_n[r, c])
    if de == 0 and dn == 0:
        return None
    half_w = np.sqrt(area_m2 / (np.pi * ratio))
    half_l = ratio * half_w
    cx, cy = crown[0] + half_l * de, crown[1] + half_l * dn
    x0, y0, x1, y1 = grid.bounds
    if not (x0 + half_l * 1.3 < cx < x1 - half_l * 1.3 and y0 + half_l * 1.3 < cy < y1 - half_l * 1.3):
        return None
    win, mask = _ellipse_window(grid, cx, cy, de, dn, half_l, half_w, 1.3)  # keep a gap between landslides
    if (taken[win] & mask).any():
        return None
    on_slope = terr.slope_px[win][mask]
    if on_slope.mean() < 20 or (on_slope < 10).mean() > 0.08:  # the body lies on the slope, not the valley floor
        return None
    # the mass moves downhill all along its axis (no run-up across a saddle onto the next hill)
    axis = [terr.z(grid, crown[0] + f * half_l * de, crown[1] + f * half_l * dn) for f in (0.25, 0.7, 1.0, 1.4, 1.8)]
    if not all(np.diff(axis) < 0):
        return None
    poly = _outline(rng, cx, cy, de, dn, half_l, half_w)
    # the initiation point sits just below the crown, on the slope's centre line
    ix, iy = round(crown[0] + 0.25 * half_l * de, 1), round(crown[1] + 0.25 * half_l * dn, 1)
    if not poly.contains(shapely.Point(ix, iy)):
        return None
    taken[win] |= mask
    return poly, ix, iy


def draw_sites_and_events(rng: Rng, grid: AreaGrid, terr: Terrain, hazard: np.ndarray, *, n_events: int,
                          n_sites: int, periods: list[Period], span: Period, median_area_m2: float,
                          length_to_width: tuple[float, float]
                          ) -> tuple[list[Site], list[Event]]:
    """Unstable slopes (some failing later) and landslides drawn from the hazard, without overlaps."""
    x, y = grid.pixel_centers()
    res = grid.resolution_m
    taken = np.zeros(grid.shape, bool)
    sites: list[Site] = []
    events: list[Event] = []
    # unstable slopes sit where the hazard is highest; their bowls are reserved so no older polygon covers them
    w = (hazard.astype(np.float64) ** 3 * (terr.slope > 20)).ravel()
    for idx in rng.choice(w.size, size=n_sites * 8, p=w / w.sum()):
        if len(sites) >= n_sites:
            break
        sx, sy = x.flat[idx] + rng.uniform(-res / 2, res / 2), y.flat[idx] + rng.uniform(-res / 2, res / 2)
        sigma = rng.uniform(40, 110)
        win, mask = _ellipse_window(grid, sx, sy, 1.0, 0.0, 2.5 * sigma, 2.5 * sigma, 1.0)
        if taken[win][mask].any() or not (grid.bounds[0] + 3 * sigma < sx < grid.bounds[2] - 3 * sigma
                                          and grid.bounds[1] + 3 * sigma < sy < grid.bounds[3] - 3 * sigma):
            continue
        onset = (seasonal_date(rng, span[0], periods[0][0]) if rng.random() < 0.8
                 else seasonal_date(rng, periods[0][0], periods[-1][0]))
        fails = rng.random() < 0.5
        failure = seasonal_date(rng, max(onset, periods[0][0]) + dt.timedelta(days=90), span[1]) if fails else None
        sites.append(Site(round(float(sx), 1), round(float(sy), 1), round(float(sigma), 1),
                          round(float(np.exp(rng.uniform(np.log(8), np.log(60)))), 2),
                          round(float(rng.uniform(1.0, 1.6)), 3), onset, failure))
        taken[win] |= mask
    reserved = taken.copy()
    taken[:] = False
    # a failing slope becomes a landslide whose crown lies above the bowl centre
    for i, s in enumerate(sites):
        if s.failure is None:
            continue
        r, c = (int(v) for v in grid.rowcol(s.x, s.y))
        de, dn = float(terr.down_e[r, c]), float(terr.down_n[r, c])
        area = float(np.clip(np.pi * 1.6 * s.sigma_m ** 2, 5000, 50000))
        placed = None
        while placed is None:
            for back in (1.2, 0.8, 0.5):
                crown = (s.x - back * s.sigma_m * de, s.y - back * s.sigma_m * dn)
                placed = placed or _try_event(rng, grid, terr, taken, crown, area, float(np.mean(length_to_width)))
            if area <= 5000:
                break
            area = max(area * 0.6, 5000)  # a short slope holds a smaller landslide
        if placed is None:
            s.failure = None  # it keeps deforming instead (no room for a polygon)
            continue
        s.event = len(events)
        events.append(Event(placed[0], s.failure, placed[1], placed[2], round(0.5 * s.v0_mm_yr, 2), i))
    taken |= reserved
    # sudden (rainfall-triggered) failures: an inhomogeneous point process on the hazard
    w = (hazard.astype(np.float64) ** 2).ravel()
    n_sudden = max(n_events - len(events), 0)
    for idx in rng.choice(w.size, size=n_sudden * 25, p=w / w.sum()):
        if len(events) >= n_events:
            break
        crown = (x.flat[idx] + rng.uniform(-res / 2, res / 2), y.flat[idx] + rng.uniform(-res / 2, res / 2))
        area = float(np.clip(rng.lognormal(np.log(median_area_m2), 0.55), 5000, 50000))
        ratio = rng.uniform(*length_to_width)
        placed = _try_event(rng, grid, terr, taken, crown, area, ratio)
        while placed is None and area > 5000:  # a short slope holds a smaller landslide
            area = max(area * 0.6, 5000)
            placed = _try_event(rng, grid, terr, taken, crown, area, ratio)
        if placed is None:
            continue
        creep = round(float(rng.uniform(4, 15)), 2) if rng.random() < 0.25 else 0.0
        events.append(Event(placed[0], seasonal_date(rng, *span), placed[1], placed[2], creep))
    return sites, events


def label_raster(grid: AreaGrid, events: list[Event]) -> np.ndarray:
    """Pixel -> 1 + index of the landslide covering it (0 outside every polygon)."""
    if not events:
        return np.zeros(grid.shape, np.int32)
    return features.rasterize([(e.polygon, i + 1) for i, e in enumerate(events)], out_shape=grid.shape,
                              transform=grid.affine, dtype="int32")


def los_factor(terr: Terrain, u: np.ndarray) -> np.ndarray:
    """LOS displacement per unit of downslope motion (motion along the slope surface, down the fall line)."""
    b = np.radians(terr.slope)
    me, mn, mu = np.cos(b) * terr.down_e, np.cos(b) * terr.down_n, -np.sin(b)
    flat = (terr.down_e == 0) & (terr.down_n == 0)
    mu = np.where(flat, -1.0, mu)  # flat ground can only settle
    return (me * u[0] + mn * u[1] + mu * u[2]).astype(np.float32)


def add_bowl(out: np.ndarray, grid: AreaGrid, cx: float, cy: float, sigma: float, amp: float) -> None:
    """Add amp * Gaussian(sigma) centred on (cx, cy) in place (cut at 3.5 sigma)."""
    win, mask = _ellipse_window(grid, cx, cy, 1.0, 0.0, 3.5 * sigma, 3.5 * sigma, 1.0)
    a, _, xoff, _, e, yoff = grid.transform
    px = xoff + a * (np.arange(win[1].start, win[1].stop) + 0.5) - cx
    py = yoff + e * (np.arange(win[0].start, win[0].stop) + 0.5) - cy
    r2 = px[None, :] ** 2 + py[:, None] ** 2
    out[win] += (amp * np.exp(-r2 / (2 * sigma ** 2)) * mask).astype(np.float32)


def unstable_mask(grid: AreaGrid, sites: list[Site], events: list[Event], labels: np.ndarray,
                  n_periods: int) -> np.ndarray:
    """1 on unstable slopes whether or not they have failed yet: every landslide, and where a bowl moves >= 2 mm/yr."""
    out = labels > 0
    cut = 2.0  # mm/yr downslope: the edge of an unstable slope (speed = peak * exp(-r^2 / 2 sigma^2))
    for s in sites:
        peak = s.v0_mm_yr * s.accel ** (n_periods - 1)
        r = s.sigma_m * min(3.5, max(1.5, np.sqrt(2 * np.log(max(peak / cut, 1.0)))))
        win, mask = _ellipse_window(grid, s.x, s.y, 1.0, 0.0, r, r, 1.0)
        out[win] |= mask
    for e in events:
        if e.creep_mm_yr > 0 and e.site < 0:
            sigma = np.sqrt(e.polygon.area) / 3.0  # as in motion.motion_bowls
            r = sigma * min(3.5, max(1.5, np.sqrt(2 * np.log(max(e.creep_mm_yr / cut, 1.0)))))
            c = e.polygon.centroid
            win, mask = _ellipse_window(grid, c.x, c.y, 1.0, 0.0, r, r, 1.0)
            out[win] |= mask
    return out.astype(np.uint8)


def ndvi_scene(grid: AreaGrid, base: np.ndarray, seasonal_amp: np.ndarray, date: dt.date, labels: np.ndarray,
               events: list[Event], creeping: list[Site], precursor: float = 0.0) -> np.ndarray:
    """Noise-free NDVI at ``date``: base cover with its seasonal swing, fresh landslide scars, and a dip of
    ``precursor`` (NDVI units, at the centre) on the ``creeping`` slopes before they fail (0: no precursor)."""
    doy = date.timetuple().tm_yday
    nd: np.ndarray = base + seasonal_amp * np.float32(np.cos(2 * np.pi * (doy - 215) / 365.25))  # greenest in early August
    ages = np.array([(date - e.date).days / 365.25 for e in events] + [-1.0], np.float32)
    age = ages[labels - 1]  # label 0 reads the trailing -1: no scar
    scar = np.where(age >= 0, np.exp(-np.maximum(age, 0) / 3.0), 0.0)  # bare scars regrow over ~3 years
    nd = nd * (1 - 0.7 * scar)
    cracks = np.zeros(grid.shape, np.float32)
    for s in creeping if precursor > 0 else []:
        if s.onset <= date and (s.failure is None or s.failure > date):
            add_bowl(cracks, grid, s.x, s.y, s.sigma_m, precursor)  # disturbed cover on a creeping slope
    return (nd - cracks).astype(np.float32)


def observe_ndvi(rng: Rng, ndvi: np.ndarray, cloudy: bool) -> np.ndarray:
    """A scene as a sensor delivers it: haze and noise added, clipped, residual clouds as NaN."""
    nd = ndvi + 0.03 * smooth_field(rng, ndvi.shape, 10) + 0.02 * rng.standard_normal(ndvi.shape, dtype=np.float32)
    nd = np.clip(nd, -0.2, 0.95).astype(np.float32)
    if cloudy:
        nd[smooth_field(rng, ndvi.shape, 15) > 2.2] = np.nan
    return nd


def ndvi_base(rng: Rng, grid: AreaGrid, land: Landscape, slope: np.ndarray, kind: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Mean NDVI and its seasonal amplitude: forest on karst, sparse grass and farmland on loess."""
    res = grid.resolution_m
    d_road = distance_to(rasterize_lines(grid, [ln for ln, _ in land.roads]), res)
    houses = np.zeros(grid.shape, bool)
    if len(land.buildings):
        r, c = grid.rowcol(land.buildings[:, 0], land.buildings[:, 1])
        houses[r, c] = True
    built = ndimage.gaussian_filter(houses.astype(np.float32), 30 / res) * (2 * np.pi * (30 / res) ** 2)
    built = np.clip(built / 3.0, 0, 1)
    if kind == "karst":
        base = 0.74 + 0.06 * smooth_field(rng, grid.shape, 800 / res) - 0.2 * smoothstep((slope - 40) / 20)
        amp = np.full(grid.shape, 0.06, np.float32)
    else:
        farm = (slope < 8).astype(np.float32)
        base = (0.26 + 0.07 * smooth_field(rng, grid.shape, 1000 / res) + 0.08 * farm
                - 0.06 * smoothstep((slope - 30) / 20))
        amp = 0.12 + 0.1 * farm
    base = np.where(d_road < 8, 0.15, base * (1 - 0.7 * built))
    base = np.where(land.water, 0.0, base)
    return base.astype(np.float32), np.where(land.water, 0.02, amp).astype(np.float32)
