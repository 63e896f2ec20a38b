"""Conditioning factors and deformation rates on the area grid (DESIGN 4, rows terrain .. factor_stack)."""

import dagster as dg
from pydantic import Field

from lsm_assets.partitions import (
    area_of,
    area_period_partitions,
    missing_combination_reason,
    no_insar_reason,
    period_of,
    skip_missing_combination,
    study_area_partitions,
)
from lsm_assets.resources import LsmPaths
from lsm_core import area_scope, deformation, environment, proximity, terrain
from lsm_core import drainage as routing
from lsm_core.area import period_bounds
from lsm_core.grid import AreaGrid
from lsm_core.intake import delivery_version_for
from lsm_core.io import RasterFile
from lsm_core.stack import build_factor_stack, vif_table

COG = {"io_manager_key": "cog_io_manager", "group_name": "factors", "kinds": {"cog"}}


class TerrainConfig(dg.Config):
    relief_radius_m: float = Field(100.0, description="Radius of the moving window for local relief, metres.")


class DrainageConfig(dg.Config):
    watershed_area_m2: float = Field(1e6, description="Minimum catchment area of a watershed (valley unit), m2.")
    slope_unit_area_m2: float = Field(1e5, description="Minimum catchment area of a slope unit (half-basin), m2.")
    burn_rivers_m: float = Field(10.0, description="Depth the mapped rivers are burnt into the DEM before D8 "
                                 "routing, metres (0 = no burning).")


class DeformationConfig(dg.Config):
    min_coherence: float = Field(0.3, description="Pixels (or epochs) with lower coherence are masked.")
    min_epochs: int = Field(deformation.MIN_EPOCHS, description="Fewest valid epochs for a velocity fit.")
    project_downslope: bool = Field(False, description="Project LOS velocity onto the downslope direction "
                                    "(needs heading and incidence in delivery.yaml).")
    min_sensitivity: float = Field(deformation.MIN_SENSITIVITY, description="Below this |LOS . downslope| "
                                   "the projection is capped (quality 2).")


class FactorStackConfig(dg.Config):
    vif_sample: int = Field(100_000, description="Valid pixels sampled for the VIF table.")
    seed: int = Field(0, description="Seed of the VIF sample.")


@dg.asset(partitions_def=study_area_partitions, description="D8 routing of the DEM with the mapped rivers burnt in, "
          "done once per area: flow accumulation (cells), watershed and slope-unit labels.", **COG)
def drainage(context: dg.AssetExecutionContext, config: DrainageConfig, paths: LsmPaths,
             study_area_grid: AreaGrid) -> RasterFile:
    cfg = paths.area(context.partition_key)
    out = routing.drainage(cfg.layers["dem"], study_area_grid, paths.output_path("drainage", cfg.name, None, "tif"),
                           cfg.layers.get("rivers"), watershed_area_m2=config.watershed_area_m2,
                           slope_unit_area_m2=config.slope_unit_area_m2, burn_rivers_m=config.burn_rivers_m)
    return RasterFile(out)


@dg.asset(partitions_def=study_area_partitions, description="Slope, northness and eastness (cos and sin of the "
          "aspect, 0 on flat cells), curvatures, relief from the DEM; TWI from the drainage's flow accumulation. "
          "Aspect in degrees goes to a side file for the downslope projection of velocities.", **COG)
def terrain_factors(context: dg.AssetExecutionContext, config: TerrainConfig, paths: LsmPaths,
                    study_area_grid: AreaGrid, drainage: RasterFile) -> RasterFile:
    cfg = paths.area(context.partition_key)
    out = terrain.terrain_factors(cfg.layers["dem"], study_area_grid,
                                  paths.output_path("terrain_factors", cfg.name, None, "tif"),
                                  relief_radius_m=config.relief_radius_m, flow_accumulation_cells=drainage,
                                  aspect_path=terrain.aspect_sidecar(paths.output_path("terrain_factors", cfg.name,
                                                                                       None, "tif")))
    return RasterFile(out)


@dg.asset(partitions_def=study_area_partitions, description="Distance-decay values (0..1) for faults, valleys, "
          "roads, buildings and mining, with the same-unit rule (DESIGN 6) on the drainage's units.", **COG)
def proximity_factors(context: dg.AssetExecutionContext, paths: LsmPaths, study_area_grid: AreaGrid,
                      drainage: RasterFile) -> RasterFile:
    cfg = paths.area(context.partition_key)
    dmax = cfg.parameters["max_distance_m"]
    out_path = paths.output_path("proximity_factors", cfg.name, None, "tif")
    bands, left_out = area_scope.proximity_bands(cfg)
    if not bands:  # none of the layers: an absent layer the factor stack leaves out
        out = area_scope.write_absent_layer(study_area_grid, out_path, "proximity", "; ".join(left_out.values()))
    else:
        out = proximity.proximity_factors(cfg.layers, study_area_grid, cfg.layers["dem"], out_path,
                                          {"faults": dmax["faults"], "valleys": dmax["valleys"], "roads": dmax["roads"],
                                           "buildings": dmax["buildings"], "mining": dmax["mining"]},
                                          units=routing.read_units(drainage), bands=bands)
    context.add_output_metadata({f"dmax_{k}_m": float(v) for k, v in dmax.items()} |
                                {"factors": ", ".join(bands), "factors_left_out": _left_out_md(left_out)})
    return RasterFile(out)


@dg.asset(partitions_def=area_period_partitions, description="Lithology code (categorical), rainfall (mm/yr) and "
          "the NDVI mean over the scenes inside the period. Skipped (with the reason) for a period the area has "
          "no delivery for.", output_required=False, **COG)
def environment_factors(context: dg.AssetExecutionContext, paths: LsmPaths, study_area_grid: AreaGrid):
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    if reason := missing_combination_reason(paths.root, area, period):
        yield from skip_missing_combination(context, reason)
        return
    cfg = paths.area(area)
    out = paths.output_path("environment_factors", area, period, "tif")
    info = environment.environment_factors(cfg, *period_bounds(period), out)
    yield dg.Output(RasterFile(out), metadata={"ndvi_scenes": ", ".join(info.ndvi_scenes),
                                               "lithology_units": str(info.lithology_units),
                                               "factors": ", ".join(info.bands),
                                               "factors_left_out": _left_out_md(info.left_out)})


@dg.asset(partitions_def=area_period_partitions, description="Annual mean LOS (or downslope) velocity in mm/yr "
          "with standard error, epoch count and quality band, from the period's InSAR delivery. Skipped (with the "
          "reason) for a period the area has no delivery for.", output_required=False, **COG)
def deformation_rate(context: dg.AssetExecutionContext, config: DeformationConfig, paths: LsmPaths,
                     study_area_grid: AreaGrid, terrain_factors: RasterFile):
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    if reason := missing_combination_reason(paths.root, area, period):
        yield from skip_missing_combination(context, reason)
        return
    out = paths.output_path("deformation_rate", area, period, "tif")
    if no_insar := no_insar_reason(paths.root, area, period):
        area_scope.write_absent_layer(study_area_grid, out, "velocity_mm_yr", no_insar)
        yield dg.Output(RasterFile(out), metadata={"status": "no InSAR", "reason": no_insar})
        return
    version = delivery_version_for(paths.root, area, period)
    delivery = version.delivery
    summary = deformation.deformation_rate(
        delivery, study_area_grid, out, min_coherence=config.min_coherence, min_epochs=config.min_epochs,
        project_downslope=config.project_downslope, min_sensitivity=config.min_sensitivity,
        slope_deg_path=terrain_factors.path if config.project_downslope else None,
        aspect_deg_path=terrain.aspect_sidecar(terrain_factors.path) if config.project_downslope else None)
    yield dg.Output(RasterFile(out), metadata={
        "delivery": str(delivery.folder), "delivery_version": version.version, "replaces": str(version.replaces),
        "kind": delivery.kind, **{k: v for k, v in summary.as_dict().items() if isinstance(v, (int, float, str, bool))}})


@dg.asset(partitions_def=area_period_partitions, description="All factors aligned on the area grid with one "
          "nodata mask; VIF table in the metadata.", **COG)
def factor_stack(context: dg.AssetExecutionContext, config: FactorStackConfig, paths: LsmPaths,
                 study_area_grid: AreaGrid, terrain_factors: RasterFile, proximity_factors: RasterFile,
                 environment_factors: RasterFile, deformation_rate: RasterFile) -> RasterFile:
    area, period = area_of(context.partition_key), period_of(context.partition_key)
    out = paths.output_path("factor_stack", area, period, "tif")
    cfg = paths.area(area)
    sources, left_out = area_scope.present_sources([
        (terrain_factors, terrain_factors.names), (proximity_factors, proximity_factors.names),
        (environment_factors, environment_factors.names), (deformation_rate, ["velocity_mm_yr"])])
    info = build_factor_stack(sources, RasterFile(study_area_grid.nodata_mask_path), out)
    vif = vif_table(RasterFile(out), n_sample=config.vif_sample, seed=config.seed)
    context.add_output_metadata({
        "valid_pixels": info.valid_pixels, "categorical": ", ".join(info.categorical),
        "vif": dg.MetadataValue.md("| factor | VIF |\n|---|---|\n" +
                                   "\n".join(f"| {k} | {v:.2f} |" for k, v in vif.items())),
        "max_vif": round(max(vif.values()), 2), "factors": ", ".join(info.bands),
        "missing_layers": ", ".join(area_scope.missing_layers(cfg)) or "none",
        "factors_left_out": _left_out_md(area_scope.factors_left_out(cfg, *period_bounds(period), left_out))})
    return RasterFile(out)


def _left_out_md(left_out: dict[str, str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("none" if not left_out else "| factor | why left out |\n|---|---|\n" +
                               "\n".join(f"| {k} | {v} |" for k, v in left_out.items()))
