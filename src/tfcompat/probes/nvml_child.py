"""Runs in a child process (``python -m tfcompat.probes.nvml_child``): asks NVML, prints one JSON line.

NVML is a native library: loading it can hang or crash on a sick node, so tfcompat never loads it
in its own process (see nvidia.py, which starts this with a time limit). Only this module imports pynvml.
"""

from __future__ import annotations

import json
import sys


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _optional(fn, *args):
    """A per-GPU attribute some GPUs or drivers do not support: None instead of failing the GPU."""
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


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
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            cc = _optional(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
            mem = _optional(pynvml.nvmlDeviceGetMemoryInfo, handle)
            mig = _optional(pynvml.nvmlDeviceGetMigMode, handle)
            pci = _optional(pynvml.nvmlDeviceGetPciInfo, handle)
            persistence = _optional(pynvml.nvmlDeviceGetPersistenceMode, handle)
            out["gpus"].append({
                "index": index,
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                "pci_bus_id": _text(pci.busId) if pci is not None else None,
                "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
                "memory_total_mib": int(mem.total) // (1024 * 1024) if mem is not None else None,
                "mig_mode": bool(mig[0]) if mig else None,
                "persistence_mode": bool(persistence) if persistence is not None else None,
            })
        return out
    except pynvml.NVMLError as exc:
        return {"ok": False, "error": int(getattr(exc, "value", -1)), "detail": str(exc)}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a failed NVML must not hide the answer
            pass


def main() -> None:
    json.dump(query(), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
