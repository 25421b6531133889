"""Installed distributions of the target, read from *.dist-info / *.egg-info metadata on disk.

Only the metadata headers are read (name, version, Requires-Dist, Requires-Python): nothing is
imported, and the long description that follows the headers is never parsed. Every file is opened
through :class:`Root` (inside --root, regular files only, with a size cap): one unreadable
distribution becomes an unknown with its reason, never the end of the scan.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from typing import Callable, Optional

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tfcompat.model import Package, Unknown
from tfcompat.probes.rootfs import CAPS, Root

_HEADER_LIMIT = CAPS["metadata"]


def parse_headers(data: bytes) -> dict[str, list[str]]:
    """The headers of METADATA / PKG-INFO bytes, by lower-case field name as written (`requires-dist`), each a
    list of values with its whitespace collapsed; the body (the long description) is never parsed, and a file
    cut at the cap loses its partial line.

    The header grammar of the email parser that packaging.metadata uses (policy compat32), read by hand
    because importing packaging.metadata pulls in the email package: 11 ms of a 270 ms check (issue 16).
    Lines end in CRLF, CR or LF; an empty line ends the headers; so does a line that is neither a header
    nor a continuation (the body started without its blank line); a continuation (leading space or tab)
    belongs to the header above it; an mbox "From " line or a line starting with ':' is no header and
    ends the one above. A value is UTF-8, else read as Latin-1 (as packaging does); encoded words are
    not decoded (nor are they by packaging). tests/probes/test_metadata_headers.py holds it to
    packaging.metadata.parse_email."""
    if len(data) >= _HEADER_LIMIT:  # cut at the cap: drop the partial last line (CR ends a line too)
        data = data[: max(data.rfind(b"\n"), data.rfind(b"\r")) + 1]
    blank = _BLANK_LINE.search(data)  # split no further: a body of 100,000 short lines took 16 ms
    if blank:
        data = data[: blank.start() + 1]
    fields: list[tuple[bytes, list[bytes]]] = []
    current: Optional[list[bytes]] = None
    for line in _LINE_END.split(data):
        if not line or not _HEADER_LINE.match(line):
            break  # the blank line before the body, or the body itself
        if line[0] in b" \t":
            if current is not None:
                current.append(line)
            continue
        current = None
        colon = line.find(b":")
        if line.startswith(b"From ") or colon <= 0:
            continue
        current = [line[colon + 1 :]]
        fields.append((line[:colon], current))
    headers: dict[str, list[str]] = {}
    for name, parts in fields:
        raw = b" ".join(parts)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
        headers.setdefault(name.decode("ascii").lower(), []).append(_one_line(value))
    return headers


_LINE_END = re.compile(rb"\r\n|\r|\n")
# two line ends in a row, an empty line: LF LF, CR CR, LF CR (a CR LF alone is one line end)
_BLANK_LINE = re.compile(rb"\n\n|\r\r|\n\r")
# what the email parser takes for a header line: "From ", a name of printable ASCII but ':' and a colon, or
# a continuation
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def read_headers(path: str, root: Optional[Root] = None) -> dict[str, list[str]]:
    """Headers of the METADATA / PKG-INFO file at the real path `path` (OSError if unreadable or refused)."""
    root = root or Root(None)
    return parse_headers(root.read_bytes(root.inside(path), "metadata", truncate=True))


def _egg_requires(root: Root, egg_info: str) -> tuple[str, ...]:
    """requires.txt of an .egg-info dir: base requirements and `[:marker]` sections; extras skipped."""
    out: list[str] = []
    try:
        text = root.read_bytes(egg_info + "/requires.txt", "requires").decode("utf-8", "replace")
    except OSError:
        return ()
    section: Optional[str] = None
    for raw in io.StringIO(text, newline=None):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section is None:
            out.append(line)
        elif section.startswith(":"):
            out.append(f"{line}; {section[1:]}")
    return tuple(out)


def _read(location: str, entry: str, root: Root) -> tuple[Optional[Package], Optional[str]]:
    """(package, None), or (None, why it cannot be read); (None, None) when it is simply not a distribution."""
    path = os.path.join(location, entry)
    inside = root.inside(location).rstrip("/") + "/" + entry
    is_dir = root.is_dir(inside)
    if entry.endswith(".dist-info"):
        meta, meta_in = os.path.join(path, "METADATA"), inside + "/METADATA"
    elif is_dir:
        meta, meta_in = os.path.join(path, "PKG-INFO"), inside + "/PKG-INFO"
    else:
        meta, meta_in = path, inside  # a single-file .egg-info
    try:
        headers = parse_headers(root.read_bytes(meta_in, "metadata", truncate=True))
    except OSError as exc:
        return None, str(exc.strerror or exc) if not isinstance(exc, FileNotFoundError) else None
    name = (headers.get("name") or [""])[0]
    version = (headers.get("version") or [""])[0]
    if not name or not version:
        return None, None
    if entry.endswith(".dist-info"):
        requires = tuple(headers.get("requires-dist", ()))
    else:
        requires = _egg_requires(root, inside) if is_dir else ()
    installer = direct_url = origin = None
    top_level: tuple[str, ...] = ()
    if is_dir:
        installer = _installer(root, inside)
        direct_url, origin = _direct_url(root, inside)
        top_level = _top_level(root, inside, canonicalize_name(name))
    return Package(
        name=canonicalize_name(name),
        version=version,
        location=location,
        metadata_path=meta,
        requires=requires,
        requires_python=next(iter(headers.get("requires-python") or ()), None),
        display_name=name,
        installer=installer,
        direct_url=direct_url,
        origin=origin,
        top_level=top_level,
    ), None


# Provenance (issue 14). Each file is small and optional: absent, unreadable or garbage is "not known" (None),
# never an unknown of the whole distribution and never a crash.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
_TOP_LEVEL_RECORD = 8 << 20


def _small_text(root: Root, path: str) -> Optional[str]:
    try:
        return root.read_bytes(path, "metadata").decode("utf-8", "replace")
    except OSError:
        return None


def _installer(root: Root, meta_dir: str) -> Optional[str]:
    """INSTALLER (PEP 376, PyPA's Recording installed projects): the tool's name on the first line."""
    text = _small_text(root, meta_dir + "/INSTALLER")
    first = text.strip().splitlines()[0].strip() if text and text.strip() else ""
    return first if _NAME_RE.match(first) else None


def _direct_url(root: Root, meta_dir: str) -> tuple[Optional[str], Optional[str]]:
    """(url, kind) from direct_url.json (PEP 610), written when pip/uv installed from a URL or a local path
    rather than an index: kind "editable" / "dir" (dir_info), "vcs" (vcs_info), "archive" (archive_info)."""
    text = _small_text(root, meta_dir + "/direct_url.json")
    if text is None:
        return None, None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None, None
    url = _one_line(data["url"])[:1000]
    dir_info = data.get("dir_info")
    if isinstance(dir_info, dict):
        return url, "editable" if dir_info.get("editable") is True else "dir"
    for key, kind in (("vcs_info", "vcs"), ("archive_info", "archive")):
        if isinstance(data.get(key), dict):
            return url, kind
    return url, None


def _top_level(root: Root, meta_dir: str, name: str) -> tuple[str, ...]:
    """The import packages a distribution installs: top_level.txt (setuptools writes it); for a `*tensorflow*`
    or `tf-*` name without one, the first path component of its RECORD rows (a RECORD is read only there: TF's
    own holds 20,000 rows)."""
    text = _small_text(root, meta_dir + "/top_level.txt")
    if text is not None:
        return tuple(sorted({n.strip() for n in text.splitlines() if _NAME_RE.match(n.strip())}))[:50]
    if "tensorflow" not in name and not name.startswith("tf-"):
        return ()
    try:  # the first rows name the packages (TF 2.21's whole RECORD is 2.9 MB); 64 MiB of rows would take seconds
        record = root.read_text(meta_dir + "/RECORD", limit=_TOP_LEVEL_RECORD)
    except OSError:
        return ()
    tops = set()
    for line in io.StringIO(record, newline=None):  # one row at a time: no list of millions of rows
        line = line.rstrip("\n")
        first = line.split(",", 1)[0].split("/", 1)
        if len(first) == 2 and not first[0].endswith((".dist-info", ".data")) and _NAME_RE.match(first[0]):
            tops.add(first[0])
        elif first[0].endswith(".py") and "/" not in first[0]:
            tops.add(first[0][:-3])
    return tuple(sorted(t for t in tops if t not in ("..", "__pycache__")))[:50]


def read_distribution(location: str, entry: str, root: Optional[Root] = None) -> Optional[Package]:
    """One distribution from `location/entry` (a .dist-info or .egg-info), or None if unreadable."""
    return _read(location, entry, root or Root(None))[0]


def scan_distributions(
    search_path: Iterable[str], root: Optional[Root] = None
) -> tuple[tuple[Package, ...], tuple[Package, ...], list[Unknown]]:
    """(effective packages, shadowed copies, unreadable ones) in import order: the first copy of a name wins."""
    root = root or Root(None)
    seen: dict[str, Package] = {}
    shadowed: list[Package] = []
    unknowns: list[Unknown] = []
    for location in search_path:
        try:
            entries = sorted(root.listdir(root.inside(location)))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            pkg, why = _read(location, entry, root)
            if why is not None:
                unknowns.append(
                    Unknown(
                        f"packages.{entry}",
                        f"cannot read {root.display(location)}/{entry}: {why}; that distribution is left out",
                    )
                )
            if pkg is None:
                continue
            if pkg.name in seen:
                shadowed.append(pkg)
            else:
                seen[pkg.name] = pkg
    return tuple(seen.values()), tuple(shadowed), unknowns


def scan_packages(
    search_path: Iterable[str], root: Optional[Root] = None
) -> tuple[tuple[Package, ...], tuple[Package, ...]]:
    """(effective packages, shadowed copies) in import order: the first copy of a name wins."""
    packages, shadowed, _unknowns = scan_distributions(search_path, root)
    return packages, shadowed


_MAX_RECORD_LINE = 4096  # a RECORD row is a path (PATH_MAX), a hash and a size


def record_files(
    pkg: Package,
    root: Optional[Root] = None,
    keep: Optional[Callable[[str], bool]] = None,
    contains: Optional[str] = None,
) -> tuple[list[str], Optional[str]]:
    """(real paths of the files `pkg` installed, None) from RECORD (dist-info) or installed-files.txt (egg-info),
    or ([], why) when neither can be read.

    Each entry is resolved inside the root: an absolute or '../' entry names a file of the image, never of
    the host. `keep`, when given, picks the entries (as written) worth resolving; `contains`, a text every wanted
    row has, rejects the others before csv parses them (TF's RECORD has ~20,000 rows, a few dozen `.so`).
    Bad UTF-8 is replaced; a row over 4 KiB or one csv cannot parse is skipped (csv's own field limit would
    otherwise end the read).
    """
    root = root or Root(None)
    meta_dir = root.inside(os.path.dirname(pkg.metadata_path))
    location = root.inside(pkg.location).rstrip("/")
    why = None
    for name, base, is_csv in (("RECORD", location, True), ("installed-files.txt", meta_dir, False)):
        try:
            text = root.read_bytes(f"{meta_dir}/{name}", "record").decode("utf-8", "replace")
        except FileNotFoundError:
            continue
        except OSError as exc:
            why = str(exc.strerror or exc)
            continue
        out: list[str] = []
        for line in text.splitlines():
            if not line.strip() or len(line) > _MAX_RECORD_LINE or (contains is not None and contains not in line):
                continue
            if is_csv:
                try:
                    row = next(csv.reader([line]), None)
                except csv.Error:
                    continue
                if not row or not row[0]:
                    continue
                rel = row[0]
            else:
                rel = line.strip()
            if keep is not None and not keep(rel):
                continue  # not wanted: not resolved (a 700,000-row RECORD costs seconds to resolve)
            inside = os.path.normpath(rel if rel.startswith("/") else f"{base}/{rel}")
            try:
                out.append(root.path(inside))
            except OSError:
                continue  # a link loop: nothing to read there
        return out, None
    return [], why


def parse_version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None
