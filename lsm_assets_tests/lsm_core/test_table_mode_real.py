"""Table mode on real public tables (../shared/datasets, see each folder's SOURCE.md).

Fewer repeats than the README's runs (``lsm evaluate-table`` with the defaults or more), to keep CI
within minutes on two cores: the book's 100 x 5 folds become 5 x 5 (LR) and 1 x 5 (all six, the
tuning as the CLI does it); Hong Kong runs one spatial partition with LightGBM only, on a seeded
uniform sample of 3,000 of its 19,898 rows (the README's figures use the whole table), with the
inner folds drawn once (``inner_repeats=1``; the CLI draws them ``INNER_REPEATS`` = 2 times) and the
InSAR-PU strategy only where it is compared (with DV); South Tyrol runs the temporal split alone
(no CV) for the forest, the best model there, and the logistic regression.

Measured CPU seconds per test (one process, no threads; on the shared 2-core machine wall time was
2-4 x longer): Ecuador LR 13, the six-model fixture 80 (170 with 2 x 5 folds), Hong Kong 57 (205 with 6,000
rows, inner folds drawn twice and InSAR-PU in both runs), South Tyrol 99 (174 with LightGBM as
well): about 250 s for the file, was 566 s.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from lsm_core.models import MODEL_NAMES
from lsm_core.sample_table import load_sample_table
from lsm_core.table_mode import evaluate_table

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
LSL = DATA / "ecuador_lsl" / "lsl.csv"
HK = DATA / "hongkong_insar_lsm" / "samples_HK.csv"
TYROL = DATA / "south_tyrol_spacetime" / "samples_2012_2019.csv"
BOOK_GLM_SPATIAL, BOOK_SVM_SPATIAL = 0.77, 0.74  # Geocomputation with R ch. 12 (ecuador_lsl/SOURCE.md)

HK_FACTORS = ["land use", "lithology", "DEM", "slope", "curvature", "aspect", "NDVI", "SPI", "TWI", "dis2road",
              "dis2drainage", "dis2catchment", "dis2faults"]
HK_ROWS = 3000  # 6,000 rows and two inner draws took 205 s for the same comparison (DV gain +0.043 then)
HK_INNER_REPEATS = 1
TYROL_CATEGORICAL = ["geology", "landcover", "geomorphonre"]
TYROL_FACTORS = ["elevation", "slope", "aspect", "north", "east", "normheight", "standheight", "concavity", "convexity",
                 "generalcurv", "planarcurv", "profilecurv", "convergence", "twi", "swi", "tpi", "catchment_area",
                 "distbuild", "distpath", "distrail", "distreetrail", "mean_prec", "effective_area_prob",
                 *TYROL_CATEGORICAL]

pytestmark = pytest.mark.slow


def _need(path: Path) -> None:
    # the shared datasets are part of the project's set-up (../shared beside it): missing is a failure
    assert path.is_file(), f"shared dataset not found at {path}: put ../shared/datasets beside the project"


@pytest.fixture(scope="module")
def lsl():
    _need(LSL)
    return load_sample_table(LSL, label="lslpts", coords="x,y")


def test_ecuador_logistic_regression_matches_the_books_spatial_cv(lsl):
    r = evaluate_table(lsl, models=["logistic_regression"], n_repeats=5, schemes=("random", "spatial"))
    m = r.models["logistic_regression"]
    print(f"ecuador logistic regression AUC (5 x 5 folds): spatial {m.spatial_cv_auc:.3f} "
          f"(sd {m.spatial_cv_auc_sd:.3f}), random {m.random_cv_auc:.3f}")
    assert r.factors == ("slope", "cplan", "cprof", "elev", "log10_carea") and (r.n_positive, r.n_negative) == (175, 175)
    assert m.spatial_cv_auc == pytest.approx(BOOK_GLM_SPATIAL, abs=0.03)
    assert m.spatial_cv_auc < m.random_cv_auc  # the book's point: random CV is optimistic here


@pytest.fixture(scope="module")
def six_on_lsl(lsl) -> dict[str, float]:
    r = evaluate_table(lsl, models=MODEL_NAMES, n_repeats=1, schemes=("spatial",))
    spatial = {k: m.spatial_cv_auc for k, m in r.models.items()}
    print("ecuador spatial CV AUC (1 x 5 folds):", {k: round(v, 3) for k, v in spatial.items()})
    return spatial


def test_ecuador_best_of_six_beats_the_books_tuned_svm(six_on_lsl):
    assert max(six_on_lsl.values()) > BOOK_SVM_SPATIAL


def test_ecuador_best_of_six_beats_the_books_glm(six_on_lsl):
    # issue 11's bar. Measured (1 x 5 folds): LightGBM 0.779 (0.785 over 2 x 5 folds, 0.783 over the README's 5 x 5,
    # each of those repeats 0.777-0.790), nested tuning picking boosted stumps (an additive model) from
    # lsm_core.table_tuning's candidates; GBDT 0.757, logistic regression 0.751, SVM 0.744
    assert max(six_on_lsl.values()) > BOOK_GLM_SPATIAL


def test_hong_kong_with_and_without_dv_and_insar_pu_against_random():
    _need(HK)
    base = {"label": "label", "coords": "X,Y", "categorical": ["land use", "lithology"], "deformation": "DV",
            "deformation_nodata": 1e-6}  # SOURCE.md: DV = 1e-6 marks no InSAR coverage
    runs, coords = {}, {}
    # without DV, only the table's own absences are scored (the InSAR-PU strategy is compared with DV, below)
    for tag, factors, spec in (("with_dv", [*HK_FACTORS, "DV"], base),
                               ("without_dv", HK_FACTORS, {k: base[k] for k in ("label", "coords", "categorical")})):
        table = load_sample_table(HK, factors=factors, **spec)
        table = table.subset(np.sort(np.random.default_rng(0).choice(len(table.y), HK_ROWS, replace=False)))
        coords[tag] = table.coords
        runs[tag] = evaluate_table(table, models=["lightgbm"], n_repeats=1, inner_splits=2, schemes=("spatial",),
                                   inner_repeats=HK_INNER_REPEATS)
    folds = {k: r.folds.set_index(["strategy", "repeat", "fold"])["auc"] for k, r in runs.items()}
    np.testing.assert_array_equal(coords["with_dv"], coords["without_dv"])  # same rows, so the same spatial folds
    for r in runs.values():
        assert r.n_positive + r.n_negative == HK_ROWS and 0.5 < r.n_positive / HK_ROWS < 0.6  # 11,264 / 19,898
    f = runs["with_dv"].folds
    # one yardstick: both strategies are scored on the same test folds (same rows)
    assert (f[f.strategy == "random"]["n_test"].to_numpy() == f[f.strategy == "insar_pu"]["n_test"].to_numpy()).all()
    assert (f[f.strategy == "insar_pu"]["n_train"].to_numpy() < f[f.strategy == "random"]["n_train"].to_numpy()).all()
    assert set(runs["without_dv"].folds.strategy) == {"random"}
    gain_dv = (folds["with_dv"]["random"] - folds["without_dv"]["random"]).to_numpy()
    gain_pu = (folds["with_dv"]["insar_pu"] - folds["with_dv"]["random"]).to_numpy()
    m_with, m_without = runs["with_dv"].models["lightgbm"], runs["without_dv"].models["lightgbm"]
    print(f"hong kong lightgbm spatial CV AUC: with DV {m_with.spatial_cv_auc:.3f}, without {m_without.spatial_cv_auc:.3f}"
          f" (paired gain {gain_dv.mean():+.3f}); InSAR-PU {m_with.insar_pu_spatial_cv_auc:.3f} vs random "
          f"{m_with.spatial_cv_auc:.3f} (paired {gain_pu.mean():+.3f})")
    assert np.isfinite(gain_pu).all() and len(gain_pu) == 5
    # 2,805 of the positives were added *because* InSAR saw them move (SOURCE.md): DV must carry signal.
    # Measured (3,000 rows, inner folds drawn once): with DV 0.856, without 0.825 (paired +0.031, positive in 4
    # of 5 folds); InSAR-PU 0.719 vs random 0.856
    assert gain_dv.mean() > 0


def test_south_tyrol_temporal_beats_a_plain_random_forest():
    _need(TYROL)
    table = load_sample_table(TYROL, label="landslide", coords="x,y", factors=TYROL_FACTORS,
                              categorical=TYROL_CATEGORICAL, date="event_date")
    split = dt.date(2018, 1, 1)
    # the forest is the best model here. Measured (README run, all four tuned as the CLI does): forest 0.894,
    # LightGBM 0.886, GBDT 0.881, logistic regression 0.855; the two boosted models (~110 of its 207 CPU s) are left
    # out, the forest alone takes ~95 CPU s
    r = evaluate_table(table, models=["logistic_regression", "random_forest"], split=split, schemes=())
    before = table.dates < np.datetime64(split)
    plain = RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=1).fit(table.X[before], table.y[before])
    later = ~before
    from sklearn.metrics import roc_auc_score

    plain_auc = roc_auc_score(table.y[later], plain.predict_proba(table.X[later])[:, 1])
    temporal = {k: m.temporal for k, m in r.models.items()}
    print(f"south tyrol 2012-2017 -> 2018-2019: plain RF {plain_auc:.3f};",
          {k: round(t.auc, 3) for k, t in temporal.items()})
    for k, t in temporal.items():
        print(k, {name: (round(f.threshold, 3), round(f.ta, 3), round(f.por, 3), round(f.lor, 3),
                         round(f.prone_share, 3)) for name, f in t.at.items()})
    t = next(iter(temporal.values()))
    assert t.n_train == (90, 1779) and t.n_later == (76, 618)  # SOURCE.md: 2018: 35 + 2019: 41 later landslides
    assert plain_auc == pytest.approx(0.886, abs=0.02)  # the folder's own measurement, reproduced
    best = max(temporal, key=lambda k: temporal[k].auc)
    for f in temporal[best].at.values():
        assert f.lor == pytest.approx(1 - f.por) and 0 <= f.prone_share <= 1
    # issue 11's bar, the plain forest measured in this run. Measured: tuned forest 0.894 (nested tuning, all on
    # 2012-2017 rows) vs plain 0.890; a margin well inside the sampling noise of 76 later landslides
    assert temporal[best].auc > plain_auc
