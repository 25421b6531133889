"""Reading the gate's inputs: files, directories, globs and ``-`` (stdin), as JSON or JSON Lines.

Each input becomes one :class:`Loaded` per JSON object: its parsed value, or why it could not be read (the
report is then unreadable and the gate incomplete). Nothing here decides what a report means: that is
``fleet.judge``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import glob
import json
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Optional, TextIO

from tfcompat.errors import TfcompatError
from tfcompat.fleet.reportdir import node_of_file, report_entries


class GateError(TfcompatError):
    """Bad gate input the user can fix (a path that does not exist, a malformed --expect or --max-age)."""


@dataclasses.dataclass(frozen=True)
class Loaded:
    """One report as read: its parsed JSON, or why it could not be read."""

    source: str
    data: Optional[dict[str, Any]]
    error: Optional[str] = None
    name_hint: Optional[str] = None  # a node name from the file name (<node>.json), for reports that name none


_GLOB_CHARS = re.compile(r"[*?\[]")


def _too_much(exc: Exception) -> str:
    """The one-line reason for what json refuses beyond its syntax errors: nesting deeper than Python's recursion
    limit (RecursionError) or an integer longer than int()'s digit limit (ValueError, Python >= 3.11)."""
    if isinstance(exc, RecursionError):
        return "not readable: JSON nested deeper than this Python's recursion limit"
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if "integer string conversion" in str(exc) and limit:
        return f"not readable: a JSON number of more than {limit} digits"
    return f"not readable: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}"


# A launcher's label before a value on its line (``check --format jsonl`` collected from many nodes):
# ``gpu-001: {...}`` (pdsh, clush without -b), ``  0: {...}`` (srun -l: the task's rank, right-aligned),
# ``gpu-[001-002]: {...}`` (clush -L, output gathered). Host-name characters (and a folded set's), a colon, a ``{``.
_LABEL_TEXT = r"[ \t]*([A-Za-z0-9][A-Za-z0-9._\-\[\],]*)[ \t]*:[ \t]*"
_LABEL = re.compile(_LABEL_TEXT + r"(?=\{)")
# A line that starts a JSON object or array, labelled or not: where a value may start.
_NEXT_VALUE = re.compile(r"\n(?:[\[{]|" + _LABEL_TEXT + r"\{)")
# A launcher's header line(s) before a node's output, skipped: clush -b's block (15 dashes, the node set and
# its count when gathered, 15 dashes; pdsh | dshbak's has 16) and Ansible ad-hoc's ``host | CHANGED | rc=1 >>``
# (after it come the command's stdout, stripped, then its stderr and "non-zero return code" without a line break:
# skipped up to the next host's line or a line that starts a value).
_HEADER = re.compile(
    r"-{15,}[ \t]*\n[ \t]*(\S+)(?: \(\d+\))?[ \t]*\n[ \t]*-{15,}[ \t]*(?:\n|$)"
    r"|([A-Za-z0-9][A-Za-z0-9._\-]*) \| [A-Z!]+ \| rc=-?\d+ >>[ \t]*(?:\n|$)"
)
# Where an Ansible ad-hoc host's output ends: the next host's line, or a line that starts a value.
_ANSIBLE_NEXT = re.compile(r"\n(?=[\[{]|[A-Za-z0-9][A-Za-z0-9._\-]* \| [A-Z!]+(?: \| rc=-?\d+ >>| => |$))", re.M)
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*\Z")


def _node_hint(label: Optional[str]) -> Optional[str]:
    """A launcher's label as a node-name hint (used only when the report names no node): a host name, not a
    rank (srun -l's ``0``) nor a folded set of several nodes."""
    if label is None or label.isdigit() or not _HOST_NAME.match(label):
        return None
    return label


def _iter_json_values(text: str, source: str) -> Iterator[Loaded]:
    """JSON Lines, or JSON values one after another (``cat *.json``); a bad line is skipped, not fatal.

    A line may carry a launcher's label before its value (``gpu-001: {...}`` from pdsh or clush, ``0: {...}``
    from srun -l), and a node's output a launcher's header (clush -b's, Ansible ad-hoc's): both are skipped,
    and a label or header naming one host is the node-name hint for a report that names no node.

    Linear in the input: line numbers (for the sources) are counted incrementally, and each value is decoded
    within its own stretch of text (up to the next line that starts with ``{`` or ``[``, labelled or not), so
    that neither counting lines nor json's error position (which counts lines from the start of what it decodes)
    rescans the input per record. A value cut at such a line (JSON not written by json.dumps) is decoded again
    from its start to the end of the input.
    """
    decoder = json.JSONDecoder()
    pos, n = 0, len(text)
    line, counted = 1, 0  # `line` is the line number of text[counted]
    header: Optional[str] = None  # the node a launcher's header named, for the value after it
    rest_of_line = False  # Ansible ad-hoc: the command's stderr and "non-zero return code" follow the value
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        head = _HEADER.match(text, pos)
        if head is not None:
            header = head.group(1) or head.group(2)
            rest_of_line = head.group(2) is not None
            pos = head.end()
            continue
        label = _LABEL.match(text, pos)
        hint = _node_hint(label.group(1) if label is not None else header)
        skip_rest, header, rest_of_line = rest_of_line, None, False
        if label is not None:
            pos = label.end()
        line += text.count("\n", counted, pos)
        counted = pos
        where = f"{source}:{line}"
        nxt = _NEXT_VALUE.search(text, pos)
        stop = nxt.start() if nxt is not None else n
        window = text[pos:stop]
        try:
            value, end = decoder.raw_decode(window)
            end += pos
        except (RecursionError, ValueError) as exc:
            if not isinstance(exc, json.JSONDecodeError):  # too deep, or too long a number: this value only
                yield Loaded(where, None, _too_much(exc), hint)
                if nxt is None:
                    return
                pos = stop + 1
                continue
            error: Optional[str] = f"not valid JSON: {exc.msg}"
            if stop < n and exc.pos >= len(window.rstrip()):  # cut short, not malformed: try the whole value
                try:
                    value, end = decoder.raw_decode(text, pos)
                    error = None
                except json.JSONDecodeError as exc2:
                    error = f"not valid JSON: {exc2.msg}"
                except (RecursionError, ValueError) as exc2:
                    error = _too_much(exc2)
            if error is not None:
                if label is not None:  # a labelled report over several lines: each line is labelled
                    error += (
                        f" (line labelled {label.group(1)!r}: a labelled report must be one line, `check -f jsonl`)"
                    )
                yield Loaded(where, None, error, hint)
                # Resume at the next value that starts a line: the next JSON Lines record, or the next
                # top-level object of concatenated pretty-printed files.
                if nxt is None:
                    return
                pos = stop + 1
                continue
        pos = end
        if skip_rest:  # Ansible ad-hoc: stdout (stripped), then stderr and its message, up to the next host
            after = _ANSIBLE_NEXT.search(text, end)
            pos = n if after is None else after.start()
        if isinstance(value, dict):
            yield Loaded(where, value, None, hint)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield _as_loaded(item, f"{where}[{i}]")
        else:
            yield Loaded(where, None, f"not a JSON object but {type(value).__name__}", hint)


def _as_loaded(value: Any, source: str, name_hint: Optional[str] = None) -> Loaded:
    if isinstance(value, dict):
        return Loaded(source, value, None, name_hint)
    return Loaded(source, None, f"not a JSON object but {type(value).__name__}")


MAX_INPUT_BYTES = 1 << 30  # one input file (JSON Lines of ~100,000 reports); more is not a report file


def _read_bytes(path: str) -> bytes:
    """A regular file's bytes, at most MAX_INPUT_BYTES: a FIFO or a device named ``x.json`` in a report directory
    is refused (it could block forever, or never end), never waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("not a regular file")
        if st.st_size > MAX_INPUT_BYTES:
            raise _Refused(f"larger than {MAX_INPUT_BYTES >> 20} MiB")
        chunks, got = [], 0
        while got <= MAX_INPUT_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > MAX_INPUT_BYTES:  # it grew while read
            raise _Refused(f"larger than {MAX_INPUT_BYTES >> 20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Refused(Exception):
    """An input file not read, and why."""


def _read_file(path: str) -> list[Loaded]:
    try:
        text = _read_bytes(path).decode("utf-8")
    except _Refused as exc:
        return [Loaded(path, None, f"cannot read: {exc}")]
    except OSError as exc:
        return [Loaded(path, None, f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return [Loaded(path, None, "not UTF-8 text")]
    if "\r" in text:  # as a text-mode open() reads it: line numbers count \r\n and \r as one line end
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    hint = node_of_file(path)
    if path.endswith((".jsonl", ".ndjson")):
        return list(_iter_json_values(text, path))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            return [Loaded(path, None, "empty file", hint)]
        return [Loaded(path, None, f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}", hint)]
    except (RecursionError, ValueError) as exc:
        return [Loaded(path, None, _too_much(exc), hint)]
    if isinstance(value, list):
        return [_as_loaded(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return [_as_loaded(value, path, hint)]


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Parsing and decoding 10,000 reports makes ~4 million small objects without a reference cycle; the cyclic
    collector rescanning them as they pile up took half the time of each (json.loads of 89 MB: 3.1 s against
    1.1 s without it). Re-entrant: the outermost one turns it back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_inputs(inputs: Sequence[str], stdin: Optional[TextIO] = None) -> list[Loaded]:
    """Files, directories (their ``*.json``/``*.jsonl``, hidden temp files skipped), globs, ``-`` for stdin.

    A path that does not exist or a glob that matches nothing is the user's mistake (GateError); a file that
    exists but cannot be read or parsed is an unreadable report (the gate is then incomplete).
    """
    if not inputs:
        raise GateError("no reports given: name files, directories or globs, or '-' for JSON Lines on stdin")
    with no_cyclic_gc():
        return _read_all(inputs, stdin)


def _read_all(inputs: Sequence[str], stdin: Optional[TextIO]) -> list[Loaded]:
    out: list[Loaded] = []
    seen: set = set()
    for item in inputs:
        if item == "-":
            if stdin is None:
                raise GateError("'-' names stdin, but there is no stdin to read")
            out.extend(_iter_json_values(stdin.read(), "<stdin>"))
            continue
        if os.path.isdir(item):
            # one realpath for the directory: a file in it that is not a link is the directory's real path + its
            # name (a realpath per file was an lstat per path component, 40,000 for 10,000 reports)
            real = os.path.realpath(item)
            entries = report_entries(item)
            paths = [p for p, _ in entries]
            keys = [os.path.realpath(p) if link else os.path.join(real, os.path.basename(p)) for p, link in entries]
        elif os.path.exists(item):
            paths = [item]
            keys = [os.path.realpath(item)]
        elif _GLOB_CHARS.search(item):
            paths = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not paths:
                raise GateError(f"{item}: no file matches")
            keys = [os.path.realpath(p) for p in paths]
        else:
            raise GateError(f"{item}: no such file or directory")
        for p, key in zip(paths, keys):
            if key in seen:
                continue
            seen.add(key)
            out.extend(_read_file(p))
    return out
