"""Benchmark lsm_core.pu.BaggingPUClassifier against pulearn.BaggingPuClassifier (wall time, OOB AUC).

Usage: python benchmarks/bench_pu.py [--n-unlabeled 200000] [--bags 50] [--seed 0]

Both run the same base estimator, bag count, draw size (max_samples = number of positives) and
n_jobs (default -1: all cores; threads for ours, pulearn's own joblib backend). Both are scored
the same way: the AUC of their out-of-bag scores for the unlabeled pool against the hidden truth
of that pool (which unlabeled pixels are in fact positives). Pass --n-jobs 1 for single-core.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lsm_core.pu import BaggingPUClassifier  # noqa: E402


def make_pu_problem(n_unlabeled: int, n_positives: int, n_factors: int, hidden_rate: float, seed: int):
    """Synthetic PU pixels: X (n, n_factors) standardised factors, s (1 = labeled), hidden truth of U."""
    rng = np.random.default_rng(seed)
    n = n_unlabeled + n_positives
    # Correlated factors, like slope/curvature/relief derived from one DEM.
    mix = rng.normal(size=(n_factors, n_factors)) * 0.3 + np.eye(n_factors)
    X = rng.normal(size=(n, n_factors)) @ mix
    # Nonlinear latent susceptibility: a few informative factors, a threshold effect, an interaction.
    z = (
        1.2 * X[:, 0]
        + 0.8 * np.tanh(2 * X[:, 1])
        - 0.6 * np.abs(X[:, 2])
        + 0.5 * X[:, 3] * X[:, 4]
        + 0.4 * (X[:, 5] > 0.5)
    )
    z += rng.normal(scale=1.0, size=n)
    # The top-z pixels are the true positives, as many as the labeled ones plus the wanted
    # hidden share of the pool; the labeled ones are a uniform draw of them (SCAR assumption).
    n_true = n_positives + int(round(hidden_rate * n_unlabeled))
    truth = np.zeros(n, dtype=bool)
    truth[np.argsort(-z)[:n_true]] = True
    labeled = rng.choice(np.flatnonzero(truth), size=n_positives, replace=False)
    s = np.zeros(n, dtype=np.int8)
    s[labeled] = 1
    hidden = truth[s == 0]
    return X, s, hidden


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-unlabeled", type=int, default=200_000)
    ap.add_argument("--n-positives", type=int, default=2_000)
    ap.add_argument("--n-factors", type=int, default=12)
    ap.add_argument("--hidden-rate", type=float, default=0.05, help="share of true positives in the unlabeled pool")
    ap.add_argument("--bags", type=int, default=50)
    ap.add_argument("--max-depth", type=int, default=8)
    ap.add_argument("--n-jobs", type=int, default=-1, help="jobs for both libraries (-1 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved timing repeats; the best of each is reported")
    args = ap.parse_args(argv)

    X, s, hidden = make_pu_problem(args.n_unlabeled, args.n_positives, args.n_factors, args.hidden_rate, args.seed)
    base = DecisionTreeClassifier(max_depth=args.max_depth, min_samples_leaf=5)

    from pulearn import BaggingPuClassifier

    def run_ours() -> np.ndarray:
        est = BaggingPUClassifier(estimator=base, n_estimators=args.bags, random_state=args.seed, n_jobs=args.n_jobs)
        return est.fit(X, s).oob_score_

    def run_pulearn() -> np.ndarray:
        est = BaggingPuClassifier(
            estimator=base,
            n_estimators=args.bags,
            max_samples=int(args.n_positives),
            oob_score=True,
            n_jobs=args.n_jobs,
            random_state=args.seed,
        )
        # pulearn keeps OOB scores for every row; positives are always in bag (NaN there).
        return est.fit(X, s).oob_decision_function_[s == 0, 1]

    # Interleaved repeats, best wall time of each: the machine may be shared, and the minimum is
    # the least disturbed run. Both fits are deterministic for a fixed seed.
    times: dict[str, list[float]] = {"ours": [], "pulearn": []}
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        for name, run in (("ours", run_ours), ("pulearn", run_pulearn)):
            t0 = time.perf_counter()
            scores[name] = run()
            times[name].append(time.perf_counter() - t0)
    ours_s, pulearn_s = min(times["ours"]), min(times["pulearn"])
    auc = {}
    for name, score in scores.items():
        ok = ~np.isnan(score)
        auc[name] = (float(roc_auc_score(hidden[ok], score[ok])), int(ok.sum()))
    auc_ours, auc_pulearn = auc["ours"][0], auc["pulearn"][0]

    out = {
        "ours_s": round(ours_s, 3),
        "pulearn_s": round(pulearn_s, 3),
        "speedup": round(pulearn_s / ours_s, 2),
        "auc_ours": round(auc_ours, 4),
        "auc_pulearn": round(auc_pulearn, 4),
        "auc_diff": round(auc_ours - auc_pulearn, 4),
        "n_unlabeled": int((s == 0).sum()),
        "n_positives": int(s.sum()),
        "n_hidden_positives": int(hidden.sum()),
        "n_factors": args.n_factors,
        "bags": args.bags,
        "max_samples": int(args.n_positives),
        "base_estimator": repr(base),
        "n_jobs": args.n_jobs,
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "repeat": args.repeat,
        "ours_runs_s": [round(x, 3) for x in times["ours"]],
        "pulearn_runs_s": [round(x, 3) for x in times["pulearn"]],
        "oob_scored_ours": auc["ours"][1],
        "oob_scored_pulearn": auc["pulearn"][1],
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
