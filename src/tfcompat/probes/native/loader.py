"""The modelled process: what ``import tensorflow`` and ``dlopen()`` load, each with its DT_NEEDED closure.

:class:`Loader` is :class:`~tfcompat.probes.native.search.Search` (which file a name resolves to) plus the
objects loaded so far, as glibc keeps them: by every name asked for and by SONAME, and by real file. One
Loader models one process; many Loaders may share one :class:`LoaderConfig`.
"""

from __future__ import annotations

import posixpath
from typing import Optional

# The loader's public names, in one place (this module was the whole model before the split).
from tfcompat.probes.native.config import (  # noqa: F401
    _DEFAULT_DIRS,
    _TRIPLETS,
    LoaderConfig,
    TargetArch,
    _default_dir_style,
    glibc_hwcaps,
    target_arch,
)
from tfcompat.probes.native.results import (  # noqa: F401  (the loader model's public face)
    STEP_CACHE,
    STEP_CONF_ONLY,
    STEP_DEFAULT,
    STEP_EXE_RPATH,
    STEP_EXECUTABLE,
    STEP_LD_LIBRARY_PATH,
    STEP_LOADED,
    STEP_OFF_PATH,
    STEP_PATH,
    STEP_PRELOAD,
    STEP_PRELOAD_FILE,
    STEP_RPATH,
    STEP_RUNPATH,
    Candidate,
    LoadedObject,
    Lookup,
    SearchDir,
)
from tfcompat.probes.native.search import (
    Search,
)


class Loader(Search):
    """Resolves names the way glibc would in one modelled process; remembers what it has loaded."""

    def _register(self, obj: LoadedObject, *names: str) -> LoadedObject:
        existing = self.by_real.get(obj.real)
        if existing is not None:
            obj = existing
        else:
            self.by_real[obj.real] = obj
        for n in names + ((obj.elf.soname,) if obj.elf.soname else ()):
            if n:
                self.loaded.setdefault(n, obj)
        return obj

    def load_path(
        self, path: str, step: str = STEP_PATH, parent: Optional[LoadedObject] = None, deps: bool = True
    ) -> Optional[LoadedObject]:
        """Load the object at an inside-root `path` (dlopen of a path), with its DT_NEEDED closure."""
        c = self.candidate(posixpath.basename(path), path, step, path)
        if c is None or not c.usable or c.elf is None:  # a usable candidate always has its ELF info
            return None
        existing = self.by_real.get(c.real)
        if existing is not None:
            return existing
        obj = self._register(LoadedObject(path, path, c.real, c.host_path, c.elf, step, parent), path)
        if deps:
            self.load_deps(obj)
        return obj

    def load_executable(self) -> Optional[LoadedObject]:
        """The main program (its resolved path: $ORIGIN of an executable comes from /proc/self/exe)."""
        if not self.cfg.executable:
            return None
        host = self.host(self.cfg.executable)
        if host is None:
            return None
        real = self.inside(host)
        obj = self.load_path(real, STEP_EXECUTABLE, deps=False)
        if obj is None:
            return None
        self.executable = obj
        for entry in self.cfg.ld_preload:
            self._preload(entry, STEP_PRELOAD)
        for entry in self.cfg.preload_file:
            self._preload(entry, STEP_PRELOAD_FILE)
        self.load_deps(obj)
        return obj

    def _preload(self, entry: str, step: str) -> None:
        if "/" in entry:
            path = entry if entry.startswith("/") else posixpath.join(self.cfg.cwd or "/", entry)
            obj = self.load_path(path, step, parent=self.executable)
            if obj is not None:
                self.loaded.setdefault(posixpath.basename(path), obj)
            return
        lk = self.lookup(entry, self.executable)
        w = lk.winner
        if lk.ok and w is not None and w.elf is not None:
            self._register(LoadedObject(entry, w.path, w.real, w.host_path, w.elf, step, self.executable), entry)

    def load(self, name: str, caller: Optional[LoadedObject]) -> tuple[Lookup, Optional[LoadedObject]]:
        """dlopen(name) from `caller`: the lookup, and the loaded object (with its closure) when it succeeds."""
        lk = self.lookup(name, caller)
        if not lk.ok or lk.winner is None or lk.winner.elf is None:
            return lk, None
        if lk.already_loaded:
            return lk, self.loaded[name]
        w = lk.winner
        existing = self.by_real.get(w.real)
        if existing is not None:
            self._register(existing, name)
            return lk, existing
        assert w.elf is not None
        obj = self._register(LoadedObject(name, w.path, w.real, w.host_path, w.elf, w.step, caller), name)
        self.load_deps(obj)
        return lk, obj

    def load_deps(self, obj: LoadedObject) -> None:
        """Breadth-first DT_NEEDED closure, each name looked up with the object that needs it as the caller."""
        queue = [obj]
        while queue:
            current = queue.pop(0)
            for needed in current.elf.needed:
                if needed in current.deps:
                    continue
                lk = self.lookup(needed, current, all_copies=False)
                if not lk.ok or lk.winner is None:
                    current.deps[needed] = None
                    continue
                if lk.already_loaded:
                    current.deps[needed] = self.loaded[needed]
                    continue
                w = lk.winner
                existing = self.by_real.get(w.real)
                if existing is not None:
                    self._register(existing, needed)
                    current.deps[needed] = existing
                    continue
                assert w.elf is not None
                dep = self._register(LoadedObject(needed, w.path, w.real, w.host_path, w.elf, w.step, current), needed)
                current.deps[needed] = dep
                queue.append(dep)

    def missing_deps(self, obj: LoadedObject) -> list[tuple[str, str]]:
        """(name, needed by) for every DT_NEEDED in `obj`'s closure that the loader cannot find."""
        out: list[tuple[str, str]] = []
        seen = set()
        queue = [obj]
        while queue:
            cur = queue.pop(0)
            if id(cur) in seen:
                continue
            seen.add(id(cur))
            for name, dep in cur.deps.items():
                if dep is None:
                    out.append((name, cur.real))
                else:
                    queue.append(dep)
        return out
