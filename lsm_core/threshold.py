"""Adaptive probability threshold by the minimum weighted sum of Jensen-Shannon divergences.

DESIGN 6 / paper b 2.2: for every threshold t (percent) compare, factor by factor, the histogram
of the positive-sample pixels (P_i) with the histogram of all valid pixels whose probability is
>= t/100 (Q_i(t)); D(t) = sum_i w_i JS_i(t) and t* = argmin D. The whole curve comes from one
pass: a 2-D histogram (probability bucket x factor bin) per factor, then suffix sums over buckets.

A pixel is used when the optional ``valid`` mask allows it, its probability is finite and every
factor is valid (not NaN, not ``nodata``): the complete cases a model could have scored. Positive
pixels need ``valid`` and valid factors only. Probabilities are compared with t/100 in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy.special import rel_entr

from lsm_core.errors import ConfigError, GridMismatchError, LsmError, SamplingError

__all__ = ["Categorical", "FactorBins", "JSCurve", "JSHistogramAccumulator", "LN2", "js_divergence",
           "factor_weights", "js_threshold_curve", "js_threshold_for_rasters", "plot_js_curve", "weights_from",
           "WeightScheme", "WEIGHT_SCHEMES"]

LN2 = math.log(2.0)
WeightScheme = Literal["equal", "importance", "expert"]  # factor weights of D(t) (DESIGN 6)
WEIGHT_SCHEMES: tuple[str, ...] = get_args(WeightScheme)
Categorical = Mapping[int, Sequence[float]] | Sequence[int]


def js_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon divergence (nats, natural log) between two histograms, normalised here."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.ndim != 1 or p.shape != q.shape:
        raise LsmError(f"histograms must be 1-D of one length, got shapes {p.shape} and {q.shape}")
    if not (np.all(np.isfinite(p) & (p >= 0)) and np.all(np.isfinite(q) & (q >= 0)) and p.sum() > 0 < q.sum()):
        raise LsmError("histograms must be finite, non-negative and not all zero")
    return float(_js_rows(p, q[None, :])[0])


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JS divergence (nats) of histogram ``p`` against each row of ``q``; NaN for empty rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        pn, qn = p / p.sum(), q / q.sum(axis=1, keepdims=True)
        m = 0.5 * (pn + qn)
        js = 0.5 * (rel_entr(pn, m).sum(axis=1) + rel_entr(qn, m).sum(axis=1))
    return np.clip(js, 0.0, LN2)  # rounding can leave the sum a few ulp outside the mathematical range


def weights_from(scheme: WeightScheme, n_factors: int, *, importances: ArrayLike | None = None,
                 expert_ranks: ArrayLike | None = None) -> np.ndarray:
    """Factor weights summing to 1: ``equal``, ``importance`` (normalised) or ``expert`` (rank 1 = most important)."""
    if n_factors < 1:
        raise ConfigError(f"need at least one factor, got {n_factors}")
    if scheme == "equal":
        return np.full(n_factors, 1.0 / n_factors)
    if scheme == "importance":
        if importances is None:
            raise ConfigError("weights scheme 'importance' needs importances")
        return _normalise_weights(importances, n_factors)
    if scheme == "expert":
        ranks = np.asarray([] if expert_ranks is None else expert_ranks, dtype=np.float64)
        if ranks.shape != (n_factors,):
            raise ConfigError(f"weights scheme 'expert' needs {n_factors} expert_ranks, got {ranks.size}")
        if np.any(ranks != np.round(ranks)) or np.any(ranks < 1) or np.any(ranks > n_factors):
            raise ConfigError(f"expert_ranks must be integers 1..{n_factors} (1 = most important), "
                              f"got {ranks.tolist()}")
        q = n_factors - ranks + 1.0
        return q / q.sum()
    raise ConfigError(f"unknown weights scheme {scheme!r}; use one of {list(WEIGHT_SCHEMES)}")


def factor_weights(scheme: WeightScheme, factors: Sequence[str], *,
                   importance: Mapping[str, float] | None = None,
                   expert_ranking: Sequence[str] = ()) -> np.ndarray:
    """``weights_from`` by factor name: ``importance`` maps factor -> mean |SHAP| or its share, of one model on
    one output scale (``explain``: probability), normalised here (missing factors weigh 0);
    ``expert_ranking`` lists the factors from most to least important (every factor exactly once)."""
    if scheme == "importance":
        if importance is None:
            raise ConfigError("weights scheme 'importance' needs the factors' importances")
        return weights_from(scheme, len(factors), importances=[float(importance.get(f, 0.0)) for f in factors])
    if scheme == "expert":
        missing = [f for f in factors if f not in expert_ranking]
        if missing or len(set(expert_ranking)) != len(expert_ranking):
            raise ConfigError(f"expert_ranking must list every factor once; missing {missing}, "
                              f"got {list(expert_ranking)}")
        return weights_from(scheme, len(factors), expert_ranks=[list(expert_ranking).index(f) + 1 for f in factors])
    return weights_from(scheme, len(factors))


def _normalise_weights(weights: ArrayLike, n_factors: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_factors,):
        raise ConfigError(f"{w.size} weights given for {n_factors} factors")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w / w.sum()


@dataclass(frozen=True, eq=False)
class FactorBins:
    """Bins per factor: ``n_bins`` equal-width bins over [lo, hi] (continuous) or one per code (categorical)."""

    lo: np.ndarray  # NaN for categorical factors
    hi: np.ndarray
    codes: tuple[np.ndarray | None, ...]  # sorted class codes of categorical factors, None for continuous
    n_bins: int = 32
    nodata: float | None = None

    @classmethod
    def from_blocks(cls, blocks: Iterable[tuple[np.ndarray, np.ndarray | None]], *, categorical: Categorical = (),
                    n_bins: int = 32, nodata: float | None = None) -> FactorBins:
        """Bins from (factors bands x rows x cols, valid mask or None) blocks; codes not given are collected."""
        if int(n_bins) != n_bins or n_bins < 1:
            raise ConfigError(f"n_bins must be a positive integer, got {n_bins}")
        given = dict(categorical) if isinstance(categorical, Mapping) else {int(i): None for i in categorical}
        lo: np.ndarray | None = None
        hi: np.ndarray | None = None
        seen: dict[int, set[float]] = {i: set() for i, c in given.items() if c is None}
        for factors, valid in blocks:
            factors = np.asarray(factors)
            if lo is None or hi is None:
                lo, hi = np.full(factors.shape[0], np.inf), np.full(factors.shape[0], -np.inf)
            for i, f in enumerate(factors):
                if given.get(i) is not None:
                    continue
                # NaN-skipping reductions need no copy of the valid values: the common case
                a = float(np.fmin.reduce(f, axis=None, initial=np.inf, where=True if valid is None else valid))
                b = float(np.fmax.reduce(f, axis=None, initial=-np.inf, where=True if valid is None else valid))
                if i in seen or nodata is not None or a == -np.inf or b == np.inf:
                    v = f[valid] if valid is not None else f.reshape(-1)
                    v = v[np.isfinite(v) & (v != nodata)] if nodata is not None else v[np.isfinite(v)]
                    a, b = (float(v.min()), float(v.max())) if v.size else (np.inf, -np.inf)
                    if i in seen and v.size:
                        seen[i].update(_codes_in(v).tolist())
                lo[i], hi[i] = min(lo[i], a), max(hi[i], b)
        if lo is None or hi is None:
            raise LsmError("no factor blocks given")
        if any(not 0 <= i < lo.size for i in given):
            raise ConfigError(f"categorical factor indices {sorted(given)} outside 0..{lo.size - 1}")
        codes = tuple(None if i not in given else np.unique(np.asarray(
            sorted(seen[i]) if given[i] is None else given[i], dtype=np.float64)) for i in range(lo.size))
        for i, c in enumerate(codes):
            if (c is None and lo[i] > hi[i]) or (c is not None and c.size == 0):
                raise LsmError(f"factor {i} has no valid value" + ("" if c is None else " and no class codes given"))
        cat, same = np.array([c is not None for c in codes]), lo == hi
        # like np.histogram, a constant factor gets a unit-wide range rather than zero-width bins
        return cls(np.where(cat, np.nan, lo - 0.5 * same), np.where(cat, np.nan, hi + 0.5 * same), codes, int(n_bins),
                   nodata)

    @classmethod
    def from_stack(cls, factors: np.ndarray, *, categorical: Categorical = (), n_bins: int = 32,
                   valid: np.ndarray | None = None, nodata: float | None = None) -> FactorBins:
        """Bins from a whole factor stack (bands x rows x cols) held in memory."""
        return cls.from_blocks([(factors, valid)], categorical=categorical, n_bins=n_bins, nodata=nodata)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FactorBins) or (self.n_bins, self.nodata, self.n_factors) != (
                other.n_bins, other.nodata, other.n_factors):
            return False
        return all(np.array_equal(a, b, equal_nan=True) for a, b in ((self.lo, other.lo), (self.hi, other.hi))) and all(
            (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
            for a, b in zip(self.codes, other.codes, strict=True))

    __hash__ = None  # type: ignore[assignment]

    @property
    def n_factors(self) -> int:
        return len(self.codes)

    def size(self, i: int) -> int:
        """Number of bins of factor ``i``."""
        codes = self.codes[i]
        return self.n_bins if codes is None else codes.size

    def edges(self, i: int) -> np.ndarray:
        """Bin edges of continuous factor ``i`` (float64, the same as np.histogram's)."""
        return np.linspace(self.lo[i], self.hi[i], self.n_bins + 1)

    def valid(self, factors: np.ndarray) -> np.ndarray:
        """True where every factor (bands first) is valid: finite and not ``nodata``."""
        ok, band_ok = np.ones(factors.shape[1:], dtype=bool), np.empty(factors.shape[1:], dtype=bool)
        for f in factors:  # band by band: a bands x pixels boolean temporary would double the memory
            ok &= np.isfinite(f, out=band_ok)
            if self.nodata is not None:
                ok &= np.not_equal(f, self.nodata, out=band_ok)
        return ok

    @cached_property
    def _cuts(self) -> list[_Cuts]:
        # classes are cut half-way between codes, so that a code itself is never next to a cut
        return [_Cuts(self.edges(i)[1:-1], self.lo[i], self.hi[i]) if c is None
                else _Cuts((c[1:] + c[:-1]) / 2, c[0], c[-1]) for i, c in enumerate(self.codes)]

    def index(self, i: int, values: np.ndarray, scratch: _Scratch | None = None) -> np.ndarray:
        """Bin index of valid values of factor ``i`` (np.histogram's bins); raises on values outside the bins."""
        if values.size == 0:
            return np.zeros(0, np.intp)
        codes, s = self.codes[i], scratch or _Scratch()
        idx = self._cuts[i].index(values, s)
        if idx is None:
            raise ConfigError(f"factor {i} has values in [{values.min()}, {values.max()}] outside its " + (
                f"classes {codes.tolist()}" if codes is not None else f"bin range [{self.lo[i]}, {self.hi[i]}]"))
        if codes is not None:
            got = codes.take(idx, out=s.buf("code", idx.size, np.float64), mode="clip")
            if not np.equal(got, values, out=s.buf("same", idx.size, bool)).all():
                raise ConfigError(f"categorical factor {i} has codes {np.unique(values[got != values])[:10].tolist()} "
                                  f"outside its classes {codes.tolist()}")
        return idx


def _codes_in(v: np.ndarray) -> np.ndarray:
    """Distinct values of a class-code array; integer codes by counting, which is much faster than sorting."""
    k = v.astype(np.int64)
    if np.array_equal(k, v) and int(k.max()) - (k0 := int(k.min())) < 2**16:
        return np.flatnonzero(np.bincount(k - k0)) + k0
    return np.unique(v)


class _Scratch:
    """Reusable work buffers: fresh multi-megabyte temporaries per block cost more in page faults than the maths."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def buf(self, name: str, n: int, dtype: DTypeLike) -> np.ndarray:
        b = self._bufs.get(name)
        if b is None or b.size < n or b.dtype != dtype:
            b = self._bufs[name] = np.empty(max(n, 1), dtype)
        return b[:n]


class _Cuts:
    """Exact count of sorted cut points <= each value (searchsorted side='right'), fast when evenly spaced.

    With cuts c_j = c_1 + (j-1) h, y = (v - c_1)/h + 1 puts cut j at y = j, so the count is trunc(y).
    Rounding can only mislead for values within a hair of a cut; those are settled by binary search.
    """

    EPS = 2.0**-10  # band around each cut, in spacings, that is settled exactly: far wider than rounding

    def __init__(self, cuts: np.ndarray, lo: float = -np.inf, hi: float = np.inf):
        self.cuts, self.lo, self.hi, m = np.asarray(cuts, np.float64), lo, hi, len(cuts)
        self.fast = False
        if m >= 2:
            c0, h = self.cuts[0], (self.cuts[-1] - self.cuts[0]) / (m - 1)
            span = max(abs(c0), abs(self.cuts[-1])) / h + 2  # magnitudes in spacings: rounding error grows with it
            off_grid = np.abs(self.cuts - (c0 + np.arange(m) * h)).max() / h
            self.fast = off_grid < self.EPS / 4 and span < 2**30
            # shifting by EPS puts every value within EPS of a cut in [j, j + 2 EPS): one test finds them
            self.scale, self.offset, self.top, self.f32 = 1 / h, 1 - c0 / h + self.EPS, m + 0.5, span < 2**10

    def index(self, v: np.ndarray, s: _Scratch) -> np.ndarray | None:
        """Cut count per value (int32 or intp), or None when a value lies outside [lo, hi]."""
        if (self.lo > -np.inf or self.hi < np.inf) and (v.min() < self.lo or v.max() > self.hi):
            return None
        if not self.fast:
            return np.searchsorted(self.cuts, v, side="right")
        n, dt = v.size, np.float32 if v.dtype == np.float32 and self.f32 else np.float64
        y, t, k = s.buf(f"y{dt.__name__}", n, dt), s.buf(f"t{dt.__name__}", n, dt), s.buf("k", n, np.int32)
        np.multiply(v, dt(self.scale), out=y)
        y += dt(self.offset)
        np.clip(y, 0.5, self.top, out=y)  # counts stay in 0..m, and the clipped values are far from any cut
        np.trunc(y, out=t)
        amb = np.flatnonzero(np.less(np.subtract(y, t, out=y), dt(2 * self.EPS), out=s.buf("amb", n, bool)))
        np.copyto(k, t, casting="unsafe")
        if amb.size:
            k[amb] = np.searchsorted(self.cuts, v[amb], side="right")
        return k


@dataclass(frozen=True, eq=False)
class JSCurve:
    """The D(t) curve: thresholds (%), D (nats, NaN where skipped), JS per factor, weights, t* (%)."""

    thresholds_pct: np.ndarray
    d: np.ndarray
    js_per_factor: np.ndarray  # thresholds x factors
    weights: np.ndarray  # normalised to sum 1
    t_star_pct: float
    n_pixels_above: np.ndarray  # valid pixels with probability >= t/100
    n_positive: int
    factor_names: tuple[str, ...]
    n_valid: int = 0  # valid pixels with a probability (all buckets)

    @property
    def share_above_t_star(self) -> float:
        """Share (0..1) of the valid pixels with probability >= t* (the prone area before morphology)."""
        i = int(np.flatnonzero(self.thresholds_pct == self.t_star_pct)[0])
        return float(self.n_pixels_above[i] / self.n_valid) if self.n_valid else float("nan")

    @property
    def t_star_at_grid_edge(self) -> bool:
        """True when t* is the first or last threshold tried: D(t) may still fall beyond it (a polarised map)."""
        return bool(self.t_star_pct in (self.thresholds_pct[0], self.thresholds_pct[-1]))


class JSHistogramAccumulator:
    """Probability-bucket x factor-bin counts, filled block by block; ``curve`` turns them into D(t)."""

    def __init__(self, bins: FactorBins, thresholds_pct: ArrayLike = range(1, 100)):
        t = np.asarray(thresholds_pct, dtype=np.float64)
        if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 100:
            raise ConfigError("thresholds_pct must be strictly increasing percentages in (0, 100]")
        self.bins, self.thresholds_pct, self._cuts, self._scratch = bins, t, _Cuts(t / 100.0), _Scratch()
        # row k of a factor's table counts pixels with exactly k thresholds at or below their probability
        self.hist = [np.zeros((t.size + 1, bins.size(i)), np.int64) for i in range(bins.n_factors)]
        self._stride = max(h.shape[1] for h in self.hist)  # one combined (bucket, bin) layout serves every factor
        # positive-sample values are few: kept per block and binned once, in ``positive``
        self._positive_values: list[list[np.ndarray]] = [[] for _ in range(bins.n_factors)]

    def update(self, probability: np.ndarray, factors: np.ndarray, valid: np.ndarray | None = None,
               positive: np.ndarray | None = None) -> None:
        """Add one block: probability (0..1, rows x cols), factors (bands x rows x cols), optional masks."""
        probability, factors = np.asarray(probability), np.asarray(factors)
        _check_grid(probability, factors, valid=valid, positive=positive)
        if factors.shape[0] != self.bins.n_factors:
            raise LsmError(f"factor stack has {factors.shape[0]} bands, bins were built for {self.bins.n_factors}")
        fok = self.bins.valid(factors)
        if valid is not None:
            fok &= valid
        if positive is not None:
            pos = np.flatnonzero(fok & positive)
            self._add_positive([f.reshape(-1).take(pos) for f in factors])
        ok = (fok & np.isfinite(probability)).reshape(-1)
        n, s, nt, stride = int(np.count_nonzero(ok)), self._scratch, self.thresholds_pct.size + 1, self._stride
        if n == 0:
            return
        keep = None if n == ok.size else np.flatnonzero(ok)  # blocks inside the study area need no copy

        def values(a: np.ndarray, name: str) -> np.ndarray:
            a = a.reshape(-1)
            if keep is None:
                return a
            out = s.buf(name, n, a.dtype)
            a.take(keep, out=out, mode="clip")
            return out

        it = np.int32 if nt * stride < 2**31 else np.intp  # int32 passes move half the bytes
        bucket = self._cuts.index(values(probability, "p"), s)
        assert bucket is not None  # the threshold cuts have no value range (lo = -inf, hi = inf)
        base = np.multiply(bucket, stride, out=s.buf("base", n, it), casting="unsafe")
        comb = s.buf("comb", n, it)
        for i, h in enumerate(self.hist):
            np.add(self.bins.index(i, values(factors[i], "v"), s), base, out=comb, casting="unsafe")
            h += np.bincount(comb, minlength=nt * stride).reshape(nt, stride)[:, : h.shape[1]]

    def add_positive_values(self, values: ArrayLike) -> None:
        """Add positive samples given as a table of factor values (samples x factors); incomplete rows skipped."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.bins.n_factors:
            raise LsmError(f"positive sample table has shape {values.shape}, expected (n, {self.bins.n_factors})")
        ok = self.bins.valid(values.T)
        self._add_positive([values[ok, i] for i in range(self.bins.n_factors)])

    def _add_positive(self, columns: list[np.ndarray]) -> None:
        for kept, v in zip(self._positive_values, columns, strict=True):
            kept.append(v)

    @property
    def positive(self) -> list[np.ndarray]:
        """Histogram of the positive-sample pixels per factor (counts on the factor's bins)."""
        return [np.bincount(self.bins.index(i, np.concatenate(v) if v else np.zeros(0)), minlength=self.bins.size(i))
                for i, v in enumerate(self._positive_values)]

    def merge(self, other: JSHistogramAccumulator) -> None:
        """Add the counts of an accumulator on equal bins and thresholds (blocks processed in parallel)."""
        if other.bins != self.bins or not np.array_equal(other.thresholds_pct, self.thresholds_pct):
            raise LsmError("can only merge accumulators with equal bins and thresholds")
        for a, b in zip(self.hist, other.hist, strict=True):
            a += b
        for mine, theirs in zip(self._positive_values, other._positive_values, strict=True):
            mine.extend(theirs)

    def curve(self, weights: ArrayLike | None = None, factor_names: Sequence[str] | None = None) -> JSCurve:
        """D(t) for every threshold from the accumulated counts; weights are normalised to sum 1."""
        n = self.bins.n_factors
        w = np.full(n, 1.0 / n) if weights is None else _normalise_weights(weights, n)
        names = tuple(factor_names) if factor_names is not None else tuple(f"factor_{i}" for i in range(n))
        if len(names) != n:
            raise ConfigError(f"{len(names)} factor names for {n} factors")
        positive = self.positive
        if (n_positive := int(positive[0].sum())) == 0:
            raise SamplingError("no positive-sample pixel with valid factors: P_i is undefined")
        # suffix sums over buckets: Q(t_j) = rows j+1.., all pixels with probability >= t_j/100
        above = np.cumsum(self.hist[0].sum(axis=1)[::-1])[::-1][1:]
        js = np.empty((self.thresholds_pct.size, n))
        for i, h in enumerate(self.hist):
            q = np.cumsum(h[::-1], axis=0)[::-1][1:]
            js[:, i] = _js_rows(positive[i].astype(np.float64), q.astype(np.float64))
        js[above == 0] = np.nan
        d = js @ w
        if np.all(np.isnan(d)):
            raise LsmError(f"no valid pixel has a probability >= {self.thresholds_pct[0]} %")
        return JSCurve(self.thresholds_pct.copy(), d, js, w, float(self.thresholds_pct[np.nanargmin(d)]), above,
                       n_positive, names, int(self.hist[0].sum()))


def _check_grid(probability: np.ndarray, factors: np.ndarray, **masks: np.ndarray | None) -> None:
    """Raise GridMismatchError unless factors are bands x (probability's shape) and masks match it."""
    if factors.ndim != probability.ndim + 1 or factors.shape[1:] != probability.shape:
        raise GridMismatchError(f"probability shape {probability.shape} does not match factor stack shape "
                                f"{factors.shape} (bands x rows x cols)")
    for name, m in masks.items():
        if m is not None and np.shape(m) != probability.shape:
            raise GridMismatchError(f"{name} mask shape {np.shape(m)} does not match probability shape "
                                    f"{probability.shape}")


def js_threshold_curve(probability: np.ndarray, factors: np.ndarray, positive: np.ndarray | tuple, *,
                       categorical: Categorical = (), weights: ArrayLike | None = None, n_bins: int = 32,
                       thresholds_pct: ArrayLike = range(1, 100), valid: np.ndarray | None = None,
                       nodata: float | None = None, factor_names: Sequence[str] | None = None) -> JSCurve:
    """D(t) curve of in-memory rasters; ``positive`` is a boolean mask, flat indices or (rows, cols).

    ``probability`` is rows x cols (0..1), ``factors`` factors x rows x cols. A model that follows
    slope, and landslides on slopes above 30 degrees: D(t) is smallest where the pixels above the
    threshold look most like the landslide pixels, here at t* = 75 % (30 of 40 degrees).

    >>> import numpy as np
    >>> slope = np.random.default_rng(0).uniform(0.0, 40.0, (50, 50))  # degrees
    >>> curve = js_threshold_curve(slope / 40.0, slope[None], slope > 30.0, factor_names=["slope_deg"])
    >>> curve.t_star_pct, curve.thresholds_pct[:3]
    (75.0, array([1., 2., 3.]))
    """
    probability, factors = np.asarray(probability), np.asarray(factors)
    _check_grid(probability, factors, valid=valid)
    mask = np.zeros(probability.shape, dtype=bool)
    if isinstance(positive, tuple):
        mask[positive] = True
    elif (pos := np.asarray(positive)).dtype == bool:
        mask = pos
    else:
        mask.reshape(-1)[pos] = True
    bins = FactorBins.from_stack(factors, categorical=categorical, n_bins=n_bins, valid=valid, nodata=nodata)
    acc = JSHistogramAccumulator(bins, thresholds_pct)
    acc.update(probability, factors, valid, mask)
    return acc.curve(weights, factor_names)


def plot_js_curve(curve: JSCurve, path: str | Path) -> Path:
    """Plot D(t) against t (%) with the minimum marked; written atomically to ``path`` (format from suffix)."""
    # imported here so that the science functions stay importable without a plotting stack
    from lsm_core.plots import new_figure, save_figure

    fig = new_figure(7, 4)
    ax = fig.add_subplot()
    ax.plot(curve.thresholds_pct, curve.d, color="tab:blue", lw=1.8, label="D(t)")
    d_min = float(np.nanmin(curve.d))
    ax.axvline(curve.t_star_pct, color="tab:red", ls="--", lw=1)
    ax.plot([curve.t_star_pct], [d_min], "o", color="tab:red", label=f"t* = {curve.t_star_pct:g} %  (D = {d_min:.4f})")
    ax.set(xlabel="probability threshold t (%)", ylabel="weighted JS divergence D(t) (nats)", xlim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, dpi=120)


def js_threshold_for_rasters(probability_path: str | Path, stack_path: str | Path, positive_values: ArrayLike, *,
                             factor_names: Sequence[str], weights: ArrayLike | None = None, n_bins: int = 32,
                             thresholds_pct: ArrayLike = range(1, 100), block: int = 512) -> JSCurve:
    """D(t) of a probability raster (0..1) over a factor stack, read window by window.

    ``positive_values`` holds the positive samples' values of ``factor_names`` (samples x factors).
    Bins come from the stack's recorded band statistics when present, so the stack is read once;
    otherwise a first pass finds each factor's valid range and classes.
    """
    # imported here: io pulls in rasterio and geopandas, which the array functions above do not need
    from lsm_core.io import RasterFile
    from lsm_core.stack import band_stats, categorical_bands

    prob, stack = RasterFile(probability_path), RasterFile(stack_path)
    stack.grid.check_same(prob.grid, prob.path)
    names = stack.names
    missing = [n for n in factor_names if n not in names]
    if missing:
        raise ConfigError(f"factors {missing} are not bands of the stack {names}")
    idx = [names.index(n) + 1 for n in factor_names]
    cat_names = set(categorical_bands(stack.path))
    stats = band_stats(stack.path)
    if all(n in stats for n in factor_names):
        lo = np.array([np.nan if n in cat_names else stats[n]["min"] for n in factor_names])
        hi = np.array([np.nan if n in cat_names else stats[n]["max"] for n in factor_names])
        same = lo == hi  # like np.histogram, a constant factor gets a unit-wide range
        codes = tuple(np.asarray(stats[n]["codes"], np.float64) if n in cat_names else None for n in factor_names)
        bins = FactorBins(lo - 0.5 * same, hi + 0.5 * same, codes, int(n_bins))
    else:
        cat = [i for i, n in enumerate(factor_names) if n in cat_names]
        bins = FactorBins.from_blocks(((stack.read(b.write, idx), None) for b in stack.grid.windows(block)),
                                      categorical=cat, n_bins=n_bins)
    acc = JSHistogramAccumulator(bins, thresholds_pct)
    for b in stack.grid.windows(block):
        acc.update(prob.read(b.write)[0], stack.read(b.write, idx))
    acc.add_positive_values(positive_values)
    return acc.curve(weights, factor_names)
