"""Which Python environment to look at: the running interpreter, another one (--python), explicit
site-packages dirs, or a sysroot / unpacked image (--root). Nothing from the target is imported."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import posixpath
import re
import subprocess
import sys
from typing import Optional

from tfcompat.errors import TfcompatError
from tfcompat.model import PythonInfo, Unknown
from tfcompat.probes.interpreter import ask
from tfcompat.probes.rootfs import Root


class TargetError(TfcompatError):
    """The user pointed us at something that is not a usable Python environment."""


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """The Python environment the user named (--python, --site-packages, --root); none: the running one."""

    python: Optional[str] = None
    site_packages: tuple[str, ...] = ()
    root: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ResolvedTarget:
    """The target's interpreter and its import path, resolved from a TargetSpec."""

    python: PythonInfo
    search_path: tuple[str, ...]  # real directories, in import order
    unknowns: tuple[Unknown, ...] = ()


_PY_DIR = re.compile(r"/lib(?:64)?/python(\d+)\.(\d+)/(?:site|dist)-packages/?$")
PYTHON_PROBE_TIMEOUT = 20.0
PYTHON_PROBE_OUTPUT_CAP = 1 << 20  # a sys.path is a few KiB; more is not an answer


def resolve_target(spec: TargetSpec) -> ResolvedTarget:
    root = Root(spec.root)
    if spec.root is not None and not os.path.isdir(spec.root):
        raise TargetError(f"--root {spec.root}: not a directory")
    extra = tuple(_site_dir(root, d) for d in spec.site_packages)
    if spec.root is not None:
        return _in_root(root, spec, extra)
    if spec.python is not None:
        info, path = _ask_interpreter(spec.python)
        return ResolvedTarget(info, _dedupe(extra + path))
    if extra:
        return ResolvedTarget(_python_from_dirs(extra), _dedupe(extra))
    info = PythonInfo(
        executable=sys.executable,
        version=".".join(map(str, sys.version_info[:3])),
        implementation=sys.implementation.name,
        sys_path=tuple(sys.path),
        source="the running interpreter (tfcompat's own); use --python to check another",
    )
    # sys.path[0] is tfcompat's own script directory (or the cwd under -m): not part of the environment.
    return ResolvedTarget(info, _dedupe(_existing_dirs(sys.path[1:])))


def _site_dir(root: Root, d: str) -> str:
    inside = os.path.abspath(d) if root.is_host else d
    try:
        real = root.path(inside)
    except OSError:
        real = ""
    if not real or not root.is_dir(inside):
        shown = f"{d} (inside --root {root.root})" if root.root else d
        raise TargetError(f"--site-packages {shown}: not a directory")
    return real


def _ask_interpreter(python: str) -> tuple[PythonInfo, tuple[str, ...]]:
    if not os.path.exists(python):
        raise TargetError(f"--python {python}: no such file")
    if not os.access(python, os.X_OK) or os.path.isdir(python):
        raise TargetError(f"--python {python}: not an executable file")
    try:
        _rc, out, err = ask(python, PYTHON_PROBE_TIMEOUT, PYTHON_PROBE_OUTPUT_CAP)
    except subprocess.TimeoutExpired:
        raise TargetError(f"--python {python}: did not answer within {PYTHON_PROBE_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise TargetError(f"--python {python}: cannot run it: {exc.strerror or exc}") from None
    if len(out) > PYTHON_PROBE_OUTPUT_CAP:
        raise TargetError(
            f"--python {python}: answered more than {PYTHON_PROBE_OUTPUT_CAP >> 20} MiB; not a Python interpreter"
        )
    try:
        data = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
        path = [p for p in data["path"] if isinstance(p, str)]
        version = str(data["version"])
    except (IndexError, ValueError, KeyError, TypeError, AttributeError):
        detail = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1][:200]
        raise TargetError(f"--python {python}: is not a working Python interpreter ({detail})") from None
    info = PythonInfo(
        executable=str(data.get("executable") or python),
        version=version,
        implementation=str(data.get("implementation", "cpython")),
        sys_path=tuple(path),
        source=f"asked {python} for sys.path and version (subprocess, isolated: -I -S)",
    )
    return info, _existing_dirs(p for p in path if p)  # '' is the script's dir: not part of the env


def _in_root(root: Root, spec: TargetSpec, extra: tuple[str, ...]) -> ResolvedTarget:
    """An image cannot be run: find its site-packages on disk and read the version from paths."""
    dirs: list[str] = list(extra)
    executable = None
    if spec.python is not None:
        if not os.path.exists(root.path(spec.python)):
            raise TargetError(f"--python {spec.python}: no such file inside --root {spec.root}")
        executable = spec.python
        # The prefix comes from where the interpreter is named, not where its symlink points:
        # a venv's bin/python links to the base interpreter, but the venv is the environment.
        prefix = posixpath.dirname(root.resolve(posixpath.dirname(spec.python)))
        dirs += _site_dirs_under(root, prefix)
        cfg = _pyvenv_cfg(root, prefix + "/pyvenv.cfg")
        if cfg.get("include-system-site-packages", "false").lower() == "true" and cfg.get("home"):
            dirs += _site_dirs_under(root, posixpath.dirname(cfg["home"].rstrip("/")))
    elif not extra:
        for base in ("/usr/local", "/usr", "/opt/conda", "/opt/venv", "/venv"):
            dirs += _site_dirs_under(root, base)
    dirs = list(_dedupe(dirs))
    unknowns: tuple[Unknown, ...] = ()
    if not dirs:
        unknowns = (
            Unknown(
                "python",
                f"no site-packages or dist-packages directory found inside {spec.root}; name one with --site-packages",
            ),
        )
    info = _python_from_dirs(tuple(dirs), executable, root)
    return ResolvedTarget(info, tuple(dirs), unknowns)


def _site_dirs_under(root: Root, prefix: str) -> list[str]:
    """site-/dist-packages dirs under `prefix` (a path inside the root), each resolved inside the root.

    Listed step by step rather than globbed, so that a symlink in the image is followed inside the
    root, never on the host.
    """
    found: list[str] = []
    for lib in ("lib", "lib64"):
        try:
            names = sorted(
                (n for n in root.listdir(f"{prefix.rstrip('/')}/{lib}") if fnmatch.fnmatch(n, "python3*")), reverse=True
            )
        except OSError:
            continue
        for name in names:
            for leaf in ("site-packages", "dist-packages"):
                inside = f"{prefix.rstrip('/')}/{lib}/{name}/{leaf}"
                try:
                    real = root.path(inside)
                except OSError:
                    continue
                if root.is_dir(inside) and real not in found:
                    found.append(real)
    return found


def _pyvenv_cfg(root: Root, path: str) -> dict[str, str]:
    """key = value pairs of a pyvenv.cfg (a path inside the root); {} when it is missing or unreadable."""
    cfg: dict[str, str] = {}
    try:
        text = root.read_bytes(path, "pyvenv_cfg").decode("utf-8", "replace")
    except OSError:
        return cfg
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    return cfg


def _python_from_dirs(
    dirs: tuple[str, ...], executable: Optional[str] = None, root: Optional[Root] = None
) -> PythonInfo:
    """Python version from a venv's pyvenv.cfg or from `lib/pythonX.Y/` in a site dir path."""
    for d in dirs:
        m = _PY_DIR.search(d)
        prefix = (d[: m.start()] or "/") if m else None
        if prefix:
            root = root or Root(None)
            try:
                cfg = _pyvenv_cfg(root, root.inside(prefix).rstrip("/") + "/pyvenv.cfg")
            except OSError:
                cfg = {}
            version = cfg.get("version_info") or cfg.get("version")
            vm = re.match(r"^\d+\.\d+(\.\d+)?", version) if version else None
            if vm:
                return PythonInfo(executable, vm.group(0), "cpython", dirs, f"{prefix}/pyvenv.cfg")
        if m:
            return PythonInfo(executable, f"{m.group(1)}.{m.group(2)}", "cpython", dirs, f"directory name {d}")
    return PythonInfo(executable, None, "cpython", dirs, "unknown: no interpreter was run")


def _existing_dirs(paths) -> tuple[str, ...]:
    return tuple(os.path.abspath(p) for p in paths if p and os.path.isdir(p))


def _dedupe(paths) -> tuple[str, ...]:
    seen, out = set(), []
    for p in paths:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return tuple(out)
