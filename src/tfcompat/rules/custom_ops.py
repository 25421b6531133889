"""5xx: custom ops and plugins, judged symbol by symbol against the installed TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Union

from packaging.utils import canonicalize_name

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import CustomOp, Environment, Evidence, Severity
from tfcompat.rules._common import requirements, tf_label, version_of

Result = Iterator[Union[Hit, NotApplicable]]
SHOWN = 5  # failing objects named per finding

REBUILD = (
    "rebuild it against the installed TensorFlow with its own flags: "
    "g++ -std=c++17 -shared -fPIC op.cc -o op.so $(python -c 'import tensorflow as tf; "
    'print(" ".join(tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()))\')'
)


def explain(op: CustomOp) -> list[str]:
    """Why `op` fails, in words, where its recorded symbol facts tell."""
    if op.reasons:  # a snapshot of tfcompat <= 0.1.0 recorded its reasons in words, not the facts below
        return list(op.reasons)
    reasons = []
    ns = set(op.namespaces)
    if op.old_string_abi and ns & {"tensorflow", "tsl"}:
        reasons.append(
            "built with -D_GLIBCXX_USE_CXX11_ABI=0 (pre-C++11 std::string), but TensorFlow >= 2.9 uses the C++11 ABI"
        )
    if op.abseil:
        reasons.append(
            f"built against abseil {', '.join(op.abseil)}, which the installed TensorFlow does not "
            "contain (another TensorFlow release)"
        )
    if ns & {"tensorflow", "tsl", "xla"} and not reasons:
        reasons.append(
            "needs TensorFlow C++ internals that the installed TensorFlow does not define (built against "
            "another TensorFlow release)"
        )
    if op.c_api:
        reasons.append(f"uses C API symbols the installed TensorFlow no longer exports ({', '.join(op.c_api[:3])})")
    if op.missing_versions:
        reasons.append(
            "needs symbol versions its libraries do not define (built with a newer toolchain: "
            + ", ".join(v.split(" ")[0] for v in op.missing_versions[:3])
            + ")"
        )
    return reasons


def _by_owner(env: Environment, pred) -> dict[str, list[CustomOp]]:
    out: dict[str, list[CustomOp]] = {}
    for op in env.target.custom_ops:
        if pred(op):
            out.setdefault(op.owner, []).append(op)
    return out


def _short(env: Environment, op: CustomOp) -> str:
    for site in env.target.site_packages:
        if op.path.startswith(site.rstrip("/") + "/"):
            return op.path[len(site.rstrip("/")) + 1 :]
    return op.path


def _owner_label(env: Environment, owner: str) -> str:
    if owner == "--op":
        return "in-house op (--op)"
    pkg = env.package(owner)
    return f"{pkg.display_name} {pkg.version}" if pkg else owner


def _pin_evidence(env: Environment, matrix: Matrix, owner: str) -> list[Evidence]:
    """The package's own TensorFlow requirement: what it says it was built for."""
    pkg = env.package(owner)
    if pkg is None:
        return []
    return [
        Evidence(f"{pkg.name} Requires-Dist", str(r), pkg.metadata_path)
        for r in requirements(env, pkg)
        if canonicalize_name(r.name) in matrix.facts.tf_distribution_names
    ]


def _remedy(env: Environment, matrix: Matrix, owner: str, ops: list[CustomOp]) -> str:
    tf = env.tensorflow
    if any("CXX11_ABI=0" in r for op in ops for r in explain(op)):
        return (
            "Rebuild with -D_GLIBCXX_USE_CXX11_ABI=1 (TensorFlow >= 2.9 is built with the C++11 ABI); best, "
            + REBUILD
            + "."
        )
    if owner == "--op":
        return REBUILD[0].upper() + REBUILD[1:] + "."
    v = version_of(tf.version) if tf else None
    pkg = env.package(owner)
    matching = [
        c for c in (matrix.companions_for(tf.version) if tf and v else []) if canonicalize_name(c.package) == owner
    ]
    if matching and v is not None:
        return (
            f'pip install "{pkg.display_name if pkg else owner}{matching[0].versions}" (the release built for '
            f"TensorFlow {v.major}.{v.minor}), or the TensorFlow release it was built for."
        )
    if v is not None:
        return (
            f"Install the {owner} release built for TensorFlow {v.major}.{v.minor}, or the TensorFlow it was "
            "built for; if none exists, " + REBUILD + "."
        )
    return "Install the release of this package built for the installed TensorFlow."


def _precheck(env: Environment):
    reason = env.unknown("custom_ops")
    if reason and not env.target.custom_ops:
        return NotApplicable(f"custom ops not checked: {reason}")
    return None


@rule("TFC501", "custom-op-undefined-symbols", Severity.ERROR, requires=("tensorflow",))
def undefined_symbols(env: Environment, matrix: Matrix) -> Result:
    """A plugin needs symbols that neither TensorFlow nor its own libraries define.

    What: every ELF object that links TensorFlow (libtensorflow_framework.so.2 ...) in an installed
    package or given with --op is checked as `import tensorflow` then `tf.load_op_library` would
    load it: its non-weak undefined symbols must be defined in the global scope (python, libpython,
    TensorFlow's core libraries loaded RTLD_GLOBAL, their dependencies) or in its own dependencies.

    Why it crashes: the import fails with "undefined symbol: <mangled name>" (an ImportError or
    tensorflow.python.framework.errors_impl.NotFoundError). Typical causes, named in the finding
    when the symbol names show them: a package built for another TensorFlow release (another abseil
    LTS namespace, TensorFlow internals that changed), a build with -D_GLIBCXX_USE_CXX11_ABI=0, a C API
    symbol that was removed (TF_VLog in 2.21). Version strings alone cannot tell: only the symbols do.

    How to fix: install the package release built for the installed TensorFlow minor (or the
    TensorFlow it was built for); rebuild in-house ops with `tf.sysconfig.get_compile_flags()` and
    `get_link_flags()` of the installed TensorFlow.
    """
    skip = _precheck(env)
    if skip:
        yield skip
        return
    tf = env.tensorflow
    if tf is None:  # requires=("tensorflow",): the engine skips the rule first
        return
    groups = _by_owner(env, lambda op: op.undefined_count > 0)
    for owner, ops in sorted(groups.items()):
        total = sum(op.undefined_count for op in ops)
        of = sum(1 for op in env.target.custom_ops if op.owner == owner)
        first = ops[0]
        name = first.demangled[0] if first.demangled else (first.undefined[0] if first.undefined else "?")
        reasons = sorted({r for op in ops for r in explain(op)})
        ev: list[Evidence] = []
        for op in ops[:SHOWN]:
            shown = op.undefined[0] if op.undefined else "?"
            readable = op.demangled[0] if op.demangled and op.demangled[0] != shown else None
            ev.append(
                Evidence(
                    f"{_short(env, op)}: {op.undefined_count} undefined",
                    shown + (f" = {readable}" if readable else ""),
                    op.path,
                )
            )
        if len(ops) > SHOWN:
            ev.append(Evidence("more objects", f"{len(ops) - SHOWN} more fail the same way", "ELF .dynsym"))
        ev += _pin_evidence(env, matrix, owner)
        ev.append(Evidence("tensorflow", tf_label(tf), tf.metadata_path or tf.location))
        yield Hit(
            message=f"{_owner_label(env, owner)}: {len(ops)} of {of} objects will fail to load against {tf_label(tf)} "
            f"({total} undefined symbols), e.g. {_short(env, first)}: undefined symbol {name}"
            + (f"; {'; '.join(reasons)}" if reasons else ""),
            evidence=tuple(ev),
            remediation=_remedy(env, matrix, owner, ops),
        )


@rule("TFC502", "custom-op-missing-library", Severity.ERROR, requires=("tensorflow",))
def missing_library(env: Environment, matrix: Matrix) -> Result:
    """A plugin needs a shared library the loader cannot find.

    What: a DT_NEEDED entry of a plugin (or of a library it needs) resolves nowhere on its search
    path: its RUNPATH, LD_LIBRARY_PATH, ld.so.cache, the default directories, or the sonames already
    loaded by `import tensorflow`.

    Why it crashes: the import fails with "<name>: cannot open shared object file: No such file or
    directory", before any symbol is looked up.

    How to fix: install the package that provides the library (a system package, the matching
    nvidia-* wheel), or the plugin release built for this environment.
    """
    skip = _precheck(env)
    if skip:
        yield skip
        return
    for owner, ops in sorted(_by_owner(env, lambda op: bool(op.missing_libraries)).items()):
        libs = sorted({lib for op in ops for lib in op.missing_libraries})
        yield Hit(
            message=f"{_owner_label(env, owner)}: {len(ops)} object(s) need {', '.join(libs)}, which the loader "
            f'cannot find ("{libs[0]}: cannot open shared object file"), e.g. {_short(env, ops[0])}',
            evidence=tuple(
                Evidence(f"{_short(env, op)} DT_NEEDED", ", ".join(op.missing_libraries), op.path) for op in ops[:SHOWN]
            ),
            remediation=f"Install what provides {', '.join(libs)} where the loader looks (or fix the plugin's "
            "RUNPATH), or the plugin release built for this environment.",
        )


@rule("TFC503", "custom-op-symbol-version", Severity.ERROR, requires=("tensorflow",))
def symbol_version(env: Environment, matrix: Matrix) -> Result:
    """A plugin needs a symbol version its libraries do not define (GLIBCXX_3.4.30 not found).

    What: the plugin's .gnu.version_r asks a library for a version (GLIBCXX_3.4.30 from
    libstdc++.so.6, GLIBC_2.34 from libc.so.6) that the copy the loader picks does not define.

    Why it crashes: the import fails with "version `GLIBCXX_3.4.30' not found (required by ...)":
    the plugin was built with a newer compiler or glibc than the target has, or an older libstdc++
    (a conda env's, a vendored one) shadows the system's.

    How to fix: rebuild the plugin with a toolchain no newer than the target's (a manylinux image),
    or make the loader find a libstdc++ / glibc new enough (upgrade it, or stop shadowing it).
    """
    skip = _precheck(env)
    if skip:
        yield skip
        return
    for owner, ops in sorted(_by_owner(env, lambda op: bool(op.missing_versions)).items()):
        first = ops[0].missing_versions[0]
        version, _, where = first.partition(" ")
        yield Hit(
            message=f"{_owner_label(env, owner)}: {_short(env, ops[0])} needs version `{version}' not found in "
            f"{where.strip('()')}" + (f" (and {len(ops) - 1} more objects)" if len(ops) > 1 else ""),
            evidence=tuple(
                Evidence(f"{_short(env, op)} .gnu.version_r", ", ".join(op.missing_versions), op.path)
                for op in ops[:SHOWN]
            ),
            remediation="Rebuild the plugin with an older toolchain (a manylinux build image) or give the loader a "
            f"library that defines {version} (a newer libstdc++/glibc that is not shadowed).",
        )


@rule("TFC504", "custom-op-unreadable", Severity.INFO, requires=("tensorflow",))
def unreadable(env: Environment, matrix: Matrix) -> Result:
    """A plugin could not be checked.

    What: an object that links TensorFlow is not a usable ELF file for this machine (another
    architecture, truncated, unreadable).

    Why it crashes: if it is really loaded, it fails with "wrong ELF class" or "invalid ELF header".

    How to fix: reinstall the package for this platform.
    """
    for op in env.target.custom_ops:
        if op.problem:
            yield Hit(
                message=f"{_owner_label(env, op.owner)}: {os.path.basename(op.path)} could not be checked: "
                f"{op.problem}",
                evidence=(Evidence("plugin", op.path, "package RECORD"),),
                remediation="Reinstall the package for this platform.",
            )
