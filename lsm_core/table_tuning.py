"""Hyperparameter candidates of table mode (``lsm evaluate-table``) and their inner-fold scoring.

A sample table is small (hundreds to a few thousand rows, often < 100 landslides in a training
fold), unlike the raster pipeline's tens of thousands of pixels that ``models.PARAM_GRIDS`` serves.
Each model's candidate list here therefore

- starts with the model's default point (``models.DEFAULT_PARAMS``): ties go to it, so tuning
  falls back to the defaults when no candidate beats them on the inner folds;
- spans settings meant for small samples: smoother, more regularised fits (shallow boosted trees
  with a low learning rate and many trees, larger forest leaves, a weight-decayed MLP fitted by
  L-BFGS, which scikit-learn recommends for small data sets), and, for the SVM, the search space of
  Geocomputation with R ch. 12 (mlr3 ``classif.ksvm``: C and sigma log-uniform in 2^-12..2^15,
  50 random-search points; sklearn's ``gamma`` is kernlab's ``sigma``, both on scaled factors).

The logistic regression keeps ``PARAM_GRIDS`` (it is the comparison with the book's GLM).
``n_estimators`` of boosted models is scored from the first trees of one fit (boosting adds trees in
order), the SVM by its decision function (Platt scaling is monotone), as ``models.grid_validation_auc``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline

from lsm_core.models import DEFAULT_PARAMS, MODEL_NAMES, PARAM_GRIDS, make_model
from lsm_core.svm import RBFSVC

__all__ = ["TABLE_CANDIDATES", "TABLE_FIXED", "candidate_auc", "make_table_model"]


def _svm_points(n: int = 50, seed: int = 12) -> list[dict[str, Any]]:
    """The book's SVM search space: (C, gamma) log-uniform in 2^-12..2^15, ``n`` seeded random points."""
    exp = np.random.default_rng(seed).uniform(-12, 15, size=(n, 2))
    return [{"C": float(2.0 ** c), "gamma": float(2.0 ** g)} for c, g in exp]


# parameters of every candidate and of the refit, on top of DEFAULT_PARAMS (not grid points)
TABLE_FIXED: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 1000},  # more trees only lower the Monte-Carlo noise of the ranking
}
# the default point of each model, as a candidate (tuning params below cover the forest's tree count)
_DEFAULT: dict[str, list[dict[str, Any]]] = {
    "svm": [{}], "mlp": [{}], "random_forest": [{}],
    "gbdt": [{"n_estimators": DEFAULT_PARAMS["gbdt"]["n_estimators"]}],
    "lightgbm": [{"n_estimators": DEFAULT_PARAMS["lightgbm"]["n_estimators"]}],
}
TABLE_CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "logistic_regression": list(ParameterGrid(PARAM_GRIDS["logistic_regression"])),
    "svm": _DEFAULT["svm"] + _svm_points(),
    "mlp": _DEFAULT["mlp"] + [
        {"solver": "lbfgs", "early_stopping": False, "max_iter": 1000, "hidden_layer_sizes": h, "alpha": a}
        for h in [(4,), (16,)] for a in [0.1, 1.0, 10.0]],
    "random_forest": _DEFAULT["random_forest"] + [
        {"min_samples_leaf": leaf, "max_features": f} for leaf, f in [(3, "sqrt"), (10, "sqrt"), (30, "sqrt"), (10, 0.5)]],
    # boosting as Elith, Leathwick & Hastie (2008, J. Anim. Ecol. 77: 802) advise for small ecological samples:
    # shallow trees (depth 1 = an additive model of the factors, like a GAM), a low learning rate, many trees
    # (the default gbdt here fits depth-7 trees with one-row leaves and no penalty)
    "gbdt": _DEFAULT["gbdt"] + [
        {"learning_rate": 0.05, "max_depth": d, "min_samples_leaf": 20, "l2_regularization": 1.0, "n_estimators": n}
        for d in [1, 2, 3] for n in [25, 50, 100, 200, 400]],
    "lightgbm": _DEFAULT["lightgbm"] + [
        {"learning_rate": 0.02, "num_leaves": leaves, "min_child_samples": child, "subsample": 0.5, "n_estimators": n}
        for leaves in [2, 4, 8] for child in [10, 30] for n in [50, 100, 200, 400, 800]],
}
# grid points are scored with fewer forest trees than the refit gets
_TUNING: dict[str, dict[str, Any]] = {"random_forest": {"n_estimators": 100}}
# parameters set on the fitted pipeline's classifier after make_model (none: make_model takes gbdt's leaf size and penalty)
_ESTIMATOR_ONLY: dict[str, tuple[str, ...]] = {}


def make_table_model(name: str, params: Mapping[str, Any] | None = None, *, categorical: Sequence[int | str] = (),
                     random_state: int = 0) -> Pipeline:
    """``models.make_model`` with ``TABLE_FIXED`` and ``params`` (a ``TABLE_CANDIDATES`` point)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}")
    p = {**TABLE_FIXED.get(name, {}), **(params or {})}
    late = {k: p.pop(k) for k in _ESTIMATOR_ONLY.get(name, ()) if k in p}
    model = make_model(name, params=p, categorical=categorical, random_state=random_state)
    if late:
        model.set_params(**{f"model__{k}": v for k, v in late.items()})
    return model


def fit_quietly(model: Any, X: Any, y: Any) -> Any:
    """Fit, without the ConvergenceWarning of an L-BFGS MLP that used its whole ``max_iter`` budget."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def candidate_auc(name: str, X_train: Any, y_train: np.ndarray, X_val: Any, y_val: np.ndarray, *,
                  categorical: Sequence[int | str] = (), random_state: int = 0) -> np.ndarray:
    """Validation AUC of every ``TABLE_CANDIDATES[name]`` point (NaN if the validation rows hold one class)."""
    points = TABLE_CANDIDATES[name]
    out = np.full(len(points), np.nan)
    if len(np.unique(y_val)) < 2:
        return out
    staged = name in ("gbdt", "lightgbm")
    groups: dict[str, list[int]] = {}
    for i, params in enumerate(points):
        rest = {k: v for k, v in params.items() if not (staged and k == "n_estimators")}
        groups.setdefault(repr(sorted(rest.items())), []).append(i)
    # the check and column preparation do not depend on the candidate: fitted once, one classifier per group
    prep = make_model(name, categorical=categorical, random_state=random_state)[:-1].fit(X_train, y_train)
    z_train, z_val = prep.transform(X_train), prep.transform(X_val)
    for idx in groups.values():
        fit_params = {**points[max(idx, key=lambda i: points[i].get("n_estimators", 0))], **_TUNING.get(name, {})}
        est = make_table_model(name, fit_params, categorical=categorical, random_state=random_state)[-1]
        if name == "svm":  # rank by the decision function: the calibration's 5 extra fits are left to the refit
            est = RBFSVC(kernel="rbf", random_state=random_state, **{**DEFAULT_PARAMS["svm"], **fit_params})
        fit_quietly(est, z_train, y_train)
        if name == "svm":
            out[idx] = roc_auc_score(y_val, est.decision_function(z_val))
        elif not staged:
            out[idx] = roc_auc_score(y_val, est.predict_proba(z_val)[:, 1])
        elif hasattr(est, "booster_"):  # lightgbm, and gbdt when binned (LightGBM's engine, see models._estimator)
            for i in idx:
                out[i] = roc_auc_score(y_val, est.predict_proba(z_val, num_iteration=points[i]["n_estimators"])[:, 1])
        else:
            wanted = {int(points[i]["n_estimators"]): i for i in idx}
            for n, proba in enumerate(est.staged_predict_proba(z_val), start=1):
                if n in wanted:
                    out[wanted[n]] = roc_auc_score(y_val, proba[:, 1])
    return out
