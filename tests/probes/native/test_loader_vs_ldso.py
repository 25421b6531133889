"""The loader model against the real ld.so, in the default suite: gcc builds a tiny program and shared objects
with RUNPATH / RPATH / DT_NEEDED chains in tmp_path; ld.so lists what it would load (LD_TRACE_LOADED_OBJECTS,
what `ldd` and `ld.so --list` use) in a child process; the model (tfcompat.probes.native.loader) must pick the same files.

Each scenario is one rule of glibc's search order (dl-load.c, _dl_map_object) that a wrong model gets wrong:
DT_RPATH of the executable is inherited by the whole chain and beats LD_LIBRARY_PATH; DT_RUNPATH applies to the
object's own DT_NEEDED only and loses to LD_LIBRARY_PATH; $ORIGIN is the directory of the object that asks."""

import os
import re
import subprocess
import sys

import pytest
from elf_fixtures import GCC, gcc_so

from tfcompat.probes.native.loader import Loader, LoaderConfig
from tfcompat.probes.rootfs import Root

pytestmark = [
    pytest.mark.needs_tool("gcc"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ld.so is Linux's loader"),
]

TRACE = re.compile(r"^\s*(\S+) => (\S+) \(0x[0-9a-f]+\)$")


def lib(path, needed=(), flags=(), body=None):
    """A shared object at `path` (soname = file name) that calls each of its `needed` libraries."""
    name = os.path.basename(path).split(".so")[0][3:]
    calls = "".join(f"int {n}_fn(void); " for n in needed)
    uses = " + ".join(f"{n}_fn()" for n in needed) or "0"
    links = []
    for n in needed:
        links += ["-L" + os.path.dirname(path), f"-l:lib{n}.so.1"]
    src = body or f"{calls}int {name}_fn(void) {{ return 1 + {uses}; }}\n"
    return gcc_so(path, src, soname=os.path.basename(path), flags=["-Wl,--no-as-needed", *links, *flags])


def program(path, needed, flags=()):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    src = path + ".c"
    calls = "".join(f"int {n}_fn(void); " for n in needed)
    with open(src, "w") as fh:
        fh.write(f"{calls}int main(void) {{ return {' + '.join(f'{n}_fn()' for n in needed)} > 0 ? 0 : 1; }}\n")
    cmd = [GCC, "-o", path, src, "-Wl,--no-as-needed", *flags]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def ldso(exe, ld_library_path=None):
    """{soname: real path} of what ld.so loads for `exe` (only our tmp_path objects)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    env["LD_TRACE_LOADED_OBJECTS"] = "1"
    if ld_library_path is not None:
        env["LD_LIBRARY_PATH"] = ld_library_path
    out = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=30).stdout
    got = {}
    for line in out.splitlines():
        m = TRACE.match(line)
        if m and m.group(1).startswith("lib") and "not found" not in line:
            got[m.group(1)] = os.path.realpath(m.group(2))
        elif "=> not found" in line:
            got[line.split()[0]] = None
    return got


def model(exe, ld_library_path=None):
    environ = {"LD_LIBRARY_PATH": ld_library_path} if ld_library_path is not None else {}
    loader = Loader(LoaderConfig.detect(Root(None), environ=environ, executable=exe))
    main = loader.load_executable()
    assert main is not None
    got, queue, seen = {}, [main], set()
    while queue:
        obj = queue.pop(0)
        for name, dep in obj.deps.items():
            got.setdefault(name, os.path.realpath(dep.host_path) if dep is not None else None)
            if dep is not None and id(dep) not in seen:
                seen.add(id(dep))
                queue.append(dep)
    return got


def ours(mapping, base):
    return {k: v for k, v in mapping.items() if v is None or v.startswith(os.path.realpath(base))}


def compare(exe, base, ld_library_path=None):
    real, modelled = ours(ldso(exe, ld_library_path), base), ours(model(exe, ld_library_path), base)
    assert real, "ld.so listed none of the fixture libraries"
    assert modelled == real
    return real


def test_runpath_chain_with_origin(tmp_path):
    """exe RUNPATH $ORIGIN/../lib -> liba; liba RUNPATH $ORIGIN/b -> libb; a decoy libb beside liba is not used
    (RUNPATH is not inherited: liba's own RUNPATH decides)."""
    b = lib(tmp_path / "app" / "lib" / "b" / "libb.so.1")
    lib(tmp_path / "app" / "lib" / "libb.so.1", body="int b_fn(void) { return 99; }\n")  # decoy
    lib(
        tmp_path / "app" / "lib" / "liba.so.1",
        needed=["b"],
        flags=["-L" + os.path.dirname(b), "-Wl,--enable-new-dtags,-rpath,$ORIGIN/b"],
    )
    exe = program(
        tmp_path / "app" / "bin" / "main",
        ["a"],
        ["-L" + str(tmp_path / "app" / "lib"), "-l:liba.so.1", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"],
    )
    real = compare(exe, tmp_path)
    assert real["libb.so.1"] == os.path.realpath(b)


def test_rpath_is_inherited_and_beats_ld_library_path(tmp_path):
    """exe DT_RPATH $ORIGIN/../rlib -> libc1 -> libd (no path of its own): both come from rlib, through the
    executable's RPATH, although LD_LIBRARY_PATH names a directory with copies of both."""
    rlib, decoys = tmp_path / "rlib", tmp_path / "llp"
    lib(rlib / "libd.so.1")
    lib(rlib / "libc1.so.1", needed=["d"])
    lib(decoys / "libd.so.1", body="int d_fn(void) { return 7; }\n")
    lib(decoys / "libc1.so.1", body="int c1_fn(void) { return 7; }\n")
    exe = program(
        tmp_path / "bin" / "main",
        ["c1"],
        ["-L" + str(rlib), "-l:libc1.so.1", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../rlib"],
    )
    real = compare(exe, tmp_path, ld_library_path=str(decoys))
    assert real == {
        "libc1.so.1": os.path.realpath(rlib / "libc1.so.1"),
        "libd.so.1": os.path.realpath(rlib / "libd.so.1"),
    }


def test_ld_library_path_beats_runpath(tmp_path):
    own, llp = tmp_path / "own", tmp_path / "llp"
    lib(own / "libe.so.1")
    lib(llp / "libe.so.1", body="int e_fn(void) { return 3; }\n")
    exe = program(
        tmp_path / "bin" / "main", ["e"], ["-L" + str(own), "-l:libe.so.1", "-Wl,--enable-new-dtags,-rpath," + str(own)]
    )
    assert compare(exe, tmp_path)["libe.so.1"] == os.path.realpath(own / "libe.so.1")
    assert compare(exe, tmp_path, ld_library_path=str(llp))["libe.so.1"] == os.path.realpath(llp / "libe.so.1")


def test_runpath_of_the_executable_does_not_reach_a_dependency_of_a_dependency(tmp_path):
    """exe RUNPATH dir -> libf (no path of its own) -> libg, which is only in dir: ld.so does not find libg."""
    d = tmp_path / "dir"
    lib(d / "libg.so.1")
    lib(d / "libf.so.1", needed=["g"])
    exe = program(
        tmp_path / "bin" / "main",
        ["f"],
        ["-L" + str(d), "-l:libf.so.1", "-Wl,-rpath-link," + str(d), "-Wl,--enable-new-dtags,-rpath," + str(d)],
    )
    real = compare(exe, tmp_path)
    assert real == {"libf.so.1": os.path.realpath(d / "libf.so.1"), "libg.so.1": None}


def test_the_same_soname_is_loaded_once(tmp_path):
    """Two objects need libh; the first lookup's copy is reused for the second, whatever its own RUNPATH says."""
    one, two = tmp_path / "one", tmp_path / "two"
    lib(one / "libh.so.1")
    lib(two / "libh.so.1", body="int h_fn(void) { return 5; }\n")
    lib(one / "libi.so.1", needed=["h"], flags=["-Wl,--enable-new-dtags,-rpath,$ORIGIN"])
    lib(two / "libj.so.1", needed=["h"], flags=["-Wl,--enable-new-dtags,-rpath,$ORIGIN"])
    exe = program(
        tmp_path / "bin" / "main",
        ["i", "j"],
        [
            "-L" + str(one),
            "-l:libi.so.1",
            "-L" + str(two),
            "-l:libj.so.1",
            "-Wl,--enable-new-dtags,-rpath," + f"{one}:{two}",
        ],
    )
    real = compare(exe, tmp_path)
    assert real["libh.so.1"] == os.path.realpath(one / "libh.so.1")
