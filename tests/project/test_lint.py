"""Lint, format and type checks are part of the one test command (`.ci/run` is the README's test command).

The configuration is pyproject.toml's [tool.ruff] and [tool.mypy]; `scripts/lint.sh` runs the same three
checks by hand. Without the tools (a bare laptop) these skip; under CI=true they must run.
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tool(name):
    """The tool installed beside this interpreter (the test extra), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    found = here if os.path.exists(here) else shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (pip install -e '.[test]'); CI must run it")
        pytest.skip(f"{name} not installed")
    return found


def run(argv):
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_ruff_lint():
    run([tool("ruff"), "check", "src", "tests", "scripts"])


def test_ruff_format():
    run([tool("ruff"), "format", "--check", "src", "tests", "scripts"])


def test_mypy():
    run([tool("mypy"), "src"])
