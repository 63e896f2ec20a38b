"""Plots of the model experiment (matplotlib Agg, atomic writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from lsm_core.io import atomic_path

__all__ = ["plot_roc_curves"]


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
