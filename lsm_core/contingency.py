"""Deformation-susceptibility contingency matrix (DESIGN 6, paper a).

Deformation classes by |v| (mm/yr, lower-inclusive: with the default edges < 5, 5-15, 15-30,
>= 30) against susceptibility classes (five natural-breaks classes by default, lower-inclusive as
in ``prone.classify``) and, given a prone mask, prone / not prone. Counts are accumulated window
by window over pixels where velocity and probability (and the prone mask, if given) are valid.
The consistency score is the share of deforming pixels (|v| >= the first edge) that fall in the
top two susceptibility classes (high or very high); ``prone_consistency`` the share of deforming
pixels inside prone areas. Both are NaN when no pixel deforms.

Strategies are compared by spatial consistency (paper a) with one matrix per strategy's best model.
The mapped model's matrix covers every pixel; mapping the others in full would multiply the cost of
the susceptibility map, so ``sampled_contingency`` builds theirs from a seeded uniform sample of
valid pixels (one draw shared by all models, so they are compared on the same pixels) and reports
the binomial standard error of the consistency score, sqrt(c (1 - c) / n_deforming_sampled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lsm_core.errors import ConfigError
from lsm_core.grid import DEFAULT_BLOCK, AreaGrid
from lsm_core.io import RasterFile, read_raster
from lsm_core.plots import new_figure, save_figure
from lsm_core.prone import check_grids, classify, natural_breaks, raster_natural_breaks, velocity_band

__all__ = ["FIVE_CLASSES", "ContingencyResult", "contingency_long", "deformation_susceptibility_contingency",
           "plot_contingency", "plot_contingency_panels", "sampled_contingency", "sampled_strategy_contingencies",
           "velocity_class_names"]

FIVE_CLASSES = ("very_low", "low", "moderate", "high", "very_high")


@dataclass(frozen=True)
class ContingencyResult:
    """|v| class (mm/yr) x susceptibility class pixel counts, row shares (0..1), consistency scores (0..1)."""

    counts: pd.DataFrame  # pixels, index velocity_class, columns susceptibility_class
    row_shares: pd.DataFrame  # 0..1 per velocity class (NaN for an empty row)
    consistency_score: float  # share of deforming pixels in the top two classes, 0..1 (NaN: none deforms)
    n_valid: int  # pixels counted
    n_deforming: int  # of them with |v| >= the first edge
    velocity_classes_mm_yr: list[float]  # class edges, mm/yr
    susceptibility_breaks: list[float]  # probability 0..1
    prone_counts: pd.DataFrame | None = None  # pixels, columns not_prone / prone (None without a prone mask)
    prone_row_shares: pd.DataFrame | None = None
    prone_consistency: float = float("nan")  # share of deforming pixels inside prone areas, 0..1
    n_sampled: int | None = None  # pixels sampled (``sampled_contingency`` only)
    consistency_se: float | None = None  # binomial standard error of the score (``sampled_contingency`` only)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


def velocity_class_names(edges: Sequence[float]) -> list[str]:
    """Labels of the |v| classes (mm/yr) for the class edges, e.g. ``<5``, ``5-15``, ``>=30``."""
    e = [f"{x:g}" for x in edges]
    return [f"<{e[0]}"] + [f"{a}-{b}" for a, b in zip(e, e[1:], strict=False)] + [f">={e[-1]}"]


def _shares(counts: np.ndarray) -> np.ndarray:
    """Row shares (0..1); NaN for an empty row."""
    total = counts.sum(axis=1, keepdims=True)
    out = np.full(counts.shape, np.nan)
    np.divide(counts, total, out=out, where=total > 0)
    return out


def _share(num: int, den: int) -> float:
    return num / den if den else float("nan")


def deformation_susceptibility_contingency(velocity_path: str | Path, probability_path: str | Path, *,
                                           velocity_classes_mm_yr: Sequence[float] = (5, 15, 30),
                                           susceptibility_breaks: ArrayLike | None = None,
                                           prone_path: str | Path | None = None,
                                           expected_grid: AreaGrid | None = None, sample: int = 5000, seed: int = 0,
                                           block: int = DEFAULT_BLOCK) -> ContingencyResult:
    """Pixel counts and row shares of |v| class x susceptibility class (and x prone), plus consistency scores.

    ``susceptibility_breaks`` (probability 0..1, increasing) default to five natural-breaks
    classes from a seeded sample of the probability raster. Rasters off ``expected_grid`` (or off
    the velocity grid) raise GridMismatchError naming the file.
    """
    edges = _edges(velocity_classes_mm_yr)
    grid = check_grids(expected_grid, velocity_path, probability_path, prone_path)
    if susceptibility_breaks is None:
        breaks = raster_natural_breaks(probability_path, 5, sample=sample, seed=seed, block=block)
    else:
        breaks = np.asarray(susceptibility_breaks, dtype=np.float64)
    classify(np.zeros(0), breaks)  # validates the breaks before the pass over the pixels
    n_def, n_sus = edges.size + 1, breaks.size + 1
    counts = np.zeros(n_def * n_sus, dtype=np.int64)
    prone_counts = np.zeros(n_def * 2, dtype=np.int64)
    vband = velocity_band(velocity_path)
    for blk in grid.windows(block):
        v = read_raster(velocity_path, blk.write, [vband])[0]
        p = read_raster(probability_path, blk.write, [1])[0]
        ok = np.isfinite(v) & np.isfinite(p)
        if prone_path is not None:
            m = read_raster(prone_path, blk.write, [1])[0]
            ok &= np.isfinite(m)
        d = np.searchsorted(edges, np.abs(v[ok].astype(np.float64)), side="right")
        s = classify(p[ok], breaks).astype(np.int64) - 1
        counts += np.bincount(d * n_sus + s, minlength=n_def * n_sus)
        if prone_path is not None:
            prone_counts += np.bincount(d * 2 + (m[ok] == 1), minlength=n_def * 2)
    return _result(counts.reshape(n_def, n_sus), edges, breaks,
                   None if prone_path is None else prone_counts.reshape(n_def, 2))


def _edges(velocity_classes_mm_yr: Sequence[float]) -> np.ndarray:
    edges = np.asarray(velocity_classes_mm_yr, dtype=np.float64)
    if edges.ndim != 1 or edges.size == 0 or np.any(np.diff(edges) <= 0) or edges[0] <= 0:
        raise ConfigError(f"velocity_classes_mm_yr must be positive and increasing, got {edges.tolist()}")
    return edges


def _result(matrix: np.ndarray, edges: np.ndarray, breaks: np.ndarray,
            prone: np.ndarray | None) -> ContingencyResult:
    """The result of a |v| class x susceptibility class count matrix (and |v| x prone counts)."""
    n_sus = matrix.shape[1]
    rows = pd.Index(velocity_class_names(edges.tolist()), name="velocity_class")
    cols = pd.Index(list(FIVE_CLASSES) if n_sus == 5 else [f"class_{i}" for i in range(1, n_sus + 1)],
                    name="susceptibility_class")
    deforming = int(matrix[1:].sum())
    result = ContingencyResult(
        counts=pd.DataFrame(matrix, index=rows, columns=cols),
        row_shares=pd.DataFrame(_shares(matrix), index=rows, columns=cols),
        consistency_score=_share(int(matrix[1:, -2:].sum()), deforming),
        n_valid=int(matrix.sum()), n_deforming=deforming,
        velocity_classes_mm_yr=edges.tolist(), susceptibility_breaks=breaks.tolist(),
    )
    if prone is not None:
        pcols = pd.Index(["not_prone", "prone"], name="prone")
        result = replace(result, prone_counts=pd.DataFrame(prone, index=rows, columns=pcols),
                         prone_row_shares=pd.DataFrame(_shares(prone), index=rows, columns=pcols),
                         prone_consistency=_share(int(prone[1:, 1].sum()), deforming))
    return result


def sampled_contingency(velocity_mm_yr: ArrayLike, probability: ArrayLike, *,
                        velocity_classes_mm_yr: Sequence[float] = (5, 15, 30),
                        susceptibility_breaks: ArrayLike | None = None, sample: int = 5000,
                        seed: int = 0) -> ContingencyResult:
    """The contingency result of sampled pixels: velocity (mm/yr, signed) and probability (0..1) per pixel.

    Pixels where either is NaN are left out. ``susceptibility_breaks`` default to five natural-breaks
    classes of (a seeded ``sample`` of) these probabilities, as the full-raster version does on its
    map. Adds ``n_sampled`` and ``consistency_se`` (binomial standard error of the consistency score).
    """
    edges = _edges(velocity_classes_mm_yr)
    v, p = np.asarray(velocity_mm_yr, dtype=np.float64).ravel(), np.asarray(probability, dtype=np.float64).ravel()
    if v.shape != p.shape:
        raise ConfigError(f"{v.size} velocities but {p.size} probabilities")
    ok = np.isfinite(v) & np.isfinite(p)
    v, p = v[ok], p[ok]
    breaks = (natural_breaks(p, 5, sample=sample, seed=seed) if susceptibility_breaks is None
              else np.asarray(susceptibility_breaks, dtype=np.float64))
    n_def, n_sus = edges.size + 1, breaks.size + 1
    d = np.searchsorted(edges, np.abs(v), side="right")
    cls = classify(p, breaks).astype(np.int64) - 1
    result = _result(np.bincount(d * n_sus + cls, minlength=n_def * n_sus).reshape(n_def, n_sus), edges, breaks, None)
    c, n = result.consistency_score, result.n_deforming
    return replace(result, n_sampled=int(v.size),
                   consistency_se=float(np.sqrt(c * (1 - c) / n)) if n else float("nan"))


def sampled_strategy_contingencies(stack: RasterFile, velocity_path: str | Path,
                                   models: Mapping[tuple[str, str], str | Path], *, n_pixels: int,
                                   seed: int = 0) -> dict[tuple[str, str], ContingencyResult]:
    """``sampled_contingency`` of several saved models on ONE seeded sample of ``n_pixels`` valid stack pixels.

    ``models``: (strategy, model) -> saved model file. Every model is scored on the same pixels, so the
    strategies' consistency scores are compared on equal terms (velocity in mm/yr from the
    deformation raster's velocity band; probabilities from each model's ``predict_proba``).
    """
    from lsm_core.evaluation import values_at  # evaluation and sampling stand above this module
    from lsm_core.models import load_model
    from lsm_core.sampling import sample_pixels

    if not models:
        return {}
    px = sample_pixels(stack, n_pixels, seed=seed, stream="contingency", allow_fewer=True)
    v = values_at(velocity_path, px.rows, px.cols, band=velocity_band(velocity_path))
    X = pd.DataFrame(px.values, columns=stack.names)
    out = {}
    for key, path in models.items():
        model, meta = load_model(path)
        out[key] = sampled_contingency(v, model.predict_proba(X[meta["feature_names"]])[:, 1], seed=seed)
    return out


def contingency_long(result: ContingencyResult) -> pd.DataFrame:
    """The matrices as one long table (velocity_class, table, column, count, row_share) for a database."""
    frames = []
    for table, counts, shares in (("susceptibility", result.counts, result.row_shares),
                                  ("prone", result.prone_counts, result.prone_row_shares)):
        if counts is None or shares is None:
            continue
        n_rows, n_cols = counts.shape
        frames.append(pd.DataFrame({"velocity_class": np.repeat(counts.index.to_numpy(), n_cols), "table": table,
                                    "column": np.tile(counts.columns.to_numpy(), n_rows),
                                    "count": counts.to_numpy().ravel(), "row_share": shares.to_numpy().ravel()}))
    return pd.concat(frames, ignore_index=True)


def plot_contingency(result: ContingencyResult, path: str | Path) -> Path:
    """Heatmap of row shares with counts per cell, consistency score in the title; written atomically."""
    counts = result.counts
    fig = new_figure(1.3 * counts.shape[1] + 2.5, 0.7 * counts.shape[0] + 2)
    ax = fig.add_subplot()
    image = _draw(ax, result, None)
    fig.colorbar(image, ax=ax, label="row share")
    return save_figure(fig, path, dpi=120)


def plot_contingency_panels(results: Mapping[str, ContingencyResult], path: str | Path) -> Path:
    """One heatmap panel per labelled result (e.g. per strategy), side by side; written atomically."""
    if not results:
        raise ConfigError("no contingency results to plot")
    first = next(iter(results.values())).counts
    n = len(results)
    fig = new_figure(n * (1.3 * first.shape[1] + 1.5) + 1, 0.7 * first.shape[0] + 2.4)
    axes = fig.subplots(1, n, squeeze=False)[0]
    images = [_draw(ax, result, label) for ax, (label, result) in zip(axes, results.items(), strict=True)]
    fig.colorbar(images[0], ax=list(axes), label="row share")  # every panel spans 0..1
    return save_figure(fig, path, dpi=110)


def _draw(ax: Any, result: ContingencyResult, label: str | None) -> Any:
    """Row-share heatmap with counts per cell on ``ax``; the title gives the consistency score (and its SE)."""
    counts, shares = result.counts, result.row_shares
    image = ax.imshow(np.nan_to_num(shares.to_numpy()), cmap="YlOrRd", vmin=0, vmax=1, aspect="auto")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            share = shares.iat[i, j]
            text = f"{counts.iat[i, j]:,}\n" + ("-" if np.isnan(share) else f"{100 * share:.1f} %")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if share >= 0.6 else "black")
    ax.set_xticks(range(counts.shape[1]), [str(c).replace("_", " ") for c in counts.columns])
    ax.set_yticks(range(counts.shape[0]), [f"{r} mm/yr" for r in counts.index])
    ax.set_xlabel("susceptibility class")
    ax.set_ylabel("|deformation rate| class")
    score, se = result.consistency_score, result.consistency_se
    text = "undefined (no deforming pixel)" if np.isnan(score) else f"{100 * score:.1f} %"
    if se is not None and np.isfinite(se):
        text += f" +/- {100 * se:.1f} (sample of {result.n_sampled:,} px)"
    if label is None:
        ax.set_title("deforming pixels in high/very high susceptibility: " + text)
    else:
        ax.set_title(f"{label}\ndeforming in high/very high: {text}", fontsize=9)
    return image
