"""Where the data files live: data/ of the repository in a source checkout, tfcompat/data/ inside the wheel.

Every fact of the world is a file in data/ (the compatibility matrix, TensorFlow's log lines); the wheel
carries them as package data (pyproject.toml: force-include), so the code asks here instead of guessing.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent  # src/tfcompat, or site-packages/tfcompat


def data_file(name: str) -> Path:
    """The shipped data file `name` ("compat_matrix.toml"): the wheel's copy, else the checkout's data/."""
    packaged = _PACKAGE / "data" / name
    if packaged.is_file():
        return packaged
    return _PACKAGE.parent.parent / "data" / name
