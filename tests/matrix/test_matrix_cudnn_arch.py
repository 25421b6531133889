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
        # 9.11-9.16 (unconfirmed): only what was dropped is known
        ("9.14.0.64", "6.1", {CC_DROPPED}),
        ("9.14.0.64", "5.2", {CC_DROPPED}),
        ("9.14.0.64", "7.0", {CC_UNLISTED}),
        ("9.14.0.64", "12.0", {CC_UNLISTED}),
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
        ("9.17.1.4", "same_minor", "9.17.0"),  # 9.17.1 has no row of its own: the 9.17.0 rows
        ("9.10.1.4", "same_minor", "9.10.2"),
        ("8.9.4.25", "same_minor", "8.9.5"),  # TF 2.15's [and-cuda] pin: judged from its own minor
        ("8.9.2.26", "same_minor", "8.9.1"),
        ("9.14.0.64", "exact", "9.11.0"),
        ("9.7.0.66", "gap", "9.5.0"),  # no 9.7 row: unknown, not the 9.5 verdict
        ("9.9.0.52", "gap", "9.5.0"),
        ("9.28.0.42", "gap", "9.17.0"),
        ("9.3.0.75", "gap", "9.0.0"),
    ],
)
def test_cudnn_support_basis(matrix, version, basis, label):
    s = matrix.cudnn_support(version, 12)
    assert s.basis == basis
    rows = s.entries if basis != "gap" else s.older
    assert rows and all(label in r.label for r in rows)
    assert (s.entries == ()) == (basis == "gap")


def test_cudnn_support_before_any_row(matrix):
    assert matrix.cudnn_support("7.6.5", 12).basis == "none"
    assert matrix.cudnn_support("not a version", 12).basis == "none"


def test_unconfirmed_rows_say_why(matrix):
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
_ROW_911 = 'dropped_compute_capabilities = ["5.0", "6.0"]'


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
    assert _SHIPPED.count(_ROW_911) == 1
    with pytest.raises(MatrixError, match=message):
        parse_matrix(_SHIPPED.replace(_ROW_911, new), "m.toml")


def test_old_rows_without_the_new_keys_still_load():
    # a matrix written before issue 15: no forward_compatible, dropped_compute_capabilities or confirmed
    old = _SHIPPED.replace("forward_compatible = true\n", "")
    m = parse_matrix(old, "old.toml")
    assert not any(r.forward_compatible for r in m.cudnn)
    assert all(r.confirmed for r in m.cudnn if "9.11" not in r.label)
