"""Intake of landslide inventory updates: validate, add to the catalog with revisions, archive (DESIGN 5).

Every event needs an id and a date, also for an area added with an undated inventory (``lsm add-area``):
there an update's dated events are what POR / LOR score, and an undated one is quarantined with the reason.

A file dropped in ``incoming/inventory/<area>/`` (GeoPackage, GeoJSON, CSV with x, y) is judged
once it has not changed for ``settle_s`` seconds. A bad file moves to
``quarantine/inventory/<area>/`` with a ``.reason.txt``; a good one is added to the catalog
(``catalog.upsert_events``: new events, corrections as new revisions) and moves to
``archive/inventory/<area>/<stem>__<sha>.<ext>`` with a record ``<that name>.intake.json`` beside it
(what changed, when). The archive name is content-addressed and is the events' ``source_file``,
so an intake interrupted between the catalog write and the move is simply done again, without
adding anything twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lsm_core import catalog
from lsm_core.area import load_area
from lsm_core.area_scope import undated_update_hint
from lsm_core.errors import InventoryError, LsmError
from lsm_core.grid import AreaGrid
from lsm_core.inventory import INVENTORY_SUFFIXES, read_inventory

__all__ = ["InventoryIntakeResult", "InventoryRecord", "intake_inventories", "intake_inventory_file",
           "inventory_records", "read_record"]

RECORD_SUFFIX = ".intake.json"


@dataclass(frozen=True)
class InventoryRecord:
    """One accepted inventory file: where it is archived and what it changed in the catalog."""

    area: str
    record_id: str  # content hash prefix: the same file dropped twice has the same id
    archived: Path
    received_as: str
    ingested_at: str
    added: tuple[str, ...]
    corrected: tuple[str, ...]  # human-readable corrections ("k-7: date (..) , revision 1 -> 2")
    unchanged: int

    def summary(self) -> str:
        return f"{len(self.added)} new, {len(self.corrected)} corrected, {self.unchanged} unchanged"


@dataclass(frozen=True)
class InventoryIntakeResult:
    """What one intake pass did: accepted files, rejected (quarantined) and held (still changing) files."""

    accepted: tuple[InventoryRecord, ...]
    rejected: tuple[tuple[Path, str], ...]
    held: tuple[tuple[Path, str], ...] = ()


def intake_inventories(data_root: str | Path, grids: Mapping[str, AreaGrid], catalog_path: str | Path, *,
                       settle_s: float = 30.0, now: float | None = None, today: dt.date | None = None,
                       broken_areas: Mapping[str, str] | None = None) -> InventoryIntakeResult:
    """Judge every settled file in ``incoming/inventory/<area>/``; see the module docstring.

    Files of an area in ``broken_areas`` (area -> why its area.yaml is unusable) are held.
    """
    broken_areas = broken_areas or {}
    data_root = Path(data_root)
    now = time.time() if now is None else now
    accepted: list[InventoryRecord] = []
    rejected: list[tuple[Path, str]] = []
    held: list[tuple[Path, str]] = []
    for path in sorted((data_root / "incoming" / "inventory").glob("*/*")):
        if not path.is_file() or path.name.startswith(".") or _is_sidecar(path):
            continue
        age = now - path.stat().st_mtime
        if age < settle_s or path.parent.name in broken_areas:
            held.append((path, broken_areas.get(path.parent.name)
                         or f"changed {age:.0f} s ago; waiting until unchanged for {settle_s:.0f} s"))
            continue
        outcome = intake_inventory_file(path, path.parent.name, data_root, grids, catalog_path, today=today)
        if isinstance(outcome, InventoryRecord):
            accepted.append(outcome)
        else:
            rejected.append(outcome)
    return InventoryIntakeResult(tuple(accepted), tuple(rejected), tuple(held))


def intake_inventory_file(path: str | Path, area: str, data_root: str | Path, grids: Mapping[str, AreaGrid],
                          catalog_path: str | Path, *, copy: bool = False,
                          today: dt.date | None = None) -> InventoryRecord | tuple[Path, str]:
    """Validate one inventory file for ``area``, add its events to the catalog and archive it.

    Returns the record, or (quarantined file, reason). ``copy`` leaves ``path`` in place (a file
    given on the command line); otherwise it is moved.
    """
    path, data_root = Path(path), Path(data_root)
    try:
        if area not in grids:
            raise InventoryError(f"unknown study area {area!r} (known: {sorted(grids)})", path)
        if path.suffix.lower() not in INVENTORY_SUFFIXES:
            raise InventoryError(f"unsupported file type (expected one of {list(INVENTORY_SUFFIXES)})", path)
        events = read_inventory(path, grids[area], today=today, date_hint=_date_hint(data_root, area))
    except LsmError as exc:
        return _quarantine(path, data_root / "quarantine" / "inventory" / area, str(exc), copy), str(exc)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    stem = path.stem.removesuffix(f"__{digest}")  # an archived file dropped again keeps its archive name
    dest = data_root / "archive" / "inventory" / area / f"{stem}__{digest}{path.suffix.lower()}"
    record_path = dest.with_name(dest.name + RECORD_SUFFIX)
    with catalog.connect(catalog_path) as con:
        changes = catalog.upsert_events(con, area, events, str(dest.relative_to(data_root)))
    if record_path.exists():  # the same content was taken in before: keep that record, archive this copy too
        record = read_record(record_path)
        dest = _free_name(dest)
    else:
        record = InventoryRecord(area, digest, dest, path.name,
                                 dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), changes.added,
                                 tuple(str(c) for c in changes.corrected), changes.unchanged)
        _write_atomic(record_path, json.dumps(_to_json(record, data_root), indent=2) + "\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _transfer(path, dest, copy)
    return record


def _date_hint(data_root: Path, area: str) -> str | None:
    """Why ``area`` needs dated updates when its own inventory is undated (area.yaml's inventory_has_dates)."""
    try:
        return undated_update_hint(load_area(data_root / "study_areas" / area))
    except LsmError:  # no or a broken area.yaml: the grid check says so, no hint needed
        return None


def inventory_records(data_root: str | Path, area: str | None = None) -> list[InventoryRecord]:
    """Every accepted inventory file (for one area or all), oldest first."""
    root = Path(data_root) / "archive" / "inventory"
    records = [read_record(p) for p in root.glob(f"{area or '*'}/*{RECORD_SUFFIX}")]
    return sorted(records, key=lambda r: (r.ingested_at, r.area, r.record_id))


def read_record(path: Path) -> InventoryRecord:
    """An ``.intake.json`` record."""
    raw = json.loads(path.read_text())
    data_root = path.parents[3]
    return InventoryRecord(raw["area"], raw["record_id"], data_root / raw["archived"], raw["received_as"],
                           raw["ingested_at"], tuple(raw["added"]), tuple(raw["corrected"]), int(raw["unchanged"]))


def _to_json(r: InventoryRecord, data_root: Path) -> dict:
    return {"area": r.area, "record_id": r.record_id, "archived": str(r.archived.relative_to(data_root)),
            "received_as": r.received_as, "ingested_at": r.ingested_at, "added": list(r.added),
            "corrected": list(r.corrected), "unchanged": r.unchanged}


def _is_sidecar(path: Path) -> bool:
    # GeoPackage journals and our own records/reasons are not inventories
    return path.name.endswith((RECORD_SUFFIX, ".reason.txt", "-wal", "-shm", "-journal"))


def _quarantine(path: Path, dest_parent: Path, reason: str, copy: bool) -> Path:
    dest = _free_name(dest_parent / path.name)
    dest_parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(dest.with_name(dest.name + ".reason.txt"), reason + "\n")
    _transfer(path, dest, copy)
    return dest


def _free_name(dest: Path) -> Path:
    if not dest.exists():
        return dest
    return dest.with_name(f"{dest.stem}__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}{dest.suffix}")


def _transfer(src: Path, dest: Path, copy: bool) -> None:
    """Move or copy ``src`` to ``dest``; the file appears under its final name only when complete."""
    tmp = dest.with_name(f".{dest.name}.partial")
    if copy:
        shutil.copy2(src, tmp)
    else:
        shutil.move(str(src), str(tmp))
    os.replace(tmp, dest)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
