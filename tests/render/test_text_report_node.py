"""The text report of a GPU node, rendered end to end (`tfcompat check --from SNAPSHOT`): the driver and its
libraries, every GPU, the limits, an active finding, a waived one and the verdict line (issue #12, Deliver 6:
no test rendered a node with a driver, GPUs or waivers before)."""

import dataclasses
import json
import subprocess
import sys

import pytest
from envs import make_env

from tfcompat.model import Driver, DriverLibrary, Gpu, Resources, to_json_dict

MiB, GiB = 1 << 20, 1 << 30


def h100(i):
    return Gpu(
        i,
        "NVIDIA H100 80GB HBM3",
        f"GPU-6f3c1a2e-9b41-7d5e-2c08-a1b2c3d4e5f{i}",
        f"00000000:{0x18 + i:02X}:00.0",
        "9.0",
        81559,
        False,
        True,
        memory_used_mib=4,
        ecc_enabled=True,
        ecc_uncorrected_volatile=0,
        remap_pending=False,
        remap_failure=False,
    )


@pytest.fixture
def snapshot(tmp_path):
    env = make_env("2.21.0", driver="535.104.05", gpus=[h100(0), h100(1)])
    driver = Driver(
        kernel_module_version="535.104.05",
        kernel_module_source="/proc/driver/nvidia/version",
        nvml_driver_version="535.104.05",
        cuda_driver_version="12.2",
        libraries=(
            DriverLibrary("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05", "535.104.05"),
            DriverLibrary("libnvidia-ml.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.104.05", "535.104.05"),
        ),
    )
    res = Resources(
        shm_bytes=512 * MiB,
        shm_source="/proc/mounts",
        memlock_soft=None,
        memlock_hard=None,
        rlimit_source="getrlimit",
        cgroup_version=2,
        cgroup_memory_limit=None,
        cgroup_source="/sys/fs/cgroup",
        mem_total=512 * GiB,
    )
    env = dataclasses.replace(
        env, host=dataclasses.replace(env.host, node_name="gpu-017", driver=driver, resources=res)
    )
    path = tmp_path / "gpu-017.json"
    path.write_text(json.dumps(to_json_dict(env)))
    return str(path)


def check(snapshot, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "tfcompat", "check", "--from", snapshot, "--no-color", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def section(text, start):
    """The lines of the block that starts with `start`, up to the next blank line."""
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(start))
    out = []
    for line in lines[i:]:
        if not line:
            break
        out.append(line)
    return out


def test_header_names_driver_libraries_gpus_and_limits(snapshot):
    code, out, err = check(snapshot, "--ignore", "TFC801=INC-4711 shm raised at next reboot")
    assert code == 0, err
    head = out.splitlines()
    assert head[1] == "Node        gpu-017 (--node-name)"
    assert "Driver      NVIDIA 535.104.05, supports CUDA <= 12.2 (NVML nvmlSystemGetDriverVersion)" in head
    assert "            libcuda.so.1 535.104.05  /usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05" in head
    assert "            libnvidia-ml.so.1 535.104.05  /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.104.05" in head
    assert "GPU 0       NVIDIA H100 80GB HBM3, compute capability 9.0, GPU-6f3c1a2e-9b41-7d5e-2c08-a1b2c3d4e5f0" in head
    assert "GPU 1       NVIDIA H100 80GB HBM3, compute capability 9.0, GPU-6f3c1a2e-9b41-7d5e-2c08-a1b2c3d4e5f1" in head
    assert "Limits      /dev/shm 512 MiB, memlock unlimited, cgroup v2 memory unlimited, RAM 512 GiB" in head


def test_active_and_waived_findings_and_the_verdict(snapshot):
    _code, out, _ = check(snapshot, "--ignore", "TFC801=INC-4711 shm raised at next reboot")
    # the driver is between CUDA 12's floor and CUDA 12.5.1's own driver: a warning
    block = section(out, "WARNING TFC201 driver-too-old-for-cuda")
    assert "NVIDIA driver 535.104.05 is older than 555.42.06" in block[1]
    assert "  evidence: driver.version = 535.104.05  (NVML nvmlSystemGetDriverVersion)" in block
    assert block[-1].startswith("  fix: Upgrade the NVIDIA driver to >= 555.42.06")
    waived = section(out, "Waived (1):")
    assert len(waived) == 2 and waived[1].startswith(
        "  TFC801 shm-too-small: /dev/shm is 512 MiB on a node with 2 GPUs"
    )
    assert waived[1].endswith("[INC-4711 shm raised at next reboot]")
    assert "ERROR TFC801" not in out  # a waived finding is listed once, in the waived block
    assert out.splitlines()[-1] == "Result: PASS (0 errors, 1 warning, 0 info; fail-on error; exit 0)"


def test_without_the_waiver_the_small_shm_fails_the_node(snapshot):
    code, out, _ = check(snapshot)
    assert code == 1
    block = section(out, "ERROR TFC801 shm-too-small")
    assert "/dev/shm is 512 MiB on a node with 2 GPUs (minimum 1 GiB)" in block[1]
    assert "Waived" not in out
    assert out.splitlines()[-1] == "Result: FAIL (1 error, 1 warning, 0 info; fail-on error; exit 1)"


def test_fail_on_warning_counts_the_driver_warning(snapshot):
    code, out, _ = check(snapshot, "--ignore", "TFC801", "--fail-on", "warning")
    assert code == 1 and out.splitlines()[-1].startswith("Result: FAIL (0 errors, 1 warning")
