"""area.yaml and delivery.yaml contracts, intake to archive/quarantine, inventories and the catalog."""

import datetime as dt

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import Point, box

from lsm_core import catalog
from lsm_core.area import load_area, period_bounds, period_key
from lsm_core.delivery import load_delivery
from lsm_core.errors import ConfigError, DeliveryError, InputFileError
from lsm_core.grid import AreaGrid
from lsm_core.intake import archived_deliveries, delivery_for, intake_deliveries
from lsm_core.inventory import events_after, read_inventory
from lsm_core.io import write_raster

GRID = AreaGrid.from_bounds("EPSG:32649", (400000, 2850000, 401000, 2851000), 20)


def _delivery(folder, **over):
    folder.mkdir(parents=True)
    spec = {"area": "karst", "period_start": "2019-01", "period_end": "2020-12", "unit": "mm/yr"}
    spec.update(over)
    (folder / "delivery.yaml").write_text(yaml.safe_dump(spec))
    write_raster(folder / "velocity.tif", np.zeros((1, *GRID.shape), "float32"), GRID, ["velocity"])
    return folder


def test_period_keys_round_trip():
    assert period_key(dt.date(2016, 2, 1), dt.date(2017, 6, 30)) == "201602-201706"
    assert period_bounds("201602-201712") == (dt.date(2016, 2, 1), dt.date(2017, 12, 31))
    with pytest.raises(ConfigError, match="YYYYMM-YYYYMM"):
        period_bounds("2016-2017")


def test_area_yaml_errors_name_the_file(tmp_path):
    folder = tmp_path / "karst"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"karst/area\.yaml.*not found"):
        load_area(folder)
    (folder / "area.yaml").write_text("name: karst\ncrs: EPSG:32649\nresolution_m: 10\nbounds: [0, 0, 10, 10]\n"
                                      "layers: {dem: dem.tif}\n")
    with pytest.raises(ConfigError, match=r"area\.yaml.*missing layers"):
        load_area(folder)
    (folder / "area.yaml").write_text("name: Karst Area\n")
    with pytest.raises(ConfigError, match="must match the folder name"):
        load_area(folder)


def test_delivery_validation(tmp_path):
    d = load_delivery(_delivery(tmp_path / "d1", unit="mm/day"))
    assert d.kind == "velocity" and d.period == "201901-202012" and d.to_mm == pytest.approx(365.25)
    with pytest.raises(DeliveryError, match=r"d2/delivery\.yaml.*unknown unit 'furlongs/yr'"):
        load_delivery(_delivery(tmp_path / "d2", unit="furlongs/yr"))
    with pytest.raises(DeliveryError, match="period_start .* is not before"):
        load_delivery(_delivery(tmp_path / "d3", period_start="2021-01"))
    empty = tmp_path / "d4"
    empty.mkdir()
    (empty / "delivery.yaml").write_text("area: karst\n")
    with pytest.raises(DeliveryError, match="found none"):
        load_delivery(empty)


def test_intake_archives_good_deliveries_as_versions_and_quarantines_bad_ones(tmp_path):
    inc = tmp_path / "incoming" / "insar" / "karst"
    grids = {"karst": GRID}
    _delivery(inc / "s1_2019_2020")
    _delivery(inc / "bad_unit", unit="parsecs")
    res = intake_deliveries(tmp_path, grids, settle_s=0)
    assert [v.delivery.period for v in res.accepted] == ["201901-202012"] and res.accepted[0].version == 1
    assert len(res.rejected) == 1 and "unknown unit" in res.rejected[0][1]
    assert (tmp_path / "quarantine" / "insar" / "karst" / "bad_unit.reason.txt").read_text().startswith(str(inc))
    assert (tmp_path / "quarantine" / "insar" / "karst" / "bad_unit" / "velocity.tif").exists()
    # a second delivery for the same period is a new version beside the first; the newest is used
    _delivery(inc / "s1_2019_2020_again")
    res = intake_deliveries(tmp_path, grids, settle_s=0)
    assert not res.rejected and res.accepted[0].version == 2 and res.accepted[0].replaces == "s1_2019_2020"
    assert delivery_for(tmp_path, "karst", "201901-202012").folder.name == "s1_2019_2020_again"
    assert [d.folder.name for d in archived_deliveries(tmp_path)] == ["s1_2019_2020_again"]
    assert (tmp_path / "archive" / "insar" / "karst" / "s1_2019_2020" / "velocity.tif").exists()
    with pytest.raises(DeliveryError, match="no accepted InSAR delivery"):
        delivery_for(tmp_path, "karst", "202101-202212")
    # a delivery for an unknown area is quarantined too
    _delivery(tmp_path / "incoming" / "insar" / "atlantis" / "x", area="atlantis")
    assert "unknown study area" in intake_deliveries(tmp_path, grids, settle_s=0).rejected[0][1]


def _events():
    polys = [box(400100, 2850100, 400200, 2850250), box(400500, 2850500, 400600, 2850600)]
    return gpd.GeoDataFrame({"event_id": ["k-1", "k-2"], "event_date": ["2018-05-01", "2022-07-09"]},
                            geometry=polys, crs=GRID.crs)


def test_inventory_reads_polygons_points_and_csv(tmp_path):
    _events().to_file(tmp_path / "inv.gpkg")
    ev = read_inventory(tmp_path / "inv.gpkg", GRID)
    assert ev["event_id"].tolist() == ["k-1", "k-2"]
    assert ev.loc[0, "init_x"] == pytest.approx(400150) and ev.loc[0, "init_y"] == pytest.approx(2850175)
    assert events_after(ev, dt.date(2020, 12, 31))["event_id"].tolist() == ["k-2"]
    pd.DataFrame({"event_id": ["k-3"], "date": ["2023-01-02"], "x": [400300.0], "y": [2850300.0]}).to_csv(
        tmp_path / "new.csv", index=False)
    csv = read_inventory(tmp_path / "new.csv", GRID)
    assert csv.geometry.iloc[0].equals(Point(400300, 2850300))


@pytest.mark.parametrize("mutate,match", [
    (lambda g: g.assign(event_date=["2018-05-01", "not a date"]), "unparseable event dates"),
    (lambda g: g.assign(event_id=["k-1", "k-1"]), "duplicate event ids"),
    (lambda g: g.drop(columns="event_id"), "no event id column"),
    (lambda g: g.translate(xoff=5000), "outside the study area|does not overlap"),
])
def test_bad_inventories_name_the_file(tmp_path, mutate, match):
    mutate(_events()).to_file(tmp_path / "bad.gpkg")
    with pytest.raises(InputFileError, match=rf"bad\.gpkg.*({match})"):
        read_inventory(tmp_path / "bad.gpkg", GRID)


def test_catalog_appends_each_event_once_and_filters_by_date(tmp_path):
    _events().to_file(tmp_path / "inv.gpkg")
    ev = read_inventory(tmp_path / "inv.gpkg", GRID)
    with catalog.connect(tmp_path / "lsm.duckdb") as con:
        assert catalog.upsert_events(con, "karst", ev, "inv.gpkg").added == ("k-1", "k-2")
        again = catalog.upsert_events(con, "karst", ev, "inv.gpkg")
        assert not again.changed and again.unchanged == 2
        assert len(catalog.upsert_events(con, "loess", ev, "inv.gpkg").added) == 2  # ids are per area
        later = catalog.read_events(con, "karst", GRID.crs, after=dt.date(2020, 12, 31))
        assert later["event_id"].tolist() == ["k-2"] and later.geometry.iloc[0].geom_type == "Polygon"
        state = catalog.inventory_state(con, "karst")
    assert state.n_events == 2 and state.latest_event_date == dt.date(2022, 7, 9)
    with catalog.connect(tmp_path / "lsm.duckdb", read_only=True) as con:  # the file persists
        assert con.execute("SELECT count(*) FROM landslide_events").fetchone()[0] == 4


def test_a_catalog_begun_without_the_spatial_extension_takes_events_later(tmp_path):
    # the plain result tables connect with spatial=False; the schema that connection creates must
    # still hold the geometries the spatial connections write and read
    _events().to_file(tmp_path / "inv.gpkg")
    ev = read_inventory(tmp_path / "inv.gpkg", GRID)
    db = tmp_path / "lsm.duckdb"
    with catalog.connect(db, spatial=False) as con:
        catalog.replace_partition_rows(con, "js_threshold", pd.DataFrame({"t_star": [0.4]}), "karst", "201901-202012")
        with pytest.raises(duckdb.Error, match="spatial"):
            con.execute("SELECT ST_Point(1, 2)")
    with catalog.connect(db) as con:
        assert catalog.upsert_events(con, "karst", ev, "inv.gpkg").added == ("k-1", "k-2")
        later = catalog.read_events(con, "karst", GRID.crs, after=dt.date(2020, 12, 31))
    assert later["event_id"].tolist() == ["k-2"] and later.geometry.iloc[0].geom_type == "Polygon"
    with catalog.connect(db, spatial=False) as con:
        assert con.execute("SELECT count(*) FROM landslide_events").fetchone()[0] == 2
