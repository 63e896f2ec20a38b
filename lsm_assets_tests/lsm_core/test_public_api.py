"""The public surface of lsm_core: __all__, lazy re-exports, py.typed, error kinds, Literal schemes."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

import lsm_core
from lsm_core.errors import ConfigError, LsmError, ShapeError

ROOT = Path(__file__).resolve().parents[2]
# Every science module a user imports; models / explain / experiment and the intake modules are
# declared by their owners, and are checked by the any-module test below when they declare one.
MODULES = ["area", "contingency", "deformation", "drainage", "environment", "errors", "evaluation", "grid",
           "hydrology", "io", "mintpy", "plots", "predict", "prone", "proximity", "pu", "sampling", "spatial_cv",
           "stack", "svm", "synthetic", "synthetic.hazard", "synthetic.insar", "synthetic.terrain", "synthetic.toy",
           "synthetic.writer", "terrain", "threshold", "validation"]


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all_and_every_name_exists(name):
    mod = importlib.import_module(f"lsm_core.{name}")
    assert isinstance(mod.__all__, list) and mod.__all__, f"lsm_core.{name} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"lsm_core.{name}.__all__ names {missing} that it does not define"
    assert len(set(mod.__all__)) == len(mod.__all__)


def test_package_reexports_resolve_to_the_defining_module():
    assert set(lsm_core.__all__) == set(lsm_core._LAZY) | {n for n in lsm_core.__all__ if n.endswith("Error")}
    for name, module in lsm_core._LAZY.items():
        assert getattr(lsm_core, name) is getattr(importlib.import_module(f"lsm_core.{module}"), name)
    assert "SpatialKFold" in dir(lsm_core)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lsm_core.nope  # noqa: B018


def test_import_lsm_core_is_light():
    # the heavy science stack is imported on first use of a re-exported name, not by `import lsm_core`
    code = "import sys, lsm_core; print(sorted(m for m in ('sklearn', 'numpy', 'rasterio', 'dagster') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_py_typed_ships_with_the_package():
    assert (ROOT / "lsm_core" / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["lsm_core"]


def test_former_bare_value_errors_are_lsm_errors_and_still_value_errors():
    from lsm_core.deformation import fit_velocity
    from lsm_core.hydrology import pixel_size
    from lsm_core.terrain import slope_deg

    cases = [(lambda: slope_deg(np.zeros(5), 10.0), ShapeError), (lambda: pixel_size(0.0), ConfigError),
             (lambda: fit_velocity(np.zeros((3, 2, 2)), np.arange(2.0)), ShapeError),
             (lambda: fit_velocity(np.zeros((3, 2, 2)), np.arange(3.0), min_epochs=2), ConfigError)]
    for call, kind in cases:
        with pytest.raises(kind) as info:
            call()
        assert isinstance(info.value, LsmError) and isinstance(info.value, ValueError)


def test_scheme_literals_list_the_accepted_values():
    from lsm_core.sampling import NEGATIVE_STRATEGIES, NegativeStrategy
    from lsm_core.threshold import WEIGHT_SCHEMES, WeightScheme, weights_from
    from lsm_core.validation import CV_SCHEMES, CVScheme

    assert get_args(WeightScheme) == WEIGHT_SCHEMES == ("equal", "importance", "expert")
    assert get_args(NegativeStrategy) == NEGATIVE_STRATEGIES == ("random", "buffer", "insar_pu", "pu")
    assert get_args(CVScheme) == CV_SCHEMES == ("spatial", "conventional")
    for scheme in WEIGHT_SCHEMES:
        w = weights_from(scheme, 3, importances=[1.0, 2.0, 1.0], expert_ranks=[1, 2, 3])
        assert w.sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="'equal', 'importance', 'expert'"):
        weights_from("bogus", 3)  # type: ignore[arg-type]


# The functions a notebook user reaches first carry runnable examples, which `make test` runs.
EXAMPLES = ["terrain.slope_deg", "proximity.distance_decay", "deformation.fit_velocity", "sampling.random_negatives",
            "sampling.buffer_negatives", "sampling.insar_pu_negatives", "pu.BaggingPUClassifier",
            "spatial_cv.SpatialKFold", "threshold.js_threshold_curve", "prone.prone_areas",
            "evaluation.training_accuracy", "evaluation.prone_occurrence"]


@pytest.mark.parametrize("qualname", EXAMPLES)
def test_entry_point_has_a_doctest_example(qualname):
    import doctest

    module, name = qualname.split(".")
    obj = getattr(importlib.import_module(f"lsm_core.{module}"), name)
    examples = [ex for test in doctest.DocTestFinder(recurse=False).find(obj) for ex in test.examples]
    assert len(examples) >= 2, f"{qualname} has no runnable example in its docstring"


def test_pytest_collects_the_doctests_of_lsm_core():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "lsm_core" in cfg["tool:pytest"]["testpaths"].split()
    assert "--doctest-modules" in cfg["tool:pytest"]["addopts"].split()


@pytest.mark.parametrize("qualname", ["prone.ProneAreasResult", "predict.PredictMapResult", "stack.FactorStackResult",
                                      "environment.EnvironmentFactorsResult", "deformation.DeformationRateResult",
                                      "evaluation.PredictionRateCurve", "evaluation.MaskSummary",
                                      "contingency.ContingencyResult", "evaluation.TrainingAccuracy",
                                      "evaluation.ProneOccurrence", "catalog.InventoryState"])
def test_result_objects_are_frozen_typed_dataclasses_with_as_dict(qualname):
    import dataclasses

    module, name = qualname.split(".")
    cls = getattr(importlib.import_module(f"lsm_core.{module}"), name)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen and cls.__doc__
    assert name in importlib.import_module(f"lsm_core.{module}").__all__ and getattr(lsm_core, name) is cls
    fields = dataclasses.fields(cls)
    assert fields and all(f.type for f in fields)
    obj = cls(**{f.name: 0 for f in fields})
    assert obj.as_dict() == {f.name: 0 for f in fields}
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.valid_pixels = 1
