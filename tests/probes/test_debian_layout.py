"""The layout Debian's NVIDIA and CUDA packages install (bookworm: libcuda1 535.261.03, libcupti11.8 and
libcudart11.0 from CUDA 11.8, read from the .debs 2026-12-08), in gcc-free stand-ins; the real packages are
checked by tests/project/test_realwheel_debian_nvidia.py.

- The driver libraries live in /usr/lib/x86_64-linux-gnu/nvidia/current/ and reach the search path through
  update-alternatives: /usr/lib/x86_64-linux-gnu/libcuda.so.1 -> /etc/alternatives/nvidia--libcuda.so.1-
  x86_64-linux-gnu -> /usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1 -> libcuda.so.535.261.03
  (absolute links, nvidia-alternative's postinst).
- CUPTI's real file is named by CUPTI's own year release: libcupti.so.11.8 -> libcupti.so.2022.3.0 (SONAME
  libcupti.so.11.8), and libcupti-dev adds libcupti.so -> libcupti.so.11.8, the unversioned name TF's loader
  falls back to. A toolkit's libcupti.so.2022.2.1, linked by hand as the libcupti.so.11.2 a CUDA 11.2 TensorFlow
  asks for: https://github.com/openxla/xprof/issues/443.
- /lib is a link to usr/lib (merged /usr): /lib/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu are one directory.
"""

from __future__ import annotations

import os

from elf_fixtures import link, needs_gcc, write_so
from envs import run_rule
from legacy_tree import SITE, SYSLIB, make_install

from tfcompat.matrix import load_matrix, shipped_facts
from tfcompat.probes.nvidia import find_driver_libraries
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec
from tfcompat.scan import scan

NV = f"{SYSLIB}/nvidia/current"


def _alternative(root: str, name: str) -> None:
    """<SYSLIB>/<name> -> /etc/alternatives/nvidia--<name>-x86_64-linux-gnu -> <NV>/<name>, absolute links."""
    alt = f"/etc/alternatives/nvidia--{name}-x86_64-linux-gnu"
    link(root + alt, f"{NV}/{name}")
    link(root + f"{SYSLIB}/{name}", alt)


def _driver(root: str, version: str) -> None:
    for stem in ("libcuda.so", "libnvidia-ml.so"):
        write_so(f"{root}{NV}/{stem}.{version}", soname=f"{stem}.1")
        link(f"{root}{NV}/{stem}.1", f"{stem}.{version}")
        _alternative(root, f"{stem}.1")


def test_driver_libraries_through_alternatives_inside_a_linked_root(tmp_path):
    """The absolute /etc/alternatives links resolve inside --root, and the paths keep the root as the user named
    it when it is itself a symlink (they used to be host-realpath()ed out of that spelling)."""
    real = tmp_path / "img"
    _driver(str(real), "535.261.03")
    link(str(real / "lib"), "usr/lib")
    named = str(tmp_path / "img-link")
    os.symlink(real, named)
    libs = {
        lib.soname: lib for lib in find_driver_libraries(Root(named), {}, None, ("libcuda.so.1", "libnvidia-ml.so.1"))
    }
    assert libs["libcuda.so.1"].path == f"{named}{NV}/libcuda.so.535.261.03"
    assert libs["libnvidia-ml.so.1"].path == f"{named}{NV}/libnvidia-ml.so.535.261.03"
    assert {lib.version for lib in libs.values()} == {"535.261.03"}
    assert all(not lib.shadowed and not lib.forward_compat for lib in libs.values())


def _tf215(root: str):
    """tensorflow 2.15.1 (CUDA 12.2, which dlopen()s libcupti.so.12, then libcupti.so) on a merged-/usr system."""
    return make_install(root, "2.15.1", distribution="tensorflow", cuda="12.2", cudnn="8.9.4", sonames=())


def _libraries(root: str):
    env = scan(TargetSpec(root=root, site_packages=(SITE,)), nvml=False, environ={})
    assert env.target.native is not None
    return env, {lib.name: lib for lib in env.target.native.libraries}


@needs_gcc
def test_year_named_cupti_is_versioned_by_its_soname(tmp_path):
    """Debian's CUDA 11.8 CUPTI behind libcupti-dev's unversioned link, under a CUDA 12 TensorFlow: CUPTI 11.8
    (its SONAME), not "2022.3.0"; TFC303 names the CUDA version."""
    root = str(tmp_path)
    _tf215(root)
    write_so(f"{root}{SYSLIB}/libcupti.so.2022.3.0", soname="libcupti.so.11.8")
    link(f"{root}{SYSLIB}/libcupti.so.11.8", "libcupti.so.2022.3.0")
    link(f"{root}{SYSLIB}/libcupti.so", "libcupti.so.11.8")
    env, libs = _libraries(root)
    found = libs["cupti"].found
    assert found is not None and found.real_path == f"{SYSLIB}/libcupti.so.2022.3.0"
    assert (found.version, found.version_source) == (
        "11.8",
        f"SONAME libcupti.so.11.8 of {SYSLIB}/libcupti.so.2022.3.0",
    )
    findings, _ = run_rule(env, load_matrix(), "TFC303")
    assert [f.message.split(" (found as")[0] for f in findings] == ["libcupti.so.12 resolves to CUPTI 11.8"]


@needs_gcc
def test_year_named_cupti_of_the_builds_major_is_no_mismatch(tmp_path):
    """A CUDA 12 CUPTI named by its year release (libcupti.so.12 -> libcupti.so.2023.2.2): CUDA 12, no TFC303
    (the year was read as CUPTI major 2023: "another CUDA major")."""
    root = str(tmp_path)
    _tf215(root)
    write_so(f"{root}{SYSLIB}/libcupti.so.2023.2.2", soname="libcupti.so.12")
    link(f"{root}{SYSLIB}/libcupti.so.12", "libcupti.so.2023.2.2")
    env, libs = _libraries(root)
    assert libs["cupti"].found is not None and libs["cupti"].found.version == "12"
    findings, _ = run_rule(env, load_matrix(), "TFC303")
    assert findings == []


@needs_gcc
def test_other_versions_once_per_file_on_merged_usr(tmp_path):
    """libcudart.so.12 missing, CUDA 11.8's runtime installed: one other version, not the same file through
    /lib and /usr/lib and again by its real name."""
    root = str(tmp_path)
    _tf215(root)
    write_so(f"{root}{SYSLIB}/libcudart.so.11.8.89", soname="libcudart.so.11.0")
    link(f"{root}{SYSLIB}/libcudart.so.11.0", "libcudart.so.11.8.89")
    _, libs = _libraries(root)
    cudart = libs["cudart"]
    assert cudart.found is None
    assert [o.split(" (")[0] for o in cudart.other_sonames] == ["libcudart.so.11.0 in /lib/x86_64-linux-gnu"]


@needs_gcc
def test_found_library_lists_no_other_version_of_itself(tmp_path):
    """The file the loader picked, under its real name, is no other version of it."""
    root = str(tmp_path)
    _tf215(root)
    write_so(f"{root}{SYSLIB}/libcudart.so.12.2.140", soname="libcudart.so.12")
    link(f"{root}{SYSLIB}/libcudart.so.12", "libcudart.so.12.2.140")
    write_so(f"{root}{SYSLIB}/libcudart.so.11.8.89", soname="libcudart.so.11.0")
    link(f"{root}{SYSLIB}/libcudart.so.11.0", "libcudart.so.11.8.89")
    _, libs = _libraries(root)
    cudart = libs["cudart"]
    assert cudart.found is not None and cudart.found.version == "12.2.140"
    assert [o.split(" (")[0] for o in cudart.other_sonames] == ["libcudart.so.11.0 in /lib/x86_64-linux-gnu"]


@needs_gcc
def test_tf_2_14_with_debians_cuda_11_8_set(tmp_path):
    """tensorflow 2.14.1 (CUDA 11.8) on the CUDA 11.8 libraries bookworm packages (no cuRAND, no NCCL, CUPTI
    2022.3.0): its wheel has no cuRAND or NCCL loader (the [[dlopen]] 11 note), so nothing GPU-critical is missing
    but cuDNN, and CUPTI 11.8 is the build's. tfcompat called cuRAND missing ("registers no GPU")."""
    root = str(tmp_path)
    sonames = tuple(s.soname for s in shipped_facts().sonames("11.8", "2.14.1", 8) or ())
    assert "libcupti.so.11.8" in sonames and "libcurand.so.10" not in sonames and "libnccl.so.2" not in sonames
    make_install(
        root,
        "2.14.1",
        distribution="tensorflow",
        cuda="11.8",
        cudnn="8.6.0",
        sonames=sonames,
        skip=("libcudnn.so.8", "libcupti.so.11.8"),
    )
    write_so(f"{root}{SYSLIB}/libcupti.so.2022.3.0", soname="libcupti.so.11.8")
    link(f"{root}{SYSLIB}/libcupti.so.11.8", "libcupti.so.2022.3.0")
    env, libs = _libraries(root)
    assert libs["cupti"].found is not None and libs["cupti"].found.version == "11.8"
    matrix = load_matrix()
    findings, _ = run_rule(env, matrix, "TFC301")
    assert len(findings) == 1 and "libcudnn.so.8" in findings[0].message  # an image: no driver, a warning
    assert "curand" not in findings[0].message and "nccl" not in findings[0].message
    assert run_rule(env, matrix, "TFC303")[0] == []


@needs_gcc
def test_cuda_11_cusolver_under_a_cuda_12_tensorflow(tmp_path):
    """Debian's libcusolver11 (CUDA 11.8: libcusolver.so.11 -> libcusolver.so.11.4.1.48, which needs
    libcublas.so.11 and libcublasLt.so.11) in the cache, under a CUDA 12 TensorFlow that asks for the soname CUDA
    12 kept: the loader takes CUDA 11's; the probe records what the picked file needs and TFC303 warns."""
    root = str(tmp_path)
    _tf215(root)
    needs = ["libcublas.so.11", "libcublasLt.so.11", "libc.so.6"]
    write_so(f"{root}{SYSLIB}/libcusolver.so.11.4.1.48", soname="libcusolver.so.11", needed=needs)
    link(f"{root}{SYSLIB}/libcusolver.so.11", "libcusolver.so.11.4.1.48")
    for lib in ("libcublas.so.11", "libcublasLt.so.11"):
        write_so(f"{root}{SYSLIB}/{lib}.11.3.6", soname=lib)
        link(f"{root}{SYSLIB}/{lib}", f"{lib}.11.3.6")
    env, libs = _libraries(root)
    found = libs["cusolver"].found
    assert found is not None and found.needed == tuple(needs)
    assert all(not lib.found.needed for lib in libs.values() if lib.found and lib.name != "cusolver")
    (finding,) = [f for f in run_rule(env, load_matrix(), "TFC303")[0] if "cusolver" in f.message]
    assert "a CUDA 11 build (it needs libcublas.so.11, libcublasLt.so.11)" in finding.message
