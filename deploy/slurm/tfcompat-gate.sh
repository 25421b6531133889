#!/usr/bin/env bash
# One-shot fleet gate on a Slurm allocation: one `tfcompat check` per node, then one verdict for all of them.
#
#   sbatch -N 128 -p gpu --time=10 --output=tfcompat-gate-%j.out deploy/slurm/tfcompat-gate.sh
#   salloc -N 16 -p gpu deploy/slurm/tfcompat-gate.sh
#
# Every node writes $TFCOMPAT_REPORTS/<node>.json (named by $SLURMD_NODENAME); the gate expects exactly
# $SLURM_JOB_NODELIST (a folded node set such as gpu-[001-128]) and prints the verdict; a JUnit file goes next
# to the reports for CI. Exit: 0 pass, 1 fail (a node fails or the nodes drift), 2 incomplete (a node is
# missing, stale or undecided).
#
# One hung node must not hold the gate: each task's check runs under timeout(1) (TFCOMPAT_CHECK_TIMEOUT), and
# the step under a Slurm time limit a minute or two longer. A node stopped that way writes no report and comes
# out as missing.
#
# Settings (environment):
#   TFCOMPAT          the tfcompat command (default: tfcompat on PATH)
#   TFCOMPAT_PYTHON   the interpreter your jobs use (default /opt/venv/bin/python; empty: tfcompat's own)
#   TFCOMPAT_REPORTS  a directory every node can write (default: $SLURM_SUBMIT_DIR/tfcompat-$SLURM_JOB_ID)
#   TFCOMPAT_MAX_AGE  reports older than this are stale (default 1h)
#   TFCOMPAT_CHECK_TIMEOUT  seconds one node's check may take (default 120)
#   TFCOMPAT_GATE_ARGS  more gate options, e.g. "--group-by environment.host.gpus.0.name --fail-on warning"
set -euo pipefail

TFCOMPAT=${TFCOMPAT:-tfcompat}
TFCOMPAT_PYTHON=${TFCOMPAT_PYTHON-/opt/venv/bin/python}
NODES=${SLURM_JOB_NODELIST:?run inside a Slurm allocation (sbatch or salloc)}
REPORTS=${TFCOMPAT_REPORTS:-${SLURM_SUBMIT_DIR:-$PWD}/tfcompat-${SLURM_JOB_ID:-manual}}
MAX_AGE=${TFCOMPAT_MAX_AGE:-1h}
CHECK_TIMEOUT=${TFCOMPAT_CHECK_TIMEOUT:-120}
STEP_MINUTES=$(( (CHECK_TIMEOUT + 59) / 60 + 1 ))
read -r -a gate_extra <<< "${TFCOMPAT_GATE_ARGS:-}"

mkdir -p "$REPORTS"
# --budget: a slow node still writes its report (unfinished probes as unknowns) before timeout(1) kills it.
check=(check --scope job --format npd --output-dir "$REPORTS" --budget "$(( CHECK_TIMEOUT > 20 ? CHECK_TIMEOUT - 10 : (CHECK_TIMEOUT + 1) / 2 ))")
if [ -n "$TFCOMPAT_PYTHON" ]; then
    check+=(--python "$TFCOMPAT_PYTHON")
fi

# One task per node. A failing node exits 1 after writing its report: srun's status is not the verdict,
# the gate is (a node whose task never ran, or ran out of time, shows up as missing).
srun --ntasks-per-node=1 --kill-on-bad-exit=0 --time="$STEP_MINUTES" \
    timeout "$CHECK_TIMEOUT" "$TFCOMPAT" "${check[@]}" || true

gate=(gate "$REPORTS" --expect "$NODES" --max-age "$MAX_AGE" ${gate_extra[@]+"${gate_extra[@]}"})
"$TFCOMPAT" "${gate[@]}" --format junit --output "$REPORTS/gate.junit.xml" || true
exec "$TFCOMPAT" "${gate[@]}"
