"""Metadata the Dagster UI shows inline: plots embedded in Markdown, so a user sees the curve, not a file path."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg

MAX_INLINE_BYTES = 1_500_000  # the event log keeps every materialization's metadata: no posters


def image(path: str | Path, title: str) -> dg.MetadataValue:
    """A PNG as Markdown metadata with the image embedded (and its file path under it)."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) > MAX_INLINE_BYTES:  # too big to embed: link the file instead of bloating the run storage
        return dg.MetadataValue.md(f"**{title}**: `{path}` ({len(data) / 1e6:.1f} MB, too large to show inline)")
    encoded = base64.b64encode(data).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})\n\n`{path}`")


def images(paths: dict[str, str | Path], title: str) -> dg.MetadataValue:
    """Several PNGs, each under its own heading, as one Markdown metadata value."""
    parts = []
    for name, p in paths.items():
        encoded = base64.b64encode(Path(p).read_bytes()).decode("ascii")
        parts.append(f"**{name}**\n\n![{title}: {name}](data:image/png;base64,{encoded})")
    return dg.MetadataValue.md("\n\n".join(parts))
