"""Metadata the Dagster UI shows inline: plots embedded in Markdown, so a user sees the curve, not a file path."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg

MAX_INLINE_BYTES = 1_500_000  # the event log keeps every materialization's metadata: no posters


def _embedded(path: Path, alt: str) -> str:
    data = path.read_bytes()
    if len(data) > MAX_INLINE_BYTES:  # too big to embed: name the file instead of bloating the run storage
        return f"**{alt}**: `{path}` ({len(data) / 1e6:.1f} MB, too large to show inline)"
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


def image(path: str | Path, title: str) -> dg.MetadataValue:
    """A PNG as Markdown metadata with the image embedded (and its file path under it)."""
    return dg.MetadataValue.md(f"{_embedded(Path(path), title)}\n\n`{path}`")


def images(paths: dict[str, str | Path], title: str) -> dg.MetadataValue:
    """Several PNGs, each under its own heading, as one Markdown metadata value."""
    return dg.MetadataValue.md("\n\n".join(f"**{name}**\n\n{_embedded(Path(p), f'{title}: {name}')}"
                                            for name, p in paths.items()))
