"""Boundary cases of the verdicts (issue #12, Deliver 6): each test sits exactly on a threshold and one step
below it, so flipping a comparison (< vs <=, >= vs >) or an off-by-one in a constant changes its outcome."""

import dataclasses

import pytest
from envs import SITE, make_env, run_rule, tf_build

from tfcompat.model import Gpu, LibraryCopy, LibraryResolution, NativeLibraries, Resources, Severity
from tfcompat.rules import evaluate
from tfcompat.rules.gpus import coverage

MiB, GiB = 1 << 20, 1 << 30
FW = f"{SITE}/tensorflow/libtensorflow_framework.so.2"


# -- TFC201: driver floors of TF 2.21 (CUDA 12.5.1): major floor 525.60.13, toolkit driver 555.42.06 -------------


@pytest.mark.parametrize(
    "driver, severity",
    [
        ("525.60.12", Severity.ERROR),  # one step below the CUDA 12 floor
        ("525.60.13", Severity.WARNING),  # exactly at the floor: runs under minor-version compatibility
        ("555.42.05", Severity.WARNING),  # one step below CUDA 12.5.1's own driver
        ("555.42.06", None),  # exactly the toolkit's driver: nothing to say
    ],
)
def test_driver_exactly_at_and_below_each_floor(matrix, driver, severity):
    findings, skips = run_rule(make_env("2.21.0", driver=driver), matrix, "TFC201")
    assert skips == []
    assert [f.severity for f in findings] == ([severity] if severity else [])


def test_driver_floor_of_a_cuda_11_build(matrix):
    # TF 2.14 (CUDA 11.8): 11.x floor 450.80.02, CUDA 11.8's driver 520.61.05
    got = {
        d: [f.severity for f in run_rule(make_env("2.14.0", driver=d), matrix, "TFC201")[0]]
        for d in ("450.80.01", "450.80.02", "520.61.04", "520.61.05")
    }
    assert got == {
        "450.80.01": [Severity.ERROR],
        "450.80.02": [Severity.WARNING],
        "520.61.04": [Severity.WARNING],
        "520.61.05": [],
    }


# -- TFC302: cuDNN of TF 2.21 is 9.3 (matrix); the runtime rule is same major, minor >= the build's ---------------


def _cudnn_env(version):
    return _one_library_env("cudnn", "libcudnn.so.9", "cudnn", "nvidia-cudnn-cu12", version)


@pytest.mark.parametrize(
    "version, bad",
    [
        ("9.2.1.18", True),  # one minor below the build's 9.3
        ("9.3.0.75", False),  # exactly the build's minor
        ("9.4.0.58", False),  # one minor above
        ("10.0.0.1", True),  # another major, although newer
        ("8.9.7.29", True),
    ],
)
def test_cudnn_one_minor_below_the_build(matrix, version, bad):
    findings, _ = run_rule(_cudnn_env(version), matrix, "TFC302")
    assert [f.severity for f in findings] == ([Severity.ERROR] if bad else [])
    if bad:
        assert version in findings[0].message


# -- TFC205 / TFC206: sm_XY is SASS only, compute_XY adds PTX --------------------------------------------------


@pytest.mark.parametrize(
    "cc, build, kind",
    [
        ((12, 0), ("sm_60", "sm_90"), "none"),  # sm_90 is SASS: no PTX a newer GPU could JIT
        ((12, 0), ("sm_60", "compute_90"), "ptx"),  # compute_90 carries PTX
        ((9, 0), ("compute_100",), "none"),  # PTX runs only on GPUs at least as new as it
        ((10, 0), ("compute_100",), "native"),  # compute_XY also carries SASS for XY
        ((8, 0), ("sm_86",), "none"),  # SASS runs on an equal or higher minor only
        ((8, 6), ("sm_80",), "native"),
        ((8, 6), ("sm_86",), "native"),
        ((9, 0), ("sm_80", "compute_80"), "ptx"),  # other major: SASS does not carry over
    ],
)
def test_sm_is_never_counted_as_ptx(cc, build, kind):
    assert coverage(cc, build).kind == kind


def _blackwell(i):
    return Gpu(
        i,
        "NVIDIA RTX PRO 6000 Blackwell Server Edition",
        f"GPU-b1ac-{i}",
        f"00000000:{0x18 + i:02X}:00.0",
        "12.0",
        97887,
        False,
        True,
    )


def test_sass_only_build_on_a_newer_gpu_is_unsupported_not_jit(matrix):
    build = dataclasses.replace(tf_build("2.21.0"), compute_capabilities=("sm_60", "sm_70", "sm_80", "sm_90"))
    env = make_env(tf_builds=[build], driver="580.95.05", gpus=[_blackwell(0)])
    assert run_rule(env, matrix, "TFC205")[0] == []
    (f,), _ = run_rule(env, matrix, "TFC206")
    assert f.severity is Severity.ERROR and "GPU 0" in f.message


def test_ptx_build_on_a_newer_gpu_is_jit_not_unsupported(matrix):
    env = make_env(tf_builds=[tf_build("2.21.0")], driver="580.95.05", gpus=[_blackwell(0)])
    assert run_rule(env, matrix, "TFC206")[0] == []
    (f,), _ = run_rule(env, matrix, "TFC205")
    assert f.severity is Severity.WARNING


# -- TFC801..TFC804: resource thresholds ------------------------------------------------------------------------


def _gpu(i, **kw):
    base = {
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": f"GPU-h100-{i}",
        "pci_bus_id": f"00000000:{0x18 + i:02X}:00.0",
        "compute_capability": "9.0",
        "memory_total_mib": 81559,
        "memory_used_mib": 4,
        "persistence_mode": True,
        "ecc_enabled": True,
        "ecc_uncorrected_volatile": 0,
        "retired_pages_pending": None,
        "remap_pending": False,
        "remap_failure": False,
    }
    base.update(kw)
    return Gpu(i, **base)


def _node(n_gpus, **res):
    base = {
        "shm_bytes": 16 * GiB,
        "shm_source": "/proc/mounts",
        "memlock_soft": None,
        "memlock_hard": None,
        "rlimit_source": "getrlimit",
        "cgroup_version": 2,
        "cgroup_memory_limit": None,
        "cgroup_source": "/sys/fs/cgroup",
    }
    base.update(res)
    env = make_env("2.21.0", driver="575.57.08", gpus=[_gpu(i) for i in range(n_gpus)])
    return dataclasses.replace(env, host=dataclasses.replace(env.host, resources=Resources(**base)))


@pytest.mark.parametrize(
    "n_gpus, shm, severity",
    [
        (2, 512 * MiB, Severity.ERROR),  # exactly two GPUs count as multi-GPU
        (2, 1 * GiB - 1, Severity.ERROR),
        (2, 1 * GiB, None),  # exactly the multi-GPU floor
        (1, 512 * MiB, None),  # one GPU: only the 256 MiB floor applies
        (1, 256 * MiB - 1, Severity.WARNING),
        (1, 256 * MiB, None),
        (0, 256 * MiB - 1, Severity.WARNING),
    ],
)
def test_shm_two_gpus_and_the_floors(matrix, n_gpus, shm, severity):
    findings, _ = run_rule(_node(n_gpus, shm_bytes=shm), matrix, "TFC801")
    assert [f.severity for f in findings] == ([severity] if severity else [])
    if severity is Severity.ERROR:
        assert f"{n_gpus} GPUs" in findings[0].message


@pytest.mark.parametrize("memlock, hit", [(64 * MiB - 1, True), (64 * MiB, False), (None, False)])
def test_memlock_floor(matrix, memlock, hit):
    findings, _ = run_rule(_node(1, memlock_soft=memlock, memlock_hard=memlock), matrix, "TFC802")
    assert bool(findings) is hit


@pytest.mark.parametrize(
    "limit, current, hits",
    [
        (16 * GiB - 1, None, 1),  # 2 GPUs x 8 GiB: one byte short
        (16 * GiB, None, 0),  # exactly the floor
        (100 * GiB, 90 * GiB, 1),  # exactly 90 % charged
        (100 * GiB, 90 * GiB - 1, 0),
    ],
)
def test_cgroup_floor_and_usage(matrix, limit, current, hits):
    findings, _ = run_rule(_node(2, cgroup_memory_limit=limit, cgroup_memory_current=current), matrix, "TFC803")
    assert len(findings) == hits


@pytest.mark.parametrize(
    "used, severity",
    [
        (1024, None),  # exactly the 1 GiB of driver reservations: idle
        (1025, Severity.WARNING),
        (81559 // 2, Severity.WARNING),  # just under half the GPU
        (81559 // 2 + 1, Severity.ERROR),  # half or more: TF's allocation will fail
    ],
)
def test_gpu_memory_in_use_thresholds(matrix, used, severity):
    env = _node(1)
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, gpus=(_gpu(0, memory_used_mib=used),)))
    findings, _ = run_rule(env, matrix, "TFC804")
    assert [f.severity for f in findings] == ([severity] if severity else [])


def test_h100_row_remap_pending_is_an_error_and_past_aggregate_errors_are_not(matrix):
    env = _node(2)
    gpus = (
        _gpu(0, ecc_uncorrected_volatile=0, ecc_uncorrected_aggregate=3),  # history, healed by a remap
        _gpu(1, ecc_uncorrected_volatile=0, remap_pending=True),
    )
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, gpus=gpus))
    (f,), _ = run_rule(env, matrix, "TFC805")
    assert "GPU 1" in f.message and "row remap pending" in f.message and "GPU 0" not in f.message
    assert "nvidia-smi -r -i 1" in f.remediation


def test_healthy_two_gpu_node_has_no_findings(matrix):
    assert evaluate(_node(2), matrix).findings == ()


def test_gpu_memory_exactly_half_is_an_error(matrix):
    env = _node(1)
    half = _gpu(0, memory_total_mib=81920, memory_used_mib=40960)
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, gpus=(half,)))
    (f,), _ = run_rule(env, matrix, "TFC804")
    assert f.severity is Severity.ERROR


@pytest.mark.parametrize("value, bad", [("0,2", True), ("0,1", False), ("1,0", False)])
def test_visible_device_index_equal_to_the_gpu_count_is_absent(matrix, value, bad):
    findings, _ = run_rule(_node(2, cuda_visible_devices=value), matrix, "TFC807")
    assert bool(findings) is bad
    if bad:
        assert "'2' is not a GPU on this node" in findings[0].message


@pytest.mark.parametrize("shm, hit", [(1 * GiB - 1, True), (1 * GiB, False)])
def test_shm_with_uncounted_gpus_uses_the_multi_gpu_floor(matrix, shm, hit):
    from tfcompat.model import Unknown

    env = _node(0, shm_bytes=shm)
    env = dataclasses.replace(env, unknowns=(*env.unknowns, Unknown("gpus", "NVML not queried (--no-nvml)")))
    findings, _ = run_rule(env, matrix, "TFC801")
    assert [f.severity for f in findings] == ([Severity.WARNING] if hit else [])
    if hit:
        assert "GPU count is unknown" in findings[0].message


def test_cgroup_floor_for_one_gpu_is_singular(matrix):
    (f,), _ = run_rule(_node(1, cgroup_memory_limit=8 * GiB - 1), matrix, "TFC803")
    assert " for 1 GPU (floor 8 GiB per GPU)" in f.message


def _one_library_env(name, soname, pkg, dist, version):
    path = f"{SITE}/nvidia/{pkg}/lib/{soname}"
    found = LibraryCopy(
        path,
        path,
        "DT_RUNPATH",
        f"$ORIGIN/../nvidia/{pkg}/lib",
        FW,
        version,
        f"{SITE}/{dist.replace('-', '_')}-{version}.dist-info/METADATA",
        dist,
    )
    lib = LibraryResolution(name, soname, "gpu", name, FW, found, (), (), ())
    native = NativeLibraries(
        FW,
        "defines tsl::internal::LoadDynamicLibrary",
        "/venv/bin/python",
        None,
        (),
        "/etc/ld.so.cache (new format, 10 entries)",
        None,
        (),
        (),
        (lib,),
        (),
        ("avx",),
        "TensorFlow 1.6.0 release notes",
    )
    return make_env(native=native)


@pytest.mark.parametrize("version, bad", [("9.2", True), ("9.3", False)])
def test_two_part_cudnn_version_is_judged_on_its_minor(matrix, version, bad):
    env = _one_library_env("cudnn", "libcudnn.so.9", "cudnn", "nvidia-cudnn-cu12", version)
    assert bool(run_rule(env, matrix, "TFC302")[0]) is bad


@pytest.mark.parametrize(
    "version, severity",
    [
        ("12.4", Severity.WARNING),
        ("12.5", None),
        ("12.5.82", None),
        ("12.4.127", Severity.WARNING),
        ("11.8.89", Severity.ERROR),
    ],
)
def test_cuda_runtime_one_minor_below_the_build(matrix, version, severity):
    env = _one_library_env("cudart", "libcudart.so.12", "cuda_runtime", "nvidia-cuda-runtime-cu12", version)
    findings, _ = run_rule(env, matrix, "TFC303")
    assert [f.severity for f in findings] == ([severity] if severity else [])
