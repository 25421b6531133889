import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # helper modules (envs.py, probe_helpers.py) sit beside the tests
# Some test modules build fixtures others reuse (test_ldcache.new_cache_body, test_libraries.make_image):
# every layer's folder is on the path, so they import by name whichever folder is run alone.
for _dirpath, _dirs, _files in sorted(os.walk(HERE)):
    _dirs[:] = [d for d in _dirs if d not in ("fixtures", "__pycache__")]
    if _dirpath != HERE:
        sys.path.append(_dirpath)


# The matrix cache (tfcompat.matrix.cache) goes to a folder of this run, not the developer's ~/.cache; subprocesses
# inherit it. tests/matrix/test_matrix_cache.py points it elsewhere where it tests the cache itself.
os.environ.setdefault("TFCOMPAT_CACHE_DIR", os.path.join(__import__("tempfile").mkdtemp(prefix="tfcompat-cache-")))


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab, ...): a missing build tool is a broken runner, not a reason to skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_tool(reason: str) -> None:
    """Skip locally, fail under CI: tests that need gcc/g++/c++filt must not pass silently on a bare runner."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: install it on the runner instead of skipping)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_tool(*names): the test runs these executables (gcc, g++, c++filt); "
        "skipped without them, failed without them under CI=true",
    )


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_tool"):
        absent = [name for name in mark.args if shutil.which(name) is None]
        if absent:
            missing_tool(f"{', '.join(absent)} not installed")


@pytest.fixture(scope="session")
def matrix():
    from tfcompat.matrix import load_matrix

    return load_matrix()
