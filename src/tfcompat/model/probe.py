"""What the import probe (``--probe``) saw when the target interpreter imported TensorFlow in a child."""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class ProbeStep:
    """One step of the import probe (--probe), in the order the child ran them."""

    name: str  # "import tensorflow", "import tensorflow_text", "list physical devices", "op on /GPU:0"
    status: str  # "ok" | "error" (Python exception) | "died" (the process ended inside it) | "hung" | "skipped"
    detail: Optional[str] = None  # what it found ("2.21.0 from /venv/.../tensorflow/__init__.py")
    error: Optional[str] = None  # "ImportError: numpy.core.umath failed to import"
    duration_ms: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class LoadedLibrary:
    """A shared object mapped in the probe's child process (from /proc/<pid>/maps)."""

    path: str
    name: str  # file name: "libcudart.so.12.5.82"


@dataclasses.dataclass(frozen=True)
class LogLine:
    """A line the probe's child printed, classified by data/tf_log_patterns.toml (first match wins)."""

    pattern: str  # pattern id, or "unclassified" for a TF error line no pattern knows
    classification: str  # "benign" | "informative" | "fatal" | "unclassified"
    text: str  # the first line that matched (capped)
    count: int  # how many lines matched
    explanation: str


@dataclasses.dataclass(frozen=True)
class ProbeDevice:
    """A physical device TensorFlow listed in the probe's child ("/physical_device:GPU:0", "GPU")."""

    name: str  # "/physical_device:GPU:0"
    device_type: str  # "CPU", "GPU"


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What happened when the target interpreter imported TensorFlow in a sandboxed child (--probe)."""

    python: str  # the interpreter that ran
    outcome: str  # "ok" | "error" | "crash" (signal) | "exit" (non-zero exit) | "timeout" | "not-started"
    exit_code: Optional[int]  # None when killed by a signal or not started
    signal: Optional[str]  # "SIGSEGV", "SIGABRT", ...
    failing_step: Optional[str]  # the step that raised, crashed or hung: "import tensorflow_text"
    error: Optional[str]  # the Python-level error ("ImportError: ...") or why the child could not start
    traceback: Optional[str]  # its traceback, or faulthandler's stack for a crash or a hang (capped)
    steps: tuple[ProbeStep, ...]
    tensorflow_version: Optional[str]  # tf.__version__ as imported
    tensorflow_path: Optional[str]  # tf.__file__ as imported
    devices: tuple[ProbeDevice, ...]
    libraries: tuple[LoadedLibrary, ...]  # every mapped .so, in load order
    libraries_source: str  # "/proc/self/maps at the end of the child", or the parent's last read while it ran
    log_lines: tuple[LogLine, ...]
    output_tail: str  # the end of the child's stdout+stderr (capped)
    output_bytes: int  # how much it printed in all
    timeout_s: int
    duration_ms: int
