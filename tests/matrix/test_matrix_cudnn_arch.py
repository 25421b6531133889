"""[[cudnn]] architectures as data that adds and drops: cc_status, the release lookup (exact, same minor,
gap), the parser's checks and the invariants (issue 15)."""

import dataclasses

import pytest

from tfcompat.matrix import MatrixError, default_matrix_path, invariant_problems, parse_matrix
from tfcompat.matrix.entries import CC_DROPPED, CC_NATIVE, CC_NEWER, CC_UNLISTED


def _rows(matrix, version, cuda_major=12):
    return [c for c in matrix.cudnn if c.cuda_major == cuda_major and c.versions.contains(version)]


@pytest.mark.parametrize(
    "version, cc, statuses",
    [
        # 9.10.2: the CUDA 12.8/12.9 build lists Blackwell, the 12.0-12.9 build stops at Hopper
        ("9.10.2.21", "12.0", {CC_NATIVE, CC_NEWER}),
        ("9.10.2.21", "10.0", {CC_NATIVE, CC_NEWER}),
        ("9.10.2.21", "6.1", {CC_NATIVE}),
        ("9.10.2.21", "7.0", {CC_NATIVE}),
        # 9.17.0: Turing and newer only
        ("9.17.0.29", "6.1", {CC_DROPPED}),
        ("9.17.0.29", "7.0", {CC_DROPPED}),
        ("9.17.0.29", "7.5", {CC_NATIVE}),
        ("9.17.0.29", "12.0", {CC_NATIVE}),
        ("9.17.0.29", "12.1", {CC_NATIVE}),  # a listed 12.0 covers 12.x, x >= 0
        ("9.17.0.29", "11.0", {CC_UNLISTED}),  # between 10.0 and 12.0, never listed
        # 9.0.0: Maxwell ... Hopper; Blackwell is newer than the list
        ("9.0.0.312", "10.0", {CC_NEWER}),
        ("9.0.0.312", "5.2", {CC_NATIVE}),
        ("9.0.0.312", "3.7", {CC_DROPPED}),
        # 9.7-9.9 (the CUDA 12.8 builds, read from the binaries): Maxwell ... Blackwell
        ("9.7.1.26", "5.0", {CC_NATIVE}),
        ("9.8.0.87", "10.0", {CC_NATIVE}),
        ("9.9.0.52", "12.0", {CC_NATIVE}),
        ("9.9.0.52", "3.7", {CC_DROPPED}),
        # 9.11-9.16 and 9.17.1-9.28 (binaries): Maxwell, Pascal and Volta gone from 9.11.0
        ("9.11.0.98", "7.0", {CC_DROPPED}),
        ("9.14.0.64", "6.1", {CC_DROPPED}),
        ("9.14.0.64", "5.2", {CC_DROPPED}),
        ("9.14.0.64", "7.0", {CC_DROPPED}),
        ("9.14.0.64", "7.5", {CC_NATIVE}),
        ("9.14.0.64", "12.0", {CC_NATIVE}),
        ("9.28.0.42", "7.0", {CC_DROPPED}),
        ("9.28.0.42", "9.0", {CC_NATIVE}),
        ("9.28.0.42", "12.1", {CC_NATIVE}),
    ],
)
def test_cc_status(matrix, version, cc, statuses):
    rows = _rows(matrix, version)
    assert rows
    assert {r.cc_status(cc) for r in rows} == statuses
    assert all(r.supports_cc(cc) == (r.cc_status(cc) == CC_NATIVE) for r in rows)


def test_min_max_rows_keep_their_meaning(matrix):
    (row,) = [r for r in _rows(matrix, "8.9.5.29") if r.min_compute_capability]
    assert row.cc_status("9.0") == CC_NATIVE and row.cc_status("8.6") == CC_NATIVE
    assert row.cc_status("10.0") == CC_NEWER and row.cc_status("3.5") == CC_DROPPED


def test_forward_compatibility_where_nvidia_documents_it(matrix):
    # NVIDIA: "This feature was added in cuDNN 9.0.0, and only for builds which use CUDA toolkit 12 or higher."
    for row in matrix.cudnn:
        low = min(s.version for s in row.versions if s.operator in ("==", ">="))
        if row.forward_compatible:
            assert low.startswith("9.") and row.cuda_major >= 12, row.label
    assert all(r.forward_compatible for r in _rows(matrix, "9.0.0"))
    assert not any(r.forward_compatible for r in _rows(matrix, "9.0.0", 11))
    assert not any(r.forward_compatible for r in _rows(matrix, "8.9.5"))


@pytest.mark.parametrize(
    "version, basis, label",
    [
        ("9.17.0.29", "exact", "9.17.0"),
        ("9.17.1.4", "exact", "9.17.1"),  # the 9.17.1-9.28 rows, not 9.17.0's
        ("9.10.1.4", "exact", "9.10.0"),  # read from the 9.10.0 / 9.10.1 wheels, not the 9.10.2 rows
        ("9.10.2.21", "exact", "9.10.2"),
        ("8.9.4.25", "same_minor", "8.9.5"),  # TF 2.15's [and-cuda] pin: judged from its own minor
        ("8.9.2.26", "same_minor", "8.9.1"),
        ("9.14.0.64", "exact", "9.11.0"),
        ("9.7.0.66", "exact", "9.7.0"),
        ("9.9.0.52", "exact", "9.7.0"),
        ("9.28.0.42", "exact", "9.17.1"),
        ("9.6.0.74", "exact", "9.6.0"),  # read from the 9.6.0.74 wheel
        ("9.29.0.1", "gap", "9.17.1"),  # newer than every row
        ("9.3.0.75", "exact", "9.1.0"),  # the 9.1-9.4 row, read from the wheels
        ("9.40.2.5", "gap", "9.17.1"),
    ],
)
def test_cudnn_support_basis(matrix, version, basis, label):
    s = matrix.cudnn_support(version, 12)
    assert s.basis == basis
    rows = s.entries if basis != "gap" else s.older
    assert rows and all(label in r.label for r in rows)
    assert (s.entries == ()) == (basis == "gap")


@pytest.mark.parametrize("version", ["9.12.0.46", "9.16.0.29", "9.17.1.4", "9.28.1.4"])
def test_cudnn_support_for_cuda_13(matrix, version):
    s = matrix.cudnn_support(version, 13)
    assert s.basis == "exact" and all(r.cuda_major == 13 for r in s.entries)
    assert matrix.cudnn_support("9.11.1.4", 13).basis == "none"  # 9.12.0 is the first cu13 wheel


def test_cudnn_support_before_any_row(matrix):
    assert matrix.cudnn_support("7.6.5", 12).basis == "none"
    assert matrix.cudnn_support("not a version", 12).basis == "none"


def test_unconfirmed_rows_say_why(matrix):
    # the shipped matrix has none since the binaries were read; the rule holds wherever one appears
    for row in matrix.cudnn:
        if not row.confirmed:
            assert row.note and "not read" in row.note, row.label


def test_shipped_matrix_has_no_cudnn_problems(matrix):
    assert [p for p in invariant_problems(matrix) if "[[cudnn]]" in p] == []


def test_invariant_catches_a_readded_architecture(matrix):
    (r917,) = _rows(matrix, "9.17.0.29")
    later = dataclasses.replace(r917, versions=type(r917.versions)("==9.30.0.*"), compute_capabilities=("6.1", "7.5"))
    bad = dataclasses.replace(matrix, cudnn=matrix.cudnn + (later,))
    assert any("lists compute capability 6.1, which the older" in p for p in invariant_problems(bad))
    fc8 = dataclasses.replace(_rows(matrix, "8.9.5.29")[0], forward_compatible=True)
    bad = dataclasses.replace(matrix, cudnn=matrix.cudnn + (fc8,))
    assert any("forward_compatible needs cuDNN >= 9.0" in p for p in invariant_problems(bad))


_SHIPPED = default_matrix_path().read_text(encoding="utf-8")
# The shipped matrix's rows all list what they support; the checks for a row of drops alone run on the
# shipped text with its 9.11-9.16 row replaced by the unconfirmed one it had before the binaries were read.
_ROW_911_HEAD = '[[cudnn]]\nversions = ">=9.11.0,<9.17"\ncuda_major = 12\n'
_ROW_911 = 'dropped_compute_capabilities = ["5.0", "6.0"]'
_UNCONFIRMED_911 = f"""[[cudnn]]
versions = ">=9.11.0,<9.17"
cuda_major = 12
cuda = ">=12.0,<12.10"
min_driver = "525.60.13"
{_ROW_911}
source = ["https://github.com/immich-app/immich/pull/23110"]
checked = "2026-12-07"
confirmed = false
note = "NVIDIA's 9.11-9.16 support matrices not read"
"""


def _with_unconfirmed_911():
    assert _SHIPPED.count(_ROW_911_HEAD) == 1
    start = _SHIPPED.index(_ROW_911_HEAD)
    end = _SHIPPED.index("\n\n", start) + 1
    return _SHIPPED[:start] + _UNCONFIRMED_911 + _SHIPPED[end:]


def test_a_row_of_drops_alone_loads():
    m = parse_matrix(_with_unconfirmed_911(), "m.toml")
    (row,) = _rows(m, "9.14.0.64")
    assert not row.confirmed and row.dropped_compute_capabilities == ("5.0", "6.0")
    # only what was dropped is known
    assert [row.cc_status(cc) for cc in ("5.2", "6.1", "7.0", "12.0")] == [CC_DROPPED, CC_DROPPED] + [CC_UNLISTED] * 2
    assert [p for p in invariant_problems(m) if "[[cudnn]]" in p] == []


@pytest.mark.parametrize(
    "new, message",
    [
        ('dropped_compute_capabilities = ["6"]', "dropped_compute_capabilities"),
        (
            'dropped_compute_capabilities = ["5.0"]\ncompute_capabilities = ["5.0", "7.5"]',
            "also in compute_capabilities",
        ),
        ('compute_capabilities = ["7.5"]\nmin_compute_capability = "7.5"', "two ways to say one thing"),
        ('dropped_compute_capabilities = ["6.0"]\nforward_compatible = "yes"', "forward_compatible 'yes' is not true"),
        ("", "or min_compute_capability or dropped_compute_capabilities is required"),
    ],
)
def test_cudnn_row_checks(new, message):
    text = _with_unconfirmed_911()
    assert text.count(_ROW_911) == 1
    with pytest.raises(MatrixError, match=message):
        parse_matrix(text.replace(_ROW_911, new), "m.toml")


def test_old_rows_without_the_new_keys_still_load():
    # a matrix written before issue 15: no forward_compatible, dropped_compute_capabilities or confirmed
    old = _SHIPPED.replace("forward_compatible = true\n", "")
    m = parse_matrix(old, "old.toml")
    assert not any(r.forward_compatible for r in m.cudnn)
    assert all(r.confirmed for r in m.cudnn)
