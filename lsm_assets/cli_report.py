"""``lsm report`` and ``lsm status``: what the catalog says about an area, and what needs attention."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lsm_core.errors import LsmError


def _catalog(data_root: Path):
    """A read-only catalog connection, or None when nothing was materialized yet."""
    from lsm_core import catalog

    path = data_root / "warehouse" / "lsm.duckdb"
    return catalog.connect(path, read_only=True) if path.exists() else None


@click.command()
@click.argument("area")
@click.argument("period")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (keys in the README).")
@click.pass_obj
def report(data_root: Path, area: str, period: str, as_json: bool) -> None:
    """Models, map model, t*, TA / POR / LOR now and over time, and the contingency of AREA in PERIOD."""
    from lsm_core.report import partition_report, report_markdown

    cm = _catalog(data_root)
    if cm is None:
        click.echo(f"error: no catalog at {data_root / 'warehouse' / 'lsm.duckdb'}: materialize first", err=True)
        sys.exit(2)
    try:
        with cm as con:
            rep = partition_report(con, area, period)
    except LsmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(rep, default=str) if as_json else report_markdown(rep))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def status(data_root: Path, as_json: bool) -> None:
    """Areas, their periods, stale partitions, sample tables (last evaluated, stale) and quarantined files."""
    from lsm_core.status import data_status

    cm = _catalog(data_root)
    if cm is None:
        st = data_status(data_root, None)
    else:
        with cm as con:
            st = data_status(data_root, con)
    if as_json:
        click.echo(json.dumps(st.to_dict(), default=str))
        return
    click.echo(f"data root: {data_root}")
    for area in st.areas:
        click.echo(f"area {area}: periods {', '.join(st.periods[area]) or '(none)'}")
    click.echo(f"stale partitions: {len(st.stale)}")
    for s in st.stale:
        click.echo(f"  {s.area} {s.period}: {s.reason}")
    click.echo(f"sample tables: {len(st.tables)}")
    for t in st.tables:
        when = f"last evaluated {t.last_evaluated:%Y-%m-%d %H:%M:%S} UTC; " if t.last_evaluated else ""
        click.echo(f"  {t.name}: {when}" + (f"STALE: {t.reason}" if t.stale else t.reason) + f" ({t.table})")
    click.echo(f"quarantined: {len(st.quarantined)}")
    for q in st.quarantined:
        click.echo(f"  {q.path}: {q.reason}")


COMMANDS = (report, status)
