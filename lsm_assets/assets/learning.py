"""Samples, models, comparison and explanations (DESIGN 4, rows positive_samples .. shap_importance)."""

import json

import dagster as dg
import geopandas as gpd
import pandas as pd
from pydantic import Field

from lsm_assets.partitions import area_of, area_period_partitions, period_of
from lsm_assets.resources import LsmPaths
from lsm_core import sampling
from lsm_core.area import period_bounds
from lsm_core.inventory import events_before
from lsm_core.io import RasterFile

TABLE = {"partitions_def": area_period_partitions, "io_manager_key": "table_io_manager", "group_name": "learning"}
STRATEGIES = ("random", "buffer", "insar_pu")


class NegativeSamplingConfig(dg.Config):
    strategies: list[str] = Field(list(STRATEGIES), description="Negative strategies to draw: random, buffer, "
                                  "insar_pu (DESIGN 6).")
    ratio: float = Field(1.0, description="Negatives per positive (1.0 = 1:1).")
    buffer_m: float | None = Field(None, description="Buffer strategy: minimum distance from any known landslide, "
                                   "metres (default: the area's buffer_m).")
    buffer_max_slope_deg: float | None = Field(None, description="Buffer strategy, paper b variant: also require "
                                               "slope below this (deg) or |v| below buffer_max_abs_velocity.")
    buffer_max_abs_velocity_mm_yr: float | None = Field(None, description="Buffer strategy, paper b variant (mm/yr).")
    deformation_threshold_mm_yr: float | None = Field(None, description="InSAR-PU: pixels with |v| below this form "
                                                      "the unlabeled pool (default: the area's parameter).")
    bags: int = Field(100, description="InSAR-PU: number of Bagging-PU bags.")
    quantile: float = Field(0.5, description="InSAR-PU: reliable negatives come from this lowest-scoring share of "
                            "the pool.")
    max_pool: int = Field(300_000, description="InSAR-PU: the pool is subsampled uniformly to at most this size.")
    pu_exclude: list[str] = Field(["velocity_mm_yr", "ndvi_mean"], description="InSAR-PU: factors left out of the "
                                  "P-vs-U classifier. The velocity already defines the pool; the period's NDVI "
                                  "mean carries the fresh scars of the positives themselves (a consequence of "
                                  "failure), so with it the classifier learns 'scar or not' instead of "
                                  "predisposition.")
    seed: int = Field(0, description="Seed of every random draw.")


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


@dg.asset(description="Negative samples by strategy (random, buffer, insar_pu), with PU scores and diagnostics.",
          kinds={"geoparquet"}, **TABLE)
def negative_samples(context: dg.AssetExecutionContext, config: NegativeSamplingConfig, paths: LsmPaths,
                     factor_stack: RasterFile, landslide_inventory: gpd.GeoDataFrame,
                     positive_samples: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    params = paths.area(area_of(context.partition_key)).parameters
    _, period_end = period_bounds(period_of(context.partition_key))
    known = events_before(landslide_inventory, period_end)  # later events must not shape the training set
    n = sampling.n_negatives(len(positive_samples), config.ratio)
    sets, meta = [], {}
    for strategy in config.strategies:
        if strategy == "random":
            df = sampling.random_negatives(factor_stack, known, n, seed=config.seed)
        elif strategy == "buffer":
            df = sampling.buffer_negatives(factor_stack, known, n, buffer_m=config.buffer_m or params["buffer_m"],
                                           max_slope_deg=config.buffer_max_slope_deg,
                                           max_abs_velocity_mm_yr=config.buffer_max_abs_velocity_mm_yr,
                                           seed=config.seed)
        elif strategy == "insar_pu":
            threshold = config.deformation_threshold_mm_yr or params["deformation_threshold_mm_yr"]
            df, diag = sampling.insar_pu_negatives(
                factor_stack, pd.DataFrame(positive_samples.drop(columns="geometry")), n,
                threshold_mm_yr=threshold, n_estimators=config.bags, max_pool=config.max_pool,
                features=[n for n in factor_stack.names if n not in config.pu_exclude],
                quantile=config.quantile, seed=config.seed)
            meta["pu_diagnostics"] = dg.MetadataValue.json(json.loads(json.dumps(diag, default=float)))
            meta["pu_pool_size"] = int(diag["pool_size"])
        else:
            raise dg.Failure(f"unknown negative strategy {strategy!r} (expected one of {list(STRATEGIES)})")
        meta[f"n_{strategy}"] = len(df)
        sets.append(df)
    context.add_output_metadata(meta)
    return _points(pd.concat(sets, ignore_index=True), factor_stack.grid.crs)
