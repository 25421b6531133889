"""Small readers shared by the gate and the dashboard renderers: times, JSON values as text, report fields.

Kept apart from ``fleet.gate`` so that ``render.prometheus`` (run on every node by ``check -f prometheus``)
does not import the gate, and so that times are parsed one way everywhere.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import re
from collections.abc import Sequence
from typing import Any, Optional

from tfcompat.model import Target, to_json_dict


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


def library_items(target: Target) -> Optional[list[tuple[str, str]]]:
    """(library, version) for each CUDA library the loader picks for TF, from `target.native.libraries` where a
    report has it (cuDNN sub-libraries and the driver's own libcuda left out: cuDNN and the driver stand for
    them); None when the report carries no loader model."""
    if target.native is None:
        return None
    items: list[tuple[str, str]] = []
    for lib in target.native.libraries:
        name = lib.name or lib.soname
        if lib.role in ("driver", "cudnn-sublibrary") or not name:
            continue
        if lib.found is not None:
            where = lib.found.real_path or lib.found.path
            value = text_of(lib.found.version) or (os.path.basename(where) if where else None)
        else:
            value = "(not found)"
        items.append((name, value or "(version unknown)"))
    return items


def field_text(obj: Any, path: Sequence[str]) -> Optional[str]:
    """The text (as ``text_of`` gives it) of a field of a typed report, by its JSON path: ``('environment',
    'host', 'gpus', '0', 'name')``; None where anything is missing."""
    for key in path:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            obj = getattr(obj, key) if key in _field_names(type(obj)) else None
        elif isinstance(obj, tuple) and _INDEX.fullmatch(key):
            i = int(key)
            obj = obj[i] if -len(obj) <= i < len(obj) else None
        else:
            return None
        if obj is None:
            return None
    return text_of(to_json_dict(obj))


_INDEX = re.compile(r"-?[0-9]{1,9}")


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))
