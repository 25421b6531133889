"""The matrix's TOML, parsed once per content and kept as JSON in the user's cache directory.

Why: tomllib takes ~14 ms for the shipped matrix on every run, about a twentieth of a whole `check`; the same tree
as JSON loads in ~0.5 ms. The key is the BLAKE2b-256 of the TOML text (and of this module's format), so an edited
matrix is never read stale, and a cached file is checked against the digest of its own body before it is used.
Any failure (no home directory, a read-only file system, a full disk, a corrupt or foreign file) falls back to
parsing, silently: the cache only ever saves time. Only what JSON keeps exactly is cached (a document with TOML
dates or times is parsed every time). ``TFCOMPAT_NO_CACHE=1`` turns it off; ``TFCOMPAT_CACHE_DIR`` moves it
(default ``$XDG_CACHE_HOME/tfcompat``, else ``~/.cache/tfcompat``). This is tfcompat's own data: nothing of the
scanned environment is read or written here.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Optional

FORMAT = "tfcompat-matrix-cache-2"
KEEP = 8  # cached matrices kept (several tfcompat releases or --matrix files on one machine)


def cache_dir() -> Optional[Path]:
    if os.environ.get("TFCOMPAT_NO_CACHE", "").strip() not in ("", "0"):
        return None
    configured = os.environ.get("TFCOMPAT_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "tfcompat"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "tfcompat" if home and os.path.isabs(home) else None


def _digest(data: bytes) -> str:
    try:  # hashlib's own BLAKE2: importing hashlib loads OpenSSL, 2.5 ms of every run (issue 16)
        from _blake2 import blake2b
    except ImportError:  # a Python built without it has no hashlib.blake2b either (never OpenSSL's): SHA-256
        import hashlib

        return hashlib.sha256(data).hexdigest()
    return blake2b(data, digest_size=32).hexdigest()


def parsed(text: str, parse: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """`parse(text)`, from the cache when this exact text was parsed before."""
    where = cache_dir()
    if where is None or not _trusted_dir(where):
        return parse(text)
    key = _digest((FORMAT + "\n" + text).encode("utf-8"))
    path = where / f"matrix-{key[:32]}.json"
    doc = _read(path, key)
    if doc is not None:
        return doc
    doc = parse(text)  # errors (bad TOML) propagate as before; nothing is cached for them
    _write(where, path, key, doc)
    return doc


def _read(path: Path, key: str) -> Optional[dict[str, Any]]:
    try:
        # never a link, a FIFO or a device; only a file that we (or root) wrote and no one else may change:
        # the digests catch damage, not forgery
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not _owned(st) or st.st_mode & 0o022:
                return None
            header = f.readline(4096)
            body = f.read(64 << 20)
        head = json.loads(header)
        if head.get("key") != key or head.get("body") != _digest(body):
            return None
        doc = json.loads(body)
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _owned(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def _trusted_dir(where: Path) -> bool:
    """False for a cache directory another user owns (root with a user's $HOME, a shared TFCOMPAT_CACHE_DIR):
    that user could plant files or links there; the cache is then neither read nor written."""
    try:
        st = os.stat(where)
    except FileNotFoundError:
        return True  # created by _write, ours, and checked again there
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _owned(st)


def _write(where: Path, path: Path, key: str, doc: dict[str, Any]) -> None:
    try:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if json.loads(body) != doc:  # what JSON would not give back exactly is not cached
            return
    except (TypeError, ValueError):  # a TOML date or time
        return
    tmp = None
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _trusted_dir(where):
            return
        header = json.dumps({"key": key, "body": _digest(body)}).encode("ascii") + b"\n"
        import tempfile  # only when the cache is written, not on every run

        fd, tmp = tempfile.mkstemp(dir=where, prefix=".matrix-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(header + body)
        os.replace(tmp, path)
        tmp = None
        _prune(where, keep=path)
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _prune(where: Path, keep: Path) -> None:
    try:
        olds = sorted(
            (p for p in where.glob("matrix-*.json") if p != keep), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for p in olds[KEEP - 1 :]:
            p.unlink()
    except OSError:
        pass
