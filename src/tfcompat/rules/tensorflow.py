"""1xx: TensorFlow itself and the Python packages around it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Union

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.examples import gate_command
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Package, Severity, TensorFlowBuild
from tfcompat.rules._common import (
    numpy_abi_conflict,
    pkg_evidence,
    required_tf,
    requirements,
    satisfies,
    tf_evidence,
    tf_label,
    version_of,
)

Result = Iterator[Union[Hit, NotApplicable]]

_numpy_abi_conflict = numpy_abi_conflict  # the old import path, kept until every caller uses _common

# TF's own requirements whose violation crashes or breaks `import tensorflow` (native code or tight coupling).
CRASH_RELEVANT = ("numpy", "protobuf", "keras", "ml-dtypes", "h5py", "tf-keras", "tensorboard")


@rule("TFC100", "tensorflow-not-found", Severity.ERROR, blocks_verdict=True)
def tensorflow_not_found(env: Environment, matrix: Matrix) -> Result:
    """No TensorFlow distribution in the environment that was checked.

    What: no installed distribution provides the `tensorflow` package (tensorflow, tensorflow-cpu,
    tf-nightly, tensorflow-rocm, ...) on the search path of the checked interpreter.

    Why it crashes: `import tensorflow` raises ModuleNotFoundError. More often, tfcompat was pointed
    at the wrong environment (its own, not the job's), so it cannot judge anything: the exit code is 2.

    How to fix: point tfcompat at the environment your jobs use: `--python /path/to/venv/bin/python`,
    `--site-packages DIR`, `--root DIR` for an unpacked container image, or `--from FILE` for a snapshot
    taken on a GPU node. Or install TensorFlow there. The remediation also names the example fleet tfcompat
    ships (`tfcompat gate "$(python -m tfcompat.examples)" --expect 'gpu-[001-008]'`), to show what it reports.
    """
    if env.target.tensorflow:
        return
    py = env.target.python
    reason = env.unknown("tensorflow") or "no TensorFlow distribution found"
    who = py.executable or "(no interpreter run)"
    yield Hit(
        message=f"TensorFlow is not installed in the checked environment: {reason}",
        evidence=(
            Evidence("python", f"{who} (Python {py.version or 'unknown'})", py.source or "target"),
            Evidence("search path", ", ".join(env.target.site_packages) or "(empty)", "target"),
        ),
        remediation=(
            "Point tfcompat at the environment your jobs use: --python /path/to/venv/bin/python (a venv's or "
            "conda env's interpreter), --site-packages DIR, --root DIR for an unpacked container image, or "
            "--from FILE for a snapshot taken on a GPU node (`tfcompat scan --python ... -o FILE`); or `pip install "
            f"tensorflow` there. To see what tfcompat reports, try the example fleet it ships: {gate_command()}"
        ),
    )


def _wraps(env: Environment, a: Package, b_name: str) -> bool:
    """True when distribution `a` requires `b_name` (e.g. tensorflow -> tensorflow-intel on Windows)."""
    return any(canonicalize_name(r.name) == b_name for r in requirements(env, a))


@rule("TFC101", "conflicting-tensorflow-distributions", Severity.ERROR, requires=("tensorflow",))
def conflicting_distributions(env: Environment, matrix: Matrix) -> Result:
    """More than one TensorFlow distribution is installed, or one copy shadows another.

    What: two distributions that both install the `tensorflow` package (e.g. tensorflow and
    tensorflow-cpu, or tensorflow and tf-nightly), or the same distribution installed twice on the
    search path (a user site-packages copy in front of the venv's).

    Why it crashes: they write into the same `tensorflow/` directory, so its files come from a mix of
    builds: native libraries from one release and Python code from another fail with undefined
    symbols, missing ops or segfaults. A shadowing copy means the version you installed is not the
    one that is imported.

    How to fix: `pip uninstall` every TensorFlow distribution, then install exactly one; remove the
    stray copy from the shadowing location.
    """
    pkgs = {p.name: p for p in env.target.packages if p.name in matrix.facts.tf_distribution_names}
    names = sorted(pkgs)
    independent = [
        n for n in names if not any(_wraps(env, pkgs[o], n) or _wraps(env, pkgs[n], o) for o in names if o != n)
    ]
    if len(independent) > 1:
        found = ", ".join(f"{n} {pkgs[n].version}" for n in independent)
        yield Hit(
            message=f"{len(independent)} TensorFlow distributions are installed together: {found}; "
            "they overwrite each other's files in tensorflow/",
            evidence=tuple(pkg_evidence(pkgs[n], "distribution") for n in independent),
            remediation=f"pip uninstall -y {' '.join(independent)}; then install exactly one of them.",
        )
    for shadow in env.target.shadowed_packages:
        if shadow.name in pkgs:
            winner = pkgs[shadow.name]
            yield Hit(
                message=f"{winner.display_name} {winner.version} in {winner.location} shadows another copy, "
                f"{shadow.version} in {shadow.location}: only the first is imported",
                evidence=(pkg_evidence(winner, "imported copy"), pkg_evidence(shadow, "shadowed copy")),
                remediation=f"Remove the copy you do not want (e.g. `pip uninstall {winner.name}` in the "
                f"environment that owns {winner.location}), or fix the order of sys.path.",
                severity=Severity.WARNING,
            )


_CP_TAG = re.compile(r"^cp(\d)(\d+)$")


@rule("TFC102", "python-version-unsupported", Severity.ERROR, requires=("tensorflow", "python.version"))
def python_unsupported(env: Environment, matrix: Matrix) -> Result:
    """The Python version of the target is not one this TensorFlow release supports.

    What: the interpreter's version is outside the wheel's CPython tag (cp311 = 3.11 only), outside
    the release's Requires-Python, or outside the tested range in the matrix.

    Why it crashes: the native extension modules of a wheel are built for one CPython minor; loaded
    by another they fail with ImportError or undefined `Py*` symbols. Outside the tested range,
    pip had to be forced or the wheel came from elsewhere.

    How to fix: use a Python version the release supports (see `tfcompat explain` output and the
    matrix), or install the TensorFlow release built for this Python.
    """
    tf = required_tf(env)
    py = env.target.python.version or ""
    py_v = version_of(py)
    if py_v is None:
        yield NotApplicable(f"Python version {py!r} is not a version")
        return
    mm = (py_v.major, py_v.minor)
    py_ev = Evidence("python.version", py, env.target.python.source or "target")
    cp_tags = {m.groups() for t in tf.wheel_tags for m in [_CP_TAG.match(t.split("-")[0])] if m}
    if cp_tags and not any((int(a), int(b)) == mm for a, b in cp_tags):
        built = ", ".join(sorted(f"{a}.{b}" for a, b in cp_tags))
        yield Hit(
            message=f"{tf_label(tf)} is a wheel built for CPython {built}, but the target runs Python {py}: "
            "its native modules will not load",
            evidence=(py_ev, Evidence("wheel tags", ", ".join(tf.wheel_tags), tf.wheel_path or "WHEEL")),
            remediation=f"Reinstall TensorFlow with this interpreter (`{env.target.python.executable or 'python'} "
            "-m pip install --force-reinstall tensorflow==...`), or use Python " + built + ".",
        )
        return
    pkg = env.package(tf.distribution)
    if pkg is not None and pkg.requires_python:
        try:
            spec = SpecifierSet(pkg.requires_python)
        except InvalidSpecifier:
            spec = None
        if spec is not None and not spec.contains(py_v, prereleases=True):
            yield Hit(
                message=f"{tf_label(tf)} requires Python {pkg.requires_python}, the target runs Python {py}",
                evidence=(py_ev, Evidence("Requires-Python", pkg.requires_python, pkg.metadata_path)),
                remediation="Use a Python version inside Requires-Python, or a TensorFlow release that supports "
                f"Python {mm[0]}.{mm[1]}.",
            )
            return
    release = matrix.tf_release(tf.version)
    if release is not None and not release.python.contains(Version(f"{mm[0]}.{mm[1]}"), prereleases=True):
        yield Hit(
            message=f"Python {py} is outside the range TensorFlow {tf.version} was built and tested for "
            f"({release.python})",
            evidence=(py_ev, Evidence("matrix python", str(release.python), ", ".join(release.source))),
            remediation=f"Use Python in {release.python} for TensorFlow {tf.version}.",
            severity=Severity.WARNING,
        )


def _unmet(env: Environment, crash_relevant: bool) -> Iterator[tuple]:
    tf = required_tf(env)
    pkg = env.package(tf.distribution)
    if pkg is None:
        return
    for req in requirements(env, pkg):
        name = canonicalize_name(req.name)
        if (name in CRASH_RELEVANT) != crash_relevant:
            continue
        have = env.package(name)
        if have is None or not satisfies(have, req):
            yield pkg, req, have


@rule("TFC103", "tensorflow-requirement-unmet", Severity.ERROR, requires=("tensorflow",))
def requirement_unmet(env: Environment, matrix: Matrix) -> Result:
    """A package TensorFlow needs at import is missing or outside the range TF declares.

    What: TensorFlow's own Requires-Dist for numpy, protobuf, keras, ml-dtypes, h5py, tensorboard or
    tf-keras is not satisfied by what is installed (typically after a later `pip install` upgraded
    one of them, or `--no-deps`).

    Why it crashes: these packages are bound to TF's native code or generated code: protobuf >= 4.21
    with old `_pb2.py` files raises "Descriptors cannot not be created directly" (sic), a keras of the wrong
    major breaks `tf.keras`, an ml-dtypes outside the range fails to register its dtypes.

    How to fix: install the version TF declares, e.g. `pip install "protobuf<5"`; `pip check` lists
    the same conflicts.
    """
    tf = required_tf(env)
    conflict = numpy_abi_conflict(env, matrix)
    for pkg, req, have in _unmet(env, crash_relevant=True):
        if conflict is not None and canonicalize_name(req.name) == "numpy":
            continue  # TFC105 explains this one better
        ev: list[Evidence] = [Evidence(f"{pkg.name} Requires-Dist", str(req), pkg.metadata_path)]
        if have is None:
            msg = f"{tf_label(tf)} requires {req}, which is not installed"
        else:
            ev.append(pkg_evidence(have))
            msg = f"{tf_label(tf)} requires {req}, but {have.display_name} {have.version} is installed"
        spec = str(req.specifier) or ""
        yield Hit(
            message=msg, evidence=tuple(ev), remediation=f'pip install "{req.name}{spec}"  (in the target environment)'
        )


@rule("TFC104", "companion-package-mismatch", Severity.ERROR, requires=("tensorflow",))
def companion_mismatch(env: Environment, matrix: Matrix) -> Result:
    """A package built for another TensorFlow release is installed next to this one.

    What: an installed distribution (tf-keras, tensorflow-text, tensorflow-decision-forests,
    tensorflow-probability, ...) declares a TensorFlow requirement that the installed TensorFlow
    version does not satisfy; or a pure-Python companion the matrix describes needs a TensorFlow (or
    a package) its Requires-Dist does not state: tensorflow-probability 0.25 checks for TF >= 2.18
    and imports tf_keras, while its metadata says only tensorflow>=2.16, in an extra.

    Why it crashes: companion packages with native ops are compiled against one TF minor; loaded
    next to another they fail with "undefined symbol" or abort. tf-keras of another minor breaks
    `tf.keras` imports. tensorflow-probability raises ImportError ("This version of TensorFlow
    Probability requires TensorFlow version >= ...") below its TF, and without tf_keras.

    How to fix: install the companion release that matches the installed TensorFlow minor (e.g.
    tensorflow-text 2.21.x for TF 2.21), or the TF release the companion pins.
    """
    tf = required_tf(env)
    tf_v = version_of(tf.version)
    if tf_v is None:
        yield NotApplicable(f"TensorFlow version {tf.version!r} is not a version")
        return
    tf_names = matrix.facts.tf_distribution_names
    flagged: set[str] = set()
    for pkg in env.target.packages:
        if pkg.name in tf_names:
            continue
        for req in requirements(env, pkg):
            if canonicalize_name(req.name) not in tf_names:
                continue
            if req.specifier.contains(tf_v, prereleases=True):
                continue
            flagged.add(pkg.name)
            yield Hit(
                message=f"{pkg.display_name} {pkg.version} requires {req}, but {tf_label(tf)} is installed",
                evidence=(
                    pkg_evidence(pkg),
                    Evidence(f"{pkg.name} Requires-Dist", str(req), pkg.metadata_path),
                    tf_evidence(tf),
                ),
                remediation=f"Install the {pkg.display_name} release made for TensorFlow "
                f'{tf_v.major}.{tf_v.minor} (pip install "{pkg.name}=={tf_v.major}.{tf_v.minor}.*" '
                "where the package follows TF's numbering), or the TensorFlow it pins.",
            )
    yield from _companion_rows(env, matrix, tf_v, flagged)


def _companion_rows(env: Environment, matrix: Matrix, tf_v: Version, flagged: set[str]) -> Result:
    """What the matrix's pure-Python [[companion]] rows state beyond the package's own Requires-Dist:
    the TensorFlow its import checks for, and the packages it imports. Native companions are judged by
    their Requires-Dist above and by their symbols (TFC5xx)."""
    tf = required_tf(env)
    for pkg in env.target.packages:
        have_v = version_of(pkg.version)
        if pkg.name in flagged or have_v is None:
            continue
        row = next(
            (
                c
                for c in matrix.companions
                if not c.native
                and canonicalize_name(c.package) == pkg.name
                and c.versions.contains(have_v, prereleases=True)
            ),
            None,
        )
        if row is None:
            continue
        row_ev = Evidence(f"matrix {row.package} {row.versions}", row.note or "", ", ".join(row.source))
        if row.tensorflow is not None and not row.tensorflow.contains(tf_v, prereleases=True):
            yield Hit(
                message=f"{pkg.display_name} {pkg.version} needs TensorFlow {row.tensorflow}, but {tf_label(tf)} "
                "is installed: its import fails (a requirement its Requires-Dist does not state)",
                evidence=(pkg_evidence(pkg), tf_evidence(tf), row_ev),
                remediation=f'Install TensorFlow {row.tensorflow} (pip install "tensorflow{row.tensorflow}"), or an '
                f"older {pkg.display_name} made for TensorFlow {tf_v.major}.{tf_v.minor}.",
            )
        for text in row.requires:
            req = Requirement(text)
            have = env.package(canonicalize_name(req.name))
            if have is not None and satisfies(have, req):
                continue
            found = f"{have.display_name} {have.version} is installed" if have else "it is not installed"
            yield Hit(
                message=f"{pkg.display_name} {pkg.version} imports {req.name} ({req}), but {found}",
                evidence=(pkg_evidence(pkg), row_ev) + ((pkg_evidence(have),) if have else ()),
                remediation=f'pip install "{req.name}=={tf_v.major}.{tf_v.minor}.*"  (the release made for '
                f"TensorFlow {tf_v.major}.{tf_v.minor}; it must also satisfy {req})",
            )


@rule("TFC105", "numpy2-with-numpy1-build", Severity.ERROR, requires=("tensorflow",))
def numpy_abi(env: Environment, matrix: Matrix) -> Result:
    """NumPy 2 is installed but this TensorFlow release was built against NumPy 1.

    What: TensorFlow releases up to 2.17 ship native modules compiled against the NumPy 1 C API.
    Some of them (2.7-2.11, 2.14.0) declare no upper bound on numpy, so pip installs NumPy 2 happily.

    Why it crashes: at import, NumPy prints "A module that was compiled using NumPy 1.x cannot be
    run in NumPy 2.x", then `_ARRAY_API not found` and an ImportError or a segfault follows.

    How to fix: `pip install "numpy<2"`, or upgrade to TensorFlow 2.18 or newer, the first releases
    built against NumPy 2.
    """
    tf = required_tf(env)
    abi, abi_sources = matrix.numpy_abi(tf.version)
    if abi is None:
        yield NotApplicable(f"the matrix states no NumPy ABI for TensorFlow {tf.version}")
        return
    numpy = numpy_abi_conflict(env, matrix)
    if numpy is None:
        return
    yield Hit(
        message=f"NumPy {numpy.version} is installed, but {tf_label(tf)} was built against NumPy 1: "
        '`import tensorflow` fails ("A module that was compiled using NumPy 1.x cannot be run in NumPy 2")',
        evidence=(pkg_evidence(numpy), tf_evidence(tf), Evidence("matrix numpy_abi", "1", ", ".join(abi_sources))),
        remediation='pip install "numpy<2"  (or upgrade to TensorFlow >= 2.18, built for NumPy 2)',
    )


@rule("TFC106", "tensorflow-requirement-unmet-minor", Severity.INFO, requires=("tensorflow",))
def requirement_unmet_minor(env: Environment, matrix: Matrix) -> Result:
    """A pure-Python package TensorFlow declares is missing or outside its range.

    What: one of TensorFlow's other Requires-Dist entries (absl-py, wrapt, gast, grpcio, ...) is not
    satisfied, as `pip check` would say.

    Why it crashes: usually it does not; some (wrapt, gast, typing-extensions) break specific
    features or raise at import in old releases.

    How to fix: `pip install` the declared range in the target environment.
    """
    tf = required_tf(env)
    for pkg, req, have in _unmet(env, crash_relevant=False):
        found = f"{have.display_name} {have.version} is installed" if have else "it is not installed"
        yield Hit(
            message=f"{tf_label(tf)} requires {req}, but {found}",
            evidence=(Evidence(f"{pkg.name} Requires-Dist", str(req), pkg.metadata_path),)
            + ((pkg_evidence(have),) if have else ()),
            remediation=f'pip install "{req.name}{req.specifier}"',
        )


@rule("TFC109", "matrix-stale", Severity.INFO, requires=("tensorflow",))
def matrix_stale(env: Environment, matrix: Matrix) -> Result:
    """The compatibility matrix does not know this TensorFlow release, or disagrees with its build.

    What: the installed release is newer (or other) than any entry in the matrix, or the CUDA /
    cuDNN that its build_info.py states differs from the matrix entry for that release.

    Why it crashes: it does not by itself; rules then judge from the wheel's own build_info.py and
    Requires-Dist, and facts that only the matrix holds (NumPy ABI, driver floors) may be missing.
    A disagreement also shows a non-official build (conda, a source build) under an official name.

    How to fix: upgrade tfcompat, or add the release to the matrix (`--matrix FILE`; see README,
    "Adding a matrix entry").
    """
    tf = required_tf(env)
    release = matrix.tf_release(tf.version)
    if release is None and matrix.tf_rocm_release(tf.version) is not None:
        yield NotApplicable(f"{tf_label(tf)} is a tensorflow-rocm release: [[tensorflow_rocm]] describes it")
        return
    if release is None:
        yield Hit(
            message=f"the matrix ({matrix.path}, updated {matrix.updated}) has no entry for {tf_label(tf)}; "
            "judging from its own build_info.py and Requires-Dist only",
            evidence=(tf_evidence(tf),),
            remediation="Upgrade tfcompat or add this release to the matrix (README: Adding a matrix entry).",
        )
        return
    built_cudnn = version_of(tf.cudnn_version)
    if release.cudnn is not None and built_cudnn is not None and built_cudnn.major != release.cudnn.major:
        yield _build_disagrees(tf, "cuDNN", "cudnn", tf.cudnn_version or "", str(release.cudnn), release.source)
    built = version_of(tf.cuda_version)
    # the 1.15, 2.0 and 2.2 wheels state only the major ("10"): that agrees with a 10.x in the matrix
    stated = built.release[:2] if built is not None else ()
    if release.cuda is not None and built is not None and stated != release.cuda.release[: len(stated)]:
        yield _build_disagrees(tf, "CUDA", "cuda", tf.cuda_version or "", str(release.cuda), release.source)


def _build_disagrees(tf: TensorFlowBuild, what: str, key: str, built: str, stated: str, sources: Sequence[str]) -> Hit:
    """TFC109: the installed build's own build_info disagrees with the matrix about `what` (CUDA, cuDNN)."""
    return Hit(
        message=f"{tf_label(tf)} says it was built with {what} {built}, the matrix says {what} {stated} for this "
        "release: a non-official build, or a stale matrix; tfcompat uses the build's own value",
        evidence=(
            Evidence(f"build_info {key}_version", built, tf.build_info_path or ""),
            Evidence(f"matrix {key}", stated, ", ".join(sources)),
        ),
        remediation="Check where this TensorFlow came from; correct the matrix if it is wrong.",
    )
