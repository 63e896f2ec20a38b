"""Scheduled re-evaluation with declarative automation (DESIGN 3: combinations without a delivery are skipped).

Every area x period asset carries ``reevaluation_condition``: at each tick of the cron
(``LSM_REEVALUATION_CRON``, weekly by default) it is requested if one of its inputs was updated
after it was last materialized or requested, it has been materialized before (a combination
with no delivery never was, so it is skipped, never failed), and none of its inputs is missing or
in progress. Downstream assets follow in the same run, since a dependency that will be requested
counts as updated. ``reevaluation_sensor`` evaluates the conditions and is on by default.
"""

from __future__ import annotations

import os

import dagster as dg

DEFAULT_CRON = "0 3 * * 1"  # Mondays 03:00 UTC


def reevaluation_cron() -> str:
    """The cron of the re-evaluation (``LSM_REEVALUATION_CRON``, default weekly)."""
    return os.environ.get("LSM_REEVALUATION_CRON", DEFAULT_CRON)


def reevaluation_condition(cron: str | None = None, timezone: str = "UTC") -> dg.AutomationCondition:
    """Re-materialize at each cron tick when an input changed since the last materialization or request."""
    cron = cron or reevaluation_cron()
    handled = dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated()
    inputs_changed = dg.AutomationCondition.any_deps_updated().since(handled)
    return (dg.AutomationCondition.cron_tick_passed(cron, timezone)
            & inputs_changed
            & ~dg.AutomationCondition.missing()
            & ~dg.AutomationCondition.any_deps_missing()
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()).with_label(f"re-evaluate on {cron} if inputs changed")


def with_reevaluation(assets: list, partitions_def: dg.PartitionsDefinition, cron: str | None = None) -> list:
    """``assets`` with ``reevaluation_condition`` on every asset of ``partitions_def``."""
    condition = reevaluation_condition(cron)
    out = []
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and a.partitions_def == partitions_def:
            a = a.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=condition))
        out.append(a)
    return out


def reevaluation_sensor(target: dg.AssetSelection) -> dg.AutomationConditionSensorDefinition:
    """The automation sensor that evaluates the re-evaluation conditions, running by default."""
    return dg.AutomationConditionSensorDefinition(
        "reevaluation_sensor", target=target, default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=int(os.environ.get("LSM_SENSOR_INTERVAL_S", "30")),
        description=f"Re-evaluates, at each tick of {reevaluation_cron()!r} (LSM_REEVALUATION_CRON), every "
                    "area x period asset whose inputs changed since its last materialization; combinations "
                    "without a delivery are skipped.")
