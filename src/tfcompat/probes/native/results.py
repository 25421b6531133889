"""What the loader model answers: the steps of glibc's search (where a file was found), the candidate files,
the search directories, the objects of the modelled process and the answer for one name."""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Optional

from tfcompat.probes.native.elf import ElfInfo

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
    """A directory the loader searches: the step that adds it, the element as written and as expanded."""

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
    parent: Optional[LoadedObject] = None  # the object that caused it to be loaded (glibc's l_loader)
    deps: dict[str, Optional[LoadedObject]] = dataclasses.field(default_factory=dict)

    @property
    def origin(self) -> str:
        return posixpath.dirname(self.path)


@dataclasses.dataclass(frozen=True)
class Lookup:
    """The loader's answer for one name asked by one caller."""

    name: str
    caller: Optional[str]
    winner: Optional[Candidate]  # the file it uses (possibly unusable: see .problem / .fatal); None: not found
    copies: tuple[Candidate, ...]  # every file with that name on the search path, in search order, winner first
    searched: tuple[SearchDir, ...]
    already_loaded: bool = False

    @property
    def ok(self) -> bool:
        return self.winner is not None and self.winner.usable
