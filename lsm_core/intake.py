"""Intake of InSAR deliveries: wait until settled, validate, then archive as a version or quarantine (DESIGN 5).

Nothing is deleted and nothing is silently skipped. A delivery folder in ``incoming/insar/<area>/``
is judged only once it has settled (a ``_READY`` marker, or ``delivery.yaml`` present and no file
changed for ``settle_s`` seconds); until then it is *held* and stays where it is. A settled
delivery is opened (``delivery.check_delivery_data``) and then moves to ``archive/insar/<area>/``
or, with a ``.reason.txt`` beside it, to ``quarantine/insar/<area>/``.

A second valid delivery for a period that already has one is a new *version* (providers reprocess
routinely): it is archived beside the earlier ones, never over them, and the newest version is the
one the period uses. Each archived folder holds ``intake.json``: version, acceptance time, the
name it arrived under and the version it replaced.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lsm_core.delivery import Delivery, check_delivery_data, load_delivery
from lsm_core.errors import DeliveryError, LsmError
from lsm_core.grid import AreaGrid

__all__ = ["ArchivedDelivery", "IntakeResult", "READY_MARKER", "archived_deliveries", "current_versions",
           "delivery_for", "delivery_version_for", "delivery_versions", "intake_deliveries", "intake_delivery",
           "unsettled_reason"]

READY_MARKER = "_READY"
RECORD = "intake.json"
DEFAULT_SETTLE_S = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchivedDelivery:
    """An accepted delivery and its version among the deliveries of its (area, period)."""

    delivery: Delivery
    version: int
    accepted_at: str
    replaces: str | None = None  # archive folder name of the version it replaced

    @property
    def key(self) -> str:
        """Identifies this version for run keys: ``<area>:<period>:v<version>:<folder>``."""
        d = self.delivery
        return f"{d.area}:{d.period}:v{self.version}:{d.folder.name}"


@dataclass(frozen=True)
class IntakeResult:
    """What one intake pass did: accepted versions, rejected (quarantined) and held (not settled) folders."""

    accepted: tuple[ArchivedDelivery, ...]
    rejected: tuple[tuple[Path, str], ...]
    held: tuple[tuple[Path, str], ...] = ()


def unsettled_reason(folder: Path, settle_s: float, now: float | None = None) -> str | None:
    """Why ``folder`` is not ready to be judged yet, or None once it has settled.

    Settled: a ``_READY`` marker exists, or ``delivery.yaml`` exists and no file in the folder was
    modified during the last ``settle_s`` seconds (a copy in progress keeps touching files).
    """
    if (folder / READY_MARKER).exists():
        return None
    if not (folder / "delivery.yaml").exists():
        return "no delivery.yaml yet (still copying?)"
    now = time.time() if now is None else now
    newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
    age = now - max(newest, folder.stat().st_mtime)
    if age < settle_s:
        return f"a file changed {age:.0f} s ago; waiting until nothing changed for {settle_s:.0f} s (or {READY_MARKER})"
    return None


def archived_deliveries(data_root: str | Path, area: str | None = None) -> list[Delivery]:
    """The delivery each (area, period) uses (its newest version), sorted by area and period."""
    return [v.delivery for v in current_versions(data_root, area)]


def delivery_versions(data_root: str | Path, area: str | None = None) -> list[ArchivedDelivery]:
    """Every archived version (for one area or all), sorted by area, period and version."""
    root = Path(data_root) / "archive" / "insar"
    out = []
    for yaml_path in sorted(root.glob(f"{area or '*'}/*/delivery.yaml")):
        folder = yaml_path.parent
        if folder.name.startswith("."):  # being archived right now
            continue
        try:
            delivery = load_delivery(folder)
        except LsmError as exc:  # archived under an older, looser contract: kept, but not used
            log.warning("archived delivery %s no longer passes validation and is not used: %s", folder, exc)
            continue
        record = _read_record(folder)
        out.append(ArchivedDelivery(delivery, int(record.get("version", 1)), str(record.get("accepted_at", "")),
                                    record.get("replaces")))
    return sorted(out, key=lambda v: (v.delivery.area, v.delivery.period, v.version, v.delivery.folder.name))


def current_versions(data_root: str | Path, area: str | None = None) -> list[ArchivedDelivery]:
    """The newest archived version of every (area, period)."""
    newest: dict[tuple[str, str], ArchivedDelivery] = {}
    for v in delivery_versions(data_root, area):
        newest[(v.delivery.area, v.delivery.period)] = v  # sorted by version: the last one wins
    return list(newest.values())


def delivery_for(data_root: str | Path, area: str, period: str) -> Delivery:
    """The delivery ``area`` uses for ``period`` (its newest version); DeliveryError when there is none."""
    return delivery_version_for(data_root, area, period).delivery


def delivery_version_for(data_root: str | Path, area: str, period: str) -> ArchivedDelivery:
    """The newest archived version of ``area``'s delivery for ``period``; DeliveryError when there is none."""
    for v in current_versions(data_root, area):
        if v.delivery.period == period:
            return v
    raise DeliveryError(f"no accepted InSAR delivery for area {area!r} and period {period!r}",
                        Path(data_root) / "archive" / "insar" / area)


def intake_deliveries(data_root: str | Path, grids: Mapping[str, AreaGrid], *, settle_s: float = DEFAULT_SETTLE_S,
                      now: float | None = None, broken_areas: Mapping[str, str] | None = None) -> IntakeResult:
    """Judge every settled folder in ``incoming/insar/<area>/``: archive it as a version or quarantine it.

    ``grids``: the grid of every known study area (a delivery must overlap its area). Folders that
    have not settled, or whose area is in ``broken_areas`` (area -> why its area.yaml is unusable),
    are held in place and reported with the reason.
    """
    broken_areas = broken_areas or {}
    data_root = Path(data_root)
    accepted, rejected, held = [], [], []
    incoming = data_root / "incoming" / "insar"
    for folder in sorted(p for p in incoming.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
        reason = unsettled_reason(folder, settle_s, now) or broken_areas.get(folder.parent.name)
        if reason is not None:
            held.append((folder, reason))
            continue
        outcome = intake_delivery(folder, folder.parent.name, data_root, grids)
        if isinstance(outcome, ArchivedDelivery):
            accepted.append(outcome)
        else:
            rejected.append(outcome)
    return IntakeResult(tuple(accepted), tuple(rejected), tuple(held))


def intake_delivery(folder: str | Path, area: str, data_root: str | Path, grids: Mapping[str, AreaGrid], *,
                    copy: bool = False) -> ArchivedDelivery | tuple[Path, str]:
    """Validate one delivery folder for ``area``; archive it as the next version or quarantine it.

    Returns the archived version, or (quarantined folder, reason). ``copy`` leaves ``folder`` where
    it is (a delivery given on the command line); otherwise it is moved.
    """
    folder, data_root = Path(folder), Path(data_root)
    try:
        if area not in grids:
            raise DeliveryError(f"unknown study area {area!r} (known: {sorted(grids)})", folder)
        d = load_delivery(folder)
        if d.area != area:
            raise DeliveryError(f"delivery.yaml names area {d.area!r} but is delivered for area {area!r}", folder)
        check_delivery_data(d, grids[area])
    except LsmError as exc:
        return _place(folder, data_root / "quarantine" / "insar" / area, copy, reason=str(exc)), str(exc)
    earlier = [v for v in delivery_versions(data_root, area) if v.delivery.period == d.period]
    previous = earlier[-1] if earlier else None
    version = (previous.version + 1) if previous else 1
    accepted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    replaces = previous.delivery.folder.name if previous else None
    record = {"version": version, "accepted_at": accepted_at, "received_as": folder.name, "area": area,
              "period": d.period, "replaces": replaces}
    target = _place(folder, data_root / "archive" / "insar" / area, copy, record=record)
    return ArchivedDelivery(load_delivery(target), version, accepted_at, replaces)


def _read_record(folder: Path) -> dict:
    try:
        return json.loads((folder / RECORD).read_text())
    except FileNotFoundError:
        return {}  # archived before versions were recorded: version 1


def _place(folder: Path, dest_parent: Path, copy: bool, reason: str | None = None,
           record: dict | None = None) -> Path:
    """Move (or copy) ``folder`` under ``dest_parent`` without replacing anything there.

    The folder appears under its final name only when complete: it is staged under a hidden name
    and renamed, so a reader never sees half an archive entry. ``record`` is written into it as
    ``intake.json``; ``reason`` beside it as ``<name>.reason.txt``.
    """
    dest_parent.mkdir(parents=True, exist_ok=True)
    dest = dest_parent / folder.name
    if dest.exists() or (dest_parent / f"{dest.name}.reason.txt").exists():
        dest = dest_parent / f"{folder.name}__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    staging = dest_parent / f".{dest.name}.partial"
    if copy:
        shutil.copytree(folder, staging)
    else:
        shutil.move(str(folder), str(staging))
    if record is not None:
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    if reason is not None:
        _write_atomic(dest_parent / f"{dest.name}.reason.txt", reason + "\n")
    os.replace(staging, dest)
    return dest


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
