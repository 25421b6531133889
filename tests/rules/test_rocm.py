import os

import pytest
from envs import make_env, run_rule, tf_build

from tfcompat.model import Rocm, Severity
from tfcompat.probes.rocm import gfx_name, probe_rocm
from tfcompat.probes.rootfs import Root
from tfcompat.rules.rocm import rocm_of_tf_version


@pytest.mark.parametrize(
    "target, name",
    [(90010, "gfx90a"), (110000, "gfx1100"), (90402, "gfx942"), (100300, "gfx1030"), (90006, "gfx906"), (0, None)],
)
def test_gfx_name(target, name):
    assert gfx_name(target) == name


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def test_probe_reads_version_and_kfd_nodes(tmp_path):
    root = str(tmp_path)
    write(f"{root}/opt/rocm-6.0.2/.info/version", "6.0.2-115\n")
    os.symlink("/opt/rocm-6.0.2", f"{root}/opt/rocm")  # absolute link: must resolve inside the root
    kfd = f"{root}/sys/class/kfd/kfd/topology/nodes"
    write(f"{kfd}/0/properties", "cpu_cores_count 64\ngfx_target_version 0\n")
    write(f"{kfd}/1/properties", "simd_count 440\ngfx_target_version 90402\n")
    write(f"{kfd}/2/properties", "simd_count 440\ngfx_target_version 90010\n")
    rocm, unknowns = probe_rocm(Root(root))
    assert unknowns == []
    assert rocm.version == "6.0.2"
    assert [(g.node, g.gfx_target) for g in rocm.gpus] == [(1, "gfx942"), (2, "gfx90a")]


def test_probe_without_rocm(tmp_path):
    rocm, (unknown,) = probe_rocm(Root(str(tmp_path)))
    assert rocm is None and unknown.fact == "rocm" and "no ROCm installed" in unknown.reason


@pytest.mark.parametrize(
    "version, rocm",
    [("2.14.0.600", "6.0.0"), ("2.13.0.570", "5.7.0"), ("2.12.0.560", "5.6.0"), ("2.17.0", None), ("2.9.1", None)],
)
def test_rocm_of_tf_version(version, rocm):
    assert rocm_of_tf_version(version) == rocm


def rocm_env(tf_version, installed):
    import dataclasses

    b = dataclasses.replace(
        tf_build("2.21.0", distribution="tensorflow-rocm", is_cuda=False), version=tf_version, is_rocm_build=True
    )
    env = make_env(tf_builds=[b])
    return dataclasses.replace(env, host=dataclasses.replace(env.host, rocm=Rocm(installed, "/opt/rocm/.info/version")))


def test_rocm_major_mismatch(matrix):
    (f,), _ = run_rule(rocm_env("2.14.0.600", "5.7.1"), matrix, "TFC401")
    assert f.severity is Severity.ERROR and "ROCm 6.0.0" in f.message and "5.7.1" in f.message
    assert "libamdhip64.so.6" in f.message


def test_rocm_minor_mismatch_is_warning(matrix):
    (f,), _ = run_rule(rocm_env("2.13.0.570", "5.6.1"), matrix, "TFC401")
    assert f.severity is Severity.WARNING


def test_rocm_match(matrix):
    assert run_rule(rocm_env("2.14.0.600", "6.0.2"), matrix, "TFC401")[0] == []


def test_gfx942_not_in_the_pypi_wheel(matrix):
    import dataclasses

    from tfcompat.model import AmdGpu

    env = rocm_env("2.14.0.600", "6.0.2")
    gpus = (
        AmdGpu(1, "gfx942", "/sys/class/kfd/kfd/topology/nodes/1/properties"),
        AmdGpu(2, "gfx90a", "/sys/class/kfd/kfd/topology/nodes/2/properties"),
    )
    env = dataclasses.replace(
        env, host=dataclasses.replace(env.host, rocm=dataclasses.replace(env.host.rocm, gpus=gpus))
    )
    (f,), _ = run_rule(env, matrix, "TFC402")
    assert "KFD node 1" in f.message and "gfx942" in f.message and "gfx90a" in f.message
    assert f.severity is Severity.ERROR


def test_gfx_rule_skips_without_matrix_targets(matrix):
    findings, (skip,) = run_rule(rocm_env("2.13.0.570", "5.7.1"), matrix, "TFC402")
    assert findings == [] and "no gfx targets" in skip.reason


def test_rocm_release_is_no_cuda_release(matrix):
    # 2.14.0.600 sorts inside 2.14.0's range, but it is a ROCm build: no CUDA row judges it
    assert matrix.tf_release("2.14.0.600") is None
    assert matrix.tf_release("2.13.1.600") is None
    assert matrix.tf_release("2.14.0") is not None
    assert str(matrix.tf_rocm_release("2.14.0.600").rocm) == "6.0.0"


def test_matrix_stale_is_quiet_for_a_listed_rocm_release(matrix):
    findings, (skip,) = run_rule(rocm_env("2.14.0.600", "6.0.2"), matrix, "TFC109")
    assert findings == [] and "tensorflow-rocm release" in skip.reason


def test_numpy2_under_the_numpy1_rocm_wheel_is_still_an_error(matrix):
    import dataclasses

    from envs import pkg

    env = rocm_env("2.14.0.600", "6.0.2")
    target = dataclasses.replace(
        env.target, packages=tuple(p for p in env.target.packages if p.name != "numpy") + (pkg("numpy", "2.1.0"),)
    )
    (f,), _ = run_rule(dataclasses.replace(env, target=target), matrix, "TFC105")
    assert "NumPy 2.1.0" in f.message and "tensorflow-rocm 2.14.0.600" in f.message
    assert any("tensorflow-rocm/2.14.0.600" in e.source for e in f.evidence)
