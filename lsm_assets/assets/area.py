"""Area-only assets: the study-area grid and the landslide inventory."""


import dagster as dg
import geopandas as gpd

from lsm_assets.partitions import study_area_partitions
from lsm_assets.resources import DuckDBCatalog, LsmPaths
from lsm_core import area_scope, catalog
from lsm_core.area import write_area_mask
from lsm_core.grid import AreaGrid
from lsm_core.inventory import read_inventory


@dg.asset(partitions_def=study_area_partitions, io_manager_key="grid_io_manager", group_name="area",
          kinds={"json"}, description="CRS, transform, shape and valid-pixel mask of the study area (area.yaml + DEM).")
def study_area_grid(context: dg.AssetExecutionContext, paths: LsmPaths) -> AreaGrid:
    cfg = paths.area(context.partition_key)
    mask_path, n_valid = write_area_mask(cfg, paths.output_path("study_area_grid", cfg.name, None, "mask.tif"))
    grid = AreaGrid(cfg.grid.crs, cfg.grid.transform, cfg.grid.height, cfg.grid.width, str(mask_path))
    context.add_output_metadata({"crs": grid.crs, "shape": f"{grid.height} x {grid.width}",
                                 "resolution_m": grid.resolution_m, "valid_pixels": n_valid,
                                 "valid_share": round(n_valid / grid.n_pixels, 4)})
    return grid


@dg.asset(partitions_def=study_area_partitions, io_manager_key="table_io_manager", group_name="area",
          kinds={"duckdb", "geoparquet"},
          description="All landslide events of the area in their newest revision, with dates (DuckDB table "
          "landslide_events; every revision in landslide_event_revisions). Reads the area's inventory file; "
          "updates dropped in incoming/inventory/<area>/ arrive through inventory_update_sensor.")
def landslide_inventory(context: dg.AssetExecutionContext, paths: LsmPaths, lsm_catalog: DuckDBCatalog,
                        study_area_grid: AreaGrid) -> gpd.GeoDataFrame:
    cfg = paths.area(context.partition_key)
    source = cfg.layers["inventory"]
    events = read_inventory(source, study_area_grid)
    with lsm_catalog.connect() as con:
        changes = catalog.upsert_events(con, cfg.name, events, str(source))
        all_events = catalog.read_events(con, cfg.name, study_area_grid.crs)
        state = catalog.inventory_state(con, cfg.name)
    if changes.corrected:
        context.log.warning(f"{source}: {changes.summary()}")
    dated = area_scope.inventory_has_dates(cfg)
    updates = int((all_events["source_file"] != str(source)).sum())  # events whose newest revision is an update
    context.add_output_metadata({"event_dates": "from the inventory" if dated else "none in the inventory (the area's "
                                 "own events carry their period's first day as a stand-in); POR / LOR score only "
                                 f"dated updates after a period ({updates} dated events from updates so far)",
                                 "events": len(all_events), "added": len(changes.added),
                                 "corrected": len(changes.corrected), "revisions": state.n_revisions,
                                 "events_with_corrections": int((all_events["revision"] > 1).sum()),
                                 "first_event": str(state.latest_event_date and all_events["event_date"].min()),
                                 "latest_event": str(state.latest_event_date),
                                 "latest_ingest": str(state.latest_ingest)})
    return all_events
