"""typer's command and group classes, with two changes: help that reads as words, and option values coerced
without pydantic where the answer is plain.

typer (0.2x) coerces every parameter value through a pydantic TypeAdapter that it builds on first use, even a
value that is None because the option was not given: importing pydantic and building the adapters costs ~80 ms,
a quarter of a whole `tfcompat check --from`, and all of `check --help`'s excess. `_Lean` answers the cases whose
answer is plain, exactly as typer's adapters answer them: None (not given), a str for a str, strings for a
list[str], the exact value of an Enum choice, a plain decimal number within its range, a default that already
has its type. Anything else (1e3, a choice in another case, a bad value whose error message typer words) goes to
typer's own coercion, built then. With an older typer (click types, no adapters) nothing is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, get_args, get_origin

from typer.core import TyperCommand, TyperGroup

try:
    # typer-version-specific internals: mypy under an older typer (Python 3.9 stops at 0.23) finds none of them
    from typer._coercion import RuntimeParam, build_runtime_param  # type: ignore[import-not-found,unused-ignore]
    from typer.core import _TyperParameter  # type: ignore[attr-defined,unused-ignore]

    _LEAN = hasattr(_TyperParameter, "get_runtime_param")
except ImportError:  # pragma: no cover - an older typer: no adapters to avoid
    _LEAN = False

# Plain decimal numbers only: anything else (1e3, inf, _, spaces) is typer's to read or refuse.
_NUMBER: dict[Any, str] = {int: r"[0-9]{1,18}", float: r"[0-9]{1,18}(\.[0-9]{0,18})?"}

if _LEAN:

    @dataclass(frozen=True)
    class _Lean(RuntimeParam):
        """A typer RuntimeParam that answers the plain cases itself, the rest through typer's own coercion."""

        descriptor: Any = None  # typer's TypeDescriptor, for the coercion of the values answered here

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            # RuntimeParam.coerce has answered None (not given) already: None, or () for a repeatable option
            annotation: Any = self.annotation
            if annotation is str and isinstance(value, str):
                return value
            if (
                get_origin(annotation) is list
                and get_args(annotation) == (str,)
                and isinstance(value, (list, tuple))
                and all(isinstance(v, str) for v in value)
            ):
                return list(value)
            if isinstance(annotation, type) and issubclass(annotation, Enum):
                if isinstance(value, annotation):
                    return value
                for member in annotation:
                    if isinstance(value, str) and member.value == value:
                        return member
            elif annotation in (int, float):
                if value is param.default and type(value) is annotation:
                    return value  # the default of --probe-timeout, --timeout: within its range
                if isinstance(value, str) and re.fullmatch(_NUMBER[annotation], value):
                    number = annotation(value)
                    info = self.parameter_info
                    low, high = getattr(info, "min", None), getattr(info, "max", None)
                    if (low is None or number >= low) and (high is None or number <= high):
                        return number  # out of range: typer says so, in its words
            full = build_runtime_param(self.descriptor)  # typer's own: pydantic, its words for a bad value
            param._runtime_param = full
            return full.coerce(value, param=param, ctx=ctx)


def _lean_params(command: Any, ctx: Any) -> None:
    if not _LEAN:
        return
    for param in command.get_params(ctx):
        desc = getattr(param, "type_descriptor", None)
        if (
            isinstance(param, _TyperParameter)
            and param._runtime_param is None
            and desc is not None
            and desc.file_annotation is None
        ):
            param._runtime_param = _Lean(
                parameter_info=desc.parameter_info, annotation=desc.annotation, descriptor=desc
            )


class Group(TyperGroup):
    """A group whose own options (--version, -h) are coerced without pydantic: `tfcompat check --help` and
    `tfcompat matrix gpu -h` do not import it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _lean_params(self, ctx)
        return super().parse_args(ctx, args)


class Command(TyperCommand):
    """A command whose options are coerced without pydantic where the answer is plain, and whose Arguments
    section shows an argument's metavar alone (`RULE`, `REPORT...`), not followed by typer's type label (`<str>`,
    `<list[str]>`); an option with a metavar shows only the metavar already."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _lean_params(self, ctx)
        return super().parse_args(ctx, args)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                if param.metavar:
                    record = (param.metavar + ("..." if param.nargs != 1 else ""), record[1])
                args.append(record)
            elif param.param_type_name == "option":
                opts.append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)
