"""Quality measures behind the asset checks: grid alignment, nodata, VIF, sample balance, AUC, TA, rising LOR.

Each function returns plain numbers and a verdict so a notebook user gets the same answer as
the Dagster check. Rasters are read window by window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rasterio.crs import CRS

from lsm_core.grid import AreaGrid
from lsm_core.io import RasterFile

__all__ = ["Verdict", "auc_floor", "grid_alignment", "nodata_shares", "nodata_verdict", "rising_lor",
           "sample_balance", "ta_floor", "vif_verdict"]

# Defaults of the checks (configurable where they are called).
MAX_NODATA_SHARE = 0.2  # share of the area's valid pixels a factor may lack
MAX_VIF = 10.0  # the usual multicollinearity limit
MAX_IMBALANCE = 0.2  # negatives may differ from ratio x positives by this share
MIN_SPATIAL_CV_AUC = 0.6
MIN_TA = 0.5
RISING_LOR_RUNS = 3  # LOR rising over this many evaluations in a row


@dataclass(frozen=True)
class Verdict:
    """A check's outcome: passed or not, a one-line message, and the numbers behind it."""

    passed: bool
    message: str
    values: dict = field(default_factory=dict)


def grid_alignment(path, grid: AreaGrid) -> Verdict:
    """Whether the raster at ``path`` lies exactly on the area ``grid`` (CRS, transform to 1e-6 of a pixel, shape)."""
    other = RasterFile(path).grid
    problems = []
    if CRS.from_user_input(other.crs) != CRS.from_user_input(grid.crs):
        problems.append(f"CRS {other.crs} != {grid.crs}")
    if other.shape != grid.shape:
        problems.append(f"shape {other.shape} != {grid.shape}")
    tol = 1e-6 * grid.resolution_m
    if not np.allclose(other.transform[:6], grid.transform[:6], atol=tol, rtol=0):
        problems.append(f"transform {tuple(other.transform[:6])} != {tuple(grid.transform[:6])}")
    values = {"crs": other.crs, "shape": f"{other.height} x {other.width}"}
    if problems:
        return Verdict(False, f"{path}: off the area grid: " + "; ".join(problems), values)
    return Verdict(True, "on the area grid", values)


def nodata_shares(path, mask_path, *, block: int = 512) -> dict[str, float]:
    """Per band: the share (0..1) of the area's valid pixels (mask = 1) that are nodata (NaN) in the raster."""
    raster, mask = RasterFile(path), RasterFile(mask_path)
    names = raster.names
    missing = np.zeros(len(names), dtype=np.int64)
    valid = 0
    for b in raster.grid.windows(block):
        inside = np.nan_to_num(mask.read(b.write)[0]) > 0
        valid += int(inside.sum())
        data = raster.read(b.write)
        missing += np.isnan(data[:, inside]).sum(axis=1)
    return {n: float(m / valid) if valid else 1.0 for n, m in zip(names, missing, strict=True)}


def nodata_verdict(shares: dict[str, float], limit: float = MAX_NODATA_SHARE) -> Verdict:
    """Passes when every band's nodata share is at most ``limit``."""
    bad = {k: round(v, 4) for k, v in shares.items() if v > limit}
    values = {f"nodata_{k}": round(v, 4) for k, v in shares.items()} | {"limit": limit}
    if bad:
        return Verdict(False, f"factors with more than {limit:.0%} nodata inside the area: {bad}", values)
    return Verdict(True, f"every factor has at most {limit:.0%} nodata", values)


def vif_verdict(vif: dict[str, float], limit: float = MAX_VIF) -> Verdict:
    """Passes when every factor's variance inflation factor is below ``limit``."""
    bad = {k: round(v, 2) for k, v in vif.items() if not v < limit}
    values = {f"vif_{k}": round(float(v), 3) for k, v in vif.items()} | {"limit": limit}
    if bad:
        return Verdict(False, f"VIF at or above {limit}: {bad}", values)
    return Verdict(True, f"max VIF {max(vif.values()):.2f} < {limit}", values)


def sample_balance(n_positive: int, negatives: pd.DataFrame, ratio: float = 1.0,
                   tolerance: float = MAX_IMBALANCE) -> Verdict:
    """Negatives per strategy against ``ratio`` x positives; passes within ``tolerance`` (relative)."""
    expected = ratio * n_positive
    counts = negatives.groupby("strategy").size().to_dict() if len(negatives) else {}
    values = {"positives": int(n_positive), "expected_negatives": float(expected)} | {
        f"negatives_{k}": int(v) for k, v in counts.items()}
    if expected <= 0:
        return Verdict(False, "no positive samples", values)
    bad = {k: int(v) for k, v in counts.items() if abs(v - expected) / expected > tolerance}
    if bad or not counts:
        return Verdict(False, f"negatives per strategy {bad or counts} differ from {expected:.0f} "
                              f"(ratio {ratio} x {n_positive} positives) by more than {tolerance:.0%}", values)
    return Verdict(True, f"every strategy has {expected:.0f} +/- {tolerance:.0%} negatives", values)


def auc_floor(table: pd.DataFrame, floor: float = MIN_SPATIAL_CV_AUC, column: str = "spatial_cv_auc") -> Verdict:
    """The best model of every strategy reaches ``floor`` on ``column`` (spatial-CV AUC by default)."""
    best = table.groupby("strategy")[column].max()
    values = {f"best_{k}": round(float(v), 4) for k, v in best.items()} | {"floor": floor}
    bad = {k: round(float(v), 3) for k, v in best.items() if not v >= floor}
    if bad:
        return Verdict(False, f"strategies whose best {column} is below {floor}: {bad}", values)
    return Verdict(True, f"best {column} of every strategy >= {floor}", values)


def ta_floor(evaluation: pd.DataFrame, floor: float = MIN_TA, threshold_name: str = "adaptive_js") -> Verdict:
    """The training accuracy (TA) of the ``threshold_name`` prone areas reaches ``floor``."""
    row = evaluation[evaluation["threshold_name"] == threshold_name].iloc[-1]
    ta = float(row["TA"])
    values = {"TA": round(ta, 4), "floor": floor, "threshold": float(row["threshold"])}
    if not ta >= floor:
        return Verdict(False, f"TA {ta:.3f} of the {threshold_name} prone areas is below {floor}", values)
    return Verdict(True, f"TA {ta:.3f} >= {floor}", values)


def rising_lor(history: pd.DataFrame, runs: int = RISING_LOR_RUNS, threshold_name: str = "adaptive_js") -> Verdict:
    """Fails ("re-evaluate this area") when LOR grew at each of the last ``runs`` evaluations (paper b, 2.3).

    ``history``: rows of the ``prone_area_evaluation`` table of one area and period, any order.
    Rising LOR means later landslides fall outside the prone areas more and more: the map ages.
    """
    h = history[history["threshold_name"] == threshold_name].sort_values("evaluated_at")
    lor = h["LOR"].astype(float).to_numpy()[-(runs + 1):]
    values = {"evaluations": int(len(h)), "recent_LOR": ", ".join(f"{v:.3f}" for v in lor)}
    if len(lor) >= runs + 1 and np.all(np.diff(lor) > 0):
        return Verdict(False, f"LOR rose over the last {runs} evaluations ({values['recent_LOR']}): "
                              "re-evaluate this area", values)
    return Verdict(True, "LOR is not rising", values)
