"""`lsm add-area`: every file checked, a report of what will and will not be computed, area.yaml + partition."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import Point, box

from lsm_assets.cli import main
from lsm_core.area import load_area
from lsm_core.terrain import TERRAIN_BANDS

RSAGA = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "ecuador_rsaga"
CRS_UTM = "EPSG:32717"


def _dem(path: Path, crs: str | None = CRS_UTM) -> Path:
    """A 50 x 40 DEM of 10 m cells at x 700000..700500, y 9550000..9550400."""
    z = np.add.outer(np.arange(40.0), np.arange(50.0)).astype("float32")
    with rasterio.open(path, "w", driver="GTiff", width=50, height=40, count=1, dtype="float32", crs=crs,
                       transform=Affine(10, 0, 700000, 0, -10, 9550400), nodata=-9999) as dst:
        dst.write(z, 1)
    return path


def _invoke(data: Path, *args: str):
    return CliRunner().invoke(main, ["--data-root", str(data), "add-area", *map(str, args)])


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.mark.slow
def test_ecuador_rsaga_is_checked_and_reports_what_it_cannot_compute(home):
    assert (RSAGA / "dem.tif").is_file(), f"shared dataset not found at {RSAGA}: put ../shared beside the project"
    data = home / "data"
    out = _invoke(data, "ecuador", "--dem", RSAGA / "dem.tif", "--inventory", RSAGA / "landslides.csv",
                  "--inventory-label", "lslpts", "--boundary", RSAGA / "study_area.geojson")
    text = out.output
    assert "area ecuador: 383 x 415 cells of 10 m, EPSG:32717; 175 events" in text
    assert "terrain factors from the DEM: slope_deg, northness" in text and "negative strategies: random, buffer" in text
    assert "insar_pu" not in text.split("will not compute:")[0]
    assert "POR / LOR: not computable: the inventory has no dates" in text
    assert "no InSAR data for this area (--insar): the velocity is left out and InSAR-PU skipped" in text
    assert "distance decay to faults: no faults layer given" in text
    # no InSAR and no dates: the pipeline needs a monitoring period (--period); refused, with why, nothing written
    assert out.exit_code == 3 and "NOT WRITTEN" in text and "--period YYYYMM-YYYYMM" in text
    assert not data.exists()


def test_a_complete_area_is_written_registered_and_loads(home, demo_data):
    src = demo_data / "study_areas" / "karst"
    cfg = load_area(src)
    data = home / "data"
    insar = home / "insar"
    for d in (demo_data / "incoming" / "insar" / "karst").iterdir():  # the user's own deliveries, for area "karst2"
        shutil.copytree(d, insar / d.name)
        spec = yaml.safe_load((insar / d.name / "delivery.yaml").read_text())
        (insar / d.name / "delivery.yaml").write_text(yaml.safe_dump({**spec, "area": "karst2"}))
    layers = [a for k in ("faults", "rivers", "roads", "buildings", "mining", "rainfall") for a in (f"--{k}",
                                                                                                      cfg.layers[k])]
    ndvi = [a for s in cfg.ndvi for a in ("--ndvi", f"{s.date}={s.path}")]
    out = _invoke(data, "karst2", "--dem", cfg.layers["dem"], "--inventory", cfg.layers["inventory"],
                  "--lithology", cfg.layers["lithology"], "--lithology-field", "unit_code", *layers, *ndvi,
                  "--insar", insar)
    assert out.exit_code == 0, out.output
    new = load_area(data / "study_areas" / "karst2")
    assert new.crs == cfg.crs and new.resolution_m == cfg.resolution_m
    assert new.layers["faults"] == cfg.layers["faults"].resolve() and len(new.ndvi) == len(cfg.ndvi)
    assert "POR / LOR on events dated after each period" in out.output and "accepted, period" in out.output
    instance = dg.DagsterInstance.get()
    assert "karst2" in instance.get_dynamic_partitions("study_area")
    again = _invoke(data, "karst2", "--dem", cfg.layers["dem"], "--inventory", cfg.layers["inventory"])
    assert again.exit_code == 2 and "study area 'karst2' exists" in again.output


# -- bad input: the file and the layer or column named, nothing written --------------------------------------

def _points(path: Path, xy, crs=CRS_UTM, **columns) -> Path:
    gpd.GeoDataFrame(columns, geometry=[Point(x, y) for x, y in xy], crs=crs).to_file(path)
    return path


def test_dem_without_crs(home):
    dem = _dem(home / "dem.tif", crs=None)
    inv = _points(home / "inv.gpkg", [(700100, 9550100)])
    out = _invoke(home / "data", "a", "--dem", dem, "--inventory", inv)
    assert out.exit_code == 2 and f"error: {dem}: the DEM raster has no CRS" in out.output
    assert not (home / "data").exists()


def test_inventory_in_another_crs_is_reprojected_not_rejected(home):
    dem = _dem(home / "dem.tif")
    lonlat = gpd.GeoSeries([Point(700100, 9550100), Point(700300, 9550250)], crs=CRS_UTM).to_crs("EPSG:4326")
    inv = _points(home / "inv.geojson", [(p.x, p.y) for p in lonlat], crs="EPSG:4326")
    out = _invoke(home / "data", "a", "--dem", dem, "--inventory", inv)
    assert "2 events (reprojected from EPSG:4326)" in out.output
    assert out.exit_code == 3  # checked and reported; the synthetic area lacks the other layers


def test_inventory_outside_the_dem(home):
    dem = _dem(home / "dem.tif")
    inv = _points(home / "inv.gpkg", [(700100, 9550100), (710000, 9550100)])
    out = _invoke(home / "data", "a", "--dem", dem, "--inventory", inv)
    assert out.exit_code == 2
    assert f"{inv}: 1 of 2 events lie outside the DEM dem.tif" in out.output and "(710000, 9550100)" in out.output


def test_csv_inventory_without_the_named_columns(home):
    dem = _dem(home / "dem.tif")
    inv = home / "inv.csv"
    inv.write_text("east,north\n700100,9550100\n")
    out = _invoke(home / "data", "a", "--dem", dem, "--inventory", inv)
    assert out.exit_code == 2 and f"{inv}: the inventory has no columns ['x', 'y']" in out.output


def test_inventory_dates_that_do_not_parse(home):
    dem = _dem(home / "dem.tif")
    inv = _points(home / "inv.gpkg", [(700100, 9550100), (700200, 9550200)], event_date=["2020-01-05", "soon"])
    out = _invoke(home / "data", "a", "--dem", dem, "--inventory", inv)
    assert out.exit_code == 2 and "date column 'event_date' has values that do not parse as dates: ['soon']" in out.output


def test_lithology_without_the_named_field(home):
    dem = _dem(home / "dem.tif")
    inv = _points(home / "inv.gpkg", [(700100, 9550100)])
    litho = home / "litho.gpkg"
    gpd.GeoDataFrame({"rock": [1]}, geometry=[box(700000, 9550000, 700500, 9550400)], crs=CRS_UTM).to_file(litho)
    out = _invoke(home / "data", "a", "--dem", dem, "--inventory", inv, "--lithology", litho,
                  "--lithology-field", "unit_code")
    assert out.exit_code == 2 and f"{litho}: the lithology layer has no column 'unit_code'" in out.output
    assert "['rock']" in out.output


@pytest.mark.slow
def test_ecuador_rsaga_dem_only_run_from_terrain_to_prone_areas(home):
    """The real 10 m DEM and 175 landslide points: terrain factors -> models -> map -> t* -> prone areas."""
    assert (RSAGA / "dem.tif").is_file(), f"shared dataset not found at {RSAGA}: put ../shared beside the project"
    out_dir = home / "run"
    out = _invoke(home / "data", "ecuador", "--dem", RSAGA / "dem.tif", "--inventory", RSAGA / "landslides.csv",
                  "--inventory-label", "lslpts", "--boundary", RSAGA / "study_area.geojson", "--dem-only", out_dir,
                  "--models", "logistic_regression,lightgbm", "--repeats", "2")
    assert out.exit_code == 0, out.output
    text = out.output
    assert "samples: 175 landslide pixels, 175 random pixels inside the area" in text
    lr = float(re.search(r"^\s+logistic_regression\s+([0-9.]+) \(", text, re.M).group(1))
    assert lr == pytest.approx(0.77, abs=0.04)  # the book's GLM on the same area (its own terrain attributes, 350 points)
    assert "POR / LOR: not computable: the inventory has no dates" in text
    with rasterio.open(out_dir / "terrain_factors.tif") as src:
        assert src.count == len(TERRAIN_BANDS) and src.crs.to_string() == CRS_UTM and (src.width, src.height) == (383, 415)
    with rasterio.open(out_dir / "susceptibility.tif") as src:
        p = src.read(1)
        assert np.nanmin(p) >= 0 and np.nanmax(p) <= 1 and np.isfinite(p).sum() > 90_000
    with rasterio.open(out_dir / "prone_areas.tif") as src:
        prone = src.read(1)
        assert set(np.unique(prone)) <= {0, 1, 255} and (prone == 1).sum() > 0
    polygons = gpd.read_file(out_dir / "prone_areas.gpkg")
    assert len(polygons) > 0 and polygons.crs.to_string() == CRS_UTM
    assert not (home / "data").exists()  # a DEM-only run writes only to its own folder


# -- incomplete areas are registered for the Dagster graph -------------------------------------------------

def test_a_dated_inventory_without_insar_gets_the_period_its_dates_span(home):
    dem = _dem(home / "dem.tif")
    inv = _points(home / "inv.gpkg", [(700100, 9550100), (700300, 9550250)], event_id=["a", "b"],
                  event_date=["2020-01-05", "2021-03-20"])
    data = home / "data"
    out = _invoke(data, "mini", "--dem", dem, "--inventory", inv)
    assert out.exit_code == 0, out.output
    raw = yaml.safe_load((data / "study_areas" / "mini" / "area.yaml").read_text())
    assert raw["periods"] == ["202001-202103"] and raw["parameters"]["inventory_has_dates"] is True
    assert raw["layers"]["inventory"] == str(inv.resolve())  # readable as is: the user's file stays the source
    assert "periods of mini: 202001-202103" in out.output
    assert "202001-202103" in dg.DagsterInstance.get().get_dynamic_partitions("period")


def test_an_undated_inventory_needs_a_period_and_is_normalised(home):
    dem = _dem(home / "dem.tif")
    inv = home / "inv.csv"
    inv.write_text("x,y,slide\n700100,9550100,1\n700300,9550250,0\n700200,9550300,1\n")
    data = home / "data"
    bad = _invoke(data, "mini", "--dem", dem, "--inventory", inv, "--inventory-label", "slide", "--period", "2020")
    assert bad.exit_code == 2 and "period key '2020' is not of the form YYYYMM-YYYYMM" in bad.output
    assert not data.exists()
    out = _invoke(data, "mini", "--dem", dem, "--inventory", inv, "--inventory-label", "slide", "--period",
                  "201901-201912")
    assert out.exit_code == 0, out.output
    cfg = load_area(data / "study_areas" / "mini")
    assert cfg.parameters["inventory_has_dates"] is False
    events = gpd.read_file(cfg.layers["inventory"])
    # the two labelled rows only, with generated ids and the period's first day standing in for the dates
    assert list(events["event_id"]) == ["ev0001", "ev0002"] and set(events["event_date"].astype(str)) == {"2019-01-01"}
    assert "POR / LOR: not computable: the inventory has no dates" in out.output
