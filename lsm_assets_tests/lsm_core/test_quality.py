"""The measures behind the asset checks, on small real rasters and tables."""

import numpy as np
import pandas as pd

from lsm_core import quality
from lsm_core.grid import AreaGrid
from lsm_core.io import write_raster

GRID = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 401000, 2851000), 10)


def test_grid_alignment_sees_an_offset_and_another_crs(tmp_path):
    data = np.zeros((1, *GRID.shape), "float32")
    assert quality.grid_alignment(write_raster(tmp_path / "ok.tif", data, GRID, ["a"]), GRID).passed
    shifted = AreaGrid.from_bounds("EPSG:32649", (400005, 2850000, 401005, 2851000), 10)
    v = quality.grid_alignment(write_raster(tmp_path / "off.tif", data, shifted, ["a"]), GRID)
    assert not v.passed and "transform" in v.message
    other = AreaGrid.from_bounds("EPSG:32650", (400000, 2850000, 401000, 2851000), 10)
    assert "CRS" in quality.grid_alignment(write_raster(tmp_path / "crs.tif", data, other, ["a"]), GRID).message


def test_nodata_share_counts_only_pixels_inside_the_area(tmp_path):
    mask = np.zeros((1, *GRID.shape), "float32")
    mask[0, :50] = 1  # the upper half is the area
    data = np.ones((2, *GRID.shape), "float32")
    data[0, :10] = np.nan  # 10 of 50 rows inside the area
    data[1, 60:] = np.nan  # outside the area: does not count
    shares = quality.nodata_shares(write_raster(tmp_path / "f.tif", data, GRID, ["a", "b"]),
                                   write_raster(tmp_path / "m.tif", mask, GRID, ["mask"]), block=32)
    assert shares == {"a": 0.2, "b": 0.0}
    assert quality.nodata_verdict(shares, limit=0.2).passed and not quality.nodata_verdict(shares, limit=0.1).passed


def test_vif_balance_auc_and_ta_verdicts():
    assert not quality.vif_verdict({"slope": 3.0, "relief": 12.5}).passed
    neg = pd.DataFrame({"strategy": ["random"] * 100 + ["buffer"] * 60})
    v = quality.sample_balance(100, neg)
    assert not v.passed and "buffer" in v.message and v.values["negatives_random"] == 100
    table = pd.DataFrame({"strategy": ["random", "random", "insar_pu"], "spatial_cv_auc": [0.55, 0.7, 0.58]})
    v = quality.auc_floor(table, floor=0.6)
    assert not v.passed and "insar_pu" in v.message and "random" not in v.message
    ev = pd.DataFrame({"threshold_name": ["adaptive_js", "fixed_50"], "TA": [0.8, 0.3], "threshold": [0.4, 0.5]})
    assert quality.ta_floor(ev, floor=0.5).passed


def test_rising_lor_warns_after_three_rises_in_a_row():
    def history(lors):
        return pd.DataFrame({"threshold_name": "adaptive_js", "LOR": lors,
                             "evaluated_at": pd.date_range("2024-01-01", periods=len(lors), freq="W")})

    assert quality.rising_lor(history([0.1, 0.2, 0.3])).passed  # only two rises
    v = quality.rising_lor(history([0.3, 0.1, 0.2, 0.3, 0.35]))
    assert not v.passed and "re-evaluate this area" in v.message
    assert quality.rising_lor(history([0.1, 0.2, 0.2, 0.3])).passed  # a flat step breaks the run
