"""8xx: resources behind "memory" crashes: shared memory, locked memory, cgroup memory, GPU memory, ECC.

TFC801, TFC802, TFC803 and TFC807 judge the limits of the checking process (job facts, ``job_limit=True``): under
``--scope node`` (a node agent) their findings are information. TFC804-806 judge the node's GPUs (gpu_health).

Thresholds are defaults a site can tune: the matrix states them ([[threshold]] in data/compat_matrix.toml)
and a matrix overlay may carry a `thresholds` table with the same keys (see README, "Resource thresholds").
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.units import human

Result = Iterator[Union[Hit, NotApplicable]]


NGC_GUIDE = "https://docs.nvidia.com/deeplearning/frameworks/user-guide/index.html"
NCCL_MEMORY = "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting/runtime_and_mpi_issues.html"
SOURCE_DEFAULT = "tfcompat default threshold"


@functools.lru_cache(maxsize=1)
def _shipped_defaults() -> dict[str, int]:
    # a --matrix file without [[threshold]] entries falls back to the shipped matrix's defaults
    from tfcompat.matrix import load_matrix

    return dict(load_matrix().facts.thresholds)


def __getattr__(name: str) -> dict[str, int]:
    """DEFAULT_THRESHOLDS, read on first use from the matrix's [[threshold]] table (data, not code)."""
    if name == "DEFAULT_THRESHOLDS":
        return _shipped_defaults()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def threshold(matrix: Matrix, key: str) -> tuple[int, str]:
    """(value, where it came from): the site's overlay wins over the matrix's default."""
    site = getattr(matrix, "thresholds", None) or {}
    if key in site:
        return int(site[key]), f"site threshold {key} ({matrix.path})"
    facts = getattr(matrix, "facts", None)
    defaults = facts.thresholds if facts is not None and facts.thresholds else _shipped_defaults()
    return defaults[key], f"{SOURCE_DEFAULT} {key}"


@rule("TFC801", "shm-too-small", Severity.ERROR, requires=("resources.shm",), job_limit=True)
def shm_too_small(env: Environment, matrix: Matrix) -> Result:
    """/dev/shm is too small for NCCL and multi-process input pipelines.

    What: the size of the /dev/shm tmpfs the job sees (Docker's default is 64 MB) is below 1 GiB on
    a node with several GPUs, or below 256 MiB on any node.

    Why it crashes: NCCL's shared-memory transport between GPUs of one node and multi-process
    input pipelines allocate their buffers in /dev/shm; when it fills, the process dies with SIGBUS
    ("Bus error", "NCCL WARN Error while creating shared memory segment", "unhandled system error")
    at the first collective or the first large batch, not at start.

    How to fix: give the container more shared memory: `docker run --shm-size=1g` (or `--ipc=host`);
    in Kubernetes mount an `emptyDir: {medium: Memory, sizeLimit: 1Gi}` at /dev/shm; on bare metal
    enlarge the tmpfs (`mount -o remount,size=...`).
    """
    res = env.host.resources
    if res is None or res.shm_bytes is None:
        yield NotApplicable("/dev/shm size not known")
        return
    n_gpus = len(env.host.gpus)
    gpus_unknown = env.unknown("gpus") if not n_gpus else None
    multi, multi_src = threshold(matrix, "shm_min_bytes_multi_gpu")
    single, single_src = threshold(matrix, "shm_min_bytes")
    ev = [Evidence("/dev/shm size", human(res.shm_bytes), res.shm_source or "/dev/shm")]
    if gpus_unknown and env.host.driver is not None and res.shm_bytes < multi:
        # a node with a driver whose GPUs could not be counted: say so rather than assume one GPU
        yield Hit(
            message=f"/dev/shm is {human(res.shm_bytes)}, below the {human(multi)} a multi-GPU node needs; the GPU "
            f"count is unknown ({gpus_unknown})",
            evidence=tuple(ev + [Evidence("minimum (several GPUs)", human(multi), multi_src)]),
            remediation="Docker: --shm-size=1g (or --ipc=host); Kubernetes: an emptyDir with medium: Memory and "
            "sizeLimit: 1Gi at /dev/shm.",
            severity=Severity.WARNING,
        )
    elif n_gpus >= 2 and res.shm_bytes < multi:
        ev += [
            Evidence("gpus", str(n_gpus), "NVML nvmlDeviceGetCount"),
            Evidence("minimum", human(multi), multi_src),
            Evidence("recommendation", "--shm-size=1g", NGC_GUIDE),
        ]
        yield Hit(
            message=f"/dev/shm is {human(res.shm_bytes)} on a node with {n_gpus} GPUs (minimum {human(multi)}): "
            "NCCL's shared-memory transport and input pipelines die with SIGBUS when it fills",
            evidence=tuple(ev),
            remediation="Docker: --shm-size=1g (or --ipc=host); Kubernetes: mount an emptyDir with medium: Memory "
            "and sizeLimit: 1Gi at /dev/shm; bare metal: mount -o remount,size=1G /dev/shm.",
        )
    elif res.shm_bytes < single:
        ev.append(Evidence("minimum", human(single), single_src))
        yield Hit(
            message=f"/dev/shm is only {human(res.shm_bytes)} (minimum {human(single)}): multi-process input "
            "pipelines and NCCL fail with SIGBUS when it fills",
            evidence=tuple(ev),
            remediation="Docker: --shm-size=1g; Kubernetes: an emptyDir with medium: Memory at /dev/shm.",
            severity=Severity.WARNING,
        )


# Where RLIMIT_MEMLOCK applies (TFC802), in the kernel's and NVIDIA's own words and code:
MEMLOCK_SOURCES = (
    # getrlimit(2): RLIMIT_MEMLOCK bounds mlock(2), mlockall(2), mmap(2) MAP_LOCKED and shmctl(2) SHM_LOCK
    "https://man7.org/linux/man-pages/man2/getrlimit.2.html",
    # ib_umem_get() (behind ibv_reg_mr): pinned pages are charged to mm->pinned_vm against RLIMIT_MEMLOCK
    # unless CAP_IPC_LOCK; over it the registration fails with ENOMEM
    "torvalds/linux:drivers/infiniband/core/umem.c",
    # NVIDIA's kernel module pins cudaHostRegister() ranges with get_user_pages() in os_lock_user_pages(),
    # charging nothing to RLIMIT_MEMLOCK; cudaHostAlloc()/cudaMallocHost() memory is allocated by the driver
    "NVIDIA/open-gpu-kernel-modules:kernel-open/nvidia/os-mlock.c",
    # NCCL: "Docker containers default to limited shared and pinned memory resources": --ulimit memlock=-1
    "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting/runtime_and_mpi_issues.html",
)


@rule("TFC802", "memlock-too-low", Severity.WARNING, requires=("resources.rlimits",), job_limit=True)
def memlock_too_low(env: Environment, matrix: Matrix) -> Result:
    """The locked-memory limit (RLIMIT_MEMLOCK) is too low for RDMA memory registration.

    What: the soft `ulimit -l` of the job is below 64 MiB (many distributions default to 64 KiB or
    8 MiB; NVIDIA's NCCL guide asks containers for `--ulimit memlock=-1`). An error on a node with
    RDMA devices (InfiniBand/RoCE HCAs in /sys/class/infiniband), a warning elsewhere.

    Why it crashes: the limit bounds memory a process locks or pins for a device: mlock(2),
    mmap(MAP_LOCKED) (getrlimit(2)), and the kernel charges every page an RDMA registration pins
    (ibv_reg_mr -> ib_umem_get, drivers/infiniband/core/umem.c) against it unless the process has
    CAP_IPC_LOCK. NCCL over InfiniBand/RoCE and GPUDirect RDMA register their buffers that way and
    fail at the first inter-node collective ("ibv_reg_mr failed", "Cannot allocate memory") on a
    machine with plenty of free RAM. CUDA's own pinned host memory is not bounded by it:
    cudaHostAlloc/cudaMallocHost memory is allocated by the NVIDIA driver and cudaHostRegister pins
    with get_user_pages in the driver's os_lock_user_pages (open-gpu-kernel-modules, os-mlock.c),
    neither charged to RLIMIT_MEMLOCK; NVIDIA's CUDA runtime documentation names no such limit. So
    without RDMA a low limit breaks only libraries that mlock (some MPI and UCX transports, io_uring).

    How to fix: raise the limit where the job starts: `ulimit -l unlimited` in the shell,
    `LimitMEMLOCK=infinity` for systemd services (slurmd included, whose limit jobs inherit with
    PropagateResourceLimits), `docker run --ulimit memlock=-1`, or the container runtime's default
    ulimits (containerd/CRI-O) for Kubernetes; or grant CAP_IPC_LOCK to the job's container.
    """
    res = env.host.resources
    assert res is not None
    if not env.host.gpus:
        unknown = env.unknown("gpus")
        yield NotApplicable(
            f"gpus unknown: {unknown}"
            if unknown and env.host.driver is not None
            else "no GPUs on this node: pinned memory and GPUDirect RDMA are not used"
        )
        return
    minimum, src = threshold(matrix, "memlock_min_bytes")
    if res.memlock_soft is None or res.memlock_soft >= minimum:
        return
    ev = [
        Evidence("RLIMIT_MEMLOCK soft", human(res.memlock_soft), res.rlimit_source or "getrlimit"),
        Evidence("RLIMIT_MEMLOCK hard", human(res.memlock_hard), res.rlimit_source or "getrlimit"),
        Evidence("minimum", human(minimum), src),
        Evidence("recommendation", "--ulimit memlock=-1", NCCL_MEMORY),
    ]
    limit = f"locked-memory limit is {human(res.memlock_soft)} (hard {human(res.memlock_hard)}), below {human(minimum)}"
    if res.rdma_devices:
        ev.append(Evidence("RDMA devices", ", ".join(res.rdma_devices), "/sys/class/infiniband"))
        message = (
            f"{limit} on a node with RDMA devices ({', '.join(res.rdma_devices)}): NCCL over InfiniBand/RoCE "
            "and GPUDirect RDMA fail to register memory (ibv_reg_mr: Cannot allocate memory)"
        )
        severity = Severity.ERROR
    else:
        ev.append(
            Evidence(
                "RDMA devices",
                "none" if res.rdma_devices is not None else "unknown",
                "/sys/class/infiniband" if res.rdma_devices is not None else "not collected",
            )
        )
        where = "no RDMA devices on this node" if res.rdma_devices is not None else "RDMA devices unknown"
        message = (
            f"{limit} ({where}): RDMA registration (NCCL over InfiniBand, GPUDirect RDMA) and libraries that "
            "mlock() fail; CUDA's pinned host memory (cudaHostAlloc) is not bounded by it"
        )
        severity = Severity.WARNING
    yield Hit(
        message=message,
        evidence=tuple(ev),
        remediation="ulimit -l unlimited (shell); LimitMEMLOCK=infinity (systemd unit, e.g. slurmd); "
        "docker run --ulimit memlock=-1; raise the container runtime's default memlock for Kubernetes.",
        severity=severity,
    )


@rule("TFC803", "cgroup-memory-low", Severity.WARNING, requires=("resources.cgroup",), job_limit=True)
def cgroup_memory_low(env: Environment, matrix: Matrix) -> Result:
    """The cgroup memory limit is low for the GPUs in view, or already nearly used up.

    What: the job's memory cgroup (a container's or a Slurm job's limit) allows less host memory than
    8 GiB per GPU, or more than 90 % of the limit is already in use.

    Why it crashes: each GPU's input pipeline, pinned staging buffers and the CUDA context take host
    memory; at the limit the kernel's OOM killer ends the process with SIGKILL ("Killed", exit 137),
    with no Python traceback.

    How to fix: raise the limit (`docker run --memory`, Kubernetes `resources.limits.memory`,
    Slurm `--mem`/`--mem-per-gpu`), or use fewer GPUs or smaller pipelines per process.
    """
    res = env.host.resources
    assert res is not None
    if res.cgroup_memory_limit is None:
        return
    n_gpus = len(env.host.gpus)
    per_gpu, src = threshold(matrix, "cgroup_memory_per_gpu_bytes")
    ev = [
        Evidence(
            f"cgroup v{res.cgroup_version} memory limit",
            human(res.cgroup_memory_limit),
            res.cgroup_source or "/sys/fs/cgroup",
        )
    ]
    if n_gpus and res.cgroup_memory_limit < per_gpu * n_gpus:
        yield Hit(
            message=f"the memory cgroup allows {human(res.cgroup_memory_limit)} for {n_gpus} GPU"
            f"{'s' if n_gpus > 1 else ''} (floor {human(per_gpu)} per GPU): the OOM killer ends the job "
            "with SIGKILL when input pipelines grow",
            evidence=tuple(ev + [Evidence("floor per GPU", human(per_gpu), src)]),
            remediation="Raise the limit: docker run --memory, Kubernetes resources.limits.memory, Slurm "
            "--mem-per-gpu; or run fewer GPUs per process.",
        )
    pct, pct_src = threshold(matrix, "cgroup_memory_used_percent")
    if res.cgroup_memory_current is not None and res.cgroup_memory_current * 100 >= res.cgroup_memory_limit * pct:
        yield Hit(
            message=f"{human(res.cgroup_memory_current)} of the {human(res.cgroup_memory_limit)} cgroup limit is "
            f"already charged (>= {pct} %, page cache included): a job in it may be OOM-killed if that "
            "memory cannot be reclaimed",
            evidence=tuple(
                ev
                + [
                    Evidence(
                        "cgroup memory in use", human(res.cgroup_memory_current), res.cgroup_source or "/sys/fs/cgroup"
                    ),
                    Evidence("threshold", f"{pct} %", pct_src),
                ]
            ),
            remediation="Find what holds the memory in this cgroup (another process or a leaked tmpfs file) "
            "before starting the job.",
        )


@rule("TFC807", "visible-devices-mismatch", Severity.WARNING, requires=("gpus",), job_limit=True)
def visible_devices(env: Environment, matrix: Matrix) -> Result:
    """CUDA_VISIBLE_DEVICES hides every GPU, names GPUs that are not there, or names one twice.

    What: the job's CUDA_VISIBLE_DEVICES is empty or -1, lists an index beyond the GPUs present or a
    UUID that no GPU has, or lists a GPU twice.

    Why it crashes: CUDA stops reading the list at the first invalid entry, so GPUs after it vanish
    silently; an empty list makes TensorFlow run on the CPU ("no CUDA-capable device is detected");
    a duplicate makes device creation fail.

    How to fix: set CUDA_VISIBLE_DEVICES to valid, distinct indices or UUIDs (nvidia-smi -L), or unset
    it and let the scheduler's GPU plugin or Slurm's gres set it.
    """
    res = env.host.resources
    if res is None or res.cuda_visible_devices is None:
        return
    raw = res.cuda_visible_devices
    ev = (
        Evidence("CUDA_VISIBLE_DEVICES", repr(raw), "environment of the checking process"),
        Evidence("gpus", str(len(env.host.gpus)), "NVML nvmlDeviceGetCount"),
    )
    items = [x.strip() for x in raw.split(",")] if raw.strip() else []
    if not items or items[0] in ("-1", "NoDevFiles"):
        yield Hit(
            message=f"CUDA_VISIBLE_DEVICES={raw!r} hides every GPU: TensorFlow runs on the CPU",
            evidence=ev,
            remediation="Unset CUDA_VISIBLE_DEVICES or list the GPUs the job should use.",
        )
        return
    uuids = {g.uuid for g in env.host.gpus if g.uuid}
    seen: set[Union[int, str]] = set()  # an index, or a UUID (prefix) / MIG name
    problems: list[str] = []
    for pos, item in enumerate(items):
        key: Union[int, str]
        if item.isdigit():
            valid, key = int(item) < len(env.host.gpus), int(item)
        else:
            valid = any(u.startswith(item) for u in uuids) or item.startswith("MIG-")
            key = item
        if not valid:
            lost = items[pos + 1 :]
            problems.append(
                f"{item!r} is not a GPU on this node"
                + (f" (so {', '.join(lost)} after it are ignored)" if lost else "")
            )
            break
        if key in seen:
            problems.append(f"{item!r} is listed twice")
        seen.add(key)
    if problems:
        yield Hit(
            message=f"CUDA_VISIBLE_DEVICES={raw!r}: " + "; ".join(problems),
            evidence=ev,
            remediation="List valid, distinct GPU indices or UUIDs (nvidia-smi -L), or unset it.",
        )
