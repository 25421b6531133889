#!/usr/bin/env python3
"""Re-derive from PyPI what data/compat_matrix.toml states mechanically, and print where the matrix is behind.

Three checks, each against PyPI's JSON API (https://pypi.org/pypi/NAME/json) and the PEP 658 METADATA files
next to the wheels (never a whole wheel):

* ``tensorflow``: every final release on PyPI (not yanked, from the matrix's oldest entry on) that the matrix
  does not list; for the newest release of every ``[[tensorflow]]`` entry (and every unlisted release an entry
  matches) the Requires-Dist / Requires-Python / wheel-tag facts, read the way scripts/matrix_row.py reads
  them, against the entry (build_info.py facts, CUDA, cuDNN, compute capabilities, need the wheel: run
  ``scripts/matrix_row.py VERSION --compare`` for those). Two facts are compared by what they mean, not equality:
  ``python`` of a release whose METADATA states no Requires-Python (every release before 2.2: their classifiers
  are stale, 1.13 ships cp37 wheels and lists 3.4-3.6) is checked against the release's Linux x86-64 wheels, since
  the row states the tested-build table: every Python a wheel exists for must be admitted and the newest admitted
  Python must have a wheel (the table may name older Pythons a patch release no longer ships: 3.3 for 1.15);
  ``glibc`` is the highest GLIBC_ symbol version the wheel's objects need, the tag only what the wheel claims: a
  matrix floor below the tag's is a difference (pip refuses the wheel there), one above it a note (TF 1.5-1.14
  manylinux1 wheels need glibc 2.17 / 2.23: they were never manylinux1-compliant);
* every package of ``[[companion]]``: final releases newer than every entry covers, and the ``tensorflow``
  range its latest release requires against the entry that covers it;
* ``nvidia-cudnn-cu11`` / ``-cu12`` / ``-cu13``: final releases newer than the newest one a ``[[cudnn]]``
  entry of that CUDA major describes (a row matches it, or a row of its major.minor exists: TFC208's lookup);
  older releases no entry describes are listed as a note.

Usage:  python scripts/refresh_matrix.py                    (online: PyPI, 30 s per request)
        python scripts/refresh_matrix.py --offline DIR      (recorded, trimmed PyPI JSON and METADATA files)
        python scripts/refresh_matrix.py --record DIR       (online, and write what it read, trimmed, to DIR)
Exit 0: no difference; 1: the matrix is behind (each difference one line starting "behind:"); 2: error.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, Callable, Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PYPI = "https://pypi.org/pypi/{name}/json"
TIMEOUT_S = 30
CUDNN_WHEELS = {11: "nvidia-cudnn-cu11", 12: "nvidia-cudnn-cu12", 13: "nvidia-cudnn-cu13"}
# Pythons a python specifier is checked over (CPython minors a TensorFlow wheel could be built for)
PYTHON_MINORS = [Version("2.7")] + [Version(f"3.{m}") for m in range(30)]
# METADATA headers the check reads (what --record keeps)
METADATA_KEPT = ("Metadata-Version", "Name", "Version", "Requires-Python", "Requires-Dist", "Provides-Extra")

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_matrix_row() -> Any:
    spec = importlib.util.spec_from_file_location("matrix_row", os.path.join(_HERE, "matrix_row.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mr = _load_matrix_row()


class RefreshError(Exception):
    """PyPI (or the recorded files) could not be read: exit 2."""


# ---------------------------------------------------------------------------------------------- sources


class PyPI:
    """PyPI's JSON API and PEP 658 METADATA, online. `record`: a folder to write what was read, trimmed."""

    def __init__(self, opener: Callable[..., Any] = urllib.request.urlopen, record: Optional[str] = None):
        self.opener, self.record = opener, record
        self.cache: dict[str, dict[str, Any]] = {}

    def _get(self, url: str) -> bytes:
        req = urllib.request.Request(url, headers={"User-Agent": "tfcompat-refresh-matrix"})
        try:
            with self.opener(req, timeout=TIMEOUT_S) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise RefreshError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RefreshError(f"{url}: {getattr(exc, 'reason', exc)}") from None

    def project(self, name: str) -> dict[str, Any]:
        if name in self.cache:
            return self.cache[name]
        url = PYPI.format(name=name)
        try:
            data = json.loads(self._get(url))
        except ValueError as exc:
            raise RefreshError(f"{url}: not JSON: {exc}") from None
        for files in data.get("releases", {}).values():
            for f in files:
                if "url" in f:
                    f["url"] = urllib.parse.urljoin(url, f["url"])
        if self.record:
            _write_json(os.path.join(self.record, f"pypi-{name}.json"), trim_project(name, data))
        self.cache[name] = data
        return data

    def metadata(self, name: str, version: str, wheel: dict[str, Any]) -> str:
        try:
            text = self._get(wheel["url"] + ".metadata").decode("utf-8")
        except RefreshError:  # no PEP 658 file: the wheel's own METADATA, by HTTP range requests
            parts = wheel["filename"].split("-")
            try:
                text = mr.read_wheel_member(
                    wheel["url"],
                    int(wheel["size"]),
                    f"{parts[0]}-{parts[1]}.dist-info/METADATA",
                    lambda req: self.opener(req, timeout=TIMEOUT_S),
                )
            except (OSError, ValueError, KeyError) as exc:
                raise RefreshError(f"{wheel['filename']}: cannot read its METADATA: {exc}") from None
        if self.record:
            with open(os.path.join(self.record, f"{name}-{version}.METADATA"), "w", encoding="utf-8") as fh:
                fh.write(trim_metadata(text))
        return text


class Recorded:
    """The files --record wrote (tests/fixtures/refresh/): pypi-NAME.json, NAME-VERSION.METADATA."""

    def __init__(self, folder: str):
        self.folder = folder

    def _read(self, name: str) -> str:
        path = os.path.join(self.folder, name)
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise RefreshError(f"{path}: {exc.strerror or exc}") from None

    def project(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self._read(f"pypi-{name}.json"))
        except ValueError as exc:
            raise RefreshError(f"{self.folder}/pypi-{name}.json: not JSON: {exc}") from None

    def metadata(self, name: str, version: str, wheel: dict[str, Any]) -> str:
        return self._read(f"{name}-{version}.METADATA")


def _write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=0, sort_keys=True)
        fh.write("\n")


def trim_project(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """Only what the checks read: info.version / requires_dist, and per release `yanked` (and for tensorflow
    the file names of its Linux x86-64 CPython wheels: the Requires-Dist check reads one, the python check all)."""
    info = data.get("info", {})
    releases: dict[str, list[dict[str, Any]]] = {}
    for version, files in data.get("releases", {}).items():
        if not files:
            continue
        if name == "tensorflow":
            wheels = [f for f in files if _linux_cpython_minor(f.get("filename", "")) is not None]
            if wheels and _safe(version) is not None:
                releases[version] = [{"filename": f["filename"], "yanked": bool(f.get("yanked"))} for f in wheels]
        else:
            releases[version] = [{"yanked": all(f.get("yanked") for f in files)}]
    return {
        "info": {"name": info.get("name"), "version": info.get("version"), "requires_dist": info.get("requires_dist")},
        "releases": releases,
    }


def trim_metadata(text: str) -> str:
    meta = email.parser.Parser().parsestr(text, headersonly=True)
    lines = [
        f"{key}: {value}"
        for key, value in meta.items()
        if key in METADATA_KEPT or (key == "Classifier" and value.startswith("Programming Language :: Python :: 3"))
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- checks


def final_releases(project: dict[str, Any]) -> list[Version]:
    """Final (not pre-/dev-release), not-yanked releases with files, oldest first."""
    out = []
    for version, files in project.get("releases", {}).items():
        try:
            v = Version(version)
        except InvalidVersion:
            continue
        if files and not v.is_prerelease and not all(f.get("yanked") for f in files):
            out.append(v)
    return sorted(out)


def _linux_cpython_minor(filename: str) -> Optional[Version]:
    """`tensorflow-1.5.1-cp27-cp27mu-manylinux1_x86_64.whl` -> 2.7; None for any other file."""
    if not filename.endswith(".whl") or "linux" not in filename or "x86_64" not in filename:
        return None
    tag = mr.wheel_tag_of(filename).split("-")[0]
    if not (tag.startswith("cp") and tag[2:].isdigit() and len(tag) >= 4):
        return None
    return Version(f"{tag[2]}.{tag[3:]}")


def check_python_by_wheels(files: Sequence[dict[str, Any]], python: str) -> list[str]:
    """A row's `python` (the tested-build table) against the Pythons the release ships Linux wheels for."""
    built = sorted({m for f in files if not f.get("yanked") for m in [_linux_cpython_minor(f["filename"])] if m})
    spec = SpecifierSet(python)
    admitted = [m for m in PYTHON_MINORS if spec.contains(m)]
    out = []
    outside = [str(m) for m in built if m not in admitted]
    if outside:
        out.append(f"python: wheels for {', '.join(outside)}, matrix says {python!r}")
    if built and admitted and admitted[-1] not in built:
        out.append(f"python: newest wheel for {built[-1]}, matrix says {python!r} (up to {admitted[-1]})")
    return out


def _lower(spec: SpecifierSet) -> Optional[Version]:
    lows = [Version(s.version.rstrip(".*")) for s in spec if s.operator in (">=", "==", "~=", "===")]
    return min(lows) if lows else None


def _release_text(project: dict[str, Any], v: Version) -> str:
    """The key PyPI uses for `v` (2.15.0.post1 stays as written)."""
    return next((k for k in project.get("releases", {}) if _safe(k) == v), str(v))


def _safe(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def check_tensorflow(
    matrix: Any, source: Any, matrix_path: Optional[str], new_releases: Optional[list[str]] = None
) -> tuple[list[str], list[str]]:
    """(report lines, differences); `new_releases` gets the releases no entry matches."""
    if new_releases is None:
        new_releases = []
    project = source.project("tensorflow")
    known = set(matrix.tf_releases())
    oldest = min((low for rel in matrix.tensorflow for low in [_lower(rel.versions)] if low), default=Version("0"))
    on_pypi = [v for v in final_releases(project) if v >= oldest]
    lines: list[str] = []
    diffs: list[str] = []
    if not on_pypi:
        raise RefreshError("PyPI lists no tensorflow release the matrix could describe")
    lines.append(
        f"tensorflow: PyPI has {len(on_pypi)} final releases {on_pypi[0]} ... {on_pypi[-1]}; "
        f"the matrix lists {len(known)} ({matrix.tf_releases()[0]} ... {matrix.tf_releases()[-1]})"
    )
    above: list[str] = []  # entries whose glibc (the symbols) is above the wheel tag's floor
    to_read: dict[str, Any] = {}  # release -> matrix entry (raw TOML) to compare its Requires-Dist with
    new_releases.clear()
    for v in on_pypi:
        text = _release_text(project, v)
        if text in known:
            continue
        entry = mr.own_entry(text, matrix_path)
        if entry is None:
            new_releases.append(text)
            diffs.append(
                f"tensorflow {text}: on PyPI, no [[tensorflow]] entry matches it (new row: "
                f"python scripts/matrix_row.py {text})"
            )
        else:
            diffs.append(
                f"tensorflow {text}: on PyPI, matched by the entry {entry['versions']} but not in its releases"
            )
            to_read[text] = entry
    pypi_texts = {_release_text(project, v) for v in on_pypi}
    for entry in mr._entries(matrix_path):
        listed = [r for r in entry.get("releases", ()) if r in pypi_texts]
        if listed:
            newest = max(listed, key=Version)
            to_read.setdefault(newest, entry)
    for version in sorted(to_read, key=Version):
        entry = to_read[version]
        files = project["releases"].get(version) or []
        try:
            wheel = mr.pick_wheel(files)
        except mr.RowError as exc:
            diffs.append(f"tensorflow {version}: {exc}")
            continue
        text = source.metadata("tensorflow", version, wheel)
        try:
            row, _ = mr.derive_row(version, text, None, mr.wheel_tag_of(wheel["filename"]), None)
        except (mr.RowError, ValueError) as exc:
            raise RefreshError(f"tensorflow {version}: {exc}") from None
        requires_python = email.parser.Parser().parsestr(text, headersonly=True).get("Requires-Python")
        by_wheels: list[str] = []
        if not requires_python and entry.get("python"):  # classifiers stale: the wheels say what was built
            row.pop("python", None)
            by_wheels = check_python_by_wheels(files, entry["python"])
        tag_glibc = row.pop("glibc", None)
        found = by_wheels + mr.compare(row, entry)
        if tag_glibc and entry.get("glibc"):
            if Version(str(entry["glibc"])) < Version(tag_glibc):
                found.append(
                    f"glibc: the wheel tag {row.get('manylinux')} needs {tag_glibc}, matrix says {entry['glibc']!r}"
                )
            elif Version(str(entry["glibc"])) > Version(tag_glibc):
                above.append(f"{version} ({entry['glibc']} > {tag_glibc})")
        elif tag_glibc:
            found.append(f"glibc: release says {tag_glibc!r}, matrix says None")
        if requires_python and entry.get("python"):
            said, have = _lower(SpecifierSet(requires_python)), _lower(SpecifierSet(entry["python"]))
            if said != have:
                found.append(f"Requires-Python: release says {requires_python!r}, matrix python is {entry['python']!r}")
        for d in found:
            diffs.append(f"tensorflow {version} (entry {entry['versions']}): {d}")
    lines.append(f"  read the Requires-Dist of {len(to_read)} releases (the newest of every entry, and new ones)")
    if above:
        lines.append(
            f"  note: {len(above)} entries need a newer glibc than their wheel tag promises (the GLIBC_ symbols of "
            f"their objects): {', '.join(above)}"
        )
    return lines, diffs


def check_companions(matrix: Any, source: Any) -> tuple[list[str], list[str]]:
    """A companion's latest `tensorflow` requirement against its entry. The entry may be narrower than the
    metadata (a strict ABI binding the metadata does not state: tensorflow-recommenders-addons): that is a
    note; an entry admitting a TensorFlow release the metadata refuses is a difference."""
    lines: list[str] = []
    diffs: list[str] = []
    tf_releases = final_releases(source.project("tensorflow"))
    packages = list(dict.fromkeys(c.package for c in matrix.companions))
    for package in packages:
        entries = [c for c in matrix.companions if c.package == package]
        project = source.project(package)
        releases = final_releases(project)
        if not releases:
            raise RefreshError(f"PyPI lists no final release of {package}")
        covered = [v for v in releases if any(c.versions.contains(v, prereleases=True) for c in entries)]
        top = max(covered) if covered else None
        newer = [v for v in releases if top is None or v > top]
        info = project.get("info", {})
        latest = _safe(info.get("version") or "") or releases[-1]
        tf_req = _tf_requirement(info.get("requires_dist") or [])
        lines.append(
            f"{package}: PyPI newest {releases[-1]}"
            + (f" (requires {tf_req})" if tf_req else " (states no tensorflow requirement)")
            + f"; the matrix covers up to {top or '(nothing on PyPI)'}"
        )
        if newer:
            diffs.append(
                f"{package}: {len(newer)} release(s) on PyPI newer than every [[companion]] entry: "
                + ", ".join(map(str, newer[-6:]))
                + (" ..." if len(newer) > 6 else "")
            )
        entry = next((c for c in entries if c.versions.contains(latest, prereleases=True)), None)
        if tf_req and entry is not None:
            said = SpecifierSet(str(Requirement(tf_req.split(" [")[0]).specifier))
            if entry.tensorflow is None or said != entry.tensorflow:
                from tfcompat.matrix import spec_text

                what = (
                    f"{package} {latest}: requires {tf_req}, the entry {spec_text(entry.versions)} says "
                    f"tensorflow {spec_text(entry.tensorflow) if entry.tensorflow is not None else '(none)'}"
                )
                admitted = [v for v in tf_releases if entry.tensorflow is None or entry.tensorflow.contains(v)]
                if admitted and all(said.contains(v, prereleases=True) for v in admitted):
                    lines.append(
                        f"  note: {what} (narrower than the metadata; every release it admits, the metadata does)"
                    )
                else:
                    diffs.append(what)
    return lines, diffs


def _tf_requirement(requires_dist: Sequence[str]) -> Optional[str]:
    """`tensorflow<spec>` as the metadata requires it: unconditionally, else under an extra
    (tensorflow-probability: `tensorflow>=2.16; extra == "tf"` -> `tensorflow>=2.16 [tf]`)."""
    under_extra: Optional[str] = None
    for line in requires_dist:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) != "tensorflow":
            continue
        marker = str(req.marker) if req.marker is not None else ""
        if "extra" not in marker:
            return f"tensorflow{mr.format_spec(req.specifier)}"
        if under_extra is None:
            extra = marker.split("extra ==", 1)[1].strip().strip("\"'") if "extra ==" in marker else "extra"
            under_extra = f"tensorflow{mr.format_spec(req.specifier)} [{extra}]"
    return under_extra


def check_cudnn(matrix: Any, source: Any) -> tuple[list[str], list[str]]:
    """The cuDNN wheels against the [[cudnn]] rows, judged the way TFC208 looks them up
    (Matrix.cudnn_support): a release is described when a row matches it or a row of its major.minor exists;
    releases newer than every described one are differences, undescribed older ones (gaps) a note."""
    lines: list[str] = []
    diffs: list[str] = []
    for major, package in CUDNN_WHEELS.items():
        releases = final_releases(source.project(package))
        if not releases:
            raise RefreshError(f"PyPI lists no final release of {package}")
        described = [v for v in releases if matrix.cudnn_support(str(v), major).basis in ("exact", "same_minor")]
        if not described:
            diffs.append(f"{package}: no [[cudnn]] entry for CUDA {major} (PyPI: {releases[0]} ... {releases[-1]})")
            continue
        top = described[-1]
        lines.append(
            f"{package}: PyPI newest {releases[-1]}; the [[cudnn]] entries for CUDA {major} describe up to {top}"
        )
        newer = [v for v in releases if v > top and v not in described]
        gaps = [v for v in releases if v < top and v not in described]
        if gaps:
            minors = list(dict.fromkeys(f"{v.major}.{v.minor}" for v in gaps))
            lines.append(f"  note: {len(gaps)} older release(s) no entry describes: minors {' '.join(minors)}")
        if newer:
            minors = list(dict.fromkeys(f"{v.major}.{v.minor}" for v in newer))
            diffs.append(
                f"{package}: {len(newer)} release(s) newer than the newest the entries describe, {top} "
                f"({len(minors)} minors {minors[0]} ... {minors[-1]}; newest {newer[-1]})"
            )
    return lines, diffs


# ---------------------------------------------------------------------------------------------- main


def main(argv: Optional[Sequence[str]] = None, opener: Callable[..., Any] = urllib.request.urlopen) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offline", metavar="DIR", help="read recorded PyPI files from DIR instead of PyPI")
    parser.add_argument("--record", metavar="DIR", help="online, and write what was read (trimmed) to DIR")
    parser.add_argument("--matrix", help="matrix file (default: the shipped data/compat_matrix.toml)")
    parser.add_argument(
        "--rows",
        action="store_true",
        help="also print a derived [[tensorflow]] row (scripts/matrix_row.py: METADATA and the wheel's "
        "build_info.py, by HTTP range requests) for every release no entry matches; online only",
    )
    args = parser.parse_args(argv)
    from tfcompat.errors import TfcompatError
    from tfcompat.matrix import load_matrix

    try:
        if args.offline and args.record:
            raise RefreshError("--offline and --record exclude each other")
        if args.offline and args.rows:
            raise RefreshError("--rows reads the wheels' build_info.py from PyPI: not with --offline")
        if args.record:
            os.makedirs(args.record, exist_ok=True)
        source: Any = Recorded(args.offline) if args.offline else PyPI(opener, args.record)
        from pathlib import Path

        matrix = load_matrix(Path(args.matrix) if args.matrix else None)
        lines: list[str] = []
        diffs: list[str] = []
        new_releases: list[str] = []
        for check in (
            lambda: check_tensorflow(matrix, source, args.matrix, new_releases),
            lambda: check_companions(matrix, source),
            lambda: check_cudnn(matrix, source),
        ):
            more_lines, more_diffs = check()
            lines += more_lines
            diffs += more_diffs
        rows = [derived_row(v, args.matrix, opener) for v in new_releases] if args.rows else []
    except (RefreshError, TfcompatError, OSError) as exc:
        print(f"refresh_matrix: error: {exc}", file=sys.stderr)
        return 2
    where = f"recorded files in {args.offline}" if args.offline else "PyPI"
    print(f"# {matrix.path} (updated {matrix.updated}) against {where}")
    for line in lines:
        print(line)
    for d in diffs:
        print(f"behind: {d}")
    print(f"{len(diffs)} difference(s)" + (": the matrix is behind" if diffs else ": the matrix is current"))
    for row in rows:
        print()
        sys.stdout.write(row)
    return 1 if diffs else 0


def derived_row(version: str, matrix_path: Optional[str], opener: Callable[..., Any]) -> str:
    """The [[tensorflow]] row scripts/matrix_row.py derives for `version` (fields no file states: # CHECK)."""
    from tfcompat.probes.tensorflow import parse_build_info

    try:
        metadata, build_text, tag = mr.fetch_release(version, lambda req: opener(req, timeout=TIMEOUT_S))
        build = parse_build_info(build_text) if build_text is not None else None
        row, comments = mr.derive_row(version, metadata, build, tag, mr.previous_entry(version, matrix_path))
    except (OSError, ValueError) as exc:
        raise RefreshError(f"tensorflow {version}: cannot derive its row: {exc}") from None
    return f"# derived by scripts/matrix_row.py {version}: review the # CHECK fields\n" + mr.render_row(row, comments)


if __name__ == "__main__":
    sys.exit(main())
