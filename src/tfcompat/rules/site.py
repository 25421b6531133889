"""Site facts from a matrix overlay (``--matrix-overlay FILE``): rules a site states, not the world.

Waivers in an overlay need no rule: the CLI hands them to the engine like ``--ignore``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix, spec_text
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import required_driver

Result = Iterator[Union[Hit, NotApplicable]]


@rule("TFC202", "driver-known-bad", Severity.ERROR, requires=("driver",))
def driver_known_bad(env: Environment, matrix: Matrix) -> Result:
    """The NVIDIA driver is in a range the site (or the matrix) records as known bad.

    What: a `[[known_bad_driver]]` entry, usually from a site overlay (`--matrix-overlay FILE`),
    matches the node's driver version. The entry states the range, the reason, where the problem is
    recorded (a ticket, a bug report, NVIDIA's release notes) and the severity the site chose.

    Why it crashes: the reason is site knowledge the public matrix cannot have: a driver release with
    a regression on this hardware (Xid errors, hangs under NCCL, ECC or MIG trouble), or one a vendor
    support case ruled out. Jobs scheduled onto such a node fail or produce wrong results.

    How to fix: install a driver outside the range (the entry's source says which one is good), drain
    the node until then, or remove the entry from the overlay once the problem is fixed.
    """
    driver = required_driver(env)
    version = driver.version
    if not version:
        yield NotApplicable("the driver version is unknown")
        return
    for bad in matrix.known_bad(version):
        spec = spec_text(bad.versions) or ""
        yield Hit(
            message=f"NVIDIA driver {version} is in the known-bad range {spec} ({bad.origin}): {bad.reason}",
            evidence=(
                Evidence("driver.version", version, driver.version_source),
                Evidence("known-bad driver range", spec, ", ".join(bad.source)),
            ),
            remediation=f"Install an NVIDIA driver outside {spec} (see {bad.source[0]}), or drain the node "
            "until it is upgraded.",
            severity=Severity(bad.severity),
        )
