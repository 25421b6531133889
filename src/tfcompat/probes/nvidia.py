"""NVIDIA driver and GPUs: the kernel module from /proc, the rest from NVML in a bounded child process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Optional

from tfcompat.model import (
    Driver,
    DriverLibrary,
    Gpu,
    SnapshotError,
    Unknown,
    from_json_dict,
)
from tfcompat.probes.budget import UNLIMITED, Budget
from tfcompat.probes.native.loader import Loader, LoaderConfig
from tfcompat.probes.rootfs import Root

PROC_VERSION = "/proc/driver/nvidia/version"
_MODULE_RE = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)")
NVML_TIMEOUT = 10.0

# NVML return codes (nvml.h) -> what a person should read.
NVML_REASONS: dict[int, str] = {
    1: "NVML was not initialized",
    2: "NVML rejected an argument",
    3: "the driver does not support this NVML query",
    4: "no permission to query the GPUs through NVML (device nodes /dev/nvidia* not accessible?)",
    9: "NVIDIA driver is not loaded (kernel module missing)",
    10: "NVML timed out talking to the driver",
    12: "NVML library (libnvidia-ml.so.1) not found: no NVIDIA driver user-space libraries installed",
    13: "the NVML library is too old for this query",
    15: "a GPU has fallen off the bus or is otherwise lost (GPU is lost)",
    17: "NVML reported an operating-system error",
    18: "Driver/library version mismatch: the kernel module and libnvidia-ml.so differ "
    "(driver upgraded without a reboot?)",
    999: "NVML reported an unknown error",
}


def parse_proc_version(text: str) -> Optional[str]:
    m = _MODULE_RE.search(text)
    return m.group(1) if m else None


# The NVML error names rules act on (nvml.h).
NVML_NAMES: dict[int, str] = {
    4: "NVML_ERROR_NO_PERMISSION",
    9: "NVML_ERROR_DRIVER_NOT_LOADED",
    12: "NVML_ERROR_LIBRARY_NOT_FOUND",
    15: "NVML_ERROR_GPU_IS_LOST",
    17: "NVML_ERROR_OPERATING_SYSTEM",
    999: "NVML_ERROR_UNKNOWN",
    18: "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
}


def run_nvml_child(
    python: str = sys.executable, env: Optional[Mapping[str, str]] = None, timeout: float = NVML_TIMEOUT
) -> tuple[Optional[dict], Optional[str]]:
    """(answer, None) or (None, reason). The child is killed if it exceeds `timeout`."""
    answer, reason, _ = _nvml_child(python, env, timeout)
    return answer, reason


def _nvml_child(
    python: str, env: Optional[Mapping[str, str]], timeout: float
) -> tuple[Optional[dict], Optional[str], Optional[int]]:
    """(answer, reason, NVML error code): the code is set when NVML itself answered with an error."""
    import tfcompat

    # The child must import this same tfcompat (absolute path: it runs from /), and the given env's
    # PYTHONPATH (a test's fake pynvml) ahead of it.
    child_env = dict(os.environ if env is None else env)
    here = os.path.dirname(os.path.dirname(os.path.abspath(tfcompat.__file__)))
    paths = [os.path.abspath(p) for p in child_env.get("PYTHONPATH", "").split(os.pathsep) if p]
    child_env["PYTHONPATH"] = os.pathsep.join(paths + [here])
    try:
        proc = subprocess.run(
            [python, "-m", "tfcompat.probes.nvml_child"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd="/",  # `-m` puts the cwd first on sys.path: a pynvml.py there must not shadow the real one
        )
    except subprocess.TimeoutExpired:
        return None, f"NVML did not answer within {timeout:.0f} s (driver hung?)", None
    except OSError as exc:
        return None, f"cannot start the NVML child process: {exc.strerror or exc}", None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        return None, f"the NVML child process failed ({how}){': ' + tail if tail else ''}", None
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None, "the NVML child process printed no answer", None
    if not answer.get("ok"):
        err = answer.get("error")
        if err == "import":
            return None, f"the pynvml module (nvidia-ml-py) is not installed: {answer.get('detail')}", None
        reason = NVML_REASONS.get(err) if isinstance(err, int) else None
        return None, reason or f"NVML error {err}: {answer.get('detail')}", err if isinstance(err, int) else None
    return answer, None, None


def probe_nvidia(
    root: Root,
    nvml: bool = True,
    nvml_env: Optional[Mapping[str, str]] = None,
    proc_version: str = PROC_VERSION,
    environ: Optional[Mapping[str, str]] = None,
    loader_config: Optional[LoaderConfig] = None,
    driver_sonames: Optional[Sequence[str]] = None,
    budget: Budget = UNLIMITED,
) -> tuple[Optional[Driver], tuple[Gpu, ...], list[Unknown]]:
    """`proc_version` and `nvml_env` exist so tests can stand in for the kernel and NVML; `loader_config`
    is the scan's loader model of the target (built once, shared with the other probes). The NVML child
    gets what is left of `budget` when that is less than its own timeout; stopped by the budget, it is
    "not finished", not a hung driver."""
    unknowns: list[Unknown] = []
    module_version = None
    try:
        module_version = parse_proc_version(root.read_text(proc_version, kind="proc"))
    except OSError:
        pass
    if root.root is not None:
        reason = (
            f"not queried: --root {root.root} is an image; the driver and GPUs belong to the node "
            "that runs it (check the node without --root)"
        )
        libraries = find_driver_libraries(root, environ, loader_config, driver_sonames)
        if module_version is None:
            return (
                (Driver(libraries=libraries) if libraries else None),
                (),
                [Unknown("driver", reason), Unknown("gpus", reason)],
            )
        return (
            Driver(
                kernel_module_version=module_version, kernel_module_source=root.path(proc_version), libraries=libraries
            ),
            (),
            [Unknown("gpus", reason)],
        )
    if module_version is None and not os.path.exists(proc_version):
        reason = f"no NVIDIA driver on this node ({proc_version} not found: the kernel module is not loaded)"
        return None, (), [Unknown("driver", reason), Unknown("gpus", reason)]
    libraries = find_driver_libraries(root, environ, loader_config, driver_sonames)
    if not nvml:
        return (
            Driver(kernel_module_version=module_version, kernel_module_source=proc_version, libraries=libraries),
            (),
            [Unknown("gpus", "NVML not queried (--no-nvml)")],
        )
    timeout = budget.cap(NVML_TIMEOUT)
    answer: Optional[dict]
    nvml_reason: Optional[str]
    code: Optional[int]
    if timeout <= 0:
        answer, nvml_reason, code = None, f"NVML not queried: {budget.reason}", None
    else:
        answer, nvml_reason, code = _nvml_child(sys.executable, nvml_env, timeout)
        if answer is None and timeout < NVML_TIMEOUT and budget.expired():
            nvml_reason, code = f"NVML did not answer in the {timeout:.1f} s left: {budget.reason}", None
    if answer is None:
        failed: Optional[Driver] = (
            Driver(
                kernel_module_version=module_version,
                kernel_module_source=proc_version,
                nvml_error=NVML_NAMES.get(code) if code is not None else None,
                libraries=libraries,
            )
            if module_version
            else None
        )
        if failed is None:
            unknowns.append(Unknown("driver", nvml_reason or "unknown"))
        unknowns.append(Unknown("gpus", nvml_reason or "unknown"))
        return failed, (), unknowns
    driver = Driver(
        kernel_module_version=module_version,
        kernel_module_source=proc_version if module_version else None,
        nvml_driver_version=answer.get("driver_version"),
        cuda_driver_version=answer.get("cuda_driver_version"),
        libraries=libraries,
        gpu_errors=tuple(
            f"GPU {e.get('index')}: {NVML_NAMES.get(e.get('error'), 'NVML error ' + str(e.get('error')))}"
            f" ({e.get('detail')})"
            for e in answer.get("gpu_errors") or ()
        ),
    )
    try:
        gpus = tuple(gpu_from_nvml(g) for g in answer.get("gpus", []))
    except SnapshotError as exc:
        return driver, (), unknowns + [Unknown("gpus", f"the NVML child answered malformed data: {exc}")]
    if not gpus:
        unknowns.append(Unknown("gpus", "NVML reports no GPUs on this node"))
    return driver, gpus, unknowns


def gpu_from_nvml(g: dict) -> Gpu:
    """The child answers with Gpu's own field names: decode it with the model's JSON codec (typed, strict)."""
    return from_json_dict(Gpu, g, f"NVML child: GPU {g.get('index', '?') if isinstance(g, dict) else '?'}")


# Where container runtimes inject the driver's user-space libraries, searched after the loader's own path.
_EXTRA_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib")  # often outside ld.so.cache
_VERSIONED = re.compile(r"\.so\.(\d+\.\d+(?:\.\d+)?)$")


def find_driver_libraries(
    root: Root,
    environ: Optional[Mapping[str, str]] = None,
    loader_config: Optional[LoaderConfig] = None,
    sonames: Optional[Sequence[str]] = None,
) -> tuple[DriverLibrary, ...]:
    """libcuda.so.1 and libnvidia-ml.so.1 as the dynamic loader would pick them (LD_LIBRARY_PATH on the
    host only, ld.so.cache, the default dirs), then the places container runtimes inject them. The
    version is in the real file's name (libcuda.so.550.54.15). The loader model is the target's own
    architecture's (an arm64 image's ld.so.cache entries are aarch64 ones)."""
    environ = os.environ if environ is None else environ
    loader: Optional[Loader] = None
    try:
        if loader_config is None:  # a caller outside scan(): build the target's loader model here
            loader_config = LoaderConfig.for_target(root, environ=environ if root.is_host else None)
        loader = Loader(loader_config)
    except (OSError, ValueError):
        loader = None
    out = []
    if sonames is None:  # a caller outside scan(): the shipped matrix's [driver_libraries]
        from tfcompat.matrix import shipped_facts

        sonames = shipped_facts().driver_sonames
    for soname in sonames:
        copies: list[str] = []
        if loader is not None:
            lk = loader.lookup(soname)
            copies += [c.host_path for c in lk.copies if c.usable]
        for d in _EXTRA_DIRS:
            path = f"{d}/{soname}"
            if not root.is_file(path):  # resolved inside the root; a FIFO or device is no library
                continue
            try:
                copies.append(os.path.realpath(path) if root.is_host else root.path(path))
            except OSError:
                continue
        # under --root both lists hold files already resolved inside it: a host realpath() would leave the
        # root's own spelling when --root itself is reached through a symlink
        copies = list(dict.fromkeys(os.path.realpath(c) if root.is_host else c for c in copies))
        if not copies:
            continue
        m = _VERSIONED.search(os.path.basename(copies[0]))
        out.append(
            DriverLibrary(
                soname=soname,
                path=copies[0],
                version=m.group(1) if m else None,
                forward_compat="/compat/" in copies[0] or "cuda-compat" in copies[0],
                shadowed=tuple(copies[1:]),
            )
        )
    return tuple(out)
