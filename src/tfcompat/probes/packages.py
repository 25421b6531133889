"""Installed distributions of the target, read from *.dist-info / *.egg-info metadata on disk.

Only the metadata headers are read (name, version, Requires-Dist, Requires-Python): nothing is
imported, and the long description that follows the headers is never parsed.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Tuple

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tfcompat.model import Package

_HEADER_LIMIT = 256 * 1024


def read_headers(path: str) -> Dict[str, List[str]]:
    """RFC 822 headers of a METADATA / PKG-INFO file (stops at the first blank line)."""
    headers: Dict[str, List[str]] = {}
    last: Optional[str] = None
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        read = 0
        for line in fh:
            read += len(line)
            if read > _HEADER_LIMIT or line in ("\n", "\r\n"):
                break
            if line[:1] in (" ", "\t") and last is not None:
                headers[last][-1] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            if not sep:
                continue
            last = key.strip().lower()
            headers.setdefault(last, []).append(value.strip())
    return headers


def _egg_requires(egg_info: str) -> Tuple[str, ...]:
    """requires.txt of an .egg-info dir: base requirements and `[:marker]` sections; extras skipped."""
    out: List[str] = []
    try:
        with open(os.path.join(egg_info, "requires.txt"), encoding="utf-8") as fh:
            section: Optional[str] = None
            for raw in fh:
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1]
                    continue
                if section is None:
                    out.append(line)
                elif section.startswith(":"):
                    out.append(f"{line}; {section[1:]}")
    except OSError:
        pass
    return tuple(out)


def read_distribution(location: str, entry: str) -> Optional[Package]:
    """One distribution from `location/entry` (a .dist-info or .egg-info), or None if unreadable."""
    path = os.path.join(location, entry)
    if entry.endswith(".dist-info"):
        meta = os.path.join(path, "METADATA")
    elif os.path.isdir(path):
        meta = os.path.join(path, "PKG-INFO")
    else:
        meta = path  # a single-file .egg-info
    try:
        headers = read_headers(meta)
    except OSError:
        return None
    name = (headers.get("name") or [""])[0]
    version = (headers.get("version") or [""])[0]
    if not name or not version:
        return None
    if entry.endswith(".dist-info"):
        requires = tuple(headers.get("requires-dist", ()))
    else:
        requires = _egg_requires(path) if os.path.isdir(path) else ()
    return Package(
        name=canonicalize_name(name),
        version=version,
        location=location,
        metadata_path=meta,
        requires=requires,
        requires_python=(headers.get("requires-python") or [None])[0],
        display_name=name,
    )


def scan_packages(search_path: Iterable[str]) -> Tuple[Tuple[Package, ...], Tuple[Package, ...]]:
    """(effective packages, shadowed copies) in import order: the first copy of a name wins."""
    seen: Dict[str, Package] = {}
    shadowed: List[Package] = []
    for location in search_path:
        try:
            entries = sorted(os.listdir(location))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            pkg = read_distribution(location, entry)
            if pkg is None:
                continue
            if pkg.name in seen:
                shadowed.append(pkg)
            else:
                seen[pkg.name] = pkg
    return tuple(seen.values()), tuple(shadowed)


def parse_version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None
