"""JSON codec: generic over the model's dataclasses, driven by their type hints; snapshot decoding."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import typing
from typing import Any, Callable, TypeVar, get_type_hints

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


_T = TypeVar("_T")


def from_json_dict(cls: type[_T], data: Any, where: str = "$", lenient: bool = False) -> _T:
    """Build `cls` from JSON data, with an error that names the offending field. `lenient`: skip fields this
    tfcompat does not know (a report of a newer release: additive changes within a schema_version)."""
    try:
        decoded: _T = _decoder(cls)(data, lenient)  # the decoder built from cls's type hints builds a cls
    except _Bad as exc:
        raise SnapshotError(f"{where}{''.join(reversed(exc.path))}: {exc.args[0]}") from None
    return decoded


class _Bad(Exception):
    """A decoding error on its way up: each level adds its step to `path` (no path is built unless it fails)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.path: list[str] = []


Decoder = Callable[[Any, bool], Any]  # (data, lenient) -> value
_DECODERS: dict[Any, Decoder] = {}


def _decoder(cls: Any) -> Decoder:
    """The decoder of a type, built once per type from its type hints. Typing introspection on every value
    took 2/3 of the time when the gate decodes 10,000 reports of ~400 values each; closures take ~1/5."""
    dec = _DECODERS.get(cls)
    if dec is None:
        dec = _DECODERS[cls] = _build_decoder(cls)
    return dec


def _build_decoder(cls: Any) -> Decoder:
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is typing.Union:  # Optional[X]
        inner = _decoder(next(a for a in args if a is not type(None)))
        return lambda data, lenient: None if data is None else inner(data, lenient)
    if origin in (tuple, tuple):
        item = _decoder(args[0])

        def tuple_of(data: Any, lenient: bool) -> Any:
            if not isinstance(data, list):
                raise _Bad(f"expected a list, got {type(data).__name__}")
            out = []
            for i, v in enumerate(data):
                try:
                    out.append(item(v, lenient))
                except _Bad as exc:
                    exc.path.append(f"[{i}]")
                    raise
            return tuple(out)

        return tuple_of
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        fields: list[tuple[str, Decoder, bool]] = []  # filled on first use: a field's type may be this class
        make: Any = cls

        def dataclass_of(data: Any, lenient: bool) -> Any:
            if not fields:
                hints = _hints(make)
                fields.extend(
                    (
                        f.name,
                        _decoder(hints[f.name]),
                        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                    )
                    for f in dataclasses.fields(cls)
                )
            if not isinstance(data, dict):
                raise _Bad(f"expected an object, got {type(data).__name__}")
            if not lenient:
                extra = set(data) - {name for name, _, _ in fields}
                if extra:
                    raise _Bad(f"unknown field {sorted(extra)[0]!r}")
            kwargs = {}
            for name, decode, required in fields:
                if name in data:
                    try:
                        kwargs[name] = decode(data[name], lenient)
                    except _Bad as exc:
                        exc.path.append(f".{name}")
                        raise
                elif required:
                    raise _Bad(f"missing field {name!r}")
            return make(**kwargs)

        return dataclass_of
    if isinstance(cls, type) and issubclass(cls, enum.Enum):

        def enum_of(data: Any, lenient: bool) -> Any:
            try:
                return cls(data)
            except ValueError:
                raise _Bad(f"{data!r} is not one of {[m.value for m in cls]}") from None

        return enum_of
    if cls is Any:
        return lambda data, lenient: data
    if cls in _SCALARS:
        ok, expected = _SCALARS[cls]

        def scalar(data: Any, lenient: bool) -> Any:
            if not ok(data):
                raise _Bad(f"expected {expected}, got {data!r}")
            return data

        return scalar
    raise TypeError(f"no JSON decoding for {cls!r}")  # programmer error


_SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true/false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    str: (lambda v: isinstance(v, str), "a string"),
}
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:  # resolved in the class's own module: the model's annotations are strings
        _HINTS[cls] = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    return _HINTS[cls]


def environment_from_json(data: Any) -> Environment:
    if not isinstance(data, dict):
        raise SnapshotError("$: expected a JSON object")
    # A full report embeds the environment; accept either.
    if "environment" in data and "schema_version" in data:
        if data["environment"] is None:
            raise SnapshotError(
                f"$: a report with status {data.get('status')!r} and no environment (tfcompat could "
                "not scan there): nothing to judge"
            )
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
        why = why[len(path) + 2 :] if why.startswith(f"{path}: ") else why
        raise SnapshotError(f"{path}: cannot read snapshot: {why}") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"{path}: not a JSON snapshot (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:  # 100,000 '[': json's recursion, not ours
        raise SnapshotError(f"{path}: not a snapshot: JSON nested deeper than this Python can read") from None
    except ValueError as exc:  # a number of more digits than int() converts (Python >= 3.11: 4300)
        raise SnapshotError(f"{path}: not a snapshot: {exc}") from None
    try:
        return environment_from_json(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
