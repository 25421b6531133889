"""Folded node lists, as Slurm's hostlist writes them: ``gpu-[001-128,130],login[1-2]``.

``expand`` turns a folded list into names; ``fold`` turns names back into the shortest folded list
that expands to them (zero padding kept, one bracket per name on its last run of digits).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Optional

from tfcompat.errors import TfcompatError

MAX_NODES = 1_000_000  # a typo like gpu-[1-99999999] must not eat the memory
MAX_DIGITS = 18  # a run of more digits is not a number to fold or count with (int() refuses 4,300 and more)


class NodeSetError(TfcompatError):
    """A folded node list that cannot be read (unbalanced brackets, bad range)."""


NAME_HINT = "node names are host names: letters, digits, '-', '.', '_'; ranges as gpu-[001-128]"
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-._")
_NOT_SUPPORTED = {  # what such a character means elsewhere, for the hint
    "!": "ClusterShell's set difference",
    "&": "ClusterShell's intersection",
    "^": "ClusterShell's symmetric difference",
    "@": "a node group",
    "*": "a wildcard",
    "?": "a wildcard",
}


def _check_name_chars(part: str, whole: str) -> None:
    """Outside brackets, a node set holds host-name characters only (inside, _RANGE checks the numbers): a
    ClusterShell operator or group (``!``, ``&``, ``^``, ``@``), a space or a wildcard is refused with a hint,
    not taken as a name that then never reports."""
    depth = 0
    for ch in part:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0 and ch not in _NAME_CHARS:
            what = f" ({_NOT_SUPPORTED[ch]}, not supported)" if ch in _NOT_SUPPORTED else ""
            shown = "white space" if ch.isspace() else repr(ch)
            extra = "; expand groups and operators first, e.g. `nodeset -f`" if what else ""
            if ch.isspace():
                extra = "; key=value labels go in an --expect file, after the node set"
            raise NodeSetError(
                f"node set {_cut(whole)!r}: {shown}{what} is not valid in a node name ({NAME_HINT}{extra})"
            )


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise NodeSetError(f"node set {text!r}: nested '[' at position {i + 1}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise NodeSetError(f"node set {text!r}: ']' without '[' at position {i + 1}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise NodeSetError(f"node set {text!r}: '[' is never closed")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _expand_brackets(body: str, whole: str, limit: int) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        item = item.strip()
        m = _RANGE.match(item)
        if not m:
            raise NodeSetError(f"node set {whole!r}: {item!r} is not a number or a range like 001-128")
        lo_s, hi_s = m.group(1), m.group(2)
        if hi_s is None:
            out.append(lo_s)
            continue
        if max(len(lo_s), len(hi_s)) > MAX_DIGITS:
            raise NodeSetError(f"node set {_cut(whole)!r}: a range bound has more than {MAX_DIGITS} digits")
        lo, hi = int(lo_s), int(hi_s)
        if hi < lo:
            raise NodeSetError(f"node set {whole!r}: range {item!r} runs backwards")
        if hi - lo + 1 > limit:
            raise _too_many(f"node set {_cut(whole)!r}: range {item!r}", limit)
        width = len(lo_s) if lo_s.startswith("0") and len(lo_s) > 1 else 0
        out.extend(str(n).zfill(width) for n in range(lo, hi + 1))
    return out


def _too_many(what: str, limit: int) -> NodeSetError:
    if limit < MAX_NODES:  # what is left of a caller's total
        return NodeSetError(f"{what} makes more than {MAX_NODES} names in all")
    return NodeSetError(f"{what} has more than {limit} names")


def _cut(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _expand_one(pattern: str, whole: str, limit: int) -> list[str]:
    m = re.search(r"\[([^\]]*)\]", pattern)
    if not m:
        if "]" in pattern or "[" in pattern:
            raise NodeSetError(f"node set {whole!r}: unbalanced brackets")
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end() :]
    names: list[str] = []
    for value in _expand_brackets(m.group(1), whole, limit):
        for rest in _expand_one(tail, whole, limit):
            names.append(head + value + rest)
            if len(names) > limit:
                raise _too_many(f"node set {_cut(whole)!r}", limit)
    return names


def expand(nodeset: str, limit: int = MAX_NODES) -> list[str]:
    """``'gpu-[001-003,007],login1'`` -> ``['gpu-001', 'gpu-002', 'gpu-003', 'gpu-007', 'login1']``.

    Several brackets in one name multiply out (``r[1-2]n[1-2]`` is four names); duplicates are dropped,
    first occurrence kept. More than `limit` names in all is an error, found before they are made (a caller
    that expands several sets passes what is left of its total).
    """
    seen: dict[str, None] = {}
    for part in _split_top(nodeset.strip()):
        _check_name_chars(part, nodeset)
        for name in _expand_one(part, nodeset, limit - len(seen)):
            seen.setdefault(name, None)
        if len(seen) > limit:
            raise _too_many(f"node set {_cut(nodeset)!r}", limit)
    return list(seen)


_LAST_DIGITS = re.compile(r"^(.*?)(\d+)(\D*)$")


def _split_name(name: str) -> Optional[tuple[str, str, str]]:
    """(prefix, last run of digits, suffix), or None for a name kept whole: no digits, or too many to count with."""
    m = _LAST_DIGITS.match(name)
    if m is None or len(m.group(2)) > MAX_DIGITS:
        return None
    return m.group(1), m.group(2), m.group(3)


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def fold(names: Iterable[str]) -> str:
    """``['gpu-002', 'gpu-001', 'gpu-007']`` -> ``'gpu-[001-002,007]'``; ``expand(fold(x))`` has x's names.

    Names are grouped by what stands before and after their last run of digits and by its zero padding:
    ``n01`` and ``n1`` stay apart (they are different names), ``gpu-099`` and ``gpu-100`` join.
    """
    plain: list[str] = []
    # (prefix, suffix) -> width -> numbers; width 0 = no padding
    groups: dict[tuple[str, str], dict[int, list[int]]] = {}
    unpadded: dict[tuple[str, str], list[str]] = {}
    for name in dict.fromkeys(names):
        parts = _split_name(name)
        if parts is None:
            plain.append(name)
            continue
        prefix, digits, suffix = parts
        key = (prefix, suffix)
        if len(digits) > 1 and digits.startswith("0"):
            groups.setdefault(key, {}).setdefault(len(digits), []).append(int(digits))
        else:
            unpadded.setdefault(key, []).append(digits)
    # An unpadded number joins a padded group whose width it fills exactly (gpu-100 with gpu-099).
    for key, unpadded_digits in unpadded.items():
        widths = groups.setdefault(key, {})
        for digits in unpadded_digits:
            width = len(digits) if len(digits) in widths else 0
            widths.setdefault(width, []).append(int(digits))
    items: list[tuple[tuple, str]] = [((name, "", -1, -1), name) for name in plain]
    for (prefix, suffix), widths in groups.items():
        for width, numbers in widths.items():
            spans = _ranges(numbers)
            if not spans:
                continue
            text = ",".join(
                str(a).zfill(width) if a == b else f"{str(a).zfill(width)}-{str(b).zfill(width)}" for a, b in spans
            )
            if len(spans) == 1 and spans[0][0] == spans[0][1]:
                folded = f"{prefix}{text}{suffix}"
            else:
                folded = f"{prefix}[{text}]{suffix}"
            items.append(((prefix, suffix, spans[0][0], width), folded))
    items.sort(key=lambda kv: kv[0])
    return ",".join(folded for _, folded in items)


def abbreviate(nodeset: str, limit: int = 160) -> str:
    """A folded list cut for one line of text: ``gpu-[0002,0006,...]`` (the JSON output keeps it whole)."""
    if len(nodeset) <= limit:
        return nodeset
    cut = nodeset.rfind(",", 0, limit)
    head = nodeset[: cut if cut > 0 else limit]
    return head + (",...]" if head.count("[") > head.count("]") else ",...")
