import numpy as np
import pandas as pd
import pytest

from lsm_core.errors import ConfigError
from lsm_core.experiment import prediction_rate_auc, select_model, training_table


def _table():
    return pd.DataFrame({"strategy": ["random", "insar_pu", "insar_pu", "buffer"],
                         "model": ["gbdt", "svm", "lightgbm", "mlp"],
                         "spatial_cv_auc": [0.95, 0.80, 0.90, 0.99],
                         "yardstick_auc": [0.85, 0.86, 0.84, 0.80]})


def test_auto_selects_the_best_yardstick_model_of_any_strategy():
    assert tuple(select_model(_table())[["strategy", "model"]]) == ("insar_pu", "svm")
    assert select_model(_table(), "buffer/mlp")["spatial_cv_auc"] == 0.99
    with pytest.raises(ConfigError, match="no trained model 'random/svm'"):
        select_model(_table(), "random/svm")
    assert select_model(_table()[lambda t: t["strategy"] != "insar_pu"])["model"] == "gbdt"


def test_prediction_rate_auc_is_one_for_a_perfect_map_and_half_for_noise():
    rng = np.random.default_rng(0)
    area = rng.uniform(size=20000)
    assert prediction_rate_auc(np.ones(50), area) == pytest.approx(1.0)
    assert prediction_rate_auc(rng.uniform(size=5000), area) == pytest.approx(0.5, abs=0.02)
    assert np.isnan(prediction_rate_auc(np.array([]), area))
    assert np.isnan(prediction_rate_auc(np.ones(5), np.array([])))


def test_training_table_caps_each_class_and_names_missing_strategies():
    pos = pd.DataFrame({"label": 1, "strategy": "positive", "v": range(30)})
    neg = pd.DataFrame({"label": 0, "strategy": ["random"] * 40 + ["buffer"] * 5, "v": range(45), "cv_fold": -1})
    # fold draws and the area sample are for the spatial CV only, never in a strategy's training table
    extra = pd.DataFrame({"label": 0, "strategy": ["random"] * 10 + ["area_sample"] * 10, "v": 0,
                          "cv_fold": [1] * 10 + [-1] * 10})
    t = training_table(pos, pd.concat([neg, extra]), "random", max_per_class=20, seed=0)
    assert len(training_table(pos, pd.concat([neg, extra]), "random", max_per_class=None, seed=0)) == 70
    assert (t["label"] == 1).sum() == 20 and (t["label"] == 0).sum() == 20 and set(t["strategy"]) == {"positive", "random"}
    with pytest.raises(Exception, match="no negatives of strategy 'insar_pu'"):
        training_table(pos, neg, "insar_pu", max_per_class=20, seed=0)
