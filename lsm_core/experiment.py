"""The models x negative-strategies experiment of paper a, and picking the model that maps (issue 12).

Every strategy is scored on one yardstick: common spatial folds defined from the positives only
(``yardstick.common_folds``), each model trained outside a fold's region (tuned inside the fold,
nested) and scored on the fold's held-out landslides against a uniform sample of the area's pixels
in that region (``yardstick_auc``: the same test set for every strategy and model), and against the
strategy's own negatives in the region (``spatial_cv_auc``: "against its own negatives", which
only says how easy a strategy's negatives are). For insar_pu and pu the fold's negatives come from
a PU classifier that never saw the fold's test positives. The saved models are tuned on a grouped
60/20/20 split (paper b) of each strategy's whole table (``test_*``: against its own negatives).
``select_model('auto')`` picks the best yardstick AUC of any strategy.
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

from lsm_core import explain
from lsm_core.errors import ConfigError, ModelError
from lsm_core.models import (
    MODEL_NAMES,
    TunedModel,
    auc_score,
    evaluate,
    grid_validation_auc,
    load_model,
    make_model,
    save_model,
    spatial_cv_scores,
    split_60_20_20,
    tune_on_validation,
)
from lsm_core.sampling import subsample_per_class, training_negatives
from lsm_core.yardstick import AREA_SAMPLE, CommonFolds

METRICS = ("auc", "oa", "f1", "precision", "recall", "kappa")
PU_STRATEGIES = ("insar_pu", "pu")  # strategies whose negatives depend on the positives (fold draws in CV)


@dataclass
class StrategyResult:
    """Rows of the comparison table, fitted models, spatial-CV folds and test predictions of one strategy."""

    rows: list[dict] = field(default_factory=list)
    tuned: dict[str, TunedModel] = field(default_factory=dict)
    folds: list[pd.DataFrame] = field(default_factory=list)
    test_predictions: list[pd.DataFrame] = field(default_factory=list)


def training_table(positives: pd.DataFrame, negatives: pd.DataFrame, strategy: str, *,
                   max_per_class: int | None, seed: int) -> pd.DataFrame:
    """Positives plus the negatives of ``strategy``, at most ``max_per_class`` rows per label.

    Only the strategy's own draw: its fold draws (``cv_fold`` >= 0) and the area sample are for CV only.
    """
    neg = training_negatives(negatives)
    neg = neg[neg["strategy"] == strategy]
    if neg.empty:
        raise ModelError(f"no negatives of strategy {strategy!r} (strategies: {sorted(negatives['strategy'].unique())})")
    table = pd.concat([pd.DataFrame(positives), pd.DataFrame(neg)], ignore_index=True)
    return subsample_per_class(table, max_per_class, seed=seed).reset_index(drop=True)


def run_strategy(table: pd.DataFrame, strategy: str, factors: Sequence[str], categorical: Sequence[str],
                 models: Sequence[str], model_dir: str | Path, *, n_splits: int = 5, n_repeats: int = 1,
                 seed: int = 0, fixed_params: Mapping[str, Mapping[str, Any]] | None = None,
                 tuning_params: Mapping[str, Mapping[str, Any]] | None = None) -> StrategyResult:
    """Tune, spatially cross-validate and save every model on one strategy's training table.

    The per-strategy protocol (its own k-means folds over its own rows, parameters tuned once outside
    them), kept for single tables; the asset experiment uses ``final_models`` + ``fold_experiment``.

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
    """The model to map: 'auto' = the best ``yardstick_auc`` of any strategy (ties: higher own-negative
    spatial-CV AUC, then strategy and model names), or '<strategy>/<model>'."""
    if choice == "auto":
        if "yardstick_auc" not in table.columns:
            raise ModelError("the trained-models table has no yardstick_auc (trained before issue 12): "
                             "materialize trained_models again, or name a model as '<strategy>/<model>'")
        return table.loc[_yardstick_order(table)[0]]
    strategy, _, model = choice.partition("/")
    hit = table[(table["strategy"] == strategy) & (table["model"] == model)]
    if hit.empty:
        options = sorted(f"{s}/{m}" for s, m in zip(table["strategy"], table["model"], strict=True))
        raise ConfigError(f"no trained model {choice!r}; trained: {options}")
    return hit.iloc[0]


def best_per_strategy(table: pd.DataFrame) -> pd.DataFrame:
    """Each strategy's best model (one row per strategy, sorted by strategy, column ``ranked_by``): by the
    common yardstick when the table has it, else by the spatial-CV AUC against its own negatives."""
    key = ("yardstick_auc" if "yardstick_auc" in table and table["yardstick_auc"].notna().any()
           else "spatial_cv_auc")
    ranked = table.sort_values([key, "model"], ascending=[False, True], na_position="last")
    return ranked.groupby("strategy", sort=True).head(1).sort_values("strategy").assign(ranked_by=key)


def prediction_rate_auc(later_scores: np.ndarray, area_scores: np.ndarray) -> float:
    """Area under the prediction-rate curve from the scores of later-event pixels and of a uniform area sample.

    With pixels sorted by descending susceptibility, the curve's area equals the probability that a
    later-event pixel outranks a random pixel of the area (ties half): the AUC of events vs area.
    """
    later, area = np.asarray(later_scores, float), np.asarray(area_scores, float)
    if later.size == 0 or area.size == 0:  # e.g. a spatial-CV region without an area-sample pixel
        return float("nan")
    return auc_score(np.r_[np.ones(later.size), np.zeros(area.size)], np.r_[later, area])


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


# -- the common-fold experiment (issue 12) -----------------------------------------------------------

def nested_fit(name: str, X: pd.DataFrame, y: np.ndarray, groups: pd.Series, *, categorical: Sequence[str] = (),
               seed: int = 0, fixed_params: Mapping[str, Any] | None = None,
               tuning_params: Mapping[str, Any] | None = None,
               inner_max_per_class: int | None = 500) -> tuple[Any, dict[str, Any]]:
    """Tune ``name`` on these training rows only (an inner grouped holdout), then fit it on all of them.

    The inner holdout is the train+test / validation split of ``split_60_20_20`` (80/20, landslides
    kept whole) of a seeded subsample of at most ``inner_max_per_class`` rows per class (None = all
    rows: the full nested grid search); every PARAM_GRIDS point is scored on it with
    ``grid_validation_auc`` (staged boosting, SVM decision function, ``tuning_params`` e.g. fewer
    forest trees). Returns (the model fitted on every row with the chosen parameters, those parameters).
    """
    rows = np.arange(len(y))
    if inner_max_per_class is not None:
        rows = subsample_per_class(pd.DataFrame({"label": y}), inner_max_per_class, seed=seed).index.to_numpy()
    g = groups.iloc[rows].reset_index(drop=True)
    train, val, test = split_60_20_20(y[rows], g, seed)
    fit_rows, val_rows = rows[np.sort(np.concatenate([train, test]))], rows[val]
    grid = grid_validation_auc(name, X.iloc[fit_rows], y[fit_rows], X.iloc[val_rows], y[val_rows],
                               categorical=categorical, random_state=seed,
                               fixed_params={**(fixed_params or {}), **(tuning_params or {})})
    aucs = np.array([r["auc"] for r in grid], float)
    best_point = grid[int(np.nanargmax(aucs))] if np.isfinite(aucs).any() else grid[0]
    best = {**(fixed_params or {}),
            **{k: v for k, v in best_point.items() if k != "auc" and k not in (tuning_params or {})}}
    model = make_model(name, params=best, categorical=list(categorical), random_state=seed).fit(X, y)
    return model, best


def _fold_negatives(negatives: pd.DataFrame, strategy: str, fold: int, region: np.ndarray) -> tuple[pd.DataFrame, ...]:
    """(training, test) negatives of ``strategy`` for ``fold``: its own draw split by region, or its fold draw."""
    of = negatives["strategy"].to_numpy() == strategy
    fold_col = negatives["cv_fold"].fillna(-1).to_numpy() if "cv_fold" in negatives.columns else np.full(len(of), -1)
    if strategy in PU_STRATEGIES:
        # the strategy's own draw saw every positive, the test ones too: only its fold draw may be used
        mine = of & (fold_col == fold)
        if not mine.any():
            raise ModelError(f"no fold-{fold} negatives of {strategy}: negative_samples must draw its fold negatives "
                             "(a PU classifier that never saw the fold's test positives) for the spatial CV")
    else:
        mine = of & (fold_col < 0)
    inside = region == fold
    return negatives[mine & ~inside], negatives[mine & inside]


def fold_experiment(positives: pd.DataFrame, negatives: pd.DataFrame, folds: CommonFolds, strategies: Sequence[str],
                    models: Sequence[str], factors: Sequence[str], categorical: Sequence[str], *,
                    max_per_class: int | None = 2000, seed: int = 0,
                    fixed_params: Mapping[str, Mapping[str, Any]] | None = None,
                    tuning_params: Mapping[str, Mapping[str, Any]] | None = None,
                    inner_max_per_class: int | None = 500, without_velocity: Sequence[str] = (),
                    retune_without_velocity: bool = False, velocity_band: str = "velocity_mm_yr",
                    test_max_per_class: int | None = 2000,
                    model_sizes: Mapping[str, tuple[int | None, int | None]] | None = None) -> pd.DataFrame:
    """Spatial CV of every strategy x model on the common folds: one row per fold, strategy, model and variant.

    Fold f trains on the positives of the other folds plus the strategy's negatives outside region f
    (the fold draw for insar_pu / pu), tuned inside the fold (``nested_fit``), and scores
    ``yardstick_auc`` = held-out positives vs the area sample inside region f (the same test set for
    every strategy and model) and ``auc``, ``oa``, ... = held-out positives vs the strategy's own
    negatives inside region f ("against its own negatives"). ``without_velocity``: models also run
    with ``velocity_band`` left out of the factors (``variant`` = "without_velocity"), with the parameters
    the fold chose for the model with every factor (so the two variants differ by the factor only), or tuned
    again without it when ``retune_without_velocity`` (the thorough preset).
    ``negatives`` holds every strategy's rows and the ``area_sample`` rows (see sampling.area_sample).
    ``max_per_class``: training rows per class and fold; ``test_max_per_class``: held-out positives and own
    negatives per fold (seeded uniform draws; the pixels of one landslide are strongly alike, so a few
    thousand score a fold as well as all of them, and predicting them is most of a fold's cost).
    ``model_sizes``: per model name, its own (``max_per_class``, ``inner_max_per_class``), e.g. more rows for
    a model that gains from them (each size is drawn from the same fold rows with the same seed).
    """
    unknown = [m for m in (*models, *without_velocity) if m not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"unknown models {unknown}; choose from {MODEL_NAMES}")
    area = negatives[negatives["strategy"] == AREA_SAMPLE]
    if area.empty:
        raise ModelError("no area_sample rows in the negatives: the yardstick needs a uniform sample of the area")
    pos_fold = folds.positive_folds(positives)
    neg_region = folds.region(negatives["x"].to_numpy(), negatives["y"].to_numpy())
    area_region = folds.region(area["x"].to_numpy(), area["y"].to_numpy())
    variants = [("all_factors", list(factors), list(models))]
    if velocity_band in factors and without_velocity:
        variants.append(("without_velocity", [f for f in factors if f != velocity_band],
                         [m for m in models if m in without_velocity]))
    rows = []
    for fold in range(folds.n_folds):
        test_pos = subsample_per_class(positives[pos_fold == fold], test_max_per_class, seed=seed + fold)
        area_in = area[area_region == fold]
        for strategy in strategies:
            train_neg, test_neg = _fold_negatives(negatives, strategy, fold, neg_region)
            pool = pd.concat([positives[pos_fold != fold], train_neg], ignore_index=True)
            tables: dict[int | None, pd.DataFrame] = {}  # the fold's training rows, per size
            test_neg = subsample_per_class(test_neg, test_max_per_class, seed=seed + fold)
            test = pd.concat([test_pos, test_neg], ignore_index=True)
            chosen: dict[str, dict[str, Any]] = {}  # the parameters each model's all-factor variant chose
            for variant, feats, names in variants:
                cat = [c for c in categorical if c in feats]
                for name in names:
                    start = time.perf_counter()
                    size, inner = (model_sizes or {}).get(name, (max_per_class, inner_max_per_class))
                    if size not in tables:
                        tables[size] = subsample_per_class(pool, size, seed=seed).reset_index(drop=True)
                    train = tables[size]
                    y = train["label"].to_numpy().astype(np.int64)
                    groups = train["landslide_id"].where(train["label"] == 1)
                    if variant == "all_factors" or retune_without_velocity:
                        model, best = nested_fit(name, train[feats], y, groups, categorical=cat, seed=seed,
                                                 fixed_params=(fixed_params or {}).get(name),
                                                 tuning_params=(tuning_params or {}).get(name),
                                                 inner_max_per_class=inner)
                        chosen.setdefault(name, best)
                    else:
                        best = chosen[name]
                        model = make_model(name, params=best, categorical=cat, random_state=seed).fit(train[feats], y)
                    p_test = model.predict_proba(test[feats])[:, 1]
                    p_area = model.predict_proba(area_in[feats])[:, 1] if len(area_in) else np.empty(0)
                    own = evaluate(test["label"].to_numpy(), p_test)
                    rows.append({"fold": fold, "strategy": strategy, "model": name, "variant": variant,
                                 "n_train": len(train), "n_test_positives": len(test_pos),
                                 "n_test_negatives": len(test_neg), "n_area_sample": len(area_in),
                                 "yardstick_auc": prediction_rate_auc(p_test[:len(test_pos)], p_area),
                                 **{k: own[k] for k in METRICS},
                                 "best_params": json.dumps(best, default=str),
                                 "seconds": round(time.perf_counter() - start, 3)})
    return pd.DataFrame(rows)


def summarise_folds(fold_rows: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, model): fold means of the yardstick and own-negative metrics, both feature variants.

    Columns: ``yardstick_auc`` (+ ``_std``), ``spatial_cv_<metric>`` (against its own negatives,
    + ``spatial_cv_auc_std``) and, where the without-velocity variant ran, ``yardstick_auc_without_velocity``
    and ``spatial_cv_auc_without_velocity``.
    """
    def std(s: pd.Series) -> float:
        return float(s.std(ddof=1)) if len(s) > 1 else float("nan")

    out = []
    for (strategy, model), g in fold_rows.groupby(["strategy", "model"], sort=False):
        a = g[g["variant"] == "all_factors"]
        row = {"strategy": strategy, "model": model, "yardstick_auc": float(a["yardstick_auc"].mean()),
               "yardstick_auc_std": std(a["yardstick_auc"]),
               **{f"spatial_cv_{k}": float(a[k].mean()) for k in METRICS}, "spatial_cv_auc_std": std(a["auc"]),
               "spatial_cv_s": round(float(a["seconds"].sum()), 3)}
        nv = g[g["variant"] == "without_velocity"]
        row["yardstick_auc_without_velocity"] = float(nv["yardstick_auc"].mean()) if len(nv) else float("nan")
        row["spatial_cv_auc_without_velocity"] = float(nv["auc"].mean()) if len(nv) else float("nan")
        out.append(row)
    return pd.DataFrame(out)


def final_models(table: pd.DataFrame, strategy: str, factors: Sequence[str], categorical: Sequence[str],
                 models: Sequence[str], model_dir: str | Path, *, seed: int = 0,
                 fixed_params: Mapping[str, Mapping[str, Any]] | None = None,
                 tuning_params: Mapping[str, Mapping[str, Any]] | None = None,
                 grid_max_per_class: int | None = None,
                 grid_max_by_model: Mapping[str, int | None] | None = None) -> list[dict]:
    """The saved models of one strategy: tuned on a grouped 60/20/20 split of its whole table (paper b).

    ``grid_max_per_class``: grid points fitted on at most this many rows per class of the 60 % (see
    ``models.tune_on_validation``); ``grid_max_by_model``: per model name, its own such size.

    One row per model: path, features, parameters and ``test_<metric>`` (the test split: positives
    against the strategy's own negatives), with the test labels and probabilities (ROC curves downstream).
    """
    X, y = table[list(factors)], table["label"].to_numpy()
    groups = table["landslide_id"].where(table["label"] == 1)  # negatives are ungrouped (NaN)
    cat = [c for c in categorical if c in factors]
    rows = []
    for name in models:
        start = time.perf_counter()
        tuned = tune_on_validation(name, X, y, groups, categorical=cat, random_state=seed,
                                   fixed_params=(fixed_params or {}).get(name),
                                   tuning_params=(tuning_params or {}).get(name),
                                   grid_max_per_class=(grid_max_by_model or {}).get(name, grid_max_per_class))
        path = save_model(tuned.model, Path(model_dir) / f"{strategy}__{name}.joblib",
                          metadata={"strategy": strategy, "model": name, "best_params": tuned.best_params,
                                    "feature_names": list(factors), "categorical": cat})
        test = tuned.indices["test"]
        test_proba = tuned.model.predict_proba(X.iloc[test])[:, 1]
        rows.append({"strategy": strategy, "model": name, "model_path": str(path),
                     "features": json.dumps(list(factors)), "best_params": json.dumps(tuned.best_params, default=str),
                     "n_train_rows": len(table),
                     **{f"test_{k}": tuned.test_metrics[k] for k in (*METRICS, "tn", "fp", "fn", "tp")},
                     "tuning_s": round(time.perf_counter() - start, 3),
                     "test_y": json.dumps(y[test].tolist()), "test_proba": json.dumps(test_proba.tolist())})
    return rows


def mark_map_choice(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``map_choice``: 'selected' / 'runner_up' for the two best yardstick AUCs (select_model 'auto')."""
    out = table.copy()
    order = _yardstick_order(out)
    out["map_choice"] = ""
    out.loc[order[:1], "map_choice"] = "selected"
    out.loc[order[1:2], "map_choice"] = "runner_up"
    return out


def _yardstick_order(table: pd.DataFrame) -> list:
    """Row labels from the best to the worst yardstick AUC (ties: higher own-negative CV AUC, then names)."""
    keys = table.assign(_y=table["yardstick_auc"].fillna(-np.inf),
                        _s=table.get("spatial_cv_auc", pd.Series(0.0, index=table.index)).fillna(-np.inf))
    return keys.sort_values(["_y", "_s", "strategy", "model"], ascending=[False, False, True, True]).index.tolist()


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
