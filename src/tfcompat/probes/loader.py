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

import dataclasses
import os
import posixpath
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tfcompat.probes.elf import ET_DYN, ET_EXEC, ElfError, ElfInfo, read_elf
from tfcompat.probes.ldcache import LdCache, LdCacheError, arch_flags, read_ld_cache, read_ld_so_conf
from tfcompat.probes.rootfs import Root

STEP_PRELOAD = "LD_PRELOAD"
STEP_PRELOAD_FILE = "/etc/ld.so.preload"
STEP_LOADED = "already loaded"
STEP_RPATH = "DT_RPATH"
STEP_EXE_RPATH = "DT_RPATH of the executable"
STEP_LD_LIBRARY_PATH = "LD_LIBRARY_PATH"
STEP_RUNPATH = "DT_RUNPATH"
STEP_CACHE = "ld.so.cache"
STEP_DEFAULT = "default path"
STEP_PATH = "path"  # a name with a slash: opened as is
STEP_EXECUTABLE = "executable"
# Not loader steps: where else a copy lies, reported so that users see why it is not picked.
STEP_CONF_ONLY = "ld.so.conf dir, not in ld.so.cache"
STEP_OFF_PATH = "installed, not on the search path"

# The default ("trusted") directories, by glibc's configured slibdir/libdir. ld.so --help prints them.
_DEFAULT_DIRS = {
    "debian": lambda triplet: (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib"),
    "lib64": lambda triplet: ("/lib64", "/usr/lib64"),
    "lib": lambda triplet: ("/lib", "/usr/lib"),
}
_TRIPLETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu", "ppc64": "powerpc64le-linux-gnu",
             "s390x": "s390x-linux-gnu", "i386": "i386-linux-gnu", "riscv64": "riscv64-linux-gnu"}

# x86-64 micro-architecture levels (glibc sysdeps/x86/get-isa-level.h) as /proc/cpuinfo flag names.
_X86_V2 = ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3")
_X86_V3 = _X86_V2 + ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
_X86_V4 = _X86_V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
_DST = re.compile(r"\$(\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


def glibc_hwcaps(machine: str, cpu_flags: Iterable[str]) -> Tuple[str, ...]:
    """Supported glibc-hwcaps subdirectories, most preferred first (what ``ld.so --help`` lists)."""
    flags = set(cpu_flags)
    if machine != "x86_64" or not flags:
        return ()
    levels = []
    for name, need in (("x86-64-v4", _X86_V4), ("x86-64-v3", _X86_V3), ("x86-64-v2", _X86_V2)):
        if all(f in flags for f in need):
            levels.append(name)
    return tuple(levels)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One file the loader would try (or find) for a name."""

    name: str
    path: str  # as the loader opens it (inside the root, '..' and symlinks not resolved)
    real: str  # after symlinks, inside the root
    host_path: str  # the real file on this machine
    step: str  # STEP_*
    written: str  # the search-path element as written ("$ORIGIN/../nvidia/cudnn/lib", "/usr/lib64"), or the cache
    owner: Optional[str] = None  # the object whose DT_RPATH/DT_RUNPATH it is
    hwcaps: Optional[str] = None  # glibc-hwcaps subdirectory it came from
    elf: Optional[ElfInfo] = None
    problem: Optional[str] = None  # why the loader cannot use it
    fatal: bool = False  # True: the loader stops with an error here; False: it skips the file and goes on

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclasses.dataclass(frozen=True)
class SearchDir:
    step: str
    written: str
    path: Optional[str]  # expanded (inside-root, unresolved); None when it cannot be expanded
    owner: Optional[str] = None
    note: Optional[str] = None


@dataclasses.dataclass
class LoadedObject:
    """An object in the modelled process."""

    name: str  # name it was asked for (or its path)
    path: str  # as opened (inside the root)
    real: str
    host_path: str
    elf: ElfInfo
    step: str  # how it was found
    parent: Optional["LoadedObject"] = None  # the object that caused it to be loaded (glibc's l_loader)
    deps: Dict[str, Optional["LoadedObject"]] = dataclasses.field(default_factory=dict)

    @property
    def origin(self) -> str:
        return posixpath.dirname(self.path)


@dataclasses.dataclass(frozen=True)
class Lookup:
    """The loader's answer for one name asked by one caller."""

    name: str
    caller: Optional[str]
    winner: Optional[Candidate]  # the file it uses (possibly unusable: see .problem / .fatal); None: not found
    copies: Tuple[Candidate, ...]  # every file with that name on the search path, in search order, winner first
    searched: Tuple[SearchDir, ...]
    already_loaded: bool = False

    @property
    def ok(self) -> bool:
        return self.winner is not None and self.winner.usable


@dataclasses.dataclass(frozen=True)
class LoaderConfig:
    root: Root
    machine: str = "x86_64"
    elf_class: int = 64
    ld_library_path: Tuple[str, ...] = ()  # elements, in order; '' is the working directory
    ld_preload: Tuple[str, ...] = ()
    preload_file: Tuple[str, ...] = ()  # entries of /etc/ld.so.preload
    executable: Optional[str] = None  # inside-root path of the main program
    default_dirs: Tuple[str, ...] = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
    default_dirs_source: str = ""
    lib_token: str = "lib/x86_64-linux-gnu"  # what $LIB expands to
    platform_token: str = "x86_64"  # what $PLATFORM expands to (AT_PLATFORM)
    hwcaps: Tuple[str, ...] = ()
    cache: Optional[LdCache] = None
    cache_problem: Optional[str] = None  # why no cache is used
    conf_dirs: Tuple[str, ...] = ()
    cwd: Optional[str] = None  # for relative and empty path elements; None under --root

    @classmethod
    def detect(cls, root: Root, machine: str = "x86_64", elf_class: int = 64,
               environ: Optional[Mapping[str, str]] = None, executable: Optional[str] = None,
               cpu_flags: Iterable[str] = ()) -> "LoaderConfig":
        """The loader of the target: its cache, ld.so.conf, default dirs; the environment on the host only."""
        env = dict(environ or {}) if root.is_host else {}
        cache, problem = None, None
        try:
            cache = read_ld_cache(root)
            if cache is None:
                problem = "no /etc/ld.so.cache" + (" inside --root" if root.root else "")
        except LdCacheError as exc:
            problem = f"unreadable ld.so.cache: {exc}"
        style, source = _default_dir_style(root, machine)
        triplet = _TRIPLETS.get(machine, f"{machine}-linux-gnu")
        lib_token = {"debian": f"lib/{triplet}", "lib64": "lib64"}.get(style, "lib")
        ld_library_path = tuple(_split_path(env.get("LD_LIBRARY_PATH"))) if env.get("LD_LIBRARY_PATH") else ()
        preload = tuple(p for p in re.split(r"[ :]", env.get("LD_PRELOAD", "")) if p)
        try:
            preload_file = tuple(root.read_text("/etc/ld.so.preload").split())
        except OSError:
            preload_file = ()
        return cls(
            root=root, machine=machine, elf_class=elf_class, ld_library_path=ld_library_path, ld_preload=preload,
            preload_file=preload_file, executable=executable,
            default_dirs=_DEFAULT_DIRS[style](triplet), default_dirs_source=source, lib_token=lib_token,
            platform_token=machine, hwcaps=glibc_hwcaps(machine, cpu_flags), cache=cache, cache_problem=problem,
            conf_dirs=tuple(read_ld_so_conf(root)), cwd=_cwd() if root.is_host else None,
        )


def _cwd() -> Optional[str]:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def _split_path(value: Optional[str]) -> List[str]:
    # ld.so splits LD_LIBRARY_PATH on ':' and ';'; an empty element is the working directory.
    return re.split(r"[:;]", value) if value is not None else []


def _default_dir_style(root: Root, machine: str) -> Tuple[str, str]:
    """Which default-dir layout the target's glibc has, from where its libc.so.6 lives."""
    triplet = _TRIPLETS.get(machine, f"{machine}-linux-gnu")
    for style, d in (("debian", f"/lib/{triplet}"), ("debian", f"/usr/lib/{triplet}"), ("lib64", "/lib64"),
                     ("lib64", "/usr/lib64"), ("lib", "/lib"), ("lib", "/usr/lib")):
        try:
            if os.path.isfile(root.path(d + "/libc.so.6")):
                return style, f"libc.so.6 in {d}"
        except OSError:
            continue
    return ("debian" if machine in _TRIPLETS else "lib64"), "assumed (no libc.so.6 found)"


class Loader:
    """Resolves names the way glibc would in one modelled process; remembers what it has loaded."""

    def __init__(self, config: LoaderConfig):
        self.cfg = config
        self.root = config.root
        self.flags = arch_flags(config.machine, config.elf_class)
        self.loaded: Dict[str, LoadedObject] = {}  # by every name it was asked for, and by SONAME
        self.by_real: Dict[str, LoadedObject] = {}
        self.executable: Optional[LoadedObject] = None
        self._listing: Dict[str, Optional[frozenset]] = {}
        self._real: Dict[str, Optional[str]] = {}
        self._dirs: Dict[Optional[int], Tuple[Optional[LoadedObject], List[SearchDir]]] = {}

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
        real = self.host(directory)
        try:
            names = frozenset(os.listdir(real)) if real else frozenset()
        except OSError:
            names = frozenset()
        self._listing[directory] = names
        return names

    # -- candidates ------------------------------------------------------------------------------

    def candidate(self, name: str, path: str, step: str, written: str, owner: Optional[str] = None,
                  hwcaps: Optional[str] = None) -> Optional[Candidate]:
        """The file at `path` as the loader would judge it; None when nothing can be opened there."""
        host_path = self.host(path)
        if host_path is None or not os.path.isfile(host_path):
            return None
        real = self.inside(host_path)
        if not os.access(host_path, os.R_OK):  # glibc notes EACCES and goes on searching
            return Candidate(name, path, real, host_path, step, written, owner, hwcaps, None,
                             "not readable (permission denied; skipped)")
        try:
            info = read_elf(host_path)
        except ElfError as exc:
            detail = str(exc).split(": ", 1)[-1]
            return Candidate(name, path, real, host_path, step, written, owner, hwcaps, None,
                             f"cannot be loaded: {detail}", fatal=True)
        problem, fatal = None, False
        if info.elf_class != self.cfg.elf_class:
            problem = f"{info.elf_class}-bit ELF, the process is {self.cfg.elf_class}-bit (skipped)"
        elif info.machine_name != self.cfg.machine:
            problem = f"ELF for {info.machine_name}, the process is {self.cfg.machine} (skipped)"
        elif info.elf_type not in (ET_DYN, ET_EXEC):
            problem, fatal = f"ELF type {info.elf_type} is not loadable", True
        return Candidate(name, path, real, host_path, step, written, owner, hwcaps, info, problem, fatal)

    def _in_dir(self, name: str, directory: str, step: str, written: str,
                owner: Optional[str]) -> List[Candidate]:
        """Files for `name` in `directory` and its supported glibc-hwcaps subdirectories, in search order."""
        out: List[Candidate] = []
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

    def expand(self, element: str, obj: Optional[LoadedObject]) -> Tuple[Optional[str], Optional[str]]:
        """(inside-root directory, note) for one DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH element."""
        if element == "":
            if self.cfg.cwd is None:
                return None, "empty element (the working directory): unknown under --root"
            return self.cfg.cwd, "empty element: the working directory"

        def sub(m: "re.Match") -> str:
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

    def search_dirs(self, caller: Optional[LoadedObject]) -> List[SearchDir]:
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

    def _search_dirs(self, caller: Optional[LoadedObject]) -> List[SearchDir]:
        dirs: List[SearchDir] = []
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
        dirs.append(SearchDir(STEP_CACHE, self.cfg.cache.path if self.cfg.cache else "/etc/ld.so.cache", None,
                              None, self.cfg.cache_problem))
        if not nodeflib:
            for d in self.cfg.default_dirs:
                dirs.append(SearchDir(STEP_DEFAULT, d, d))
        else:
            dirs.append(SearchDir(STEP_DEFAULT, "(none)", None, caller.path if caller else None,
                                  "the caller has DF_1_NODEFLIB"))
        return dirs

    def lookup(self, name: str, caller: Optional[LoadedObject] = None, all_copies: bool = True) -> Lookup:
        """Which file `name` resolves to for `caller`, and (`all_copies`) every other copy on its search path."""
        if not all_copies and "/" not in name and name in self.loaded:
            obj = self.loaded[name]
            w = Candidate(name, obj.path, obj.real, obj.host_path, STEP_LOADED, f"already loaded (found via {obj.step})",
                          None, None, obj.elf)
            return Lookup(name, caller.path if caller else None, w, (w,), (), already_loaded=True)
        if "/" in name:
            path = name if name.startswith("/") else posixpath.join(self.cfg.cwd or "/", name)
            c = self.candidate(name, path, STEP_PATH, name)
            return Lookup(name, caller.path if caller else None, c, (c,) if c else (), ())
        dirs = self.search_dirs(caller)
        copies: List[Candidate] = []
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
            winner = Candidate(name, loaded.path, loaded.real, loaded.host_path, STEP_LOADED,
                               f"already loaded (found via {loaded.step})", None, None, loaded.elf)
            copies = [winner] + [c for c in copies if c.real != loaded.real]
        elif winner is not None:
            copies = [winner] + [c for c in copies if c is not winner]
        # one entry per real file: the same file reached twice is one copy
        unique: List[Candidate] = []
        reals = set()
        for c in copies:
            if c.real not in reals:
                reals.add(c.real)
                unique.append(c)
        return Lookup(name, caller.path if caller else None, winner, tuple(unique), tuple(dirs),
                      already_loaded=loaded is not None)

    def _from_cache(self, name: str, nodeflib: bool) -> List[Candidate]:
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

    # -- loading ---------------------------------------------------------------------------------

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

    def load_path(self, path: str, step: str = STEP_PATH, parent: Optional[LoadedObject] = None,
                  deps: bool = True) -> Optional[LoadedObject]:
        """Load the object at an inside-root `path` (dlopen of a path), with its DT_NEEDED closure."""
        c = self.candidate(posixpath.basename(path), path, step, path)
        if c is None or not c.usable:
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
        if lk.ok and lk.winner is not None and lk.winner.elf is not None:
            w = lk.winner
            self._register(LoadedObject(entry, w.path, w.real, w.host_path, w.elf, step, self.executable), entry)

    def load(self, name: str, caller: Optional[LoadedObject]) -> Tuple[Lookup, Optional[LoadedObject]]:
        """dlopen(name) from `caller`: the lookup, and the loaded object (with its closure) when it succeeds."""
        lk = self.lookup(name, caller)
        if not lk.ok or lk.winner is None:
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
                dep = self._register(LoadedObject(needed, w.path, w.real, w.host_path, w.elf, w.step, current),
                                     needed)
                current.deps[needed] = dep
                queue.append(dep)

    def missing_deps(self, obj: LoadedObject) -> List[Tuple[str, str]]:
        """(name, needed by) for every DT_NEEDED in `obj`'s closure that the loader cannot find."""
        out: List[Tuple[str, str]] = []
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

    def copies_elsewhere(self, name: str, dirs: Sequence[str], step: str) -> List[Candidate]:
        """Files named `name` in `dirs` (not on the search path), for reporting."""
        out = []
        for d in dirs:
            for c in self._in_dir(name, d, step, d, None):
                out.append(c)
        return out


class _NoOrigin(Exception):
    pass
