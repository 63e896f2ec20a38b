import numpy as np
import pytest

from lsm_core.errors import GridMismatchError, ModelError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterArray, RasterFile
from lsm_core.stack import build_factor_stack, categorical_bands, sample_valid_pixels, vif, vif_table

GRID = AreaGrid.from_bounds("EPSG:32647", (770000, 3930000, 772000, 3931200), 20)  # 60 x 100


def test_vif_is_one_for_independent_factors_and_large_for_collinear_ones():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 20000))
    assert all(v == pytest.approx(1, abs=0.05) for v in vif(np.c_[a, b, c], "abc").values())
    v = vif(np.c_[a, b, a + b + 0.1 * c], "abc")
    # R^2 of the third on the first two is 2 / 2.01, so VIF = 201
    assert v["c"] == pytest.approx(201, rel=0.1)
    with pytest.raises(ModelError, match="constant factors.*'c'"):
        vif(np.c_[a, b, np.ones_like(a)], "abc")


def test_stack_has_one_nodata_mask_keeps_names_and_categorical_tag(tmp_path):
    rng = np.random.default_rng(1)
    terrain = rng.normal(size=(2, *GRID.shape)).astype("float32")
    terrain[0, 3, 4] = np.nan
    env = rng.integers(1, 4, size=(1, *GRID.shape)).astype("float32")
    env[0, 10, 10] = np.nan
    mask = np.ones(GRID.shape, "float32")
    mask[0, :] = 0
    t = RasterArray(terrain, GRID, ["slope_deg", "twi"]).write(tmp_path / "terrain.tif")
    e_path = tmp_path / "env.tif"
    from lsm_core.io import write_raster

    write_raster(e_path, env, GRID, ["lithology"], tags={"categorical": "lithology"})
    m = RasterArray(mask, GRID, ["valid"], dtype="uint8", nodata=None).write(tmp_path / "mask.tif")
    info = build_factor_stack([(t, ["twi", "slope_deg"]), (RasterFile(e_path), ["lithology"])], m,
                              tmp_path / "stack.tif", block=16)
    s = RasterFile(tmp_path / "stack.tif")
    assert s.names == ["twi", "slope_deg", "lithology"] and categorical_bands(s.path) == ["lithology"]
    data = s.read()
    nodata = np.isnan(data)
    assert (nodata.all(axis=0) == nodata.any(axis=0)).all()
    assert nodata[0, 0].all() and nodata[:, 3, 4].all() and nodata[:, 10, 10].all()
    assert info.valid_pixels == GRID.n_pixels - GRID.width - 2
    np.testing.assert_array_equal(data[1, 11:, :], terrain[0, 11:, :])
    assert set(vif_table(s, n_sample=5000)) == {"twi", "slope_deg"}
    x = sample_valid_pixels(s, 1000, seed=3)
    np.testing.assert_array_equal(x, sample_valid_pixels(s, 1000, seed=3))
    assert 800 < len(x) < 1200 and np.isfinite(x).all()



def test_stack_records_the_nodata_shares_the_check_would_count(tmp_path):
    from lsm_core.quality import nodata_shares
    from lsm_core.stack import recorded_nodata_shares

    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, *GRID.shape)).astype("float32")
    a[0, 5:9, 3:30] = np.nan
    a[1, 20:, 40:] = np.nan
    mask = np.ones(GRID.shape, "float32")
    mask[:4] = 0
    src = RasterArray(a, GRID, ["x", "y"]).write(tmp_path / "a.tif")
    m = RasterArray(mask, GRID, ["valid"], dtype="uint8", nodata=None).write(tmp_path / "mask.tif")
    build_factor_stack([(src, ["y", "x"])], m, tmp_path / "stack.tif", block=16)
    recorded = recorded_nodata_shares(tmp_path / "stack.tif")
    assert recorded == nodata_shares(tmp_path / "stack.tif", m.path) and 0 < recorded["x"] < 1
    assert recorded_nodata_shares(src.path) is None  # not a stack: the check reads the file

def test_stack_rejects_a_layer_on_another_grid(tmp_path):
    other = AreaGrid.from_bounds("EPSG:32647", (770000, 3930000, 772000, 3931000), 20)
    a = RasterArray(np.zeros((1, *other.shape), "float32"), other, ["x"]).write(tmp_path / "other.tif")
    m = RasterArray(np.ones(GRID.shape, "float32"), GRID, ["valid"], dtype="uint8", nodata=None).write(
        tmp_path / "mask.tif")
    with pytest.raises(GridMismatchError, match=r"other\.tif"):
        build_factor_stack([(a, ["x"])], m, tmp_path / "stack.tif")
    assert not (tmp_path / "stack.tif").exists()


def test_stack_records_band_ranges_and_class_codes(tmp_path):
    from lsm_core.io import write_raster
    from lsm_core.stack import band_stats

    rng = np.random.default_rng(2)
    cont = rng.uniform(3, 9, size=(1, *GRID.shape)).astype("float32")
    codes = rng.choice([2.0, 5.0, 7.0], size=(1, *GRID.shape)).astype("float32")
    write_raster(tmp_path / "c.tif", cont, GRID, ["twi"])
    write_raster(tmp_path / "l.tif", codes, GRID, ["lithology"], tags={"categorical": "lithology"})
    m = RasterArray(np.ones(GRID.shape, "float32"), GRID, ["valid"], dtype="uint8", nodata=None).write(
        tmp_path / "mask.tif")
    build_factor_stack([(RasterFile(tmp_path / "c.tif"), ["twi"]), (RasterFile(tmp_path / "l.tif"), ["lithology"])],
                       m, tmp_path / "stack.tif", block=16)
    stats = band_stats(tmp_path / "stack.tif")
    assert stats["twi"]["min"] == pytest.approx(float(cont.min())) and stats["twi"]["max"] == float(cont.max())
    assert stats["lithology"]["codes"] == [2.0, 5.0, 7.0]
