"""What keeps a matrix honest beyond its shape (`tfcompat matrix validate` and tests/test_matrix.py)."""

from __future__ import annotations

import datetime
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tfcompat.matrix.entries import CC_DROPPED, CC_NATIVE, Companion
from tfcompat.matrix.lookup import Matrix, cudnn_low


def _lower(spec: SpecifierSet) -> Optional[Version]:
    lows = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=", ">") and "*" not in s.version]
    return min(lows) if lows else None


def invariant_problems(matrix: Matrix, today: Optional[datetime.date] = None) -> list[str]:
    """What keeps a matrix honest beyond its shape, one line each (empty: none): every CUDA a release
    names has driver facts and a sonames table, entries sorted, no dates in the future, companion ranges
    disjoint."""
    today = today or datetime.date.today()
    out: list[str] = []
    p = matrix.path
    lows = []
    for rel in matrix.tensorflow:
        low = _lower(rel.versions)
        if low is None:
            out.append(f"{p}: {rel.label}: versions has no lower bound")
            continue
        lows.append((low, rel.label))
        if rel.cuda is not None:
            if matrix.cuda_toolkit(str(rel.cuda)) is None:
                out.append(f"{p}: {rel.label}: cuda {rel.cuda} has no [[cuda]] entry (driver facts)")
            if matrix.cuda_major_info(rel.cuda.major) is None:
                out.append(f"{p}: {rel.label}: cuda {rel.cuda} has no [[cuda_major]] {rel.cuda.major} entry")
            if matrix.facts.dlopen and matrix.facts.dlopen_table(rel.cuda.major) is None:
                out.append(f"{p}: {rel.label}: cuda {rel.cuda} has no [[dlopen]] {rel.cuda.major} table (sonames)")
            # an entry with no sonames is a fact too (cuDNN 7 is one library)
            if (
                rel.cudnn is not None
                and matrix.facts.cudnn
                and rel.cudnn.major not in {c.cudnn_major for c in matrix.facts.cudnn}
            ):
                out.append(f"{p}: {rel.label}: cudnn {rel.cudnn} has no [[cudnn_sublibraries]] {rel.cudnn.major} entry")
        for cc in rel.sass:
            if matrix.compute_capability(cc) is None:
                out.append(f"{p}: {rel.label}: compute capability {cc} has no [[compute_capability]] entry")
    for (a, la), (b, lb) in zip(lows, lows[1:]):
        if b <= a:
            out.append(f"{p}: {lb}: not sorted: its lowest version {b} is not above {la}'s {a}")
    for ta, tb in zip(matrix.cuda, matrix.cuda[1:]):
        if tb.version <= ta.version:
            out.append(f"{p}: [[cuda]] {tb.version}: not sorted (comes after {ta.version})")
        if tb.min_driver < ta.min_driver:
            out.append(
                f"{p}: [[cuda]] {tb.version}: min_driver {tb.min_driver_text} is below {ta.version}'s "
                f"{ta.min_driver_text}"
            )
    majors = [m.major for m in matrix.cuda_majors]
    if majors != sorted(majors):
        out.append(f"{p}: [[cuda_major]] entries are not sorted by major")
    by_package: dict[str, list[Companion]] = {}
    for c in matrix.companions:
        by_package.setdefault(c.package, []).append(c)
    for _package, entries in by_package.items():
        for i, ca in enumerate(entries):
            for cb in entries[i + 1 :]:
                low_a, low_b = _lower(ca.versions), _lower(cb.versions)
                if (low_a is not None and cb.versions.contains(low_a, prereleases=True)) or (
                    low_b is not None and ca.versions.contains(low_b, prereleases=True)
                ):
                    out.append(f"{p}: {cb.label}: versions {cb.versions} overlaps {ca.label}")
    out += _cudnn_problems(matrix)
    dated: list[tuple[str, datetime.date]] = [(e.label, e.checked) for e in matrix.tensorflow]
    dated += [(f"[[cuda]] {t.version}", t.checked) for t in matrix.cuda]
    dated += [(f"[[cuda_major]] {m.major}", m.checked) for m in matrix.cuda_majors]
    f = matrix.facts
    for group in (
        matrix.compute_capabilities,
        matrix.cudnn,
        matrix.tensorflow_rocm,
        matrix.rocm,
        matrix.rocm_sonames,
        matrix.companions,
        matrix.known_bad_drivers,
        matrix.waivers,
        f.libraries,
        f.dlopen,
        f.tensorrt,
        f.cudnn,
        f.distributions,
        f.companion_modules,
        f.threshold_entries,
        matrix.forward_compat_packages,
        matrix.driver_gpu_support,
    ):
        dated += [(e.label, e.checked) for e in group]
    for single, name in (
        (matrix.forward_compatibility, "[forward_compatibility]"),
        (matrix.cudnn_runtime, "[cudnn_runtime]"),
        (f.cpu, "[cpu_needs]"),
        (f.driver, "[driver_libraries]"),
    ):
        if single is not None:
            dated.append((name, single.checked))
    dated.append(("[meta] updated", matrix.updated))
    for label, date in dated:
        if date > today:
            out.append(f"{p}: {label}: checked {date} is in the future")
    return out


def _cudnn_problems(matrix: Matrix) -> list[str]:
    """[[cudnn]]: every row has a lower bound; hardware forward compatibility only where NVIDIA documents it
    (cuDNN >= 9.0 built with CUDA >= 12); an architecture a confirmed row dropped is not native again in a
    later confirmed row of the same CUDA major (NVIDIA has not re-added a dropped architecture)."""
    p = matrix.path
    out: list[str] = []
    rows = []
    for e in matrix.cudnn:
        low = cudnn_low(e)
        if low is None:
            out.append(f"{p}: {e.label}: versions has no lower bound")
            continue
        rows.append((low, e))
        if e.forward_compatible and (low.major < 9 or e.cuda_major < 12):
            out.append(f"{p}: {e.label}: forward_compatible needs cuDNN >= 9.0 built with CUDA >= 12")
    for low_a, a in rows:
        if not a.confirmed:
            continue
        for low_b, b in rows:
            if b is a or not b.confirmed or b.cuda_major != a.cuda_major or low_b <= low_a:
                continue
            for cc in b.compute_capabilities:
                if a.cc_status(cc) == CC_DROPPED and b.cc_status(cc) == CC_NATIVE:
                    out.append(f"{p}: {b.label}: lists compute capability {cc}, which the older {a.label} dropped")
    return out
