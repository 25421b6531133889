"""3xx: which copy of a CUDA library the loader picks: a shadowing copy (TFC304), mixed cuDNN sub-libraries (TFC305)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Union

from tfcompat.engine.registry import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import (
    Environment,
    Evidence,
    LibraryCopy,
    LibraryResolution,
    Severity,
)
from tfcompat.rules._libraries import (
    OFF_PATH,
    copy_evidence,
    cuda_libraries,
    describe,
)

Result = Iterator[Union[Hit, NotApplicable]]


# -- TFC304 --------------------------------------------------------------------------------------------


@rule("TFC304", "library-shadowed", Severity.WARNING, requires=("tensorflow", "libraries"))
def library_shadowed(env: Environment, matrix: Matrix) -> Result:
    """Another copy of a CUDA library wins over the one the environment installed, or copies disagree.

    What: for each library TensorFlow loads, lists every copy on the loader's search path. A warning
    when the environment's own copy (from an nvidia-* wheel, or a conda package whose conda-meta record
    lists the file) loses to another one, typically a system toolkit in LD_LIBRARY_PATH (searched before
    TF's DT_RUNPATH, and before $CONDA_PREFIX/lib when that comes later in it) or a copy already loaded by
    the process; info when several copies of different versions are on the path but the right one wins.

    Why it crashes: the winning copy is not the version pip resolved against TensorFlow's requirements:
    an older cuBLAS or cuDNN fails TensorFlow's version checks or lacks symbols ("undefined symbol:
    cublasLt..."), and two copies of one library in one process (a custom op or another package that
    finds the other copy through ld.so.cache) crash in unrelated places.

    How to fix: remove the directory of the shadowing copy from LD_LIBRARY_PATH (or LD_PRELOAD), or
    uninstall the copy you do not want; keep exactly one copy of each CUDA library visible.
    """
    native = cuda_libraries(env)
    if isinstance(native, NotApplicable):
        yield native
        return
    disagree: list[tuple[LibraryResolution, LibraryCopy, list[LibraryCopy]]] = []  # (lib, winner, others)
    for lib in native.libraries:
        if lib.role == "driver" or lib.found is None or lib.found.problem:
            continue
        on_path = [c for c in lib.others if c.found_via not in OFF_PATH and not c.problem]
        # only a wheel's or conda package's copy the loader would otherwise reach is shadowed; one off the
        # search path is not (removing the winner would leave nothing to load): TFC301's hints cover that case
        wheel = [c for c in on_path if c.distribution]
        if wheel and not lib.found.distribution:
            intended = wheel[0]
            yield Hit(
                message=f"{lib.soname}: {describe(lib.found)} shadows {describe(intended)}, the copy "
                "this environment installed for TensorFlow",
                evidence=(
                    copy_evidence(lib, lib.found, f"{lib.soname} loaded"),
                    copy_evidence(lib, intended, f"{lib.soname} installed"),
                )
                + (
                    (Evidence("LD_LIBRARY_PATH", native.ld_library_path, "environment"),)
                    if lib.found.found_via == "LD_LIBRARY_PATH" and native.ld_library_path
                    else ()
                ),
                remediation=_shadow_fix(lib.found),
            )
            continue
        versions = {c.version for c in on_path if c.version} - {lib.found.version}
        if versions:
            disagree.append((lib, lib.found, [c for c in on_path if c.version in versions]))
    if disagree:
        yield Hit(
            message="other versions of libraries TensorFlow loads are on the search path (the right copy wins, but "
            "another caller can load the other one): "
            + "; ".join(
                f"{lib.soname}: {_winner(found)} wins, also {', '.join(describe(c) for c in cs)}"
                for lib, found, cs in disagree
            ),
            evidence=tuple(copy_evidence(lib, c, f"{lib.soname} other copy") for lib, _, cs in disagree for c in cs),
            remediation="Remove the copies you do not use (or their directory from LD_LIBRARY_PATH / ld.so.conf) so "
            "that every caller gets the same library.",
            severity=Severity.INFO,
        )


def _winner(c: LibraryCopy) -> str:
    """The winning copy as the message names it: its version, or its path where the version is unknown."""
    return c.version if c.version else f"a copy of unknown version ({c.real_path})"


def _shadow_fix(c: LibraryCopy) -> str:
    d = posixpath.dirname(c.path)
    if c.found_via == "LD_LIBRARY_PATH":
        return f"Remove {c.search_entry} from LD_LIBRARY_PATH (it is searched before TensorFlow's DT_RUNPATH)."
    if c.found_via in ("LD_PRELOAD", "/etc/ld.so.preload"):
        return f"Remove {c.path} from {c.found_via}."
    if c.found_via == "already loaded":
        return f"Find what loads {c.real_path} before TensorFlow (LD_PRELOAD, the interpreter's libraries) and stop it."
    return f"Remove the copy in {d} or the entry that puts it first ({c.found_via})."


# -- TFC305 --------------------------------------------------------------------------------------------


@rule("TFC305", "cudnn-sublibrary-mixed", Severity.ERROR, requires=("tensorflow", "libraries"))
def cudnn_sublibrary_mixed(env: Environment, matrix: Matrix) -> Result:
    """The cuDNN sub-libraries the loader picks are not all of the version of libcudnn.so itself.

    What: libcudnn.so.N is a thin front that dlopen()s its sub-libraries (libcudnn_ops, libcudnn_cnn,
    libcudnn_adv, libcudnn_graph, libcudnn_engines_*, ...) by soname, with itself as the caller. Each
    one is resolved like the front; their versions (wheel metadata, file names) must all be equal.

    Why it crashes: a sub-library from another cuDNN (an LD_LIBRARY_PATH or ld.so.cache copy that
    comes before the front's own directory) fails cuDNN's own version check ("cuDNN version mismatch"
    / CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH) or with undefined symbols at the first convolution.

    How to fix: make one cuDNN installation visible: remove the other cuDNN's directory from
    LD_LIBRARY_PATH / ld.so.conf, or reinstall the wheel (`pip install --force-reinstall nvidia-cudnn-cu12`).
    """
    native = cuda_libraries(env)
    if isinstance(native, NotApplicable):
        yield native
        return
    front = next((x for x in native.libraries if x.name == "cudnn"), None)
    # (library, the copy the loader picks) pairs, so the found copy is typed as present
    subs = [(x, x.found) for x in native.libraries if x.role == "cudnn-sublibrary" and x.found and not x.found.problem]
    if front is None or front.found is None or front.found.problem or not subs:
        yield NotApplicable("no cuDNN with sub-libraries is loaded")
        return
    front_copy = front.found
    loaded = [(front, front_copy)] + subs
    by_version: dict[str, list[tuple[LibraryResolution, LibraryCopy]]] = {}
    for lib, found in loaded:
        by_version.setdefault(found.version or "unknown", []).append((lib, found))
    known = [v for v in by_version if v != "unknown"]
    if len(known) > 1:
        main = front_copy.version or "unknown"
        odd = [pair for v, pairs in by_version.items() if v != main for pair in pairs]
        yield Hit(
            message=f"cuDNN sub-libraries of mixed versions: {front.soname} is {main} ({front_copy.real_path}), but "
            + ", ".join(f"{lib.soname} is {c.version or 'unknown'} ({describe(c)})" for lib, c in odd),
            evidence=tuple(copy_evidence(lib, c) for lib, c in [(front, front_copy)] + odd),
            remediation=_shadow_fix(odd[0][1]) if odd else "Install one cuDNN.",
        )
        return
    dirs = {posixpath.dirname(c.real_path) for _, c in loaded}
    if "unknown" in by_version and len(dirs) > 1:
        yield Hit(
            message=f"cuDNN sub-libraries come from {len(dirs)} directories ({', '.join(sorted(dirs))}) and their "
            "versions cannot all be read: they may be of mixed versions",
            evidence=tuple(copy_evidence(lib, c) for lib, c in loaded),
            remediation="Keep one cuDNN installation visible to the loader.",
            severity=Severity.WARNING,
        )
