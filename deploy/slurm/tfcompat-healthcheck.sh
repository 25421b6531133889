#!/usr/bin/env bash
# Slurm HealthCheckProgram: drain this node when tfcompat finds that TensorFlow cannot work on it, and resume
# it once a later check passes (only nodes this script drained: their reason starts with "tfcompat:").
#
# slurm.conf:
#   HealthCheckProgram=/etc/slurm/tfcompat-healthcheck.sh
#   HealthCheckInterval=600
#   HealthCheckNodeState=ANY,CYCLE
#
# slurmd kills a health check after 60 s; the check is bounded well below (NVML runs in a child with a 10 s
# limit, and `timeout` stops the whole check at $TFCOMPAT_TIMEOUT). "Could not decide" (exit 2, e.g. the job
# venv is missing) and a timeout are logged, not drained, unless TFCOMPAT_DRAIN_UNDECIDED=1.
#
# Settings (environment, or edit here):
#   TFCOMPAT          the tfcompat command (default /opt/tfcompat/bin/tfcompat)
#   TFCOMPAT_PYTHON   the interpreter your jobs use (default /opt/venv/bin/python; empty: tfcompat's own)
#   TFCOMPAT_REPORTS  optional shared directory: also keep <node>.json there for `tfcompat gate`
#   TFCOMPAT_TEXTFILE optional node_exporter textfile path, e.g. /var/lib/node_exporter/textfile_collector/tfcompat.prom
set -uo pipefail

TFCOMPAT=${TFCOMPAT:-/opt/tfcompat/bin/tfcompat}
TFCOMPAT_PYTHON=${TFCOMPAT_PYTHON-/opt/venv/bin/python}
TFCOMPAT_TIMEOUT=${TFCOMPAT_TIMEOUT:-50}
SCONTROL=${SCONTROL:-scontrol}
NODE=${SLURMD_NODENAME:-$(hostname -s)}

common=(check --node-name "$NODE")
if [ -n "$TFCOMPAT_PYTHON" ]; then
    common+=(--python "$TFCOMPAT_PYTHON")
fi
keep=()
if [ -n "${TFCOMPAT_REPORTS:-}" ]; then
    keep=(--output-dir "$TFCOMPAT_REPORTS")
fi

line=$(timeout "$TFCOMPAT_TIMEOUT" "$TFCOMPAT" "${common[@]}" --format npd ${keep[@]+"${keep[@]}"} 2>/dev/null)
rc=$?
line=${line%%$'\n'*}

if [ -n "${TFCOMPAT_TEXTFILE:-}" ]; then
    timeout 20 "$TFCOMPAT" "${common[@]}" --format prometheus --output "$TFCOMPAT_TEXTFILE" >/dev/null 2>&1 || true
fi

log() { logger -t tfcompat-healthcheck -- "$*" 2>/dev/null || echo "tfcompat-healthcheck: $*" >&2; }

current_reason() {
    "$SCONTROL" show node "$NODE" 2>/dev/null | tr ' ' '\n' | sed -n 's/^Reason=//p' | head -n 1
}

drain() {
    local reason="tfcompat: $1"
    local now
    now=$(current_reason)
    if [ -n "$now" ] && [ "${now#tfcompat:}" = "$now" ]; then
        log "not draining $NODE: already drained for another reason ($now); tfcompat says: $1"
        return 0
    fi
    "$SCONTROL" update nodename="$NODE" state=drain reason="${reason:0:120}"
    log "drained $NODE: $reason"
}

case $rc in
    0)
        if [ "$(current_reason | cut -c1-9)" = "tfcompat:" ]; then
            "$SCONTROL" update nodename="$NODE" state=resume
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
