"""Conda environments: the conda-meta records of the CUDA library packages and of TensorFlow.

conda writes one record per package it installs into an environment (a "prefix"):
``<prefix>/conda-meta/<name>-<version>-<build>.json``, conda's PrefixRecord (conda/conda
``conda/models/records.py``): ``name``, ``version``, ``build``, ``build_number``, ``channel``, ``subdir``,
``url``, ``files`` (every file it installed, relative to the prefix), ``paths_data``, ``depends``. Of these we
keep the packages that put CUDA libraries in the prefix (``cudatoolkit``, ``cuda-*``, ``libcublas`` and
friends, ``cudnn``, ``nccl``, TensorRT) and TensorFlow's own (conda-forge names its CUDA in the build
string: ``cuda112py39h...``), each with the shared objects it lists. probes/library_versions.py then gives a
library file the loader picks the version and the package of the record that lists it, as it does for the
``nvidia-*`` wheels' RECORD, so the 3xx rules judge conda's libraries like pip's.

The prefix is found from the environment's own paths: a ``<prefix>/lib/pythonX.Y/site-packages`` on the
search path, or ``<prefix>/bin/python*``. Every read goes through the Root, bounded in count and size; a
record that cannot be read or parsed is an Unknown("conda", ...), never a crash.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from typing import Any, Optional

from tfcompat.model import CondaPackage, Unknown
from tfcompat.probes.rootfs import Root

# The packages whose records matter: CUDA libraries (the cudatoolkit bundle up to CUDA 11, the split
# cuda-*/lib* packages from CUDA 11.4/12), cuDNN, NCCL, TensorRT, and TensorFlow's conda builds.
_INTEREST = re.compile(
    r"^(?:cudatoolkit(?:-dev)?|cudnn|nccl|libnccl|tensorrt|libnvinfer(?:-.*)?|cuda-.+|cupti|"
    r"lib(?:cublas|cufft|curand|cusolver|cusparse|nvjitlink|cudnn)(?:-.*)?|"
    r"tensorflow|tensorflow-base|tensorflow-gpu)$"
)
# A shared object the loader can find: directly in lib/ (lib64/), or in a CUDA 12 package's targets/<arch>/lib/.
_LIBRARY = re.compile(r"^(?:lib|lib64|targets/[^/]+/lib)/lib[^/]+\.so(?:\.[0-9]+)*$")
_SITE = re.compile(r"^(.+)/lib(?:64)?/python\d+\.\d+/(?:site|dist)-packages/?$")
_SUBDIR = re.compile(r"^(?:noarch|linux-[a-z0-9_]+|osx-[a-z0-9]+|win-[a-z0-9]+)$")
_KNOWN_HOSTS = ("conda.anaconda.org", "repo.anaconda.com", "anaconda.org")

MAX_LISTED = 20_000  # names read from one conda-meta/ (a large environment has ~1,000 records)
MAX_RECORDS = 200  # records of interest read and parsed
MAX_LIBRARIES = 2_000  # shared objects kept from one record (a cudatoolkit lists a few hundred)


def env_prefix(site_dir: str) -> Optional[str]:
    """`<prefix>` of a `<prefix>/lib/pythonX.Y/site-packages` directory: the environment it belongs to, else None."""
    m = _SITE.match(site_dir.rstrip("/"))
    return m.group(1) if m else None


def conda_prefixes(root: Root, site_dirs: Sequence[str], executable: Optional[str] = None) -> list[str]:
    """The conda environments (inside-root prefixes that hold conda-meta/) of the target, in search order."""
    candidates = [p for p in (env_prefix(root.display(d)) for d in site_dirs) if p is not None]
    if executable:
        exe = root.display(executable)
        # a venv made from a conda python: its bin/python links into the conda env, whose lib/ the
        # interpreter's DT_RPATH $ORIGIN/../lib still puts on the loader's path
        try:
            real = root.resolve(exe)
        except OSError:
            real = exe
        for path in (exe, real):
            bindir = posixpath.dirname(path)
            if posixpath.basename(bindir) == "bin":
                candidates.append(posixpath.dirname(bindir))
    out: list[str] = []
    for prefix in candidates:
        prefix = prefix or "/"
        if prefix not in out and root.is_dir(posixpath.join(prefix, "conda-meta")):
            out.append(prefix)
    return out


def probe_conda(
    root: Root, site_dirs: Sequence[str], executable: Optional[str] = None
) -> tuple[tuple[CondaPackage, ...], list[Unknown]]:
    """The CUDA library and TensorFlow packages of the target's conda environments (see the module docstring)."""
    packages: list[CondaPackage] = []
    unknowns: list[Unknown] = []
    budget = MAX_RECORDS
    for prefix in conda_prefixes(root, site_dirs, executable):
        meta = posixpath.join(prefix, "conda-meta")
        try:
            names = root.listdir(meta)
        except OSError as exc:
            unknowns.append(Unknown("conda", f"cannot list {meta}: {exc.strerror or exc}"))
            continue
        if len(names) > MAX_LISTED:
            unknowns.append(Unknown("conda", f"{meta} has {len(names)} entries; only the first {MAX_LISTED} read"))
        wanted = sorted(n for n in names[:MAX_LISTED] if _wanted(n))
        for name in wanted:
            if budget <= 0:
                unknowns.append(Unknown("conda", f"over {MAX_RECORDS} CUDA or TensorFlow records; the rest unread"))
                break
            budget -= 1
            pkg, why = read_record(root, prefix, posixpath.join(meta, name))
            if pkg is not None:
                packages.append(pkg)
            elif why:
                unknowns.append(Unknown("conda", why))
    return tuple(packages), unknowns


def _wanted(filename: str) -> bool:
    """A record named <name>-<version>-<build>.json for a package of interest (conda versions and builds
    have no '-', so the name is what is left of the last two)."""
    if not filename.endswith(".json") or filename.startswith("."):
        return False
    parts = filename[: -len(".json")].rsplit("-", 2)
    return len(parts) == 3 and bool(_INTEREST.match(parts[0]))


def read_record(root: Root, prefix: str, path: str) -> tuple[Optional[CondaPackage], Optional[str]]:
    """(the package, None), or (None, why it cannot be used) for the record at `path` (inside the root)."""
    try:
        raw = root.read_bytes(path, "record")  # a cudatoolkit's record with paths_data is a few MiB
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the decoder's recursion
        return None, f"{path} is not JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"{path} is not a conda-meta record (a JSON object)"
    name, version, build = (_text(data.get(k)) for k in ("name", "version", "build"))
    if not (name and version and build is not None):
        return None, f"{path} states no name and version"
    files = data.get("files")
    libraries: list[str] = []
    if isinstance(files, list):
        for rel in files:
            if isinstance(rel, str) and _LIBRARY.match(rel) and len(libraries) < MAX_LIBRARIES:
                libraries.append(posixpath.join(prefix, rel))
    number = data.get("build_number")
    return (
        CondaPackage(
            name=name,
            version=version,
            build=build,
            channel=channel_name(data),
            prefix=prefix,
            record_path=path,
            build_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
            subdir=_text(data.get("subdir")),
            libraries=tuple(libraries),
        ),
        None,
    )


def _text(value: Any) -> Optional[str]:
    return value.strip() if isinstance(value, str) and value.strip() else None


def channel_name(data: dict) -> str:
    """'conda-forge', 'pkgs/main', 'nvidia' from the record's channel (a URL or a name), else from its url."""
    text = _text(data.get("channel")) or _text(data.get("url")) or ""
    m = re.match(r"^[a-z][a-z0-9+.-]*://([^/]+)/(.*)$", text)
    if not m:
        return text.strip("/") or "unknown channel"
    host, path = m.group(1), m.group(2).strip("/")
    parts = path.split("/")
    if parts and parts[-1].endswith((".tar.bz2", ".conda")):
        parts = parts[:-1]  # the url names the package file
    if parts and _SUBDIR.match(parts[-1]):
        parts = parts[:-1]
    if host.split("@")[-1] in _KNOWN_HOSTS and parts:
        return "/".join(parts)
    return f"{m.group(0)[: m.start(2)]}{'/'.join(parts)}".rstrip("/")
