"""Probability calibration of a susceptibility map against the landscape (issue 12, "the threshold").

A model's probabilities are scaled by its own negatives: easy negatives (InSAR-PU's reliable
negatives are far from anything that fails) let it push most of the area towards 0 and the
landslide-like pixels towards 1, so 50 % or a JS optimum t* in percent mean different things for
different strategies. Calibration maps every model onto one scale: held-out positives (the test
split's landslides, never trained on) against a uniform sample of the area's valid pixels, the two
weighted equally, so that a calibrated value c(s) = f_pos(s) / (f_pos(s) + f_area(s)) says how much
more typical a score is of landslides than of the area (0.5 = no more than a random pixel).

- ``isotonic``: a non-decreasing step function (``sklearn.isotonic.IsotonicRegression``), interpolated
  linearly between its knots, clipped outside them.
- ``platt``: a logistic function of the score's log-odds, c = sigmoid(a * logit(s) + b).

Both are monotone (isotonic weakly), so thresholding the calibrated map at t selects an upper set of
the raw map as well: calibration changes which upper sets the 1 % grid of the JS threshold visits and
what a fixed 50 % means, not the family of candidate prone areas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from lsm_core.errors import ConfigError, SamplingError
from lsm_core.grid import DEFAULT_BLOCK

__all__ = ["CALIBRATIONS", "Calibration", "Calibrator", "calibrate_map", "calibrate_raster", "fit_calibrator"]

Calibration = Literal["none", "isotonic", "platt"]
CALIBRATIONS: tuple[str, ...] = get_args(Calibration)
_EPS = 1e-9  # scores are clipped to [eps, 1 - eps] before the logit (exact 0 and 1); below float32 resolution (6e-8)


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map from raw probability (0..1) to calibrated probability (0..1)."""

    method: str  # "isotonic" or "platt"
    x: tuple[float, ...] = ()  # isotonic knots (raw probability, increasing)
    y: tuple[float, ...] = ()  # isotonic values at the knots (calibrated probability, non-decreasing)
    a: float = 1.0  # platt slope on logit(raw)
    b: float = 0.0  # platt intercept
    n_positive: int = 0  # held-out positive scores it was fitted on
    n_area: int = 0  # area-sample scores it was fitted on

    def __call__(self, p: ArrayLike) -> np.ndarray:
        """Calibrated probability (float32 for float32 input, else float64); NaN stays NaN."""
        p = np.asarray(p)
        out_dtype = np.float32 if p.dtype == np.float32 else np.float64
        q = p.astype(np.float64)
        if self.method == "isotonic":
            out = np.interp(q, self.x, self.y)
        else:
            z = np.log(np.clip(q, _EPS, 1 - _EPS) / (1 - np.clip(q, _EPS, 1 - _EPS)))
            out = 0.5 * (1.0 + np.tanh(0.5 * (self.a * z + self.b)))  # overflow-free sigmoid
        return np.where(np.isnan(q), np.nan, out).astype(out_dtype)

    def to_json(self) -> str:
        return json.dumps({"method": self.method, "x": list(self.x), "y": list(self.y), "a": self.a, "b": self.b,
                           "n_positive": self.n_positive, "n_area": self.n_area})

    @classmethod
    def from_json(cls, text: str) -> Calibrator:
        d = json.loads(text)
        return cls(d["method"], tuple(d["x"]), tuple(d["y"]), d["a"], d["b"], d["n_positive"], d["n_area"])


def fit_calibrator(method: Calibration, positive_scores: ArrayLike, area_scores: ArrayLike) -> Calibrator:
    """Fit ``method`` on held-out positive scores (label 1) against a uniform area sample (label 0), weighted
    so that both sets count equally (the area sample is usually the larger)."""
    pos = np.asarray(positive_scores, dtype=np.float64).ravel()
    area = np.asarray(area_scores, dtype=np.float64).ravel()
    pos, area = pos[np.isfinite(pos)], area[np.isfinite(area)]
    if method not in ("isotonic", "platt"):
        raise ConfigError(f"calibration must be one of {list(CALIBRATIONS)} (not 'none' here), got {method!r}")
    if pos.size < 10 or area.size < 10:
        raise SamplingError(f"calibration needs >= 10 held-out positive and area scores, got {pos.size} and "
                            f"{area.size}")
    s = np.concatenate([pos, area])
    y = np.r_[np.ones(pos.size), np.zeros(area.size)]
    w = np.r_[np.full(pos.size, 0.5 / pos.size), np.full(area.size, 0.5 / area.size)]
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y, sample_weight=w)
        return Calibrator("isotonic", tuple(map(float, iso.X_thresholds_)), tuple(map(float, iso.y_thresholds_)),
                          n_positive=int(pos.size), n_area=int(area.size))
    from sklearn.linear_model import LogisticRegression

    z = np.log(np.clip(s, _EPS, 1 - _EPS) / (1 - np.clip(s, _EPS, 1 - _EPS)))[:, None]
    # weights sum to 1: scale them up so that the default L2 penalty stays negligible
    lr = LogisticRegression(C=1e6).fit(z, y, sample_weight=w * s.size)
    return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]), n_positive=int(pos.size),
                      n_area=int(area.size))


def calibrate_raster(src: str | Path, dst: str | Path, calibrator: Calibrator, *, block: int = DEFAULT_BLOCK,
                     tags: dict[str, str] | None = None) -> Path:
    """Write ``calibrator`` applied to the first band of ``src`` (probability 0..1) to ``dst``, window by window.

    ``dst`` keeps ``src``'s band name and tags, plus ``calibration`` (the calibrator as JSON) and ``tags``.
    """
    from lsm_core.io import RasterFile, RasterWriter

    raw = RasterFile(src)
    all_tags = {**raw.tags, **(tags or {}), "calibration": calibrator.to_json()}
    with RasterWriter(dst, raw.grid, raw.names[:1], tags=all_tags) as out:
        for b in raw.grid.windows(block):
            out.write(calibrator(raw.read(b.write, [1]))[None, 0], b.write)
    return Path(dst)


def calibrate_map(src: str | Path, dst: str | Path, method: Calibration, positive_scores: ArrayLike, *,
                  n_area: int = 20_000, seed: int = 0, block: int = DEFAULT_BLOCK) -> Calibrator:
    """Calibrate the probability map ``src`` into ``dst``: fit ``method`` on ``positive_scores`` (the map model's
    probabilities at held-out landslides) against a seeded uniform sample of ``n_area`` valid map pixels, then
    write the calibrated map window by window. Returns the fitted calibrator."""
    from lsm_core.io import RasterFile
    from lsm_core.sampling import sample_pixels

    area = sample_pixels(RasterFile(src), n_area, seed=seed, stream="calibration", allow_fewer=True).values[:, 0]
    calibrator = fit_calibrator(method, positive_scores, area)
    calibrate_raster(src, dst, calibrator, block=block)
    return calibrator
