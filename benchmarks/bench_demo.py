"""Benchmark the demo pipeline end to end: seconds per asset per partition, and what the cheap paths cost in science.

    python benchmarks/bench_demo.py [--scale 1 [2 4 ...]] [--workers N] [--no-tolerance] [--keep DIR]
    python benchmarks/bench_demo.py --tolerance-only DATA_ROOT   # on an already materialized demo

For each scale: a fresh data root and Dagster home, ``generate_demo`` (karst + loess, two periods
each), registration, and ``materialize_all`` with the default configuration: every asset for both
areas and all their periods, partitions side by side on ``--workers`` processes (default: one per
core). Per-asset seconds come from the STEP_SUCCESS events of the runs (wall time inside a run, so
with partitions side by side they add up to more than the wall total).

Tolerance (scale 1, unless ``--no-tolerance``): on the first karst period's samples, the defaults
are compared with the thorough path they replace, in the same process, one after the other:
random forests of 300 instead of 100 trees and the exact-split GBDT instead of the binned one (grid
search, refit and spatial CV; test and spatial-CV AUC of every strategy), kernel SHAP (512 coalitions,
200 rows) instead of permutation SHAP (1 permutation per row, 200 rows) for the SVM and MLP (Spearman
correlation of the mean |SHAP| per factor), and 100 Bagging-PU bags on every positive pixel instead
of 30 bags on at most 5000 (mean true hazard of the chosen InSAR-PU negatives, from the synthetic truth).
Ratios are thorough / default. Tolerances: AUC within 0.01, SHAP Spearman >= 0.9, hazard within 0.01.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
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
    from lsm_assets.materialize import materialize_all
    from lsm_assets.registry import register
    from lsm_core.synthetic import generate_demo

    base = keep or Path(tempfile.mkdtemp(prefix=f"bench_demo_{scale:g}_"))
    data, home = base / "data", base / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    generate_demo(data, seed=0, scale=scale, workers=workers or os.cpu_count() or 1)  # as `lsm demo` does
    t1 = time.perf_counter()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        reg = register(instance, data)
        t2 = time.perf_counter()
        results = materialize_all(defs, instance, reg, data, max_workers=workers)
        t3 = time.perf_counter()
        steps = _step_seconds(instance)
    per_asset = {a: round(sum(v.values()), 2) for a, v in sorted(steps.items(), key=lambda kv: -sum(kv[1].values()))}
    return {"scale": scale, "data_root": str(data), "generate_s": round(t1 - t0, 2), "register_s": round(t2 - t1, 2),
            "materialize_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
            "runs": len(results), "failed": [r.partition_key + ": " + (r.error or "") for r in results if not r.success],
            "asset_seconds_summed_over_partitions": per_asset, "asset_seconds_per_partition": steps}


def tolerance(data: Path) -> dict:
    """Default (cheap) paths against the thorough ones on the first karst period: AUCs, SHAP ranking, time."""
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    from lsm_core import experiment
    from lsm_core.io import RasterFile
    from lsm_core.stack import categorical_bands

    wh = data / "warehouse"
    period = sorted(p.stem for p in (wh / "factor_stack" / "karst").glob("*.tif"))[0]
    pos = pd.read_parquet(wh / "positive_samples" / "karst" / f"{period}.parquet").drop(columns="geometry")
    neg = pd.read_parquet(wh / "negative_samples" / "karst" / f"{period}.parquet").drop(columns="geometry")
    stack = RasterFile(wh / "factor_stack" / "karst" / f"{period}.tif")
    cat = [c for c in categorical_bands(stack.path) if c in stack.names]
    out: dict = {"partition": f"{period}|karst", "models": {}, "shap": {}}
    cheap = {"random_forest": {"n_estimators": 100}, "gbdt": {"binned": True}}
    thorough = {"random_forest": {"n_estimators": 300}, "gbdt": {"binned": False}}
    seconds = {"default": 0.0, "thorough": 0.0}
    shap_s = {"permutation": 0.0, "kernel": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in sorted(neg["strategy"].unique()):
            table = experiment.training_table(pos, neg, strategy, max_per_class=2000, seed=0)
            res = {}
            tuning = {"default": {"random_forest": {"n_estimators": 50}}, "thorough": None}
            for label, fixed in (("default", cheap), ("thorough", thorough)):
                t = time.perf_counter()
                res[label] = pd.DataFrame(experiment.run_strategy(
                    table, strategy, stack.names, cat, list(cheap), Path(tmp) / label, seed=0,
                    fixed_params=fixed, tuning_params=tuning[label]).rows).set_index("model")
                seconds[label] += time.perf_counter() - t
            for model in cheap:
                d, th = res["default"].loc[model], res["thorough"].loc[model]
                out["models"][f"{strategy}/{model}"] = {
                    "test_auc": [round(d["test_auc"], 4), round(th["test_auc"], 4)],
                    "spatial_cv_auc": [round(d["spatial_cv_auc"], 4), round(th["spatial_cv_auc"], 4)],
                    "auc_diff": round(max(abs(d["test_auc"] - th["test_auc"]),
                                          abs(d["spatial_cv_auc"] - th["spatial_cv_auc"])), 4)}
            rows = pd.DataFrame(experiment.run_strategy(table, strategy, stack.names, cat, ["svm", "mlp"],
                                                        Path(tmp) / "m", seed=0).rows)
            imps = {}
            for method, n_rows in (("permutation", 200), ("kernel", 200)):  # ShapConfig default vs thorough
                t = time.perf_counter()
                imps[method] = pd.DataFrame(experiment.importance_rows(rows, table, n_explain=300, seed=0,
                                                                       agnostic_method=method,
                                                                       agnostic_explain=n_rows))
                shap_s[method] += time.perf_counter() - t
            for model in ("svm", "mlp"):
                a, b = (imps[m][imps[m]["model"] == model].set_index("factor")["mean_abs_shap"].sort_index()
                        for m in ("permutation", "kernel"))
                out["shap"][f"{strategy}/{model}"] = {"spearman_vs_kernel": round(float(spearmanr(a, b).statistic), 4),
                                                      "top3_same": set(a.nlargest(3).index) == set(b.nlargest(3).index)}
    out["models_seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    out["models_thorough_over_default"] = round(seconds["thorough"] / seconds["default"], 2)
    out["shap_seconds"] = {k: round(v, 2) for k, v in shap_s.items()}
    out["shap_kernel_over_permutation"] = round(shap_s["kernel"] / shap_s["permutation"], 2)
    out["pu_bags"] = _pu_bags(data, period, stack, pos)
    out["max_auc_diff"] = max(v["auc_diff"] for v in out["models"].values())
    out["min_shap_spearman"] = min(v["spearman_vs_kernel"] for v in out["shap"].values())
    out["within_tolerance"] = bool(out["max_auc_diff"] <= 0.01 and out["min_shap_spearman"] >= 0.9 and
                                   np.isfinite(out["min_shap_spearman"]) and out["pu_bags"]["hazard_diff"] <= 0.01)
    return out


def _pu_bags(data: Path, period: str, stack, pos) -> dict:
    """InSAR-PU negatives, default (30 bags, 5000 positives) and thorough (100 bags, all positives): mean TRUE
    hazard of the chosen pixels, and time."""
    import pandas as pd
    import rasterio

    from lsm_core import sampling

    with rasterio.open(data / "study_areas" / "karst" / "truth" / "hazard.tif") as src:
        hazard = src.read(1)
    feats = [n for n in stack.names if n not in ("velocity_mm_yr", "ndvi_mean")]  # NegativeSamplingConfig default
    out = {}
    for label, bags, max_pos in (("default", 30, 5000), ("thorough", 100, None)):
        t = time.perf_counter()
        neg, _ = sampling.insar_pu_negatives(stack, pos, len(pos), features=feats, n_estimators=bags,
                                             max_positives=max_pos, seed=0)
        out[label] = {"bags": bags, "max_positives": max_pos, "seconds": round(time.perf_counter() - t, 2),
                      "negatives_mean_true_hazard": round(float(hazard[neg["row"], neg["col"]].mean()), 4)}
    # the scale of the difference: the random strategy's negatives of the same partition
    random = pd.read_parquet(data / "warehouse" / "negative_samples" / "karst" / f"{period}.parquet")
    random = random[random["strategy"] == "random"]
    out["random_negatives_mean_true_hazard"] = round(float(hazard[random["row"], random["col"]].mean()), 4)
    out["hazard_diff"] = round(abs(out["default"]["negatives_mean_true_hazard"] -
                                   out["thorough"]["negatives_mean_true_hazard"]), 4)
    out["thorough_over_default"] = round(out["thorough"]["seconds"] / out["default"]["seconds"], 2)
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
