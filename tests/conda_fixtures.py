"""Conda environments on disk for the conda tests: a prefix with conda-meta/*.json records and the files they list.

No conda channel is reachable from the test machines, so the records are written by hand in the format
conda documents for an installed package (conda/conda ``conda/models/records.py``, PrefixRecord; the
``info/index.json`` fields of https://docs.conda.io/projects/conda/en/latest/user-guide/concepts/pkg-specs.html;
real records as rattler writes them: conda/rattler ``test-data/conda-meta/*.json``):
``<prefix>/conda-meta/<name>-<version>-<build>.json`` with name, version, build, build_number, channel
(the channel URL with its subdir, as conda writes it), subdir, url, depends, files (relative to the
prefix) and paths_data. The libraries are real ELF files with the sonames the real packages ship
(``libcudart.so.11.2.152`` with SONAME ``libcudart.so.11.0``, ``libcudnn.so.8.1.0`` with ``libcudnn.so.8``,
the libcudnn.so.8 front built with gcc), linked as the packages link them, and cuDNN's
``include/cudnn_version.h`` carries CUDNN_MAJOR/MINOR/PATCHLEVEL as cuDNN ships it.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from elf_fixtures import GCC, gcc_so, link, write_so
from probe_helpers import make_dist, make_tf, write

PREFIX = "/opt/conda"
SITE = PREFIX + "/lib/python3.9/site-packages"
CONDA_FORGE = "https://conda.anaconda.org/conda-forge/linux-64"
GLIBC = tuple(f"GLIBC_2.{i}" for i in (2, 3, 4, 14, 17, 27)) + ("GLIBC_2.2.5",)
GLIBCXX = tuple(f"GLIBCXX_3.4.{i}" for i in range(0, 30))

# TF 2.5 / 2.6's build_info.py as the Linux builds state it: CUDA 11.2, cuDNN 8 (matrix: cuDNN 8.1).
BUILD_INFO_2_5 = (
    '"""Auto-generated module providing information about the build."""\n'
    "import collections\n"
    "\n"
    "build_info = collections.OrderedDict([('cpu_compiler', '/dt7/usr/bin/gcc'), ('cuda_compute_capabilities', "
    "['sm_35', 'sm_50', 'sm_60', 'sm_70', 'sm_75', 'compute_80']), ('cuda_version', '11.2'), "
    "('cudnn_version', '8'), ('is_cuda_build', True), ('is_rocm_build', False), ('is_tensorrt_build', False)])\n"
)

# cudatoolkit 11.2's libraries: (real file, soname). The sonames are the ones TF's CUDA 11 builds dlopen().
TOOLKIT_11_2 = [
    ("libcudart.so.11.2.152", "libcudart.so.11.0"),
    ("libcublas.so.11.4.1.1043", "libcublas.so.11"),
    ("libcublasLt.so.11.4.1.1043", "libcublasLt.so.11"),
    ("libcufft.so.10.4.0.135", "libcufft.so.10"),
    ("libcurand.so.10.2.3.135", "libcurand.so.10"),
    ("libcusolver.so.11.1.0.135", "libcusolver.so.11"),
    ("libcusparse.so.11.4.0.135", "libcusparse.so.11"),
    ("libcupti.so.11.2.152", "libcupti.so.11.2"),
]
TOOLKIT_11_1 = [
    ("libcudart.so.11.1.74", "libcudart.so.11.0"),
    ("libcublas.so.11.3.0.106", "libcublas.so.11"),
    ("libcublasLt.so.11.3.0.106", "libcublasLt.so.11"),
    ("libcufft.so.10.3.0.74", "libcufft.so.10"),
    ("libcurand.so.10.2.2.74", "libcurand.so.10"),
    ("libcusolver.so.11.0.1.74", "libcusolver.so.11"),
    ("libcusparse.so.11.3.0.10", "libcusparse.so.11"),
]
TOOLKIT_11_8 = [
    ("libcudart.so.11.8.89", "libcudart.so.11.0"),
    ("libcublas.so.11.11.3.6", "libcublas.so.11"),
    ("libcublasLt.so.11.11.3.6", "libcublasLt.so.11"),
    ("libcufft.so.10.9.0.58", "libcufft.so.10"),
    ("libcurand.so.10.3.0.86", "libcurand.so.10"),
    ("libcusolver.so.11.4.1.48", "libcusolver.so.11"),
    ("libcusparse.so.11.7.5.86", "libcusparse.so.11"),
]
TOOLKIT_10_1 = [
    ("libcudart.so.10.1.243", "libcudart.so.10.1"),
    ("libcublas.so.10.2.1.243", "libcublas.so.10"),
    ("libcufft.so.10.1.1.243", "libcufft.so.10"),
    ("libcurand.so.10.1.1.243", "libcurand.so.10"),
    ("libcusolver.so.10.2.0.243", "libcusolver.so.10"),
    ("libcusparse.so.10.3.0.243", "libcusparse.so.10"),
]
CUDNN8_SUBS = ("ops_infer", "ops_train", "cnn_infer", "cnn_train", "adv_infer", "adv_train")


def system_libs(root: str) -> None:
    """A libc and libstdc++ for the image, and /lib -> usr/lib as on Debian."""
    lib = os.path.join(root, "usr/lib/x86_64-linux-gnu")
    write_so(f"{lib}/libc.so.6", version_defs=GLIBC)
    write_so(f"{lib}/libm.so.6", version_defs=GLIBC)
    write_so(
        f"{lib}/libstdc++.so.6",
        version_defs=GLIBCXX + ("CXXABI_1.3.11",),
        version_needs={"libc.so.6": ("GLIBC_2.17",)},
    )
    if not os.path.lexists(os.path.join(root, "lib")):
        link(os.path.join(root, "lib"), "usr/lib")


def record(
    root: str,
    name: str,
    version: str,
    build: str,
    files: list[str],
    channel: str = CONDA_FORGE,
    depends: tuple[str, ...] = (),
    prefix: str = PREFIX,
) -> str:
    """Write <prefix>/conda-meta/<name>-<version>-<build>.json as conda does for an installed package."""
    data = {
        "build": build,
        "build_number": int(build.rsplit("_", 1)[-1]) if build.rsplit("_", 1)[-1].isdigit() else 0,
        "channel": channel,
        "constrains": [],
        "depends": list(depends),
        "files": files,
        "fn": f"{name}-{version}-{build}.tar.bz2",
        "license": "proprietary",
        "link": {"source": f"/opt/conda/pkgs/{name}-{version}-{build}", "type": 1},
        "md5": "0" * 32,
        "name": name,
        "paths_data": {
            "paths": [{"_path": f, "path_type": "hardlink", "size_in_bytes": 1} for f in files],
            "paths_version": 1,
        },
        "requested_spec": "",
        "sha256": "0" * 64,
        "size": 1,
        "subdir": "linux-64",
        "timestamp": 1614000000000,
        "url": f"{channel}/{name}-{version}-{build}.tar.bz2",
        "version": version,
    }
    path = os.path.join(root + prefix, "conda-meta", f"{name}-{version}-{build}.json")
    write(path, json.dumps(data, indent=2))
    return path


def _lib(root: str, real: str, soname: str, gcc: bool = False, needed: tuple[str, ...] = ()) -> list[str]:
    """lib/<real> with SONAME `soname`, and the links lib/<soname> -> real (and lib/<stem>.so for -dev);
    returns the files as the package lists them."""
    lib = root + PREFIX + "/lib"
    if gcc and GCC:
        gcc_so(f"{lib}/{real}", f"int {soname.split('.')[0]}_version(void) {{ return 1; }}\n", soname=soname)
    else:
        write_so(f"{lib}/{real}", soname=soname, needed=needed)
    files = [f"lib/{real}"]
    if soname != real:
        link(f"{lib}/{soname}", real)
        files.append(f"lib/{soname}")
    return files


def toolkit(root: str, version: str = "11.2.2", build: str = "hbe64b41_10", libs=None) -> None:
    """A cudatoolkit package: its libraries in <prefix>/lib and its record."""
    files: list[str] = []
    for real, soname in libs if libs is not None else TOOLKIT_11_2:
        files += _lib(root, real, soname, gcc=real.startswith("libcudart"))
    record(root, "cudatoolkit", version, build, files + ["lib/libnvToolsExt.so.1.0.0"], depends=("__glibc >=2.17",))
    write_so(root + PREFIX + "/lib/libnvToolsExt.so.1.0.0", soname="libnvToolsExt.so.1")


def cudnn(root: str, version: str = "8.1.0.77", build: str = "h90431f1_0", header: bool = True) -> None:
    """A conda cudnn package: libcudnn.so.<M.m.p> (gcc-built front), its sub-libraries, cudnn_version.h."""
    major, minor, patch = version.split(".")[:3]
    full = f"{major}.{minor}.{patch}"
    files = _lib(root, f"libcudnn.so.{full}", f"libcudnn.so.{major}", gcc=True)
    for sub in CUDNN8_SUBS if major == "8" else ():
        files += _lib(root, f"libcudnn_{sub}.so.{full}", f"libcudnn_{sub}.so.{major}")
    if header:
        write(
            root + PREFIX + "/include/cudnn_version.h",
            f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n",
        )
        files.append("include/cudnn_version.h")
    record(root, "cudnn", version, build, files, depends=("cudatoolkit >=11.2,<12",))


def nccl(root: str, version: str = "2.8.4.1", build: str = "h97a9cb7_0") -> None:
    files = _lib(root, "libnccl.so.2.8.4", "libnccl.so.2")
    record(root, "nccl", version, build, files)


def python(root: str) -> str:
    """The environment's interpreter, with conda's DT_RPATH $ORIGIN/../lib, and python's own record."""
    exe = write_so(
        root + PREFIX + "/bin/python3.9",
        soname=None,
        needed=("libc.so.6",),
        rpath="$ORIGIN/../lib",
        e_type=2,
    )
    record(root, "python", "3.9.7", "hb7a2778_3_cpython", ["bin/python3.9", "lib/libpython3.9.so.1.0"])
    return exe


def tensorflow(
    root: str,
    version: str = "2.5.0",
    build_info: str = BUILD_INFO_2_5,
    rpath: Optional[str] = "$ORIGIN/../../..",
    runpath: Optional[str] = None,
    conda_build: Optional[str] = "cuda112py39h01bd6f0_0",
) -> str:
    """TensorFlow in the environment's site-packages. `conda_build`: a conda-forge tensorflow-base record (its
    objects carry conda-build's DT_RPATH to <prefix>/lib); None: a pip wheel (no record)."""
    site = root + SITE
    tf_dir = make_tf(site, version, build_info)
    make_dist(site, "tensorflow", version)
    kw = {"rpath": rpath} if rpath is not None else {}
    if runpath is not None:
        kw["runpath"] = runpath
    write_so(
        f"{tf_dir}/libtensorflow_framework.so.2",
        needed=("libstdc++.so.6", "libc.so.6"),
        version_needs={"libstdc++.so.6": ("GLIBCXX_3.4.19",), "libc.so.6": ("GLIBC_2.17",)},
        **kw,
    )
    write_so(
        f"{tf_dir}/python/_pywrap_tensorflow_internal.so",
        soname=None,
        needed=("libtensorflow_framework.so.2", "libc.so.6"),
        runpath="$ORIGIN/../",
    )
    if conda_build:
        rel = "lib/python3.9/site-packages/tensorflow"
        record(
            root,
            "tensorflow-base",
            version,
            conda_build,
            [f"{rel}/libtensorflow_framework.so.2", f"{rel}/python/_pywrap_tensorflow_internal.so"],
            depends=("cudatoolkit >=11.2,<12", "cudnn >=8.1.0.77,<9.0a0", "python >=3.9,<3.10.0a0"),
        )
    return site


def conda_env(root, toolkit_version="11.2.2", cudnn_version="8.1.0.77", tf_kw=None, toolkit_libs=None) -> str:
    """The Done-when environment: conda-forge TF 2.5 with cudatoolkit 11.2.2, cudnn 8.1.0.77 and nccl."""
    root = str(root)
    system_libs(root)
    python(root)
    if toolkit_version:
        toolkit(root, toolkit_version, libs=toolkit_libs)
    if cudnn_version:
        cudnn(root, cudnn_version)
    nccl(root)
    return tensorflow(root, **(tf_kw or {}))
