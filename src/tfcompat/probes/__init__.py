"""Probes: the only code that touches the system; each records raw facts (and unknowns with reasons)."""

import sys as _sys

from tfcompat.probes.native import elf, ldcache, loader

# Old import paths (tfcompat.probes.elf, .ldcache, .loader): the modules moved to probes/native/. They are
# aliased here rather than shimmed by files, so that `git merge` sees elf.py's move as a rename and carries
# other branches' edits of probes/elf.py into probes/native/elf.py. To be removed once nothing imports them.
for _module in (elf, ldcache, loader):
    _sys.modules.setdefault(f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}", _module)
del _module
