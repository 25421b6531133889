#!/usr/bin/env python3
"""How long `tfcompat gate` takes to merge N node reports (default 10,000). Not a test: it prints times.

    python scripts/bench_gate.py                 # 10,000 reports written as files, then read + merged
    python scripts/bench_gate.py --nodes 50000   # bigger
    python scripts/bench_gate.py --cli           # also time the whole `tfcompat gate DIR` and `gate -` processes
    python scripts/bench_gate.py --cli --repeat 5 --pools   # medians of 5 runs each; two declared pools of 8

The synthetic fleet: two GPU pools (H100, A100), 1 % of nodes on an old driver (they fail), 0.5 % missing,
0.5 % stale, full-size reports as `tfcompat check -f json` writes them. The same reports are also read as JSON
Lines on stdin (`cat */*.json | tfcompat gate -`): that path must give the same verdict in about the time the
files take (it was quadratic once: 4,000 reports took minutes); the script exits 1 when it does not.

Times of the processes are given as wall-clock and CPU (user + sys of the child): on a machine that others load,
the CPU time is the figure to compare; `--repeat N` gives the median of N runs.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))  # tests/envs.py builds realistic environments

from envs import make_env  # noqa: E402

from tfcompat.fleet.gate import GateOptions, parse_expect, read_inputs, run_gate  # noqa: E402
from tfcompat.matrix import load_matrix  # noqa: E402
from tfcompat.model import Gpu, to_json_dict  # noqa: E402
from tfcompat.render.gate_json import render_gate_json  # noqa: E402
from tfcompat.render.gate_text import render_gate_text  # noqa: E402
from tfcompat.render.junit import render_junit  # noqa: E402
from tfcompat.rules import evaluate  # noqa: E402


def templates():
    matrix = load_matrix()
    out = {}
    for key, driver, model, cc in (
        ("h100", "560.35.03", "NVIDIA H100 80GB HBM3", "9.0"),
        ("a100", "560.35.03", "NVIDIA A100-SXM4-80GB", "8.0"),
        ("old", "470.82.01", "NVIDIA H100 80GB HBM3", "9.0"),
    ):
        gpus = [Gpu(i, model, f"GPU-{i}", f"00000000:{i + 0x18:02x}:00.0", cc, 81559, False, True) for i in range(8)]
        env = make_env(driver=driver, gpus=gpus)
        out[key] = to_json_dict(evaluate(dataclasses.replace(env, tool_version="0.1.0"), matrix))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--cli", action="store_true", help="also time `python -m tfcompat gate DIR` end to end")
    ap.add_argument("--repeat", type=int, default=1, help="run each process N times, print medians")
    ap.add_argument("--pools", action="store_true", help="also declare pools (each 8 consecutive nodes)")
    args = ap.parse_args()
    n = args.nodes
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    fresh, old = (now - datetime.timedelta(minutes=10)).isoformat(), (now - datetime.timedelta(days=3)).isoformat()
    tpl = templates()
    width = len(str(n))
    names = [f"gpu-{i:0{width}d}" for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory(prefix="tfcompat-bench-gate-") as d:
        t0 = time.perf_counter()
        size = 0
        lines = []
        for i, name in enumerate(names):
            if i % 200 == 7:
                continue  # missing
            kind = "old" if i % 100 == 3 else ("a100" if i % 2 else "h100")
            r = copy.deepcopy(tpl[kind])
            r["environment"]["host"]["node_name"] = name
            r["environment"]["created"] = old if i % 200 == 11 else fresh
            text = json.dumps(r)
            size += len(text)
            lines.append(text)
            with open(os.path.join(d, f"{name}.json"), "w") as fh:
                fh.write(text)
        t_write = time.perf_counter() - t0
        print(
            f"wrote {n - len(names[7::200])} reports ({size / 1e6:.0f} MB, {size / max(n, 1) / 1e3:.1f} kB each) "
            f"in {t_write:.1f} s"
        )

        options = GateOptions(
            expect=parse_expect([f"gpu-[{1:0{width}d}-{n}]"]),
            max_age_seconds=86400,
            group_by="environment.host.gpus.0.name",
            now=now,
        )
        t0 = time.perf_counter()
        loaded = read_inputs([d])
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = run_gate(loaded, options)
        t_merge = time.perf_counter() - t0
        t0 = time.perf_counter()
        text = render_gate_text(report)
        t_text = time.perf_counter() - t0
        t0 = time.perf_counter()
        render_gate_json(report)
        t_json = time.perf_counter() - t0
        t0 = time.perf_counter()
        render_junit(report)
        t_junit = time.perf_counter() - t0
        jsonl = "\n".join(lines) + "\n"
        del lines
        t0 = time.perf_counter()
        loaded_jsonl = read_inputs(["-"], stdin=io.StringIO(jsonl))
        t_read_jsonl = time.perf_counter() - t0
        report_jsonl = run_gate(loaded_jsonl, options)
        del loaded_jsonl
        print(f"read + parse  {t_read:6.2f} s   ({len(loaded)} files)")
        print(f"JSON Lines    {t_read_jsonl:6.2f} s   (the same reports on stdin, {len(jsonl) / 1e6:.0f} MB)")
        print(
            f"merge (gate)  {t_merge:6.2f} s   -> {report.status}, exit {report.exit_code}; "
            f"{report.counts.failed} fail, {report.counts.missing} missing, {report.counts.stale} stale, "
            f"{report.counts.drift} drift"
        )
        print(f"render text   {t_text:6.2f} s, json {t_json:.2f} s, junit {t_junit:.2f} s")
        print(f"total         {t_read + t_merge + t_text:6.2f} s for {n} nodes (read + merge + text)")
        print()
        print("\n".join(text.splitlines()[-12:]))
        if args.cli:
            gate_args = ["--expect", f"gpu-[{1:0{width}d}-{n}]", "--max-age", "1d", "-f", "json"]
            if args.pools:  # pools of 8 nodes: the old-driver nodes fail theirs (TFC613), missing ones TFC614
                gate_args += [
                    a
                    for k in range(0, n, 8)
                    for a in ("--pool", f"p{k // 8}=gpu-[{k + 1:0{width}d}-{min(k + 8, n):0{width}d}]")
                ]
            for label, argv, stdin in (
                ("`tfcompat gate DIR -f json` process", [d], None),
                ("`tfcompat gate - -f json` process, JSON Lines on stdin", ["-"], jsonl),
            ):
                walls, cpus, code = [], [], None
                for _ in range(max(args.repeat, 1)):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t0 = time.perf_counter()
                    proc = subprocess.run(
                        [sys.executable, "-m", "tfcompat", "gate"] + argv + gate_args,
                        input=stdin,
                        capture_output=True,
                        text=True,
                    )
                    walls.append(time.perf_counter() - t0)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                    code = proc.returncode
                print(
                    f"\n{label}: {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU"
                    + (f" (medians of {len(walls)})" if len(walls) > 1 else "")
                    + f", exit {code}",
                    end="",
                )
            print()

        # The check: JSON Lines give the same verdict, without a per-record rescan of the input.
        same = (report_jsonl.status, report_jsonl.counts) == (report.status, report.counts)
        fast = t_read_jsonl <= 3 * t_read + 2.0
        if not (same and fast):
            print(
                f"\nFAIL: JSON Lines on stdin: {'same verdict' if same else 'a different verdict'}, "
                f"{t_read_jsonl:.2f} s against {t_read:.2f} s for the files",
                file=sys.stderr,
            )
            sys.exit(1)
        print("\nJSON Lines check: same verdict as the files, read in comparable time")


if __name__ == "__main__":
    main()
