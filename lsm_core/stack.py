"""The factor stack: every factor aligned on the area grid with one nodata mask, and its VIF table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from lsm_core.errors import ConfigError, GridMismatchError, ModelError
from lsm_core.io import RasterFile, RasterWriter, _masked_read

__all__ = ["FactorStackResult", "band_stats", "build_factor_stack", "categorical_bands", "recorded_nodata_shares",
           "sample_valid_pixels", "vif", "vif_table"]


@dataclass(frozen=True)
class FactorStackResult:
    """What ``build_factor_stack`` wrote: the stack's band names, its categorical bands and its valid-pixel count."""

    bands: tuple[str, ...]  # in stack order (band i + 1)
    categorical: tuple[str, ...]  # bands holding integer class codes
    valid_pixels: int  # pixels valid in every band and on the mask

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON, Dagster metadata)."""
        return asdict(self)


def categorical_bands(path: str | Path) -> list[str]:
    """Names of the categorical bands of a raster (its ``categorical`` tag)."""
    with rasterio.open(path) as src:
        tag = src.tags().get("categorical", "")
    return [t for t in tag.split(",") if t]


def build_factor_stack(sources: Sequence[tuple[RasterFile, Sequence[str]]], mask: RasterFile, out_path: str | Path,
                       *, block: int = 512) -> FactorStackResult:
    """Stack the named bands of each source; a pixel is nodata in every band if it is in any (or off the mask).

    Returns a ``FactorStackResult``: the band names, categorical bands and valid-pixel count.
    """
    grid = mask.grid
    names: list[str] = []
    categorical: list[str] = []
    indexes: list[list[int]] = []  # 1-based bands of each source, in stack order
    for src, bands in sources:
        grid.check_same(src.grid, src.path)
        src_names = src.names
        missing = [b for b in bands if b not in src_names]
        if missing:
            raise GridMismatchError(f"bands {missing} not in {src_names}", src.path)
        names += list(bands)
        indexes.append([src_names.index(n) + 1 for n in bands])
        src_cat = categorical_bands(src.path)
        categorical += [b for b in bands if b in src_cat]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate band names in the stack: {names}")
    n_valid = n_inside = 0
    missing_inside = np.zeros(len(names), dtype=np.int64)
    lo, hi = np.full(len(names), np.inf), np.full(len(names), -np.inf)
    codes: dict[str, set[float]] = {n: set() for n in categorical}
    # no overviews: models read the stack at full resolution, and they were 70 % of its write
    with ExitStack() as opened, RasterWriter(out_path, grid, names, block=block, overviews=False) as w:
        # every source opened once for all windows (not once per window and band lookup)
        datasets = [opened.enter_context(rasterio.open(src.path)) for src, _ in sources]
        mask_ds = opened.enter_context(rasterio.open(mask.path))
        for b in grid.windows(block):
            parts = [_masked_read(ds, b.write, idx) for ds, idx in zip(datasets, indexes, strict=True)]
            data = np.concatenate(parts, axis=0)
            m = _masked_read(mask_ds, b.write, None)[0]
            valid = (m == 1) & np.isfinite(data).all(axis=0)
            data[:, ~valid] = np.nan
            n_valid += int(valid.sum())
            # the nodata_share check's numbers (quality.nodata_shares), counted on what is written
            inside = np.nan_to_num(m) > 0
            n_inside += int(inside.sum())
            missing_inside += np.isnan(data[:, inside]).sum(axis=1)
            if valid.any():
                vals = data[:, valid]
                lo, hi = np.minimum(lo, vals.min(axis=1)), np.maximum(hi, vals.max(axis=1))
                for n in categorical:
                    codes[n].update(np.unique(vals[names.index(n)]).tolist())
            w.write(data, b.write)
        # the valid range and class codes let later passes (e.g. the JS histograms) bin in one read
        w.tags.update(categorical=",".join(categorical), band_stats=json.dumps(
            {n: {"min": float(a), "max": float(z), **({"codes": sorted(codes[n])} if n in codes else {})}
             for n, a, z in zip(names, lo, hi, strict=True)}),
            nodata_shares=json.dumps({n: float(k / n_inside) if n_inside else 1.0
                                      for n, k in zip(names, missing_inside, strict=True)}))
    return FactorStackResult(bands=tuple(names), categorical=tuple(categorical), valid_pixels=n_valid)


def recorded_nodata_shares(path: str | Path) -> dict[str, float] | None:
    """Per band, the share of the mask's pixels that are nodata, as ``build_factor_stack`` counted them while
    writing (the same numbers as ``quality.nodata_shares`` of the file); None for a stack without the tag."""
    with rasterio.open(path) as src:
        text = src.tags().get("nodata_shares")
    return json.loads(text) if text else None


def band_stats(path: str | Path) -> dict[str, dict]:
    """Valid min, max (and class codes of categorical bands) recorded when the stack was built; {} if absent."""
    with rasterio.open(path) as src:
        text = src.tags().get("band_stats")
    return json.loads(text) if text else {}


def sample_valid_pixels(stack: RasterFile, n: int, *, seed: int, block: int = 512) -> np.ndarray:
    """Up to ``n`` valid pixels (pixels x bands), a seeded uniform draw window by window (``sampling.sample_pixels``)."""
    from lsm_core.sampling import sample_pixels  # imported here: sampling pulls in scikit-learn

    return sample_pixels(stack, n, seed=seed, stream="vif", block=block, allow_fewer=True).values


def vif(X: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Variance inflation factor of each column: 1 / (1 - R^2) of its regression on the others."""
    std = X.std(axis=0)
    constant = [n for n, s in zip(names, std, strict=True) if s == 0]
    if constant:
        raise ModelError(f"constant factors have no VIF (and no information): {constant}")
    corr = np.corrcoef(X, rowvar=False)
    # the diagonal of the inverse correlation matrix is exactly the VIF; pinv copes with perfect collinearity
    inv = np.linalg.pinv(corr)
    return {n: float(v) for n, v in zip(names, np.diag(inv), strict=True)}


def vif_table(stack: RasterFile, *, n_sample: int = 100_000, seed: int = 0) -> dict[str, float]:
    """VIF of the continuous factors of a stack, from a seeded sample of valid pixels."""
    names = stack.names
    cat = set(categorical_bands(stack.path))
    X = sample_valid_pixels(stack, n_sample, seed=seed)
    keep = [i for i, n in enumerate(names) if n not in cat]
    return vif(X[:, keep].astype("float64"), [names[i] for i in keep])
