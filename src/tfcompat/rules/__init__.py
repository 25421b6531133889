"""Rule families, by hundreds: 1xx TensorFlow and Python packages, 2xx driver and GPUs, 3xx CUDA
libraries, 4xx ROCm, 5xx custom ops, 6xx fleet, 7xx the import probe (--probe).

Importing this package registers every family with the engine; ``catalog()`` lists them. Callers
(CLI, gate, tests) hand that list to ``tfcompat.engine.evaluate(..., rules=catalog())`` and to
``parse_select`` / ``parse_ignores``; the engine itself never imports this package.
"""

from collections.abc import Mapping, Sequence
from typing import Optional

from tfcompat.engine import evaluate as _evaluate
from tfcompat.engine.registry import Rule, lookup, registered
from tfcompat.fleet import drift as fleet_drift  # noqa: F401  (6xx: registered here, judged by `gate` across nodes)
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Report, Scope, Severity
from tfcompat.rules import (  # noqa: F401  (each import registers one family)
    abi_floors,
    binaries,
    custom_ops,
    driver,
    forward_compat,
    gpu_health,
    gpus,
    libraries,
    library_copies,
    native_abi,
    probe,
    probe_libraries,
    provenance,
    resources,
    rocm,
    rocm_binaries,
    site,
    tensorflow,
)


def catalog() -> list[Rule]:
    """Every shipped rule (environment and fleet scope), by id."""
    return registered()


def find(ident: str) -> Optional[Rule]:
    """The shipped rule with this id (any case) or name."""
    return lookup(ident, catalog())


def evaluate(
    env: Environment,
    matrix: Matrix,
    fail_on: Severity = Severity.ERROR,
    select: Sequence[str] = (),
    ignore: Mapping[str, str] = {},
    scope: Optional[Scope] = None,
) -> Report:
    """tfcompat.engine.evaluate with every shipped rule: the verdict `tfcompat check` gives (`scope` None: the
    scope the environment was recorded with)."""
    return _evaluate(env, matrix, catalog(), fail_on=fail_on, select=select, ignore=ignore, scope=scope)
