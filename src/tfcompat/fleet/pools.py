"""Pools: sets of nodes that run one job, declared to the gate, that must share GPU model, driver, CUDA driver API
and MIG mode (TFC613), and whose every node must report (TFC614).

A group (``--group-by``) says "compare these nodes and show where they differ": unknown values never count, and
most differences are warnings. A pool is a promise the job relies on: NCCL, the collective ops and a model
sized for one GPU need every node of the job alike. So within a pool a node whose driver is missing, or whose
GPUs could not be read, is a difference (it cannot run the pool's job), and every difference is an error.

- ``--pool NAME=NODESET`` (repeatable): the nodes of a folded node set (``gpu-[001-004]``), as ``--expect`` reads it.
- ``--pool-by KEY`` (or ``label:KEY``): one pool per value of the label KEY in the ``--expect`` file
  (``gpu-[001-064] pool=h100``), named by the value; nodes without the label are in no pool.

A node may be in several pools (a rack and a job): each pool is judged on its own. With ``--expect``, every pool
node must be expected. A pool node without a fresh report that carries an environment (none, unreadable, stale,
or its check could not run) is TFC614: the pool cannot be shown to agree, and the gate is incomplete (exit 2),
as it is for a node missing from ``--expect``; it never fails the gate by itself.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Optional

from tfcompat.fleet.drift import pool_facts
from tfcompat.fleet.nodeset import MAX_NODES, NodeSetError, abbreviate, expand, fold
from tfcompat.fleet.read import GateError
from tfcompat.fleet.report import Drift, Outlier, Pool
from tfcompat.model import Report, Severity

POOL_MISMATCH = "TFC613"
POOL_UNREPORTED = "TFC614"
UNKNOWN_VALUES = ("(unknown)", "(no driver found)")  # what pool_facts says where the driver or GPUs are not known


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """One declared pool: its name, how it was declared, and its nodes in declaration order."""

    name: str
    declared_by: str  # "--pool gpu-[001-004]" or "label pool=h100"
    nodes: tuple[str, ...]


def parse_pools(
    values: Sequence[str],
    pool_by: Optional[str],
    labels: Optional[Mapping[str, Mapping[str, str]]],
    expected: Optional[Sequence[str]],
) -> tuple[PoolSpec, ...]:
    """The pools of ``--pool NAME=NODESET`` values and ``--pool-by KEY`` (labels of the --expect file)."""
    pools: list[PoolSpec] = []
    total = 0
    for value in values:
        name, eq, nodeset = value.partition("=")
        name, nodeset = name.strip(), nodeset.strip()
        if not eq or not name or not nodeset:
            raise GateError(f"--pool {value!r}: expected NAME=NODESET, e.g. train-a=gpu-[001-004]")
        try:
            nodes = expand(nodeset, MAX_NODES - total)
        except NodeSetError as exc:
            raise GateError(f"--pool {name}: {exc}") from None
        total += len(nodes)
        pools.append(PoolSpec(name, f"--pool {nodeset}", tuple(nodes)))
    if pool_by:
        key = pool_by[len("label:") :] if pool_by.startswith("label:") else pool_by
        if labels is None:
            raise GateError(f"--pool-by {pool_by}: labels come from an --expect file (NODESET {key}=VALUE per line)")
        by_value: dict[str, list[str]] = collections.defaultdict(list)
        for node, node_labels in labels.items():
            if node_labels.get(key):
                by_value[node_labels[key]].append(node)
        if not by_value:
            raise GateError(f"--pool-by {pool_by}: no node in the --expect file has a label {key}=VALUE")
        pools += [PoolSpec(v, f"label {key}={v}", tuple(by_value[v])) for v in sorted(by_value)]
    seen: set[str] = set()
    for p in pools:
        if p.name in seen:
            raise GateError(f"pool {p.name!r} is declared twice (--pool names and --pool-by values must differ)")
        seen.add(p.name)
    if expected is not None:
        scope = set(expected)
        for p in pools:
            outside = [n for n in p.nodes if n not in scope]
            if outside:
                raise GateError(
                    f"pool {p.name} ({p.declared_by}): {abbreviate(fold(outside), 80)} not in --expect: "
                    "a pool's nodes must be expected"
                )
    return tuple(pools)


def judge_pools(
    specs: Sequence[PoolSpec],
    reports: Mapping[str, Report],
    absent: Mapping[str, frozenset[str]],
    why_not: Mapping[str, str],
) -> tuple[Pool, ...]:
    """Each pool: TFC613 per fact on which its reporting nodes differ, TFC614 for its nodes without a usable report.

    `reports`: the fresh, expected node reports that carry an environment; `why_not`: for other nodes that were
    read, why their report does not count ("stale report", ...); any other node has no readable report."""
    out = []
    for spec in specs:
        members = [n for n in spec.nodes if n in reports]
        unreported: dict[str, list[str]] = collections.defaultdict(list)
        for n in spec.nodes:
            if n not in reports:
                unreported[why_not.get(n, "no readable report")].append(n)
        findings = _mismatches(spec.name, [(n, reports[n], absent.get(n, frozenset())) for n in members])
        missing = sorted(n for ns in unreported.values() for n in ns)
        if missing:
            findings.append(_unreported(spec.name, members, unreported))
        status = "fail" if any(f.rule == POOL_MISMATCH for f in findings) else ("incomplete" if missing else "pass")
        out.append(
            Pool(
                spec.name,
                spec.declared_by,
                status,
                len(spec.nodes),
                fold(spec.nodes),
                len(members),
                fold(members),
                tuple(missing),
                fold(missing),
                tuple(findings),
            )
        )
    return tuple(out)


def _ranked(values: Mapping[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Most nodes first; ties: the value seen on the alphabetically first node (as drift ranks them)."""
    return sorted(values.items(), key=lambda kv: (-len(kv[1]), min(kv[1]), kv[0]))


def _finding(rule: str, fact: str, severity: Severity, pool: str, values: Mapping[str, list[str]], why: str) -> Drift:
    (major, major_nodes), rest = _ranked(values)[0], _ranked(values)[1:]
    outliers = tuple(Outlier(v, len(ns), fold(sorted(ns)), tuple(sorted(ns))) for v, ns in rest)
    shown = "; ".join(f"{o.value} on {abbreviate(o.nodeset, 80)}" for o in outliers[:5]) + (
        f"; {len(outliers) - 5} more values" if len(outliers) > 5 else ""
    )
    count = len(major_nodes)
    message = f"{fact} differs in pool {pool}: {major} on {count} node{'' if count == 1 else 's'}, but {shown}{why}"
    return Drift(rule, fact, severity, pool, major, count, fold(sorted(major_nodes)), outliers, message)


def _mismatches(pool: str, members: Sequence[tuple[str, Report, frozenset[str]]]) -> list[Drift]:
    per_fact: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for node, report, absent in members:
        for fact, value in pool_facts(report, absent).items():
            per_fact[fact][value].append(node)
    out = []
    for fact, values in per_fact.items():  # in pool_facts' order: GPU model, driver, CUDA driver API, MIG mode
        if len(values) > 1:
            unknown = any(v in UNKNOWN_VALUES for v in values)
            why = ": a node whose driver or GPUs are not known cannot be shown to run the pool's job" if unknown else ""
            out.append(_finding(POOL_MISMATCH, fact, Severity.ERROR, pool, values, why))
    return out


def _unreported(pool: str, members: Sequence[str], unreported: Mapping[str, list[str]]) -> Drift:
    outliers = tuple(
        Outlier(f"({why})", len(ns), fold(sorted(ns)), tuple(sorted(ns))) for why, ns in sorted(unreported.items())
    )
    count = sum(o.count for o in outliers)
    shown = "; ".join(f"{o.value[1:-1]}: {abbreviate(o.nodeset, 80)}" for o in outliers)
    message = (
        f"{count} node{'' if count == 1 else 's'} of pool {pool} without a fresh report ({shown}): "
        "the pool cannot be shown to agree"
    )
    return Drift(
        POOL_UNREPORTED,
        "report",
        Severity.WARNING,
        pool,
        "fresh report",
        len(members),
        fold(members),
        outliers,
        message,
    )


__all__ = ["POOL_MISMATCH", "POOL_UNREPORTED", "PoolSpec", "judge_pools", "parse_pools"]
