"""Common spatial folds for every negative strategy, and the yardstick they are all scored on (issue 12).

The folds are defined from the positives only: k-means on the landslides' locations (one point per
landslide, the mean of its pixel centres, map units), so a landslide is never split between folds.
Every pixel of the area belongs to the fold of its nearest cluster centre, so a fold is a region:
a strategy's negatives, the uniform area sample and the held-out positives of fold f all lie in
region f, and a model of fold f is trained only on rows outside it.

The yardstick of fold f is the AUC of its held-out positives against a uniform sample of the
area's valid pixels inside region f (a prediction-rate AUC inside the training window): the test
set is the same for every strategy and model, unlike the AUC against a strategy's own negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from lsm_core.errors import ConfigError, SamplingError

__all__ = ["AREA_SAMPLE", "CommonFolds", "common_folds"]

AREA_SAMPLE = "area_sample"  # strategy name of the uniform area pixels in the negatives table (never trained on)


@dataclass(frozen=True)
class CommonFolds:
    """k fold centres (map units); a pixel's fold is its nearest centre, a landslide's that of its mean location."""

    centres: np.ndarray  # (k, 2) x, y in the area CRS

    @property
    def n_folds(self) -> int:
        """Number of folds k."""
        return len(self.centres)

    def region(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Fold (0..k-1) of each point (x, y, map units): the index of its nearest centre."""
        xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
        d2 = ((xy[:, None, :] - self.centres[None, :, :]) ** 2).sum(axis=2)
        return d2.argmin(axis=1).astype(np.int64)

    def positive_folds(self, positives: pd.DataFrame) -> np.ndarray:
        """Fold of each positive row: the region of its landslide's mean pixel location (whole landslides)."""
        loc = _landslide_locations(positives)
        fold = pd.Series(self.region(loc["x"].to_numpy(), loc["y"].to_numpy()), index=loc.index)
        return fold.loc[positives["landslide_id"].astype(str)].to_numpy(np.int64)


def _landslide_locations(positives: pd.DataFrame) -> pd.DataFrame:
    """Mean x, y (map units) of each landslide's pixels, indexed by landslide id (str), sorted."""
    missing = {"x", "y", "landslide_id"} - set(positives.columns)
    if missing:
        raise ConfigError(f"positives need columns {sorted(missing)} for the common spatial folds")
    if positives["landslide_id"].isna().any():
        raise SamplingError("positives without a landslide_id cannot be kept whole in a fold")
    return positives.assign(landslide_id=positives["landslide_id"].astype(str)).groupby(
        "landslide_id", sort=True)[["x", "y"]].mean()


def common_folds(positives: pd.DataFrame, n_folds: int = 5, *, seed: int) -> CommonFolds:
    """k-means (seeded) of the landslides' mean locations into ``n_folds`` spatial folds.

    Each landslide weighs once, whatever its pixel count, so a big landslide does not pull a whole
    fold onto itself. Raises ConfigError if there are fewer landslides than folds or a fold is empty.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"the number of spatial folds must be an integer >= 2, got {n_folds!r}")
    loc = _landslide_locations(positives)
    xy = loc.to_numpy(float)
    if len(np.unique(xy, axis=0)) < n_folds:
        raise ConfigError(f"cannot make {n_folds} spatial folds from {len(loc)} landslides: use fewer folds")
    # n_init=1 like R's kmeans() default, which sperrorest and mlr3spatiotempcv call
    km = KMeans(n_clusters=int(n_folds), n_init=1, random_state=seed).fit(xy)
    folds = CommonFolds(np.asarray(km.cluster_centers_, float))
    empty = sorted(set(range(n_folds)) - set(folds.region(xy[:, 0], xy[:, 1]).tolist()))
    if empty:
        raise ConfigError(f"spatial folds {empty} hold no landslide: use fewer folds")
    return folds
