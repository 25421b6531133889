"""matrix.arch: the one compute-capability parser and SASS/PTX coverage rule (boundaries included)."""

import pytest

from tfcompat.matrix.arch import (
    Coverage,
    cc_text,
    cc_tuple,
    coverage,
    is_build_cc,
    is_cc,
    parse_arch,
    parse_cc,
)

TF221 = ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
TF215 = ("sm_50", "sm_60", "sm_70", "sm_75", "compute_80")


@pytest.mark.parametrize(
    "text, cc",
    [
        ("9.0", (9, 0)),
        ("8.6", (8, 6)),
        ("12.0", (12, 0)),
        (" 8.6 ", (8, 6)),
        ("90", (9, 0)),
        ("86", (8, 6)),
        ("120", (12, 0)),
        ("sm_90", (9, 0)),
        ("sm_90a", (9, 0)),
        ("sm_120", (12, 0)),
        ("compute_90", (9, 0)),
        ("compute_100a", (10, 0)),
        ("", None),
        (None, None),
        ("9", None),
        ("9.", None),
        ("9.10", None),
        ("sm_9", None),
        ("gfx90a", None),
        ("sm_90ab", None),
        ("compute_", None),
        ("8,6", None),
    ],
)
def test_parse_cc_every_spelling(text, cc):
    assert parse_cc(text) == cc


def test_cc_tuple_and_text():
    assert cc_tuple("sm_86") == (8, 6) and cc_text("compute_120") == "12.0" and cc_text("86") == "8.6"
    with pytest.raises(ValueError):
        cc_tuple("eight")


def test_parse_arch_and_matrix_spellings():
    assert parse_arch("sm_120") == ("sm", 12, 0)
    assert parse_arch("compute_90") == ("compute", 9, 0)
    assert parse_arch("8.6") is None
    assert is_build_cc("sm_80") and is_build_cc("compute_90")
    assert not is_build_cc("sm_90a") and not is_build_cc("sm_8") and not is_build_cc("8.0")
    assert is_cc("8.6") and is_cc("12.0") and not is_cc("86") and not is_cc("sm_86")


@pytest.mark.parametrize(
    "cc, kind, via, entry",
    [
        ((8, 0), "native", "sm_80", "sm_80"),  # exactly at an entry
        ((8, 6), "native", "sm_80", "sm_80"),  # same major, higher minor
        ((8, 9), "native", "sm_89", "sm_89"),
        ((9, 0), "native", "sm_90", "compute_90"),  # compute_XY gives SASS too
        ((10, 0), "ptx", "compute_90", "compute_90"),  # newer major: only the PTX
        ((12, 0), "ptx", "compute_90", "compute_90"),
        ((5, 2), "none", None, None),  # older than every entry
        ((7, 5), "native", "sm_70", "sm_70"),
    ],
)
def test_coverage_tf221(cc, kind, via, entry):
    cov = coverage(cc, TF221)
    assert (cov.kind, cov.via, cov.entry) == (kind, via, entry)


def test_sm_entries_are_never_ptx():
    # sm_XY is SASS only: a GPU of a newer major than every sm_XY runs nothing without a compute_XY
    assert coverage((9, 0), ("sm_60", "sm_80")).kind == "none"
    assert coverage((9, 0), TF215) == Coverage("ptx", "compute_80")
    assert coverage((8, 6), ("compute_86",)).kind == "native"
    assert coverage((8, 5), ("compute_86",)).kind == "none"  # one minor below: neither SASS nor PTX


def test_coverage_ignores_entry_for_equality_and_skips_garbage():
    assert coverage((8, 6), ("sm_80", "bogus", "")) == Coverage("native", "sm_80")
    assert coverage((8, 6), ()) == Coverage("none", None)


def test_coverage_tie_keeps_the_first_listed_entry():
    assert coverage((9, 0), ("sm_90", "compute_90")).entry == "sm_90"
    assert coverage((9, 0), ("compute_90", "sm_90")).entry == "compute_90"


def test_coverage_agrees_with_the_gpu_answer(matrix):
    from tfcompat.matrix.answers_host import gpu_answer

    a = gpu_answer(matrix, "12.0")
    assert "2.21.0" in a["ptx_jit"] and "2.15.1" in a["ptx_jit"]
    assert gpu_answer(matrix, "sm_86")["compute_capability"] == "8.6"
    assert gpu_answer(matrix, "86")["compute_capability"] == "8.6"
