"""When does InSAR-PU help? The negative-strategy experiment over a grid of synthetic-world knobs (issue 12).

    python benchmarks/study_strategies.py [--settings default unrelated ...] [--scale 0.15] [--area karst]
                                          [--models logistic_regression random_forest lightgbm] [--workers 2]
                                          [--seeds 0 1] [--json]

For each knob setting (``SETTINGS``; ``lsm_core.synthetic.WorldKnobs``): a fresh data root and Dagster
home, ``generate_area`` of one area with those knobs, registration, and the product's own runs
(``lsm_assets.materialize.run_partition``): the area's assets, then the first period's assets up to
``model_comparison`` (deformation rate, factors, positives, the negatives of every strategy, models
tuned and spatially cross-validated, prediction-rate AUC on the later events). Then, from the
warehouse and the area's ``truth/`` (which the pipeline never reads), per strategy and model:

* ``truth_auc``: expected AUC against the true hazard on 20 000 uniform valid pixels
  (``lsm_core.synthetic.scoring.truth_auc``: each pixel a positive with weight h, a negative with 1 - h);
* ``prediction_rate_auc``: the pipeline's, events dated after the period vs a uniform area sample;
* ``yardstick_auc``: the pipeline's common-fold yardstick (held-out landslides of each common spatial
  fold vs a uniform sample of the area's valid pixels in that fold's region, the same for every
  strategy and model) when ``trained_models`` has the column, else computed here (``yardstick_source``
  says which): the model's own test-split landslides against one uniform area sample;
  ``yardstick_auc_without_velocity``: the same with the velocity left out of the factors (the models
  the pipeline runs that variant for);
* ``spatial_cv_auc``: against the strategy's own negatives (not comparable across strategies);
* ``neg_mean_true_hazard``, ``neg_share_unstable``, ``neg_share_in_later_failures``: the strategy's
  negatives against the truth;
* for the best model of each strategy (by the yardstick): ``t_star`` / ``TA`` / ``POR`` / ``prone_share``
  (and POR at 50 %). The pipeline maps only the selected model, so this script maps each strategy's
  best model itself with ``lsm_core.predict.predict_map``, finds t* with
  ``lsm_core.threshold.js_threshold_for_rasters`` (equal factor weights, the pipeline's default) and
  scores it with ``lsm_core.prone.prone_areas`` and ``lsm_core.evaluation.evaluate_thresholds``.

Each setting runs once per seed in ``--seeds`` (world and pipeline seeded alike), the runs side by side
on ``--workers`` processes (one thread each). Prints a Markdown table per run, then a summary per
setting and strategy (means over models and seeds; ``best_*``: of the best model of each strategy)
and, with ``--json``, the whole result as the last line:
``{"settings": [{"name", "seed", "knobs", "area", "period", "seconds", "selected", "rows": [...]}, ...],
"summary": [...], "seconds": ...}``. ``selected``: the model the yardstick picks across all strategies.
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
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# knob settings: what changes against the default (realistic) world
SETTINGS: dict[str, dict] = {
    "default": {},
    "unrelated": {"deformation_on_hazard": False},          # deformation carries no information on hazard
    "all_creep": {"precursory_share": 1.0},                  # every unstable slope creeps before failing
    "no_precursor": {"precursory_share": 0.0},               # none does
    "dense_forest": {"vegetation_decorrelation": 1.8},       # most of the forest is nodata in the deliveries
    "subsidence": {"subsidence_per_km2": 1.5},               # many non-landslide bowls
    "paper_world": {"precursory_share": 1.0, "los_projection": False, "subsidence_per_km2": 0.0,
                    "ndvi_precursor": 0.08},                 # the old generator: every unstable slope shows
}
DEFAULT_SETTINGS = ("default", "unrelated", "all_creep", "dense_forest", "subsidence")
DEFAULT_MODELS = ("logistic_regression", "random_forest", "lightgbm")
PERIOD_ASSETS = ("deformation_rate", "environment_factors", "factor_stack", "positive_samples", "negative_samples",
                 "trained_models", "model_comparison")
AREA_SAMPLE = 20_000


def materialize_setting(data: Path, home: Path, area: str, models: list[str], seed: int,
                        max_per_class: int) -> tuple[str, dict]:
    """Register and materialize ``area`` and its first period up to model_comparison; (period, seconds)."""
    import dagster as dg

    from lsm_assets.definitions import defs
    from lsm_assets.materialize import run_partition
    from lsm_assets.partitions import area_period_key
    from lsm_assets.registry import register

    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    run_config = {**quiet, "ops": {"trained_models": {"config": {"models": models, "max_samples_per_class": max_per_class,
                                                        "seed": seed}},
                          # the study compares insar_pu with its ablation: pu runs beside it
                          "negative_samples": {"config": {"seed": seed, "pu_ablation": True}},
                          "model_comparison": {"config": {"seed": seed}}}}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        reg = register(instance, data)
        period = sorted(p for a, p in reg.pairs if a == area)[0]
        seconds = {}
        for key, cfg, sel in ((area, quiet, None), (str(area_period_key(area, period)), run_config, PERIOD_ASSETS)):
            out = run_partition(defs, instance, data, key, cfg, selection=sel)
            if not out.success:
                raise RuntimeError(f"{key}: {out.error}")
            seconds[key] = round(out.seconds, 1)
    return period, seconds


def score_setting(data: Path, area: str, period: str, seed: int, work: Path) -> tuple[list[dict], str]:
    """The study's rows for one materialized setting, and the model the yardstick picks across strategies."""
    import json as _json

    import numpy as np
    import pandas as pd
    from rasterio import features

    from lsm_core import evaluation, predict, prone, sampling, threshold
    from lsm_core.area import load_area, period_bounds
    from lsm_core.experiment import prediction_rate_auc
    from lsm_core.inventory import events_after, read_inventory
    from lsm_core.io import RasterFile, read_raster
    from lsm_core.models import load_model
    from lsm_core.synthetic.scoring import negatives_against_truth, truth_auc

    wh = data / "warehouse"
    cfg = load_area(data / "study_areas" / area)
    truth = cfg.folder / "truth"
    hazard, unstable = read_raster(truth / "hazard.tif")[0], read_raster(truth / "unstable.tif")[0]
    stack = RasterFile(wh / "factor_stack" / area / f"{period}.tif")
    trained = pd.read_parquet(wh / "trained_models" / area / f"{period}.parquet")
    comparison = pd.read_parquet(wh / "model_comparison" / area / f"{period}.parquet").set_index(["strategy", "model"])
    pos = pd.read_parquet(wh / "positive_samples" / area / f"{period}.parquet")
    neg = pd.read_parquet(wh / "negative_samples" / area / f"{period}.parquet")
    _, end = period_bounds(period)
    inventory = read_inventory(cfg.layers["inventory"], cfg.grid)
    later = events_after(inventory, end)
    later_mask = (features.rasterize([(g, 1) for g in later.geometry], out_shape=cfg.grid.shape,
                                     transform=cfg.grid.affine).astype(bool) if len(later)
                  else np.zeros(cfg.grid.shape, bool))
    area_px = sampling.random_negatives(stack, inventory.iloc[:0], AREA_SAMPLE, seed=seed + 101)
    area_h = hazard[area_px["row"].to_numpy(), area_px["col"].to_numpy()]
    # the pipeline's common-fold yardstick, where the pipeline has it (trained_models or model_comparison)
    yard_col = trained.set_index(["strategy", "model"])["yardstick_auc"] if "yardstick_auc" in trained.columns else (
        comparison["yardstick_auc"] if "yardstick_auc" in comparison.columns else None)
    if "cv_fold" in neg.columns:  # the per-fold PU draws only score the spatial CV; the strategy's own draw trains
        neg = neg[neg["cv_fold"] < 0]
    neg_truth = {s: negatives_against_truth(d["row"], d["col"], hazard, unstable, later_mask)
                 for s, d in neg.groupby("strategy")}
    rows = []
    for _, r in trained.iterrows():
        model, meta = load_model(data / r["model_path"])
        scores = model.predict_proba(area_px[meta["feature_names"]])[:, 1]
        if yard_col is not None:
            yard, source = float(yard_col.loc[(r["strategy"], r["model"])]), "pipeline"
        else:
            y, p = np.asarray(_json.loads(r["test_y"])), np.asarray(_json.loads(r["test_proba"]))
            yard, source = prediction_rate_auc(p[y == 1], scores), "study: own test-split landslides vs area sample"
        nt = neg_truth[r["strategy"]]
        rows.append({"strategy": r["strategy"], "model": r["model"], "truth_auc": round(truth_auc(scores, area_h), 4),
                     "prediction_rate_auc": round(float(comparison.loc[(r["strategy"], r["model"]),
                                                                       "prediction_rate_auc"]), 4),
                     "yardstick_auc": round(yard, 4), "yardstick_source": source,
                     "yardstick_auc_without_velocity": round(float(r.get("yardstick_auc_without_velocity",
                                                                         float("nan"))), 4),
                     "spatial_cv_auc_own_negatives": round(float(r["spatial_cv_auc"]), 4),
                     "map_choice": r.get("map_choice", None),
                     "neg_mean_true_hazard": round(nt["mean_true_hazard"], 4),
                     "neg_share_unstable": round(nt["share_unstable"], 4),
                     "neg_share_in_later_failures": round(nt["share_in_later_failures"], 4),
                     "model_path": r["model_path"]})
    table = pd.DataFrame(rows).assign(best_of_strategy=False)
    names = stack.names
    weights = threshold.factor_weights("equal", names)
    for strategy, group in table.groupby("strategy"):
        best = group.sort_values(["yardstick_auc", "model"], ascending=[False, True]).index[0]
        model, meta = load_model(data / table.loc[best, "model_path"])
        out = work / f"map_{strategy}.tif"
        predict.predict_map(model, stack.path, out, feature_names=meta["feature_names"], scheduler_address="serial")
        curve = threshold.js_threshold_for_rasters(out, stack.path, pos[names].to_numpy(), factor_names=names,
                                                   weights=weights, thresholds_pct=np.arange(1.0, 100.0))
        t = float(curve.t_star_pct) / 100.0
        mask = work / f"prone_{strategy}.tif"
        prone.prone_areas(out, t, mask, mask.with_suffix(".gpkg"))
        rate = evaluation.prediction_rate_curve(out, later)
        ev = {e["threshold_name"]: e for e in evaluation.evaluate_thresholds(
            out, t, mask, pos["row"], pos["col"], later, comparison_dir=work, stem=strategy, prediction_rate=rate)}
        adaptive, fifty = ev["adaptive_js"], ev.get("fixed_50")
        table.loc[best, "best_of_strategy"] = True
        table.loc[best, ["t_star", "TA", "POR", "prone_share"]] = [round(t, 2), round(adaptive["TA"], 4),
                                                                   round(adaptive["POR"], 4),
                                                                   round(adaptive["prone_share"], 4)]
        if fifty is not None:
            table.loc[best, ["TA_50", "POR_50", "prone_share_50"]] = [round(fifty["TA"], 4), round(fifty["POR"], 4),
                                                                      round(fifty["prone_share"], 4)]
    # the pipeline's own choice of map model where it records one (map_choice), else the best yardstick here
    chosen = table[table["map_choice"] == "selected"] if table["map_choice"].notna().any() else table.iloc[:0]
    pick = (chosen if len(chosen) else
            table.sort_values(["yardstick_auc", "strategy", "model"], ascending=[False, True, True])).iloc[0]
    table = table.drop(columns="model_path")
    clean = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
             for row in table.to_dict("records")]
    return clean, f"{pick['strategy']}/{pick['model']}"


def run_setting(name: str, area: str, scale: float, seed: int, models: list[str], max_per_class: int,
                base: str) -> dict:
    """Generate, materialize and score one knob setting in its own folder under ``base``."""
    from threadpoolctl import threadpool_limits

    from lsm_core.synthetic import WorldKnobs, generate_area

    threadpool_limits(1)
    t0 = time.perf_counter()
    knobs = WorldKnobs.from_dict(SETTINGS[name])
    folder = Path(base) / f"{name}_seed{seed}"
    data, home, work = folder / "data", folder / "dagster_home", folder / "maps"
    for p in (home, work):
        p.mkdir(parents=True, exist_ok=True)
    generate_area(area, data, seed=seed, scale=scale, knobs=knobs)
    period, seconds = materialize_setting(data, home, area, models, seed, max_per_class)
    rows, selected = score_setting(data, area, period, seed, work)
    return {"name": name, "knobs": knobs.as_dict(), "changed": SETTINGS[name], "area": area, "period": period,
            "scale": scale, "seed": seed, "selected": selected, "run_seconds": seconds,
            "seconds": round(time.perf_counter() - t0, 1), "rows": rows}


def run_setting_or_error(name: str, area: str, scale: float, seed: int, models: list[str], max_per_class: int,
                         base: str) -> dict:
    """``run_setting``, or the setting with the error that stopped it (the other runs still report)."""
    try:
        return run_setting(name, area, scale, seed, models, max_per_class, base)
    except Exception as exc:  # a study reports every run it could make; the failure is printed with it
        return {"name": name, "seed": seed, "knobs": SETTINGS[name], "changed": SETTINGS[name], "area": area,
                "scale": scale, "error": f"{type(exc).__name__}: {exc}"[:2000], "rows": []}


COLUMNS = ["strategy", "model", "truth_auc", "prediction_rate_auc", "yardstick_auc", "yardstick_auc_without_velocity",
           "spatial_cv_auc_own_negatives",
           "neg_mean_true_hazard", "neg_share_in_later_failures", "t_star", "TA", "POR", "prone_share", "POR_50"]


SUMMARY = ["truth_auc", "prediction_rate_auc", "yardstick_auc", "spatial_cv_auc_own_negatives", "neg_mean_true_hazard",
           "neg_share_in_later_failures"]
BEST = ["truth_auc", "yardstick_auc", "t_star", "TA", "POR", "prone_share", "POR_50"]


def summary(results: list[dict]) -> list[dict]:
    """Per setting and strategy, means over seeds: of every model (``SUMMARY``) and of the strategy's best (``BEST``)."""
    import numpy as np
    import pandas as pd

    out = []
    frames = [pd.DataFrame(r["rows"]).assign(setting=r["name"], seed=r["seed"]) for r in results]
    df = pd.concat(frames, ignore_index=True)
    for (setting, strategy), g in df.groupby(["setting", "strategy"], sort=False):
        best = g[g["best_of_strategy"]]
        row = {"setting": setting, "strategy": strategy, "seeds": int(g["seed"].nunique()),
               **{f"{c}_mean": round(float(g[c].mean()), 4) for c in SUMMARY},
               "truth_auc_sd_over_seeds": round(float(g.groupby("seed")["truth_auc"].mean().std(ddof=1)), 4)
               if g["seed"].nunique() > 1 else None,
               **{f"best_{c}": round(float(best[c].astype(float).mean()), 4) for c in BEST}}
        out.append({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
    return out


def gains(results: list[dict]) -> list[dict]:
    """Per setting, differences of mean truth AUC (over models) between strategies, per seed and their mean:
    ``velocity_pool`` = insar_pu - pu (what the InSAR pool adds), ``pu_learning`` = pu - random (what PU adds)."""
    import numpy as np
    import pandas as pd

    out = []
    for name in dict.fromkeys(r["name"] for r in results if "error" not in r):
        per_seed = []
        for r in results:
            if r["name"] == name and "error" not in r:
                m = pd.DataFrame(r["rows"]).groupby("strategy")["truth_auc"].mean()
                per_seed.append({"velocity_pool": m.get("insar_pu", np.nan) - m.get("pu", np.nan),
                                 "pu_learning": m.get("pu", np.nan) - m.get("random", np.nan),
                                 "insar_pu_vs_random": m.get("insar_pu", np.nan) - m.get("random", np.nan)})
        df = pd.DataFrame(per_seed)
        out.append({"setting": name, **{f"{c}": round(float(df[c].mean()), 4) for c in df.columns},
                    **{f"{c}_per_seed": [round(float(v), 4) for v in df[c]] for c in df.columns}})
    return out


def markdown_summary(rows: list[dict], results: list[dict]) -> str:
    """The study in one table: per setting and strategy, means over models and seeds, and of the best maps."""
    import pandas as pd

    picks: dict[str, list[str]] = {}
    for r in results:
        if "error" not in r:
            picks.setdefault(r["name"], []).append(r["selected"])
    df = pd.DataFrame(rows)
    text = df.drop(columns=["seeds"]).to_markdown(index=False, floatfmt=".3f")
    return (text + "\n\nYardstick's pick across strategies (per seed): "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in picks.items()) + "\n")


def markdown(result: dict) -> str:
    """One setting's table (best model of each strategy marked *)."""
    import pandas as pd

    df = pd.DataFrame(result["rows"])
    df["model"] = [m + (" *" if b else "") for m, b in zip(df["model"], df["best_of_strategy"], strict=True)]
    cols = [c for c in COLUMNS if c in df.columns]
    head = (f"### {result['name']} ({result['area']} {result['period']}, scale {result['scale']}, "
            f"seed {result['seed']}, knobs changed: {json.dumps(result['changed']) if result['changed'] else 'none'})"
            "\n\n"
            f"Yardstick picks: {result['selected']}; {result['seconds']} s\n\n")
    return head + df[cols].to_markdown(index=False, floatfmt=".3f") + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=sorted(SETTINGS))
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--area", default="karst", choices=["karst", "loess"])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--max-per-class", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="World and pipeline seeds (each setting "
                    "runs once per seed; the summary averages over them).")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="Keep the data roots here (default: a temp folder).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="study_strategies_"))
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(s, args.area, args.scale, seed, args.models, args.max_per_class, str(base))
            for s in args.settings for seed in args.seeds]
    if args.workers <= 1:
        results = [run_setting_or_error(*j) for j in jobs]
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(run_setting_or_error, *zip(*jobs, strict=True)))
    for r in results:
        print(f"### {r['name']} seed {r['seed']} FAILED: {r['error']}\n" if "error" in r else markdown(r))
    summ = summary([r for r in results if "error" not in r])
    gain = gains(results)
    print("### Summary: means over models and seeds; best_*: the best model of each strategy by the yardstick\n")
    print(markdown_summary(summ, results))
    print("### Truth-AUC differences (means over models; per seed in brackets)\n")
    import pandas as pd

    print(pd.DataFrame([{"setting": g["setting"], **{k: f"{g[k]:+.3f} {g[k + '_per_seed']}" for k in
                                                     ("velocity_pool", "pu_learning", "insar_pu_vs_random")}}
                        for g in gain]).to_markdown(index=False) + "\n")
    print(f"total {time.perf_counter() - t0:.0f} s, data roots under {base}")
    if args.json:
        print(json.dumps({"settings": results, "summary": summ, "gains": gain,
                          "seconds": round(time.perf_counter() - t0, 1)},
                         default=float))


if __name__ == "__main__":
    main()
