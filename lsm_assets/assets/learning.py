"""Samples, models, comparison and explanations (DESIGN 4, rows positive_samples .. shap_importance)."""

import math
from pathlib import Path
from typing import Literal

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import Field

from lsm_assets.config_names import ModelName, StrategyName, plain_names_validator
from lsm_assets.metadata import image, images
from lsm_assets.partitions import area_of, area_period_partitions, period_of
from lsm_assets.resources import DuckDBCatalog, LsmPaths
from lsm_core import area_scope, catalog, experiment, sampling
from lsm_core.area import period_bounds
from lsm_core.inventory import events_after, events_before
from lsm_core.io import RasterFile, write_table
from lsm_core.models import MODEL_NAMES
from lsm_core.plots import plot_roc_curves
from lsm_core.sampling import NEGATIVE_STRATEGIES
from lsm_core.stack import categorical_bands
from lsm_core.yardstick import AREA_SAMPLE, common_folds

TABLE = {"partitions_def": area_period_partitions, "io_manager_key": "table_io_manager", "group_name": "learning"}
STRATEGIES = NEGATIVE_STRATEGIES
PREDICTION_COLUMNS = ["test_y", "test_proba"]  # in the asset's table, not copied to the catalog


class NegativeSamplingConfig(dg.Config):
    strategies: list[StrategyName] = Field(list(STRATEGIES), description="Negative strategies to draw: "
                                  "random, buffer, insar_pu (DESIGN 6) and pu (InSAR-PU's Bagging-PU with the pool "
                                  "= every valid pixel outside known landslides, no velocity threshold; it shares "
                                  "the PU settings below). Beside insar_pu, pu runs only with pu_ablation.")
    pu_ablation: bool = Field(False, description="Also draw pu where insar_pu runs: the ablation that separates what "
                              "the velocity pool adds from what PU learning adds, trained, explained and scored "
                              "like the other strategies (about a quarter more work per partition: off by default, "
                              "on in the thorough preset; benchmarks/study_strategies.py always runs it). Where "
                              "insar_pu cannot run (no InSAR velocity), pu is the area's PU strategy and runs "
                              "regardless.")
    ratio: float | None = Field(None, description="Negatives per positive (1.0 = 1:1; default: the area's "
                                "sampling_ratio).")
    buffer_m: float | None = Field(None, description="Buffer strategy: minimum distance from any known landslide, "
                                   "metres (default: the area's buffer_m).")
    buffer_max_slope_deg: float | None = Field(None, description="Buffer strategy, paper b variant: also require "
                                               "slope below this (deg) or |v| below buffer_max_abs_velocity.")
    buffer_max_abs_velocity_mm_yr: float | None = Field(None, description="Buffer strategy, paper b variant (mm/yr).")
    deformation_threshold_mm_yr: float | None = Field(None, description="InSAR-PU: pixels with |v| below this form "
                                                      "the unlabeled pool (default: the area's parameter).")
    bags: int = Field(30, description="InSAR-PU: number of Bagging-PU bags. Each pool pixel's score is the mean of "
                      "its ~28 out-of-bag trees; 100 bags (thorough) pick negatives of the same true hazard on the "
                      "demo (benchmarks/bench_demo.py) at 3x the cost.")
    max_positives: int | None = Field(2000, description="InSAR-PU: at most this many positive pixels (seeded "
                                      "uniform draw) enter the P-vs-U classifier; null = all (thorough). With "
                                      "max_pool 100 000 the chosen negatives' mean true hazard on the demo moves "
                                      "by at most 0.002 against 100 bags on every positive and a 300 000 pool "
                                      "(benchmarks/bench_demo.py) at a tenth of its cost.")
    quantile: float = Field(0.5, description="InSAR-PU: reliable negatives come from this lowest-scoring share of "
                            "the pool.")
    max_pool: int = Field(100_000, description="InSAR-PU: the pool is subsampled uniformly to at most this size, "
                          "raised to 2 x negatives / quantile when that is larger (so that the lowest-scoring share "
                          "always holds twice the negatives asked for; thorough 300 000).")
    pu_exclude: list[str] = Field(["velocity_mm_yr", "ndvi_mean"], description="InSAR-PU: factors left out of the "
                                  "P-vs-U classifier. The velocity already defines the pool; the period's NDVI "
                                  "mean carries the fresh scars of the positives themselves (a consequence of "
                                  "failure), so with it the classifier learns 'scar or not' instead of "
                                  "predisposition.")
    area_sample: int = Field(10_000, description="Uniform pixels of the whole area (rows of strategy area_sample, "
                             "never trained on): the yardstick scores a spatial-CV fold's held-out landslides "
                             "against the ones inside the fold's region.")
    cv_folds: int = Field(5, description="k of the common spatial folds (k-means on the landslides' locations) that "
                          "the per-fold PU draws are made for; must equal trained_models' spatial_cv_folds.")
    fold_bags: int = Field(10, description="insar_pu and pu, per spatial-CV fold: bags of the Bagging-PU classifier "
                           "fitted on that fold's training positives only, on a pool outside the fold's region "
                           "(fewer than `bags`: these negatives only score the CV; thorough 30).")
    fold_max_pool: int = Field(50_000, description="insar_pu and pu: pool pixels drawn once for the per-fold PU "
                               "classifiers and split by fold region (smaller than max_pool; thorough 300 000).")
    fold_max_positives: int | None = Field(1000, description="insar_pu and pu, per fold draw: at most this many of "
                                           "the fold's training positive pixels enter its PU classifier (as "
                                           "max_positives; null = max_positives, thorough). On the demo the fold "
                                           "negatives' mean true hazard moves by at most 0.002 against 2000 and "
                                           "against the thorough draws (benchmarks/bench_demo.py).")
    fold_max_negatives: int = Field(2000, description="insar_pu and pu: at most this many training (and test) "
                                    "negatives per fold draw (trained_models uses at most max_samples_per_class "
                                    "per class).")
    seed: int = Field(0, description="Seed of every random draw (and of the common spatial folds).")
    stack_cache_mb: int = Field(512, description="The factor stack's blocks are kept in memory up to this many MB "
                                "while the strategies draw (each draw passes over the whole stack); the blocks "
                                "past it are read again for each pass. Same samples for any value.")

    _names = plain_names_validator("strategies")


def _points(df: pd.DataFrame, crs: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x"], df["y"]), crs=crs)


@dg.asset(description="Pixels of landslides dated on/before the period end, each with its landslide id and the "
          "factor values.", kinds={"geoparquet"}, **TABLE)
def positive_samples(context: dg.AssetExecutionContext, factor_stack: RasterFile,
                     landslide_inventory: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    _, period_end = period_bounds(period_of(context.partition_key))
    pos = sampling.positive_samples(landslide_inventory, factor_stack, period_end)
    missing = pos.attrs.get("events_without_pixels", [])
    context.add_output_metadata({"pixels": len(pos), "landslides": int(pos["landslide_id"].nunique()),
                                 "period_end": str(period_end), "events_without_pixels": len(missing)})
    return _points(pos, factor_stack.grid.crs)


@dg.asset(description="Negative samples by strategy (random, buffer, insar_pu; pu as the ablation with "
          "pu_ablation, or where there is no InSAR), with PU scores and diagnostics.",
          kinds={"geoparquet"}, **TABLE)
def negative_samples(context: dg.AssetExecutionContext, config: NegativeSamplingConfig, paths: LsmPaths,
                     factor_stack: RasterFile, landslide_inventory: gpd.GeoDataFrame,
                     positive_samples: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    params = paths.area(area_of(context.partition_key)).parameters
    _, period_end = period_bounds(period_of(context.partition_key))
    known = events_before(landslide_inventory, period_end)  # later events must not shape the training set
    # every strategy, pool and the area sample pass over the whole stack: decompress each block once
    stack = factor_stack.cached(max_bytes=config.stack_cache_mb * 2**20)
    n = sampling.n_negatives(len(positive_samples), config.ratio if config.ratio is not None else params["sampling_ratio"])
    sets, meta = [], {}
    # strategies the stack cannot support (InSAR-PU without a velocity band) are skipped with the reason
    strategies, skipped = area_scope.applicable_strategies(config.strategies, stack.names,
                                                           pu_ablation=config.pu_ablation)
    meta["skipped_strategies"] = dg.MetadataValue.json(skipped)
    for strategy in strategies:
        df, diag = sampling.draw_negatives(
            strategy, stack, known, pd.DataFrame(positive_samples.drop(columns="geometry")), n,
            seed=config.seed, buffer_m=params["buffer_m"] if config.buffer_m is None else config.buffer_m,
            buffer_max_slope_deg=config.buffer_max_slope_deg,
            buffer_max_abs_velocity_mm_yr=config.buffer_max_abs_velocity_mm_yr,
            threshold_mm_yr=config.deformation_threshold_mm_yr or params["deformation_threshold_mm_yr"],
            pu_exclude=config.pu_exclude, n_estimators=config.bags,
            max_pool=max(config.max_pool, math.ceil(2 * n / config.quantile)),
            quantile=config.quantile, max_positives=config.max_positives)
        if diag is not None:
            meta[f"{strategy}_diagnostics"] = dg.MetadataValue.json(diag.as_dict())
            meta[f"{strategy}_pool_size"] = diag.pool_size
        meta[f"n_{strategy}"] = len(df)
        sets.append(df.assign(cv_fold=-1))
    # the spatial CV's negatives of the PU strategies, one draw per fold from a classifier that never saw
    # the fold's test positives (the strategy's own draw above saw them all), and the yardstick's area sample
    pos = pd.DataFrame(positive_samples.drop(columns="geometry"))
    folds = common_folds(pos, config.cv_folds, seed=config.seed)
    fold_diags = []
    for strategy in [s for s in strategies if s in experiment.PU_STRATEGIES]:
        df, diags = sampling.fold_pu_negatives(
            stack, pos, strategy, folds.positive_folds(pos), folds.region, folds.n_folds,
            ratio=config.ratio if config.ratio is not None else params["sampling_ratio"],
            max_per_fold=config.fold_max_negatives,
            threshold_mm_yr=config.deformation_threshold_mm_yr or params["deformation_threshold_mm_yr"],
            features=[b for b in stack.names if b not in config.pu_exclude], n_estimators=config.fold_bags,
            max_pool=config.fold_max_pool, quantile=config.quantile,
            max_positives=config.fold_max_positives if config.fold_max_positives is not None else config.max_positives,
            seed=config.seed)
        sets.append(df)
        fold_diags += [{k: v for k, v in d.as_dict().items() if k != "positive_ids"} | {"landslides": len(d.positive_ids)}
                       for d in diags]
    sets.append(sampling.area_sample(stack, config.area_sample, seed=config.seed).assign(cv_fold=-1))
    out = pd.concat(sets, ignore_index=True)
    # the region each row lies in, so trained_models can check it uses the same folds
    out["cv_region"] = folds.region(out["x"].to_numpy(), out["y"].to_numpy())
    meta["fold_pu_draws"] = dg.MetadataValue.json(fold_diags)
    meta["n_area_sample"] = int((out["strategy"] == AREA_SAMPLE).sum())
    context.add_output_metadata(meta)
    return _points(out, stack.grid.crs)


class TrainingConfig(dg.Config):
    models: list[ModelName] = Field(list(MODEL_NAMES), description="Models to train: " + ", ".join(MODEL_NAMES) + ".")
    strategies: list[StrategyName] = Field(list(STRATEGIES), description="Negative strategies to train on.")
    max_samples_per_class: int = Field(2000, description="Training pixels per class (drawn uniformly, seeded); the "
                                       "published experiments use a few thousand.")
    spatial_cv_folds: int = Field(5, description="k of the common spatial folds (k-means on the landslides' "
                                  "locations, every pixel in the fold of its nearest centre), the same for every "
                                  "strategy; must equal negative_samples' cv_folds.")
    cv_max_samples_per_class: int | None = Field(500, description="Training rows per class of each spatial-CV fold "
                                                 "(seeded); null = max_samples_per_class (thorough).")
    tuning_max_per_class: int | None = Field(250, description="Grid points are fitted on at most this many rows per "
                                             "class (seeded): inside each spatial-CV fold (nested tuning: an 80/20 "
                                             "grouped holdout of the fold's training rows only) and in the saved "
                                             "models' 60/20/20 search (a subsample of the 60 %; validation, refit "
                                             "and test splits stay whole); null = every row (the full nested grid, "
                                             "thorough). On the demo (karst, 2019-2020) these two defaults, with the "
                                             "MLP's own sizes below, move the fold-mean AUCs (yardstick and own "
                                             "negatives) by 0.006 on average and 0.0195 at most against the full "
                                             "nested grid on 2000 rows per class, at 0.31x its CV cost (40 vs 132 "
                                             "CPU s; benchmarks/bench_nested_cv.py).")
    mlp_cv_max_samples_per_class: int | None = Field(1000, description="The MLP's own training rows per class of "
                                                     "each spatial-CV fold: it gains from more rows than the other "
                                                     "models (with 500 its fold means sat up to 0.026 below the "
                                                     "thorough preset's, over the 0.02 tolerance; with 1000, and its "
                                                     "grid on mlp_tuning_max_per_class, within 0.017); null = "
                                                     "max_samples_per_class (thorough).")
    mlp_tuning_max_per_class: int | None = Field(500, description="The MLP's own grid rows per class (in each fold "
                                                 "and in the saved model's search), as tuning_max_per_class for the "
                                                 "others; null = every row (thorough).")
    without_velocity_models: list[ModelName] = Field(["lightgbm"], description="Models also cross-validated with "
                                               "velocity_mm_yr left out of the factors, so the yardstick is "
                                               "reported both ways (InSAR-PU's pool is defined by the velocity); "
                                               "thorough: all six.")
    retune_without_velocity: bool = Field(False, description="Tune the without-velocity variant again inside each "
                                          "fold; false = it keeps the parameters the fold chose for the model with "
                                          "every factor, so the two yardsticks differ by the factor only (thorough: "
                                          "true; on the demo the fold means move by 0.003 at most).")
    forest_trees: int = Field(100, description="Trees of the random forest (grid search, spatial CV and the saved "
                              "model). Its AUC settles well before 300 trees (thorough preset); "
                              "benchmarks/bench_demo.py measures the difference.")
    forest_tuning_trees: int = Field(10, description="Trees of each random-forest grid point while tuning (the "
                                     "refit and spatial CV get forest_trees): a forest's validation AUC ranks the "
                                     "grid points alike long before its final size. On the demo (karst 2019-2020) "
                                     "the forests' fold-mean AUCs are within 0.007 of 300 trees everywhere "
                                     "(thorough) at 0.11x its CV cost (benchmarks/bench_nested_cv.py).")
    mlp_tuning_patience: int = Field(20, description="Early-stopping patience (epochs without a better validation "
                                     "score) of each MLP grid point while tuning; the refit and spatial CV keep the "
                                     "model's 20. Fewer (e.g. 10) stop the grid points earlier: since the MLP's "
                                     "epochs run compiled (lsm_core.mlp), 10 saved only 10 % of its CV cost (3.6 vs "
                                     "4.0 CPU s on the demo's karst partition) and moved its fold-mean AUCs by up to "
                                     "0.0085, so the default is the model's own 20.")
    gbdt_binned: bool = Field(True, description="GBDT split search on gbdt_bins quantile bins per factor "
                              "(HistGradientBoosting's algorithm, run by LightGBM's engine; many times faster); "
                              "false = exact split search (GradientBoostingClassifier, thorough preset).")
    gbdt_bins: int = Field(63, description="Bins per factor of the binned GBDT: its cost grows with them on the "
                           "thousand-row training sets of the spatial CV (63: about half the CPU of 255). On the "
                           "demo its fold-mean AUCs are within 0.014 of the exact search (thorough) at 0.15x its CV "
                           "cost, as with 255 bins (benchmarks/bench_nested_cv.py).")
    lightgbm_bins: int = Field(63, description="Bins per factor of the LightGBM model (LightGBM's max_bin; its "
                               "library default 255 is the thorough preset): on the thousand-row tables of the "
                               "spatial CV the split search over the bins is most of a tree's cost. On the demo "
                               "its fold-mean AUCs are within 0.0044 of 255 bins (mean 0.002) at 0.81x its CV cost "
                               "(benchmarks/bench_nested_cv.py).")
    seed: int = Field(0, description="Seed of subsampling, splits, folds and models.")

    _names = plain_names_validator("models", "strategies", "without_velocity_models")

    def model_params(self) -> tuple[dict[str, dict], dict[str, dict]]:
        """(fixed, tuning-only) parameters per model, as experiment.final_models and fold_experiment take them."""
        fixed = {"random_forest": {"n_estimators": self.forest_trees},
                 "gbdt": {"binned": self.gbdt_binned, "max_bin": self.gbdt_bins},
                 "lightgbm": {"max_bin": self.lightgbm_bins}}
        tuning = {"random_forest": {"n_estimators": self.forest_tuning_trees},
                  "mlp": {"n_iter_no_change": self.mlp_tuning_patience}}
        return fixed, tuning

    def final_kwargs(self) -> dict:
        """experiment.final_models' keyword arguments (besides the table, strategy, factors, models and folder)."""
        fixed, tuning = self.model_params()
        return {"seed": self.seed, "fixed_params": fixed, "tuning_params": tuning,
                "grid_max_per_class": self.tuning_max_per_class,
                "grid_max_by_model": {"mlp": self.mlp_tuning_max_per_class}}

    def fold_kwargs(self) -> dict:
        """experiment.fold_experiment's keyword arguments (besides the data, strategies and models)."""
        fixed, tuning = self.model_params()
        return {"max_per_class": self.cv_max_samples_per_class or self.max_samples_per_class, "seed": self.seed,
                "fixed_params": fixed, "tuning_params": tuning, "inner_max_per_class": self.tuning_max_per_class,
                "without_velocity": self.without_velocity_models,
                "retune_without_velocity": self.retune_without_velocity,
                "model_sizes": {"mlp": (self.mlp_cv_max_samples_per_class or self.max_samples_per_class,
                                        self.mlp_tuning_max_per_class)}}


class ComparisonConfig(dg.Config):
    area_sample: int = Field(20_000, description="Uniform pixels standing for the whole area in the prediction-rate "
                             "AUC.")
    seed: int = Field(0, description="Seed of the area sample.")


class ShapConfig(dg.Config):
    models: list[ModelName] = Field(list(MODEL_NAMES), description="Models to explain.")
    n_explain: int = Field(300, description="Rows explained per model (tree/linear explainers).")
    agnostic_method: Literal["permutation", "kernel"] = Field(
        "permutation", description="SHAP for the SVM and MLP: 'permutation' (one antithetic permutation per row) or "
        "'kernel' (512 coalitions per row, about 6x slower; thorough).")
    agnostic_rows: int = Field(200, description="Rows explained per SVM / MLP (their SHAP costs a model evaluation "
                               "per row x background row x step). Fewer rows change the importances more than "
                               "fewer permutations do (benchmarks/bench_demo.py).")
    tree_rows: int | None = Field(150, description="Rows explained per random forest (exact tree SHAP; its deep "
                                  "trees make it the costliest explainer per row): a seeded subset of the n_explain "
                                  "rows. On the demo the forests' factor ranking on 150 rows has Spearman >= 0.98 "
                                  "against 300 (benchmarks/bench_demo.py) at half the cost; null = all n_explain "
                                  "rows (thorough).")
    stability_model: str = Field("lightgbm", description="Model refitted on bootstrap resamples to measure how "
                                 "steady the importance ranking is for each strategy.")
    n_bootstrap: int = Field(5, description="Bootstrap refits for the ranking stability.")
    seed: int = Field(0, description="Seed of rows explained and bootstrap draws.")

    _names = plain_names_validator("models")


def _tables(positive_samples: gpd.GeoDataFrame, negative_samples: gpd.GeoDataFrame, strategy: str, n: int,
            seed: int) -> pd.DataFrame:
    return experiment.training_table(positive_samples.drop(columns="geometry"),
                                     negative_samples.drop(columns="geometry"), strategy, max_per_class=n, seed=seed)


@dg.asset(description="Six models x the negative strategies drawn. Every strategy is scored on common spatial folds "
          "(k-means on the landslides; hyperparameters tuned inside each fold): yardstick_auc = held-out landslides "
          "vs a uniform sample of the fold's region (the same test set for every strategy and model; "
          "select_model 'auto' maps the best of any strategy, map_choice marks it and the runner-up), "
          "spatial_cv_auc and test_auc = against its own negatives. Saved models tuned on a 60/20/20 split; model "
          "files with library versions, metrics in DuckDB.", kinds={"sklearn", "duckdb"}, **TABLE)
def trained_models(context: dg.AssetExecutionContext, config: TrainingConfig, paths: LsmPaths,
                   lsm_catalog: DuckDBCatalog, factor_stack: RasterFile, positive_samples: gpd.GeoDataFrame,
                   negative_samples: gpd.GeoDataFrame) -> pd.DataFrame:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    model_dir = paths.output_path("trained_models", area, period, "parquet").with_suffix("")
    pos = pd.DataFrame(positive_samples.drop(columns="geometry"))
    neg = pd.DataFrame(negative_samples.drop(columns="geometry"))
    folds = common_folds(pos, config.spatial_cv_folds, seed=config.seed)
    if "cv_region" not in neg.columns or not np.array_equal(folds.region(neg["x"], neg["y"]), neg["cv_region"]):
        raise dg.Failure("negative_samples drew its fold negatives for other spatial folds: set its cv_folds and "
                         "seed to trained_models' spatial_cv_folds and seed, and materialize both")
    drawn = set(neg["strategy"])  # a strategy skipped for the area (negative_samples says why)
    strategies = [s for s in config.strategies if s in drawn]
    cat = categorical_bands(factor_stack.path)
    rows = []
    for strategy in strategies:
        table = _tables(positive_samples, negative_samples, strategy, config.max_samples_per_class, config.seed)
        rows += experiment.final_models(table, strategy, factor_stack.names, cat, config.models, model_dir,
                                        **config.final_kwargs())
    fold_rows = experiment.fold_experiment(pos, neg, folds, strategies, config.models, factor_stack.names, cat,
                                           **config.fold_kwargs())
    table = experiment.mark_map_choice(pd.DataFrame(rows).merge(experiment.summarise_folds(fold_rows),
                                                                on=["strategy", "model"], how="left"))
    # relative to the data root, so that a warehouse can be moved or shared
    table["model_path"] = [str(Path(p).relative_to(paths.root)) for p in table["model_path"]]
    # how each strategy's table was drawn travels with the rows: shap_importance rebuilds exactly that table
    table["max_samples_per_class"], table["subsample_seed"] = config.max_samples_per_class, config.seed
    write_table(model_dir / "spatial_cv_folds.parquet", fold_rows)
    with lsm_catalog.connect() as con:
        catalog.replace_partition_rows(con, "trained_models", table.drop(columns=PREDICTION_COLUMNS), area, period)
    best = table[table["map_choice"] == "selected"].iloc[0]
    runner = table[table["map_choice"] == "runner_up"].iloc[0] if len(table) > 1 else best.map(lambda _: np.nan)
    cols = ["strategy", "model", "yardstick_auc", "yardstick_auc_without_velocity", "spatial_cv_auc", "test_auc"]
    context.add_output_metadata({
        "models": len(table), "map_model": f"{best['strategy']}/{best['model']}",
        "map_model_yardstick_auc": float(best["yardstick_auc"]),
        "runner_up": f"{runner['strategy']}/{runner['model']}", "runner_up_yardstick_auc": float(runner["yardstick_auc"]),
        "map_model_spatial_cv_auc_own_negatives": float(best["spatial_cv_auc"]),
        "table": dg.MetadataValue.md(table[cols].sort_values("yardstick_auc", ascending=False).round(3)
                                     .rename(columns={"spatial_cv_auc": "spatial_cv_auc (own negatives)",
                                                      "test_auc": "test_auc (own negatives)"})
                                     .to_markdown(index=False))})
    return table


@dg.asset(description="Models x strategies: the yardstick AUC (held-out landslides vs the area, one test set for "
          "every strategy), both protocols against each strategy's own negatives (random split test_auc, spatial "
          "CV spatial_cv_auc), ROC curves (test split, own negatives), and the prediction-rate AUC of every model "
          "on the events dated after the period end.", kinds={"duckdb"}, **TABLE)
def model_comparison(context: dg.AssetExecutionContext, config: ComparisonConfig, paths: LsmPaths,
                     lsm_catalog: DuckDBCatalog, trained_models: pd.DataFrame, factor_stack: RasterFile,
                     landslide_inventory: gpd.GeoDataFrame) -> pd.DataFrame:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    _, period_end = period_bounds(period)
    later, _ = area_scope.scored_later_events(events_after(landslide_inventory, period_end), paths.area(area))
    area_px = sampling.random_negatives(factor_stack, landslide_inventory.iloc[:0], config.area_sample,
                                        seed=config.seed)
    later_px = (sampling.positive_samples(later, factor_stack, later["event_date"].max()) if len(later)
                else area_px.iloc[:0])
    table = trained_models.copy()
    table["prediction_rate_auc"] = experiment.prediction_rate_aucs(table, later_px, area_px, model_root=paths.root)
    table["later_events"] = len(later)
    plot = plot_roc_curves(experiment.test_predictions(trained_models),
                           paths.output_path("model_comparison", area, period, "png"))
    table = table.drop(columns=PREDICTION_COLUMNS)
    with lsm_catalog.connect() as con:
        catalog.replace_partition_rows(con, "model_comparison", table, area, period)
    cols = ["strategy", "model", "yardstick_auc", "test_auc", "test_oa", "test_kappa", "spatial_cv_auc",
            "prediction_rate_auc"]
    own = {c: f"{c} (own negatives)" for c in ("test_auc", "test_oa", "test_kappa", "spatial_cv_auc")}
    context.add_output_metadata({"later_events": len(later),
                                 "roc_curves": image(plot, "ROC curves (test split, against its own negatives)"),
                                 "best_yardstick_auc": float(table["yardstick_auc"].max()),
                                 "best_spatial_cv_auc_own_negatives": float(table["spatial_cv_auc"].max()),
                                 "best_prediction_rate_auc": float(np.nanmax(table["prediction_rate_auc"]))
                                 if table["prediction_rate_auc"].notna().any() else float("nan"),
                                 "table": dg.MetadataValue.md(table[cols].round(3).rename(columns=own)
                                                              .to_markdown(index=False))})
    return table


def _training_table_of(positive_samples: gpd.GeoDataFrame, negative_samples: gpd.GeoDataFrame, strategy: str,
                       n_train_rows: int, max_per_class: int, seed: int) -> pd.DataFrame:
    """The table a strategy's models were trained on, rebuilt with trained_models' per-class cap and seed.

    The cap applies per class, so with a ratio other than 1:1 the table is not n_train_rows / 2 per class;
    a rebuilt table of another size than the one recorded means the samples changed since: fail.
    """
    table = _tables(positive_samples, negative_samples, strategy, max_per_class, seed)
    if len(table) != n_train_rows:
        raise dg.Failure(f"{strategy}: the models were trained on {n_train_rows} rows but max_samples_per_class="
                         f"{max_per_class} gives {len(table)}: the samples changed since trained_models ran; "
                         "materialize trained_models again")
    return table


@dg.asset(description="Mean |SHAP| per factor for every model and strategy, a summary plot of the mapped model, and "
          "the rank stability of the importances over bootstrap refits per strategy.", kinds={"shap", "duckdb"},
          **TABLE)
def shap_importance(context: dg.AssetExecutionContext, config: ShapConfig, paths: LsmPaths,
                    lsm_catalog: DuckDBCatalog, trained_models: pd.DataFrame, positive_samples: gpd.GeoDataFrame,
                    negative_samples: gpd.GeoDataFrame) -> pd.DataFrame:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    best = experiment.select_model(trained_models)
    rows, stability, plots = [], {}, {}
    for strategy, group in trained_models.groupby("strategy", sort=True):
        first = group.iloc[0]
        table = _training_table_of(positive_samples, negative_samples, str(strategy), int(first["n_train_rows"]),
                                   int(first["max_samples_per_class"]), int(first["subsample_seed"]))
        plot = paths.output_path("shap_importance", area, period, "png").with_name(
            f"{period}__{strategy}__{best['model']}.png")
        if best["model"] in config.models:  # the plot is drawn only for an explained model
            plots[f"negatives: {strategy}, model: {best['model']}"] = plot
        rows += experiment.importance_rows(group[group["model"].isin(config.models)], table,
                                           n_explain=config.n_explain, seed=config.seed, plot_model=best["model"],
                                           plot_path=plot, agnostic_method=config.agnostic_method,
                                           model_root=paths.root,
                                           agnostic_explain=config.agnostic_rows, tree_explain=config.tree_rows)
        for _, r in group[group["model"] == config.stability_model].iterrows():
            stability[strategy] = experiment.ranking_stability(r, table, n_bootstrap=config.n_bootstrap,
                                                               seed=config.seed, model_root=paths.root)
    out = pd.DataFrame(rows)
    out["rank_stability_spearman"] = out["strategy"].map(lambda s: stability.get(s, {}).get("spearman", np.nan))
    with lsm_catalog.connect() as con:
        catalog.replace_partition_rows(con, "shap_importance", out, area, period)
    context.add_output_metadata({f"stability_{s}": round(v["spearman"], 3) for s, v in stability.items()} |
                                {"explained_models": int(out.groupby(["strategy", "model"]).ngroups),
                                 "shap_summary": images(plots, "SHAP summary")})
    return out
