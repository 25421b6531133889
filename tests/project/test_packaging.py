"""sdist and wheel build and pass `twine check`, and both carry the LICENSE that pyproject.toml names
(issue #12, Deliver 5). Built without isolation (hatchling comes with the test extra): a few seconds, offline."""

import glob
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.packaging


def _have(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    from conftest import missing_tool

    for module in ("build", "twine", "hatchling"):
        if not _have(module):
            missing_tool(f"{module} is not installed (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), ROOT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = glob.glob(str(out / "*.whl"))
    (sdist,) = glob.glob(str(out / "*.tar.gz"))
    return wheel, sdist


def test_twine_check_passes(dist):
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *dist], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


def test_wheel_carries_license_matrix_and_metadata(dist):
    from tfcompat import __version__

    wheel, _ = dist
    assert os.path.basename(wheel) == f"tfcompat-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
        license_name = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        license_text = zf.read(license_name).decode()
    assert {"tfcompat/data/compat_matrix.toml", "tfcompat/data/tf_log_patterns.toml"} <= set(names)
    assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as fh:
        assert license_text == fh.read()


def test_sdist_carries_license_changelog_and_tests(dist):
    _, sdist = dist
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for required in (
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
        "data/compat_matrix.toml",
        "data/tf_log_patterns.toml",
        "examples/README.md",
        "examples/compose.py",
        "examples/fleet/gpu-001.json",
        "src/tfcompat/__init__.py",
        "tests/conftest.py",
    ):
        assert required in names, required


def test_changelog_has_an_unreleased_section_and_the_current_release():
    from tfcompat import __version__

    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as fh:
        text = fh.read()
    assert "## [Unreleased]" in text
    assert f"## [{__version__}] - " in text


def test_wheel_carries_the_example_fleet_where_tfcompat_examples_finds_it(dist, tmp_path):
    """The wheel has examples/fleet and its README under tfcompat/data/examples (not the composing script), and
    `python -m tfcompat.examples` run from the unpacked wheel prints that folder, not the checkout's."""
    wheel, _ = dist
    shipped = sorted(os.listdir(os.path.join(ROOT, "examples", "fleet")))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "wheel")
    fleet = {n.rsplit("/", 1)[1] for n in names if n.startswith("tfcompat/data/examples/fleet/")}
    assert sorted(fleet) == shipped and "gpu-007.json" not in fleet and len(fleet) == 7
    assert "tfcompat/data/examples/README.md" in names
    assert not any(n.endswith("compose.py") for n in names)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "wheel"))
    proc = subprocess.run(
        [sys.executable, "-m", "tfcompat.examples"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "wheel" / "tfcompat" / "data" / "examples" / "fleet")
