"""Tests for lsm_core.spatial_cv: k-means spatial folds, groups kept whole, sklearn composition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

from lsm_core.errors import ConfigError
from lsm_core.spatial_cv import RepeatedSpatialKFold, SpatialKFold, spatial_fold_labels

CENTRES = np.array([[0, 0], [10_000, 0], [0, 10_000], [10_000, 10_000], [5_000, 5_000]], dtype=float)


def _blobs(n_per: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five far-apart clusters of points (m) and the cluster of each point."""
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(len(CENTRES)), n_per)
    return CENTRES[blob] + rng.normal(scale=300, size=(len(blob), 2)), blob


def _uniform(n: int = 300, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 5_000, size=(n, 2))


def _assert_partition(splits: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    tests = np.concatenate([test for _, test in splits])
    assert np.array_equal(np.sort(tests), np.arange(n)), "test folds must cover every row exactly once"
    for train, test in splits:
        assert len(test) > 0
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))


def test_folds_are_the_spatial_clusters():
    xy, blob = _blobs()
    splits = list(SpatialKFold(5, coords=xy, random_state=0).split(np.zeros((len(xy), 3))))
    assert len(splits) == 5
    _assert_partition(splits, len(xy))
    # far-apart clusters are recovered exactly: each test fold is one whole cluster
    assert sorted(tuple(np.unique(blob[test])) for _, test in splits) == [(k,) for k in range(5)]


def test_coordinates_default_to_the_first_two_columns_of_x():
    xy = _uniform()
    X = np.c_[xy, np.random.default_rng(2).normal(size=(len(xy), 3))]
    from_coords = list(SpatialKFold(5, coords=xy, random_state=3).split(X))
    from_x = list(SpatialKFold(5, random_state=3).split(X))
    from_frame = list(SpatialKFold(5, random_state=3).split(pd.DataFrame(X, columns=list("xyabc"))))
    for (a, b), (c, d), (_, f) in zip(from_coords, from_x, from_frame, strict=True):
        assert np.array_equal(b, d) and np.array_equal(b, f) and np.array_equal(a, c)


def test_seeded_folds_are_reproducible_and_seeds_matter():
    xy = _uniform()
    first = spatial_fold_labels(xy, 5, random_state=7)
    assert np.array_equal(first, spatial_fold_labels(xy, 5, random_state=7))
    assert any(not np.array_equal(first, spatial_fold_labels(xy, 5, random_state=s)) for s in range(8, 12))


def test_groups_are_never_split_and_go_to_their_majority_fold():
    xy = _uniform(400)
    plain = spatial_fold_labels(xy, 5, random_state=0)
    rng = np.random.default_rng(4)
    groups = np.full(len(xy), np.nan)
    for g in range(30):  # 30 "landslides" of 5 rows scattered over the map, so they straddle folds
        groups[rng.choice(np.flatnonzero(np.isnan(groups)), 5, replace=False)] = g
    labels = spatial_fold_labels(xy, 5, groups=groups, random_state=0)
    for g in range(30):
        members = groups == g
        assert len(np.unique(labels[members])) == 1
        counts = np.bincount(plain[members], minlength=5)
        assert labels[members][0] == np.flatnonzero(counts == counts.max())[0]  # majority, ties to lower fold
    ungrouped = np.isnan(groups)
    assert np.array_equal(labels[ungrouped], plain[ungrouped])


def test_groups_may_be_object_labels_with_none():
    xy = _uniform(60)
    groups = [None] * 60
    for i in range(0, 60, 7):
        groups[i] = "ls-1"
    labels = spatial_fold_labels(xy, 3, groups=pd.Series(groups), random_state=0)
    assert len(np.unique(labels[[i for i in range(0, 60, 7)]])) == 1


def test_repeated_folds_have_one_seed_per_repeat():
    xy = _uniform()
    cv = RepeatedSpatialKFold(5, 3, coords=xy, random_state=0)
    splits = list(cv.split(xy))
    assert cv.get_n_splits() == len(splits) == 15
    seeds = cv.repeat_seeds()
    assert len(set(seeds)) == 3 and seeds == RepeatedSpatialKFold(5, 3, random_state=0).repeat_seeds()
    for r, seed in enumerate(seeds):
        _assert_partition(splits[5 * r: 5 * r + 5], len(xy))
        single = list(SpatialKFold(5, coords=xy, random_state=seed).split(xy))
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(single, splits[5 * r: 5 * r + 5], strict=True))
    assert not all(np.array_equal(splits[i][1], splits[5 + i][1]) for i in range(5))


def test_composes_with_cross_validate_and_nested_grid_search():
    xy, _ = _blobs()
    rng = np.random.default_rng(5)
    z = rng.normal(size=len(xy))
    y = (z + rng.normal(scale=0.5, size=len(xy)) > 0).astype(int)
    X = np.c_[xy, z]  # coordinates as the first two columns, so inner folds find them in every subset
    groups = np.where(np.arange(len(xy)) % 10 == 0, np.arange(len(xy)) // 20, np.nan)
    inner = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=SpatialKFold(3, random_state=0),
                         scoring="roc_auc")
    res = cross_validate(inner, X, y, cv=RepeatedSpatialKFold(5, 2, random_state=0), groups=groups,
                         scoring="roc_auc")
    assert len(res["test_score"]) == 10
    assert np.all(np.isfinite(res["test_score"]))


def test_groups_reach_the_splitter_under_metadata_routing():
    xy = _uniform(120)
    y = (xy[:, 0] > 2_500).astype(int)
    groups = np.where(np.arange(120) < 40, 0.0, np.nan)  # one big group of 40 scattered rows
    with config_context(enable_metadata_routing=True):
        res = cross_validate(LogisticRegression(), xy, y, cv=SpatialKFold(3, random_state=0),
                             params={"groups": groups}, return_indices=True)
    holders = [np.isin(np.arange(40), test).any() for test in res["indices"]["test"]]
    assert sum(holders) == 1  # the group sits in exactly one test fold


@pytest.mark.parametrize(
    ("kwargs", "X", "match"),
    [
        ({"n_splits": 1}, np.zeros((10, 2)), "n_splits"),
        ({"n_splits": 5, "coords": np.zeros((9, 2))}, np.zeros((10, 2)), "aligned"),
        ({"n_splits": 5, "coords": np.zeros((10, 3))}, np.zeros((10, 2)), r"\(n, 2\)"),
        ({"n_splits": 3}, np.array([[0.0, 0.0], [np.nan, 1.0], [2.0, 2.0], [3.0, 3.0]]), "NaN"),
        ({"n_splits": 3}, np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]), "2 distinct"),
    ],
)
def test_bad_input_raises_config_error(kwargs, X, match):
    with pytest.raises(ConfigError, match=match):
        list(SpatialKFold(**kwargs).split(X))


def test_a_group_that_swallows_a_fold_is_reported():
    xy, blob = _blobs(n_per=10)
    groups = np.where(np.isin(blob, [0, 1]), 1.0, np.nan)  # clusters 0 and 1 are one group: one fold empties
    with pytest.raises(ConfigError, match="empty after keeping groups whole"):
        spatial_fold_labels(xy, 5, groups=groups, random_state=0)


def test_repeated_rejects_zero_repeats():
    with pytest.raises(ConfigError, match="n_repeats"):
        RepeatedSpatialKFold(5, 0)


# CV splitters are not estimators, so sklearn's parametrize_with_checks does not apply to them
# (it needs fit/get_params). These tests pin the contract sklearn's model_selection relies on:
# check_cv passes the object through, get_n_splits counts what split yields, indices are
# integer, disjoint and complete, repr and pickle work, and the splitters plug into
# cross_val_predict (a partition) and GridSearchCV.
SPLITTERS = [SpatialKFold(4, random_state=0), RepeatedSpatialKFold(3, 2, random_state=0)]


@pytest.mark.parametrize("cv", SPLITTERS, ids=lambda cv: type(cv).__name__)
def test_splitter_contract_used_by_model_selection(cv):
    import pickle

    from sklearn.model_selection import check_cv

    xy = _uniform(80)
    y = (xy[:, 0] > 2_500).astype(int)
    assert check_cv(cv, y, classifier=True) is cv
    splits = list(cv.split(xy.tolist(), y))  # a list of rows is accepted as X, like any sklearn splitter
    assert cv.get_n_splits() == cv.get_n_splits(xy, y) == len(splits)
    for train, test in splits:
        assert train.ndim == test.ndim == 1 and train.dtype.kind == test.dtype.kind == "i"
        assert not np.intersect1d(train, test).size and len(train) + len(test) == len(xy)
    assert repr(cv).startswith(type(cv).__name__ + "(") and "n_splits=" in repr(cv)
    again = list(pickle.loads(pickle.dumps(cv)).split(xy, y))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))


def test_spatial_kfold_is_a_partition_for_cross_val_predict():
    from sklearn.model_selection import cross_val_predict

    xy, _ = _blobs()
    y = (xy[:, 1] > 5_000).astype(int)
    X = np.c_[xy / 1_000, np.random.default_rng(0).normal(size=len(xy))]  # km: lbfgs converges
    proba = cross_val_predict(LogisticRegression(), X, y, cv=SpatialKFold(5, random_state=0), method="predict_proba")
    assert proba.shape == (len(xy), 2) and np.allclose(proba.sum(axis=1), 1.0)
