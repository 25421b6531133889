#!/usr/bin/env python3
"""Time `tfcompat check` against `import tensorflow` and `pip check` in the same environment.

    python scripts/bench.py --python /path/to/tf-venv/bin/python [--runs 7]
    python scripts/bench.py --python VENV/bin/python --tfcompat before=OLD --tfcompat after=NEW

Every command runs as a fresh process (what a user or a Slurm health check pays), the commands taking turns
within each round (paired: a busy neighbour slows them all alike). Per command: wall time and CPU time
(user + sys of the process and its children, from wait4) as the median of the runs after the first, the
first run apart (cold page cache after an install), and the peak RSS. Then the ratios the targets are stated
in: check / `import tensorflow` and check / `pip check`, by wall and by CPU time. Several --tfcompat
(NAME=EXECUTABLE) compare builds of tfcompat in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import NamedTuple


class Run(NamedTuple):
    wall: float
    cpu: float
    rss_kib: int


def timed(cmd: list[str], env: dict[str, str]) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode not in (0, 1):
        tail = err.decode("utf-8", "replace").strip()[-400:]
        sys.exit(f"{' '.join(cmd)} failed with exit {proc.returncode}: {tail}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, help="interpreter of a venv with TensorFlow installed")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--tfcompat",
        action="append",
        default=[],
        metavar="[NAME=]EXECUTABLE",
        help="tfcompat executable (repeatable, NAME=PATH to compare builds; default: tfcompat on PATH)",
    )
    ap.add_argument("--no-scan", action="store_true", help="time `check` only, not `scan`")
    args = ap.parse_args()
    builds: list[tuple[str, list[str]]] = []
    for spec in args.tfcompat or [shutil.which("tfcompat") or ""]:
        name, _, exe = spec.rpartition("=") if "=" in spec else ("tfcompat", "", spec)
        builds.append((name, [exe] if exe else [sys.executable, "-m", "tfcompat"]))
    quiet = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    plain = dict(os.environ)
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name, tfc in builds:
        commands[f"{name} check"] = (tfc + ["check", "--python", args.python, "--no-color"], plain)
        if not args.no_scan:
            commands[f"{name} scan"] = (tfc + ["scan", "--python", args.python], plain)
    commands["import tensorflow"] = ([args.python, "-c", "import tensorflow"], quiet)
    commands["pip check"] = ([args.python, "-m", "pip", "check", "--disable-pip-version-check"], plain)
    runs: dict[str, list[Run]] = {k: [] for k in commands}
    for _round in range(args.runs):
        for key, (cmd, env) in commands.items():
            runs[key].append(timed(cmd, env))
    print(f"{args.python}: {args.runs} rounds, the commands taking turns; medians of runs 2..{args.runs}")
    print(f"{'':<24} {'wall':>8} {'cpu':>8} {'first wall':>11} {'peak RSS':>9}")
    med: dict[str, Run] = {}
    for key, rs in runs.items():
        warm = rs[1:] or rs
        med[key] = Run(
            statistics.median(r.wall for r in warm),
            statistics.median(r.cpu for r in warm),
            max(r.rss_kib for r in rs),
        )
        m = med[key]
        print(f"{key:<24} {m.wall:7.3f}s {m.cpu:7.3f}s {rs[0].wall:10.3f}s {m.rss_kib / 1024:7.1f}MB")
    imp, pip = med["import tensorflow"], med["pip check"]
    for name, _tfc in builds:
        c = med[f"{name} check"]
        print(
            f"{name}: check / import tensorflow = {c.wall / imp.wall:.3f} wall, {c.cpu / imp.cpu:.3f} cpu;   "
            f"check / pip check = {c.wall / pip.wall:.2f} wall, {c.cpu / pip.cpu:.2f} cpu;   "
            f"peak RSS {c.rss_kib / 1024:.0f} MB"
        )


if __name__ == "__main__":
    main()
