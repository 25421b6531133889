"""The import probe's parent side, part two: what it learns from the child's two pipes (output lines,
progress markers, the child's /proc/<pid>/maps) and the ProbeResult made of it. Records facts only:
which step ran, how the process ended, which known log lines it printed (see logpatterns).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from typing import Optional

from tfcompat.model import LoadedLibrary, ProbeDevice, ProbeResult, ProbeStep
from tfcompat.probes.logpatterns import LineClassifier

OUTPUT_CAP = 256 * 1024  # bytes of the child's output kept (the last ones)
OUTPUT_TAIL = 16 * 1024  # bytes of it that go into the report
TRACEBACK_CAP = 8 * 1024


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclasses.dataclass
class _Step:
    """One step of the probe's child as the parent tracks it while it runs (a ProbeStep in the result)."""

    name: str
    status: str = "running"
    detail: Optional[str] = None
    error: Optional[str] = None
    error_type: Optional[str] = None
    traceback: Optional[str] = None
    duration_ms: Optional[int] = None
    started: float = 0.0


class Collector:
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
        self.steps: list[_Step] = []
        self.tf_version: Optional[str] = None
        self.tf_path: Optional[str] = None
        self.devices: list[ProbeDevice] = []
        self.final_maps: Optional[list[str]] = None
        self.last_maps: Optional[list[str]] = None
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
            self.devices = [
                ProbeDevice(str(d.get("name", "?")), str(d.get("type", "?"))) for d in devices if isinstance(d, dict)
            ]
            step.detail = ", ".join(d.name for d in self.devices) or "no devices"
        else:
            step.detail = str(data.get("device") or "") or None


def read_maps(pid: int) -> Optional[list[str]]:
    """Shared objects mapped in process `pid`, once each, in address order (None if unreadable)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return parse_maps(text)


def parse_maps(text: str) -> list[str]:
    # import_child.py reads its own maps the same way: it runs in the target interpreter, without tfcompat
    seen: dict[str, None] = {}
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


def not_started(python: str, reason: str, timeout_s: int, started: float) -> ProbeResult:
    return ProbeResult(
        python=python,
        outcome="not-started",
        exit_code=None,
        signal=None,
        failing_step=None,
        error=reason,
        traceback=None,
        steps=(),
        tensorflow_version=None,
        tensorflow_path=None,
        devices=(),
        libraries=(),
        libraries_source="",
        log_lines=(),
        output_tail="",
        output_bytes=0,
        timeout_s=timeout_s,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def fault_stack(output: str) -> Optional[str]:
    """faulthandler's report ("Fatal Python error: ..." or a SIGUSR1 dump) from the end of the output."""
    found = [i for i in (output.find(m) for m in ("Fatal Python error:", "Current thread 0x", "Thread 0x")) if i >= 0]
    return output[min(found) :][:TRACEBACK_CAP] if found else None


def build_result(
    python: str,
    returncode: Optional[int],
    timed_out: bool,
    unkillable: bool,
    pid: int,
    c: Collector,
    timeout_s: int,
    started: float,
) -> ProbeResult:
    output = c.output.decode("utf-8", "replace")
    running = [s for s in c.steps if s.status == "running"]
    errors = [s for s in c.steps if s.status == "error"]
    sig = signal_name(-returncode) if returncode is not None and returncode < 0 else None
    error: Optional[str]  # what went wrong, None when the child finished every step
    tb: Optional[str]
    if timed_out:
        outcome = "timeout"
        for s in running:
            s.status = "hung"
        failing = running[-1] if running else None
        note = f"no answer within {timeout_s} s; the process group was killed"
        if unkillable:
            note += f", but process {pid} did not die (stuck in the kernel, e.g. in the GPU driver)"
        error, tb = note, fault_stack(output)
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
        tb = fault_stack(output)
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
