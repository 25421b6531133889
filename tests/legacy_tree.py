"""Minimal real TensorFlow installs on disk for the legacy tests (issue 14), any release the matrix lists.

The layout follows the real wheels (read 2026-12-07 from tensorflow-gpu 1.5.0, 1.6.0, 1.13.1, 1.14.0, 1.15.5, 2.0.4
and tensorflow 2.1.4, 2.2.3, 2.3.4 on PyPI):
- 1.15, 2.0, 2.1: the package is ``tensorflow_core/`` (``tensorflow/__init__.py`` only forwards to it), with
  ``python/platform/build_info.py``, ``libtensorflow_framework.so.1`` (.2 from 2.0) and
  ``python/_pywrap_tensorflow_internal.so``; 1.14 and 2.2+ have them under ``tensorflow/``.
- 1.5, 1.6, 1.13: ``libtensorflow_framework.so`` links libcudart / libcudnn (and cuBLAS, cuFFT, cuRAND for
  CUDA 9) by DT_NEEDED, ``_pywrap_tensorflow_internal.so`` libcublas / libcusolver; from 1.14 TF dlopen()s them.
- TF's objects carry a DT_RPATH (not RUNPATH) ``$ORIGIN/`` (framework) and ``$ORIGIN/:$ORIGIN/..`` (pywrap), and
  the framework defines ``tensorflow::internal::LoadLibrary`` (gcc-built here, the symbol the probe looks for).
- build_info.py as the wheels write it: 1.5-1.13 ``is_cuda_build = True`` only, 1.14 ``'10.0'``, 1.15 / 2.0 / 2.2
  ``'10'``, 2.1 ``'10.1'``, from 2.3 a dict with the compute capabilities.

The CUDA and cuDNN libraries go where Ubuntu's packages put them (/usr/lib/x86_64-linux-gnu, a default directory),
each a real file named with its full version behind its soname link, as NVIDIA's packages install them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from elf_fixtures import gcc_so, link, write_so
from packaging.version import Version
from probe_helpers import make_dist, write

from tfcompat.model import Driver, Gpu, Unknown

SITE = "/opt/venv/lib/python3.7/site-packages"
SYSLIB = "/usr/lib/x86_64-linux-gnu"
GLIBC = tuple(f"GLIBC_2.{i}" for i in (2.5, 3, 3.2, 4, 7, 9, 12, 14, 16, 17, 23, 27))
GLIBCXX = tuple(f"GLIBCXX_3.4.{i}" for i in range(0, 26)) + ("GLIBCXX_3.4",)
CXXABI = tuple(f"CXXABI_1.3.{i}" for i in range(1, 12)) + ("CXXABI_1.3",)
LOAD_LIBRARY = "_ZN10tensorflow8internal11LoadLibraryEPKcPPv"  # tensorflow::internal::LoadLibrary(char const*, void**)

# The Requires-Dist of the tensorflow-gpu 1.15.5 Linux wheel (its METADATA on PyPI), Python 3 markers.
REQUIRES_1_15_5 = (
    "absl-py (>=0.7.0)",
    "astor (>=0.6.0)",
    "gast (==0.2.2)",
    "google-pasta (>=0.1.6)",
    "keras-applications (>=1.0.8)",
    "keras-preprocessing (>=1.0.5)",
    "numpy (<1.19.0,>=1.16.0)",
    "opt-einsum (>=2.3.2)",
    "six (>=1.10.0)",
    "protobuf (>=3.6.1)",
    "tensorboard (<1.16.0,>=1.15.0)",
    "tensorflow-estimator (==1.15.1)",
    "termcolor (>=1.1.0)",
    "wrapt (>=1.11.1)",
    "h5py (<=2.10.0)",
    "grpcio (>=1.8.6)",
    'wheel (>=0.26); python_version >= "3"',
)
# versions that satisfy REQUIRES_1_15_5 (each a real release on PyPI)
INSTALLED_1_15_5 = {
    "absl-py": "0.15.0",
    "astor": "0.8.1",
    "gast": "0.2.2",
    "google-pasta": "0.2.0",
    "keras-applications": "1.0.8",
    "keras-preprocessing": "1.1.2",
    "numpy": "1.18.5",
    "opt-einsum": "3.3.0",
    "six": "1.16.0",
    "protobuf": "3.19.6",
    "tensorboard": "1.15.0",
    "tensorflow-estimator": "1.15.1",
    "termcolor": "1.1.0",
    "wrapt": "1.12.1",
    "h5py": "2.10.0",
    "grpcio": "1.43.0",
    "wheel": "0.37.1",
}


def _minor(version: str) -> tuple[int, int]:
    r = Version(version).release
    return r[0], r[1] if len(r) > 1 else 0


def core_name(version: str) -> str:
    """The package that holds TF's objects: tensorflow_core/ for 1.15, 2.0, 2.1."""
    return "tensorflow_core" if (1, 15) <= _minor(version) <= (2, 1) else "tensorflow"


def framework_name(version: str) -> str:
    m = _minor(version)
    if m <= (1, 13):
        return "libtensorflow_framework.so"
    return "libtensorflow_framework.so.1" if m < (2, 0) else "libtensorflow_framework.so.2"


def build_info_text(version: str, cuda: str, cudnn_major: int, ccs: tuple[str, ...]) -> str:
    """build_info.py as the wheel of `version` writes it."""
    m = _minor(version)
    head = '"""Generates a Python module containing information about the build."""\n'
    if m <= (1, 13):
        return head + "is_cuda_build = True\n"
    if m < (2, 3):
        stated = {(1, 14): "10.0", (2, 1): "10.1"}.get(m, "10")
        return (
            head + f"is_rocm_build = False\nis_cuda_build = True\n\ncuda_version_number = '{stated}'\n"
            f"cudnn_version_number = '{cudnn_major}'\n"
        )
    return (
        head + f"build_info = {{'cuda_version': '{cuda}', 'cudnn_version': '{cudnn_major}', "
        f"'cuda_compute_capabilities': {list(ccs)!r}, 'is_rocm_build': False, 'is_cuda_build': True}}\n"
    )


def lib_version(soname: str, cuda: str) -> str:
    """A full version for the file behind `soname` (libcudart.so.10.0 -> 10.0.130), as the toolkit names it."""
    major, minor = _minor(cuda)
    stem = soname.split(".so")[0]
    if stem == "libnccl":
        return "2.27.7"
    if stem in ("libcufft", "libcurand", "libcusolver") and major >= 11:
        return soname.split(".so.")[1] + ".0.99"  # these are versioned on their own from CUDA 11
    return f"{major}.{minor}.{130 if major < 11 else 99}"


def write_lib(root: str, soname: str, version: str, needed: tuple[str, ...] = ()) -> str:
    """<SYSLIB>/<soname> -> <soname-stem>.so.<version>, a real shared object."""
    real = soname.split(".so")[0] + ".so." + version
    write_so(f"{root}{SYSLIB}/{real}", soname=soname, needed=needed)
    if real != soname:
        link(f"{root}{SYSLIB}/{soname}", real)
    return f"{SYSLIB}/{real}"


def system(root: str, glibcxx: tuple[str, ...] = GLIBCXX) -> None:
    """A glibc 2.27 / GCC 8 system (Ubuntu 18.04's symbol versions) with python3.7; `glibcxx`: the GLIBCXX
    versions its libstdc++ defines."""
    lib = f"{root}{SYSLIB}"
    write_so(f"{lib}/libc.so.6", version_defs=GLIBC)
    for name in ("libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1"):
        write_so(f"{lib}/{name}", version_defs=GLIBC)
    write_so(f"{lib}/libgcc_s.so.1", version_defs=("GCC_3.0", "GCC_3.3", "GCC_4.2.0"))
    write_so(f"{lib}/libstdc++.so.6", version_defs=glibcxx + CXXABI, version_needs={"libc.so.6": ("GLIBC_2.17",)})
    link(os.path.join(root, "lib"), "usr/lib")
    write_so(f"{root}/usr/bin/python3.7", soname=None, needed=("libc.so.6",), e_type=2)


@dataclasses.dataclass
class Install:
    """What `make_install` wrote: the TF objects (inside-root paths) and the library files."""

    root: str
    site: str  # inside-root
    core: str  # inside-root package dir of TF's objects
    framework: str
    pywrap: str
    libraries: dict[str, str]  # soname -> inside-root real file


def make_install(
    root,
    version: str,
    distribution: str = "tensorflow-gpu",
    cuda: str = "10.0",
    cudnn: str = "7.6.5",
    ccs: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
    packages: Optional[dict[str, str]] = None,
    sonames: tuple[str, ...] = (),
    sublibraries: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
    site_dir: str = SITE,
    libstdcxx: tuple[str, ...] = GLIBCXX,
    pywrap_glibcxx: tuple[str, ...] = ("GLIBCXX_3.4.11",),
) -> Install:
    """TF `version` of `distribution` in a venv under `root`, with `sonames` (the libraries the build loads) and
    cuDNN `cudnn` as system libraries, `packages` as dist-infos."""
    root = str(root)
    system(root, libstdcxx)
    site = root + site_dir
    cudnn_major = int(cudnn.split(".")[0])
    py = site_dir.split("/python")[-1].split("/")[0].replace(".", "")  # ".../python3.7/site-packages" -> "37"
    abi = f"cp{py}m" if int(py[1:]) < 8 else f"cp{py}"  # the "m" ABI suffix ends with 3.8
    make_dist(site, distribution, version, requires=requires, wheel_tags=(f"cp{py}-{abi}-linux_x86_64",))
    for name, v in (packages or {}).items():
        make_dist(site, name, v)
    write(f"{site}/tensorflow/__init__.py", f'__version__ = "{version}"\n')
    core = f"{site}/{core_name(version)}"
    if core_name(version) != "tensorflow":
        write(f"{core}/__init__.py", f'__version__ = "{version}"\n')
    write(f"{core}/python/platform/build_info.py", build_info_text(version, cuda, cudnn_major, ccs))
    libraries: dict[str, str] = {}
    for soname in sonames:
        if soname in skip or soname == "libcuda.so.1":
            continue
        if soname.startswith("libcudnn.so."):
            libraries[soname] = write_lib(root, soname, cudnn)
        else:
            libraries[soname] = write_lib(root, soname, lib_version(soname, cuda))
    for sub in sublibraries:
        if sub not in skip:
            libraries[sub] = write_lib(root, sub, cudnn)
    # TF's own objects; before 1.14 they link the CUDA runtime and cuDNN (and more) by DT_NEEDED
    linked = _minor(version) <= (1, 13)
    fw_needed = tuple(s for s in sonames if s.startswith(("libcudart", "libcudnn"))) if linked else ()
    if linked and _minor(version) < (1, 13):  # CUDA 9 builds link cuBLAS, cuFFT, cuRAND from the framework too
        fw_needed += tuple(s for s in sonames if s.startswith(("libcublas", "libcufft", "libcurand")))
    fw_needed += ("libstdc++.so.6", "libm.so.6", "libc.so.6")
    framework = f"{core}/{framework_name(version)}"
    gcc_framework(framework, fw_needed)
    pywrap_needed = (framework_name(version),)
    if linked:
        pywrap_needed += tuple(s for s in sonames if s.startswith(("libcublas", "libcusolver", "libcudart")))
    pywrap_needed += ("libstdc++.so.6", "libc.so.6")
    pywrap = write_so(
        f"{core}/python/_pywrap_tensorflow_internal.so",
        soname="_pywrap_tensorflow_internal.so",
        needed=pywrap_needed,
        rpath="$ORIGIN/:$ORIGIN/..",
        version_needs={"libc.so.6": ("GLIBC_2.2.5", "GLIBC_2.12"), "libstdc++.so.6": pywrap_glibcxx},
    )
    inside = lambda p: p[len(root) :]  # noqa: E731
    return Install(root, site_dir, inside(core), inside(framework), inside(pywrap), libraries)


def gcc_framework(out: str, needed: tuple[str, ...]) -> str:
    """libtensorflow_framework built by gcc: defines tensorflow::internal::LoadLibrary, DT_RPATH $ORIGIN/ and the
    DT_NEEDED entries `needed` (linked against empty stand-ins that are removed afterwards)."""
    stubs = os.path.dirname(out) + "/.stubs"
    for n in needed:
        gcc_so(f"{stubs}/{n}", "", soname=n, flags=["-nostdlib"])
    gcc_so(
        out,
        f"void {LOAD_LIBRARY}(void) {{}}\n",
        soname=os.path.basename(out),
        flags=["-nostdlib", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/", "-Wl,--no-as-needed"]
        + [f"{stubs}/{n}" for n in needed],
    )
    for n in needed:
        os.unlink(f"{stubs}/{n}")
    if needed:
        os.rmdir(stubs)
    return out


def with_host(env, driver: Optional[str], gpus: tuple[Gpu, ...]):
    """The scanned environment on a node with this driver and these GPUs (host facts; the scan of an image has none)."""
    host = dataclasses.replace(
        env.host,
        driver=Driver(kernel_module_version=driver, kernel_module_source="/proc/driver/nvidia/version")
        if driver
        else None,
        gpus=gpus,
    )
    unknowns = tuple(u for u in env.unknowns if u.fact not in ("driver", "gpus") and not u.fact.startswith("driver."))
    if driver is None:
        unknowns += (Unknown("driver", "no NVIDIA driver on this node (test)"),)
    return dataclasses.replace(env, host=host, unknowns=unknowns)
