"""Window reads fill nodata with NaN exactly as rasterio's masked read does, whichever way the mask is given."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from lsm_core.grid import AreaGrid
from lsm_core.io import COG_COMPRESSION, raster_window_on_grid, read_raster, warp_scale, write_raster

GRID = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 402000, 2851000), 20)  # 50 x 100
WINDOW = Window(7, 3, 60, 40)


def _masked(path, window=None):
    with rasterio.open(path) as src:
        return np.ma.filled(src.read(window=window, masked=True).astype(np.float32), np.nan)


def _write(path, data, dtype, nodata, **extra):
    with rasterio.open(path, "w", driver="GTiff", width=GRID.width, height=GRID.height, count=data.shape[0],
                       dtype=dtype, crs=GRID.crs, transform=GRID.affine, nodata=nodata, **extra) as dst:
        dst.write(data.astype(dtype))
    return path


@pytest.mark.parametrize("dtype,nodata", [("float32", np.nan), ("float64", np.nan), ("uint8", 255), ("int16", -9999),
                                          ("uint16", 0), ("float32", -9999.0), ("int16", None)])
def test_read_fills_nodata_like_the_masked_read(tmp_path, dtype, nodata):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 200, size=(3, *GRID.shape)).astype("float64")
    if nodata is not None:
        data[1, 5:9, 10:20] = nodata
        data[0, ::7, ::5] = nodata
    if dtype.startswith("float"):
        data[2, 20:30, 40:60] = np.nan if nodata is None or np.isnan(nodata) else data[2, 20:30, 40:60]
        data += rng.random(data.shape) * (np.isfinite(data) & (data != (nodata if nodata is not None else -1)))
    path = _write(tmp_path / "r.tif", data, dtype, nodata)
    for window in (None, WINDOW):
        got = read_raster(path, window)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, _masked(path, window))
    np.testing.assert_array_equal(read_raster(path, WINDOW, [3, 1]), _masked(path, WINDOW)[[2, 0]])


def test_read_with_an_internal_mask_band_follows_the_mask(tmp_path):
    data = np.random.default_rng(2).normal(size=(2, *GRID.shape)).astype("float32")
    path = tmp_path / "m.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", driver="GTiff", width=GRID.width, height=GRID.height, count=2, dtype="float32",
                           crs=GRID.crs, transform=GRID.affine) as dst:
            dst.write(data)
            mask = np.full(GRID.shape, 255, np.uint8)
            mask[10:20, 30:50] = 0
            dst.write_mask(mask)
    got = read_raster(path, WINDOW)
    np.testing.assert_array_equal(got, _masked(path, WINDOW))
    assert np.isnan(got[:, 10 - 3:20 - 3, 30 - 7:50 - 7]).all()


def test_resampled_window_reads_equal_the_masked_warped_read(tmp_path):
    from rasterio.vrt import WarpedVRT

    coarse = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 402000, 2851000), 40)
    data = np.random.default_rng(3).normal(size=(4, *coarse.shape)).astype("float32")
    data[1, 3:6, 4:9] = np.nan
    path = tmp_path / "c.tif"
    write_raster(path, data, coarse, ["a", "b", "c", "d"])
    got = raster_window_on_grid(path, GRID, WINDOW)
    with rasterio.open(path) as src, WarpedVRT(src, crs=GRID.crs, transform=GRID.affine, width=GRID.width,
                                                height=GRID.height, src_nodata=src.nodata, nodata=np.nan,
                                                dtype="float32", resampling=rasterio.enums.Resampling.bilinear,
                                                **warp_scale(src.bounds, src.shape, GRID)) as vrt:
        want = np.ma.filled(vrt.read(window=WINDOW, masked=True).astype(np.float32), np.nan)
    np.testing.assert_array_equal(got, want)


def test_published_cogs_use_the_fast_lossless_compression(tmp_path):
    data = np.random.default_rng(4).normal(size=(2, *GRID.shape)).astype("float32")
    path = write_raster(tmp_path / "z.tif", data, GRID, ["a", "b"])
    with rasterio.open(path) as src:
        assert src.profile["compress"].upper() == COG_COMPRESSION["COMPRESS"]
        np.testing.assert_array_equal(src.read(), data)
