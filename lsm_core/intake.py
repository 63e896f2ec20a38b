"""Intake of dropped files: validate, then move to ``archive/`` or ``quarantine/`` (DESIGN 5).

Nothing is deleted and nothing is silently skipped: an accepted delivery moves to
``archive/insar/<area>/<delivery>/``; a rejected one moves to ``quarantine/insar/<area>/<delivery>/``
with a ``.reason.txt`` beside it. An accepted delivery is never overwritten: a second delivery for
a period that already has one is quarantined with that reason.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from lsm_core.delivery import Delivery, load_delivery
from lsm_core.errors import DeliveryError, LsmError


@dataclass(frozen=True)
class IntakeResult:
    """What one intake pass did."""

    accepted: tuple[Delivery, ...]
    rejected: tuple[tuple[Path, str], ...]


def archived_deliveries(data_root: str | Path, area: str | None = None) -> list[Delivery]:
    """Accepted deliveries in ``archive/insar`` (for one area or all), sorted by area and period."""
    root = Path(data_root) / "archive" / "insar"
    folders = sorted(root.glob(f"{area or '*'}/*/delivery.yaml"))
    return sorted((load_delivery(p.parent) for p in folders), key=lambda d: (d.area, d.period))


def delivery_for(data_root: str | Path, area: str, period: str) -> Delivery:
    """The accepted delivery of ``area`` for ``period``; DeliveryError when there is none."""
    for d in archived_deliveries(data_root, area):
        if d.period == period:
            return d
    raise DeliveryError(f"no accepted InSAR delivery for area {area!r} and period {period!r}",
                        Path(data_root) / "archive" / "insar" / area)


def intake_deliveries(data_root: str | Path, known_areas: set[str]) -> IntakeResult:
    """Validate every folder in ``incoming/insar/<area>/`` and move it to archive or quarantine."""
    data_root = Path(data_root)
    incoming = data_root / "incoming" / "insar"
    accepted: list[Delivery] = []
    rejected: list[tuple[Path, str]] = []
    for folder in sorted(p for p in incoming.glob("*/*") if p.is_dir()):
        area = folder.parent.name
        try:
            d = load_delivery(folder)
            if area not in known_areas:
                raise DeliveryError(f"unknown study area {area!r} (known: {sorted(known_areas)})", folder)
            if d.area != area:
                raise DeliveryError(f"delivery.yaml names area {d.area!r} but lies in the folder of {area!r}", folder)
            taken = {x.period: x for x in archived_deliveries(data_root, area)}
            if d.period in taken:
                raise DeliveryError(f"period {d.period} already has an accepted delivery "
                                    f"({taken[d.period].folder.name}); it is not overwritten", folder)
        except LsmError as exc:
            rejected.append((_move(folder, data_root / "quarantine" / "insar" / area, reason=str(exc)), str(exc)))
            continue
        target = _move(folder, data_root / "archive" / "insar" / area)
        accepted.append(load_delivery(target))
    return IntakeResult(tuple(accepted), tuple(rejected))


def _move(folder: Path, dest_parent: Path, reason: str | None = None) -> Path:
    """Move ``folder`` under ``dest_parent`` without replacing anything there; write the reason beside it."""
    dest_parent.mkdir(parents=True, exist_ok=True)
    dest = dest_parent / folder.name
    if dest.exists():
        dest = dest_parent / f"{folder.name}__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    shutil.move(str(folder), str(dest))
    if reason is not None:
        (dest_parent / f"{dest.name}.reason.txt").write_text(reason + "\n")
    return dest
