"""Custom ops and plugins: predict "undefined symbol" and friends from the ELF files, loading nothing.

Raw facts only (the missing names, their namespaces, abseil LTS, C API names, the symbol versions not
found): rules/custom_ops.py says in words what they mean, so a snapshot re-judged later gets the newer
reasoning.

The process model (see shared facts, loader_and_abi.md §3): `import tensorflow` puts the python
executable and its DT_NEEDED closure (libpython when shared) and TF's core libraries with their
closures into the global symbol scope (RTLD_GLOBAL). Each plugin is then dlopen()ed RTLD_LOCAL:
its undefined symbols must be defined in the global scope or in its own DT_NEEDED closure, with
the symbol versions it asks for. Sonames already loaded are reused, which is how a plugin's
DT_NEEDED on libtensorflow_framework.so.2 resolves even when its RUNPATH points at a build machine.

Symbols are looked up through each provider's GNU hash table (or DT_HASH): a few page reads per
name, whatever the size of libtensorflow_cc.so.2.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Optional

from tfcompat.model import CustomOp, Package, TensorFlowBuild, Unknown
from tfcompat.probes.budget import UNLIMITED, Budget
from tfcompat.probes.native.elf import ElfError, ElfFile, SymbolName, read_elf, undefined_refs
from tfcompat.probes.native.loader import LoadedObject, Loader, LoaderConfig
from tfcompat.probes.packages import record_files
from tfcompat.probes.rootfs import Root
from tfcompat.probes.tensorflow import core_dirs

# What marks an object as a TensorFlow plugin: it needs one of these.
TF_LIBRARIES = (
    "libtensorflow_framework.so.2",
    "libtensorflow_framework.so.1",
    "libtensorflow_framework.so",
    "libtensorflow_cc.so.2",
    "_pywrap_tensorflow_internal.so",
    "libtensorflow.so.2",
)
# TF's core objects, in the order `import tensorflow` loads them RTLD_GLOBAL (relative to the package dir).
TF_CORE = (
    "python/_pywrap_tensorflow_internal.so",
    "python/lib_pywrap_tensorflow_common.so",
    "libtensorflow_cc.so.2",
    "libtensorflow_framework.so.2",
    "libtensorflow_framework.so.1",
)
MAX_NAMES = 8  # missing symbols kept per object, in the report
_SO = re.compile(r"\.so(\.\d+)*$")
_ABSL = re.compile(r"4absl(\d+)(lts_\d{8})")
_PYTHON_API = re.compile(r"^_?Py")


def op_files(pattern: str) -> list[str]:
    """The files an --op path or glob names (the CLI refuses one that names none)."""
    if any(c in pattern for c in "*?["):
        return sorted(glob.glob(pattern))
    return [pattern] if os.path.isfile(pattern) else []


def discover(
    packages: Sequence[Package],
    tf_distributions: Iterable[str],
    extra: Sequence[str] = (),
    root: Optional[Root] = None,
    budget: Budget = UNLIMITED,
) -> tuple[list[tuple[str, str]], list[Unknown]]:
    """[(owner, real path)] of every ELF object that needs TensorFlow's libraries, outside TF itself.

    Each package's files come from its RECORD (or installed-files.txt) read through `root`: an absolute
    or '../' entry names a file of the image, never of the host. `extra` are --op paths or globs (owner
    "--op"). When `budget` runs out, the packages not looked at are named in an Unknown."""
    root = root or Root(None)
    skip = set(tf_distributions)
    found: list[tuple[str, str]] = []
    unknowns: list[Unknown] = []
    seen = set()
    todo = [p for p in packages if p.name not in skip]
    for n, pkg in enumerate(todo):
        if budget.expired():
            unknowns.append(
                Unknown(
                    "custom_ops",
                    f"{budget.reason}: the files of {len(todo) - n} of {len(todo)} "
                    f"packages were not looked at (from {pkg.name})",
                )
            )
            break
        files, why = record_files(pkg, root, keep=lambda rel: bool(_SO.search(rel)), contains=".so")
        if why:
            unknowns.append(Unknown(f"custom_ops.{pkg.name}", f"cannot list the files {pkg.name} installed: {why}"))
        for path in files:
            if not _SO.search(path) or path in seen:
                continue
            seen.add(path)
            try:
                info = read_elf(path)
            except (ElfError, OSError):
                continue
            if any(n in TF_LIBRARIES for n in info.needed):
                found.append((pkg.name, path))
    for pattern in extra:
        matches = op_files(pattern)
        if not matches:
            unknowns.append(Unknown("custom_ops", f"--op {pattern}: no such file"))
        for path in matches:
            real = os.path.abspath(path)
            if real not in seen:
                seen.add(real)
                found.append(("--op", real))
    return found, unknowns


def build_id(path: str) -> Optional[str]:
    """The GNU build-id note (NT_GNU_BUILD_ID in a PT_NOTE segment): the same id means the same build.

    It identifies a plugin across nodes (for the fleet's drift check) without hashing the file. Read by
    the bounded ELF reader (a FIFO or device is never opened); None when there is none or it is unreadable."""
    try:
        with ElfFile(path) as elf:
            return elf.build_id()
    except (ElfError, OSError):
        return None


def demangle(names: Sequence[str]) -> dict[str, str]:
    """Demangled names via c++filt (a child process), or {} when it is not installed."""
    tool = shutil.which("c++filt")
    mangled = [n for n in names if n.startswith("_Z")]
    if not tool or not mangled:
        return {}
    try:
        proc = subprocess.run([tool], input="\n".join(mangled) + "\n", capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    lines = proc.stdout.splitlines()
    return dict(zip(mangled, lines)) if proc.returncode == 0 and len(lines) == len(mangled) else {}


class _Providers:
    """Open ElfFiles of the objects in scope, kept open across plugins (hash lookups only), and what each
    was asked: most plugins of a distribution need the same names, looked up once per file and version."""

    def __init__(self):
        self._open: dict[str, Optional[ElfFile]] = {}
        self._answers: dict[tuple[str, str, Optional[str]], bool] = {}
        self._names: dict[str, SymbolName] = {}
        self._scopes: dict[tuple[str, ...], dict[tuple[str, Optional[str]], bool]] = {}

    def get(self, obj: LoadedObject) -> Optional[ElfFile]:
        if obj.host_path not in self._open:
            try:
                self._open[obj.host_path] = ElfFile(obj.host_path)
            except (ElfError, OSError):
                self._open[obj.host_path] = None
        return self._open[obj.host_path]

    def name(self, name: str) -> SymbolName:
        """`name` with its hashes, computed once per check whatever the number of files it is looked up in."""
        key = self._names.get(name)
        if key is None:
            key = self._names[name] = SymbolName(name)
        return key

    def defines(self, obj: LoadedObject, name: str, version: Optional[str]) -> bool:
        """Whether `obj` defines `name` for a reference asking for `version` (remembered; an error is not)."""
        memo = (obj.host_path, name, version)
        known = self._answers.get(memo)
        if known is None:
            known = self._answers[memo] = _defined(self.get(obj), self.name(name), version)
        return known

    def answers(self, candidates: Sequence[LoadedObject]) -> dict[tuple[str, Optional[str]], bool]:
        """{(name, version): whether one of `candidates` defines it}, shared by the plugins with those candidates
        (the same files in the same order: the same answer, found the same way)."""
        return self._scopes.setdefault(tuple(o.host_path for o in candidates), {})

    def close(self) -> None:
        for f in self._open.values():
            if f is not None:
                f.close()
        self._open.clear()
        self._answers.clear()
        self._scopes.clear()


def _closure(obj: LoadedObject) -> list[LoadedObject]:
    """`obj` and its DT_NEEDED closure, breadth first (the plugin's own scope)."""
    out, seen, queue = [], set(), [obj]
    while queue:
        cur = queue.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        out.append(cur)
        queue += [d for d in cur.deps.values() if d is not None]
    return out


def _defined(elf: Optional[ElfFile], name: SymbolName, version: Optional[str]) -> bool:
    """A defined `name` in `elf` that a reference to `version` binds to (an unversioned definition binds any)."""
    return elf is not None and elf.defines(name, version)


class CustomOpChecker:
    """The modelled process after `import tensorflow`; checks plugins against it."""

    def __init__(
        self,
        root: Root,
        tf: TensorFlowBuild,
        python_executable: Optional[str],
        cpu_flags=(),
        environ: Optional[Mapping[str, str]] = None,
        loader_config: Optional[LoaderConfig] = None,
    ):
        self.root = root
        if loader_config is None:  # a caller outside scan(): build the target's loader model here
            executable = root.display(python_executable) if python_executable else None
            environ = (os.environ if environ is None else environ) if root.is_host else None
            loader_config = LoaderConfig.for_target(root, executable, environ, cpu_flags)
        self.loader = Loader(loader_config)  # this process model's own state; the config is shared
        self.unknowns: list[Unknown] = []
        exe = self.loader.load_executable()
        if exe is None:
            self.unknowns.append(
                Unknown(
                    "custom_ops.python",
                    "the python executable could not be read, so libpython symbols are assumed present",
                )
            )
        # Without the interpreter (--site-packages alone), libpython's symbols cannot be looked up:
        # assume they are there rather than flag every pybind module.
        self.assume_python = exe is None
        self.global_scope: list[LoadedObject] = _closure(exe) if exe else []
        core = []
        # TF 1.15-2.1 keep their objects in tensorflow_core/ (tensorflow/ is a shim): the directories the import uses
        dirs = core_dirs(tf.location, root) if tf.package_dir else []
        for rel in TF_CORE:
            for d in dirs:
                path = os.path.join(d, rel)
                if root.is_file(root.display(path)):
                    obj = self.loader.load_path(root.display(path))
                    if obj is not None:
                        core.append(obj)
                    break
        if not core:
            where = ", ".join(dirs) or tf.package_dir
            self.unknowns.append(Unknown("custom_ops", f"no TensorFlow core library found in {where}"))
        for obj in core:
            for o in _closure(obj):
                if o not in self.global_scope:
                    self.global_scope.append(o)
        self.core_paths = tuple(o.host_path for o in core)
        self.providers = _Providers()
        self.demangle = True  # one c++filt per plugin; probe_custom_ops batches them instead

    def check(self, owner: str, path: str) -> CustomOp:
        """`path` dlopen()ed into the modelled process. With .demangle False the names shown stay mangled
        (in .demangled too), for :func:`demangle_all` to demangle those of many plugins in one c++filt."""
        plugin = self.loader.load_path(self.root.display(path))
        if plugin is None:
            return CustomOp(owner, path, ok=False, problem="not a loadable ELF object for this machine")
        missing_libs = tuple(sorted({name for name, _by in self.loader.missing_deps(plugin)}))
        own = _closure(plugin)
        in_global = {id(o) for o in self.global_scope}  # one object per real file: identity is equality
        scope = self.global_scope + [o for o in own if id(o) not in in_global]
        by_soname: dict[str, LoadedObject] = {}
        for o in scope:
            by_soname.setdefault(o.elf.soname or os.path.basename(o.path), o)
        # Version needs: each names the file that must define it.
        version_missing: list[str] = []
        for need in plugin.elf.version_needs:
            provider = by_soname.get(need.file)
            if provider is None:
                continue  # the missing library is reported already
            defs = set(provider.elf.version_defs)
            for v in need.versions:
                if v not in defs:
                    version_missing.append(f"{v} ({need.file}: {provider.real})")
        # glibc matches a versioned reference by version name anywhere in the scope (the file named in
        # .gnu.version_r is only checked for defining the version, above); try the named files first.
        version_files: dict[str, list[LoadedObject]] = {}
        for need in plugin.elf.version_needs:
            if need.file in by_soname:
                for v in need.versions:
                    version_files.setdefault(v, []).append(by_soname[need.file])
        others = [o for o in scope if o is not plugin]
        undefined: list[str] = []
        count = 0
        lacking = {v.split(" ")[0] for v in version_missing}
        tf_like = re.compile(r"^(TF_|_ZN?K?\d*(10tensorflow|3tsl|3xla|4absl))")
        with ElfFile(plugin.host_path) as elf:
            refs = undefined_refs(elf)  # (name, version asked for)
            try:
                plugin_build_id = elf.build_id()
            except ElfError:
                plugin_build_id = None
        # The candidates depend on the version asked for only: built once per version, not once per name.
        # Plugins with the same candidates (most of one distribution) share their answers, name by name.
        by_version: dict[Optional[str], tuple[list[LoadedObject], list[LoadedObject], dict]] = {}
        defines = self.providers.defines
        for name, version in refs:
            if self.assume_python and _PYTHON_API.match(name):
                continue
            known = by_version.get(version)
            if known is None:
                first = version_files.get(version, []) if version else []
                named = {id(o) for o in first}
                candidates = first + [o for o in others if id(o) not in named]
                known = by_version[version] = (first, candidates, self.providers.answers(candidates))
            first, candidates, answers = known
            found = answers.get((name, version))
            if found is None:
                found = answers[name, version] = any(defines(o, name, version) for o in candidates)
            if found:
                continue
            if version and (not first or version in lacking):
                continue  # its library or its version is missing: reported as such
            if missing_libs and not tf_like.match(name):
                continue  # a missing library may define it; TF names cannot come from there
            count += 1
            if len(undefined) < 200:
                undefined.append(name)
        absl = sorted({m.group(2) for n in undefined for m in [_ABSL.search(n)] if m})
        shown = _interesting_first(undefined)[:MAX_NAMES]
        names = demangle(shown) if self.demangle else {}
        return CustomOp(
            owner=owner,
            path=path,
            ok=not (missing_libs or version_missing or count),
            missing_libraries=missing_libs,
            missing_versions=tuple(version_missing),
            undefined_count=count,
            undefined=tuple(shown),
            demangled=tuple(names.get(n, n) for n in shown),
            abseil=tuple(absl),
            build_id=plugin_build_id,
            namespaces=namespaces(undefined),
            c_api=c_api_names(undefined),
            old_string_abi=uses_old_string_abi([name for name, _version in refs]),
        )

    def close(self) -> None:
        self.providers.close()


def demangle_all(ops: Sequence[CustomOp]) -> list[CustomOp]:
    """`ops` with the names they show demangled, in one c++filt for all (checked with .demangle False).

    c++filt answers a line per name: a mangled name with a line break would shift every answer after it,
    so its plugin stays out of the batch and keeps its names mangled (as its own c++filt call answered)."""
    split = {id(op) for op in ops if any(n.startswith("_Z") and n.splitlines() != [n] for n in op.undefined)}
    batch = sorted({n for op in ops if id(op) not in split for n in op.undefined})
    names = demangle(batch) if batch else {}
    return [
        dataclasses.replace(op, demangled=tuple(names.get(n, n) for n in op.undefined))
        if op.undefined and id(op) not in split
        else op
        for op in ops
    ]


def _interesting_first(names: list[str]) -> list[str]:
    """TF / abseil / C API names before the rest, so the report shows the cause, not noise."""

    def key(n: str) -> int:
        if n.startswith("TF_") or "10tensorflow" in n or "3tsl" in n:
            return 0
        if "4absl" in n:
            return 1
        return 2

    return sorted(names, key=key)


# C++ namespaces a missing name comes from, by the token its mangled name carries.
_NAMESPACES = (("tensorflow", "10tensorflow"), ("tsl", "3tsl"), ("xla", "3xla"), ("absl", "4absl"))


def namespaces(missing: Sequence[str]) -> tuple[str, ...]:
    """The C++ namespaces (tensorflow, tsl, xla, absl) that the missing names belong to."""
    return tuple(ns for ns, token in _NAMESPACES if any(token in n for n in missing))


def c_api_names(missing: Sequence[str]) -> tuple[str, ...]:
    """Missing TensorFlow C API names (TF_*), in symbol-table order, the first few."""
    return tuple(n for n in missing if n.startswith("TF_"))[:MAX_NAMES]


def uses_old_string_abi(all_undefined: Sequence[str]) -> bool:
    """Whether the object references std::string of the pre-C++11 ABI (std::basic_string<char>: _ZNSs...)."""
    return any(n.startswith(("_ZNSs", "_ZNKSs")) for n in all_undefined)


def probe_custom_ops(
    root: Root,
    tf: Optional[TensorFlowBuild],
    packages: Sequence[Package],
    tf_distributions: Iterable[str],
    python_executable: Optional[str],
    ops: Sequence[str] = (),
    cpu_flags=(),
    environ: Optional[Mapping[str, str]] = None,
    loader_config: Optional[LoaderConfig] = None,
    budget: Budget = UNLIMITED,
) -> tuple[tuple[CustomOp, ...], list[Unknown]]:
    found, unknowns = discover(packages, tf_distributions, ops, root, budget)
    if not found:
        return (), unknowns
    if tf is None or not tf.package_dir:
        return (), unknowns + [Unknown("custom_ops", "plugins found but no TensorFlow to load them against")]
    if budget.expired():
        return (), unknowns + [Unknown("custom_ops", f"{budget.reason}: {len(found)} plugins found, none checked")]
    checker = CustomOpChecker(root, tf, python_executable, cpu_flags, environ, loader_config)
    checker.demangle = False  # demangle_all() below: one c++filt for every plugin
    results: list[CustomOp] = []
    try:
        for n, (owner, path) in enumerate(found):
            if budget.expired():
                unknowns.append(
                    Unknown(
                        "custom_ops",
                        f"{budget.reason}: {len(found) - n} of {len(found)} plugins "
                        f"not checked (from {root.display(path)})",
                    )
                )
                break
            try:
                results.append(checker.check(owner, path))
            except (ElfError, OSError) as exc:  # one malformed object must not stop the others
                results.append(CustomOp(owner, path, ok=False, problem=str(exc)))
    finally:
        checker.close()
    return tuple(demangle_all(results)), unknowns + checker.unknowns
