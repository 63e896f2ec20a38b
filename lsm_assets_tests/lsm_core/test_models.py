"""Tests for lsm_core.models: the six pipelines, metrics, 60/20/20 tuning, spatial-CV scores, persistence."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import cross_validate

from lsm_core.errors import ConfigError, ModelError
from lsm_core.models import (
    DEFAULT_PARAMS,
    MODEL_NAMES,
    PARAM_GRIDS,
    auc_score,
    check_training_data,
    evaluate,
    grid_validation_auc,
    load_model,
    make_model,
    save_model,
    sidecar_path,
    spatial_cv_scores,
    split_60_20_20,
    tune_on_validation,
)
from lsm_core.spatial_cv import SpatialKFold

FACTORS = ["slope", "lith", "elev"]


@pytest.fixture(scope="module")
def samples() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """300 points: factors (slope deg, lithology code, elevation m), labels, coords (m), landslide ids."""
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({"slope": rng.uniform(0, 50, n), "lith": rng.integers(1, 4, n), "elev": rng.normal(2000, 200, n)})
    logit = 0.12 * (X["slope"] - 25) + 1.0 * (X["lith"] == 2) + rng.normal(0, 1, n)
    y = (logit > 0).to_numpy(np.int64)
    coords = rng.uniform(0, 5_000, size=(n, 2))
    groups = np.full(n, np.nan)  # positives in landslides of 1-4 pixels, negatives ungrouped
    pos = np.flatnonzero(y == 1)
    groups[pos] = np.arange(len(pos)) // rng.integers(1, 5)
    return X, y, coords, groups


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_fits_is_seeded_and_takes_frames_or_arrays(name, samples):
    X, y, _, _ = samples
    p1 = make_model(name, categorical=["lith"]).fit(X, y).predict_proba(X)[:, 1]
    p2 = make_model(name, categorical=["lith"]).fit(X, y).predict_proba(X)[:, 1]
    p3 = make_model(name, categorical=[1]).fit(X.to_numpy(), y).predict_proba(X.to_numpy())[:, 1]
    assert np.all((p1 >= 0) & (p1 <= 1))
    assert np.array_equal(p1, p2), "same seed must give the same model"
    np.testing.assert_allclose(p1, p3, atol=1e-12)
    assert roc_auc_score(y, p1) > 0.8


def test_column_handling_per_model_family(samples):
    X, y, _, _ = samples
    scaled = make_model("svm", categorical=["lith"])[:2].fit(X, y).transform(X)
    assert scaled.shape[1] == 3 + 2  # lithology one-hot (3 codes) + two scaled factors
    np.testing.assert_allclose(scaled[:, 3:].mean(axis=0), 0, atol=1e-9)
    codes = make_model("random_forest", categorical=["lith"])[:2].fit(X, y).transform(X)
    assert np.array_equal(codes, X.to_numpy())  # trees split on the codes, columns in order
    lgb_in = make_model("lightgbm", categorical=["lith"])[:2].fit(X, y).transform(X)
    assert isinstance(lgb_in["cat__lith"].dtype, pd.CategoricalDtype)


def test_grids_are_small_and_hold_paper_b_gbdt():
    for name in MODEL_NAMES:
        n_points = int(np.prod([len(v) for v in PARAM_GRIDS[name].values()]))
        assert 1 < n_points <= 8, name
    gbdt = PARAM_GRIDS["gbdt"]
    assert 0.05 in gbdt["learning_rate"] and 150 in gbdt["n_estimators"] and 7 in gbdt["max_depth"]
    assert DEFAULT_PARAMS["gbdt"] == {"learning_rate": 0.05, "n_estimators": 150, "max_depth": 7}


def test_monotone_constraints_hold_along_slope(samples):
    X, y, _, _ = samples
    grid = pd.DataFrame({"slope": np.linspace(0, 50, 60), "lith": 1, "elev": 2000.0})
    for name in ("lightgbm", "random_forest"):
        model = make_model(name, categorical=["lith"], monotone={"slope": 1}, feature_names=FACTORS).fit(X, y)
        assert np.all(np.diff(model.predict_proba(grid)[:, 1]) >= -1e-12), name
    with pytest.raises(ConfigError, match="feature_names"):
        make_model("lightgbm", monotone={"slope": 1})
    with pytest.raises(ConfigError, match="non-categorical"):
        make_model("lightgbm", categorical=["lith"], monotone={"lith": 1}, feature_names=FACTORS)
    with pytest.raises(ConfigError, match="random_forest and lightgbm"):
        make_model("svm", monotone={"slope": 1}, feature_names=FACTORS)


def test_evaluate_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    m = evaluate(y, np.c_[1 - p, p], threshold=0.5)
    pred = (p >= 0.5).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["oa"] == pytest.approx(accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert [m[k] for k in ("tn", "fp", "fn", "tp")] == confusion_matrix(y, pred).ravel().tolist()


def test_evaluate_degenerate_cases_give_numbers_not_warnings():
    none_predicted = evaluate([0, 1, 1, 0], [0.1, 0.2, 0.3, 0.4])
    assert none_predicted["precision"] == 0.0 and none_predicted["f1"] == 0.0 and none_predicted["tp"] == 0
    assert none_predicted["kappa"] == 0.0
    assert np.isnan(evaluate([1, 1], [0.2, 0.9])["auc"])


def test_split_60_20_20_is_grouped_stratified_and_seeded(samples):
    _, y, _, groups = samples
    train, val, test = split_60_20_20(y, groups, random_state=3)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    for idx, share in ((train, 0.6), (val, 0.2), (test, 0.2)):
        for cls in (0, 1):
            assert np.sum(y[idx] == cls) / np.sum(y == cls) == pytest.approx(share, abs=0.03)
    split_of = np.empty(len(y), int)
    for k, idx in enumerate((train, val, test)):
        split_of[idx] = k
    for g in np.unique(groups[~np.isnan(groups)]):
        assert len(np.unique(split_of[groups == g])) == 1
    again = split_60_20_20(y, groups, random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not np.array_equal(test, split_60_20_20(y, groups, random_state=4)[2])


def test_split_needs_three_units_per_class():
    with pytest.raises(ModelError, match="class 1 has 2"):
        split_60_20_20([0] * 10 + [1] * 4, [np.nan] * 10 + [1, 1, 2, 2])


@pytest.mark.parametrize("name", ["logistic_regression", "gbdt"])
def test_tune_on_validation(name, samples):
    X, y, _, groups = samples
    tuned = tune_on_validation(name, X, y, groups, categorical=["lith"], random_state=0)
    grid = PARAM_GRIDS[name]
    assert len(tuned.validation_auc) == int(np.prod([len(v) for v in grid.values()]))
    assert all(tuned.best_params[k] in grid[k] for k in grid)
    best_row = tuned.validation_auc["auc"].idxmax()
    assert tuned.validation_auc.loc[best_row, "auc"] == tuned.validation_auc["auc"].max()
    assert tuned.refit_on == "train+validation"
    test = tuned.indices["test"]
    assert tuned.test_metrics == evaluate(y[test], tuned.model.predict_proba(X.iloc[test]))
    assert tuned.test_metrics["auc"] > 0.75


@pytest.mark.parametrize("name", ["svm", "gbdt", "lightgbm", "random_forest"])
def test_grid_shortcuts_give_the_aucs_of_fitting_every_point(name, samples):
    """Staged boosting and the SVM's decision function are exact; the forest is exact at full size."""
    from sklearn.model_selection import ParameterGrid

    X, y, _, groups = samples
    train, val, _ = split_60_20_20(y, groups, 0)
    fast = grid_validation_auc(name, X.iloc[train], y[train], X.iloc[val], y[val], categorical=["lith"])
    slow = [evaluate(y[val], make_model(name, params=p, categorical=["lith"]).fit(X.iloc[train], y[train])
                     .predict_proba(X.iloc[val]))["auc"] for p in ParameterGrid(PARAM_GRIDS[name])]
    assert [r["auc"] for r in fast] == pytest.approx(slow, abs=1e-12)
    assert [{k: v for k, v in r.items() if k != "auc"} for r in fast] == list(ParameterGrid(PARAM_GRIDS[name]))


def test_fixed_params_hold_for_the_grid_the_refit_and_best_params(samples):
    X, y, _, groups = samples
    tuned = tune_on_validation("random_forest", X, y, groups, categorical=["lith"],
                               fixed_params={"n_estimators": 20})
    assert tuned.model[-1].n_estimators == 20 and tuned.best_params["n_estimators"] == 20
    full = tune_on_validation("random_forest", X, y, groups, categorical=["lith"])
    assert full.model[-1].n_estimators == DEFAULT_PARAMS["random_forest"]["n_estimators"]
    assert not tuned.validation_auc["auc"].equals(full.validation_auc["auc"])


def test_spatial_cv_scores_table(samples):
    X, y, coords, groups = samples
    table = spatial_cv_scores("logistic_regression", X, y, coords, groups, params={"C": 10.0},
                              categorical=["lith"], n_splits=4, n_repeats=2, random_state=0)
    assert list(table[["repeat", "fold"]].itertuples(index=False, name=None)) == list(product(range(2), range(4)))
    assert {"auc", "oa", "f1", "precision", "recall", "kappa", "tn", "fp", "fn", "tp"} <= set(table.columns)
    assert (table["n_train"] + table["n_test"] == len(y)).all()
    assert table["auc"].between(0.6, 1.0).all()


def test_pipelines_compose_with_cross_validate(samples):
    X, y, coords, _ = samples
    res = cross_validate(make_model("lightgbm", categorical=["lith"]), X, y,
                         cv=SpatialKFold(5, coords=coords, random_state=0), scoring="roc_auc")
    assert np.all(res["test_score"] > 0.6)


@pytest.mark.parametrize("name", ["lightgbm", "svm"])
def test_saved_and_reloaded_models_predict_identically(name, samples, tmp_path):
    X, y, _, _ = samples
    model = make_model(name, categorical=["lith"]).fit(X, y)
    path = save_model(model, tmp_path / "m" / "model.joblib", metadata={"area": "karst", "threshold": np.float64(0.4)})
    loaded, meta = load_model(path)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert meta["feature_names"] == FACTORS
    assert meta["metadata"] == {"area": "karst", "threshold": 0.4}
    assert set(meta["versions"]) == {"sklearn", "lightgbm", "numpy", "python"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.joblib", "model.joblib.json"]  # no temp files


def test_load_refuses_other_library_versions_and_changed_files(samples, tmp_path):
    X, y, _, _ = samples
    path = save_model(make_model("logistic_regression").fit(X, y), tmp_path / "model.joblib")
    side = json.loads(sidecar_path(path).read_text())
    for lib in ("sklearn", "lightgbm"):
        changed = {**side, "versions": {**side["versions"], lib: "0.0.1"}}
        sidecar_path(path).write_text(json.dumps(changed))
        with pytest.raises(ModelError, match=rf"{lib} 0\.0\.1.*{lib} {side['versions'][lib]}"):
            load_model(path)
    sidecar_path(path).write_text(json.dumps(side))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="sha256"):
        load_model(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelError, match="sidecar"):
        load_model(path)


def test_unserialisable_metadata_writes_nothing(samples, tmp_path):
    X, y, _, _ = samples
    with pytest.raises(ModelError, match="JSON"):
        save_model(make_model("logistic_regression").fit(X, y), tmp_path / "model.joblib", metadata={"f": object()})
    assert list(tmp_path.iterdir()) == []


def test_clear_errors_for_bad_training_data(samples):
    X, y, _, _ = samples
    with pytest.raises(ModelError, match="constant factors \\['elev'\\]"):
        make_model("random_forest").fit(X.assign(elev=5.0), y)
    with pytest.raises(ModelError, match="single class"):
        make_model("logistic_regression").fit(X, np.ones_like(y))
    nan = X.copy()
    nan.loc[[3, 7], "slope"] = np.nan
    for name in ("lightgbm", "logistic_regression"):  # LightGBM would otherwise accept NaN silently
        with pytest.raises(ModelError, match="'slope': 2"):
            make_model(name).fit(nan, y)
    fitted = make_model("lightgbm").fit(X, y)
    with pytest.raises(ModelError, match="mask nodata"):
        fitted.predict_proba(nan)
    with pytest.raises(ModelError, match="binary"):
        check_training_data(X, y + 1)
    with pytest.raises(ModelError, match="numeric"):
        check_training_data(X.assign(lith="granite"), y)
    with pytest.raises(ConfigError, match="unknown model"):
        make_model("xgboost")


def test_gbdt_is_binned_by_default_and_exact_on_request(samples):
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    X, y, _, _ = samples
    binned, exact = make_model("gbdt").fit(X, y), make_model("gbdt", params={"binned": False}).fit(X, y)
    est = binned[-1]
    assert isinstance(est, LGBMClassifier) and est.n_estimators == 150 and est.learning_rate == 0.05
    # Friedman's GBDT: depth-limited trees, one-sample leaves, every row and factor in every tree
    assert (est.max_depth, est.num_leaves, est.min_child_samples, est.subsample, est.colsample_bytree) == (7, 128, 1, 1, 1)
    assert isinstance(exact[-1], GradientBoostingClassifier) and exact[-1].n_estimators == 150
    assert abs(evaluate(y, binned.predict_proba(X))["auc"] - evaluate(y, exact.predict_proba(X))["auc"]) < 0.02
    # the same algorithm as sklearn's binned HistGradientBoosting with those settings: alike on held-out rows
    fit, held = np.arange(200), np.arange(200, len(y))
    hist = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_depth=7, max_leaf_nodes=None,
                                          min_samples_leaf=1, l2_regularization=0.0, early_stopping=False,
                                          random_state=0).fit(X.iloc[fit], y[fit])
    ours = make_model("gbdt").fit(X.iloc[fit], y[fit])
    held_auc = [evaluate(y[held], m.predict_proba(X.iloc[held]))["auc"] for m in (ours, hist)]
    assert abs(held_auc[0] - held_auc[1]) < 0.03, held_auc


def test_gbdt_bins_reach_lightgbm_and_are_ignored_by_the_exact_search(samples):
    X, y, _, _ = samples
    coarse = make_model("gbdt", params={"max_bin": 15}).fit(X, y)
    assert coarse[-1].max_bin == 15 and make_model("gbdt")[-1].max_bin == 255
    # 15 bins per factor: no tree splits a factor at more than 14 distinct thresholds
    splits = coarse[-1].booster_.trees_to_dataframe().dropna(subset=["split_feature"])
    assert splits.groupby("split_feature")["threshold"].nunique().max() <= 14
    exact = make_model("gbdt", params={"binned": False, "max_bin": 15})
    assert "max_bin" not in exact[-1].get_params()


def test_binned_gbdt_shap_adds_up_to_its_log_odds(samples):
    from lsm_core.explain import shap_values_for_plot

    X, y, _, _ = samples
    model = make_model("gbdt", categorical=["lith"]).fit(X, y)
    sv = shap_values_for_plot(model, X, n_explain=50, output="raw")  # the tree explainer's own scale
    assert (sv.explainer, sv.output) == ("tree", "log-odds")
    np.testing.assert_allclose(sv.values.sum(axis=1) + sv.base_value, model.decision_function(sv.data), atol=1e-6)


def test_tuning_params_apply_to_the_grid_search_only():
    from sklearn.datasets import make_classification

    from lsm_core.models import grid_validation_auc, tune_on_validation

    X, y = make_classification(300, 5, random_state=0)
    tuned = tune_on_validation("random_forest", X, y, fixed_params={"n_estimators": 30},
                               tuning_params={"n_estimators": 7})
    assert tuned.best_params["n_estimators"] == 30
    assert len(tuned.model[-1].estimators_) == 30  # the refit has the fixed size, not the tuning one
    tr, va = tuned.indices["train"], tuned.indices["validation"]
    seven = grid_validation_auc("random_forest", X[tr], y[tr], X[va], y[va], fixed_params={"n_estimators": 7})
    thirty = grid_validation_auc("random_forest", X[tr], y[tr], X[va], y[va], fixed_params={"n_estimators": 30})
    np.testing.assert_array_equal(tuned.validation_auc["auc"], [r["auc"] for r in seven])
    assert [r["auc"] for r in seven] != [r["auc"] for r in thirty]


def test_a_grid_subsample_changes_the_grid_fits_only(samples, monkeypatch):
    from lsm_core import models as M

    X, y, _, groups = samples
    seen = []
    real = M.grid_validation_auc
    monkeypatch.setattr(M, "grid_validation_auc", lambda name, Xt, yt, *a, **k: seen.append(np.bincount(yt))
                        or real(name, Xt, yt, *a, **k))
    full = M.tune_on_validation("logistic_regression", X, y, groups)
    sub = M.tune_on_validation("logistic_regression", X, y, groups, grid_max_per_class=20)
    assert seen[1].tolist() == [20, 20] and seen[0].min() > 20  # the grid saw 20 rows per class of the 60 %
    for k in ("train", "validation", "test"):  # the splits, hence the refit and test rows, are the same
        np.testing.assert_array_equal(full.indices[k], sub.indices[k])


@pytest.mark.parametrize("seed", range(5))
def test_auc_score_equals_sklearns_roc_auc_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) + 0.3 * y, 1)  # coarse scores: many ties
    assert auc_score(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert auc_score(y, -score) == pytest.approx(1 - roc_auc_score(y, score), abs=1e-12)
    assert np.isnan(auc_score(np.zeros(5), np.arange(5)))
    # a monotone transform of the scores ranks the rows alike: exactly the same AUC (grid ties stay ties)
    assert auc_score(y, score) == auc_score(y, np.exp(3 * score))
