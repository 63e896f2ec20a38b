"""Table mode from the Dagster UI: one partition per sample table registered with ``lsm add-table``."""

import json

import dagster as dg
import pandas as pd
from pydantic import Field

from lsm_assets.config_names import CvSchemeName, ModelName, plain_names_validator
from lsm_assets.partitions import sample_table_partitions
from lsm_assets.resources import DuckDBCatalog, LsmPaths
from lsm_core import catalog
from lsm_core.io import atomic_path
from lsm_core.models import MODEL_NAMES
from lsm_core.table_registry import catalog_rows, evaluate_registered, input_fingerprint, load_spec

CATALOG_PERIOD = "table"  # the catalog keys result rows by (area, period): a table has no period
MODEL_COLUMNS = ("model", "random_cv_auc", "spatial_cv_auc", "spatial_cv_auc_sd", "external_auc",
                 "insar_pu_spatial_cv_auc", "temporal_auc", "temporal_por", "temporal_lor")


class TableEvaluationConfig(dg.Config):
    models: list[ModelName] = Field(list(MODEL_NAMES), description="Models to evaluate: " + ", ".join(MODEL_NAMES) + ".")
    repeats: int = Field(5, description="Repeats of the outer 5-fold CV (random and spatial).")
    inner_splits: int = Field(3, description="Inner folds of the nested hyperparameter tuning.")
    schemes: list[CvSchemeName] = Field(["random", "spatial"],
                               description="CV schemes: random, spatial; [] for a temporal evaluation alone.")
    deformation_threshold_mm_yr: float = Field(5.0, description="InSAR-PU: |v| below which an absence joins the "
                                               "unlabeled pool (tables registered with a deformation column).")
    seed: int = Field(0, description="Seed of folds, tuning and models.")

    _names = plain_names_validator("models", "schemes")


@dg.asset(partitions_def=sample_table_partitions, group_name="tables", kinds={"sklearn", "duckdb"},
          io_manager_key="table_io_manager",
          description="Table mode (lsm evaluate-table) on a sample table registered with `lsm add-table`: the six "
          "models under random and spatial CV with nested tuning, plus external, InSAR-PU and temporal figures "
          "when the table's spec asks for them. One row per model (DuckDB table sample_table_evaluation); the "
          "full result as JSON beside it.")
def sample_table_evaluation(context: dg.AssetExecutionContext, config: TableEvaluationConfig, paths: LsmPaths,
                            lsm_catalog: DuckDBCatalog) -> pd.DataFrame:
    spec = load_spec(paths.root, context.partition_key)
    fingerprint = input_fingerprint(paths.root, spec)  # before reading: a change while running counts as a change
    result = evaluate_registered(spec, models=config.models, n_repeats=config.repeats,
                                 inner_splits=config.inner_splits, schemes=config.schemes,
                                 deformation_threshold_mm_yr=config.deformation_threshold_mm_yr,
                                 random_state=config.seed)
    js = result.to_json()
    out_json = paths.output_path("sample_table_evaluation", spec.name, None, "json")
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(js, indent=2))
    table = pd.DataFrame(catalog_rows(result, fingerprint))
    with lsm_catalog.connect() as con:
        catalog.replace_partition_rows(con, "sample_table_evaluation", table, spec.name, CATALOG_PERIOD)
    best = table.loc[table["spatial_cv_auc"].astype(float).idxmax()] if table["spatial_cv_auc"].notna().any() else None
    context.add_output_metadata({
        "table": dg.MetadataValue.path(spec.table), "n_positive": result.n_positive, "n_negative": result.n_negative,
        "factors": ", ".join(result.factors), "temporal": result.temporal_status, "insar_pu": result.insar_pu_status,
        "best_spatial_cv": "n/a" if best is None else f"{best['model']} {float(best['spatial_cv_auc']):.3f}",
        "result_json": dg.MetadataValue.path(str(out_json)),
        "table_sha256": str(fingerprint["table_sha256"]),
        "models": dg.MetadataValue.md(table[[c for c in table.columns if c in MODEL_COLUMNS]].round(3)
                                      .to_markdown(index=False)),
        "result": dg.MetadataValue.json(js)})
    return table
