"""3xx: the ABI TensorFlow's native objects meet: the symbol versions of libc/libstdc++ the loader picks
(TFC306), the CPU instructions the build uses (TFC307)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.engine.registry import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import required_tf, tf_label
from tfcompat.rules._libraries import (
    TF_OBJECTS,
    gpu_presence,
    is_driver_soname,
    native_of,
)

Result = Iterator[Union[Hit, NotApplicable]]


# -- TFC306 --------------------------------------------------------------------------------------------


def _tf_own(path: str, env: Environment) -> bool:
    """One of TensorFlow's own objects: by name, or by place (inside its package, tensorflow_core/ of the 1.15-2.1
    layout included), so that any object of an old layout counts too."""
    if posixpath.basename(path).startswith(TF_OBJECTS):
        return True
    tf = env.tensorflow
    if tf is None:
        return False
    dirs = [posixpath.join(tf.location, name) for name in ("tensorflow", "tensorflow_core")]
    dirs += [tf.package_dir] if tf.package_dir else []
    return any(path.startswith(d.rstrip("/") + "/") for d in dirs)


# Requires "tensorflow" only: the symbol-version needs are read from TF's own objects even when the list of CUDA
# libraries is unknown (no [[dlopen]] table for the build, a scan cut short), so an unknown "libraries" is no skip.
@rule("TFC306", "symbol-version-not-found", Severity.ERROR, requires=("tensorflow",))
def symbol_version_not_found(env: Environment, matrix: Matrix) -> Result:
    """GLIBC / GLIBCXX / CXXABI versions that TensorFlow's objects need are not defined by the library the loader picks.

    What: reads the symbol versions each of TensorFlow's own shared objects (and each CUDA library it
    loads) needs from its DT_NEEDED libraries (.gnu.version_r: GLIBC_2.27, GLIBCXX_3.4.22,
    CXXABI_1.3.11, ...) and checks them against the versions defined (.gnu.version_d) by the libc,
    libstdc++, libgcc_s, libm that the loader picks for that object, e.g. a conda or vendored
    libstdc++ found first through LD_LIBRARY_PATH. A needed library that is not found at all is
    reported too. For CUDA libraries the severity is an error only on a node with GPUs.

    Why it crashes: `import tensorflow` fails with ImportError: "version `GLIBCXX_3.4.30' not found
    (required by .../libtensorflow_cc.so.2)" or "libstdc++.so.6: cannot open shared object file";
    for a CUDA library the same message appears at the first GPU op.

    How to fix: put a newer libstdc++ / glibc first (remove an old conda `lib` directory from
    LD_LIBRARY_PATH, `conda install -c conda-forge "libstdcxx-ng>=12"`), or use a TensorFlow built for
    the older system (an older release, or a manylinux image with a newer glibc).
    """
    native = native_of(env)
    if native is None:
        yield NotApplicable(
            env.unknown("libraries") or "the libraries TensorFlow loads were not resolved (no snapshot data)"
        )
        return
    has_gpus, _gpus_text, gpus_ev = gpu_presence(env)
    problems = [c for c in native.abi if c.missing or c.provider is None]
    if not native.abi:
        yield NotApplicable("no symbol-version needs were read")
        return
    groups: dict[tuple[str, Optional[str]], list] = {}
    for c in problems:
        if is_driver_soname(c.library):
            continue
        groups.setdefault((c.library, c.provider), []).append(c)
    for (library, provider), checks in groups.items():
        own = [c for c in checks if _tf_own(c.object, env)]
        objects = ", ".join(posixpath.basename(c.object) for c in checks)
        if provider is None:
            message = (
                f"{library}, needed by {objects}, is not found by the loader: "
                f'{"import tensorflow" if own else "loading it"} fails with "{library}: cannot open shared '
                'object file"'
            )
            evidence = tuple(Evidence(f"{posixpath.basename(c.object)} needs", library, c.object) for c in checks)
            fix = f"Install the package that provides {library} in the environment (or image)."
        else:
            missing = sorted({v for c in checks for v in c.missing})
            highest = sorted({h for c in checks for h in c.provider_highest})
            message = (
                f"{objects} need{'s' if len(checks) == 1 else ''} {', '.join(missing)} from {library}, but the "
                f"{library} the loader picks, {provider} (via {checks[0].provider_found_via}), defines only up "
                f"to {', '.join(highest) or 'none of them'}: "
                + (
                    f'import tensorflow fails ("version `{missing[0]}\' not found")'
                    if own
                    else f'loading it fails at the first GPU op ("version `{missing[0]}\' not found")'
                )
            )
            evidence = tuple(
                Evidence(f"{posixpath.basename(c.object)} needs", ", ".join(c.missing), c.object) for c in checks
            ) + (Evidence(f"{library} defines up to", ", ".join(highest), provider),)
            fix = (
                f"Make the loader find a {library} that defines {', '.join(missing)}: remove the directory of "
                f"{provider} from LD_LIBRARY_PATH if it is not the system one, or upgrade it "
                "(conda install -c conda-forge libstdcxx-ng for libstdc++), or use a TensorFlow built for this "
                "system."
            )
        severity = Severity.ERROR if own or has_gpus else Severity.WARNING
        if not own:
            evidence = evidence + (gpus_ev,)
        yield Hit(message=message, evidence=evidence, remediation=fix, severity=severity)


# -- TFC307 --------------------------------------------------------------------------------------------


@rule("TFC307", "cpu-instructions-missing", Severity.ERROR, requires=("tensorflow", "libraries", "platform.cpu_flags"))
def cpu_instructions_missing(env: Environment, matrix: Matrix) -> Result:
    """The CPU lacks instructions the TensorFlow build was compiled to use (AVX, AVX2, AVX-512).

    What: TensorFlow's x86-64 wheels are compiled with AVX since 1.6 (and intel-tensorflow-avx512 with
    AVX-512). This rule checks those instruction sets against the CPU flags of the node
    (/proc/cpuinfo).

    Why it crashes: `import tensorflow` aborts the interpreter (SIGABRT, "Illegal instruction" on
    older releases): "The TensorFlow library was compiled to use AVX instructions, but these aren't
    available on your machine." Old Xeons, some Atom/Celeron CPUs and emulators (QEMU without
    `-cpu host`) lack AVX.

    How to fix: run the job on a CPU with these instructions (or pass the host CPU through to the VM),
    or build TensorFlow from source without `-mavx`.
    """
    native = native_of(env)
    if native is None:
        yield NotApplicable("the libraries TensorFlow loads were not resolved (no snapshot data)")
        return
    if not native.cpu_instructions:
        yield NotApplicable("no CPU instruction requirement is known for this build (not x86-64)")
        return
    flags = set(env.host.platform.cpu_flags)
    missing = [f for f in native.cpu_instructions if f not in flags]
    if missing:
        tf = required_tf(env)
        names = ", ".join(m.upper() for m in missing)
        model = env.host.platform.cpu_model or "model unknown"
        yield Hit(
            message=f"{tf_label(tf)} was compiled to use {names}, but this CPU ({model}) does not have "
            f"{'it' if len(missing) == 1 else 'them'}: `import tensorflow` aborts "
            f"(\"The TensorFlow library was compiled to use {missing[0].upper()} instructions, but these aren't "
            'available on your machine")',
            evidence=(
                Evidence(
                    "tensorflow build CPU instructions",
                    ", ".join(native.cpu_instructions),
                    native.cpu_instructions_source,
                ),
                Evidence("platform.cpu_flags", f"no {', '.join(missing)}", "/proc/cpuinfo"),
            ),
            remediation="Run on a CPU with " + names + " (in a VM, pass the host CPU through: `-cpu host`), or build "
            "TensorFlow from source without -mavx.",
        )
