import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from lsm_core.mlp import EarlyStoppingMLP


@pytest.mark.parametrize("params", [
    {"hidden_layer_sizes": (16,), "alpha": 1e-3},
    {"hidden_layer_sizes": (32, 16), "alpha": 1e-1, "n_iter_no_change": 5},
])
def test_same_fit_as_sklearn_with_early_stopping(params):
    X, y = make_classification(800, 8, n_informative=5, flip_y=0.2, random_state=3)
    common = {"early_stopping": True, "max_iter": 300, "random_state": 0, **params}
    ours, ref = EarlyStoppingMLP(**common).fit(X, y), MLPClassifier(**common).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ and ours.validation_scores_ == ref.validation_scores_
    for a, b in zip(ours.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.predict_proba(X), ref.predict_proba(X))


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
