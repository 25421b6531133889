#!/usr/bin/env bash
# One-shot fleet gate on a Slurm allocation: one `tfcompat check` per node, inside the allocation and with the
# node's GPUs allocated to it (what a training job sees), then one verdict for all of them.
#
#   sbatch -N 128 -p gpu --gpus-per-node=8 --time=10 --output=tfcompat-gate-%j.out deploy/slurm/tfcompat-gate.sh
#   salloc -N 16 -p gpu --exclusive deploy/slurm/tfcompat-gate.sh       # with TFCOMPAT_GPUS=exclusive
#
# This runs inside the job (a step of the allocation, under the job's cgroup and limits): it judges what the job
# will see, node facts and job limits alike. The node agents (tfcompat-healthcheck.sh, nhc.conf) judge the node.
#
# The GPUs: where Slurm constrains devices (cgroup ConstrainDevices=yes), a step that asks for no GPU sees none,
# and a check there would pass a node without ever looking at its GPUs. So the step asks for them
# (TFCOMPAT_GPUS), and a node whose check, run with GPUs asked for, shows no GPU FAILS (exit 1: "No GPU
# visible"), whatever tfcompat says of the rest.
#
# Every node writes $TFCOMPAT_REPORTS/<node>.json (named by $SLURMD_NODENAME); the gate expects exactly
# $SLURM_JOB_NODELIST (a folded node set such as gpu-[001-128]) and prints the verdict; a JUnit file goes next
# to the reports for CI (gate.junit.xml, plus gpu-visibility.junit.xml for the GPU test). Output of the step is
# labelled with the task number (srun --label): one line per node, "<task>: <node>: <status> ...".
# Exit: 0 pass, 1 fail (a node fails, shows no GPU, or the nodes drift), 2 incomplete (a node is missing,
# stale or undecided).
#
# One hung node must not hold the gate: each task's check runs under timeout(1) (TFCOMPAT_CHECK_TIMEOUT), and
# the step under a Slurm time limit a minute or two longer. A node stopped that way writes no report and comes
# out as missing.
#
# Settings (environment):
#   TFCOMPAT          the tfcompat command (default: tfcompat on PATH)
#   TFCOMPAT_PYTHON   the interpreter your jobs use (default /opt/venv/bin/python; empty: tfcompat's own)
#   TFCOMPAT_GPUS     what each node's step asks for: a count or type:count for srun --gpus-per-node (8,
#                     h100:8); "exclusive" (srun --exclusive, for a job submitted with --exclusive: whole
#                     nodes); "none" (a partition without GPUs: none asked for, none expected). Default: the
#                     job's own --gpus-per-node ($SLURM_GPUS_PER_NODE), else "exclusive".
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
GPUS=${TFCOMPAT_GPUS:-${SLURM_GPUS_PER_NODE:-exclusive}}
STEP_MINUTES=$(( (CHECK_TIMEOUT + 59) / 60 + 1 ))
read -r -a gate_extra <<< "${TFCOMPAT_GATE_ARGS:-}"

case $GPUS in
    none | 0) gpu_args=(); expect_gpus=0 ;;
    exclusive) gpu_args=(--exclusive); expect_gpus=1 ;;
    *) gpu_args=("--gpus-per-node=$GPUS"); expect_gpus=1 ;;
esac

mkdir -p "$REPORTS"
rm -f "$REPORTS"/.no-gpu.*
# --budget: a slow node still writes its report (unfinished probes as unknowns) before timeout(1) kills it.
# The check prints the Prometheus textfile (tfcompat's own count of the GPUs it saw: one tfcompat_gpu_info
# line per GPU) and writes the JSON report for the gate to --output-dir. --scope job: this runs inside the job.
check=(check --scope job --format prometheus --output-dir "$REPORTS" --budget "$(( CHECK_TIMEOUT > 20 ? CHECK_TIMEOUT - 10 : (CHECK_TIMEOUT + 1) / 2 ))")
if [ -n "$TFCOMPAT_PYTHON" ]; then
    check+=(--python "$TFCOMPAT_PYTHON")
fi

# One task per node, run by srun: $1 the check's time limit, $2 whether GPUs were asked for (1/0), $3 the report
# directory, then the tfcompat command and its arguments. It prints one line, and when GPUs were asked for, a
# verdict was given (exit 0 or 1) and tfcompat saw no GPU, it leaves $REPORTS/.no-gpu.<node> (hidden: the gate
# skips it) for the verdict below.
# shellcheck disable=SC2016 # expanded by the task's own shell, on the node
task='
limit=$1 expect=$2 dir=$3; shift 3
node=${SLURMD_NODENAME:-$(hostname -s)}
metrics=$(timeout "$limit" "$@")
rc=$?
gpus=$(printf "%s\n" "$metrics" | grep -c "^tfcompat_gpu_info{")
status=$(printf "%s\n" "$metrics" | sed -n "s/^tfcompat_check_status{.*status=\"\([a-z]*\)\"} 1$/\1/p" | head -n 1)
rules=$(printf "%s\n" "$metrics" | sed -n "s/^tfcompat_findings{.*rule=\"\([A-Za-z0-9]*\)\".*severity=\"error\".*/\1/p" | sort -u | tr "\n" " ")
case $rc in 124) status="timed out after ${limit}s" ;; 0 | 1 | 2) ;; *) status="exit $rc" ;; esac
if [ "$expect" = 1 ] && [ "$gpus" -eq 0 ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; }; then
    : > "$dir/.no-gpu.$node"
    echo "$node: ${status:-?} ${rules}- NO GPU VISIBLE to a step that asked for GPUs: the node fails"
else
    echo "$node: ${status:-?} ${rules}- GPUs visible: $gpus"
fi
exit "$rc"
'

# A failing node exits 1 after writing its report: srun's status is not the verdict, the gate is (a node whose
# task never ran, or ran out of time, shows up as missing).
srun --ntasks-per-node=1 --label --kill-on-bad-exit=0 --time="$STEP_MINUTES" ${gpu_args[@]+"${gpu_args[@]}"} \
    bash -c "$task" tfcompat-task "$CHECK_TIMEOUT" "$expect_gpus" "$REPORTS" "$TFCOMPAT" "${check[@]}" || true

gate=(gate "$REPORTS" --expect "$NODES" --max-age "$MAX_AGE" ${gate_extra[@]+"${gate_extra[@]}"})
"$TFCOMPAT" "${gate[@]}" --format junit --output "$REPORTS/gate.junit.xml" || true
rc=0
"$TFCOMPAT" "${gate[@]}" || rc=$?

# The GPU test: nodes that showed no GPU to a step that asked for them fail, whatever the gate said of them.
blind=()
for f in "$REPORTS"/.no-gpu.*; do
    if [ -e "$f" ]; then blind+=("${f##*/.no-gpu.}"); fi
done
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuite name=\"tfcompat-gpu-visibility\" tests=\"${#blind[@]}\" failures=\"${#blind[@]}\">"
    for n in ${blind[@]+"${blind[@]}"}; do
        n=$(printf '%s' "$n" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g')
        echo "  <testcase classname=\"$n\" name=\"gpus-visible\"><failure message=\"no GPU visible to a step that asked for GPUs ($GPUS)\"/></testcase>"
    done
    echo '</testsuite>'
} > "$REPORTS/gpu-visibility.junit.xml"
if [ "${#blind[@]}" -gt 0 ]; then
    echo
    echo "No GPU visible (${#blind[@]}): ${blind[*]}"
    echo "  The step asked for GPUs (TFCOMPAT_GPUS=$GPUS) and tfcompat saw none on these nodes: they fail."
    echo "  Check the job's GPU request (--gpus-per-node), gres.conf and the node's driver."
    echo "Result with the GPU test: FAIL (exit 1)"
    exit 1
fi
exit "$rc"
