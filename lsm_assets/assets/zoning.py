"""Susceptibility map, adaptive JS threshold, prone areas and their evaluation (DESIGN 4, zoning rows)."""

import json

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import Field

from lsm_assets.metadata import image
from lsm_assets.partitions import area_of, area_period_partitions, period_of
from lsm_assets.resources import DuckDBCatalog, LsmPaths
from lsm_core import area_scope, calibration, catalog, contingency, evaluation, predict, prone, threshold
from lsm_core.area import period_bounds
from lsm_core.calibration import Calibration
from lsm_core.experiment import best_per_strategy, select_model
from lsm_core.io import RasterFile, write_table
from lsm_core.models import load_model
from lsm_core.plots import plot_evaluation_history, plot_map_preview
from lsm_core.threshold import WeightScheme

COG = {"partitions_def": area_period_partitions, "io_manager_key": "cog_io_manager", "group_name": "zoning",
       "kinds": {"cog"}}
TABLE = {"partitions_def": area_period_partitions, "io_manager_key": "table_io_manager", "group_name": "zoning",
         "kinds": {"duckdb"}}


class SusceptibilityConfig(dg.Config):
    model: str = Field("auto", description="'auto' = the model of any strategy with the best yardstick "
                       "AUC (held-out landslides vs the area), or '<strategy>/<model>', e.g. 'random/gbdt'.")
    scheduler_address: str | None = Field(None, description="Address of an existing dask.distributed scheduler "
                                          "(national areas on many machines); None starts a local cluster; "
                                          "'serial' runs in-process.")
    block: int = Field(512, description="Window size in pixels (multiple of 16).")
    calibration: Calibration = Field("none", description="Calibrate the map's probabilities on the model's held-out "
                                     "(test split) positives against a uniform sample of the area's pixels, both "
                                     "weighted equally: 'isotonic', 'platt' or 'none'. Puts every model on one "
                                     "scale (0.5 = a score no more typical of landslides than of the area); the "
                                     "uncalibrated map is kept beside it.")
    calibration_area_sample: int = Field(20_000, description="Pixels of the uniform area sample for calibration.")
    seed: int = Field(0, description="Seed of the calibration's area sample.")


class ThresholdConfig(dg.Config):
    weighting: WeightScheme = Field("equal", description="Factor weights: equal, importance (mean |SHAP| of the "
                                    "mapped model) or expert (expert_ranking).")
    expert_ranking: list[str] = Field([], description="Factors from most to least important (weighting=expert).")
    factors: list[str] = Field([], description="Factors compared by JS (default: every band of the stack).")
    n_bins: int = Field(32, description="Equal-width bins of continuous factors.")
    step_pct: float = Field(1.0, description="Threshold step in percent (t = step .. 100 - step).")


class ProneConfig(dg.Config):
    opening_radius_px: int = Field(1, description="Radius of the morphological opening (removes specks), pixels.")
    closing_radius_px: int = Field(1, description="Radius of the morphological closing (fills holes), pixels.")
    min_area_m2: float = Field(prone.DEFAULT_MIN_AREA_M2, description="Clusters smaller than this are removed, m2.")


@dg.asset(description="Landslide probability (0..1) of every valid pixel from the selected model, mapped window by "
          "window on Dask.", **COG)
def susceptibility_map(context: dg.AssetExecutionContext, config: SusceptibilityConfig, paths: LsmPaths,
                       trained_models: pd.DataFrame, factor_stack: RasterFile) -> RasterFile:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    row = select_model(trained_models, config.model)
    model, meta = load_model(paths.root / row["model_path"])
    out = paths.output_path("susceptibility_map", area, period, "tif")
    raw = out if config.calibration == "none" else out.with_name(f"{period}__uncalibrated.tif")
    # which strategy and model drew the map travels in the map's own tags (js_threshold reads them)
    info = predict.predict_map(model, factor_stack.path, raw, feature_names=meta["feature_names"], block=config.block,
                               scheduler_address=config.scheduler_address,
                               tags={"strategy": row["strategy"], "model_name": row["model"],
                                     "model_path": row["model_path"]})
    extra = {}
    if config.calibration != "none":
        # held-out positives: the test split's landslides (whole landslides, never trained on)
        y, p = np.asarray(json.loads(row["test_y"])), np.asarray(json.loads(row["test_proba"]))
        cal = calibration.calibrate_map(raw, out, config.calibration, p[y == 1], n_area=config.calibration_area_sample,
                                        seed=config.seed, block=config.block)
        extra = {"calibration": config.calibration, "calibration_positives": cal.n_positive,
                 "calibration_area_pixels": cal.n_area, "uncalibrated_map": dg.MetadataValue.path(str(raw))}
    context.add_output_metadata({"model": f"{row['strategy']}/{row['model']}", "valid_pixels": info.valid_pixels,
                                 "mean_probability": info.mean_probability, "seconds": info.seconds,
                                 "scheduler": info.scheduler} | extra)
    return RasterFile(out)


@dg.asset(description="The D(t) curve for t = 1..99 %, its argmin t* (the adaptive threshold) and the weights.",
          **TABLE)
def js_threshold(context: dg.AssetExecutionContext, config: ThresholdConfig, paths: LsmPaths,
                 lsm_catalog: DuckDBCatalog, susceptibility_map: RasterFile, factor_stack: RasterFile,
                 positive_samples: gpd.GeoDataFrame, shap_importance: pd.DataFrame) -> pd.DataFrame:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    names = config.factors or factor_stack.names
    tags = susceptibility_map.tags
    if "strategy" not in tags or "model_name" not in tags:
        raise dg.Failure(f"{susceptibility_map.path} does not say which model drew it (a map from before the "
                         "model was tagged): materialize susceptibility_map again")
    used = {"strategy": tags["strategy"], "model": tags["model_name"]}
    # shares (importance / sum, unitless): the weights do not depend on the model's output scale
    imp = shap_importance[(shap_importance["model"] == used["model"]) &
                          (shap_importance["strategy"] == used["strategy"])].set_index("factor")["share"]
    weights = threshold.factor_weights(config.weighting, names, importance=imp.to_dict(),
                                       expert_ranking=config.expert_ranking)
    steps = np.arange(config.step_pct, 100.0, config.step_pct)
    curve = threshold.js_threshold_for_rasters(susceptibility_map.path, factor_stack.path,
                                               positive_samples[names].to_numpy(), factor_names=names,
                                               weights=weights, n_bins=config.n_bins, thresholds_pct=steps)
    plot = threshold.plot_js_curve(curve, paths.output_path("js_threshold", area, period, "png"))
    table = pd.DataFrame({"threshold_pct": curve.thresholds_pct, "d": curve.d, "n_pixels_above": curve.n_pixels_above,
                          "is_argmin": curve.thresholds_pct == curve.t_star_pct})
    for i, n in enumerate(curve.factor_names):
        table[f"js_{n}"] = curve.js_per_factor[:, i]
    summary = pd.DataFrame([{"t_star_pct": curve.t_star_pct, "d_min": float(np.nanmin(curve.d)),
                             "share_above_t_star": curve.share_above_t_star,
                             "t_star_at_grid_edge": curve.t_star_at_grid_edge,
                             "weighting": config.weighting, "model": f"{used['strategy']}/{used['model']}",
                             "weights": json.dumps(dict(zip(names, map(float, curve.weights), strict=True))),
                             "n_positive": curve.n_positive}])
    with lsm_catalog.connect(spatial=False) as con:
        catalog.replace_partition_rows(con, "js_threshold", summary, area, period)
    # t* at the grid's edge: D(t) may still fall beyond it, as on polarised maps (README, "Why t* sits ...")
    context.add_output_metadata({"t_star_pct": curve.t_star_pct, "d_min": float(np.nanmin(curve.d)),
                                 "share_above_t_star": curve.share_above_t_star,
                                 "t_star_at_grid_edge": curve.t_star_at_grid_edge,
                                 "weighting": config.weighting, "js_curve": image(plot, "D(t) and t*")})
    return table


def _t_star(js_threshold: pd.DataFrame) -> float:
    return float(js_threshold.loc[js_threshold["is_argmin"], "threshold_pct"].iloc[0]) / 100.0


@dg.asset(description="Landslide-prone areas: probability >= t*, opened, closed, small clusters removed; 0/1 COG "
          "and GeoPackage polygons (id, area, mean probability, mean |v|).", **COG)
def prone_areas(context: dg.AssetExecutionContext, config: ProneConfig, paths: LsmPaths,
                susceptibility_map: RasterFile, js_threshold: pd.DataFrame, deformation_rate: RasterFile) -> RasterFile:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    out = paths.output_path("prone_areas", area, period, "tif")
    info = prone.prone_areas(susceptibility_map.path, _t_star(js_threshold), out, out.with_suffix(".gpkg"),
                             opening_radius_px=config.opening_radius_px, closing_radius_px=config.closing_radius_px,
                             min_area_m2=config.min_area_m2, velocity_path=deformation_rate.path,
                             expected_grid=susceptibility_map.grid)
    context.add_output_metadata({"threshold": info.threshold, "polygons": info.n_polygons,
                                 "prone_share": info.prone_share, "prone_area_km2": info.prone_area_m2 / 1e6,
                                 "gpkg": dg.MetadataValue.path(info.gpkg),
                                 "map_preview": image(plot_map_preview(susceptibility_map.path, out,
                                                                       out.with_name(f"{period}__preview.png")),
                                                      "susceptibility map and prone areas")})
    return RasterFile(out)


@dg.asset(description="TA, POR, LOR and the map's prediction-rate AUC (map_prediction_rate_auc) for the adaptive "
          "threshold, a fixed 50 % threshold and natural breaks, stamped with the inventory state; appended to a "
          "history table. Events and positives on pixels without susceptibility are dropped from all, and counted.",
          **TABLE)
def prone_area_evaluation(context: dg.AssetExecutionContext, config: ProneConfig, paths: LsmPaths,
                          lsm_catalog: DuckDBCatalog, susceptibility_map: RasterFile, js_threshold: pd.DataFrame,
                          prone_areas: RasterFile, positive_samples: gpd.GeoDataFrame,
                          landslide_inventory: gpd.GeoDataFrame) -> pd.DataFrame:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    _, period_end = period_bounds(period)
    # the later events and the state the row records come from one read of the catalog, so they agree
    # even when an inventory update lands while this runs
    with lsm_catalog.connect() as con:
        state = catalog.inventory_state(con, area)
        later = catalog.read_events(con, area, landslide_inventory.crs, after=period_end)
    # an undated area: only dated updates are later events (its own events carry stand-in dates)
    later, no_por_lor = area_scope.scored_later_events(later, paths.area(area))
    rate = evaluation.prediction_rate_curve(susceptibility_map.path, later)
    curve_path = write_table(paths.output_path("prone_area_evaluation", area, period, "parquet").with_name(
        f"{period}__prediction_rate.parquet"), pd.DataFrame({"area_share": rate.area_share,
                                                            "event_share": rate.event_share}))
    rows = evaluation.evaluate_thresholds(
        susceptibility_map.path, _t_star(js_threshold), prone_areas.path, positive_samples["row"],
        positive_samples["col"], later, comparison_dir=paths.output_path("prone_area_evaluation", area, period,
                                                                         "tif").parent,
        stem=period, prediction_rate=rate, inventory=state.as_dict(), opening_radius_px=config.opening_radius_px,
        closing_radius_px=config.closing_radius_px, min_area_m2=config.min_area_m2)
    table = pd.DataFrame(rows).assign(area=area, period=period, evaluated_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
    if no_por_lor:  # an undated inventory and no dated update after the period: POR / LOR say so
        table = table.assign(POR=np.nan, LOR=np.nan, status=no_por_lor)
    with lsm_catalog.connect(spatial=False) as con:
        catalog.append_rows(con, "prone_area_evaluation", table)
        past = con.execute("SELECT evaluated_at, threshold_name, TA, POR, LOR FROM prone_area_evaluation "
                           "WHERE area = ? AND period = ?", [area, period]).df()
    history = past["evaluated_at"].nunique()
    history_plot = plot_evaluation_history(past, paths.output_path("prone_area_evaluation", area, period, "png"))
    adaptive = table.iloc[0]
    inventory = {"evaluations_in_history": int(history), "inventory_events": state.n_events,
                 "inventory_revisions": state.n_revisions, "inventory_latest_event": str(state.latest_event_date),
                 "inventory_latest_ingest": str(state.latest_ingest)}
    por_lor = ({"POR": no_por_lor, "LOR": no_por_lor} if no_por_lor
               else {"POR": float(adaptive["POR"]), "LOR": float(adaptive["LOR"])})
    context.add_output_metadata({**inventory, "TA": float(adaptive["TA"]), **por_lor, "later_events": int(adaptive["L"]),
                                 "map_prediction_rate_auc": float(rate.auc),
                                 "later_events_dropped": int(adaptive["L_dropped"]), "status": str(adaptive["status"]),
                                 "prediction_rate_curve": dg.MetadataValue.path(str(curve_path)),
                                 "history": image(history_plot, "TA, POR and LOR over evaluations"),
                                 "table": dg.MetadataValue.md(table[["threshold_name", "threshold", "TA", "POR", "LOR",
                                                                     "prone_share"]].to_markdown(index=False))})
    return table


class ContingencyConfig(dg.Config):
    strategy_sample: int = Field(200_000, description="Valid pixels (seeded uniform sample) on which the best model "
                                 "of every other strategy is evaluated for its own matrix (the mapped model's "
                                 "covers every pixel); 0 = the mapped model only.")
    seed: int = Field(0, description="Seed of the pixel sample.")


def _n_counted(res: contingency.ContingencyResult) -> int:
    """Pixels behind a matrix: the sample's size, or every valid pixel of the mapped model."""
    return res.n_valid if res.n_sampled is None else res.n_sampled


def _se(res: contingency.ContingencyResult) -> float:
    """The consistency score's standard error; 0 for the mapped model (every pixel)."""
    return 0.0 if res.consistency_se is None else res.consistency_se


@dg.asset(description="Deformation class x susceptibility class pixel counts and shares, prone/not prone, and the "
          "consistency score (share of deforming pixels in high or very high susceptibility), for the mapped model "
          "(every pixel) and the best model of every strategy (a seeded pixel sample, with the score's standard "
          "error): one long table with a strategy column, one plot panel per strategy.", **TABLE)
def deformation_susceptibility_contingency(context: dg.AssetExecutionContext, config: ContingencyConfig,
                                           paths: LsmPaths, lsm_catalog: DuckDBCatalog, deformation_rate: RasterFile,
                                           susceptibility_map: RasterFile, prone_areas: RasterFile,
                                           trained_models: pd.DataFrame, factor_stack: RasterFile) -> pd.DataFrame:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    if no_insar := area_scope.absent_reason(deformation_rate):  # nothing to cross: say why, write no rows
        context.add_output_metadata({"status": "not computable", "reason": no_insar})
        return pd.DataFrame({"consistency_score": pd.Series(dtype=float)})
    result = contingency.deformation_susceptibility_contingency(deformation_rate.path, susceptibility_map.path,
                                                                prone_path=prone_areas.path)
    tags = susceptibility_map.tags
    mapped = (tags.get("strategy", "?"), tags.get("model_name", "?"))
    results = {mapped: result}
    is_mapped = {mapped: True}
    others = {(r["strategy"], r["model"]): paths.root / r["model_path"]
              for _, r in best_per_strategy(trained_models).iterrows() if (r["strategy"], r["model"]) != mapped}
    if config.strategy_sample > 0:
        for key, res in contingency.sampled_strategy_contingencies(factor_stack, deformation_rate.path, others,
                                                                   n_pixels=config.strategy_sample,
                                                                   seed=config.seed).items():
            results[key], is_mapped[key] = res, False
    labels = {k: f"{k[0]}/{k[1]}" + (" (map, every pixel)" if is_mapped[k] else " (sample)") for k in results}
    plot = contingency.plot_contingency_panels({labels[k]: res for k, res in results.items()},
                                               paths.output_path("deformation_susceptibility_contingency", area,
                                                                 period, "png"))
    table = pd.concat([contingency.contingency_long(res).assign(
        strategy=k[0], model=k[1], mapped=is_mapped[k], n_sampled=_n_counted(res),
        consistency_score=res.consistency_score, consistency_se=_se(res),
        prone_consistency=res.prone_consistency) for k, res in results.items()], ignore_index=True)
    with lsm_catalog.connect(spatial=False) as con:
        catalog.replace_partition_rows(con, "deformation_susceptibility_contingency", table, area, period)
    by_strategy = pd.DataFrame([{"strategy": k[0], "model": k[1], "pixels": "all" if is_mapped[k] else "sample",
                                 "n": _n_counted(res),
                                 "consistency_score": res.consistency_score,
                                 "se": _se(res)} for k, res in results.items()])
    context.add_output_metadata({"consistency_score": result.consistency_score,
                                 "prone_consistency": result.prone_consistency,
                                 "deforming_pixels": result.n_deforming,
                                 "by_strategy": dg.MetadataValue.md(by_strategy.round(4).to_markdown(index=False)),
                                 "contingency_matrix": image(plot, "deformation x susceptibility per strategy")})
    return table
