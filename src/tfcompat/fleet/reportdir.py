"""The report directory, ``DIR/<node>.json``: both halves of the contract between ``check --output-dir`` /
``fleet --output-dir`` (the writers) and ``gate DIR`` (the reader), kept in one place so they cannot drift apart.

- One file per node, named from the node: characters other than letters, digits and ``-_.@+`` become ``_``,
  leading dots are dropped (a node file is never hidden); an empty name becomes ``unnamed-node``.
- Files are written atomically through a temp file in the same directory whose name starts with ``.``
  (``write_atomic`` does this): the reader skips hidden names, so it never reads half a file.
- The reader takes ``*.json``, ``*.jsonl`` and ``*.ndjson``, sorted by name; a report that names no node takes
  the name of its ``<node>.json`` file.
"""

from __future__ import annotations

import os
from typing import List, Optional

from tfcompat.errors import TfcompatError
from tfcompat.outputs import write_atomic

REPORT_SUFFIXES = (".json", ".jsonl", ".ndjson")
NODE_SUFFIX = ".json"


class ReportDirError(TfcompatError):
    """A report directory that cannot be written (it does not exist)."""


# ---------------------------------------------------------------------------
# The writers' half


def node_file(node: str) -> str:
    """The file name of `node`'s report: ``gpu-001.json``."""
    name = "".join(c if c.isalnum() or c in "-_.@+" else "_" for c in node).lstrip(".")
    return (name or "unnamed-node") + NODE_SUFFIX


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


def report_files(directory: str) -> List[str]:
    """The report files of `directory`, sorted; hidden files (a writer's temp files) skipped."""
    names = sorted(n for n in os.listdir(directory) if not n.startswith(".") and n.endswith(REPORT_SUFFIXES))
    return [os.path.join(directory, n) for n in names]


def node_of_file(path: str) -> Optional[str]:
    """The node a ``<node>.json`` file is named for (a hint for reports that name none), or None."""
    base = os.path.basename(path)
    if base.endswith(NODE_SUFFIX) and len(base) > len(NODE_SUFFIX):
        return base[: -len(NODE_SUFFIX)]
    return None
