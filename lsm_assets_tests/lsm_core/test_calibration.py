"""Calibration of map probabilities on held-out positives against a uniform area sample (lsm_core.calibration)."""

import numpy as np
import pytest

from lsm_core.calibration import Calibrator, calibrate_raster, fit_calibrator
from lsm_core.errors import ConfigError, SamplingError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterFile, read_raster, write_raster


def _scores(n_pos: int = 4000, n_area: int = 40_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positives ~ Beta(2, 1) (density 2s), area ~ Beta(1, 2) (density 2(1 - s)): equal weights give c(s) = s."""
    rng = np.random.default_rng(seed)
    return rng.beta(2, 1, n_pos), rng.beta(1, 2, n_area)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_recovers_the_density_ratio(method):
    pos, area = _scores()
    cal = fit_calibrator(method, pos, area)
    s = np.linspace(0.1, 0.9, 9)
    # c(s) = f_pos / (f_pos + f_area) = s here, whatever the 1:10 size ratio of the two samples
    np.testing.assert_allclose(cal(s), s, atol=0.05 if method == "isotonic" else 0.02)
    if method == "platt":
        assert cal.a == pytest.approx(1.0, abs=0.05) and cal.b == pytest.approx(0.0, abs=0.05)
    assert (cal.n_positive, cal.n_area) == (4000, 40_000)


def test_polarised_scores_are_spread_out_and_order_is_kept():
    """A model that pushes the area towards 0 and positives towards 1 (easy negatives) gets a scale on which
    a score typical of the area is low and one typical of landslides high, with the same ranking."""
    pos, area = _scores()
    polarise = lambda s: s**6 / (s**6 + (1 - s) ** 6)  # noqa: E731  monotone, pushes scores to 0 and 1
    cal = fit_calibrator("isotonic", polarise(pos), polarise(area))
    raw = polarise(np.linspace(0.05, 0.95, 19))
    out = cal(raw)
    assert np.all(np.diff(out) >= 0)
    np.testing.assert_allclose(out, np.linspace(0.05, 0.95, 19), atol=0.06)
    # raw, 62 % of the area sits below 5 % (P(Beta(1, 2) < 0.38)); calibrated, 10 % (P(Beta(1, 2) < 0.05))
    below = lambda v: float(np.mean(v < 0.05))  # noqa: E731
    assert below(polarise(area)) == pytest.approx(0.616, abs=0.02)
    assert below(cal(polarise(area))) == pytest.approx(0.0975, abs=0.03)


def test_nan_stays_nan_and_float32_stays_float32():
    cal = fit_calibrator("platt", *_scores(200, 2000))
    out = cal(np.array([np.nan, 0.3], np.float32))
    assert out.dtype == np.float32 and np.isnan(out[0]) and np.isfinite(out[1])
    assert Calibrator.from_json(cal.to_json()) == cal


def test_bad_method_and_too_few_scores_are_refused():
    pos, area = _scores(200, 2000)
    with pytest.raises(ConfigError, match="calibration"):
        fit_calibrator("none", pos, area)  # type: ignore[arg-type]
    with pytest.raises(SamplingError, match="10"):
        fit_calibrator("isotonic", pos[:5], area)


def test_raster_is_calibrated_window_by_window(tmp_path):
    grid = AreaGrid.from_bounds("EPSG:32633", (500000, 4000000, 500700, 4000500), 10)  # 50 x 70
    rng = np.random.default_rng(1)
    p = rng.beta(1, 2, grid.shape).astype(np.float32)
    p[3:7, 10:20] = np.nan
    src = write_raster(tmp_path / "raw.tif", p[None], grid, ["susceptibility"], nodata=np.nan,
                       tags={"strategy": "random"})
    cal = fit_calibrator("isotonic", *_scores(500, 5000))
    dst = calibrate_raster(src, tmp_path / "cal.tif", cal, block=16)
    got = read_raster(dst)[0]
    np.testing.assert_array_equal(got, cal(p))
    tags = RasterFile(dst).tags
    assert tags["strategy"] == "random" and Calibrator.from_json(tags["calibration"]) == cal
    assert RasterFile(dst).names == ["susceptibility"]


def test_a_map_is_calibrated_against_a_seeded_sample_of_its_own_pixels(tmp_path):
    from lsm_core.calibration import calibrate_map

    grid = AreaGrid.from_bounds("EPSG:32633", (500000, 4000000, 500700, 4000500), 10)  # 50 x 70 = 3500 px
    p = np.random.default_rng(2).beta(1, 2, grid.shape).astype(np.float32)
    p[:5] = np.nan  # 350 nodata pixels never enter the area sample
    src = write_raster(tmp_path / "raw.tif", p[None], grid, ["susceptibility"], nodata=np.nan)
    positives = np.random.default_rng(3).beta(2, 1, 300)
    cal = calibrate_map(src, tmp_path / "cal.tif", "platt", positives, n_area=1000, seed=4, block=16)
    assert (cal.n_positive, cal.n_area) == (300, 1000)
    again = calibrate_map(src, tmp_path / "cal2.tif", "platt", positives, n_area=1000, seed=4, block=16)
    assert again == cal  # the same seed draws the same area sample
    assert calibrate_map(src, tmp_path / "all.tif", "platt", positives, n_area=10_000, seed=4).n_area == 3150
    got, ok = read_raster(tmp_path / "cal.tif")[0], np.isfinite(p)
    np.testing.assert_array_equal(got, cal(p))
    # Platt is monotone: the map's ranking is kept
    assert np.all(np.diff(got[ok][np.argsort(p[ok], kind="stable")]) >= 0)
