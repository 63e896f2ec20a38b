"""The study-area grid and window-by-window iteration over it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from affine import Affine
from numpy.typing import ArrayLike
from rasterio.crs import CRS
from rasterio.windows import Window

from lsm_core.errors import GridMismatchError

__all__ = ["AreaGrid", "Block", "DEFAULT_BLOCK", "iter_blocks"]

DEFAULT_BLOCK = 512


@dataclass(frozen=True)
class AreaGrid:
    """A north-up raster grid: CRS, affine transform and shape in pixels (rows, cols)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    height: int
    width: int
    nodata_mask_path: str | None = field(default=None, compare=False)

    @classmethod
    def from_bounds(cls, crs: str, bounds: tuple[float, float, float, float], resolution_m: float) -> AreaGrid:
        """Grid covering ``bounds`` (xmin, ymin, xmax, ymax, metres) at ``resolution_m``."""
        xmin, ymin, xmax, ymax = bounds
        width = int(round((xmax - xmin) / resolution_m))
        height = int(round((ymax - ymin) / resolution_m))
        transform = (resolution_m, 0.0, xmin, 0.0, -resolution_m, ymax)
        return cls(CRS.from_user_input(crs).to_string(), transform, height, width)

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def resolution_m(self) -> float:
        return float(self.transform[0])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in CRS units."""
        a, _, c, _, e, f = self.transform
        return (c, f + e * self.height, c + a * self.width, f)

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    def pixel_centers(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x and y (CRS units) of pixel centres, as 2-D arrays for ``window`` or the whole grid."""
        w = window or Window(0, 0, self.width, self.height)
        a, _, c, _, e, f = self.transform
        cols = np.arange(w.col_off, w.col_off + w.width) + 0.5
        rows = np.arange(w.row_off, w.row_off + w.height) + 0.5
        return np.meshgrid(c + a * cols, f + e * rows)

    def window_transform(self, window: Window) -> Affine:
        """Affine transform of a window of the grid."""
        return self.affine @ Affine.translation(window.col_off, window.row_off)

    def rowcol(self, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of points (CRS units); outside points get indices off the grid."""
        a, _, c, _, e, f = self.transform
        return (np.floor((np.asarray(y) - f) / e).astype(np.int64), np.floor((np.asarray(x) - c) / a).astype(np.int64))

    def check_same(self, other: AreaGrid, path: str | Path | None = None) -> None:
        """Raise GridMismatchError when ``other`` is not this grid."""
        if CRS.from_user_input(other.crs) != CRS.from_user_input(self.crs):
            raise GridMismatchError(f"CRS {other.crs} differs from the area grid's {self.crs}", path)
        if other.shape != self.shape or not np.allclose(other.transform, self.transform, atol=1e-6):
            raise GridMismatchError(
                f"grid {other.shape} {other.transform} differs from the area grid {self.shape} {self.transform}", path
            )

    def windows(self, block: int = DEFAULT_BLOCK, halo: int = 0) -> Iterator[Block]:
        """Blocks covering the grid row-major; each read window is padded by ``halo`` pixels where possible."""
        yield from iter_blocks(self.height, self.width, block, halo)

    def with_mask_under(self, root: str | Path) -> AreaGrid:
        """The same grid with ``nodata_mask_path`` resolved against ``root`` (an absolute path stays as it is).

        Stored grids keep the mask path relative to the data root, so a warehouse can be moved.
        """
        if self.nodata_mask_path is None:
            return self
        return replace(self, nodata_mask_path=str(Path(root) / self.nodata_mask_path))

    def relative_to(self, root: str | Path) -> AreaGrid:
        """The same grid with a mask path under ``root`` made relative to it (for storage)."""
        mask = self.nodata_mask_path
        if mask is None or not Path(mask).is_absolute() or not Path(mask).is_relative_to(root):
            return self
        return replace(self, nodata_mask_path=str(Path(mask).relative_to(root)))

    def to_json(self) -> str:
        return json.dumps(
            {"crs": self.crs, "transform": list(self.transform), "height": self.height, "width": self.width,
             "nodata_mask_path": self.nodata_mask_path},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> AreaGrid:
        d = json.loads(text)
        return cls(d["crs"], tuple(d["transform"]), int(d["height"]), int(d["width"]), d.get("nodata_mask_path"))


@dataclass(frozen=True)
class Block:
    """One tile of a windowed pass: ``read`` includes the halo; ``inner`` crops the read array back to ``write``."""

    read: Window
    write: Window
    inner: tuple[slice, slice]


def iter_blocks(height: int, width: int, block: int = DEFAULT_BLOCK, halo: int = 0) -> Iterator[Block]:
    """Blocks of at most ``block`` x ``block`` pixels, with read windows grown by ``halo`` and clipped to the raster."""
    for r0 in range(0, height, block):
        for c0 in range(0, width, block):
            h, w = min(block, height - r0), min(block, width - c0)
            rr0, cc0 = max(r0 - halo, 0), max(c0 - halo, 0)
            rr1, cc1 = min(r0 + h + halo, height), min(c0 + w + halo, width)
            yield Block(
                read=Window(cc0, rr0, cc1 - cc0, rr1 - rr0),
                write=Window(c0, r0, w, h),
                inner=(slice(r0 - rr0, r0 - rr0 + h), slice(c0 - cc0, c0 - cc0 + w)),
            )
