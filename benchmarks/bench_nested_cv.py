"""The cheap nested spatial CV of trained_models against the full nested grid, on one materialized partition.

Usage: python benchmarks/bench_nested_cv.py --data-root DIR [--area karst] [--period 201901-202012]
       [--models ...] [--strategies ...]

DIR holds a warehouse where positive_samples, negative_samples and factor_stack of the partition are
materialized (e.g. a `bench_demo.py --keep DIR` root, or `lsm materialize`). Both paths run
``experiment.fold_experiment`` on the same common folds, negatives and area sample:

* cheap (the defaults): 500 training rows per class per fold, grid points fitted on 250 per class;
* full (thorough): every training row (2000 per class) and the grid on every row of the fold.

Prints one JSON object: CPU seconds of each path and their ratio, the mean and largest |difference|
of the fold-mean yardstick AUC and own-negative spatial-CV AUC over (strategy, model, variant), the
mean signed difference (cheap - full), and each path's best yardstick AUC per strategy and top model.
About 4 min of CPU on the demo's karst partition.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lsm_core import experiment  # noqa: E402
from lsm_core.io import RasterFile  # noqa: E402
from lsm_core.models import MODEL_NAMES  # noqa: E402
from lsm_core.stack import categorical_bands  # noqa: E402
from lsm_core.yardstick import common_folds  # noqa: E402

PATHS = {"cheap": {"max_per_class": 500, "inner_max_per_class": 250},
         "full": {"max_per_class": 2000, "inner_max_per_class": None}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--area", default="karst")
    ap.add_argument("--period", default="201901-202012")
    ap.add_argument("--models", nargs="+", default=list(MODEL_NAMES))
    ap.add_argument("--strategies", nargs="+", default=["random", "buffer", "insar_pu", "pu"])
    args = ap.parse_args()
    wh = Path(args.data_root) / "warehouse"
    part = f"{args.area}/{args.period}"
    pos = pd.read_parquet(wh / "positive_samples" / f"{part}.parquet").drop(columns="geometry")
    neg = pd.read_parquet(wh / "negative_samples" / f"{part}.parquet").drop(columns="geometry")
    stack = RasterFile(wh / "factor_stack" / f"{part}.tif")
    folds = common_folds(pos, 5, seed=0)
    # the trained_models defaults for the forest and the GBDT, the same in both paths: only the tuning differs
    fixed = {"random_forest": {"n_estimators": 100}, "gbdt": {"binned": True}}
    tuning = {"random_forest": {"n_estimators": 50}}
    means, seconds = {}, {}
    for label, kw in PATHS.items():
        start = time.process_time()
        rows = experiment.fold_experiment(pos, neg, folds, args.strategies, args.models, stack.names,
                                          categorical_bands(stack.path), seed=0, fixed_params=fixed,
                                          tuning_params=tuning, without_velocity=["lightgbm"], **kw)
        seconds[label] = round(time.process_time() - start, 1)
        means[label] = rows.groupby(["strategy", "model", "variant"])[["yardstick_auc", "auc"]].mean()
    diff = means["cheap"] - means["full"]
    out = {"partition": part, "cpu_seconds": seconds, "cheap_over_full": round(seconds["cheap"] / seconds["full"], 2),
           "mean_abs_diff": diff.abs().mean().round(4).to_dict(), "max_abs_diff": diff.abs().max().round(4).to_dict(),
           "mean_diff": diff.mean().round(4).to_dict()}
    for label, m in means.items():
        a = m.xs("all_factors", level="variant")
        out[f"{label}_best_yardstick_by_strategy"] = a.groupby("strategy")["yardstick_auc"].max().round(4).to_dict()
        out[f"{label}_top_model"] = "/".join(a["yardstick_auc"].idxmax())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
