"""Positive and negative samples for susceptibility models (DESIGN 4, 6 "Negative strategies").

Everything works window by window over the factor stack, so a national raster never has to fit
in memory. A sample table is a pandas DataFrame with one row per pixel: ``row``, ``col`` (grid
indices), ``x``, ``y`` (pixel centre, area CRS units), ``label`` (1/0), ``landslide_id`` (str
for positives, None for negatives), ``strategy`` (positive, random, buffer, insar_pu, pu),
``pu_score`` (unitless 0..1, NaN unless insar_pu or pu), then one column per stack band.
``events_known`` is what the caller counts as known, usually ``events_before(inventory, period_end)``
(later events must not leak into the training set).

Uniform draws use a counter-based hash: each pixel gets a pseudo-random 64-bit key from (seed,
stream, row * width + col), and a sample of n is the n candidates with the smallest keys. One
pass keeps only the n best, the draw is uniform without replacement, and the result is the same
for any block size or block order (keys are a bijection of the pixel index, so never tie).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, NamedTuple, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio import features as rio_features
from rasterio.crs import CRS
from rasterio.windows import Window
from sklearn.base import BaseEstimator

from lsm_core.errors import ConfigError, GridMismatchError, ModelError, SamplingError, ShapeError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid
from lsm_core.inventory import events_before
from lsm_core.io import RasterFile
from lsm_core.pu import BaggingPUClassifier, select_reliable_negatives

__all__ = ["META_COLUMNS", "NEGATIVE_STRATEGIES", "FoldPUDiagnostics", "NegativeStrategy", "PUDiagnostics", "PixelSample",
           "ScoreSummary", "area_sample", "buffer_negatives", "draw_negatives", "extract_factors", "fit_pu",
           "fold_pu_negatives", "insar_pu_negatives", "n_negatives", "positive_samples", "pu_negatives", "pu_pool",
           "random_negatives", "sample_pixels", "training_negatives"]

META_COLUMNS = ["row", "col", "x", "y", "label", "landslide_id", "strategy", "pu_score"]
# the three negative sets of DESIGN 6, and the ``pu`` ablation (InSAR-PU's Bagging-PU without the velocity pool)
NegativeStrategy = Literal["random", "buffer", "insar_pu", "pu"]
NEGATIVE_STRATEGIES: tuple[str, ...] = get_args(NegativeStrategy)
Predicate = Callable[[Window, np.ndarray], np.ndarray]  # (window, bands x rows x cols) -> bool rows x cols
_GOLDEN, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_QUANTILES = {"min": 0.0, "q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95, "max": 1.0}


class PixelSample(NamedTuple):
    """Pixels drawn by ``sample_pixels``, in row-major order, with every band's value (float64)."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray  # pixels x bands
    n_candidates: int   # how many pixels satisfied the predicate (the population size)


def n_negatives(n_positives: int, ratio: float = 1.0) -> int:
    """Negatives to draw for ``ratio`` negatives per positive (default 1:1), rounded, at least 1."""
    if not ratio > 0:
        raise ConfigError(f"the negative:positive ratio must be > 0, got {ratio}")
    return max(1, int(round(ratio * n_positives)))


def _salt(seed: int, stream: str) -> np.uint64:
    # the stream name keeps strategies independent: with one seed, random and buffer draws
    # would otherwise favour the very same pixels (buffer candidates are a subset of random ones)
    return np.random.SeedSequence([int(seed), zlib.crc32(stream.encode())]).generate_state(1, np.uint64)[0]


def _keys(lin: np.ndarray, salt: np.uint64) -> np.ndarray:
    """SplitMix64 of linear pixel indices: a bijection, so two pixels never share a key."""
    z = lin.astype(np.uint64) * _GOLDEN + salt  # array arithmetic wraps modulo 2**64 without warnings
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def sample_pixels(stack: RasterFile, n: int, predicate: Predicate | None = None, *, seed: int, stream: str = "",
                  block: int = DEFAULT_BLOCK, allow_fewer: bool = False,
                  what: str = "candidate pixels") -> PixelSample:
    """``n`` valid pixels drawn uniformly without replacement among those where ``predicate`` holds.

    One pass over the blocks holds at most n + one block of candidates. Fewer than ``n``
    candidates raise SamplingError (both numbers), or, with ``allow_fewer``, return them all.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"the number of samples must be an int >= 0, got {n!r}")
    grid, nb = stack.grid, len(stack.names)
    salt = _salt(seed, stream)
    keys, lin, vals = np.empty(0, np.uint64), np.empty(0, np.int64), np.empty((0, nb))
    total = 0
    for b in grid.windows(block):
        w = b.write
        data = stack.read(w)
        ok = np.isfinite(data).all(axis=0)
        if predicate is not None:
            ok &= predicate(w, data)
        r, c = np.nonzero(ok)
        total += r.size
        if n == 0 or r.size == 0:
            continue
        li = (r + w.row_off).astype(np.int64) * grid.width + (c + w.col_off)
        k = _keys(li, salt)
        if keys.size == n:  # only keys below the current n-th smallest can still enter the sample
            keep = k < keys.max()
            r, c, li, k = r[keep], c[keep], li[keep], k[keep]
        keys, lin = np.concatenate([keys, k]), np.concatenate([lin, li])
        vals = np.concatenate([vals, data[:, r, c].T.astype(np.float64)])
        if keys.size > n:
            top = np.argpartition(keys, n - 1)[:n]
            keys, lin, vals = keys[top], lin[top], vals[top]
    if total < n and not allow_fewer:
        raise SamplingError(f"asked for {n} {what} but only {total} exist")
    order = np.argsort(lin)
    return PixelSample(lin[order] // grid.width, lin[order] % grid.width, vals[order], total)


def extract_factors(stack: RasterFile, rows, cols, *, block: int = DEFAULT_BLOCK) -> pd.DataFrame:
    """Factor values (one float64 column per band, NaN = nodata) at pixels, reading only blocks that hold them."""
    grid, names = stack.grid, stack.names
    rows, cols = np.asarray(rows, np.int64).ravel(), np.asarray(cols, np.int64).ravel()
    if rows.shape != cols.shape:
        raise ShapeError(f"{rows.size} rows but {cols.size} cols")
    off = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    if off.any():
        raise SamplingError(f"{int(off.sum())} sample pixels lie off the {grid.height} x {grid.width} grid")
    out = np.full((rows.size, len(names)), np.nan)
    bid = (rows // block) * (grid.width // block + 1) + cols // block
    order = np.argsort(bid, kind="stable")
    for sel in np.split(order, np.flatnonzero(np.diff(bid[order])) + 1) if rows.size else []:
        r0, c0 = int(rows[sel[0]] // block * block), int(cols[sel[0]] // block * block)
        w = Window(c0, r0, min(block, grid.width - c0), min(block, grid.height - r0))
        out[sel] = stack.read(w)[:, rows[sel] - r0, cols[sel] - c0].T
    return pd.DataFrame(out, columns=names)


def _table(grid: AreaGrid, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, names: Sequence[str], *,
           label: int, strategy: str, ids: Sequence[str] | None = None, pu: np.ndarray | None = None) -> pd.DataFrame:
    clash = set(names) & set(META_COLUMNS)
    if clash:
        raise ConfigError(f"stack bands {sorted(clash)} clash with sample-table columns {META_COLUMNS}")
    a, _, c, _, e, f = grid.transform
    n = len(rows)
    meta = pd.DataFrame({
        "row": np.asarray(rows, np.int64), "col": np.asarray(cols, np.int64),
        "x": c + a * (np.asarray(cols) + 0.5), "y": f + e * (np.asarray(rows) + 0.5),
        "label": np.full(n, label, np.int8),
        "landslide_id": pd.Series(list(ids) if ids is not None else [None] * n, dtype=object),
        "strategy": np.full(n, strategy, dtype=object),
        "pu_score": np.full(n, np.nan) if pu is None else np.asarray(pu, float)})
    return pd.concat([meta, pd.DataFrame(np.asarray(values, float).reshape(n, len(names)), columns=list(names))],
                     axis=1)


def _geoms(events: gpd.GeoDataFrame, grid: AreaGrid) -> np.ndarray:
    if events.crs is not None and CRS.from_user_input(events.crs) != CRS.from_user_input(grid.crs):
        raise GridMismatchError(f"events CRS {events.crs.to_string()} differs from the stack CRS {grid.crs}")
    return np.asarray(events.geometry.to_numpy(), dtype=object)


def _window_bounds(grid: AreaGrid, w: Window, pad: float = 0.0) -> shapely.Polygon:
    a, _, c, _, e, f = grid.transform
    x0, y1 = c + a * w.col_off, f + e * w.row_off
    return shapely.box(x0 - pad, y1 + e * w.height - pad, x0 + a * w.width + pad, y1 + pad)


def _burn(geoms: np.ndarray, values: np.ndarray, grid: AreaGrid, w: Window, all_touched: bool = False) -> np.ndarray:
    """Rasterize on a window: GDAL burns pixels whose centre is inside a polygon, and the pixel holding a point."""
    return rio_features.rasterize(zip(geoms, values.tolist(), strict=True), out_shape=(int(w.height), int(w.width)),
                                  transform=grid.window_transform(w), fill=0, dtype="int32", all_touched=all_touched)


class _Footprints:
    """Known landslides as per-window masks: their own pixels, plus pixels within ``distance_m`` (exact)."""

    def __init__(self, events: gpd.GeoDataFrame, grid: AreaGrid, distance_m: float = 0.0):
        self.grid, self.d = grid, float(distance_m)
        self.geoms = _geoms(events, grid)
        self.tree = shapely.STRtree(self.geoms)
        # a polygonal buffer lies inside the true one by up to 0.5 % of its radius: grow it by more,
        # burn all touched pixels, then keep only those whose centre is truly within d (shapely dwithin)
        self.rough = shapely.buffer(self.geoms, self.d + grid.resolution_m + 0.01 * self.d) if self.d > 0 else None
        # and a polygonal buffer of 0.99 d lies inside the true one: a pixel centre inside it is within d for sure,
        # so only the thin band between the two needs the exact (and costly) distance test
        self.inner = shapely.buffer(self.geoms, 0.99 * self.d) if self.d > 0 else None

    def mask(self, w: Window) -> np.ndarray:
        """True where a pixel of window ``w`` is a known landslide pixel or within ``distance_m`` of one."""
        out = np.zeros((int(w.height), int(w.width)), bool)
        hits = self.tree.query(_window_bounds(self.grid, w, pad=self.d + 2 * self.grid.resolution_m))
        if hits.size == 0:
            return out
        out |= _burn(self.geoms[hits], np.ones(hits.size, int), self.grid, w) > 0
        if self.rough is not None and self.inner is not None:
            out |= _burn(self.inner[hits], np.ones(hits.size, int), self.grid, w) > 0
            r, c = np.nonzero((_burn(self.rough[hits], np.ones(hits.size, int), self.grid, w, True) > 0) & ~out)
            x, y = self.grid.pixel_centers(w)
            near = self.tree.query(shapely.points(x[r, c], y[r, c]), predicate="dwithin", distance=self.d)[0]
            out[r[near], c[near]] = True
        return out


def positive_samples(events: gpd.GeoDataFrame, stack: RasterFile, period_end, *,
                     block: int = DEFAULT_BLOCK) -> pd.DataFrame:
    """Valid pixels of landslides dated on/before ``period_end``: centre inside a polygon, or holding a point event.

    A pixel inside several polygons belongs to the earliest event (then smallest id). A polygon too
    small to hold a pixel centre gives the pixel of its initiation point. Events left with no valid
    pixel (all nodata) are listed in ``table.attrs["events_without_pixels"]``.
    """
    grid, names = stack.grid, stack.names
    ev = events_before(events, period_end).sort_values(["event_date", "event_id"], kind="stable")
    if ev.empty:
        first = "the inventory is empty" if events.empty else \
            f"the first event is dated {pd.to_datetime(events['event_date']).min().date()}"
        raise SamplingError(f"no landslide events dated on or before the period end {pd.Timestamp(period_end).date()}"
                            f" ({first}): no positive samples")
    geoms, ids = _geoms(ev, grid), ev["event_id"].astype(str).to_numpy()
    tree = shapely.STRtree(geoms)
    burned = np.zeros(len(ev), bool)
    parts: dict[str, list[np.ndarray]] = {"rows": [], "cols": [], "owner": [], "vals": []}
    for b in grid.windows(block):
        w = b.write
        hits = np.sort(tree.query(_window_bounds(grid, w)))[::-1]
        if hits.size == 0:
            continue
        lab = _burn(geoms[hits], hits + 1, grid, w)  # later events burn first, so the earliest wins
        burned[np.unique(lab[lab > 0]) - 1] = True
        data = stack.read(w)
        r, c = np.nonzero((lab > 0) & np.isfinite(data).all(axis=0))
        parts["rows"].append(r + w.row_off)
        parts["cols"].append(c + w.col_off)
        parts["owner"].append(lab[r, c] - 1)
        parts["vals"].append(data[:, r, c].T)
    none = np.zeros(0, np.int64)
    rows, cols, owner = (np.concatenate(parts[k] or [none]).astype(np.int64) for k in ("rows", "cols", "owner"))
    vals = np.concatenate(parts["vals"] or [np.empty((0, len(names)))])
    small = np.flatnonzero(~burned)
    if small.size:
        r, c = grid.rowcol(ev["init_x"].to_numpy(float)[small], ev["init_y"].to_numpy(float)[small])
        inside = (r >= 0) & (r < grid.height) & (c >= 0) & (c < grid.width)
        r, c, small = r[inside], c[inside], small[inside]
        fresh = ~np.isin(r * grid.width + c, rows * grid.width + cols)
        _, first = np.unique(r[fresh] * grid.width + c[fresh], return_index=True)  # earliest event per pixel
        r, c, small = r[fresh][first], c[fresh][first], small[fresh][first]
        v = extract_factors(stack, r, c, block=block).to_numpy()
        ok = np.isfinite(v).all(axis=1)
        rows, cols = np.r_[rows, r[ok]], np.r_[cols, c[ok]]
        owner, vals = np.r_[owner, small[ok]], np.concatenate([vals, v[ok]])
    if rows.size == 0:
        raise SamplingError(f"{len(ev)} landslide events are dated on or before {pd.Timestamp(period_end).date()} "
                            "but none covers a valid (non-nodata) pixel of the factor stack")
    order = np.lexsort((cols, rows))
    table = _table(grid, rows[order], cols[order], vals[order], names, label=1, strategy="positive",
                   ids=ids[owner[order]])
    table.attrs["events_without_pixels"] = sorted(set(ids) - set(ids[owner]))
    return table


def random_negatives(stack: RasterFile, events_known: gpd.GeoDataFrame, n: int, *, seed: int,
                     block: int = DEFAULT_BLOCK) -> pd.DataFrame:
    """``n`` negatives drawn uniformly over valid pixels outside every known landslide (polygon or point pixel).

    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()  # 40 x 40 pixels of 10 m, six landslide polygons
    >>> neg = random_negatives(toy.stack, toy.events, 50, seed=0)
    >>> len(neg), neg["strategy"].unique().tolist(), neg["label"].unique().tolist()
    (50, ['random'], [0])
    >>> list(neg.columns[-3:])  # the factor values of each pixel follow the metadata columns
    ['slope_deg', 'velocity_mm_yr', 'ndvi']
    """
    known = _Footprints(events_known, stack.grid)
    s = sample_pixels(stack, n, lambda w, _: ~known.mask(w), seed=seed, stream="random", block=block,
                      what="random negatives (valid pixels outside known landslides)")
    return _table(stack.grid, s.rows, s.cols, s.values, stack.names, label=0, strategy="random")


def buffer_negatives(stack: RasterFile, events_known: gpd.GeoDataFrame, n: int, *, buffer_m: float = 500.0,
                     max_slope_deg: float | None = None, max_abs_velocity_mm_yr: float | None = None,
                     slope_band: str = "slope_deg", velocity_band: str = "velocity_mm_yr", seed: int,
                     block: int = DEFAULT_BLOCK) -> pd.DataFrame:
    """``n`` negatives drawn uniformly over valid pixels farther than ``buffer_m`` (metres) from every known landslide.

    Paper b's variant (3.2: "areas outside the landslide catalog region with low slopes (below 15 deg)
    or low deformation rates (below 0.5 cm/year)"): with ``max_slope_deg`` and/or
    ``max_abs_velocity_mm_yr``, a pixel must also have slope < max_slope_deg OR |v| < max_abs_velocity
    (only the given conditions count).

    >>> import shapely
    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()
    >>> far = buffer_negatives(toy.stack, toy.events, 30, buffer_m=50.0, seed=0)
    >>> pixels = shapely.points(far["x"], far["y"])  # pixel centres, metres
    >>> len(far), bool(shapely.distance(pixels, toy.events.union_all()).min() > 50.0)
    (30, True)
    """
    if not buffer_m >= 0:
        raise ConfigError(f"buffer_m must be >= 0 metres, got {buffer_m}")
    names = stack.names
    conds: list[tuple[int, float, bool]] = []
    for band, limit, absolute in ((slope_band, max_slope_deg, False), (velocity_band, max_abs_velocity_mm_yr, True)):
        if limit is not None:
            if band not in names:
                raise ConfigError(f"no band {band!r} in the factor stack {names}")
            conds.append((names.index(band), float(limit), absolute))
    near = _Footprints(events_known, stack.grid, buffer_m)

    def far(w: Window, data: np.ndarray) -> np.ndarray:
        ok = ~near.mask(w)
        if conds:
            ok &= np.logical_or.reduce([(np.abs(data[i]) if ab else data[i]) < lim for i, lim, ab in conds])
        return ok

    s = sample_pixels(stack, n, far, seed=seed, stream="buffer", block=block,
                      what=f"buffer negatives (valid pixels > {buffer_m:g} m from known landslides)")
    return _table(stack.grid, s.rows, s.cols, s.values, names, label=0, strategy="buffer")


@dataclass(frozen=True)
class ScoreSummary:
    """PU scores (unitless 0..1) of a set of pixels: quantiles, mean, 10-bin histogram; NaN scores left out."""

    quantiles: dict[str, float]  # min, q05, q25, median, q75, q95, max; empty without a finite score
    mean: float  # NaN without a finite score
    histogram_edges: tuple[float, ...]  # the 11 bin edges over 0..1, rounded to 0.01
    histogram_counts: tuple[int, ...]  # pixels per bin (10 bins)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the quantiles, ``mean`` and ``histogram`` (``edges``, ``counts``) at the top level."""
        return {**self.quantiles, "mean": self.mean,
                "histogram": {"edges": list(self.histogram_edges), "counts": list(self.histogram_counts)}}


@dataclass(frozen=True)
class PUDiagnostics:
    """How a PU draw (insar_pu or pu) went: pool, classifier inputs, cutoff, PU score summaries (0..1)."""

    pool_size: int  # candidate pixels in the pool U
    pool_scored: int  # pool pixels scored (at most max_pool)
    pool_subsampled: bool  # the pool held more than max_pool pixels
    n_positives: int  # positive pixels given
    n_positives_in_classifier: int  # after the max_positives cap
    n_negatives: int  # negatives drawn
    threshold_mm_yr: float | None  # the pool's |v| bound (insar_pu), None for pu
    velocity_band: str
    features: tuple[str, ...]  # the P-vs-U classifier's features
    n_estimators: int  # bags
    quantile: float  # negatives come from this lowest share of the pool's scores, 0..1
    score_cutoff: float  # the PU score at that quantile, 0..1
    n_never_out_of_bag: int  # pool pixels in every bag (no out-of-bag score)
    pool_scores: ScoreSummary
    negative_scores: ScoreSummary

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready plain dict (Dagster metadata), the score summaries nested as ``ScoreSummary.as_dict``."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "features": list(self.features),
                "pool_scores": self.pool_scores.as_dict(), "negative_scores": self.negative_scores.as_dict()}


@dataclass(frozen=True)
class FoldPUDiagnostics:
    """One spatial-CV fold's PU draw: the landslides its classifier saw, its pools and its negative counts."""

    fold: int
    strategy: str  # insar_pu or pu
    positive_ids: tuple[str, ...]  # landslide ids the fold's classifier was fitted on, sorted
    n_positives_in_classifier: int  # positive pixels, after the max_positives cap
    pool_outside: int  # pool pixels outside the fold's region (the classifier's U)
    pool_inside: int  # pool pixels inside it (scored for the test negatives)
    n_train_negatives: int
    n_test_negatives: int
    n_estimators: int  # bags

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready plain dict (``positive_ids`` as a list)."""
        return {**asdict(self), "positive_ids": list(self.positive_ids)}


def _score_summary(scores: np.ndarray) -> ScoreSummary:
    s = scores[np.isfinite(scores)]
    counts, edges = np.histogram(s, bins=10, range=(0.0, 1.0))
    q = {k: float(np.quantile(s, p)) for k, p in _QUANTILES.items()} if s.size else {}
    return ScoreSummary(q, float(s.mean()) if s.size else float("nan"), tuple(round(x, 2) for x in edges.tolist()),
                        tuple(int(c) for c in counts.tolist()))


def _pu_features(names: Sequence[str], positives: pd.DataFrame, velocity_band: str,
                 features: Sequence[str] | None) -> list[str]:
    """The P-vs-U classifier's features: ``features``, or every band but the velocity; ConfigError if absent."""
    # The velocity is left out by default: for insar_pu it already defines U (every pool pixel has
    # |v| < threshold), so as a feature it would separate P from U almost by itself and the PU score
    # would re-rank pixels by |v| rather than by how landslide-like their conditioning factors are.
    feats = [b for b in names if b != velocity_band] if features is None else list(features)
    missing = [f for f in feats if f not in names or f not in positives.columns]
    if missing or not feats:
        raise ConfigError(f"PU features {missing or feats} are not all in the stack {names} and the positives table")
    return feats


def _positive_rows(XP: np.ndarray, max_positives: int | None, seed: int) -> np.ndarray:
    """Indices of the positive rows that enter the P-vs-U classifier (a seeded uniform draw of ``max_positives``)."""
    if max_positives is not None and len(XP) > max_positives:
        return np.sort(np.random.default_rng([seed, 0x5055]).choice(len(XP), int(max_positives), replace=False))
    return np.arange(len(XP))


def pu_pool(stack: RasterFile, positives: pd.DataFrame, strategy: str, *, max_pool: int, seed: int,
            velocity_band: str = "velocity_mm_yr", threshold_mm_yr: float | None = None,
            block: int = DEFAULT_BLOCK) -> PixelSample:
    """The unlabeled pool U of a PU strategy: up to ``max_pool`` valid non-positive pixels, drawn uniformly.

    ``threshold_mm_yr`` (mm/yr): only pixels with |v| below it (insar_pu); None = every valid pixel outside
    the positive pixels (the ``pu`` ablation). ``strategy`` names the draw's random stream.
    """
    names = stack.names
    if threshold_mm_yr is not None and velocity_band not in names:
        raise ConfigError(f"no velocity band {velocity_band!r} in the factor stack {names}")
    W = stack.grid.width
    vi = names.index(velocity_band) if threshold_mm_yr is not None else -1
    plin = np.unique(positives["row"].to_numpy(np.int64) * W + positives["col"].to_numpy(np.int64))

    def unlabeled(w: Window, data: np.ndarray) -> np.ndarray:
        ok = np.abs(data[vi]) < threshold_mm_yr if threshold_mm_yr is not None else np.ones(data.shape[1:], bool)
        r0, c0, h, wd = int(w.row_off), int(w.col_off), int(w.height), int(w.width)
        p = plin[np.searchsorted(plin, r0 * W):np.searchsorted(plin, (r0 + h) * W)]  # positives in these rows
        pr, pc = p // W - r0, p % W - c0
        inside = (pc >= 0) & (pc < wd)
        ok[pr[inside], pc[inside]] = False  # known landslide pixels are positives, never unlabeled
        return ok

    return sample_pixels(stack, max_pool, unlabeled, seed=seed, stream=strategy, block=block, allow_fewer=True)


def _pool_text(strategy: str, threshold_mm_yr: float | None) -> str:
    if threshold_mm_yr is None:
        return f"the {strategy} pool (valid pixels outside known landslides)"
    return f"the {strategy} pool (valid pixels with |v| < {threshold_mm_yr:g} mm/yr outside known landslides)"


def fit_pu(XP: np.ndarray, XU: np.ndarray, feats: Sequence[str], *, n_estimators: int, seed: int,
           base_estimator: BaseEstimator | None = None, n_jobs: int | None = None) -> BaggingPUClassifier:
    """Bagging-PU fitted on positives ``XP`` vs unlabeled ``XU`` (columns ``feats``); ModelError on a constant one."""
    X = np.vstack([XP, XU])
    constant = [f for f, s in zip(feats, X.std(axis=0), strict=True) if s == 0]
    if constant:
        raise ModelError(f"PU features {constant} are constant over positives and pool: drop them from `features`")
    s = np.r_[np.ones(len(XP), int), np.zeros(len(XU), int)]
    clf = BaggingPUClassifier(estimator=base_estimator, n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
    return clf.fit(X, s)


def _pu_negatives(stack: RasterFile, positives: pd.DataFrame, n: int, *, strategy: str, threshold_mm_yr: float | None,
                  velocity_band: str, features: Sequence[str] | None, n_estimators: int, max_pool: int,
                  quantile: float, base_estimator: BaseEstimator | None, max_positives: int | None, seed: int,
                  n_jobs: int | None, block: int) -> tuple[pd.DataFrame, PUDiagnostics]:
    """Bagging-PU negatives of ``strategy`` (insar_pu: |v| < threshold pool; pu: no velocity condition)."""
    names = stack.names
    feats = _pu_features(names, positives, velocity_band, features)
    if max_pool < n:
        raise ConfigError(f"max_pool ({max_pool}) must be at least the number of negatives asked for ({n})")
    if positives.empty:
        raise SamplingError(f"no positive samples: {strategy} needs labeled landslide pixels")
    XP = positives[feats].to_numpy(float)
    n_pos_all = len(XP)
    XP = XP[_positive_rows(XP, max_positives, seed)]
    if not np.isfinite(XP).all():
        raise SamplingError("positive samples hold nodata (NaN) factor values; draw them with positive_samples")
    pool = pu_pool(stack, positives, strategy, max_pool=max_pool, seed=seed, velocity_band=velocity_band,
                   threshold_mm_yr=threshold_mm_yr, block=block)
    if pool.n_candidates < n:
        raise SamplingError(f"{_pool_text(strategy, threshold_mm_yr)} holds {pool.n_candidates} pixels but {n} "
                            "negatives were asked for")
    XU = pool.values[:, [names.index(f) for f in feats]]
    clf = fit_pu(XP, XU, feats, n_estimators=n_estimators, seed=seed, base_estimator=base_estimator, n_jobs=n_jobs)
    scores = clf.oob_score_
    chosen = select_reliable_negatives(scores, n, quantile=quantile, random_state=seed)
    finite = np.sort(scores[np.isfinite(scores)])
    table = _table(stack.grid, pool.rows[chosen], pool.cols[chosen], pool.values[chosen], names, label=0,
                   strategy=strategy, pu=scores[chosen])
    diagnostics = PUDiagnostics(
        pool_size=int(pool.n_candidates), pool_scored=len(XU), pool_subsampled=bool(pool.n_candidates > max_pool),
        n_positives=n_pos_all, n_positives_in_classifier=len(XP), n_negatives=int(n),
        threshold_mm_yr=None if threshold_mm_yr is None else float(threshold_mm_yr),
        velocity_band=velocity_band, features=tuple(feats), n_estimators=int(n_estimators),
        quantile=float(quantile), score_cutoff=float(finite[max(int(quantile * finite.size) - 1, 0)]),
        n_never_out_of_bag=int(np.isnan(scores).sum()),
        pool_scores=_score_summary(scores), negative_scores=_score_summary(scores[chosen]))
    return table, diagnostics


def insar_pu_negatives(stack: RasterFile, positives: pd.DataFrame, n: int, *, velocity_band: str = "velocity_mm_yr",
                       threshold_mm_yr: float = 5.0, features: Sequence[str] | None = None, n_estimators: int = 100,
                       max_pool: int = 300_000, quantile: float = 0.5, base_estimator: BaseEstimator | None = None,
                       max_positives: int | None = None, seed: int, n_jobs: int | None = None,
                       block: int = DEFAULT_BLOCK) -> tuple[pd.DataFrame, PUDiagnostics]:
    """``n`` InSAR-PU negatives (paper a): the least landslide-like pixels of the low-deformation pool.

    U = valid pixels with |v| < ``threshold_mm_yr`` (mm/yr) that are not positive pixels; when U holds
    more than ``max_pool`` pixels a uniform subsample of ``max_pool`` is scored (the pool only has
    to represent U; fitting cost grows with it). Bagging-PU is fit on P vs U, each pool pixel's PU
    score is its out-of-bag score, and negatives are drawn uniformly from the lowest ``quantile``
    share. ``max_positives``: at most this many positive pixels (a seeded uniform draw) enter the P-vs-U
    classifier, and each bag draws as many pool pixels; the pixels of one landslide are strongly
    alike, so a few thousand carry its signature while the fitting cost grows with the count.
    ``n_jobs`` threads fit the bags (same result for any value). Returns the table
    (``pu_score`` filled) and ``PUDiagnostics`` (pool size, PU score quantiles/histograms; ``as_dict`` for JSON).

    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()
    >>> positives = positive_samples(toy.events, toy.stack, "2020-12-31")  # landslides mapped by then
    >>> neg, info = insar_pu_negatives(toy.stack, positives, 20, threshold_mm_yr=5.0, n_estimators=10, seed=0)
    >>> len(neg), bool(neg["velocity_mm_yr"].abs().max() < 5.0), info.pool_size
    (20, True, 1321)
    >>> bool(neg["pu_score"].max() <= info.score_cutoff)  # drawn from the least landslide-like half
    True
    """
    if velocity_band not in stack.names:
        raise ConfigError(f"no velocity band {velocity_band!r} in the factor stack {stack.names}")
    return _pu_negatives(stack, positives, n, strategy="insar_pu", threshold_mm_yr=threshold_mm_yr,
                         velocity_band=velocity_band, features=features, n_estimators=n_estimators, max_pool=max_pool,
                         quantile=quantile, base_estimator=base_estimator, max_positives=max_positives, seed=seed,
                         n_jobs=n_jobs, block=block)


def pu_negatives(stack: RasterFile, positives: pd.DataFrame, n: int, *, velocity_band: str = "velocity_mm_yr",
                 features: Sequence[str] | None = None, n_estimators: int = 100, max_pool: int = 300_000,
                 quantile: float = 0.5, base_estimator: BaseEstimator | None = None, max_positives: int | None = None,
                 seed: int, n_jobs: int | None = None,
                 block: int = DEFAULT_BLOCK) -> tuple[pd.DataFrame, PUDiagnostics]:
    """``n`` negatives of the ``pu`` ablation: InSAR-PU's Bagging-PU with no velocity threshold on the pool.

    U = every valid pixel that is not a positive pixel; everything else (features, bags, quantile,
    caps) is as ``insar_pu_negatives``, so comparing the two separates what the InSAR velocity adds
    (the pool) from what PU learning adds. ``velocity_band`` is only the band left out of the
    features by default (pass ``features`` to choose them).

    >>> from lsm_core.synthetic import toy_area
    >>> toy = toy_area()
    >>> positives = positive_samples(toy.events, toy.stack, "2020-12-31")
    >>> neg, info = pu_negatives(toy.stack, positives, 20, n_estimators=10, seed=0)
    >>> len(neg), neg["strategy"].unique().tolist(), info.threshold_mm_yr is None
    (20, ['pu'], True)
    """
    return _pu_negatives(stack, positives, n, strategy="pu", threshold_mm_yr=None, velocity_band=velocity_band,
                         features=features, n_estimators=n_estimators, max_pool=max_pool, quantile=quantile,
                         base_estimator=base_estimator, max_positives=max_positives, seed=seed, n_jobs=n_jobs,
                         block=block)


def fold_pu_negatives(stack: RasterFile, positives: pd.DataFrame, strategy: str, positive_fold: np.ndarray,
                      region_of: Callable[[np.ndarray, np.ndarray], np.ndarray], n_folds: int, *, ratio: float = 1.0,
                      max_per_fold: int | None = 2000, threshold_mm_yr: float = 5.0,
                      velocity_band: str = "velocity_mm_yr", features: Sequence[str] | None = None,
                      n_estimators: int = 10, max_pool: int = 50_000, quantile: float = 0.5,
                      max_positives: int | None = None, seed: int,
                      block: int = DEFAULT_BLOCK) -> tuple[pd.DataFrame, list[FoldPUDiagnostics]]:
    """Negatives of a PU strategy (insar_pu or pu) for each spatial-CV fold, with no leak from its test positives.

    For fold f the Bagging-PU classifier sees only the positives whose ``positive_fold`` is not f, and
    its pool only pixels outside region f (``region_of(x, y)``, map units, gives a pixel's region). Its
    training negatives come from the lowest ``quantile`` of the out-of-bag scores, as the strategy's
    own draw; its test negatives are the lowest-scoring ``quantile`` of the pool pixels inside region f,
    scored by that same classifier (the strategy applied to held-out ground). Each set holds ``ratio``
    x its positives, at most ``max_per_fold`` (fewer when the low-scoring share is smaller). The pool is
    drawn once (``max_pool`` pixels, one pass over the stack) and split by region, so the k fits cost
    k small PU fits; ``n_estimators`` bags each (fewer than the full draw: these negatives only score CV).

    Returns the table (``cv_fold`` = f, ``pu_score`` filled; rows inside region f are test negatives)
    and one ``FoldPUDiagnostics`` per fold, with the landslide ids its classifier was fitted on.
    """
    if strategy not in ("insar_pu", "pu"):
        raise ConfigError(f"fold PU negatives are for the strategies insar_pu and pu, not {strategy!r}")
    names = stack.names
    feats = _pu_features(names, positives, velocity_band, features)
    positive_fold = np.asarray(positive_fold, np.int64)
    if len(positive_fold) != len(positives):
        raise ShapeError(f"{len(positive_fold)} fold labels for {len(positives)} positives")
    pool = pu_pool(stack, positives, strategy, max_pool=max_pool, seed=seed, velocity_band=velocity_band,
                   threshold_mm_yr=threshold_mm_yr if strategy == "insar_pu" else None, block=block)
    a, _, c, _, e, f0 = stack.grid.transform
    region = region_of(c + a * (pool.cols + 0.5), f0 + e * (pool.rows + 0.5))
    XU_all = pool.values[:, [names.index(f) for f in feats]]
    XP_all = positives[feats].to_numpy(float)
    ids = positives["landslide_id"].astype(str).to_numpy()
    parts: list[pd.DataFrame] = []
    diags: list[FoldPUDiagnostics] = []
    for fold in range(n_folds):
        train = np.flatnonzero(positive_fold != fold)
        if train.size == 0:
            raise SamplingError(f"fold {fold} holds every positive: no training positives for its PU classifier")
        keep = train[_positive_rows(XP_all[train], max_positives, seed + fold)]
        out, inside = np.flatnonzero(region != fold), np.flatnonzero(region == fold)
        if out.size == 0:
            raise SamplingError(f"{_pool_text(strategy, threshold_mm_yr)} has no pixel outside region {fold}")
        clf = fit_pu(XP_all[keep], XU_all[out], feats, n_estimators=n_estimators, seed=seed + fold)
        n_test_pos = int((positive_fold == fold).sum())
        chosen, scores = [], []
        for rows, score, n_pos in ((out, clf.oob_score_, train.size),
                                   (inside, clf.predict_proba(XU_all[inside])[:, 1] if inside.size else np.empty(0),
                                    n_test_pos)):
            want = n_negatives(n_pos, ratio) if n_pos else 0
            want = min(want, max_per_fold) if max_per_fold is not None else want
            # the low-scoring share of a small region may hold fewer pixels than asked for: take what it has
            n_low = int(np.floor(quantile * np.isfinite(score).sum()))
            pick = select_reliable_negatives(score, min(want, n_low), quantile=quantile,
                                             random_state=seed + fold) if n_low else np.empty(0, np.int64)
            chosen.append(rows[pick])
            scores.append(score[pick])
        rows_all, pu = np.concatenate(chosen), np.concatenate(scores)
        t = _table(stack.grid, pool.rows[rows_all], pool.cols[rows_all], pool.values[rows_all], names, label=0,
                   strategy=strategy, pu=pu)
        parts.append(t.assign(cv_fold=fold))
        diags.append(FoldPUDiagnostics(fold=fold, strategy=strategy, positive_ids=tuple(sorted(set(ids[keep].tolist()))),
                                       n_positives_in_classifier=int(keep.size), pool_outside=int(out.size),
                                       pool_inside=int(inside.size), n_train_negatives=len(chosen[0]),
                                       n_test_negatives=len(chosen[1]), n_estimators=int(n_estimators)))
    return pd.concat(parts, ignore_index=True), diags


def area_sample(stack: RasterFile, n: int, *, seed: int, block: int = DEFAULT_BLOCK) -> pd.DataFrame:
    """``n`` valid pixels drawn uniformly over the whole area (landslides included), strategy ``area_sample``.

    The stand-in for "every pixel of the area" in the yardstick (a prediction-rate AUC): label 0 means
    unlabeled here, and these rows are never trained on. A stream of its own keeps it independent of
    the random negatives drawn with the same seed.
    """
    s = sample_pixels(stack, n, None, seed=seed, stream="area_sample", block=block, allow_fewer=True)
    return _table(stack.grid, s.rows, s.cols, s.values, stack.names, label=0, strategy="area_sample")


def training_negatives(negatives: pd.DataFrame) -> pd.DataFrame:
    """The rows of a negatives table that a strategy trains its saved models on: not the area sample, no fold draw."""
    main = negatives["strategy"] != "area_sample"
    if "cv_fold" in negatives.columns:
        main &= negatives["cv_fold"].isna() | (negatives["cv_fold"] < 0)
    return negatives[main]


def subsample_per_class(table: pd.DataFrame, n_per_class: int | None, *, seed: int) -> pd.DataFrame:
    """At most ``n_per_class`` rows of each label, drawn uniformly (seeded); row order kept.

    Training sets of a few thousand pixels per class are what the published experiments use; the
    full pixel sets of a large area would make the SVM and the grid searches needlessly slow.
    """
    if n_per_class is None:
        return table
    rng = np.random.default_rng(seed)
    keep = []
    for _, rows in table.groupby("label", sort=True):
        idx = rows.index.to_numpy()
        keep.append(idx if len(idx) <= n_per_class else np.sort(rng.choice(idx, n_per_class, replace=False)))
    # an empty table stays empty (e.g. a spatial-CV region that holds no buffer negatives: 500 m from every landslide)
    return table.loc[np.sort(np.concatenate(keep))] if keep else table


def draw_negatives(strategy: NegativeStrategy, stack: RasterFile, known: gpd.GeoDataFrame, positives: pd.DataFrame,
                   n: int, *, seed: int, buffer_m: float = 500.0, buffer_max_slope_deg: float | None = None,
                   buffer_max_abs_velocity_mm_yr: float | None = None, threshold_mm_yr: float = 5.0,
                   pu_exclude: Sequence[str] = (), **pu_options: Any) -> tuple[pd.DataFrame, PUDiagnostics | None]:
    """``n`` negatives of one strategy and its diagnostics (insar_pu and pu only, else None).

    ``known``: the landslides known at the period end (random and buffer stay outside them);
    ``positives``: the positive pixel table (InSAR-PU's P set); ``pu_exclude``: stack bands left out
    of the P-vs-U classifier; ``pu_options`` go to ``insar_pu_negatives`` (n_estimators, max_pool, ...).
    """
    if strategy == "random":
        return random_negatives(stack, known, n, seed=seed), None
    if strategy == "buffer":
        return buffer_negatives(stack, known, n, buffer_m=buffer_m, max_slope_deg=buffer_max_slope_deg,
                                max_abs_velocity_mm_yr=buffer_max_abs_velocity_mm_yr, seed=seed), None
    if strategy == "insar_pu":
        return insar_pu_negatives(stack, positives, n, threshold_mm_yr=threshold_mm_yr, seed=seed,
                                  features=[b for b in stack.names if b not in pu_exclude], **pu_options)
    if strategy == "pu":  # same features as insar_pu, so that only the pool differs between the two
        return pu_negatives(stack, positives, n, seed=seed, features=[b for b in stack.names if b not in pu_exclude],
                            **pu_options)
    raise ConfigError(f"unknown negative strategy {strategy!r} (expected one of {list(NEGATIVE_STRATEGIES)})")
