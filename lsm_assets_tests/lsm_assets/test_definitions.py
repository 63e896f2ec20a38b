"""The code location loads, and the asset graph only changes deliberately."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from lsm_assets.definitions import defs
from lsm_core.models import MODEL_NAMES

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "asset_graph.json"


def asset_graph(d: dg.Definitions) -> dict:
    """Keys, dependencies, partitions, IO managers, groups, checks, automation, descriptions, kinds and config
    schemas of every asset, as plain data."""
    graph = d.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        out[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": _describe(pdef),
            "group": node.group_name,
            "io_manager": node.io_manager_key,
            "checks": sorted(c.name for c in graph.asset_check_keys if c.asset_key == key),
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
            "description": node.description,
            "kinds": sorted(node.kinds),
            "config": _config_fields(node.assets_def),
        }
    return out


def _config_fields(assets_def: dg.AssetsDefinition) -> dict:
    """Launchpad fields of an asset: type, default and description of each."""
    schema = assets_def.op.config_schema
    if schema is None:
        return {}
    fields = getattr(schema.as_field().config_type, "fields", None) or {}
    return {name: {"type": f.config_type.given_name or f.config_type.key,
                   "default": repr(f.default_value) if f.default_provided else None, "description": f.description}
            for name, f in sorted(fields.items())}


def _describe(pdef) -> str | list | None:
    if pdef is None:
        return None
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        return [f"{d.name}:{d.partitions_def.name}" for d in pdef.partitions_defs]
    return f"dynamic:{pdef.name}"


def test_asset_graph_matches_snapshot():
    """Set LSM_UPDATE_SNAPSHOT=1 to rewrite the snapshot after a deliberate change."""
    current = asset_graph(defs)
    if os.environ.get("LSM_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: run with LSM_UPDATE_SNAPSHOT=1 once"
    assert current == json.loads(SNAPSHOT.read_text()), "asset graph changed: if deliberate, LSM_UPDATE_SNAPSHOT=1"


def test_graph_contract_names_and_partitions():
    graph = asset_graph(defs)
    assert graph["study_area_grid"]["partitions"] == "dynamic:study_area"
    assert graph["landslide_inventory"]["deps"] == ["study_area_grid"]


def test_definitions_validate_from_the_workspace(tmp_path):
    root = Path(__file__).resolve().parents[2]
    exe = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([str(exe), "definitions", "validate", "-w", "workspace.yaml"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


def test_presets_and_side_by_side_config_are_valid_run_config():
    """`--preset thorough` and the side-by-side override name real assets and config fields."""
    from lsm_assets.materialize import PRESETS, SIDE_BY_SIDE_CONFIG, merge_run_config
    from lsm_assets.partitions import area_period_partitions

    pair_assets = [k for a in defs.assets for k in a.keys if a.partitions_def == area_period_partitions]
    job = dg.define_asset_job("pairs", selection=pair_assets).resolve(asset_graph=defs.resolve_asset_graph())
    for name, preset in PRESETS.items():
        config = merge_run_config(SIDE_BY_SIDE_CONFIG, preset)
        assert dg.validate_run_config(job, config), name
    thorough = PRESETS["thorough"]["ops"]
    assert thorough["negative_samples"]["config"]["bags"] == 100
    assert thorough["trained_models"]["config"] == {"forest_trees": 300, "forest_tuning_trees": 300,
                                                    "mlp_tuning_patience": 20, "gbdt_binned": False,
                                                    "lightgbm_bins": 255,
                                                    "tuning_max_per_class": None,
                                                    "cv_max_samples_per_class": None,
                                                    "mlp_tuning_max_per_class": None,
                                                    "mlp_cv_max_samples_per_class": None,
                                                    "without_velocity_models": list(MODEL_NAMES),
                                                    "retune_without_velocity": True}
    assert thorough["negative_samples"]["config"]["fold_bags"] == 30
    assert thorough["shap_importance"]["config"]["agnostic_method"] == "kernel"
