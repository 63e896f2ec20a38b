import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import LineString

from lsm_core.errors import GridMismatchError, InputFileError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterArray, RasterFile, RasterWriter, atomic_path, raster_on_grid, read_vector, write_raster

GRID = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 402000, 2851000), 20)  # 50 x 100


def _data(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, *GRID.shape)).astype("float32")
    a[1, 5:9, 10:20] = np.nan
    return a


def test_cog_round_trip_keeps_values_crs_nodata_and_band_names(tmp_path):
    path = write_raster(tmp_path / "x.tif", _data(), GRID, ["slope_deg", "aspect_deg", "twi"])
    f = RasterFile(path)
    assert f.names == ["slope_deg", "aspect_deg", "twi"]
    assert f.grid == GRID
    assert np.isnan(f.nodata)
    np.testing.assert_array_equal(f.read(), _data())
    np.testing.assert_array_equal(f.band("aspect_deg"), _data()[1])
    with rasterio.open(path) as src:
        assert src.driver == "GTiff" and src.profile["tiled"]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_integer_raster_round_trip_with_nodata(tmp_path):
    codes = np.tile(np.arange(4, dtype="float32"), (GRID.height, GRID.width // 4))
    codes[0, 0] = np.nan
    f = RasterArray(codes, GRID, ["lithology_code"], dtype="int16", nodata=-1).write(tmp_path / "lith.tif")
    assert f.nodata == -1
    back = f.read()[0]
    assert np.isnan(back[0, 0]) and back[0, 1] == 1 and back[3, 7] == 3


def test_windowed_writer_equals_whole_array(tmp_path):
    data = _data(1)
    write_raster(tmp_path / "whole.tif", data, GRID, ["a", "b", "c"])
    with RasterWriter(tmp_path / "windowed.tif", GRID, ["a", "b", "c"], block=16) as w:
        for b in GRID.windows(16):
            r, c = b.write.toslices()
            w.write(data[:, r, c], b.write)
    np.testing.assert_array_equal(RasterFile(tmp_path / "windowed.tif").read(), RasterFile(tmp_path / "whole.tif").read())


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError), RasterWriter(target, GRID, ["a"]) as w:
        w.write(np.zeros(GRID.shape, "float32"))
        raise RuntimeError("crash mid-write")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError), atomic_path(tmp_path / "t.txt") as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_raster_in_other_crs_raises_unless_reprojection_is_asked(tmp_path):
    other = AreaGrid.from_bounds("EPSG:32650", (0, 0, 1, 1), 1)
    # the same ground in UTM 50N: reproject the area bounds there
    from rasterio.warp import transform_bounds

    b = transform_bounds(GRID.crs, "EPSG:32650", *GRID.bounds)
    other = AreaGrid.from_bounds("EPSG:32650", (b[0] - 100, b[1] - 100, b[2] + 100, b[3] + 100), 20)
    x, _ = other.pixel_centers()
    path = write_raster(tmp_path / "dem_utm50.tif", x[None].astype("float32"), other, ["dem"])
    with pytest.raises(GridMismatchError, match=r"dem_utm50\.tif.*CRS"):
        raster_on_grid(path, GRID)
    warped = raster_on_grid(path, GRID, reproject=True)[0]
    assert warped.shape == GRID.shape and np.isfinite(warped).all()
    # x of UTM 50N grows eastwards across the area too
    assert (np.diff(warped.mean(axis=0)) > 0).all()


def test_raster_outside_the_area_raises_naming_the_file(tmp_path):
    far = AreaGrid.from_bounds("EPSG:32649", (600000, 2850000, 601000, 2851000), 20)
    path = write_raster(tmp_path / "far.tif", np.zeros((1, *far.shape), "float32"), far, ["v"])
    with pytest.raises(GridMismatchError, match=r"far\.tif.*does not overlap"):
        raster_on_grid(path, GRID)


def test_raster_on_a_finer_grid_is_resampled(tmp_path):
    fine = AreaGrid.from_bounds("EPSG:32649", GRID.bounds, 10)
    path = write_raster(tmp_path / "fine.tif", np.ones((1, *fine.shape), "float32") * 7, fine, ["v"])
    np.testing.assert_allclose(raster_on_grid(path, GRID)[0], 7)


def test_vectors_in_other_crs_or_outside_raise(tmp_path):
    line = gpd.GeoDataFrame({"id": [1]}, geometry=[LineString([(400100, 2850100), (401900, 2850900)])], crs=GRID.crs)
    line.to_crs("EPSG:4326").to_file(tmp_path / "faults_wgs84.gpkg")
    with pytest.raises(GridMismatchError, match=r"faults_wgs84\.gpkg.*CRS"):
        read_vector(tmp_path / "faults_wgs84.gpkg", GRID)
    assert len(read_vector(tmp_path / "faults_wgs84.gpkg", GRID, reproject=True)) == 1
    line.translate(xoff=1e5).to_file(tmp_path / "roads_far.gpkg")
    with pytest.raises(GridMismatchError, match=r"roads_far\.gpkg.*does not overlap"):
        read_vector(tmp_path / "roads_far.gpkg", GRID)


def test_missing_files_get_clear_errors(tmp_path):
    with pytest.raises(InputFileError, match="nope.tif"):
        RasterFile(tmp_path / "nope.tif")
    with pytest.raises(InputFileError, match="nope.gpkg"):
        read_vector(tmp_path / "nope.gpkg")


def test_windowed_resampled_reads_equal_whole_reads(tmp_path):
    from lsm_core.io import raster_window_on_grid

    coarse = AreaGrid.from_bounds("EPSG:32649", GRID.bounds, 50)
    noise = np.random.default_rng(5).normal(size=(1, *coarse.shape)).astype("float32")
    path = write_raster(tmp_path / "rain.tif", noise, coarse, ["rain"])
    whole = raster_on_grid(path, GRID)[0]
    for b in GRID.windows(13):
        r, c = b.write.toslices()
        np.testing.assert_array_equal(raster_window_on_grid(path, GRID, b.write)[0], whole[r, c])


def test_raster_write_leaves_the_process_gdal_cache_as_it_found_it(tmp_path):
    """A COG write caps GDAL's block cache for its copy only; nested inside another Env too (issue 13)."""
    from rasterio.env import get_gdal_config

    before = get_gdal_config("GDAL_CACHEMAX")
    write_raster(tmp_path / "a.tif", _data(), GRID, ["a", "b", "c"])
    assert get_gdal_config("GDAL_CACHEMAX") == before
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        write_raster(tmp_path / "b.tif", _data(), GRID, ["a", "b", "c"])
        assert get_gdal_config("GDAL_CACHEMAX") == before
    assert get_gdal_config("GDAL_CACHEMAX") == before


def test_cached_raster_reads_equal_file_reads_and_stay_within_the_budget(tmp_path):
    path = write_raster(tmp_path / "x.tif", _data(2), GRID, ["a", "b", "c"])
    plain = RasterFile(path)
    cached = plain.cached()
    assert cached.names == plain.names and cached.grid == plain.grid
    windows = [b.write for b in GRID.windows(16)]
    for _ in range(2):  # the second pass comes from memory
        for w in windows:
            np.testing.assert_array_equal(cached.read(w), plain.read(w))
    assert cached.cached_bytes == plain.read().nbytes  # every block held once
    block = cached.read(windows[0])
    block[:] = 7.0  # a caller writing into what it read does not change the next read
    np.testing.assert_array_equal(cached.read(windows[0]), plain.read(windows[0]))
    np.testing.assert_array_equal(cached.read(windows[0], [2]), plain.read(windows[0], [2]))  # band reads bypass
    small = plain.cached(max_bytes=3 * 16 * 16 * 4)  # room for one full block only
    for w in windows:
        np.testing.assert_array_equal(small.read(w), plain.read(w))
    assert small.cached_bytes <= small.max_bytes


def test_uncompressed_scratch_gives_the_same_cog_bytes_as_a_compressed_one(tmp_path, monkeypatch):
    """Issue 13: small rasters skip compressing the scratch; the published COG is byte for byte the same."""
    import lsm_core.io as io_module

    data = _data(1)
    data[1, 3:9, 5:20] = np.nan
    written = {}
    for limit in (io_module.SCRATCH_RAW_MAX_BYTES, 0):  # raw scratch (default here), then a ZSTD one
        monkeypatch.setattr(io_module, "SCRATCH_RAW_MAX_BYTES", limit)
        path = tmp_path / f"scratch_limit_{limit}.tif"
        with RasterWriter(path, GRID, ["a", "b", "c"], block=16, tags={"k": "v"}) as w:
            for b in GRID.windows(16):
                r, c = b.write.toslices()
                w.write(data[:, r, c], b.write)
        written[limit] = path.read_bytes()
    assert len(set(written.values())) == 1
    np.testing.assert_array_equal(RasterFile(path).read(), data.astype(np.float32))


def test_a_cog_without_overviews_has_the_same_pixels_and_is_still_a_cog(tmp_path):
    """Issue 13: the factor stack and InSAR time series leave the overviews out (most of their write's CPU)."""
    big = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 405120, 2855120), 10)  # 512 x 512: room for overviews
    data = np.random.default_rng(2).normal(size=(2, *big.shape)).astype("float32")
    paths = {}
    for overviews in (True, False):
        with RasterWriter(tmp_path / f"ovr_{overviews}.tif", big, ["a", "b"], block=128, overviews=overviews) as w:
            w.write(data)
        paths[overviews] = w.path
    for overviews, path in paths.items():
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert bool(src.overviews(1)) is overviews
        np.testing.assert_array_equal(RasterFile(path).read(), data)
