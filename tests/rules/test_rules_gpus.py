import dataclasses

import pytest
from envs import make_env, run_rule, tf_build

from tfcompat.matrix.arch import coverage, parse_arch
from tfcompat.model import Gpu, Severity
from tfcompat.rules import evaluate

TF221 = ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")


def h100(i):
    return Gpu(
        i,
        "NVIDIA H100 80GB HBM3",
        f"GPU-5a4b3c2d-0000-0000-0000-00000000000{i}",
        f"00000000:{0x18 + i:02X}:00.0",
        "9.0",
        81559,
        False,
        True,
    )


def blackwell(i):
    return Gpu(
        i,
        "NVIDIA RTX PRO 6000 Blackwell Server Edition",
        f"GPU-b1ac0000-0000-0000-0000-00000000000{i}",
        f"00000000:{0x18 + i:02X}:00.0",
        "12.0",
        97887,
        False,
        True,
    )


@pytest.mark.parametrize(
    "cc, kind, via",
    [
        ((9, 0), "native", "sm_90"),  # compute_90 also carries SASS sm_90
        ((8, 6), "native", "sm_80"),  # SASS runs on the same major, higher minor
        ((8, 9), "native", "sm_89"),
        ((7, 5), "native", "sm_70"),
        ((12, 0), "ptx", "compute_90"),  # Blackwell: only the PTX
        ((10, 0), "ptx", "compute_90"),
        ((5, 2), "none", None),  # Maxwell on TF >= 2.17
        ((3, 7), "none", None),
    ],
)
def test_coverage_221(cc, kind, via):
    assert coverage(cc, TF221) == type(coverage(cc, TF221))(kind, via)


def test_coverage_older_builds():
    tf214 = ("sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80")
    assert coverage((9, 0), tf214).kind == "ptx" and coverage((9, 0), tf214).via == "compute_80"
    assert coverage((3, 7), tf214).kind == "native"
    assert coverage((3, 0), tf214).kind == "none"


def test_parse_arch():
    assert parse_arch("sm_120") == ("sm", 12, 0)
    assert parse_arch("compute_90") == ("compute", 9, 0)
    assert parse_arch("sm_90a") == ("sm", 9, 0)
    assert parse_arch("gfx90a") is None


def test_four_gpu_node_old_driver_and_a_blackwell(matrix):
    """The issue's scenario: TF 2.18, driver 535 (CUDA 12.2's), three H100 and one compute capability 12.0."""
    env = make_env(tf_builds=[tf_build("2.21.0")], driver="535.104.05", gpus=[h100(0), h100(1), h100(2), blackwell(3)])
    env = dataclasses.replace(
        env,
        target=dataclasses.replace(
            env.target, tensorflow=(dataclasses.replace(env.target.tensorflow[0], version="2.18.0"),)
        ),
    )
    report = evaluate(env, matrix)
    got = [(f.rule, f.severity) for f in report.findings]
    assert got == [("TFC205", Severity.ERROR), ("TFC201", Severity.WARNING), ("TFC207", Severity.INFO)], got
    jit, drv, mixed = report.findings
    # the Blackwell GPU is named by index and UUID, and the reason is the driver, not only the JIT
    assert (
        "GPU 3 (NVIDIA RTX PRO 6000 Blackwell Server Edition, GPU-b1ac0000-0000-0000-0000-000000000003)" in jit.message
    )
    # the driver must know both the PTX's toolkit (CUDA 12.5.1: 555.42.06) and Blackwell (CUDA 12.8: 570.26)
    assert "535.104.05" in jit.message and "570.26" in jit.message and "compute_90" in jit.message
    assert "CUDA 12.8, the first with compute capability 12.0 (Blackwell)" in jit.message
    assert {e.value for e in jit.evidence} >= {"555.42.06", "570.26", "535.104.05"}
    assert jit.remediation.startswith("Upgrade the NVIDIA driver to >= 570.26")
    assert "555.42.06" in drv.message and "12.5.1" in drv.message
    assert "GPU 0, 1, 2" in mixed.message and "GPU 3" in mixed.message
    assert report.exit_code == 1
    # the H100s are fine: no finding names them
    assert not any("GPU 0 (" in f.message for f in report.findings)


def test_ptx_only_with_new_driver_is_a_warning(matrix):
    env = make_env("2.21.0", driver="575.57.08", gpus=[blackwell(0)])
    (f,), _ = run_rule(env, matrix, "TFC205")
    assert f.severity is Severity.WARNING and "first use" in f.message and "CUDA_CACHE_MAXSIZE" in f.remediation


def test_maxwell_on_221_is_an_error_with_the_others_suggested(matrix):
    maxwell = Gpu(1, "Tesla M60", "GPU-m60", "00000000:3B:00.0", "5.2")
    env = make_env("2.21.0", driver="575.57.08", gpus=[h100(0), maxwell])
    (f,), _ = run_rule(env, matrix, "TFC206")
    assert "GPU 1 (Tesla M60, GPU-m60)" in f.message and "no kernel image" in f.message
    # by UUID: CUDA's default device order is not NVML's
    assert "CUDA_VISIBLE_DEVICES=GPU-5a4b3c2d-0000-0000-0000-000000000000" in f.remediation
    assert run_rule(env, matrix, "TFC205")[0] == []


def test_gpu_rules_not_applicable_to_cpu_builds(matrix):
    env = make_env(
        tf_builds=[tf_build("2.21.0", distribution="tensorflow-cpu", is_cuda=False)],
        driver="575.57.08",
        gpus=[blackwell(0)],
    )
    findings, (skip,) = run_rule(env, matrix, "TFC205")
    assert findings == [] and "not a CUDA build" in skip.reason


def test_uniform_node_is_not_mixed(matrix):
    assert run_rule(make_env("2.21.0", driver="575.57.08", gpus=[h100(0), h100(1)]), matrix, "TFC207")[0] == []


def test_no_gpus_recorded_skips(matrix):
    findings, (skip,) = run_rule(make_env("2.21.0", driver="575.57.08"), matrix, "TFC206")
    assert findings == [] and skip.reason == "gpus unknown: not collected"


def _with_cudnn(env, version):
    from tfcompat.model import LibraryCopy, LibraryResolution, NativeLibraries

    lib = LibraryResolution(
        "cudnn",
        "libcudnn.so.9",
        "gpu",
        "DNN",
        None,
        LibraryCopy(
            "/v/nvidia/cudnn/lib/libcudnn.so.9",
            "/v/nvidia/cudnn/lib/libcudnn.so.9",
            "DT_RUNPATH",
            "$ORIGIN/../nvidia/cudnn/lib",
            None,
            version,
            "nvidia-cudnn-cu12 METADATA",
            "nvidia-cudnn-cu12",
        ),
    )
    return dataclasses.replace(
        env,
        target=dataclasses.replace(
            env.target, native=NativeLibraries("/v/tensorflow/libtensorflow_framework.so.2", "test", libraries=(lib,))
        ),
    )


def test_new_cudnn_drops_pascal(matrix):
    p100 = Gpu(0, "Tesla P100-PCIE-16GB", "GPU-p100", "00000000:04:00.0", "6.0")
    env = _with_cudnn(make_env("2.21.0", driver="575.57.08", gpus=[p100, h100(1)]), "9.17.0.29")
    (f,), _ = run_rule(env, matrix, "TFC208")
    assert "GPU 0 (Tesla P100-PCIE-16GB, GPU-p100)" in f.message and "cuDNN 9.17.0.29" in f.message
    # 9.28 (the >=9.17.1,<9.29 row, read from the wheels' binaries) has no Pascal either: an error
    env = _with_cudnn(make_env("2.21.0", driver="575.57.08", gpus=[p100]), "9.28.0.42")
    (f,), _ = run_rule(env, matrix, "TFC208")
    assert "cuDNN 9.28.0.42" in f.message and "no longer lists" in f.message
    assert f.severity == Severity.ERROR
    # 9.29 has no row of its minor: unknown for this release (a warning: 9.17.1-9.28, an older release,
    # already lacks Pascal), not the older row's verdict
    env = _with_cudnn(make_env("2.21.0", driver="575.57.08", gpus=[p100]), "9.29.0.1")
    (f,), _ = run_rule(env, matrix, "TFC208")
    assert "an older release" in f.message and "unknown for this release" in f.message
    assert f.severity == Severity.WARNING


def test_cudnn_93_still_supports_pascal(matrix):
    p100 = Gpu(0, "Tesla P100-PCIE-16GB", "GPU-p100", "00000000:04:00.0", "6.0")
    env = _with_cudnn(make_env("2.21.0", driver="575.57.08", gpus=[p100]), "9.3.0.75")
    assert run_rule(env, matrix, "TFC208")[0] == []


def test_cudnn_rule_without_native_model(matrix):
    findings, (skip,) = run_rule(make_env("2.21.0", driver="575.57.08", gpus=[h100(0)]), matrix, "TFC208")
    assert findings == [] and "cuDNN" in skip.reason
