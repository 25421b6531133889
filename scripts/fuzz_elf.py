#!/usr/bin/env python3
"""Seeded mutation fuzzer for the ELF reader (tfcompat.probes.native.elf) and the ld.so.cache parser; with
``--target sections`` (or ``all``), of the readers of GPU code sections: .nv_fatbin (native/fatbin.py) and
.hip_fatbin (native/offload_bundle.py), which must raise nothing at all (they return problem strings).

Each case mutates a seed (gcc-built shared objects, the tests' hand-written objects, this host's
ld.so.cache), runs every entry point a scan uses, and checks that
  - only the reader's own error is raised (ElfError / LdCacheError),
  - each case ends within --case-timeout seconds,
  - the process stays under --max-rss MiB (address space is also capped with RLIMIT_AS).
Failing inputs are written to --out for replay. The same seed gives the same mutations.

    PYTHONPATH=src python scripts/fuzz_elf.py --mutations 100000 --seed 1 --out /tmp/fuzz-out
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # elf_fixtures.build_so: no toolchain needed

from tfcompat.probes.native.elf import (  # noqa: E402
    ElfError,
    ElfFile,
    SymbolName,
    clear_cache,
    read_elf,
    undefined_refs,
    undefined_symbols,
)
from tfcompat.probes.native.fatbin import find_section, read_fatbins  # noqa: E402
from tfcompat.probes.native.ldcache import LdCacheError, parse_ld_cache  # noqa: E402
from tfcompat.probes.native.offload_bundle import scan_offload  # noqa: E402
from tfcompat.probes.rootfs import Root  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(HERE), "tests", "fixtures")
SECTION_SEEDS = (  # nvcc-built (CUDA 13.0) and objcopy-built objects, and a raw fatbin
    "fatbin/libaxpy_sm75_sm90.so",
    "fatbin/libaxpy_compressed.so",
    "fatbin/libaxpy_suffixes.so",
    "fatbin/axpy.fatbin",
    "offload/libhipkernels.so",
)

INTERESTING_32 = (
    0,
    1,
    2,
    3,
    4,
    8,
    16,
    0x7F,
    0x80,
    0xFF,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
)
INTERESTING_64 = INTERESTING_32 + (2**32, 2**63 - 1, 2**63, 2**64 - 56, 2**64 - 2, 2**64 - 1)
NAMES = ("foo", "bar", "printf", "memcpy", "TF_LoadLibrary", "_ZN10tensorflow8OpKernelD2Ev", "")

C_SOURCE = """
#include <stdio.h>
#include <string.h>
#include <math.h>
int foo(const char *s) { return printf("%s", s); }
int bar(char *d, const char *s) { return (int)(strlen(strcpy(d, s))); }
double baz(double x) { return sqrt(x) + sin(x); }
__attribute__((weak)) int weak_thing(void);
int use_weak(void) { return weak_thing ? weak_thing() : 0; }
"""
CXX_SOURCE = """
#include <string>
#include <vector>
std::string joined(const std::vector<std::string>& v) { std::string s; for (auto& x : v) s += x; return s; }
extern "C" int TF_LoadLibrary(const char* p) { return (int)joined({p, "x"}).size(); }
"""


class CaseTimeout(Exception):
    pass


def _alarm(_sig, _frame):
    raise CaseTimeout()


# -- seeds -------------------------------------------------------------------------------------------------


def build_seeds(workdir: str) -> dict[str, list[bytes]]:
    elf: list[bytes] = []
    for flags, src, cxx in (
        (["-Wl,--hash-style=both", "-lm"], C_SOURCE, False),
        (["-Wl,--hash-style=gnu", "-lm"], C_SOURCE, False),
        (["-Wl,--hash-style=sysv", "-m32"], C_SOURCE, False),
        (["-Wl,--hash-style=both"], CXX_SOURCE, True),
    ):
        compiler = shutil.which("g++" if cxx else "gcc")
        if compiler is None:
            continue
        out = os.path.join(workdir, f"seed{len(elf)}.so")
        srcpath = out + (".cc" if cxx else ".c")
        with open(srcpath, "w") as fh:
            fh.write(src)
        proc = subprocess.run(
            [compiler, "-shared", "-fPIC", "-Wl,-soname,libseed.so", "-o", out, srcpath] + flags, capture_output=True
        )
        if proc.returncode == 0:
            with open(out, "rb") as fh:
                elf.append(fh.read())
    try:
        from elf_fixtures import build_so

        elf.append(
            build_so(
                "libtiny.so.1",
                needed=["libc.so.6", "libm.so.6"],
                rpath="$ORIGIN/../lib",
                runpath="/opt/x",
                version_needs={"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34"]},
                version_defs=["TINY_1.0", "TINY_2.0"],
            )
        )
        elf.append(
            build_so(
                "libtiny32.so",
                needed=["libc.so.6"],
                elf_class=32,
                little=False,
                version_needs={"libc.so.6": ["GLIBC_2.0"]},
            )
        )
    except ImportError:
        pass
    cache: list[bytes] = []
    for path in ("/etc/ld.so.cache",):
        try:
            with open(path, "rb") as fh:
                data = fh.read(8 << 20)
            cache.append(data)
        except OSError:
            pass
    sections: list[bytes] = []
    for rel in SECTION_SEEDS:
        try:
            with open(os.path.join(FIXTURES, rel), "rb") as fh:
                sections.append(fh.read())
        except OSError:
            pass
    return {"elf": elf, "ldcache": cache, "sections": sections}


# -- mutations -----------------------------------------------------------------------------------------------


def _struct_offsets(data: bytes) -> list[int]:
    """Offsets worth hitting: the ELF header, program headers and dynamic entries (parsed leniently)."""
    offs = list(range(0, min(64, len(data))))
    try:
        if data[:4] != b"\x7fELF":
            return offs
        e = "<" if data[5] == 1 else ">"
        if data[4] == 2:
            (phoff,) = struct.unpack_from(e + "Q", data, 32)
            phentsize, phnum = struct.unpack_from(e + "HH", data, 54)
        else:
            (phoff,) = struct.unpack_from(e + "I", data, 28)
            phentsize, phnum = struct.unpack_from(e + "HH", data, 42)
        is64 = data[4] == 2
        loads, dynamic = [], None
        for i in range(min(phnum, 64)):
            base = phoff + i * phentsize
            offs += range(base, min(base + phentsize, len(data)))
            (p_type,) = struct.unpack_from(e + "I", data, base)
            if is64:
                off, vaddr = struct.unpack_from(e + "QQ", data, base + 8)
                (size,) = struct.unpack_from(e + "Q", data, base + 32)
            else:
                off, vaddr = struct.unpack_from(e + "II", data, base + 4)
                (size,) = struct.unpack_from(e + "I", data, base + 16)
            if p_type == 1:
                loads.append((vaddr, off, size))
            elif p_type == 2:  # PT_DYNAMIC: every entry
                dynamic = (off, size)
                offs += range(off, min(off + size, len(data)))
        if dynamic:  # the tables the dynamic entries point at: hash, versions, symbols
            ent = struct.Struct(e + ("qQ" if is64 else "iI"))
            for pos in range(dynamic[0], min(dynamic[0] + dynamic[1], len(data) - ent.size + 1), ent.size):
                tag, val = ent.unpack_from(data, pos)
                if tag in (4, 6, 0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFC, 0x6FFFFFFE):
                    for vaddr, off, size in loads:
                        if vaddr <= val < vaddr + size:
                            start = val - vaddr + off
                            offs += range(start, min(start + 256, len(data)))
    except (struct.error, IndexError):
        pass
    return [o for o in offs if 0 <= o < len(data)]


def _section_offsets(workdir: str, data: bytes) -> list[int]:
    """The ELF structures, and the first 4 KiB of the .nv_fatbin / .hip_fatbin section (its headers)."""
    offs = _struct_offsets(data)
    path = os.path.join(workdir, "seed-section.so")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        with ElfFile(path) as elf:
            for name in (".nv_fatbin", ".hip_fatbin"):
                found = find_section(elf, name)
                if found:
                    offs += range(found[0], min(found[0] + min(found[1], 4096), len(data)))
    except ElfError:
        offs += range(min(len(data), 4096))  # the raw fatbin: its container and entry headers
    return offs


def mutate(rng: random.Random, data: bytes, hot: list[int]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5, 8))):
        if not buf:
            buf = bytearray(b"\x7fELF")
        op = rng.random()
        pos = rng.choice(hot) if hot and rng.random() < 0.7 else rng.randrange(len(buf))
        pos = min(pos, len(buf) - 1)
        if op < 0.25:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op < 0.40:
            buf[pos] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op < 0.60 and pos + 4 <= len(buf):
            struct.pack_into(rng.choice("<>") + "I", buf, pos, rng.choice(INTERESTING_32))
        elif op < 0.75 and pos + 8 <= len(buf):
            struct.pack_into(rng.choice("<>") + "Q", buf, pos, rng.choice(INTERESTING_64))
        elif op < 0.82:  # copy a chunk elsewhere (duplicated tables, self-referencing chains)
            src = rng.randrange(len(buf))
            n = rng.randrange(1, 64)
            chunk = buf[src : src + n]
            buf[pos : pos + len(chunk)] = chunk
        elif op < 0.88:  # truncate
            del buf[rng.randrange(len(buf)) :]
        elif op < 0.93:  # grow with garbage or a repeated pattern
            buf += (
                (bytes([rng.randrange(256)]) * rng.randrange(1, 4096))
                if rng.random() < 0.5
                else bytes(rng.randrange(256) for _ in range(rng.randrange(1, 256)))
            )
        else:  # zero a run
            n = rng.randrange(1, 256)
            buf[pos : pos + n] = bytes(min(n, len(buf) - pos))
    return bytes(buf)


# -- targets ---------------------------------------------------------------------------------------------------


def _outcome(fn):
    """What `fn` returns, or the ElfError message it raises (the reader's only error on a bad file)."""
    try:
        return ("ok", fn())
    except ElfError as exc:
        return ("error", str(exc))


def _same_as_lookup(elf: ElfFile, name: str, version: Optional[str]) -> None:
    """defines() answers, and fails, as the lookup() it stands for in custom_ops."""

    def by_lookup() -> bool:
        return any(s.defined and (version is None or s.version in (None, version)) for s in elf.lookup(name))

    assert _outcome(lambda: elf.defines(SymbolName(name), version)) == _outcome(by_lookup), (name, version)


def run_elf(path: str) -> None:
    clear_cache()
    try:
        read_elf(path)
    except ElfError:
        pass
    try:
        with ElfFile(path) as elf:
            for name in NAMES:
                try:
                    elf.lookup(name)
                except ElfError:
                    pass
                for version in (None, "GLIBC_2.2.5"):
                    _same_as_lookup(elf, name, version)
            assert _outcome(lambda: [(s.name, s.version) for s in undefined_symbols(elf)]) == _outcome(
                lambda: undefined_refs(elf)
            )
            for fn in (
                elf.symbol_count,
                getattr(elf, "build_id", lambda: None),
                lambda: undefined_symbols(elf),
                lambda: list(itertools.islice(elf.dynamic_symbols(), 2000)),
            ):
                try:
                    fn()
                except ElfError:
                    pass
    except ElfError:
        pass


def run_sections(path: str) -> None:
    """Both readers of GPU code: they catch what a damaged file gives and return problems; anything raised fails."""
    read_fatbins(path)
    scan_offload(Root(None), path)


def run_ldcache(data: bytes) -> None:
    try:
        parse_ld_cache(data)
    except LdCacheError:
        pass


# -- driver -----------------------------------------------------------------------------------------------------


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fuzz(
    mutations: int,
    seed: int,
    out: Optional[str],
    case_timeout: float = 5.0,
    max_rss: int = 1024,
    targets: tuple[str, ...] = ("elf", "ldcache"),
    report_every: int = 0,
    seeds: Optional[dict[str, list[bytes]]] = None,
) -> dict[str, object]:
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix="fuzz-elf-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    failures: list[dict[str, str]] = []
    counts = dict.fromkeys(targets, 0)
    slowest = (0.0, "")
    try:
        seeds = seeds or build_seeds(workdir)
        hot = {"elf": _struct_offsets, "sections": lambda s: _section_offsets(workdir, s)}
        pool = [(t, s, hot[t](s) if t in hot else []) for t in targets for s in seeds.get(t, [])]
        if not pool:
            raise SystemExit("no seeds (is gcc installed?)")
        case_path = os.path.join(workdir, "case.so")
        old = signal.signal(signal.SIGALRM, _alarm)
        start = time.monotonic()
        try:
            for i in range(mutations):
                target, base, hot = pool[i % len(pool)] if i < len(pool) else rng.choice(pool)
                # ld.so.cache: every 4th case (it is a much smaller surface)
                if len(targets) > 1 and i >= len(pool) and (i % 4 == 0) != (target == "ldcache"):
                    target, base, hot = rng.choice([p for p in pool if (p[0] == "ldcache") == (i % 4 == 0)] or pool)
                data = mutate(rng, base, hot) if i >= len(pool) else base
                counts[target] += 1
                t0 = time.monotonic()
                signal.setitimer(signal.ITIMER_REAL, case_timeout)
                try:
                    if target in ("elf", "sections"):
                        with open(case_path, "wb") as fh:
                            fh.write(data)
                        run_elf(case_path) if target == "elf" else run_sections(case_path)
                    else:
                        run_ldcache(data)
                    kind = None
                except CaseTimeout:
                    kind = f"timeout (> {case_timeout} s)"
                except MemoryError:
                    kind = "MemoryError"
                except Exception:  # noqa: BLE001 - this is what the fuzzer looks for
                    kind = traceback.format_exc(limit=4).strip().splitlines()[-1]
                    kind = (
                        kind
                        + " | "
                        + " / ".join(
                            line.strip()
                            for line in traceback.format_exc(limit=6).splitlines()
                            if line.strip().startswith("File")
                        )[-400:]
                    )
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                took = time.monotonic() - t0
                if took > slowest[0]:
                    slowest = (took, f"case {i} ({target})")
                if rss_mib() > max_rss and kind is None:
                    kind = f"peak RSS {rss_mib():.0f} MiB over {max_rss} MiB"
                if kind is not None:
                    entry = {"case": str(i), "target": target, "error": kind}
                    if out:
                        os.makedirs(out, exist_ok=True)
                        name = os.path.join(out, f"case-{i}.{'cache' if target == 'ldcache' else 'so'}")
                        with open(name, "wb") as fh:
                            fh.write(data)
                        entry["file"] = name
                    failures.append(entry)
                if report_every and (i + 1) % report_every == 0:
                    print(
                        f"{i + 1} cases, {time.monotonic() - start:.0f} s, {len(failures)} failures, "
                        f"peak RSS {rss_mib():.0f} MiB",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            signal.signal(signal.SIGALRM, old)
        elapsed = time.monotonic() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "mutations": mutations,
        "seed": seed,
        "by_target": counts,
        "seconds": round(elapsed, 1),
        "peak_rss_mib": round(rss_mib(), 1),
        "slowest_case_s": round(slowest[0], 3),
        "slowest_case": slowest[1],
        "failures": failures,
    }


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mutations", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="directory for failing inputs")
    ap.add_argument("--case-timeout", type=float, default=5.0)
    ap.add_argument("--max-rss", type=int, default=1024, help="MiB; also caps the address space at 4x")
    ap.add_argument("--target", choices=("elf", "ldcache", "both", "sections", "all"), default="both")
    ap.add_argument("--report-every", type=int, default=5000)
    args = ap.parse_args(argv)
    limit = args.max_rss * 4 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a blow-up becomes MemoryError, not the OOM killer
    both, every = ("elf", "ldcache"), ("elf", "ldcache", "sections")
    targets = both if args.target == "both" else every if args.target == "all" else (args.target,)
    result = fuzz(args.mutations, args.seed, args.out, args.case_timeout, args.max_rss, targets, args.report_every)
    print(json.dumps(result, indent=2))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
