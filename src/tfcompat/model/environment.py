"""The Environment: what a scan found about one node (Host) and one Python environment (Target).

``SNAPSHOT_VERSION`` is the version of its JSON form (``tfcompat scan`` writes it, ``check --from`` reads it).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Optional

from tfcompat.model.host import Host
from tfcompat.model.probe import ProbeResult
from tfcompat.model.target import Package, Target, TensorFlowBuild

SNAPSHOT_VERSION = 1


class Scope(str, enum.Enum):
    """Whose facts a check judges (``--scope``).

    ``job``: a check run where the job runs (its container, its Slurm step, CI on the job's environment) judges
    everything, the limits it runs under included. ``node``: a node agent (DaemonSet, node-problem-detector, Slurm
    health check, NHC) judges the node's facts (driver, GPUs, ECC, MIG, persistence, the host's ld.so.cache) and the
    environment as before, but the limits it sees (/dev/shm, RLIMIT_MEMLOCK, cgroup memory, CUDA_VISIBLE_DEVICES)
    are its own, not the job's: the rules that judge them report information only.
    """

    NODE = "node"
    JOB = "job"


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A fact a probe could not establish, and why (in words a user understands)."""

    fact: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Environment:
    """What a scan found about one node (Host) and one Python environment (Target)."""

    host: Host
    target: Target
    unknowns: tuple[Unknown, ...] = ()
    tool_version: str = ""
    created: str = ""  # ISO 8601 UTC
    snapshot_version: int = SNAPSHOT_VERSION
    probe: Optional[ProbeResult] = None  # `--probe`: TensorFlow imported in a child process
    scope: Scope = Scope.JOB  # `scan --scope`/`check --scope`: where it ran (absent in older snapshots: job)

    def unknown(self, fact: str) -> Optional[str]:
        """The reason `fact` (or a fact it is part of) is unknown, or None if it is known."""
        for u in self.unknowns:
            if fact == u.fact or fact.startswith(u.fact + "."):
                return u.reason
        return None

    def package(self, name: str) -> Optional[Package]:
        from packaging.utils import canonicalize_name

        want = canonicalize_name(name)
        for p in self.target.packages:
            if p.name == want:
                return p
        return None

    @property
    def tensorflow(self) -> Optional[TensorFlowBuild]:
        return self.target.tensorflow[0] if self.target.tensorflow else None
