"""The code location: assets, checks, sensors and automation, resources and IO managers, one module per domain."""

import os

import dagster as dg

from lsm_assets import checks, schedules, sensors
from lsm_assets.assets import area, factors, learning, tables, zoning
from lsm_assets.materialize import resources_for
from lsm_assets.partitions import area_period_partitions
from lsm_assets.resources import DATA_ROOT_VARIABLE, default_data_root

# the UI shows the data root as the environment variable it comes from; unset, it is the project's data/
os.environ.setdefault(DATA_ROOT_VARIABLE, default_data_root())

assets = schedules.with_reevaluation(dg.load_assets_from_modules([area, factors, learning, tables, zoning]),
                                     area_period_partitions)

defs = dg.Definitions(
    assets=assets,
    asset_checks=checks.CHECKS,
    sensors=[sensors.insar_delivery_sensor, sensors.inventory_update_sensor,
             schedules.reevaluation_sensor(dg.AssetSelection.all())],
    resources=resources_for(dg.EnvVar(DATA_ROOT_VARIABLE)),
)
