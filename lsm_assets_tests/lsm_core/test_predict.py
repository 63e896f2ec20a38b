"""Tests of the windowed susceptibility map: serial, LocalCluster and given-scheduler paths vs the in-memory one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from lsm_core.errors import ConfigError, InputFileError, LsmError, ModelError
from lsm_core.grid import AreaGrid
from lsm_core.io import RasterFile, write_raster
from lsm_core.predict import SERIAL, _plan, _predict_window, predict_in_memory, predict_map

# 70 x 100 pixels: blocks of 32 do not divide it
GRID = AreaGrid.from_bounds("EPSG:32647", (770000, 3930000, 773000, 3932100), 30)
NAMES = ["slope_deg", "twi", "rainfall_mm", "lithology"]


@pytest.fixture(scope="module")
def stack_path(tmp_path_factory) -> str:
    """A 4-factor stack with nodata (NaN in every band) in a corner and in scattered pixels."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, *GRID.shape)).astype("float32")
    data[3] = rng.integers(1, 5, size=GRID.shape)
    data[:, :32, :40] = np.nan  # the first 32 x 32 block is empty: the model must not be called on 0 rows
    data[:, rng.random(GRID.shape) < 0.02] = np.nan
    path = tmp_path_factory.mktemp("predict") / "stack.tif"
    write_raster(path, data, GRID, NAMES, tags={"categorical": "lithology"})
    return str(path)


def _training(stack_path: str, n: int = 3000) -> tuple[pd.DataFrame, np.ndarray]:
    data = RasterFile(stack_path).read()
    X = pd.DataFrame(data[:, np.isfinite(data).all(axis=0)].T, columns=NAMES).iloc[:n]
    y = ((X.slope_deg + 0.5 * X.twi - 0.3 * (X.lithology == 2) + np.random.default_rng(1).normal(0, 0.5, len(X)))
         > 0).to_numpy(int)
    return X, y


@pytest.fixture(scope="module")
def tree(stack_path) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=6, random_state=0).fit(*_training(stack_path))


@pytest.fixture(scope="module")
def cluster():
    """A cluster the test starts itself, as a user's scheduler would be (loopback, no dashboard)."""
    # the scheduler's HTTP server (health, metrics) runs even without a dashboard: a free loopback port
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as c:
        yield c


class FailsOnSecondCall:
    """A picklable model whose predict_proba fails after the first window, to check nothing is published."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def predict_proba(self, X):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("model exploded")
        return self.model.predict_proba(X)


def _read(path) -> np.ndarray:
    f = RasterFile(path)
    assert f.names == ["susceptibility"] and np.isnan(f.nodata)
    return f.read()[0]


@pytest.mark.parametrize("kind", ["tree_frame", "lightgbm_frame", "logistic_array"])
def test_windowed_equals_in_memory_exactly(stack_path, tmp_path, kind):
    X, y = _training(stack_path)
    model = {"tree_frame": lambda: DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y),
             "lightgbm_frame": lambda: LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(X, y),
             "logistic_array": lambda: LogisticRegression().fit(X.to_numpy(), y)}[kind]()
    info = predict_map(model, stack_path, tmp_path / "map.tif", block=32, scheduler_address=SERIAL)
    ref = predict_in_memory(model, stack_path, tmp_path / "ref.tif")
    out = _read(tmp_path / "map.tif")
    assert out.dtype == np.float32 and ref.dtype == np.float32
    if kind == "logistic_array":
        # BLAS sums a row's dot product in an order that can depend on the batch: equal to 1 float32 ulp
        np.testing.assert_allclose(out, ref, rtol=3e-7, atol=0)
    else:  # trees score each row on its own: exact
        np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(_read(tmp_path / "ref.tif"), ref)
    nodata = np.isnan(RasterFile(stack_path).read()).any(axis=0)
    assert (np.isnan(out) == nodata).all() and np.nanmin(out) >= 0 and np.nanmax(out) <= 1
    assert info.valid_pixels == int((~nodata).sum()) and info.windows == 3 * 4
    assert info.mean_probability == pytest.approx(float(np.nanmean(ref.astype(np.float64))))


def test_local_cluster_given_scheduler_and_serial_give_identical_rasters(stack_path, tree, cluster, tmp_path):
    serial = predict_map(tree, stack_path, tmp_path / "serial.tif", block=32, scheduler_address=SERIAL)
    given = predict_map(tree, stack_path, tmp_path / "given.tif", block=32,
                        scheduler_address=cluster.scheduler_address, max_in_flight=2)
    local = predict_map(tree, stack_path, tmp_path / "local.tif", block=32, n_workers=1, max_in_flight=3)
    assert (given.peak_in_flight, local.peak_in_flight) == (2, 3)  # bounded, and actually pipelined
    assert given.scheduler == cluster.scheduler_address and local.scheduler == "local"
    for info in (given, local):
        assert {k: v for k, v in info.as_dict().items() if k not in ("path", "scheduler", "peak_in_flight", "seconds")} == \
               {k: v for k, v in serial.as_dict().items() if k not in ("path", "scheduler", "peak_in_flight", "seconds")}
    raw = (tmp_path / "serial.tif").read_bytes()
    assert (tmp_path / "given.tif").read_bytes() == raw and (tmp_path / "local.tif").read_bytes() == raw
    np.testing.assert_array_equal(_read(tmp_path / "given.tif"), predict_in_memory(tree, stack_path))


def test_a_failing_window_on_a_worker_publishes_nothing(stack_path, tree, cluster, tmp_path):
    with pytest.raises(RuntimeError, match="model exploded"):
        # each worker holds one copy of the scattered model, so its second window fails
        predict_map(FailsOnSecondCall(tree), stack_path, tmp_path / "map.tif", block=32,
                    scheduler_address=cluster.scheduler_address)
    with pytest.raises(RuntimeError, match="model exploded"):
        predict_map(FailsOnSecondCall(tree), stack_path, tmp_path / "map.tif", block=32, scheduler_address=SERIAL)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file or folder left behind


def test_feature_names_select_and_order_bands(stack_path, tmp_path):
    X, y = _training(stack_path)
    on_array = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X[["twi", "slope_deg"]].to_numpy(), y)
    predict_map(on_array, stack_path, tmp_path / "a.tif", feature_names=["twi", "slope_deg"], block=32,
                scheduler_address=SERIAL)
    data = RasterFile(stack_path).read()
    ok = np.isfinite(data).all(axis=0)
    expected = on_array.predict_proba(data[[1, 0]][:, ok].T)[:, 1].astype(np.float32)
    np.testing.assert_array_equal(_read(tmp_path / "a.tif")[ok], expected)
    # a model fitted on a DataFrame brings its own columns, in its own order
    on_frame = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X[["lithology", "twi"]], y)
    info = predict_map(on_frame, stack_path, tmp_path / "f.tif", block=32, scheduler_address=SERIAL)
    assert info.features == ("lithology", "twi")
    expected = on_frame.predict_proba(pd.DataFrame(data[[3, 1]][:, ok].T, columns=["lithology", "twi"]))[:, 1]
    np.testing.assert_array_equal(_read(tmp_path / "f.tif")[ok], expected.astype(np.float32))


def test_clear_errors_and_no_output(stack_path, tree, tmp_path):
    X, y = _training(stack_path)
    needs_ndvi = DecisionTreeClassifier(max_depth=3).fit(X.assign(ndvi_mean=0.5), y)
    with pytest.raises(ModelError, match=r"stack\.tif: the stack lacks the factor\(s\) \['ndvi_mean'\]"):
        predict_map(needs_ndvi, stack_path, tmp_path / "map.tif", scheduler_address=SERIAL)
    with pytest.raises(ModelError, match="ndvi_mean"):
        predict_in_memory(needs_ndvi, stack_path)
    with pytest.raises(ModelError, match="expects 4 features, 2 selected"):
        predict_map(tree, stack_path, tmp_path / "map.tif", feature_names=["twi", "slope_deg"])
    with pytest.raises(ModelError, match="no predict_proba"):
        predict_map(object(), stack_path, tmp_path / "map.tif")
    with pytest.raises(ModelError, match="not a binary classifier"):
        predict_map(DecisionTreeClassifier().fit(X, np.arange(len(X)) % 3), stack_path, tmp_path / "map.tif")
    with pytest.raises(ConfigError, match="multiple of 16"):
        predict_map(tree, stack_path, tmp_path / "map.tif", block=100)
    with pytest.raises(ConfigError, match="overwrite the factor stack"):
        predict_map(tree, stack_path, stack_path)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(LsmError, match="not a writable directory"):
        predict_map(tree, stack_path, tmp_path / "file" / "sub" / "map.tif")
    with pytest.raises(InputFileError, match="not found"):
        predict_map(tree, tmp_path / "missing.tif", tmp_path / "map.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_worker_that_cannot_see_the_stack_says_so(stack_path, tree, tmp_path):
    plan = _plan(tree, RasterFile(stack_path), None)
    moved = type(plan)(str(tmp_path / "elsewhere.tif"), plan.bands, plan.features, plan.positive, plan.as_frame)
    with pytest.raises(InputFileError, match="every Dask worker mounts"):
        _predict_window(tree, moved, next(GRID.windows(32)).write)
