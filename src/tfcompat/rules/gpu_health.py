"""8xx, per GPU: the node's GPUs before the job starts: memory another process holds, ECC errors and page
retirement / row remapping, persistence mode (node facts: judged in every --scope)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Gpu, Severity
from tfcompat.rules.gpus import gpu_fact, gpu_name
from tfcompat.rules.resources import threshold

Result = Iterator[Union[Hit, NotApplicable]]


def _gpu_ev(g: Gpu, fact: str, value: str) -> Evidence:
    return gpu_fact(g, fact, value)


@rule("TFC804", "gpu-memory-in-use", Severity.WARNING, requires=("gpus",))
def gpu_memory_in_use(env: Environment, matrix: Matrix) -> Result:
    """Another process already holds memory on a GPU.

    What: NVML reports compute processes on the GPU, or more memory in use than an idle GPU's
    driver reservations (1 GiB), before the job starts.

    Why it crashes: TensorFlow reserves most of each visible GPU's memory at start; with another
    process there it fails with CUDA_ERROR_OUT_OF_MEMORY ("failed to allocate ... from device") or
    "Resource exhausted" at the first large tensor. A leftover process of a killed job is the
    usual cause.

    How to fix: find and stop the process (nvidia-smi lists its PID on the host), hide the GPU from
    the job (CUDA_VISIBLE_DEVICES), or drain the node until the GPU is free. In shared setups use
    `tf.config.experimental.set_memory_growth`.
    """
    floor, src = threshold(matrix, "gpu_memory_used_mib")
    err_pct, _ = threshold(matrix, "gpu_memory_used_percent_error")
    for g in env.host.gpus:
        used = g.memory_used_mib
        busy = bool(g.processes) or (used is not None and used > floor)
        if not busy:
            continue
        procs = ", ".join(
            f"PID {p.pid}" + (f" {p.name}" if p.name else "") + (f" ({p.used_mib} MiB)" if p.used_mib else "")
            for p in g.processes
        )
        ev = [
            _gpu_ev(g, "memory_used_mib", str(used) if used is not None else "?"),
            Evidence("threshold", f"{floor} MiB", src),
        ]
        ev += [_gpu_ev(g, "process", f"{p.pid} {p.name or ''}".strip()) for p in g.processes]
        heavy = used is not None and g.memory_total_mib and used * 100 >= g.memory_total_mib * err_pct
        yield Hit(
            message=f"{gpu_name(g)} already has {used if used is not None else '?'} MiB"
            + (f" of {g.memory_total_mib} MiB" if g.memory_total_mib else "")
            + " in use"
            + (f" by {procs}" if procs else "")
            + ": TensorFlow's allocation there can fail with out-of-memory",
            evidence=tuple(ev),
            remediation="Stop the leftover process (nvidia-smi on the host shows it), hide this GPU with "
            "CUDA_VISIBLE_DEVICES, or drain the node until it is free.",
            severity=Severity.ERROR if heavy else None,
        )


@rule("TFC805", "gpu-ecc-errors", Severity.ERROR, requires=("gpus",))
def gpu_ecc_errors(env: Environment, matrix: Matrix) -> Result:
    """A GPU has uncorrectable ECC errors, a pending page retirement or a pending row remap.

    What: NVML reports volatile uncorrectable ECC errors since the driver loaded, retired pages
    waiting for a reboot (before Ampere), or row remapping waiting for a GPU reset or failed
    (Ampere and newer).

    Why it crashes: jobs touching the bad memory die at random with "uncorrectable ECC error
    encountered" (Xid 48/63/64/94/95) or CUDA_ERROR_ECC_UNCORRECTABLE, often hours in.

    How to fix: drain the node, reset the GPU (`nvidia-smi -r`) or reboot so the retirement /
    remapping takes effect; a remap failure or repeated errors mean the GPU needs an RMA.
    """
    for g in env.host.gpus:
        problems: list[str] = []
        ev: list[Evidence] = []
        if g.ecc_uncorrected_volatile:
            problems.append(f"{g.ecc_uncorrected_volatile} uncorrectable ECC error(s) since the driver loaded")
            ev.append(_gpu_ev(g, "ecc_uncorrected_volatile", str(g.ecc_uncorrected_volatile)))
        if g.retired_pages_pending:
            problems.append("a page retirement pending (needs a reboot)")
            ev.append(_gpu_ev(g, "retired_pages_pending", "true"))
        if g.remap_pending:
            problems.append("a row remap pending (needs a GPU reset)")
            ev.append(_gpu_ev(g, "remap_pending", "true"))
        if g.remap_failure:
            problems.append("a row remapping failure (the GPU needs replacing)")
            ev.append(_gpu_ev(g, "remap_failure", "true"))
        if not problems:
            continue
        yield Hit(
            message=f"{gpu_name(g)} has " + "; ".join(problems) + ": jobs on it fail at random",
            evidence=tuple(ev),
            remediation=(
                "Drain the node and RMA the GPU."
                if g.remap_failure
                else f"Drain the node, then reset the GPU (nvidia-smi -r -i {g.index}) or reboot so the "
                "retirement/remap takes effect; if errors recur, RMA it."
            ),
        )


@rule("TFC806", "persistence-mode-off", Severity.INFO, requires=("gpus",))
def persistence_off(env: Environment, matrix: Matrix) -> Result:
    """Persistence mode is off on a multi-GPU node.

    What: NVML reports persistence mode disabled on some GPUs of a node with several GPUs.

    Why it crashes: it does not; but without it the driver tears the GPUs down between jobs, so each
    start pays seconds of initialisation per GPU and health checks see GPUs in odd states.

    How to fix: enable the persistence daemon (`systemctl enable --now nvidia-persistenced`) or
    `nvidia-smi -pm 1`.
    """
    if len(env.host.gpus) < 2:
        return
    off = [g for g in env.host.gpus if g.persistence_mode is False]
    if off:
        yield Hit(
            message=f"persistence mode is off on GPU {', '.join(str(g.index) for g in off)} of "
            f"{len(env.host.gpus)}: every job start re-initialises them",
            evidence=tuple(_gpu_ev(g, "persistence_mode", "false") for g in off),
            remediation="systemctl enable --now nvidia-persistenced (or nvidia-smi -pm 1).",
        )
