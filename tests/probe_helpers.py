"""Plain helpers that build fake site-packages trees, sysroots and a fake ``pynvml`` for the probe tests.

They write files only; nothing of tfcompat is replaced. The probes then read these trees the way they
read a real environment.
"""

from __future__ import annotations

import os
import struct
import textwrap
from collections.abc import Iterable, Sequence
from typing import Optional

SRC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

# Real build_info.py texts (header comments trimmed), as shipped in the Linux x86_64 wheels.
BUILD_INFO_2_21_0 = (
    "# Copyright 2020 The TensorFlow Authors. All Rights Reserved.\n"
    '"""Auto-generated module providing information about the build."""\n'
    "import collections\n"
    "\n"
    "build_info = collections.OrderedDict([('cpu_compiler', 'clang'), ('cuda_compute_capabilities', "
    "['sm_60', 'sm_70', 'sm_80', 'sm_89', 'compute_90']), ('cuda_version', '12.5.1'), ('cudnn_version', '9'), "
    "('is_cuda_build', True), ('is_rocm_build', False), ('is_tensorrt_build', False)])\n"
)

BUILD_INFO_2_4_4 = (
    "# Copyright 2020 The TensorFlow Authors. All Rights Reserved.\n"
    '"""Auto-generated module providing information about the build."""\n'
    "from __future__ import absolute_import\n"
    "from __future__ import division\n"
    "from __future__ import print_function\n"
    "\n"
    "import collections\n"
    "\n"
    "build_info = collections.OrderedDict([('cpu_compiler', '/dt7/usr/bin/gcc'), ('cuda_compute_capabilities', "
    "['sm_35', 'sm_50', 'sm_60', 'sm_70', 'sm_75', 'compute_80']), ('cuda_version', '11.0'), "
    "('cudnn_version', '8'), ('is_cuda_build', True), ('is_rocm_build', False)])\n"
)

BUILD_INFO_ROCM = (
    '"""Auto-generated module providing information about the build."""\n'
    "import collections\n"
    "\n"
    "build_info = collections.OrderedDict([('is_cuda_build', False), ('is_rocm_build', True), "
    "('is_tensorrt_build', False)])\n"
)

BUILD_INFO_OLD = (
    "# Copyright 2017 The TensorFlow Authors. All Rights Reserved.\n"
    '"""Generates a Python module containing information about the build."""\n'
    "from __future__ import absolute_import\n"
    "from __future__ import division\n"
    "from __future__ import print_function\n"
    "\n"
    "is_rocm_build = False\n"
    "is_cuda_build = True\n"
    "cuda_version_number = '10.1'\n"
    "cudnn_version_number = '7'\n"
)

TF_WHEEL_TAG = "cp311-cp311-manylinux_2_27_x86_64"


def write(path: os.PathLike, text: str = "", mode: Optional[int] = None) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


def symlink(link: os.PathLike, target: str) -> str:
    link = os.fspath(link)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)
    return link


def make_dist(
    site: os.PathLike,
    name: str,
    version: str,
    requires: Iterable[str] = (),
    requires_python: Optional[str] = None,
    wheel_tags: Sequence[str] = (),
    body: str = "",
) -> str:
    """Write ``<name>-<version>.dist-info/METADATA`` (and WHEEL when tags are given); returns the dir."""
    dist_name = name.replace("-", "_")
    dist_info = os.path.join(os.fspath(site), f"{dist_name}-{version}.dist-info")
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: a test distribution"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    text = "\n".join(lines) + "\n"
    if body:
        text += "\n" + body
    write(os.path.join(dist_info, "METADATA"), text)
    if wheel_tags:
        wheel = ["Wheel-Version: 1.0", "Generator: bdist_wheel (0.41.2)", "Root-Is-Purelib: false"]
        wheel += [f"Tag: {t}" for t in wheel_tags]
        write(os.path.join(dist_info, "WHEEL"), "\n".join(wheel) + "\n")
    return dist_info


def make_tf(site: os.PathLike, version: str, build_info_text: Optional[str]) -> str:
    """Write ``tensorflow/__init__.py`` (and ``python/platform/build_info.py`` unless None); returns the dir."""
    pkg = os.path.join(os.fspath(site), "tensorflow")
    write(os.path.join(pkg, "__init__.py"), f'__version__ = "{version}"\n')
    if build_info_text is not None:
        write(os.path.join(pkg, "python", "platform", "build_info.py"), build_info_text)
    return pkg


def elf_header(e_machine: int = 0x3E) -> bytes:
    """A 64-byte ELF64 little-endian header of a shared object (ET_DYN) for `e_machine`."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # ELFCLASS64, ELFDATA2LSB, EV_CURRENT, SYSV
    rest = struct.pack("<HHIQQQIHHHHHH", 3, e_machine, 1, 0, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    return ident + rest


def make_fake_libc(path: os.PathLike, banner: bytes, e_machine: int = 0x3E) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(elf_header(e_machine) + bytes(200) + banner + b"\nCompiled by GNU CC version 12.2.0.\n" + bytes(64))
    return path


# ---------------------------------------------------------------------------
# A fake pynvml: the real native boundary (libnvidia-ml) is what we stand in for.

_FAKE_NVML = '''\
"""Fake pynvml for tfcompat tests: answers like a {count}-GPU {model} node."""
import os
import time

INIT_ERROR = {init_error!r}
INIT_SLEEP = {init_sleep!r}
ABORT = {abort!r}
MIG_UNSUPPORTED = {mig_unsupported!r}
COUNT = {count!r}
MARKER = {marker!r}

NVML_ERROR_NOT_SUPPORTED = 3
_STRINGS = {{
    3: "Not Supported",
    4: "Insufficient Permissions",
    12: "NVML Shared Library Not Found",
    18: "RM has detected an NVML/RM version mismatch.",
}}


class NVMLError(Exception):
    def __init__(self, value):
        Exception.__init__(self, value)
        self.value = value

    def __str__(self):
        return _STRINGS.get(self.value, "Unknown Error")


class _Pci:
    def __init__(self, bus_id):
        self.busId = bus_id


class _Memory:
    if {model!r} == "H100":
        total = 85520809984  # 81559 MiB, what an H100 80GB HBM3 reports
        free = 84924760064
    else:
        total = 34359738368  # 32768 MiB, a V100-SXM2-32GB
        free = 33763688448
    used = 596049920


def nvmlInit():
    if MARKER:
        with open(MARKER, "a") as fh:
            fh.write("nvmlInit\\n")
    if INIT_SLEEP:
        time.sleep(INIT_SLEEP)
    if ABORT:
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except Exception:
            pass
        os.abort()
    if INIT_ERROR is not None:
        raise NVMLError(INIT_ERROR)


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return "550.54.15"


def nvmlSystemGetCudaDriverVersion_v2():
    return 12040


def nvmlDeviceGetCount():
    return COUNT


def nvmlDeviceGetHandleByIndex(index):
    if not 0 <= index < COUNT:
        raise NVMLError(2)
    return index


_BUS = ["00000000:18:00.0", "00000000:2A:00.0", "00000000:3A:00.0", "00000000:5D:00.0"]


LOST = {lost!r}


def nvmlDeviceGetName(handle):
    if handle == LOST:
        raise NVMLError(15)
    return "NVIDIA H100 80GB HBM3" if MODEL == "H100" else "Tesla V100-SXM2-32GB"


def nvmlDeviceGetUUID(handle):
    return "GPU-6f3c1a2e-9b41-7d5e-2c08-a1b2c3d4e5f%d" % handle


def nvmlDeviceGetPciInfo(handle):
    return _Pci(_BUS[handle])


def nvmlDeviceGetCudaComputeCapability(handle):
    return (9, 0) if MODEL == "H100" else (7, 0)


def nvmlDeviceGetMemoryInfo(handle):
    return _Memory()


def nvmlDeviceGetMigMode(handle):
    if handle == MIG_UNSUPPORTED:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return [0, 0]


def nvmlDeviceGetPersistenceMode(handle):
    return 1


# Health. A real H100 (like every GPU since Ampere) heals uncorrectable ECC errors by row remapping, not page
# retirement: nvmlDeviceGetRetiredPages* answer NVML_ERROR_NOT_SUPPORTED (nvidia-smi -q shows "Retired Pages: N/A")
# and nvmlDeviceGetRemappedRows answers (correctable rows, uncorrectable rows, pending, failure). A V100 is the
# other way round. ECC counters: VOLATILE counts since the driver loaded, AGGREGATE over the GPU's life, so
# aggregate >= volatile, and an old error shows in aggregate only.
# With SICK: GPU 1 holds another job's 40 GiB; GPU 2 had 2 uncorrectable errors since the driver loaded (5 in its
# life) and waits for a GPU reset (H100: a row remap pending; V100: 2 retired pages pending); GPU 3 had 3
# uncorrectable errors long ago (aggregate only) that were remapped/retired. REMAP_FAILED: that GPU's remap failed.
SICK = {sick!r}
MODEL = {model!r}
REMAP_FAILED = {remap_failed!r}
HOPPER = MODEL == "H100"


class _Proc:
    def __init__(self, pid, used):
        self.pid = pid
        self.usedGpuMemory = used


def nvmlDeviceGetComputeRunningProcesses(handle):
    return [_Proc(4242, 40 * 1024 ** 3)] if SICK and handle == 1 else []


def nvmlDeviceGetEccMode(handle):
    return [1, 1]


NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 0, 1
NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC = 0, 1
_UNCORRECTED = {{2: (2, 5), 3: (0, 3)}}  # handle -> (volatile, aggregate) when SICK


def nvmlDeviceGetTotalEccErrors(handle, error_type, counter_type):
    if error_type not in (0, 1) or counter_type not in (0, 1):
        raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
    if error_type == NVML_MEMORY_ERROR_TYPE_CORRECTED:
        return (7, 19)[counter_type]  # correctable errors are routine, and not what TFC805 judges
    return _UNCORRECTED.get(handle, (0, 0))[counter_type] if SICK else 0


def nvmlDeviceGetRetiredPagesPendingStatus(handle):
    if HOPPER:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return 1 if SICK and handle == 2 else 0


def nvmlDeviceGetRetiredPages(handle, cause):
    if HOPPER:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    if not SICK:
        return []
    return {{(2, 1): [0x1000, 0x2000], (3, 1): [0x3000], (3, 0): [0x4000, 0x5000]}}.get((handle, cause), [])


def nvmlDeviceGetRemappedRows(handle):
    if not HOPPER:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)  # Volta: retirement, not remapping
    failed = 1 if handle == REMAP_FAILED else 0
    if SICK and handle == 2:
        return (0, 1, 1, failed)
    if SICK and handle == 3:
        return (1, 3, 0, failed)
    return (0, 0, 0, failed)
'''


def make_fake_nvml(
    directory: os.PathLike,
    init_error: Optional[int] = None,
    init_sleep: float = 0,
    abort: bool = False,
    mig_unsupported: Optional[int] = None,
    count: int = 4,
    marker: Optional[str] = None,
    sick: bool = False,
    lost: Optional[int] = None,
    model: str = "H100",
    remap_failed: Optional[int] = None,
) -> str:
    """Write ``directory/pynvml.py``; returns the directory (to put first on PYTHONPATH).

    `model`: "H100" (row remapping, as every GPU since Ampere) or "V100" (page retirement)."""
    if model not in ("H100", "V100"):
        raise ValueError(f"model {model!r}: the fake knows H100 and V100")
    directory = os.fspath(directory)
    write(
        os.path.join(directory, "pynvml.py"),
        _FAKE_NVML.format(
            init_error=init_error,
            init_sleep=init_sleep,
            abort=abort,
            mig_unsupported=mig_unsupported,
            count=count,
            marker=marker,
            sick=sick,
            lost=lost,
            model=model,
            remap_failed=remap_failed,
        ),
    )
    return directory


def nvml_env(fake_dir: str) -> dict:
    """The environment for the real NVML child, with the fake pynvml ahead of everything else."""
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{fake_dir}{os.pathsep}{SRC_DIR}"
    env.pop("PYTHONHOME", None)
    return env


PROC_VERSION_550 = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)
PROC_VERSION_OPEN_570 = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Thu Jan 23 22:50:36 UTC 2025\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
