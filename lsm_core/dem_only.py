"""A study area with only a DEM and landslide points: terrain factors -> samples -> six models -> map -> prone areas.

The raster path for the commonest real-world case (a DEM, an inventory of initiation points, an
outline; no other layers, no InSAR, no dates), in lsm_core alone: terrain factors are written
with ``terrain.terrain_factors``; positives are the inventory points' pixels and negatives are
drawn uniformly (seeded) from the valid pixels inside the outline that hold no landslide, as many
as ``ratio`` x positives; ``table_mode.evaluate_table`` scores the six models under spatial CV
with nested tuning; the best one (highest spatial-CV AUC) is refitted with nested tuning on all
samples and maps every valid pixel; the weighted-JS threshold (P = positive pixels, Q = valid pixels
above t) gives t*, and ``prone.prone_areas`` the filtered prone layer. TA is reported at t*, 50 %
and the start of the "high" natural-breaks class; POR / LOR are not computable without dates.

Memory: the factor stack and the map are held whole (7 float32 values per pixel), which suits
areas up to a few 10^7 pixels; larger areas go through the Dagster assets, which work in windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio import features

from lsm_core.errors import SamplingError
from lsm_core.io import read_raster, write_raster
from lsm_core.models import MODEL_NAMES
from lsm_core.own_area import AreaFilesCheck, _read_inventory
from lsm_core.prone import ProneAreasResult, natural_breaks, prone_areas
from lsm_core.sample_table import SampleTable
from lsm_core.table_mode import TableEvaluation, evaluate_table, tuned_fit
from lsm_core.terrain import TERRAIN_BANDS, terrain_factors
from lsm_core.threshold import js_threshold_curve

__all__ = ["DemOnlyResult", "NO_DATES_STATUS", "dem_only_run"]

NO_DATES_STATUS = "not computable: the inventory has no dates"


@dataclass(frozen=True)
class DemOnlyResult:
    """Outputs and figures of ``dem_only_run``; shares 0..1, t* in percent."""

    evaluation: TableEvaluation  # spatial CV of the six models on the samples
    map_model: str
    terrain: Path
    probability: Path
    prone_raster: Path
    prone_gpkg: Path
    t_star_pct: float
    ta: dict[str, float]  # threshold name -> share of positive pixels in the prone class (before filtering)
    prone_share: dict[str, float]  # threshold name -> share of valid pixels at or above the threshold
    prone_summary: ProneAreasResult  # prone.prone_areas summary at t* (after opening/closing and small-cluster removal)
    por_lor_status: str = NO_DATES_STATUS


def _valid_mask(stack: np.ndarray, check: AreaFilesCheck) -> np.ndarray:
    valid = np.isfinite(stack).all(axis=0)
    if "boundary" in check.layers:
        outline = gpd.read_file(check.layers["boundary"]).to_crs(check.grid.crs)
        valid &= features.geometry_mask(outline.geometry, out_shape=valid.shape, invert=True,
                                        transform=check.grid.affine)
    return valid


def dem_only_run(check: AreaFilesCheck, out_dir: str | Path, *, inventory_label: str | None = None,
                 models: Sequence[str] = MODEL_NAMES, ratio: float = 1.0, n_repeats: int = 5,
                 inner_splits: int = 3, random_state: int = 0) -> DemOnlyResult:
    """Terrain factors to prone areas for a checked DEM-only area (see the module docstring); writes to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grid = check.grid
    terrain = terrain_factors(check.dem, grid, out / "terrain_factors.tif")
    stack = read_raster(terrain)
    valid = _valid_mask(stack, check)
    events, _ = _read_inventory(check.inventory, grid, inventory_label, None)
    pts = events.geometry.representative_point()
    rows, cols = grid.rowcol(pts.x.to_numpy(), pts.y.to_numpy())
    on = (rows >= 0) & (rows < valid.shape[0]) & (cols >= 0) & (cols < valid.shape[1])
    on[on] = valid[rows[on], cols[on]]
    pos_flat = np.unique(np.ravel_multi_index((rows[on], cols[on]), valid.shape))
    pool = np.setdiff1d(np.flatnonzero(valid.ravel()), pos_flat)
    n_neg = int(round(ratio * len(pos_flat)))
    if len(pos_flat) < 10 or len(pool) < n_neg:
        raise SamplingError(f"{len(pos_flat)} landslide pixels inside the area and a pool of {len(pool)} pixels: "
                            f"need >= 10 and >= {n_neg}", check.inventory)
    neg_flat = np.sort(np.random.default_rng(random_state).choice(pool, n_neg, replace=False))
    flat = np.concatenate([pos_flat, neg_flat])
    r, c = np.unravel_index(flat, valid.shape)
    X = pd.DataFrame(stack[:, r, c].T, columns=list(TERRAIN_BANDS))
    t = grid.transform  # pixel centres, map units
    xs, ys = t[2] + (c + 0.5) * t[0], t[5] + (r + 0.5) * t[4]
    y = np.r_[np.ones(len(pos_flat), np.int64), np.zeros(n_neg, np.int64)]
    table = SampleTable(check.inventory, X, y, np.column_stack([xs, ys]))
    evaluation = evaluate_table(table, models=models, n_repeats=n_repeats, inner_splits=inner_splits,
                                schemes=("spatial",), random_state=random_state)
    best = max(evaluation.models, key=lambda k: evaluation.models[k].spatial_cv_auc)
    model = tuned_fit(best, X, y, table.coords, inner_splits=inner_splits, random_state=random_state)
    prob = np.full(valid.shape, np.nan, np.float32)
    idx = np.flatnonzero(valid.ravel())
    for start in range(0, len(idx), 200_000):  # bounded memory for the model's intermediate arrays
        part = idx[start:start + 200_000]
        pr, pc = np.unravel_index(part, valid.shape)
        prob[pr, pc] = model.predict_proba(pd.DataFrame(stack[:, pr, pc].T, columns=list(TERRAIN_BANDS)))[:, 1]
    probability = write_raster(out / "susceptibility.tif", prob[None], grid, ["probability"])
    curve = js_threshold_curve(prob, np.where(valid, stack, np.nan), (r[:len(pos_flat)], c[:len(pos_flat)]),
                               valid=valid, factor_names=list(TERRAIN_BANDS))
    breaks = natural_breaks(prob[valid], 5, seed=random_state)
    thresholds = {"adaptive_js": curve.t_star_pct / 100, "fixed_50": 0.5, "natural_breaks_high": float(breaks[-2])}
    p_pos, p_all = prob.ravel()[pos_flat], prob[valid]
    ta = {k: float(np.mean(p_pos >= t)) for k, t in thresholds.items()}
    share = {k: float(np.mean(p_all >= t)) for k, t in thresholds.items()}
    summary = prone_areas(probability, thresholds["adaptive_js"], out / "prone_areas.tif", out / "prone_areas.gpkg")
    return DemOnlyResult(evaluation, best, Path(terrain), Path(probability), out / "prone_areas.tif",
                         out / "prone_areas.gpkg", curve.t_star_pct, ta, share, summary)

