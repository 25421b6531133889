"""4xx from the binaries: TensorFlow's own ROCm-linked objects against the ROCm the loader picks (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, RocmObject, Severity
from tfcompat.rules._common import required_tf, tf_evidence, tf_label
from tfcompat.rules.rocm import binary_gfx, rocm_range

Result = Iterator[Union[Hit, NotApplicable]]
# ROCm's library families by name (HIP, HSA, RCCL, roc*/hip* math libraries, MIOpen): what this rule judges.
_ROCM_PREFIXES = ("libamd", "libhsa", "libroc", "libhip", "librccl", "libMIOpen")
_Verdict = tuple[str, tuple[Evidence, ...], str]


def _is_rocm(name: str) -> bool:
    return name.startswith(_ROCM_PREFIXES)


def _installed(env: Environment) -> str:
    rocm = env.host.rocm
    return f"ROCm {rocm.version}" if rocm is not None and rocm.version else "no ROCm version file"


@rule("TFC403", "rocm-library-unresolved", Severity.ERROR, requires=("tensorflow", "tensorflow.rocm_objects"))
def rocm_library_unresolved(env: Environment, matrix: Matrix) -> Result:
    """One of TensorFlow's own ROCm-linked objects needs a ROCm library, symbol version or symbol that the
    ROCm the loader picks does not provide.

    What: tensorflow-rocm's _pywrap_tensorflow_internal.so, libtensorflow_framework.so.2 and
    libtensorflow_cc.so.2 link the HIP runtime (libamdhip64.so.<ROCm major>), HSA and RCCL by soname.
    tfcompat resolves each DT_NEEDED with its model of the dynamic loader (RUNPATH, ld.so.cache,
    default directories, under --root) and looks every undefined symbol up in the objects that would
    be loaded, with the symbol versions they ask for (libamdhip64 versions its API: hip_4.2 ... hip_6.0).

    Why it crashes: `import tensorflow` fails with "libamdhip64.so.4: cannot open shared object file:
    No such file or directory" when the wheel's ROCm major is not installed, and with "undefined symbol:
    hipMallocAsync" (or "version `hip_6.0' not found") when the installed ROCm is older than the one
    the wheel was built with.

    How to fix: install the ROCm release the build was made for (tfcompat matrix tensorflow <version>
    and the DT_NEEDED names say which), make its lib directory visible to the loader (ldconfig or the
    ROCm packages' ld.so.conf.d entry), or install the tensorflow-rocm built for the installed ROCm.
    """
    tf = required_tf(env)
    objects = [o for o in tf.rocm_objects if o.checked]
    if not objects:
        yield NotApplicable(f"{tf_label(tf)}: no ROCm-linked object of TensorFlow was checked")
        return
    for obj in objects:
        hit = _unresolved(env, matrix, obj)
        if hit is not None:
            yield Hit(hit[0], (tf_evidence(tf),) + hit[1], hit[2])


def _unresolved(env: Environment, matrix: Matrix, obj: RocmObject) -> Optional[_Verdict]:
    rocm_missing = [n for n in obj.missing_libraries if _is_rocm(n)]
    versions = [v for v in obj.missing_versions if _is_rocm(v.partition("(")[2])]
    installed = _installed(env)
    picked = Evidence("ROCm libraries the loader picks", "; ".join(obj.rocm_resolved) or "none", obj.path)
    if rocm_missing:
        known = [matrix.rocm_soname(n) for n in rocm_missing]
        ships = [f"{n} comes with ROCm {rocm_range(k.rocm)}" for n, k in zip(rocm_missing, known) if k is not None]
        evidence = tuple(Evidence(f"DT_NEEDED of {obj.path}", n, "loader model: found nowhere") for n in rocm_missing)
        evidence += tuple(
            Evidence(f"[[rocm_soname]] {k.soname}", rocm_range(k.rocm), ", ".join(k.source)) for k in known if k
        )
        return (
            f"{obj.path} needs {', '.join(rocm_missing)}, which the loader finds nowhere ({installed} is "
            f"installed{'; ' + '; '.join(ships) if ships else ''}): import tensorflow fails with "
            f'"{rocm_missing[0]}: cannot open shared object file"',
            evidence + (picked,),
            "Install the ROCm release these libraries belong to (or the tensorflow-rocm built for "
            f"{installed}), and make its lib directory known to the loader (ldconfig).",
        )
    if versions or obj.undefined_count:
        names = ", ".join(obj.undefined[:5]) + (" ..." if obj.undefined_count > 5 else "")
        what = []
        if versions:
            what.append(f"symbol versions {', '.join(versions)}")
        if obj.undefined_count:
            what.append(f"{obj.undefined_count} undefined symbols ({names})")
        evidence = (Evidence(f"undefined in {obj.path}", names or "-", "its dynamic symbol table"),)
        evidence += tuple(Evidence(f"version needed by {obj.path}", v, ".gnu.version_r") for v in versions)
        return (
            f"{obj.path} needs {' and '.join(what)} that none of the libraries the loader picks defines "
            f'({installed}): import tensorflow fails with "undefined symbol"',
            evidence + (picked,),
            f"Install the ROCm release the build was made for (newer than {installed}), or the "
            "tensorflow-rocm built for the installed ROCm.",
        )
    return None


@rule("TFC404", "rocm-gfx-table-differs", Severity.INFO, requires=("tensorflow", "tensorflow.rocm_objects"))
def rocm_gfx_table_differs(env: Environment, matrix: Matrix) -> Result:
    """The gfx targets read from TensorFlow's own objects differ from the matrix's list for this release.

    What: the .hip_fatbin sections of TF's ROCm-linked libraries hold clang offload bundles whose entry
    IDs name the GPU targets (hipv4-amdgcn-amd-amdhsa--gfx90a); the matrix's [[tensorflow_rocm]] entry
    states the list AMD published or that was read from the PyPI wheel.

    Why it crashes: it does not by itself; TFC402 trusts the binaries. A difference means this build is
    not the one the matrix describes (a source or vendor build under the same version), or the matrix
    is stale.

    How to fix: nothing to fix on the node; report the difference so the matrix entry is corrected, and
    judge GPU support by the targets read from the binaries.
    """
    tf = required_tf(env)
    binaries = binary_gfx(tf)
    entry = next((e for e in matrix.tensorflow_rocm if tf.version in e.releases and e.gfx), None)
    if binaries is None or entry is None:
        yield NotApplicable(f"{tf_label(tf)}: gfx targets not known from both its objects and the matrix")
        return
    gfx, source = binaries
    if set(gfx) == set(entry.gfx):
        return
    extra, lacking = sorted(set(gfx) - set(entry.gfx)), sorted(set(entry.gfx) - set(gfx))
    yield Hit(
        message=f"{tf_label(tf)}'s objects carry code for {', '.join(gfx)}; the matrix lists {', '.join(entry.gfx)}"
        + (f" (not in the objects: {', '.join(lacking)})" if lacking else "")
        + (f" (not in the matrix: {', '.join(extra)})" if extra else ""),
        evidence=(
            tf_evidence(tf),
            Evidence("gfx targets in .hip_fatbin", " ".join(gfx), source),
            Evidence("matrix gfx targets", " ".join(entry.gfx), ", ".join(entry.source)),
        ),
        remediation="Judge by the binaries (TFC402 does); report the difference to update the matrix entry.",
    )
