#!/usr/bin/env python3
"""Time `tfcompat check` against `import tensorflow` in the same environment.

    python scripts/bench.py --python /path/to/tf-venv/bin/python [--runs 5]

Both run as fresh processes (what a user or a Slurm health check pays). The first run of each
is reported apart (cold page cache after an install); the rest give the warm median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd, env=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed with exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return elapsed


def series(name, cmd, runs, env=None):
    times = [timed(cmd, env) for _ in range(runs)]
    warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"{name:<28} first {times[0]:7.3f} s   warm median {warm:7.3f} s   ({runs} runs)")
    return warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, help="interpreter of a venv with TensorFlow installed")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tfcompat", default=shutil.which("tfcompat") or "", help="tfcompat executable")
    args = ap.parse_args()
    tfc = [args.tfcompat] if args.tfcompat else [sys.executable, "-m", "tfcompat"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    check = series("tfcompat check --python", tfc + ["check", "--python", args.python, "--no-color"], args.runs)
    scan = series("tfcompat scan --python", tfc + ["scan", "--python", args.python], args.runs)
    imp = series("python -c 'import tensorflow'", [args.python, "-c", "import tensorflow"], args.runs, env)
    print(f"check / import: {check / imp:.1%}   scan / import: {scan / imp:.1%}")


if __name__ == "__main__":
    main()
