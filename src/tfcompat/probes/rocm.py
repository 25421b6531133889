"""AMD ROCm: the user-space version and each GPU's gfx target, read from files (nothing loaded); and
TensorFlow's own ROCm-linked objects: the ROCm they need, the GPU code they carry, whether they resolve."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Optional

from tfcompat.model import AmdGpu, Rocm, RocmObject, TensorFlowBuild, Unknown
from tfcompat.probes.custom_ops import CustomOpChecker
from tfcompat.probes.native.elf import ElfError, ElfInfo, read_elf
from tfcompat.probes.native.loader import LoaderConfig
from tfcompat.probes.rootfs import Root

ROCM_VERSION_FILES = ("/opt/rocm/.info/version", "/opt/rocm/.info/version-dev")
KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"


def gfx_name(target_version: int) -> Optional[str]:
    """KFD's gfx_target_version (e.g. 90010, 110000) -> the LLVM target name (gfx90a, gfx1100)."""
    if target_version <= 0:
        return None  # CPU nodes report 0
    major, minor, step = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{step:x}"


def _rocm_version(root: Root) -> tuple[Optional[str], Optional[str]]:
    for path in ROCM_VERSION_FILES:
        try:
            text = root.read_text(path, limit=256).strip()  # bounded, regular files only
        except OSError:
            continue
        m = re.match(r"^(\d+\.\d+(?:\.\d+)?)", text)
        if m:
            return m.group(1), root.path(path)
    return None, None


def _node_number(name: str) -> int:
    return int(name) if name.isascii() and name.isdigit() else -1  # '²'.isdigit() is True; int('²') fails


def _kfd_gpus(root: Root) -> list[AmdGpu]:
    """Each KFD topology node's gfx target; nodes are listed and read through the root (a link in an image
    stays inside it; a FIFO, device or oversized file is skipped)."""
    gpus: list[AmdGpu] = []
    try:
        base = root.path(KFD_NODES)
        names = root.listdir(KFD_NODES)
    except OSError:
        return gpus
    for name in sorted(names, key=lambda n: (_node_number(n) < 0, _node_number(n), n)):
        props = {}
        try:
            text = root.read_bytes(f"{KFD_NODES}/{name}/properties", "sysfs").decode("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            props[key] = value.strip()
        try:
            target = int(props.get("gfx_target_version", "0"))
        except ValueError:
            continue
        gfx = gfx_name(target)
        if gfx is None:
            continue
        gpus.append(AmdGpu(node=_node_number(name), gfx_target=gfx, source=os.path.join(base, name, "properties")))
    return gpus


def probe_rocm(root: Root) -> tuple[Optional[Rocm], list[Unknown]]:
    version, source = _rocm_version(root)
    gpus = _kfd_gpus(root)
    if version is None and not gpus:
        return None, [
            Unknown("rocm", f"no ROCm installed (/opt/rocm/.info/version not found) and no AMD GPU in {KFD_NODES}")
        ]
    unknowns = []
    if version is None:
        unknowns.append(Unknown("rocm.version", "AMD GPUs present but /opt/rocm/.info/version not found"))
    return Rocm(version=version, version_source=source, gpus=tuple(gpus)), unknowns


# -- TensorFlow's own ROCm-linked objects (issue 14) ------------------------------------------------------

# TF's objects that link ROCm and carry HIP kernels, relative to the package dir (TF 1.x: libtensorflow_framework.so.1).
TF_ROCM_OBJECTS = (
    "python/_pywrap_tensorflow_internal.so",
    "libtensorflow_framework.so.2",
    "libtensorflow_cc.so.2",
    "libtensorflow_framework.so.1",
)
# DT_NEEDED names of ROCm's libraries (HIP runtime, HSA, RCCL and the math libraries): prefix before ".so".
ROCM_LIBRARIES = (
    "libamdhip64",
    "libhip_hcc",
    "libhsa-runtime64",
    "libhsakmt",
    "librccl",
    "librocblas",
    "libhipblas",
    "libhipblaslt",
    "libMIOpen",
    "librocfft",
    "libhipfft",
    "librocrand",
    "libhiprand",
    "librocsparse",
    "libhipsparse",
    "librocsolver",
    "libhipsolver",
    "libroctracer64",
    "libroctx64",
    "libamd_comgr",
    "libhiprtc",
    "librocm_smi64",
)
_BUILD_ROCM = re.compile(r"^/opt/rocm-\d+\.\d+(\.\d+)?(/|$)")


def is_rocm_library(name: str) -> bool:
    return name.split(".so", 1)[0] in ROCM_LIBRARIES


def probe_rocm_objects(
    root: Root,
    tf: Optional[TensorFlowBuild],
    python_executable: Optional[str],
    cpu_flags=(),
    environ: Optional[Mapping[str, str]] = None,
    loader_config: Optional[LoaderConfig] = None,
) -> tuple[tuple[RocmObject, ...], list[Unknown]]:
    """TF's own objects that link ROCm: their ROCm DT_NEEDED names, the gfx targets of their offload bundles,
    and whether the libraries and symbols they need resolve against the ROCm the loader picks. Nothing for a
    build none of whose objects needs a ROCm library (a CUDA or CPU build)."""
    if tf is None or not tf.package_dir:
        return (), []
    found: list[tuple[str, ElfInfo]] = []
    unknowns: list[Unknown] = []
    for rel in TF_ROCM_OBJECTS:
        path = root.display(os.path.join(tf.package_dir, rel))
        if not root.is_file(path):
            continue
        try:
            found.append((path, read_elf(root.path(path))))
        except (ElfError, OSError) as exc:
            unknowns.append(Unknown("tensorflow.rocm_objects.read", f"{path}: {exc}"))
    rocm_linked = [(p, e) for p, e in found if any(is_rocm_library(n) for n in e.needed)]
    if not rocm_linked:
        return (), unknowns
    checker: Optional[CustomOpChecker] = None
    try:
        checker = CustomOpChecker(root, tf, python_executable, cpu_flags, environ, loader_config)
        checker.demangle = False
    except (ElfError, OSError, ValueError) as exc:
        unknowns.append(Unknown("tensorflow.rocm_objects.symbols", f"the loader model could not be built: {exc}"))
    out = []
    try:
        for path, info in rocm_linked:
            out.append(_rocm_object(root, path, info, checker))
    finally:
        if checker is not None:
            checker.close()
    return tuple(out), unknowns


def _rocm_object(root: Root, path: str, info: ElfInfo, checker: Optional[CustomOpChecker]) -> RocmObject:
    needed = tuple(n for n in info.needed if is_rocm_library(n))
    build = tuple(p for p in (info.runpath or info.rpath or ()) if _BUILD_ROCM.match(p))
    from tfcompat.probes.native.offload_bundle import scan_offload  # ROCm builds only: not on a CUDA check

    scan = scan_offload(root, path)
    obj = RocmObject(
        path=path,
        rocm_needed=needed,
        build_rocm=build,
        offload_section=scan.section_size,
        offload_bundles=scan.bundles,
        offload_compressed=scan.compressed,
        offload_ids=scan.ids,
        gfx_targets=scan.gfx,
        offload_problems=scan.problems,
    )
    if checker is None:
        return obj
    try:
        op = checker.check("tensorflow", root.path(path))
    except (ElfError, OSError) as exc:
        return dataclasses.replace(obj, problem=str(exc))
    resolved = []
    for name in needed:
        hit = checker.loader.loaded.get(name)
        if hit is not None:
            resolved.append(f"{name} -> {hit.path}")
    return dataclasses.replace(
        obj,
        rocm_resolved=tuple(resolved),
        checked=op.problem is None,
        missing_libraries=op.missing_libraries,
        missing_versions=op.missing_versions,
        undefined_count=op.undefined_count,
        undefined=op.undefined,
        problem=op.problem,
    )
