"""negative_samples honours the area's own parameters: sampling_ratio, and buffer_m including 0 m (issue 11)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import geopandas as gpd
import pytest
import yaml

from lsm_assets.assets.learning import NegativeSamplingConfig, negative_samples
from lsm_assets.partitions import area_period_key
from lsm_assets.resources import LsmPaths
from lsm_core import sampling
from lsm_core.area import REQUIRED_LAYERS
from lsm_core.errors import SamplingError
from lsm_core.synthetic.toy import toy_area


# the toy area holds 4 landslides: 2 common spatial folds
def _run(tmp_path, parameters: dict, config: NegativeSamplingConfig) -> gpd.GeoDataFrame:
    toy = toy_area(tmp_path / "toy")
    folder = tmp_path / "data" / "study_areas" / "toy"
    folder.mkdir(parents=True)
    b = toy.grid.bounds
    layers = {k: f"{k}.gpkg" for k in REQUIRED_LAYERS if k != "ndvi"} | {"ndvi": []}
    (folder / "area.yaml").write_text(yaml.safe_dump({
        "name": "toy", "crs": toy.grid.crs, "resolution_m": toy.grid.resolution_m, "bounds": list(b),
        "layers": layers, "parameters": parameters}))
    pos = sampling.positive_samples(toy.events, toy.stack, dt.date(2020, 12, 31))
    pos = gpd.GeoDataFrame(pos, geometry=gpd.points_from_xy(pos["x"], pos["y"]), crs=toy.grid.crs)
    ctx = dg.build_asset_context(partition_key=area_period_key("toy", "202001-202012"))
    out = negative_samples(ctx, config, LsmPaths(data_root=str(tmp_path / "data")), toy.stack, toy.events, pos)
    # the strategies' own draws (the uniform area sample of the yardstick comes along in the same table)
    out = out[out["strategy"].isin(config.strategies)]
    out.attrs["n_positive"] = len(pos)
    return out


def test_sampling_ratio_of_area_yaml_sets_the_number_of_negatives(tmp_path):
    out = _run(tmp_path, {"sampling_ratio": 2.0}, NegativeSamplingConfig(strategies=["random"], cv_folds=2))
    assert len(out) == sampling.n_negatives(out.attrs["n_positive"], 2.0) != out.attrs["n_positive"]


def test_config_ratio_still_overrides_the_area(tmp_path):
    out = _run(tmp_path, {"sampling_ratio": 2.0}, NegativeSamplingConfig(strategies=["random"], ratio=1.0, cv_folds=2))
    assert len(out) == sampling.n_negatives(out.attrs["n_positive"], 1.0)


def test_buffer_of_zero_metres_is_not_the_default(tmp_path):
    # the toy area is 400 m across: the 500 m default leaves no pixel, 0 m (area.yaml) leaves plenty
    with pytest.raises(SamplingError, match="> 500 m from known landslides"):
        _run(tmp_path / "a", {}, NegativeSamplingConfig(strategies=["buffer"], cv_folds=2))
    zero = _run(tmp_path / "b", {"buffer_m": 0}, NegativeSamplingConfig(strategies=["buffer"], cv_folds=2))
    assert len(zero) == sampling.n_negatives(zero.attrs["n_positive"], 1.0)
    assert (zero["strategy"] == "buffer").all()
