"""Parse data/compat_matrix.toml into a `Matrix` (the per-table parsers are in `tables`).

Errors are one `MatrixError` line naming the file, the entry and the field; unknown tables and keys
are errors. `load_matrix` reads the shipped file (or `--matrix FILE`) and adds site overlays.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tfcompat.matrix import cache
from tfcompat.matrix.entries import (
    DriverBranch,
    RocmSoname,
    TFRelease,
)
from tfcompat.matrix.facts import WorldFacts
from tfcompat.matrix.facts_load import FACT_TABLES, parse_facts
from tfcompat.matrix.fields import (
    MatrixError,
    default_matrix_path,
    load_toml,
    read_meta,
    read_text,
    single,
    table_list,
    unique,
)
from tfcompat.matrix.forward_compat import parse_forward_compat_tables
from tfcompat.matrix.lookup import Matrix
from tfcompat.matrix.overlay import known_bad_driver, load_overlay
from tfcompat.matrix.stack_tables import (
    companion,
    cudnn_release,
    cudnn_runtime,
    driver_branch,
    rocm_release,
    rocm_soname,
    tf_platform_build,
    tf_rocm_release,
)
from tfcompat.matrix.tables import compute_capability, cuda_major, cuda_toolkit, forward_compat, tf_release

MATRIX_TABLES = (
    "meta",
    "tensorflow",
    "cuda",
    "cuda_major",
    "forward_compatibility",
    "compute_capability",
    "cudnn",
    "cudnn_runtime",
    "tensorflow_rocm",
    "rocm",
    "rocm_soname",
    "tensorflow_platform",
    "driver_branch",
    "companion",
    "known_bad_driver",
    "forward_compat_package",
    "driver_gpu_support",
) + FACT_TABLES


def parse_matrix(text: str, path: str = "<matrix>") -> Matrix:
    doc = cache.parsed(text, lambda t: load_toml(t, path))
    meta = doc.get("meta")
    if isinstance(meta, dict) and meta.get("kind") == "overlay":
        raise MatrixError(f"{path}: is a site overlay ([meta] kind = 'overlay'), not a matrix: use --matrix-overlay")
    unknown = [t for t in doc if t not in MATRIX_TABLES]
    if unknown:
        raise MatrixError(f"{path}: unknown table {sorted(unknown)[0]!r}")
    updated, _ = read_meta(path, doc)
    tf = table_list(path, doc, "tensorflow", "versions", tf_release)
    _no_release_twice(path, tf)
    cuda = table_list(path, doc, "cuda", "version", cuda_toolkit)
    unique(path, "cuda", [(str(t.version), t) for t in cuda])
    majors = table_list(path, doc, "cuda_major", "major", cuda_major)
    unique(path, "cuda_major", [(str(m.major), m) for m in majors])
    fc_ctx = single(path, doc, "forward_compatibility")
    rt_ctx = single(path, doc, "cudnn_runtime")
    ccs = table_list(path, doc, "compute_capability", "capabilities", compute_capability)
    unique(path, "compute_capability", [(c, e) for e in ccs for c in e.capabilities])
    fc_packages, gpu_support = parse_forward_compat_tables(path, doc)
    return Matrix(
        path=path,
        updated=updated,
        tensorflow=tf,
        cuda=cuda,
        cuda_majors=majors,
        forward_compatibility=forward_compat(fc_ctx) if fc_ctx else None,
        compute_capabilities=ccs,
        cudnn=table_list(path, doc, "cudnn", "versions", cudnn_release),
        cudnn_runtime=cudnn_runtime(rt_ctx) if rt_ctx else None,
        tensorflow_rocm=table_list(path, doc, "tensorflow_rocm", "releases", tf_rocm_release),
        rocm=table_list(path, doc, "rocm", "rocm", rocm_release),
        tensorflow_platforms=table_list(path, doc, "tensorflow_platform", "package", tf_platform_build),
        driver_branches=_driver_branches(path, doc),
        companions=table_list(path, doc, "companion", "package", companion),
        known_bad_drivers=table_list(path, doc, "known_bad_driver", "versions", known_bad_driver),
        facts=parse_facts(path, doc),
        rocm_sonames=_rocm_sonames(path, doc),
        forward_compat_packages=fc_packages,
        driver_gpu_support=gpu_support,
    )


def _rocm_sonames(path: str, doc: dict[str, Any]) -> tuple[RocmSoname, ...]:
    sonames: tuple[RocmSoname, ...] = table_list(path, doc, "rocm_soname", "soname", rocm_soname)
    unique(path, "rocm_soname", [(s.soname, s) for s in sonames])
    return sonames


def _driver_branches(path: str, doc: dict[str, Any]) -> tuple[DriverBranch, ...]:
    branches: tuple[DriverBranch, ...] = table_list(path, doc, "driver_branch", "branch", driver_branch)
    unique(path, "driver_branch", [(str(b.branch), b) for b in branches])
    return branches


def _no_release_twice(path: str, tf: Sequence[TFRelease]) -> None:
    """No release is matched by two entries. A sweep over the releases in version order, each tested only
    against the entries whose bounds (`_bounds`) reach it: n log n for a matrix of disjoint ranges (#17
    item 8: the all-pairs test took 34 s for 3,000 entries). The error names the pair the all-pairs test
    named: the first entry in file order, its first such release, the first other entry that matches it."""
    bounds = [_bounds(rel.versions) for rel in tf]
    releases = sorted((_public(r), i, j, Version(r)) for i, rel in enumerate(tf) for j, r in enumerate(rel.releases))
    zero = Version("0")
    # entries by their low bound (unbounded first), each with (low known, low)
    by_low = sorted(((b[0] is not None, b[0] or zero), k) for k, b in enumerate(bounds))
    active: list[tuple[tuple[bool, Version], int]] = []  # heap of ((bounded above, high), entry)
    nxt = 0
    first: Optional[tuple[int, int, int]] = None  # (entry, release index, other entry)
    for key, i, j, v in releases:
        while nxt < len(by_low) and (not by_low[nxt][0][0] or by_low[nxt][0][1] <= key):
            k = by_low[nxt][1]
            high = bounds[k][1]
            heapq.heappush(active, ((high is not None, high if high is not None else zero), k))
            nxt += 1
        while active and active[0][0][0] and active[0][0][1] < key:
            heapq.heappop(active)  # ends below this release, so below every later one
        if first is not None and (i, j) > first[:2]:
            continue  # cannot come before the error already found
        others = [k for _, k in active if k != i and tf[k].versions.contains(v, prereleases=True)]
        if others:
            first = (i, j, min(others))
    if first is not None:
        i, j, k = first
        raise MatrixError(f"{path}: {tf[i].label}: releases {tf[i].releases[j]!r} is also matched by {tf[k].label}")


def _public(text: str) -> Version:
    return Version(Version(text).public)


def _bounds(spec: SpecifierSet) -> tuple[Optional[Version], Optional[Version]]:
    """Inclusive (low, high), in public versions (the local label dropped), between which lie the public
    versions of all that `spec` contains; None: unbounded. Loose is fine (a filter: `contains` decides),
    too tight would hide a release matched twice (tests/test_matrix_scale.py checks it against all pairs)."""
    low: Optional[Version] = None
    high: Optional[Version] = None
    for s in spec:
        op, text = s.operator, s.version
        lo = hi = None
        try:
            if op in (">=", ">"):
                lo = _public(text)
            elif op in ("<=", "<"):
                hi = _public(text)
            elif op == "==" and not text.endswith(".*"):
                lo = hi = _public(text)
            elif op in ("==", "~="):  # a release prefix: 2.15.* and ~=2.15.0 lie below 2.16.dev0
                v = Version(text[:-2] if op == "==" else text)
                prefix = v.release if op == "==" else v.release[:-1]
                lo = v if op == "~=" else Version(f"{v.epoch}!{'.'.join(map(str, prefix))}.dev0")
                if prefix:
                    bumped = list(prefix[:-1]) + [prefix[-1] + 1]
                    hi = Version(f"{v.epoch}!{'.'.join(map(str, bumped))}.dev0")
        except InvalidVersion:
            continue  # no bound from this one
        if lo is not None and (low is None or lo > low):
            low = lo
        if hi is not None and (high is None or hi < high):
            high = hi
    return low, high


@functools.lru_cache(maxsize=1)
def shipped_facts() -> WorldFacts:
    """The world facts of the shipped matrix: what a probe called without a matrix reads (loaded once)."""
    return load_matrix().facts


def load_matrix(path: Optional[Path] = None, overlays: Sequence[Path] = ()) -> Matrix:
    path = Path(path) if path is not None else default_matrix_path()
    matrix = parse_matrix(read_text(path, "matrix"), str(path))
    for overlay in overlays:  # an overlay's [thresholds] may name the keys this matrix has defaults for
        matrix = matrix.with_overlay(load_overlay(overlay, tuple(matrix.facts.thresholds)))
    return matrix


def file_kind(path: Path) -> str:
    """'matrix' or 'overlay', from [meta] kind (for `tfcompat matrix validate`)."""
    path = Path(path)
    doc = load_toml(read_text(path, "file"), str(path))
    meta = doc.get("meta")
    return "overlay" if isinstance(meta, dict) and meta.get("kind") == "overlay" else "matrix"
