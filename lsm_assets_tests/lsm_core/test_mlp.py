import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from lsm_core.mlp import EarlyStoppingMLP


def _same_fit(ours, ref):
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    assert ours.validation_scores_ == ref.validation_scores_ and ours.loss_curve_ == ref.loss_curve_
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert getattr(ours._optimizer, "t", None) == getattr(ref._optimizer, "t", None)


# the compiled epoch (relu, adam, early stopping): one and several hidden layers, batches that do and do not
# divide the rows, batches below 8 and above 128 rows (numpy's pairwise sums of the output layer differ there)
@pytest.mark.parametrize("params", [
    {"hidden_layer_sizes": (16,), "alpha": 1e-3},
    {"hidden_layer_sizes": (32, 16), "alpha": 1e-1, "n_iter_no_change": 5},
    {"hidden_layer_sizes": (4, 4, 4), "alpha": 1e-2, "batch_size": 7, "random_state": 2},
    {"hidden_layer_sizes": (8,), "alpha": 1e-4, "batch_size": 300, "random_state": 1},
])
def test_same_fit_as_sklearn_with_early_stopping(params):
    X, y = make_classification(800, 8, n_informative=5, flip_y=0.2, random_state=3)
    common = {"early_stopping": True, "max_iter": 300, "random_state": 0, **params}
    ours, ref = EarlyStoppingMLP(**common).fit(X, y), MLPClassifier(**common).fit(X, y)
    assert ours._compiled_case(X, ref._label_binarizer.transform(y), None, False)
    _same_fit(ours, ref)
    np.testing.assert_array_equal(ours.predict_proba(X), ref.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("params", [
    {"solver": "sgd"}, {"shuffle": False}, {"activation": "tanh"}, {"early_stopping": False},
])
def test_other_settings_run_sklearns_loop(params):
    X, y = make_classification(300, 6, random_state=4)
    common = {"early_stopping": True, "max_iter": 60, "random_state": 0, "hidden_layer_sizes": (8,), **params}
    ours = EarlyStoppingMLP(**common).fit(X, y)
    assert not ours._compiled_case(X, ours._label_binarizer.transform(y), None, False)
    _same_fit(ours, MLPClassifier(**common).fit(X, y))


def test_float32_and_multiclass_run_sklearns_loop():
    X, y = make_classification(300, 6, n_informative=4, n_classes=3, random_state=5)
    common = {"early_stopping": True, "max_iter": 100, "random_state": 0, "hidden_layer_sizes": (8,)}
    _same_fit(EarlyStoppingMLP(**common).fit(X, y), MLPClassifier(**common).fit(X, y))
    X32, y2 = X.astype(np.float32), (y > 0).astype(int)
    _same_fit(EarlyStoppingMLP(**common).fit(X32, y2), MLPClassifier(**common).fit(X32, y2))


def test_max_iter_warns_as_sklearn():
    X, y = make_classification(300, 6, random_state=6)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        EarlyStoppingMLP(early_stopping=True, max_iter=3, random_state=0).fit(X, y)


def test_string_labels_and_weights_score_as_sklearn():
    X, y = make_classification(400, 5, random_state=1)
    labels = np.where(y == 1, "slide", "stable")
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    common = {"early_stopping": True, "max_iter": 200, "random_state": 0, "hidden_layer_sizes": (8,)}
    assert (EarlyStoppingMLP(**common).fit(X, labels).validation_scores_ ==
            MLPClassifier(**common).fit(X, labels).validation_scores_)
    assert (EarlyStoppingMLP(**common).fit(X, y, sample_weight=w).validation_scores_ ==
            MLPClassifier(**common).fit(X, y, sample_weight=w).validation_scores_)


# the early-stopping path is checked against sklearn above; the checks' tiny data sets stop at max_iter, which
# sklearn's own tests of MLPClassifier also let pass
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([EarlyStoppingMLP(max_iter=200)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
