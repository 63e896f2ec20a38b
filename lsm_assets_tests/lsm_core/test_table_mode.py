"""Table mode on small synthetic tables: nested tuning, JSON contract, temporal figures, InSAR-PU pool."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import lsm_core.table_mode as tm
from lsm_assets.cli import main
from lsm_core.errors import ConfigError
from lsm_core.sample_table import load_sample_table
from lsm_core.table_mode import evaluate_table, insar_pu_negatives, temporal_evaluation

JSON_MODEL_KEYS = {"random_cv_auc", "spatial_cv_auc", "spatial_cv_auc_sd", "external_auc", "temporal"}
TEMPORAL_KEYS = {"auc", "t_star_pct", "ta", "por", "lor", "prone_share"}


def _table(n: int = 240, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Points on a 10 km square; landslides where slope is high and the soil code is 2."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    slope = rng.uniform(0, 45, n)
    soil = rng.integers(1, 4, n)
    noise = rng.normal(0, 1, n)
    logit = 0.15 * (slope - 22) + 1.0 * (soil == 2) + shift
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    velocity = np.where(label == 1, rng.normal(-8, 3, n), rng.normal(0, 3, n))
    dates = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, n), unit="D")
    return pd.DataFrame({"X": x, "Y": y, "slope": slope, "soil": soil, "noise": noise, "v": velocity,
                         "date": dates.strftime("%Y-%m-%d"), "slide": label})


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("table") / "samples.csv"
    _table().to_csv(path, index=False)
    return str(path)


def _load(csv: str, **kw):
    return load_sample_table(csv, label="slide", coords="X,Y", factors=["slope", "soil", "noise"],
                             categorical=["soil"], **kw)


def test_load_picks_columns_and_labels(csv):
    t = _load(csv, date="date", deformation="v")
    assert t.factors == ("slope", "soil", "noise") and t.X.shape == (240, 3)
    assert t.coords.shape == (240, 2) and set(np.unique(t.y)) == {0, 1}
    assert t.dates.dtype == np.dtype("datetime64[D]") and t.deformation.shape == (240,)
    default = load_sample_table(csv, label="slide", coords="X,Y", date="date")
    assert default.factors == ("slope", "soil", "noise", "v")  # every numeric column but label and coordinates


def test_tuning_is_nested_inside_each_training_fold(csv, monkeypatch):
    """Every grid point is fitted and validated on rows of the outer training fold only."""
    table = _load(csv)
    seen: list[set] = []
    real = tm.candidate_auc

    def spy(name, X_train, y_train, X_val, y_val, **kw):
        seen.append(set(X_train.index) | set(X_val.index))
        return real(name, X_train, y_train, X_val, y_val, **kw)

    monkeypatch.setattr(tm, "candidate_auc", spy)
    rows = tm._cv_rows("logistic_regression", table, "spatial", "random", n_splits=4, n_repeats=1, inner_splits=2,
                       threshold_mm_yr=5.0, pu_bags=5, seed=0)
    outer = list(tm._outer_splits("spatial", table, 4, 1, 0))
    assert len(rows) == 4 and len(seen) >= 4
    per_fold = len(seen) // 4
    for k, (train, test) in enumerate(outer):
        for rows_used in seen[k * per_fold:(k + 1) * per_fold]:
            assert rows_used <= set(train) and not rows_used & set(test)


def test_evaluate_table_scores_a_learnable_table_and_is_deterministic(csv):
    table = _load(csv)
    a = evaluate_table(table, models=["logistic_regression"], n_repeats=1, inner_splits=2)
    b = evaluate_table(table, models=["logistic_regression"], n_repeats=1, inner_splits=2)
    m = a.models["logistic_regression"]
    assert m.spatial_cv_auc > 0.75 and m.random_cv_auc > 0.75  # slope and soil carry the signal
    assert a.to_json() == b.to_json()
    assert len(a.folds) == 10 and set(a.folds["scheme"]) == {"random", "spatial"}
    assert m.temporal is None and a.temporal_status.startswith("not computable: the table has no dates")


def test_json_has_the_issue_keys(tmp_path, csv):
    other = tmp_path / "other.csv"
    _table(seed=5, shift=0.5).to_csv(other, index=False)
    out = CliRunner().invoke(main, ["evaluate-table", csv, "--label", "slide", "--coords", "X,Y", "--factors",
                                    "slope,soil,noise", "--categorical", "soil", "--external", str(other),
                                    "--deformation", "v", "--date", "date", "--split", "2018-01-01", "--models",
                                    "logistic_regression", "--repeats", "1", "--inner", "2", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)  # the progress bar goes to stderr
    assert "evaluating" in out.stderr and "1/1" in out.stderr  # one bar step per model
    assert {"models", "n_positive", "n_negative", "factors"} <= set(doc)
    assert doc["factors"] == ["slope", "soil", "noise"] and doc["n_positive"] + doc["n_negative"] == 240
    assert set(doc["models"]) == {"logistic_regression"}
    for m in doc["models"].values():
        assert JSON_MODEL_KEYS <= set(m) and TEMPORAL_KEYS <= set(m["temporal"])
        assert 0.5 < m["external_auc"] <= 1.0
        assert m["insar_pu"]["spatial_cv_auc"] is not None
        t = m["temporal"]
        assert 1 <= t["t_star_pct"] <= 99 and t["lor"] == pytest.approx(1 - t["por"])
        assert set(t["at"]) == {"adaptive_js", "fixed_50", "natural_breaks_high"}


def test_temporal_figures_are_shares_at_each_threshold(csv):
    table = _load(csv, date="date")
    r = temporal_evaluation("logistic_regression", table, dt.date(2018, 1, 1), inner_splits=2)
    before = table.dates < np.datetime64("2018-01-01")
    assert r.n_train == (int(table.y[before].sum()), int((table.y[before] == 0).sum()))
    assert r.n_later == (int(table.y[~before].sum()), int((table.y[~before] == 0).sum()))
    lo, hi = r.at["natural_breaks_high"], r.at["fixed_50"]
    assert r.at["adaptive_js"].threshold == pytest.approx(r.t_star_pct / 100)
    for f in r.at.values():
        assert 0 <= f.ta <= 1 and 0 <= f.prone_share <= 1 and f.lor == pytest.approx(1 - f.por)
    # a higher threshold can only shrink every share
    first, second = sorted([lo, hi], key=lambda f: f.threshold)
    assert second.por <= first.por and second.prone_share <= first.prone_share and second.ta <= first.ta
    assert r.auc > 0.7


def test_split_without_dates_is_refused(csv):
    with pytest.raises(ConfigError, match="no dates"):
        evaluate_table(_load(csv), models=["logistic_regression"], split=dt.date(2018, 1, 1))


def test_insar_pu_negatives_come_from_the_low_deformation_absences(csv):
    table = _load(csv, deformation="v")
    v = table.deformation.copy()
    v[:20] = np.nan  # no InSAR coverage: never in the pool
    rows = insar_pu_negatives(table.X, table.y, v, threshold_mm_yr=2.0, n_bags=10)
    negatives = rows[table.y[rows] == 0]
    assert set(np.flatnonzero(table.y == 1)) <= set(rows)
    assert len(negatives) > 0 and np.all(np.abs(v[negatives]) < 2.0)
    assert len(negatives) <= table.n_positive


# -- bad input: one clear line naming the file and the column, exit code 2, nothing computed -----------------

@pytest.mark.parametrize(("edit", "args", "message"), [
    (lambda d: d.drop(columns=["slope"]), [], "missing columns ['slope']"),
    (lambda d: d.assign(slide=d["slide"].where(d.index > 3, 2)), [], "label column 'slide' is not binary"),
    (lambda d: d.assign(slide=1), [], "label column 'slide' holds a single class"),
    (lambda d: d.assign(date=d["date"].where(d.index != 7, "31/02/2019")), ["--date", "date", "--split", "2018-01-01"],
     "date column 'date' has values that do not parse as dates: ['31/02/2019']"),
    (lambda d: d.assign(slope=d["slope"].astype(str).where(d.index != 0, "steep")), [], "column 'slope' must be numeric"),
    (lambda d: d.assign(soil=d["soil"] + 0.5), [], "categorical column 'soil' must hold integer class codes"),
])
def test_bad_tables_fail_with_the_file_and_column(tmp_path, edit, args, message):
    path = tmp_path / "bad.csv"
    edit(_table()).to_csv(path, index=False)
    out = CliRunner().invoke(main, ["evaluate-table", str(path), "--label", "slide", "--coords", "X,Y", "--factors",
                                    "slope,soil,noise", "--categorical", "soil", "--models", "logistic_regression",
                                    "--json", *args])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and out.output.startswith(f"error: {path}: ")
    assert message in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # nothing written


def test_bad_split_date_and_unknown_model_are_config_errors(csv):
    runner = CliRunner()
    base = ["evaluate-table", csv, "--label", "slide", "--coords", "X,Y", "--factors", "slope"]
    out = runner.invoke(main, [*base, "--date", "date", "--split", "2018-13-01"])
    assert out.exit_code == 2 and "split date must be YYYY-MM-DD, got '2018-13-01'" in out.output
    out = runner.invoke(main, [*base, "--models", "xgboost"])
    assert out.exit_code == 2 and "unknown models ['xgboost']" in out.output


def test_the_velocity_factor_is_left_out_of_the_pu_classifier(csv, monkeypatch):
    """The velocity defines the pool; given to the P-vs-U classifier too, it would only relearn the pool's rule."""
    table = load_sample_table(csv, label="slide", coords="X,Y", factors=["slope", "soil", "v"], deformation="v")
    seen = []
    real = tm.insar_pu_negatives

    def spy(X, *args, **kw):
        seen.append(list(X.columns))
        return real(X, *args, **kw)

    monkeypatch.setattr(tm, "insar_pu_negatives", spy)
    tm._cv_rows("logistic_regression", table, "spatial", "insar_pu", n_splits=3, n_repeats=1, inner_splits=2,
                threshold_mm_yr=5.0, pu_bags=5, seed=0)
    assert seen == [["slope", "soil"]] * 3
