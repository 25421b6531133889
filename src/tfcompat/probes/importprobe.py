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

The parent reads the child's output (stdout and stderr together) as it comes, classifies every line
(data/tf_log_patterns.toml), keeps the last 256 KiB, and reads ``/proc/<pid>/maps`` at every step the
child starts (the child waits for that read on a pipe of its own), so a crash still leaves the list of
libraries mapped just before it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tfcompat.model import LoadedLibrary, ProbeDevice, ProbeResult, ProbeStep, PythonInfo, TensorFlowBuild, Unknown
from tfcompat.probes.logpatterns import LineClassifier

DEFAULT_TIMEOUT = 120.0
OUTPUT_CAP = 256 * 1024  # bytes of the child's output kept (the last ones)
OUTPUT_TAIL = 16 * 1024  # bytes of it that go into the report
TRACEBACK_CAP = 8 * 1024
HANG_DUMP_GRACE = 1.0  # seconds to wait for faulthandler's stack after SIGUSR1
EXIT_DRAIN = 0.5  # seconds to read what is left once the child has exited
KILL_WAIT = 5.0  # seconds to wait for the killed child to be reaped
CRASH_SIGNALS = ("SIGSEGV", "SIGABRT", "SIGILL", "SIGBUS", "SIGFPE")

CHILD_SOURCE_PATH = Path(__file__).with_name("import_child.py")


def _no_core_dumps() -> None:  # pragma: no cover - runs in the child between fork and exec
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_environment(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The job's environment (LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES, ... are what we want to test), plus
    faulthandler, unbuffered output, no bytecode written into the target, and every TF log line."""
    env = dict(os.environ if environ is None else environ)
    env.update({
        "PYTHONFAULTHANDLER": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "0",
    })
    # TF logs "Could not load dynamic library" at VLOG(1) of its DSO loader: ask for that module only
    vmodule = [v for v in env.get("TF_CPP_VMODULE", "").split(",") if v and not v.startswith("dso_loader=")]
    env["TF_CPP_VMODULE"] = ",".join(vmodule + ["dso_loader=1"])
    return env


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclasses.dataclass
class _Step:
    name: str
    status: str = "running"
    detail: Optional[str] = None
    error: Optional[str] = None
    error_type: Optional[str] = None
    traceback: Optional[str] = None
    duration_ms: Optional[int] = None
    started: float = 0.0


class _Collector:
    """Everything the parent learns from the two pipes while the child runs."""

    def __init__(self, maps_reader, pid: int = 0):
        self.pid = pid
        self.ack_fd: Optional[int] = None  # the child waits on it after each `start` until we read its maps
        self.maps_reader = maps_reader
        self.classifier = LineClassifier()
        self.output = bytearray()
        self.output_bytes = 0
        self._partial = b""
        self._marker_partial = b""
        self.steps: List[_Step] = []
        self.tf_version: Optional[str] = None
        self.tf_path: Optional[str] = None
        self.devices: List[ProbeDevice] = []
        self.final_maps: Optional[List[str]] = None
        self.last_maps: Optional[List[str]] = None
        self.last_maps_at: Optional[str] = None
        self.done = False

    # -- output (stdout + stderr) ---------------------------------------------------------
    def feed_output(self, data: bytes) -> None:
        self.output_bytes += len(data)
        self.output += data
        if len(self.output) > OUTPUT_CAP:
            del self.output[: len(self.output) - OUTPUT_CAP]
        buf = self._partial + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self.classifier.feed(line.decode("utf-8", "replace"))
        if len(rest) > 8192:  # a line without end: classify what we have, drop the rest
            self.classifier.feed(rest[:8192].decode("utf-8", "replace"))
            rest = b""
        self._partial = rest

    def finish_output(self) -> None:
        if self._partial:
            self.classifier.feed(self._partial.decode("utf-8", "replace"))
            self._partial = b""

    # -- progress markers -------------------------------------------------------------------
    def feed_markers(self, data: bytes) -> None:
        buf = self._marker_partial + data
        *lines, self._marker_partial = buf.split(b"\n")
        for line in lines:
            self._marker(line.decode("utf-8", "replace"))

    def _marker(self, line: str) -> None:
        kind, _, rest = line.partition("\t")
        name, _, payload = rest.partition("\t") if kind != "maps" else ("", "", rest)
        try:
            data = json.loads(payload) if payload else {}
        except ValueError:
            data = {}
        if kind == "start":
            self.steps.append(_Step(name, started=time.monotonic()))
            maps = self.maps_reader(self.pid)
            if maps is not None:
                self.last_maps, self.last_maps_at = maps, name
            if self.ack_fd is not None:
                try:
                    os.write(self.ack_fd, b"k")
                except OSError:  # the child is gone
                    self.ack_fd = None
        elif kind in ("ok", "error", "skip"):
            step = next((s for s in reversed(self.steps) if s.name == name and s.status == "running"), None)
            if step is None:
                step = _Step(name)
                self.steps.append(step)
            step.status = {"ok": "ok", "error": "error", "skip": "skipped"}[kind]
            if isinstance(data, dict):
                ms = data.get("ms")
                step.duration_ms = ms if isinstance(ms, int) else None
                if kind == "ok":
                    self._ok(step, data)
                elif kind == "error":
                    step.error_type = str(data.get("type") or "Error")
                    step.error = f"{step.error_type}: {data.get('message', '')}".strip()
                    step.traceback = str(data.get("traceback") or "")[-TRACEBACK_CAP:] or None
                else:
                    step.detail = str(data.get("reason") or "") or None
        elif kind == "maps" and isinstance(data, list):
            self.final_maps = [p for p in data if isinstance(p, str)]
        elif kind == "done":
            self.done = True

    def _ok(self, step: _Step, data: dict) -> None:
        if step.name == "import tensorflow":
            self.tf_version = str(data.get("version") or "") or None
            self.tf_path = str(data.get("file") or "") or None
            step.detail = " ".join(x for x in (self.tf_version, f"from {self.tf_path}" if self.tf_path else "") if x)
        elif step.name.startswith("import "):
            version, path = data.get("version"), data.get("file")
            step.detail = " ".join(x for x in (str(version or ""), f"from {path}" if path else "") if x) or None
        elif step.name == "list physical devices":
            devices = data.get("devices") or []
            self.devices = [ProbeDevice(str(d.get("name", "?")), str(d.get("type", "?")))
                            for d in devices if isinstance(d, dict)]
            step.detail = ", ".join(d.name for d in self.devices) or "no devices"
        else:
            step.detail = str(data.get("device") or "") or None


def read_maps(pid: int) -> Optional[List[str]]:
    """Shared objects mapped in process `pid`, once each, in address order (None if unreadable)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return parse_maps(text)


def parse_maps(text: str) -> List[str]:
    # import_child.py reads its own maps the same way: it runs in the target interpreter, without tfcompat
    seen: Dict[str, None] = {}
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5].strip()
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        if path.startswith("/") and ".so" in path.rsplit("/", 1)[-1]:
            seen.setdefault(path, None)
    return list(seen)


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exited(pid: int) -> bool:
    """True once the child has exited, without reaping it (its pid, = the group id, stays reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def run_import_probe(python: str, timeout: float = DEFAULT_TIMEOUT, environ: Optional[Mapping[str, str]] = None,
                     companions: Optional[Sequence[str]] = None) -> ProbeResult:
    """Import TensorFlow with `python` in a child process; never raises for what the child does."""
    started = time.monotonic()
    timeout_s = max(1, int(round(timeout)))
    source = CHILD_SOURCE_PATH.read_text(encoding="utf-8")
    collector = _Collector(read_maps)  # loads the pattern table: fails, if it must, before a child exists
    read_fd, write_fd = os.pipe()
    ack_read, ack_write = os.pipe()  # parent -> child: "I have read your maps", after each `start`
    argv = [f"{write_fd}:{ack_read}"] + ([json.dumps(list(companions))] if companions is not None else [])
    try:
        proc = subprocess.Popen(
            [python, "-X", "faulthandler", "-c", source] + argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(write_fd, ack_read), start_new_session=True, preexec_fn=_no_core_dumps,
            cwd="/", env=child_environment(environ), close_fds=True,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        for fd in (read_fd, write_fd, ack_read, ack_write):
            os.close(fd)
        reason = getattr(exc, "strerror", None) or str(exc)
        return _not_started(python, f"cannot start {python}: {reason}", timeout_s, started)
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
        _kill_group(proc.pid)  # whatever is left of the group: the hung child, or grandchildren
        try:
            proc.wait(timeout=KILL_WAIT)
        except subprocess.TimeoutExpired:  # stuck in the kernel (a GPU driver hang): leave it
            unkillable = True
        proc.stdout.close()
        os.close(read_fd)
        os.close(ack_write)
    collector.finish_output()
    return _result(python, proc.returncode, timed_out, unkillable, proc.pid, collector, timeout_s, started)


def probe_import(root, python: PythonInfo, tf_builds: Sequence[TensorFlowBuild], timeout: float = DEFAULT_TIMEOUT,
                 environ: Optional[Mapping[str, str]] = None) -> Tuple[Optional[ProbeResult], List[Unknown]]:
    """For scan(): run the probe where it can run, else say why (Unknown "probe")."""
    if root is not None and not root.is_host:
        return None, [Unknown("probe", f"not run: --root {root.root} is an image; tfcompat runs no interpreter "
                                       "from an image (probe the node or the container itself)")]
    if not python.executable:
        return None, [Unknown("probe", "not run: no interpreter to run (--site-packages only); pass --python")]
    if not tf_builds:
        return None, [Unknown("probe", "not run: no TensorFlow in the checked environment")]
    return run_import_probe(python.executable, timeout=timeout, environ=environ), []


def _pump(pid: int, out_fd: int, marker_fd: int, collector: _Collector, deadline: float) -> bool:
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


def _drain(out_fd: int, marker_fd: int, collector: _Collector, limit: float, quiet: float) -> None:
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


def _dispatch(sel: "selectors.BaseSelector", ready) -> None:
    """Hand what each ready pipe holds to its collector; a closed pipe leaves the selector."""
    for key, _ in ready:
        data = os.read(key.fd, 65536)
        if not data:
            sel.unregister(key.fd)
            continue
        key.data(data)


def _not_started(python: str, reason: str, timeout_s: int, started: float) -> ProbeResult:
    return ProbeResult(
        python=python, outcome="not-started", exit_code=None, signal=None, failing_step=None, error=reason,
        traceback=None, steps=(), tensorflow_version=None, tensorflow_path=None, devices=(), libraries=(),
        libraries_source="", log_lines=(), output_tail="", output_bytes=0, timeout_s=timeout_s,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _fault_stack(output: str) -> Optional[str]:
    """faulthandler's report ("Fatal Python error: ..." or a SIGUSR1 dump) from the end of the output."""
    found = [i for i in (output.find(m) for m in ("Fatal Python error:", "Current thread 0x", "Thread 0x")) if i >= 0]
    return output[min(found):][:TRACEBACK_CAP] if found else None


def _result(python: str, returncode: Optional[int], timed_out: bool, unkillable: bool, pid: int,
            c: _Collector, timeout_s: int, started: float) -> ProbeResult:
    output = c.output.decode("utf-8", "replace")
    running = [s for s in c.steps if s.status == "running"]
    errors = [s for s in c.steps if s.status == "error"]
    sig = signal_name(-returncode) if returncode is not None and returncode < 0 else None
    if timed_out:
        outcome = "timeout"
        for s in running:
            s.status = "hung"
        failing = running[-1] if running else None
        note = f"no answer within {timeout_s} s; the process group was killed"
        if unkillable:
            note += f", but process {pid} did not die (stuck in the kernel, e.g. in the GPU driver)"
        error, tb = note, _fault_stack(output)
    elif sig is not None or not c.done:
        for s in running:
            s.status = "died"
        failing = running[-1] if running else None
        if sig is not None:
            outcome, error = "crash", f"killed by {sig}"
        else:
            outcome, error = "exit", f"exited with code {returncode} before it finished"
        where = f" in {failing.name}" if failing else (f" after {c.steps[-1].name}" if c.steps else " at start-up")
        error += where
        tb = _fault_stack(output)
        if tb is None and errors:
            tb = errors[0].traceback
    elif errors:
        outcome, failing = "error", errors[0]
        error, tb = failing.error, failing.traceback
    else:
        outcome, failing, error, tb = "ok", None, None, None
    if c.final_maps is not None:
        paths, source = c.final_maps, "/proc/self/maps read by the child just before it finished"
    elif c.last_maps is not None:
        paths, source = c.last_maps, f"/proc/{pid}/maps read by tfcompat when the child started '{c.last_maps_at}'"
    else:
        paths, source = [], "not read: the child ended before any step started"
    tail = output[-OUTPUT_TAIL:]
    return ProbeResult(
        python=python,
        outcome=outcome,
        exit_code=returncode if returncode is not None and returncode >= 0 else None,
        signal=sig,
        failing_step=failing.name if failing else None,
        error=error,
        traceback=tb,
        steps=tuple(ProbeStep(s.name, s.status, s.detail, s.error, s.duration_ms) for s in c.steps),
        tensorflow_version=c.tf_version,
        tensorflow_path=c.tf_path,
        devices=tuple(c.devices),
        libraries=tuple(LoadedLibrary(p, p.rsplit("/", 1)[-1]) for p in paths),
        libraries_source=source,
        log_lines=c.classifier.lines(),
        output_tail=tail,
        output_bytes=c.output_bytes,
        timeout_s=timeout_s,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


if __name__ == "__main__":  # pragma: no cover - manual use: python -m tfcompat.probes.importprobe /venv/bin/python
    from tfcompat.model import to_json_dict

    result = run_import_probe(sys.argv[1] if len(sys.argv) > 1 else sys.executable)
    json.dump(to_json_dict(result), sys.stdout, indent=2)
    sys.stdout.write("\n")
