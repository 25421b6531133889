"""probes/forked.py: a probe run in a forked child gives exactly what running it here gives, and anything unusual
falls back to running it here."""

import os

import pytest

from tfcompat.probes import forked
from tfcompat.probes.forked import Pending

PARENT = os.getpid()


def where(x, y=0):
    """(the pid that ran it, x + y): tells the child's run from the parent's."""
    return os.getpid(), x + y


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch):
    monkeypatch.delenv("TFCOMPAT_SERIAL", raising=False)
    monkeypatch.setattr(forked, "_cpus", lambda: 2)


def test_result_comes_from_the_child():
    pid, value = Pending(where, 2, y=3).result()
    assert value == 5 and pid != PARENT


@pytest.mark.parametrize("why", ["serial", "one cpu"])
def test_runs_here_when_it_cannot_help(monkeypatch, why):
    if why == "serial":
        monkeypatch.setenv("TFCOMPAT_SERIAL", "1")
    else:
        monkeypatch.setattr(forked, "_cpus", lambda: 1)
    pending = Pending(where, 1)
    assert pending._pid is None
    assert pending.result() == (os.getpid(), 1)


def _raises(x):
    if os.getpid() != PARENT:
        raise RuntimeError("only in the child")
    return os.getpid(), x


def _dies(x):
    if os.getpid() != PARENT:
        os._exit(3)
    return os.getpid(), x


def _unpicklable(x):
    if os.getpid() != PARENT:
        return lambda: x  # a lambda does not pickle
    return os.getpid(), x


@pytest.mark.parametrize("fn", [_raises, _dies, _unpicklable])
def test_a_failing_child_falls_back_to_running_here(fn):
    assert Pending(fn, 7).result() == (PARENT, 7)


def test_a_big_result_comes_through_the_pipe_whole():
    big = "x" * (3 << 20)  # more than a pipe's buffer: the parent must read while the child writes
    pid, value = Pending(where, big, y="!").result()
    assert value == big + "!" and pid != PARENT


def test_scan_gives_the_same_facts_forked_and_serial(tmp_path, monkeypatch):
    """The custom-op probe of a real gcc-built plugin tree, forked and serial: the same custom_ops and unknowns."""
    from tfcompat.model import to_json_dict
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    site = _plugin_site(tmp_path)
    spec = TargetSpec(site_packages=(site,))
    runs = []
    for serial in ("1", "0"):
        monkeypatch.setenv("TFCOMPAT_SERIAL", serial)
        env = scan(spec, nvml=False, environ={"PATH": "/usr/bin:/bin"})
        runs.append((to_json_dict(env.target.custom_ops), [(u.fact, u.reason) for u in env.unknowns]))
    assert runs[0] == runs[1]
    assert runs[0][0], "the tree must have a plugin to check"


def _plugin_site(tmp_path):
    """A TF 2.x venv with one gcc-built plugin that needs a TF symbol the framework does not define."""
    from elf_fixtures import gcc_so
    from probe_helpers import make_dist, write

    site = str(tmp_path / "venv/lib/python3.11/site-packages")
    make_dist(site, "tensorflow", "2.21.0")
    write(f"{site}/tensorflow/__init__.py", "")
    write(f"{site}/tensorflow/python/platform/build_info.py", "build_info = {'is_cuda_build': False}\n")
    fw = gcc_so(
        f"{site}/tensorflow/libtensorflow_framework.so.2",
        "void tf_defined(void) {}\n",
        soname="libtensorflow_framework.so.2",
    )
    dist = make_dist(site, "my-op", "1.0")
    gcc_so(
        f"{site}/my_op/_my_op.so",
        "extern void tf_defined(void); extern void tf_missing(void);\nvoid op(void) { tf_defined(); tf_missing(); }\n",
        flags=["-Wl,--no-as-needed", fw, "-Wl,--unresolved-symbols=ignore-all"],
    )
    write(f"{dist}/RECORD", "my_op/_my_op.so,,\n")
    return site
