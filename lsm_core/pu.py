"""Bagging-PU learning (Mordelet & Vert 2014) and reliable-negative selection for ``insar_pu``.

Scores are unitless probabilities in [0, 1] that a pixel belongs to the positive (landslide)
class; a low out-of-bag score marks a pixel of the unlabeled pool as a reliable negative.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import BaseDecisionTree, DecisionTreeClassifier
from sklearn.utils import Tags, check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from lsm_core.errors import ConfigError, SamplingError

__all__ = ["BaggingPUClassifier", "select_reliable_negatives"]

_MAX_SEED = np.iinfo(np.int32).max


def _default_estimator() -> DecisionTreeClassifier:
    """Shallow tree: fast on |P| + |P| rows per bag, smooth enough for ranking the pool."""
    return DecisionTreeClassifier(max_depth=8, min_samples_leaf=5)


def _work_dtype(estimator: BaseEstimator) -> type:
    # sklearn trees cast every input to float32 on fit and predict; casting the pool once up
    # front avoids a full-pool copy per bag and gives bit-identical results.
    tree_like = (BaseDecisionTree, RandomForestClassifier, ExtraTreesClassifier)
    return np.float32 if isinstance(estimator, tree_like) else np.float64


def _seeded_clone(estimator: BaseEstimator, seed: int) -> BaseEstimator:
    """Clone of ``estimator`` with every (nested) ``random_state`` set to ``seed``."""
    est = clone(estimator)
    keys = [k for k in est.get_params(deep=True) if k == "random_state" or k.endswith("__random_state")]
    if keys:
        est.set_params(**{k: seed for k in keys})
    return est


def _positive_proba(estimator: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """Probability of class 1 for each row of ``X`` (unitless, 0..1)."""
    col = int(np.flatnonzero(estimator.classes_ == 1)[0])
    return estimator.predict_proba(X)[:, col]


def _fit_bag(
    base: BaseEstimator, seed: int, XP: np.ndarray, XU: np.ndarray, n_draw: int
) -> tuple[BaseEstimator, np.ndarray, np.ndarray]:
    """Fit one bag on P vs ``n_draw`` unlabeled rows drawn with replacement; score its OOB rows."""
    n_u = XU.shape[0]
    draw = np.random.default_rng(seed).integers(0, n_u, size=n_draw)
    # Only the drawn rows are copied; the big pool is read in place.
    X_train = np.concatenate([XP, XU[draw]])
    y_train = np.r_[np.ones(XP.shape[0], dtype=np.int8), np.zeros(n_draw, dtype=np.int8)]
    est = _seeded_clone(base, seed).fit(X_train, y_train)
    oob = np.bincount(draw, minlength=n_u) == 0
    n_oob = int(oob.sum())
    if n_oob >= n_u // 2:
        # Most of the pool is out of bag (the usual case, |draw| << |U|): predicting every
        # row and zeroing the in-bag ones is cheaper than gathering a masked copy.
        score = _positive_proba(est, XU)
        score[~oob] = 0.0
    else:
        score = np.zeros(n_u)
        if n_oob:
            score[oob] = _positive_proba(est, XU[oob])
    return est, score, oob


class BaggingPUClassifier(ClassifierMixin, BaseEstimator):
    """Bagging-PU classifier (Mordelet & Vert 2014): labels ``y`` are 1 = positive, 0 = unlabeled.

    A scikit-learn binary classifier (it passes ``parametrize_with_checks`` with the PU-specific
    exceptions listed in ``lsm_assets_tests/lsm_core/test_pu.py``). The label values
    are fixed: 1 marks a labeled positive and 0 an unlabeled row, any other value is refused.

    Parameters
    ----------
    estimator : sklearn classifier with ``predict_proba``; None = ``DecisionTreeClassifier(max_depth=8)``.
    n_estimators : number of bags B.
    max_samples : unlabeled rows drawn per bag (with replacement). None = number of positives
        (Mordelet-Vert); an int is a row count; a float in (0, 1] is a fraction of the pool.
    random_state : seed; one seed per bag is derived up front, so results do not depend on n_jobs.
    n_jobs : threads used to fit bags (joblib semantics: None = 1, -1 = all cores).

    Attributes
    ----------
    oob_score_ : (n_unlabeled,) mean out-of-bag positive score of each unlabeled row, in the
        order the rows appear in ``X``; NaN for a row that was drawn in every bag (never out of bag).
    oob_counts_ : (n_unlabeled,) number of bags in which each unlabeled row was out of bag.
    estimators_ : the B fitted base estimators.
    classes_ : array([0, 1]).

    Examples
    --------
    Fifty labeled landslide pixels (two factors) and two hundred unlabeled ones:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(2.0, 1.0, (50, 2)), rng.normal(0.0, 1.0, (200, 2))])
    >>> y = np.r_[np.ones(50), np.zeros(200)]  # 1 = labeled positive, 0 = unlabeled
    >>> pu = BaggingPUClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> pu.oob_score_.shape  # one out-of-bag PU score per unlabeled row: low = reliable negative
    (200,)
    >>> pu.predict([[3.0, 3.0], [-2.0, -2.0]])
    array([1, 0])
    """

    # fitted attributes (set by ``fit``; declared for type checkers)
    estimators_: list[BaseEstimator]
    oob_score_: np.ndarray
    oob_counts_: np.ndarray
    classes_: np.ndarray
    n_positive_: int
    n_unlabeled_: int
    max_samples_: int
    _dtype: type

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        n_estimators: int = 100,
        max_samples: int | float | None = None,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _resolve_max_samples(self, n_pos: int, n_unl: int) -> int:
        """Number of unlabeled rows drawn per bag (count of rows)."""
        m = self.max_samples
        if m is None:
            return n_pos
        if isinstance(m, numbers.Integral) and not isinstance(m, bool):
            if m < 1:
                raise ConfigError(f"max_samples must be >= 1, got {m}")
            return int(m)
        if isinstance(m, numbers.Real) and 0.0 < m <= 1.0:
            return max(1, int(round(m * n_unl)))
        raise ConfigError(f"max_samples must be None, an int >= 1 or a float in (0, 1], got {m!r}")

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # PU: labeled positives vs one unlabeled pool
        return tags

    def fit(self, X: Any, y: Any) -> BaggingPUClassifier:
        """Fit B bags on positives (y == 1) vs draws from the unlabeled rows (y == 0)."""
        if not (isinstance(self.n_estimators, numbers.Integral) and self.n_estimators >= 1):
            raise ConfigError(f"n_estimators must be an int >= 1, got {self.n_estimators!r}")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)  # a continuous target is refused as sklearn does ("Unknown label type")
        labels = np.unique(y)
        if not np.isin(labels, (0, 1)).all():
            kind = "Only binary classification is supported. " if labels.size > 2 else ""
            raise SamplingError(f"{kind}PU labels must be 1 (positive) or 0 (unlabeled), got values {labels.tolist()}")
        pos = y == 1
        n_pos, n_unl = int(pos.sum()), int((~pos).sum())
        if n_pos == 0:
            raise SamplingError("no positive (y == 1) rows, only one class: Bagging-PU needs labeled positives")
        if n_unl == 0:
            raise SamplingError("no unlabeled (y == 0) rows, only one class: the unlabeled pool is empty")
        n_draw = self._resolve_max_samples(n_pos, n_unl)

        base = _default_estimator() if self.estimator is None else self.estimator
        dtype = _work_dtype(base)
        XP = np.ascontiguousarray(X[pos], dtype=dtype)
        XU = np.ascontiguousarray(X[~pos], dtype=dtype)
        seeds = check_random_state(self.random_state).randint(_MAX_SEED, size=self.n_estimators)

        # Threads, not processes: tree fit/predict release the GIL and the pool is shared, not
        # pickled. Results arrive in bag order, so sums are identical for any n_jobs.
        results = Parallel(n_jobs=self.n_jobs, require="sharedmem", return_as="generator")(
            delayed(_fit_bag)(base, int(seed), XP, XU, n_draw) for seed in seeds
        )
        sums = np.zeros(n_unl)
        counts = np.zeros(n_unl, dtype=np.int64)
        self.estimators_ = []
        for est, score, oob in results:
            self.estimators_.append(est)
            sums += score
            counts += oob
        with np.errstate(invalid="ignore", divide="ignore"):
            self.oob_score_ = np.where(counts > 0, sums / counts, np.nan)
        self.oob_counts_ = counts
        self.classes_ = np.array([0, 1])
        self.n_positive_, self.n_unlabeled_, self.max_samples_ = n_pos, n_unl, n_draw
        self._dtype = dtype
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, 2) mean over bags of P(class 0), P(class 1); unitless, rows sum to 1."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        X = np.ascontiguousarray(X, dtype=self._dtype)
        p1 = np.zeros(X.shape[0])
        for est in self.estimators_:
            p1 += _positive_proba(est, X)
        p1 /= len(self.estimators_)
        return np.column_stack([1.0 - p1, p1])

    def decision_function(self, X: Any) -> np.ndarray:
        """(n,) mean positive score over bags minus 0.5, unitless -0.5..0.5.

        Same ranking as ``predict_proba(X)[:, 1]``; shifted so that ``predict`` is
        ``decision_function > 0``, the scikit-learn contract for binary classifiers.
        """
        return self.predict_proba(X)[:, 1] - 0.5

    def predict(self, X: Any) -> np.ndarray:
        """(n,) class 1 where the mean positive score is > 0.5, else 0 (a tie is 0, like argmax of predict_proba)."""
        check_is_fitted(self, "estimators_")
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def select_reliable_negatives(
    pu_scores: np.ndarray, n: int, *, quantile: float = 0.5, random_state: int | np.random.RandomState | None = None
) -> np.ndarray:
    """Sorted indices of ``n`` pool rows drawn uniformly from the lowest-scoring ``quantile`` share (NaN: never)."""
    scores = np.asarray(pu_scores, dtype=float).ravel()
    if not (isinstance(n, numbers.Integral) and n >= 0):
        raise ConfigError(f"n must be an int >= 0, got {n!r}")
    if not (0.0 < quantile <= 1.0):
        raise ConfigError(f"quantile must be in (0, 1], got {quantile}")
    valid = np.flatnonzero(~np.isnan(scores))
    if valid.size == 0:
        raise SamplingError("the unlabeled pool is empty (no finite PU scores)")
    # Rank-based cut (stable sort) so that ties or a constant score still give a pool of
    # exactly floor(quantile * n_valid) rows instead of all or nothing.
    n_low = int(np.floor(quantile * valid.size))
    low = valid[np.argsort(scores[valid], kind="stable")[:n_low]]
    if low.size < n:
        raise SamplingError(
            f"asked for {n} reliable negatives but the lowest {quantile:.0%} of the pool holds only "
            f"{low.size} of {valid.size} scored pixels; lower n or raise quantile"
        )
    rng = check_random_state(random_state)
    return np.sort(rng.choice(low, size=n, replace=False))
