"""Benchmark the demo pipeline end to end: seconds per asset per partition, and what the cheap paths cost in science.

    python benchmarks/bench_demo.py [--scale 1 [2 4 ...]] [--workers N] [--no-tolerance] [--keep DIR]
    python benchmarks/bench_demo.py --tolerance-only DATA_ROOT   # on an already materialized demo

For each scale: a fresh data root and Dagster home, ``generate_demo`` (karst + loess, two periods
each), registration, and ``materialize_all`` with the default configuration: every asset for both
areas and all their periods, partitions side by side on ``--workers`` processes (default: one per
core). Per-asset seconds come from the STEP_SUCCESS events of the runs (wall time inside a run, so
with partitions side by side they add up to more than the wall total).

Tolerance (scale 1, unless ``--no-tolerance``): on the first karst period's samples, each cheap
default is compared with the thorough preset's setting it replaces (``THOROUGH_CONFIG``), in the same
process: trained_models' spatial CV one setting at a time (bench_nested_cv.compare: sample sizes,
forest trees, binned GBDT, the without-velocity variant's tuning; fold-mean yardstick and own-negative
AUC within 0.01 on average and 0.02 at most), shap_importance's permutation SHAP against kernel SHAP
(SVM, MLP) and tree SHAP of the forest on ``tree_rows`` against all rows (Spearman of the mean |SHAP|
per factor >= 0.9), and negative_samples' Bagging-PU against 100 bags on every positive and a 300 000
pool (mean true hazard of the chosen InSAR-PU negatives, from the synthetic truth, within 0.01).
CPU seconds of both paths and their ratios are reported beside each.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# one thread per process, as in materialize_all's workers, so the tolerance part's time ratios compare
# the algorithms rather than how many threads each library happens to start
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def _step_seconds(instance) -> dict[str, dict[str, float]]:
    """{asset: {partition: seconds}} from the STEP_SUCCESS events of every run in ``instance``."""
    import dagster as dg

    out: dict[str, dict[str, float]] = {}
    for run in instance.get_runs():
        partition = run.tags.get("dagster/partition", "?")
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records
        for rec in records:
            ev = rec.event_log_entry.dagster_event
            out.setdefault(ev.step_key, {})[partition] = round(ev.event_specific_data.duration_ms / 1000, 2)
    return out


def run_demo(scale: float, workers: int | None, keep: Path | None) -> dict:
    """Generate, register and materialize the demo at ``scale``; timings and the data root."""
    import dagster as dg

    from lsm_assets.definitions import defs
    from lsm_assets.materialize import materialize_all, start_workers
    from lsm_assets.registry import register
    from lsm_core.synthetic import generate_demo

    base = keep or Path(tempfile.mkdtemp(prefix=f"bench_demo_{scale:g}_"))
    data, home = base / "data", base / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    n_workers = workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    # as `lsm demo` does: the workers start up, generate the data, then run the partitions
    with start_workers(n_workers) as pool:
        generate_demo(data, seed=0, scale=scale, executor=pool)
        t1 = time.perf_counter()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            reg = register(instance, data)
            t2 = time.perf_counter()
            results = materialize_all(defs, instance, reg, data, max_workers=n_workers, pool=pool)
            t3 = time.perf_counter()
            steps = _step_seconds(instance)
    per_asset = {a: round(sum(v.values()), 2) for a, v in sorted(steps.items(), key=lambda kv: -sum(kv[1].values()))}
    return {"scale": scale, "data_root": str(data), "generate_s": round(t1 - t0, 2), "register_s": round(t2 - t1, 2),
            "materialize_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
            "runs": len(results), "failed": [r.partition_key + ": " + (r.error or "") for r in results if not r.success],
            "asset_seconds_summed_over_partitions": per_asset, "asset_seconds_per_partition": steps}


def tolerance(data: Path) -> dict:
    """Default (cheap) paths against the thorough preset on the first karst period: AUCs, SHAP ranking, PU hazard.

    Every default is read from the assets' configuration classes and every expensive setting from
    ``THOROUGH_CONFIG``, so this compares what `lsm materialize` runs with what `--preset thorough` runs.
    """
    import numpy as np
    import pandas as pd
    from bench_nested_cv import compare

    from lsm_core.io import RasterFile

    wh = data / "warehouse"
    period = sorted(p.stem for p in (wh / "factor_stack" / "karst").glob("*.tif"))[0]
    pos = pd.read_parquet(wh / "positive_samples" / "karst" / f"{period}.parquet").drop(columns="geometry")
    neg = pd.read_parquet(wh / "negative_samples" / "karst" / f"{period}.parquet").drop(columns="geometry")
    stack = RasterFile(wh / "factor_stack" / "karst" / f"{period}.tif")
    out: dict = {"partition": f"{period}|karst"}
    # trained_models: the spatial CV (yardstick and own-negative AUC) of every cheap setting against thorough
    out["trained_models"] = compare(data, "karst", period)
    out["shap"] = _shap(pos, neg, stack)
    out["pu"] = _pu(data, period, stack, pos)
    out["max_auc_diff"] = max(max(v["max_abs_diff"].values()) for v in out["trained_models"]["components"].values())
    out["min_shap_spearman"] = min(v["spearman"] for v in out["shap"]["models"].values())
    out["within_tolerance"] = bool(out["trained_models"]["within_tolerance"] and out["min_shap_spearman"] >= 0.9 and
                                   np.isfinite(out["min_shap_spearman"]) and out["pu"]["hazard_diff"] <= 0.01)
    return out


def _shap(pos, neg, stack) -> dict:
    """shap_importance's cheap explainers against thorough: permutation vs kernel SHAP (SVM, MLP) and exact
    tree SHAP of the forest on ``tree_rows`` vs all ``n_explain`` rows. Spearman of the mean |SHAP| per factor."""
    import pandas as pd
    from scipy.stats import spearmanr

    from lsm_assets.assets.learning import ShapConfig
    from lsm_assets.materialize import THOROUGH_CONFIG
    from lsm_core import experiment
    from lsm_core.stack import categorical_bands

    cfg = ShapConfig()
    thorough = ShapConfig(**THOROUGH_CONFIG["ops"]["shap_importance"]["config"])
    options = {label: {"agnostic_method": c.agnostic_method, "agnostic_explain": c.agnostic_rows,
                       "tree_explain": c.tree_rows} for label, c in (("default", cfg), ("thorough", thorough))}
    cat = [c for c in categorical_bands(stack.path) if c in stack.names]
    out: dict = {"settings": options, "models": {}, "cpu_seconds": {"default": 0.0, "thorough": 0.0}}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in sorted(set(neg["strategy"]) - {"area_sample"}):
            table = experiment.training_table(pos, neg, strategy, max_per_class=2000, seed=0)
            rows = pd.DataFrame(experiment.run_strategy(table, strategy, stack.names, cat,
                                                        ["svm", "mlp", "random_forest"], Path(tmp), seed=0,
                                                        fixed_params={"random_forest": {"n_estimators": 100}},
                                                        tuning_params={"random_forest": {"n_estimators": 25}}).rows)
            imps = {}
            for label, opts in options.items():
                t = time.process_time()
                imps[label] = pd.DataFrame(experiment.importance_rows(rows, table, n_explain=cfg.n_explain, seed=0,
                                                                      model_root=tmp, **opts))
                out["cpu_seconds"][label] += time.process_time() - t
            for model in ("svm", "mlp", "random_forest"):
                a, b = (imps[k][imps[k]["model"] == model].set_index("factor")["mean_abs_shap"].sort_index()
                        for k in ("default", "thorough"))
                out["models"][f"{strategy}/{model}"] = {"spearman": round(float(spearmanr(a, b).statistic), 4),
                                                        "top3_same": set(a.nlargest(3).index) == set(b.nlargest(3).index)}
    out["cpu_seconds"] = {k: round(v, 1) for k, v in out["cpu_seconds"].items()}
    out["default_over_thorough"] = round(out["cpu_seconds"]["default"] / out["cpu_seconds"]["thorough"], 2)
    return out


def _pu(data: Path, period: str, stack, pos) -> dict:
    """InSAR-PU negatives with negative_samples' defaults and with the thorough preset (bags, positives, pool):
    mean TRUE hazard of the chosen pixels (synthetic truth), and CPU time."""
    import pandas as pd
    import rasterio

    from lsm_assets.assets.learning import NegativeSamplingConfig
    from lsm_assets.materialize import THOROUGH_CONFIG
    from lsm_core import sampling

    with rasterio.open(data / "study_areas" / "karst" / "truth" / "hazard.tif") as src:
        hazard = src.read(1)
    out: dict = {}
    cfgs = (("default", NegativeSamplingConfig()),
            ("thorough", NegativeSamplingConfig(**THOROUGH_CONFIG["ops"]["negative_samples"]["config"])))
    for label, cfg in cfgs:
        feats = [n for n in stack.names if n not in cfg.pu_exclude]
        n = len(pos)  # as the asset's ratio 1 (the area's sampling_ratio of the demo)
        t = time.process_time()
        neg, _ = sampling.insar_pu_negatives(stack, pos, n, features=feats, n_estimators=cfg.bags,
                                             max_positives=cfg.max_positives, quantile=cfg.quantile,
                                             max_pool=max(cfg.max_pool, math.ceil(2 * n / cfg.quantile)), seed=0)
        out[label] = {"bags": cfg.bags, "max_positives": cfg.max_positives, "max_pool": cfg.max_pool,
                      "cpu_seconds": round(time.process_time() - t, 2),
                      "negatives_mean_true_hazard": round(float(hazard[neg["row"], neg["col"]].mean()), 4)}
    # the scale of the difference: the random strategy's negatives of the same partition
    random = pd.read_parquet(data / "warehouse" / "negative_samples" / "karst" / f"{period}.parquet")
    random = random[random["strategy"] == "random"]
    out["random_negatives_mean_true_hazard"] = round(float(hazard[random["row"], random["col"]].mean()), 4)
    out["hazard_diff"] = round(abs(out["default"]["negatives_mean_true_hazard"] -
                                   out["thorough"]["negatives_mean_true_hazard"]), 4)
    out["thorough_over_default"] = round(out["thorough"]["cpu_seconds"] / out["default"]["cpu_seconds"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-tolerance", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="Keep the data here (one scale only).")
    ap.add_argument("--tolerance-only", type=Path, default=None, metavar="DATA_ROOT",
                    help="Only the tolerance check, on the materialized demo data root of an earlier run.")
    args = ap.parse_args()
    if args.tolerance_only:
        print(json.dumps({"tolerance": tolerance(args.tolerance_only)}, indent=1, default=str))
        return
    report: dict = {"cores": os.cpu_count(), "workers": args.workers or os.cpu_count(),
                    "load_avg_before": [round(x, 2) for x in os.getloadavg()], "scales": []}
    for scale in args.scale:
        report["scales"].append(run_demo(scale, args.workers, args.keep))
        print(json.dumps(report["scales"][-1]), file=sys.stderr, flush=True)  # kept if a later step fails
    first = report["scales"][0]
    if not args.no_tolerance and first["scale"] == 1.0:
        report["tolerance"] = tolerance(Path(first["data_root"]))
    if len(report["scales"]) > 1:
        base = report["scales"][0]
        report["total_ratio_vs_first_scale"] = {str(s["scale"]): round(s["total_s"] / base["total_s"], 2)
                                                for s in report["scales"]}
    report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
