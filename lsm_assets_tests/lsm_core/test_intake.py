"""Intake of InSAR deliveries and inventory updates: settle, validate, version, revise, lose nothing."""

import datetime as dt
import os
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import box

from lsm_core import catalog
from lsm_core.delivery import check_delivery_data, load_delivery
from lsm_core.errors import DeliveryError, InventoryError
from lsm_core.event_intake import intake_inventories, intake_inventory_file, inventory_records
from lsm_core.grid import AreaGrid
from lsm_core.intake import READY_MARKER, delivery_for, delivery_versions, intake_deliveries
from lsm_core.inventory import read_inventory
from lsm_core.io import write_raster

GRID = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 401000, 2851000), 20)
GRIDS = {"karst": GRID}
DATES = ["2019-02-01", "2019-08-01", "2020-02-01", "2020-08-01"]


def _series(folder, dates=DATES, bands=None, grid=GRID, ready=True, **over):
    """A time-series delivery for period 2019-01 .. 2020-12 (one band per date unless ``bands``)."""
    folder.mkdir(parents=True)
    spec = {"area": "karst", "period_start": "2019-01", "period_end": "2020-12", "unit": "mm", "dates": dates}
    spec.update(over)
    (folder / "delivery.yaml").write_text(yaml.safe_dump(spec))
    n = len(dates) if bands is None else bands
    write_raster(folder / "timeseries.tif", np.zeros((n, *grid.shape), "float32"), grid,
                 [f"d{i}" for i in range(n)])
    if ready:
        (folder / READY_MARKER).touch()
    return folder


def _reason(root, name):
    return (root / "quarantine" / "insar" / "karst" / f"{name}.reason.txt").read_text()


def test_bad_and_half_copied_deliveries_are_quarantined_or_held_while_a_good_one_is_taken(tmp_path):
    inc = tmp_path / "incoming" / "insar" / "karst"
    empty = _series(inc / "empty")
    (empty / "timeseries.tif").write_bytes(b"")  # 0 bytes, and its dates lie outside the period too
    (empty / "delivery.yaml").write_text(yaml.safe_dump({"area": "karst", "period_start": "2019-01",
                                                         "period_end": "2020-12", "unit": "mm",
                                                         "dates": ["2018-06-01", *DATES]}))
    _series(inc / "zero_bytes").joinpath("timeseries.tif").write_bytes(b"")
    _series(inc / "outside", dates=["2018-06-01", *DATES[1:]])
    _series(inc / "bands", bands=3)
    _series(inc / "elsewhere", grid=AreaGrid.from_bounds("EPSG:32649", (500000, 2950000, 501000, 2951000), 20))
    coh = _series(inc / "coherence")
    write_raster(coh / "coherence.tif", np.ones((1, 10, 10), "float32"),
                 AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 400200, 2850200), 20), ["coherence"])
    _series(inc / "copying", ready=False)  # no _READY and its files changed just now
    no_yaml = inc / "no_yaml_yet"
    no_yaml.mkdir()
    (no_yaml / "timeseries.tif").write_bytes(b"II*\0")
    _series(inc / "good")

    res = intake_deliveries(tmp_path, GRIDS, settle_s=60)

    assert [v.delivery.folder.name for v in res.accepted] == ["good"]
    assert delivery_for(tmp_path, "karst", "201901-202012").folder.name == "good"
    assert sorted(p.name for p, _ in res.held) == ["copying", "no_yaml_yet"]
    assert (inc / "copying" / "delivery.yaml").exists() and (inc / "no_yaml_yet").exists()  # left in place
    assert "waiting until nothing changed" in dict((p.name, r) for p, r in res.held)["copying"]
    assert "dates lie outside the period" in _reason(tmp_path, "empty")
    assert "timeseries.tif: is empty (0 bytes)" in _reason(tmp_path, "zero_bytes")
    assert "1 dates lie outside the period 2019-01-01 .. 2020-12-31: ['2018-06-01']" in _reason(tmp_path, "outside")
    assert "timeseries.tif: has 3 bands but delivery.yaml lists 4 dates" in _reason(tmp_path, "bands")
    assert "does not overlap the study area" in _reason(tmp_path, "elsewhere")
    assert "coherence.tif: coherence grid" in _reason(tmp_path, "coherence")
    assert {p.name for p, _ in res.rejected} == {"empty", "zero_bytes", "outside", "bands", "elsewhere", "coherence"}
    # nothing lost: every rejected folder is in quarantine with its files
    assert all((p / "delivery.yaml").exists() for p, _ in res.rejected)

    # once the copy has settled it is judged (settle time passed, no marker needed)
    later = time.time() + 120
    res = intake_deliveries(tmp_path, GRIDS, settle_s=60, now=later)
    assert [v.delivery.folder.name for v in res.accepted] == ["copying"] and res.accepted[0].version == 2
    assert [p.name for p, _ in res.held] == ["no_yaml_yet"]


def test_a_redelivered_period_is_a_new_version_and_the_newest_is_used(tmp_path):
    inc = tmp_path / "incoming" / "insar" / "karst"
    _series(inc / "s1")
    first = intake_deliveries(tmp_path, GRIDS).accepted[0]
    _series(inc / "s1")  # the provider reprocessed it and sent it under the same name
    second = intake_deliveries(tmp_path, GRIDS).accepted[0]
    assert (first.version, second.version) == (1, 2) and second.replaces == "s1"
    assert second.delivery.folder.name.startswith("s1__")  # beside the first, never over it
    versions = delivery_versions(tmp_path, "karst")
    assert [v.version for v in versions] == [1, 2]
    assert all((v.delivery.folder / "timeseries.tif").exists() for v in versions)
    assert delivery_for(tmp_path, "karst", "201901-202012") == second.delivery
    assert first.key != second.key


def test_delivery_data_checks_name_the_file(tmp_path):
    d = load_delivery(_series(tmp_path / "nocrs"))
    with open(d.data_path, "wb") as f:  # a TIFF header that rasterio cannot decode
        f.write(b"II*\0" + b"\0" * 64)
    with pytest.raises(DeliveryError, match=r"nocrs/timeseries\.tif: cannot be read as a raster"):
        check_delivery_data(d, GRID)


def _events(ids=("k-1", "k-2"), dates=("2018-05-01", "2022-07-09"), dx=0.0):
    polys = [box(400100 + dx, 2850100, 400200 + dx, 2850250), box(400500, 2850500, 400600, 2850600)]
    return gpd.GeoDataFrame({"event_id": list(ids), "event_date": list(dates)}, geometry=polys[:len(ids)],
                            crs=GRID.crs)


@pytest.mark.parametrize("frame,match", [
    (pd.DataFrame({"event_id": ["a", None], "date": ["2020-01-01", "2020-02-01"], "x": [400100.0, 400200.0],
                   "y": [2850100.0, 2850200.0]}), r"1 events have no event id"),
    (pd.DataFrame({"event_id": ["a", "b"], "date": ["2020-01-01", "2099-02-01"], "x": [400100.0, 400200.0],
                   "y": [2850100.0, 2850200.0]}), r"1 events are dated in the future .*b \(2099-02-01\)"),
])
def test_inventory_rejects_missing_ids_and_future_dates(tmp_path, frame, match):
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InventoryError, match=rf"bad\.csv: {match}"):
        read_inventory(tmp_path / "bad.csv", GRID)


def test_inventory_in_another_crs_reprojects_the_initiation_points_too(tmp_path):
    ev = _events().assign(init_x=[400150.0, 400550.0], init_y=[2850175.0, 2850550.0])
    ll = ev.to_crs("EPSG:4326")
    lon_lat = gpd.GeoSeries(gpd.points_from_xy(ev["init_x"], ev["init_y"]), crs=GRID.crs).to_crs("EPSG:4326")
    ll = ll.assign(init_x=lon_lat.x.to_numpy(), init_y=lon_lat.y.to_numpy())
    ll.to_file(tmp_path / "wgs84.geojson")
    out = read_inventory(tmp_path / "wgs84.geojson", GRID)
    assert out["init_x"].to_numpy() == pytest.approx([400150.0, 400550.0], abs=0.01)
    assert out["init_y"].to_numpy() == pytest.approx([2850175.0, 2850550.0], abs=0.01)


def test_inventory_drops_are_validated_revised_and_archived(tmp_path):
    inc = tmp_path / "incoming" / "inventory" / "karst"
    inc.mkdir(parents=True)
    db = tmp_path / "warehouse" / "lsm.duckdb"
    _events().to_file(inc / "first.gpkg")
    pd.DataFrame({"id": ["z", "y"], "date": ["2020-01-01", "2099-01-01"], "x": [400100.0, 400200.0],
                  "y": [2850100.0, 2850200.0]}).to_csv(inc / "future.csv", index=False)
    pd.DataFrame({"date": ["2020-01-01"], "x": [400100.0], "y": [2850100.0]}).to_csv(inc / "noids.csv", index=False)
    res = intake_inventories(tmp_path, GRIDS, db, settle_s=0)
    assert [r.added for r in res.accepted] == [("k-1", "k-2")]
    reasons = {p.name: r for p, r in res.rejected}
    assert "dated in the future" in reasons["future.csv"] and "no event id column" in reasons["noids.csv"]
    q = tmp_path / "quarantine" / "inventory" / "karst"
    assert (q / "future.csv").exists() and "future" in (q / "future.csv.reason.txt").read_text()
    assert not any(inc.iterdir())

    # a correction (k-1 moved and redated) and a new event; k-2 is the same again
    _events(dates=("2018-06-01", "2022-07-09"), dx=30.0).to_file(inc / "second.gpkg")
    res = intake_inventories(tmp_path, GRIDS, db, settle_s=0)
    rec = res.accepted[0]
    assert rec.added == () and rec.unchanged == 1
    assert rec.corrected == ("k-1: date and geometry (2018-05-01 -> 2018-06-01), revision 1 -> 2",)
    with catalog.connect(db, read_only=True) as con:
        current = catalog.read_events(con, "karst", GRID.crs)
        revs = catalog.event_revisions(con, "karst", "k-1")
        state = catalog.inventory_state(con, "karst")
    assert len(current) == 2 and current.set_index("event_id").loc["k-1", "revision"] == 2
    assert str(current.set_index("event_id").loc["k-1", "event_date"])[:10] == "2018-06-01"
    assert revs["revision"].tolist() == [1, 2] and revs["source_file"].str.contains("second__").iloc[1]
    assert state.n_events == 2 and state.n_revisions == 3

    # re-ingesting the first file later does not undo the correction; dropping it again changes nothing
    first = next(r for r in inventory_records(tmp_path, "karst") if r.received_as == "first.gpkg")
    dup = intake_inventory_file(first.archived, "karst", tmp_path, GRIDS, db, copy=True)
    assert dup.record_id == first.record_id and dup.added == ("k-1", "k-2")  # the original record is kept
    with catalog.connect(db, read_only=True) as con:
        assert catalog.read_events(con, "karst", GRID.crs).set_index("event_id").loc["k-1", "revision"] == 2
        assert catalog.inventory_state(con, "karst").n_revisions == 3
    assert len(inventory_records(tmp_path, "karst")) == 2


def test_a_file_still_being_written_is_held(tmp_path):
    inc = tmp_path / "incoming" / "inventory" / "karst"
    inc.mkdir(parents=True)
    _events().to_file(inc / "new.gpkg")
    os.utime(inc / "new.gpkg", (time.time(), time.time()))
    res = intake_inventories(tmp_path, GRIDS, tmp_path / "lsm.duckdb", settle_s=30, today=dt.date(2030, 1, 1))
    assert not res.accepted and res.held[0][0].name == "new.gpkg" and (inc / "new.gpkg").exists()
