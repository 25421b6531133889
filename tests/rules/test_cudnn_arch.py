"""TFC208 with architectures that come and go (issue 15): Blackwell is never a false error (native from
9.7), Maxwell/Pascal/Volta fail where the matrix drops them (9.11.0, read from the wheels' binaries), an
unconfirmed drop is a warning, a release the matrix does not describe is "unknown for this release", and
TF 2.15's cuDNN 8.9.4.25 is judged. Each on both sides of its boundary."""

import dataclasses

import pytest
from envs import make_env, run_rule

from tfcompat.matrix import default_matrix_path, parse_matrix
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


@pytest.mark.parametrize("cudnn", ["9.7.0.66", "9.7.1.26", "9.8.0.87", "9.9.0.52", "9.10.0.56", "9.10.1.4"])
@pytest.mark.parametrize("g", [B200, RTX_PRO_6000, GB10], ids=["10.0", "12.0", "12.1"])
def test_blackwell_with_cudnn_97_to_9101_is_native(matrix, cudnn, g):
    # the CUDA 12.8 builds on PyPI carry sm_100 / sm_120 SASS in the legacy-API libraries
    assert tfc208(matrix, cudnn, [g]) == []


def _without_rows_of(matrix, *versions):
    """The matrix without the [[cudnn]] rows that describe `versions`: a release in the gap they leave."""
    keep = tuple(r for r in matrix.cudnn if not any(r.versions.contains(v) for v in versions))
    return dataclasses.replace(matrix, cudnn=keep)


@pytest.mark.parametrize("cudnn", ["9.1.1.17", "9.4.0.58", "9.6.0.74"])
def test_blackwell_with_an_undescribed_release_after_a_pre_blackwell_row_is_unknown(matrix, cudnn):
    # without the 9.1-9.4 and 9.6 rows (read from the wheels on 2026-12-08): a gap, judged neither by
    # 9.0 / 9.5 (Hopper at most) nor by 9.7
    gap = _without_rows_of(matrix, "9.1.1.17", "9.6.0.74")
    assert gap.cudnn_support(cudnn, 12).basis == "gap"
    (f,) = tfc208(gap, cudnn, [RTX_PRO_6000])
    assert f.severity == Severity.INFO
    assert "unknown for this release" in f.message and "forward-compatibility mode" in f.message
    assert "ARCH_MISMATCH" not in f.message


@pytest.mark.parametrize("cudnn", ["9.0.0.312", "9.1.1.17", "9.2.1.18", "9.3.0.75", "9.4.0.58", "9.5.1.17", "9.6.0.74"])
def test_blackwell_before_97_runs_in_forward_compatibility_mode(matrix, cudnn):
    # the other side of the boundary: cuDNN 9.0-9.6 predate Blackwell (9.1-9.4 and 9.6: sm_90 SASS and
    # compute_90 PTX, read from the wheels); NVIDIA's forward compatibility
    (f,) = tfc208(matrix, cudnn, [B200])
    assert f.severity == Severity.INFO
    assert "newer than every architecture" in f.message and "subset of operation graphs" in f.message
    assert any("forward-compatibility" in e.source for e in f.evidence)


@pytest.mark.parametrize("cudnn", ["9.3.0.75", "9.6.0.74", "9.7.1.26", "9.8.0.87", "9.10.1.4"])
def test_blackwell_with_a_cuda11_cudnn_has_no_forward_compatibility(matrix, cudnn):
    # a CUDA 11 build (TF 2.14: CUDA 11.8) judged by the nvidia-cudnn-cu11 rows (read from the wheels on
    # 2026-12-08): sm_50 ... sm_90 only, also in 9.7-9.10 where the cu12 wheels carry sm_100 / sm_120, and
    # NVIDIA's forward compatibility needs CUDA >= 12: a warning, not the cu12 build's silence or info
    s = matrix.cudnn_support(cudnn, 11)
    assert s.basis == "exact" and all(r.cuda_major == 11 for r in s.entries)
    (f,) = tfc208(matrix, cudnn, [RTX_PRO_6000], tf="2.14.0")
    assert f.severity == Severity.WARNING and "no hardware forward compatibility" in f.message
    assert tfc208(matrix, cudnn, [M60, P40, V100, T4, H100], tf="2.14.0") == []


def test_tf214_and_cuda_cudnn_87_on_kepler_hopper_and_blackwell(matrix):
    # tensorflow[and-cuda] 2.14 pins nvidia-cudnn-cu11==8.7.0.84: its wheel carries sm_35 ... sm_90 (read
    # 2026-12-08), so Kepler and Hopper are silent, Blackwell is newer (a warning); 8.8.0 drops Kepler
    assert tfc208(matrix, "8.7.0.84", [K80, P100, H100], tf="2.14.0") == []
    (f,) = tfc208(matrix, "8.7.0.84", [RTX_PRO_6000], tf="2.14.0")
    assert f.severity == Severity.WARNING and "no hardware forward compatibility" in f.message
    (f,) = tfc208(matrix, "8.8.1.3", [K80], tf="2.14.0")
    assert f.severity == Severity.ERROR and "no longer lists this architecture" in f.message
    (f,) = tfc208(matrix, "8.5.0.96", [H100], tf="2.14.0")  # 8.5: no sm_90 kernels yet
    assert f.severity == Severity.WARNING and "(3.5, 5.0, 6.0, 6.1, 7.0, 7.5, 8.0, 8.6, 8.9)" in f.message


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


@pytest.mark.parametrize("cudnn", ["9.11.0.98", "9.14.0.64", "9.16.0.29", "9.18.1.3", "9.28.0.42"])
@pytest.mark.parametrize("g", [P100, P40, M60, V100])
def test_maxwell_pascal_volta_with_cudnn_911_to_928_is_an_error(matrix, cudnn, g):
    # 9.11.0 dropped sm_50-sm_70 from libcudnn_cnn / libcudnn_ops (the binaries, confirmed rows)
    (f,) = tfc208(matrix, cudnn, [g, H100])
    assert f.severity == Severity.ERROR and "CUDNN_STATUS_ARCH_MISMATCH" in f.message
    assert g.name in f.message and f"cuDNN {cudnn}" in f.message and "UNCONFIRMED" not in f.message


@pytest.mark.parametrize("cudnn", ["9.11.0.98", "9.17.1.4", "9.28.0.42"])
@pytest.mark.parametrize("g", [T4, H100, B200, RTX_PRO_6000])
def test_turing_and_newer_with_cudnn_911_to_928_pass(matrix, cudnn, g):
    assert tfc208(matrix, cudnn, [g]) == []


# A matrix whose 9.11-9.16 row is the pre-binaries one: a third-party report of the drops, unconfirmed.
# The shipped matrix has no such row any more; the code path (a WARNING, not an ERROR) stays covered.
_SHIPPED = default_matrix_path().read_text(encoding="utf-8")
_ROW_911_HEAD = '[[cudnn]]\nversions = ">=9.11.0,<9.17"\ncuda_major = 12\n'
_UNCONFIRMED_911 = """[[cudnn]]
versions = ">=9.11.0,<9.17"
cuda_major = 12
cuda = ">=12.0,<12.10"
min_driver = "525.60.13"
dropped_compute_capabilities = ["5.0", "6.0"]
source = ["https://github.com/immich-app/immich/pull/23110"]
checked = "2026-12-07"
confirmed = false
note = "NVIDIA's 9.11-9.16 support matrices not read"
"""


@pytest.fixture(scope="module")
def unconfirmed():
    assert _SHIPPED.count(_ROW_911_HEAD) == 1
    start = _SHIPPED.index(_ROW_911_HEAD)
    end = _SHIPPED.index("\n\n", start) + 1
    m = parse_matrix(_SHIPPED[:start] + _UNCONFIRMED_911 + _SHIPPED[end:], "unconfirmed.toml")
    assert [r.confirmed for r in m.cudnn if r.cuda_major == 12 and r.versions.contains("9.14.0.64")] == [False]
    return m


@pytest.mark.parametrize("cudnn", ["9.11.0.98", "9.14.0.64", "9.16.0.29"])
@pytest.mark.parametrize("g", [P100, P40, M60])
def test_an_unconfirmed_drop_is_a_warning(unconfirmed, cudnn, g):
    (f,) = tfc208(unconfirmed, cudnn, [g])
    assert f.severity == Severity.WARNING and "UNCONFIRMED" in f.message and "not read" in f.message


@pytest.mark.parametrize("g", [T4, H100, B200, V100])
def test_a_row_that_only_names_drops_is_silent_about_other_gpus(unconfirmed, g):
    assert tfc208(unconfirmed, "9.12.0.46", [g]) == []


@pytest.mark.parametrize("cudnn", ["9.3.0.75", "9.5.1.17", "9.10.1.4", "9.10.2.21"])
@pytest.mark.parametrize("g", [P100, P40, M60, V100])
def test_maxwell_pascal_volta_before_911_pass(matrix, cudnn, g):
    assert tfc208(matrix, cudnn, [g]) == []


def test_volta_is_dropped_in_911(matrix):
    # sources disagreed on Volta; the binaries settle it: 9.10.2 carries sm_70, 9.11.0 does not
    assert tfc208(matrix, "9.10.2.21", [V100]) == []
    (f,) = tfc208(matrix, "9.11.0.98", [V100])
    assert f.severity == Severity.ERROR and "7.0" in f.message


@pytest.mark.parametrize("cudnn", ["9.29.0.1", "9.40.2.5"])
def test_release_far_from_any_entry_is_unknown_not_the_older_verdict(matrix, cudnn):
    # a future release: the newest row (>=9.17.1,<9.29) does not describe it
    assert matrix.cudnn_support(cudnn, 12).basis == "gap"
    (f,) = tfc208(matrix, cudnn, [P40])
    assert "unknown for this release" in f.message and "9.17.1" in f.message and "an older release" in f.message
    assert f.severity == Severity.WARNING  # not the ERROR the 9.17.1-9.28 row gives
    assert tfc208(matrix, cudnn, [T4, H100]) == []


def test_same_minor_patch_release_is_judged(matrix):
    # without the row read from the 9.10.0 / 9.10.1 wheels, 9.10.1 is judged from 9.10.2's rows (5.0 and newer)
    same = _without_rows_of(matrix, "9.10.1.4")
    assert same.cudnn_support("9.10.1.4", 12).basis == "same_minor"
    (f,) = tfc208(same, "9.10.1.4", [K80])
    assert f.severity == Severity.ERROR and "a release of the same minor" in f.message
    assert tfc208(same, "9.10.1.4", [P100, V100]) == []
    # with it, an exact row of its own: the same verdicts
    assert matrix.cudnn_support("9.10.1.4", 12).basis == "exact"
    (f,) = tfc208(matrix, "9.10.1.4", [K80])
    assert f.severity == Severity.ERROR and "a release of the same minor" not in f.message
    assert tfc208(matrix, "9.10.1.4", [P100, V100]) == []


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


def test_an_unlisted_architecture_between_listed_ones_is_unknown(matrix):
    thor = gpu("11.0", "Jetson Thor")
    (f,) = tfc208(matrix, "9.17.0.29", [thor])
    assert f.severity == Severity.INFO and "neither lists nor drops it" in f.message
