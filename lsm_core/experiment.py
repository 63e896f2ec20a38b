"""The models x negative-strategies experiment of paper a, and picking the model that maps.

For each strategy the training table is the positives plus that strategy's negatives; each model
is tuned on a grouped 60/20/20 split (paper b) and scored by k-means spatial cross-validation
with its tuned parameters. Test sets differ between strategies, so their AUCs alone cannot rank
the strategies: ``prediction_rate_auc`` scores every model on the same later events instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from lsm_core import explain
from lsm_core.errors import ConfigError, ModelError
from lsm_core.models import (
    MODEL_NAMES,
    TunedModel,
    load_model,
    make_model,
    save_model,
    spatial_cv_scores,
    tune_on_validation,
)
from lsm_core.sampling import subsample_per_class

METRICS = ("auc", "oa", "f1", "precision", "recall", "kappa")


@dataclass
class StrategyResult:
    """Rows of the comparison table, fitted models, spatial-CV folds and test predictions of one strategy."""

    rows: list[dict] = field(default_factory=list)
    tuned: dict[str, TunedModel] = field(default_factory=dict)
    folds: list[pd.DataFrame] = field(default_factory=list)
    test_predictions: list[pd.DataFrame] = field(default_factory=list)


def training_table(positives: pd.DataFrame, negatives: pd.DataFrame, strategy: str, *,
                   max_per_class: int | None, seed: int) -> pd.DataFrame:
    """Positives plus the negatives of ``strategy``, at most ``max_per_class`` rows per label."""
    neg = negatives[negatives["strategy"] == strategy]
    if neg.empty:
        raise ModelError(f"no negatives of strategy {strategy!r} (strategies: {sorted(negatives['strategy'].unique())})")
    table = pd.concat([pd.DataFrame(positives), pd.DataFrame(neg)], ignore_index=True)
    return subsample_per_class(table, max_per_class, seed=seed).reset_index(drop=True)


def run_strategy(table: pd.DataFrame, strategy: str, factors: Sequence[str], categorical: Sequence[str],
                 models: Sequence[str], model_dir: str | Path, *, n_splits: int = 5, n_repeats: int = 1,
                 seed: int = 0, fixed_params: Mapping[str, Mapping[str, Any]] | None = None,
                 tuning_params: Mapping[str, Mapping[str, Any]] | None = None) -> StrategyResult:
    """Tune, spatially cross-validate and save every model on one strategy's training table.

    ``fixed_params``: per model name, parameters fixed for its grid search, refit and spatial CV
    (e.g. ``{"random_forest": {"n_estimators": 100}}``); ``tuning_params``: per model name, parameters
    that override those during the grid search only (e.g. fewer trees to score the forest's grid points).
    """
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"unknown models {unknown}; choose from {MODEL_NAMES}")
    X, y = table[list(factors)], table["label"].to_numpy()
    groups = table["landslide_id"].where(table["label"] == 1)  # negatives are ungrouped (NaN)
    coords = table[["x", "y"]].to_numpy()
    cat = [c for c in categorical if c in factors]
    out = StrategyResult()
    for name in models:
        start = time.perf_counter()
        tuned = tune_on_validation(name, X, y, groups, categorical=cat, random_state=seed,
                                   fixed_params=(fixed_params or {}).get(name),
                                   tuning_params=(tuning_params or {}).get(name))
        tuned_at = time.perf_counter()
        folds = spatial_cv_scores(name, X, y, coords, groups, params=tuned.best_params, categorical=cat,
                                  n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
        path = save_model(tuned.model, Path(model_dir) / f"{strategy}__{name}.joblib",
                          metadata={"strategy": strategy, "model": name, "best_params": tuned.best_params,
                                    "feature_names": list(factors), "categorical": cat})
        test = tuned.indices["test"]
        test_proba = tuned.model.predict_proba(X.iloc[test])[:, 1]
        out.test_predictions.append(pd.DataFrame({"strategy": strategy, "model": name, "y": y[test],
                                                  "proba": test_proba}))
        out.folds.append(folds.assign(strategy=strategy, model=name))
        out.tuned[name] = tuned
        out.rows.append({"strategy": strategy, "model": name, "model_path": str(path), "features": json.dumps(list(factors)),
                         "best_params": json.dumps(tuned.best_params, default=str), "n_train_rows": len(table),
                         **{f"test_{k}": tuned.test_metrics[k] for k in (*METRICS, "tn", "fp", "fn", "tp")},
                         **{f"spatial_cv_{k}": float(folds[k].mean()) for k in METRICS},
                         "spatial_cv_auc_std": float(folds["auc"].std(ddof=1)) if len(folds) > 1 else float("nan"),
                         "tuning_s": round(tuned_at - start, 3), "spatial_cv_s": round(time.perf_counter() - tuned_at, 3),
                         # the test split's labels and probabilities travel with the row (ROC curves downstream)
                         "test_y": json.dumps(y[test].tolist()), "test_proba": json.dumps(test_proba.tolist())})
    return out


def test_predictions(table: pd.DataFrame) -> pd.DataFrame:
    """The test split's (strategy, model, y, proba) of every row of a ``run_strategy`` table."""
    return pd.concat([pd.DataFrame({"strategy": r["strategy"], "model": r["model"], "y": json.loads(r["test_y"]),
                                    "proba": json.loads(r["test_proba"])}) for _, r in table.iterrows()],
                     ignore_index=True)


def select_model(table: pd.DataFrame, choice: str = "auto") -> pd.Series:
    """The model to map: 'auto' = the insar_pu model with the best spatial-CV AUC (else the best overall),
    or '<strategy>/<model>'."""
    if choice == "auto":
        pool = table[table["strategy"] == "insar_pu"]
        pool = pool if len(pool) else table
        return pool.sort_values(["spatial_cv_auc", "model"], ascending=[False, True]).iloc[0]
    strategy, _, model = choice.partition("/")
    hit = table[(table["strategy"] == strategy) & (table["model"] == model)]
    if hit.empty:
        options = sorted(f"{s}/{m}" for s, m in zip(table["strategy"], table["model"], strict=True))
        raise ConfigError(f"no trained model {choice!r}; trained: {options}")
    return hit.iloc[0]


def prediction_rate_auc(later_scores: np.ndarray, area_scores: np.ndarray) -> float:
    """Area under the prediction-rate curve from the scores of later-event pixels and of a uniform area sample.

    With pixels sorted by descending susceptibility, the curve's area equals the probability that a
    later-event pixel outranks a random pixel of the area (ties half): the AUC of events vs area.
    """
    later, area = np.asarray(later_scores, float), np.asarray(area_scores, float)
    if later.size == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(later.size), np.zeros(area.size)], np.r_[later, area]))


def prediction_rate_aucs(table: pd.DataFrame, later_pixels: pd.DataFrame, area_pixels: pd.DataFrame, *,
                         model_root: str | Path = ".") -> list[float]:
    """Prediction-rate AUC of every saved model of ``table`` on the same later events and area sample.

    ``model_root``: the folder ``model_path`` is relative to (absolute paths are used as they are).
    """
    if later_pixels.empty:
        return [float("nan")] * len(table)
    out = []
    for path in table["model_path"]:
        model, meta = load_model(Path(model_root) / path)
        later, area = (model.predict_proba(px[meta["feature_names"]])[:, 1] for px in (later_pixels, area_pixels))
        out.append(prediction_rate_auc(later, area))
    return out


def importance_rows(models: pd.DataFrame, table: pd.DataFrame, *, n_explain: int, seed: int,
                    plot_model: str | None = None, plot_path: str | Path | None = None,
                    model_root: str | Path = ".", **shap_options: Any) -> list[dict]:
    """Mean |SHAP| per factor of each saved model of one strategy, explained on that strategy's samples.

    ``shap_options`` go to ``explain.shap_values_for_plot`` (e.g. ``agnostic_method``). The summary plot of
    ``plot_model`` is drawn from the same SHAP values, not computed a second time.
    """
    rows = []
    for _, r in models.iterrows():
        model, meta = load_model(Path(model_root) / r["model_path"])
        X = table[meta["metadata"]["feature_names"]]
        sv = explain.shap_values_for_plot(model, X, n_explain=n_explain, random_state=seed, **shap_options)
        imp = sv.importance()
        rows += [{"strategy": r["strategy"], "model": r["model"], "factor": f, "mean_abs_shap": float(v),
                  "share": float(s), "output": imp.attrs["output"], "explainer": sv.explainer}
                 for (f, v), s in zip(imp.items(), explain.importance_shares(imp), strict=True)]
        if r["model"] == plot_model and plot_path is not None:
            explain.plot_shap_values(sv, plot_path)
    return rows


def ranking_stability(model_row: pd.Series, table: pd.DataFrame, *, n_bootstrap: int, seed: int,
                      model_root: str | Path = ".") -> dict:
    """Spearman and Kendall stability of the SHAP ranking of one tuned model refitted on bootstrap resamples."""
    _, meta = load_model(Path(model_root) / model_row["model_path"])
    est = make_model(model_row["model"], params=json.loads(model_row["best_params"]), random_state=seed,
                     categorical=meta["metadata"]["categorical"])
    st = explain.importance_stability(est, table[json.loads(model_row["features"])], table["label"].to_numpy(),
                                      n_bootstrap=n_bootstrap, random_state=seed)
    return {"spearman": st["spearman"], "kendall": st["kendall"]}
