"""Sample tables registered under the data root (``data/tables/<name>.yaml``), so table mode runs from Dagster.

``lsm add-table NAME TABLE.csv --label ... --coords ...`` checks the table (``sample_table.load_sample_table``)
and writes a small spec; ``evaluate_registered`` loads it and calls ``table_mode.evaluate_table``, the
same code as ``lsm evaluate-table``. Example spec::

    name: ecuador_lsl
    table: /abs/path/lsl.csv
    label: lslpts
    coords: [x, y]
    factors: [slope, cplan, cprof, elev, log10_carea]   # null = every other numeric column
    categorical: []
    date: null            # with split: a temporal evaluation
    split: null           # YYYY-MM-DD
    deformation: null     # velocity column (mm/yr): the InSAR-PU strategy
    deformation_nodata: null
    external: null        # another table with the same columns: transfer AUC
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from lsm_core.area import KEY_RE
from lsm_core.errors import ConfigError
from lsm_core.models import MODEL_NAMES
from lsm_core.sample_table import SampleTable, load_sample_table, parse_split_date
from lsm_core.table_mode import CVScheme, TableEvaluation, evaluate_table

__all__ = ["FINGERPRINT_COLUMNS", "TableSpec", "catalog_rows", "discover_tables", "evaluate_registered",
           "file_sha256", "input_fingerprint", "load_spec", "load_tables", "register_table", "result_rows", "spec_path"]

# What an evaluation read, kept in every catalog row: a later change of any makes it stale (lsm status).
FINGERPRINT_COLUMNS = {"table_sha256": "table file", "external_sha256": "external table", "spec_sha256": "table spec"}


@dataclass(frozen=True)
class TableSpec:
    """A registered sample table: the CSV (absolute path) and the columns table mode reads."""

    name: str
    table: str
    label: str
    coords: tuple[str, str]
    factors: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    date: str | None = None
    split: str | None = None
    deformation: str | None = None
    deformation_nodata: float | None = None
    external: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        d = asdict(self)
        d.pop("notes")
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        return yaml.safe_dump(d, sort_keys=False)


def spec_path(data_root: str | Path, name: str) -> Path:
    """Where the spec of table ``name`` lives."""
    return Path(data_root) / "tables" / f"{name}.yaml"


def discover_tables(data_root: str | Path) -> list[str]:
    """Names of the registered tables, sorted."""
    folder = Path(data_root) / "tables"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_tables(spec: TableSpec) -> tuple[SampleTable, SampleTable | None]:
    """The table (and the external one) as ``sample_table.load_sample_table`` reads and checks them."""
    kw: dict[str, Any] = {"label": spec.label, "coords": list(spec.coords),
                          "factors": list(spec.factors) if spec.factors else None, "categorical": spec.categorical}
    main = load_sample_table(spec.table, **kw, date=spec.date, deformation=spec.deformation,
                             deformation_nodata=spec.deformation_nodata)
    other = load_sample_table(spec.external, **{**kw, "factors": list(main.factors)}) if spec.external else None
    return main, other


def register_table(data_root: str | Path, spec: TableSpec) -> Path:
    """Check the table(s) of ``spec`` (InputFileError names the file and column) and write its spec; returns the path.

    ConfigError for a bad name, a name already registered, or ``date`` without ``split``.
    """
    if not KEY_RE.match(spec.name):
        raise ConfigError(f"table name {spec.name!r} must use only [a-z0-9_-]")
    path = spec_path(data_root, spec.name)
    if path.exists():
        raise ConfigError(f"table {spec.name!r} is registered already", path)
    if (spec.date is None) != (spec.split is None):
        raise ConfigError("date and split go together (a temporal evaluation)")
    if spec.split is not None:
        parse_split_date(spec.split)
    spec = TableSpec(**{**asdict(spec), "table": str(Path(spec.table).resolve()),
                        "external": str(Path(spec.external).resolve()) if spec.external else None})
    load_tables(spec)  # every column checked before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_yaml())
    return path


def load_spec(data_root: str | Path, name: str) -> TableSpec:
    """The registered spec of table ``name``; ConfigError names the file when it is missing or malformed."""
    path = spec_path(data_root, name)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"no table {name!r} registered (lsm add-table)", path) from exc
    if not isinstance(raw, dict) or not {"table", "label", "coords"} <= set(raw):
        raise ConfigError("a table spec needs table, label and coords", path)
    coords = tuple(raw["coords"])
    if len(coords) != 2:
        raise ConfigError(f"coords must name two columns, got {raw['coords']}", path)
    return TableSpec(name=name, table=str(raw["table"]), label=str(raw["label"]), coords=(coords[0], coords[1]),
                     factors=tuple(raw["factors"]) if raw.get("factors") else None,
                     categorical=tuple(raw.get("categorical") or ()), date=raw.get("date"),
                     split=None if raw.get("split") is None else str(raw["split"]),
                     deformation=raw.get("deformation"), deformation_nodata=raw.get("deformation_nodata"),
                     external=raw.get("external"))


def evaluate_registered(spec: TableSpec, *, models: Sequence[str] = MODEL_NAMES, n_repeats: int = 5,
                        inner_splits: int = 3, schemes: Sequence[str] = ("random", "spatial"),
                        deformation_threshold_mm_yr: float = 5.0, random_state: int = 0) -> TableEvaluation:
    """``table_mode.evaluate_table`` on a registered table (the same code as ``lsm evaluate-table``)."""
    unknown = sorted(set(schemes) - {"random", "spatial"})
    if unknown:
        raise ConfigError(f"unknown CV schemes {unknown}; use random, spatial")
    main, other = load_tables(spec)
    split: dt.date | None = parse_split_date(spec.split) if spec.split else None
    return evaluate_table(main, models=models, n_repeats=n_repeats, inner_splits=inner_splits, external=other,
                          split=split, deformation_threshold_mm_yr=deformation_threshold_mm_yr,
                          schemes=[cast(CVScheme, s) for s in schemes], random_state=random_state)


def result_rows(result: TableEvaluation) -> list[dict[str, Any]]:
    """One flat row per model (AUCs 0..1, None where not computed), for the catalog and a Markdown table."""
    js = result.to_json()
    rows = []
    for name, m in js["models"].items():
        t = m.get("temporal") or {}
        rows.append({"model": name, "random_cv_auc": m["random_cv_auc"], "spatial_cv_auc": m["spatial_cv_auc"],
                     "spatial_cv_auc_sd": m["spatial_cv_auc_sd"], "external_auc": m.get("external_auc"),
                     "insar_pu_spatial_cv_auc": (m.get("insar_pu") or {}).get("spatial_cv_auc"),
                     "temporal_auc": t.get("auc"), "temporal_por": t.get("por"), "temporal_lor": t.get("lor"),
                     "n_positive": js["n_positive"], "n_negative": js["n_negative"]})
    return rows


def file_sha256(path: str | Path | None) -> str | None:
    """SHA-256 of a file's bytes (None for no file or a missing one)."""
    if path is None or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_fingerprint(data_root: str | Path, spec: TableSpec) -> dict[str, str | None]:
    """The SHA-256 of what an evaluation of ``spec`` reads: the table, the external table and the spec file."""
    return {"table_sha256": file_sha256(spec.table), "external_sha256": file_sha256(spec.external),
            "spec_sha256": file_sha256(spec_path(data_root, spec.name))}


def catalog_rows(result: TableEvaluation, fingerprint: dict[str, str | None],
                 evaluated_at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """``result_rows`` stamped with the evaluation time (UTC, naive) and the inputs' fingerprint (taken before
    the evaluation read them), for the catalog table ``sample_table_evaluation``."""
    at = evaluated_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return [{**row, "evaluated_at": at, **fingerprint} for row in result_rows(result)]
