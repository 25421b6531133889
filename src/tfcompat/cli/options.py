"""Options and choices several commands share, and the --select/--ignore syntax."""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

# Every command and subcommand answers -h as well as --help (subcommands inherit it from the root's context).
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

# --format choices: the names of the formats table (render/formats.py); a test keeps them equal.


class Format(str, Enum):  # rules
    text = "text"
    json = "json"


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"  # the JSON report as one line, for fan-in (clush, pdsh, srun -l, Ansible)
    prometheus = "prometheus"  # node_exporter textfile collector
    npd = "npd"  # node-problem-detector custom plugin: one line, exit 0/1/2
    nfd = "nfd"  # Node Feature Discovery features.d file


class GateFormat(str, Enum):  # gate, fleet
    text = "text"
    json = "json"
    junit = "junit"


class ScopeChoice(str, Enum):  # check, scan: --scope (tfcompat.model.Scope)
    node = "node"
    job = "job"


class FailOn(str, Enum):
    info = "info"
    warning = "warning"
    error = "error"


PythonOpt = typer.Option(
    None, "--python", metavar="PATH", help="Interpreter of the environment to check (e.g. a venv's bin/python)."
)
SiteOpt = typer.Option(None, "--site-packages", metavar="DIR", help="A site-packages directory to check (repeatable).")
RootOpt = typer.Option(
    None, "--root", metavar="DIR", help="A sysroot or unpacked container image; every path resolves inside it."
)
NodeOpt = typer.Option(
    None,
    "--node-name",
    metavar="NAME",
    help="Node name for the report (default: $NODE_NAME, $SLURMD_NODENAME, host name).",
)
NvmlOpt = typer.Option(True, "--nvml/--no-nvml", help="Query NVML (in a child process) for driver and GPUs.")
ProbeOpt = typer.Option(
    False,
    "--probe",
    help="Also import TensorFlow with the target interpreter in a sandboxed "
    "child process and report what happened (crash, error, libraries "
    "loaded, classified log lines). Off by default.",
)
ProbeTimeoutOpt = typer.Option(
    120.0,
    "--probe-timeout",
    min=1.0,
    metavar="SECONDS",
    help="Seconds the --probe child may take before its process group is killed.",
)
BudgetOpt = typer.Option(
    None,
    "--budget",
    min=1.0,
    metavar="SECONDS",
    help="Wall-clock seconds for the whole scan (default 60; with "
    "--probe, 60 plus --probe-timeout). Probes not finished "
    "by then are reported as unknown with that reason and "
    "the rules that need them are skipped; the rest is "
    "judged.",
)
_SCOPE_HELP = (
    "Whose limits are judged: job (default: run where the job runs, judge everything) or node (a node agent: "
    "DaemonSet, NPD, Slurm health check, NHC; /dev/shm, memlock, cgroup and CUDA_VISIBLE_DEVICES are the "
    "checker's own, so TFC801-803 and TFC807 only inform)."
)
ScanScopeOpt = typer.Option(ScopeChoice.job, "--scope", help=_SCOPE_HELP + " Recorded in the snapshot.")
CheckScopeOpt = typer.Option(
    None, "--scope", help=_SCOPE_HELP + " With --from, it overrides the scope the snapshot was recorded with."
)
VerboseOpt = typer.Option(False, "-v", "--verbose", help="Show tracebacks for errors.")
ColourOpt = typer.Option(
    None,
    "--color/--no-color",
    help="Colour the text output, or not, whatever the environment says (default: only on a terminal, never "
    "into --output; NO_COLOR turns it off, FORCE_COLOR on, TERM=dumb off).",
)
QuietOpt = typer.Option(
    False,
    "-q",
    "--quiet",
    help="Nothing on stdout (an --output file is still written) and no notes on stderr: the exit code, "
    "warnings and errors only.",
)
OpOpt = typer.Option(
    None,
    "--op",
    metavar="FILE",
    help="An in-house custom-op library to check against the installed TensorFlow (repeatable; globs allowed).",
)

# gate and fleet
GateFailOnOpt = typer.Option(FailOn.error, "--fail-on", help="Lowest severity that fails a node or a drift.")
GateOutputOpt = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the verdict here (atomically).")
ExpectOpt = typer.Option(
    None,
    "--expect",
    metavar="NODESET|FILE",
    help="Nodes that must report: a file (one node set per line, "
    "optionally with key=value labels) or a folded node set such as "
    "'gpu-[001-128]' (repeatable).",
)
MaxAgeOpt = typer.Option(None, "--max-age", metavar="AGE", help="Reports older than this are stale: 30m, 24h, 7d.")
GroupByOpt = typer.Option(
    None,
    "--group-by",
    metavar="FIELD",
    help="Compare nodes within groups: a dotted report field "
    "(environment.host.gpus.0.name) or label:KEY from --expect.",
)
GateFmtOpt = typer.Option(GateFormat.text, "--format", "-f", help="Output format: text, json, junit.")
