"""Issue 12's falsification test: when deformation carries no information on the hazard, the InSAR velocity pool
cannot make InSAR-PU better than the same Bagging-PU on every pixel (the ``pu`` ablation).

It runs benchmarks/study_strategies.py's own code for one setting on a small karst world: generate with the
knobs, materialize through the product's Dagster assets up to model_comparison, score against truth/.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MARGIN = 0.03  # truth AUC; two negative draws of the same method differ by about 0.01-0.02 at this size


def _study():
    spec = importlib.util.spec_from_file_location("study_strategies", ROOT / "benchmarks" / "study_strategies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.integration
def test_insar_pu_gains_nothing_over_pu_when_deformation_is_unrelated_to_hazard(tmp_path):
    study = _study()
    # scale 0.15 (462 x 462 cells, ~80 s): at 0.1 a common spatial fold can hold no buffer negatives
    result = study.run_setting("unrelated", "karst", 0.15, 0, ["logistic_regression", "lightgbm"], 600,
                               str(tmp_path))
    assert result["knobs"]["deformation_on_hazard"] is False
    rows = result["rows"]
    mean = {s: float(np.mean([r["truth_auc"] for r in rows if r["strategy"] == s])) for s in ("insar_pu", "pu")}
    print(study.markdown(result))
    print("mean truth AUC over models:", mean)
    assert all(0.6 < v < 1 for v in mean.values())  # both learned the hazard: the comparison means something
    assert mean["insar_pu"] <= mean["pu"] + MARGIN
