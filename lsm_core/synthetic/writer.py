"""The synthetic study areas' specifications and the writer of their files (see ``lsm_core.synthetic``)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import shapely
import yaml
from rasterio import features
from scipy import ndimage
from threadpoolctl import threadpool_limits

from lsm_core.area import period_bounds
from lsm_core.errors import ConfigError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterWriter, atomic_path, write_raster, write_text, write_vector
from lsm_core.synthetic import hazard as H
from lsm_core.synthetic import insar as S
from lsm_core.synthetic import motion as M
from lsm_core.synthetic import terrain as T
from lsm_core.synthetic.knobs import KNOBS_FILE, WorldKnobs

__all__ = ["AREAS", "AreaSpec", "BASE_SIDE_PX", "FIXED_GPKG_DATE", "World", "area_grid", "generate_area",
           "generate_demo", "ndvi_dates"]


BASE_SIDE_PX = 1200          # pixels per side at scale 1 (10 m cells: 12 x 12 km, 1.44 M pixels)
FIXED_GPKG_DATE = "2020-01-01T00:00:00Z"  # GeoPackages store a write timestamp; a fixed one keeps files byte-identical


@dataclass(frozen=True)
class AreaSpec:
    """Everything that makes one synthetic area what it is (numbers in metres, mm/yr, degrees)."""

    name: str
    title: str
    crs: str
    centre: tuple[float, float]
    builder: Callable[[T.RngFor, AreaGrid], T.Landscape]
    periods: tuple[str, ...]             # YYYYMM-YYYYMM keys
    span: tuple[dt.date, dt.date]        # dates of the landslide inventory
    events_per_km2: float
    sites_per_km2: float                 # unstable slopes (deformation bowls)
    median_landslide_m2: float
    landslide_length_to_width: tuple[float, float]  # along / across the slope
    insar_kind: str                      # "timeseries" or "velocity"
    track: int
    heading_deg: float
    incidence_deg: float
    first_acquisition_offset_days: int
    rain_mm_yr: float
    rain_per_m: float                    # orographic gradient, mm/yr per metre of elevation
    rain_noise_mm_yr: float
    vegetation_decorrelation: float      # coherence lost per unit of NDVI above 0.35
    cloudy: bool                         # some NDVI pixels are cloud-masked (NaN)
    mining_kind: str
    resolution_m: float = 10.0
    insar_resolution_m: float = 20.0
    ndvi_resolution_m: float = 30.0
    rain_resolution_m: float = 1000.0


AREAS: dict[str, AreaSpec] = {
    "karst": AreaSpec(
        "karst", "Peak-cluster karst modelled on Longsheng, Guangxi", "EPSG:32649", (400_000.0, 2_855_000.0),
        T.build_karst, ("201901-202012", "202101-202212"), (dt.date(2012, 1, 1), dt.date(2024, 6, 30)),
        events_per_km2=2.4, sites_per_km2=1.3, median_landslide_m2=12_000.0,
        landslide_length_to_width=(1.3, 2.6), insar_kind="timeseries", track=55,
        heading_deg=-12.0, incidence_deg=39.0, first_acquisition_offset_days=4, rain_mm_yr=1650.0,
        rain_per_m=0.9, rain_noise_mm_yr=60.0, vegetation_decorrelation=1.1, cloudy=True,
        mining_kind="limestone quarry"),
    "loess": AreaSpec(
        "loess", "Dissected loess plateau modelled on Tongren, Qinghai", "EPSG:32647", (770_000.0, 3_930_000.0),
        T.build_loess, ("201602-201706", "201707-201812"), (dt.date(2010, 1, 1), dt.date(2020, 6, 30)),
        events_per_km2=2.2, sites_per_km2=1.0, median_landslide_m2=14_000.0,
        landslide_length_to_width=(0.6, 1.4), insar_kind="velocity", track=128,
        heading_deg=-12.2, incidence_deg=36.5, first_acquisition_offset_days=5, rain_mm_yr=565.0,
        rain_per_m=0.012, rain_noise_mm_yr=2.0, vegetation_decorrelation=0.8, cloudy=False,
        mining_kind="clay and gravel pit"),
}


def generate_demo(data_root: Path, *, seed: int = 0, scale: float = 1.0,
                  areas: Sequence[str] = ("karst", "loess"), workers: int = 1,
                  knobs: WorldKnobs | None = None, executor: Executor | None = None) -> dict:
    """Write the synthetic areas under ``data_root``; returns {area: summary} (pixels, seconds, landslides, periods).

    ``workers`` > 1 writes the areas side by side in that many processes; each area has its own seed
    stream, so the files are the same either way. ``executor``: worker processes already running (e.g. the
    pipeline's, which then need not wait for new ones to start) write the areas instead; processes, as
    GDAL's writers here are not safe to share between threads.
    ``knobs``: the world's ground motion and its observation (default ``WorldKnobs()``), recorded in
    each area's ``truth/knobs.yaml``.
    """
    if executor is not None:
        return _generate_on(executor, areas, data_root, seed=seed, scale=scale, knobs=knobs)
    if workers <= 1 or len(areas) <= 1:
        return {name: generate_area(name, data_root, seed=seed, scale=scale, knobs=knobs) for name in areas}
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(min(workers, len(areas)), mp_context=get_context("spawn")) as pool:
        return _generate_on(pool, areas, data_root, seed=seed, scale=scale, knobs=knobs)


def _generate_on(executor: Executor, areas: Sequence[str], data_root: Path, **kwargs) -> dict:
    futures = {name: executor.submit(generate_area, name, data_root, **kwargs) for name in areas}
    return {name: f.result() for name, f in futures.items()}


def generate_area(name: str, data_root: Path, *, seed: int = 0, scale: float = 1.0,
                  knobs: WorldKnobs | None = None) -> dict:
    """Write one synthetic area (inputs, InSAR deliveries, truth) under ``data_root``; returns its summary.

    ``knobs`` (default ``WorldKnobs()``) shape the ground motion and how the satellite sees it.
    """
    if name not in AREAS:
        raise ConfigError(f"unknown synthetic area {name!r}; choose from {sorted(AREAS)}")
    if scale <= 0:
        raise ConfigError(f"scale must be positive, got {scale}")
    t0 = time.perf_counter()
    knobs = knobs or WorldKnobs()
    spec, data_root = _with_knobs(AREAS[name], knobs), Path(data_root)
    grid = area_grid(spec, scale)
    rng_for = _rng_factory(seed, name)
    with threadpool_limits(1, user_api="blas"):  # small matrix products: BLAS threads only contend
        world = _build(spec, grid, rng_for, knobs)
    folder = data_root / "study_areas" / name
    with _writing_env():
        _write_inputs(spec, grid, world, folder)
        with threadpool_limits(1, user_api="blas"):
            deliveries = _write_insar(spec, grid, world, data_root / "incoming" / "insar" / name, rng_for)
        _write_truth(spec, grid, world, folder / "truth", seed, scale, knobs)
    return {"area": name, "pixels": grid.n_pixels, "shape": list(grid.shape), "resolution_m": spec.resolution_m,
            "landslides": len(world.events), "unstable_sites": len(world.sites), "periods": list(spec.periods),
            "deliveries": [str(p) for p in deliveries], "folder": str(folder),
            "seconds": round(time.perf_counter() - t0, 2)}


def _with_knobs(spec: AreaSpec, knobs: WorldKnobs) -> AreaSpec:
    """The area's specification with the sensor geometry and decorrelation the knobs override."""
    return dataclasses.replace(
        spec, heading_deg=spec.heading_deg if knobs.heading_deg is None else knobs.heading_deg,
        incidence_deg=spec.incidence_deg if knobs.incidence_deg is None else knobs.incidence_deg,
        vegetation_decorrelation=(spec.vegetation_decorrelation if knobs.vegetation_decorrelation is None
                                  else knobs.vegetation_decorrelation))


def area_grid(spec: AreaSpec, scale: float) -> AreaGrid:
    """The area grid: ~``scale`` x 1.44 M pixels; the side is a multiple of 6 cells so 20 m and 30 m grids nest."""
    side = max(60, int(round(BASE_SIDE_PX * np.sqrt(scale) / 6)) * 6)
    half = side * spec.resolution_m / 2
    snap = 6 * spec.resolution_m
    x0 = round((spec.centre[0] - half) / snap) * snap
    y0 = round((spec.centre[1] - half) / snap) * snap
    return AreaGrid.from_bounds(spec.crs, (x0, y0, x0 + 2 * half, y0 + 2 * half), spec.resolution_m)


def _rng_factory(seed: int, name: str) -> T.RngFor:
    """Independent generator per (seed, area, component): changing one component leaves the others unchanged."""
    return lambda component: np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(component.encode())])


@contextlib.contextmanager
def _writing_env() -> Iterator[None]:
    """Pin GDAL's GeoPackage timestamp (pyogrio's GDAL) and compress rasters on all cores while writing."""
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):  # per-block compression: same bytes, less wall time
            yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


# --------------------------------------------------------------------------- the world in memory


@dataclass
class World:
    """All generated rasters (area grid unless named otherwise) and features of one area."""

    land: T.Landscape
    slope: np.ndarray
    terrain: H.Terrain
    rain: np.ndarray                      # mm/yr, 10 m
    hazard: np.ndarray
    sites: list[H.Site]
    events: list[H.Event]
    event_ids: list[str]
    labels: np.ndarray
    unstable: np.ndarray
    precursory: np.ndarray                # per site: creeps detectably before failing
    bowls: list[M.Bowl]                   # every deformation bowl (unstable slopes, creeping landslides, subsidence)
    velocity: dict[str, np.ndarray]       # period -> true LOS velocity, mm/yr
    ndvi: dict[dt.date, np.ndarray]       # scene date -> NDVI on the 30 m grid
    ndvi_mean: dict[str, np.ndarray]      # period -> mean noise-free NDVI of its scenes at 10 m


def _build(spec: AreaSpec, grid: AreaGrid, rng_for: T.RngFor, knobs: WorldKnobs) -> World:
    """Terrain, hazard, unstable slopes, landslides and true velocities of an area."""
    res = grid.resolution_m
    land = spec.builder(rng_for, grid)
    land.lithology = features.sieve(land.lithology, size=int(10_000 / res ** 2))  # no map units under 1 ha
    slope, _, _ = T.slope_aspect(land.dem, res)
    # directions for landslide axes and motion come from a smoothed DEM: hillslope scale, not pixel noise
    terr = H.Terrain(*T.slope_aspect(land.dem, res, smooth_px=30 / res), slope, land.dem)
    rain = _rain_field(rng_for("rain"), spec, grid, land.dem)
    rain_z = (rain - rain.mean()) / (rain.std() + 1e-9)
    hazard = H.hazard_field(rng_for("hazard"), grid, land, slope, rain_z)
    km2 = grid.n_pixels * res ** 2 / 1e6
    periods = [period_bounds(p) for p in spec.periods]
    sites, events = H.draw_sites_and_events(
        rng_for("events"), grid, terr, hazard, n_events=int(round(spec.events_per_km2 * km2)),
        n_sites=max(3, int(round(spec.sites_per_km2 * km2))), periods=periods, span=spec.span,
        median_area_m2=spec.median_landslide_m2, length_to_width=spec.landslide_length_to_width)
    # ids follow the order of events in time, as a real inventory grows
    order = sorted(range(len(events)), key=lambda i: (events[i].date, events[i].init_x, events[i].init_y))
    new_index = {old: new for new, old in enumerate(order)}
    events = [events[i] for i in order]
    for s in sites:
        s.event = new_index[s.event] if s.event >= 0 else -1
    event_ids = [f"{spec.name}-{i + 1:04d}" for i in range(len(events))]
    labels = H.label_raster(grid, events)
    # own streams: turning a knob leaves the terrain, hazard and events as they are
    creeping = M.precursory_flags(rng_for("precursory"), len(sites), knobs.precursory_share)
    bowls = M.motion_bowls(rng_for("motion"), grid, slope, land.mining, sites, creeping, events, periods, knobs)
    background = M.background_creep(rng_for("background-creep"), hazard, knobs.deformation_on_hazard)
    velocity = dict(zip(spec.periods, M.true_velocity(grid, terr, background, bowls, len(periods), spec.heading_deg,
                                                      spec.incidence_deg, knobs), strict=True))
    precursors = [s for s, c in zip(sites, creeping, strict=True) if c]
    base, amp = H.ndvi_base(rng_for("ndvi"), grid, land, slope, spec.name)
    k = int(spec.ndvi_resolution_m / res)
    scenes, means = {}, {}
    for p in spec.periods:
        clean = []
        for d in ndvi_dates(p):
            clean.append(H.ndvi_scene(grid, base, amp, d, labels, events, precursors, knobs.ndvi_precursor))
            scenes[d] = H.observe_ndvi(rng_for(f"ndvi-{d.isoformat()}"), T.block_mean(clean[-1], k), spec.cloudy)
        means[p] = np.mean(clean, axis=0)
    return World(land, slope, terr, rain, hazard, sites, events, event_ids, labels,
                 H.unstable_mask(grid, sites, events, labels, len(periods)), creeping, bowls, velocity, scenes, means)


def _rain_field(rng: np.random.Generator, spec: AreaSpec, grid: AreaGrid, dem: np.ndarray) -> np.ndarray:
    """Mean annual rainfall (mm/yr) at 10 m: a mean, an orographic term and a regional random field."""
    coarse = T.block_mean(dem[: grid.height // 6 * 6, : grid.width // 6 * 6], 6)
    smooth = ndimage.zoom(ndimage.gaussian_filter(coarse, 1000 / (6 * grid.resolution_m)), 6, order=1)
    smooth = np.pad(smooth, ((0, grid.height - smooth.shape[0]), (0, grid.width - smooth.shape[1])), mode="edge")
    noise = T.smooth_field(rng, grid.shape, 6000 / grid.resolution_m)
    return (spec.rain_mm_yr + spec.rain_per_m * (smooth - smooth.mean())
            + spec.rain_noise_mm_yr * noise).astype(np.float32)


def ndvi_dates(period: str) -> list[dt.date]:
    """NDVI scene dates in a period: 40 days after its start, then every 120 days (>= 3 per period)."""
    start, end = period_bounds(period)
    out, d = [], start + dt.timedelta(days=40)
    while d <= end - dt.timedelta(days=20):
        out.append(d)
        d += dt.timedelta(days=120)
    return out


def _sub_grid(grid: AreaGrid, res: float) -> AreaGrid:
    """A coarser grid over exactly the same bounds (res must divide the extent)."""
    return AreaGrid.from_bounds(grid.crs, grid.bounds, res)


# --------------------------------------------------------------------------- writers


def _write_inputs(spec: AreaSpec, grid: AreaGrid, w: World, folder: Path) -> None:
    """area.yaml and every input layer of DESIGN 5."""
    folder.mkdir(parents=True, exist_ok=True)
    land = w.land
    write_raster(folder / "dem.tif", np.round(land.dem, 2), grid, ["elevation_m"], tags={"unit": "m"})
    write_vector(folder / "lithology.gpkg", _lithology_polygons(grid, land))
    write_vector(folder / "faults.gpkg", _lines(grid, [(ln, {"name": f"F{i + 1}"}) for i, ln in enumerate(land.faults)],
                                                "fault_id"))
    names = {1: "trunk river", 2: "tributary", 3: "gully"}
    write_vector(folder / "rivers.gpkg", _lines(grid, [(ln, {"stream_order": o, "kind": names[o]})
                                                       for ln, o in land.rivers], "river_id"))
    write_vector(folder / "roads.gpkg", _lines(grid, [(ln, {"road_class": c}) for ln, c in land.roads], "road_id"))
    write_vector(folder / "buildings.gpkg", _points(grid, land.buildings, "building_id", {}))
    write_vector(folder / "mining.gpkg", _points(grid, land.mining, "site_id", {"kind": spec.mining_kind}))
    _write_rainfall(spec, grid, w, folder / "rainfall.tif")
    ndvi_entries = []
    ngrid = _sub_grid(grid, spec.ndvi_resolution_m)
    for d, scene in sorted(w.ndvi.items()):
        rel = f"ndvi/ndvi_{d:%Y%m%d}.tif"
        write_raster(folder / rel, np.round(scene, 4), ngrid, ["ndvi"], tags={"date": d.isoformat()})
        ndvi_entries.append({"date": d, "path": rel})
    _write_inventory(folder / "inventory.gpkg", grid, w)
    write_text(folder / "area.yaml", _area_yaml(spec, grid, ndvi_entries))


def _area_yaml(spec: AreaSpec, grid: AreaGrid, ndvi: list[dict]) -> str:
    """The area.yaml text (lsm_core.area schema)."""
    doc = {
        "name": spec.name,
        "crs": spec.crs,
        "resolution_m": spec.resolution_m,
        "bounds": [float(v) for v in grid.bounds],
        "layers": {
            "dem": "dem.tif",
            "lithology": {"path": "lithology.gpkg", "code_field": "unit_code"},
            "faults": "faults.gpkg", "rivers": "rivers.gpkg", "roads": "roads.gpkg",
            "buildings": "buildings.gpkg", "mining": "mining.gpkg", "rainfall": "rainfall.tif",
            "ndvi": ndvi,
            "inventory": "inventory.gpkg",
        },
        "parameters": {
            "max_distance_m": {"faults": 20000.0, "valleys": 5000.0, "roads": 5000.0, "buildings": 2000.0,
                               "mining": 10000.0},
            "sampling_ratio": 1.0, "deformation_threshold_mm_yr": 5.0, "buffer_m": 500.0,
        },
    }
    head = (f"# {spec.title} (synthetic: lsm_core.synthetic; ground truth in truth/, never read by the pipeline)\n"
            f"# monitoring periods with InSAR deliveries: {', '.join(spec.periods)}\n")
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120)


def _lithology_polygons(grid: AreaGrid, land: T.Landscape) -> gpd.GeoDataFrame:
    """Map units as pixel-exact polygons (rasterising them gives back the lithology raster)."""
    rows = [(int(v), shapely.geometry.shape(g)) for g, v in
            features.shapes(land.lithology.astype(np.int32), transform=grid.affine)]
    rows.sort(key=lambda r: (r[0], r[1].bounds[0], r[1].bounds[1], -r[1].area))
    return gpd.GeoDataFrame({"unit_code": np.array([c for c, _ in rows], np.int32),
                             "unit_name": [land.units[c][0] for c, _ in rows]},
                            geometry=[g for _, g in rows], crs=grid.crs)


def _lines(grid: AreaGrid, lines: list[tuple[np.ndarray, dict]], id_field: str) -> gpd.GeoDataFrame:
    """Polylines clipped to the area, multi-part pieces split, tiny pieces dropped, numbered."""
    rows = []
    for ln, attrs in lines:
        clipped = shapely.clip_by_rect(shapely.LineString(np.round(ln, 1)), *grid.bounds)
        for part in shapely.get_parts(clipped):
            if isinstance(part, shapely.LineString) and part.length > 20.0:
                rows.append((attrs, part))
    return gpd.GeoDataFrame({id_field: np.arange(1, len(rows) + 1, dtype=np.int32),
                             **{k: [a[k] for a, _ in rows] for k in (rows[0][0] if rows else {})}},
                            geometry=[g for _, g in rows], crs=grid.crs)


def _points(grid: AreaGrid, xy: np.ndarray, id_field: str, attrs: dict) -> gpd.GeoDataFrame:
    """Points sorted by x then y, numbered."""
    xy = xy[np.lexsort((xy[:, 1], xy[:, 0]))] if len(xy) else xy
    return gpd.GeoDataFrame({id_field: np.arange(1, len(xy) + 1, dtype=np.int32),
                             **{k: [v] * len(xy) for k, v in attrs.items()}},
                            geometry=shapely.points(xy) if len(xy) else [], crs=grid.crs)


def _write_rainfall(spec: AreaSpec, grid: AreaGrid, w: World, path: Path) -> None:
    """Rainfall on a 1 km grid reaching 1 km beyond the area (a regional product the pipeline resamples)."""
    r = spec.rain_resolution_m
    x0, y0, x1, y1 = grid.bounds
    rgrid = AreaGrid.from_bounds(grid.crs, (np.floor(x0 / r) * r - r, np.floor(y0 / r) * r - r,
                                            np.ceil(x1 / r) * r + r, np.ceil(y1 / r) * r + r), r)
    x, y = grid.pixel_centers()
    rows, cols = rgrid.rowcol(x, y)
    idx = (rows * rgrid.width + cols).ravel()
    total = np.bincount(idx, weights=w.rain.ravel().astype(np.float64), minlength=rgrid.n_pixels)
    count = np.bincount(idx, minlength=rgrid.n_pixels)
    cells = np.where(count > 0, total / np.maximum(count, 1), np.nan).reshape(rgrid.shape)
    # cells outside the area take their nearest covered neighbour (a regional field continues smoothly)
    _, (ir, ic) = ndimage.distance_transform_edt(np.isnan(cells), return_indices=True)
    write_raster(path, np.round(cells[ir, ic], 1), rgrid, ["rainfall_mm_yr"], tags={"unit": "mm/yr"})


def _write_inventory(path: Path, grid: AreaGrid, w: World) -> None:
    """Landslide polygons with event_id, event_date (GeoPackage DATE), initiation point; rows by event_id."""
    gdf = gpd.GeoDataFrame({"event_id": w.event_ids, "event_date": [e.date for e in w.events],
                            "init_x": [e.init_x for e in w.events], "init_y": [e.init_y for e in w.events]},
                           geometry=[e.polygon for e in w.events], crs=grid.crs)
    # write_vector would store the dates as text; the Arrow path keeps them a DATE column
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, layer=path.stem, driver="GPKG", engine="pyogrio", use_arrow=True)


def _write_insar(spec: AreaSpec, grid: AreaGrid, w: World, root: Path, rng_for: T.RngFor) -> list[Path]:
    """One delivery per period: a time series (karst) or a velocity map (loess), with coherence."""
    k = int(spec.insar_resolution_m / spec.resolution_m)
    igrid = _sub_grid(grid, spec.insar_resolution_m)
    u = T.los_vector(spec.heading_deg, spec.incidence_deg)
    g = u[:2] / np.linalg.norm(u[:2])
    tan_s = np.tan(np.radians(w.terrain.slope))
    range_slope = np.degrees(np.arctan(T.block_mean(tan_s * (w.terrain.down_e * g[0] + w.terrain.down_n * g[1]), k)))
    slope20 = T.block_mean(w.slope, k)
    water20 = T.block_mean(w.land.water.astype(np.float32), k) > 0.25
    dem20 = T.block_mean(w.land.dem, k)
    v20 = {p: T.block_mean(v, k) for p, v in w.velocity.items()}
    # the reference must sit away from any true motion (bowls may lie off the unstable slopes)
    moving = np.maximum.reduce([np.abs(v) for v in v20.values()]) > 1.0
    far = T.distance_to(moving, spec.insar_resolution_m) > 500.0
    cohs = {}
    for p in spec.periods:
        cohs[p] = S.coherence(rng_for(f"coherence-{p}"), T.block_mean(w.ndvi_mean[p], k), slope20, range_slope, water20,
                              spec.incidence_deg, spec.vegetation_decorrelation)
    ref = S.reference_pixel(np.minimum.reduce(list(cohs.values())), slope20, list(v20.values()), far)
    ref_xy = [float(v) for v in (igrid.pixel_centers()[0][ref], igrid.pixel_centers()[1][ref])]
    out = []
    for p in spec.periods:
        start, end = period_bounds(p)
        folder = root / f"s1_asc_t{spec.track:03d}_{p}"
        folder.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {"area": spec.name, "period_start": f"{start:%Y-%m}", "period_end": f"{end:%Y-%m}"}
        rng = rng_for(f"insar-{p}")
        if spec.insar_kind == "timeseries":
            dates = S.acquisition_dates(start, end, spec.first_acquisition_offset_days)
            seas = (1.5 + 0.5 * T.smooth_field(rng, igrid.shape, 50) + 0.08 * np.abs(v20[p])).astype(np.float32)
            data = S.timeseries(rng, v20[p], dates, cohs[p], dem20, seas, ref, spec.insar_resolution_m)
            _write_insar_raster(folder / "timeseries.tif", np.round(data, 2), igrid, [d.isoformat() for d in dates],
                                {"unit": "mm", "reference_date": dates[0].isoformat()})
            doc.update({"unit": "mm", "dates": dates})
        else:
            data = S.velocity_map(rng, v20[p], cohs[p], ref, spec.insar_resolution_m)
            _write_insar_raster(folder / "velocity.tif", np.round(data, 2), igrid, ["velocity"], {"unit": "mm/yr"})
            doc["unit"] = "mm/yr"
        _write_insar_raster(folder / "coherence.tif", np.round(cohs[p], 3), igrid, ["temporal_coherence"], {})
        doc.update({"heading_deg": spec.heading_deg, "incidence_deg": spec.incidence_deg, "reference_point": ref_xy})
        head = (f"# Sentinel-1 ascending track {spec.track}, synthetic SBAS product (lsm_core.synthetic).\n"
                "# LOS displacement, positive towards the satellite; relative to the reference point"
                + (" and the first date.\n" if spec.insar_kind == "timeseries" else ".\n"))
        write_text(folder / "delivery.yaml", head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None,
                                                                   width=120))
        out.append(folder)
    return out


def _write_insar_raster(path: Path, data: np.ndarray, grid: AreaGrid, names: list[str], tags: dict[str, str]) -> None:
    """Write an InSAR COG with 128-pixel tiles (the time series: 61 bands) and no overviews.

    A delivery is read at full resolution only (deformation_rate warps it onto the area grid), as the
    processors' GeoTIFF exports come; the overviews of the 61-band time series were 80 % of its write
    (2.1 vs 0.5 CPU s), on the critical path of the demo's generation.
    """
    # 128-pixel tiles were chosen for the overview pass (with 512, each pixel-interleaved tile holding every band
    # was decompressed band by band: ~5x slower); kept so that the delivery files and their reads stay as they were.
    with RasterWriter(path, grid, names, block=128, tags=tags, overviews=False) as w:
        w.write(data)


def _write_truth(spec: AreaSpec, grid: AreaGrid, w: World, folder: Path, seed: int, scale: float,
                 knobs: WorldKnobs) -> None:
    """Ground truth for tests: hazard, LOS velocity per period, unstable mask, unstable slopes, bowls, knobs, README."""
    write_raster(folder / "hazard.tif", np.round(w.hazard, 5), grid, ["hazard"])
    for p, v in w.velocity.items():
        write_raster(folder / f"velocity_{p}.tif", np.round(v, 3), grid, ["los_velocity_mm_yr"],
                     tags={"unit": "mm/yr"})
    write_raster(folder / "unstable.tif", w.unstable, grid, ["unstable"], dtype="uint8", nodata=None)
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["site_id", "x", "y", "sigma_m", "v0_mm_yr", "accel_per_period", "onset", "failure", "event_id",
                 "precursory"])
    for i, s in enumerate(w.sites):
        wr.writerow([f"{spec.name}-u{i + 1:03d}", s.x, s.y, s.sigma_m, s.v0_mm_yr, s.accel, s.onset.isoformat(),
                     s.failure.isoformat() if s.failure else "", w.event_ids[s.event] if s.event >= 0 else "",
                     int(w.precursory[i])])
    write_text(folder / "sites.csv", buf.getvalue())
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["kind", "source", "x", "y", "sigma_m", *(f"speed_{p}" for p in spec.periods)])
    for b in w.bowls:
        source = b.source
        if b.source.startswith("site "):
            source = f"{spec.name}-u{int(b.source.split()[1]) + 1:03d}"
        elif b.source.startswith("event "):
            source = w.event_ids[int(b.source.split()[1])]
        wr.writerow([b.kind, source, b.x, b.y, b.sigma_m, *b.speeds])
    write_text(folder / "bowls.csv", buf.getvalue())
    write_text(folder / KNOBS_FILE, knobs.to_yaml())
    write_text(folder / "README.md", _truth_readme(spec, grid, w, seed, scale, knobs))


def _truth_readme(spec: AreaSpec, grid: AreaGrid, w: World, seed: int, scale: float, knobs: WorldKnobs) -> str:
    """What each truth file holds, how the world was made and what its knobs were."""
    failed = sum(s.failure is not None for s in w.sites)
    kinds = {k: sum(b.kind == k for b in w.bowls) for k in ("unstable_slope", "landslide_creep", "subsidence")}
    periods = "\n".join(f"- `velocity_{p}.tif`: true mean LOS velocity over {p}, mm/yr, positive towards the "
                        f"satellite (heading {spec.heading_deg} deg, incidence {spec.incidence_deg} deg)."
                        for p in spec.periods)
    where = ("on the unstable slope itself" if knobs.deformation_on_hazard else
             "at a uniformly random place of the area (`deformation_on_hazard: false`: deformation carries no "
             "information on the hazard)")
    los = ("projected on the line of sight (downslope motion along the fall line: east-facing slopes show most "
           "of it, west-facing ones least, north- and south-facing ones about its vertical part; sinking by "
           "cos(incidence))" if knobs.los_projection else
           "seen in full (`los_projection: false`), as motion away from the satellite")
    return f"""# Ground truth: {spec.name} ({spec.title})

Generated by `lsm_core.synthetic` with seed {seed}, scale {scale}: {grid.height} x {grid.width} cells of
{spec.resolution_m:g} m in {spec.crs}. The pipeline never reads this folder; tests compare its outputs with it.

- `hazard.tif`: true failure propensity 0..1 (logistic of slope, rock weakness, nearness to faults,
  trunk rivers, roads and mining sites, rainfall and a smooth random field). Landslides were drawn from
  it (sudden failures with probability ~ hazard^2, unstable slopes ~ hazard^3).
{periods}
  The sum of the deformation bowls of `bowls.csv` and a slow background creep of 2 h^2 mm/yr downslope
  (h: the true hazard, or with `deformation_on_hazard: false` an unrelated field with the same values),
  {los}. The InSAR deliveries are these fields averaged to {spec.insar_resolution_m:g} m plus
  atmosphere, seasonal motion and decorrelation noise, referenced to a stable point.
- `unstable.tif`: 1 on unstable slopes whether or not they have failed yet and whether or not they
  creep: every landslide polygon of the inventory (any date) and the footprint of every unstable slope
  and creeping landslide (where its nominal bowl would move >= 2 mm/yr, at least 1.5 sigma); 0 elsewhere.
- `sites.csv`: the {len(w.sites)} unstable slopes: centre (m), bowl sigma (m), downslope speed in the first
  period when it creeps (mm/yr), speed factor per later period, onset date, failure date (empty: not
  failed by {spec.span[1]}), the inventory event it became, and `precursory` (1: it creeps detectably
  before failing; 0: it shows no motion until it fails). {failed} fail within the inventory span,
  {int(w.precursory.sum())} are precursory.
- `bowls.csv`: every deformation bowl and its peak speed per period (mm/yr): {kinds["unstable_slope"]}
  unstable slopes (precursory creep, 0 for the silent ones; a failed slope's mass keeps creeping at half
  its first speed), {kinds["landslide_creep"]} landslides creeping after failure, {kinds["subsidence"]}
  subsidence bowls (vertical sinking over mining sites and karst depressions / fills, unrelated to the
  landslide hazard). Slope bowls sit {where}.
- `knobs.yaml`: the world's knobs (`lsm_core.synthetic.knobs.WorldKnobs`), what makes InSAR evidence
  strong or weak here:
  - `precursory_share` = {knobs.precursory_share}: share of unstable slopes that creep before failing
    (rainfall-triggered shallow slides rarely do; default 0.4).
  - `deformation_on_hazard` = {knobs.deformation_on_hazard}: slope bowls on the unstable slopes (true) or
    at random (false, the falsification world).
  - `los_projection` = {knobs.los_projection}, `heading_deg` / `incidence_deg` = {knobs.heading_deg} /
    {knobs.incidence_deg} (null: the area's track, here {spec.heading_deg} / {spec.incidence_deg} deg).
  - `vegetation_decorrelation` = {knobs.vegetation_decorrelation} (null: the area's value, here
    {spec.vegetation_decorrelation}): coherence lost per unit NDVI above 0.35; coherence below 0.3 is
    nodata in the deliveries and lower coherence is noisier, so dense forest hides motion.
  - `subsidence_per_km2` = {knobs.subsidence_per_km2}, `subsidence_mm_yr` = {list(knobs.subsidence_mm_yr)}:
    non-landslide deformation, half over mining sites, half on random gentle ground.
  - `ndvi_precursor` = {knobs.ndvi_precursor}: NDVI dip on creeping slopes before failure (default 0:
    no vegetation signal before failure; the fresh scar after failure is always there).

The inventory holds {len(w.events)} landslides dated {spec.span[0]} to {spec.span[1]}, past every period end.
"""
