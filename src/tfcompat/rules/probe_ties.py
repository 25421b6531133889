"""Why a failed import failed: the static finding (TFC104, TFC105, ...) or the fatal log line that explains it.

TFC701 and TFC702 append the tie to their message, so a crash names its cause where tfcompat knows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from packaging.utils import canonicalize_name

from tfcompat.matrix import Matrix
from tfcompat.matrix.abi_floors import PROTOBUF_FIX
from tfcompat.model import Environment, Evidence, LogLine, ProbeResult
from tfcompat.rules._common import (
    numpy_abi_conflict,
    requirements,
    tf_label,
    version_of,
)
from tfcompat.rules._probe import NUMPY_PATTERNS
from tfcompat.rules.abi_floors import numpy_below_build, protobuf_gencode_conflict


def tie(
    env: Environment, matrix: Matrix, probe: ProbeResult, module: Optional[str], lines, ev: list[Evidence]
) -> tuple[Optional[str], Optional[str]]:
    """(message suffix, fix) from the static finding or the fatal log line that explains a failed import;
    appends the tie's evidence to `ev`. (None, None) when nothing explains it."""
    found = _numpy_tie(env, matrix, probe) or _companion_tie(env, matrix, module)
    if found is not None:
        explanation, fix, tie_ev = found
        ev.append(tie_ev)
        return f"; {explanation}", fix
    line_tie = _line_tie(env, matrix, lines)
    if line_tie is not None:
        return f"; {line_tie[0]}", line_tie[1]
    return None, None


def _numpy_tie(env: Environment, matrix: Matrix, probe: ProbeResult) -> Optional[tuple[str, str, Evidence]]:
    """(explanation, remediation, evidence) when NumPy's ABI explains the failure, as TFC105 judges it."""
    numpy_said = any(ln.pattern in NUMPY_PATTERNS for ln in probe.log_lines) or any(
        s in (probe.error or "") + (probe.traceback or "")
        for s in (
            "_ARRAY_API not found",
            "numpy.core.multiarray failed to import",
            "numpy.core.umath failed to import",
            "numpy.core._multiarray_umath failed to import",
            "compiled using NumPy 1.x",
            "compiled against API version",  # an older NumPy than the build's C API (TFC111)
            "compiled against NumPy C-API version",
            "No module named 'numpy.core._multiarray_umath'",
        )
    )
    if not numpy_said:
        return None
    numpy = env.package("numpy")
    if numpy is None:
        return None
    ev = Evidence(f"package {numpy.name}", numpy.version, numpy.metadata_path)
    tf = env.tensorflow
    if tf is not None and numpy_abi_conflict(env, matrix) is not None:
        return (
            f"explained by TFC105 numpy2-with-numpy1-build: NumPy {numpy.version} is installed and "
            f"{tf_label(tf)} was built against NumPy 1",
            'pip install "numpy<2"  (or upgrade to TensorFlow >= 2.18, built for NumPy 2)',
            ev,
        )
    floor = numpy_below_build(env, matrix)
    if tf is not None and floor is not None:
        return (
            f"explained by TFC111 numpy-older-than-build: NumPy {numpy.version} is installed and "
            f"{tf_label(tf)}'s extension modules need NumPy >= {floor}",
            f'pip install "numpy>={floor}"  (within TensorFlow\'s own numpy range)',
            ev,
        )
    v = version_of(numpy.version)
    if v is not None and v.major >= 2:
        return (
            f"NumPy {numpy.version} is installed and a native module on the import path was built "
            "against NumPy 1 (NumPy's own banner says so)",
            'pip install "numpy<2", or upgrade the package named in the traceback to a NumPy-2 build',
            ev,
        )
    return None


def _companion_tie(env: Environment, matrix: Matrix, module: Optional[str]) -> Optional[tuple[str, str, Evidence]]:
    """(explanation, remediation, evidence) when the failing companion declares another TF, as TFC104 judges."""
    dist = matrix.facts.companion_distribution(module)
    tf = env.tensorflow
    if dist is None or tf is None:
        return None
    pkg = env.package(dist)
    tf_v = version_of(tf.version)
    if pkg is None or tf_v is None:
        return None
    tf_names = matrix.facts.tf_distribution_names  # the names TFC104 judges by, too
    for req in requirements(env, pkg):
        if canonicalize_name(req.name) in tf_names and not req.specifier.contains(tf_v, prereleases=True):
            return (
                f"explained by TFC104 companion-package-mismatch: {pkg.display_name or pkg.name} "
                f"{pkg.version} requires {req}, but {tf_label(tf)} is installed",
                f'pip install "{pkg.name}=={tf_v.major}.{tf_v.minor}.*"  (the release built for TensorFlow '
                f"{tf_v.major}.{tf_v.minor}), or the TensorFlow it pins",
                Evidence(f"{pkg.name} Requires-Dist", str(req), pkg.metadata_path),
            )
    pv = version_of(pkg.version)
    if dist == "tensorflow-text" and pv is not None and (pv.major, pv.minor) != (tf_v.major, tf_v.minor):
        return (
            f"{pkg.name} {pkg.version} follows TensorFlow's numbering and is not the release for {tf_label(tf)}",
            f'pip install "tensorflow-text=={tf_v.major}.{tf_v.minor}.*"',
            Evidence(f"package {pkg.name}", pkg.version, pkg.metadata_path),
        )
    return None


def _line_tie(env: Environment, matrix: Matrix, lines: Sequence[LogLine]) -> Optional[tuple[str, str]]:
    """A tie from the kind of fatal line, where no package fact pins it down."""
    ids = {ln.pattern for ln in lines}
    gencode = protobuf_gencode_conflict(env, matrix) if "protobuf-descriptors" in ids else None
    if gencode is not None:
        pb = env.package("protobuf")
        return (
            f"explained by TFC110 protobuf-too-new-for-generated-code: protobuf {pb.version if pb else '?'} is "
            f"installed and TensorFlow's *_pb2.py modules were generated by {gencode}",
            f'pip install "protobuf<{PROTOBUF_FIX}"',
        )
    if "protobuf-descriptors" in ids:
        pb = env.package("protobuf")
        have = f"protobuf {pb.version} is installed; " if pb else ""
        return (
            f"{have}TensorFlow's generated _pb2 modules need the protobuf range it declares (TFC103 "
            "tensorflow-requirement-unmet checks it)",
            "pip install the protobuf range TensorFlow declares",
        )
    if "symbol-version-not-found" in ids:
        return (
            "a native library needs a newer glibc/libstdc++ than the loader found (TFC306 "
            "symbol-version-not-found checks TF's own objects)",
            "Put a libstdc++ at least as new as the one TF was built with first on the loader's path "
            "(e.g. remove an old conda libstdc++ from LD_LIBRARY_PATH), or use a newer OS image",
        )
    if "undefined-symbol" in ids or "symbol-lookup-error" in ids:
        return (
            "a native module was built against another release of a library it links to",
            "Reinstall the package named in the error for the installed TensorFlow release",
        )
    if "cpu-instructions-missing" in ids:
        return (
            "the CPU lacks instructions the build needs (TFC307 cpu-instructions-missing checks it)",
            "Run on a CPU with the instructions, or use a build without them",
        )
    return None
