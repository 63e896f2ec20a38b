"""Incomplete areas from `lsm add-area` through the Dagster asset graph (issue 11).

The must-show: the real Ecuador area (10 m DEM, 175 landslide points, outline; no other layer, no
InSAR, no dates) added with `lsm add-area --period` and materialized in a real Dagster instance from
terrain factors to prone areas and their evaluation. Missing layers are left out of the stack and
named in the metadata, InSAR-PU is skipped with the reason, POR / LOR are "not computable".
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import rasterio
from click.testing import CliRunner

from lsm_assets.cli import main
from lsm_assets.definitions import defs
from lsm_assets.materialize import run_partition
from lsm_assets.partitions import area_period_key
from lsm_assets.registry import register
from lsm_core.area import load_area
from lsm_core.area_scope import NO_DATES_STATUS, OPTIONAL_LAYERS, missing_layers
from lsm_core.terrain import TERRAIN_BANDS

from .test_add_area import RSAGA

PERIOD = "200001-200012"  # a stand-in monitoring period: the inventory has no dates, the area no InSAR
# Small config so that the run fits CI in about two minutes: random and buffer negatives are drawn (insar_pu is
# asked for, to show it skipped; the velocity-free `pu` ablation is left out), the six models are trained on the
# random ones (the book's setting; each strategy costs 6 models x 5 folds of nested tuning), SHAP (which only
# the importance weighting of the threshold needs) for the two tree models. `lsm materialize` runs the defaults.
DRAWN, STRATEGIES = ["random", "buffer"], ["random"]
RUN_CONFIG = {"ops": {
    "negative_samples": {"config": {"strategies": [*DRAWN, "insar_pu"], "seed": 0}},
    "trained_models": {"config": {"strategies": STRATEGIES, "seed": 0}},
    "shap_importance": {"config": {"models": ["random_forest", "lightgbm"], "n_explain": 100, "n_bootstrap": 2}},
    "susceptibility_map": {"config": {"scheduler_address": "serial"}},
}}


def _meta(instance: dg.DagsterInstance, asset: str, key: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None, f"{asset} not materialized"
    assert event.asset_materialization.partition == key
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def ecuador(tmp_path_factory):
    assert (RSAGA / "dem.tif").is_file(), f"shared dataset not found at {RSAGA}: put ../shared beside the project"
    home = tmp_path_factory.mktemp("ecuador")
    data = home / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    (home / "dagster_home").mkdir()
    try:
        out = CliRunner().invoke(main, ["--data-root", str(data), "add-area", "ecuador", "--dem", str(RSAGA / "dem.tif"),
                                        "--inventory", str(RSAGA / "landslides.csv"), "--inventory-label", "lslpts",
                                        "--boundary", str(RSAGA / "study_area.geojson"), "--period", PERIOD])
    finally:
        mp.undo()
    assert out.exit_code == 0, out.output
    with dg.instance_for_test() as instance:
        reg = register(instance, data)
        key = str(area_period_key("ecuador", PERIOD))
        area_run = run_partition(defs, instance, data, "ecuador")
        assert area_run.success, area_run.error
        pair_run = run_partition(defs, instance, data, key, RUN_CONFIG)
        assert pair_run.success, pair_run.error
        for run in (area_run, pair_run):  # where the time goes (CI budget)
            steps = instance.get_run_step_stats(run.run_id)
            print(run.partition_key, ", ".join(f"{s.step_key} {s.end_time - s.start_time:.0f}s" for s in steps
                                               if s.end_time and s.start_time))
        yield data, instance, reg, key, out.output


@pytest.mark.slow
def test_add_area_writes_an_incomplete_area_with_its_period(ecuador):
    data, _, reg, _, text = ecuador
    assert "wrote" in text and "undated: counted as known from the period's start" in text
    cfg = load_area(data / "study_areas" / "ecuador")
    assert missing_layers(cfg) == OPTIONAL_LAYERS and cfg.parameters["inventory_has_dates"] is False
    assert ("ecuador", PERIOD) in reg.pairs
    inventory = _meta(ecuador[1], "landslide_inventory", "ecuador")
    assert inventory["events"] == 175 and inventory["event_dates"].startswith("none in the inventory")


@pytest.mark.slow
def test_ecuador_runs_through_dagster_from_terrain_to_prone_areas(ecuador):
    data, instance, _, key, _ = ecuador
    stack = _meta(instance, "factor_stack", key)
    # only the terrain factors: every optional layer and the velocity are left out, and the metadata says why
    assert stack["factors"] == ", ".join(TERRAIN_BANDS)
    assert stack["missing_layers"] == ", ".join(OPTIONAL_LAYERS)
    assert "| velocity_mm_yr | no InSAR" in stack["factors_left_out"]
    for factor in ("lithology", "rainfall_mm_yr", "faults", "valleys", "roads"):
        assert f"| {factor} | no " in stack["factors_left_out"]
    assert "| environment |" not in stack["factors_left_out"]  # a placeholder, not a factor
    deformation = _meta(instance, "deformation_rate", key)
    assert deformation["status"] == "no InSAR"
    with rasterio.open(data / "warehouse" / "factor_stack" / "ecuador" / f"{PERIOD}.tif") as src:
        assert src.count == len(TERRAIN_BANDS) and (src.width, src.height) == (383, 415)
        assert np.isfinite(src.read(1)).sum() > 90_000

    positives = _meta(instance, "positive_samples", key)
    assert positives["landslides"] == 175
    negatives = _meta(instance, "negative_samples", key)
    assert set(negatives["skipped_strategies"]) == {"insar_pu"}
    assert "no velocity_mm_yr band" in negatives["skipped_strategies"]["insar_pu"]
    assert negatives["n_random"] == negatives["n_buffer"] == positives["pixels"]

    models = pd.read_parquet(data / "warehouse" / "trained_models" / "ecuador" / f"{PERIOD}.parquet")
    assert list(models["strategy"].unique()) == STRATEGIES and len(models) == 6
    auc = models.set_index(["strategy", "model"])["spatial_cv_auc"]
    print("\nspatial-CV AUROC on Ecuador through Dagster (own negatives; yardstick: held-out landslides vs the "
          "area; book: GLM 0.77)\n" + models.set_index(["strategy", "model"])[["spatial_cv_auc", "yardstick_auc"]]
          .round(3).to_string())
    # the book's GLM reaches 0.77 on the same area with random absences; ours within a few hundredths
    assert auc[("random", "logistic_regression")] == pytest.approx(0.77, abs=0.05)
    assert auc.loc["random"].max() > 0.75

    prone = _meta(instance, "prone_areas", key)
    assert prone["polygons"] > 0 and 0 < prone["prone_share"] < 0.6
    with rasterio.open(data / "warehouse" / "prone_areas" / "ecuador" / f"{PERIOD}.tif") as src:
        assert (src.read(1) == 1).sum() > 0

    evaluation = _meta(instance, "prone_area_evaluation", key)
    assert evaluation["POR"] == evaluation["LOR"] == NO_DATES_STATUS
    # the prone class holds a larger share of the landslide pixels than of the area: better than chance
    assert prone["prone_share"] < evaluation["TA"] <= 1
    table = pd.read_parquet(data / "warehouse" / "prone_area_evaluation" / "ecuador" / f"{PERIOD}.parquet")
    assert table["POR"].isna().all() and (table["status"] == NO_DATES_STATUS).all()
    contingency = _meta(instance, "deformation_susceptibility_contingency", key)
    assert contingency["status"] == "not computable" and "no InSAR" in contingency["reason"]


@pytest.mark.integration
def test_partial_layers_enter_the_stack_and_the_others_are_named(tmp_path, monkeypatch):
    """Faults and rainfall given, a dated inventory, no InSAR: up to factor_stack through Dagster."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from .test_add_area import _dem, _points

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    dem = _dem(tmp_path / "dem.tif")
    rows, cols = np.mgrid[0:40, 0:50]
    with rasterio.open(dem, "r+") as dst:  # hills, so that no terrain factor is constant (VIF needs variance)
        dst.write((200 + 30 * np.sin(cols / 6.0) * np.cos(rows / 5.0) + 2.0 * rows).astype("float32"), 1)
        profile = dst.profile
    with rasterio.open(tmp_path / "rain.tif", "w", **profile) as dst:
        dst.write((2000.0 + 4.0 * cols + rows)[None].astype("float32"))
    gpd.GeoDataFrame(geometry=[LineString([(700000, 9550200), (700500, 9550220)])],
                     crs="EPSG:32717").to_file(tmp_path / "faults.gpkg")
    inv = _points(tmp_path / "inv.gpkg", [(700100, 9550100), (700300, 9550250)], event_id=["a", "b"],
                  event_date=["2020-01-05", "2021-03-20"])
    data = tmp_path / "data"
    out = CliRunner().invoke(main, ["--data-root", str(data), "add-area", "mini", "--dem", str(dem), "--inventory",
                                    str(inv), "--faults", str(tmp_path / "faults.gpkg"), "--rainfall",
                                    str(tmp_path / "rain.tif")])
    assert out.exit_code == 0, out.output
    key = str(area_period_key("mini", "202001-202103"))  # the months the inventory's dates span
    with dg.instance_for_test() as instance:
        register(instance, data)
        assert run_partition(defs, instance, data, "mini").success
        run = run_partition(defs, instance, data, key, selection=["environment_factors", "deformation_rate",
                                                                  "factor_stack"])
        assert run.success, run.error
        stack = _meta(instance, "factor_stack", key)
        proximity = _meta(instance, "proximity_factors", "mini")
    assert stack["factors"] == ", ".join([*TERRAIN_BANDS, "faults", "rainfall_mm_yr"])
    assert stack["missing_layers"] == "lithology, rivers, roads, buildings, mining, ndvi"
    assert "| lithology | no lithology layer in area.yaml |" in stack["factors_left_out"]
    assert "| velocity_mm_yr | no InSAR" in stack["factors_left_out"]
    assert proximity["factors"] == "faults" and "| roads | no roads layer in area.yaml |" in proximity["factors_left_out"]
    with rasterio.open(data / "warehouse" / "factor_stack" / "mini" / "202001-202103.tif") as src:
        rain = src.read(src.count)
    assert np.nanmin(rain) >= 2000 and np.nanmax(rain) <= 2000 + 4 * 49 + 39
