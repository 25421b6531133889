"""Sizes and paths as people read them."""

from __future__ import annotations

from typing import Optional

MiB, GiB = 1 << 20, 1 << 30


def human(n: Optional[int]) -> str:
    """Bytes as '64 MiB', '1.5 GiB'; None (no limit) as 'unlimited'."""
    if n is None:
        return "unlimited"
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def short_path(path: Optional[str]) -> str:
    """A path shortened at its site-packages/dist-packages directory, for messages and tables."""
    if not path:
        return "?"
    for marker in ("/site-packages/", "/dist-packages/"):
        i = path.find(marker)
        if i >= 0:
            return "…" + path[i:]
    return path
