"""The scan's wall-clock budget (#17 item 3, `--budget SECONDS`).

Simple and honest: scan() runs the probes in order and asks the budget before each one; the probes
with long loops (libraries: one search per library; custom ops: one object per RECORD entry and per
plugin) ask it between steps. A probe not started in time, or stopped part way, leaves an Unknown with
`reason` for the facts it did not finish, so the rules that need them are skipped and the verdict covers
the rest. One step cannot be interrupted: what bounds it is the per-kind size caps of Root's reads,
the ELF reader's bounds, and the child processes' own timeouts: NVML's and --probe's are cut to what is
left (a child stopped by the budget is reported as not finished, never as hung); the --python question
(probes/target.py, first, before any other probe) keeps its own 20 s limit.

The budget starts when the scan starts (after the command line and the matrix are read).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

# Seconds. A Slurm HealthCheckProgram is killed after 60 s: recipes run under Slurm pass a smaller --budget
# (below their own timeout(1)), so that a slow node still gets a verdict with unknowns instead of no report.
DEFAULT_BUDGET = 60.0


class Budget:
    """A deadline `seconds` after it is made; `Budget(None)` never expires."""

    def __init__(self, seconds: Optional[float] = None, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._start = clock()

    def __repr__(self) -> str:
        return f"Budget({self.seconds!r})"

    @property
    def reason(self) -> str:
        return f"not finished within the --budget of {self.seconds:g} s"

    def left(self) -> Optional[float]:
        """Seconds left (never below 0), None when unlimited."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (self._clock() - self._start))

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.0

    def cap(self, timeout: float) -> float:
        """`timeout`, or what is left of the budget when that is less."""
        left = self.left()
        return timeout if left is None else min(timeout, left)


UNLIMITED = Budget(None)
