"""Tests of TA / POR / LOR, the prediction-rate curve and the deformation-susceptibility contingency."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from lsm_core.contingency import contingency_long, deformation_susceptibility_contingency, plot_contingency
from lsm_core.errors import GridMismatchError
from lsm_core.evaluation import (
    NO_LATER_EVENTS,
    NO_SCORED_EVENTS,
    comparison_thresholds,
    evaluate_thresholds,
    evaluation_row,
    mask_summary,
    prediction_rate_curve,
    prone_occurrence,
    training_accuracy,
)
from lsm_core.grid import AreaGrid
from lsm_core.io import write_raster
from lsm_core.prone import natural_breaks, prone_areas

GRID = AreaGrid.from_bounds("EPSG:32647", (500000, 4000000, 500400, 4000300), 10)  # 30 rows x 40 cols
X0, Y1 = 500000, 4000300


def _write(tmp_path, name, arr, names=("probability",), dtype="float32", nodata=np.nan):
    arr = np.asarray(arr, dtype="float32")
    return write_raster(tmp_path / name, arr[None] if arr.ndim == 2 else arr, GRID, list(names), dtype=dtype,
                        nodata=nodata)


def _centre(row, col):
    return X0 + 10 * col + 5, Y1 - 10 * row - 5


@pytest.fixture
def prone(tmp_path):
    """A 10 x 10 prone square (rows 5-14, cols 5-14), as mask raster and GeoPackage; pixel (0, 39) is nodata."""
    prob = np.full(GRID.shape, 0.1)
    prob[5:15, 5:15] = 0.9
    prob[0, 39] = np.nan
    path = _write(tmp_path, "p.tif", prob)
    out = prone_areas(path, 0.5, tmp_path / "m.tif", tmp_path / "m.gpkg", opening_radius_px=0, closing_radius_px=0,
                      min_area_m2=0)
    return out


def _events(cells, *, polygons=False):
    xy = [_centre(r, c) for r, c in cells]
    data = {"event_id": [f"e{i}" for i in range(len(cells))], "event_date": ["2020-01-01"] * len(cells)}
    if polygons:  # no initiation point: the centroid is used
        return gpd.GeoDataFrame(data, geometry=[box(x - 4, y - 4, x + 4, y + 4) for x, y in xy], crs=GRID.crs)
    data.update(init_x=[x for x, _ in xy], init_y=[y for _, y in xy])
    return gpd.GeoDataFrame(data, geometry=[Point(x + 500, y) for x, y in xy], crs=GRID.crs)


def test_training_accuracy_on_known_positives(prone):
    rows = [5, 14, 10, 10, 20, 0]
    cols = [5, 14, 10, 10, 20, 39]  # (10, 10) twice: distinct pixels count once; (0, 39) is nodata: outside
    ta = training_accuracy(prone.raster, rows, cols)
    assert ta.as_dict() == {"TA": 0.6, "n_positive": 5, "n_inside": 3, "n_positive_dropped": 0, "status": "ok"}
    empty = training_accuracy(prone.raster, [], [])
    assert math.isnan(empty.TA) and empty.status.startswith("undefined")
    with pytest.raises(GridMismatchError, match="outside"):
        training_accuracy(prone.raster, [30], [0])


@pytest.mark.parametrize("source", ["gpkg", "raster"])
@pytest.mark.parametrize("polygons", [False, True])
def test_por_three_of_four_later_events_inside(prone, source, polygons):
    events = _events([(5, 5), (14, 14), (9, 12), (20, 25)], polygons=polygons)
    res = prone_occurrence(getattr(prone, source), events)
    assert res.POR == 0.75 and res.LOR == 0.25 and res.L == 4 and res.n_inside == 3
    assert res.missed_event_ids == ["e3"] and res.status == "ok"


def test_por_is_undefined_without_later_events_never_zero(prone):
    res = prone_occurrence(prone.gpkg, _events([]))
    assert math.isnan(res.POR) and math.isnan(res.LOR) and res.L == 0
    assert res.status == NO_LATER_EVENTS == "undefined: no events after the period end"
    row = evaluation_row("adaptive_js", 0.5, training=training_accuracy(prone.raster, [5], [5]), occurrence=res,
                         prone_share=prone.prone_share, inventory={"n_events": 12})
    assert math.isnan(row["POR"]) and math.isnan(row["LOR"]) and row["L"] == 0
    assert row["status"] == NO_LATER_EVENTS and row["TA"] == 1.0 and row["inventory_n_events"] == 12
    assert math.isnan(row["map_prediction_rate_auc"]) and "prediction_rate_auc" not in row


@pytest.mark.parametrize("source", ["gpkg", "raster"])
def test_one_rule_events_without_susceptibility_are_dropped_from_por_and_the_curve(prone, tmp_path, source):
    """A later event on a nodata pixel (0, 39) or off the grid is neither a POR hit nor a miss, as in the
    prediction-rate curve; both say how many they dropped."""
    events = _events([(5, 5), (14, 14), (20, 25), (0, 39)])
    off = _events([(0, 0)])
    off["init_x"] -= 1000  # west of the grid
    events = gpd.GeoDataFrame(pd.concat([events, off.assign(event_id="off")], ignore_index=True), crs=GRID.crs)
    naive = prone_occurrence(getattr(prone, source), events)  # without the map: both count as misses
    assert (naive.L, naive.n_inside, naive.POR) == (5, 2, 0.4)
    res = prone_occurrence(getattr(prone, source), events, probability_path=tmp_path / "p.tif")
    assert (res.L, res.n_inside, res.L_dropped) == (3, 2, 2)
    assert res.POR == pytest.approx(2 / 3) and res.LOR == pytest.approx(1 / 3)
    assert res.missed_event_ids == ["e2"] and res.dropped_event_ids == ["e3", "off"]
    curve = prediction_rate_curve(tmp_path / "p.tif", events)
    assert (curve.n_scored, curve.n_dropped) == (res.L, res.L_dropped)
    only_dropped = prone_occurrence(getattr(prone, source), events.iloc[3:], probability_path=tmp_path / "p.tif")
    assert only_dropped.L == 0 and math.isnan(only_dropped.POR) and only_dropped.L_dropped == 2
    assert only_dropped.status == NO_SCORED_EVENTS


def test_one_rule_positives_without_susceptibility_are_dropped_from_ta(prone, tmp_path):
    ta = training_accuracy(prone.raster, [5, 14, 20, 0], [5, 14, 20, 39], probability_path=tmp_path / "p.tif")
    assert ta.as_dict() == {"TA": 2 / 3, "n_positive": 3, "n_inside": 2, "n_positive_dropped": 1, "status": "ok"}


def test_evaluate_thresholds_applies_the_rule_to_every_threshold(prone, tmp_path):
    events = _events([(5, 5), (20, 25), (0, 39)])
    prob = np.tile(np.linspace(0.0, 1.0, GRID.shape[1]), (GRID.shape[0], 1))  # enough values for natural breaks
    prob[0, 39] = np.nan
    path = _write(tmp_path, "gradient.tif", prob)
    rows = evaluate_thresholds(path, 0.5, prone.raster, [5, 0], [5, 39], events,
                               comparison_dir=tmp_path / "cmp", stem="t",
                               prediction_rate=prediction_rate_curve(path, events),
                               opening_radius_px=0, closing_radius_px=0, min_area_m2=0)
    for row in rows:
        assert (row["L"], row["L_dropped"], row["n_positive"], row["n_positive_dropped"]) == (2, 1, 1, 1), row


def test_events_in_another_crs_are_rejected(prone):
    with pytest.raises(GridMismatchError, match="CRS"):
        prone_occurrence(prone.gpkg, _events([(5, 5)]).set_crs("EPSG:32648", allow_override=True))


def test_evaluation_row_has_every_field(prone, tmp_path):
    events = _events([(5, 5), (20, 25)])
    row = evaluation_row("fixed_50", 0.5, training=training_accuracy(prone.raster, [5, 25], [5, 25]),
                         occurrence=prone_occurrence(prone.gpkg, events), prone_share=prone.prone_share,
                         prediction_rate=prediction_rate_curve(tmp_path / "p.tif", events))
    assert set(row) >= {"threshold_name", "threshold", "TA", "POR", "LOR", "L", "L_dropped", "n_positive_dropped",
                        "prone_share", "map_prediction_rate_auc", "status"}
    assert (row["TA"], row["POR"], row["LOR"], row["L"], row["status"]) == (0.5, 0.5, 0.5, 2, "ok")
    assert row["prone_share"] == pytest.approx(100 / (GRID.n_pixels - 1))
    assert mask_summary(prone.raster).as_dict() == {"prone_pixels": 100, "valid_pixels": GRID.n_pixels - 1,
                                             "prone_share": row["prone_share"]}


# --- prediction-rate curve ------------------------------------------------------------------------------

def _naive_prediction_rate(prob, rows, cols):
    """Full sort of the valid pixels by descending probability; the curve steps one pixel at a time."""
    valid = np.isfinite(prob)
    lin = np.flatnonzero(valid)
    order = lin[np.argsort(-prob.ravel()[lin], kind="stable")]
    hits = np.bincount(rows * prob.shape[1] + cols, minlength=prob.size)[order]
    x = np.concatenate([[0.0], np.arange(1, len(order) + 1) / len(order)])
    y = np.concatenate([[0.0], np.cumsum(hits) / len(rows)])
    return x, y, float(np.trapezoid(y, x))


def test_prediction_rate_matches_a_full_sort(tmp_path):
    rng = np.random.default_rng(7)
    prob = rng.beta(2, 3, GRID.shape)
    prob[:3, :4] = np.nan
    path = _write(tmp_path, "p.tif", prob)
    prob = prob.astype("float32").astype(np.float64)  # what the file holds
    rows, cols = rng.integers(3, 30, 300), rng.integers(0, 40, 300)
    # later events are likelier where the probability is high
    keep = rng.random(300) < prob[rows, cols]
    rows, cols = rows[keep], cols[keep]
    events = _events(list(zip(rows, cols, strict=True)))
    curve = prediction_rate_curve(path, events, n_points=51, block=7)
    x, y, auc = _naive_prediction_rate(prob, rows, cols)
    assert curve.n_events == curve.n_scored == len(rows) and curve.status == "ok"
    assert curve.auc == pytest.approx(auc, abs=0.005) and curve.auc > 0.55
    np.testing.assert_allclose(curve.event_share, np.interp(curve.area_share, x, y), atol=0.02)
    assert curve.area_share[0] == 0 and curve.area_share[-1] == 1 and curve.event_share[-1] == 1


def test_prediction_rate_keeps_the_order_of_a_polarised_map(tmp_path):
    """Half the area within 1e-3 of 1 (easy negatives): equal-width bins in p would tie it all in one bin."""
    rng = np.random.default_rng(11)
    score = rng.normal(0, 1, GRID.shape)
    prob = 1 / (1 + np.exp(-12 * score))  # about half the pixels above 0.999 or below 0.001
    path = _write(tmp_path, "p.tif", prob)
    prob = prob.astype("float32").astype(np.float64)
    assert np.mean(prob >= 0.999) > 0.25
    flat = np.flatnonzero(rng.random(prob.size) < 0.3 * (score.ravel() > 1))  # later events on the top tail
    rows, cols = flat // 40, flat % 40
    assert len(flat) > 20 and np.all(prob[rows, cols] >= 0.999)
    curve = prediction_rate_curve(path, _events(list(zip(rows, cols, strict=True))))
    *_, auc = _naive_prediction_rate(prob, rows, cols)
    assert curve.auc == pytest.approx(auc, abs=0.002)
    # equal-width bins in p tie every event with the whole top bin: the AUC they gave is far off
    top = np.mean(prob >= 0.999)
    assert auc - (1 - top + top / 2) > 0.05


def test_prediction_rate_auc_perfect_and_random(tmp_path):
    rng = np.random.default_rng(3)
    prob = rng.random(GRID.shape)
    path = _write(tmp_path, "p.tif", prob)
    top = np.argsort(-prob.ravel())[:12]
    perfect = prediction_rate_curve(path, _events(list(zip(top // 40, top % 40, strict=True))))
    assert perfect.auc > 0.99
    cells = list(zip(rng.integers(0, 30, 2000), rng.integers(0, 40, 2000), strict=True))
    assert prediction_rate_curve(path, _events(cells)).auc == pytest.approx(0.5, abs=0.03)
    none = prediction_rate_curve(path, _events([]))
    assert math.isnan(none.auc) and none.status == NO_LATER_EVENTS


# --- deformation-susceptibility contingency ------------------------------------------------------------

def test_contingency_counts_shares_and_consistency(tmp_path, prone):
    prob = np.tile(np.linspace(0.01, 0.99, 40), (30, 1))
    vel = np.zeros(GRID.shape)
    vel[:, 30:] = -20.0  # the 10 most susceptible columns deform
    vel[0, :10] = 40.0  # and a few of the least susceptible ones
    vel[29, :] = np.nan
    prob[28, 0] = np.nan
    vpath = _write(tmp_path, "v.tif", np.stack([vel, np.ones(GRID.shape)]), names=("velocity_mm_yr", "quality"))
    ppath = _write(tmp_path, "p2.tif", prob)
    breaks = [0.2, 0.4, 0.6, 0.75]
    res = deformation_susceptibility_contingency(vpath, ppath, susceptibility_breaks=breaks, prone_path=prone.raster)
    counts = res.counts.to_numpy()
    valid = np.isfinite(vel) & np.isfinite(prob)
    valid[0, 39] = False  # nodata of the prone mask
    assert counts.sum() == res.n_valid == valid.sum()
    assert res.counts.index.tolist() == ["<5", "5-15", "15-30", ">=30"]
    assert res.counts.columns.tolist() == ["very_low", "low", "moderate", "high", "very_high"]
    # deforming: rows 0-28 of cols 30-39 (p >= 0.76: very high) less the nodata pixel of the mask,
    # and row 0 of cols 0-9 (p 0.01-0.24: very low, low from col 8)
    assert counts[1].sum() == 0 and counts[2, 4] == counts[2].sum() == 29 * 10 - 1
    assert counts[3].tolist() == [8, 2, 0, 0, 0]
    assert res.n_deforming == 299 and res.consistency_score == pytest.approx(289 / 299)
    np.testing.assert_allclose(res.row_shares.to_numpy()[[0, 2, 3]].sum(axis=1), 1.0)
    assert res.row_shares.iloc[1].isna().all()  # an empty class has no shares, not zeros
    assert res.prone_counts.to_numpy().sum() == valid.sum()
    assert res.prone_counts.loc["<5", "prone"] == 100 and res.prone_consistency == 0.0
    long = contingency_long(res)
    assert len(long) == 4 * 5 + 4 * 2 and long["count"].sum() == 2 * valid.sum()
    out = plot_contingency(res, tmp_path / "plots" / "contingency.png")
    assert out.stat().st_size > 1000 and list((tmp_path / "plots").iterdir()) == [out]


def test_contingency_defaults_to_natural_breaks_and_checks_grids(tmp_path):
    rng = np.random.default_rng(5)
    prob = np.concatenate([rng.normal(0.1, 0.02, 600), rng.normal(0.5, 0.02, 300), rng.normal(0.9, 0.02, 300)])
    ppath = _write(tmp_path, "p.tif", prob.reshape(GRID.shape))
    vpath = _write(tmp_path, "v.tif", np.zeros(GRID.shape))
    res = deformation_susceptibility_contingency(vpath, ppath, sample=400)
    assert len(res.susceptibility_breaks) == 4 and res.n_valid == GRID.n_pixels
    assert math.isnan(res.consistency_score) and res.prone_counts is None
    other = AreaGrid.from_bounds("EPSG:32647", (500000, 4000000, 500410, 4000300), 10)
    bad = write_raster(tmp_path / "bad.tif", np.zeros((1, *other.shape), "float32"), other, ["probability"])
    with pytest.raises(GridMismatchError, match="bad.tif"):
        deformation_susceptibility_contingency(vpath, bad)
    thresholds = comparison_thresholds(ppath, 0.63, sample=400)
    assert thresholds["adaptive_js"] == 0.63 and thresholds["fixed_50"] == 0.5
    assert thresholds["natural_breaks_high"] == pytest.approx(natural_breaks(prob, 5, sample=400)[-2], abs=0.05)
