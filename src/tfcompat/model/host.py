"""Facts that belong to the node: platform, NVIDIA driver and GPUs, ROCm; and the resource limits the checking
process runs under, which are job facts (the job's own only where the check runs where the job runs: --scope)."""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Platform:
    """The node's operating system, architecture, glibc, kernel and CPU."""

    os_release: Optional[str] = None  # PRETTY_NAME from /etc/os-release
    os_release_path: Optional[str] = None
    arch: Optional[str] = None  # x86_64, aarch64
    glibc: Optional[str] = None  # "2.36"
    glibc_source: Optional[str] = None
    kernel: Optional[str] = None
    cpu_model: Optional[str] = None
    cpu_flags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class GpuProcess:
    """A compute process holding memory on a GPU."""

    pid: int
    name: Optional[str]  # from /proc/<pid>/comm where readable
    used_mib: Optional[int]


@dataclasses.dataclass(frozen=True)
class Gpu:
    """One NVIDIA GPU: identity, compute capability, memory, modes and memory-error state."""

    index: int
    name: Optional[str] = None
    uuid: Optional[str] = None
    pci_bus_id: Optional[str] = None
    compute_capability: Optional[str] = None  # "9.0"
    memory_total_mib: Optional[int] = None
    mig_mode: Optional[bool] = None
    persistence_mode: Optional[bool] = None
    memory_used_mib: Optional[int] = None
    processes: tuple[GpuProcess, ...] = ()  # compute processes holding memory on it
    ecc_enabled: Optional[bool] = None
    ecc_uncorrected_volatile: Optional[int] = None  # since the last driver load
    ecc_uncorrected_aggregate: Optional[int] = None  # lifetime
    retired_pages_pending: Optional[bool] = None  # a page retirement waits for a reboot (pre-Ampere)
    retired_pages: Optional[int] = None
    remap_pending: Optional[bool] = None  # row remapping waits for a GPU reset (Ampere and newer)
    remap_failure: Optional[bool] = None


@dataclasses.dataclass(frozen=True)
class Resources:
    """Limits the job will run under. Limits: None means unlimited; sizes in bytes.

    Job facts: they are read from the checking process (its /dev/shm, getrlimit, cgroup, environment), so they are
    the job's only when the check runs where the job runs (``--scope job``); a node agent sees its own
    (``--scope node``: the rules report them as information). ``mem_total`` and ``rdma_devices`` are the node's.
    """

    shm_bytes: Optional[int] = None  # size of /dev/shm
    shm_free_bytes: Optional[int] = None
    shm_source: Optional[str] = None
    memlock_soft: Optional[int] = None
    memlock_hard: Optional[int] = None
    stack_soft: Optional[int] = None
    nofile_soft: Optional[int] = None
    nofile_hard: Optional[int] = None
    rlimit_source: Optional[str] = None
    cgroup_version: Optional[int] = None
    cgroup_memory_limit: Optional[int] = None  # None: no limit
    cgroup_memory_current: Optional[int] = None
    cgroup_source: Optional[str] = None
    mem_total: Optional[int] = None  # /proc/meminfo
    mem_available: Optional[int] = None
    cuda_visible_devices: Optional[str] = None  # None: not set
    nvidia_visible_devices: Optional[str] = None
    # RDMA devices (InfiniBand/RoCE HCAs) in /sys/class/infiniband: where there are some, NCCL's IB transport
    # registers memory with ibv_reg_mr, which RLIMIT_MEMLOCK bounds (TFC802). () none; None: not collected.
    rdma_devices: Optional[tuple[str, ...]] = None


@dataclasses.dataclass(frozen=True)
class DriverLibrary:
    """A user-space driver library (libcuda.so.1, libnvidia-ml.so.1) as the loader would find it."""

    soname: str
    path: str  # the file the soname resolves to (symlinks followed)
    version: Optional[str]  # from the file name: libcuda.so.550.54.15 -> 550.54.15
    forward_compat: bool = False  # from a cuda-compat package (…/compat/ directory)
    shadowed: tuple[str, ...] = ()  # other copies further down the search path


@dataclasses.dataclass(frozen=True)
class Driver:
    """The NVIDIA driver: kernel module and NVML versions, the CUDA it supports, its user-space libraries."""

    kernel_module_version: Optional[str] = None  # from /proc/driver/nvidia/version
    kernel_module_source: Optional[str] = None
    nvml_driver_version: Optional[str] = None  # nvmlSystemGetDriverVersion
    cuda_driver_version: Optional[str] = None  # newest CUDA the driver supports, "12.4"
    nvml_error: Optional[str] = None  # NVML's error name when it failed, e.g. "NVML_ERROR_LIB_RM_VERSION_MISMATCH"
    libraries: tuple[DriverLibrary, ...] = ()
    gpu_errors: tuple[str, ...] = ()  # GPUs NVML could not query: "GPU 2: NVML_ERROR_GPU_IS_LOST (GPU is lost)"

    @property
    def version(self) -> Optional[str]:
        return self.nvml_driver_version or self.kernel_module_version

    @property
    def version_source(self) -> str:
        if self.nvml_driver_version:
            return "NVML nvmlSystemGetDriverVersion"
        return self.kernel_module_source or "/proc/driver/nvidia/version"


@dataclasses.dataclass(frozen=True)
class AmdGpu:
    """One AMD GPU (a KFD topology node) and its gfx target."""

    node: int  # KFD topology node id
    gfx_target: str  # gfx90a, gfx1100
    source: str


@dataclasses.dataclass(frozen=True)
class Rocm:
    """The node's user-space ROCm release and its AMD GPUs."""

    version: Optional[str]  # user-space ROCm, /opt/rocm/.info/version
    version_source: Optional[str]
    gpus: tuple[AmdGpu, ...] = ()


@dataclasses.dataclass(frozen=True)
class Host:
    """Facts that belong to the node, not to the Python environment."""

    node_name: Optional[str] = None
    node_name_source: Optional[str] = None
    platform: Platform = dataclasses.field(default_factory=Platform)
    driver: Optional[Driver] = None
    gpus: tuple[Gpu, ...] = ()
    rocm: Optional[Rocm] = None
    resources: Optional[Resources] = None
