"""Benchmark the tiled connected-component labelling of ``lsm_core.prone`` against ``dask_image.ndmeasure.label``.

    python benchmarks/bench_label.py [--sizes 1000 3000] [--block 512] [--repeat 2] [--seed 0]

Input: a prone-candidate mask (bool) of many clusters of all sizes, some spanning several blocks
(a threshold of smoothed noise). Task: the 4-connected cluster id of every pixel and the pixel
count of every cluster, which is what ``prone_areas`` needs (sizes for the minimum-area filter,
ids for the raster and polygons). Timed, each in a fresh child process (``_measure``; best of
``--repeat``, peak RSS rise):

- ``scipy``: ``ndimage.label`` of the whole array and a ``bincount`` - the in-memory baseline;
- ``ours``: the two passes of ``prone_areas`` over ``--block`` tiles: ``_label_pass`` (block
  labels joined across block edges by a union-find, sizes per cluster), then each block labelled
  again and mapped to its global id, written into the output array; ``ours_sizes_only`` is the
  first pass alone (sizes and first pixels, what the filter needs; memory O(width + clusters));
- ``dask_image``: ``ndmeasure.label`` on a dask array chunked like our blocks, computed, and a
  ``bincount`` (dask's default threaded scheduler, so it may use every core; ours uses one).

Agreement: whether each labelling is the same partition as scipy's (ids may differ) and the
cluster counts. Prints one JSON object; ratios are against the scipy baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _measure import measure  # noqa: E402

from lsm_core.grid import AreaGrid  # noqa: E402
from lsm_core.prone import _FOUR, _label_pass  # noqa: E402


def candidate_mask(n: int, seed: int) -> np.ndarray:
    """(n, n) bool mask: about 15 % of pixels in clusters from a few pixels to thousands."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(n, n)), 3.0) + 0.3 * ndimage.gaussian_filter(
        rng.normal(size=(n, n)), 25.0) * 5
    return field > np.quantile(field, 0.85)


def _grid(n: int) -> AreaGrid:
    return AreaGrid("EPSG:32648", (10.0, 0.0, 0.0, 0.0, -10.0, n * 10.0), n, n)


def _blocks(mask: np.ndarray, grid: AreaGrid, block: int):
    for blk in grid.windows(block):
        m = mask[blk.write.toslices()]
        yield blk, None, np.ones(m.shape, bool), m, int(m.sum())


def scipy_labels(mask: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    lab, _ = ndimage.label(mask, structure=_FOUR)
    return lab, np.bincount(lab.ravel())[1:]


def ours_sizes_only(mask: np.ndarray, block: int) -> np.ndarray:
    _, cluster, count, _, _, _ = _label_pass(_blocks(mask, _grid(mask.shape[0]), block), _grid(mask.shape[0]))
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    return np.bincount(cluster, weights=count, minlength=n_clusters).astype(np.int64)


def ours(mask: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    grid = _grid(mask.shape[0])
    offsets, cluster, count, _, _, _ = _label_pass(_blocks(mask, grid, block), grid)
    sizes = np.bincount(cluster, weights=count).astype(np.int64)
    of_label = np.concatenate([[0], cluster + 1])
    out = np.zeros(mask.shape, np.int32)
    for (blk, _, _, m, _), offset in zip(_blocks(mask, grid, block), offsets, strict=True):
        lab, _ = ndimage.label(m, structure=_FOUR)
        out[blk.write.toslices()] = of_label[np.where(lab > 0, lab.astype(np.int64) + offset, 0)]
    return out, sizes


def dask_image_labels(mask: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    import dask.array as da
    from dask_image import ndmeasure

    labels, _ = ndmeasure.label(da.from_array(mask, chunks=block), structure=_FOUR)
    lab = labels.compute()
    return lab, np.bincount(lab.ravel())[1:]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the foreground pixels of ``a`` and ``b`` are grouped identically (ids may differ)."""
    fa, fb = a > 0, b > 0
    if not np.array_equal(fa, fb):
        return False
    pairs = np.unique(np.stack([a[fa].astype(np.int64), b[fb].astype(np.int64)]), axis=1)
    return pairs.shape[1] == np.unique(a[fa]).size == np.unique(b[fb]).size


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    warm = (candidate_mask(128, args.seed), 64)
    rows = []
    for n in args.sizes:
        mask = candidate_mask(n, args.seed)
        run = {}
        for name, fn in (("scipy", scipy_labels), ("ours", ours), ("ours_sizes_only", ours_sizes_only),
                         ("dask_image", dask_image_labels)):
            run[name] = measure(fn, mask, args.block, warm_args=warm, repeat=args.repeat)
        base_t, base_m, (base_lab, base_sizes) = run["scipy"]
        row = {"pixels": n * n, "block": args.block, "clusters": int(base_sizes.size), "scipy_s": round(base_t, 3),
               "scipy_peak_mb": round(base_m, 1)}
        for name in ("ours", "ours_sizes_only", "dask_image"):
            t, m, out = run[name]
            row[f"{name}_s"] = round(t, 3)
            row[f"{name}_peak_mb"] = round(m, 1)
            row[f"{name}_time_ratio_vs_scipy"] = round(t / base_t, 2)
            row[f"{name}_memory_ratio_vs_scipy"] = round(m / base_m, 2)
            sizes = out if name == "ours_sizes_only" else out[1]
            row[f"{name}_same_sizes_as_scipy"] = bool(np.array_equal(np.sort(sizes), np.sort(base_sizes)))
            if name != "ours_sizes_only":
                row[f"{name}_same_partition_as_scipy"] = same_partition(out[0], base_lab)
        rows.append(row)
    from importlib.metadata import version

    print(json.dumps({"benchmark": "tiled_label_vs_dask_image", "dask_image": version("dask-image"), "runs": rows}))


if __name__ == "__main__":
    main()
