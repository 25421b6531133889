"""Compose the example fleet (examples/fleet/gpu-*.json) from two real scans of one image and documented host facts.

Not shipped in the wheel; run from a checkout (see examples/README.md, "How the files were made")::

    PYTHONPATH=src python examples/compose.py IMAGE.json SHADOW.json --venv /tmp/tfex/venv \
        --cudnn-archive /tmp/tfex/opt/cudnn-linux-x86_64-9.1.0.70_cuda12-archive

IMAGE.json and SHADOW.json are `tfcompat scan` snapshots of the same venv (TensorFlow 2.21.0 with its [and-cuda]
wheels); SHADOW.json was taken with an unpacked cuDNN 9.1.0.70 archive first in LD_LIBRARY_PATH. Their
environment facts (packages, TensorFlow build, the libraries the loader picks, ABI checks) are kept as scanned;
only the two directory prefixes are renamed to the image's (/opt/venv, /opt/cudnn-...). The host facts (driver,
GPUs, limits, kernel) are replaced by the documented values below, and each composed snapshot is judged with
`tfcompat check --from SNAPSHOT -f json`, so every report is the tool's own output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from tfcompat.model import (
    Driver,
    DriverLibrary,
    Environment,
    Gpu,
    LibraryCopy,
    Resources,
    environment_from_json,
    to_json_dict,
)

HERE = Path(__file__).resolve().parent
VENV = "/opt/venv"
CUDNN_ARCHIVE = "/opt/cudnn-linux-x86_64-9.1.0.70_cuda12-archive"
GiB = 1 << 30

# NVIDIA DGX A100 (640 GB) user guide: 8 x A100-SXM4-80GB, 2 TB of memory, 8 ConnectX-6 compute HCAs; the GPUs'
# PCI bus ids as `nvidia-smi` lists them on a DGX A100.
A100_BUS_IDS = ("07", "0F", "47", "4E", "87", "90", "B7", "BD")
A100 = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_total_mib": 81920, "mig_mode": False}
DGX_RAM = 2048 * GiB
DGX_HCAS = tuple(f"mlx5_{i}" for i in (0, 1, 2, 3, 6, 7, 8, 9))
# An older PCIe server: 2 x Tesla M40 24GB (Maxwell, compute capability 5.2: TensorFlow 2.17+ builds have no
# kernels for it), 256 GiB of memory; driver R560 still supports Maxwell.
M40_BUS_IDS = ("04", "05")
M40 = {"name": "Tesla M40 24GB", "compute_capability": "5.2", "memory_total_mib": 23040, "mig_mode": None}
M40_RAM = 256 * GiB
# R560 production branch (CUDA 12.6) and an R470 long-term branch node (CUDA 11.4) not yet upgraded.
DRIVERS = {"560.35.03": "12.6", "470.82.01": "11.4"}
KERNEL = "5.15.0-105-generic"

# node -> (snapshot: "image" or "shadow", driver, GPU model); gpu-007 never reports
NODES = {
    "gpu-001": ("image", "560.35.03", "a100"),
    "gpu-002": ("image", "560.35.03", "a100"),
    "gpu-003": ("image", "470.82.01", "a100"),
    "gpu-004": ("image", "560.35.03", "a100"),
    "gpu-005": ("shadow", "560.35.03", "a100"),
    "gpu-006": ("image", "560.35.03", "m40"),
    "gpu-008": ("image", "560.35.03", "a100"),
}


def _gpu(node: str, index: int, bus: str, model: dict) -> Gpu:
    uid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{node}.gpu{index}.tfcompat.example")  # composed, stable
    ampere = model["mig_mode"] is not None
    return Gpu(
        index=index,
        name=model["name"],
        uuid=f"GPU-{uid}",
        pci_bus_id=f"00000000:{bus}:00.0",
        compute_capability=model["compute_capability"],
        memory_total_mib=model["memory_total_mib"],
        mig_mode=model["mig_mode"],
        persistence_mode=True,
        memory_used_mib=0,
        ecc_enabled=True,
        ecc_uncorrected_volatile=0,
        ecc_uncorrected_aggregate=0,
        retired_pages_pending=None if ampere else False,
        retired_pages=None if ampere else 0,
        remap_pending=False if ampere else None,
        remap_failure=False if ampere else None,
    )


def _host_facts(env: Environment, node: str, driver: str, model: str) -> Environment:
    a100 = model == "a100"
    gpus = tuple(
        _gpu(node, i, bus, A100 if a100 else M40) for i, bus in enumerate(A100_BUS_IDS if a100 else M40_BUS_IDS)
    )
    libdir = "/usr/lib/x86_64-linux-gnu"
    drv = Driver(
        kernel_module_version=driver,
        kernel_module_source="/proc/driver/nvidia/version",
        nvml_driver_version=driver,
        cuda_driver_version=DRIVERS[driver],
        libraries=tuple(
            DriverLibrary(soname=s, path=f"{libdir}/{s.rsplit('.', 1)[0]}.{driver}", version=driver)
            for s in ("libcuda.so.1", "libnvidia-ml.so.1")
        ),
    )
    ram = DGX_RAM if a100 else M40_RAM
    res = dataclasses.replace(
        env.host.resources or Resources(),
        shm_bytes=ram // 2,
        shm_free_bytes=ram // 2,
        memlock_soft=None,
        memlock_hard=None,
        nofile_soft=131072,
        nofile_hard=131072,
        cgroup_version=2,
        cgroup_memory_limit=None,
        cgroup_memory_current=12 * GiB,
        cgroup_source="/sys/fs/cgroup/system.slice/slurmstepd.scope/job_4242/memory.max",
        mem_total=ram,
        mem_available=ram - 24 * GiB,
        rdma_devices=DGX_HCAS if a100 else (),
    )
    native = env.target.native
    if native is not None:  # the loader finds the driver's libcuda.so.1 through ld.so.cache on a GPU node
        libs = tuple(
            dataclasses.replace(
                lib,
                found=LibraryCopy(
                    path=f"{libdir}/libcuda.so.1",
                    real_path=f"{libdir}/libcuda.so.{driver}",
                    found_via="ld.so.cache",
                    search_entry="/etc/ld.so.cache",
                    version=driver,
                    version_source=f"file name {libdir}/libcuda.so.{driver}",
                ),
            )
            if lib.soname == "libcuda.so.1" and lib.found is None
            else lib
            for lib in native.libraries
        )
        native = dataclasses.replace(native, libraries=libs)
    host = dataclasses.replace(
        env.host,
        node_name=node,
        node_name_source="$SLURMD_NODENAME",
        platform=dataclasses.replace(env.host.platform, kernel=KERNEL),
        driver=drv,
        gpus=gpus,
        resources=res,
    )
    unknowns = tuple(u for u in env.unknowns if u.fact not in ("driver", "gpus"))
    return dataclasses.replace(env, host=host, target=dataclasses.replace(env.target, native=native), unknowns=unknowns)


def _load(path: str, renames: dict[str, str]) -> Environment:
    text = Path(path).read_text(encoding="utf-8")
    for old, new in renames.items():
        text = text.replace(old, new)
    return environment_from_json(json.loads(text))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("image")
    ap.add_argument("shadow")
    ap.add_argument("--venv", required=True, help="the scanned venv's directory, renamed to " + VENV)
    ap.add_argument("--cudnn-archive", required=True, help="the unpacked cuDNN archive, renamed to " + CUDNN_ARCHIVE)
    ap.add_argument("--out", default=str(HERE / "fleet"))
    args = ap.parse_args(argv)
    renames = {args.cudnn_archive.rstrip("/"): CUDNN_ARCHIVE, args.venv.rstrip("/"): VENV}
    scans = {"image": _load(args.image, renames), "shadow": _load(args.shadow, renames)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for node, (scan, driver, model) in NODES.items():
            env = _host_facts(scans[scan], node, driver, model)
            snap = Path(tmp) / f"{node}.snapshot.json"
            snap.write_text(json.dumps(to_json_dict(env), indent=2) + "\n", encoding="utf-8")
            report = out / f"{node}.json"
            proc = subprocess.run(
                # the shipped matrix, named relative to the checkout (the report records the path as given)
                [
                    sys.executable,
                    "-m",
                    "tfcompat",
                    "check",
                    "--from",
                    str(snap),
                    "-f",
                    "json",
                    "-o",
                    str(report.resolve()),
                ]
                + ["--matrix", "data/compat_matrix.toml"],
                capture_output=True,
                text=True,
                cwd=HERE.parent,
            )
            print(f"{node}: exit {proc.returncode}", proc.stderr.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
