"""TFC208 with architectures that come and go (issue 15): Blackwell is never a false error, Maxwell/Pascal
fail where NVIDIA's matrix drops them, a release the matrix does not describe is "unknown for this
release", and TF 2.15's cuDNN 8.9.4.25 is judged. Each on both sides of its boundary."""

import dataclasses

import pytest
from envs import make_env, run_rule

from tfcompat.model import Gpu, LibraryCopy, LibraryResolution, NativeLibraries, Severity


def gpu(cc, name="GPU", i=0):
    return Gpu(i, name, f"GPU-{cc.replace('.', '')}-{i}", f"00000000:{0x18 + i:02X}:00.0", cc, 81559, False, True)


B200, RTX_PRO_6000, GB10 = gpu("10.0", "NVIDIA B200"), gpu("12.0", "RTX PRO 6000 Blackwell"), gpu("12.1", "GB10")
P100, P40, M60, V100 = gpu("6.0", "Tesla P100"), gpu("6.1", "Tesla P40"), gpu("5.2", "Tesla M60"), gpu("7.0", "V100")
T4, H100, K80 = gpu("7.5", "Tesla T4"), gpu("9.0", "H100"), gpu("3.7", "Tesla K80")


def with_cudnn(env, version):
    lib = LibraryResolution(
        "cudnn",
        "libcudnn.so.9" if version.startswith("9") else "libcudnn.so.8",
        "gpu",
        "DNN",
        None,
        LibraryCopy(
            "/v/nvidia/cudnn/lib/libcudnn.so",
            "/v/nvidia/cudnn/lib/libcudnn.so",
            "DT_RUNPATH",
            "$ORIGIN/../nvidia/cudnn/lib",
            None,
            version,
            "nvidia-cudnn-cu12 METADATA",
            "nvidia-cudnn-cu12",
        ),
    )
    native = NativeLibraries("/v/tensorflow/libtensorflow_framework.so.2", "test", libraries=(lib,))
    return dataclasses.replace(env, target=dataclasses.replace(env.target, native=native))


def tfc208(matrix, cudnn, gpus, tf="2.21.0"):
    findings, _ = run_rule(with_cudnn(make_env(tf, driver="575.57.08", gpus=gpus), cudnn), matrix, "TFC208")
    return findings


# every cuDNN 9 release from 9.7 (Blackwell's first) to the newest on PyPI
BLACKWELL_OK = [
    "9.7.0.66",
    "9.7.1.26",
    "9.8.0.87",
    "9.9.0.52",
    "9.10.0.56",
    "9.10.1.4",
    "9.10.2.21",
    "9.11.0.98",
    "9.12.0.46",
    "9.13.1.26",
    "9.14.0.64",
    "9.15.1.9",
    "9.16.0.29",
    "9.17.0.29",
    "9.17.1.4",
    "9.18.1.3",
    "9.19.1.2",
    "9.22.0.52",
    "9.28.0.42",
]


@pytest.mark.parametrize("cudnn", BLACKWELL_OK)
@pytest.mark.parametrize("g", [B200, RTX_PRO_6000, GB10], ids=["10.0", "12.0", "12.1"])
def test_blackwell_is_never_an_error_with_cudnn_97_to_928(matrix, cudnn, g):
    findings = tfc208(matrix, cudnn, [g])
    assert not [f for f in findings if f.severity == Severity.ERROR], [f.message for f in findings]


@pytest.mark.parametrize("cudnn", ["9.10.2.21", "9.17.0.29", "9.17.1.4"])
@pytest.mark.parametrize("g", [B200, RTX_PRO_6000])
def test_blackwell_listed_natively_is_silent(matrix, cudnn, g):
    assert tfc208(matrix, cudnn, [g]) == []


@pytest.mark.parametrize("cudnn", ["9.7.0.66", "9.8.0.87", "9.9.0.52"])
def test_blackwell_with_undocumented_97_to_99_is_unknown_not_arch_mismatch(matrix, cudnn):
    (f,) = tfc208(matrix, cudnn, [RTX_PRO_6000])
    assert f.severity == Severity.INFO
    assert "unknown for this release" in f.message and "forward-compatibility mode" in f.message
    assert "ARCH_MISMATCH" not in f.message


@pytest.mark.parametrize("cudnn", ["9.0.0.312", "9.5.1.17"])
def test_blackwell_before_97_runs_in_forward_compatibility_mode(matrix, cudnn):
    # the other side of the boundary: cuDNN 9.0-9.6 predate Blackwell; NVIDIA's forward compatibility
    (f,) = tfc208(matrix, cudnn, [B200])
    assert f.severity == Severity.INFO
    assert "newer than every architecture" in f.message and "subset of operation graphs" in f.message
    assert any("forward-compatibility" in e.source for e in f.evidence)


def test_blackwell_with_cudnn_8_is_a_warning_not_an_error(matrix):
    # cuDNN 8 has no hardware forward compatibility: a risk, but not a documented ARCH_MISMATCH
    (f,) = tfc208(matrix, "8.9.7.29", [RTX_PRO_6000], tf="2.15.1")
    assert f.severity == Severity.WARNING and "no hardware forward compatibility" in f.message


@pytest.mark.parametrize("g", [P100, P40, M60])
@pytest.mark.parametrize("cudnn", ["9.17.0.29", "9.17.1.4"])
def test_maxwell_pascal_with_cudnn_917_is_an_error(matrix, g, cudnn):
    (f,) = tfc208(matrix, cudnn, [g, H100])
    assert f.severity == Severity.ERROR and "CUDNN_STATUS_ARCH_MISMATCH" in f.message
    assert g.name in f.message and "no longer lists" in f.message


@pytest.mark.parametrize("cudnn", ["9.11.0.98", "9.14.0.64", "9.16.0.29"])
@pytest.mark.parametrize("g", [P100, P40, M60])
def test_maxwell_pascal_with_cudnn_911_to_916_is_reported_unconfirmed(matrix, cudnn, g):
    # NVIDIA's 9.11-9.16 matrices were not read: the drop is a third-party report, so a warning
    (f,) = tfc208(matrix, cudnn, [g])
    assert f.severity == Severity.WARNING and "UNCONFIRMED" in f.message


@pytest.mark.parametrize("cudnn", ["9.3.0.75", "9.5.1.17", "9.10.1.4", "9.10.2.21"])
@pytest.mark.parametrize("g", [P100, P40, M60, V100])
def test_maxwell_pascal_volta_before_911_pass(matrix, cudnn, g):
    assert tfc208(matrix, cudnn, [g]) == []


def test_volta_is_an_error_only_where_a_primary_source_drops_it(matrix):
    assert tfc208(matrix, "9.14.0.64", [V100]) == []  # sources disagree on 9.11-9.16: no verdict
    (f,) = tfc208(matrix, "9.17.0.29", [V100])  # NVIDIA's 9.17.0 matrix lists 7.5 and newer
    assert f.severity == Severity.ERROR


@pytest.mark.parametrize("cudnn", ["9.18.1.3", "9.22.0.52", "9.28.0.42"])
def test_release_far_from_any_entry_is_unknown_not_the_older_verdict(matrix, cudnn):
    (f,) = tfc208(matrix, cudnn, [P40])
    assert "unknown for this release" in f.message and "9.17" in f.message
    assert f.severity == Severity.WARNING  # not the ERROR the 9.17.0 row gives
    assert tfc208(matrix, cudnn, [T4, H100]) == []


def test_same_minor_patch_release_is_judged(matrix):
    (f,) = tfc208(matrix, "9.17.1.4", [P100])
    assert "a release of the same minor" in f.message


@pytest.mark.parametrize("g", [P100, M60, V100, T4, H100])
def test_cudnn_8_9_4_25_is_judged_and_supports_maxwell_to_hopper(matrix, g):
    env = with_cudnn(make_env("2.15.1", driver="535.104.05", gpus=[g]), "8.9.4.25")
    findings, skips = run_rule(env, matrix, "TFC208")
    assert findings == [] and skips == []


def test_cudnn_8_9_4_25_drops_kepler(matrix):
    env = with_cudnn(make_env("2.15.1", driver="535.104.05", gpus=[K80]), "8.9.4.25")
    (f,), _ = run_rule(env, matrix, "TFC208")
    assert f.severity == Severity.ERROR and "8.9.4.25" in f.message and "same minor" in f.message


def test_cudnn_older_than_every_row_is_not_judged(matrix):
    env = with_cudnn(make_env("2.15.1", driver="535.104.05", gpus=[P100]), "8.6.0.163")
    findings, (skip,) = run_rule(env, matrix, "TFC208")
    assert findings == [] and "no cuDNN support entry" in skip.reason


@pytest.mark.parametrize("g", [T4, H100, B200, V100])
def test_a_row_that_only_names_drops_is_silent_about_other_gpus(matrix, g):
    assert tfc208(matrix, "9.12.0.46", [g]) == []


def test_an_unlisted_architecture_between_listed_ones_is_unknown(matrix):
    thor = gpu("11.0", "Jetson Thor")
    (f,) = tfc208(matrix, "9.17.0.29", [thor])
    assert f.severity == Severity.INFO and "neither lists nor drops it" in f.message
