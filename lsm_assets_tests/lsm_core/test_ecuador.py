"""Real data: Geocomputation with R ch. 12 (Ecuador landslides) reproduced, then beaten, under spatial CV.

Published (SOURCE.md): GLM AUROC 0.8216 fitted on all points, 0.81 conventional CV, 0.77 spatial
CV; tuned RBF SVM 0.74 spatial. We use 20 repeats instead of the book's 100 (per-repeat means
vary by ~0.01, so the 20-repeat mean is good to about +-0.003).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lsm_core.validation import PUBLISHED_AUROC, ecuador_benchmark, load_lsl

LSL = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "ecuador_lsl" / "lsl.csv"
N_REPEATS = 20

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not LSL.is_file(), reason=f"Ecuador data not found at {LSL}")]


@pytest.fixture(scope="module")
def benchmark() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, folds) of the GLM and the GLM + monotone LightGBM ensemble, 20 x 5 folds per scheme."""
    return ecuador_benchmark(LSL, n_repeats=N_REPEATS, random_state=0)


def _mean(summary: pd.DataFrame, model: str, scheme: str) -> float:
    row = summary[(summary["model"] == model) & (summary["scheme"] == scheme)]
    assert len(row) == 1
    return float(row["mean"].iloc[0])


def test_points_are_the_books_350():
    X, y, coords = load_lsl(LSL)
    assert X.shape == (350, 5) and coords.shape == (350, 2)
    assert int(y.sum()) == 175


def test_glm_fitted_on_all_points_matches_the_book(benchmark):
    summary, _ = benchmark
    # deterministic maximum-likelihood fit: only the optimiser's tolerance separates us from R
    assert _mean(summary, "glm", "fitted") == pytest.approx(PUBLISHED_AUROC["glm_fitted"], abs=0.002)


def test_glm_conventional_cv_matches_the_book(benchmark):
    summary, _ = benchmark
    assert _mean(summary, "glm", "conventional") == pytest.approx(0.81, abs=0.03)


def test_glm_spatial_cv_matches_the_book_and_is_lower(benchmark):
    summary, folds = benchmark
    spatial = _mean(summary, "glm", "spatial")
    assert spatial == pytest.approx(0.77, abs=0.03)
    assert spatial < _mean(summary, "glm", "conventional") - 0.02  # the book's point: random CV is optimistic
    assert len(folds[(folds["model"] == "glm") & (folds["scheme"] == "spatial")]) == 5 * N_REPEATS


def test_ensemble_beats_both_published_learners_under_spatial_cv(benchmark):
    summary, folds = benchmark
    ours = _mean(summary, "glm_gbm_ensemble", "spatial")
    # measured 0.781 here (0.780-0.783 over other seeds and 50 repeats)
    assert ours >= 0.775
    assert ours > PUBLISHED_AUROC["glm_spatial"] and ours > PUBLISHED_AUROC["svm_spatial"]
    spatial = folds[folds["scheme"] == "spatial"]
    per_repeat = spatial.groupby(["model", "repeat"])["auc"].mean().unstack(0)
    gain = per_repeat["glm_gbm_ensemble"] - per_repeat["glm"]  # paired: same folds for both models
    assert gain.mean() >= 0.003
    assert np.mean(gain > 0) >= 0.6
