"""shap_importance explains the very table the models were trained on (issue 12), whatever the class ratio."""

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from lsm_assets.assets.learning import _tables, _training_table_of


def _samples(n_pos: int, n_neg: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Positives and random negatives (a 1:2 ratio when n_neg = 2 n_pos) with one factor and ids."""
    rng = np.random.default_rng(0)

    def frame(n: int, label: int, **extra: object) -> gpd.GeoDataFrame:
        x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
        df = pd.DataFrame({"x": x, "y": y, "slope_deg": rng.uniform(0, 40, n), "label": label, **extra})
        return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y))

    pos = frame(n_pos, 1, landslide_id=np.arange(n_pos) // 3)
    neg = frame(n_neg, 0, strategy="random")
    return pos, neg


def test_a_one_to_two_ratio_is_rebuilt_exactly():
    pos, neg = _samples(300, 600)  # 1:2 and a cap of 400 per class: 300 positives + 400 negatives
    trained_on = _tables(pos, neg, "random", 400, 0)  # what trained_models does
    assert (trained_on["label"] == 1).sum() == 300 and (trained_on["label"] == 0).sum() == 400
    rebuilt = _training_table_of(pos, neg, "random", len(trained_on), 400, 0)
    pd.testing.assert_frame_equal(rebuilt, trained_on)
    # the former rebuild (n_train_rows // 2 = 350 per class) explained another table: 300 + 350 rows
    old = _tables(pos, neg, "random", len(trained_on) // 2, 0)
    assert len(old) == 650 and (old["label"] == 0).sum() == 350


def test_a_different_training_cap_fails_instead_of_explaining_another_table():
    pos, neg = _samples(300, 600)
    with pytest.raises(dg.Failure, match="trained on 700 rows"):
        _training_table_of(pos, neg, "random", 700, 350, 0)


# The cap and seed travel in trained_models' rows (max_samples_per_class, subsample_seed), so a later run of
# shap_importance alone rebuilds the same table: test_pipeline.py::test_a_moved_data_root_still_loads runs it
# without trained_models' config.
