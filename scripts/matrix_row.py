#!/usr/bin/env python3
"""Derive a `[[tensorflow]]` row of data/compat_matrix.toml for one TensorFlow release.

Facts come from the release itself, never from memory:

* the Linux x86-64 wheel's METADATA (PyPI's JSON API names the files; the METADATA is read as
  PEP 658 metadata, ``<wheel URL>.metadata``, without downloading the wheel): Python range,
  numpy / protobuf / keras / ml_dtypes / h5py specifiers, the ``[and-cuda]`` pins;
* the wheel's ``tensorflow/python/platform/build_info.py`` (read out of the wheel on PyPI with HTTP
  range requests: a few hundred kB, not the whole wheel): build CUDA, cuDNN major, compute
  capabilities, TensorRT;
* the wheel's platform tag: manylinux tag and the glibc floor it promises.

What neither states (NumPy C-ABI, GLIBCXX/CXXABI floors, C++11 ABI, compiler, cuDNN minor when there
is no ``[and-cuda]`` pin) is copied from the nearest older entry of the matrix and marked ``# CHECK``.

Usage (network; PyPI):   python scripts/matrix_row.py 2.21.0
Offline (recorded files): python scripts/matrix_row.py 2.21.0 --metadata METADATA --build-info build_info.py \\
                              --wheel-tag cp311-cp311-manylinux_2_27_x86_64
Print the differences against the matrix's entry for that release: add ``--compare``.

Paste the row into data/compat_matrix.toml, narrow ``versions`` so that no release is matched twice,
fill the fields marked ``# CHECK`` from their primary source, and run ``python -m pytest tests/test_matrix.py``.
"""

from __future__ import annotations

import argparse
import datetime
import email.parser
import io
import json
import re
import sys
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from typing import Any, Callable, Optional

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

PYPI_JSON = "https://pypi.org/pypi/tensorflow/{version}/json"
PYPI_PROJECT_JSON = "https://pypi.org/pypi/tensorflow/json"
BUILD_INFO_MEMBER = "tensorflow/python/platform/build_info.py"

# Requires-Dist names -> matrix fields.
REQUIREMENT_FIELDS = {
    "numpy": "numpy",
    "protobuf": "protobuf",
    "keras": "keras",
    "ml-dtypes": "ml_dtypes",
    "h5py": "h5py",
}
# Fields no file of the release states: copied from the nearest older matrix entry, marked # CHECK.
COPIED_FIELDS = ("numpy_abi", "glibcxx", "cxxabi", "cxx11_abi", "compiler")
FIELD_ORDER = (
    "versions",
    "releases",
    "python",
    "cuda",
    "cudnn",
    "compute_capabilities",
    "numpy_abi",
    "tensorrt",
    "tensorrt_lib",
    "numpy",
    "protobuf",
    "keras",
    "ml_dtypes",
    "h5py",
    "glibc",
    "glibcxx",
    "cxxabi",
    "manylinux",
    "cxx11_abi",
    "compiler",
    "source",
    "checked",
)
# manylinux legacy aliases -> glibc they promise
_LEGACY_MANYLINUX = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
_OPERATOR_ORDER = {"~=": 0, "==": 1, "===": 1, ">=": 2, ">": 3, "!=": 4, "<=": 5, "<": 6}

Opener = Callable[[urllib.request.Request], Any]


class RowError(ValueError):
    """The release's files do not say what a row needs."""


# ---------------------------------------------------------------------------------------------- derive


def format_spec(spec: SpecifierSet) -> str:
    """A specifier in reading order: lower bounds, exclusions, upper bounds (`>=3.20.3,!=4.21.0,<5.0.0dev`)."""
    items = sorted(
        spec,
        key=lambda s: (
            _OPERATOR_ORDER.get(s.operator, 9),
            Version(s.version.rstrip(".*")) if s.version.rstrip(".*")[:1].isdigit() else Version("0"),
        ),
    )
    return ",".join(str(s) for s in items)


def _metadata(text: str):
    return email.parser.Parser().parsestr(text, headersonly=True)


def _target_markers(python: str) -> dict[str, str]:
    return {
        "python_version": python,
        "python_full_version": python + ".0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_release": "",
        "platform_version": "",
        "implementation_version": python + ".0",
        "extra": "",
    }


def _applies(req: Requirement, markers: dict[str, str]) -> bool:
    if req.marker is None:
        return True
    try:
        return req.marker.evaluate(markers)
    except (InvalidMarker, UndefinedEnvironmentName):
        return False


def python_range(meta) -> Optional[str]:
    """From the `Programming Language :: Python :: 3.X` classifiers (what the release was built and tested for),
    else Requires-Python."""
    minors = sorted(
        {
            int(m.group(1))
            for c in meta.get_all("Classifier") or ()
            for m in [re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c.strip())]
            if m
        }
    )
    if minors:
        return f">=3.{minors[0]},<3.{minors[-1] + 1}"
    requires_python = meta.get("Requires-Python")
    return format_spec(SpecifierSet(requires_python)) if requires_python else None


def wheel_python(tag: str) -> str:
    m = re.match(r"cp(\d)(\d+)", tag)
    return f"{m.group(1)}.{m.group(2)}" if m else "3.11"


def manylinux_of(tag: str) -> tuple[Optional[str], Optional[str]]:
    """`cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64` -> (platform tag, glibc floor it promises)."""
    platform = tag.split("-")[-1]
    floors = []
    for p in platform.split("."):
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", p)
        if m:
            floors.append(Version(f"{m.group(1)}.{m.group(2)}"))
        legacy = p.replace("_x86_64", "")
        if legacy in _LEGACY_MANYLINUX:
            floors.append(Version(_LEGACY_MANYLINUX[legacy]))
    if not floors:
        return platform, None
    return platform, str(max(floors))


def derive_row(
    version: str,
    metadata_text: str,
    build_info: Optional[dict[str, Any]],
    wheel_tag: str,
    previous: Optional[dict[str, Any]] = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(row, comments): the fields a release's own files state, plus COPIED_FIELDS from `previous`."""
    meta = _metadata(metadata_text)
    if (meta.get("Version") or "").strip() != version:
        raise RowError(f"METADATA is for version {meta.get('Version')!r}, not {version}")
    v = Version(version)
    row: dict[str, Any] = {}
    comments: dict[str, str] = {}
    row["versions"] = f">={version},<{v.major}.{v.minor + 1}.0"
    comments["versions"] = "CHECK: narrow if another patch release of this minor differs"
    row["releases"] = [version]
    python = python_range(meta)
    if python:
        row["python"] = python
        comments["python"] = "CHECK against https://www.tensorflow.org/install/source#gpu (from the classifiers)"
    markers = _target_markers(wheel_python(wheel_tag))
    base: dict[str, Requirement] = {}
    and_cuda: dict[str, str] = {}
    for line in meta.get_all("Requires-Dist") or ():
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        name = canonicalize_name(req.name)
        marker = str(req.marker) if req.marker else ""
        if "and-cuda" in marker:
            and_cuda[name] = format_spec(req.specifier)
        elif "extra" not in marker and _applies(req, markers) and name in REQUIREMENT_FIELDS:
            base[name] = req
    if build_info is not None:
        cuda = build_info.get("cuda_version")
        if cuda:
            row["cuda"] = str(cuda)
        cudnn_pin = next((s for n, s in and_cuda.items() if n.startswith("nvidia-cudnn-")), None)
        cudnn_major = str(build_info.get("cudnn_version") or "")
        if cudnn_pin:
            low = next((Version(s.version) for s in SpecifierSet(cudnn_pin) if s.operator in ("==", ">=")), None)
            if low is not None:
                row["cudnn"] = f"{low.major}.{low.minor}"
                comments["cudnn"] = f"compiled-with minor from the [and-cuda] pin nvidia-cudnn {cudnn_pin}"
        if (
            "cudnn" not in row
            and previous
            and previous.get("cudnn")
            and cudnn_major
            and str(previous["cudnn"]).split(".")[0] == cudnn_major
        ):
            row["cudnn"] = previous["cudnn"]
            comments["cudnn"] = f"CHECK: build_info says cuDNN {cudnn_major}; minor copied from the previous entry"
        ccs = build_info.get("cuda_compute_capabilities")
        if ccs:
            row["compute_capabilities"] = [str(c) for c in ccs]
        if isinstance(build_info.get("is_tensorrt_build"), bool):
            row["tensorrt"] = build_info["is_tensorrt_build"]
    for name, req in base.items():
        row[REQUIREMENT_FIELDS[name]] = format_spec(req.specifier)
    platform, glibc = manylinux_of(wheel_tag)
    if glibc:
        row["glibc"] = glibc
        comments["glibc"] = f"promised by the wheel tag {platform}"
    if platform:
        row["manylinux"] = platform
    for field in COPIED_FIELDS:
        if previous and previous.get(field) is not None:
            row[field] = previous[field]
            comments[field] = "CHECK: copied from the previous entry"
    row["source"] = [
        f"https://pypi.org/project/tensorflow/{version}/",
        f"https://pypi.org/project/tensorflow/{version}/#files",
    ]
    comments["source"] = f"METADATA and build_info.py of tensorflow-{version}-{wheel_tag}.whl"
    row["checked"] = datetime.date.today().isoformat()
    if and_cuda:
        row["and_cuda"] = dict(sorted(and_cuda.items()))
    return row, comments


# ---------------------------------------------------------------------------------------------- TOML


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string for these characters


def render_row(row: dict[str, Any], comments: dict[str, str]) -> str:
    lines = ["[[tensorflow]]"]
    for key in FIELD_ORDER:
        if key in row:
            comment = f"  # {comments[key]}" if key in comments else ""
            lines.append(f"{key} = {_toml_value(row[key])}{comment}")
    extra = [k for k in row if k not in FIELD_ORDER and k != "and_cuda"]
    for key in extra:
        lines.append(f"{key} = {_toml_value(row[key])}")
    if row.get("and_cuda"):
        lines.append("")
        lines.append("[tensorflow.and_cuda]")
        for name, spec in row["and_cuda"].items():
            lines.append(f"{json.dumps(name)} = {json.dumps(spec)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- PyPI


def _get(url: str, opener: Opener, headers: Optional[dict[str, str]] = None) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "tfcompat-matrix-row", **(headers or {})})
    with opener(req) as resp:
        return resp.read()


def pick_wheel(files: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The Linux x86-64 CPython wheel: cp311 when there is one (what the matrix was built from), else the newest."""
    best: Optional[tuple[tuple[int, int], dict[str, Any]]] = None
    for f in files:
        name = f.get("filename", "")
        if not name.endswith(".whl"):
            continue
        try:
            _, _, _, tags = parse_wheel_filename(name)
        except ValueError:
            continue
        if not any(t.platform.endswith("x86_64") and "linux" in t.platform for t in tags):
            continue
        m = re.match(r"cp3(\d+)", next(iter(tags)).interpreter)
        if not m:
            continue
        minor = int(m.group(1))
        rank = (1 if minor == 11 else 0, minor)
        if best is None or rank > best[0]:
            best = (rank, f)
    if best is None:
        raise RowError("no Linux x86-64 CPython wheel among the release's files")
    return best[1]


def wheel_tag_of(filename: str) -> str:
    """`tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl` -> `cp311-cp311-manylinux_2_27_x86_64`."""
    stem = filename[:-4] if filename.endswith(".whl") else filename
    return "-".join(stem.split("-")[-3:])


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through HTTP range requests (enough for zipfile)."""

    def __init__(self, url: str, size: int, opener: Opener):
        self.url, self.size, self.opener, self.pos = url, size, opener, 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size or len(buffer) == 0:
            return 0
        end = min(self.size, self.pos + len(buffer)) - 1
        data = _get(self.url, self.opener, {"Range": f"bytes={self.pos}-{end}"})
        self.requests += 1
        if len(data) != end - self.pos + 1:
            raise RowError(f"{self.url}: the server ignored the Range request")
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def read_wheel_member(url: str, size: int, member: str, opener: Opener) -> str:
    raw = HttpRangeFile(url, size, opener)
    with zipfile.ZipFile(io.BufferedReader(raw, buffer_size=256 * 1024)) as zf:
        return zf.read(member).decode("utf-8")


def release_files(version: str, opener: Opener) -> list[dict[str, Any]]:
    """The files of one release, from PyPI's JSON API (per-release endpoint, else the project's)."""
    import urllib.error

    for url in (PYPI_JSON.format(version=version), PYPI_PROJECT_JSON):
        try:
            info = json.loads(_get(url, opener))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            raise
        files = info.get("urls") if "releases" not in info else info["releases"].get(version)
        if not files:
            raise RowError(f"PyPI has no files for tensorflow {version}")
        return [dict(f, url=urllib.parse.urljoin(url, f["url"])) for f in files]
    raise RowError(f"PyPI does not know tensorflow {version}")


def fetch_release(
    version: str, opener: Opener = urllib.request.urlopen, with_build_info: bool = True
) -> tuple[str, Optional[str], str]:
    """(METADATA text, build_info.py text or None, wheel tag) of the release's Linux x86-64 wheel on PyPI.

    METADATA is the PEP 658 file next to the wheel; where the index does not serve it, the wheel's own
    ``*.dist-info/METADATA``, read with range requests like build_info.py.
    """
    import urllib.error

    wheel = pick_wheel(release_files(version, opener))
    url, size = wheel["url"], int(wheel["size"])
    try:
        metadata = _get(url + ".metadata", opener).decode("utf-8")
    except urllib.error.HTTPError:
        name = wheel["filename"].split("-")
        metadata = read_wheel_member(url, size, f"{name[0]}-{name[1]}.dist-info/METADATA", opener)
    build_info = read_wheel_member(url, size, BUILD_INFO_MEMBER, opener) if with_build_info else None
    return metadata, build_info, wheel_tag_of(wheel["filename"])


# ---------------------------------------------------------------------------------------------- matrix


def _entries(matrix_path: Optional[str]) -> list[dict[str, Any]]:
    from tfcompat.matrix import default_matrix_path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    path = matrix_path or str(default_matrix_path())
    with open(path, "rb") as fh:
        return list(tomllib.load(fh).get("tensorflow", []))


def previous_entry(version: str, matrix_path: Optional[str]) -> Optional[dict[str, Any]]:
    """The raw TOML table of the newest matrix entry for releases older than `version` (never its own
    entry): where the fields no file of the release states are copied from."""
    v = Version(version)
    best: Optional[tuple[Version, dict[str, Any]]] = None
    for entry in _entries(matrix_path):
        spec = SpecifierSet(entry["versions"])
        if spec.contains(v, prereleases=True):
            continue
        low = min((Version(s.version) for s in spec if s.operator in (">=", "==")), default=None)
        if low is not None and low < v and (best is None or low > best[0]):
            best = (low, entry)
    return best[1] if best else None


def own_entry(version: str, matrix_path: Optional[str]) -> Optional[dict[str, Any]]:
    """The raw TOML table of the matrix entry that matches `version`."""
    v = Version(version)
    return next((e for e in _entries(matrix_path) if SpecifierSet(e["versions"]).contains(v, prereleases=True)), None)


def compare(row: dict[str, Any], entry: dict[str, Any], skip: Sequence[str] = COPIED_FIELDS) -> list[str]:
    """Fields where the derived row and the matrix entry state different facts (fields copied from the
    previous entry are skipped: the release's files do not state them)."""
    out = []
    for key, value in row.items():
        if key in ("versions", "releases", "source", "checked") or key in skip:
            continue
        have = entry.get(key)
        if key in ("python", "numpy", "protobuf", "keras", "ml_dtypes", "h5py") and have is not None:
            same = SpecifierSet(str(value)) == SpecifierSet(str(have))
        elif key == "and_cuda" and isinstance(have, dict):
            same = {k: SpecifierSet(s) for k, s in value.items()} == {k: SpecifierSet(s) for k, s in have.items()}
        elif key == "glibc" and have is not None:
            # the tag states the floor the wheel claims; the matrix may hold the higher floor its objects' GLIBC_
            # symbols need (refresh_matrix.py reads them): only a matrix floor below the tag's is a wrong fact
            same = Version(str(have)) >= Version(str(value))
        elif key in ("cuda", "cudnn") and have is not None:
            same = Version(str(value)) == Version(str(have))
        else:
            same = value == have
        if not same:
            out.append(f"{key}: release says {value!r}, matrix says {have!r}")
    return out


def main(argv: Optional[Sequence[str]] = None, opener: Opener = urllib.request.urlopen) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("version", help="TensorFlow release, e.g. 2.21.0")
    parser.add_argument("--metadata", help="the wheel's METADATA file (offline; else fetched from PyPI)")
    parser.add_argument("--build-info", help="the wheel's tensorflow/python/platform/build_info.py (offline)")
    parser.add_argument("--wheel-tag", help="the wheel's tag, e.g. cp311-cp311-manylinux_2_27_x86_64 (offline)")
    parser.add_argument("--no-build-info", action="store_true", help="do not read build_info.py out of the wheel")
    parser.add_argument("--matrix", help="matrix to copy non-derivable fields from (default: the shipped one)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="print the differences against the matrix's entry for this release; exit 1 if any",
    )
    args = parser.parse_args(argv)
    from tfcompat.probes.tensorflow import parse_build_info

    try:
        Version(args.version)
        if args.metadata:
            if not args.wheel_tag:
                raise RowError("--metadata needs --wheel-tag (the wheel's tag states the platform)")
            with open(args.metadata, encoding="utf-8") as fh:
                metadata = fh.read()
            build_text = None
            if args.build_info:
                with open(args.build_info, encoding="utf-8") as fh:
                    build_text = fh.read()
            tag = args.wheel_tag
        else:
            metadata, build_text, tag = fetch_release(args.version, opener, with_build_info=not args.no_build_info)
        build = parse_build_info(build_text) if build_text is not None else None
        prev = previous_entry(args.version, args.matrix)
        row, comments = derive_row(args.version, metadata, build, tag, prev)
    except (OSError, ValueError) as exc:
        print(f"matrix_row: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_row(row, comments))
    if args.compare:
        entry = own_entry(args.version, args.matrix)
        if entry is None:
            print(f"# the matrix has no entry for {args.version}", file=sys.stderr)
            return 1
        diffs = compare(row, entry)
        for d in diffs:
            print(f"# differs: {d}", file=sys.stderr)
        for field in COPIED_FIELDS:
            if field in row and row[field] != entry.get(field):
                print(
                    f"# not derivable, copied: {field} = {row[field]!r}; the matrix says {entry.get(field)!r}",
                    file=sys.stderr,
                )
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
