"""Probes: the only code that touches the system; each records raw facts (and unknowns with reasons)."""

import sys as _sys

# Old import paths: tfcompat.probes.elf, .ldcache and .loader moved to probes/native/. A finder, not shim
# files, keeps them working: with no file left at the old path, `git merge` sees elf.py's move as a rename
# and carries other branches' edits of probes/elf.py into probes/native/elf.py. The old name binds the new
# module itself (one module object: patches and isinstance checks agree), imported only when asked for
# (the NVML child imports this package and needs none of it). Remove once nothing imports the old paths.
_MOVED = {f"{__name__}.{name}": f"{__name__}.native.{name}" for name in ("elf", "ldcache", "loader")}


class _MovedModules:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in _MOVED:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(name, _MovedModules)

    @staticmethod
    def create_module(spec):
        from importlib import import_module

        module = import_module(_MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system overwrites __spec__; exec_module restores it
        return module

    @staticmethod
    def exec_module(module):
        module.__spec__ = module.__spec__.loader_state


if not any(getattr(f, "__name__", "") == "_MovedModules" for f in _sys.meta_path):
    _sys.meta_path.append(_MovedModules)
