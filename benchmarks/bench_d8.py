"""Benchmark ``lsm_core.hydrology`` D8 priority-flood routing against ``pysheds`` (speed, memory, agreement).

    python benchmarks/bench_d8.py [--sizes 500 1000] [--repeat 2] [--seed 0]

Input: a synthetic DEM (m, 10 m pixels): a tilted plane plus smoothed noise at two scales, with
closed depressions and a flat-floored pit, the cases a conditioned DEM has. Timed pieces:

- ``ours``: ``route_d8`` (Priority-Flood+epsilon fill and D8 directions in one pass) and
  ``accumulate``;
- ``pysheds``: the pysheds recipe for the same result: ``fill_pits``, ``fill_depressions``,
  ``resolve_flats``, ``flowdir`` (D8) and ``accumulation``.

Agreement, on cells at least one pixel from the border (pysheds leaves border cells without a
direction): the share of identical D8 directions, the share of cells whose accumulation agrees
within 1 %, and the intersection over union of the catchment of the interior cell of largest
accumulation in each quadrant (ours traced from our directions, pysheds' from ``catchment``). Each run
is a fresh child process after a warm-up call (``_measure``): time is the best of ``--repeat``, memory
the peak RSS rise. Prints one JSON object; ratios are pysheds / ours (> 1: ours faster or smaller).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from numba import njit
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _measure import measure  # noqa: E402

from lsm_core.hydrology import accumulate, route_d8  # noqa: E402

# pysheds 0.5 (the newest release) calls np.in1d, which NumPy 2.4 (pinned here) removed: its
# accumulation and catchment fail without this shim. The JSON reports that it was needed.
NUMPY_SHIM_NEEDED = not hasattr(np, "in1d")
if NUMPY_SHIM_NEEDED:
    np.in1d = np.isin  # type: ignore[attr-defined]

RES_M = 10.0
# pysheds' dirmap lists the codes of N, NE, E, SE, S, SW, W, NW; ours number E, SE, ..., NE as 0..7,
# so our code d is pysheds' 2**d.
DIRMAP = (64, 128, 1, 2, 4, 8, 16, 32)


def synthetic_dem(n: int, seed: int) -> np.ndarray:
    """(n, n) float64 DEM in metres with depressions and a flat pit floor."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    dem = 400.0 * (1.2 - 0.6 * x - 0.4 * y)
    dem += 80.0 * ndimage.gaussian_filter(rng.normal(size=(n, n)), n / 12) * (n / 12)
    dem += 4.0 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 2.0)
    r0, c0, rad = n // 3, n // 2, max(n // 40, 3)
    dem[r0 - rad:r0 + rad, c0 - rad:c0 + rad] = dem.min() - 5.0  # a flat-floored pit
    return dem


def ours(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    routing = route_d8(dem, RES_M)
    return routing.direction, accumulate(routing), routing.order


def pysheds_recipe(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from affine import Affine
    from pysheds.sgrid import sGrid
    from pysheds.sview import Raster, ViewFinder

    vf = ViewFinder(affine=Affine(RES_M, 0, 0, 0, -RES_M, dem.shape[0] * RES_M), shape=dem.shape, nodata=np.nan)
    grid = sGrid(viewfinder=vf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = grid.fill_pits(Raster(dem, viewfinder=vf))
        filled = grid.fill_depressions(filled)
        inflated = grid.resolve_flats(filled)
        fdir = grid.flowdir(inflated, dirmap=DIRMAP)
        acc = grid.accumulation(fdir, dirmap=DIRMAP)
    return np.asarray(fdir), np.asarray(acc)


def pysheds_catchment(fdir: np.ndarray, row: int, col: int) -> np.ndarray:
    from affine import Affine
    from pysheds.sgrid import sGrid
    from pysheds.sview import Raster, ViewFinder

    vf = ViewFinder(affine=Affine(RES_M, 0, 0, 0, -RES_M, fdir.shape[0] * RES_M), shape=fdir.shape, nodata=0)
    grid = sGrid(viewfinder=vf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(grid.catchment(col, row, Raster(fdir, viewfinder=vf), dirmap=DIRMAP, xytype="index"),
                          dtype=bool)


@njit(cache=True)
def _catchment(direction: np.ndarray, order: np.ndarray, w: int, pour: int) -> np.ndarray:
    # order is downstream first, so a cell's receiver is decided before the cell itself
    dr = np.array([0, 1, 1, 1, 0, -1, -1, -1])
    dc = np.array([1, 1, 0, -1, -1, -1, 0, 1])
    inside = np.zeros(direction.size, np.bool_)
    inside[pour] = True
    for k in range(order.size):
        c = order[k]
        d = direction[c]
        if c != pour and d >= 0:
            inside[c] = inside[c + dr[d] * w + dc[d]]
    return inside


def agreement(dem: np.ndarray, mine: tuple, theirs: tuple) -> dict:
    direction, acc, order = mine
    fdir, acc_p = theirs
    n = dem.shape[0]
    inner = np.zeros(dem.shape, bool)
    inner[1:-1, 1:-1] = True
    ours_code = np.where(direction >= 0, np.left_shift(1, np.maximum(direction, 0).astype(np.int64)), 0)
    same_dir = float(np.mean(ours_code[inner] == fdir[inner]))
    acc_ok = float(np.mean(np.abs(acc[inner] - acc_p[inner]) <= 0.01 * np.maximum(acc[inner], acc_p[inner])))
    interior = np.where(inner, acc, -1.0)
    ious = []
    h = n // 2
    for r0, c0 in ((0, 0), (0, h), (h, 0), (h, h)):  # one pour point per quadrant: separate catchments
        qr, qc = np.unravel_index(np.argmax(interior[r0:r0 + h, c0:c0 + h]), (h, h))
        r, c = r0 + int(qr), c0 + int(qc)
        flat = r * n + c
        a = _catchment(direction.reshape(-1), order, n, int(flat)).reshape(dem.shape)
        b = pysheds_catchment(fdir, r, c)
        ious.append(float((a & b).sum() / (a | b).sum()))
    return {"same_direction_share": round(same_dir, 4), "accumulation_within_1pct_share": round(acc_ok, 4),
            "outlet_catchment_iou": [round(v, 4) for v in ious]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    warm = synthetic_dem(64, args.seed)
    rows = []
    for n in args.sizes:
        dem = synthetic_dem(n, args.seed)
        t_ours, m_ours, mine = measure(ours, dem, warm_args=(warm,), repeat=args.repeat)
        t_lib, m_lib, theirs = measure(pysheds_recipe, dem, warm_args=(warm,), repeat=args.repeat)
        rows.append({"pixels": n * n, "ours_s": round(t_ours, 3), "pysheds_s": round(t_lib, 3),
                     "time_ratio_lib_over_ours": round(t_lib / t_ours, 2), "ours_peak_mb": round(m_ours, 1),
                     "pysheds_peak_mb": round(m_lib, 1), "memory_ratio_lib_over_ours": round(m_lib / m_ours, 2),
                     **agreement(dem, mine, theirs)})
    import pysheds

    print(json.dumps({"benchmark": "d8_routing_vs_pysheds", "pysheds": pysheds.__version__,
                      "numpy": np.__version__, "pysheds_needs_numpy_shim": NUMPY_SHIM_NEEDED, "runs": rows}))


if __name__ == "__main__":
    main()
