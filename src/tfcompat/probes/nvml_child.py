"""Runs in a child process (``python -m tfcompat.probes.nvml_child``): asks NVML, prints one JSON line.

NVML is a native library: loading it can hang or crash on a sick node, so tfcompat never loads it
in its own process (see nvidia.py, which starts this with a time limit). Only this module imports pynvml.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _optional(fn, *args):
    """A per-GPU attribute some GPUs or drivers do not support: None instead of failing the GPU."""
    import pynvml

    if fn is None:  # an older pynvml without this query
        return None
    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def _comm(pid: int):
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _health(pynvml, handle) -> dict:
    """Memory in use, the processes holding it, ECC and page-retirement / row-remapping state."""
    q = lambda name, *a: _optional(getattr(pynvml, name, None), handle, *a)  # noqa: E731
    out: dict[str, Any] = {}  # JSON for the parent: counts, flags, and a list of process records
    mem = q("nvmlDeviceGetMemoryInfo")
    out["memory_used_mib"] = int(mem.used) // (1024 * 1024) if mem is not None else None
    procs = q("nvmlDeviceGetComputeRunningProcesses") or []
    out["processes"] = [
        {
            "pid": int(p.pid),
            "name": _comm(int(p.pid)),
            "used_mib": int(p.usedGpuMemory) // (1024 * 1024) if getattr(p, "usedGpuMemory", None) else None,
        }
        for p in procs
    ]
    ecc = q("nvmlDeviceGetEccMode")
    out["ecc_enabled"] = bool(ecc[0]) if ecc else None
    unc = getattr(pynvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1)
    out["ecc_uncorrected_volatile"] = q("nvmlDeviceGetTotalEccErrors", unc, getattr(pynvml, "NVML_VOLATILE_ECC", 0))
    out["ecc_uncorrected_aggregate"] = q("nvmlDeviceGetTotalEccErrors", unc, getattr(pynvml, "NVML_AGGREGATE_ECC", 1))
    pending = q("nvmlDeviceGetRetiredPagesPendingStatus")
    out["retired_pages_pending"] = bool(pending) if pending is not None else None
    retired = [q("nvmlDeviceGetRetiredPages", cause) for cause in (0, 1)]
    out["retired_pages"] = (
        sum(len(r) for r in retired if r is not None) if any(r is not None for r in retired) else None
    )
    remap = q("nvmlDeviceGetRemappedRows")
    out["remap_pending"] = bool(remap[2]) if remap else None
    out["remap_failure"] = bool(remap[3]) if remap else None
    return out


def query() -> dict:
    try:
        import pynvml
    except ImportError as exc:
        return {"ok": False, "error": "import", "detail": str(exc)}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"ok": False, "error": int(getattr(exc, "value", -1)), "detail": str(exc)}
    try:
        out = {"ok": True, "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()), "gpus": []}
        cuda = _optional(pynvml.nvmlSystemGetCudaDriverVersion_v2)
        if cuda:
            out["cuda_driver_version"] = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        out["gpu_errors"] = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                out["gpus"].append(_gpu(pynvml, index))
            except pynvml.NVMLError as exc:  # one sick GPU must not hide the others
                out["gpu_errors"].append({"index": index, "error": int(getattr(exc, "value", -1)), "detail": str(exc)})
        return out
    except pynvml.NVMLError as exc:
        return {"ok": False, "error": int(getattr(exc, "value", -1)), "detail": str(exc)}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a failed NVML must not hide the answer
            pass


def _gpu(pynvml, index: int) -> dict:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    cc = _optional(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
    mem = _optional(pynvml.nvmlDeviceGetMemoryInfo, handle)
    mig = _optional(pynvml.nvmlDeviceGetMigMode, handle)
    pci = _optional(pynvml.nvmlDeviceGetPciInfo, handle)
    persistence = _optional(pynvml.nvmlDeviceGetPersistenceMode, handle)
    return {
        "index": index,
        "name": _text(pynvml.nvmlDeviceGetName(handle)),
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        "pci_bus_id": _text(pci.busId) if pci is not None else None,
        "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
        "memory_total_mib": int(mem.total) // (1024 * 1024) if mem is not None else None,
        "mig_mode": bool(mig[0]) if mig else None,
        "persistence_mode": bool(persistence) if persistence is not None else None,
        **_health(pynvml, handle),
    }


def main() -> None:
    json.dump(query(), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
