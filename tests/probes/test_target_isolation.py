"""--python X is asked in isolation (#17 items 1 and 5): no .pth line, no sitecustomize, no usercustomize
runs; the child's whole process group dies at the time limit; its answer is read with a cap."""

import os
import subprocess
import sys
import time

import pytest
from probe_helpers import make_dist, write

from tfcompat.probes import target
from tfcompat.probes.target import TargetError, TargetSpec, resolve_target

PY_XY = "python{}.{}".format(*sys.version_info[:2])


@pytest.fixture
def hostile_venv(tmp_path):
    env = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=60)
    site = env / "lib" / PY_XY / "site-packages"
    pwned = tmp_path / "pwned"
    write(site / "x.pth", f"import os; os.system('touch {pwned}')\n")
    write(site / "sitecustomize.py", f"open({str(pwned) + '-sitecustomize'!r}, 'w').close()\n")
    write(site / "usercustomize.py", f"open({str(pwned) + '-usercustomize'!r}, 'w').close()\n")
    write(site / "tensorflow.pth", "import tensorflow\n")
    write(site / "tensorflow/__init__.py", f"open({str(pwned) + '-tf'!r}, 'w').close()\n")
    (tmp_path / "extra-dir").mkdir()
    write(site / "paths.pth", "# a comment\n../../../../extra-dir\n/nonexistent/dir\n")
    make_dist(site, "in-the-venv", "1.0")
    return env, site, pwned


def test_pth_and_sitecustomize_never_run(hostile_venv, tmp_path):
    env, site, _pwned = hostile_venv
    t = resolve_target(TargetSpec(python=str(env / "bin" / "python")))
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith("pwned")]
    assert leftovers == []
    assert os.path.realpath(site) in [os.path.realpath(p) for p in t.search_path]
    # a .pth's path lines are still honoured (read as data), as site.py would add them
    assert os.path.realpath(tmp_path / "extra-dir") in [os.path.realpath(p) for p in t.search_path]
    assert "/nonexistent/dir" not in t.search_path
    assert "-I -S" in t.python.source


def test_cli_check_does_not_run_the_pth(hostile_venv, tmp_path):
    env, _site, _pwned = hostile_venv
    subprocess.run(
        [sys.executable, "-m", "tfcompat", "check", "--python", str(env / "bin" / "python")],
        capture_output=True,
        timeout=120,
    )
    assert not [p for p in os.listdir(tmp_path) if p.startswith("pwned")]


def test_environment_variables_do_not_reach_the_child(hostile_venv, tmp_path, monkeypatch):
    env, _site, pwned = hostile_venv
    write(tmp_path / "startup.py", f"open({str(pwned) + '-startup'!r}, 'w').close()\n")
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "startup.py"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "on-pythonpath"))
    (tmp_path / "on-pythonpath").mkdir()
    t = resolve_target(TargetSpec(python=str(env / "bin" / "python")))
    assert str(tmp_path / "on-pythonpath") not in t.search_path
    assert not [p for p in os.listdir(tmp_path) if p.startswith("pwned")]


def _script(path, body):
    write(path, "#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return str(path)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (reparented to an init that has not reaped it yet) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pid, within=5.0):
    """SIGKILL is delivered asynchronously: give the kernel a moment to end (and init to reap) the process."""
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_grandchild_dies_at_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(target, "PYTHON_PROBE_TIMEOUT", 1.0)
    pidfile = tmp_path / "grandchild.pid"
    py = _script(tmp_path / "python", f"sleep 300 &\necho $! > {pidfile}\nsleep 300\n")
    start = time.monotonic()
    with pytest.raises(TargetError, match="did not answer within 1 s"):
        resolve_target(TargetSpec(python=py))
    assert time.monotonic() - start < 10
    assert _gone(int(pidfile.read_text()))


def test_grandchild_holding_the_pipe_does_not_outlive_a_quick_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(target, "PYTHON_PROBE_TIMEOUT", 30.0)
    pidfile = tmp_path / "grandchild.pid"
    py = _script(tmp_path / "python", f"sleep 300 &\necho $! > {pidfile}\necho not-json\nexit 0\n")
    start = time.monotonic()
    with pytest.raises(TargetError, match="not a working Python interpreter"):
        resolve_target(TargetSpec(python=py))
    assert time.monotonic() - start < 10  # not the 30 s limit: the group is killed once the child exits
    assert _gone(int(pidfile.read_text()))


def test_output_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(target, "PYTHON_PROBE_OUTPUT_CAP", 1 << 16)
    py = _script(tmp_path / "python", "exec cat /dev/zero\n")
    with pytest.raises(TargetError, match="answered more than"):
        resolve_target(TargetSpec(python=py))


def test_cwd_is_root_and_environment_minimal(tmp_path):
    out = tmp_path / "seen"
    py = _script(tmp_path / "python", f"pwd > {out}; env >> {out}; echo not-json\n")
    with pytest.raises(TargetError):
        resolve_target(TargetSpec(python=py))
    lines = out.read_text().splitlines()
    assert lines[0] == "/"
    names = {line.split("=", 1)[0] for line in lines[1:] if "=" in line}
    assert not {n for n in names if n.startswith("PYTHON") or n == "LD_PRELOAD"}
    assert names <= {"PATH", "LC_ALL", "LD_LIBRARY_PATH", "PWD", "SHLVL", "_"}


def test_question_started_early_is_the_one_collected(hostile_venv, tmp_path):
    """The CLI starts the question before its imports (probes/interpreter.ask_early): resolve_target then uses that
    child's answer, under the same isolation (no .pth, no sitecustomize), and starts no second one."""
    from tfcompat.probes import interpreter

    env, site, _pwned = hostile_venv
    python = str(env / "bin" / "python")
    interpreter.ask_early(python)
    assert python in interpreter._EARLY
    started = []
    real_start = interpreter.start
    interpreter.start = lambda argv: started.append(argv) or real_start(argv)
    try:
        t = resolve_target(TargetSpec(python=python))
    finally:
        interpreter.start = real_start
    assert started == [] and python not in interpreter._EARLY
    assert os.path.realpath(site) in [os.path.realpath(p) for p in t.search_path]
    assert [p for p in os.listdir(tmp_path) if p.startswith("pwned")] == []


def test_early_question_keeps_its_time_limit_and_an_uncollected_one_dies(tmp_path, monkeypatch):
    """The limit counts from the early start, and a child started early but never collected (the command stopped
    before scanning: a usage error) is killed with its whole group when tfcompat exits."""
    from tfcompat.probes import interpreter

    monkeypatch.setattr(target, "PYTHON_PROBE_TIMEOUT", 1.0)
    pidfile = tmp_path / "grandchild.pid"
    py = _script(tmp_path / "python", f"sleep 300 &\necho $! > {pidfile}\nsleep 300\n")
    interpreter.ask_early(py)
    time.sleep(1.2)  # the limit is spent before anyone collects
    start = time.monotonic()
    with pytest.raises(TargetError, match="did not answer within 1 s"):
        resolve_target(TargetSpec(python=py))
    assert time.monotonic() - start < 0.5
    assert _gone(int(pidfile.read_text()))
    pidfile2 = tmp_path / "grandchild2.pid"
    py2 = _script(tmp_path / "python2", f"sleep 300 &\necho $! > {pidfile2}\nsleep 300\n")
    interpreter.ask_early(py2)
    deadline = time.monotonic() + 5
    while not (pidfile2.exists() and pidfile2.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the shell creates the file before echo writes the pid into it
    interpreter._forget_early()  # what atexit runs
    assert _gone(int(pidfile2.read_text())) and interpreter._EARLY == {}
