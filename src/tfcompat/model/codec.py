"""JSON codec: generic over the model's dataclasses, driven by their type hints; snapshot decoding."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import typing
from typing import Any, Dict, Tuple, get_type_hints

from tfcompat.errors import TfcompatError
from tfcompat.model.environment import SNAPSHOT_VERSION, Environment


class SnapshotError(TfcompatError):
    """A snapshot file that cannot be read back into an Environment."""


def to_json_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [to_json_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json_dict(v) for k, v in obj.items()}
    return obj


def from_json_dict(cls: Any, data: Any, where: str = "$") -> Any:
    """Build `cls` from JSON data, with an error that names the offending field."""
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is typing.Union:  # Optional[X]
        if data is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return from_json_dict(inner[0], data, where)
    if origin in (tuple, Tuple):
        if not isinstance(data, list):
            raise SnapshotError(f"{where}: expected a list, got {type(data).__name__}")
        return tuple(from_json_dict(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise SnapshotError(f"{where}: expected an object, got {type(data).__name__}")
        hints = _hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(data) - known
        if extra:
            raise SnapshotError(f"{where}: unknown field {sorted(extra)[0]!r}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                kwargs[f.name] = from_json_dict(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SnapshotError(f"{where}: missing field {f.name!r}")
        return cls(**kwargs)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        try:
            return cls(data)
        except ValueError:
            raise SnapshotError(f"{where}: {data!r} is not one of {[m.value for m in cls]}") from None
    if cls is Any:
        return data
    if cls is bool:
        if not isinstance(data, bool):
            raise SnapshotError(f"{where}: expected true/false, got {data!r}")
        return data
    if cls is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise SnapshotError(f"{where}: expected an integer, got {data!r}")
        return data
    if cls is str:
        if not isinstance(data, str):
            raise SnapshotError(f"{where}: expected a string, got {data!r}")
        return data
    raise TypeError(f"no JSON decoding for {cls!r}")  # programmer error


_HINTS: Dict[type, Dict[str, Any]] = {}


def _hints(cls: type) -> Dict[str, Any]:
    if cls not in _HINTS:  # resolved in the class's own module: the model's annotations are strings
        _HINTS[cls] = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    return _HINTS[cls]


def environment_from_json(data: Any) -> Environment:
    if not isinstance(data, dict):
        raise SnapshotError("$: expected a JSON object")
    # A full report embeds the environment; accept either.
    if "environment" in data and "schema_version" in data:
        if data["environment"] is None:
            raise SnapshotError(f"$: a report with status {data.get('status')!r} and no environment (tfcompat could "
                                "not scan there): nothing to judge")
        data = data["environment"]
    version = data.get("snapshot_version") if isinstance(data, dict) else None
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"$.snapshot_version: {version!r} is not supported (this tfcompat reads {SNAPSHOT_VERSION})"
        )
    env: Environment = from_json_dict(Environment, data)
    return env


def read_snapshot(path: str) -> Environment:
    """Decode a snapshot file (or a JSON report that embeds one); every failure is one SnapshotError line."""
    from tfcompat.probes.rootfs import Root  # the one safe open: a FIFO or device never blocks, size capped

    try:
        data = json.loads(Root(None).read_bytes(path, "report").decode("utf-8"))
    except OSError as exc:
        why = exc.strerror or str(exc)
        why = why[len(path) + 2:] if why.startswith(f"{path}: ") else why
        raise SnapshotError(f"{path}: cannot read snapshot: {why}") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"{path}: not a JSON snapshot (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
    try:
        return environment_from_json(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
