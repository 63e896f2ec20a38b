"""The MLP's compiled epoch loop (``lsm_core.mlp.EarlyStoppingMLP``) against scikit-learn's ``MLPClassifier``.

Fits both, with the same parameters and seeds, on tables the size of the demo's (a spatial-CV fold:
1,000 rows per class; a grid point: 250 per class; 16 scaled factors), for the grid of
``lsm_core.models.PARAM_GRIDS["mlp"]`` and three seeds each, and prints one JSON object: CPU seconds
of each implementation per table size (the first fit of each, which loads numba's cache, left out),
their ratio, and whether every fit gave the same weights, stopping epoch and loss curve bit for bit.
``python benchmarks/bench_mlp.py [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as materialize_all's workers
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import ParameterGrid  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from lsm_core.mlp import EarlyStoppingMLP, compile_kernels  # noqa: E402
from lsm_core.models import DEFAULT_PARAMS, PARAM_GRIDS  # noqa: E402


def _same(a: MLPClassifier, b: MLPClassifier) -> bool:
    return (a.n_iter_ == b.n_iter_ and a.loss_curve_ == b.loss_curve_ and a.validation_scores_ == b.validation_scores_
            and all(np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_,
                                                         strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    compile_kernels()
    out: dict = {"sizes": []}
    for per_class in (1000, 250):
        X, y = make_classification(2 * per_class, 16, n_informative=8, flip_y=0.15, random_state=0)
        X = StandardScaler().fit_transform(X)
        cpu = {"sklearn": 0.0, "compiled": 0.0}
        identical, fits = True, 0
        for point in ParameterGrid(PARAM_GRIDS["mlp"]):
            for seed in range(args.seeds):
                params = {**DEFAULT_PARAMS["mlp"], **point, "random_state": seed}
                t0 = time.process_time()
                ref = MLPClassifier(**params).fit(X, y)
                t1 = time.process_time()
                ours = EarlyStoppingMLP(**params).fit(X, y)
                t2 = time.process_time()
                cpu["sklearn"] += t1 - t0
                cpu["compiled"] += t2 - t1
                identical &= _same(ours, ref)
                fits += 1
        out["sizes"].append({"rows_per_class": per_class, "fits": fits, "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
                             "ratio_compiled_to_sklearn": round(cpu["compiled"] / cpu["sklearn"], 3),
                             "bit_identical": bool(identical)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
