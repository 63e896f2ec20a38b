"""Tests of SHAP factor importances (lsm_core.explain) on small synthetic samples, one pipeline per model kind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from lsm_core import models
from lsm_core.errors import ModelError
from lsm_core.explain import (
    _factor_of_columns,
    importance_shares,
    importance_stability,
    plot_shap_summary,
    shap_importance,
    shap_values_for_plot,
)

FACTORS = ["slope", "rain", "lithology", "ndvi", "dist_road"]
NUMERIC = [f for f in FACTORS if f != "lithology"]
FAST = {"n_explain": 60, "n_background": 40, "agnostic_background": 10}  # seconds, not minutes


def _signal_sample(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Five factors of which only slope and lithology (3 classes, class 2 prone) drive the labels."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f: rng.normal(size=n) for f in NUMERIC})
    X["lithology"] = rng.integers(1, 4, n)
    X = X[FACTORS]
    logit = 2.5 * X["slope"] + np.where(X["lithology"] == 2, 2.5, -1.5) + 0.5 * rng.normal(size=n)
    return X, (logit > 0).to_numpy(int)


def _pipeline(estimator: object, *, one_hot: bool) -> Pipeline:
    """The shape lsm_core.models builds: a ColumnTransformer, then the estimator as the last step."""
    if one_hot:
        pre = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), ["lithology"])])
    else:
        pre = ColumnTransformer([("all", "passthrough", FACTORS)])
    return Pipeline([("preprocess", pre), ("model", estimator)])


BUILDERS: dict[str, Callable[[], Pipeline]] = {
    "logistic_regression": lambda: _pipeline(LogisticRegression(), one_hot=True),
    "svm": lambda: _pipeline(CalibratedClassifierCV(SVC(random_state=0), ensemble=False), one_hot=True),
    "mlp": lambda: _pipeline(MLPClassifier((16,), max_iter=2000, random_state=0), one_hot=True),
    "random_forest": lambda: _pipeline(RandomForestClassifier(60, random_state=0), one_hot=False),
    "gbdt": lambda: _pipeline(GradientBoostingClassifier(n_estimators=60, random_state=0), one_hot=False),
    "lightgbm": lambda: _pipeline(LGBMClassifier(n_estimators=60, random_state=0, verbose=-1), one_hot=False),
}
EXPECTED = {  # (explainer, output scale) per model kind: one scale, probability, for every model
    "logistic_regression": ("permutation", "probability"), "svm": ("permutation", "probability"),
    "mlp": ("permutation", "probability"), "random_forest": ("tree", "probability"),
    "gbdt": ("permutation", "probability"), "lightgbm": ("permutation", "probability"),
}
RAW = {  # (explainer, output scale) per model kind with output="raw": the explainer's own scale
    "logistic_regression": ("linear", "log-odds"), "random_forest": ("tree", "probability"),
    "gbdt": ("tree", "log-odds"), "lightgbm": ("tree", "log-odds"),
}


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, np.ndarray]:
    return _signal_sample()


@pytest.fixture(scope="module")
def fitted(sample: tuple[pd.DataFrame, np.ndarray]) -> dict[str, Pipeline]:
    X, y = sample
    return {name: build().fit(X, y) for name, build in BUILDERS.items()}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_each_model_kind_ranks_the_two_signal_factors_on_top(name, fitted, sample):
    X, _ = sample
    imp = shap_importance(fitted[name], X, **FAST)
    assert set(imp.index) == set(FACTORS) and imp.is_monotonic_decreasing
    assert set(imp.index[:2]) == {"slope", "lithology"}, imp
    assert (imp.attrs["explainer"], imp.attrs["output"]) == EXPECTED[name]
    shares = importance_shares(imp)
    assert shares.sum() == pytest.approx(1.0) and shares.iloc[:2].sum() > 0.7


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_model_is_explained_on_the_probability_scale(name, fitted, sample):
    """One output scale for all: values plus base add up to predict_proba, never to log-odds."""
    X, _ = sample
    sv = shap_values_for_plot(fitted[name], X, **FAST)
    assert sv.output == "probability"
    np.testing.assert_allclose(sv.values.sum(axis=1) + sv.base_value, fitted[name].predict_proba(sv.data)[:, 1],
                               atol=1e-6)


@pytest.mark.parametrize("name", list(RAW))
def test_raw_output_keeps_the_explainers_own_scale(name, fitted, sample):
    imp = shap_importance(fitted[name], sample[0], output="raw", **FAST)
    assert (imp.attrs["explainer"], imp.attrs["output"]) == RAW[name]


class _Opaque:
    """The same fitted model seen only through predict_proba: the explainer cannot tell its kind."""

    def __init__(self, model: Pipeline):
        self.model, self.classes_, self.feature_names_in_ = model, model.classes_, model.feature_names_in_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)


@pytest.mark.parametrize("name", ["logistic_regression", "lightgbm", "random_forest"])
def test_one_model_explained_two_ways_reports_one_scale(name, fitted, sample):
    """A model explained by its own explainer and through predict_proba alone gives one scale and, for the
    permutation route of the same game, the same importances (up to the estimator's noise)."""
    X, _ = sample
    kw = {"n_explain": 200, "n_background": 100, "agnostic_explain": 200, "agnostic_background": 100}
    own = shap_importance(fitted[name], X, agnostic_permutations=5, **kw).reindex(FACTORS)
    opaque = shap_importance(_Opaque(fitted[name]), X, agnostic_permutations=5, **kw).reindex(FACTORS)
    assert own.attrs["output"] == opaque.attrs["output"] == "probability"
    # the two big factors carry ~0.2-0.3 probability each; the forest's exact tree game (path-dependent)
    # differs from the interventional one by a few hundredths
    np.testing.assert_allclose(own, opaque, atol=0.03)


def test_kernel_method_is_for_the_svm_and_mlp_only(fitted, sample):
    """The thorough preset's kernel explainer goes to the SVM / MLP; boosted models stay on permutation SHAP."""
    X, _ = sample
    assert shap_importance(fitted["lightgbm"], X, agnostic_method="kernel", **FAST).attrs["explainer"] == "permutation"
    assert shap_importance(fitted["mlp"], X, agnostic_method="kernel", **FAST).attrs["explainer"] == "kernel"


def test_unknown_output_scale_is_refused(fitted, sample):
    with pytest.raises(ModelError, match="output"):
        shap_values_for_plot(fitted["gbdt"], sample[0], output="log-odds", **FAST)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_models_from_make_model_are_explained(name, sample):
    X, y = sample
    model = models.make_model(name, categorical=("lithology",), random_state=0).fit(X, y)
    imp = shap_importance(model, X, **FAST)
    assert set(imp.index[:2]) == {"slope", "lithology"}, imp
    assert (imp.attrs["explainer"], imp.attrs["output"]) == EXPECTED[name]


def test_make_model_lightgbm_columns_are_reordered_and_mapped_back(sample):
    X, y = sample
    model = models.make_model("lightgbm", categorical=("lithology",), random_state=0).fit(X, y)
    # its ColumnTransformer puts the categorical column first: the mapping must follow the CT, not X
    assert _factor_of_columns(model[:-1], FACTORS, 5) == ["lithology", "slope", "rain", "ndvi", "dist_road"]
    sv = shap_values_for_plot(model, X, n_explain=80, output="raw")
    raw = model[-1].predict(model[:-1].transform(sv.data), raw_score=True)
    np.testing.assert_allclose(sv.values.sum(axis=1) + sv.base_value, raw, atol=1e-6)
    # per factor: LightGBM's own contributions (last column = expected value) in the CT's column order
    contrib = model[-1].predict(model[:-1].transform(sv.data), pred_contrib=True)
    np.testing.assert_allclose(sv.values["lithology"], contrib[:, 0], atol=1e-9)
    np.testing.assert_allclose(sv.values["slope"], contrib[:, 1], atol=1e-9)


def test_one_hot_columns_sum_back_to_their_factor(fitted, sample):
    X, _ = sample
    model = fitted["logistic_regression"]
    sv = shap_values_for_plot(model, X, background=X, n_background=len(X), n_explain=50, output="raw")
    assert list(sv.values.columns) == FACTORS
    # linear SHAP of a transformed column is coef * (z - mean z over the background); lithology is 3 columns
    z, zbg = model[:-1].transform(sv.data), model[:-1].transform(X)
    per_column = model[-1].coef_[0] * (z - zbg.mean(axis=0))
    names = list(model[:-1].get_feature_names_out())
    lith = [i for i, n in enumerate(names) if n.startswith("cat__lithology_")]
    assert len(lith) == 3
    np.testing.assert_allclose(sv.values["lithology"], per_column[:, lith].sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(sv.values["slope"], per_column[:, names.index("num__slope")], atol=1e-10)
    # additive in log-odds: values + base = the model's decision function
    np.testing.assert_allclose(sv.values.sum(axis=1) + sv.base_value, model.decision_function(sv.data), atol=1e-8)


def test_transformed_columns_map_back_whatever_the_column_order(sample):
    X, y = sample
    pre = ColumnTransformer([("cat", OneHotEncoder(drop="first"), ["lithology"])], remainder=StandardScaler())
    model = Pipeline([("preprocess", pre), ("model", LogisticRegression())]).fit(X, y)
    mapped = _factor_of_columns(model[:-1], FACTORS, 6)
    assert mapped == ["lithology", "lithology", "slope", "rain", "ndvi", "dist_road"]
    assert set(shap_importance(model, X, **FAST).index[:2]) == {"slope", "lithology"}


@pytest.mark.parametrize("name", ["random_forest", "gbdt", "lightgbm"])
def test_tree_shap_adds_up_to_raw_output_minus_expected_value(name, fitted, sample):
    X, _ = sample
    model = fitted[name]
    sv = shap_values_for_plot(model, X, n_explain=80, output="raw")
    z = model[:-1].transform(sv.data)
    raw = {
        "random_forest": lambda: model[-1].predict_proba(z)[:, 1],
        "gbdt": lambda: model[-1].decision_function(z),
        "lightgbm": lambda: model[-1].predict(z, raw_score=True),
    }[name]()
    np.testing.assert_allclose(sv.values.sum(axis=1), raw - sv.base_value, atol=1e-6)


@pytest.mark.parametrize("method", ["permutation", "kernel"])
def test_model_agnostic_shap_adds_up_to_probability(fitted, sample, method):
    X, _ = sample
    sv = shap_values_for_plot(fitted["mlp"], X, agnostic_method=method, **FAST)
    assert sv.explainer == method
    np.testing.assert_allclose(sv.values.sum(axis=1) + sv.base_value, fitted["mlp"].predict_proba(sv.data)[:, 1],
                               atol=1e-6)


def test_permutation_and_kernel_shap_rank_the_factors_alike(fitted, sample):
    """The cheap default estimates the same importances as the kernel explainer on a clear signal."""
    X, _ = sample
    imp = {m: shap_importance(fitted["svm"], X, agnostic_method=m, **FAST) for m in ("permutation", "kernel")}
    assert list(imp["permutation"].index[:2]) == list(imp["kernel"].index[:2])
    np.testing.assert_allclose(importance_shares(imp["permutation"]).reindex(FACTORS),
                               importance_shares(imp["kernel"]).reindex(FACTORS), atol=0.08)


def test_unknown_agnostic_method_is_refused(fitted, sample):
    with pytest.raises(ModelError, match="agnostic_method"):
        shap_values_for_plot(fitted["mlp"], sample[0], agnostic_method="exact", **FAST)


def test_same_seed_same_numbers_and_global_rng_untouched(fitted, sample):
    X, _ = sample
    # 12 coalitions < 2^5 - 2: the kernel explainer samples, so this exercises its seeding
    kw = dict(FAST, agnostic_samples=12, agnostic_method="kernel")
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = shap_values_for_plot(fitted["mlp"], X, random_state=3, **kw).values
    assert np.array_equal(np.random.get_state()[1], state)
    b = shap_values_for_plot(fitted["mlp"], X, random_state=3, **kw).values
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_series_equal(shap_importance(fitted["lightgbm"], X, **FAST),
                                   shap_importance(fitted["lightgbm"], X, **FAST))
    assert not shap_values_for_plot(fitted["mlp"], X, random_state=4, **kw).values.index.equals(a.index)
    perm = [shap_values_for_plot(fitted["mlp"], X, random_state=3, **FAST).values for _ in range(2)]
    assert np.array_equal(np.random.get_state()[1], state)
    pd.testing.assert_frame_equal(*perm)


def _graded_sample(flip: float, n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    """Five factors with distinct effects, so a clean fit has one true ranking; ``flip`` = share of flipped labels."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=FACTORS)
    y = (X.to_numpy() @ np.array([2.0, 1.4, 0.9, 0.5, 0.2]) + 0.3 * rng.normal(size=n) > 0).astype(int)
    flipped = rng.random(n) < flip
    return X, np.where(flipped, 1 - y, y)


def test_noisy_labels_give_less_stable_rankings():
    lr = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    clean = importance_stability(lr, *_graded_sample(0.0), n_bootstrap=8, random_state=0, n_explain=100)
    noisy = importance_stability(lr, *_graded_sample(0.4), n_bootstrap=8, random_state=0, n_explain=100)
    assert clean["spearman"] > noisy["spearman"] + 0.2 and clean["kendall"] > noisy["kendall"]
    assert clean["spearman"] > 0.9
    assert clean["importances"].shape == (8, 5) and clean["output"] == "log-odds"  # refits compared by rank only
    assert clean["share_mean"].sum() == pytest.approx(1.0)
    assert clean["share_mean"].idxmax() == "slope" and (clean["share_std"] >= 0).all()


def test_stability_with_a_callable_matches_the_cloned_estimator():
    X, y = _graded_sample(0.2)
    lr = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    seen: list[np.ndarray] = []

    def make_and_fit(idx: np.ndarray) -> Pipeline:
        seen.append(idx)
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X.iloc[idx], y[idx])

    a = importance_stability(make_and_fit, X, y, n_bootstrap=4, random_state=7, n_explain=50)
    b = importance_stability(lr, X, y, n_bootstrap=4, random_state=7, n_explain=50)
    assert len(seen) == 4 and all(len(i) == len(X) and y[i].sum() == y.sum() for i in seen)  # stratified
    assert a["spearman"] == b["spearman"] and a["kendall"] == b["kendall"]
    pd.testing.assert_frame_equal(a["importances"], b["importances"])


@pytest.mark.parametrize("kind", ["beeswarm", "bar"])
def test_summary_plot_is_written_atomically(kind, fitted, sample, tmp_path: Path):
    X, _ = sample
    path = plot_shap_summary(fitted["gbdt"], X, tmp_path / "out" / f"shap_{kind}.png", kind=kind, n_explain=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_bad_inputs_raise_model_errors(fitted, sample, tmp_path: Path):
    X, y = sample
    three = LogisticRegression().fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ModelError, match="binary"):
        shap_importance(three, X, **FAST)
    with pytest.raises(ModelError, match="DataFrame"):
        shap_importance(fitted["gbdt"], X.to_numpy())
    with pytest.raises(ModelError, match="plot kind"):
        plot_shap_summary(fitted["gbdt"], X, tmp_path / "x.png", kind="violin", n_explain=10)
    with pytest.raises(ModelError, match="two classes"):
        importance_stability(LogisticRegression(), X, np.zeros(len(X), int))


@pytest.mark.parametrize("name", ["logistic_regression", "svm", "mlp", "gbdt"])
def test_permutation_shap_after_a_column_wise_prep_equals_the_whole_pipelines(name, sample):
    """One-hot, scaled and passthrough columns: the masked rows are built after the preprocessing, same values."""
    from lsm_core.explain import _column_wise_prep, _permutation_shap, _proba_of_rows
    from lsm_core.permutation_shap import permutation_shap

    X, y = sample
    model = models.make_model(name, categorical=("lithology",), random_state=0).fit(X, y)
    data, bg = X.iloc[:40], X.iloc[100:110]
    assert _column_wise_prep(model, data, bg) is not None  # the fast path is taken
    values, base = _permutation_shap(model, data, bg, 2, 3)
    whole, whole_base = permutation_shap(_proba_of_rows(model, data), data.to_numpy(float), bg.to_numpy(float),
                                         permutations=2, seed=3)
    np.testing.assert_allclose(values.to_numpy(), whole, rtol=0, atol=1e-12)
    assert base == pytest.approx(whole_base, abs=1e-12)
    # LightGBM's pandas categories are not a column-wise numeric transform: the whole pipeline is scored
    lgbm = models.make_model("lightgbm", categorical=("lithology",), random_state=0).fit(X, y)
    assert _column_wise_prep(lgbm, data, bg) is None


def test_permutation_shap_groups_columns_by_factor():
    from lsm_core.permutation_shap import permutation_shap

    rng = np.random.default_rng(0)
    data, bg = rng.normal(size=(30, 3)), rng.normal(size=(8, 3))
    f = lambda a: np.tanh(a[:, 0] * a[:, 1]) + a[:, 2] ** 2  # noqa: E731
    # factor 1 spread over two identical columns: as the one-column game when the model reads one of them
    dup = lambda a: f(a[:, [0, 1, 3]])  # noqa: E731
    a, base_a = permutation_shap(f, data, bg, seed=4)
    b, base_b = permutation_shap(dup, data[:, [0, 1, 2, 1]][:, [0, 1, 3, 2]], bg[:, [0, 1, 2, 1]][:, [0, 1, 3, 2]],
                                 seed=4, factor_of_column=np.array([0, 1, 1, 2]))
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert base_a == pytest.approx(base_b)
    with pytest.raises(ModelError, match="factor_of_column"):
        permutation_shap(f, data, bg, factor_of_column=np.array([0, 2, 2]))


def test_lightgbm_raw_values_equal_shaps_tree_explainer(fitted, sample):
    from lsm_core.explain import _shap

    shap = _shap()
    X, _ = sample
    model = fitted["lightgbm"]
    sv = shap_values_for_plot(model, X, n_explain=50, output="raw")
    ref = shap.TreeExplainer(model[-1])(model[:-1].transform(sv.data))
    np.testing.assert_allclose(sv.values.to_numpy(), ref.values, rtol=0, atol=1e-12)
    assert sv.base_value == pytest.approx(float(np.ravel(ref.base_values)[0]), abs=1e-12)


def test_tree_explain_subsets_the_forests_rows_only(fitted, sample):
    X, _ = sample
    opts = {"n_explain": 120, "random_state": 2}
    full = shap_values_for_plot(fitted["random_forest"], X, **opts)
    some = shap_values_for_plot(fitted["random_forest"], X, tree_explain=50, **opts)
    assert len(full.data) == 120 and len(some.data) == 50 and set(some.data.index) < set(full.data.index)
    pd.testing.assert_frame_equal(some.values, full.values.loc[some.data.index])  # a row's values do not change
    again = shap_values_for_plot(fitted["random_forest"], X, tree_explain=50, **opts)
    pd.testing.assert_frame_equal(some.values, again.values)
    for name in ("svm", "lightgbm"):  # permutation SHAP: same rows, background and values
        a = shap_values_for_plot(fitted[name], X, agnostic_background=5, **opts)
        b = shap_values_for_plot(fitted[name], X, agnostic_background=5, tree_explain=50, **opts)
        pd.testing.assert_frame_equal(a.values, b.values)
    with pytest.raises(ModelError, match="tree_explain"):
        shap_values_for_plot(fitted["random_forest"], X, tree_explain=0)
