"""The code location: assets, resources and IO managers, merged from one module per domain."""

import dagster as dg

from lsm_assets.assets import area, factors, learning, zoning
from lsm_assets.materialize import resources_for
from lsm_assets.resources import default_data_root

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([area, factors, learning, zoning]),
    resources=resources_for(default_data_root()),
)
