"""Terrain of the synthetic study areas: random fields, channel networks, DEMs and lithology.

Part of ``lsm_core.synthetic`` (the generator in ``writer``). Lengths are metres, elevations metres a.s.l., angles
degrees unless a name says otherwise. Everything is drawn from the generators passed in, so a
seed fixes the landscape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rasterio import features
from scipy import ndimage

from lsm_core.grid import AreaGrid

__all__ = ["Landscape", "Rng", "RngFor", "arc_length", "block_mean", "build_karst", "build_loess", "burn_points",
           "carve", "densify", "distance_to", "inside", "los_vector", "meander", "offset_line", "rasterize_lines",
           "slope_aspect", "smooth_field", "smoothstep"]

Rng = np.random.Generator
RngFor = Callable[[str], Rng]


# --------------------------------------------------------------------------- random fields


def smooth_field(rng: Rng, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ~``scale_px`` pixels (float32)."""
    # Long correlation lengths are filtered on a coarse grid and upsampled: same look, a fraction of the cost.
    f = max(1, int(scale_px / 4))
    ch, cw = shape[0] // f + 4, shape[1] // f + 4
    coarse = ndimage.gaussian_filter(rng.standard_normal((ch, cw)), scale_px / f, mode="wrap")
    if f > 1:
        field_ = _interp_matrix(shape[0], ch, f) @ coarse @ _interp_matrix(shape[1], cw, f).T
    else:
        field_ = coarse[:shape[0], :shape[1]]
    return ((field_ - field_.mean()) / (field_.std() + 1e-12)).astype(np.float32)


def _interp_matrix(n: int, n_coarse: int, f: int) -> np.ndarray:
    """Linear-interpolation weights (n x n_coarse) from a coarse axis with cells ``f`` times larger."""
    pos = (np.arange(n) + 0.5) / f + 1.0  # coarse coordinate of each fine cell centre, one coarse cell in
    i0 = np.floor(pos).astype(int)
    w1 = pos - i0
    m = np.zeros((n, n_coarse))
    m[np.arange(n), i0] = 1 - w1
    m[np.arange(n), np.minimum(i0 + 1, n_coarse - 1)] += w1
    return m


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of the last two axes (their sizes must be multiples of k)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic 0..1 ramp with zero slope at both ends."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --------------------------------------------------------------------------- lines and rasters


def meander(rng: Rng, start: tuple[float, float], azimuth_deg: float, length_m: float, *,
            wiggle_deg: float = 25.0, wavelength_m: float = 1500.0, step_m: float = 5.0) -> np.ndarray:
    """A sinuous polyline (N x 2, x/y metres) from ``start`` heading ``azimuth_deg`` (clockwise from north)."""
    s = np.arange(0.0, length_m + step_m, step_m)
    heading = np.full_like(s, np.radians(azimuth_deg))
    # a few random harmonics of the heading give meanders without self-crossing for modest wiggles
    for k in (1.0, 2.3, 4.1):
        heading += np.radians(wiggle_deg / k) * np.sin(2 * np.pi * s / (wavelength_m / k) + rng.uniform(0, 2 * np.pi))
    x = start[0] + np.concatenate([[0.0], np.cumsum(np.sin(heading[:-1]) * step_m)])
    y = start[1] + np.concatenate([[0.0], np.cumsum(np.cos(heading[:-1]) * step_m)])
    return np.column_stack([x, y])


def offset_line(line: np.ndarray, offset_m: float) -> np.ndarray:
    """The polyline shifted sideways by ``offset_m`` (positive = right of the direction of travel)."""
    d = np.gradient(line, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
    return line + offset_m * np.column_stack([d[:, 1], -d[:, 0]])


def inside(grid: AreaGrid, xy: np.ndarray, margin_m: float = 0.0) -> np.ndarray:
    """Boolean: points (N x 2) inside the grid bounds shrunk by ``margin_m``."""
    x0, y0, x1, y1 = grid.bounds
    return ((xy[:, 0] > x0 + margin_m) & (xy[:, 0] < x1 - margin_m)
            & (xy[:, 1] > y0 + margin_m) & (xy[:, 1] < y1 - margin_m))


def burn_points(grid: AreaGrid, xy: np.ndarray, values: np.ndarray | None = None,
                fill: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Mask of pixels hit by dense points and, per pixel, the minimum of ``values`` there."""
    r, c = grid.rowcol(xy[:, 0], xy[:, 1])
    ok = (r >= 0) & (r < grid.height) & (c >= 0) & (c < grid.width)
    mask = np.zeros(grid.shape, bool)
    mask[r[ok], c[ok]] = True
    val = np.full(grid.shape, fill, np.float64)
    if values is not None:
        np.minimum.at(val, (r[ok], c[ok]), values[ok])
    return mask, val


def rasterize_lines(grid: AreaGrid, lines: list[np.ndarray]) -> np.ndarray:
    """Boolean raster of the pixels a set of polylines touches."""
    import shapely

    geoms = [(shapely.LineString(ln), 1) for ln in lines if len(ln) > 1]
    if not geoms:
        return np.zeros(grid.shape, bool)
    return features.rasterize(geoms, out_shape=grid.shape, transform=grid.affine, all_touched=True,
                              dtype="uint8").astype(bool)


def distance_to(mask: np.ndarray, res: float) -> np.ndarray:
    """Euclidean distance (m) from each pixel to the nearest True pixel (inf if there is none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=res).astype(np.float32)


def carve(dem: np.ndarray, grid: AreaGrid, lines: list[np.ndarray], beds: list[np.ndarray],
          floor_m: float, wall_slope_deg: float) -> np.ndarray:
    """Cut valleys: each pixel is lowered to the nearest channel's bed plus a wall rising at ``wall_slope_deg``."""
    xy = np.concatenate(lines)
    mask, bed = burn_points(grid, xy, np.concatenate(beds))
    dist, (ir, ic) = ndimage.distance_transform_edt(~mask, sampling=grid.resolution_m, return_indices=True)
    valley = bed[ir, ic] + np.tan(np.radians(wall_slope_deg)) * np.maximum(dist - floor_m, 0.0)
    return np.minimum(dem, valley).astype(np.float32)


def densify(line: np.ndarray, step_m: float) -> np.ndarray:
    """Points along a polyline at most ``step_m`` apart (so burned pixels stay connected)."""
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, s[-1] + 1e-9, step_m)
    return np.column_stack([np.interp(t, s, line[:, 0]), np.interp(t, s, line[:, 1])])


def arc_length(line: np.ndarray) -> np.ndarray:
    """Cumulative distance (m) along a polyline from its first vertex."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])


# --------------------------------------------------------------------------- terrain derivatives


def slope_aspect(dem: np.ndarray, res: float, smooth_px: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope (deg) and downslope unit vector (east, north components) of a DEM."""
    z = ndimage.gaussian_filter(dem.astype(np.float64), smooth_px) if smooth_px else dem.astype(np.float64)
    dz_drow, dz_dcol = np.gradient(z, res)
    gx, gy = dz_dcol, -dz_drow  # d/d(east), d/d(north): rows run southwards
    g = np.hypot(gx, gy)
    slope = np.degrees(np.arctan(g)).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        de, dn = np.where(g > 0, -gx / g, 0.0), np.where(g > 0, -gy / g, 0.0)
    return slope, de.astype(np.float32), dn.astype(np.float32)


def los_vector(heading_deg: float, incidence_deg: float) -> np.ndarray:
    """Unit vector (east, north, up) from the ground to a right-looking satellite."""
    look_az = np.radians(heading_deg + 90.0)
    inc = np.radians(incidence_deg)
    return np.array([-np.sin(inc) * np.sin(look_az), -np.sin(inc) * np.cos(look_az), np.cos(inc)])


# --------------------------------------------------------------------------- landscapes


@dataclass
class Landscape:
    """A generated terrain with the vector layers that shaped it (coordinates in the area CRS, metres)."""

    dem: np.ndarray                                   # m a.s.l., float32
    lithology: np.ndarray                             # unit code per pixel, int32
    units: dict[int, tuple[str, float]]               # code -> (name, weakness 0..1)
    faults: list[np.ndarray]
    rivers: list[tuple[np.ndarray, int]]              # (polyline, stream order 1 = trunk)
    roads: list[tuple[np.ndarray, str]]               # (polyline, class)
    buildings: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    mining: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    water: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # bool: open water / river beds


def _network(rng: Rng, grid: AreaGrid, trunk: np.ndarray, trunk_bed: np.ndarray, surface: np.ndarray, *,
             spacing_m: float, length_m: tuple[float, float], incision_m: tuple[float, float], angle_deg: float,
             wiggle_deg: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Tributaries leaving a trunk on both sides every ~``spacing_m``; returns lines (flowing to the trunk) and beds.

    A bed follows the un-incised ``surface`` minus an incision depth that starts at the trunk's depth,
    peaks in the lower reach and tapers to zero at the channel head, and never falls going upstream.
    """
    s = arc_length(trunk)
    d = np.gradient(trunk, axis=0)
    az = np.degrees(np.arctan2(d[:, 0], d[:, 1]))
    lines, beds = [], []
    pos = rng.uniform(0.2, 1.0) * spacing_m
    while pos < s[-1]:
        i = int(np.searchsorted(s, pos))
        if inside(grid, trunk[i:i + 1], 50.0)[0]:
            side = 1 if rng.random() < 0.5 else -1
            # tributaries join pointing downstream, so they leave the junction angled upstream
            a = az[i] + side * (180.0 - angle_deg + rng.uniform(-15, 15))
            ln = meander(rng, tuple(trunk[i]), a, rng.uniform(*length_m), wiggle_deg=wiggle_deg,
                         wavelength_m=rng.uniform(400, 1200))
            out = ~inside(grid, ln, -200.0)  # stop once the line has left the area
            ln = ln[: max(2, int(np.argmax(out)))] if out.any() else ln
            u = arc_length(ln) / max(arc_length(ln)[-1], 1.0)
            r, c = grid.rowcol(ln[:, 0], ln[:, 1])
            surf = surface[np.clip(r, 0, grid.height - 1), np.clip(c, 0, grid.width - 1)]
            peak = rng.uniform(*incision_m)
            depth = (surf[0] - trunk_bed[i]) * (1 - u) + peak * np.sqrt(1 - u) * np.minimum(1.0, 4 * u)
            bed = np.maximum.accumulate(np.maximum(surf - depth, trunk_bed[i] + 0.5))
            lines.append(ln[::-1])  # vertex order follows the flow
            beds.append(bed[::-1])
        pos += spacing_m * rng.uniform(0.6, 1.4)
    return lines, beds


def _carve_network(dem: np.ndarray, grid: AreaGrid, lines: list[np.ndarray], beds: list[np.ndarray],
                   floor_m: float, wall_slope_deg: float) -> np.ndarray:
    """Carve a set of channels given as vertex lines and per-vertex bed elevations."""
    if not lines:
        return dem
    step = grid.resolution_m / 2
    dense = [densify(ln, step) for ln in lines]
    dbeds = [np.interp(arc_length(d), arc_length(ln), b) for d, ln, b in zip(dense, lines, beds, strict=True)]
    return carve(dem, grid, dense, dbeds, floor_m, wall_slope_deg)


def _subnetwork(rng: Rng, grid: AreaGrid, parents: list[np.ndarray], parent_beds: list[np.ndarray],
                surface: np.ndarray, **kw) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Branches of every parent channel (parents are flow-ordered, so they are walked from the mouth up)."""
    lines, beds = [], []
    for ln, b in zip(parents, parent_beds, strict=True):
        sub, sb = _network(rng, grid, ln[::-1], b[::-1], surface, **kw)
        lines += sub
        beds += sb
    return lines, beds


def _trunk(rng: Rng, grid: AreaGrid, azimuth_deg: float, offset_m: float, wiggle_deg: float) -> np.ndarray:
    """A river crossing the whole area along ``azimuth_deg``, passing ``offset_m`` beside the centre."""
    x0, y0, x1, y1 = grid.bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = np.hypot(x1 - x0, y1 - y0) / 2 + 500.0
    a = np.radians(azimuth_deg)
    cx, cy = cx + offset_m * np.cos(a), cy - offset_m * np.sin(a)
    start = (cx - half * np.sin(a), cy - half * np.cos(a))
    return meander(rng, start, azimuth_deg, 2 * half, wiggle_deg=wiggle_deg, wavelength_m=2500.0)


def _fault(rng: Rng, grid: AreaGrid, azimuth_deg: float, offset_m: float) -> np.ndarray:
    """A gently curved fault trace crossing the area."""
    return _trunk(rng, grid, azimuth_deg, offset_m, wiggle_deg=4.0)


def _villages(rng: Rng, grid: AreaGrid, slope: np.ndarray, roads: list[np.ndarray], per_km2: float,
              houses: tuple[int, int], spread_m: float, avoid: np.ndarray) -> np.ndarray:
    """House points clustered in villages on gentle ground beside roads (N x 2)."""
    pts = np.concatenate([densify(r, 50.0) for r in roads])
    pts = pts[inside(grid, pts, 100.0)]
    r, c = grid.rowcol(pts[:, 0], pts[:, 1])
    ok_site = (slope[r, c] < 12) & ~avoid[r, c]
    n_vil = max(2, int(round(per_km2 * grid.n_pixels * grid.resolution_m ** 2 / 1e6)))
    cand = pts[ok_site] if ok_site.sum() >= n_vil else pts
    centres = cand[rng.choice(len(cand), size=min(n_vil, len(cand)), replace=False)]
    out = []
    for cxy in centres:
        h = rng.normal(cxy, spread_m, size=(rng.integers(*houses), 2))
        h = h[inside(grid, h, 20.0)]
        hr, hc = grid.rowcol(h[:, 0], h[:, 1])
        out.append(h[(slope[hr, hc] < 20) & ~avoid[hr, hc]])
    return np.round(np.concatenate(out), 1)


def build_karst(rng_for: RngFor, grid: AreaGrid) -> Landscape:
    """Peak-cluster karst (fengcong) in NE-striking carbonate and clastic belts, cut by a river system."""
    res, shape = grid.resolution_m, grid.shape
    x, y = grid.pixel_centers()
    x0, y0, x1, y1 = grid.bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rng = rng_for("lithology")
    units = {1: ("Devonian limestone", 0.05), 2: ("Carboniferous dolomitic limestone", 0.15),
             3: ("Devonian sandstone and shale (clastic)", 0.75), 4: ("Permian shale and mudstone", 1.0),
             5: ("Quaternary alluvium and residual clay", 0.5)}
    # belts strike NE (the Guangxi structural trend); a smooth warp folds the contacts
    n_az = np.radians(130.0)
    u = (x - cx) * np.sin(n_az) + (y - cy) * np.cos(n_az) + 700.0 * smooth_field(rng, shape, 2500 / res)
    phase = (u / 5200.0 + rng.uniform()) % 1.0
    litho = np.select([phase < 0.45, phase < 0.6, phase < 0.83], [1, 2, 3], 4).astype(np.int32)
    carbonate = ndimage.gaussian_filter((litho <= 2).astype(np.float32), 150 / res)

    rng = rng_for("dem")
    base = 430 + 70 * smooth_field(rng, shape, 4000 / res) + 25 * smooth_field(rng, shape, 1200 / res)
    # cone hills on a jittered lattice, merged by maximum: clusters of peaks with closed depressions between
    spacing = 360.0
    gx, gy = np.meshgrid(np.arange(x0 - spacing, x1 + spacing, spacing), np.arange(y0 - spacing, y1 + spacing, spacing))
    centres = np.column_stack([gx.ravel(), gy.ravel()]) + rng.uniform(-0.35, 0.35, (gx.size, 2)) * spacing
    heights = rng.uniform(70, 190, len(centres))
    radii = spacing * rng.uniform(0.55, 0.8, len(centres))
    cones = np.zeros(shape, np.float32)
    for (px, py), h, rad in zip(centres, heights, radii, strict=True):
        r0, c0 = (int(v) for v in grid.rowcol(px, py))
        k = int(rad / res) + 1
        rs = slice(max(r0 - k, 0), min(r0 + k + 1, shape[0]))
        cs = slice(max(c0 - k, 0), min(c0 + k + 1, shape[1]))
        if rs.start >= rs.stop or cs.start >= cs.stop:
            continue
        d = np.hypot(x[rs, cs] - px, y[rs, cs] - py)
        bell = h * ((1 + np.cos(np.pi * np.minimum(d / rad, 1.0))) / 2) ** 0.75
        cones[rs, cs] = np.maximum(cones[rs, cs], bell)
    hills = 75 * (1 + smooth_field(rng, shape, 260 / res)) + 40 * smooth_field(rng, shape, 900 / res)
    dem = base + carbonate * cones + (1 - carbonate) * np.maximum(hills, 0) + 3 * smooth_field(rng, shape, 40 / res)
    # dolines: solution hollows between the cones, only in carbonate
    n_dol = int(grid.n_pixels * res ** 2 / 1e6 * 3)
    dp = np.column_stack([rng.uniform(x0, x1, n_dol), rng.uniform(y0, y1, n_dol)])
    dr, dc = grid.rowcol(dp[:, 0], dp[:, 1])
    keep = litho[np.clip(dr, 0, shape[0] - 1), np.clip(dc, 0, shape[1] - 1)] <= 2
    dol_mask = np.zeros(shape, np.float32)
    dol_mask[dr[keep], dc[keep]] = rng.uniform(8, 25, keep.sum())
    dem -= ndimage.gaussian_filter(dol_mask, 45 / res) * (2 * np.pi * (45 / res) ** 2)

    rng = rng_for("rivers")
    offset = rng.uniform(-1500, 1500) * min(1.0, grid.width * res / 12000)
    trunk = _trunk(rng, grid, 220.0 + rng.uniform(-10, 10), offset, wiggle_deg=22.0)
    s = arc_length(trunk)
    trunk_bed = float(np.percentile(dem, 2)) - 25.0 + 0.003 * (s[-1] - s)
    surface = base + 0.4 * carbonate * cones  # the valley-scale surface channels follow, without single cones
    dem = _carve_network(dem, grid, [trunk], [trunk_bed], floor_m=90.0, wall_slope_deg=32.0)
    tribs, tbeds = _network(rng, grid, trunk, trunk_bed, surface, spacing_m=1800.0, length_m=(1500, 4500),
                            incision_m=(25, 60), angle_deg=70.0, wiggle_deg=25.0)
    dem = _carve_network(dem, grid, tribs, tbeds, floor_m=12.0, wall_slope_deg=30.0)
    water = distance_to(rasterize_lines(grid, [trunk]), res) < 15.0
    alluvium = (distance_to(rasterize_lines(grid, [trunk]), res) < 120.0)
    litho = np.where(alluvium, 5, litho).astype(np.int32)
    rivers = [(trunk, 1)] + [(t, 2) for t in tribs]

    rng = rng_for("faults")
    faults = [_fault(rng, grid, 40.0 + rng.uniform(-8, 8), off) for off in
              rng.uniform(-0.45, 0.45, 3) * grid.width * res]
    faults.append(_fault(rng, grid, 310.0 + rng.uniform(-10, 10), rng.uniform(-0.3, 0.3) * grid.width * res))

    rng = rng_for("roads")
    slope, _, _ = slope_aspect(dem, res)
    roads = [(offset_line(trunk, rng.choice([-1, 1]) * rng.uniform(50, 80)), "county")]
    for t in tribs[: max(1, len(tribs) * 2 // 3)]:
        roads.append((offset_line(t, rng.uniform(15, 25)), "village"))
    for _ in range(max(1, int(grid.width * res / 6000))):
        start = (rng.uniform(x0, x1), rng.uniform(y0, y1))
        line = meander(rng, start, rng.uniform(0, 360), rng.uniform(2000, 5000), wiggle_deg=45, wavelength_m=600)
        roads.append((line, "mountain"))
    buildings = _villages(rng_for("buildings"), grid, slope, [r for r, _ in roads], 0.25, (15, 60), 90.0, water)

    rng = rng_for("mining")
    road_d = distance_to(rasterize_lines(grid, [r for r, _ in roads]), res)
    cand = np.flatnonzero(((litho <= 2) & (road_d < 400) & (road_d > 60) & (slope > 15)).ravel())
    n_mine = max(2, int(round(grid.n_pixels * res ** 2 / 1e6 / 30)))
    pick = rng.choice(cand, size=min(n_mine, len(cand)), replace=False) if len(cand) else np.zeros(0, int)
    mining = np.column_stack([x.ravel()[pick], y.ravel()[pick]])
    return Landscape(dem.astype(np.float32), litho, units, faults, rivers, roads, buildings, mining, water)


def build_loess(rng_for: RngFor, grid: AreaGrid) -> Landscape:
    """Dissected loess plateau over Neogene mudstone, cut by a NE-flowing river along a fault zone."""
    res, shape = grid.resolution_m, grid.shape
    x, y = grid.pixel_centers()
    x0, y0, x1, y1 = grid.bounds
    side = grid.width * res
    units = {1: ("Quaternary loess", 1.0), 2: ("Neogene mudstone and siltstone", 0.7),
             3: ("Lower Cretaceous conglomerate", 0.3), 4: ("Lower Triassic sandstone", 0.05),
             5: ("Holocene alluvium", 0.4)}
    rng = rng_for("rivers")
    az = 30.0 + rng.uniform(-8, 8)
    trunk = _trunk(rng, grid, az, rng.uniform(-0.1, 0.1) * side, wiggle_deg=12.0)
    s = arc_length(trunk)
    trunk_bed = 2190.0 + 0.005 * (s[-1] - s)  # Longwu River flows NE (towards the Yellow River)
    dense = densify(trunk, res / 2)
    mask, bed = burn_points(grid, dense, np.interp(arc_length(dense), s, trunk_bed))
    d_main, (ir, ic) = ndimage.distance_transform_edt(~mask, sampling=res, return_indices=True)
    bed_near = bed[ir, ic]

    rng = rng_for("dem")
    plateau = 2880 + 70 * smooth_field(rng, shape, 3000 / res)
    floor_w = 300 + 80 * smooth_field(rng, shape, 2000 / res)
    ramp = 2200 + 150 * smooth_field(rng, shape, 3500 / res)  # horizontal length of the valley side, m
    # flat floor, two terrace steps, then a long slope up to the plateau surface
    terraces = 12 * smoothstep((d_main - floor_w) / 40) + 20 * smoothstep((d_main - floor_w - 250) / 50)
    rise = (plateau - bed_near - 32) * smoothstep((d_main - floor_w - 350) / ramp)
    # rolling loess hills (mao) on the upper slopes and plateau
    hills = 25 * smooth_field(rng, shape, 700 / res) + 30 * smooth_field(rng, shape, 350 / res)
    pre = bed_near + terraces + rise + hills * smoothstep((d_main - floor_w) / 800)
    dem = pre + 4 * smooth_field(rng, shape, 60 / res)

    rng = rng_for("gullies")
    # a dendritic gully network in three orders dissects the slopes and the plateau edge
    gullies, gbeds = _network(rng, grid, trunk, trunk_bed, pre, spacing_m=650.0, length_m=(2000, 5500),
                              incision_m=(100, 200), angle_deg=80.0, wiggle_deg=18.0)
    dem = _carve_network(dem, grid, gullies, gbeds, floor_m=10.0, wall_slope_deg=40.0)
    branches, bbeds = _subnetwork(rng, grid, gullies, gbeds, pre, spacing_m=500.0, length_m=(500, 1500),
                                  incision_m=(40, 90), angle_deg=55.0, wiggle_deg=15.0)
    dem = _carve_network(dem, grid, branches, bbeds, floor_m=5.0, wall_slope_deg=40.0)
    rills, rbeds = _subnetwork(rng, grid, branches, bbeds, pre, spacing_m=400.0, length_m=(200, 600),
                               incision_m=(15, 35), angle_deg=50.0, wiggle_deg=10.0)
    dem = _carve_network(dem, grid, rills, rbeds, floor_m=3.0, wall_slope_deg=38.0)
    branches += rills
    rivers = [(trunk, 1)] + [(g, 2) for g in gullies] + [(g, 3) for g in branches]
    water = d_main < 20.0

    rng = rng_for("faults")
    # the Longwu River fault zone: two strands flanking the valley, plus a cross fault
    faults = [offset_line(_fault(rng, grid, az + rng.uniform(-3, 3), 0.0), off) for off in (rng.uniform(150, 350),
                                                                                           -rng.uniform(300, 600))]
    faults.append(_fault(rng, grid, az + 90 + rng.uniform(-20, 20), rng.uniform(-0.3, 0.3) * side))

    rng = rng_for("lithology")
    # loess mantles the upper slopes and plateau; incision exposes bedrock in the valley and gully floors
    thick = 45 + 20 * smooth_field(rng, shape, 1500 / res)
    bedrock_top = bed_near + 140 + 60 * smooth_field(rng, shape, 2500 / res)
    loess = (dem > bedrock_top) & (pre - dem < thick)
    side_of_fault = ((x - (x0 + x1) / 2) * np.cos(np.radians(az)) - (y - (y0 + y1) / 2) * np.sin(np.radians(az))) > 0
    belt = smooth_field(rng, shape, 1800 / res)
    bedrock = np.where(side_of_fault, np.where(belt > 0.6, 4, 2), np.where(belt > 0.4, 3, 2))
    litho = np.where(loess, 1, bedrock)
    litho = np.where((d_main < floor_w) & (dem < bed_near + 15), 5, litho).astype(np.int32)

    rng = rng_for("roads")
    slope, _, _ = slope_aspect(dem, res)
    roads = [(offset_line(trunk, rng.choice([-1, 1]) * rng.uniform(120, 200)), "national")]
    for g in gullies[:: 3]:
        roads.append((offset_line(g, rng.uniform(12, 20)), "village"))
    for _ in range(max(1, int(side / 5000))):
        start = (rng.uniform(x0, x1), rng.uniform(y0, y1))
        roads.append((meander(rng, start, az + rng.uniform(-30, 30), rng.uniform(3000, 6000), wiggle_deg=35,
                              wavelength_m=900), "plateau"))
    buildings = _villages(rng_for("buildings"), grid, slope, [r for r, _ in roads], 0.35, (15, 70), 110.0, water)

    rng = rng_for("mining")
    cand = np.flatnonzero(((d_main < floor_w + 500) & (d_main > 80) & (slope < 12)).ravel())
    n_mine = max(2, int(round(grid.n_pixels * res ** 2 / 1e6 / 35)))
    pick = rng.choice(cand, size=min(n_mine, len(cand)), replace=False) if len(cand) else np.zeros(0, int)
    mining = np.column_stack([x.ravel()[pick], y.ravel()[pick]])
    return Landscape(dem.astype(np.float32), litho, units, faults, rivers, roads, buildings, mining, water)
