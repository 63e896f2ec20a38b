"""Tests of the InSAR deformation rate: the fit, the LOS projection, the windowed driver, MintPy input."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.features import rasterize
from rasterio.warp import transform_bounds
from scipy.ndimage import gaussian_filter

from lsm_core.deformation import (
    BANDS,
    QUALITY_CAPPED,
    QUALITY_MASKED,
    QUALITY_VALID,
    decimal_years,
    deformation_rate,
    downslope_coefficient,
    fit_velocity,
    los_to_downslope,
    los_unit_vector,
)
from lsm_core.delivery import load_delivery
from lsm_core.errors import DeliveryError, GridMismatchError
from lsm_core.grid import AreaGrid
from lsm_core.io import band_names, read_raster, write_raster

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SLUMGULLION = SHARED / "datasets" / "slumgullion_insar"
CRS = "EPSG:32613"
# Delivery grid: 25 m pixels; the area grid below is 30 m and offset, so reading it resamples.
SRC_TRANSFORM = Affine(25.0, 0.0, 299_950.0, 0.0, -25.0, 4_201_050.0)
SRC_SHAPE = (48, 56)
GRID = AreaGrid.from_bounds(CRS, (300_000.0, 4_200_000.0, 301_200.0, 4_200_900.0), 30.0)
DATES = [dt.date(2019, 1, 5) + dt.timedelta(days=24 * i) for i in range(12)]


# ---------------------------------------------------------------- helpers


def _write_tif(path: Path, data: np.ndarray, transform: Affine = SRC_TRANSFORM, crs: str = CRS) -> Path:
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype="float32", crs=crs, transform=transform, nodata=np.nan) as dst:
        dst.write(data.astype(np.float32))
    return path


def _write_yaml(folder: Path, unit: str, dates: list[dt.date] | None = None, **extra) -> Path:
    raw = {"area": "test", "period_start": "2019-01", "period_end": "2019-12", "unit": unit, **extra}
    if dates is not None:
        raw["dates"] = [d.isoformat() for d in dates]
    (folder / "delivery.yaml").write_text(yaml.safe_dump(raw))
    return folder


def _velocity_field(transform: Affine = SRC_TRANSFORM, shape: tuple[int, int] = SRC_SHAPE) -> np.ndarray:
    """A smooth LOS velocity (mm/yr): a -40 mm/yr bowl on a gentle east-west ramp."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    x, y = transform @ (cols + 0.5, rows + 0.5)
    return (-40.0 * np.exp(-((x - 300_600) ** 2 + (y - 4_200_450) ** 2) / (2 * 250.0**2)) + 0.005 * (x - 300_000))


def _series_mm(velocity: np.ndarray, dates: list[dt.date] = DATES) -> np.ndarray:
    t = decimal_years(dates)
    return velocity[None] * (t - t[0])[:, None, None]


def _timeseries_delivery(folder: Path, *, unit: str = "cm", coherence: np.ndarray | None = None,
                         n_bands: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    series = _series_mm(_velocity_field()) / {"mm": 1.0, "cm": 10.0, "m": 1000.0}[unit]
    series[3, 10:14, 20:30] = np.nan  # a gap in one epoch
    _write_tif(folder / "timeseries.tif", series[:n_bands] if n_bands else series)
    if coherence is not None:
        _write_tif(folder / "coherence.tif", coherence)
    return _write_yaml(folder, unit, DATES)


def _write_mintpy_timeseries(path: Path, series_m: np.ndarray, dates: list[dt.date], transform: Affine,
                             geo: dict[str, str]) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("timeseries", data=series_m.astype(np.float32), chunks=True)
        f.create_dataset("date", data=np.array([d.strftime("%Y%m%d").encode() for d in dates]))
        f.create_dataset("bperp", data=np.zeros(len(dates), dtype=np.float32))
        _mintpy_attrs(f, "timeseries", "m", transform, series_m.shape[1:], geo)
    return path


def _mintpy_attrs(f: h5py.File, file_type: str, unit: str, transform: Affine, shape: tuple[int, int],
                  geo: dict[str, str]) -> None:
    f.attrs.update({"FILE_TYPE": file_type, "UNIT": unit, "LENGTH": str(shape[0]), "WIDTH": str(shape[1]),
                    "X_FIRST": str(transform.c), "Y_FIRST": str(transform.f), "X_STEP": str(transform.a),
                    "Y_STEP": str(transform.e), **geo})


def _read(path: Path) -> dict[str, np.ndarray]:
    return dict(zip(BANDS, read_raster(path), strict=True))


# ---------------------------------------------------------------- fit_velocity


def test_fit_velocity_exact_line_gaps_and_min_epochs():
    t = decimal_years(DATES)
    y = np.empty((len(t), 2, 3), dtype=np.float32)
    y[:] = (5.0 + 12.5 * (t - 2019.0))[:, None, None]
    y[::2, 0, 1] = np.nan  # 6 epochs left
    y[:8, 0, 2] = np.nan  # 4 epochs left: below min_epochs
    y[:, 1, 0] = np.nan  # no data at all
    v, se, n = fit_velocity(y, t, min_epochs=5)
    assert n.tolist() == [[12, 6, 4], [0, 12, 12]]
    np.testing.assert_allclose(v[np.isfinite(v)], 12.5, rtol=1e-5)
    assert np.isnan(v[0, 2]) and np.isnan(v[1, 0]) and np.isnan(se[0, 2])
    assert np.nanmax(se) < 1e-3
    with pytest.raises(ValueError, match="min_epochs"):
        fit_velocity(y, t, min_epochs=2)


@pytest.mark.parametrize("seasonal_mm", [0.0, 4.0])
def test_fit_velocity_synthetic_series(seasonal_mm):
    rng = np.random.default_rng(7)
    dates = [dt.date(2018, 1, 3) + dt.timedelta(days=12 * i) for i in range(61)]  # 2 years, 12-day revisit
    t = decimal_years(dates)
    tt = (t - t[0])[:, None, None]
    rows, cols = np.mgrid[0:40, 0:50]
    truth = -40.0 * np.exp(-((rows - 18) ** 2 + (cols - 25) ** 2) / (2 * 7.0**2)) + 0.1 * cols - 2.0
    phase = rng.uniform(0, 2 * np.pi, truth.shape)
    # Atmosphere-like noise: spatially correlated within an epoch, independent between epochs.
    noise = np.stack([gaussian_filter(rng.normal(size=truth.shape), 3.0) for _ in t])
    noise *= 4.0 / noise.std()
    y = truth * tt + seasonal_mm * np.sin(2 * np.pi * tt + phase) + noise
    y[rng.random(y.shape) < 0.2] = np.nan
    y[:, :4, :4] = np.nan
    v, se, n = fit_velocity(y, t, min_epochs=5)
    ok = np.isfinite(v)
    assert not ok[:4, :4].any() and ok.sum() == truth.size - 16
    r = np.corrcoef(v[ok], truth[ok])[0, 1]
    assert r >= 0.9, r
    # Without seasonal signal the residuals are white in time, so the OLS stderr must match the
    # empirical error; a seasonal term biases the slope beyond what the stderr can see (factor < 2).
    ratio = np.sqrt(np.mean((v[ok] - truth[ok]) ** 2)) / np.sqrt(np.mean(se[ok] ** 2))
    assert (0.75 < ratio < 1.33) if seasonal_mm == 0 else (0.5 < ratio < 2.0), ratio


# ---------------------------------------------------------------- LOS projection


def test_los_unit_vector_convention_sentinel1_ascending():
    e, n, u = los_unit_vector(-12.0, 39.0)  # ascending, right-looking: looks east, satellite to the west
    assert e < 0 and n < 0 and u > 0
    assert math.isclose(e * e + n * n + u * u, 1.0)
    # Sliding down an east-facing slope moves away from a satellite in the west: negative LOS.
    assert downslope_coefficient(np.array(30.0), np.array(90.0), -12.0, 39.0) < -0.5


def test_los_to_downslope_round_trip_and_capping():
    slope = np.array([30.0, 25.0, 5.0, 20.0])
    aspect = np.array([90.0, 250.0, 0.0, np.nan])
    coef = downslope_coefficient(slope, aspect, -12.0, 39.0)
    v_los = coef * 10.0  # 10 mm/yr downslope
    v, capped = los_to_downslope(v_los, slope, aspect, -12.0, 39.0, min_sensitivity=0.2)
    assert capped.tolist() == [False, False, True, False]
    np.testing.assert_allclose(v[:2], 10.0, rtol=1e-5)
    # Clipped, not dropped: |C| < 0.2 is replaced by -0.2 (its sign), so the speed is underestimated.
    assert abs(coef[2]) < 0.2 and math.isclose(v[2], v_los[2] / -0.2, rel_tol=1e-5)
    assert np.isnan(v[3])


# ---------------------------------------------------------------- the driver


def test_timeseries_delivery_recovers_velocity_and_masks_low_coherence(tmp_path):
    coherence = np.full(SRC_SHAPE, 0.8)
    coherence[30:, 40:] = 0.1
    folder = _timeseries_delivery(tmp_path / "d", unit="cm", coherence=coherence)
    out = tmp_path / "out" / "rate.tif"
    summary = deformation_rate(load_delivery(folder), GRID, out, min_epochs=5, block=17)
    assert band_names(out) == list(BANDS)
    with rasterio.open(out) as src:
        assert src.tags()["unit"] == "mm/yr" and src.crs.to_string() == CRS
    r = _read(out)
    truth = _velocity_field(GRID.affine, GRID.shape)
    x, y = GRID.pixel_centers()
    edge_x, edge_y = SRC_TRANSFORM @ (40, 30)  # corner of the low-coherence patch; 40 m margins for resampling
    low = (x > edge_x + 40) & (y < edge_y - 40)
    inner = (x < edge_x - 40) | (y > edge_y + 40)
    assert low.sum() > 20 and (r["quality"][low] == QUALITY_MASKED).all()
    assert (r["quality"][inner] == QUALITY_VALID).all()
    # Bilinear resampling of a smooth field: close to the truth, not bit-equal.
    np.testing.assert_allclose(r["velocity_mm_yr"][inner], truth[inner], atol=0.5)
    assert np.nanmax(r["velocity_stderr_mm_yr"][inner]) < 0.5
    assert set(np.unique(r["n_epochs"][inner])) <= {11.0, 12.0}
    assert np.isnan(r["velocity_mm_yr"][low]).all() and np.isnan(r["velocity_stderr_mm_yr"][low]).all()
    assert summary.kind == "timeseries" and summary.n_dates == 12
    assert 0.5 < summary.valid_share < 1.0
    assert summary.median_abs_velocity_mm_yr > 0


@pytest.mark.parametrize("fmt", ["tif", "h5"])
def test_windowed_equals_whole(tmp_path, fmt):
    folder = _timeseries_delivery(tmp_path / "d", unit="m")
    if fmt == "h5":
        with rasterio.open(folder / "timeseries.tif") as src:
            series = src.read()
        (folder / "timeseries.tif").unlink()
        _write_mintpy_timeseries(folder / "timeseries.h5", series, DATES, SRC_TRANSFORM, {"EPSG": "32613"})
    delivery = load_delivery(folder)
    small, whole = tmp_path / "small.tif", tmp_path / "whole.tif"
    s1 = deformation_rate(delivery, GRID, small, block=17)
    s2 = deformation_rate(delivery, GRID, whole, block=4096)
    # GeoTIFFs agree exactly; MintPy windows are warped from sub-arrays with their own origins, so
    # bilinear weights differ in the last float32 bit.
    np.testing.assert_allclose(read_raster(small), read_raster(whole), rtol=0, atol=0 if fmt == "tif" else 1e-5)
    d1, d2 = s1.as_dict(), s2.as_dict()
    assert d1.keys() == d2.keys()
    assert all(d1[k] == (pytest.approx(d2[k], rel=1e-5, abs=1e-5) if isinstance(d2[k], float) else d2[k]) for k in d1)


def test_mintpy_timeseries_matches_geotiff(tmp_path):
    tif = _timeseries_delivery(tmp_path / "tif", unit="mm")
    with rasterio.open(tif / "timeseries.tif") as src:
        series_m = src.read() / 1000.0
    h5 = tmp_path / "h5"
    h5.mkdir()
    _write_mintpy_timeseries(h5 / "timeseries.h5", series_m, DATES, SRC_TRANSFORM, {"UTM_ZONE": "13N"})
    _write_yaml(h5, "m", DATES)
    deformation_rate(load_delivery(tif), GRID, tif / "out.tif")
    deformation_rate(load_delivery(h5), GRID, h5 / "out.tif")
    np.testing.assert_allclose(read_raster(tif / "out.tif"), read_raster(h5 / "out.tif"), rtol=1e-4, atol=1e-4)


def test_mintpy_velocity_latlon_with_std(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    lon0, lat0, lon1, lat1 = transform_bounds(CRS, "EPSG:4326", *GRID.bounds)
    transform = Affine(0.0005, 0.0, lon0 - 0.002, 0.0, -0.0005, lat1 + 0.002)
    shape = (int((lat1 - lat0 + 0.004) / 0.0005) + 1, int((lon1 - lon0 + 0.004) / 0.0005) + 1)
    with h5py.File(folder / "velocity.h5", "w") as f:
        f["velocity"] = np.full(shape, -0.012, dtype=np.float32)  # m/yr
        f["velocityStd"] = np.full(shape, 0.002, dtype=np.float32)
        _mintpy_attrs(f, "velocity", "m/year", transform, shape, {"X_UNIT": "degrees", "Y_UNIT": "degrees"})
    _write_yaml(folder, "m/yr")
    out = tmp_path / "v.tif"
    summary = deformation_rate(load_delivery(folder), GRID, out)
    r = _read(out)
    np.testing.assert_allclose(r["velocity_mm_yr"], -12.0, rtol=1e-5)
    np.testing.assert_allclose(r["velocity_stderr_mm_yr"], 2.0, rtol=1e-5)
    assert (r["n_epochs"] == 0).all() and (r["quality"] == QUALITY_VALID).all()
    assert summary.valid_share == 1.0 and summary.median_stderr_mm_yr == pytest.approx(2.0)


def test_velocity_tif_mm_per_day_reprojected(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    lon0, lat0, lon1, lat1 = transform_bounds(CRS, "EPSG:4326", *GRID.bounds)
    data = np.full((30, 40), 0.1)
    data[:, :5] = np.nan
    _write_tif(folder / "velocity.tif", data,
               Affine((lon1 - lon0 + 0.004) / 40, 0, lon0 - 0.002, 0, -(lat1 - lat0 + 0.004) / 30, lat1 + 0.002),
               crs="EPSG:4326")
    _write_yaml(folder, "mm/day")
    deformation_rate(load_delivery(folder), GRID, tmp_path / "v.tif")
    r = _read(tmp_path / "v.tif")
    valid = r["quality"] == QUALITY_VALID
    assert 0.7 < valid.mean() < 1.0
    np.testing.assert_allclose(r["velocity_mm_yr"][valid], 36.525, rtol=1e-5)
    assert np.isnan(r["velocity_stderr_mm_yr"]).all() and (r["n_epochs"] == 0).all()


def test_downslope_projection_flags_capped_pixels(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _write_tif(folder / "velocity.tif", np.full(SRC_SHAPE, -8.0))
    _write_yaml(folder, "mm/yr", heading_deg=-12.0, incidence_deg=39.0)
    slope = np.full(GRID.shape, 30.0, dtype=np.float32)
    aspect = np.full(GRID.shape, 90.0, dtype=np.float32)
    aspect[:, : GRID.width // 2] = 0.0
    slope[:, : GRID.width // 2] = 5.0  # gentle north-facing: nearly perpendicular to the LOS
    terrain = write_raster(tmp_path / "terrain.tif", np.stack([slope, aspect]), GRID, ["slope", "aspect"])
    out = tmp_path / "v.tif"
    summary = deformation_rate(load_delivery(folder), GRID, out, project_downslope=True, slope_deg_path=terrain)
    r = _read(out)
    left, right = np.s_[:, : GRID.width // 2], np.s_[:, GRID.width // 2:]
    assert (r["quality"][left] == QUALITY_CAPPED).all() and (r["quality"][right] == QUALITY_VALID).all()
    coef = downslope_coefficient(np.array(30.0), np.array(90.0), -12.0, 39.0)
    np.testing.assert_allclose(r["velocity_mm_yr"][right], -8.0 / coef, rtol=1e-5)
    np.testing.assert_allclose(r["velocity_mm_yr"][left], -8.0 / -0.2, rtol=1e-5)
    assert summary.component == "downslope" and summary.capped_share == pytest.approx(0.5)


# ---------------------------------------------------------------- bad input


def test_band_count_differs_from_dates(tmp_path):
    folder = _timeseries_delivery(tmp_path / "d", n_bands=10)
    out = tmp_path / "out.tif"
    with pytest.raises(DeliveryError, match=r"timeseries\.tif.*10 epochs.*12 dates"):
        deformation_rate(load_delivery(folder), GRID, out)
    assert not out.exists()


def test_mintpy_bad_files(tmp_path):
    series = _series_mm(_velocity_field()) / 1000.0
    cases = {
        "count": (series[:10], DATES[:10], "m", r"10 epochs.*12 dates"),
        "dates": (series, DATES[:-1] + [dt.date(2020, 6, 1)], "m", r"dates in dataset 'date' differ"),
        "unit": (series, DATES, "cm", r"UNIT attribute is 'm' but delivery.yaml says 'cm'"),
    }
    for name, (data, h5_dates, unit, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        _write_mintpy_timeseries(folder / "timeseries.h5", data, h5_dates, SRC_TRANSFORM, {"EPSG": "32613"})
        _write_yaml(folder, unit, DATES)
        with pytest.raises(DeliveryError, match=rf"timeseries\.h5.*{message}"):
            deformation_rate(load_delivery(folder), GRID, folder / "out.tif")
        assert not (folder / "out.tif").exists()


def test_delivery_outside_the_area(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _write_tif(folder / "velocity.tif", np.ones(SRC_SHAPE), SRC_TRANSFORM @ Affine.translation(0, 2000))
    _write_yaml(folder, "mm/yr")
    out = tmp_path / "out.tif"
    with pytest.raises(GridMismatchError, match=r"velocity\.tif.*does not overlap"):
        deformation_rate(load_delivery(folder), GRID, out)
    assert not out.exists()


def test_unknown_unit_rejected(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _write_tif(folder / "velocity.tif", np.ones(SRC_SHAPE))
    _write_yaml(folder, "inch/yr")
    with pytest.raises(DeliveryError, match=r"delivery\.yaml.*unknown unit 'inch/yr'"):
        load_delivery(folder)


def test_bad_coherence_and_projection_inputs(tmp_path):
    folder = _timeseries_delivery(tmp_path / "d", coherence=np.ones((3, *SRC_SHAPE)))
    out = tmp_path / "out.tif"
    with pytest.raises(DeliveryError, match=r"coherence\.tif.*3 coherence bands; expected 1 or 12"):
        deformation_rate(load_delivery(folder), GRID, out)
    (folder / "coherence.tif").unlink()
    with pytest.raises(DeliveryError, match=r"delivery\.yaml.*heading_deg and incidence_deg"):
        deformation_rate(load_delivery(folder), GRID, out, project_downslope=True, slope_deg_path=folder)
    assert not out.exists()


def test_terrain_off_grid_rejected(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _write_tif(folder / "velocity.tif", np.ones(SRC_SHAPE))
    _write_yaml(folder, "mm/yr", heading_deg=-12.0, incidence_deg=39.0)
    other = AreaGrid.from_bounds(CRS, (300_000.0, 4_200_000.0, 300_600.0, 4_200_900.0), 30.0)
    terrain = write_raster(tmp_path / "t" / "terrain.tif", np.ones((2, *other.shape)), other, ["slope", "aspect"])
    out = tmp_path / "out.tif"
    with pytest.raises(GridMismatchError, match=r"terrain\.tif.*differs from the area grid"):
        deformation_rate(load_delivery(folder), GRID, out, project_downslope=True, slope_deg_path=terrain)
    assert not out.exists()


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    import lsm_core.deformation as deformation

    calls = []

    def failing_fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk gone")
        return fit_velocity(*args, **kwargs)

    monkeypatch.setattr(deformation, "fit_velocity", failing_fit)
    folder = _timeseries_delivery(tmp_path / "d")
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk gone"):
        deformation_rate(load_delivery(folder), GRID, out_dir / "v.tif", block=17)
    assert len(calls) == 3 and not any(out_dir.iterdir())  # no output and no temporary left behind


# ---------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.skipif(not SLUMGULLION.is_dir(), reason=f"shared Slumgullion data not found at {SLUMGULLION}")
def test_slumgullion_speed_is_high_inside_the_kinematic_elements(tmp_path):
    folder = tmp_path / "slumgullion"
    folder.mkdir()
    # Horizontal speed: the slide moves mostly horizontally, and the dataset's own sanity check
    # (SOURCE.md, 4.3 vs 0.44 mm/day) uses it; 'up' adds noise and sign changes at head and toe.
    with rasterio.open(SLUMGULLION / "uavsar_velocity_enu_mm_per_day_binned.tif") as src:
        east, north = src.read(1), src.read(2)
        _write_tif(folder / "velocity.tif", np.hypot(east, north), src.transform, src.crs.to_string())
    _write_yaml(folder, "mm/day")
    with rasterio.open(SLUMGULLION / "srtm_dem.tif") as dem:
        x0, y0, x1, y1 = transform_bounds(dem.crs, CRS, *dem.bounds)
    res = 20.0
    grid = AreaGrid.from_bounds(CRS, (math.floor(x0 / res) * res, math.floor(y0 / res) * res,
                                      math.ceil(x1 / res) * res, math.ceil(y1 / res) * res), res)
    out = tmp_path / "rate.tif"
    summary = deformation_rate(load_delivery(folder), grid, out)
    r = _read(out)
    kes = gpd.read_file(SLUMGULLION / "kinematic_elements.geojson").to_crs(CRS)
    inside = rasterize(kes.geometry, out_shape=grid.shape, transform=grid.affine).astype(bool)
    valid = r["quality"] == QUALITY_VALID
    speed = np.abs(r["velocity_mm_yr"])
    med_in, med_out = np.median(speed[valid & inside]), np.median(speed[valid & ~inside])
    print(f"Slumgullion median speed inside {med_in:.0f} mm/yr, outside {med_out:.0f} mm/yr, "
          f"ratio {med_in / med_out:.1f}; valid share {summary.valid_share:.2f}")
    assert med_in > 5 * med_out


def test_fitted_velocity_matches_the_synthetic_truth(demo_data, tmp_path):
    """The karst time-series deliveries of the synthetic world give r >= 0.9 against truth/ on coherent pixels."""
    from lsm_core.area import load_area
    from lsm_core.delivery import load_delivery
    from lsm_core.io import RasterFile, raster_on_grid

    grid = load_area(demo_data / "study_areas" / "karst").grid
    for folder in sorted((demo_data / "incoming" / "insar" / "karst").iterdir()):
        delivery = load_delivery(folder)
        assert delivery.kind == "timeseries"
        out = tmp_path / f"{delivery.period}.tif"
        deformation_rate(delivery, grid, out)
        v = RasterFile(out).band("velocity_mm_yr")
        truth = raster_on_grid(demo_data / "study_areas" / "karst" / "truth" / f"velocity_{delivery.period}.tif",
                               grid)[0]
        ok = np.isfinite(v) & np.isfinite(truth)
        assert ok.mean() > 0.8
        assert np.corrcoef(v[ok], truth[ok])[0, 1] >= 0.9
