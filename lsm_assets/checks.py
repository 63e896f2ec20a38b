"""Asset checks: they run with their asset (every run that materializes it) and show in the UI per partition.

The measures live in ``lsm_core.quality``; each check reads the asset's warehouse file, calls it,
and returns the verdict with its numbers as metadata.
"""


import dagster as dg
import pandas as pd

from lsm_assets.partitions import area_of, area_period_partitions, period_of, study_area_partitions
from lsm_assets.resources import DuckDBCatalog, LsmPaths
from lsm_core import quality
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterFile
from lsm_core.sampling import training_negatives
from lsm_core.stack import recorded_nodata_shares, vif_table

WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR
FACTOR_ASSETS = {"terrain_factors": study_area_partitions, "proximity_factors": study_area_partitions,
                 "environment_factors": area_period_partitions, "deformation_rate": area_period_partitions,
                 "factor_stack": area_period_partitions}


def _result(v: quality.Verdict, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=v.passed, severity=severity, description=v.message,
                               metadata={"message": v.message, **v.values})


def _where(context: dg.AssetCheckExecutionContext) -> tuple[str, str | None]:
    return area_of(context.partition_key), period_of(context.partition_key)


def _grid(paths: LsmPaths, area: str) -> AreaGrid:
    return AreaGrid.from_json(paths.output_path("study_area_grid", area, None, "json").read_text()).with_mask_under(
        paths.root)


def _alignment_check(asset: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name="grid_alignment", partitions_def=partitions_def,
                    description=f"{asset} lies exactly on the study-area grid (CRS, transform, shape): factors "
                    "are combined pixel by pixel, so an offset grid would pair the wrong pixels.")
    def _check(context: dg.AssetCheckExecutionContext, paths: LsmPaths) -> dg.AssetCheckResult:
        area, period = _where(context)
        return _result(quality.grid_alignment(paths.output_path(asset, area, period, "tif"), _grid(paths, area)),
                       ERROR)

    return _check


@dg.asset_check(asset="factor_stack", name="nodata_share", partitions_def=area_period_partitions,
                description=f"Share of the area's valid pixels that each factor lacks (nodata); warns above "
                f"{quality.MAX_NODATA_SHARE:.0%}, since those pixels drop out of sampling and mapping.")
def factor_nodata_share(context: dg.AssetCheckExecutionContext, paths: LsmPaths) -> dg.AssetCheckResult:
    area, period = _where(context)
    path = paths.output_path("factor_stack", area, period, "tif")
    # counted by build_factor_stack on the pixels it wrote; a stack written before it recorded them is read
    shares = recorded_nodata_shares(path)
    if shares is None:
        shares = quality.nodata_shares(path, _grid(paths, area).nodata_mask_path)
    return _result(quality.nodata_verdict(shares), WARN)


@dg.asset_check(asset="factor_stack", name="vif_below_limit", partitions_def=area_period_partitions,
                description=f"Variance inflation factor of every continuous factor below {quality.MAX_VIF} "
                "(seeded sample of 20 000 valid pixels); above it, factors are collinear and importances unstable.")
def factor_vif(context: dg.AssetCheckExecutionContext, paths: LsmPaths) -> dg.AssetCheckResult:
    area, period = _where(context)
    vif = vif_table(RasterFile(paths.output_path("factor_stack", area, period, "tif")), n_sample=20_000, seed=0)
    return _result(quality.vif_verdict(vif), WARN)


@dg.asset_check(asset="negative_samples", name="sample_balance", partitions_def=area_period_partitions,
                description=f"Negatives of every strategy match ratio x positives (area.yaml sampling_ratio) within "
                f"{quality.MAX_IMBALANCE:.0%}; an unbalanced strategy would not be compared fairly.")
def sample_balance(context: dg.AssetCheckExecutionContext, paths: LsmPaths) -> dg.AssetCheckResult:
    area, period = _where(context)
    pos = pd.read_parquet(paths.output_path("positive_samples", area, period, "parquet"), columns=["row"])
    # the strategies' own draws only: the spatial CV's fold draws and the area sample are not training sets
    neg = training_negatives(pd.read_parquet(paths.output_path("negative_samples", area, period, "parquet"),
                                             columns=["strategy", "cv_fold"]))
    ratio = float(paths.area(area).parameters.get("sampling_ratio", 1.0))
    return _result(quality.sample_balance(len(pos), neg, ratio), WARN)


@dg.asset_check(asset="model_comparison", name="spatial_cv_auc_floor", partitions_def=area_period_partitions,
                description=f"The best model of every negative strategy reaches a spatial-CV AUC (against its own "
                f"negatives) of {quality.MIN_SPATIAL_CV_AUC}; below it the map is close to guessing where landslides "
                "are.")
def spatial_cv_auc_floor(context: dg.AssetCheckExecutionContext, paths: LsmPaths) -> dg.AssetCheckResult:
    area, period = _where(context)
    table = pd.read_parquet(paths.output_path("model_comparison", area, period, "parquet"))
    return _result(quality.auc_floor(table), WARN)


@dg.asset_check(asset="prone_area_evaluation", name="ta_floor", partitions_def=area_period_partitions,
                description=f"Training accuracy (share of positive pixels inside the adaptive-threshold prone areas) "
                f"at least {quality.MIN_TA}.")
def ta_floor(context: dg.AssetCheckExecutionContext, paths: LsmPaths) -> dg.AssetCheckResult:
    area, period = _where(context)
    table = pd.read_parquet(paths.output_path("prone_area_evaluation", area, period, "parquet"))
    return _result(quality.ta_floor(table), WARN)


@dg.asset_check(asset="prone_area_evaluation", name="lor_not_rising", partitions_def=area_period_partitions,
                description=f"Warns 're-evaluate this area' when the landslide omission rate (LOR) of the adaptive "
                f"prone areas rose at each of the last {quality.RISING_LOR_RUNS} evaluations in the history "
                "(paper b, 2.3): new landslides increasingly fall outside the mapped prone areas.")
def lor_not_rising(context: dg.AssetCheckExecutionContext, lsm_catalog: DuckDBCatalog) -> dg.AssetCheckResult:
    area, period = _where(context)
    with lsm_catalog.connect(spatial=False) as con:
        history = con.execute("SELECT * FROM prone_area_evaluation WHERE area = ? AND period = ?",
                              [area, period]).df()
    return _result(quality.rising_lor(history), WARN)


CHECKS = [*(_alignment_check(a, p) for a, p in FACTOR_ASSETS.items()), factor_nodata_share, factor_vif,
          sample_balance, spatial_cv_auc_floor, ta_floor, lor_not_rising]
