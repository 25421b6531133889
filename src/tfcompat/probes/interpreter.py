"""The question `--python X` asks X, run isolated, and started early.

The target interpreter runs in its own session, with cwd /, a minimal environment and no stdin, its output
capped and the whole process group killed when it is done or out of time: nothing of the target outlives the
question. This module imports nothing of tfcompat, so the CLI can start the question before its own imports
(``ask_early``): the ~20 ms of the child's start-up then overlap the ~100 ms of tfcompat's imports instead of
adding to them. ``ask`` collects that early child (its time limit counted from its start), or asks afresh.
"""

from __future__ import annotations

import atexit
import os
import selectors
import signal
import subprocess
import time

# Runs inside the target interpreter under `-I -S`: no site, no user site, no .pth, no sitecustomize, no
# PYTHON* variables. Importing `site` under -S runs nothing; its functions give the site-packages dirs the
# way site.main() would (the venv's pyvenv.cfg, Debian's dist-packages), and .pth files are read as data:
# their path lines are added as site.addpackage() does, their `import` lines are never executed.
_PROBE = r"""
import json, os, sys
path = [p for p in sys.path if p]
def venv_prefixes(prefixes):
    # site.venv() without its addsitepackages() call (which would run the .pth files)
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    prefix = os.path.dirname(exe_dir)
    for cfg in (os.path.join(exe_dir, 'pyvenv.cfg'), os.path.join(prefix, 'pyvenv.cfg')):
        if os.path.isfile(cfg):
            break
    else:
        return prefixes
    system_site = 'true'
    with open(cfg, 'rb') as fh:
        for line in fh.read(1 << 16).decode('utf-8', 'replace').splitlines():
            key, _, value = line.partition('=')
            if key.strip().lower() == 'include-system-site-packages':
                system_site = value.strip().lower()
    return [prefix] + prefixes if system_site == 'true' else [prefix]
try:
    import site
    sites = site.getsitepackages(venv_prefixes(list(site.PREFIXES)))
except Exception:
    sites = []
def add(d):
    if d not in path and os.path.isdir(d):
        path.append(d)
for sitedir in sites:
    if not os.path.isdir(sitedir):
        continue
    add(sitedir)
    try:
        names = sorted(n for n in os.listdir(sitedir) if n.endswith('.pth') and not n.startswith('.'))
    except OSError:
        names = []
    for name in names:
        try:
            with open(os.path.join(sitedir, name), 'rb') as fh:
                lines = fh.read(1 << 20).decode('utf-8', 'replace').splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.strip() or line.startswith('#') or line.startswith(('import ', 'import\t')):
                continue
            add(os.path.normpath(os.path.join(sitedir, line.rstrip())))
print(json.dumps({'executable': sys.executable, 'version': '%d.%d.%d' % sys.version_info[:3],
                  'implementation': sys.implementation.name, 'path': path}))
"""


def question(python: str) -> list[str]:
    return [python, "-I", "-S", "-c", _PROBE]


_EARLY: dict[str, tuple[subprocess.Popen, float]] = {}


def ask_early(python: str) -> None:
    """Start asking `python` now; a path that is not an executable file is left to ``ask``'s own error."""
    if python in _EARLY or not os.path.isfile(python) or not os.access(python, os.X_OK):
        return
    try:
        _EARLY[python] = (start(question(python)), time.monotonic())
    except OSError:
        return  # `ask` runs it again and reports why it cannot


def ask(python: str, timeout: float, cap: int) -> tuple[int, bytes, bytes]:
    """(returncode, stdout, stderr) of the question, from the early child when there is one."""
    early = _EARLY.pop(python, None)
    argv = question(python)
    if early is None:
        return collect(start(argv), argv, time.monotonic(), timeout, cap)
    proc, started = early
    return collect(proc, argv, started, timeout, cap)


@atexit.register
def _forget_early() -> None:
    """A child started early but never collected (the command stopped first): its group goes with us."""
    for proc, _ in _EARLY.values():
        kill_group(proc.pid)
        proc.kill()
        proc.wait()
    _EARLY.clear()


def child_env() -> dict:
    """The child's whole environment: no PYTHON* variable, no LD_PRELOAD; LD_LIBRARY_PATH is kept because
    module-system pythons need it to find libpython (it names the operator's libraries, not the target's)."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    if os.environ.get("LD_LIBRARY_PATH"):
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return env


def start(argv: list[str]) -> subprocess.Popen:
    """`argv` in its own session (cwd /, minimal environment, no stdin), its output on pipes."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd="/",
        env=child_env(),
        start_new_session=True,
        close_fds=True,
    )


def collect(
    proc: subprocess.Popen, argv: list[str], started: float, timeout: float, cap: int
) -> tuple[int, bytes, bytes]:
    """Read at most `cap`+1 bytes of stdout (64 KiB of stderr). The whole process group is killed when the child
    exits, when `timeout` seconds from `started` are up (then TimeoutExpired) or when the output passes the cap:
    no grandchild outlives the question."""
    deadline = started + timeout
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    caps = {out_fd: cap + 1, err_fd: 64 << 10}
    timed_out = False
    try:
        with selectors.DefaultSelector() as sel:
            for fd in bufs:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(min(left, 0.2)):
                    chunk = os.read(key.fd, 65536)
                    buf = bufs[key.fd]
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    buf += chunk[: max(0, caps[key.fd] - len(buf))]
                    if len(buf) >= caps[key.fd]:
                        sel.unregister(key.fd)
                if len(bufs[out_fd]) > cap:
                    break
                if proc.poll() is not None:
                    kill_group(proc.pid)  # the child is done: grandchildren holding the pipes go too
    finally:
        kill_group(proc.pid)
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if timed_out:
        raise subprocess.TimeoutExpired(argv, timeout)
    return proc.returncode, bytes(bufs[out_fd]), bytes(bufs[err_fd])


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
