"""trained_models' cheap defaults against the thorough preset, one setting at a time, on one materialized partition.

Usage: python benchmarks/bench_nested_cv.py --data-root DIR [--area karst] [--period 201901-202012]
       [--components sizes forest gbdt without_velocity lightgbm] [--strategies ...]

DIR holds a warehouse where positive_samples, negative_samples and factor_stack of the partition are
materialized (e.g. a `bench_demo.py --keep DIR` root, or `lsm materialize`). Every path runs
``experiment.fold_experiment`` (the common-fold spatial CV of trained_models) on the same folds,
negatives and area sample, with trained_models' configuration (``TrainingConfig``) as the default.
Each component switches the thorough preset's settings of one cheap estimate, and runs only the
models it touches:

* ``sizes``: every training row (2,000 per class) and the grid on every row of the fold, instead of
  500 rows per class per fold and grid points fitted on 250 (the MLP: 1,000 and 500) (all models);
* ``forest``: 300 trees everywhere, instead of 100 (grid points scored with 10) (random forest);
* ``gbdt``: the exact split search (GradientBoostingClassifier) instead of 63 bins (gbdt);
* ``without_velocity``: the without-velocity variant tuned again in each fold, instead of keeping the
  parameters the fold chose with every factor (lightgbm);
* ``lightgbm``: LightGBM on its library default of 255 bins per factor, instead of 63 (lightgbm).

Prints one JSON object: per component, the CPU seconds of the default and thorough paths on its
models and their ratio, and the mean and largest |difference| of the fold-mean yardstick AUC and
own-negative spatial-CV AUC over (strategy, model, variant). Tolerance: fold means within 0.01 on
average and 0.02 at most (``within_tolerance``). About 6 min of CPU on the demo's karst partition.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as materialize_all's workers
    os.environ.setdefault(_name, "1")

import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lsm_assets.assets.learning import TrainingConfig  # noqa: E402
from lsm_assets.materialize import THOROUGH_CONFIG  # noqa: E402
from lsm_core import experiment  # noqa: E402
from lsm_core.io import RasterFile  # noqa: E402
from lsm_core.stack import categorical_bands  # noqa: E402
from lsm_core.yardstick import AREA_SAMPLE, common_folds  # noqa: E402

THOROUGH = THOROUGH_CONFIG["ops"]["trained_models"]["config"]
COMPONENTS: dict[str, tuple[list[str], list[str]]] = {  # name: (thorough settings switched, models run)
    "sizes": (["tuning_max_per_class", "cv_max_samples_per_class", "mlp_tuning_max_per_class",
               "mlp_cv_max_samples_per_class"],
              ["logistic_regression", "svm", "mlp", "random_forest", "gbdt", "lightgbm"]),
    "forest": (["forest_trees", "forest_tuning_trees"], ["random_forest"]),
    "gbdt": (["gbdt_binned"], ["gbdt"]),
    "without_velocity": (["retune_without_velocity"], ["lightgbm"]),
    "lightgbm": (["lightgbm_bins"], ["lightgbm"]),
}
MEAN_TOLERANCE, MAX_TOLERANCE = 0.01, 0.02


def compare(data_root: str | Path, area: str = "karst", period: str = "201901-202012",
            components: list[str] | None = None, strategies: list[str] | None = None) -> dict[str, Any]:
    """Per component: CPU seconds of both paths and the mean / largest |difference| of the fold means."""
    wh = Path(data_root) / "warehouse"
    part = f"{area}/{period}"
    pos = pd.read_parquet(wh / "positive_samples" / f"{part}.parquet").drop(columns="geometry")
    neg = pd.read_parquet(wh / "negative_samples" / f"{part}.parquet").drop(columns="geometry")
    stack = RasterFile(wh / "factor_stack" / f"{part}.tif")
    strategies = strategies or sorted(set(neg["strategy"]) - {AREA_SAMPLE})
    default = TrainingConfig()
    folds = common_folds(pos, default.spatial_cv_folds, seed=default.seed)
    out: dict[str, Any] = {"partition": part, "components": {}}
    for name in components or list(COMPONENTS):
        settings, models = COMPONENTS[name]
        thorough = TrainingConfig(**{k: THOROUGH[k] for k in settings})
        means, seconds = {}, {}
        for label, cfg in (("default", default), ("thorough", thorough)):
            start = time.process_time()
            kwargs = cfg.fold_kwargs()  # as trained_models passes them
            kwargs["without_velocity"] = [m for m in kwargs["without_velocity"] if m in models]
            rows = experiment.fold_experiment(pos, neg, folds, strategies, models, stack.names,
                                              categorical_bands(stack.path), **kwargs)
            seconds[label] = round(time.process_time() - start, 1)
            means[label] = rows.groupby(["strategy", "model", "variant"])[["yardstick_auc", "auc"]].mean()
        diff = (means["default"] - means["thorough"]).abs()
        out["components"][name] = {
            "thorough_settings": {k: THOROUGH[k] for k in settings}, "models": models, "cpu_seconds": seconds,
            "default_over_thorough": round(seconds["default"] / seconds["thorough"], 2),
            "mean_abs_diff": diff.mean().round(4).to_dict(), "max_abs_diff": diff.max().round(4).to_dict(),
            # where the largest differences are, with both paths' fold means
            "largest": {m: {"row": "/".join(map(str, diff[m].idxmax())),
                            "default": round(float(means["default"].loc[diff[m].idxmax(), m]), 4),
                            "thorough": round(float(means["thorough"].loc[diff[m].idxmax(), m]), 4)}
                        for m in diff.columns}}
        print(json.dumps({name: out["components"][name]}), file=sys.stderr, flush=True)
    c = out["components"].values()
    out["within_tolerance"] = bool(all(max(v["mean_abs_diff"].values()) <= MEAN_TOLERANCE and
                                       max(v["max_abs_diff"].values()) <= MAX_TOLERANCE for v in c))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--area", default="karst")
    ap.add_argument("--period", default="201901-202012")
    ap.add_argument("--components", nargs="+", default=list(COMPONENTS), choices=list(COMPONENTS))
    ap.add_argument("--strategies", nargs="+", default=None, help="Default: every strategy the partition drew.")
    args = ap.parse_args()
    print(json.dumps(compare(args.data_root, args.area, args.period, args.components, args.strategies)))


if __name__ == "__main__":
    main()
