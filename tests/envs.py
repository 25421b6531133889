"""Build Environments directly for rule tests: environment in, findings out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

from packaging.utils import canonicalize_name

from tfcompat.model import (
    Driver,
    Environment,
    Gpu,
    Host,
    NativeLibraries,
    Package,
    Platform,
    PythonInfo,
    Target,
    TensorFlowBuild,
    Unknown,
)

SITE = "/venv/lib/python3.11/site-packages"

TF_DEPS = {
    "2.21.0": (
        "numpy>=1.26.0",
        "protobuf<8.0.0,>=6.31.1",
        "keras>=3.12.0",
        "ml_dtypes<1.0.0,>=0.5.1",
        "h5py<3.15.0,>=3.11.0",
        "absl-py>=1.0.0",
        'nvidia-cudnn-cu12<10.0,>=9.3.0.75; extra == "and-cuda"',
    ),
    "2.15.1": (
        "numpy<2.0.0,>=1.23.5",
        "protobuf!=4.21.0,!=4.21.1,!=4.21.2,!=4.21.3,!=4.21.4,!=4.21.5,<5.0.0dev,>=3.20.3",
        "keras<2.16,>=2.15.0",
        "ml-dtypes~=0.3.1",
    ),
    "2.14.0": ("numpy>=1.23.5", "keras<2.15,>=2.14.0", "ml-dtypes==0.2.0"),
}
BUILDS = {
    "2.21.0": ("12.5.1", "9", ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90"), "cp311-cp311-manylinux_2_27_x86_64"),
    "2.15.1": (
        "12.2",
        "8",
        ("sm_50", "sm_60", "sm_70", "sm_75", "compute_80"),
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    ),
    "2.14.0": (
        "11.8",
        "8",
        ("sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"),
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    ),
}


def pkg(
    name: str, version: str, requires: Sequence[str] = (), location: str = SITE, requires_python: Optional[str] = None
) -> Package:
    return Package(
        name=canonicalize_name(name),
        version=version,
        location=location,
        metadata_path=f"{location}/{name}-{version}.dist-info/METADATA",
        requires=tuple(requires),
        requires_python=requires_python,
        display_name=name,
    )


def tf_build(
    version: str = "2.21.0",
    distribution: str = "tensorflow",
    cuda: Optional[str] = "default",
    location: str = SITE,
    tags: Optional[tuple[str, ...]] = None,
    is_cuda: bool = True,
) -> TensorFlowBuild:
    cuda_v, cudnn, ccs, tag = BUILDS.get(version, BUILDS["2.21.0"])
    return TensorFlowBuild(
        distribution=distribution,
        version=version,
        location=location,
        package_dir=f"{location}/tensorflow",
        build_info_path=f"{location}/tensorflow/python/platform/build_info.py",
        cuda_version=(cuda_v if cuda == "default" else cuda) if is_cuda else None,
        cudnn_version=cudnn if is_cuda else None,
        compute_capabilities=ccs if is_cuda else (),
        is_cuda_build=is_cuda,
        is_rocm_build=False,
        is_tensorrt_build=False,
        wheel_tags=tags if tags is not None else (tag,),
        wheel_path=f"{location}/{distribution}-{version}.dist-info/WHEEL",
        metadata_path=f"{location}/{distribution}-{version}.dist-info/METADATA",
    )


def make_env(
    tf: Optional[str] = "2.21.0",
    packages: Optional[dict[str, str]] = None,
    extra: Iterable[Package] = (),
    python: Optional[str] = "3.11.7",
    driver: Optional[str] = None,
    gpus: Sequence[Gpu] = (),
    unknowns: Sequence[Unknown] = (),
    tf_builds: Optional[Sequence[TensorFlowBuild]] = None,
    shadowed: Sequence[Package] = (),
    native: Optional[NativeLibraries] = None,
    cpu_flags: Sequence[str] = (),
) -> Environment:
    """A TF venv whose TF requirements are met unless `packages` says otherwise.

    `native`: the libraries TF loads (issue 4); `cpu_flags`: /proc/cpuinfo flags of the node.
    """
    pkgs = []
    versions = {
        "numpy": "2.1.0",
        "protobuf": "6.31.1",
        "keras": "3.12.0",
        "ml-dtypes": "0.5.1",
        "h5py": "3.14.0",
        "absl-py": "2.1.0",
    }
    if tf in ("2.15.1",):
        versions.update({"numpy": "1.26.4", "protobuf": "4.25.3", "keras": "2.15.0", "ml-dtypes": "0.3.2"})
    if tf == "2.14.0":
        versions.update({"numpy": "1.26.4", "keras": "2.14.0", "ml-dtypes": "0.2.0"})
    versions.update(packages or {})
    builds = list(tf_builds) if tf_builds is not None else ([tf_build(tf)] if tf else [])
    for b in builds:
        pkgs.append(
            pkg(
                b.distribution,
                b.version,
                TF_DEPS.get(b.version, ()),
                requires_python=">=3.10" if b.version == "2.21.0" else ">=3.9",
            )
        )
    for name, version in versions.items():
        if version is not None:
            pkgs.append(pkg(name, version))
    pkgs += list(extra)
    unk = list(unknowns)
    if not builds:
        unk.append(Unknown("tensorflow", f"no TensorFlow distribution installed in {SITE}"))
    if driver is None and not any(u.fact == "driver" for u in unk):
        unk.append(Unknown("driver", "no NVIDIA driver on this node (test)"))
    return Environment(
        host=Host(
            node_name="node-1",
            node_name_source="--node-name",
            platform=Platform(os_release="Ubuntu 22.04", arch="x86_64", glibc="2.35", cpu_flags=tuple(cpu_flags)),
            driver=Driver(kernel_module_version=driver, kernel_module_source="/proc/driver/nvidia/version")
            if driver
            else None,
            gpus=tuple(gpus),
        ),
        target=Target(
            python=PythonInfo("/venv/bin/python", python, "cpython", (SITE,), "test"),
            site_packages=(SITE,),
            packages=tuple(pkgs),
            shadowed_packages=tuple(shadowed),
            tensorflow=tuple(builds),
            native=native,
        ),
        unknowns=tuple(unk),
        tool_version="test",
        created="2026-11-25T00:00:00+00:00",
    )


def run_rule(env: Environment, matrix, rule_id: str):
    """(findings, skips) of one rule."""
    from tfcompat.rules import evaluate

    report = evaluate(env, matrix, select=[rule_id])
    # the engine turns a rule's exception into a report error (other rules still run); a test must see it,
    # else `findings == []` passes for a rule that crashed before it could report
    crashed = [e for e in report.errors if e.startswith(f"rule {rule_id} ") and " failed: " in e]
    assert not crashed, crashed
    return [f for f in report.findings if f.rule == rule_id], [s for s in report.skipped if s.rule == rule_id]
