#!/usr/bin/env python3
"""Read the GPU architectures of every library in one nvidia-cudnn-cu1X wheel: the evidence of a [[cudnn]] row.

Downloads the wheel of one release from PyPI (the project's JSON API, https://pypi.org/pypi/NAME/json; the
Linux wheel of the chosen machine), checks its sha256 against PyPI's digest, extracts each ``lib/*.so*``
member to a temporary file, lists its fatbin entries with tfcompat.probes.native.fatbin (headers only:
nothing is loaded or executed) and prints one JSON line:

    {"dist", "version", "wheel", "url", "sha256", "libs": {"libcudnn_cnn.so.9": {"archs": {"sm_75": 12, ...},
     "problems": []}, ...}}

The rows' ``compute_capabilities`` come from libcudnn_cnn.so.9 and libcudnn_ops.so.9, the legacy API
TensorFlow calls (cuDNN 8: libcudnn_{cnn,ops}_{infer,train}.so.8; tests/matrix/test_matrix_cudnn_binaries.py
says how an architecture covers a compute capability); ``--fixture`` prints instead the trimmed line
tests/fixtures/cudnn_survey.json keeps per wheel.

Usage:  python scripts/cudnn_archs.py nvidia-cudnn-cu12==9.28.0.42       (downloads ~700 MB to a temp dir)
        python scripts/cudnn_archs.py nvidia-cudnn-cu13==9.28.1.4 --machine aarch64 --fixture
        python scripts/cudnn_archs.py --wheel FILE.whl                   (a wheel already on disk, offline)
Exit 0: read; 1: a library could not be read completely (its problems are in the line); 2: error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from tfcompat.probes.native.fatbin import read_fatbins

PYPI = "https://pypi.org/pypi/{name}/json"
TIMEOUT_S = 120
CHUNK = 1 << 22
LEGACY_API = ("libcudnn_cnn.so.9", "libcudnn_ops.so.9")  # what TensorFlow's cuDNN calls reach
# cuDNN 8 ships the same API split into inference and training halves
LEGACY_API_8 = (
    "libcudnn_cnn_infer.so.8",
    "libcudnn_cnn_train.so.8",
    "libcudnn_ops_infer.so.8",
    "libcudnn_ops_train.so.8",
)
_LIB_MEMBER = re.compile(r"(^|/)lib/[^/]+\.so(\.[0-9]+)*$")
_WHEEL_NAME = re.compile(r"^(?P<dist>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-")


class CudnnArchsError(Exception):
    """A one-line reason the wheel could not be read (exit 2)."""


def wheel_file(project: dict[str, Any], name: str, version: str, machine: str) -> tuple[str, str, str]:
    """(file name, absolute URL, sha256) of the manylinux wheel for `machine` of `version`. PyPI's mirrors
    may give URLs relative to the JSON document (``../../packages/...``): they are resolved against it."""
    files = project.get("releases", {}).get(version)
    if not files:
        raise CudnnArchsError(f"PyPI lists no files for {name} {version}")
    for f in files:
        fname = f.get("filename", "")
        if fname.endswith(".whl") and "manylinux" in fname and fname.endswith(f"_{machine}.whl"):
            sha = (f.get("digests") or {}).get("sha256")
            if not sha:
                raise CudnnArchsError(f"{fname}: PyPI gives no sha256 digest")
            return fname, urllib.parse.urljoin(PYPI.format(name=name), f["url"]), sha
    raise CudnnArchsError(f"{name} {version}: no manylinux {machine} wheel among {len(files)} file(s)")


def download(url: str, dest: str, sha256: str, opener: Callable[..., Any]) -> None:
    """Stream `url` to `dest`, hashing as it goes; a digest that differs from PyPI's is an error."""
    digest = hashlib.sha256()
    with opener(urllib.request.Request(url), timeout=TIMEOUT_S) as resp, open(dest, "wb") as out:
        for chunk in iter(lambda: resp.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise CudnnArchsError(f"{url}: sha256 {digest.hexdigest()}, PyPI says {sha256}")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CudnnArchsError(f"{path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def read_wheel(path: str, workdir: str) -> dict[str, dict[str, Any]]:
    """Per ``lib/*.so*`` member (by base name): its fatbin architectures with entry counts, and problems."""
    libs: dict[str, dict[str, Any]] = {}
    try:
        with zipfile.ZipFile(path) as whl:
            for info in sorted(whl.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not _LIB_MEMBER.search(info.filename):
                    continue
                tmp = os.path.join(workdir, "member.so")
                with whl.open(info) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                scan = read_fatbins(tmp)
                os.unlink(tmp)
                problems = [p.replace(f"{tmp}: {tmp}", tmp).replace(tmp, info.filename) for p in scan.problems]
                libs[os.path.basename(info.filename)] = {"archs": dict(scan.counts), "problems": problems}
    except (zipfile.BadZipFile, OSError) as exc:
        raise CudnnArchsError(f"{path}: not a readable wheel: {exc}") from None
    if not libs:
        raise CudnnArchsError(f"{path}: no lib/*.so* member")
    return libs


def trimmed(record: dict[str, Any]) -> dict[str, Any]:
    """The line tests/fixtures/cudnn_survey.json keeps: the legacy-API libraries' architectures only
    (cuDNN 8's infer/train halves where the wheel is a cuDNN 8 one)."""
    out = {k: record[k] for k in ("dist", "version", "wheel", "sha256")}
    for lib in LEGACY_API_8 if LEGACY_API_8[0] in record["libs"] else LEGACY_API:
        out[lib] = list(record["libs"].get(lib, {}).get("archs", {}))
    return out


def main(argv: Optional[Sequence[str]] = None, opener: Callable[..., Any] = urllib.request.urlopen) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("release", nargs="?", help="NAME==VERSION, e.g. nvidia-cudnn-cu12==9.28.0.42")
    parser.add_argument("--wheel", metavar="FILE", help="read a wheel already on disk (no download)")
    parser.add_argument("--machine", default="x86_64", help="the wheel's machine: x86_64 (default) or aarch64")
    parser.add_argument("--fixture", action="store_true", help="print the trimmed line of cudnn_survey.json")
    parser.add_argument("--workdir", help="where the wheel and members go while read (default: a temp dir)")
    args = parser.parse_args(argv)
    try:
        if bool(args.release) == bool(args.wheel):
            raise CudnnArchsError("give NAME==VERSION or --wheel FILE (one of them)")
        with tempfile.TemporaryDirectory(prefix="cudnn-archs-", dir=args.workdir) as work:
            if args.wheel:
                m = _WHEEL_NAME.match(os.path.basename(args.wheel))
                dist = m.group("dist").replace("_", "-") if m else ""
                record: dict[str, Any] = {"dist": dist, "version": m.group("version") if m else ""}
                record.update(wheel=os.path.basename(args.wheel), url=None, sha256=_sha256(args.wheel))
                path = args.wheel
            else:
                name, sep, version = args.release.partition("==")
                if not sep or not name or not version:
                    raise CudnnArchsError(f"{args.release!r}: expected NAME==VERSION")
                url = PYPI.format(name=name)
                try:
                    with opener(urllib.request.Request(url), timeout=TIMEOUT_S) as resp:
                        project = json.load(resp)
                    fname, wheel_url, sha = wheel_file(project, name, version, args.machine)
                    path = os.path.join(work, fname)
                    url = wheel_url  # what a failure below names
                    download(wheel_url, path, sha, opener)
                except (urllib.error.URLError, OSError) as exc:
                    raise CudnnArchsError(f"{url}: {getattr(exc, 'reason', exc)}") from None
                except ValueError as exc:
                    raise CudnnArchsError(f"{url}: not JSON: {exc}") from None
                record = {"dist": name, "version": version, "wheel": fname, "url": wheel_url, "sha256": sha}
            record["libs"] = read_wheel(path, work)
    except CudnnArchsError as exc:
        print(f"cudnn_archs: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(trimmed(record) if args.fixture else record))
    return 1 if any(lib["problems"] for lib in record["libs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
