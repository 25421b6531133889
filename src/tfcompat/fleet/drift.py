"""6xx: drift across the nodes of a group, registered like every other rule (``scope="fleet"``).

``tfcompat check`` never runs these (evaluate() skips fleet rules); ``tfcompat gate`` does: each rule reads one
fact from every fresh, expected node's typed report, and where the nodes of a group disagree, the gate reports
the majority value and the outliers as folded node lists. A rule returns ``{fact: value}`` for one node, value
None where the fact is unknown (unknowns never count as drift); a rule over a list of items (libraries, custom
ops) returns one fact per item, or None where the report carries no such list: a node whose report lists such
items but lacks one that others have shows "(absent)" for it.
"""

from __future__ import annotations

import collections
import posixpath
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, Optional, cast

from tfcompat.engine import Rule, registered, rule
from tfcompat.fleet.facts import library_items, text_of
from tfcompat.fleet.nodeset import abbreviate, fold
from tfcompat.model import Environment, Gpu, Report, Severity

if TYPE_CHECKING:  # the gate imports fleet.report anyway; `check` only registers these rules
    from tfcompat.fleet.report import Drift

Facts = Optional[dict[str, Optional[str]]]
FleetRuleFunc = Callable[[Report, frozenset[str]], Facts]  # what a scope="fleet" rule's function is
ABSENT = "(absent)"
# Fields whose absence from a report (an older release) means "not collected", where the decoded default (an
# empty list) would mean "none": the gate records which of them a report lacks, and the rules below honour it.
LIST_FIELDS = ("host.gpus", "target.custom_ops")


def _gpus(env: Optional[Environment], absent: frozenset[str]) -> Optional[tuple[Gpu, ...]]:
    """The node's GPUs; None where they are unknown (not "no GPUs")."""
    if env is None:
        return None
    if env.host.gpus:
        return env.host.gpus
    if {"gpus", "driver"} & {u.fact for u in env.unknowns} or "host.gpus" in absent:
        return None
    return ()


@rule("TFC601", "tensorflow-drift", Severity.ERROR, scope="fleet")
def tensorflow_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The nodes of a group run different TensorFlow distributions or versions.

    What: the gate compares the effective TensorFlow (distribution and version: the first one on the
    interpreter's path) of every fresh, expected node of a group; the majority value and the outliers are
    listed as folded node lists.

    Why it crashes: a multi-node job runs one program on every node. With another TensorFlow on some
    nodes, collective ops and distributed runtimes (MultiWorkerMirroredStrategy, parameter servers) fail to
    connect or hang, a SavedModel or checkpoint written on one node fails to load on another, and a node
    on a release outside the matrix fails on its own.

    How to fix: install the same TensorFlow on every node (one image or one lock file), then check the
    outliers again and re-run the gate.
    """
    tf = report.environment.tensorflow if report.environment else None
    return {"TensorFlow": f"{tf.distribution} {tf.version}" if tf else None}


@rule("TFC602", "python-drift", Severity.WARNING, scope="fleet")
def python_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The nodes of a group run different Python versions.

    What: the gate compares the version of the interpreter the job will use on each node.

    Why it crashes: wheels with compiled code (TensorFlow, numpy, custom ops) are built per Python minor
    version: a job that pickles objects or ships a virtual environment between nodes fails to import or to
    unpickle them on a node with another Python, and results may differ between patch releases.

    How to fix: use the same Python on every node (one image, one interpreter build); re-run the gate.
    """
    env = report.environment
    return {"Python": text_of(env.target.python.version) if env else None}


@rule("TFC603", "tensorflow-build-drift", Severity.WARNING, scope="fleet")
def tensorflow_build_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The TensorFlow builds of a group were compiled with different CUDA or cuDNN versions.

    What: the gate compares the CUDA and cuDNN versions that each node's TensorFlow build states
    (``build_info.py``), or that it is not a CUDA build.

    Why it crashes: a build for another CUDA needs other libraries and another driver floor: the same job
    runs on the GPU on some nodes and falls back to the CPU, or fails to load its CUDA libraries, on others.

    How to fix: install the same TensorFlow build (the same wheel, e.g. ``tensorflow[and-cuda]`` of one
    version) on every node.
    """
    tf = report.environment.tensorflow if report.environment else None
    if tf and tf.is_cuda_build:
        value: Optional[str] = f"CUDA {tf.cuda_version or '?'}, cuDNN {tf.cudnn_version or '?'}"
    elif tf and tf.is_cuda_build is False:
        value = "not a CUDA build"
    else:
        value = None
    return {"TensorFlow build CUDA/cuDNN": value}


@rule("TFC604", "cuda-library-drift", Severity.WARNING, scope="fleet")
def cuda_library_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The CUDA libraries that the loader picks for TensorFlow differ between the nodes of a group.

    What: for each library TensorFlow loads (CUDA runtime, cuDNN, NCCL, cuBLAS, ...), the gate compares the
    version of the file the loader picks on each node, "(not found)" and "(absent)" included. cuDNN
    sub-libraries and the driver's libcuda are left out (cuDNN and the driver stand for them).

    Why it crashes: another cuDNN or NCCL on one node gives other kernels and other collective protocols:
    a multi-node job hangs or fails in NCCL initialisation, or one node fails to load a library the others
    find (a system copy shadowing the wheel's).

    How to fix: install the libraries the same way on every node (the ``nvidia-*`` wheels of one lock file,
    or one image), and remove stray copies from ``LD_LIBRARY_PATH`` and the ld.so cache.
    """
    items = library_items(report.environment.target) if report.environment else None
    return None if items is None else {f"CUDA library {name}": value for name, value in items}


@rule("TFC605", "driver-drift", Severity.WARNING, scope="fleet")
def driver_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The nodes of a group run different NVIDIA driver versions.

    What: the gate compares each node's driver version (NVML's, else the kernel module's).

    Why it crashes: a driver below a CUDA version's floor cannot initialise it; between releases, driver
    bugs and fixes differ: a job works on most nodes and fails, hangs or runs slower on the outliers.

    How to fix: roll the same driver out to every node of the group (drain, upgrade, reboot the outliers).
    """
    driver = report.environment.host.driver if report.environment else None
    return {"NVIDIA driver": text_of(driver.version) if driver else None}


@rule("TFC606", "gpu-model-drift", Severity.WARNING, scope="fleet")
def gpu_model_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The nodes of a group have different GPU models.

    What: the gate compares the set of GPU model names on each node ("no GPU" where it has none).

    Why it crashes: a job sized for one GPU (memory, compute capability, features such as FP8) runs out of
    memory or fails to find kernels on another; synchronous data-parallel training runs at the pace of the
    slowest model.

    How to fix: schedule the job on one GPU model (a partition, a node label or a constraint), or group the
    gate by model (``--group-by environment.host.gpus.0.name``) where mixed pools are intended.
    """
    gpus = _gpus(report.environment, absent)
    return {"GPU model": None if gpus is None else ", ".join(sorted({g.name or "?" for g in gpus})) or "no GPU"}


@rule("TFC607", "gpu-count-drift", Severity.WARNING, scope="fleet")
def gpu_count_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The nodes of a group see different numbers of GPUs.

    What: the gate compares how many GPUs each node reports.

    Why it crashes: a job that starts one process per GPU, or a fixed global batch split across GPUs,
    fails or hangs where a GPU is missing (fallen off the bus, hidden by CUDA_VISIBLE_DEVICES or the
    scheduler, or in MIG mode).

    How to fix: find why the outliers see fewer GPUs (``nvidia-smi``, the kernel log, the scheduler's
    GPU allocation) and repair or drain them.
    """
    gpus = _gpus(report.environment, absent)
    return {"GPU count": None if gpus is None else str(len(gpus))}


@rule("TFC608", "compute-capability-drift", Severity.WARNING, scope="fleet")
def compute_capability_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The GPUs of a group have different compute capabilities.

    What: the gate compares the set of compute capabilities of each node's GPUs.

    Why it crashes: TensorFlow ships kernels for some compute capabilities and PTX for others: a GPU
    without matching SASS JIT-compiles for minutes at start-up, or has no kernel at all.

    How to fix: schedule the job on one GPU generation, or group the gate by GPU model where mixed pools
    are intended.
    """
    gpus = _gpus(report.environment, absent)
    ccs = sorted({g.compute_capability for g in gpus if g.compute_capability}) if gpus is not None else []
    return {"GPU compute capability": ", ".join(ccs) or None}


@rule("TFC609", "mig-mode-drift", Severity.WARNING, scope="fleet")
def mig_mode_drift(report: Report, absent: frozenset[str]) -> Facts:
    """MIG mode differs between the nodes of a group (or between the GPUs of one node: "mixed").

    What: the gate compares whether Multi-Instance GPU mode is enabled on each node's GPUs.

    Why it crashes: a GPU in MIG mode shows up as instances with a fraction of its memory and compute:
    a job sized for whole GPUs runs out of memory there, and NCCL peer-to-peer traffic between MIG instances
    is not supported.

    How to fix: set the same MIG mode on every node of the group (``nvidia-smi -mig 0|1``, then a GPU reset)
    or keep MIG nodes in a pool of their own.
    """
    gpus = _gpus(report.environment, absent)
    modes = {"enabled" if g.mig_mode else "disabled" for g in gpus or () if g.mig_mode is not None}
    return {"MIG mode": ("mixed" if len(modes) > 1 else modes.pop()) if modes else None}


@rule("TFC610", "custom-op-drift", Severity.WARNING, scope="fleet")
def custom_op_drift(report: Report, absent: frozenset[str]) -> Facts:
    """A custom-op library differs between the nodes of a group, or some nodes lack it.

    What: for each plugin that links TensorFlow (keyed by the distribution that installed it and its file
    name), the gate compares its GNU build-id where reports carry one, else whether it is there ("(absent)").

    Why it crashes: a plugin built against another TensorFlow fails to load with undefined symbols, and a
    missing one fails the import: the same job fails on some nodes only.

    How to fix: install the same build of the plugin on every node (one wheel, one image), built against the
    TensorFlow that the nodes run.
    """
    env = report.environment
    if env is None or "target.custom_ops" in absent:
        return None
    # keyed by owner and file name: venv paths differ between nodes, the plugin does not
    return {
        f"custom op {op.owner or '?'}:{posixpath.basename(op.path)}": (text_of(op.build_id) or "present")[:16]
        for op in env.target.custom_ops
    }


@rule("TFC611", "tfcompat-version-drift", Severity.INFO, scope="fleet")
def tfcompat_version_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The node reports were written by different tfcompat versions.

    What: the gate compares the tfcompat version of each node's report.

    Why it crashes: it does not crash a job; but tfcompat releases know different facts and rules, so two
    nodes may be judged differently for the same environment.

    How to fix: roll out one tfcompat version (the check's image or package) to every node.
    """
    return {"tfcompat version": text_of(report.tool_version)}


@rule("TFC612", "matrix-drift", Severity.INFO, scope="fleet")
def matrix_drift(report: Report, absent: frozenset[str]) -> Facts:
    """The node reports were judged with different compatibility matrices.

    What: the gate compares the date (``updated``) of the matrix each node's check used.

    Why it crashes: it does not crash a job; but an older matrix lacks newer facts (releases, driver floors,
    known-bad versions), so two nodes may be judged differently for the same environment.

    How to fix: use one matrix everywhere (the one shipped with one tfcompat version, or one ``--matrix``
    file distributed with the check).
    """
    return {"matrix": text_of(report.matrix.updated) if report.matrix else None}


@rule("TFC613", "pool-mismatch", Severity.ERROR, scope="fleet")
def pool_mismatch(report: Report, absent: frozenset[str]) -> Facts:
    """The nodes of a declared pool differ in GPU model, driver, CUDA driver API version or MIG mode.

    What: for each pool declared to the gate (``--pool NAME=NODESET``, ``--pool-by KEY``), the gate compares
    these facts of its nodes; unlike drift within a group, a node whose driver is missing or whose GPUs could
    not be read counts as a difference ("(no driver found)", "(unknown)"), not as unknown and ignored.

    Why it crashes: the nodes of a pool run one job. A node without a working driver cannot start it; another
    GPU model or MIG mode breaks a job sized for one GPU and NCCL's peer-to-peer transport; another driver or
    CUDA driver API gives other CUDA and NCCL behaviour on some ranks, and multi-node jobs hang or fail there.

    How to fix: repair or drain the outliers (install the pool's driver, reset MIG mode, replace the node),
    or take them out of the pool's node set or label, then re-run the gate.
    """
    facts: Facts = dict(pool_facts(report, absent))  # every value a text: unknown is a value of its own
    return facts


@rule("TFC614", "pool-node-unreported", Severity.WARNING, scope="fleet")
def pool_node_unreported(report: Report, absent: frozenset[str]) -> Facts:
    """A node of a declared pool has no fresh report that carries an environment.

    What: a pool's node sent no report, its report was unreadable or stale (``--max-age``), or its check could
    not run (a report without an environment). The gate is then incomplete (exit 2), as for a node missing from
    ``--expect``: a report may still come that shows the pool agrees; this never fails the gate by itself.

    Why it crashes: the pool cannot be shown to share one GPU model and driver; the job may be scheduled on a
    node nobody checked.

    How to fix: run the check on the node (or find why its report did not arrive), or take the node out of
    the pool's declaration.
    """
    return {"report": "fresh report" if report.environment is not None else None}


POOL_RULES = ("TFC613", "TFC614")  # judged per declared pool (fleet.pools), not by drift() within a group


def pool_facts(report: Report, absent: frozenset[str]) -> dict[str, str]:
    """What a pool's nodes must share; a fact that is not known is a value of its own, never None."""
    env = report.environment
    gpus = _gpus(env, absent)
    driver = env.host.driver if env is not None else None
    no_driver = "(no driver found)"
    if gpus is None:
        model = mig = "(unknown)"
    elif not gpus:
        model = mig = "no GPU"
    else:
        model = ", ".join(sorted({g.name or "?" for g in gpus}))
        modes = {"enabled" if g.mig_mode else "disabled" for g in gpus if g.mig_mode is not None}
        mig = ("mixed" if len(modes) > 1 else modes.pop()) if modes else "(not reported)"  # pre-Ampere: no MIG
    return {
        "GPU model": model,
        "NVIDIA driver": (text_of(driver.version) or "(unknown)") if driver else no_driver,
        "CUDA driver API version": (text_of(driver.cuda_driver_version) or "(unknown)") if driver else no_driver,
        "MIG mode": mig,
    }


# ---------------------------------------------------------------------------
# Comparing a group


def fleet_rules() -> list[Rule]:
    return [r for r in registered() if r.scope == "fleet"]  # this module registered them


def drift_rules() -> list[Rule]:
    return [r for r in fleet_rules() if r.id not in POOL_RULES]


def _majority(values: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Values by node count (most first; ties: the value seen on the alphabetically first node)."""
    return sorted(values.items(), key=lambda kv: (-len(kv[1]), min(kv[1]), kv[0]))


def drift(group: str, members: Sequence[tuple[str, Report, frozenset[str]]]) -> list[Drift]:
    """The drift within one group: (node, report, fields it lacks) of each member."""
    rules = drift_rules()
    per_fact: dict[tuple[str, str], dict[str, list[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    listed: dict[str, set[str]] = collections.defaultdict(set)  # rule -> nodes whose report lists its items
    facts_of: dict[tuple[str, str], set[str]] = collections.defaultdict(set)  # (rule, fact) -> nodes with it
    for node, report, absent in members:
        for r in rules:
            facts = cast(FleetRuleFunc, r.func)(report, absent)
            if facts is None:
                continue
            listed[r.id].add(node)
            for fact, value in facts.items():
                facts_of[(r.id, fact)].add(node)
                if value is not None:
                    per_fact[(r.id, fact)][value].append(node)
    # An item (a library, a custom op) that some reports list and others, which do list such items, lack.
    for (rule_id, fact), values in per_fact.items():
        lacking = sorted(listed[rule_id] - facts_of[(rule_id, fact)])
        if lacking:
            values[ABSENT].extend(lacking)
    severity = {r.id: r.severity for r in rules}
    from tfcompat.fleet.report import Drift, Outlier

    out: list[Drift] = []
    for (rule_id, fact), values in sorted(per_fact.items()):
        if len(values) < 2:
            continue
        ranked = _majority(values)
        (major, major_nodes), rest = ranked[0], ranked[1:]
        outliers = tuple(Outlier(v, len(ns), fold(sorted(ns)), tuple(sorted(ns))) for v, ns in rest)
        out_text = "; ".join(f"{o.value} on {abbreviate(o.nodeset, 80)}" for o in outliers[:5]) + (
            f"; {len(outliers) - 5} more values" if len(outliers) > 5 else ""
        )
        message = (
            f"{fact} differs in group {group}: {major} on {len(major_nodes)} node"
            f"{'s' if len(major_nodes) != 1 else ''}, but {out_text}"
        )
        out.append(
            Drift(
                rule_id,
                fact,
                severity[rule_id],
                group,
                major,
                len(major_nodes),
                fold(sorted(major_nodes)),
                outliers,
                message,
            )
        )
    return out
