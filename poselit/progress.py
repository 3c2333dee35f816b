"""When to show a progress bar: asked for, or a long job on a terminal."""

from __future__ import annotations

import sys

PROGRESS_MIN_ITEMS = 100
"""Inputs from this many items (images, people) up get a bar by default, on a terminal."""


def show_progress(progress: bool | None, items: int, minimum: int = PROGRESS_MIN_ITEMS) -> bool:
    """Whether to draw a bar over ``items``: ``progress`` when it is given, else only for
    long inputs (``items >= minimum``) with stderr on a terminal (no bars in logs and pipes)."""
    if progress is not None:
        return progress
    return items >= minimum and sys.stderr.isatty()
