"""Where the example fleet lives: examples/ of the repository in a source checkout (and an editable install),
tfcompat/data/examples/ inside the wheel (pyproject.toml: force-include).

``python -m tfcompat.examples`` prints the folder of the example node reports, so a shell can hand it to the
gate without knowing where tfcompat is installed::

    tfcompat gate "$(python -m tfcompat.examples)" --expect 'gpu-[001-008]'
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent  # src/tfcompat, or site-packages/tfcompat

#: the node set the example fleet was collected for (one node of it never reported)
EXPECT = "gpu-[001-008]"


def examples_dir() -> Path:
    """The shipped examples folder (README.md, fleet/): the wheel's copy, else the checkout's examples/."""
    packaged = _PACKAGE / "data" / "examples"
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent.parent / "examples"


def fleet_dir() -> Path:
    """The folder of the example fleet's node reports (`tfcompat check -f json`, one file per node)."""
    return examples_dir() / "fleet"


def gate_command(python: str = "python") -> str:
    """The shell command that gates the example fleet, with the folder as this installation has it."""
    d = fleet_dir()
    where = str(d) if d.is_dir() else f'"$({python} -m tfcompat.examples)"'
    if " " in where and not where.startswith('"'):
        where = f"'{where}'"
    return f"tfcompat gate {where} --expect '{EXPECT}'"


def main() -> int:
    d = fleet_dir()
    if not d.is_dir():
        print(f"tfcompat: error: the example fleet is not installed (looked in {d})", file=sys.stderr)
        return 2
    print(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
