"""End to end on a small synthetic world: register partitions, materialize the graph in a real instance."""

import shutil

import dagster as dg
import numpy as np
import pytest

from lsm_assets.definitions import defs
from lsm_assets.materialize import materialize_all, resources_for
from lsm_assets.partitions import area_period_key, area_period_partitions
from lsm_assets.registry import register
from lsm_core import catalog
from lsm_core.io import RasterFile
from lsm_core.synthetic import generate_demo

SCALE = 0.12  # ~ 100k pixels per area: the whole graph in a few minutes
FAST_MODELS = ["logistic_regression", "random_forest", "lightgbm"]
# the full six-model experiment runs in `make demo`; here three models keep the suite short
RUN_CONFIG = {"ops": {
    "negative_samples": {"config": {"pu_ablation": True}},  # the ablation end to end, as the thorough preset runs it
    "trained_models": {"config": {"models": FAST_MODELS, "max_samples_per_class": 600}},
    "shap_importance": {"config": {"models": FAST_MODELS, "n_explain": 100, "n_bootstrap": 3}},
    "susceptibility_map": {"config": {"scheduler_address": "serial"}},
}}


@pytest.fixture(scope="module")
def pristine_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_demo(root, seed=7, scale=SCALE)
    return root


@pytest.fixture(scope="module")
def materialized(pristine_world, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    shutil.copytree(pristine_world, data, dirs_exist_ok=True)
    with dg.instance_for_test() as instance:
        reg = register(instance, data)
        seen = []  # what a progress bar is told, as each run finishes
        results = materialize_all(defs, instance, reg, data, run_config=RUN_CONFIG, on_done=seen.append)
        assert sorted(r.run_id for r in seen) == sorted(r.run_id for r in results)
        yield data, instance, reg, results


@pytest.mark.integration
def test_every_partition_materializes(materialized):
    data, instance, reg, results = materialized
    assert reg.areas == ("karst", "loess") and len(reg.pairs) == 4 and not reg.rejected
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    # area runs first, then one run per (area, period), all in the test's instance (side by side in workers)
    assert [r.partition_key for r in results] == ["karst", "loess",
                                                  *(str(area_period_key(a, p)) for a in reg.areas
                                                    for a2, p in reg.pairs if a2 == a)]
    runs = {r.run_id: instance.get_run_by_id(r.run_id) for r in results}
    assert all(run is not None and run.tags["dagster/partition"] == r.partition_key
               for r, run in zip(results, runs.values(), strict=True))
    assert set(instance.get_dynamic_partitions("study_area")) == {"karst", "loess"}
    for area, period in reg.pairs:
        stack = RasterFile(data / "warehouse" / "factor_stack" / area / f"{period}.tif")
        assert stack.names[-1] == "velocity_mm_yr" and "lithology" in stack.names
        assert 0.5 < np.isfinite(stack.read(bands=[1])).mean() <= 1
    # accepted deliveries moved to the archive, nothing left in incoming
    assert not any((data / "incoming" / "insar").rglob("delivery.yaml"))
    assert len(list((data / "archive" / "insar").rglob("delivery.yaml"))) == 4


@pytest.mark.integration
def test_inventory_lands_in_duckdb_once(materialized):
    data, instance, reg, _ = materialized
    import geopandas as gpd

    source = gpd.read_file(data / "study_areas" / "karst" / "inventory.gpkg")
    with catalog.connect(data / "warehouse" / "lsm.duckdb") as con:
        n = con.execute("SELECT count(*) FROM landslide_events WHERE area = 'karst'").fetchone()[0]
    assert n == len(source)
    again = dg.materialize(defs.assets, selection=["landslide_inventory"], partition_key="karst", instance=instance,
                           resources=resources_for(data))
    meta = again.asset_materializations_for_node("landslide_inventory")[0].metadata
    assert meta["added"].value == 0 and meta["events"].value == len(source)


@pytest.mark.integration
def test_a_period_the_area_has_no_delivery_for_is_skipped_with_its_reason(materialized):
    data, instance, reg, _ = materialized
    missing = next(p for p in reg.periods if ("loess", p) not in reg.pairs)
    key = str(area_period_key("loess", missing))
    period_assets = [k for a in defs.assets for k in a.keys if a.partitions_def == area_period_partitions]
    # what "Materialize all" launches for the combination: every area x period asset and its checks
    result = dg.materialize([*defs.assets, *defs.asset_checks], selection=period_assets, partition_key=key,
                            instance=instance, resources=resources_for(data), run_config=RUN_CONFIG)
    assert result.success
    assert result.get_asset_materialization_events() == []
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert {"factor_stack", "trained_models", "prone_area_evaluation"} <= skipped
    for asset in ("deformation_rate", "environment_factors"):
        obs = instance.fetch_observations(dg.AssetKey(asset), limit=10).records
        reasons = [o.asset_observation.metadata["reason"].value for o in obs if o.partition_key == key]
        assert reasons and "no accepted InSAR delivery" in reasons[0] and missing in reasons[0]
    assert not list((data / "warehouse").rglob(f"loess/{missing}*"))


def _hazard_at(data, area, df):
    from lsm_core.io import RasterFile

    hz = RasterFile(data / "study_areas" / area / "truth" / "hazard.tif").read()[0]
    return float(hz[df["row"].to_numpy(), df["col"].to_numpy()].mean())


@pytest.mark.integration
def test_insar_pu_negatives_are_safer_than_random_ones_against_truth(materialized):
    import geopandas as gpd

    from lsm_core.sampling import training_negatives

    data, _, reg, _ = materialized
    for area, period in reg.pairs:
        neg = gpd.read_parquet(data / "warehouse" / "negative_samples" / area / f"{period}.parquet")
        # each strategy's own draw (not its spatial-CV fold draws, not the yardstick's area sample)
        by = {s: _hazard_at(data, area, d) for s, d in training_negatives(neg).groupby("strategy")}
        assert set(by) == {"random", "buffer", "insar_pu", "pu"}
        assert by["insar_pu"] < 0.75 * by["random"], (area, period, by)


@pytest.mark.integration
def test_models_maps_thresholds_and_evaluation(materialized):
    import duckdb
    import pandas as pd

    data, instance, reg, _ = materialized
    area, period = reg.pairs[0]
    wh = data / "warehouse"
    comp = pd.read_parquet(wh / "model_comparison" / area / f"{period}.parquet")
    assert len(comp) == 4 * len(FAST_MODELS) and comp["spatial_cv_auc"].between(0.5, 1).all()
    assert comp["prediction_rate_auc"].notna().all() and comp["yardstick_auc"].between(0.5, 1).all()
    # the map's model is the best yardstick AUC of any strategy, recorded with the runner-up
    chosen = comp[comp["map_choice"] == "selected"]
    assert len(chosen) == 1 and (comp["map_choice"] == "runner_up").sum() == 1
    assert chosen["yardstick_auc"].iloc[0] == comp["yardstick_auc"].max()
    tags = RasterFile(wh / "susceptibility_map" / area / f"{period}.tif").tags
    assert (tags["strategy"], tags["model_name"]) == (chosen["strategy"].iloc[0], chosen["model"].iloc[0])
    prob = RasterFile(wh / "susceptibility_map" / area / f"{period}.tif").read()[0]
    ok = np.isfinite(prob)
    assert ok.mean() > 0.5 and prob[ok].min() >= 0 and prob[ok].max() <= 1
    curve = pd.read_parquet(wh / "js_threshold" / area / f"{period}.parquet")
    t_star = float(curve.loc[curve["is_argmin"], "threshold_pct"].iloc[0])
    assert 1 <= t_star <= 99 and curve["d"].min() == curve.loc[curve["is_argmin"], "d"].iloc[0]
    prone = RasterFile(wh / "prone_areas" / area / f"{period}.tif").read()[0]
    assert set(np.unique(prone[np.isfinite(prone)])) <= {0, 1}
    assert (wh / "prone_areas" / area / f"{period}.gpkg").exists()
    ev = pd.read_parquet(wh / "prone_area_evaluation" / area / f"{period}.parquet")
    assert ev["threshold_name"].tolist() == ["adaptive_js", "fixed_50", "natural_breaks_high"]
    assert ev["TA"].between(0, 1).all() and np.allclose(ev["POR"] + ev["LOR"], 1)
    rate = pd.read_parquet(wh / "prone_area_evaluation" / area / f"{period}__prediction_rate.parquet")
    assert rate["area_share"].is_monotonic_increasing and rate["event_share"].is_monotonic_increasing
    con = duckdb.connect(str(wh / "lsm.duckdb"), read_only=True)
    try:
        history = con.execute("SELECT count(*) FROM prone_area_evaluation").fetchone()[0]
        cont = con.execute("SELECT sum(count) FROM deformation_susceptibility_contingency "
                           "WHERE area = ? AND period = ? AND \"table\" = 'susceptibility' AND mapped",
                           [area, period]).fetchone()[0]
    finally:
        con.close()
    assert history == 3 * len(reg.pairs)
    assert cont == int(ok.sum())


@pytest.mark.integration
def test_asset_checks_ran_with_their_assets(materialized):
    data, instance, reg, _ = materialized
    area, period = reg.pairs[0]
    key = str(area_period_key(area, period))
    found = {}
    for asset, check in [("factor_stack", "grid_alignment"), ("factor_stack", "nodata_share"),
                         ("factor_stack", "vif_below_limit"), ("terrain_factors", "grid_alignment"),
                         ("negative_samples", "sample_balance"), ("model_comparison", "spatial_cv_auc_floor"),
                         ("prone_area_evaluation", "ta_floor"), ("prone_area_evaluation", "lor_not_rising")]:
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(asset), check), limit=20)
        evals = [r.event.dagster_event.event_specific_data for r in records if r.event and r.event.dagster_event]
        # a skipped combination leaves planned-but-skipped check records (no evaluation) in the history too
        mine = [e for e in evals if isinstance(e, dg.AssetCheckEvaluation) and e.partition in (key, area)]
        assert mine, (asset, check)
        found[(asset, check)] = mine[0]
    assert found[("factor_stack", "grid_alignment")].passed and found[("terrain_factors", "grid_alignment")].passed
    assert found[("negative_samples", "sample_balance")].passed
    assert found[("prone_area_evaluation", "lor_not_rising")].passed  # one evaluation: nothing can be rising yet
    assert "message" in found[("factor_stack", "vif_below_limit")].metadata


@pytest.mark.integration
def test_partitions_run_side_by_side_in_processes_and_every_catalog_row_is_there(materialized):
    """The area x period runs went to worker processes at the same time, all writing the one DuckDB file."""
    data, instance, reg, results = materialized
    pair_runs = [instance.get_run_record_by_id(r.run_id) for r in results if "|" in r.partition_key]
    spans = sorted((r.start_time, r.end_time) for r in pair_runs)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)), "no two runs overlapped"
    pids = {e.dagster_event.pid for r in pair_runs for e in instance.all_logs(r.dagster_run.run_id)
            if e.dagster_event and e.dagster_event.pid}
    assert len(pids) >= 2, pids
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        for table in ("trained_models", "model_comparison", "shap_importance", "js_threshold",
                      "deformation_susceptibility_contingency", "prone_area_evaluation"):
            have = set(con.execute(f"SELECT DISTINCT area, period FROM {table}").fetchall())
            assert have == set(reg.pairs), table
        n = dict(con.execute("SELECT area, count(*) FROM landslide_events GROUP BY area").fetchall())
        n_rev = dict(con.execute("SELECT area, count(*) FROM landslide_event_revisions GROUP BY area").fetchall())
    assert n == n_rev and set(n) == set(reg.areas)


@pytest.mark.integration
def test_plots_are_inline_in_the_materialization_metadata(materialized):
    import base64
    import re

    data, instance, reg, _ = materialized
    area, period = reg.pairs[0]
    key = str(area_period_key(area, period))
    for asset, entry in [("model_comparison", "roc_curves"), ("shap_importance", "shap_summary"),
                         ("js_threshold", "js_curve"), ("prone_areas", "map_preview"),
                         ("prone_area_evaluation", "history"),
                         ("deformation_susceptibility_contingency", "contingency_matrix")]:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1).records
        meta = records[0].asset_materialization.metadata if records else event.asset_materialization.metadata
        md = meta[entry].value
        images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", md)
        assert images, (asset, entry)
        assert all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in images), (asset, entry)


@pytest.mark.integration
def test_lsm_report_and_status_read_the_catalog(materialized):
    import json

    from click.testing import CliRunner

    from lsm_assets.cli import main
    from lsm_core.report import REPORT_KEYS

    data, instance, reg, _ = materialized
    runner = CliRunner()
    for area, period in reg.pairs:
        out = runner.invoke(main, ["--data-root", str(data), "report", area, period, "--json"])
        assert out.exit_code == 0, out.output
        rep = json.loads(out.output)
        assert tuple(rep) == REPORT_KEYS and rep["area"] == area and rep["period"] == period
        assert {m["strategy"] for m in rep["models"]} == {"random", "buffer", "insar_pu", "pu"}
        assert 0 < rep["t_star_pct"] < 100 and "/" in rep["map_model"]
        assert {e["threshold_name"] for e in rep["evaluation"]} >= {"adaptive_js", "fixed_50"}
        assert len(rep["history"]) >= 1 and rep["contingency"]["consistency_score"] is not None
    missing = runner.invoke(main, ["--data-root", str(data), "report", "karst", "209901-209912"])
    assert missing.exit_code == 2 and "nothing in the catalog" in missing.output

    # a quarantined drop and a new inventory ingest show up in the status, with their reasons
    (data / "quarantine" / "insar" / "karst").mkdir(parents=True, exist_ok=True)
    (data / "quarantine" / "insar" / "karst" / "bad_drop").mkdir(exist_ok=True)
    (data / "quarantine" / "insar" / "karst" / "bad_drop.reason.txt").write_text("timeseries.tif: 0 bytes\n")
    out = runner.invoke(main, ["--data-root", str(data), "status", "--json"])
    assert out.exit_code == 0, out.output
    st = json.loads(out.output)
    assert st["areas"] == ["karst", "loess"]
    assert {(a, p) for a, ps in st["periods"].items() for p in ps} == set(reg.pairs)
    assert {"path": "quarantine/insar/karst/bad_drop", "reason": "timeseries.tif: 0 bytes"} in st["quarantined"]
    assert all(s["reason"] for s in st["stale"])
    human = runner.invoke(main, ["--data-root", str(data), "status"])
    assert human.exit_code == 0 and "bad_drop: timeseries.tif: 0 bytes" in human.output


@pytest.mark.integration
def test_a_moved_data_root_still_loads(materialized, monkeypatch):
    from pathlib import Path

    from lsm_assets.resources import default_data_root

    data, instance, reg, _ = materialized
    area, period = reg.pairs[0]
    moved = data.with_name(data.name + "_moved")
    data.rename(moved)  # the old root is gone: any absolute path into it would fail
    try:
        monkeypatch.setenv("LSM_DATA_ROOT", str(moved))
        downstream = ["model_comparison", "shap_importance", "susceptibility_map", "js_threshold", "prone_areas",
                      "prone_area_evaluation", "deformation_susceptibility_contingency"]
        result = dg.materialize(defs.assets, selection=downstream, partition_key=str(area_period_key(area, period)),
                                instance=instance, resources=resources_for(default_data_root()),
                                run_config={"ops": {k: v for k, v in RUN_CONFIG["ops"].items() if k in downstream}},
                                raise_on_error=False)
        assert result.success, [e.event_specific_data for e in result.all_events if e.event_type_value ==
                                "STEP_FAILURE"]
        with catalog.connect(moved / "warehouse" / "lsm.duckdb", read_only=True) as con:
            stored = [p for (p,) in con.execute("SELECT model_path FROM trained_models").fetchall()]
        assert stored and not any(Path(p).is_absolute() for p in stored)
        assert str(data) not in (moved / "warehouse" / "study_area_grid" / f"{area}.json").read_text()
    finally:
        moved.rename(data)
