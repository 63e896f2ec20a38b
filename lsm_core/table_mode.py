"""Table mode: the six models evaluated on a table of sample points (``lsm evaluate-table``).

For each model (``lsm_core.models.MODEL_NAMES``):

- **random CV** and **spatial CV** (repeated, seeded k-means folds on the coordinates, as
  sperrorest and Geocomputation with R ch. 12): AUC mean and sd over the outer folds. Tuning is
  nested: inside each outer training fold the ``table_tuning.TABLE_CANDIDATES`` point (settings
  for small samples, the model's default point first) with the best mean AUC over ``inner_splits``
  inner folds (spatial ones under spatial CV), drawn ``inner_repeats`` times, is refitted on the
  whole training fold, so no test row ever influences the choice of hyperparameters.
- **external**: tuned on the whole table (inner spatial folds), scored on another table.
- **InSAR-PU** (a deformation column): training negatives are Bagging-PU reliable negatives from
  the pool of training-fold absences with |v| below the threshold, instead of the table's own
  absences. Both strategies are scored on one yardstick: each test fold's landslides against
  its absences (the table's absences stand for the area), so the AUCs are comparable.
- **temporal** (dated rows and a split date): trained on the rows dated before the split, scored
  on the later ones; thresholds from the training rows only: the weighted-JS t* (P = training
  landslides, Q(t) = training absences with probability >= t, the absences standing for the
  area), 50 % and the start of the "high" class of five natural breaks. At each: TA = share of
  training landslides above it, POR = share of later landslides above it, LOR = 1 - POR, prone
  share = share of later absences above it. Training-row probabilities are out-of-fold (spatial
  folds): in-sample probabilities of a forest put every training landslide above any threshold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from lsm_core.errors import ConfigError, InputFileError, SamplingError
from lsm_core.models import MODEL_NAMES, evaluate
from lsm_core.prone import natural_breaks
from lsm_core.pu import BaggingPUClassifier, select_reliable_negatives
from lsm_core.sample_table import SampleTable
from lsm_core.spatial_cv import RepeatedSpatialKFold, SpatialKFold
from lsm_core.table_tuning import TABLE_CANDIDATES, candidate_auc, fit_quietly, make_table_model
from lsm_core.threshold import FactorBins, JSHistogramAccumulator, WeightScheme, weights_from

__all__ = ["NO_DATES", "NO_DEFORMATION", "CVScheme", "ModelResult", "TableEvaluation", "TemporalResult",
           "ThresholdFigures", "evaluate_table", "external_auc", "insar_pu_negatives", "js_threshold_of_table",
           "temporal_evaluation", "tuned_fit"]

CVScheme = Literal["random", "spatial"]
NO_DATES = "not computable: the table has no dates (use --date COL --split YYYY-MM-DD)"
NO_DEFORMATION = "not run: no deformation column (use --deformation COL)"
INNER_REPEATS = 2  # inner partitions per tuning (see tuned_fit)


@dataclass(frozen=True)
class ThresholdFigures:
    """TA, POR, LOR (0..1) and prone share (0..1) at one probability threshold (0..1)."""

    threshold: float
    ta: float
    por: float
    lor: float
    prone_share: float

    def to_json(self) -> dict[str, float]:
        return {"threshold": self.threshold, "ta": self.ta, "por": self.por, "lor": self.lor,
                "prone_share": self.prone_share}


@dataclass(frozen=True)
class TemporalResult:
    """Trained on rows dated before ``split``, scored on the later rows."""

    split: dt.date
    auc: float
    t_star_pct: float
    at: dict[str, ThresholdFigures]  # "adaptive_js", "fixed_50", "natural_breaks_high"
    n_train: tuple[int, int]  # (landslides, absences) dated before the split
    n_later: tuple[int, int]

    def to_json(self) -> dict[str, Any]:
        js = self.at["adaptive_js"]
        return {"auc": self.auc, "t_star_pct": self.t_star_pct, "ta": js.ta, "por": js.por, "lor": js.lor,
                "prone_share": js.prone_share, "at": {k: v.to_json() for k, v in self.at.items()},
                "n_train_positive": self.n_train[0], "n_train_negative": self.n_train[1],
                "n_later_positive": self.n_later[0], "n_later_negative": self.n_later[1]}


@dataclass(frozen=True)
class ModelResult:
    """Scores of one model; AUCs unitless 0..1, sd over the outer folds (ddof 1)."""

    name: str
    random_cv_auc: float
    random_cv_auc_sd: float
    spatial_cv_auc: float
    spatial_cv_auc_sd: float
    external_auc: float | None = None
    temporal: TemporalResult | None = None
    insar_pu_spatial_cv_auc: float | None = None
    insar_pu_spatial_cv_auc_sd: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"random_cv_auc": self.random_cv_auc, "random_cv_auc_sd": self.random_cv_auc_sd,
                "spatial_cv_auc": self.spatial_cv_auc, "spatial_cv_auc_sd": self.spatial_cv_auc_sd,
                "external_auc": self.external_auc,
                "temporal": None if self.temporal is None else self.temporal.to_json(),
                "insar_pu": None if self.insar_pu_spatial_cv_auc is None else {
                    "spatial_cv_auc": self.insar_pu_spatial_cv_auc,
                    "spatial_cv_auc_sd": self.insar_pu_spatial_cv_auc_sd}}


@dataclass(frozen=True)
class TableEvaluation:
    """Result of ``evaluate_table``: per-model scores, the per-fold table and what was not computed."""

    models: dict[str, ModelResult]
    n_positive: int
    n_negative: int
    factors: tuple[str, ...]
    folds: pd.DataFrame  # one row per model, strategy, scheme, repeat, fold: n_train, n_test, auc
    settings: dict[str, Any]
    temporal_status: str = "ok"
    insar_pu_status: str = "ok"
    n_dropped: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object of ``lsm evaluate-table`` (NaN as null)."""
        out = {"models": {k: v.to_json() for k, v in self.models.items()}, "n_positive": self.n_positive,
               "n_negative": self.n_negative, "factors": list(self.factors), "temporal_status": self.temporal_status,
               "insar_pu_status": self.insar_pu_status, "n_dropped": self.n_dropped, "settings": self.settings,
               "notes": self.notes}
        return _nan_to_none(out)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# -- nested tuning -------------------------------------------------------------------------------

def _inner_splits(scheme: CVScheme, y: np.ndarray, coords: np.ndarray, n: int, seed: int):
    """(train, validation) index pairs inside a training fold, each holding both classes."""
    if scheme == "spatial":
        splits = SpatialKFold(n, coords=coords, random_state=seed).split(coords)
    else:
        splits = StratifiedKFold(n, shuffle=True, random_state=seed).split(coords, y)
    return [(tr, va) for tr, va in splits if len(np.unique(y[va])) == 2 and len(np.unique(y[tr])) == 2]


def tuned_fit(name: str, X: pd.DataFrame, y: np.ndarray, coords: np.ndarray, *, scheme: CVScheme = "spatial",
              inner_splits: int = 3, inner_repeats: int = INNER_REPEATS, categorical: Sequence[str] = (),
              random_state: int = 0) -> Pipeline:
    """``name`` with the TABLE_CANDIDATES point of best mean inner-fold AUC, refitted on all of X, y.

    The inner folds are drawn ``inner_repeats`` times (seeds ``random_state + r``) and the AUC is
    averaged over all of them: a few dozen landslides per inner fold make one partition's ranking
    of the candidates noisy. Ties go to the first candidate, the model's defaults.
    """
    scores = []
    for r in range(inner_repeats):
        for tr, va in _inner_splits(scheme, y, coords, inner_splits, random_state + r):
            scores.append(candidate_auc(name, X.iloc[tr], y[tr], X.iloc[va], y[va], categorical=categorical,
                                        random_state=random_state))
    auc = np.array(scores).reshape(-1, len(TABLE_CANDIDATES[name]))
    auc = auc[np.isfinite(auc).any(axis=1)]  # a validation fold of one class scores nothing
    params = TABLE_CANDIDATES[name][int(np.argmax(np.nan_to_num(auc, nan=0.0).mean(axis=0)))] if len(auc) else {}
    model = make_table_model(name, params, categorical=categorical, random_state=random_state)
    return fit_quietly(model, X, y)


# -- negatives of a strategy ---------------------------------------------------------------------

def insar_pu_negatives(X: pd.DataFrame, y: np.ndarray, velocity: np.ndarray, *, threshold_mm_yr: float = 5.0,
                       n_bags: int = 50, quantile: float = 0.5, random_state: int = 0) -> np.ndarray:
    """Row indices of the positives plus Bagging-PU reliable negatives from the low-deformation pool.

    Pool U = absences (y == 0) with a known velocity and |v| < ``threshold_mm_yr`` (mm/yr). Bags of
    |P| pool rows against the positives score U out of bag; as many negatives as positives (or the
    whole low-scoring ``quantile`` of U, if smaller) are drawn from the lowest-scoring part. Pass X
    without the velocity column: it already defines the pool (as ``pu_exclude`` in the pipeline).
    """
    pos = np.flatnonzero(y == 1)
    pool = np.flatnonzero((y == 0) & np.isfinite(velocity) & (np.abs(velocity) < threshold_mm_yr))
    if len(pool) < 2:
        raise SamplingError(f"the InSAR-PU pool has {len(pool)} rows (absences with |v| < {threshold_mm_yr} mm/yr)")
    rows = np.concatenate([pos, pool])
    pu = BaggingPUClassifier(n_estimators=n_bags, random_state=random_state)
    pu.fit(X.iloc[rows].to_numpy(float), (np.arange(len(rows)) < len(pos)).astype(int))
    n = min(len(pos), int(np.floor(quantile * np.isfinite(pu.oob_score_).sum())))
    chosen = pool[select_reliable_negatives(pu.oob_score_, n, quantile=quantile, random_state=random_state)]
    return np.sort(np.concatenate([pos, chosen]))


# -- outer CV ------------------------------------------------------------------------------------

def _outer_splits(scheme: CVScheme, table: SampleTable, n_splits: int, n_repeats: int, seed: int):
    if scheme == "spatial":
        return RepeatedSpatialKFold(n_splits, n_repeats, coords=table.coords, random_state=seed).split(table.coords)
    return RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed).split(
        table.coords, table.y)


def _cv_rows(name: str, table: SampleTable, scheme: CVScheme, strategy: str, *, n_splits: int, n_repeats: int,
             inner_splits: int, threshold_mm_yr: float, pu_bags: int, seed: int,
             inner_repeats: int = INNER_REPEATS) -> list[dict[str, Any]]:
    """One row per outer fold: the AUC of the tuned model on the fold's landslides vs its absences."""
    rows = []
    velocity = table.deformation
    if strategy == "insar_pu" and velocity is None:
        raise ConfigError(f"the InSAR-PU strategy needs a deformation column: {NO_DEFORMATION}")
    for i, (train, test) in enumerate(_outer_splits(scheme, table, n_splits, n_repeats, seed)):
        if velocity is not None and strategy == "insar_pu":
            pu_X = table.X.drop(columns=[c for c in [table.deformation_column] if c in table.X.columns])
            train = train[insar_pu_negatives(pu_X.iloc[train], table.y[train], velocity[train],
                                             threshold_mm_yr=threshold_mm_yr, n_bags=pu_bags, random_state=seed + i)]
        auc = float("nan")
        if len(np.unique(table.y[test])) == 2:
            model = tuned_fit(name, table.X.iloc[train], table.y[train], table.coords[train], scheme=scheme,
                              inner_splits=inner_splits, inner_repeats=inner_repeats, categorical=table.categorical,
                              random_state=seed)
            auc = evaluate(table.y[test], model.predict_proba(table.X.iloc[test]))["auc"]
        rows.append({"model": name, "strategy": strategy, "scheme": scheme, "repeat": i // n_splits,
                     "fold": i % n_splits, "n_train": len(train), "n_test": len(test), "auc": auc})
    return rows


def _mean_sd(rows: list[dict[str, Any]]) -> tuple[float, float]:
    auc = np.array([r["auc"] for r in rows], dtype=float)
    auc = auc[np.isfinite(auc)]
    return (float(auc.mean()), float(auc.std(ddof=1)) if len(auc) > 1 else float("nan")) if len(auc) else (
        float("nan"), float("nan"))


# -- temporal ------------------------------------------------------------------------------------

def _figures(threshold: float, p_train_pos: np.ndarray, p_later_pos: np.ndarray,
             p_later_neg: np.ndarray) -> ThresholdFigures:
    share = lambda p: float(np.mean(p >= threshold)) if len(p) else float("nan")
    por = share(p_later_pos)
    return ThresholdFigures(float(threshold), share(p_train_pos), por, 1.0 - por, share(p_later_neg))


def _oof_proba(name: str, table: SampleTable, n_splits: int, inner_splits: int, seed: int,
               inner_repeats: int = INNER_REPEATS) -> np.ndarray:
    """Out-of-fold probability of every row (spatial folds, tuning nested in each training fold)."""
    out = np.full(len(table.y), np.nan)
    for train, test in SpatialKFold(n_splits, coords=table.coords, random_state=seed).split(table.coords):
        if len(np.unique(table.y[train])) < 2:
            continue
        model = tuned_fit(name, table.X.iloc[train], table.y[train], table.coords[train], inner_splits=inner_splits,
                          inner_repeats=inner_repeats, categorical=table.categorical, random_state=seed)
        out[test] = model.predict_proba(table.X.iloc[test])[:, 1]
    return out


def js_threshold_of_table(proba_area: np.ndarray, X_area: pd.DataFrame, X_positive: pd.DataFrame, *,
                          categorical: Sequence[str] = (), weights: WeightScheme = "equal",
                          importances: np.ndarray | None = None, n_bins: int = 32) -> float:
    """Weighted-JS threshold t* (percent) with sample rows standing for the area's pixels.

    P_i: factor i over ``X_positive``; Q_i(t): factor i over the ``X_area`` rows whose probability
    ``proba_area`` >= t/100. Bins span both tables (equal width; one per code for categorical).
    """
    names = list(X_area.columns)
    cat_idx = [names.index(c) for c in categorical]
    both = np.concatenate([X_area.to_numpy(float), X_positive.to_numpy(float)]).T
    bins = FactorBins.from_blocks([(both, None)], categorical=cat_idx, n_bins=n_bins)
    acc = JSHistogramAccumulator(bins)
    ok = np.isfinite(proba_area)
    acc.update(proba_area[ok], X_area.to_numpy(float)[ok].T)
    acc.add_positive_values(X_positive.to_numpy(float))
    w = weights_from(weights, len(names), importances=importances)
    return acc.curve(w, names).t_star_pct


def temporal_evaluation(name: str, table: SampleTable, split: dt.date, *, n_splits: int = 5, inner_splits: int = 3,
                        inner_repeats: int = INNER_REPEATS, weights: WeightScheme = "equal",
                        random_state: int = 0) -> TemporalResult:
    """Train on rows dated before ``split``, score the later rows (see the module docstring)."""
    if table.dates is None:
        raise ConfigError(NO_DATES)
    before = table.dates < np.datetime64(split, "D")
    train, later = table.subset(np.flatnonzero(before)), table.subset(np.flatnonzero(~before))
    for label, part in (("before", train), ("on or after", later)):
        if len(np.unique(part.y)) < 2:
            raise SamplingError(f"the rows dated {label} {split} hold a single class: choose another split date")
    model = tuned_fit(name, train.X, train.y, train.coords, inner_splits=inner_splits, inner_repeats=inner_repeats,
                      categorical=table.categorical, random_state=random_state)
    p_later = model.predict_proba(later.X)[:, 1]
    oof = _oof_proba(name, train, n_splits, inner_splits, random_state, inner_repeats)
    neg, pos = train.y == 0, train.y == 1
    t_star = js_threshold_of_table(oof[neg], train.X[neg], train.X[pos], categorical=table.categorical, weights=weights)
    breaks = natural_breaks(oof[neg], 5, seed=random_state)
    thresholds = {"adaptive_js": t_star / 100.0, "fixed_50": 0.5, "natural_breaks_high": float(breaks[-2])}
    args = (oof[pos], p_later[later.y == 1], p_later[later.y == 0])
    at = {k: _figures(t, *args) for k, t in thresholds.items()}
    return TemporalResult(split, evaluate(later.y, p_later)["auc"], t_star, at, (train.n_positive, train.n_negative),
                          (later.n_positive, later.n_negative))


def external_auc(name: str, table: SampleTable, other: SampleTable, *, inner_splits: int = 3,
                 inner_repeats: int = INNER_REPEATS, random_state: int = 0) -> float:
    """AUC on ``other`` of ``name`` tuned (inner spatial folds) and fitted on all of ``table``."""
    missing = [f for f in table.factors if f not in other.factors]
    if missing:
        raise InputFileError(f"the external table lacks the factors {missing}", other.path)
    model = tuned_fit(name, table.X, table.y, table.coords, inner_splits=inner_splits, inner_repeats=inner_repeats,
                      categorical=table.categorical, random_state=random_state)
    return evaluate(other.y, model.predict_proba(other.X[list(table.factors)]))["auc"]


# -- the whole evaluation ------------------------------------------------------------------------

def evaluate_table(table: SampleTable, *, models: Sequence[str] = MODEL_NAMES, n_splits: int = 5, n_repeats: int = 5,
                   inner_splits: int = 3, external: SampleTable | None = None, split: dt.date | None = None,
                   deformation_threshold_mm_yr: float = 5.0, pu_bags: int = 50, weights: WeightScheme = "equal",
                   schemes: Sequence[CVScheme] = ("random", "spatial"), random_state: int = 0,
                   on_model_done: Callable[[str], None] | None = None,
                   inner_repeats: int = INNER_REPEATS) -> TableEvaluation:
    """Random and spatial CV (nested tuning) of each model, plus external, InSAR-PU and temporal figures.

    ``n_repeats`` x ``n_splits`` outer folds per scheme (every model sees the same folds, so model
    differences are paired); ``split`` needs a table with dates; the InSAR-PU strategy runs (under
    spatial CV) when the table has a deformation column. A scheme left out of ``schemes`` is reported
    as NaN (null in JSON), e.g. ``schemes=()`` for a temporal evaluation alone. Deterministic for a
    given ``random_state``. ``on_model_done(name)`` is called as each model finishes (a progress bar).
    ``inner_repeats``: partitions of the inner folds per tuning (``tuned_fit``; the CLI and the asset
    keep ``INNER_REPEATS``, a test may draw fewer to save time).
    """
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise ConfigError(f"unknown models {unknown}; choose among {list(MODEL_NAMES)}")
    if not set(schemes) <= {"random", "spatial"}:
        raise ConfigError(f"unknown CV schemes {sorted(set(schemes) - {'random', 'spatial'})}; use random, spatial")
    if split is not None and table.dates is None:
        raise ConfigError(f"a split date ({split}) needs a date column: {NO_DATES}")
    if inner_repeats < 1:
        raise ConfigError(f"inner_repeats must be at least 1, got {inner_repeats}")
    with threadpool_limits(limits=1):  # thousands of small fits: OpenMP/BLAS threads only contend (HistGBDT)
        return _evaluate_table(table, models, n_splits, n_repeats, inner_splits, external, split,
                               deformation_threshold_mm_yr, pu_bags, weights, schemes, random_state,
                               on_model_done, inner_repeats)


def _evaluate_table(table: SampleTable, models: Sequence[str], n_splits: int, n_repeats: int, inner_splits: int,
                    external: SampleTable | None, split: dt.date | None, deformation_threshold_mm_yr: float,
                    pu_bags: int, weights: WeightScheme, schemes: Sequence[CVScheme],
                    random_state: int, on_model_done: Callable[[str], None] | None = None,
                    inner_repeats: int = INNER_REPEATS) -> TableEvaluation:
    kw: dict[str, Any] = {"n_splits": n_splits, "n_repeats": n_repeats, "inner_splits": inner_splits,
          "inner_repeats": inner_repeats, "threshold_mm_yr": deformation_threshold_mm_yr, "pu_bags": pu_bags,
          "seed": random_state}
    folds: list[dict[str, Any]] = []
    results = {}
    for name in models:
        rnd = _cv_rows(name, table, "random", "random", **kw) if "random" in schemes else []
        spa = _cv_rows(name, table, "spatial", "random", **kw) if "spatial" in schemes else []
        pu = (_cv_rows(name, table, "spatial", "insar_pu", **kw)
              if table.deformation is not None and "spatial" in schemes else None)
        folds += rnd + spa + (pu or [])
        pu_auc = _mean_sd(pu) if pu is not None else (None, None)
        results[name] = ModelResult(
            name, *_mean_sd(rnd), *_mean_sd(spa),
            external_auc=None if external is None else external_auc(
                name, table, external, inner_splits=inner_splits, inner_repeats=inner_repeats,
                random_state=random_state),
            temporal=None if split is None else temporal_evaluation(
                name, table, split, n_splits=n_splits, inner_splits=inner_splits, inner_repeats=inner_repeats,
                weights=weights, random_state=random_state),
            insar_pu_spatial_cv_auc=pu_auc[0], insar_pu_spatial_cv_auc_sd=pu_auc[1])
        if on_model_done is not None:
            on_model_done(name)
    settings = {"n_splits": n_splits, "n_repeats": n_repeats, "inner_splits": inner_splits,
                "inner_repeats": inner_repeats, "random_state": random_state,
                "split": None if split is None else split.isoformat(),
                "deformation_threshold_mm_yr": deformation_threshold_mm_yr, "weights": weights,
                "categorical": list(table.categorical), "schemes": list(schemes)}
    notes = [f"{table.n_dropped} rows without every factor, coordinate or date were left out"] if table.n_dropped else []
    return TableEvaluation(results, table.n_positive, table.n_negative, table.factors, pd.DataFrame(folds), settings,
                           temporal_status="ok" if split is not None else NO_DATES,
                           insar_pu_status="ok" if table.deformation is not None else NO_DEFORMATION,
                           n_dropped=table.n_dropped, notes=notes)
