"""Permutation SHAP: ``lsm_core.permutation_shap`` (batched over rows) vs ``shap.PermutationExplainer``.

Same estimator (one antithetic permutation per row, the same background rows), the two libraries'
own random orders. Prints one JSON line per model (SVM, MLP pipelines of ``lsm_core.models``) with
wall seconds of each (shap's first call in a process includes compiling its numba kernels, reported
apart), the speedup, and how alike the importances are: Spearman of mean |SHAP| over the factors and
the largest difference in importance share. ``python benchmarks/bench_shap.py [--rows 200] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.datasets import make_classification

from lsm_core.explain import _proba_of_rows, _shap
from lsm_core.models import make_model
from lsm_core.permutation_shap import permutation_shap


def _shares(values: np.ndarray) -> np.ndarray:
    imp = np.abs(values).mean(axis=0)
    return imp / imp.sum()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--background", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    X, y = make_classification(4000, 15, n_informative=8, n_redundant=3, flip_y=0.15, random_state=args.seed)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(15)])
    rng = np.random.default_rng(args.seed)
    data = X.iloc[rng.choice(len(X), args.rows, replace=False)]
    bg = X.iloc[rng.choice(len(X), args.background, replace=False)].to_numpy(float)
    shap = _shap()
    for i, name in enumerate(("svm", "mlp")):
        model = make_model(name, random_state=args.seed).fit(X, y)
        f = _proba_of_rows(model, data)
        t = time.perf_counter()
        ours, _ = permutation_shap(f, data.to_numpy(float), bg, seed=args.seed)
        ours_s = time.perf_counter() - t
        explainer = shap.PermutationExplainer(f, shap.maskers.Independent(bg, max_samples=len(bg)), seed=args.seed)
        t = time.perf_counter()
        if i == 0:  # the first call compiles shap's numba kernels; time it apart from the estimator
            explainer(data.to_numpy(float)[:2], max_evals=31, silent=True)
            first_call_s = time.perf_counter() - t
            t = time.perf_counter()
        theirs = np.asarray(explainer(data.to_numpy(float), max_evals=2 * X.shape[1] + 1, silent=True).values)
        shap_s = time.perf_counter() - t
        a, b = _shares(ours), _shares(theirs)
        print(json.dumps({"model": name, "rows": args.rows, "background": args.background,
                          "lsm_core_s": round(ours_s, 3), "shap_s": round(shap_s, 3),
                          "shap_first_call_compile_s": round(first_call_s, 3) if i == 0 else None,
                          "speedup": round(shap_s / ours_s, 2),
                          "importance_spearman": round(float(spearmanr(a, b).statistic), 4),
                          "max_share_difference": round(float(np.abs(a - b).max()), 4)}))


if __name__ == "__main__":
    main()
