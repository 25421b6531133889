"""Tests written to kill mutants that survived scripts/mutate.py over src/tfcompat/rules/ (issue #12, Deliver 6):
each pins down a branch or a comparison no other test decided (the wording that says which driver floor applies,
the skip reasons, the driver a GPU needs to JIT-compile PTX, the suggestion to hide an unsupported GPU)."""

import dataclasses

import pytest
from envs import make_env, run_rule, tf_build

from tfcompat.model import Gpu, Severity


def _gpu(i, cc="9.0", name="NVIDIA H100 80GB HBM3"):
    return Gpu(i, name, f"GPU-{i:04d}", f"00000000:{0x18 + i:02X}:00.0", cc, 81559, False, True)


def _with_tf(env, **changes):
    tf = dataclasses.replace(env.target.tensorflow[0], **changes)
    return dataclasses.replace(env, target=dataclasses.replace(env.target, tensorflow=(tf,)))


# -- TFC201: which floor, in words ------------------------------------------------------------------------


def test_below_the_cuda_12_floor_names_minor_version_compatibility(matrix):
    (f,), _ = run_rule(make_env("2.21.0", driver="525.60.12"), matrix, "TFC201")
    assert "the minimum for any CUDA 12 application" in f.message
    facts = {e.fact: (e.value, e.source) for e in f.evidence}
    assert facts["CUDA 12.x minimum driver"][0] == "525.60.13"
    assert facts["CUDA 12.x minimum driver"][1].startswith("https://")


def test_a_cuda_10_build_has_no_minor_version_compatibility(matrix):
    env = _with_tf(make_env(tf_builds=[tf_build("2.21.0", cuda="10.1")], driver="410.48"), version="2.1.0")
    (f,), _ = run_rule(env, matrix, "TFC201")
    assert f.severity is Severity.ERROR
    assert "no minor-version compatibility" in f.message
    assert any(e.fact == "CUDA 10.1 driver" for e in f.evidence)


@pytest.mark.parametrize(
    "cuda, driver, words",
    [
        (None, "550.54.15", "the CUDA version of"),  # no build_info CUDA and a release the matrix lacks
        ("12.5.1", "not-a-version", "is not a version"),
        ("7.5", "550.54.15", "no driver facts for CUDA 7.5"),
    ],
)
def test_tfc201_skips_with_a_reason(matrix, cuda, driver, words):
    env = _with_tf(make_env(tf_builds=[tf_build("2.21.0", cuda=cuda)], driver=driver), version="2.99.0")
    findings, (skip,) = run_rule(env, matrix, "TFC201")
    assert findings == [] and words in skip.reason


def test_forward_compat_libcuda_only_lifts_an_older_driver(matrix):
    from tfcompat.model import DriverLibrary

    old_compat = DriverLibrary("libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.520.61.05", "520.61.05", True)
    env = make_env("2.21.0", driver="535.104.05", gpus=[_gpu(0)])
    env = dataclasses.replace(
        env, host=dataclasses.replace(env.host, driver=dataclasses.replace(env.host.driver, libraries=(old_compat,)))
    )
    (f,), _ = run_rule(env, matrix, "TFC201")
    assert f.severity is Severity.WARNING and "535.104.05" in f.message  # the newer kernel driver counts
    assert {e.fact: e.source for e in f.evidence}["driver.version"] == "/proc/driver/nvidia/version"


# -- TFC205: the driver must be able to JIT the PTX for this GPU ------------------------------------------


def _jit_need(matrix):
    arch = matrix.compute_capability("12.0")
    return matrix.cuda_toolkit(str(arch.first_cuda)).min_driver_text  # CUDA 12.8 for Blackwell


def test_jit_driver_exactly_at_the_architecture_floor_is_a_warning(matrix):
    need = _jit_need(matrix)
    env = make_env("2.21.0", driver=need, gpus=[_gpu(0, "12.0", "NVIDIA RTX PRO 6000 Blackwell Server Edition")])
    (f,), _ = run_rule(env, matrix, "TFC205")
    assert f.severity is Severity.WARNING


def test_jit_driver_below_the_architecture_floor_is_an_error(matrix):
    need = _jit_need(matrix)
    major, minor = need.split(".")[:2]
    below = f"{major}.{int(minor) - 1}"
    env = make_env("2.21.0", driver=below, gpus=[_gpu(0, "12.0", "NVIDIA RTX PRO 6000 Blackwell Server Edition")])
    (f,), _ = run_rule(env, matrix, "TFC205")
    assert f.severity is Severity.ERROR and need in f.message and "compute capability 12.0" in f.message


# -- TFC205/206 prechecks and the hiding suggestion ----------------------------------------------------------


@pytest.mark.parametrize("rid", ["TFC205", "TFC206"])
def test_arch_rules_skip_without_compute_capabilities(matrix, rid):
    env = _with_tf(make_env("2.21.0", driver="580.95.05", gpus=[_gpu(0)]), compute_capabilities=())
    findings, (skip,) = run_rule(env, matrix, rid)
    assert findings == [] and "states no compute capabilities" in skip.reason
    env = make_env("2.21.0", driver="580.95.05", gpus=[dataclasses.replace(_gpu(0), compute_capability=None)])
    findings, (skip,) = run_rule(env, matrix, rid)
    assert findings == [] and "no compute capability for any GPU" in skip.reason


def test_unsupported_gpu_next_to_supported_ones_is_hidden_by_uuid(matrix):
    env = make_env(
        "2.21.0",
        driver="580.95.05",
        gpus=[_gpu(0), _gpu(1, "5.2", "Tesla M60"), _gpu(2), dataclasses.replace(_gpu(3), compute_capability=None)],
    )
    (f,), _ = run_rule(env, matrix, "TFC206")
    assert "GPU 1 (Tesla M60" in f.message
    assert (
        f.remediation == "Use a TensorFlow release built for sm_52 or hide it (CUDA_VISIBLE_DEVICES=GPU-0000,GPU-0002)."
    )


def test_only_unsupported_gpus_get_no_hiding_suggestion(matrix):
    env = make_env("2.21.0", driver="580.95.05", gpus=[_gpu(0, "5.2", "Tesla M60")])
    (f,), _ = run_rule(env, matrix, "TFC206")
    assert f.remediation == "Use a TensorFlow release built for sm_52."


def test_two_models_are_mixed_one_model_is_not(matrix):
    env = make_env("2.21.0", driver="580.95.05", gpus=[_gpu(0), _gpu(1)])
    assert run_rule(env, matrix, "TFC207")[0] == []
    env = make_env("2.21.0", driver="580.95.05", gpus=[_gpu(0), _gpu(1, "8.0", "NVIDIA A100-SXM4-80GB")])
    (f,), _ = run_rule(env, matrix, "TFC207")
    assert f.message.startswith("2 kinds of GPU on this node: NVIDIA H100 80GB HBM3 (compute capability 9.0) on GPU 0;")


# -- TFC202: a site's known-bad driver range ------------------------------------------------------------------

OVERLAY = """
[meta]
schema = 1
kind = "overlay"
updated = "2026-11-20"

[[known_bad_driver]]
versions = ">=550.54.14,<550.90"
reason = "Xid 79 under NCCL all-reduce on our A100 nodes"
severity = "warning"
source = "https://tickets.example.org/HPC-1234"
checked = "2026-11-20"
"""


@pytest.mark.parametrize(
    "driver, hit", [("550.54.13", False), ("550.54.14", True), ("550.89.99", True), ("550.90", False)]
)
def test_known_bad_driver_range_edges(matrix, driver, hit):
    from tfcompat.matrix import parse_overlay

    site = matrix.with_overlay(parse_overlay(OVERLAY, "site.toml"))
    findings, _ = run_rule(make_env("2.21.0", driver=driver), site, "TFC202")
    assert [f.severity for f in findings] == ([Severity.WARNING] if hit else [])  # the site's severity
    if hit:
        assert "Xid 79 under NCCL" in findings[0].message and "(site.toml)" in findings[0].message


def test_known_bad_driver_without_a_version_is_skipped(matrix):
    from tfcompat.matrix import parse_overlay
    from tfcompat.model import Driver

    site = matrix.with_overlay(parse_overlay(OVERLAY, "site.toml"))
    env = make_env("2.21.0", driver="550.54.15")
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, driver=Driver()))
    findings, (skip,) = run_rule(env, site, "TFC202")
    assert findings == [] and skip.reason == "the driver version is unknown"
