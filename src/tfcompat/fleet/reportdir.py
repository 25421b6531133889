"""The report directory, ``DIR/<node>.json``: both halves of the contract between ``check --output-dir`` /
``fleet --output-dir`` (the writers) and ``gate DIR`` (the reader), kept in one place so they cannot drift apart.

- One file per node, named from the node, one-to-one (two nodes never share a file): a plain name (ASCII letters,
  digits and ``-_.@+``, not starting with ``.``) is the file name as it is (``gpu-001.json``); in any other name
  each other character (a leading ``.`` included, so that a node file is never hidden) is percent-encoded from its
  UTF-8 bytes (``a/b`` -> ``a%2Fb``, ``.x`` -> ``%2Ex``), which the reader decodes back. A name whose file name
  would be longer than ``MAX_STEM`` characters (or an empty one) is cut and ends in ``~`` and a hash of the whole
  name: still one file per node, but the reader takes no node name from it (the report names its node).
- Files are written atomically through a temp file in the same directory whose name starts with ``.``
  (``write_atomic`` does this): the reader skips hidden names, so it never reads half a file.
- The reader takes ``*.json``, ``*.jsonl`` and ``*.ndjson``, sorted by name; a report that names no node takes
  the name of its ``<node>.json`` file.
"""

from __future__ import annotations

import hashlib
import os
import string
import urllib.parse
from typing import Optional

from tfcompat.errors import TfcompatError
from tfcompat.outputs import write_atomic

REPORT_SUFFIXES = (".json", ".jsonl", ".ndjson")
NODE_SUFFIX = ".json"


class ReportDirError(TfcompatError):
    """A report directory that cannot be written (it does not exist)."""


# ---------------------------------------------------------------------------
# The writers' half


_PLAIN = frozenset(string.ascii_letters + string.digits + "-_.@+")
MAX_STEM = 200  # file names stay well under the usual 255-byte limit
_HASHED = "~"  # never in a plain or percent-encoded name


def _encoded(node: str) -> str:
    out = []
    for i, c in enumerate(node):
        if c in _PLAIN and not (i == 0 and c == "."):
            out.append(c)
        else:
            out.append("".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")))
    return "".join(out)


def node_file(node: str) -> str:
    """The file name of `node`'s report: ``gpu-001.json``; one file per node (see the module's docstring)."""
    stem = _encoded(node)
    if not stem or len(stem) > MAX_STEM:
        digest = hashlib.sha256(node.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        stem = (stem[: MAX_STEM - 20] if stem else "unnamed-node") + _HASHED + digest
    return stem + NODE_SUFFIX


def write_node_report(directory: str, node: str, text: str) -> str:
    """Write `text` (a JSON report) as `directory`/<node>.json atomically (a temp file whose name starts
    with ``.`` in the same directory, then a rename); returns the path."""
    if not os.path.isdir(directory):
        raise ReportDirError(f"--output-dir {directory}: no such directory")
    path = os.path.join(directory, node_file(node))
    write_atomic(path, text)
    return path


# ---------------------------------------------------------------------------
# The reader's half


def report_files(directory: str) -> list[str]:
    """The report files of `directory`, sorted; hidden files (a writer's temp files) skipped."""
    return [path for path, _ in report_entries(directory)]


def report_entries(directory: str) -> list[tuple[str, bool]]:
    """(path, is a symbolic link) of each report file of `directory`, sorted as ``report_files``: the directory's
    own entries, read without a stat of each file where the file system gives the type."""
    with os.scandir(directory) as it:
        found = [
            (e.name, e.is_symlink()) for e in it if not e.name.startswith(".") and e.name.endswith(REPORT_SUFFIXES)
        ]
    return [(os.path.join(directory, name), link) for name, link in sorted(found)]


def node_of_file(path: str) -> Optional[str]:
    """The node a ``<node>.json`` file is named for (a hint for reports that name none), or None."""
    base = os.path.basename(path)
    if not (base.endswith(NODE_SUFFIX) and len(base) > len(NODE_SUFFIX)):
        return None
    stem = base[: -len(NODE_SUFFIX)]
    if _HASHED in stem:  # cut to length: the name is not in the file name
        return None
    if "%" not in stem:
        return stem
    try:
        return urllib.parse.unquote_to_bytes(stem).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # not written by node_file: the file name as it is
        return stem
