"""Exceptions that users, sensors and assets can catch by kind.

Every error raised on bad input names the file (when there is one) and the problem, so that a
message in the Dagster UI or a quarantine ``.reason.txt`` is enough to fix the input.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "DeliveryError", "GridMismatchError", "InputFileError", "InventoryError", "LsmError",
           "ModelError", "SamplingError", "ShapeError"]


class LsmError(Exception):
    """Base class of every error raised by lsm_core."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class InputFileError(LsmError):
    """An input file is missing, unreadable or breaks its file contract (DESIGN 5)."""


class GridMismatchError(InputFileError):
    """A layer is on another grid than the study area (CRS, extent or shape) and cannot be aligned."""


class DeliveryError(InputFileError):
    """An InSAR delivery is malformed: bad delivery.yaml, unknown unit, bands that do not match dates."""


class InventoryError(InputFileError):
    """A landslide inventory file lacks ids, dates or geometries, or has invalid ones."""


class ConfigError(LsmError, ValueError):
    """A study-area configuration (area.yaml) or a tunable is invalid."""


class SamplingError(LsmError, ValueError):
    """Samples cannot be drawn as asked (no positives before the period end, a pool too small)."""


class ShapeError(LsmError, ValueError):
    """An array argument has the wrong dimensions or a length that does not match its partner's."""


class ModelError(LsmError):
    """A model cannot be trained or applied (constant factor, missing classes, version mismatch)."""
