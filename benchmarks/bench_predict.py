"""Benchmark the windowed Dask susceptibility map against the in-memory prediction, at two scales.

    python benchmarks/bench_predict.py [--scale 10] [--small-scale 2] [--block 512] [--factors 15] [--seed 0]

Builds a synthetic stack of about ``scale`` x 1.2 million pixels x ``factors`` bands (smooth random
fields, one categorical band, nodata outside an ellipse) as a tiled uncompressed float32 GeoTIFF,
strip by strip, trains a small LightGBM on 5,000 sampled pixels, then runs each path in its own
child process: ``predict_map`` on the LocalCluster it would start by default (``local_cluster``:
one worker process per core, 1 thread each), started first so ``windowed_s`` is the prediction
and ``windowed_cold_s`` adds start-up and shutdown; and ``predict_in_memory`` (whole stack read at
once; LightGBM uses every core via OpenMP). Both write the same COG, and the times include it.
Peak memory is the largest sum of RSS over the child's process tree (driver + Dask workers),
sampled every 20 ms; shared libraries count once per process, so it overstates a little. Pixels
per second count every grid pixel (nodata included). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# keep this module's top level light: Dask's spawned workers re-import it as __mp_main__
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NAMES = ["lithology", "slope_deg", "aspect_deg", "plan_curvature", "profile_curvature", "relief_m", "twi",
         "dist_faults", "dist_valleys", "dist_roads", "dist_buildings", "dist_mining", "rainfall_mm", "ndvi_mean",
         "deformation_mm_yr", "factor_16", "factor_17", "factor_18", "factor_19", "factor_20"]


def build_stack(path: Path, scale: float, n_factors: int, block: int, seed: int) -> int:
    """Write the synthetic stack strip by strip (memory ~ one strip); returns the pixel count."""
    import numpy as np
    import rasterio

    side = int(round((scale * 1.2e6) ** 0.5))
    profile = dict(driver="GTiff", width=side, height=side, count=n_factors, dtype="float32", crs="EPSG:32647",
                   transform=rasterio.Affine(30, 0, 500000, 0, -30, 4000000), nodata=np.nan, tiled=True,
                   blockxsize=block, blockysize=block, interleave="band")
    rng = np.random.default_rng(seed)
    with rasterio.open(path, "w", **profile) as dst:
        for i, name in enumerate(NAMES[:n_factors], start=1):
            dst.set_band_description(i, name)
        dst.update_tags(categorical="lithology")
        x = (np.arange(side, dtype=np.float32) + 0.5) / side
        for r0 in range(0, side, block):
            y = ((np.arange(r0, min(r0 + block, side), dtype=np.float32) + 0.5) / side)[:, None]
            strip = np.empty((n_factors, len(y), side), np.float32)
            strip[0] = (np.floor((np.sin(7 * x) + np.cos(5 * y) + 2) * 2) % 8) + 1
            for i in range(1, n_factors):
                strip[i] = (np.sin((i + 1) * 2.1 * x + i) * np.cos((i + 2) * 1.7 * y) * (i + 1)
                            + rng.standard_normal(strip[i].shape, np.float32) * 0.5 + i * 10)
            strip[:, (x - 0.5) ** 2 / 0.25 + (y - 0.5) ** 2 / 0.2 > 1] = np.nan  # nodata outside an ellipse
            dst.write(strip, window=rasterio.windows.Window(0, r0, side, len(y)))
    return side * side


def train_model(stack: Path, model_path: Path, seed: int) -> None:
    """LightGBM (100 trees) on 5,000 valid pixels labelled by a noisy logistic function of 4 factors."""
    import pickle

    import numpy as np
    import pandas as pd
    from lightgbm import LGBMClassifier

    from lsm_core.io import RasterFile
    from lsm_core.stack import sample_valid_pixels

    f = RasterFile(stack)
    X = pd.DataFrame(sample_valid_pixels(f, 5000, seed=seed), columns=f.names)
    rng = np.random.default_rng(seed)
    lin = (0.8 * (X.lithology >= 6) + (X.slope_deg - 10) / 2 - (X.aspect_deg - 20) / 3 + (X.twi - 60) / 6
           + rng.normal(0, 0.7, len(X)))
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-lin))).astype(int)
    model = LGBMClassifier(n_estimators=100, num_leaves=31, learning_rate=0.05, verbose=-1).fit(X, y)
    model_path.write_bytes(pickle.dumps(model))


def _warm() -> None:
    """Import what a window task needs, on a worker (startup cost, timed apart from the prediction)."""
    import lightgbm  # noqa: F401

    import lsm_core.predict  # noqa: F401


def child(mode: str, stack: str, model_path: str, out: str, block: int) -> None:
    """Run one path in this (child) process and print its timings in seconds as JSON."""
    import pickle

    from lsm_core.predict import local_cluster, predict_in_memory, predict_map

    model = pickle.loads(Path(model_path).read_bytes())
    start = time.perf_counter()
    if mode == "inmemory":
        predict_in_memory(model, stack, out)
        print(json.dumps({"seconds": time.perf_counter() - start}))
        return
    from distributed import Client

    # the cluster predict_map would start, started here so its start-up is timed apart
    with local_cluster() as cluster, Client(cluster, set_as_default=False) as client:
        client.run(_warm)
        startup = time.perf_counter() - start
        info = predict_map(model, stack, out, block=block, scheduler_address=cluster.scheduler_address)
    print(json.dumps({"seconds": info.seconds, "startup_s": startup, "cold_s": time.perf_counter() - start,
                      "valid_pixels": info.valid_pixels, "peak_in_flight": info.peak_in_flight}))


def run_measured(mode: str, stack: Path, model_path: Path, out: Path, block: int) -> dict:
    """Run a child and sample its process tree's total RSS until it exits; returns seconds and peak MB."""
    import psutil

    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, "--stack", str(stack), "--model",
                             str(model_path), "--out", str(out), "--block", str(block)], stdout=subprocess.PIPE)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            total = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.Error:  # a process exited between listing and reading it
                pass
            peak = max(peak, total)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{mode} child failed with exit code {proc.returncode}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    return {**result, "peak_mb": peak / 2**20}


def same_rasters(a: Path, b: Path, block: int) -> bool:
    """True when two single-band rasters are equal pixel for pixel (NaN == NaN), read window by window."""
    import numpy as np

    from lsm_core.io import RasterFile

    fa, fb = RasterFile(a), RasterFile(b)
    return all(np.array_equal(fa.read(w.write), fb.read(w.write), equal_nan=True) for w in fa.grid.windows(block))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=10, help="millions of pixels / 1.2 (10 = ~12 M pixels)")
    ap.add_argument("--small-scale", type=float, default=2, help="the smaller scale, to show flat windowed memory")
    ap.add_argument("--block", type=int, default=512, help="window and tile size (pixels)")
    ap.add_argument("--factors", type=int, default=15, choices=range(5, len(NAMES) + 1), metavar="5..20")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", choices=["windowed", "inmemory"], help=argparse.SUPPRESS)
    ap.add_argument("--stack", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.stack, args.model, args.out, args.block)

    t0 = time.perf_counter()
    runs: dict[float, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp = Path(tmp)
        scales = sorted({args.small_scale, args.scale})
        stacks = {s: tmp / f"stack_{s:g}.tif" for s in scales}
        pixels = {s: build_stack(stacks[s], s, args.factors, args.block, args.seed) for s in scales}
        build_s = time.perf_counter() - t0
        model_path = tmp / "model.pkl"
        train_model(stacks[scales[0]], model_path, args.seed)
        for s in scales:
            win = run_measured("windowed", stacks[s], model_path, tmp / f"win_{s:g}.tif", args.block)
            mem = run_measured("inmemory", stacks[s], model_path, tmp / f"mem_{s:g}.tif", args.block)
            runs[s] = {"windowed": win, "inmemory": mem,
                       "identical": same_rasters(tmp / f"win_{s:g}.tif", tmp / f"mem_{s:g}.tif", args.block)}
            os.unlink(tmp / f"win_{s:g}.tif"), os.unlink(tmp / f"mem_{s:g}.tif")
    big, n = runs[args.scale], pixels[args.scale]
    print(json.dumps({
        "scale": args.scale, "block": args.block, "factors": args.factors, "pixels": n,
        "valid_pixels": big["windowed"]["valid_pixels"], "model": "LGBMClassifier(100 trees, 31 leaves)",
        "workers": len(os.sched_getaffinity(0)), "max_in_flight": big["windowed"]["peak_in_flight"],
        "windowed_s": round(big["windowed"]["seconds"], 2), "inmemory_s": round(big["inmemory"]["seconds"], 2),
        "windowed_startup_s": round(big["windowed"]["startup_s"], 2),
        "windowed_cold_s": round(big["windowed"]["cold_s"], 2),
        "windowed_px_per_s": round(n / big["windowed"]["seconds"]),
        "inmemory_px_per_s": round(n / big["inmemory"]["seconds"]),
        "windowed_cold_px_per_s": round(n / big["windowed"]["cold_s"]),
        "windowed_peak_mb": round(big["windowed"]["peak_mb"]), "inmemory_peak_mb": round(big["inmemory"]["peak_mb"]),
        "pixels_by_scale": {f"{s:g}": pixels[s] for s in scales},
        "windowed_peak_mb_by_scale": {f"{s:g}": round(runs[s]["windowed"]["peak_mb"]) for s in scales},
        "inmemory_peak_mb_by_scale": {f"{s:g}": round(runs[s]["inmemory"]["peak_mb"]) for s in scales},
        "windowed_s_by_scale": {f"{s:g}": round(runs[s]["windowed"]["seconds"], 2) for s in scales},
        "identical_to_inmemory": all(r["identical"] for r in runs.values()),
        "stack_build_s": round(build_s, 1), "total_s": round(time.perf_counter() - t0, 1),
    }))


if __name__ == "__main__":
    main()
