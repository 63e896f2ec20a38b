"""A table of sample points (one row per landslide or absence), as most published studies share them.

``load_sample_table`` reads a CSV, checks every named column and returns a ``SampleTable``: the
factor table, 0/1 labels, coordinates (map units of the table's CRS, e.g. m) and, when asked for,
event dates and a deformation velocity (mm/yr). Every bad input raises ``InputFileError`` naming
the file and the column, before anything is computed or written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lsm_core.errors import ConfigError, InputFileError

__all__ = ["SampleTable", "load_sample_table", "parse_coords", "parse_date_column", "parse_split_date"]

_TRUE = {"1", "1.0", "true", "t", "yes"}
_FALSE = {"0", "0.0", "false", "f", "no"}


@dataclass(frozen=True)
class SampleTable:
    """Sample points: factors (DataFrame, one column per factor), labels (1 = landslide), coords (n, 2)."""

    path: Path | None
    X: pd.DataFrame
    y: np.ndarray  # int64 0/1
    coords: np.ndarray  # (n, 2) float, map units
    categorical: tuple[str, ...] = ()
    dates: np.ndarray | None = None  # datetime64[D] per row, or None when the table has no dates
    deformation: np.ndarray | None = None  # velocity per row (mm/yr); NaN = no InSAR coverage
    n_dropped: int = 0  # rows left out because a factor, coordinate or date was missing
    deformation_column: str | None = None  # name of the velocity column (also a factor when listed in X)

    @property
    def factors(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.X.columns)

    @property
    def n_positive(self) -> int:
        return int(self.y.sum())

    @property
    def n_negative(self) -> int:
        return int(len(self.y) - self.y.sum())

    def subset(self, rows: np.ndarray) -> SampleTable:
        """The rows ``rows`` (integer indices or a boolean mask) as a new table."""
        take = lambda a: None if a is None else a[rows]
        return replace(self, X=self.X.iloc[rows].reset_index(drop=True) if np.asarray(rows).dtype != bool
                       else self.X.loc[rows].reset_index(drop=True), y=self.y[rows], coords=self.coords[rows],
                       dates=take(self.dates), deformation=take(self.deformation))


def parse_coords(spec: str | Sequence[str]) -> tuple[str, str]:
    """("x", "y") column names from ``"X,Y"`` or a pair."""
    parts = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else [str(p) for p in spec]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"coordinates must name two columns as X,Y, got {spec!r}")
    return parts[0], parts[1]


def parse_split_date(value: str | dt.date) -> dt.date:
    """A split date from ``YYYY-MM-DD``."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"split date must be YYYY-MM-DD, got {value!r}") from None


def _labels(column: pd.Series, name: str, path: Path) -> np.ndarray:
    """0/1 labels from 0/1, True/False or yes/no values; InputFileError naming the column otherwise."""
    text = column.astype(str).str.strip().str.lower()
    y = np.where(text.isin(_TRUE), 1, np.where(text.isin(_FALSE), 0, -1))
    if (y < 0).any() or column.isna().any():
        bad = sorted(column[(y < 0) | column.isna()].astype(str).unique().tolist())[:10]
        raise InputFileError(f"label column {name!r} is not binary (0/1 or True/False); other values: {bad}", path)
    if len(np.unique(y)) < 2:
        raise InputFileError(f"label column {name!r} holds a single class ({int(y[0])}): need landslides (1) "
                             f"and non-landslides (0)", path)
    return y.astype(np.int64)


def parse_date_column(column: pd.Series, name: str, path: Path | None) -> np.ndarray:
    """datetime64[D] per row from ISO-like dates; InputFileError naming the column and bad values."""
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = parsed.isna() & column.notna()
    if bad.any():
        raise InputFileError(f"date column {name!r} has values that do not parse as dates: "
                             f"{sorted(column[bad].astype(str).unique().tolist())[:5]}", path)
    return parsed.to_numpy(dtype="datetime64[D]")


def load_sample_table(path: str | Path, *, label: str, coords: str | Sequence[str],
                      factors: Sequence[str] | None = None, categorical: Sequence[str] = (),
                      date: str | None = None, deformation: str | None = None,
                      deformation_nodata: float | None = None) -> SampleTable:
    """Read a CSV of sample points and check it; InputFileError names the file and the column.

    ``factors`` default to every numeric column other than the label, coordinates, date and
    deformation columns. ``categorical`` factors must be integer codes. Rows missing a factor,
    a coordinate or the date are dropped and counted in ``n_dropped``; a deformation value equal
    to ``deformation_nodata`` (or NaN) means "no InSAR coverage" and is kept as NaN.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"cannot read the sample table: {exc}", path) from None
    xcol, ycol = parse_coords(coords)
    special = [label, xcol, ycol] + [c for c in (date, deformation) if c]
    if factors is None:
        factors = [c for c in df.columns if c not in special and pd.api.types.is_numeric_dtype(df[c])]
    factors = [str(f) for f in factors]
    wanted = list(dict.fromkeys(special + factors + list(categorical)))
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InputFileError(f"missing columns {missing}; the table has {list(df.columns)}", path)
    not_factor = [c for c in categorical if c not in factors]
    if not_factor:
        raise InputFileError(f"categorical columns {not_factor} are not among the factors {factors}", path)
    if not factors:
        raise InputFileError("no factor columns: name them with factors (--factors)", path)
    for col in [xcol, ycol] + factors + ([deformation] if deformation else []):
        if not pd.api.types.is_numeric_dtype(df[col]):
            examples = df[col][pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()].astype(str)
            raise InputFileError(f"column {col!r} must be numeric; values such as {examples.unique()[:3].tolist()}",
                                 path)
    for col in categorical:
        v = df[col].dropna()
        if not np.all(v == np.round(v)):
            raise InputFileError(f"categorical column {col!r} must hold integer class codes", path)
    y = _labels(df[label], label, path)
    dates = parse_date_column(df[date], date, path) if date else None
    keep = df[[xcol, ycol] + factors].notna().all(axis=1).to_numpy() & np.isfinite(
        df[[xcol, ycol] + factors].to_numpy(float)).all(axis=1)
    if dates is not None:
        keep &= ~np.isnat(dates)
    if not keep.any():
        raise InputFileError(f"no row has every factor {factors} and both coordinates", path)
    v = None
    if deformation:
        v = df[deformation].to_numpy(float).copy()
        if deformation_nodata is not None:
            v[v == deformation_nodata] = np.nan
    table = SampleTable(path, df[factors].astype(float), y, df[[xcol, ycol]].to_numpy(float), tuple(categorical),
                        dates, v)
    table = table.subset(keep) if not keep.all() else table
    if len(np.unique(table.y)) < 2:
        raise InputFileError(f"label column {label!r}: the complete rows hold a single class", path)
    return replace(table, n_dropped=int((~keep).sum()), deformation_column=deformation)
