"""Inventory updates for an area added with an undated inventory (issue 11), through `lsm ingest-events`.

The area: the demo karst's DEM and its 37 landslides known by the end of 2020, given to `lsm add-area` as
bare x, y (no dates, no InSAR, no other layer) with the monitoring period 2019-2020. Its own events carry
the period's first day as a stand-in, so POR / LOR start "not computable". Updates must be dated: an
undated file is quarantined with the reason; the 14 landslides of 2021-2024, dated, are the later events
that make POR / LOR of the period computable.
"""

from __future__ import annotations

import json

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lsm_assets.cli import main
from lsm_assets.definitions import defs
from lsm_assets.materialize import run_partition
from lsm_assets.partitions import area_period_key
from lsm_assets.registry import register
from lsm_core import catalog
from lsm_core.area import load_area
from lsm_core.area_scope import NO_DATES_STATUS

PERIOD = "201901-202012"
PERIOD_END = "2020-12-31"
MODELS = ["logistic_regression"]
# one strategy, one model: the whole area x period graph in a few seconds
RUN_CONFIG = {"ops": {
    "negative_samples": {"config": {"strategies": ["random"], "seed": 0}},
    "trained_models": {"config": {"strategies": ["random"], "models": MODELS, "without_velocity_models": [],
                                  "seed": 0}},
    "shap_importance": {"config": {"models": MODELS, "n_explain": 50, "n_bootstrap": 2,
                                   "stability_model": "logistic_regression"}},
    "susceptibility_map": {"config": {"scheduler_address": "serial"}},
}}


def _cli(data, *args):
    return CliRunner().invoke(main, ["--data-root", str(data), *map(str, args)])


@pytest.fixture(scope="module")
def hills(tmp_path_factory, demo_data):
    home = tmp_path_factory.mktemp("undated")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    (home / "dagster_home").mkdir()
    karst = load_area(demo_data / "study_areas" / "karst")
    events = gpd.read_file(karst.layers["inventory"])
    dates = pd.to_datetime(events["event_date"])
    known, later = events[dates <= PERIOD_END], events[dates > PERIOD_END]
    pd.DataFrame({"x": known["init_x"], "y": known["init_y"]}).to_csv(home / "known.csv", index=False)
    later_csv = home / "later.csv"
    pd.DataFrame({"event_id": later["event_id"], "event_date": dates[dates > PERIOD_END].dt.strftime("%Y-%m-%d"),
                  "x": later["init_x"], "y": later["init_y"]}).to_csv(later_csv, index=False)
    data = home / "data"
    try:
        out = _cli(data, "add-area", "hills", "--dem", karst.layers["dem"], "--inventory", home / "known.csv",
                   "--period", PERIOD)
        assert out.exit_code == 0, out.output
        instance = dg.DagsterInstance.get()
        register(instance, data)
        for key, config in (("hills", None), (str(area_period_key("hills", PERIOD)), RUN_CONFIG)):
            run = run_partition(defs, instance, data, key, config)
            assert run.success, run.error
        yield {"data": data, "home": home, "instance": instance, "later": later_csv, "n_known": len(known),
               "n_later": len(later), "add_area_output": out.output}
    finally:
        mp.undo()


def _evaluations(data) -> pd.DataFrame:
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        return con.execute("SELECT evaluated_at, threshold_name, POR, LOR, L, L_dropped, status FROM prone_area_evaluation "
                           "WHERE area = 'hills' ORDER BY evaluated_at, threshold_name").df()


@pytest.mark.integration
def test_an_undated_update_is_quarantined_with_the_reason(hills):
    data = hills["data"]
    undated = hills["home"] / "undated.csv"
    undated.write_text("event_id,x,y\nu-1,400000,2855000\n")
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        before = catalog.inventory_state(con, "hills")
    out = _cli(data, "ingest-events", undated, "--area", "hills")
    assert out.exit_code == 1
    reason = (data / "quarantine" / "inventory" / "hills" / "undated.csv.reason.txt").read_text()
    assert str(undated) in reason and "no event date column" in reason
    # why, for this area: its own inventory is undated, so an update has to place its events in time
    assert "study area 'hills' was added with an undated inventory" in reason
    assert "POR / LOR" in reason and "REJECTED" in out.output
    assert (data / "quarantine" / "inventory" / "hills" / "undated.csv").read_text() == undated.read_text()
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        assert catalog.inventory_state(con, "hills") == before


@pytest.mark.integration
def test_dated_later_events_make_por_and_lor_computable(hills):
    data = hills["data"]
    first = _evaluations(data)
    assert len(first) == 3 and (first["status"] == NO_DATES_STATUS).all() and first["POR"].isna().all()
    assert "until dated events after the period are taken in" in hills["add_area_output"]

    # the 2021-2024 events, dated: taken in; until the evaluation re-runs, lsm status calls the period stale
    out = _cli(data, "ingest-events", hills["later"], "--area", "hills")
    assert out.exit_code == 0, out.output
    assert f"{hills['n_later']} new, 0 corrected" in out.output
    st = json.loads(_cli(data, "status", "--json").stdout)
    assert st["periods"]["hills"] == [PERIOD]  # a period the area declares (no InSAR)
    assert [s["reason"][:18] for s in st["stale"] if s["area"] == "hills"] == ["inventory changed "]

    # dating one of the area's own (undated) events after the period is a correction: a later event too
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        own = con.execute("SELECT ST_X(init_point), ST_Y(init_point) FROM landslide_events "
                          "WHERE area = 'hills' AND event_id = 'ev0001'").fetchone()
    fix = hills["home"] / "dated_ev0001.csv"
    fix.write_text(f"event_id,event_date,x,y\nev0001,2022-03-01,{own[0]},{own[1]}\n")
    out = _cli(data, "ingest-events", fix, "--area", "hills", "--materialize")
    assert out.exit_code == 0, out.output
    assert "corrected ev0001: date (2019-01-01 -> 2022-03-01)" in out.output
    n_later = hills["n_later"] + 1
    rows = _evaluations(data)
    latest = rows[rows["evaluated_at"] == rows["evaluated_at"].max()].set_index("threshold_name")
    assert len(rows) == 6  # the history keeps the first evaluation beside the new one
    # the dated events after the period are the later events; the own events with stand-in dates never are
    assert (latest["L"] + latest["L_dropped"] == n_later).all() and (latest["L"] > 0).all()
    assert latest["POR"].between(0, 1).all() and np.allclose(latest["POR"] + latest["LOR"], 1)
    assert NO_DATES_STATUS not in set(latest["status"])
    with catalog.connect(data / "warehouse" / "lsm.duckdb", read_only=True) as con:
        comp = con.execute("SELECT prediction_rate_auc, later_events FROM model_comparison WHERE area = 'hills'"
                           ).df()
    assert (comp["later_events"] == n_later).all() and comp["prediction_rate_auc"].between(0, 1).all()
    st = json.loads(_cli(data, "status", "--json").stdout)
    assert not [s for s in st["stale"] if s["area"] == "hills"]
    event = hills["instance"].get_latest_materialization_event(dg.AssetKey("landslide_inventory"))
    assert f"({n_later} dated events from updates so far)" in event.asset_materialization.metadata["event_dates"].value
