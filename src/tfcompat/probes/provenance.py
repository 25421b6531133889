"""Where the environment's TensorFlow may come from, beyond its own metadata: an NGC image's release, a
conda environment, and the TensorFlow C library (libtensorflow) next to the Python package.

Per distribution facts (INSTALLER, direct_url.json, top_level.txt) are read with the distribution, in
packages.py; this module reads what belongs to the environment as a whole. Nothing is sourced, loaded or
imported: the Apptainer environment file is read as text, libtensorflow is found by its soname with the
loader model of native/ and judged only by its file name.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Optional

from tfcompat.model import LibraryCopy, Provenance, TensorFlowBuild, Unknown
from tfcompat.probes.conda import env_prefix
from tfcompat.probes.native.config import LoaderConfig
from tfcompat.probes.native.results import STEP_OFF_PATH, Candidate
from tfcompat.probes.native.search import Search
from tfcompat.probes.rootfs import Root

NGC_VARIABLES = ("NVIDIA_TENSORFLOW_VERSION", "NVIDIA_BUILD_ID")
# Apptainer/Singularity write an OCI image's Env into this file when they convert it (`export K="V"`, newer
# releases `export K="${K:-"V"}"`): apptainer/apptainer:internal/pkg/build/sources/conveyorPacker_oci.go.
# An unpacked Docker image keeps its Env in the image config, outside the file system.
APPTAINER_ENV_FILES = ("/.singularity.d/env/10-docker2singularity.sh", "/.singularity.d/env/10-docker.sh")
# The TensorFlow C library: `libtensorflow.so.2` (`.so.1` for TF 1.x), installed from the libtensorflow tarball
# into /usr/local/lib, then `ldconfig` (https://www.tensorflow.org/install/lang_c).
LIBTENSORFLOW_SONAMES = ("libtensorflow.so.2", "libtensorflow.so.1")
LIBTENSORFLOW_DIRS = ("/usr/local/lib",)  # where the tarball puts it, found even before ldconfig runs
_FULL_VERSION = re.compile(r"^libtensorflow\.so\.(\d+\.\d+\.\d+)$")
_EXPORT = re.compile(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_DEFAULTED = re.compile(r'^"\$\{([A-Za-z_][A-Za-z0-9_]*):-"(.*)"\}"$')
_VALUE = re.compile(r"^[A-Za-z0-9_.+:-]{1,100}$")


def _unquote(raw: str) -> str:
    """The value of one `export K=...` line as Apptainer writes it (shell.Escape'd, in double quotes)."""
    raw = raw.strip()
    m = _DEFAULTED.match(raw)
    if m:
        raw = m.group(2)
    elif len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    return re.sub(r"\\(.)", r"\1", raw)


def parse_env_file(text: str, names: Sequence[str] = NGC_VARIABLES) -> dict[str, str]:
    """`names` exported by an Apptainer environment file; a value that is not a plain version or id is left out."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _EXPORT.match(line)
        if m and m.group(1) in names:
            value = _unquote(m.group(2))
            if _VALUE.match(value):
                out[m.group(1)] = value
    return out


def _ngc(root: Root, environ: Mapping[str, str]) -> tuple[dict[str, str], Optional[str], Optional[Unknown]]:
    if root.is_host:  # the environment the target runs in is this process's
        found = {k: environ[k] for k in NGC_VARIABLES if _VALUE.match(environ.get(k, ""))}
        return found, "$NVIDIA_TENSORFLOW_VERSION" if found else None, None
    for path in APPTAINER_ENV_FILES:
        try:
            text = root.read_text(path, kind="text")
        except OSError:
            continue
        found = parse_env_file(text)
        if "NVIDIA_TENSORFLOW_VERSION" in found:
            return found, path, None
    return (
        {},
        None,
        Unknown(
            "ngc",
            "under --root an image's environment (NVIDIA_TENSORFLOW_VERSION of an NGC image) is in its OCI config, "
            f"not its file system, and no Apptainer environment file ({APPTAINER_ENV_FILES[0]}) holds it",
        ),
    )


def conda_meta_dir(root: Root, site_packages: str) -> Optional[str]:
    """`<prefix>/conda-meta` when `site_packages` is `<prefix>/lib/pythonX.Y/site-packages` of a conda env."""
    prefix = env_prefix(site_packages)  # the same environments probes/conda.py reads the records of
    if prefix is None:
        return None
    meta = prefix + "/conda-meta"
    try:
        return meta if root.is_dir(root.inside(meta)) else None
    except OSError:
        return None


def probe_provenance(
    root: Root, tf: Optional[TensorFlowBuild], search_path: Sequence[str], environ: Mapping[str, str]
) -> tuple[Optional[Provenance], list[Unknown]]:
    """The NGC release the target runs under and the conda-meta/ of TensorFlow's environment; None when neither."""
    found, source, unknown = _ngc(root, environ)
    where = tf.location if tf is not None else next(iter(search_path), None)
    conda = conda_meta_dir(root, where) if where else None
    unknowns = [unknown] if unknown else []
    if not found and conda is None:
        return None, unknowns
    return (
        Provenance(
            ngc_version=found.get("NVIDIA_TENSORFLOW_VERSION"),
            ngc_build_id=found.get("NVIDIA_BUILD_ID"),
            ngc_source=source,
            conda_meta=conda,
        ),
        unknowns,
    )


def _copy(c: Candidate, step: Optional[str] = None) -> LibraryCopy:
    base = posixpath.basename(c.real)
    m = _FULL_VERSION.match(base)
    major = c.name.rsplit(".", 1)[-1]
    return LibraryCopy(
        path=c.path,
        real_path=c.real,
        found_via=step or c.step,
        search_entry=c.written,
        version=m.group(1) if m else major,
        version_source=f"file name {base}" if m else f"soname {c.name} (major version only)",
        problem=c.problem,
    )


def probe_libtensorflow(root: Root, config: Optional[LoaderConfig] = None) -> tuple[tuple[LibraryCopy, ...], list]:
    """Every copy of the TensorFlow C library the loader would find by its sonames (the first one it uses first),
    then copies in /usr/local/lib that are not on its path (ldconfig not run)."""
    try:
        search = Search(config or LoaderConfig.detect(root))
    except (OSError, ValueError) as exc:
        return (), [Unknown("libtensorflow", f"the loader's configuration cannot be read: {exc}")]
    out: list[LibraryCopy] = []
    reals: set[str] = set()
    for soname in LIBTENSORFLOW_SONAMES:
        lookup = search.lookup(soname)
        for c in lookup.copies:
            if c.real not in reals:
                reals.add(c.real)
                out.append(_copy(c))
        for c in search.copies_elsewhere(soname, LIBTENSORFLOW_DIRS, STEP_OFF_PATH):
            if c.real not in reals:
                reals.add(c.real)
                out.append(_copy(c, STEP_OFF_PATH))
    return tuple(out), []
