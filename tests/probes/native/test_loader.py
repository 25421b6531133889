"""probes/loader.py: glibc's search order, step by step, on sysroots built in tmp_path."""

import os
import struct

import pytest
from elf_fixtures import link, write_so
from test_ldcache import new_cache_body, old_cache

from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.native.ldcache import parse_ld_cache
from tfcompat.probes.native.loader import (
    STEP_CACHE,
    STEP_DEFAULT,
    STEP_EXE_RPATH,
    STEP_LD_LIBRARY_PATH,
    STEP_LOADED,
    STEP_PRELOAD,
    STEP_PRELOAD_FILE,
    STEP_RPATH,
    STEP_RUNPATH,
    Loader,
    LoaderConfig,
    glibc_hwcaps,
)
from tfcompat.probes.rootfs import Root

X86_64 = 0x0303
DEFAULT = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def sysroot_loader(root, **kw) -> Loader:
    kw.setdefault("default_dirs", DEFAULT)
    return Loader(LoaderConfig(root=Root(str(root)), **kw))


def caller(loader, path):
    obj = loader.load_path(path, deps=False)
    assert obj is not None, path
    return obj


def test_default_dirs(tmp_path):
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    lk = sysroot_loader(tmp_path).lookup("libfoo.so.1")
    assert lk.ok and lk.winner.step == STEP_DEFAULT and lk.winner.path == "/usr/lib/libfoo.so.1"
    assert not sysroot_loader(tmp_path).lookup("libnone.so.1").ok


def test_cache_before_default_and_missing_cache_file(tmp_path):
    write_so(tmp_path / "opt/x/libfoo.so.1")
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    write_so(tmp_path / "lib/libgone.so.1")
    cache = parse_ld_cache(
        new_cache_body(
            [(X86_64, "libfoo.so.1", "/opt/x/libfoo.so.1", None), (X86_64, "libgone.so.1", "/opt/x/libgone.so.1", None)]
        )
    )
    loader = sysroot_loader(tmp_path, cache=cache)
    lk = loader.lookup("libfoo.so.1")
    assert lk.winner.step == STEP_CACHE and lk.winner.path == "/opt/x/libfoo.so.1"
    assert [c.path for c in lk.copies] == ["/opt/x/libfoo.so.1", "/usr/lib/libfoo.so.1"]
    # A cache entry whose file is gone: glibc goes on to the default dirs.
    assert loader.lookup("libgone.so.1").winner.path == "/lib/libgone.so.1"


def test_old_format_cache_is_used_too(tmp_path):
    write_so(tmp_path / "opt/y/libbar.so.2")
    loader = sysroot_loader(tmp_path, cache=parse_ld_cache(old_cache([(X86_64, "libbar.so.2", "/opt/y/libbar.so.2")])))
    assert loader.lookup("libbar.so.2").winner.step == STEP_CACHE


def test_runpath_with_origin_is_the_callers_unresolved_directory(tmp_path):
    write_so(tmp_path / "app/lib/libcaller.so", runpath="$ORIGIN/../deps")
    write_so(tmp_path / "app/deps/libdep.so.1")
    # the caller is reached through a symlinked directory: $ORIGIN is the path as opened, not resolved
    link(tmp_path / "linkdir/lib", "/app/lib")
    write_so(tmp_path / "linkdir/deps/libdep.so.1")
    loader = sysroot_loader(tmp_path)
    lk = loader.lookup("libdep.so.1", caller(loader, "/linkdir/lib/libcaller.so"))
    assert lk.winner.step == STEP_RUNPATH and lk.winner.written == "$ORIGIN/../deps"
    assert lk.winner.path == "/linkdir/lib/../deps/libdep.so.1"
    assert lk.winner.real == "/app/deps/libdep.so.1"  # '..' after the symlink: the kernel's semantics
    assert lk.winner.owner == "/linkdir/lib/libcaller.so"


def test_rpath_ignored_when_runpath_present(tmp_path):
    write_so(tmp_path / "a/libdep.so.1")
    write_so(tmp_path / "b/libdep.so.1")
    write_so(tmp_path / "c/libboth.so", rpath="/a", runpath="/b")
    write_so(tmp_path / "c/librponly.so", rpath="/a")
    loader = sysroot_loader(tmp_path)
    both = loader.lookup("libdep.so.1", caller(loader, "/c/libboth.so"))
    assert both.winner.path == "/b/libdep.so.1" and both.winner.step == STEP_RUNPATH
    assert "/a/libdep.so.1" not in [c.path for c in both.copies]  # DT_RPATH is not searched at all
    only = loader.lookup("libdep.so.1", caller(loader, "/c/librponly.so"))
    assert only.winner.path == "/a/libdep.so.1" and only.winner.step == STEP_RPATH


def test_rpath_is_inherited_runpath_is_not(tmp_path):
    write_so(tmp_path / "p/libdep.so.1")
    write_so(tmp_path / "usr/lib/libdep.so.1")
    write_so(tmp_path / "x/libparent_rpath.so", rpath="/p", needed=("libchild.so",))
    write_so(tmp_path / "x/libparent_runpath.so", runpath="/p", needed=("libchild.so",))
    write_so(tmp_path / "usr/lib/libchild.so")  # neither DT_RPATH nor DT_RUNPATH
    loader = sysroot_loader(tmp_path)
    parent = loader.load_path("/x/libparent_rpath.so")
    child = parent.deps["libchild.so"]
    assert child is not None and child.parent is parent
    lk = loader.lookup("libdep.so.1", child)
    assert (
        lk.winner.path == "/p/libdep.so.1"
        and lk.winner.step == STEP_RPATH
        and lk.winner.owner == "/x/libparent_rpath.so"
    )
    loader2 = sysroot_loader(tmp_path)
    parent2 = loader2.load_path("/x/libparent_runpath.so")
    child2 = parent2.deps["libchild.so"]
    lk2 = loader2.lookup("libdep.so.1", child2)
    assert lk2.winner.path == "/usr/lib/libdep.so.1" and lk2.winner.step == STEP_DEFAULT


def test_executable_rpath(tmp_path):
    write_so(tmp_path / "exe-rpath/libdep.so.1")
    write_so(tmp_path / "usr/bin/python", soname=None, rpath="$ORIGIN/../../exe-rpath", e_type=2)
    write_so(tmp_path / "plug/libplugin.so")
    write_so(tmp_path / "plug/libwithrunpath.so", runpath="/nowhere")
    loader = sysroot_loader(tmp_path, executable="/usr/bin/python")
    assert loader.load_executable() is not None
    lk = loader.lookup("libdep.so.1", caller(loader, "/plug/libplugin.so"))
    assert lk.winner.step == STEP_EXE_RPATH and lk.winner.real == "/exe-rpath/libdep.so.1"
    # ... but not for a caller with DT_RUNPATH
    assert not loader.lookup("libdep.so.1", caller(loader, "/plug/libwithrunpath.so")).ok


def test_ld_library_path_between_rpath_and_runpath(tmp_path, monkeypatch):
    base = str(tmp_path)
    for d in ("llp", "rp", "run", "cwd"):
        write_so(tmp_path / d / "libdep.so.1")
    write_so(tmp_path / "c/librunpath.so", runpath=f"{base}/run")
    write_so(tmp_path / "c/librpath.so", rpath=f"{base}/rp")
    cfg = LoaderConfig(
        root=Root(None), ld_library_path=(f"{base}/nothing", f"{base}/llp"), default_dirs=(), cwd=f"{base}/cwd"
    )
    loader = Loader(cfg)
    lk = loader.lookup("libdep.so.1", caller(loader, f"{base}/c/librunpath.so"))
    assert lk.winner.step == STEP_LD_LIBRARY_PATH and lk.winner.path == f"{base}/llp/libdep.so.1"
    assert [c.step for c in lk.copies] == [STEP_LD_LIBRARY_PATH, STEP_RUNPATH]
    lk = loader.lookup("libdep.so.1", caller(loader, f"{base}/c/librpath.so"))
    assert lk.winner.step == STEP_RPATH
    # an empty element is the working directory
    loader = Loader(LoaderConfig(root=Root(None), ld_library_path=("",), default_dirs=(), cwd=f"{base}/cwd"))
    assert loader.lookup("libdep.so.1").winner.path == f"{base}/cwd/libdep.so.1"


def test_host_environment_is_ignored_under_root(tmp_path):
    env = {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "LD_PRELOAD": "/x/libevil.so"}
    cfg = LoaderConfig.detect(Root(str(tmp_path)), environ=env)
    assert cfg.ld_library_path == () and cfg.ld_preload == () and cfg.cwd is None
    host = LoaderConfig.detect(Root(None), environ=env)
    assert host.ld_library_path == ("/usr/local/cuda/lib64",) and host.ld_preload == ("/x/libevil.so",)


def test_preload_wins_as_already_loaded(tmp_path):
    write_so(tmp_path / "usr/bin/python", soname=None, e_type=2)
    write_so(tmp_path / "pre/libfoo.so.1")
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    write_so(tmp_path / "usr/lib/libbar.so.1")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/ld.so.preload").write_text("libbar.so.1\n")
    cfg = LoaderConfig.detect(Root(str(tmp_path)), executable="/usr/bin/python")
    assert cfg.preload_file == ("libbar.so.1",)
    cfg = LoaderConfig(**{**cfg.__dict__, "ld_preload": ("/pre/libfoo.so.1",), "default_dirs": DEFAULT})
    loader = Loader(cfg)
    loader.load_executable()
    lk = loader.lookup("libfoo.so.1")
    assert lk.already_loaded and lk.winner.step == STEP_LOADED and lk.winner.path == "/pre/libfoo.so.1"
    assert [c.path for c in lk.copies] == ["/pre/libfoo.so.1", "/usr/lib/libfoo.so.1"]
    assert loader.loaded["libfoo.so.1"].step == STEP_PRELOAD
    assert loader.loaded["libbar.so.1"].step == STEP_PRELOAD_FILE


def test_already_loaded_matches_by_soname(tmp_path):
    write_so(tmp_path / "usr/bin/python", soname=None, needed=("libfoo.so.1",), e_type=2)
    write_so(tmp_path / "usr/lib/libfoo.so.1.2.3", soname="libfoo.so.1")
    link(tmp_path / "usr/lib/libfoo.so.1", "libfoo.so.1.2.3")
    write_so(tmp_path / "venv/lib/libfoo.so.1")
    write_so(tmp_path / "venv/libtf.so", runpath="$ORIGIN/lib")
    loader = sysroot_loader(tmp_path, executable="/usr/bin/python")
    exe = loader.load_executable()
    assert exe.deps["libfoo.so.1"].real == "/usr/lib/libfoo.so.1.2.3"
    lk = loader.lookup("libfoo.so.1", caller(loader, "/venv/libtf.so"))
    assert lk.already_loaded and lk.winner.real == "/usr/lib/libfoo.so.1.2.3"
    assert "/venv/lib/libfoo.so.1" in [c.path for c in lk.copies]  # the shadowed copy is reported


def test_glibc_hwcaps_subdirectories(tmp_path):
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    write_so(tmp_path / "usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1")
    write_so(tmp_path / "usr/lib/glibc-hwcaps/x86-64-v4/libfoo.so.1")
    v3 = sysroot_loader(tmp_path, hwcaps=("x86-64-v3", "x86-64-v2")).lookup("libfoo.so.1")
    assert v3.winner.path == "/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1" and v3.winner.hwcaps == "x86-64-v3"
    assert [c.path for c in v3.copies] == ["/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1", "/usr/lib/libfoo.so.1"]
    plain = sysroot_loader(tmp_path).lookup("libfoo.so.1")
    assert plain.winner.path == "/usr/lib/libfoo.so.1"


def test_hwcaps_levels_from_cpu_flags():
    v2 = ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3")
    v3 = v2 + ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
    assert glibc_hwcaps("x86_64", v2) == ("x86-64-v2",)
    assert glibc_hwcaps("x86_64", v3) == ("x86-64-v3", "x86-64-v2")
    assert glibc_hwcaps("x86_64", v3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"))[0] == "x86-64-v4"
    assert glibc_hwcaps("x86_64", ("sse2",)) == ()
    assert glibc_hwcaps("aarch64", v3) == ()


def test_lib_and_platform_tokens(tmp_path):
    write_so(tmp_path / "opt/lib64/x86_64/libtok.so.1")
    write_so(tmp_path / "opt/c/libc1.so", runpath="/opt/$LIB/${PLATFORM}")
    loader = sysroot_loader(tmp_path, lib_token="lib64", platform_token="x86_64")
    lk = loader.lookup("libtok.so.1", caller(loader, "/opt/c/libc1.so"))
    assert lk.ok and lk.winner.real == "/opt/lib64/x86_64/libtok.so.1"


def test_other_elf_class_is_skipped_non_elf_is_fatal(tmp_path):
    write_so(tmp_path / "first/libfoo.so.1", elf_class=32, machine=3)
    write_so(tmp_path / "second/libfoo.so.1")
    write_so(tmp_path / "c/libc32.so", runpath="/first:/second")
    loader = sysroot_loader(tmp_path)
    lk = loader.lookup("libfoo.so.1", caller(loader, "/c/libc32.so"))
    assert lk.winner.path == "/second/libfoo.so.1" and lk.ok
    skipped = [c for c in lk.copies if c.problem]
    assert skipped and "32-bit" in skipped[0].problem and not skipped[0].fatal
    # another machine is skipped the same way
    write_so(tmp_path / "arm/libbar.so.1", machine=183)
    write_so(tmp_path / "usr/lib/libbar.so.1")
    write_so(tmp_path / "c/libarm.so", runpath="/arm")
    loader = sysroot_loader(tmp_path)
    lk = loader.lookup("libbar.so.1", caller(loader, "/c/libarm.so"))
    assert lk.winner.path == "/usr/lib/libbar.so.1"
    # a file that is not ELF stops the search with an error, as glibc does ("invalid ELF header")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/libbaz.so.1").write_text("INPUT(libbaz.so.1.0)\n")
    write_so(tmp_path / "usr/lib/libbaz.so.1")
    write_so(tmp_path / "c/libbad.so", runpath="/bad")
    loader = sysroot_loader(tmp_path)
    lk = loader.lookup("libbaz.so.1", caller(loader, "/c/libbad.so"))
    assert not lk.ok and lk.winner.fatal and "invalid ELF header" in lk.winner.problem


def test_dangling_symlink_is_skipped(tmp_path):
    link(tmp_path / "first/libfoo.so.1", "libfoo.so.1.0.0")  # target missing
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    write_so(tmp_path / "c/libc.so", runpath="/first")
    loader = sysroot_loader(tmp_path)
    assert loader.lookup("libfoo.so.1", caller(loader, "/c/libc.so")).winner.path == "/usr/lib/libfoo.so.1"


def test_symlink_pointing_outside_the_root_stays_inside(tmp_path):
    root = tmp_path / "img"
    host = tmp_path / "host"
    write_so(host / "libcudnn.so.9")  # exists on the host only
    link(root / "usr/lib/libcudnn.so.9", str(host / "libcudnn.so.9"))  # absolute: re-anchored in the root
    link(root / "usr/lib/x86_64-linux-gnu/libcudnn.so.9", "../../../../../../../../" + str(host / "libcudnn.so.9"))
    loader = sysroot_loader(root)
    lk = loader.lookup("libcudnn.so.9")
    assert not lk.ok and lk.copies == ()
    # the same path inside the image is what the loader gets
    write_so(root / str(host / "libcudnn.so.9").lstrip("/"))
    lk = sysroot_loader(root).lookup("libcudnn.so.9")
    assert lk.ok and lk.winner.real == str(host / "libcudnn.so.9")  # inside-root path
    assert lk.winner.host_path.startswith(str(root) + "/")


def test_nodeflib_skips_default_dirs_and_their_cache_entries(tmp_path):
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    write_so(tmp_path / "c/libnodef.so", flags_1=0x800)
    cache = parse_ld_cache(new_cache_body([(X86_64, "libfoo.so.1", "/usr/lib/libfoo.so.1", None)]))
    loader = sysroot_loader(tmp_path, cache=cache)
    assert not loader.lookup("libfoo.so.1", caller(loader, "/c/libnodef.so")).ok
    assert loader.lookup("libfoo.so.1").ok


def test_needed_closure_and_missing_dependencies(tmp_path):
    write_so(
        tmp_path / "nv/cusolver/lib/libcusolver.so.11",
        needed=("libnvJitLink.so.12", "libcublas.so.12"),
        runpath="$ORIGIN:$ORIGIN/../../cublas/lib",
    )
    write_so(tmp_path / "nv/cublas/lib/libcublas.so.12", needed=("libcublasLt.so.12",), runpath="$ORIGIN")
    write_so(tmp_path / "nv/cublas/lib/libcublasLt.so.12")
    write_so(tmp_path / "tf/libtf.so", runpath="$ORIGIN/../nv/cusolver/lib")
    loader = sysroot_loader(tmp_path)
    lk, obj = loader.load("libcusolver.so.11", caller(loader, "/tf/libtf.so"))
    assert lk.ok and obj is not None
    assert obj.deps["libcublas.so.12"].deps["libcublasLt.so.12"].step == STEP_RUNPATH
    assert loader.missing_deps(obj) == [("libnvJitLink.so.12", "/nv/cusolver/lib/libcusolver.so.11")]
    # libcublasLt is now loaded: a later dlopen gets that copy whatever the caller's path
    assert loader.lookup("libcublasLt.so.12", caller(loader, "/tf/libtf.so")).already_loaded


def test_repeated_runpath_entries_are_searched_once(tmp_path):
    write_so(tmp_path / "d/libdep.so.1")
    write_so(tmp_path / "c/librep.so", runpath=":".join(["$ORIGIN/../d"] * 300 + ["$ORIGIN/../e"] * 300))
    loader = sysroot_loader(tmp_path)
    lk = loader.lookup("libdep.so.1", caller(loader, "/c/librep.so"))
    assert [sd.written for sd in lk.searched if sd.step == STEP_RUNPATH] == ["$ORIGIN/../d", "$ORIGIN/../e"]


def test_detect_default_dirs_from_libc(tmp_path):
    debian = tmp_path / "deb"
    write_so(debian / "lib/x86_64-linux-gnu/libc.so.6")
    cfg = LoaderConfig.detect(Root(str(debian)))
    assert cfg.default_dirs == DEFAULT and cfg.lib_token == "lib/x86_64-linux-gnu"
    fedora = tmp_path / "fed"
    write_so(fedora / "usr/lib64/libc.so.6")
    link(fedora / "lib64", "usr/lib64")
    cfg = LoaderConfig.detect(Root(str(fedora)))
    assert cfg.default_dirs == ("/lib64", "/usr/lib64") and cfg.lib_token == "lib64"
    assert cfg.cache is None and "no /etc/ld.so.cache" in cfg.cache_problem


def test_corrupt_cache_is_a_reason_not_a_crash(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/ld.so.cache").write_bytes(b"glibc-ld.so.cache1.1" + struct.pack("<I", 99))
    cfg = LoaderConfig.detect(Root(str(tmp_path)))
    assert cfg.cache is None and "unreadable ld.so.cache" in cfg.cache_problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped(tmp_path):
    p = write_so(tmp_path / "first/libfoo.so.1")
    os.chmod(p, 0)
    write_so(tmp_path / "usr/lib/libfoo.so.1")
    write_so(tmp_path / "c/libc.so", runpath="/first")
    loader = sysroot_loader(tmp_path)
    lk = loader.lookup("libfoo.so.1", caller(loader, "/c/libc.so"))
    assert lk.winner.path == "/usr/lib/libfoo.so.1" and "permission denied" in lk.copies[1].problem


def test_ld_library_path_origin_in_braces_is_the_executables_dir(tmp_path):
    base = str(tmp_path)
    write_so(tmp_path / "app/bin/python", soname=None, e_type=2)
    write_so(tmp_path / "app/lib/libdep.so.1")
    for element in ("$ORIGIN/../lib", "${ORIGIN}/../lib"):
        loader = Loader(
            LoaderConfig(
                root=Root(None),
                ld_library_path=(element,),
                default_dirs=(),
                executable=f"{base}/app/bin/python",
                cwd=base,
            )
        )
        loader.load_executable()
        lk = loader.lookup("libdep.so.1", loader.executable)
        assert lk.winner is not None and lk.winner.path.endswith("/app/bin/../lib/libdep.so.1"), element
