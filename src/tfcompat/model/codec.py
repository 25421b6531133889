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
    names = _NAMES.get(type(obj), _MISSING)
    if names is _MISSING:  # once per type: is_dataclass and fields() on each of 10,000 node verdicts cost 40 %
        names = _NAMES[type(obj)] = (
            tuple(f.name for f in dataclasses.fields(obj))
            if dataclasses.is_dataclass(obj) and not isinstance(obj, type)
            else None
        )
    if names is not None:
        return {name: to_json_dict(getattr(obj, name)) for name in names}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [to_json_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json_dict(v) for k, v in obj.items()}
    return obj


_T = TypeVar("_T")
_NAMES: dict[type, Any] = {}  # a type -> its dataclass field names, or None
_MISSING = object()


def from_json_dict(cls: type[_T], data: Any, where: str = "$", lenient: bool = False) -> _T:
    """Build `cls` from JSON data, with an error that names the offending field. `lenient`: skip fields this
    tfcompat does not know (a report of a newer release: additive changes within a schema_version)."""
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        try:
            fast: _T = _fast_decoder(cls)(data, lenient)
            return fast
        except (_Slow, RecursionError):
            pass  # the checked decoder below finds the offending field (or the same value, slower)
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


# ---------------------------------------------------------------------------
# The fast path: one generated function per dataclass, the same checks inlined, objects filled without their
# __init__ (frozen dataclasses set each field through object.__setattr__). It never reports an error: on anything
# it does not accept it raises _Slow, and from_json_dict decodes again with the decoders above, which name the
# offending field. The gate decodes 10,000 reports of ~400 values each: 3x faster than the closures.


class _Slow(Exception):
    """The fast path declines: decode with the checked decoder."""


_SLOW = _Slow()
_FAST: dict[type, Decoder] = {}


def _fast_enum(cls: Any, value: Any) -> Any:
    try:
        return cls(value)
    except (ValueError, TypeError):  # the checked decoder says which value
        raise _SLOW from None


def _fast_decoder(cls: type) -> Decoder:
    dec = _FAST.get(cls)
    if dec is None:
        nested: list[type] = []
        dec = _FAST[cls] = _generate(cls, nested)
        for other in nested:  # after cls is registered: a field's type may be cls itself
            _fast_decoder(other)
    return dec


def _generate(cls: type, nested: list[type]) -> Decoder:
    hints = _hints(cls)
    ns: dict[str, Any] = {
        "_SLOW": _SLOW,
        "_FAST": _FAST,
        "_new": object.__new__,
        "_enum": _fast_enum,
        "_cls": cls,
        "_names": frozenset(f.name for f in dataclasses.fields(cls)),
    }
    counter = [0]

    def name_of(value: Any) -> str:
        counter[0] += 1
        key = f"_k{counter[0]}"
        ns[key] = value
        return key

    def gen(tp: Any, src: str, dst: str, pad: str) -> list[str]:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Union:
            inner = next(a for a in args if a is not type(None))
            return [f"{pad}if {src} is None:", f"{pad}    {dst} = None", f"{pad}else:"] + gen(
                inner, src, dst, pad + "    "
            )
        if origin is tuple:
            item = f"_i{len(pad)}"
            out = f"_o{len(pad)}"
            return (
                [f"{pad}if not isinstance({src}, list):", f"{pad}    raise _SLOW", f"{pad}{out} = []"]
                + [f"{pad}for {item} in {src}:"]
                + gen(args[0], item, f"{item}_v", pad + "    ")
                + [f"{pad}    {out}.append({item}_v)", f"{pad}{dst} = tuple({out})"]
            )
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            nested.append(tp)
            return [f"{pad}{dst} = _FAST[{name_of(tp)}]({src}, lenient)"]
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return [f"{pad}{dst} = _enum({name_of(tp)}, {src})"]
        if tp is Any:
            return [f"{pad}{dst} = {src}"]
        check = {
            bool: f"isinstance({src}, bool)",
            int: f"isinstance({src}, int) and not isinstance({src}, bool)",
            str: f"isinstance({src}, str)",
        }.get(tp)
        if check is None:
            raise TypeError(f"no JSON decoding for {tp!r}")  # programmer error, as in _build_decoder
        return [f"{pad}if not ({check}):", f"{pad}    raise _SLOW", f"{pad}{dst} = {src}"]

    lines = [
        "def fast(data, lenient):",
        "    if not isinstance(data, dict) or not (lenient or _names.issuperset(data)):",
        "        raise _SLOW",
        "    obj = _new(_cls)",
        "    d = obj.__dict__",
    ]
    for f in dataclasses.fields(cls):
        lines += [f"    if {f.name!r} in data:", f"        v = data[{f.name!r}]"]
        lines += gen(hints[f.name], "v", f"d[{f.name!r}]", "        ")
        if f.default is not dataclasses.MISSING:
            lines += ["    else:", f"        d[{f.name!r}] = {name_of(f.default)}"]
        elif f.default_factory is not dataclasses.MISSING:
            lines += ["    else:", f"        d[{f.name!r}] = {name_of(f.default_factory)}()"]
        else:
            lines += ["    else:", "        raise _SLOW"]
    lines.append("    return obj")
    exec(compile("\n".join(lines), f"<fast decoder of {cls.__qualname__}>", "exec"), ns)
    fast: Decoder = ns["fast"]
    return fast
