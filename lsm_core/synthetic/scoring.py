"""Scores against the synthetic world's ground truth (``truth/``), for studies and tests, never for the pipeline.

``truth_auc`` asks how well a susceptibility ranks pixels by their *true* hazard rather than by the few
landslides that happened; ``negatives_against_truth`` how safe a strategy's negatives really are.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

__all__ = ["negatives_against_truth", "truth_auc"]


def truth_auc(scores: ArrayLike, hazard: ArrayLike) -> float:
    """Expected ROC AUC of ``scores`` if each pixel failed with its true probability ``hazard`` (0..1).

    Every pixel counts as a positive with weight h and as a negative with weight 1 - h: the AUC that
    infinitely many inventories drawn from the true hazard would give on these pixels (ties count
    half). 0.5: no better than chance; 1: every more hazardous pixel scores higher. Pass a uniform
    sample of the area's valid pixels.
    """
    s, h = np.asarray(scores, float).ravel(), np.clip(np.asarray(hazard, float).ravel(), 0.0, 1.0)
    if s.shape != h.shape:
        raise ValueError(f"scores {s.shape} and hazard {h.shape} differ in shape")
    ok = np.isfinite(s) & np.isfinite(h)
    s, h = s[ok], h[ok]
    if s.size == 0 or h.sum() == 0 or (1 - h).sum() == 0:
        return float("nan")
    y = np.r_[np.ones(s.size), np.zeros(s.size)]
    return float(roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[h, 1 - h]))


def negatives_against_truth(rows: ArrayLike, cols: ArrayLike, hazard: np.ndarray, unstable: np.ndarray,
                            later_failures: np.ndarray) -> dict[str, float]:
    """Mean true hazard (0..1) of negative pixels, and their shares on unstable slopes and inside later failures.

    ``rows`` / ``cols``: the negatives' grid indices; ``hazard``, ``unstable`` (0/1) and
    ``later_failures`` (bool: inside a landslide dated after the period) are rasters on the same grid.
    """
    r, c = np.asarray(rows, int), np.asarray(cols, int)
    if r.size == 0:
        return {"mean_true_hazard": float("nan"), "share_unstable": float("nan"), "share_in_later_failures": float("nan")}
    return {"mean_true_hazard": float(np.mean(hazard[r, c])),
            "share_unstable": float(np.mean(unstable[r, c] > 0)),
            "share_in_later_failures": float(np.mean(later_failures[r, c]))}
