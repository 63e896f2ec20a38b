"""What the last evaluation of an area and period said, read back from the DuckDB catalog.

``partition_report`` gathers, for one (area, period): the models table (both protocols and the
prediction-rate AUC on later events), the model that maps, the adaptive threshold t*, TA / POR / LOR
now (per threshold method) and their history over evaluations, and the deformation x susceptibility
consistency. All shares are fractions 0..1, t* in percent. The keys are documented in the README
("lsm report").
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pandas as pd

from lsm_core.errors import LsmError

__all__ = ["REPORT_KEYS", "partition_report", "report_markdown"]

REPORT_KEYS = ("area", "period", "models", "map_model", "t_star_pct", "weighting", "evaluation", "history",
               "contingency")
# yardstick_auc: held-out landslides vs the area, the same test set for every strategy (issue 12); test_auc and
# spatial_cv_auc score each strategy against its own negatives
_MODEL_COLUMNS = ["strategy", "model", "yardstick_auc", "yardstick_auc_without_velocity", "map_choice", "test_auc",
                  "spatial_cv_auc", "spatial_cv_auc_std", "prediction_rate_auc"]
_OWN_NEGATIVES = {c: f"{c} (own negatives)" for c in ("test_auc", "spatial_cv_auc", "spatial_cv_auc_std")}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _rows(con: duckdb.DuckDBPyConnection, table: str, area: str, period: str) -> pd.DataFrame:
    if table not in _tables(con):
        return pd.DataFrame()
    return con.execute(f'SELECT * FROM "{table}" WHERE area = ? AND period = ?', [area, period]).df()


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN -> None, numpy -> Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _records(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in df.columns]
    return [{c: _clean(v) for c, v in zip(cols, row, strict=True)} for row in df[cols].itertuples(index=False)]


def partition_report(con: duckdb.DuckDBPyConnection, area: str, period: str) -> dict[str, Any]:
    """The report of one (area, period) as a JSON-ready dict with the keys of ``REPORT_KEYS``.

    Raises LsmError when the catalog holds nothing for the partition (not materialized yet).
    """
    models = _rows(con, "model_comparison", area, period)
    if models.empty:
        models = _rows(con, "trained_models", area, period)
    threshold = _rows(con, "js_threshold", area, period)
    evaluation = _rows(con, "prone_area_evaluation", area, period)
    contingency = _rows(con, "deformation_susceptibility_contingency", area, period)
    if models.empty and threshold.empty and evaluation.empty:
        raise LsmError(f"nothing in the catalog for area {area!r} and period {period!r}: materialize it first "
                       "(lsm materialize, or the Dagster UI)")
    latest = evaluation[evaluation["evaluated_at"] == evaluation["evaluated_at"].max()] if len(evaluation) else evaluation
    eval_cols = ["threshold_name", "threshold", "TA", "POR", "LOR", "L", "L_dropped", "prone_share",
                 "map_prediction_rate_auc", "status"]
    history = []
    for when, rows in evaluation.sort_values("evaluated_at").groupby("evaluated_at", sort=True):
        history.append({"evaluated_at": _clean(pd.Timestamp(when)),
                        "inventory_events": _clean(rows["inventory_n_events"].iloc[0])
                        if "inventory_n_events" in rows else None,
                        "inventory_latest_event_date": _clean(rows["inventory_latest_event_date"].iloc[0])
                        if "inventory_latest_event_date" in rows else None,
                        "thresholds": _records(rows, ["threshold_name", "TA", "POR", "LOR"])})
    cont: dict[str, Any] | None = None
    if len(contingency):
        every = contingency[contingency["table"] == "susceptibility"]
        # the matrix of the mapped model (every pixel); the other strategies' best models give their score only
        sus = every[every["mapped"].astype(bool)] if "mapped" in every else every
        cont = {"consistency_score": _clean(sus["consistency_score"].iloc[0]) if "consistency_score" in sus else None,
                "counts": {str(v): {str(c): int(n) for c, n in zip(g["column"], g["count"], strict=True)}
                           for v, g in sus.groupby("velocity_class", sort=False)}}
        if "strategy" in every:
            cont["by_strategy"] = _records(every.drop_duplicates(["strategy", "model", "mapped"]),
                                           ["strategy", "model", "mapped", "n_sampled", "consistency_score",
                                            "consistency_se"])
    return {
        "area": area, "period": period,
        "models": _records(models.sort_values(["strategy", "model"]), _MODEL_COLUMNS),
        "map_model": _clean(threshold["model"].iloc[0]) if len(threshold) else None,
        "t_star_pct": _clean(threshold["t_star_pct"].iloc[0]) if len(threshold) else None,
        "weighting": _clean(threshold["weighting"].iloc[0]) if len(threshold) else None,
        "evaluation": _records(latest, eval_cols),
        "history": history,
        "contingency": cont,
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables, for a terminal or a notebook."""
    lines = [f"# {report['area']} {report['period']}", "",
             f"map model: {report['map_model']}   t*: {report['t_star_pct']} %   weighting: {report['weighting']}", ""]
    if report["models"]:
        lines += ["## models (yardstick: held-out landslides vs the area; own negatives: each strategy's own)",
                  pd.DataFrame(report["models"]).round(3).rename(columns=_OWN_NEGATIVES).to_markdown(index=False), ""]
    if report["evaluation"]:
        lines += ["## evaluation (latest)", pd.DataFrame(report["evaluation"]).round(3).to_markdown(index=False), ""]
    if report["history"]:
        rows = [{"evaluated_at": h["evaluated_at"], "events": h["inventory_events"], **{
            f"{t['threshold_name']} {m}": t[m] for t in h["thresholds"] for m in ("POR", "LOR")}}
            for h in report["history"]]
        lines += ["## history", pd.DataFrame(rows).round(3).to_markdown(index=False), ""]
    if report["contingency"]:
        lines += [f"## contingency (consistency score {report['contingency']['consistency_score']})",
                  pd.DataFrame(report["contingency"]["counts"]).T.to_markdown(), ""]
        if report["contingency"].get("by_strategy"):
            lines += ["## consistency by strategy (best model of each; mapped = every pixel, else a pixel sample)",
                      pd.DataFrame(report["contingency"]["by_strategy"]).round(4).to_markdown(index=False), ""]
    return "\n".join(lines)
