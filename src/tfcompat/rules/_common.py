"""Small helpers shared by rule families: requirement evaluation against the target, evidence, and the
matrix facts more than one family judges (NumPy's ABI: TFC103, TFC105 and the probe's TFC701/702)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Optional, TypeVar

from packaging.markers import (
    InvalidMarker,
    UndefinedEnvironmentName,
    default_environment,
)
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from tfcompat.model import Driver, Environment, Evidence, Package, TensorFlowBuild

if TYPE_CHECKING:
    from tfcompat.matrix import Matrix

_T = TypeVar("_T")


class RequiredFactMissing(RuntimeError):
    """A rule read a fact it declares in ``requires=(...)`` and found it absent: the engine skips a rule
    whose required facts are unknown (``engine.evaluate.missing_fact``), so this is a tfcompat bug."""


def required(value: Optional[_T], fact: str) -> _T:
    """`value`, a fact the calling rule declares in ``requires=(...)``; the engine guarantees it is known."""
    if value is None:
        raise RequiredFactMissing(f"{fact} is required by the rule but absent (the engine checks it first)")
    return value


def required_tf(env: Environment) -> TensorFlowBuild:
    """The TensorFlow build, for a rule that requires "tensorflow"."""
    return required(env.tensorflow, "tensorflow")


def required_driver(env: Environment) -> Driver:
    """The NVIDIA driver, for a rule that requires "driver"."""
    return required(env.host.driver, "driver")


def marker_environment(env: Environment) -> dict[str, str]:
    """PEP 508 marker values of the target (its Python and platform), not of tfcompat's own process."""
    values = {k: str(v) for k, v in default_environment().items()}  # all str; typed as a TypedDict
    py = env.target.python.version
    if py:
        parts = py.split(".")
        values["python_version"] = ".".join(parts[:2])
        values["python_full_version"] = py if len(parts) >= 3 else py + ".0"
    values["sys_platform"] = "linux"
    values["platform_system"] = "Linux"
    values["os_name"] = "posix"
    if env.host.platform.arch:
        values["platform_machine"] = env.host.platform.arch
    values["extra"] = ""
    return values


@functools.lru_cache(maxsize=8192)
def parse_requirement(line: str) -> Optional[Requirement]:
    """A Requires-Dist line, parsed once per run: several rules read the same lines, and packaging's parser was
    a tenth of a `check` (600 parses of ~200 lines). None when it is not a valid requirement. Callers must not
    modify the object they get."""
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def requirements(env: Environment, pkg: Package) -> Iterator[Requirement]:
    """The base (no extra) Requires-Dist of `pkg` that apply to the target."""
    markers = marker_environment(env)
    for line in pkg.requires:
        req = parse_requirement(line)
        if req is None:
            continue
        try:
            if req.marker is not None and not req.marker.evaluate(markers):
                continue
        except (InvalidMarker, UndefinedEnvironmentName):
            continue
        yield req


def version_of(text: Optional[str]) -> Optional[Version]:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def satisfies(pkg: Package, req: Requirement) -> bool:
    v = version_of(pkg.version)
    return v is not None and req.specifier.contains(v, prereleases=True)


def pkg_evidence(pkg: Package, fact: Optional[str] = None) -> Evidence:
    return Evidence(fact or f"package {pkg.name}", pkg.version, pkg.metadata_path)


def tf_evidence(tf: TensorFlowBuild) -> Evidence:
    return Evidence("tensorflow", f"{tf.distribution} {tf.version}", tf.metadata_path or tf.location)


def tf_label(tf: TensorFlowBuild) -> str:
    return f"{tf.distribution} {tf.version}"


def cuda_of(tf: TensorFlowBuild, release) -> tuple[Optional[str], str]:
    """Build CUDA version and where it came from: build_info.py first, the matrix second."""
    if tf.cuda_version:
        stated = version_of(tf.cuda_version)
        # "10" (the 1.15, 2.0, 2.2 wheels): the matrix names the minor
        major = stated.major if stated is not None and len(stated.release) == 1 else None
        if major is not None and release is not None and release.cuda is not None and release.cuda.major == major:
            return str(release.cuda), f"{tf.build_info_path or 'build_info.py'} (major) and {release.label}"
        return tf.cuda_version, tf.build_info_path or "build_info.py"
    if release is not None and release.cuda is not None:
        return str(release.cuda), f"{release.label} in the matrix"
    return None, ""


def numpy_abi_conflict(env: Environment, matrix: Matrix) -> Optional[Package]:
    """NumPy >= 2 installed while the TF binaries were built against NumPy 1 (matrix fact)."""
    tf = env.tensorflow
    numpy = env.package("numpy")
    abi = matrix.numpy_abi(tf.version)[0] if tf else None  # a tensorflow-rocm release's own entry too
    v = version_of(numpy.version) if numpy else None
    if abi == 1 and v is not None and v.major >= 2:
        return numpy
    return None
