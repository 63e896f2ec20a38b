"""Evaluation of landslide-prone areas (DESIGN 6 "Evaluation", paper b 2.3).

- One rule for what is scored: a pixel with no susceptibility (nodata or off the grid of the
  probability raster) is dropped from every figure below, and the number dropped is reported. Given
  the probability raster, TA, POR / LOR and the prediction-rate curve score the same events and
  pixels; a later event on such a pixel is neither a hit nor a miss (the map said nothing there).
- TA (training accuracy) = positive-sample pixels inside prone areas / all scored positive pixels
  (distinct pixels; ``n_positive_dropped`` = those without susceptibility).
- POR (post-occurrence rate) = later events whose initiation point (``init_x``/``init_y``, else the
  geometry's centroid) lies in a prone polygon (boundary included) or on a prone pixel, over the
  scored later events L; LOR = 1 - POR; ``L_dropped`` = later events without susceptibility. With
  L = 0 both are undefined: NaN with a status saying so, never 0.
- Prediction-rate curve: cumulative share of later events (by the pixel of their initiation point)
  against cumulative share of the valid area, pixels sorted by descending probability. It is built
  from a histogram of probabilities accumulated window by window (no global sort), bins equally wide
  in log-odds so that the tails of a polarised map keep their order; within a bin pixels and events
  are taken as evenly interleaved, so the curve is linear inside a bin and the AUC (trapezoid) is off
  from the exact full-sort value by at most about one bin's area share.
  Its area is reported as ``map_prediction_rate_auc``: the susceptibility map's, by one initiation
  pixel per later event. (The model comparison's ``prediction_rate_auc`` is another measurement:
  every pixel of the later landslides against a uniform area sample, per saved model.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from numpy.typing import ArrayLike
from rasterio.crs import CRS
from rasterio.windows import Window
from shapely import STRtree, points

from lsm_core.errors import GridMismatchError, LsmError
from lsm_core.grid import DEFAULT_BLOCK
from lsm_core.io import grid_of, read_raster, read_vector
from lsm_core.prone import DEFAULT_MIN_AREA_M2, prone_areas, raster_natural_breaks

__all__ = ["NO_LATER_EVENTS", "NO_POSITIVES", "NO_SCORED_EVENTS", "STATUS_OK", "MaskSummary", "PredictionRateCurve",
           "ProneOccurrence", "TrainingAccuracy",
           "comparison_thresholds",
           "evaluate_thresholds", "evaluation_row", "initiation_points", "mask_summary", "prediction_rate_curve",
           "prone_occurrence", "training_accuracy", "values_at"]

STATUS_OK = "ok"
NO_LATER_EVENTS = "undefined: no events after the period end"
NO_POSITIVES = "undefined: no positive samples"
NO_SCORED_EVENTS = "undefined: no later event on a valid pixel"
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")


def values_at(path: str | Path, rows: ArrayLike, cols: ArrayLike, *, band: int = 1,
              block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Band values (float64, NaN for nodata and off-grid pixels) at pixel rows/cols, read block by block."""
    rows, cols = np.asarray(rows, dtype=np.int64).ravel(), np.asarray(cols, dtype=np.int64).ravel()
    grid = grid_of(path)
    out = np.full(rows.shape, np.nan)
    on = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    idx = np.flatnonzero(on)
    key = (rows[idx] // block) * (grid.width // block + 1) + cols[idx] // block
    for k in np.unique(key):
        sel = idx[key == k]
        r0, c0 = rows[sel].min(), cols[sel].min()
        # only the bounding window of the points in this block is read
        win = Window(c0, r0, cols[sel].max() - c0 + 1, rows[sel].max() - r0 + 1)
        out[sel] = read_raster(path, win, [band])[0][rows[sel] - r0, cols[sel] - c0]
    return out


@dataclass(frozen=True)
class TrainingAccuracy:
    """TA (0..1) of a prone mask over the distinct positive pixels, with the pixel counts and a status."""

    TA: float  # n_inside / n_positive, 0..1 (NaN without positive pixels)
    n_positive: int  # distinct positive pixels scored
    n_inside: int  # of them on prone pixels
    n_positive_dropped: int  # positive pixels without susceptibility (the one rule)
    status: str  # STATUS_OK or NO_POSITIVES

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


@dataclass(frozen=True)
class ProneOccurrence:
    """POR and LOR (0..1) of later events in prone areas, the event counts and ids, and a status."""

    POR: float  # n_inside / L, 0..1 (NaN without scored later events)
    LOR: float  # (L - n_inside) / L, 0..1
    L: int  # later events scored
    n_inside: int  # of them in prone areas
    missed_event_ids: list[str]  # scored events outside prone areas
    L_dropped: int  # later events without susceptibility (the one rule)
    dropped_event_ids: list[str]
    status: str  # STATUS_OK, NO_LATER_EVENTS or NO_SCORED_EVENTS

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def training_accuracy(prone_mask_path: str | Path, positive_rows: ArrayLike, positive_cols: ArrayLike, *,
                      probability_path: str | Path | None = None, block: int = DEFAULT_BLOCK) -> TrainingAccuracy:
    """TA (0..1) = distinct positive-sample pixels on prone pixels (value 1) / all distinct positive pixels.

    Given ``probability_path``, positive pixels without susceptibility there are dropped (the module's
    one rule) and counted in ``n_positive_dropped``.

    >>> from lsm_core.prone import prone_areas
    >>> from lsm_core.sampling import positive_samples
    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()
    >>> _ = prone_areas(toy.probability.path, 0.5, toy.folder / "prone.tif", toy.folder / "prone.gpkg")
    >>> pos = positive_samples(toy.events, toy.stack, "2020-12-31")  # the landslides the map was trained on
    >>> ta = training_accuracy(toy.folder / "prone.tif", pos["row"], pos["col"])
    >>> ta.TA, ta.n_positive, ta.n_inside, ta.n_positive_dropped, ta.status
    (1.0, 36, 36, 0, 'ok')
    """
    rows = np.asarray(positive_rows, dtype=np.int64).ravel()
    cols = np.asarray(positive_cols, dtype=np.int64).ravel()
    if rows.shape != cols.shape:
        raise LsmError(f"{rows.size} positive rows but {cols.size} columns")
    grid = grid_of(prone_mask_path)
    off = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    if off.any():
        raise GridMismatchError(f"{int(off.sum())} positive pixels lie outside the {grid.height} x {grid.width} "
                                "grid (samples from another grid?)", prone_mask_path)
    lin = np.unique(rows * grid.width + cols)
    dropped = 0
    if probability_path is not None and lin.size:
        scored = _scored(probability_path, lin // grid.width, lin % grid.width, block)
        lin, dropped = lin[scored], int(np.count_nonzero(~scored))
    n = int(lin.size)
    if n == 0:
        return TrainingAccuracy(TA=float("nan"), n_positive=0, n_inside=0, n_positive_dropped=dropped,
                                status=NO_POSITIVES)
    inside = int(np.count_nonzero(values_at(prone_mask_path, lin // grid.width, lin % grid.width, block=block) == 1))
    return TrainingAccuracy(TA=inside / n, n_positive=n, n_inside=inside, n_positive_dropped=dropped, status=STATUS_OK)


def _scored(probability_path: str | Path, rows: np.ndarray, cols: np.ndarray, block: int) -> np.ndarray:
    """True where the probability raster has a finite value at (row, col); off-grid pixels are not scored."""
    return np.isfinite(values_at(probability_path, rows, cols, block=block))


def initiation_points(events: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """x, y of each event's initiation point: ``init_x``/``init_y`` where finite, else the geometry centroid."""
    n = len(events)
    x = events["init_x"].to_numpy(dtype=np.float64) if "init_x" in events else np.full(n, np.nan)
    y = events["init_y"].to_numpy(dtype=np.float64) if "init_y" in events else np.full(n, np.nan)
    missing = ~(np.isfinite(x) & np.isfinite(y))
    if missing.any():
        c = events.geometry[missing].centroid
        x[missing], y[missing] = c.x.to_numpy(), c.y.to_numpy()
    return x, y


def _check_crs(events: gpd.GeoDataFrame, crs, path: str | Path | None) -> None:
    if events.crs is not None and crs is not None and CRS.from_user_input(events.crs) != CRS.from_user_input(crs):
        raise GridMismatchError(f"events CRS {events.crs} differs from the prone-area CRS {crs}", path)


def prone_occurrence(prone: str | Path | gpd.GeoDataFrame, later_events: gpd.GeoDataFrame, *,
                     probability_path: str | Path | None = None, block: int = DEFAULT_BLOCK) -> ProneOccurrence:
    """POR and LOR (0..1) of later events in prone areas (GeoPackage polygons, 0/1 mask raster or GeoDataFrame).

    Given ``probability_path``, later events whose initiation pixel has no susceptibility there are
    dropped (the module's one rule, as the prediction-rate curve does): ``L`` counts the scored events,
    ``L_dropped`` the others and ``dropped_event_ids`` names them. With no scored later event (L = 0)
    POR and LOR are NaN and ``status`` says they are undefined.

    >>> from lsm_core.inventory import events_after
    >>> from lsm_core.prone import prone_areas
    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()
    >>> _ = prone_areas(toy.probability.path, 0.5, toy.folder / "prone.tif", toy.folder / "prone.gpkg")
    >>> later = events_after(toy.events, "2020-12-31")  # two landslides after the period: one was foreseen
    >>> occ = prone_occurrence(toy.folder / "prone.gpkg", later)
    >>> occ.POR, occ.LOR, occ.L, occ.n_inside, occ.missed_event_ids, occ.L_dropped, occ.status
    (0.5, 0.5, 2, 1, ['ls-6'], 0, 'ok')
    """
    ids_all = (later_events["event_id"].astype(str).to_numpy() if "event_id" in later_events
               else np.arange(len(later_events)).astype(str))
    dropped_ids: list[str] = []
    if probability_path is not None and len(later_events):
        grid = grid_of(probability_path)
        _check_crs(later_events, grid.crs, probability_path)
        scored = _scored(probability_path, *grid.rowcol(*initiation_points(later_events)), block)
        dropped_ids = ids_all[~scored].tolist()
        later_events, ids_all = later_events[scored], ids_all[scored]
    n = len(later_events)
    if n == 0:
        return ProneOccurrence(POR=float("nan"), LOR=float("nan"), L=0, n_inside=0, missed_event_ids=[],
                               L_dropped=len(dropped_ids), dropped_event_ids=dropped_ids,
                               status=NO_SCORED_EVENTS if dropped_ids else NO_LATER_EVENTS)
    x, y = initiation_points(later_events)
    if isinstance(prone, (str, Path)) and Path(prone).suffix.lower() in _RASTER_SUFFIXES:
        grid = grid_of(prone)
        _check_crs(later_events, grid.crs, prone)
        r, c = grid.rowcol(x, y)
        inside = values_at(prone, r, c, block=block) == 1
    else:
        path = None if isinstance(prone, gpd.GeoDataFrame) else prone
        polygons: gpd.GeoDataFrame = prone if path is None else read_vector(path)
        _check_crs(later_events, polygons.crs, path)
        inside = np.zeros(n, dtype=bool)
        hits = STRtree(polygons.geometry.to_numpy()).query(points(x, y), predicate="intersects")
        inside[hits[0]] = True
    n_in = int(inside.sum())
    return ProneOccurrence(POR=n_in / n, LOR=(n - n_in) / n, L=n, n_inside=n_in,
                           missed_event_ids=ids_all[~inside].tolist(), L_dropped=len(dropped_ids),
                           dropped_event_ids=dropped_ids, status=STATUS_OK)


@dataclass(frozen=True)
class PredictionRateCurve:
    """Prediction-rate curve: event share (0..1) at each area share (0..1), its AUC (0..1), event counts, status."""

    area_share: np.ndarray  # 0..1, ``n_points`` values from 0 to 1
    event_share: np.ndarray  # 0..1 at each area share (NaN without scored events)
    auc: float  # area under the curve, 0..1 (NaN without scored events)
    n_events: int  # later events given
    n_scored: int  # of them on a valid probability pixel
    n_dropped: int  # off the grid or on nodata
    status: str  # STATUS_OK, NO_LATER_EVENTS or NO_SCORED_EVENTS

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


@dataclass(frozen=True)
class MaskSummary:
    """Pixel counts of a 0/1 prone mask and the prone share (0..1) of its valid area."""

    prone_pixels: int
    valid_pixels: int  # pixels that are not nodata
    prone_share: float  # prone / valid, 0..1 (NaN without valid pixels)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def prediction_rate_curve(probability_path: str | Path, later_events: gpd.GeoDataFrame, n_points: int = 101, *,
                          n_bins: int = 10_000, block: int = DEFAULT_BLOCK) -> PredictionRateCurve:
    """Prediction-rate curve (event share vs area share, both 0..1, at ``n_points`` area shares) and its AUC.

    Events off the grid or on nodata pixels are not scored (``n_scored`` < ``n_events``).
    Probabilities outside 0..1 fall in the end bins.
    """
    grid = grid_of(probability_path)
    area = np.zeros(n_bins, dtype=np.int64)
    for blk in grid.windows(block):
        p = read_raster(probability_path, blk.write, [1])[0]
        area += np.bincount(_bin(p[np.isfinite(p)], n_bins), minlength=n_bins)
    if area.sum() == 0:
        raise LsmError("no valid probability pixel", probability_path)
    n_events = len(later_events)
    xs = np.linspace(0.0, 1.0, n_points)
    pe = np.zeros(0)
    if n_events:
        _check_crs(later_events, grid.crs, probability_path)
        pe = values_at(probability_path, *grid.rowcol(*initiation_points(later_events)), block=block)
        pe = pe[np.isfinite(pe)]
    if pe.size == 0:
        return PredictionRateCurve(area_share=xs, event_share=np.full(n_points, np.nan), auc=float("nan"),
                                   n_events=n_events, n_scored=0, n_dropped=n_events,
                                   status=NO_LATER_EVENTS if n_events == 0 else NO_SCORED_EVENTS)
    ev = np.bincount(_bin(pe, n_bins), minlength=n_bins)
    keep = area[::-1] > 0  # descending susceptibility; empty bins add no point
    x = np.concatenate([[0.0], np.cumsum(area[::-1][keep]) / area.sum()])
    y = np.concatenate([[0.0], np.cumsum(ev[::-1][keep]) / pe.size])
    return PredictionRateCurve(area_share=xs, event_share=np.interp(xs, x, y), auc=float(np.trapezoid(y, x)),
                               n_events=n_events, n_scored=int(pe.size), n_dropped=n_events - int(pe.size),
                               status=STATUS_OK)


_LOGIT_SPAN = 18.5  # |logit| of the bins' range: 1e-8 .. 1 - 1e-8, beyond float32's resolution next to 1


def _bin(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each probability, bins equally wide in log-odds over +-_LOGIT_SPAN (a monotone map of p).

    Equal-width bins in p put a polarised map's top quarter (p >= 0.999, easy negatives) in one bin and
    lose its ranking: the AUC fell 0.022 below the full sort (loess demo, InSAR-PU map). In log-odds the
    tails get bins of their own; 10 000 bins keep the middle as fine as 1000 bins in p (0.0009 at 0.5).
    """
    q = np.clip(p.astype(np.float64), 1e-8, 1 - 1e-8)
    z = np.log(q) - np.log1p(-q)
    return np.clip(np.floor((z + _LOGIT_SPAN) * (n_bins / (2 * _LOGIT_SPAN))), 0, n_bins - 1).astype(np.int64)


def mask_summary(prone_mask_path: str | Path, *, block: int = DEFAULT_BLOCK) -> MaskSummary:
    """Prone and valid pixel counts of a 0/1 mask raster and the prone share (0..1) of the valid area."""
    prone = valid = 0
    for blk in grid_of(prone_mask_path).windows(block):
        m = read_raster(prone_mask_path, blk.write, [1])[0]
        prone += int(np.count_nonzero(m == 1))
        valid += int(np.count_nonzero(np.isfinite(m)))
    return MaskSummary(prone_pixels=prone, valid_pixels=valid, prone_share=prone / valid if valid else float("nan"))


def comparison_thresholds(probability_path: str | Path, adaptive_threshold: float, *, k: int = 5,
                          sample: int = 5000, seed: int = 0) -> dict[str, float]:
    """Thresholds (0..1) to compare: ``adaptive_js``, ``fixed_50``, ``natural_breaks_high`` (start of class high)."""
    breaks = raster_natural_breaks(probability_path, k, sample=sample, seed=seed)
    # of k classes the top two are "high" and "very high": high starts at the second-last break
    return {"adaptive_js": float(adaptive_threshold), "fixed_50": 0.5, "natural_breaks_high": float(breaks[-2])}


def evaluation_row(threshold_name: str, threshold: float, *, training: TrainingAccuracy, occurrence: ProneOccurrence,
                   prone_share: float, prediction_rate: PredictionRateCurve | None = None,
                   inventory: Mapping | None = None) -> dict:
    """One history row: threshold, TA, POR, LOR, L (scored later events), what was dropped (no susceptibility),
    prone share, the map's prediction-rate AUC, status, inventory state."""
    statuses = [s for s in (training.status, occurrence.status,
                            prediction_rate.status if prediction_rate else None) if s and s != STATUS_OK]
    row = {"threshold_name": threshold_name, "threshold": float(threshold),
           "TA": float(training.TA), "n_positive": int(training.n_positive),
           "n_positive_inside": int(training.n_inside),
           "POR": float(occurrence.POR), "LOR": float(occurrence.LOR), "L": int(occurrence.L),
           "n_later_inside": int(occurrence.n_inside),
           "L_dropped": int(occurrence.L_dropped),
           "n_positive_dropped": int(training.n_positive_dropped), "prone_share": float(prone_share),
           "map_prediction_rate_auc": float(prediction_rate.auc) if prediction_rate else float("nan"),
           "status": "; ".join(dict.fromkeys(statuses)) or STATUS_OK}
    for key, value in (inventory or {}).items():
        row[f"inventory_{key}"] = value
    return row


def evaluate_thresholds(probability_path: str | Path, adaptive_threshold: float, adaptive_prone_path: str | Path,
                        positive_rows: ArrayLike, positive_cols: ArrayLike, later_events: gpd.GeoDataFrame, *,
                        comparison_dir: str | Path, stem: str, prediction_rate: PredictionRateCurve | None = None,
                        inventory: Mapping | None = None, opening_radius_px: int = 1, closing_radius_px: int = 1,
                        min_area_m2: float = DEFAULT_MIN_AREA_M2) -> list[dict]:
    """History rows (``evaluation_row``) for the adaptive threshold and every comparison threshold.

    The adaptive threshold is scored on its own prone layer; each comparison threshold (50 %, natural
    breaks) gets a prone layer drawn with the same morphology (opening / closing radius in pixels,
    minimum cluster area in m2) into ``comparison_dir`` as ``<stem>__<name>.tif`` (+ .gpkg), so all are
    compared alike.
    """
    rows = []
    for name, t in comparison_thresholds(probability_path, adaptive_threshold).items():
        mask = Path(adaptive_prone_path)
        if name != "adaptive_js":
            mask = Path(comparison_dir) / f"{stem}__{name}.tif"
            prone_areas(probability_path, t, mask, mask.with_suffix(".gpkg"), opening_radius_px=opening_radius_px,
                        closing_radius_px=closing_radius_px, min_area_m2=min_area_m2)
        # one rule (module notes): what has no susceptibility on the map is dropped from TA, POR and the curve
        rows.append(evaluation_row(name, t, training=training_accuracy(mask, positive_rows, positive_cols,
                                                                       probability_path=probability_path),
                                   occurrence=prone_occurrence(mask, later_events, probability_path=probability_path),
                                   prone_share=mask_summary(mask).prone_share, prediction_rate=prediction_rate,
                                   inventory=inventory))
    return rows
