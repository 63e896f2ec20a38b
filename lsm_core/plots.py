"""Plots of the model experiment (matplotlib Agg, atomic writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from lsm_core.io import atomic_path

__all__ = ["plot_evaluation_history", "plot_map_preview", "plot_roc_curves"]


def plot_roc_curves(predictions: pd.DataFrame, path: str | Path) -> Path:
    """ROC curves of every model, one panel per negative strategy, from test-set (strategy, model, y, proba)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    strategies = sorted(predictions["strategy"].unique())
    fig = Figure(figsize=(4.2 * len(strategies), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(strategies), sharey=True))
    for ax, strategy in zip(axes, strategies, strict=True):
        for model, d in predictions[predictions["strategy"] == strategy].groupby("model", sort=True):
            fpr, tpr, _ = roc_curve(d["y"], d["proba"])
            ax.plot(fpr, tpr, lw=1.4, label=f"{model} ({roc_auc_score(d['y'], d['proba']):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set(title=f"negatives: {strategy}", xlabel="false positive rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("true positive rate")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def plot_evaluation_history(history: pd.DataFrame, path: str | Path) -> Path:
    """POR and LOR (and TA) of every evaluation of one area and period, one line per threshold method.

    ``history``: rows of the ``prone_area_evaluation`` table (``evaluated_at``, ``threshold_name``, ``TA``,
    ``POR``, ``LOR``, shares 0..1). A rising LOR means later landslides fall outside the prone areas: the
    map is ageing and the area needs re-evaluation (paper b, 2.3).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharex=True)
    runs = sorted(history["evaluated_at"].unique())
    x_of = {t: i + 1 for i, t in enumerate(runs)}
    for ax, metric in zip(axes, ("TA", "POR", "LOR"), strict=True):
        for name, d in history.sort_values("evaluated_at").groupby("threshold_name", sort=True):
            ax.plot([x_of[t] for t in d["evaluated_at"]], d[metric], marker="o", lw=1.2, label=name)
        ax.set(title=metric, xlabel="evaluation", ylim=(-0.02, 1.02))
        ax.set_xticks(range(1, len(runs) + 1))
    axes[0].legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def plot_map_preview(probability_path: str | Path, prone_path: str | Path, path: str | Path, *,
                     max_pixels: int = 600) -> Path:
    """Preview of the susceptibility map (probability 0..1) with the prone areas outlined.

    Both rasters are read decimated to at most ``max_pixels`` on the longer side (GDAL overviews), so a
    national map previews in the memory of a thumbnail.
    """
    import rasterio
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def small(p: str | Path) -> np.ndarray:
        with rasterio.open(p) as ds:
            scale = max(ds.width, ds.height) / max_pixels
            shape = (max(1, round(ds.height / max(scale, 1))), max(1, round(ds.width / max(scale, 1))))
            return ds.read(1, out_shape=shape, masked=True).astype(float).filled(np.nan)

    prob, prone_mask = small(probability_path), small(prone_path)
    fig = Figure(figsize=(6, 6 * prob.shape[0] / prob.shape[1] + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = ax.imshow(prob, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.contour(np.nan_to_num(prone_mask) > 0.5, levels=[0.5], colors="red", linewidths=0.8)
    ax.set_axis_off()
    ax.set_title("susceptibility (0..1); red: prone areas", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def _save(fig: object, path: str | Path, dpi: int = 100) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)  # type: ignore[attr-defined]
    return path
