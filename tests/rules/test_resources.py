import dataclasses
import os
import resource

import pytest
from envs import make_env, run_rule
from probe_helpers import write

from tfcompat.model import Gpu, GpuProcess, Resources, Severity
from tfcompat.probes.resources import (
    cgroup_memory,
    parse_meminfo,
    parse_size,
    probe_resources,
    shm_from_mounts,
)
from tfcompat.probes.rootfs import Root
from tfcompat.rules import evaluate

MiB, GiB = 1 << 20, 1 << 30


# ---------------------------------------------------------------- probe, on fake trees

DOCKER_MOUNTS = (
    "overlay / overlay rw,relatime 0 0\nshm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0\n"
)


def test_shm_from_docker_mounts():
    assert shm_from_mounts(DOCKER_MOUNTS) == 64 * MiB
    assert shm_from_mounts("tmpfs /dev/shm tmpfs rw,size=1g 0 0\n") == GiB
    assert shm_from_mounts("proc /proc proc rw 0 0\n") is None


@pytest.mark.parametrize("text, value", [("65536k", 64 * MiB), ("1g", GiB), ("8589934592", 8 * GiB), ("x", None)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_meminfo():
    info = parse_meminfo("MemTotal:       24683948 kB\nMemAvailable:   24127364 kB\nHugePages_Total:       0\n")
    assert info["MemTotal"] == 24683948 * 1024 and info["HugePages_Total"] == 0


def test_cgroup_v2_nested_limit(tmp_path):
    root = tmp_path
    write(root / "proc/self/cgroup", "0::/kubepods/pod1/ctr\n")
    write(root / "sys/fs/cgroup/kubepods/memory.max", "17179869184\n")
    write(root / "sys/fs/cgroup/kubepods/pod1/memory.max", "8589934592\n")
    write(root / "sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n")
    write(root / "sys/fs/cgroup/kubepods/pod1/ctr/memory.current", "1073741824\n")
    version, limit, current, source, reason = cgroup_memory(Root(str(root)))
    assert (version, limit, current, reason) == (2, 8 * GiB, GiB, None)
    assert source.endswith("kubepods/pod1/memory.max")


def test_cgroup_v2_namespace_root(tmp_path):
    write(tmp_path / "proc/self/cgroup", "0::/\n")
    write(tmp_path / "sys/fs/cgroup/memory.max", "4294967296\n")
    write(tmp_path / "sys/fs/cgroup/memory.current", "3995000000\n")
    assert cgroup_memory(Root(str(tmp_path)))[:3] == (2, 4 * GiB, 3995000000)


def test_cgroup_v1(tmp_path):
    write(tmp_path / "proc/self/cgroup", "12:pids:/job\n4:memory:/slurm/uid_0/job_42\n")
    base = tmp_path / "sys/fs/cgroup/memory/slurm/uid_0/job_42"
    write(base / "memory.limit_in_bytes", str(32 * GiB) + "\n")
    write(base / "memory.usage_in_bytes", str(GiB) + "\n")
    assert cgroup_memory(Root(str(tmp_path)))[:3] == (1, 32 * GiB, GiB)
    write(base / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    assert cgroup_memory(Root(str(tmp_path)))[1] is None


def test_probe_under_root_reads_files_but_not_process_limits(tmp_path):
    write(tmp_path / "proc/mounts", DOCKER_MOUNTS)
    write(tmp_path / "proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    res, unknowns = probe_resources(Root(str(tmp_path)), environ={"CUDA_VISIBLE_DEVICES": "0"})
    assert res.shm_bytes == 64 * MiB and res.mem_total == 1000 * 1024
    assert res.cuda_visible_devices is None  # host variables are not used under --root
    facts = {u.fact: u.reason for u in unknowns}
    assert "resources.rlimits" in facts and "inside the container" in facts["resources.rlimits"]
    assert "resources.cgroup" in facts


def test_probe_live_host_reports_real_limits():
    res, unknowns = probe_resources(Root(None), environ={"CUDA_VISIBLE_DEVICES": "1,0"})
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    assert res.memlock_soft == (None if soft == resource.RLIM_INFINITY else soft)
    assert res.cuda_visible_devices == "1,0"
    if os.path.isdir("/dev/shm"):
        st = os.statvfs("/dev/shm")
        assert res.shm_bytes == st.f_blocks * st.f_frsize
    assert "resources.rlimits" not in {u.fact for u in unknowns}


def test_getrlimit_is_injectable():
    res, _ = probe_resources(Root(None), getrlimit=lambda r: (65536, 65536))
    assert res.memlock_soft == 65536 and res.nofile_hard == 65536


# ---------------------------------------------------------------- rules


def gpu(i, **kw):
    base = {
        "name": "NVIDIA A100-SXM4-80GB",
        "uuid": f"GPU-a100-{i}",
        "pci_bus_id": f"00000000:{i:02X}:00.0",
        "compute_capability": "8.0",
        "memory_total_mib": 81920,
        "memory_used_mib": 4,
        "persistence_mode": True,
        "ecc_enabled": True,
        "ecc_uncorrected_volatile": 0,
        "retired_pages_pending": False,
    }
    base.update(kw)
    return Gpu(i, **base)


def node(gpus, **res):
    base = {
        "shm_bytes": 64 * MiB,
        "shm_source": "/proc/mounts",
        "memlock_soft": 64 * 1024,
        "memlock_hard": 64 * 1024,
        "rlimit_source": "getrlimit",
        "cgroup_version": 2,
        "cgroup_memory_limit": None,
        "cgroup_source": "/sys/fs/cgroup",
    }
    base.update(res)
    env = make_env("2.21.0", driver="575.57.08", gpus=gpus)
    return dataclasses.replace(env, host=dataclasses.replace(env.host, resources=Resources(**base)))


def test_eight_gpu_container_scenario(matrix):
    """The issue's scenario: 64 MB /dev/shm, memlock 64 KB on a node with an InfiniBand HCA, one GPU with a page
    retirement pending."""
    gpus = [gpu(i) for i in range(8)]
    gpus[5] = gpu(5, ecc_uncorrected_volatile=1, retired_pages_pending=True)
    report = evaluate(node(gpus, rdma_devices=("mlx5_0",)), matrix)
    assert [(f.rule, f.severity) for f in report.findings] == [
        ("TFC801", Severity.ERROR),
        ("TFC802", Severity.ERROR),
        ("TFC805", Severity.ERROR),
    ]
    shm, memlock, ecc = report.findings
    assert "64 MiB on a node with 8 GPUs" in shm.message and "--shm-size=1g" in shm.remediation
    assert "64 KiB" in memlock.message and "LimitMEMLOCK=infinity" in memlock.remediation
    assert "--ulimit memlock=-1" in memlock.remediation
    assert "GPU 5 (NVIDIA A100-SXM4-80GB, GPU-a100-5)" in ecc.message and "page retirement pending" in ecc.message
    assert "nvidia-smi -r -i 5" in ecc.remediation
    # the number seen, the threshold and where each came from
    assert {e.fact: e.value for e in shm.evidence}["minimum"] == "1 GiB"
    assert any(e.source == "/proc/mounts" for e in shm.evidence)


def test_healthy_node(matrix):
    env = node([gpu(0), gpu(1)], shm_bytes=16 * GiB, memlock_soft=None, memlock_hard=None)
    assert evaluate(env, matrix).findings == ()


def test_small_shm_single_gpu_is_warning(matrix):
    (f,), _ = run_rule(node([gpu(0)], shm_bytes=128 * MiB), matrix, "TFC801")
    assert f.severity is Severity.WARNING


def test_site_threshold_overrides_default(matrix):
    class Site:
        path, thresholds = "site.toml", {"shm_min_bytes_multi_gpu": 32 * MiB, "shm_min_bytes": 32 * MiB}

        def __getattr__(self, name):
            return getattr(matrix, name)

    assert run_rule(node([gpu(0), gpu(1)]), Site(), "TFC801")[0] == []


def test_cgroup_limit_low_for_gpus(matrix):
    env = node(
        [gpu(i) for i in range(4)],
        shm_bytes=16 * GiB,
        memlock_soft=None,
        cgroup_memory_limit=16 * GiB,
        cgroup_memory_current=15 * GiB,
    )
    findings, _ = run_rule(env, matrix, "TFC803")
    assert len(findings) == 2
    assert "16 GiB for 4 GPUs" in findings[0].message and "8 GiB per GPU" in findings[0].message
    assert "15 GiB of the 16 GiB" in findings[1].message


def test_gpu_memory_in_use(matrix):
    busy = gpu(1, memory_used_mib=60000, processes=(GpuProcess(4242, "python3", 59000),))
    env = node([gpu(0), busy], shm_bytes=16 * GiB, memlock_soft=None)
    (f,), _ = run_rule(env, matrix, "TFC804")
    assert f.severity is Severity.ERROR and "PID 4242 python3" in f.message and "GPU 1" in f.message


def test_remap_failure_means_rma(matrix):
    env = node([gpu(0, remap_failure=True)], shm_bytes=16 * GiB, memlock_soft=None)
    (f,), _ = run_rule(env, matrix, "TFC805")
    assert "RMA" in f.remediation


def test_persistence_off(matrix):
    env = node([gpu(0), gpu(1, persistence_mode=False)], shm_bytes=16 * GiB, memlock_soft=None)
    (f,), _ = run_rule(env, matrix, "TFC806")
    assert f.severity is Severity.INFO and "GPU 1 of 2" in f.message


@pytest.mark.parametrize(
    "value, expect",
    [
        ("", "hides every GPU"),
        ("-1", "hides every GPU"),
        ("0,5,1", "'5' is not a GPU on this node (so 1 after it are ignored)"),
        ("1,1", "'1' is listed twice"),
        ("GPU-nope", "'GPU-nope' is not a GPU"),
    ],
)
def test_visible_devices(matrix, value, expect):
    env = node([gpu(0), gpu(1)], shm_bytes=16 * GiB, memlock_soft=None, cuda_visible_devices=value)
    (f,), _ = run_rule(env, matrix, "TFC807")
    assert expect in f.message


@pytest.mark.parametrize("value", ["0,1", "1", "GPU-a100-1", "GPU-a100"])
def test_visible_devices_valid(matrix, value):
    env = node([gpu(0), gpu(1)], shm_bytes=16 * GiB, memlock_soft=None, cuda_visible_devices=value)
    assert run_rule(env, matrix, "TFC807")[0] == []


def test_memlock_not_applicable_without_gpus(matrix):
    findings, (skip,) = run_rule(node([]), matrix, "TFC802")
    assert findings == [] and "no GPUs" in skip.reason


def test_memlock_with_gpus_unknown_on_a_driver_node(matrix):
    from tfcompat.model import Unknown

    env = node([], shm_bytes=64 * MiB)
    env = dataclasses.replace(env, unknowns=env.unknowns + (Unknown("gpus", "NVML not queried (--no-nvml)"),))
    findings, (skip,) = run_rule(env, matrix, "TFC802")
    assert findings == [] and skip.reason == "gpus unknown: NVML not queried (--no-nvml)"
    (f,), _ = run_rule(env, matrix, "TFC801")
    assert f.severity is Severity.WARNING and "GPU count is unknown" in f.message


def test_cgroup_on_a_cpu_node_has_no_per_gpu_floor(matrix):
    assert run_rule(node([], shm_bytes=16 * GiB, cgroup_memory_limit=4 * GiB), matrix, "TFC803")[0] == []
