"""1xx: where TensorFlow came from (issue 14): a PyPI companion with native ops on a TensorFlow that is not
PyPI's build (TFC112), a companion that requires a TensorFlow distribution other than the one installed
(TFC113), TensorFlow seen that tfcompat does not judge: an unknown TF-like distribution, the C library (TFC114).

`tf_origin` derives the build's provenance from the facts the probes read (INSTALLER, direct_url.json, the
wheel's tags, build_info, an NGC image's release, conda-meta/); the rules only read its answer.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Optional, Union

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Package, Severity, TensorFlowBuild
from tfcompat.rules._common import (
    parse_requirement,
    pkg_evidence,
    required_tf,
    requirements,
    tf_evidence,
    tf_label,
    version_of,
)

Result = Iterator[Union[Hit, NotApplicable]]

PYPI, CONDA, SOURCE, NGC, ROCM = "pypi", "conda", "source", "ngc", "rocm"
FOREIGN = (CONDA, SOURCE, NGC, ROCM)  # builds PyPI's companions were not compiled against
_LABELS = {PYPI: "a PyPI wheel", CONDA: "a conda build", SOURCE: "a source/local build", NGC: "an NVIDIA (NGC) build"}
_LABELS[ROCM] = "a ROCm build"
# Linux wheels on PyPI carry a manylinux/musllinux platform tag; a plain `linux_x86_64` wheel is what a local
# build writes, and PyPI refuses to host it (PEP 513, "Rationale"; packaging.python.org, Platform compatibility tags).
_PYPI_PLATFORMS = ("manylinux", "musllinux")


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the TensorFlow build came from, and the facts that say so."""

    kind: str  # PYPI, CONDA, SOURCE, NGC, ROCM
    evidence: tuple[Evidence, ...]
    installer: Optional[str] = None

    @property
    def label(self) -> str:
        if self.kind == PYPI:
            return f"a PyPI wheel ({self.installer or 'installer unknown'})"
        return _LABELS[self.kind]


def _installer_file(pkg: Package) -> str:
    return os.path.join(os.path.dirname(pkg.metadata_path), "INSTALLER")


def _platforms(tf: TensorFlowBuild) -> list[str]:
    """The platform tags of the build's wheel (`cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64`)."""
    out: list[str] = []
    for tag in tf.wheel_tags:
        parts = tag.split("-")
        if len(parts) == 3:
            out.extend(parts[2].split("."))
    return out


def _nvidia_label(tf: TensorFlowBuild, matrix: Matrix) -> Optional[str]:
    """The vendor local label (`nv` of 1.15.5+nv22.9) of the build's version, when a distribution row names it."""
    v = version_of(tf.version)
    labels = [d.local_version for d in matrix.facts.distributions if d.local_version]
    if v is None or not v.local:
        return None
    return next((lab for lab in labels if v.local.startswith(lab)), None)


def tf_origin(env: Environment, matrix: Matrix) -> Optional[Origin]:
    """The provenance of the effective TensorFlow; None when nothing says (no WHEEL, no INSTALLER, no other sign)."""
    tf = env.tensorflow
    if tf is None:
        return None
    pkg = env.package(tf.distribution)
    dist = matrix.facts.distribution(tf.distribution)
    prov = env.target.provenance
    platforms = _platforms(tf)
    wheel_ev = Evidence("wheel tags", ", ".join(tf.wheel_tags) or "(none)", tf.wheel_path or "WHEEL")
    if (dist is not None and dist.gpu == "rocm") or tf.is_rocm_build:
        why = "is_rocm_build" if tf.is_rocm_build else f"matrix gpu = {dist.gpu if dist else ''}"
        return Origin(ROCM, (tf_evidence(tf), Evidence("ROCm build", why, tf.build_info_path or "matrix")))
    label = _nvidia_label(tf, matrix)
    pypi_like = any(p.startswith(_PYPI_PLATFORMS) for p in platforms) and tf.distribution != "nvidia-tensorflow"
    if tf.distribution == "nvidia-tensorflow" or label:
        return Origin(
            NGC,
            (
                tf_evidence(tf),
                Evidence("NVIDIA build", f"+{label}" if label else tf.distribution, "matrix nvidia-tensorflow"),
            ),
        )
    if prov is not None and prov.ngc_version and not pypi_like:
        ngc = Evidence("NVIDIA_TENSORFLOW_VERSION", prov.ngc_version, prov.ngc_source or "environment")
        return Origin(NGC, (tf_evidence(tf), ngc))
    installer = pkg.installer if pkg is not None else None
    meta = pkg.metadata_path if pkg is not None else tf.location
    installer_ev = Evidence("INSTALLER", installer or "", _installer_file(pkg) if pkg is not None else meta)
    conda_meta = prov.conda_meta if prov is not None else None
    if installer == "conda":  # conda-build writes it (conda/conda-build f914e7b; prefix-dev/rattler-build#206)
        return Origin(CONDA, (tf_evidence(tf), installer_ev), installer)
    if pkg is not None and pkg.origin in ("dir", "editable", "vcs"):
        url_file = os.path.join(os.path.dirname(meta), "direct_url.json")
        url = Evidence("direct_url.json", f"{pkg.origin}: {pkg.direct_url}", url_file)
        return Origin(SOURCE, (tf_evidence(tf), url), installer)
    if conda_meta and not pypi_like:  # older conda packages still say INSTALLER pip (pypa/pip#9949)
        return Origin(CONDA, (tf_evidence(tf), Evidence("conda-meta", conda_meta, "conda environment"), wheel_ev))
    if any(p.startswith("linux_") for p in platforms) or (meta.endswith("METADATA") and tf.wheel_path is None):
        return Origin(SOURCE, (tf_evidence(tf), wheel_ev), installer)
    if pypi_like:
        pypi_ev = (tf_evidence(tf), wheel_ev) + ((installer_ev,) if installer else ())
        return Origin(PYPI, pypi_ev, installer)
    return None


def _native_companion(matrix: Matrix, name: str) -> bool:
    return any(c.native and canonicalize_name(c.package) == name for c in matrix.companions)


def _tf_requirements(env: Environment, matrix: Matrix, pkg: Package) -> list[Requirement]:
    names = matrix.facts.tf_distribution_names
    return [r for r in requirements(env, pkg) if canonicalize_name(r.name) in names]


_FIX = {
    CONDA: "install it from the same channel as TensorFlow (`conda install -c conda-forge {name}`, where the "
    "channel has it), or make a fresh environment with both from PyPI (`pip install tensorflow=={tf} {name}`)",
    SOURCE: "build {name} from source against this TensorFlow (its build uses TF's installed headers and "
    "libtensorflow_framework), or use the PyPI wheel of TensorFlow {tf} that {name}'s wheel was built for",
    NGC: "use the {name} NVIDIA ships in the NGC image where it has one, or build it from source inside the image; or "
    "use PyPI's TensorFlow {tf} in a plain environment",
    ROCM: "build {name} from source against tensorflow-rocm (AMD publishes no ROCm builds of the companions), or "
    "check that its ops load (`tfcompat check --probe`)",
}


@rule("TFC112", "native-companion-on-foreign-build", Severity.WARNING, requires=("tensorflow", "packages"))
def native_companion_foreign(env: Environment, matrix: Matrix) -> Result:
    """A PyPI companion with native TensorFlow ops is installed on a TensorFlow that is not PyPI's build.

    What: a companion the matrix marks `native` (tensorflow-text, tensorflow-addons, tensorflow-io,
    tensorflow-decision-forests, ...: their wheels ship `.so` custom-op libraries linked against
    libtensorflow_framework) was installed by pip/uv from an index, while TensorFlow itself is a conda build
    (INSTALLER conda, or a conda-meta/ environment), a source or locally built wheel (a `linux_*` platform tag,
    direct_url.json to a directory or a VCS), an NVIDIA build (nvidia-tensorflow, a `+nv` version, an NGC
    image's NVIDIA_TENSORFLOW_VERSION) or a ROCm build. The versions may agree.

    Why it crashes: a companion's wheel is compiled against PyPI's TensorFlow of that release: its C++ ABI
    (compiler, `_GLIBCXX_USE_CXX11_ABI`, the abseil and protobuf it was built with, build flags). Another
    build of the same version may mangle or lay out the same names differently: `import tensorflow_text` fails
    with "undefined symbol: _ZN10tensorflow..." or crashes later (tensorflow/text#192: conda's TensorFlow, then
    `pip install tensorflow-text`). tfcompat's symbol check (TFC5xx) catches the missing names; this warns even
    when every name resolves, since types may still differ.

    How to fix: install the companion from the same source as TensorFlow (the conda channel, NVIDIA's image),
    build it from source against this TensorFlow, or use PyPI's TensorFlow with PyPI's companion.
    """
    tf = required_tf(env)
    origin = tf_origin(env, matrix)
    if origin is None or origin.kind not in FOREIGN:
        return
    tf_v = version_of(tf.version)
    broken = {op.owner for op in env.target.custom_ops if not op.ok}  # TFC5xx already names its missing symbols
    for pkg in env.target.packages:
        if pkg.name in matrix.facts.tf_distribution_names or not _native_companion(matrix, pkg.name):
            continue
        if pkg.installer in (None, "conda") or pkg.origin is not None or pkg.name in broken:
            continue  # not from an index (or unknown), or explained by the symbol check
        if tf_v is not None and any(
            not r.specifier.contains(tf_v, prereleases=True) for r in _tf_requirements(env, matrix, pkg)
        ):
            continue  # another TF release: TFC104 reports it
        fix = _FIX[origin.kind].format(name=pkg.name, tf=tf.version)
        yield Hit(
            message=f"{pkg.display_name} {pkg.version} is a wheel with native TensorFlow ops installed by "
            f"{pkg.installer} from an index, but {tf_label(tf)} is {origin.label}: PyPI's companions are compiled "
            "against PyPI's TensorFlow (its C++ ABI, compiler flags, abseil and protobuf), so even at the same "
            "version its ops may fail to load (undefined symbol) or crash",
            evidence=(pkg_evidence(pkg), Evidence(f"{pkg.name} INSTALLER", pkg.installer or "", _installer_file(pkg)))
            + origin.evidence,
            remediation=fix[0].upper() + fix[1:] + ".",
        )


@rule("TFC113", "companion-requires-other-tf-distribution", Severity.ERROR, requires=("tensorflow", "packages"))
def companion_other_distribution(env: Environment, matrix: Matrix) -> Result:
    """A companion requires a TensorFlow distribution that is not installed, while another provides the module.

    What: an installed package's Requires-Dist names a TensorFlow distribution (`tensorflow`, `tensorflow-cpu`,
    ...) that is not installed, while the `tensorflow` module comes from another distribution (tensorflow-cpu,
    tensorflow-rocm, nvidia-tensorflow, ...). tensorflow-text, tf-keras and TF-DF all require `tensorflow`.

    Why it crashes: pip knows distributions, not modules: it does not see that tensorflow-cpu provides
    `tensorflow`. `pip check` reports the requirement as missing, and the next install that resolves the
    companion (`pip install -U`, a requirements file) installs `tensorflow` on top: two distributions writing one
    tensorflow/ directory (TFC101), or the GPU build replaced by a CPU one (tensorflow/text#547, #195, #1393).
    The message says whether the installed version would satisfy the requirement (if not, TFC104 reports that).

    How to fix: pin the installed distribution in a constraints file so the resolver keeps it
    (`tensorflow @ <wheel of tensorflow-cpu>` as in tensorflow/text#547), install the companion with `--no-deps`
    after checking its other requirements, or reinstall your distribution after the companion.
    """
    tf = required_tf(env)
    tf_v = version_of(tf.version)
    names = matrix.facts.tf_distribution_names
    installed = {p.name for p in env.target.packages if p.name in names}
    for pkg in env.target.packages:
        if pkg.name in names:
            continue  # a wrapper distribution (tensorflow -> tensorflow-intel) is TFC101's
        for req in _tf_requirements(env, matrix, pkg):
            wanted = canonicalize_name(req.name)
            if wanted in installed:
                continue
            fits = tf_v is not None and req.specifier.contains(tf_v, prereleases=True)
            verdict = (
                f"the installed version {tf.version} would satisfy {req.specifier or 'it'}"
                if fits
                else f"and {tf.version} would not satisfy {req.specifier} either (TFC104)"
            )
            yield Hit(
                message=f"{pkg.display_name} {pkg.version} requires the distribution {req.name}{req.specifier}, which "
                "is not installed: "
                f"the `tensorflow` module comes from {tf_label(tf)}, which pip does not count as {wanted}, so the "
                f"next install that resolves {pkg.name} pulls {wanted} on top of it; {verdict}",
                evidence=(Evidence(f"{pkg.name} Requires-Dist", str(req), pkg.metadata_path), tf_evidence(tf)),
                remediation=f"Keep {tf.distribution}: pin it in a constraints file (pip install -c constraints.txt "
                f"{pkg.name}), or `pip install --no-deps {pkg.name}=={pkg.version}` after checking its other "
                f"requirements, or reinstall {tf.distribution}=={tf.version} after {pkg.name}.",
            )


def _known_companions(env: Environment, matrix: Matrix) -> set[str]:
    """Names that are TensorFlow's companions, not TensorFlow: the matrix's, and whatever requires a TF
    distribution or is required by one (tensorflow-io-gcs-filesystem, tensorflow-estimator, ...)."""
    names = matrix.facts.tf_distribution_names
    known: set[str] = {canonicalize_name(c.package) for c in matrix.companions}
    known |= {canonicalize_name(c.distribution) for c in matrix.facts.companion_modules}
    for pkg in env.target.packages:
        for line in pkg.requires:
            parsed = parse_requirement(line)
            if parsed is None:
                continue
            req = canonicalize_name(parsed.name)
            if pkg.name in names:
                known.add(req)
            elif req in names:
                known.add(pkg.name)
    return known


@rule("TFC114", "other-tensorflow-seen", Severity.INFO, requires=("packages",))
def other_tensorflow(env: Environment, matrix: Matrix) -> Result:
    """TensorFlow that tfcompat does not judge: a TF-like distribution it does not know, or the C library.

    What: a distribution that installs the `tensorflow` import package (top_level.txt, or RECORD) but is not
    in the matrix's [[tensorflow_distribution]] list; a `*tensorflow*` distribution that is neither in that
    list nor a known companion and whose import packages are unknown; or libtensorflow (the TensorFlow C
    library, `libtensorflow.so.2` / `.so.1`) found by the loader or in /usr/local/lib.

    Why it crashes: it may not: tfcompat says what it saw. An unknown distribution that writes `tensorflow/`
    overwrites the files of the one tfcompat judges, and none of its rules know its build. The C library is
    a separate copy of TensorFlow: programs linking it (Go, Rust, C bindings) use its version, not the Python
    package's; loaded into the same process as the Python TF, two TensorFlow runtimes register the same ops.

    How to fix: nothing, if it is intended. Otherwise uninstall the unknown distribution, or add it to the
    matrix (`--matrix FILE`) so tfcompat judges it.
    """
    names = matrix.facts.tf_distribution_names
    known = _known_companions(env, matrix)
    for pkg in env.target.packages:
        if pkg.name in names:
            continue
        if "tensorflow" in pkg.top_level:
            why = "installs the `tensorflow` import package"
        elif "tensorflow" in pkg.name and pkg.name not in known and not pkg.top_level:
            why = "is named like TensorFlow; what it installs is unknown (no top_level.txt)"
        else:
            continue
        yield Hit(
            message=f"{pkg.display_name} {pkg.version} ({pkg.location}) {why}, but is not a TensorFlow "
            "distribution tfcompat knows: no rule judges its build",
            evidence=(
                pkg_evidence(pkg),
                Evidence("top_level", ", ".join(pkg.top_level) or "(unknown)", pkg.metadata_path),
            ),
            remediation=f"If {pkg.name} is not meant to provide TensorFlow, uninstall it; else add it to the "
            "matrix's [[tensorflow_distribution]] list (`--matrix FILE`).",
        )
    if env.target.libtensorflow:
        yield _libtensorflow_hit(env)


def _libtensorflow_hit(env: Environment) -> Hit:
    first = env.target.libtensorflow[0]
    tf = env.tensorflow
    c_v, py_v = version_of(first.version), version_of(tf.version) if tf else None
    if tf is None:
        against = "no Python TensorFlow is installed"
    elif c_v is None or py_v is None or len(c_v.release) < 3:
        against = f"the Python TensorFlow is {tf_label(tf)}"
    elif c_v.release[:2] != py_v.release[:2]:
        against = f"it differs from the Python TensorFlow, {tf_label(tf)}"
    else:
        against = f"the same release as the Python TensorFlow, {tf_label(tf)}"
    where = ", ".join(f"{c.path} ({c.found_via})" for c in env.target.libtensorflow)
    return Hit(
        message=f"the TensorFlow C library is installed: {first.real_path} (version {first.version}); {against}",
        evidence=tuple(
            Evidence("libtensorflow", f"{c.real_path} ({c.version})", f"{c.found_via}: {c.version_source or ''}")
            for c in env.target.libtensorflow
        )
        + ((tf_evidence(tf),) if tf else ()),
        remediation=f"Programs linking libtensorflow use it, not the Python package ({where}); keep it if intended, "
        "else remove it (and run ldconfig).",
    )
