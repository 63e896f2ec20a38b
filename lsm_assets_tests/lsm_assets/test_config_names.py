"""Strategy, model and CV-scheme names are checked by Dagster's config schema, before a run starts (issue 8)."""

import dagster as dg
import pytest

from lsm_assets.assets.learning import NegativeSamplingConfig, ShapConfig, TrainingConfig
from lsm_assets.assets.tables import TableEvaluationConfig
from lsm_assets.definitions import defs
from lsm_assets.materialize import resources_for
from lsm_assets.partitions import PERIOD, STUDY_AREA, area_period_key
from lsm_core.models import MODEL_NAMES
from lsm_core.sampling import NEGATIVE_STRATEGIES


@pytest.mark.parametrize(("op", "field", "bad"), [("negative_samples", "strategies", "insarpu"),
                                                   ("trained_models", "models", "xgboost"),
                                                   ("trained_models", "without_velocity_models", "gam"),
                                                   ("shap_importance", "models", "random forest")])
def test_a_misspelt_name_is_rejected_by_the_config_schema_before_any_step(tmp_path, op, field, bad):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(STUDY_AREA, ["karst"])
        instance.add_dynamic_partitions(PERIOD, ["201901-202012"])
        with pytest.raises(dg.DagsterInvalidConfigError, match=bad):
            dg.materialize(defs.assets, selection=[op], partition_key=str(area_period_key("karst", "201901-202012")),
                           instance=instance, resources=resources_for(tmp_path),
                           run_config={"ops": {op: {"config": {field: [bad]}}}})
        assert instance.get_runs() == []  # no run was created, let alone a step


def test_parsed_names_are_the_plain_strings_lsm_core_uses():
    assert TrainingConfig().models == list(MODEL_NAMES) and NegativeSamplingConfig().strategies == list(NEGATIVE_STRATEGIES)
    given = TrainingConfig(models=["svm"], strategies=["pu"], without_velocity_models=[])
    assert (given.models, given.strategies) == (["svm"], ["pu"]) and type(given.models[0]) is str
    assert type(ShapConfig(models=["mlp"]).models[0]) is str
    assert TableEvaluationConfig(schemes=["spatial"]).schemes == ["spatial"]
    with pytest.raises(ValueError):
        TableEvaluationConfig(schemes=["temporal"])
