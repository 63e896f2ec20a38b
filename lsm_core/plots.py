"""Plots of the model experiment, and the house's figure helpers (matplotlib Agg, atomic writes).

Every figure of lsm_core (here, ``contingency``, ``explain``, ``threshold``) is made by ``new_figure``
and written by ``save_figure``: a ``Figure`` on its own Agg canvas, never pyplot, so there is no global
state to close, plotting is safe in threads and headless runs, and the figure is freed with its last
reference; the file is published atomically, so a reader never sees half a PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lsm_core.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["new_figure", "plot_evaluation_history", "plot_map_preview", "plot_roc_curves", "save_figure"]


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure of ``width_in`` x ``height_in`` inches in the house style: constrained layout, its own Agg canvas.

    >>> fig = new_figure(4, 3)
    >>> fig.get_size_inches().tolist(), fig.get_layout_engine().__class__.__name__
    ([4.0, 3.0], 'ConstrainedLayoutEngine')
    """
    # imported here so that the science modules stay importable without a plotting stack
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` atomically to ``path`` (format from the suffix, PNG when matplotlib does not know it); returns it.

    >>> import tempfile
    >>> out = save_figure(new_figure(2, 2), Path(tempfile.mkdtemp()) / "empty.png", dpi=50)
    >>> out.name, out.read_bytes()[1:4]
    ('empty.png', b'PNG')
    """
    path = Path(path)
    suffix = path.suffix.lstrip(".").lower()
    fmt = suffix if suffix in fig.canvas.get_supported_filetypes() else "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path


def plot_roc_curves(predictions: pd.DataFrame, path: str | Path) -> Path:
    """ROC curves of every model, one panel per negative strategy, from test-set (strategy, model, y, proba)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    strategies = sorted(predictions["strategy"].unique())
    fig = new_figure(4.2 * len(strategies), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(strategies), sharey=True))
    for ax, strategy in zip(axes, strategies, strict=True):
        for model, d in predictions[predictions["strategy"] == strategy].groupby("model", sort=True):
            fpr, tpr, _ = roc_curve(d["y"], d["proba"])
            ax.plot(fpr, tpr, lw=1.4, label=f"{model} ({roc_auc_score(d['y'], d['proba']):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set(title=f"negatives: {strategy}", xlabel="false positive rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("true positive rate")
    return save_figure(fig, path, dpi=110)


def plot_evaluation_history(history: pd.DataFrame, path: str | Path) -> Path:
    """POR and LOR (and TA) of every evaluation of one area and period, one line per threshold method.

    ``history``: rows of the ``prone_area_evaluation`` table (``evaluated_at``, ``threshold_name``, ``TA``,
    ``POR``, ``LOR``, shares 0..1). A rising LOR means later landslides fall outside the prone areas: the
    map is ageing and the area needs re-evaluation (paper b, 2.3).
    """
    fig = new_figure(10, 3.4)
    axes = fig.subplots(1, 3, sharex=True)
    runs = sorted(history["evaluated_at"].unique())
    x_of = {t: i + 1 for i, t in enumerate(runs)}
    for ax, metric in zip(axes, ("TA", "POR", "LOR"), strict=True):
        for name, d in history.sort_values("evaluated_at").groupby("threshold_name", sort=True):
            ax.plot([x_of[t] for t in d["evaluated_at"]], d[metric], marker="o", lw=1.2, label=name)
        ax.set(title=metric, xlabel="evaluation", ylim=(-0.02, 1.02))
        ax.set_xticks(range(1, len(runs) + 1))
    axes[0].legend(fontsize=8, loc="lower left")
    return save_figure(fig, path, dpi=100)


def plot_map_preview(probability_path: str | Path, prone_path: str | Path, path: str | Path, *,
                     max_pixels: int = 600) -> Path:
    """Preview of the susceptibility map (probability 0..1) with the prone areas outlined.

    Both rasters are read decimated to at most ``max_pixels`` on the longer side (GDAL overviews), so a
    national map previews in the memory of a thumbnail.
    """
    import rasterio

    def small(p: str | Path) -> np.ndarray:
        with rasterio.open(p) as ds:
            scale = max(ds.width, ds.height) / max_pixels
            shape = (max(1, round(ds.height / max(scale, 1))), max(1, round(ds.width / max(scale, 1))))
            return ds.read(1, out_shape=shape, masked=True).astype(float).filled(np.nan)

    prob, prone_mask = small(probability_path), small(prone_path)
    fig = new_figure(6, 6 * prob.shape[0] / prob.shape[1] + 0.6)
    ax = fig.subplots()
    im = ax.imshow(prob, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.contour(np.nan_to_num(prone_mask) > 0.5, levels=[0.5], colors="red", linewidths=0.8)
    ax.set_axis_off()
    ax.set_title("susceptibility (0..1); red: prone areas", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_figure(fig, path, dpi=100)
