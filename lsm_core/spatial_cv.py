"""Spatial cross-validation: k-means clusters of pixel coordinates as folds (sperrorest, mlr3spatiotempcv).

The protocol of ``partition_kmeans`` / ``spcv_coords`` as used in Geocomputation with R ch. 12:
the (x, y) coordinates (map units, e.g. m) are clustered into ``n_splits`` groups by k-means and
each cluster is one test fold, so a model is always tested on terrain away from its training
points. Rows sharing a group (e.g. the pixels of one landslide) are never split across folds.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin  # lets metadata routing pass `groups`
from sklearn.utils import check_random_state

from lsm_core.errors import ConfigError

__all__ = ["RepeatedSpatialKFold", "SpatialKFold", "spatial_fold_labels"]

_MAX_SEED = np.iinfo(np.int32).max


def _check_n_splits(n_splits: Any) -> int:
    """Validated number of folds (an int >= 2)."""
    if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool) or n_splits < 2:
        raise ConfigError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    return int(n_splits)


def _coordinates(X: Any, coords: Any) -> np.ndarray:
    """(n, 2) float array of coordinates (map units) from ``coords`` or the first two columns of ``X``."""
    n = len(X) if X is not None else None
    source = "coords" if coords is not None else "the first two columns of X"
    raw = coords if coords is not None else (X.iloc[:, :2] if isinstance(X, pd.DataFrame) else np.asarray(X)[:, :2])
    try:
        xy = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source} must be numeric x, y coordinates: {exc}") from None
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ConfigError(f"{source} must be an (n, 2) array of x, y coordinates, got shape {xy.shape}")
    if n is not None and xy.shape[0] != n:
        raise ConfigError(f"coords has {xy.shape[0]} rows but X has {n}: they must be aligned row by row")
    if not np.isfinite(xy).all():
        bad_rows = int((~np.isfinite(xy)).any(axis=1).sum())
        raise ConfigError(f"{source} contain NaN or infinite values in {bad_rows} rows")
    return xy


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """Integer code per row (-1 = ungrouped) from group labels where NaN/None means ungrouped."""
    if groups is None:
        return np.full(n, -1, dtype=np.int64)
    labels = pd.Series(np.asarray(groups, dtype=object) if not isinstance(groups, pd.Series) else groups.to_numpy())
    if len(labels) != n:
        raise ConfigError(f"groups has {len(labels)} rows but X has {n}")
    codes, _ = pd.factorize(labels, use_na_sentinel=True)  # NaN/None -> -1
    return codes.astype(np.int64)


def spatial_fold_labels(coords: Any, n_splits: int = 5, *, groups: Any = None, random_state: Any = None) -> np.ndarray:
    """Fold number (0..n_splits-1) per row: k-means cluster of its coordinates, groups kept whole."""
    n_splits = _check_n_splits(n_splits)
    xy = _coordinates(None, coords)
    n_distinct = len(np.unique(xy, axis=0))
    if n_distinct < n_splits:
        raise ConfigError(f"cannot make {n_splits} spatial folds from {n_distinct} distinct locations")
    # n_init=1 like R's kmeans() default, which sperrorest and mlr3spatiotempcv call.
    labels = KMeans(n_clusters=n_splits, n_init=1, random_state=random_state).fit_predict(xy).astype(np.int64)
    codes = _group_codes(groups, len(xy))
    grouped = codes >= 0
    if grouped.any():
        # Majority fold per group; ties go to the lower fold number, so the result is deterministic.
        counts = np.zeros((codes.max() + 1, n_splits), dtype=np.int64)
        np.add.at(counts, (codes[grouped], labels[grouped]), 1)
        labels[grouped] = counts.argmax(axis=1)[codes[grouped]]
    empty = sorted(set(range(n_splits)) - set(np.unique(labels).tolist()))
    if empty:
        raise ConfigError(f"spatial folds {empty} are empty after keeping groups whole: use fewer folds")
    return labels


class SpatialKFold(GroupsConsumerMixin, BaseCrossValidator):
    """K-fold CV whose folds are k-means clusters of the coordinates (map units); groups never split.

    ``coords`` is an (n, 2) array aligned with ``X``; if None, the first two columns of ``X`` are
    the coordinates (so the splitter also works inside nested CV, where X is a subset).

    Two clusters of pixels a kilometre apart make two folds, each tested on the far one:

    >>> import numpy as np
    >>> xy = np.array([[0, 0], [10, 0], [0, 10], [1000, 1000], [1010, 1000], [1000, 1010]], dtype=float)
    >>> [test.tolist() for _, test in SpatialKFold(2, coords=xy, random_state=0).split(xy)]
    [[3, 4, 5], [0, 1, 2]]

    It plugs into scikit-learn like any splitter, e.g. ``cross_validate(model, X, y,
    cv=SpatialKFold(5), groups=landslide_ids)``.
    """

    def __init__(self, n_splits: int = 5, *, coords: Any = None, random_state: Any = None):
        self.n_splits: int = _check_n_splits(n_splits)
        self.coords: Any = coords
        self.random_state: Any = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds."""
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train, test) row indices, one pair per spatial fold."""
        labels = spatial_fold_labels(_coordinates(X, self.coords), self.n_splits, groups=groups,
                                     random_state=self.random_state)
        for fold in range(self.n_splits):
            test = labels == fold
            yield np.flatnonzero(~test), np.flatnonzero(test)


class RepeatedSpatialKFold(GroupsConsumerMixin, BaseCrossValidator):
    """``n_repeats`` independent SpatialKFold partitions, each with its own k-means seed."""

    n_splits: int
    n_repeats: int
    coords: Any
    random_state: Any

    def __init__(self, n_splits: int = 5, n_repeats: int = 10, *, coords: Any = None, random_state: Any = None):
        self.n_splits = _check_n_splits(n_splits)
        if not isinstance(n_repeats, numbers.Integral) or isinstance(n_repeats, bool) or n_repeats < 1:
            raise ConfigError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
        self.n_repeats = int(n_repeats)
        self.coords = coords
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of (train, test) pairs: n_splits * n_repeats."""
        return self.n_splits * self.n_repeats

    def repeat_seeds(self) -> list[int]:
        """K-means seed of each repeat (reproducible when random_state is an int)."""
        return check_random_state(self.random_state).randint(_MAX_SEED, size=self.n_repeats).tolist()

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train, test) row indices: repeat 0 folds 0..k-1, then repeat 1, ..."""
        xy = _coordinates(X, self.coords)
        for seed in self.repeat_seeds():
            yield from SpatialKFold(self.n_splits, coords=xy, random_state=seed).split(X, y, groups)
