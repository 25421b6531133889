"""Forward compatibility in depth (issue 14): a cuda-compat libcuda on which GPUs (TFC204), on which
kernel-module branch (TFC212), and whether the node needs it at all (TFC211). The facts are NVIDIA's
forward-compatibility table ([[forward_compat_package]]) and its architecture matrix ([[driver_gpu_support]])."""

import dataclasses
import os
import shutil
import subprocess

import pytest
from envs import make_env, run_rule

from tfcompat.matrix import parse_matrix
from tfcompat.matrix.fields import MatrixError
from tfcompat.matrix.forward_compat import compat_package_of
from tfcompat.model import DriverLibrary, Gpu, Severity

H100 = Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-h", "00000000:18:00.0", "9.0")
A100 = Gpu(0, "NVIDIA A100-SXM4-80GB", "GPU-a", "00000000:07:00.0", "8.0")
K80 = Gpu(0, "Tesla K80", "GPU-k80", "00000000:04:00.0", "3.7")
V100 = Gpu(0, "Tesla V100-SXM2-32GB", "GPU-v", "00000000:06:00.0", "7.0")


def compat(version, cuda="12.8"):
    return DriverLibrary("libcuda.so.1", f"/usr/local/cuda-{cuda}/compat/libcuda.so.{version}", version, True)


def node(tf="2.21.0", kernel="535.216.03", gpus=(H100,), libcuda=None):
    env = make_env(tf, driver=kernel, gpus=list(gpus))
    libs = (libcuda,) if libcuda is not None else ()
    return dataclasses.replace(
        env, host=dataclasses.replace(env.host, driver=dataclasses.replace(env.host.driver, libraries=libs))
    )


# -- the matrix facts


def test_the_table_reads_as_nvidia_states_it(matrix):
    """NVIDIA's table (forward-compatibility.html): cuda-compat-12-8 "C" on 535, "N/A" on 570, "X" on 580+;
    cuda-compat-13-0 "C" on 535 and 570."""
    p128 = compat_package_of(matrix.forward_compat_packages, "570.86.10")
    assert p128 is not None and p128.package == "cuda-compat-12-8" and p128.compatible == (535,)
    p130 = compat_package_of(matrix.forward_compat_packages, "580.65.06")
    assert p130 is not None and p130.compatible == (535, 570)
    assert compat_package_of(matrix.forward_compat_packages, "470.82.01") is None  # cuda-compat-11-x: not listed
    assert {r.architecture: r.last_branch for r in matrix.driver_gpu_support if r.confirmed} == {
        "Kepler": 470,
        "Maxwell": 580,
        "Pascal": 580,
        "Volta": 580,
    }
    assert all(p.source and p.checked for p in matrix.forward_compat_packages)


@pytest.mark.parametrize(
    "row, error",
    [
        ('package = "cuda-compat-12-9"\ncuda = "12.8"\nbranch = 570\ncompatible = [535]', "is not the package"),
        ('package = "cuda-compat-12-8"\ncuda = "12.8"\nbranch = 570\ncompatible = [580]', "at or above"),
        ('package = "cuda-compat-12-8"\ncuda = "12.8"\nbranch = 570\ncompatible = ["535"]', "positive integers"),
    ],
)
def test_malformed_rows_are_errors(row, error):
    text = f'[meta]\nschema = 1\nupdated = "2026-12-07"\n\n[[forward_compat_package]]\n{row}\nsource = "x"\nchecked = "2026-12-07"\n'
    with pytest.raises(MatrixError, match=error):
        parse_matrix(text, "m.toml")


# -- TFC204: the GPUs


def test_forward_compat_on_a_geforce_fails_with_804(matrix):
    """SYSTRAN/faster-whisper#653 (https://github.com/SYSTRAN/faster-whisper/issues/653): "CUDA failed with
    error forward compatibility was attempted on non supported HW" on a 2080 Ti whose nvidia-smi shows driver
    470.57.02 and "CUDA Version: 12.1": a cuda-compat-12-1 libcuda (530.30.02) on a GeForce."""
    rtx = Gpu(0, "NVIDIA GeForce RTX 2080 Ti", "GPU-2080", "00000000:01:00.0", "7.5")
    env = node("2.15.1", kernel="470.57.02", gpus=[rtx], libcuda=compat("530.30.02", "12.1"))
    (f,), _ = run_rule(env, matrix, "TFC204")
    assert "GeForce RTX 2080 Ti" in f.message and "804" in f.message and f.severity is Severity.ERROR


def test_forward_compat_past_the_last_driver_of_kepler(matrix):
    """NVIDIA's architecture matrix: R470 is the last driver for Kepler 3.5/3.7; a cuda-compat-12-2 libcuda
    (R535) on a Tesla K80 with its R470 kernel module cannot drive it."""
    env = node("2.15.1", kernel="470.256.02", gpus=[K80], libcuda=compat("535.54.03", "12.2"))
    (f,), _ = run_rule(env, matrix, "TFC204")
    assert "R535" in f.message and "Kepler" in f.message and "last driver R470" in f.message
    assert any(e.value == "R470" and "architecture-matrix" in e.source for e in f.evidence)


def test_volta_boundary_at_r580(matrix):
    """Volta's last driver is R580: cuda-compat-13-0 (R580) still drives a V100 on R535, cuda-compat-13-1
    (R590) does not."""
    assert (
        run_rule(node(kernel="535.216.03", gpus=[V100], libcuda=compat("580.65.06", "13.0")), matrix, "TFC204")[0] == []
    )
    (f,), _ = run_rule(node(kernel="535.216.03", gpus=[V100], libcuda=compat("590.44.01", "13.1")), matrix, "TFC204")
    assert "Volta" in f.message and "R590" in f.message


def test_data_center_gpu_of_a_supported_architecture_is_fine(matrix):
    assert (
        run_rule(node(kernel="535.216.03", gpus=[H100, A100], libcuda=compat("570.86.10")), matrix, "TFC204")[0] == []
    )


def test_no_compat_libcuda_no_finding(matrix):
    libcuda = DriverLibrary("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.535.216.03", "535.216.03")
    env = node(kernel="535.216.03", gpus=[K80], libcuda=libcuda)
    for rid in ("TFC204", "TFC211", "TFC212"):
        assert run_rule(env, matrix, rid)[0] == []


# -- TFC212: the kernel-module branch


def test_compat_older_than_the_host_driver_fails_with_803(matrix):
    """NVIDIA/nvidia-docker#1256 (https://github.com/NVIDIA/nvidia-docker/issues/1256): "system has unsupported
    display driver / cuda driver combination" in an image that ships its own libcuda (CUDA 11.2 era, R460) on a
    host with driver 510.108.03; removing the image's libcuda.so fixed it."""
    env = node("2.15.1", kernel="510.108.03", libcuda=compat("460.106.00", "11.2"))
    (f,), _ = run_rule(env, matrix, "TFC212")
    assert f.severity is Severity.ERROR and "803" in f.message
    assert "510.108.03" in f.message and "460.106.00" in f.message and "/usr/local/cuda-11.2/compat" in f.remediation


def test_compat_one_branch_behind_is_an_error(matrix):
    """NVIDIA's table: cuda-compat-12-9 (R575) is "X" on 580: the host was upgraded past the package."""
    (f,), _ = run_rule(node(kernel="580.95.05", libcuda=compat("575.57.08", "12.9")), matrix, "TFC212")
    assert f.severity is Severity.ERROR and "cuda-compat-12-9" in f.message


@pytest.mark.parametrize(
    "kernel, libcuda, cuda",
    [
        ("535.216.03", "570.86.10", "12.8"),  # "C"
        ("570.124.06", "575.57.08", "12.9"),  # "C"
        ("535.54.03", "615.31", "13.4"),  # "C": the oldest listed branch, the newest package
        ("570.124.06", "570.172.08", "12.8"),  # the package's own branch: "N/A"
    ],
)
def test_supported_branches_are_healthy(matrix, kernel, libcuda, cuda):
    assert run_rule(node(kernel=kernel, libcuda=compat(libcuda, cuda)), matrix, "TFC212")[0] == []


def test_end_of_life_branch_is_not_a_supported_target(matrix):
    """NVIDIA: "Branches not listed in the table above are end of life and are not supported targets":
    cuda-compat-12-8 lists only R535; R550 (end of life) is not one of them."""
    (f,), _ = run_rule(node(kernel="550.144.03", libcuda=compat("570.86.10")), matrix, "TFC212")
    assert f.severity is Severity.WARNING and "R535" in f.message and "R550" in f.message


def test_end_of_life_branch_is_named(matrix):
    """cuda-compat-13-0 lists R535 and R570; an R450 kernel module is neither: the message names the branch's
    end of life where the matrix has it ([[driver_branch]]: R450, July 2023)."""
    (f,), _ = run_rule(node(kernel="450.248.02", libcuda=compat("580.65.06", "13.0")), matrix, "TFC212")
    assert "R450" in f.message and "end of life 2023-07" in f.message


def test_package_the_table_does_not_list_is_skipped(matrix):
    findings, (skip,) = run_rule(node(kernel="450.248.02", libcuda=compat("470.82.01", "11.4")), matrix, "TFC212")
    assert findings == [] and "R470" in skip.reason


# -- TFC211: the host driver alone meets TF's need


def test_host_driver_already_meets_tf_need(matrix):
    """NVIDIA's guide ("Use the Right CUDA Forward Compatibility Package"): "When performing a full system
    upgrade ... remove any forward compatible packages": TF 2.21 (CUDA 12.5.1, driver 555.42.06) on an R570 node
    with a cuda-compat-12-9 libcuda left in the image."""
    env = node("2.21.0", kernel="570.124.06", libcuda=compat("575.57.08", "12.9"))
    (f,), _ = run_rule(env, matrix, "TFC211")
    assert f.severity is Severity.INFO and "555.42.06" in f.message and "unnecessary" in f.message
    assert "R575" in f.message and run_rule(env, matrix, "TFC212")[0] == []


def test_host_driver_below_the_toolkit_driver_needs_the_package(matrix):
    """R535 is below CUDA 12.5.1's 555.42.06: the package is what gives TF 2.21 every feature (PTX JIT)."""
    env = node("2.21.0", kernel="535.216.03", libcuda=compat("570.86.10"))
    assert run_rule(env, matrix, "TFC211")[0] == []


def test_boundary_exactly_the_toolkit_driver(matrix):
    env = node("2.21.0", kernel="555.42.06", libcuda=compat("570.86.10"))
    (f,), _ = run_rule(env, matrix, "TFC211")
    assert "555.42.06" in f.message
    env = node("2.21.0", kernel="555.42.02", libcuda=compat("570.86.10"))
    assert run_rule(env, matrix, "TFC211")[0] == []


def test_compat_older_than_kernel_is_tfc212s_not_tfc211s(matrix):
    env = node("2.21.0", kernel="580.95.05", libcuda=compat("575.57.08", "12.9"))
    assert run_rule(env, matrix, "TFC211")[0] == []
    assert len(run_rule(env, matrix, "TFC212")[0]) == 1


@pytest.mark.skipif(not shutil.which("ldconfig"), reason="ldconfig builds the image's ld.so.cache")
def test_image_with_cuda_compat_on_a_newer_node_end_to_end(tmp_path, matrix):
    """An image that ships cuda-compat-12-8 in ld.so.conf.d (NGC-style), checked with the node's kernel module
    580.95.05: the probe finds the compat libcuda through the image's ld.so.cache (real ELF files), and TFC212
    reports error 803 (NVIDIA's table: cuda-compat-12-8 is "X" on 580)."""
    from elf_fixtures import write_so

    from tfcompat.probes.nvidia import probe_nvidia
    from tfcompat.probes.rootfs import Root

    root = tmp_path / "img"
    sysdir, compat_dir = root / "usr/lib/x86_64-linux-gnu", root / "usr/local/cuda-12.8/compat"
    for d in (sysdir, compat_dir, root / "etc/ld.so.conf.d", root / "proc/driver/nvidia", root / "lib64"):
        d.mkdir(parents=True)
    write_so(compat_dir / "libcuda.so.570.86.10", soname="libcuda.so.1")
    os.symlink("libcuda.so.570.86.10", compat_dir / "libcuda.so.1")
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / "etc/ld.so.conf.d/000_cuda-compat.conf").write_text("/usr/local/cuda-12.8/compat\n")
    (root / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build\n"
    )
    ok = subprocess.run([shutil.which("ldconfig"), "-r", str(root)], capture_output=True)
    if ok.returncode != 0 or not (root / "etc/ld.so.cache").exists():
        pytest.skip(f"ldconfig -r failed here: {ok.stderr.decode()[-200:]}")
    driver, _, _ = probe_nvidia(Root(str(root)), nvml=False, driver_sonames=["libcuda.so.1"])
    assert driver is not None and driver.kernel_module_version == "580.95.05"
    env = make_env("2.21.0", driver="580.95.05", gpus=[H100])
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, driver=driver))
    (f,), _ = run_rule(env, matrix, "TFC212")
    assert "cuda-compat-12-8" in f.message and "803" in f.message and str(compat_dir) in f.message


# -- skips, boundaries and the facts a message or evidence names (mutation run, 2026-12-07) ---------------------


def _with_build(env, **build):
    tf = dataclasses.replace(env.target.tensorflow[0], **build)
    return dataclasses.replace(env, target=dataclasses.replace(env.target, tensorflow=(tf,)))


def test_compat_of_the_kernel_modules_own_version_is_not_in_effect(matrix):
    """A cuda-compat libcuda of exactly the kernel module's version (an image built on the same driver) changes
    nothing: TFC211 stays quiet at that boundary and speaks one patch release later."""
    env = node("2.21.0", kernel="570.86.10", libcuda=compat("570.86.10"))
    assert run_rule(env, matrix, "TFC211") == ([], [])
    (f,), _ = run_rule(node("2.21.0", kernel="570.86.10", libcuda=compat("570.86.15")), matrix, "TFC211")
    assert "570.86.10 already meets 555.42.06" in f.message


def test_compat_libcuda_of_unknown_version(matrix):
    """A cuda-compat directory whose libcuda.so.1 has no versioned file name (copied in as libcuda.so.1 only), on
    a GPU whose name NVML did not give: TFC204 names it with "?" and judges no branch; TFC211 and TFC212 say the
    version is unknown instead of comparing nothing."""
    lib = DriverLibrary("libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.1", None, True)
    nameless = Gpu(0, None, None, "00000000:04:00.0", "3.7")  # a Kepler: a branch judgement would drop it
    env = node("2.21.0", kernel="470.256.02", gpus=[nameless], libcuda=lib)
    assert run_rule(env, matrix, "TFC204") == ([], [])
    for rid in ("TFC211", "TFC212"):
        findings, (skip,) = run_rule(env, matrix, rid)
        assert findings == [] and "version is unknown" in skip.reason, rid
    # and with a GeForce: the message and evidence say "?" for the unknown version
    rtx = Gpu(0, "NVIDIA GeForce RTX 3090", "GPU-3090", "00000000:01:00.0", "8.6")
    (f,), _ = run_rule(node("2.21.0", kernel="470.256.02", gpus=[rtx], libcuda=lib), matrix, "TFC204")
    assert "(/usr/local/cuda/compat/libcuda.so.1, ?)" in f.message
    assert ("libcuda.so.1 (cuda-compat)", "?") in [(e.fact, e.value) for e in f.evidence]


def test_nameless_gpus_are_named_with_a_question_mark(matrix):
    """NVML gave no name: TFC204's branch verdict on a K80-class GPU (R470 is Kepler's last) still names it."""
    kepler = Gpu(0, None, "GPU-k", "00000000:04:00.0", "3.7")
    (f,), _ = run_rule(
        node("2.15.1", kernel="470.256.02", gpus=[kepler], libcuda=compat("535.54.03", "12.2")), matrix, "TFC204"
    )
    assert "GPU 0 ? (Kepler, compute capability 3.7, last driver R470)" in f.message


def test_kernel_version_source_is_the_proc_file_or_nvml(matrix):
    """TFC212's evidence says where the kernel module's version came from: /proc/driver/nvidia/version when the
    probe read it (no source recorded: that file), else NVML's nvmlSystemGetDriverVersion."""
    env = node("2.15.1", kernel="510.108.03", libcuda=compat("460.106.00", "11.2"))
    d = dataclasses.replace(env.host.driver, kernel_module_source=None)
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, driver=d))
    (f,), _ = run_rule(env, matrix, "TFC212")
    assert ("driver.kernel_module_version", "/proc/driver/nvidia/version") in [(e.fact, e.source) for e in f.evidence]


def test_tfc211_skips(matrix):
    """TFC211 judges a CUDA build whose CUDA and its driver are known; otherwise it says why it cannot."""
    env = node("2.21.0", kernel="570.124.06", libcuda=compat("575.57.08", "12.9"))
    findings, (skip,) = run_rule(_with_build(env, is_cuda_build=False), matrix, "TFC211")
    assert findings == [] and "is not a CUDA build" in skip.reason
    # a development build the matrix does not list, whose build_info.py states no CUDA
    dev = _with_build(env, version="2.22.0.dev20251201", cuda_version=None)
    findings, (skip,) = run_rule(dev, matrix, "TFC211")
    assert findings == [] and "CUDA version of tensorflow 2.22.0.dev20251201 is unknown" in skip.reason
    # a source build against CUDA 7.5, older than the matrix's driver table
    old = _with_build(env, version="1.2.1", cuda_version="7.5")
    findings, (skip,) = run_rule(old, matrix, "TFC211")
    assert findings == [] and "no driver facts for CUDA 7.5" in skip.reason


def test_tfc211_evidence_names_the_toolkit_driver_source(matrix):
    env = node("2.21.0", kernel="570.124.06", libcuda=compat("575.57.08", "12.9"))
    (f,), _ = run_rule(env, matrix, "TFC211")
    ev = next(e for e in f.evidence if e.fact == "CUDA 12.5.1 driver")
    assert ev.value == "555.42.06" and ev.source == matrix.driver_need("12.5.1").sources[0]


def test_a_new_feature_branch_is_named_as_such(matrix):
    """R440 is a New Feature Branch (and end of life): cuda-compat-12-2 supports no other branch, so TFC212 warns
    and says the branch is a New Feature Branch (NVIDIA: those are not supported forward-compatibility targets)."""
    (f,), _ = run_rule(node(kernel="440.33.01", libcuda=compat("535.54.03", "12.2")), matrix, "TFC212")
    assert f.severity is Severity.WARNING
    assert "(R440 is a New Feature Branch)" in f.message and "none but its own" in f.message
