"""node-problem-detector custom plugin output (``check --format npd``).

NPD runs the plugin, reads one line of output as the condition's message (``max_output_length``, 80 by
default) and maps the exit code: 0 OK, 1 NonOK (problem), anything else Unknown. ``check``'s own exit codes
map one to one: 0 pass -> OK, 1 fail -> NonOK, 2 could not decide -> Unknown (NPD's code 2).
"""

from __future__ import annotations

import re
from typing import Optional

from tfcompat.model import Report

MAX_LEN = 80
EXIT_OK, EXIT_PROBLEM, EXIT_UNKNOWN = 0, 1, 2


def npd_exit_code(report: Report) -> int:
    return {0: EXIT_OK, 1: EXIT_PROBLEM}.get(report.exit_code, EXIT_UNKNOWN)


def one_line(text: str, limit: int = MAX_LEN) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def render_npd(report: Report) -> str:
    counted = [f for f in report.findings if f.waived is None and f.severity.rank >= report.fail_on.rank]
    if report.status == "error":
        reason = report.errors[0] if report.errors else "unknown reason"
        line = f"tfcompat could not decide: {reason}"
    elif counted:
        f = counted[0]  # findings are sorted most severe first
        more = f" (+{len(counted) - 1})" if len(counted) > 1 else ""
        line = f"{f.rule}{more} {f.message}"
    else:
        env = report.environment
        tf = env.tensorflow if env is not None else None
        what = f"{tf.distribution} {tf.version}" if tf else "environment"
        driver: Optional[str] = env.host.driver.version if env is not None and env.host.driver else None
        line = f"tfcompat OK: {what}" + (f" on driver {driver}" if driver else "")
    return one_line(line) + "\n"


def render_npd_error(message: str) -> str:
    return one_line(f"tfcompat could not run: {message}") + "\n"
