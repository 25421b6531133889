import dataclasses

from envs import make_env, run_rule

from tfcompat.model import DriverLibrary, Gpu, Severity


def with_driver(env, **changes):
    return dataclasses.replace(
        env, host=dataclasses.replace(env.host, driver=dataclasses.replace(env.host.driver, **changes))
    )


LIBCUDA_550 = DriverLibrary("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15", "550.54.15")
LIBCUDA_560 = DriverLibrary("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.560.35.03", "560.35.03")
COMPAT_570 = DriverLibrary("libcuda.so.1", "/usr/local/cuda-12.8/compat/libcuda.so.570.86.10", "570.86.10", True)


def test_kernel_and_userspace_agree(matrix):
    env = with_driver(make_env("2.21.0", driver="550.54.15"), libraries=(LIBCUDA_550,))
    assert run_rule(env, matrix, "TFC203")[0] == []


def test_upgraded_without_reboot(matrix):
    env = with_driver(make_env("2.21.0", driver="550.54.15"), libraries=(LIBCUDA_560,))
    (f,), _ = run_rule(env, matrix, "TFC203")
    assert "560.35.03" in f.message and "550.54.15" in f.message and "Reboot" in f.remediation


def test_nvml_mismatch_error_is_reported(matrix):
    env = with_driver(make_env("2.21.0", driver="550.54.15"), nvml_error="NVML_ERROR_LIB_RM_VERSION_MISMATCH")
    (f,), _ = run_rule(env, matrix, "TFC203")
    assert "driver/library version mismatch" in f.message and f.severity is Severity.ERROR


def test_compat_libcuda_is_not_a_mismatch_but_needs_datacenter_gpu(matrix):
    geforce = Gpu(0, "NVIDIA GeForce RTX 4090", "GPU-4090", "00000000:01:00.0", "8.9")
    env = with_driver(make_env("2.21.0", driver="550.54.15", gpus=[geforce]), libraries=(COMPAT_570,))
    assert run_rule(env, matrix, "TFC203")[0] == []
    (f,), _ = run_rule(env, matrix, "TFC204")
    assert "GPU 0 NVIDIA GeForce RTX 4090 (GPU-4090)" in f.message and "804" in f.message


def test_compat_libcuda_on_h100_is_fine(matrix):
    h100 = Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-h", "00000000:18:00.0", "9.0")
    env = with_driver(make_env("2.21.0", driver="550.54.15", gpus=[h100]), libraries=(COMPAT_570,))
    assert run_rule(env, matrix, "TFC204")[0] == []


def test_forward_compat_libcuda_satisfies_the_build(matrix):
    h100 = Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-h", "00000000:18:00.0", "9.0")
    env = with_driver(make_env("2.21.0", driver="470.82.01", gpus=[h100]), libraries=(COMPAT_570,))
    assert run_rule(env, matrix, "TFC201")[0] == []
    # without it the 470 kernel driver is below the CUDA 12 floor
    env = with_driver(make_env("2.21.0", driver="470.82.01", gpus=[h100]), libraries=(LIBCUDA_550,))
    (f,), _ = run_rule(env, matrix, "TFC201")
    assert f.severity is Severity.ERROR and "470.82.01" in f.message


def test_arm64_image_driver_libraries_reach_the_rules(tmp_path, matrix):
    """Grace Hopper (aarch64): the user-space driver found through the image's own ld.so.cache is judged
    against its kernel module, as on x86-64."""
    from test_scan import make_arm64_image

    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    root = tmp_path / "img"
    make_arm64_image(root)
    (root / "proc/driver/nvidia").mkdir(parents=True)
    (root / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  550.54.15  Release Build\n"
    )
    env = scan(TargetSpec(root=str(root), python="/usr/bin/python3.11"), nvml=False)
    assert [lib.version for lib in env.host.driver.libraries] == ["560.35.03", "560.35.03"]
    findings, _ = run_rule(env, matrix, "TFC203")  # one per library: libcuda.so.1, libnvidia-ml.so.1
    assert [f.message.split(" ")[0] for f in findings] == ["libcuda.so.1", "libnvidia-ml.so.1"]
    assert all("560.35.03" in f.message and "550.54.15" in f.message for f in findings)
