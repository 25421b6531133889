"""The writing half of the `--output-dir DIR/<node>.json` contract (`tfcompat gate DIR` reads it).

One function for `check --output-dir` and `fleet --output-dir`; it joins the reading half in
tfcompat.fleet when the lead merges the two.
"""

from __future__ import annotations

import os

from tfcompat.outputs import write_atomic


def write_node_report(output_dir: str, node: str, text: str) -> str:
    """Write `text` as DIR/<node>.json, atomically; the node name made safe as a file name."""
    name = "".join(c if c.isalnum() or c in "-_.@+" else "_" for c in node).lstrip(".")
    path = os.path.join(output_dir, (name or "unnamed-node") + ".json")
    write_atomic(path, text)
    return path
