"""`lsm materialize` runs the sample tables of `lsm add-table`, `lsm status` lists them (issue 11).

Two small synthetic tables (80 rows, two factors), one model, one repeat of random CV: every run takes a
second or two. The runs go to a real Dagster instance (DAGSTER_HOME) through the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from lsm_assets.cli import main
from lsm_core import catalog

# the table op's config, and an area x period op's, which a table run must leave out (no such op there)
RUN_CONFIG = {"ops": {
    "sample_table_evaluation": {"config": {"models": ["logistic_regression"], "repeats": 1, "inner_splits": 2,
                                           "schemes": ["random"], "seed": 0}},
    "trained_models": {"config": {"models": ["logistic_regression"]}},
}}


def _table(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    n = 80
    label = np.repeat([1, 0], n // 2)
    slope = rng.normal(20, 5, n) + 8 * label
    pd.DataFrame({"x": rng.uniform(0, 5000, n), "y": rng.uniform(0, 5000, n), "slope": slope.round(2),
                  "wet": rng.normal(0, 1, n).round(3), "slide": label}).to_csv(path, index=False)
    return path


def _cli(data: Path, *args):
    return CliRunner().invoke(main, ["--data-root", str(data), *map(str, args)])


def _status(data: Path) -> dict:
    out = _cli(data, "status", "--json")
    assert out.exit_code == 0, out.output
    return {t["name"]: t for t in json.loads(out.stdout)["tables"]}


def _evaluated_at(data: Path) -> dict:
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        return dict(con.execute("SELECT area, max(evaluated_at) FROM sample_table_evaluation GROUP BY area")
                    .fetchall())


def _two_tables(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A fresh Dagster home and data root with tables t1 and t2 added; (data root, run config file)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    rc = tmp_path / "run_config.yaml"
    rc.write_text(yaml.safe_dump(RUN_CONFIG))
    for name, seed in (("t1", 1), ("t2", 2)):
        out = _cli(data, "add-table", name, _table(tmp_path / f"{name}.csv", seed), "--label", "slide",
                   "--coords", "x,y", "--factors", "slope,wet")
        assert out.exit_code == 0, out.output
    return data, rc


@pytest.mark.integration
def test_materialize_runs_the_tables_and_status_says_when_and_whether_stale(tmp_path, monkeypatch):
    data, rc = _two_tables(tmp_path, monkeypatch)
    st = _status(data)
    assert {n: (t["stale"], t["reason"], t["last_evaluated"]) for n, t in st.items()} == {
        "t1": (True, "never evaluated", None), "t2": (True, "never evaluated", None)}

    # --table: that table only, with the table op's part of the run config
    out = _cli(data, "materialize", "--table", "t1", "--run-config", rc, "--workers", "1")
    assert out.exit_code == 0, out.output
    assert "ok     table t1" in out.output and "table t2" not in out.output and "1 runs in" in out.output
    first = _evaluated_at(data)
    assert set(first) == {"t1"}
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        models = {r[0] for r in con.execute("SELECT model FROM sample_table_evaluation").fetchall()}
    assert models == {"logistic_regression"}  # the run config reached the table's run
    runs = dg.DagsterInstance.get().get_runs()
    assert len(runs) == 1 and runs[0].tags.get("dagster/partition") == "t1"
    st = _status(data)
    assert st["t1"]["stale"] is False and st["t1"]["reason"] == "up to date" and st["t1"]["last_evaluated"]
    assert st["t2"]["reason"] == "never evaluated"
    human = _cli(data, "status").output
    assert "sample tables: 2" in human and "t1: last evaluated " in human and "; up to date (" in human
    assert "t2: STALE: never evaluated" in human

    # names are checked before anything runs: a table given as an area, an unknown table
    out = _cli(data, "materialize", "--area", "t1")
    assert out.exit_code == 2 and "'t1' is not a study area but a sample table: use --table t1" in out.output
    out = _cli(data, "materialize", "--table", "nope")
    assert out.exit_code == 2 and "unknown sample table 'nope' (--table; known: t1, t2)" in out.output
    assert len(dg.DagsterInstance.get().get_runs()) == 1

    # the table file changes: stale, with the time of the evaluation it outdates
    _table(tmp_path / "t1.csv", seed=7)
    st = _status(data)
    assert st["t1"]["stale"] is True and st["t1"]["reason"] == "table file changed since the last evaluation"
    assert st["t1"]["last_evaluated"] is not None
    assert "t1: last evaluated " in _cli(data, "status").output and "STALE: table file changed" in _cli(
        data, "status").output

    # no filter: every table (no area is registered)
    out = _cli(data, "materialize", "--run-config", rc, "--workers", "1")
    assert out.exit_code == 0, out.output
    assert "ok     table t1" in out.output and "ok     table t2" in out.output
    second = _evaluated_at(data)
    assert set(second) == {"t1", "t2"} and second["t1"] > first["t1"]
    assert all(not t["stale"] for t in _status(data).values())

    # an edited spec (here: the factors) outdates the evaluation as well
    spec = data / "tables" / "t2.yaml"
    spec.write_text(spec.read_text().replace("- wet\n", ""))
    assert _status(data)["t2"]["reason"] == "table spec changed since the last evaluation"


@pytest.mark.slow
@pytest.mark.integration
def test_tables_run_side_by_side_in_worker_processes(tmp_path, monkeypatch):
    """The default path of `lsm materialize` (one worker process per core): tables go to the pool too."""
    data, rc = _two_tables(tmp_path, monkeypatch)
    out = _cli(data, "materialize", "--run-config", rc, "--workers", "2")
    assert out.exit_code == 0, out.output
    assert out.output.index("ok     table t1") < out.output.index("ok     table t2")
    assert set(_evaluated_at(data)) == {"t1", "t2"} and all(not t["stale"] for t in _status(data).values())
