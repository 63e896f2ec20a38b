"""Tests for lsm_core.pu: Bagging-PU scores and reliable-negative selection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from lsm_core.errors import ConfigError, SamplingError
from lsm_core.pu import BaggingPUClassifier, select_reliable_negatives


def _pu_blobs(n_pos=300, n_hidden=400, n_neg=2500, seed=0):
    """Two Gaussian blobs in 4-D; some positives are hidden in the unlabeled pool (SCAR)."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(loc=1.5, size=(n_pos + n_hidden, 4))
    neg = rng.normal(loc=-0.5, size=(n_neg, 4))
    X = np.vstack([pos, neg])
    s = np.r_[np.ones(n_pos), np.zeros(n_hidden + n_neg)].astype(int)
    hidden = np.r_[np.ones(n_hidden), np.zeros(n_neg)].astype(bool)  # truth of the unlabeled rows, in order
    return X, s, hidden


@pytest.fixture(scope="module")
def blobs():
    return _pu_blobs()


@pytest.fixture(scope="module")
def fitted(blobs):
    X, s, _ = blobs
    return BaggingPUClassifier(n_estimators=30, random_state=7).fit(X, s)


def test_same_seed_same_scores_for_any_n_jobs(blobs, fitted):
    X, s, _ = blobs
    again = BaggingPUClassifier(n_estimators=30, random_state=7, n_jobs=1).fit(X, s)
    threaded = BaggingPUClassifier(n_estimators=30, random_state=7, n_jobs=2).fit(X, s)
    np.testing.assert_array_equal(fitted.oob_score_, again.oob_score_)
    np.testing.assert_array_equal(fitted.oob_score_, threaded.oob_score_)
    np.testing.assert_array_equal(fitted.oob_counts_, threaded.oob_counts_)
    np.testing.assert_array_equal(fitted.predict_proba(X), threaded.predict_proba(X))


def test_other_seed_changes_scores(blobs, fitted):
    X, s, _ = blobs
    other = BaggingPUClassifier(n_estimators=30, random_state=8).fit(X, s)
    assert not np.array_equal(fitted.oob_score_, other.oob_score_)


def test_hidden_positives_score_higher(blobs, fitted):
    _, s, hidden = blobs
    score = fitted.oob_score_
    assert score.shape == ((s == 0).sum(),)
    assert not np.isnan(score).any()
    assert score[hidden].mean() > score[~hidden].mean() + 0.3
    assert roc_auc_score(hidden, score) > 0.85


def test_oob_score_is_mean_over_out_of_bag_bags(blobs):
    # Recompute the OOB mean by hand from the per-bag draws to pin the definition.
    X, s, _ = blobs
    m = BaggingPUClassifier(n_estimators=5, random_state=3).fit(X, s)
    XU = X[s == 0].astype(np.float32)
    seeds = np.random.RandomState(3).randint(np.iinfo(np.int32).max, size=5)
    sums, counts = np.zeros(len(XU)), np.zeros(len(XU), dtype=int)
    for est, seed in zip(m.estimators_, seeds, strict=True):
        draw = np.random.default_rng(int(seed)).integers(0, len(XU), size=m.max_samples_)
        oob = ~np.isin(np.arange(len(XU)), draw)
        sums[oob] += est.predict_proba(XU[oob])[:, 1]
        counts += oob
    np.testing.assert_array_equal(m.oob_counts_, counts)
    np.testing.assert_allclose(m.oob_score_, sums / counts, rtol=1e-12)


def test_never_out_of_bag_is_nan():
    # A pool of 2 rows and 50 draws per bag: every row is drawn in every bag.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(52, 3))
    s = np.r_[np.ones(50), np.zeros(2)]
    m = BaggingPUClassifier(n_estimators=3, random_state=0).fit(X, s)
    assert np.isnan(m.oob_score_).all()
    assert (m.oob_counts_ == 0).all()


def test_max_samples_default_is_number_of_positives(blobs, fitted):
    _, s, _ = blobs
    assert fitted.max_samples_ == (s == 1).sum() == 300
    X, s, _ = blobs
    assert BaggingPUClassifier(n_estimators=2, max_samples=0.1, random_state=0).fit(X, s).max_samples_ == 290
    assert BaggingPUClassifier(n_estimators=2, max_samples=17, random_state=0).fit(X, s).max_samples_ == 17


@pytest.mark.parametrize("bad", [0, -3, 1.5, 0.0, "all"])
def test_bad_max_samples(blobs, bad):
    X, s, _ = blobs
    with pytest.raises(ConfigError, match="max_samples"):
        BaggingPUClassifier(n_estimators=2, max_samples=bad).fit(X, s)


def test_sklearn_api(blobs, fitted):
    X, s, _ = blobs
    base = LogisticRegression()
    m = BaggingPUClassifier(estimator=base, n_estimators=4, max_samples=50, random_state=1, n_jobs=2)
    params = m.get_params()
    assert params["n_estimators"] == 4 and params["max_samples"] == 50 and params["n_jobs"] == 2
    assert params["estimator"] is base
    c = clone(m)
    assert c.get_params()["n_estimators"] == 4 and not hasattr(c, "estimators_")
    c.set_params(n_estimators=3).fit(X, s)
    assert len(c.estimators_) == 3 and c.n_features_in_ == 4
    assert base is m.estimator and not hasattr(base, "coef_")  # the user's estimator is never fitted
    proba = fitted.predict_proba(X[:10])
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert set(np.unique(fitted.predict(X))) <= {0, 1}
    # decision_function keeps the ranking of P(1), shifted so that predict == (decision_function > 0)
    np.testing.assert_array_equal(fitted.decision_function(X[:10]), proba[:, 1] - 0.5)
    np.testing.assert_array_equal(fitted.predict(X), (fitted.decision_function(X) > 0).astype(int))
    with pytest.raises(ValueError, match="features"):
        fitted.predict_proba(X[:, :3])


_LABELS_ARE_FIXED = "feeds labels {1, 2} or strings; PU labels are fixed: 1 = positive, 0 = unlabeled"
PU_EXPECTED_FAILED_CHECKS = {
    "check_estimators_dtypes": _LABELS_ARE_FIXED,
    "check_classifier_data_not_an_array": _LABELS_ARE_FIXED,
    "check_classifiers_classes": _LABELS_ARE_FIXED,
    "check_fit2d_1feature": _LABELS_ARE_FIXED,
}


@parametrize_with_checks([BaggingPUClassifier(n_estimators=3, random_state=0)],
                         expected_failed_checks=lambda est: PU_EXPECTED_FAILED_CHECKS, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_unfitted_predict_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(BaggingPUClassifier(n_estimators=2), method)(np.zeros((3, 2)))


def test_binary_only_tag_and_multiclass_message():
    from sklearn.utils import get_tags

    assert get_tags(BaggingPUClassifier()).classifier_tags.multi_class is False
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(SamplingError, match="Only binary classification"):
        BaggingPUClassifier(n_estimators=2).fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        BaggingPUClassifier(n_estimators=2).fit(X, np.linspace(0, 1, 30))


def test_nested_random_state_is_seeded(blobs):
    X, s, _ = blobs
    m = BaggingPUClassifier(estimator=DecisionTreeClassifier(max_features=2), n_estimators=3, random_state=5).fit(X, s)
    states = [est.random_state for est in m.estimators_]
    assert len(set(states)) == 3 and all(isinstance(r, int) for r in states)


@pytest.mark.parametrize(
    ("s_kind", "match"), [("no_pos", "no positive"), ("no_unl", "no unlabeled"), ("bad", "must be 1")]
)
def test_fit_label_errors(s_kind, match):
    X = np.random.default_rng(0).normal(size=(20, 2))
    s = {"no_pos": np.zeros(20), "no_unl": np.ones(20), "bad": np.r_[np.ones(10), -np.ones(10)]}[s_kind]
    with pytest.raises(SamplingError, match=match) as info:
        BaggingPUClassifier(n_estimators=2).fit(X, s)
    assert isinstance(info.value, ValueError)


def test_reliable_negatives_come_from_low_scores():
    scores = np.random.default_rng(1).random(1000)
    idx = select_reliable_negatives(scores, 200, quantile=0.3, random_state=0)
    assert idx.shape == (200,) and len(np.unique(idx)) == 200
    assert scores[idx].max() <= np.sort(scores)[299]
    np.testing.assert_array_equal(idx, select_reliable_negatives(scores, 200, quantile=0.3, random_state=0))
    # All of the low part when n equals its size.
    np.testing.assert_array_equal(
        select_reliable_negatives(scores, 300, quantile=0.3, random_state=0), np.sort(np.argsort(scores)[:300])
    )


def test_reliable_negatives_skip_nan_and_handle_ties():
    scores = np.r_[np.full(10, np.nan), np.zeros(10), np.ones(10)]
    idx = select_reliable_negatives(scores, 10, quantile=0.5, random_state=0)
    np.testing.assert_array_equal(idx, np.arange(10, 20))


def test_reliable_negatives_pool_too_small():
    scores = np.linspace(0, 1, 100)
    with pytest.raises(SamplingError, match="only 50 of 100") as info:
        select_reliable_negatives(scores, 51, quantile=0.5, random_state=0)
    assert isinstance(info.value, ValueError)
    with pytest.raises(SamplingError, match="empty"):
        select_reliable_negatives(np.array([]), 1, random_state=0)
    with pytest.raises(ConfigError, match="quantile"):
        select_reliable_negatives(scores, 1, quantile=0.0, random_state=0)
