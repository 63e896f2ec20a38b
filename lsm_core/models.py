"""The six susceptibility models, their grids, 60/20/20 tuning, spatial-CV scores and safe persistence.

Models output the probability (unitless, 0..1) that a pixel is a landslide (class 1). Inputs are
factor tables (rows = pixels or sample points, columns = factors; categorical factors as integer
codes). DESIGN 6 "Models"; GBDT defaults from paper b (learning rate 0.05, 150 trees, depth 7).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import lightgbm
import numpy as np
import pandas as pd
import sklearn
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from lsm_core.errors import ConfigError, ModelError
from lsm_core.io import atomic_path
from lsm_core.mlp import EarlyStoppingMLP
from lsm_core.spatial_cv import RepeatedSpatialKFold, _group_codes
from lsm_core.svm import RBFSVC

__all__ = ["DEFAULT_PARAMS", "MODEL_NAMES", "PARAM_GRIDS", "FactorCheck", "TunedModel", "auc_score",
           "check_training_data", "cv_scores", "evaluate", "grid_validation_auc", "library_versions", "load_model",
           "make_model", "save_model", "sidecar_path", "spatial_cv_scores", "split_60_20_20", "tune_on_validation"]

MODEL_NAMES = ("logistic_regression", "svm", "mlp", "random_forest", "gbdt", "lightgbm")
_SCALED = {"logistic_regression", "svm", "mlp"}  # distance/gradient based: need scaled, one-hot inputs

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0, "max_iter": 5000},
    "svm": {"C": 1.0, "gamma": "scale"},
    # early stopping ends training long before max_iter, so no ConvergenceWarning on small samples
    "mlp": {"hidden_layer_sizes": (32,), "alpha": 1e-3, "early_stopping": True, "n_iter_no_change": 20,
            "max_iter": 2000},
    "random_forest": {"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt", "n_jobs": 1},
    # binned split search (LightGBM's engine) unless params hold {"binned": False} (see _estimator)
    "gbdt": {"learning_rate": 0.05, "n_estimators": 150, "max_depth": 7},
    # n_jobs=1: OpenMP threads slow LightGBM down on small samples and shared cores
    "lightgbm": {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 20,
                 "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "n_jobs": 1, "verbose": -1},
}

PARAM_GRIDS: dict[str, dict[str, list[Any]]] = {
    "logistic_regression": {"C": [0.01, 0.1, 1.0, 10.0, np.inf]},  # C=inf: unpenalised, like R's glm
    "svm": {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.05]},
    "mlp": {"hidden_layer_sizes": [(16,), (32, 16)], "alpha": [1e-3, 1e-1]},
    "random_forest": {"min_samples_leaf": [1, 5, 10], "max_features": ["sqrt", 0.5]},
    "gbdt": {"learning_rate": [0.05, 0.1], "n_estimators": [100, 150], "max_depth": [3, 7]},
    "lightgbm": {"num_leaves": [7, 31], "learning_rate": [0.05, 0.1], "n_estimators": [100, 300]},
}


def _column_names(X: Any) -> list[str]:
    """Column names of a table (``x<i>`` for arrays, as sklearn names them)."""
    return [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else [f"x{i}" for i in range(np.shape(X)[1])]


def _as_float(X: Any) -> np.ndarray:
    """2-D float view of X, or ModelError naming the first non-numeric factor."""
    names = _column_names(X) if np.ndim(X) == 2 else []
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        frame = pd.DataFrame(X)
        bad = [n for n, c in zip(names, frame.columns, strict=True) if not pd.api.types.is_numeric_dtype(frame[c])]
        raise ModelError(f"factors must be numeric (categorical ones as integer codes); not numeric: {bad}") from None
    if arr.ndim != 2:
        raise ModelError(f"X must be a 2-D table of factors, got {arr.ndim} dimensions")
    return arr


def _check_finite(arr: np.ndarray, names: Sequence[str]) -> None:
    """ModelError naming the factors that hold NaN or infinite values."""
    bad = ~np.isfinite(arr)
    if bad.any():
        counts = {n: int(c) for n, c in zip(names, bad.sum(axis=0), strict=True) if c}
        raise ModelError(f"NaN or infinite values in factors {counts} (count per factor): mask nodata pixels first")


def _binary_y(y: Any) -> np.ndarray:
    """Labels as 0/1 ints; ModelError unless exactly the two classes 0/False and 1/True occur."""
    arr = np.asarray(y)
    classes = pd.unique(arr.ravel())
    if len(classes) < 2:
        raise ModelError(f"y holds a single class ({classes.tolist()}): need landslides (1) and non-landslides (0)")
    if not set(classes.tolist()) <= {0, 1}:
        raise ModelError(f"y must be binary 0/1 or False/True, got classes {sorted(map(str, classes))}")
    return arr.astype(np.int64)


def check_training_data(X: Any, y: Any) -> np.ndarray:
    """Raise ModelError on NaN/inf, a constant factor or a single class; return y as 0/1 ints."""
    arr, names = _as_float(X), _column_names(X)
    if len(arr) != len(y):
        raise ModelError(f"X has {len(arr)} rows but y has {len(y)}")
    _check_finite(arr, names)
    constant = [n for n, r in zip(names, np.ptp(arr, axis=0), strict=True) if r == 0]
    if constant:
        raise ModelError(f"constant factors {constant}: they carry no information; drop them or fix the layer")
    return _binary_y(y)


class FactorCheck(TransformerMixin, BaseEstimator):
    """First pipeline step: clear ModelErrors for NaN, constant factors or one class; passes X through."""

    def fit(self, X: Any, y: Any = None) -> FactorCheck:
        """Check the training table (and labels, when given)."""
        if y is None:
            _check_finite(_as_float(X), _column_names(X))
        else:
            check_training_data(X, y)
        self.n_features_in_ = np.shape(X)[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: Any) -> Any:
        """X unchanged, after checking it for NaN/inf."""
        check_is_fitted(self, "n_features_in_")
        _check_finite(_as_float(X), _column_names(X))
        return X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input feature names."""
        return np.asarray(getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)]), object)


def _as_category(X: Any) -> pd.DataFrame:
    """Categorical codes as pandas category dtype, which LightGBM treats as categorical splits."""
    return pd.DataFrame(X).astype("category")


def _monotone_vector(monotone: Mapping[str | int, int], feature_names: Sequence[str] | None,
                     categorical: Sequence[int | str], categorical_first: bool) -> list[int]:
    """Per-column constraint (+1 increasing, -1 decreasing, 0 free) in the classifier's input order."""
    if feature_names is None:
        raise ConfigError("monotone constraints need feature_names (the column order of X)")
    names = [str(f) for f in feature_names]
    named = lambda keys: [names[k] if isinstance(k, (int, np.integer)) else str(k) for k in keys]
    by_name = dict(zip(named(monotone), map(int, monotone.values()), strict=True))
    cats = named(categorical)
    unknown = sorted(set(by_name) - set(names))
    if unknown or not set(by_name.values()) <= {-1, 0, 1} or set(by_name) & set(cats):
        raise ConfigError(f"monotone must map known, non-categorical factors to -1/0/+1; got {dict(monotone)}")
    # the lightgbm ColumnTransformer puts categorical columns first; the others keep their order
    order = cats + [f for f in names if f not in cats] if categorical_first else names
    return [by_name.get(f, 0) for f in order]


def make_model(name: str, *, params: Mapping[str, Any] | None = None, categorical: Sequence[int | str] = (),
               monotone: Mapping[str | int, int] | None = None, feature_names: Sequence[str] | None = None,
               random_state: int = 0) -> Pipeline:
    """Unfitted, seeded pipeline (check -> column prep -> classifier); params override DEFAULT_PARAMS."""
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    p = {**DEFAULT_PARAMS[name], **(params or {})}
    cat = list(categorical)
    if monotone and name not in ("random_forest", "lightgbm"):
        raise ConfigError(f"monotone constraints are supported for random_forest and lightgbm, not {name}")
    if name in _SCALED:
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        prep = ColumnTransformer([("onehot", onehot, cat)] if cat else [], remainder=StandardScaler())
    elif name == "lightgbm":
        to_cat = FunctionTransformer(_as_category, feature_names_out="one-to-one")
        # prefixed names stay unique when X is an array (categorical and remainder both start at x0)
        prep = ColumnTransformer([("cat", to_cat, cat)] if cat else [], remainder="passthrough").set_output(
            transform="pandas")
    else:
        prep = ColumnTransformer([], remainder="passthrough")  # trees split on the codes, order kept
    if monotone:
        cst = _monotone_vector(monotone, feature_names, cat, categorical_first=name == "lightgbm")
        p["monotone_constraints" if name == "lightgbm" else "monotonic_cst"] = cst
    model = _estimator(name, p, random_state)
    return Pipeline([("check", FactorCheck()), ("prep", prep), ("model", model)])


def _estimator(name: str, p: dict[str, Any], random_state: int) -> BaseEstimator:
    """The bare classifier of a model name with parameters ``p``."""
    if name == "logistic_regression":
        return LogisticRegression(random_state=random_state, **p)
    if name == "svm":
        # SVC(probability=True) is deprecated in sklearn 1.9: Platt-scale the decision function instead.
        return CalibratedClassifierCV(RBFSVC(kernel="rbf", random_state=random_state, **p), method="sigmoid",
                                      ensemble=False, cv=5)
    if name == "mlp":
        return EarlyStoppingMLP(random_state=random_state, **p)
    if name == "random_forest":
        return RandomForestClassifier(random_state=random_state, **p)
    if name == "gbdt":
        max_bin = p.pop("max_bin", 255)  # only the binned search has bins
        if p.pop("binned", True):
            # Friedman's gradient boosting (depth-limited trees, no row or column subsampling, no leaf limit but
            # the depth, leaves of one sample allowed), with the split search on ``max_bin`` quantile bins per
            # factor, run by LightGBM's engine: the algorithm of sklearn's HistGradientBoostingClassifier, whose
            # Python tree grower costs 2x more on the few hundred rows of a spatial-CV fold. Params
            # {"binned": False} (the thorough preset) keep the exact GradientBoostingClassifier;
            # benchmarks/bench_nested_cv.py measures how far the bins move the spatial-CV AUCs from it
            depth = int(p.pop("max_depth", 3))
            # sklearn's names for the leaf size and the L2 penalty are taken too (the table-mode grid uses them)
            return lightgbm.LGBMClassifier(random_state=random_state, n_estimators=p.pop("n_estimators", 100),
                                           max_depth=depth, num_leaves=2**depth, max_bin=max_bin,
                                           min_child_samples=p.pop("min_samples_leaf", 1), min_child_weight=1e-3,
                                           min_data_in_bin=1, reg_lambda=p.pop("l2_regularization", 0.0),
                                           subsample=1.0, colsample_bytree=1.0, n_jobs=1, verbose=-1, **p)
        return GradientBoostingClassifier(random_state=random_state, **p)
    return lightgbm.LGBMClassifier(random_state=random_state, **p)


def _positive_proba(proba: Any) -> np.ndarray:
    """Probability of class 1 from a 1-D vector or an (n, 2) predict_proba array."""
    p = np.asarray(proba, dtype=float)
    return p[:, 1] if p.ndim == 2 else p


def auc_score(y_true: Any, score: Any) -> float:
    """Area under the ROC curve of ``score`` for the 0/1 labels ``y_true`` (ties count half); NaN for one class.

    The Mann-Whitney form: (rank sum of the positives - n1 (n1 + 1) / 2) / (n1 n0). It equals
    ``sklearn.metrics.roc_auc_score`` (to rounding, ~1e-16) at a twentieth of its cost on the few hundred
    rows of a validation split, where sklearn's input checks cost more than the AUC itself: the nested
    spatial CV scores about a thousand of them per partition. Scores that rank the rows alike get exactly
    the same AUC, so grid points that tie stay tied (the first one wins).
    """
    y = np.asarray(y_true).ravel() == 1
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float).ravel())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate(y_true: Any, proba: Any, threshold: float = 0.5) -> dict[str, float]:
    """AUC, overall accuracy, F1, precision, recall, Cohen's kappa and tn/fp/fn/tp at ``threshold``."""
    y = np.asarray(y_true).astype(int)
    p = _positive_proba(proba)
    pred = (p >= threshold).astype(int)
    tp, fp = int(np.sum((pred == 1) & (y == 1))), int(np.sum((pred == 1) & (y == 0)))
    fn, tn = int(np.sum((pred == 0) & (y == 1))), int(np.sum((pred == 0) & (y == 0)))
    n = len(y)
    oa = (tp + tn) / n if n else float("nan")
    # chance agreement of Cohen's kappa from the marginals of the confusion matrix
    pe = ((tp + fn) * (tp + fp) + (tn + fp) * (tn + fn)) / n**2 if n else float("nan")
    return {
        "auc": auc_score(y, p),
        "oa": oa,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "kappa": (oa - pe) / (1 - pe) if pe < 1 else float("nan"),
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
    }


def split_60_20_20(y: Any, groups: Any = None, random_state: int | None = 0) -> tuple[np.ndarray, ...]:
    """Train/validation/test row indices (60/20/20 of each class), groups (NaN = none) kept whole."""
    y = _binary_y(y)
    codes = _group_codes(groups, len(y))
    unit = np.where(codes >= 0, codes, codes.max(initial=-1) + 1 + np.arange(len(y)))  # ungrouped row = own unit
    unit = np.unique(unit, return_inverse=True)[1]
    size = np.bincount(unit)
    unit_class = np.bincount(unit, weights=y) * 2 >= size  # a group's class is its majority class
    rng = np.random.default_rng(random_state)
    split_of = np.empty(len(size), dtype=np.int64)
    shares = np.array([0.6, 0.2, 0.2])
    for cls in (False, True):
        units = np.flatnonzero(unit_class == cls)
        units = units[rng.permutation(len(units))]
        units = units[np.argsort(-size[units], kind="stable")]  # big groups first, single rows fill the gaps
        if len(units) < 3:
            raise ModelError(f"class {int(cls)} has {len(units)} landslides/rows: need >= 3 for a 60/20/20 split")
        target, filled = shares * size[units].sum(), np.zeros(3)
        for u in units:
            k = int(np.argmax(target - filled))
            split_of[u] = k
            filled[k] += size[u]
    rows = split_of[unit]
    return tuple(np.flatnonzero(rows == k) for k in range(3))


def _take(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame or array."""
    return X.iloc[idx] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[idx]


@dataclass
class TunedModel:
    """Grid search on the validation split; ``model`` is refitted on train+validation (see tune_on_validation)."""

    name: str
    best_params: dict[str, Any]
    validation_auc: pd.DataFrame  # one row per grid point: its parameters and "auc" on the validation split
    model: Pipeline
    test_metrics: dict[str, float]
    refit_on: str = "train+validation"
    indices: dict[str, np.ndarray] = field(default_factory=dict)  # "train", "validation", "test" row indices


def tune_on_validation(name: str, X: Any, y: Any, groups: Any = None, *, categorical: Sequence[int | str] = (),
                       random_state: int = 0, fixed_params: Mapping[str, Any] | None = None,
                       tuning_params: Mapping[str, Any] | None = None,
                       grid_max_per_class: int | None = None) -> TunedModel:
    """Paper b's protocol: fit each PARAM_GRIDS point on 60 %, pick by validation AUC (20 %), test on 20 %.

    ``grid_max_per_class``: the grid points are fitted on a seeded subsample of at most this many rows
    per class of the 60 % (None = all of it); the validation, refit and test splits stay whole.

    ``fixed_params`` override DEFAULT_PARAMS at every grid point and in the refit (e.g. the forest's
    ``n_estimators``) and are part of ``best_params``, so spatial CV with ``best_params`` uses them too.
    ``tuning_params`` override them during the grid search only (e.g. a forest's grid points scored with
    fewer trees than the refit gets): they are not part of ``best_params``.

    The chosen model is refitted on train+validation: once the validation split has picked the
    parameters it has no other use, 80 % of the data gives a better map than 60 %, and the test
    split is still untouched, so the test metrics remain an honest estimate for the returned model.
    """
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    y = check_training_data(X, y)
    train, val, test = split_60_20_20(y, groups, random_state)
    grid_rows = train
    if grid_max_per_class is not None:
        rng = np.random.default_rng([random_state, 0x6772])
        grid_rows = np.sort(np.concatenate([
            idx if len(idx) <= grid_max_per_class else rng.choice(idx, grid_max_per_class, replace=False)
            for idx in (train[y[train] == c] for c in (0, 1))]))
    rows = grid_validation_auc(name, _take(X, grid_rows), y[grid_rows], _take(X, val), y[val], categorical=categorical,
                               random_state=random_state, fixed_params={**(fixed_params or {}), **(tuning_params or {})})
    table = pd.DataFrame(rows)
    best = {**(fixed_params or {}),
            **{k: v for k, v in rows[int(np.argmax(table["auc"].to_numpy()))].items()
               if k != "auc" and k not in (tuning_params or {})}}
    fit_rows = np.sort(np.concatenate([train, val]))
    model = make_model(name, params=best, categorical=categorical, random_state=random_state)
    model.fit(_take(X, fit_rows), y[fit_rows])
    metrics = evaluate(y[test], model.predict_proba(_take(X, test)))
    return TunedModel(name, best, table, model, metrics, indices={"train": train, "validation": val, "test": test})


def grid_validation_auc(name: str, X_train: Any, y_train: np.ndarray, X_val: Any, y_val: np.ndarray, *,
                        categorical: Sequence[int | str] = (), random_state: int = 0,
                        fixed_params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Validation AUC of every PARAM_GRIDS point of ``name``: one dict of parameters plus ``auc`` per point.

    ``fixed_params`` override DEFAULT_PARAMS at every point (grid parameters win over them).

    Two shortcuts give the same AUCs as fitting every point on its own, at a fraction of the cost:
    boosted models (gbdt, lightgbm) are fitted once per setting of the other parameters with the
    largest ``n_estimators``, and the smaller ones are scored from the first trees of that fit
    (boosting adds trees in order, so the first n trees ARE the n-tree model); the SVM is scored
    by its decision function, because Platt scaling is monotone and AUC depends on the ranking only,
    so the five extra fits of the calibration are left to the final refit.
    """
    grid = list(ParameterGrid(PARAM_GRIDS[name]))
    staged = name in ("gbdt", "lightgbm") and "n_estimators" in PARAM_GRIDS[name]
    groups: dict[str, list[dict[str, Any]]] = {}
    for params in grid:
        rest = {k: v for k, v in params.items() if not (staged and k == "n_estimators")}
        groups.setdefault(repr(sorted(rest.items(), key=lambda kv: kv[0])), []).append(params)
    # the check and column preparation do not depend on the grid point: fitted and applied once, only the
    # classifier is fitted per point (on tables of a few hundred rows the preparation is a good part of a fit)
    prep = make_model(name, categorical=categorical, random_state=random_state)[:-1].fit(X_train, y_train)
    z_train, z_val = prep.transform(X_train), prep.transform(X_val)
    auc: dict[int, float] = {}
    for points in groups.values():
        fit_params = max(points, key=lambda p: p.get("n_estimators", 0)) if staged else points[0]
        fit_params = {**(fixed_params or {}), **fit_params}
        est = make_model(name, params=fit_params, categorical=categorical, random_state=random_state)[-1]
        if name == "svm":
            est = RBFSVC(kernel="rbf", random_state=random_state, **{**DEFAULT_PARAMS["svm"], **fit_params})
        est.fit(z_train, y_train)
        for params in points:
            auc[grid.index(params)] = _validation_auc(est, name, params, z_val, y_val, staged)
    return [{**params, "auc": auc[i]} for i, params in enumerate(grid)]


def _validation_auc(est: BaseEstimator, name: str, params: dict[str, Any], z_val: Any, y_val: np.ndarray,
                    staged: bool) -> float:
    """AUC on the (prepared) validation rows of a fitted classifier, at ``params['n_estimators']`` trees when staged."""
    if name == "svm":
        return auc_score(y_val, est.decision_function(z_val))
    if not staged:
        return evaluate(y_val, est.predict_proba(z_val))["auc"]
    n = int(params["n_estimators"])
    if isinstance(est, lightgbm.LGBMClassifier):  # gbdt too, when binned (see _estimator)
        return evaluate(y_val, est.predict_proba(z_val, num_iteration=n))["auc"]
    for i, proba in enumerate(est.staged_predict_proba(z_val), start=1):
        if i == n:
            return evaluate(y_val, proba)["auc"]
    raise ModelError(f"gbdt stopped before {n} trees")


def cv_scores(estimator: BaseEstimator, X: Any, y: Any, cv: Any, *, groups: Any = None,
              threshold: float = 0.5) -> pd.DataFrame:
    """One row per CV fold (repeat, fold, n_train, n_test and the evaluate() metrics) of a clone of estimator."""
    y = np.asarray(y).astype(np.int64)
    per_repeat = cv.get_n_splits(X, y, groups) // getattr(cv, "n_repeats", 1)
    rows = []
    for i, (train, test) in enumerate(cv.split(X, y, groups)):
        model = clone(estimator).fit(_take(X, train), y[train])
        metrics = evaluate(y[test], model.predict_proba(_take(X, test)), threshold)
        rows.append({"repeat": i // per_repeat, "fold": i % per_repeat, "n_train": len(train), "n_test": len(test),
                     **metrics})
    return pd.DataFrame(rows)


def spatial_cv_scores(name: str, X: Any, y: Any, coords: Any, groups: Any = None, *,
                      params: Mapping[str, Any] | None = None, categorical: Sequence[int | str] = (),
                      n_splits: int = 5, n_repeats: int = 1, random_state: int = 0) -> pd.DataFrame:
    """Repeated k-means spatial CV of one model: one row per fold (repeat, fold, auc, oa, ...)."""
    y = check_training_data(X, y)
    model = make_model(name, params=params, categorical=categorical, random_state=random_state)
    cv = RepeatedSpatialKFold(n_splits, n_repeats, coords=coords, random_state=random_state)
    return cv_scores(model, X, y, cv, groups=groups)


# -- persistence -------------------------------------------------------------------------------------

def library_versions() -> dict[str, str]:
    """Versions of the libraries a pickled model depends on."""
    return {"sklearn": sklearn.__version__, "lightgbm": lightgbm.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through a temporary file beside ``path`` and rename it onto ``path``."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        write(fh)


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a saved model: ``<name>.json`` beside it (model.joblib -> model.joblib.json)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise ModelError(f"model metadata must be JSON-serialisable, got {type(obj).__name__}: {obj!r}")


def save_model(model: BaseEstimator, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Pickle ``model`` with joblib and write a JSON sidecar (versions, feature names, sha256, metadata)."""
    path = Path(path)
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else (metadata or {}).get("feature_names")
    text = json.dumps({"format": 1, "versions": library_versions(), "feature_names": names,
                       "metadata": dict(metadata or {})}, default=_json_default)  # fail before writing anything
    _atomic_write(path, lambda fh: joblib.dump(model, fh))
    # the hash ties the pair together: a crash between the two renames leaves a pair load_model refuses
    sidecar = {**json.loads(text), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    _atomic_write(sidecar_path(path), lambda fh: json.dump(sidecar, fh, indent=2), mode="w")
    return path


def load_model(path: str | Path) -> tuple[BaseEstimator, dict[str, Any]]:
    """(model, sidecar dict); ModelError if the sidecar is missing, the file changed or sklearn/lightgbm differ."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("no such model file", path)
    try:
        sidecar = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model sidecar {sidecar_path(path).name}: {exc}", path) from None
    now = library_versions()
    for lib in ("sklearn", "lightgbm"):  # checked before unpickling, which may fail or warn across versions
        saved = sidecar.get("versions", {}).get(lib)
        if saved != now[lib]:
            raise ModelError(f"saved with {lib} {saved}, this environment has {lib} {now[lib]}: retrain the model "
                             f"or install {lib}=={saved}", path)
    if hashlib.sha256(path.read_bytes()).hexdigest() != sidecar.get("sha256"):
        raise ModelError("model file does not match its sidecar's sha256 (overwritten or corrupted)", path)
    return joblib.load(path), sidecar
