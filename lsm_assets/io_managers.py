"""IO managers keyed by asset and partition: ``warehouse/<asset>/<area>/<period>.<ext>`` (DESIGN 4).

Rasters are COGs with band names; vectors GeoParquet; the area grid JSON. Downstream assets get a
lazily opened ``RasterFile`` so they can read window by window.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq

from lsm_assets.partitions import area_of, period_of
from lsm_assets.resources import LsmPaths
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterArray, RasterFile, write_table, write_text, write_vector


class _WarehouseIOManager(dg.ConfigurableIOManager):
    """Shared path logic: one file per asset partition under the warehouse of ``paths``."""

    paths: LsmPaths

    @property
    def data_root(self) -> Path:
        return self.paths.root

    @property
    def extension(self) -> str:
        raise NotImplementedError

    def path_for(self, asset: str, partition_key: Any) -> Path:
        return self.paths.output_path(asset, area_of(partition_key), period_of(partition_key), self.extension)

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        asset = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            raise dg.DagsterInvariantViolationError(f"{asset}: warehouse outputs are partitioned by study area")
        if isinstance(context, dg.InputContext) and len(context.asset_partition_keys) != 1:
            raise dg.DagsterInvariantViolationError(
                f"{asset}: loading {len(context.asset_partition_keys)} partitions at once is not supported")
        return self.path_for(asset, context.asset_partition_key)

    def _existing(self, context: dg.InputContext) -> Path:
        path = self._path(context)
        if not path.exists():
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()} has no output for partition {context.asset_partition_key} "
                f"({path} is missing): materialize it first")
        return path


class CogIOManager(_WarehouseIOManager):
    """Multi-band Cloud-Optimized GeoTIFFs; band names kept as band descriptions."""

    @property
    def extension(self) -> str:
        return "tif"

    def handle_output(self, context: dg.OutputContext, obj: RasterArray | RasterFile) -> None:
        path = self._path(context)
        if isinstance(obj, RasterArray):
            obj = obj.write(path)
        elif isinstance(obj, RasterFile):
            if obj.path.resolve() != path.resolve():
                # windowed producers may write elsewhere on the same disk; publishing is a rename
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(obj.path, path)
                obj = RasterFile(path)
        else:
            raise TypeError(f"CogIOManager expects RasterArray or RasterFile, got {type(obj).__name__}")
        grid = obj.grid
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "bands": ", ".join(obj.names),
                                     "crs": grid.crs, "shape": f"{grid.height} x {grid.width}"})

    def load_input(self, context: dg.InputContext) -> RasterFile:
        return RasterFile(self._existing(context))


class TableIOManager(_WarehouseIOManager):
    """Tables as Parquet: GeoDataFrames as GeoParquet (open in QGIS), plain DataFrames as Parquet."""

    @property
    def extension(self) -> str:
        return "parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        path = self._path(context)
        if isinstance(obj, gpd.GeoDataFrame):
            write_vector(path, obj)
        else:
            write_table(path, obj)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        path = self._existing(context)
        if b"geo" in (pq.read_schema(path).metadata or {}):
            return gpd.read_parquet(path)
        return pd.read_parquet(path)


class GridIOManager(_WarehouseIOManager):
    """The study-area grid as JSON."""

    @property
    def extension(self) -> str:
        return "json"

    def handle_output(self, context: dg.OutputContext, obj: AreaGrid) -> None:
        # the mask path is stored relative to the data root, so that the warehouse can be moved or shared
        path = write_text(self._path(context), obj.relative_to(self.data_root).to_json())
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> AreaGrid:
        return AreaGrid.from_json(self._existing(context).read_text()).with_mask_under(self.data_root)
