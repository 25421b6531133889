"""Small readers shared by the gate and the dashboard renderers: report fields read as plain JSON, defensively.

Kept apart from ``fleet.gate`` so that ``render.prometheus`` (run on every node by ``check -f prometheus``)
does not import the gate, and so that times are parsed one way everywhere.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple


def parse_time(text: Any) -> Optional[datetime.datetime]:
    """An ISO 8601 time (``Z`` accepted, no zone read as UTC) as an aware datetime; None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


def dig(data: Any, path: Sequence[str]) -> Any:
    """data['a'][0]['b'] for path ('a', '0', 'b'); None where anything is missing or of the wrong type."""
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.lstrip("-").isdigit():
            i = int(key)
            data = data[i] if -len(data) <= i < len(data) else None
        else:
            return None
        if data is None:
            return None
    return data


def text_of(value: Any) -> Optional[str]:
    """A JSON value as one comparable string; None for null, "" and []."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def library_items(target: Dict[str, Any]) -> Optional[List[Tuple[str, str]]]:
    """(library, version) for each CUDA library the loader picks for TF, from `target.native.libraries` where a
    report has it (cuDNN sub-libraries and the driver's own libcuda left out: cuDNN and the driver stand for
    them); None when the report carries no loader model."""
    native = target.get("native") if isinstance(target, dict) else None
    libs = native.get("libraries") if isinstance(native, dict) else None
    if not isinstance(libs, list):
        return None
    items: List[Tuple[str, str]] = []
    for entry in libs:
        if not isinstance(entry, dict) or entry.get("role") in ("driver", "cudnn-sublibrary"):
            continue
        name = entry.get("name") or entry.get("soname")
        if not isinstance(name, str) or not name:
            continue
        found = entry.get("found")
        if isinstance(found, dict):
            where = found.get("real_path") or found.get("path")
            value = text_of(found.get("version")) or (os.path.basename(where) if isinstance(where, str) else None)
        else:
            value = "(not found)"
        items.append((name, value or "(version unknown)"))
    return items
