"""Tests for lsm_core.yardstick and the common-fold experiment: one test set for every strategy (issue 12)."""

import numpy as np
import pandas as pd
import pytest

from lsm_core import experiment
from lsm_core.errors import ConfigError, ModelError
from lsm_core.yardstick import common_folds

CENTRES = np.array([[0.0, 0.0], [4000.0, 0.0], [0.0, 4000.0], [4000.0, 4000.0]])  # m


def _positives(rng, per_cluster=4, pixels=15) -> pd.DataFrame:
    rows = []
    for k, (cx, cy) in enumerate(CENTRES):
        for j in range(per_cluster):
            lx, ly = cx + rng.normal(0, 300), cy + rng.normal(0, 300)
            for _ in range(pixels):
                rows.append({"x": lx + rng.normal(0, 20), "y": ly + rng.normal(0, 20), "label": 1,
                             "landslide_id": f"ls{k}{j}", "strategy": "positive"})
    df = pd.DataFrame(rows)
    df["f1"], df["f2"] = rng.normal(1.2, 1, len(df)), rng.normal(0, 1, len(df))
    df["velocity_mm_yr"] = rng.normal(-2.5, 3, len(df))
    return df


def _negatives(rng, strategy, n, shift, label=0) -> pd.DataFrame:
    df = pd.DataFrame({"x": rng.uniform(-1000, 5000, n), "y": rng.uniform(-1000, 5000, n), "label": label,
                       "landslide_id": None, "strategy": strategy, "cv_fold": -1})
    df["f1"], df["f2"] = rng.normal(shift, 1, n), rng.normal(0, 1, n)
    df["velocity_mm_yr"] = rng.normal(0, 3, n)
    return df


def test_common_folds_keep_landslides_whole_and_make_regions():
    rng = np.random.default_rng(0)
    pos = _positives(rng)
    folds = common_folds(pos, 4, seed=0)
    pf = folds.positive_folds(pos)
    assert pos.assign(f=pf).groupby("landslide_id")["f"].nunique().max() == 1  # whole landslides
    # the four clusters are the four folds, and each region is the ground around its cluster
    assert sorted(pos.assign(f=pf).groupby("f")["landslide_id"].nunique().tolist()) == [4, 4, 4, 4]
    region = folds.region(CENTRES[:, 0], CENTRES[:, 1])
    assert sorted(region.tolist()) == [0, 1, 2, 3]
    assert (folds.region(pos["x"], pos["y"]) == pf).mean() > 0.99
    again = common_folds(pos, 4, seed=0)
    np.testing.assert_array_equal(again.centres, folds.centres)
    with pytest.raises(ConfigError, match="from 16 landslides"):
        common_folds(pos, 17, seed=0)
    with pytest.raises(ConfigError, match=">= 2"):
        common_folds(pos, 1, seed=0)


def _world(seed=0):
    rng = np.random.default_rng(seed)
    pos = _positives(rng)
    area = _negatives(rng, "area_sample", 1200, 0.0)
    # random negatives look like the area; "buffer" ones are trivially easy (far from anything landslide-like)
    neg = pd.concat([_negatives(rng, "random", 240, 0.0), _negatives(rng, "buffer", 240, -2.5), area],
                    ignore_index=True)
    return pos, neg


def test_every_strategy_is_scored_on_the_same_held_out_set():
    pos, neg = _world()
    folds = common_folds(pos, 4, seed=0)
    rows = experiment.fold_experiment(pos, neg, folds, ["random", "buffer"], ["logistic_regression"],
                                      ["f1", "f2", "velocity_mm_yr"], [], seed=0,
                                      without_velocity=["logistic_regression"])
    assert len(rows) == 4 * 2 * 2  # folds x strategies x variants
    same = rows.groupby(["fold", "variant"])[["n_test_positives", "n_area_sample"]].nunique()
    assert (same == 1).all().all()  # identical yardstick test set for every strategy
    s = experiment.summarise_folds(rows).set_index("strategy")
    # easy negatives grade their strategy high against its own negatives, not on the yardstick
    assert s.loc["buffer", "spatial_cv_auc"] > s.loc["buffer", "yardstick_auc"] + 0.1
    assert s.loc["random", "spatial_cv_auc"] == pytest.approx(s.loc["random", "yardstick_auc"], abs=0.08)
    assert s["yardstick_auc_without_velocity"].notna().all()
    # velocity separates the positives from the area here, so leaving it out costs yardstick AUC
    assert (s["yardstick_auc_without_velocity"] < s["yardstick_auc"]).all()


def test_the_without_velocity_variant_keeps_the_folds_parameters_unless_retuned():
    pos, neg = _world()
    folds = common_folds(pos, 4, seed=0)
    kw = dict(without_velocity=["logistic_regression"], seed=0, inner_max_per_class=None)
    args = (pos, neg, folds, ["random"], ["logistic_regression"], ["f1", "f2", "velocity_mm_yr"], [])
    reused = experiment.fold_experiment(*args, **kw).set_index(["fold", "variant"])["best_params"].unstack()
    # the two variants differ by the factor only: the parameters the fold chose with every factor
    assert (reused["without_velocity"] == reused["all_factors"]).all()
    retuned = experiment.fold_experiment(*args, retune_without_velocity=True, **kw)
    retuned = retuned.set_index(["fold", "variant"])["best_params"].unstack()
    assert (retuned["all_factors"] == reused["all_factors"]).all()
    # tuned again without the velocity, some fold picks another C (the grid is fitted on other columns)
    assert (retuned["without_velocity"] != retuned["all_factors"]).any()


def test_a_model_can_have_its_own_training_and_grid_sizes_per_fold():
    pos, neg = _world()
    folds = common_folds(pos, 4, seed=0)
    args = (pos, neg, folds, ["random"], ["logistic_regression", "gbdt"], ["f1", "f2", "velocity_mm_yr"], [])
    kw = dict(seed=0, max_per_class=60, inner_max_per_class=30)
    plain = experiment.fold_experiment(*args, **kw).drop(columns="seconds")
    sized = experiment.fold_experiment(*args, model_sizes={"gbdt": (None, None)}, **kw).drop(columns="seconds")
    lr, gb = (plain["model"] == "logistic_regression"), (plain["model"] == "gbdt")
    # the other models keep the common sizes and give the same rows
    pd.testing.assert_frame_equal(plain[lr], sized[lr])
    assert (plain.loc[gb, "n_train"] <= 120).all() and (sized.loc[gb, "n_train"] > 120).all()
    assert (sized.loc[gb, "n_test_positives"].to_numpy() == plain.loc[gb, "n_test_positives"].to_numpy()).all()


def test_a_pu_strategy_without_fold_draws_is_refused():
    pos, neg = _world()
    folds = common_folds(pos, 4, seed=0)
    pu = _negatives(np.random.default_rng(3), "insar_pu", 240, -1.0)
    with pytest.raises(ModelError, match="no fold-0 negatives of insar_pu"):
        experiment.fold_experiment(pos, pd.concat([neg, pu]), folds, ["insar_pu"], ["logistic_regression"],
                                   ["f1", "f2"], [], seed=0)
    # with fold draws, only the fold's own draw is used (the strategy's main draw saw every positive)
    fold_rows = pd.concat([pu.assign(cv_fold=f) for f in range(4)], ignore_index=True)
    rows = experiment.fold_experiment(pos, pd.concat([neg, pu, fold_rows]), folds, ["insar_pu"],
                                      ["logistic_regression"], ["f1", "f2"], [], seed=0, max_per_class=None)
    region = folds.region(pu["x"], pu["y"])
    assert rows["n_test_negatives"].tolist() == [int((region == f).sum()) for f in range(4)]
    assert (rows["n_train"] - (folds.positive_folds(pos)[None, :] != np.arange(4)[:, None]).sum(axis=1)
            ).tolist() == [int((region != f).sum()) for f in range(4)]


def test_tuning_inside_a_fold_never_sees_its_held_out_rows():
    pos, neg = _world()
    folds = common_folds(pos, 4, seed=0)
    args = (folds, ["random"], ["lightgbm"], ["f1", "f2", "velocity_mm_yr"], [])
    rows = experiment.fold_experiment(pos, neg, *args, seed=0)
    # garble fold 0's held-out landslides and the random negatives and area pixels inside region 0
    held = folds.positive_folds(pos) == 0
    inside = folds.region(neg["x"], neg["y"]) == 0
    rng = np.random.default_rng(5)
    pos2, neg2 = pos.copy(), neg.copy()
    pos2.loc[held, "f1"] = rng.normal(-3, 1, int(held.sum()))
    neg2.loc[inside, "f2"] = rng.normal(4, 1, int(inside.sum()))
    again = experiment.fold_experiment(pos2, neg2, *args, seed=0)
    f0, g0 = rows[rows["fold"] == 0].iloc[0], again[again["fold"] == 0].iloc[0]
    # the same parameters were chosen and the same model trained; only its scores on the held-out rows moved
    assert f0["best_params"] == g0["best_params"] and f0["n_train"] == g0["n_train"]
    assert g0["yardstick_auc"] < f0["yardstick_auc"] - 0.2
    # the other folds train on those rows, so their tuning data did change
    assert not rows.loc[rows["fold"] > 0, "auc"].equals(again.loc[again["fold"] > 0, "auc"])


def test_auto_picks_the_best_yardstick_of_any_strategy_and_marks_the_runner_up():
    t = pd.DataFrame({"strategy": ["random", "insar_pu", "insar_pu", "pu"], "model": ["gbdt", "svm", "lightgbm", "mlp"],
                      "yardstick_auc": [0.91, 0.88, 0.89, 0.90], "spatial_cv_auc": [0.92, 0.99, 0.995, 0.98]})
    assert experiment.select_model(t)["strategy"] == "random"  # not the best own-negative AUC (insar_pu)
    marked = experiment.mark_map_choice(t)
    assert marked["map_choice"].tolist() == ["selected", "", "", "runner_up"]
    with pytest.raises(ModelError, match="no yardstick_auc"):
        experiment.select_model(t.drop(columns="yardstick_auc"))
