"""A short run of scripts/fuzz_elf.py in the suite: a few hundred seeded mutations of gcc-built objects and
of this host's ld.so.cache; only ElfError / LdCacheError may come out, each case fast, memory bounded."""

import importlib.util
from pathlib import Path

SCRIPT = str(Path(__file__).resolve().parents[3] / "scripts" / "fuzz_elf.py")


def _load():
    spec = importlib.util.spec_from_file_location("fuzz_elf", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_short_fuzz_run_raises_only_the_readers_errors():
    result = _load().fuzz(400, seed=17, out=None, case_timeout=5.0, max_rss=1024)
    assert result["failures"] == [], result["failures"][:5]
    assert result["by_target"]["elf"] >= 250
    assert result["slowest_case_s"] < 5.0


def test_mutator_is_deterministic():
    import random

    fz = _load()
    seed = b"\x7fELF" + bytes(range(256)) * 4
    a = [fz.mutate(random.Random(5), seed, fz._struct_offsets(seed)) for _ in range(3)]
    b = [fz.mutate(random.Random(5), seed, fz._struct_offsets(seed)) for _ in range(3)]
    assert a == b
