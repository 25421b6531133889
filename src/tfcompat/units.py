"""Sizes as people read them."""

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
