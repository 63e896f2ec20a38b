"""Benchmark ``lsm_core.prone.natural_breaks`` (hand-written Fisher-Jenks) against ``mapclassify.FisherJenks``.

    python benchmarks/bench_jenks.py [--sizes 1000 5000] [--k 5] [--repeat 3] [--seed 0]

Input: a probability-like sample (0..1) shaped as a susceptibility map's (mostly low values, a
tail of high ones), with the ties a float32 raster has. ``5000`` is the sample size the
contingency table and the comparison thresholds use. Both classifications are exact dynamic
programmes, so they should find partitions with the same within-class sum of squares; the
benchmark checks that (``ssd_ratio``) and the share of values that land in the same class.
Each call runs in a fresh child process after a warm-up call (``_measure``): time is the best of
``--repeat``, memory the peak RSS rise. ``cold_first_call_s`` is the first call in a fresh
interpreter that has already imported ``lsm_core.prone`` (as a Dagster step process has), so it
includes importing mapclassify, which compiles its numba kernel eagerly at import. Prints one
JSON object; ratios are library / ours (> 1: ours is faster or smaller).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _measure import measure  # noqa: E402

from lsm_core.prone import classify, natural_breaks  # noqa: E402


def susceptibility_sample(n: int, seed: int) -> np.ndarray:
    """``n`` probabilities (0..1) rounded to float32, skewed low as a susceptibility map is."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.beta(1.2, 6.0, size=n - n // 5), rng.beta(5.0, 2.0, size=n // 5)])
    return p.astype(np.float32).astype(np.float64)


def ours(values: np.ndarray, k: int) -> np.ndarray:
    return classify(values, natural_breaks(values, k, sample=len(values)))


def library(values: np.ndarray, k: int) -> np.ndarray:
    import mapclassify

    return mapclassify.FisherJenks(values, k=k).yb.astype(np.uint8) + 1


def within_ssd(values: np.ndarray, classes: np.ndarray) -> float:
    """Within-class sum of squares (the Fisher-Jenks objective, units of values squared)."""
    return float(sum(((values[classes == c] - values[classes == c].mean()) ** 2).sum() for c in np.unique(classes)))


COLD = """
import sys, time
sys.path.insert(0, {bench!r})
import numpy as np
import lsm_core.prone
from bench_jenks import library, ours, susceptibility_sample
v = susceptibility_sample({n}, {seed})
t0 = time.perf_counter()
{fn}(v, {k})
print(time.perf_counter() - t0)
"""


def cold_first_call(fn: str, n: int, k: int, seed: int) -> float:
    """Seconds of the first ``fn`` call in a fresh interpreter (imports of the library included)."""
    code = COLD.format(bench=str(ROOT / "benchmarks"), n=n, seed=seed, fn=fn, k=k)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    warm = susceptibility_sample(200, args.seed)
    rows = []
    for n in args.sizes:
        v = susceptibility_sample(n, args.seed)
        t_ours, m_ours, c_ours = measure(ours, v, args.k, warm_args=(warm, args.k), repeat=args.repeat)
        t_lib, m_lib, c_lib = measure(library, v, args.k, warm_args=(warm, args.k), repeat=args.repeat)
        ssd_ours, ssd_lib = within_ssd(v, c_ours), within_ssd(v, c_lib)
        rows.append({"n_values": n, "n_distinct": int(np.unique(v).size), "ours_s": round(t_ours, 4),
                     "mapclassify_s": round(t_lib, 4), "time_ratio_lib_over_ours": round(t_lib / t_ours, 3),
                     "ours_peak_mb": round(m_ours, 2), "mapclassify_peak_mb": round(m_lib, 2),
                     "same_class_share": float(np.mean(c_ours == c_lib)),
                     "ssd_ratio_ours_over_lib": ssd_ours / ssd_lib})
    n = args.sizes[-1]
    cold_ours = min(cold_first_call("ours", n, args.k, args.seed) for _ in range(args.repeat))
    cold_lib = min(cold_first_call("library", n, args.k, args.seed) for _ in range(args.repeat))
    import mapclassify

    print(json.dumps({"benchmark": "natural_breaks_vs_mapclassify", "mapclassify": mapclassify.__version__,
                      "k": args.k, "runs": rows,
                      "cold_first_call": {"n_values": n, "ours_s": round(cold_ours, 3), "mapclassify_s": round(cold_lib, 3),
                                          "time_ratio_lib_over_ours": round(cold_lib / cold_ours, 2)}}))


if __name__ == "__main__":
    main()
