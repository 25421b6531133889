"""TFC705: what the import really loaded (the probe's /proc/<pid>/maps) against the static model's prediction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.engine.registry import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import tf_label, version_of
from tfcompat.rules._probe import probe_source, recorded_probe

Result = Iterator[Union[Hit, NotApplicable]]


def _norm(path: Optional[str]) -> Optional[str]:
    return os.path.normpath(path) if path else None


def _predictions(env: Environment) -> list[tuple[str, Optional[str], str]]:
    """(soname, predicted real path or None for 'not found', who predicted) from the static model.

    Read defensively: the loader model (issue 4) may be absent from older snapshots.
    """
    out: list[tuple[str, Optional[str], str]] = []
    native = getattr(env.target, "native", None)
    for lib in tuple(getattr(native, "libraries", ()) or ()):
        soname = getattr(lib, "soname", None)
        if not soname:
            continue
        found = getattr(lib, "found", None)
        path = (
            getattr(found, "real_path", None) or getattr(found, "path", None)
            if found is not None
            else getattr(lib, "real_path", None) or getattr(lib, "path", None)
        )
        out.append((soname, _norm(path), "the loader model (static)"))
    d = env.host.driver
    for lib in d.libraries if d is not None else ():
        out.append((lib.soname, _norm(lib.path), "the driver library search (static)"))
    return out


def _stem(soname: str) -> str:
    return soname.split(".so", 1)[0] + ".so"


@rule("TFC705", "loaded-libraries-disagree", Severity.WARNING)
def loaded_libraries_disagree(env: Environment, matrix: Matrix) -> Result:
    """What the import really loaded differs from what tfcompat's static model predicted.

    What: with `--probe`, the child reports the TensorFlow it imported (version, path) and every
    shared object mapped in the process (/proc/<pid>/maps). This rule compares them with the static
    scan: the TensorFlow distribution found on the search path, the CUDA/cuDNN libraries the loader
    model resolved, the driver libraries (libcuda.so.1) found on the library path.

    Why it crashes: a disagreement means the environment is not what it looks like (a TensorFlow
    imported from another directory, PYTHONPATH or a .pth file in front of the venv, LD_PRELOAD, a
    library loaded from an unexpected copy), or tfcompat's model is wrong; either way the static
    findings may not hold for this job.

    How to fix: check the paths in the message; remove the stray copy or the variable that brings
    it; report a model error to tfcompat with the JSON report.
    """
    probe = yield from recorded_probe(env)
    if probe is None:
        return
    if probe.outcome == "not-started":
        return
    tf = env.tensorflow
    src = probe_source(probe)
    if tf is not None and probe.tensorflow_path and tf.package_dir:
        imported_dir = os.path.dirname(_norm(probe.tensorflow_path) or "")
        if _norm(tf.package_dir) != imported_dir:
            yield Hit(
                message=f"the import loaded TensorFlow from {imported_dir}, the static scan found {tf_label(tf)} "
                f"in {tf.package_dir}: the job does not import the TensorFlow tfcompat judged",
                evidence=(
                    Evidence("probe tensorflow.__file__", probe.tensorflow_path, src),
                    Evidence("tensorflow package", tf.package_dir, tf.metadata_path or tf.location),
                ),
                remediation="Find what puts the other copy first (PYTHONPATH, a .pth file, the working directory) "
                "and remove it, or point tfcompat at the environment that owns it.",
            )
        elif probe.tensorflow_version and version_of(probe.tensorflow_version) != version_of(tf.version):
            yield Hit(
                message=f"the imported TensorFlow says it is {probe.tensorflow_version}, its metadata says "
                f"{tf.version}: files of two releases are mixed in {tf.package_dir}",
                evidence=(
                    Evidence("probe tf.__version__", probe.tensorflow_version, src),
                    Evidence("tensorflow", f"{tf.distribution} {tf.version}", tf.metadata_path or tf.location),
                ),
                remediation=f"pip uninstall every TensorFlow distribution, then install {tf.distribution} once.",
            )
    if probe.outcome not in ("ok", "error") or not probe.libraries:
        return  # a crash or a hang leaves a partial list: nothing to compare
    loaded = [(_norm(lib.path) or lib.path, lib.name) for lib in probe.libraries]
    seen = set()
    for soname, predicted, who in _predictions(env):
        if soname in seen:
            continue
        seen.add(soname)
        same = [
            path
            for path, name in loaded
            if name == soname or name.startswith(_stem(soname) + ".") or name == _stem(soname)
        ]
        if not same:
            continue  # not loaded: without a GPU, TF only tries libcudart and libcuda (not a disagreement)
        if predicted is not None and predicted in same:
            continue
        if predicted is None:
            msg = f"{soname}: {who} found no copy, but the import loaded {same[0]}"
        else:
            msg = f"{soname}: {who} predicted {predicted}, but the import loaded {same[0]}"
        yield Hit(
            message=msg,
            evidence=(
                Evidence(f"loaded {soname}", same[0], f"{src} ({probe.libraries_source})"),
                Evidence(f"predicted {soname}", predicted or "not found", who),
            ),
            remediation="Check LD_LIBRARY_PATH, LD_PRELOAD and the RUNPATH of TensorFlow's libraries: the copy "
            "the job loads is not the one the static checks judged.",
        )
