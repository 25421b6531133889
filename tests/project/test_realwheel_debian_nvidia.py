"""The driver and CUDA-library probes on Debian's real NVIDIA packages (no GPU needed). Opt-in (~600 MB of .debs).

Debian 12 (bookworm) with the ``contrib non-free`` components; never installed, only downloaded:

    mkdir /tmp/debs && cd /tmp/debs && apt-get download libcuda1 libnvidia-ml1 libnvidia-ptxjitcompiler1 \\
        libcudart11.0 libcublas11 libcublaslt11 libcufft10 libcurand10 libcusolver11 libcusparse11 \\
        libcupti11.8 libcupti-dev libc6 libstdc++6 libgcc-s1 base-files \\
        libnvidia-tesla-470-cuda1 libnvidia-tesla-470-ml1 libnvidia-tesla-470-ptxjitcompiler1
    TFCOMPAT_DEBIAN_NVIDIA_DEBS=/tmp/debs python -m pytest -m realwheel tests/project/test_realwheel_debian_nvidia.py

Packages read 2026-12-08: libcuda1, libnvidia-ml1, libnvidia-ptxjitcompiler1 535.261.03-1; the tesla-470 ones
470.256.02-1~deb12u1; libcudart11.0 11.8.89~11.8.0-5~deb12u1, libcublas11/libcublaslt11 11.11.3.6~11.8.0-5~deb12u1,
libcufft10 11.1.1+~10.9.0.58~11.8.0-5~deb12u1, libcurand10 11.1.1+~10.3.0.86~11.8.0-5~deb12u1, libcusolver11
11.4.1.48~11.8.0-5~deb12u1, libcusparse11 11.7.5.86~11.8.0-5~deb12u1, libcupti11.8/libcupti-dev
11.8.87~11.8.0-5~deb12u1, libc6 2.36-9+deb12u14, libstdc++6/libgcc-s1 12.2.0-14+deb12u1, base-files 12.4+deb12u15.
bookworm has no libnccl2 and no cuDNN library package (nvidia-cudnn is a download script).

The root is what those packages install, as dpkg and nvidia-alternative's postinst leave it: merged /usr, the
driver in /usr/lib/x86_64-linux-gnu/nvidia/current (or tesla-470) reached through absolute /etc/alternatives
links, an ld.so.cache from the real ``ldconfig -r``, the kernel module's /proc/driver/nvidia/version, and a gcc-built
TensorFlow stand-in of the CUDA that libcudart names. Every expectation is read from the packages' files (file names,
``readelf`` SONAMEs, ``ldconfig -p``), not from this docstring; as root, glibc itself loads every library in a
chroot (LD_DEBUG=libs) and must open the files tfcompat predicts.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest

DEBS = os.environ.get("TFCOMPAT_DEBIAN_NVIDIA_DEBS")
TOOLS = ("dpkg-deb", "readelf", "ldconfig")

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(not DEBS, reason="set TFCOMPAT_DEBIAN_NVIDIA_DEBS to a directory of Debian's NVIDIA .debs"),
    pytest.mark.skipif(
        not all(shutil.which(t) or os.path.exists(f"/sbin/{t}") for t in TOOLS), reason="needs " + ", ".join(TOOLS)
    ),
]

LIB = "/usr/lib/x86_64-linux-gnu"
SITE = "/opt/venv/lib/python3.11/site-packages"
PTX = "libnvidia-ptxjitcompiler.so.1"
PROC = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Sat Jun 14 15:37:00 UTC 2025\n"


def _tool(name: str) -> str:
    return shutil.which(name) or f"/sbin/{name}"


def _soname(path: str):
    out = subprocess.run([_tool("readelf"), "-dW", path], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return m.group(1) if m else None


def _merge(stage: str, root: str) -> None:
    """Copy an extracted package into `root` as dpkg does on merged /usr (/lib/... lands in /usr/lib/...)."""
    for dirpath, dirnames, filenames in os.walk(stage):
        rel = os.path.relpath(dirpath, stage)
        if rel == "usr/share" or rel.startswith("usr/share/"):
            continue
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            src = os.path.join(dirpath, name)
            dest_rel = os.path.normpath(os.path.join(rel, name))
            dest_rel = re.sub(r"^lib(64)?/", r"usr/lib\1/", dest_rel)
            dest = os.path.join(root, dest_rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.lexists(dest):
                os.unlink(dest)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dest)
            else:
                os.link(src, dest)


class DebRoot:
    def __init__(self, root: str, flavours: dict, cuda_files: dict):
        self.root = root
        self.flavours = flavours  # "current" / "tesla-470" -> driver version (its libcuda's file name)
        self.cuda_files = cuda_files  # SONAME -> inside-root real file, every CUDA library the debs ship

    def point(self, flavour: str, module: str) -> None:
        """nvidia-alternative's links for `flavour`, /proc's kernel module `module`, a fresh ld.so.cache."""
        for name in ("libcuda.so.1", "libcuda.so", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1"):
            alt = f"/etc/alternatives/nvidia--{name}-x86_64-linux-gnu"
            for link, target in ((alt, f"{LIB}/nvidia/{flavour}/{name}"), (f"{LIB}/{name}", alt)):
                if os.path.lexists(self.root + link):
                    os.unlink(self.root + link)
                os.makedirs(os.path.dirname(self.root + link), exist_ok=True)
                os.symlink(target, self.root + link)
        os.makedirs(f"{self.root}/proc/driver/nvidia", exist_ok=True)
        with open(f"{self.root}/proc/driver/nvidia/version", "w") as fh:
            fh.write(PROC.format(module) + "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14+deb12u1) \n")
        subprocess.run([_tool("ldconfig"), "-r", self.root], check=True, capture_output=True)

    def cache(self) -> dict:
        """soname -> path, as the real ldconfig prints the root's cache."""
        out = subprocess.run(
            [_tool("ldconfig"), "-r", self.root, "-p"], capture_output=True, text=True, check=True
        ).stdout
        return dict(re.findall(r"^\s+(\S+) \(libc6,x86-64\) => (\S+)$", out, re.M))


@pytest.fixture(scope="module")
def debroot(tmp_path_factory):
    debs = sorted(glob.glob(os.path.join(DEBS or "", "*.deb")))
    base = tmp_path_factory.mktemp("debian")
    root = str(base / "root")
    os.makedirs(f"{root}/usr/lib64")
    os.symlink("usr/lib", f"{root}/lib")
    os.symlink("usr/lib64", f"{root}/lib64")
    for deb in debs:
        if os.path.basename(deb).startswith(("nvidia-alternative", "nvidia-tesla-470-alternative")):
            continue  # its postinst makes the links; point() writes them
        stage = str(base / os.path.basename(deb))
        subprocess.run([_tool("dpkg-deb"), "-x", deb, stage], check=True)
        _merge(stage, root)
    with open(f"{root}/etc/ld.so.conf", "w") as fh:
        fh.write("include /etc/ld.so.conf.d/*.conf\n\n")  # libc-bin's
    flavours = {}
    for d in glob.glob(f"{root}{LIB}/nvidia/*/"):
        real = [
            f for f in os.listdir(d) if re.fullmatch(r"libcuda\.so\.\d+\.\d+\.\d+", f) and not os.path.islink(d + f)
        ]
        if real:
            flavours[os.path.basename(d.rstrip("/"))] = real[0][len("libcuda.so.") :]
    if "current" not in flavours:
        pytest.skip("no libcuda1 among the .debs")
    cuda_files = {}
    for f in sorted(os.listdir(root + LIB)):
        path = f"{root}{LIB}/{f}"
        if re.match(
            r"lib(cudart|cublas|cublasLt|cufft|curand|cusolver|cusparse|cupti)\.so\.\d", f
        ) and not os.path.islink(path):
            cuda_files[_soname(path)] = f"{LIB}/{f}"
    if not any(s.startswith("libcudart.so.") for s in cuda_files):
        pytest.skip("no libcudart among the .debs")
    _tensorflow(root, cuda_files)
    return DebRoot(root, flavours, cuda_files)


def _cuda_of(cuda_files: dict) -> str:
    """The CUDA release of the packaged runtime: libcudart.so.11.8.89 -> 11.8."""
    real = next(v for s, v in cuda_files.items() if s.startswith("libcudart.so."))
    return ".".join(real.rsplit("libcudart.so.", 1)[1].split(".")[:2])


def _newest_tf(cuda_major: int, cuda: str = "") -> tuple[str, str]:
    """(release, its CUDA) of the newest TensorFlow the matrix lists built with `cuda` (or any of `cuda_major`)."""
    from packaging.version import Version

    from tfcompat.matrix import load_matrix

    rels = [
        (r, str(e.cuda))
        for e in load_matrix().tensorflow
        for r in e.releases
        if e.cuda is not None and e.cuda.major == cuda_major and (not cuda or str(e.cuda) == cuda)
    ]
    return max(rels, key=lambda x: Version(x[0]))


def _tensorflow(root: str, cuda_files: dict) -> None:
    """One stand-in per scenario: the newest release built with the packaged CUDA, and one of CUDA 12 (which
    looks for libcupti.so.12, then libcupti.so)."""
    from elf_fixtures import write_so
    from legacy_tree import build_info_text, gcc_framework
    from probe_helpers import make_dist, write

    cuda = _cuda_of(cuda_files)
    for site, (version, built) in (
        (SITE, _newest_tf(int(cuda.split(".")[0]), cuda)),
        (SITE.replace("/venv/", "/venv12/"), _newest_tf(12)),
    ):
        s = root + site
        make_dist(s, "tensorflow", version, wheel_tags=("cp311-cp311-manylinux_2_17_x86_64",))
        write(f"{s}/tensorflow/__init__.py", f'__version__ = "{version}"\n')
        write(f"{s}/tensorflow/python/platform/build_info.py", build_info_text(version, built, 8, ("sm_70",)))
        gcc_framework(f"{s}/tensorflow/libtensorflow_framework.so.2", ("libstdc++.so.6", "libm.so.6", "libc.so.6"))
        write_so(
            f"{s}/tensorflow/python/_pywrap_tensorflow_internal.so",
            soname="_pywrap_tensorflow_internal.so",
            needed=("libtensorflow_framework.so.2", "libstdc++.so.6", "libc.so.6"),
            rpath="$ORIGIN/:$ORIGIN/..",
        )


def _check(d: DebRoot, site: str = SITE):
    from tfcompat.matrix import load_matrix
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    env = scan(TargetSpec(root=d.root, site_packages=(site,)), nvml=False, environ={})
    return env, evaluate(env, load_matrix())


def test_driver_version_and_libraries_from_the_packages(debroot):
    d = debroot
    version = d.flavours["current"]
    d.point("current", version)
    for stem, soname in (("libcuda.so", "libcuda.so.1"), ("libnvidia-ml.so", "libnvidia-ml.so.1")):
        real = f"{d.root}{LIB}/nvidia/current/{stem}.{version}"
        assert _soname(real) == soname  # the SONAME the loader and tfcompat look for
        with open(real, "rb") as fh:  # the file name's version is the driver's own string in the file
            assert b"\0" + version.encode() + b"\0" in fh.read()
    # libcuda dlopen()s the PTX JIT compiler by its SONAME (a string in the file, not DT_NEEDED); its real file is
    # named by the driver's version too (it holds no version string of its own)
    real_cuda = f"{d.root}{LIB}/nvidia/current/libcuda.so.{version}"
    dyn = subprocess.run([_tool("readelf"), "-dW", real_cuda], capture_output=True, text=True, check=True).stdout
    with open(real_cuda, "rb") as fh:
        assert b"\0libnvidia-ptxjitcompiler.so.1\0" in fh.read()
    assert "ptxjitcompiler" not in dyn
    assert _soname(f"{d.root}{LIB}/nvidia/current/libnvidia-ptxjitcompiler.so.{version}") == PTX
    env, report = _check(d)
    drv = env.host.driver
    assert drv is not None and drv.kernel_module_version == version
    libs = {lib.soname: lib for lib in drv.libraries}
    for stem, soname in (
        ("libcuda.so", "libcuda.so.1"),
        ("libnvidia-ml.so", "libnvidia-ml.so.1"),
        ("libnvidia-ptxjitcompiler.so", PTX),
    ):
        assert libs[soname].path == f"{d.root}{LIB}/nvidia/current/{stem}.{version}"
        assert (libs[soname].version, libs[soname].forward_compat, libs[soname].shadowed) == (version, False, ())
    assert not [f for f in report.findings if f.rule in ("TFC201", "TFC203")]
    cuda = next(lib for lib in env.target.native.libraries if lib.name == "cuda")
    assert cuda.found is not None and cuda.found.path == d.cache()["libcuda.so.1"]


def test_cuda_libraries_as_the_cache_and_the_files_say(debroot):
    d = debroot
    d.point("current", d.flavours["current"])
    env, report = _check(d)
    cache = d.cache()
    checked = 0
    for lib in env.target.native.libraries:
        real = d.cuda_files.get(lib.soname)
        if real is None:  # not packaged (cuDNN, NCCL): not found, and no other version of it either
            if lib.role != "driver":
                assert lib.found is None, lib
            continue
        found = lib.found
        assert found is not None and found.problem is None, lib
        assert found.real_path == real
        named = real.rsplit(".so.", 1)[1]  # the version in the real file's name; CUPTI's is its year release
        assert found.version == (lib.soname.split(".so.", 1)[1] if named.startswith("20") else named), lib.soname
        assert found.path == cache[lib.soname] or found.found_via == "already loaded", (lib.soname, found)
        assert lib.other_sonames == (), lib.other_sonames  # the soname link and its file are one library
        checked += 1
    assert checked >= 6
    cudart = next(lib for lib in env.target.native.libraries if lib.name == "cudart")
    assert ".".join(cudart.found.version.split(".")[:2]) == env.target.tensorflow[0].cuda_version
    assert not [f for f in report.findings if f.rule in ("TFC303", "TFC304", "TFC306")], report.findings


def test_cupti_of_another_cuda_through_the_unversioned_link(debroot):
    """A CUDA 12 TensorFlow finds the packaged CUPTI through libcupti-dev's libcupti.so: TFC303 names its CUDA
    version from the SONAME (libcupti.so.11.8), not CUPTI's year release in the file name."""
    d = debroot
    cupti = next((s for s in d.cuda_files if s.startswith("libcupti.so.")), None)
    if cupti is None or not os.path.lexists(f"{d.root}{LIB}/libcupti.so"):
        pytest.skip("needs libcupti11.8 and libcupti-dev")
    d.point("current", d.flavours["current"])
    env, report = _check(d, SITE.replace("/venv/", "/venv12/"))
    lib = next(x for x in env.target.native.libraries if x.name == "cupti")
    assert lib.found is not None and lib.found.real_path == d.cuda_files[cupti]
    assert lib.found.version == cupti.split(".so.", 1)[1]
    hits = [f for f in report.findings if f.rule == "TFC303" and "libcupti" in f.message]
    assert len(hits) == 1 and f"CUPTI {lib.found.version} " in hits[0].message


def test_cuda_11_cusolver_under_the_soname_cuda_12_shares(debroot):
    """libcusolver11 (CUDA 11.8) answers a CUDA 12 TensorFlow's libcusolver.so.11 through the cache: what the real
    file needs (readelf) names CUDA 11's cuBLAS, and TFC303 says it is a CUDA 11 build."""
    d = debroot
    if "libcusolver.so.11" not in d.cuda_files:
        pytest.skip("needs libcusolver11")
    real = d.root + d.cuda_files["libcusolver.so.11"]
    dyn = subprocess.run([_tool("readelf"), "-dW", real], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    cuda11 = [n for n in needed if re.fullmatch(r"libcublas(Lt)?\.so\.11", n)]
    assert cuda11, needed
    d.point("current", d.flavours["current"])
    env, report = _check(d, SITE.replace("/venv/", "/venv12/"))
    lib = next(x for x in env.target.native.libraries if x.name == "cusolver")
    assert lib.found is not None and lib.found.real_path == d.cuda_files["libcusolver.so.11"]
    assert lib.found.needed == tuple(needed)
    (hit,) = [f for f in report.findings if f.rule == "TFC303" and "libcusolver" in f.message]
    assert f"a CUDA 11 build (it needs {', '.join(cuda11)})" in hit.message


def test_other_driver_branch_behind_the_alternatives(debroot):
    """The alternatives point at the Tesla 470 libraries while the 535 kernel module is loaded: TFC203 for
    libcuda and NVML (errors) and the PTX JIT compiler (a warning); with the 470 kernel module, TFC201 judges 470
    against the build's CUDA."""
    from tfcompat.matrix import load_matrix

    d = debroot
    if "tesla-470" not in d.flavours:
        pytest.skip("needs the libnvidia-tesla-470-* packages")
    old, new = d.flavours["tesla-470"], d.flavours["current"]
    d.point("tesla-470", new)
    env, report = _check(d)
    hits = sorted((f.message.split(" ")[0], f.severity.value) for f in report.findings if f.rule == "TFC203")
    assert hits == [("libcuda.so.1", "error"), ("libnvidia-ml.so.1", "error"), (PTX, "warning")]
    assert all(f"version {old} " in f.message and new in f.message for f in report.findings if f.rule == "TFC203")
    d.point("tesla-470", old)
    env, report = _check(d)
    assert not [f for f in report.findings if f.rule == "TFC203"]
    need = load_matrix().driver_need(env.target.tensorflow[0].cuda_version)
    from packaging.version import Version

    want = "error" if Version(old) < need.floor else ("warning" if need.full and Version(old) < need.full else None)
    got = [f.severity.value for f in report.findings if f.rule == "TFC201"]
    assert got == ([want] if want else [])


def test_glibc_loads_what_tfcompat_predicts(debroot, tmp_path):
    """glibc itself, chrooted into the root, dlopen()s each library TF asks for (as root only)."""
    if os.geteuid() != 0 or not shutil.which("gcc") or not shutil.which("chroot"):
        pytest.skip("needs root, gcc and chroot")
    d = debroot
    d.point("current", d.flavours["current"])
    env, _ = _check(d)
    src = tmp_path / "dl.c"
    src.write_text(
        "#include <dlfcn.h>\n#include <stdio.h>\nint main(int c, char **v) {\n"
        '  for (int i = 1; i < c; i++) printf("%s %d\\n", v[i], dlopen(v[i], RTLD_NOW) != 0);\n  return 0;\n}\n'
    )
    os.makedirs(f"{d.root}/usr/bin", exist_ok=True)
    subprocess.run(["gcc", "-o", f"{d.root}/usr/bin/dltest", str(src)], check=True)
    libs = list(env.target.native.libraries)
    proc = subprocess.run(
        [shutil.which("chroot") or "chroot", d.root, "/usr/bin/dltest"] + [lib.soname for lib in libs],
        capture_output=True,
        text=True,
        env={"LD_DEBUG": "libs", "PATH": "/usr/bin"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    opened = {re.sub(r"^.*/", "", p): p for p in re.findall(r"calling init: (/\S+)", proc.stderr)}
    for lib in libs:
        ok = f"{lib.soname} 1" in proc.stdout.splitlines()
        assert ok == (lib.found is not None), (lib.soname, proc.stdout)
        if lib.found is not None:
            assert opened.get(lib.soname) == lib.found.path, (lib.soname, opened.get(lib.soname), lib.found.path)
