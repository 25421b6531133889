"""`--probe`: import TensorFlow with the TARGET interpreter in a sandboxed child process and say what happened.

tfcompat itself never imports TensorFlow. The child (import_child.py, run with ``-c`` so nothing of
tfcompat is on its path) runs:

- in its own session and process group (``start_new_session``), killed as a group on timeout;
- with a time limit (default 120 s); before the kill, SIGUSR1 asks faulthandler for the Python stack
  of the hang;
- with faulthandler on (``-X faulthandler``, ``PYTHONFAULTHANDLER=1``), core dumps off
  (``RLIMIT_CORE`` 0), stdin from /dev/null, no .pyc written into the target, ``TF_CPP_MIN_LOG_LEVEL=0``
  so that TF prints every start-up line we classify;
- with its progress markers on a pipe of their own, so a crash is tied to the step that was running.

The parent reads the child's output (stdout and stderr together) as it comes, recognises every line
(data/tf_log_patterns.toml), keeps the last 256 KiB, and reads ``/proc/<pid>/maps`` at every step the
child starts (the child waits for that read on a pipe of its own), so a crash still leaves the list of
libraries mapped just before it.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from tfcompat.model import ProbeResult, PythonInfo, TensorFlowBuild, Unknown
from tfcompat.probes.importprobe_result import (  # noqa: F401  (parse_maps, OUTPUT_TAIL, ...: their old import path)
    OUTPUT_CAP,
    OUTPUT_TAIL,
    TRACEBACK_CAP,
    Collector,
    build_result,
    not_started,
    parse_maps,
    read_maps,
    signal_name,
)
from tfcompat.probes.interpreter import kill_group

DEFAULT_TIMEOUT = 120.0
HANG_DUMP_GRACE = 1.0  # seconds to wait for faulthandler's stack after SIGUSR1
EXIT_DRAIN = 0.5  # seconds to read what is left once the child has exited
KILL_WAIT = 5.0  # seconds to wait for the killed child to be reaped
CRASH_SIGNALS = ("SIGSEGV", "SIGABRT", "SIGILL", "SIGBUS", "SIGFPE")

CHILD_SOURCE_PATH = Path(__file__).with_name("import_child.py")


def _no_core_dumps() -> None:  # pragma: no cover - runs in the child between fork and exec
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_environment(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The job's environment (LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES, ... are what we want to test), plus
    faulthandler, unbuffered output, no bytecode written into the target, and every TF log line."""
    env = dict(os.environ if environ is None else environ)
    env.update(
        {
            "PYTHONFAULTHANDLER": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "0",
        }
    )
    # TF logs "Could not load dynamic library" at VLOG(1) of its DSO loader: ask for that module only
    vmodule = [v for v in env.get("TF_CPP_VMODULE", "").split(",") if v and not v.startswith("dso_loader=")]
    env["TF_CPP_VMODULE"] = ",".join(vmodule + ["dso_loader=1"])
    return env


def _exited(pid: int) -> bool:
    """True once the child has exited, without reaping it (its pid, = the group id, stays reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def run_import_probe(
    python: str,
    timeout: float = DEFAULT_TIMEOUT,
    environ: Optional[Mapping[str, str]] = None,
    companions: Optional[Sequence[str]] = None,
) -> ProbeResult:
    """Import TensorFlow with `python` in a child process; never raises for what the child does."""
    started = time.monotonic()
    timeout_s = max(1, round(timeout))
    source = CHILD_SOURCE_PATH.read_text(encoding="utf-8")
    collector = Collector(read_maps)  # loads the pattern table: fails, if it must, before a child exists
    read_fd, write_fd = os.pipe()
    ack_read, ack_write = os.pipe()  # parent -> child: "I have read your maps", after each `start`
    argv = [f"{write_fd}:{ack_read}"] + ([json.dumps(list(companions))] if companions is not None else [])
    try:
        proc = subprocess.Popen(
            [python, "-X", "faulthandler", "-c", source] + argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd, ack_read),
            start_new_session=True,
            preexec_fn=_no_core_dumps,
            cwd="/",
            env=child_environment(environ),
            close_fds=True,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        for fd in (read_fd, write_fd, ack_read, ack_write):
            os.close(fd)
        reason = getattr(exc, "strerror", None) or str(exc)
        return not_started(python, f"cannot start {python}: {reason}", timeout_s, started)
    os.close(write_fd)
    os.close(ack_read)
    collector.ack_fd = ack_write
    collector.pid = proc.pid
    timed_out = False
    unkillable = False
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    try:
        timed_out = _pump(proc.pid, out_fd, read_fd, collector, started + timeout)
        if timed_out:
            try:  # faulthandler (registered by the child) prints the stack of every thread
                os.kill(proc.pid, signal.SIGUSR1)
            except (ProcessLookupError, PermissionError):
                pass
            _drain(out_fd, read_fd, collector, HANG_DUMP_GRACE, quiet=0.3)
        else:
            _drain(out_fd, read_fd, collector, EXIT_DRAIN, quiet=0.1)
    finally:
        kill_group(proc.pid)  # whatever is left of the group: the hung child, or grandchildren
        try:
            proc.wait(timeout=KILL_WAIT)
        except subprocess.TimeoutExpired:  # stuck in the kernel (a GPU driver hang): leave it
            unkillable = True
        proc.stdout.close()
        os.close(read_fd)
        os.close(ack_write)
    collector.finish_output()
    return build_result(python, proc.returncode, timed_out, unkillable, proc.pid, collector, timeout_s, started)


def probe_import(
    root,
    python: PythonInfo,
    tf_builds: Sequence[TensorFlowBuild],
    timeout: float = DEFAULT_TIMEOUT,
    environ: Optional[Mapping[str, str]] = None,
) -> tuple[Optional[ProbeResult], list[Unknown]]:
    """For scan(): run the probe where it can run, else say why (Unknown "probe")."""
    if root is not None and not root.is_host:
        return None, [
            Unknown(
                "probe",
                f"not run: --root {root.root} is an image; tfcompat runs no interpreter "
                "from an image (probe the node or the container itself)",
            )
        ]
    if not python.executable:
        return None, [Unknown("probe", "not run: no interpreter to run (--site-packages only); pass --python")]
    if not tf_builds:
        return None, [Unknown("probe", "not run: no TensorFlow in the checked environment")]
    return run_import_probe(python.executable, timeout=timeout, environ=environ), []


def _pump(pid: int, out_fd: int, marker_fd: int, collector: Collector, deadline: float) -> bool:
    """Read both pipes until the child exits (False) or the deadline passes (True)."""
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, collector.feed_output)
    sel.register(marker_fd, selectors.EVENT_READ, collector.feed_markers)
    try:
        while True:
            if _exited(pid):
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if not sel.get_map():
                time.sleep(min(remaining, 0.05))
                continue
            _dispatch(sel, sel.select(min(remaining, 0.1)))
    finally:
        sel.close()


def _drain(out_fd: int, marker_fd: int, collector: Collector, limit: float, quiet: float) -> None:
    """Read what is still in the pipes: until both close, `quiet` seconds pass without data, or `limit`."""
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, collector.feed_output)
    sel.register(marker_fd, selectors.EVENT_READ, collector.feed_markers)
    end = time.monotonic() + limit
    try:
        while sel.get_map():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            ready = sel.select(min(remaining, quiet))
            if not ready:
                return
            _dispatch(sel, ready)
    finally:
        sel.close()


def _dispatch(sel: selectors.BaseSelector, ready) -> None:
    """Hand what each ready pipe holds to its collector; a closed pipe leaves the selector."""
    for key, _ in ready:
        data = os.read(key.fd, 65536)
        if not data:
            sel.unregister(key.fd)
            continue
        key.data(data)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m tfcompat.probes.importprobe /venv/bin/python
    from tfcompat.model import to_json_dict

    result = run_import_probe(sys.argv[1] if len(sys.argv) > 1 else sys.executable)
    json.dump(to_json_dict(result), sys.stdout, indent=2)
    sys.stdout.write("\n")
