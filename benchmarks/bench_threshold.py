"""Benchmark the one-pass JS threshold curve against the naive per-threshold loop and a plain read pass.

    python benchmarks/bench_threshold.py [--pixels 4000000] [--factors 12] [--seed 0]

Builds a synthetic factor stack (two categorical factors, the rest continuous, nodata outside an
irregular study-area boundary plus nodata speckles) with a probability raster, writes it as one
tiled, uncompressed float32 GeoTIFF (or a .npy file with ``--format npy``), then times, on a warm
page cache (best of ``--repeat``):

- ``read_pass_s``: read every block of the file (all bands) and sum it - the I/O floor;
- ``fast_s``: what the ``js_threshold`` asset does, I/O included: one pass with
  ``JSHistogramAccumulator`` over the file, the bins coming from the band ranges and class codes
  that ``build_factor_stack`` records while writing the stack (``band_stats``);
  ``fast_with_range_pass_s`` adds the extra range pass (``FactorBins.from_blocks``) needed for a
  stack written without those statistics;
- ``naive_s``: the reference of the test suite (mask p >= t/100 and histogram every factor, once
  per threshold) on arrays already in memory with the same bins, so it is pure computation.

Prints one JSON object. Every time is given as wall-clock seconds (``*_s``) and as CPU seconds of
this process (``*_cpu_s``); on a shared machine under load the CPU figures are the steadier ones.
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

import numpy as np
import rasterio
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsm_assets_tests.lsm_core.test_threshold import naive_js_curve  # noqa: E402  (the single naive copy)
from lsm_core.grid import iter_blocks  # noqa: E402
from lsm_core.threshold import FactorBins, JSHistogramAccumulator  # noqa: E402

LITHOLOGY = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
LANDCOVER = [10.0, 20.0, 30.0, 40.0, 50.0]


def build_stack(pixels: int, n_factors: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[int, list[float]]]:
    """(bands x rows x cols float32: factors then probability, positive mask, class codes per categorical band)."""
    rng = np.random.default_rng(seed)
    side = math.isqrt(pixels - 1) + 1
    rows, cols = side, -(-pixels // side)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    y /= rows
    x /= cols
    stack = np.empty((n_factors + 1, rows, cols), np.float32)
    stack[0] = np.asarray(LITHOLOGY, np.float32)[((np.sin(7 * x) + np.cos(5 * y) + 2) * 2.2).astype(int) % 9]
    stack[1] = rng.choice(np.asarray(LANDCOVER, np.float32), size=(rows, cols))
    for i in range(2, n_factors):
        trend = np.sin((i + 1) * 3.1 * x + i) * np.cos((i + 2) * 2.3 * y)
        stack[i] = trend * (i + 1) + rng.standard_normal((rows, cols), np.float32) * 0.5 + i * 10
    lin = (0.8 * (stack[0] >= 6) + 0.3 * (stack[1] == 30) + (stack[2] - 20) / 3 - (stack[3] - 30) / 4
           + rng.standard_normal((rows, cols), np.float32) * 0.7)
    stack[n_factors] = 1 / (1 + np.exp(-lin))
    # nodata outside an irregular boundary, and speckles of nodata in one factor
    r = np.hypot(x - 0.5, y - 0.5)
    outside = r > 0.52 + 0.05 * np.sin(9 * np.arctan2(y - 0.5, x - 0.5))
    stack[:, outside] = np.nan
    stack[n_factors - 1][rng.random((rows, cols)) < 0.001] = np.nan
    p = np.nan_to_num(stack[n_factors])
    positive = rng.random((rows, cols)) < 0.01 * p**3
    return stack, positive, {0: LITHOLOGY, 1: LANDCOVER}  # codes given, as area.yaml declares them


def write_stack(stack: np.ndarray, folder: Path, fmt: str) -> Path:
    """Write the stack as a tiled float32 GeoTIFF (no compression) or a .npy file."""
    if fmt == "npy":
        path = folder / "stack.npy"
        np.save(path, stack)
        return path
    path = folder / "stack.tif"
    profile = dict(driver="GTiff", width=stack.shape[2], height=stack.shape[1], count=stack.shape[0],
                   dtype="float32", crs="EPSG:32647", transform=rasterio.Affine(30, 0, 500000, 0, -30, 4000000),
                   nodata=np.nan, tiled=True, blockxsize=512, blockysize=512, interleave="band")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(stack)
    return path


class Reader:
    """Block reads (all bands, bands x rows x cols) from the GeoTIFF or the .npy memmap."""

    def __init__(self, path: Path):
        self.path = path
        if path.suffix == ".npy":
            self.arr = np.load(path, mmap_mode="r")
            self.shape = self.arr.shape[1:]
        else:
            self.ds = rasterio.open(path)
            self.shape = (self.ds.height, self.ds.width)

    def read(self, w: Window, bands: list[int] | None = None) -> np.ndarray:
        if self.path.suffix == ".npy":
            sl = (slice(None) if bands is None else bands, slice(w.row_off, w.row_off + w.height),
                  slice(w.col_off, w.col_off + w.width))
            return np.array(self.arr[sl])
        return self.ds.read(None if bands is None else [b + 1 for b in bands], window=w)

    def windows(self, block: int) -> list[Window]:
        return [b.write for b in iter_blocks(*self.shape, block)]


def read_pass(reader: Reader, block: int) -> float:
    total = 0.0
    for w in reader.windows(block):
        total += float(reader.read(w).sum())  # a plain sum: NaN propagates, every value is touched
    return total


class Clock:
    """Wall-clock and CPU seconds of this process; CPU time is the robust figure on a shared, loaded machine."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def fast(reader: Reader, positive: np.ndarray, n_factors: int, categorical: dict[int, list[float]], block: int,
         n_bins: int) -> tuple:
    """Range pass then histogram pass over the file; returns curve, bins and the two (wall, cpu) laps."""
    clock, wins = Clock(), reader.windows(block)
    bins = FactorBins.from_blocks(((reader.read(w, list(range(n_factors))), None) for w in wins),
                                  categorical=categorical, n_bins=n_bins)
    bins_lap = clock.lap()
    acc = JSHistogramAccumulator(bins)
    for w in wins:
        blk = reader.read(w)
        rs, cs = slice(w.row_off, w.row_off + w.height), slice(w.col_off, w.col_off + w.width)
        acc.update(blk[n_factors], blk[:n_factors], None, positive[rs, cs])
    curve = acc.curve()
    return curve, bins, bins_lap, clock.lap()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=4_000_000)
    ap.add_argument("--factors", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bins", type=int, default=32)
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--format", choices=["tif", "npy"], default="tif")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the read pass and the fast run")
    a = ap.parse_args(argv)
    if a.factors < 4:
        ap.error("--factors must be >= 4")

    stack, positive, categorical = build_stack(a.pixels, a.factors, a.seed)
    with tempfile.TemporaryDirectory(prefix="bench_threshold_") as tmp:
        path = write_stack(stack, Path(tmp), a.format)
        del stack
        reader = Reader(path)
        read_pass(reader, a.block)  # warm the page cache so every timing below reads from memory
        reads = []
        for _ in range(a.repeat):
            clock = Clock()
            read_pass(reader, a.block)
            reads.append(clock.lap())
        runs = [fast(reader, positive, a.factors, categorical, a.block, a.bins) for _ in range(a.repeat)]
        curve, bins = runs[0][0], runs[0][1]
        full = reader.read(Window(0, 0, reader.shape[1], reader.shape[0]))
    factors, prob = full[: a.factors], full[a.factors]
    clock = Clock()
    d_naive, _, above_naive = naive_js_curve(prob, factors, positive, bins)
    naive_s, naive_cpu_s = clock.lap()
    read_s, read_cpu_s = min(r[0] for r in reads), min(r[1] for r in reads)
    fast_s, fast_cpu_s = min(r[2][0] + r[3][0] for r in runs), min(r[2][1] + r[3][1] for r in runs)
    fast_bins_s, fast_hist_s = min(r[2][0] for r in runs), min(r[3][0] for r in runs)
    fast_hist_cpu_s = min(r[3][1] for r in runs)
    valid = np.isfinite(prob) & np.isfinite(factors).all(axis=0)

    result = {
        "pixels": int(prob.size),
        "rows": int(prob.shape[0]),
        "cols": int(prob.shape[1]),
        "factors": a.factors,
        "categorical": len(categorical),
        "valid_pixels": int(valid.sum()),
        "positive_pixels": curve.n_positive,
        "thresholds": int(curve.thresholds_pct.size),
        "bins": a.bins,
        "format": a.format,
        "block": a.block,
        "naive_s": round(naive_s, 3),
        "fast_s": round(fast_hist_s, 3),
        "fast_with_range_pass_s": round(fast_s, 3),
        "range_pass_s": round(fast_bins_s, 3),
        "speedup": round(naive_s / fast_hist_s, 1),
        "speedup_with_range_pass": round(naive_s / fast_s, 1),
        "max_abs_diff": float(np.nanmax(np.abs(d_naive - curve.d))),
        "same_skipped_thresholds": bool(np.array_equal(np.isnan(d_naive), np.isnan(curve.d))),
        "same_pixel_counts": bool(np.array_equal(above_naive, curve.n_pixels_above)),
        "argmin_naive": float(curve.thresholds_pct[int(np.nanargmin(d_naive))]),
        "argmin_fast": curve.t_star_pct,
        "read_pass_s": round(read_s, 3),
        "x_read_pass": round(fast_hist_s / read_s, 2),
        "x_read_pass_with_range_pass": round(fast_s / read_s, 2),
        "naive_cpu_s": round(naive_cpu_s, 3),
        "fast_cpu_s": round(fast_hist_cpu_s, 3),
        "fast_with_range_pass_cpu_s": round(fast_cpu_s, 3),
        "read_pass_cpu_s": round(read_cpu_s, 3),
        "speedup_cpu": round(naive_cpu_s / fast_hist_cpu_s, 1),
        "speedup_cpu_with_range_pass": round(naive_cpu_s / fast_cpu_s, 1),
        "x_read_pass_cpu": round(fast_hist_cpu_s / read_cpu_s, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
