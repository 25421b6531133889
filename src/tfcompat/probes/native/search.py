"""A model of glibc's dynamic loader: which file a ``dlopen(soname)`` or a DT_NEEDED entry gets, and why.

For a name without a slash, asked for by a *calling object*, glibc (``elf/dl-load.c: _dl_map_object``) takes:

1. an object already loaded under that name or SONAME (the executable's DT_NEEDED closure, ``LD_PRELOAD``
   and ``/etc/ld.so.preload`` objects, everything loaded before);
2. DT_RPATH of the calling object, then of the object that loaded it, and so on up to the executable
   (only when the calling object has no DT_RUNPATH), then the executable's DT_RPATH;
3. the environment's ``LD_LIBRARY_PATH`` (host only: ignored under ``--root``);
4. DT_RUNPATH of the calling object only (not inherited);
5. ``/etc/ld.so.cache`` (skipped for entries in the default dirs when the caller has DF_1_NODEFLIB);
6. the default directories (unless DF_1_NODEFLIB).

``$ORIGIN`` (the caller's directory as it was opened, symlinks not resolved; the executable's resolved
directory), ``$LIB`` and ``$PLATFORM`` are expanded; an empty path element means the working directory.
Every directory is searched in its ``glibc-hwcaps/<level>`` subdirectories first (supported levels only),
then itself. A file of another ELF class or machine is skipped; any other unusable file (not ELF, a
truncated header) stops the search with an error, as the loader does. Legacy hwcaps subdirectories
(``tls/``, ``haswell/``: glibc < 2.37) are not modelled.

Under ``--root`` every path, symlinks included, resolves inside the root (:class:`Root`), and host
environment variables are never read. Nothing is loaded: files are only stat()ed, listed and read.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Optional

from tfcompat.probes.native.config import LoaderConfig
from tfcompat.probes.native.elf import ET_DYN, ET_EXEC, ElfError, ElfInfo, read_elf
from tfcompat.probes.native.ldcache import arch_flags
from tfcompat.probes.native.results import (
    STEP_CACHE,
    STEP_DEFAULT,
    STEP_EXE_RPATH,
    STEP_LD_LIBRARY_PATH,
    STEP_LOADED,
    STEP_PATH,
    STEP_RPATH,
    STEP_RUNPATH,
    Candidate,
    LoadedObject,
    Lookup,
    SearchDir,
)

_DST = re.compile(r"\$(\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


class Search:
    """Which file glibc would use for a name, asked by one caller; the loaded objects it consults are
    kept by :class:`~tfcompat.probes.native.loader.Loader`, which adds the loading."""

    def __init__(self, config: LoaderConfig):
        self.cfg = config
        self.root = config.root
        self.flags = arch_flags(config.machine, config.elf_class)
        self.loaded: dict[str, LoadedObject] = {}  # by every name it was asked for, and by SONAME
        self.by_real: dict[str, LoadedObject] = {}
        self.executable: Optional[LoadedObject] = None
        self._listing: dict[str, Optional[frozenset]] = {}
        self._real: dict[str, Optional[str]] = {}
        self._dirs: dict[Optional[int], tuple[Optional[LoadedObject], list[SearchDir]]] = {}

    # -- file system -----------------------------------------------------------------------------

    def host(self, path: str) -> Optional[str]:
        """The real file/dir on this machine for an inside-root path (None if it cannot be resolved)."""
        if path in self._real:
            return self._real[path]
        try:
            real = self.root.path(path) if not self.root.is_host else os.path.realpath(path)
        except OSError:
            real = None
        self._real[path] = real
        return real

    def inside(self, host_path: str) -> str:
        return self.root.display(host_path)

    def listing(self, directory: str) -> frozenset:
        """Names in `directory` (inside-root path), cached; empty when it does not exist."""
        if directory in self._listing:
            return self._listing[directory] or frozenset()
        # Listed through the Root: walked inside it (a link among the names is resolved inside it again
        # when a candidate is opened); on the host, relative elements are the working directory's.
        where = directory if not self.root.is_host else self.host(directory)
        try:
            names = frozenset(self.root.listdir(where)) if where else frozenset()
        except (OSError, ValueError):
            names = frozenset()
        self._listing[directory] = names
        return names

    # -- candidates ------------------------------------------------------------------------------

    def candidate(
        self, name: str, path: str, step: str, written: str, owner: Optional[str] = None, hwcaps: Optional[str] = None
    ) -> Optional[Candidate]:
        """The file at `path` as the loader would judge it; None when nothing can be opened there."""
        host_path = self.host(path)
        if host_path is None or not self.root.is_file(path if not self.root.is_host else host_path):
            return None
        real = self.inside(host_path)

        def judged(info: Optional[ElfInfo], problem: Optional[str], fatal: bool = False) -> Candidate:
            return Candidate(name, path, real, host_path, step, written, owner, hwcaps, info, problem, fatal)

        if not os.access(host_path, os.R_OK):  # glibc notes EACCES and goes on searching
            return judged(None, "not readable (permission denied; skipped)")
        try:
            info = read_elf(host_path)
        except ElfError as exc:
            return judged(None, f"cannot be loaded: {str(exc).split(': ', 1)[-1]}", fatal=True)
        if info.elf_class != self.cfg.elf_class:
            return judged(info, f"{info.elf_class}-bit ELF, the process is {self.cfg.elf_class}-bit (skipped)")
        if info.machine_name != self.cfg.machine:
            return judged(info, f"ELF for {info.machine_name}, the process is {self.cfg.machine} (skipped)")
        if info.elf_type not in (ET_DYN, ET_EXEC):
            return judged(info, f"ELF type {info.elf_type} is not loadable", fatal=True)
        return judged(info, None)

    def _in_dir(self, name: str, directory: str, step: str, written: str, owner: Optional[str]) -> list[Candidate]:
        """Files for `name` in `directory` and its supported glibc-hwcaps subdirectories, in search order."""
        out: list[Candidate] = []
        entries = self.listing(directory)
        if not entries:
            return out
        if self.cfg.hwcaps and "glibc-hwcaps" in entries:
            for level in self.cfg.hwcaps:
                sub = f"{directory.rstrip('/')}/glibc-hwcaps/{level}"
                if name in self.listing(sub):
                    c = self.candidate(name, f"{sub}/{name}", step, written, owner, level)
                    if c is not None:
                        out.append(c)
        if name in entries:
            c = self.candidate(name, f"{directory.rstrip('/')}/{name}", step, written, owner)
            if c is not None:
                out.append(c)
        return out

    # -- search path -----------------------------------------------------------------------------

    def expand(self, element: str, obj: Optional[LoadedObject]) -> tuple[Optional[str], Optional[str]]:
        """(inside-root directory, note) for one DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH element."""
        if element == "":
            if self.cfg.cwd is None:
                return None, "empty element (the working directory): unknown under --root"
            return self.cfg.cwd, "empty element: the working directory"

        def sub(m: re.Match) -> str:
            token = m.group(2) or m.group(3)
            if token == "ORIGIN":
                if obj is None:
                    raise _NoOrigin()
                return obj.origin
            return self.cfg.lib_token if token == "LIB" else self.cfg.platform_token

        try:
            expanded = _DST.sub(sub, element)
        except _NoOrigin:
            return None, "$ORIGIN without a calling object"
        if not expanded.startswith("/"):
            if self.cfg.cwd is None:
                return None, "relative to the working directory: unknown under --root"
            expanded = posixpath.join(self.cfg.cwd, expanded)
        return expanded, None

    def _chain(self, caller: Optional[LoadedObject]) -> Iterable[LoadedObject]:
        seen = set()
        obj = caller
        while obj is not None and id(obj) not in seen:
            seen.add(id(obj))
            yield obj
            obj = obj.parent

    def search_dirs(self, caller: Optional[LoadedObject]) -> list[SearchDir]:
        """The directory steps for `caller`, in glibc's order (the cache is one pseudo-entry).

        Within one step a directory named twice is searched once (TF's RUNPATH names 18 directories in
        668 elements), as glibc's shared search-path elements do.
        """
        key = id(caller) if caller is not None else None
        cached = self._dirs.get(key)
        if cached is not None and (caller is None or cached[0] is caller):
            return cached[1]
        dirs = self._search_dirs(caller)
        seen = set()
        unique = []
        for sd in dirs:
            k = (sd.step, sd.path if sd.path is not None else sd.written)
            if k not in seen:
                seen.add(k)
                unique.append(sd)
        self._dirs[key] = (caller, unique)
        return unique

    def _search_dirs(self, caller: Optional[LoadedObject]) -> list[SearchDir]:
        dirs: list[SearchDir] = []
        exe = self.executable
        if caller is None or caller.elf.runpath is None:
            did_exe = False
            for obj in self._chain(caller):
                if obj.elf.rpath is not None:
                    step = STEP_EXE_RPATH if obj is exe else STEP_RPATH
                    for el in obj.elf.rpath:
                        path, note = self.expand(el, obj)
                        dirs.append(SearchDir(step, el, path, obj.path, note))
                did_exe |= obj is exe
            if not did_exe and exe is not None and exe.elf.rpath is not None:
                for el in exe.elf.rpath:
                    path, note = self.expand(el, exe)
                    dirs.append(SearchDir(STEP_EXE_RPATH, el, path, exe.path, note))
        for el in self.cfg.ld_library_path:
            path, note = self.expand(el, exe)  # $ORIGIN / ${ORIGIN} there is the executable's directory
            dirs.append(SearchDir(STEP_LD_LIBRARY_PATH, el, path, None, note))
        if caller is not None and caller.elf.runpath is not None:
            for el in caller.elf.runpath:
                path, note = self.expand(el, caller)
                dirs.append(SearchDir(STEP_RUNPATH, el, path, caller.path, note))
        nodeflib = bool(caller is not None and caller.elf.nodeflib)
        dirs.append(
            SearchDir(
                STEP_CACHE,
                self.cfg.cache.path if self.cfg.cache else "/etc/ld.so.cache",
                None,
                None,
                self.cfg.cache_problem,
            )
        )
        if not nodeflib:
            for d in self.cfg.default_dirs:
                dirs.append(SearchDir(STEP_DEFAULT, d, d))
        else:
            dirs.append(
                SearchDir(STEP_DEFAULT, "(none)", None, caller.path if caller else None, "the caller has DF_1_NODEFLIB")
            )
        return dirs

    def lookup(self, name: str, caller: Optional[LoadedObject] = None, all_copies: bool = True) -> Lookup:
        """Which file `name` resolves to for `caller`, and (`all_copies`) every other copy on its search path."""
        if not all_copies and "/" not in name and name in self.loaded:
            obj = self.loaded[name]
            w = Candidate(
                name,
                obj.path,
                obj.real,
                obj.host_path,
                STEP_LOADED,
                f"already loaded (found via {obj.step})",
                None,
                None,
                obj.elf,
            )
            return Lookup(name, caller.path if caller else None, w, (w,), (), already_loaded=True)
        if "/" in name:
            path = name if name.startswith("/") else posixpath.join(self.cfg.cwd or "/", name)
            c = self.candidate(name, path, STEP_PATH, name)
            return Lookup(name, caller.path if caller else None, c, (c,) if c else (), ())
        dirs = self.search_dirs(caller)
        copies: list[Candidate] = []
        seen_paths = set()
        nodeflib = bool(caller is not None and caller.elf.nodeflib)
        for sd in dirs:
            if sd.step == STEP_CACHE:
                for c in self._from_cache(name, nodeflib):
                    if c.path not in seen_paths:
                        seen_paths.add(c.path)
                        copies.append(c)
                if not all_copies and any(c.usable or c.fatal for c in copies):
                    break
                continue
            if sd.path is None:
                continue
            for c in self._in_dir(name, sd.path, sd.step, sd.written, sd.owner):
                if c.path not in seen_paths:
                    seen_paths.add(c.path)
                    copies.append(c)
            if not all_copies and any(c.usable or c.fatal for c in copies):
                break
        winner = None
        for c in copies:
            if c.usable or c.fatal:
                winner = c
                break
        loaded = self.loaded.get(name)
        if loaded is not None:
            winner = Candidate(
                name,
                loaded.path,
                loaded.real,
                loaded.host_path,
                STEP_LOADED,
                f"already loaded (found via {loaded.step})",
                None,
                None,
                loaded.elf,
            )
            copies = [winner] + [c for c in copies if c.real != loaded.real]
        elif winner is not None:
            copies = [winner] + [c for c in copies if c is not winner]
        # one entry per real file: the same file reached twice is one copy
        unique: list[Candidate] = []
        reals = set()
        for c in copies:
            if c.real not in reals:
                reals.add(c.real)
                unique.append(c)
        return Lookup(
            name, caller.path if caller else None, winner, tuple(unique), tuple(dirs), already_loaded=loaded is not None
        )

    def _from_cache(self, name: str, nodeflib: bool) -> list[Candidate]:
        cache = self.cfg.cache
        if cache is None:
            return []
        out = []
        best = cache.lookup(name, self.flags, self.cfg.hwcaps)
        entries = cache.by_soname(name, self.flags)
        if best is not None:
            entries = [best] + [e for e in entries if e is not best]
        for e in entries:
            if nodeflib and posixpath.dirname(e.path) in self.cfg.default_dirs:
                continue
            if e.hwcaps is not None and e.hwcaps not in self.cfg.hwcaps:
                continue
            c = self.candidate(name, e.path, STEP_CACHE, cache.path, None, e.hwcaps)
            if c is not None:
                out.append(c)
        return out

    def copies_elsewhere(self, name: str, dirs: Sequence[str], step: str) -> list[Candidate]:
        """Files named `name` in `dirs` (not on the search path), for reporting."""
        out = []
        for d in dirs:
            for c in self._in_dir(name, d, step, d, None):
                out.append(c)
        return out


class _NoOrigin(Exception):
    pass
