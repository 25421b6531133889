"""NVIDIA driver and GPUs: /proc/driver/nvidia/version, and NVML through the real child process.

NVML itself (libnvidia-ml via pynvml) is the boundary: a fake ``pynvml`` module is put first on the
child's PYTHONPATH; tfcompat's own child module (``python -m tfcompat.probes.nvml_child``) runs for real.
"""

import os
import shutil
import subprocess
import time

import pytest
from probe_helpers import (
    PROC_VERSION_550,
    PROC_VERSION_OPEN_570,
    make_fake_nvml,
    nvml_env,
    write,
)

from tfcompat.model import Gpu
from tfcompat.probes.nvidia import (
    NVML_REASONS,
    PROC_VERSION,
    parse_proc_version,
    probe_nvidia,
    run_nvml_child,
)
from tfcompat.probes.rootfs import Root


def facts(unknowns):
    return [u.fact for u in unknowns]


@pytest.fixture
def proc(tmp_path):
    """A stand-in for /proc/driver/nvidia/version on the host."""
    return write(tmp_path / "proc" / "version", PROC_VERSION_550)


def fake(tmp_path, **kw):
    return nvml_env(make_fake_nvml(tmp_path / "fakenvml", **kw))


# ---------------------------------------------------------------------------
# parse_proc_version


@pytest.mark.parametrize(
    "text, version",
    [
        (PROC_VERSION_550, "550.54.15"),
        (PROC_VERSION_OPEN_570, "570.86.15"),
        ("NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.104.05  Sat Aug 19 01:13:18 UTC 2023\n", "535.104.05"),
        ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82\n", "470.82"),
    ],
)
def test_parse_proc_version(text, version):
    assert parse_proc_version(text) == version


def test_parse_proc_version_garbage():
    assert parse_proc_version("") is None
    assert parse_proc_version("GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n") is None


# ---------------------------------------------------------------------------
# --root: an image has no driver


def test_root_without_proc_file(tmp_path):
    driver, gpus, unknowns = probe_nvidia(Root(str(tmp_path)))
    assert driver is None and gpus == ()
    assert facts(unknowns) == ["driver", "gpus"]
    assert all("image" in u.reason and str(tmp_path) in u.reason for u in unknowns)


def test_root_with_proc_file_reads_module_version(tmp_path):
    write(tmp_path / PROC_VERSION.lstrip("/"), PROC_VERSION_OPEN_570)
    driver, gpus, unknowns = probe_nvidia(Root(str(tmp_path)))
    assert driver.kernel_module_version == "570.86.15"
    assert driver.kernel_module_source == str(tmp_path / "proc/driver/nvidia/version")
    assert driver.nvml_driver_version is None
    assert gpus == ()
    assert facts(unknowns) == ["gpus"]
    assert "image" in unknowns[0].reason


def test_root_never_starts_nvml(tmp_path):
    marker = str(tmp_path / "nvml-was-called")
    write(tmp_path / "img" / PROC_VERSION.lstrip("/"), PROC_VERSION_550)
    probe_nvidia(Root(str(tmp_path / "img")), nvml_env=fake(tmp_path, marker=marker))
    assert not os.path.exists(marker)


# ---------------------------------------------------------------------------
# host mode


def test_host_without_driver_does_not_start_nvml(tmp_path):
    marker = str(tmp_path / "nvml-was-called")
    env = fake(tmp_path, marker=marker)
    missing = str(tmp_path / "no" / "version")
    driver, gpus, unknowns = probe_nvidia(Root(None), nvml_env=env, proc_version=missing)
    assert driver is None and gpus == ()
    assert facts(unknowns) == ["driver", "gpus"]
    assert all(u.reason.startswith("no NVIDIA driver on this node") and missing in u.reason for u in unknowns)
    assert not os.path.exists(marker)


def test_fake_nvml_marker_works(tmp_path, proc):
    """The marker used above really is written when the child runs (so its absence means something)."""
    marker = str(tmp_path / "nvml-was-called")
    probe_nvidia(Root(None), nvml_env=fake(tmp_path, marker=marker), proc_version=proc)
    with open(marker) as fh:
        assert fh.read() == "nvmlInit\n"


def test_no_nvml_flag(tmp_path, proc):
    marker = str(tmp_path / "nvml-was-called")
    driver, gpus, unknowns = probe_nvidia(
        Root(None), nvml=False, nvml_env=fake(tmp_path, marker=marker), proc_version=proc
    )
    assert driver.kernel_module_version == "550.54.15"
    assert driver.kernel_module_source == proc
    assert gpus == ()
    assert facts(unknowns) == ["gpus"] and "--no-nvml" in unknowns[0].reason
    assert not os.path.exists(marker)


def test_four_h100(tmp_path, proc):
    driver, gpus, unknowns = probe_nvidia(Root(None), nvml_env=fake(tmp_path), proc_version=proc)
    assert unknowns == []
    assert driver.kernel_module_version == "550.54.15"
    assert driver.kernel_module_source == proc
    assert driver.nvml_driver_version == "550.54.15"
    assert driver.cuda_driver_version == "12.4"
    assert driver.version == "550.54.15" and driver.version_source == "NVML nvmlSystemGetDriverVersion"
    assert len(gpus) == 4
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    assert [g.pci_bus_id for g in gpus] == [
        "00000000:18:00.0",
        "00000000:2A:00.0",
        "00000000:3A:00.0",
        "00000000:5D:00.0",
    ]
    assert gpus[0] == Gpu(
        index=0,
        name="NVIDIA H100 80GB HBM3",
        uuid="GPU-6f3c1a2e-9b41-7d5e-2c08-a1b2c3d4e5f0",
        pci_bus_id="00000000:18:00.0",
        compute_capability="9.0",
        memory_total_mib=81559,
        mig_mode=False,
        persistence_mode=True,
        memory_used_mib=568,
        ecc_enabled=True,
        ecc_uncorrected_volatile=0,
        ecc_uncorrected_aggregate=0,
        retired_pages_pending=None,
        retired_pages=None,
        remap_pending=False,
        remap_failure=False,
    )  # Hopper remaps rows
    assert len({g.uuid for g in gpus}) == 4


def test_gpu_health_from_nvml(tmp_path, proc):
    """Processes holding memory, ECC counts and pending retirement come through the child."""
    fake_v100 = nvml_env(make_fake_nvml(tmp_path / "n", sick=True, model="V100"))  # page retirement is pre-Ampere
    _driver, gpus, unknowns = probe_nvidia(Root(None), nvml_env=fake_v100, proc_version=proc)
    assert unknowns == []
    (p,) = gpus[1].processes
    assert p.pid == 4242 and p.used_mib == 40 * 1024
    assert gpus[2].ecc_uncorrected_volatile == 2 and gpus[2].retired_pages_pending is True
    assert gpus[2].retired_pages == 2
    assert gpus[2].remap_pending is None  # not supported: unknown, not False
    assert gpus[0].processes == () and gpus[0].retired_pages_pending is False


def test_nvml_reports_no_gpus(tmp_path, proc):
    driver, gpus, unknowns = probe_nvidia(Root(None), nvml_env=fake(tmp_path, count=0), proc_version=proc)
    assert driver.nvml_driver_version == "550.54.15"
    assert gpus == ()
    assert facts(unknowns) == ["gpus"] and "no GPUs" in unknowns[0].reason


@pytest.mark.parametrize(
    "code, words",
    [
        (18, "Driver/library version mismatch"),
        (12, "libnvidia-ml.so.1) not found"),
        (4, "no permission"),
    ],
)
def test_nvml_init_errors(tmp_path, proc, code, words):
    driver, gpus, unknowns = probe_nvidia(Root(None), nvml_env=fake(tmp_path, init_error=code), proc_version=proc)
    assert gpus == ()
    assert facts(unknowns) == ["gpus"]
    assert words in unknowns[0].reason
    assert unknowns[0].reason == NVML_REASONS[code]
    # the kernel module is still known from /proc
    assert driver.kernel_module_version == "550.54.15"
    assert driver.nvml_driver_version is None


def test_nvml_error_without_module_version(tmp_path):
    proc = write(tmp_path / "version", "something unexpected\n")  # exists, but unparsable
    driver, _gpus, unknowns = probe_nvidia(Root(None), nvml_env=fake(tmp_path, init_error=18), proc_version=proc)
    assert driver is None
    assert facts(unknowns) == ["driver", "gpus"]
    assert all("Driver/library version mismatch" in u.reason for u in unknowns)


def test_unlisted_nvml_error_code(tmp_path):
    answer, reason = run_nvml_child(env=fake(tmp_path, init_error=42))
    assert answer is None
    assert reason == "NVML error 42: Unknown Error"


def test_nvml_child_timeout(tmp_path):
    env = fake(tmp_path, init_sleep=60)
    start = time.monotonic()
    answer, reason = run_nvml_child(env=env, timeout=1)
    elapsed = time.monotonic() - start
    assert answer is None
    assert reason == "NVML did not answer within 1 s (driver hung?)"
    assert elapsed < 30  # the child would sleep 60 s: only the 1 s limit can end it this soon


def test_nvml_child_crash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # should the crash dump core anyway, not into the repository
    answer, reason = run_nvml_child(env=fake(tmp_path, abort=True))
    assert answer is None
    assert "signal 6" in reason
    assert reason.startswith("the NVML child process failed")


def test_pynvml_missing(tmp_path):
    # nvidia-ml-py is installed in the dev venv: shadow it with a module whose import fails, as a missing one does
    blocker = tmp_path / "blocker"
    write(blocker / "pynvml.py", "raise ImportError('No module named pynvml (test)')\n")
    answer, reason = run_nvml_child(env=nvml_env(str(blocker)))
    assert answer is None
    assert reason.startswith("the pynvml module (nvidia-ml-py) is not installed")
    assert "No module named pynvml (test)" in reason


def test_child_cannot_start(tmp_path):
    answer, reason = run_nvml_child(python=str(tmp_path / "no-python"))
    assert answer is None
    assert reason.startswith("cannot start the NVML child process")


def test_mig_not_supported_on_one_gpu(tmp_path, proc):
    _driver, gpus, unknowns = probe_nvidia(Root(None), nvml_env=fake(tmp_path, mig_unsupported=2), proc_version=proc)
    assert unknowns == []
    assert len(gpus) == 4
    assert [g.mig_mode for g in gpus] == [False, False, None, False]
    assert gpus[2].name == "NVIDIA H100 80GB HBM3"
    assert gpus[2].compute_capability == "9.0"
    assert gpus[2].pci_bus_id == "00000000:3A:00.0"


def test_one_lost_gpu_does_not_hide_the_others(tmp_path, proc, matrix):
    driver, gpus, _unknowns = probe_nvidia(
        Root(None), nvml_env=nvml_env(make_fake_nvml(tmp_path / "n", lost=2)), proc_version=proc
    )
    assert [g.index for g in gpus] == [0, 1, 3]
    assert driver.gpu_errors == ("GPU 2: NVML_ERROR_GPU_IS_LOST (Unknown Error)",)
    import dataclasses

    from envs import make_env, run_rule

    env = make_env("2.21.0", driver="550.54.15")
    env = dataclasses.replace(
        env,
        host=dataclasses.replace(env.host, driver=dataclasses.replace(env.host.driver, gpu_errors=driver.gpu_errors)),
    )
    (f,), _ = run_rule(env, matrix, "TFC209")
    assert "GPU 2: NVML_ERROR_GPU_IS_LOST" in f.message and "Xid 79" in f.remediation


@pytest.mark.skipif(not shutil.which("ldconfig"), reason="ldconfig builds the image's ld.so.cache")
def test_driver_libraries_follow_ld_so_cache_to_a_compat_dir(tmp_path):
    """A cuda-compat directory listed in ld.so.conf.d wins over the system libcuda, as the loader decides."""
    from elf_fixtures import write_so

    root = tmp_path / "img"
    sysdir, compat = root / "usr/lib/x86_64-linux-gnu", root / "usr/local/cuda-12.8/compat"
    for d in (sysdir, compat, root / "etc/ld.so.conf.d"):
        d.mkdir(parents=True)
    write_so(sysdir / "libcuda.so.535.104.05", soname="libcuda.so.1")
    os.symlink("libcuda.so.535.104.05", sysdir / "libcuda.so.1")
    write_so(compat / "libcuda.so.570.86.10", soname="libcuda.so.1")
    os.symlink("libcuda.so.570.86.10", compat / "libcuda.so.1")
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / "etc/ld.so.conf.d/000_cuda-compat.conf").write_text("/usr/local/cuda-12.8/compat\n")
    (root / "lib64").mkdir()
    ok = subprocess.run([shutil.which("ldconfig"), "-r", str(root)], capture_output=True)
    if ok.returncode != 0 or not (root / "etc/ld.so.cache").exists():
        pytest.skip(f"ldconfig -r failed here: {ok.stderr.decode()[-200:]}")
    from tfcompat.probes.nvidia import find_driver_libraries

    (lib,) = find_driver_libraries(Root(str(root)))
    assert lib.version == "570.86.10" and lib.forward_compat
    assert lib.shadowed == (str(sysdir / "libcuda.so.535.104.05"),)
