"""A --matrix of thousands of [[tensorflow]] entries loads in n log n (#17 item 8: 3,000 entries took
34 s, all pairs of entries tested for a release matched twice)."""

import itertools
import random
import re

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tfcompat.matrix.fields import MatrixError, default_matrix_path
from tfcompat.matrix.invariants import invariant_problems
from tfcompat.matrix.load import _bounds, _no_release_twice, _public, parse_matrix


def big_matrix(n: int) -> str:
    """The shipped matrix with its [[tensorflow]] entries replaced by `n` disjoint ones (3.0 ... 3.n-1)."""
    text = default_matrix_path().read_text(encoding="utf-8")
    kept, skipping = [], False
    for block in re.split(r"(?m)^(?=\[)", text):
        head = block.split("\n", 1)[0].strip()
        if head == "[[tensorflow]]":
            skipping = True
            continue
        if head.startswith("[tensorflow.") and skipping:
            continue
        skipping = False
        kept.append(block)
    entries = "".join(
        f"""
[[tensorflow]]
versions = ">=3.{i}.0,<3.{i + 1}"
releases = ["3.{i}.0", "3.{i}.1"]
python = ">=3.9,<3.13"
cuda = "12.2"
cudnn = "8.9"
compute_capabilities = ["sm_80"]
source = "https://www.tensorflow.org/install/source#gpu"
checked = "2026-03-11"
"""
        for i in range(n)
    )
    return "".join(kept) + entries


def test_3000_entries_load_with_linear_work(monkeypatch):
    calls = {"n": 0}
    real = SpecifierSet.contains

    def counting(self, *a, **kw):
        calls["n"] += 1
        return real(self, *a, **kw)

    monkeypatch.setattr(SpecifierSet, "contains", counting)
    m = parse_matrix(big_matrix(3000), "big.toml")
    assert len(m.tensorflow) == 3000
    # each release is tested against the entries whose range reaches it (its own and, at most, a
    # neighbour's): was 3,000 x 6,000 = 18,000,000 tests
    releases = 6000
    assert calls["n"] < 4 * releases, calls["n"]
    calls["n"] = 0
    assert invariant_problems(m) == []
    assert calls["n"] < 4 * releases, calls["n"]


def _all_pairs(path, tf):
    """The old test, kept as the reference."""
    for rel in tf:
        for r in rel.releases:
            others = [o.label for o in tf if o is not rel and o.versions.contains(Version(r), prereleases=True)]
            if others:
                raise MatrixError(f"{path}: {rel.label}: releases {r!r} is also matched by {others[0]}")


_SPECS = [
    ">=2.15.0",
    "<2.16",
    ">2.15.1",
    "<=2.15.1",
    "==2.15.1",
    "==2.15.*",
    "~=2.15.0",
    "~=2.15",
    "!=2.15.1",
    "==2.15.1+local",
    "==2.15",
    ">=2.15.0rc0",
    "<2.15.1.post1",
    "==2.*",
    "===2.15.1",
    ">=1!1.0",
    "==2.16.0.dev1",
    "<=2.15",
    ">=2.16.0,<2.17",
    "==3.0.*",
]
_VERSIONS = [
    "2.15.0",
    "2.15.1",
    "2.15.1+local",
    "2.15.1+other.7",
    "2.15.0rc1",
    "2.15.1.post1",
    "2.15.1.dev3",
    "2.15",
    "2.16.0",
    "2.16.0.dev1",
    "2.16.0+x",
    "1!1.0",
    "2.14.9",
    "2.15.0.0",
    "3.0.0a1",
    "2.15.2+z",
]


@pytest.mark.parametrize("spec", _SPECS)
def test_bounds_hold_every_version_the_specifier_contains(spec):
    low, high = _bounds(SpecifierSet(spec))
    for text in _VERSIONS:
        if SpecifierSet(spec).contains(Version(text), prereleases=True):
            key = _public(text)
            assert low is None or low <= key, (spec, text, low)
            assert high is None or key <= high, (spec, text, high)


class _Rel:
    def __init__(self, n, spec, releases):
        self.versions = SpecifierSet(spec)
        self.releases = releases
        self.label = f"[[tensorflow]] #{n} {spec!r}"


def test_same_error_as_the_all_pairs_test():
    rng = random.Random(17)
    for _ in range(300):
        tf = []
        for n in range(1, rng.randint(2, 6)):
            spec = ",".join(rng.sample(_SPECS[:-3], rng.randint(1, 2)))
            tf.append(_Rel(n, spec, rng.sample(_VERSIONS, rng.randint(0, 3))))
        errors = []
        for check in (_all_pairs, _no_release_twice):
            try:
                check("m.toml", tf)
                errors.append(None)
            except MatrixError as exc:
                errors.append(str(exc))
        assert errors[0] == errors[1], [(r.label, r.releases) for r in tf]


def test_shipped_specs_never_lose_a_release():
    m = parse_matrix(default_matrix_path().read_text(encoding="utf-8"), "m.toml")
    for rel, r in itertools.product(m.tensorflow, m.tf_releases()):
        if rel.versions.contains(Version(r), prereleases=True):
            low, high = _bounds(rel.versions)
            assert (low is None or low <= _public(r)) and (high is None or _public(r) <= high)
