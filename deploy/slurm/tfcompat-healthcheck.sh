#!/usr/bin/env bash
# Slurm HealthCheckProgram: drain this node when tfcompat finds that TensorFlow cannot work on it, and resume
# it once a later check passes (only nodes this script drained: their reason starts with "tfcompat:").
#
# A node agent: slurmd runs it outside any job, so it judges the node's facts (driver, GPUs, the job's
# interpreter); the limits a job runs under are that job's, judged inside it (tfcompat-gate.sh's srun step).
#
# slurm.conf:
#   HealthCheckProgram=/etc/slurm/tfcompat-healthcheck.sh
#   HealthCheckInterval=600
#   HealthCheckNodeState=ANY,CYCLE
#
# slurmd kills a health check after 60 s. The node is checked once (the slow part: NVML runs in a child with a
# 10 s limit, and `timeout` stops the whole check at $TFCOMPAT_TIMEOUT, 30 s); the Prometheus textfile, if
# asked for, is rendered from that check's JSON report (`check --from REPORT`, no second scan, at most 8 s), and
# each scontrol call (two at most) gets 5 s: 48 s at worst. Keep TFCOMPAT_TIMEOUT at 40 or less.
# "Could not decide" (exit 2, e.g. the job venv is missing) and a timeout are logged, not drained, unless
# TFCOMPAT_DRAIN_UNDECIDED=1.
#
# Settings (environment, or edit here):
#   TFCOMPAT          the tfcompat command (default /opt/tfcompat/bin/tfcompat)
#   TFCOMPAT_PYTHON   the interpreter your jobs use (default /opt/venv/bin/python; empty: tfcompat's own)
#   TFCOMPAT_TIMEOUT  seconds the check may take (default 30)
#   TFCOMPAT_REPORTS  optional shared directory: also keep <node>.json there for `tfcompat gate`
#   TFCOMPAT_TEXTFILE optional node_exporter textfile path, e.g. /var/lib/node_exporter/textfile_collector/tfcompat.prom
set -uo pipefail

TFCOMPAT=${TFCOMPAT:-/opt/tfcompat/bin/tfcompat}
TFCOMPAT_PYTHON=${TFCOMPAT_PYTHON-/opt/venv/bin/python}
TFCOMPAT_TIMEOUT=${TFCOMPAT_TIMEOUT:-30}
RENDER_TIMEOUT=8
SCONTROL_TIMEOUT=5
SCONTROL=${SCONTROL:-scontrol}
NODE=${SLURMD_NODENAME:-$(hostname -s)}

log() { logger -t tfcompat-healthcheck -- "$*" 2>/dev/null || echo "tfcompat-healthcheck: $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tfcompat-healthcheck.XXXXXX") || { log "cannot create a temporary directory"; exit 0; }
trap 'rm -rf "$work"' EXIT

# --budget: tfcompat gives its verdict (unfinished probes as unknowns) well before timeout(1) kills it.
check=(check --scope node --node-name "$NODE" --budget "$(( TFCOMPAT_TIMEOUT > 20 ? TFCOMPAT_TIMEOUT - 10 : (TFCOMPAT_TIMEOUT + 1) / 2 ))")
if [ -n "$TFCOMPAT_PYTHON" ]; then
    check+=(--python "$TFCOMPAT_PYTHON")
fi

# The one check: the NPD line on stdout, the JSON report in $work/<node>.json (also when tfcompat cannot decide).
line=$(timeout "$TFCOMPAT_TIMEOUT" "$TFCOMPAT" "${check[@]}" --format npd --output-dir "$work" 2>/dev/null)
rc=$?
line=${line%%$'\n'*}
report=
for f in "$work"/*.json; do
    if [ -f "$f" ]; then report=$f; break; fi
done

if [ -n "$report" ] && [ -n "${TFCOMPAT_REPORTS:-}" ]; then
    # atomically, for `tfcompat gate` (it skips hidden files, so it never reads the half-copied one)
    name=${report##*/}
    tmp="$TFCOMPAT_REPORTS/.$name.$$.tmp"
    if ! { cp "$report" "$tmp" 2>/dev/null && mv -f "$tmp" "$TFCOMPAT_REPORTS/$name"; }; then
        rm -f "$tmp"
        log "cannot write $TFCOMPAT_REPORTS/$name"
    fi
fi

if [ -n "${TFCOMPAT_TEXTFILE:-}" ]; then
    # Rendered from the report of the check above; without one (a timeout), the textfile says "could not
    # decide" (tfcompat_exit_code 2), which is what a missing report makes `check --from` write.
    timeout "$RENDER_TIMEOUT" "$TFCOMPAT" check --from "${report:-$work/no-report.json}" --node-name "$NODE" \
        --format prometheus --output "$TFCOMPAT_TEXTFILE" >/dev/null 2>&1 || true
fi

current_reason() {
    timeout "$SCONTROL_TIMEOUT" "$SCONTROL" show node "$NODE" 2>/dev/null | tr ' ' '\n' | sed -n 's/^Reason=//p' | head -n 1
}

drain() {
    local reason="tfcompat: $1"
    local now
    now=$(current_reason)
    if [ -n "$now" ] && [ "${now#tfcompat:}" = "$now" ]; then
        log "not draining $NODE: already drained for another reason ($now); tfcompat says: $1"
        return 0
    fi
    timeout "$SCONTROL_TIMEOUT" "$SCONTROL" update nodename="$NODE" state=drain reason="${reason:0:120}"
    log "drained $NODE: $reason"
}

case $rc in
    0)
        if [ "$(current_reason | cut -c1-9)" = "tfcompat:" ]; then
            timeout "$SCONTROL_TIMEOUT" "$SCONTROL" update nodename="$NODE" state=resume
            log "resumed $NODE: tfcompat passes again ($line)"
        fi
        ;;
    1)
        drain "${line:-incompatible TensorFlow environment}"
        ;;
    *)
        if [ "$rc" -eq 124 ]; then
            line="check timed out after ${TFCOMPAT_TIMEOUT}s"
        fi
        log "undecided on $NODE (exit $rc): ${line:-no output}"
        if [ "${TFCOMPAT_DRAIN_UNDECIDED:-0}" = 1 ]; then
            drain "undecided: ${line:-exit $rc}"
        fi
        ;;
esac
exit 0
