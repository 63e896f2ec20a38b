"""Which model stands for each strategy in the contingency of every strategy's map (issue 12)."""

import numpy as np
import pandas as pd

from lsm_core.experiment import best_per_strategy


def _table(**extra: list) -> pd.DataFrame:
    return pd.DataFrame({"strategy": ["random", "random", "insar_pu", "insar_pu", "pu"],
                         "model": ["gbdt", "svm", "gbdt", "lightgbm", "mlp"],
                         "spatial_cv_auc": [0.92, 0.90, 0.99, 0.995, 0.97], **extra})


def test_best_by_spatial_cv_without_a_yardstick():
    best = best_per_strategy(_table())
    assert best[["strategy", "model"]].values.tolist() == [["insar_pu", "lightgbm"], ["pu", "mlp"],
                                                           ["random", "gbdt"]]
    assert (best["ranked_by"] == "spatial_cv_auc").all()


def test_the_common_yardstick_wins_when_the_table_has_it():
    best = best_per_strategy(_table(yardstick_auc=[0.70, 0.75, 0.80, 0.78, np.nan]))
    # InSAR-PU's best by its own negatives (lightgbm) is not its best on the yardstick (gbdt)
    assert best[["strategy", "model"]].values.tolist() == [["insar_pu", "gbdt"], ["pu", "mlp"], ["random", "svm"]]
    assert (best["ranked_by"] == "yardstick_auc").all()
