"""Table mode from Dagster: `lsm add-table` registers a sample table, sample_table_evaluation runs it (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from lsm_assets.cli import main
from lsm_assets.definitions import defs
from lsm_assets.materialize import resources_for
from lsm_assets.registry import register
from lsm_core import catalog

LSL = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "ecuador_lsl" / "lsl.csv"
FACTORS = "slope,cplan,cprof,elev,log10_carea"
# two models and one repeat of 5 spatial folds keep the test short; the defaults are the six models x 5 repeats
CONFIG = {"models": ["logistic_regression", "random_forest"], "repeats": 1, "schemes": ["spatial"], "seed": 0}


def _cli(data: Path, *args: str):
    return CliRunner().invoke(main, ["--data-root", str(data), *map(str, args)])


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert LSL.is_file(), f"shared dataset not found at {LSL}: put ../shared beside the project"
    return tmp_path


def test_add_table_checks_the_columns_and_writes_nothing_on_bad_input(home):
    data = home / "data"
    out = _cli(data, "add-table", "lsl", LSL, "--label", "landslide", "--coords", "x,y")
    assert out.exit_code == 2 and str(LSL.name) in out.output and "'landslide'" in out.output
    out = _cli(data, "add-table", "lsl", LSL, "--label", "lslpts", "--coords", "x,y", "--date", "x")
    assert out.exit_code == 2 and "date and split go together" in out.output
    assert not (data / "tables").exists()


@pytest.mark.slow
@pytest.mark.integration
def test_a_registered_table_is_evaluated_by_the_asset_like_the_cli(home):
    data = home / "data"
    out = _cli(data, "add-table", "ecuador_lsl", LSL, "--label", "lslpts", "--coords", "x,y", "--factors", FACTORS)
    assert out.exit_code == 0, out.output
    assert (data / "tables" / "ecuador_lsl.yaml").is_file()
    with dg.instance_for_test() as instance:
        register(instance, data)
        assert instance.get_dynamic_partitions("sample_table") == ["ecuador_lsl"]
        result = dg.materialize(defs.assets, selection=["sample_table_evaluation"], partition_key="ecuador_lsl",
                                instance=instance, resources=resources_for(data),
                                run_config={"ops": {"sample_table_evaluation": {"config": CONFIG}}})
        assert result.success
        meta = {k: v.value for k, v in result.asset_materializations_for_node("sample_table_evaluation")[0]
                .metadata.items()}
    assert meta["n_positive"] == 175 and meta["n_negative"] == 175 and meta["factors"] == FACTORS.replace(",", ", ")
    assert "| logistic_regression |" in meta["models"] and meta["temporal"] != "ok"
    saved = json.loads((data / "warehouse" / "sample_table_evaluation" / "ecuador_lsl.json").read_text())
    lr = saved["models"]["logistic_regression"]["spatial_cv_auc"]
    assert 0.6 < lr < 0.9 and saved["models"]["logistic_regression"]["random_cv_auc"] is None  # spatial CV only
    with catalog.connect(data / "warehouse" / "lsm.duckdb") as con:
        rows = con.execute("SELECT model, spatial_cv_auc FROM sample_table_evaluation WHERE area = 'ecuador_lsl'"
                           ).fetchall()
    assert dict(rows) == pytest.approx({m: saved["models"][m]["spatial_cv_auc"] for m in CONFIG["models"]})
    # the same code as `lsm evaluate-table`: the same folds and seed give the same figure
    cli = _cli(data, "evaluate-table", LSL, "--label", "lslpts", "--coords", "x,y", "--factors", FACTORS,
               "--models", "logistic_regression", "--repeats", "1", "--cv", "spatial", "--json")
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["models"]["logistic_regression"]["spatial_cv_auc"] == pytest.approx(lr)


def test_table_specs_name_their_file_when_wrong(tmp_path):
    from lsm_core.errors import ConfigError
    from lsm_core.table_registry import TableSpec, evaluate_registered, load_spec, register_table

    with pytest.raises(ConfigError, match=r"tables/nope\.yaml.*no table 'nope' registered"):
        load_spec(tmp_path, "nope")
    spec = TableSpec(name="lsl", table=str(LSL), label="lslpts", coords=("x", "y"))
    register_table(tmp_path, spec)
    assert load_spec(tmp_path, "lsl").table == str(LSL.resolve())
    with pytest.raises(ConfigError, match="registered already"):
        register_table(tmp_path, spec)
    with pytest.raises(ConfigError, match=r"must use only \[a-z0-9_-\]"):
        register_table(tmp_path, TableSpec(name="My Table", table=str(LSL), label="lslpts", coords=("x", "y")))
    (tmp_path / "tables" / "bad.yaml").write_text("table: x.csv\nlabel: y\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: a table spec needs table, label and coords"):
        load_spec(tmp_path, "bad")
    with pytest.raises(ConfigError, match=r"unknown CV schemes \['temporal'\]"):
        evaluate_registered(spec, schemes=["temporal"])
