"""deploy/: every recipe parses, references what exists, and the scripts do what they say (with stubs)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
import yaml
from envs import make_env
from prometheus_client.parser import text_string_to_metric_families

from tfcompat.cli import app
from tfcompat.model import Gpu, to_json_dict
from tfcompat.render.npd import MAX_LEN
from tfcompat.render.prometheus import METRICS, render_prometheus
from tfcompat.rules import evaluate

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DCGM_LABELS = {"gpu", "UUID", "device", "modelName", "Hostname", "pci_bus_id", "DCGM_FI_DRIVER_VERSION"}
COMMAND = typer.main.get_command(app)


def files(ext):
    return sorted(DEPLOY.rglob(f"*{ext}"))


def assert_valid_invocation(tokens, where):
    """`tfcompat SUB ...` as the CLI would parse it: the subcommand, every option and every choice exist."""
    assert tokens and tokens[0] in COMMAND.commands, f"{where}: unknown tfcompat command {tokens[:1]}"
    cmd = COMMAND.commands[tokens[0]]
    try:
        cmd.make_context(tokens[0], list(tokens[1:]))
    except Exception as exc:  # noqa: BLE001 - click's usage errors, of several classes
        pytest.fail(f"{where}: `tfcompat {' '.join(tokens)}` does not parse: {exc}")


def tfcompat_invocations(text):
    """Every `tfcompat <sub> ...` (or `.../bin/tfcompat <sub> ...`) command line in a script or manifest."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        for m in re.finditer(r"(?:^|[\s\"'(])(?:[\w./$-]*/)?tfcompat\s+(check|scan|gate|fleet)\b([^|;&\n`]*)", line):
            tokens = [m.group(1)] + shlex.split(m.group(2).rstrip(") "))
            out.append(tokens)
    return out


def sample_metrics():
    env = make_env(
        driver="470.82.01", gpus=[Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-a", "00000000:18:00.0", "9.0", 81559, False)]
    )
    from tfcompat.matrix import load_matrix

    text = render_prometheus(evaluate(env, load_matrix()))
    return {f.name: f for f in text_string_to_metric_families(text)}


def labels_of(fams, names):
    out = set()
    for n in names:
        for s in fams[n].samples:
            out |= set(s.labels)
    return out


def check_promql(expr, fams, where):
    names = set(re.findall(r"\btfcompat_[a-z_]+\b", expr))
    assert names, f"{where}: {expr!r} uses no tfcompat metric"
    for n in names:
        assert n in METRICS and n in fams, f"{where}: {n} is not a metric tfcompat writes"
    known = labels_of(fams, names) | (DCGM_LABELS if "DCGM_" in expr else set())
    used = set()
    for group in re.findall(r"\b(?:by|on|group_left|group_right|without)\s*\(([^)]*)\)", expr):
        used |= {x.strip() for x in group.split(",") if x.strip()}
    used |= set(re.findall(r"[{,]\s*([A-Za-z_]\w*)\s*[=!]~?\"", expr))
    assert used <= known, f"{where}: labels {sorted(used - known)} are on none of {sorted(names)}"
    return used


# --------------------------------------------------------------------------- parsing everything


def test_every_deploy_file_parses():
    seen = 0
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
            assert docs, path
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".sh":
            subprocess.run(["bash", "-n", str(path)], check=True)
            assert os.access(path, os.X_OK), f"{path} is not executable"
        elif path.suffix == ".nhc":  # sourced by NHC's bash, not run
            subprocess.run(["bash", "-n", str(path)], check=True)
        elif path.suffix != ".conf":
            pytest.fail(f"{path}: no validation for this kind of file")
        if path.suffix in (".sh", ".conf") or path.parent.name == "kubernetes":  # commands, not prose
            for tokens in tfcompat_invocations(text):
                assert_valid_invocation(tokens, path.name)
        seen += 1
    assert seen >= 8


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck():
    proc = subprocess.run(["shellcheck", "-S", "warning", *map(str, files(".sh"))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    proc = subprocess.run(
        ["shellcheck", "-s", "bash", "-S", "warning", *map(str, files(".nhc"))], capture_output=True, text=True
    )
    assert proc.returncode == 0 and files(".nhc"), proc.stdout


def test_the_invocation_finder_finds_and_rejects():
    found = tfcompat_invocations('x && /opt/tfcompat/bin/tfcompat check --format npd --python "/a b/python" | head')
    assert found == [["check", "--format", "npd", "--python", "/a b/python"]]
    with pytest.raises(pytest.fail.Exception):
        assert_valid_invocation(["check", "--format", "yaml"], "test")


# --------------------------------------------------------------------------- Kubernetes


def _docs(name):
    return {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d}


def _pod_specs():
    for path in files(".yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("Job", "DaemonSet", "Deployment", "Pod"):
                yield path, doc, (doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"])


def test_pods_are_hardened_to_the_restricted_level_where_hostpath_allows():
    """Pod Security Standard `restricted`: seccomp RuntimeDefault, every capability dropped, no privilege
    escalation, non-root; plus a read-only root file system and no service account token. A pod with hostPath
    volumes cannot be `restricted` (nor baseline): it may run as root, and its file says why, in a comment."""
    seen = set()
    for path, doc, pod in _pod_specs():
        seen.add(doc["kind"])
        where = f"{path.name} {doc['kind']}"
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert not sc.get("privileged"), where
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"
        host_paths = [v for v in pod.get("volumes", []) if "hostPath" in v]
        if host_paths:
            text = path.read_text()
            assert "hostPath" in text.split("apiVersion")[0] and "restricted" in text, where  # says why, up top
        else:
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), where
    assert seen >= {"Job", "DaemonSet"}


def test_no_priority_class_a_managed_cluster_refuses():
    """system-node-critical/system-cluster-critical are refused outside kube-system on managed clusters: a pod
    uses none, or a PriorityClass the same file creates, which never preempts a running pod."""
    created = {}
    for path in files(".yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "PriorityClass":
                created[doc["metadata"]["name"]] = doc
    for path, doc, pod in _pod_specs():
        name = pod.get("priorityClassName")
        if name is None:
            continue
        assert not name.startswith("system-") or doc["metadata"].get("namespace") == "kube-system", path.name
        pc = created[name]
        assert pc["apiVersion"] == "scheduling.k8s.io/v1" and 0 < pc["value"] < 1_000_000_000
        assert pc["preemptionPolicy"] == "Never" and pc["globalDefault"] is False
    assert "system-node-critical" not in "".join(
        line for p in files(".yaml") for line in p.read_text().splitlines(True) if not line.lstrip().startswith("#")
    )


def test_daemonset():
    ds = _docs("daemonset.yaml")["DaemonSet"]
    assert ds["apiVersion"] == "apps/v1" and ds["kind"] == "DaemonSet" and ds["metadata"]["name"]
    spec = ds["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)
    host_of = {path: volumes[name].get("hostPath", {}).get("path") for path, name in mounts.items()}
    assert host_of["/textfile"] == "/var/lib/node_exporter/textfile_collector"
    assert host_of["/features.d"] == "/etc/kubernetes/node-feature-discovery/features.d"
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["NVIDIA_VISIBLE_DEVICES"]["value"] == "all"
    script = "\n".join(c["args"])
    calls = tfcompat_invocations(script)
    formats = {}
    for tokens in calls:
        assert_valid_invocation(tokens, "daemonset")
        if "--format" in tokens:
            out = tokens[tokens.index("--output") + 1]
            formats[tokens[tokens.index("--format") + 1]] = out
            assert any(out.startswith(m + "/") for m in mounts), f"{out} is not on a mounted volume"
    assert formats["prometheus"].endswith(".prom")  # the textfile collector reads *.prom only
    assert formats["nfd"].startswith("/features.d/")
    # the snapshot that the checks replay is the one the scan writes
    scan = next(t for t in calls if t[0] == "scan")
    assert all(t[t.index("--from") + 1] == scan[scan.index("--output") + 1] for t in calls if "--from" in t)
    # the NFD labels expire twice the refresh interval after the facts were collected
    assert "export TFCOMPAT_NFD_EXPIRY=$((2 * TFCOMPAT_INTERVAL))" in script
    assert int(env["TFCOMPAT_INTERVAL"]["value"]) * 2 == 1800  # nfd.DEFAULT_EXPIRY_SECONDS: the default agrees
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_preflight_job():
    """The pre-flight runs as the training pod would: its image, its GPUs, its /dev/shm (emptyDir of medium Memory
    with a size), on a tainted GPU pool; no retries."""
    text = (DEPLOY / "kubernetes" / "preflight-job.yaml").read_text()
    job = _docs("preflight-job.yaml")["Job"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["command"][0] == "tfcompat"
    assert_valid_invocation(c["command"][1:], "preflight-job")
    limits = c["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) >= 1 and limits["memory"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (shm,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    empty = volumes[shm["name"]]["emptyDir"]
    assert empty["medium"] == "Memory" and re.fullmatch(r"\d+(Mi|Gi)", empty["sizeLimit"])
    size_gib = int(empty["sizeLimit"][:-2]) / (1024 if empty["sizeLimit"].endswith("Mi") else 1)
    assert size_gib >= 1  # what TFC801 asks of a multi-GPU node
    # the image is the workload's, and the file says it is the one to replace
    image_line = next(line for line in text.splitlines() if line.strip().startswith("image:"))
    assert c["image"] in image_line and "REPLACE" in image_line and "training job's image" in text


def _go_duration(text):
    m = re.fullmatch(r"(\d+)(s|m|h)", text)
    assert m, f"{text!r} is not a Go duration this test knows"
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def test_npd_plugin_config_is_valid_for_node_problem_detector():
    cfg = json.loads((DEPLOY / "kubernetes" / "npd-tfcompat.json").read_text())
    # what custompluginmonitor's ApplyConfiguration/Validate check
    assert cfg["plugin"] == "custom" and cfg["source"]
    glob = cfg["pluginConfig"]
    assert glob["max_output_length"] == MAX_LEN
    global_timeout = _go_duration(glob["timeout"])
    _go_duration(glob["invoke_interval"])
    conditions = {c["type"] for c in cfg["conditions"]}
    for rule in cfg["rules"]:
        assert rule["type"] in ("temporary", "permanent")
        if rule["type"] == "permanent":
            assert rule["condition"] in conditions
        assert _go_duration(rule["timeout"]) <= global_timeout <= 60
        assert rule["path"].endswith("/tfcompat")
        assert_valid_invocation(rule["args"], "npd-tfcompat.json")
        assert rule["args"][rule["args"].index("--format") + 1] == "npd"


# --------------------------------------------------------------------------- Prometheus and Grafana


def test_alert_rules_reference_real_metrics_and_labels():
    fams = sample_metrics()
    doc = yaml.safe_load((DEPLOY / "prometheus" / "tfcompat-alerts.yaml").read_text())
    alerts = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert {"TfcompatIncompatibleNode", "TfcompatDriverDrift", "TfcompatStaleReport"} <= set(alerts)
    for name, r in alerts.items():
        check_promql(r["expr"], fams, name)
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert r["annotations"]["summary"]
        for label in re.findall(r"\$labels\.(\w+)", json.dumps(r["annotations"])):
            assert label in check_promql(r["expr"], fams, name) | {"hostname"} | labels_of(
                fams, set(re.findall(r"\btfcompat_[a-z_]+\b", r["expr"]))
            ), (name, label)
    # the stale alert compares against the metric that carries the collection time
    assert "tfcompat_last_run_timestamp_seconds" in alerts["TfcompatStaleReport"]["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_rules():
    proc = subprocess.run(
        ["promtool", "check", "rules", str(DEPLOY / "prometheus" / "tfcompat-alerts.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_grafana_dashboard():
    fams = sample_metrics()
    dash = json.loads((DEPLOY / "grafana" / "tfcompat-dashboard.json").read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    for p in dash["panels"]:
        assert p["datasource"]["uid"].strip("${}") in variables
        for t in p["targets"]:
            used = check_promql(t["expr"], fams, p["title"])
            for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                assert label in used | labels_of(fams, set(re.findall(r"\btfcompat_[a-z_]+\b", t["expr"]))) | (
                    DCGM_LABELS if "DCGM_" in t["expr"] else set()
                ), (p["title"], label)
    assert any("DCGM_" in t["expr"] and "UUID" in t["expr"] for p in dash["panels"] for t in p["targets"])


# --------------------------------------------------------------------------- Slurm and NHC


NHC_TIMEOUT = 30  # LBNL NHC's own watchdog (TIMEOUT, `nhc -t`) defaults to 30 s; check_cmd_status refuses a longer -t


def _nhc_line():
    lines = [
        ln
        for ln in (DEPLOY / "slurm" / "nhc.conf").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    (line,) = lines
    return line


def test_nhc_line():
    """nhc.conf calls the native check function that tfcompat.nhc defines, with a time limit below NHC's own."""
    line = _nhc_line()
    mask, sep, check = line.strip().partition("||")
    assert mask.strip() == "*" and sep
    assert "\\" not in line and "  " not in check  # NHC reads lines with `read` (no -r) and runs `eval $CHECK`
    tokens = shlex.split(check)
    assert tokens[0] == "check_tfcompat"
    opts = dict(zip(tokens[1:3:2], tokens[2:3:2]))
    assert 0 < int(opts["-t"]) < NHC_TIMEOUT
    nhc = (DEPLOY / "slurm" / "tfcompat.nhc").read_text()
    assert re.search(r"^function check_tfcompat\(\) \{$", nhc, re.M)


NHC_HARNESS = r"""
# What NHC does: source every scripts/*.nhc, read a line of nhc.conf (without -r), split it at the first ||,
# `eval $CHECK`; die() logs "Health check failed:  MESSAGE", marks the node offline with that message as the
# reason and exits. Written for this test after NHC's own die(), log() and syslog(), not NHC's code.
set -f
TIMEOUT=30
die() {
    local RET=$1
    shift
    echo "Health check failed:  $*" > "$OFFLINE"
    exit "$RET"
}
log() { printf '%s\n' "$*" >> "$NHC_LOG"; }
syslog() { printf '%s\n' "$*" >> "$NHC_SYSLOG"; }
. "$2"
read LINE < "$1"
CHECK="${LINE#*||}"
eval $CHECK
"""


@pytest.mark.parametrize(
    "rc, extra, offline, logged",
    [
        (0, "", False, False),
        (1, "", True, False),
        (2, "", False, True),
        (2, " -u", True, False),
        ("hang", "", False, True),
    ],
)
def test_nhc_check_takes_the_node_offline_with_the_finding_as_the_reason(tmp_path, rc, extra, offline, logged):
    """check_tfcompat, run the way NHC runs nhc.conf's line: exit 1 fails the check with die() and the finding's
    first line (the drain reason NHC gives Slurm); exit 2 or a timeout is logged and passes, unless -u."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    body = "exec sleep 30" if rc == "hang" else f"exit {rc}"
    fake = _stub(
        bin_dir / "tfcompat",
        f"""\
        printf '%s\\n' "$@" > {tmp_path}/argv
        echo "TFC201 NVIDIA driver 470.82.01 is older than 525.60.13, the minimum for any C..."
        echo "a second line that is not the finding"
        {body}
        """,
    )
    line = _nhc_line() + extra
    if rc == "hang":
        line = line.replace("-t 20", "-t 2")
    conf = tmp_path / "nhc.conf"
    conf.write_text(line + "\n")
    harness = tmp_path / "harness.sh"
    harness.write_text(NHC_HARNESS)
    proc = subprocess.run(
        ["bash", str(harness), str(conf), str(DEPLOY / "slurm" / "tfcompat.nhc")],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(
            os.environ,
            TFCOMPAT_NHC_CMD=str(fake),
            OFFLINE=str(tmp_path / "offline"),
            NHC_LOG=str(tmp_path / "log"),
            NHC_SYSLOG=str(tmp_path / "syslog"),
        ),
    )
    assert (proc.returncode != 0) == offline, proc.stdout + proc.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert_valid_invocation(argv, "tfcompat.nhc")
    assert argv[0] == "check" and argv[argv.index("--format") + 1] == "npd"
    assert argv[argv.index("--scope") + 1] == "node"  # a node agent
    assert argv[argv.index("--python") + 1] == "/opt/venv/bin/python"
    budget = float(argv[argv.index("--budget") + 1])
    assert budget < int(re.search(r"-t (\d+)", line).group(1))  # a verdict before timeout(1) stops it
    reason = (tmp_path / "offline").read_text().strip() if offline else ""
    if rc == 1:
        assert reason == (
            "Health check failed:  check_tfcompat:  TFC201 NVIDIA driver 470.82.01 is older than 525.60.13, "
            "the minimum for any C..."
        )
    elif offline:
        assert reason.startswith("Health check failed:  check_tfcompat:  tfcompat could not decide (exit 2)")
    log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
    assert bool(log) == logged, log
    if rc == "hang":
        assert "tfcompat timed out after 2s" in log and (tmp_path / "syslog").read_text().strip()
    elif logged:
        assert "could not decide (exit 2): TFC201" in log


def test_nhc_check_refuses_a_time_limit_nhc_would_kill(tmp_path):
    harness = tmp_path / "harness.sh"
    harness.write_text(NHC_HARNESS)
    for bad in ("-t 30", "-t 45", "-t x"):
        conf = tmp_path / "nhc.conf"
        conf.write_text(_nhc_line().replace("-t 20", bad) + "\n")
        proc = subprocess.run(
            ["bash", str(harness), str(conf), str(DEPLOY / "slurm" / "tfcompat.nhc")],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, TFCOMPAT_NHC_CMD="/bin/false", OFFLINE=str(tmp_path / "offline")),
        )
        assert proc.returncode == 1 and "check_tfcompat:  " in (tmp_path / "offline").read_text(), bad


def _stub(path, body):
    path.write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


STUB_REPORT = '{"stub": "the report the check wrote"}'


@pytest.fixture
def stubs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scontrol.log"
    _stub(
        bin_dir / "scontrol",
        f"""\
        echo "$1" >> {tmp_path}/scontrol.calls
        if [ "$1" = show ]; then echo "NodeName=$3 State=IDLE Reason=${{STUB_REASON:-}}"; exit 0; fi
        echo "$*" >> {log}
        """,
    )
    _stub(bin_dir / "logger", "exit 0\n")
    # timeout(1) that records its limit and the command, then runs it
    _stub(
        bin_dir / "timeout",
        f"""\
        echo "$1 ${{2##*/}}" >> {tmp_path}/timeouts
        shift
        exec "$@"
        """,
    )
    # tfcompat: a check prints the NPD line and writes DIR/<node>.json for --output-dir; `check --from R`
    # copies R (or "no report") to its --output
    _stub(
        bin_dir / "fake-tfcompat",
        f"""\
        printf '%s\\n' "$@" > {tmp_path}/argv
        {{ printf '%s\\n' "$@"; echo ---; }} >> {tmp_path}/calls
        src= out= dir= node=
        while [ $# -gt 0 ]; do
            case $1 in --from) src=$2 ;; --output) out=$2 ;; --output-dir) dir=$2 ;; --node-name) node=$2 ;; esac
            shift
        done
        if [ -n "$src" ]; then
            if [ -f "$src" ]; then cat "$src" > "$out"; else echo "no report" > "$out"; fi
            exit 0
        fi
        if [ -n "$dir" ] && [ "${{STUB_NO_REPORT:-0}}" != 1 ]; then echo '{STUB_REPORT}' > "$dir/$node.json"; fi
        echo "$STUB_LINE"
        exit "$STUB_RC"
        """,
    )
    return bin_dir, log


def _calls(tmp_path):
    text = (tmp_path / "calls").read_text() if (tmp_path / "calls").exists() else ""
    return [c.strip("\n").split("\n") for c in text.split("---\n") if c.strip()]


def _health(stubs, rc, line, **env):
    bin_dir, log = stubs
    for f in (log, log.parent / "calls", log.parent / "timeouts", log.parent / "scontrol.calls"):
        if f.exists():
            f.unlink()
    e = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        TFCOMPAT=str(bin_dir / "fake-tfcompat"),
        SLURMD_NODENAME="gpu-007",
        STUB_RC=str(rc),
        STUB_LINE=line,
        **env,
    )
    proc = subprocess.run(
        ["bash", str(DEPLOY / "slurm" / "tfcompat-healthcheck.sh")], env=e, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_healthcheck_drains_and_resumes(stubs, tmp_path):
    msg = "TFC201 NVIDIA driver 470.82.01 is older than 525.60.13, the minimum for any C..."
    assert _health(stubs, 1, msg) == [f"update nodename=gpu-007 state=drain reason=tfcompat: {msg}"]
    argv = (tmp_path / "argv").read_text().splitlines()
    assert_valid_invocation(argv, "tfcompat-healthcheck.sh")
    assert argv[argv.index("--node-name") + 1] == "gpu-007" and argv[argv.index("--format") + 1] == "npd"
    # passing again: resume only what tfcompat drained
    assert _health(stubs, 0, "tfcompat OK", STUB_REASON="tfcompat:old") == ["update nodename=gpu-007 state=resume"]
    assert _health(stubs, 0, "tfcompat OK", STUB_REASON="bad_dimm") == []
    assert _health(stubs, 0, "tfcompat OK") == []
    # someone else's drain reason is kept
    assert _health(stubs, 1, msg, STUB_REASON="bad_dimm") == []
    # could not decide: logged, not drained, unless asked
    assert _health(stubs, 2, "tfcompat could not decide: no TensorFlow") == []
    assert _health(stubs, 2, "x", TFCOMPAT_DRAIN_UNDECIDED="1") == [
        "update nodename=gpu-007 state=drain reason=tfcompat: undecided: x"
    ]


HEALTHCHECK_KILL = 60  # slurmd kills a HealthCheckProgram after 60 s


def test_healthcheck_checks_once_and_renders_the_textfile_from_that_report(stubs, tmp_path):
    """With TFCOMPAT_TEXTFILE the node is checked once (the slow part); the Prometheus file is rendered from the
    JSON report of that check (`check --from REPORT`), and every step runs under a time limit whose sum stays
    well under slurmd's 60 s."""
    prom = tmp_path / "tfcompat.prom"
    reports = tmp_path / "reports"
    reports.mkdir()
    msg = "TFC201 NVIDIA driver 470.82.01 is older than 525.60.13, the minimum for any C..."
    drained = _health(stubs, 1, msg, TFCOMPAT_TEXTFILE=str(prom), TFCOMPAT_REPORTS=str(reports))
    assert drained == [f"update nodename=gpu-007 state=drain reason=tfcompat: {msg}"]
    calls = _calls(tmp_path)
    for c in calls:
        assert_valid_invocation(c, "tfcompat-healthcheck.sh")
    checks = [c for c in calls if "--from" not in c]
    (check,) = checks  # one check of the node, not two
    (render,) = [c for c in calls if "--from" in c]
    assert render[render.index("--format") + 1] == "prometheus" and render[render.index("--output") + 1] == str(prom)
    written = Path(check[check.index("--output-dir") + 1]) / "gpu-007.json"
    assert render[render.index("--from") + 1] == str(written)
    assert prom.read_text().strip() == STUB_REPORT  # rendered from the report the check wrote
    assert (reports / "gpu-007.json").read_text().strip() == STUB_REPORT  # kept for the gate, atomically
    assert sorted(p.name for p in reports.iterdir()) == ["gpu-007.json"]
    assert not written.parent.exists()  # the private temp directory is removed
    # every tfcompat and scontrol call ran under timeout(1), and the limits add up well under 60 s
    limits = [line.split() for line in (tmp_path / "timeouts").read_text().splitlines()]
    assert sorted(cmd for _, cmd in limits) == sorted(
        ["fake-tfcompat"] * len(calls) + ["scontrol"] * len((tmp_path / "scontrol.calls").read_text().split())
    )
    assert sum(int(t) for t, _ in limits) <= HEALTHCHECK_KILL - 10, limits
    # no report (the check timed out): the textfile says so (rendered from a missing report: exit 2)
    _health(stubs, 124, "", TFCOMPAT_TEXTFILE=str(prom), STUB_NO_REPORT="1")
    assert prom.read_text().strip() == "no report"
    assert len([c for c in _calls(tmp_path) if "--from" not in c]) == 1


def test_healthcheck_with_the_real_tfcompat(tmp_path, matrix):
    """End to end: the real CLI checks a snapshot once; the textfile rendered from its report parses and says
    exit 1 for the node; the node is drained."""
    import datetime

    env = make_env(driver="470.82.01", gpus=[Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-x", None, "9.0")])
    data = to_json_dict(env)
    data["host"]["node_name"] = "gpu-007"
    data["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(data))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scontrol.log"
    _stub(
        bin_dir / "scontrol",
        f"""\
        if [ "$1" = show ]; then echo "NodeName=$3 State=IDLE Reason="; exit 0; fi
        echo "$*" >> {log}
        """,
    )
    _stub(bin_dir / "logger", "exit 0\n")
    _stub(
        bin_dir / "tfc",
        f"""\
        echo "$*" >> {tmp_path}/calls
        case " $* " in *" --from "*) ;; *) set -- "$@" --from "{snap}" ;; esac
        exec {sys.executable} -m tfcompat "$@"
        """,
    )
    prom = tmp_path / "tfcompat.prom"
    e = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        TFCOMPAT=str(bin_dir / "tfc"),
        TFCOMPAT_PYTHON="",
        SLURMD_NODENAME="gpu-007",
        TFCOMPAT_TEXTFILE=str(prom),
    )
    proc = subprocess.run(
        ["bash", str(DEPLOY / "slurm" / "tfcompat-healthcheck.sh")], env=e, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().startswith("update nodename=gpu-007 state=drain reason=tfcompat: TFC201")
    assert len((tmp_path / "calls").read_text().splitlines()) == 2
    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert fams["tfcompat_exit_code"].samples[0].value == 1
    assert fams["tfcompat_exit_code"].samples[0].labels["hostname"] == "gpu-007"
    # the node-wide failure (TFC201) leaves no GPU compatible, and promtool finds nothing to say about the file
    assert [x.value for x in fams["tfcompat_gpu_compatible"].samples] == [0]
    if shutil.which("promtool"):
        lint = subprocess.run(["promtool", "check", "metrics"], input=prom.read_text(), capture_output=True, text=True)
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr


def _fresh_snapshot(env, name):
    import datetime

    data = to_json_dict(env)
    data["host"]["node_name"] = name
    data["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    return json.dumps(data)


@pytest.fixture
def slurm_gate(tmp_path, matrix):
    """The one-shot gate against emulated nodes: a stub srun that runs the task once per node (labelling its output
    with the task number under --label) and, as Slurm does with ConstrainDevices=yes, shows a step the node's GPUs
    only when the step asked for GPUs (--gpus-per-node, --gres=gpu, --exclusive); the real tfcompat judges each
    node's snapshot (<node>.json with its GPUs, <node>.nogpu.json as a step without GPUs sees it)."""
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    for name, driver in (("n1", "560.35.03"), ("n2", "470.82.01"), ("n3", "560.35.03"), ("n4", "560.35.03")):
        env = make_env(driver=driver, gpus=[Gpu(0, "NVIDIA H100 80GB HBM3", f"GPU-{name}", None, "9.0")])
        (snaps / f"{name}.json").write_text(_fresh_snapshot(env, name))
        (snaps / f"{name}.nogpu.json").write_text(_fresh_snapshot(make_env(driver=driver, gpus=[]), name))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(
        bin_dir / "srun",
        f"""\
        printf '%s\\0' "$@" > {tmp_path}/srun.argv
        gpus=0 label=0
        while [ "${{1#-}}" != "$1" ]; do
            case $1 in --gpus-per-node=* | --gres=gpu* | --exclusive) gpus=1 ;; --label | -l) label=1 ;; esac
            shift
        done
        i=0
        for n in $STUB_NODES; do
            if [ "$label" = 1 ]; then
                SLURMD_NODENAME=$n STUB_STEP_GPUS=$gpus "$@" | sed "s/^/$i: /"
            else
                SLURMD_NODENAME=$n STUB_STEP_GPUS=$gpus "$@"
            fi
            i=$((i + 1))
        done
        """,
    )
    _stub(
        bin_dir / "tfc",
        f"""\
        if [ "$1" = check ] && [ "$SLURMD_NODENAME" = "${{STUB_HANG:-}}" ]; then exec sleep 60; fi
        if [ "$1" = check ]; then
            shift
            snap={snaps}/$SLURMD_NODENAME.json
            case " ${{STUB_BLIND:-}} " in *" $SLURMD_NODENAME "*) snap={snaps}/$SLURMD_NODENAME.nogpu.json ;; esac
            if [ "$STUB_STEP_GPUS" != 1 ]; then snap={snaps}/$SLURMD_NODENAME.nogpu.json; fi
            exec {sys.executable} -m tfcompat check --from "$snap" "$@"
        fi
        exec {sys.executable} -m tfcompat "$@"
        """,
    )

    def gate(nodes, run_on, reports, **env):
        e = dict(
            os.environ,
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            TFCOMPAT=str(bin_dir / "tfc"),
            TFCOMPAT_PYTHON="",
            SLURM_JOB_NODELIST=nodes,
            STUB_NODES=run_on,
            TFCOMPAT_REPORTS=str(reports),
            **env,
        )
        for key in ("SLURM_GPUS_PER_NODE", "TFCOMPAT_GPUS"):
            if key not in env:
                e.pop(key, None)
        proc = subprocess.run(
            ["bash", str(DEPLOY / "slurm" / "tfcompat-gate.sh")], env=e, capture_output=True, text=True, timeout=120
        )
        argv = (tmp_path / "srun.argv").read_text().split("\0")[:-1] if (tmp_path / "srun.argv").exists() else []
        return proc, argv

    return gate


def _task_args(srun_argv):
    """srun's options, and the task's own arguments after `bash -c TASK tfcompat-task`."""
    i = srun_argv.index("bash")
    assert srun_argv[i + 1] == "-c" and srun_argv[i + 3] == "tfcompat-task"
    return srun_argv[:i], srun_argv[i + 4 :]


def test_srun_gate_script(slurm_gate, tmp_path):
    """The one-shot gate with a stub srun that runs the task once per emulated node; the real tfcompat."""
    proc, srun = slurm_gate("n[1-3]", "n1 n2 n3", tmp_path / "r1", SLURM_GPUS_PER_NODE="8")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Failing (1): n2" in proc.stdout and "Result: FAIL" in proc.stdout
    suites = {s.get("name") for s in ET.parse(tmp_path / "r1" / "gate.junit.xml").getroot()}
    assert {"n1", "n2", "n3"} <= suites
    # labelled output, one line per node, with what the check saw
    assert "0: n1: pass - GPUs visible: 1" in proc.stdout and "1: n2: fail TFC201 - GPUs visible: 1" in proc.stdout
    opts, task = _task_args(srun)
    assert "--label" in opts and "--ntasks-per-node=1" in opts and "--gpus-per-node=8" in opts
    assert_valid_invocation(task[4:], "tfcompat-gate.sh")  # limit, expect, dir, tfcompat, then the check
    assert task[3].endswith("/tfc") and task[4] == "check" and task[task.index("--format") + 1] == "prometheus"
    assert task[task.index("--scope") + 1] == "job"  # inside the job's allocation
    proc, _ = slurm_gate("n[1,3-4]", "n1 n3", tmp_path / "r2", SLURM_GPUS_PER_NODE="8")
    assert proc.returncode == 2 and "Missing (1): n4" in proc.stdout, proc.stdout + proc.stderr
    # a node whose check hangs is stopped by its task's time limit and comes out missing; the gate still runs
    proc, srun = slurm_gate(
        "n[1,3]", "n1 n3", tmp_path / "r3", STUB_HANG="n3", TFCOMPAT_CHECK_TIMEOUT="4", TFCOMPAT_GPUS="8"
    )
    assert proc.returncode == 2 and "Missing (1): n3" in proc.stdout and "Passing (1): n1" in proc.stdout, (
        proc.stdout + proc.stderr
    )
    assert "n3: timed out after 4s" in proc.stdout  # 4 s: the healthy node's real check must finish on a busy box
    opts, task = _task_args(srun)
    assert task[0] == "4"  # each task's check, under timeout(4)
    assert any(a.startswith("--time=") for a in opts)  # and the step itself under a Slurm time limit


def test_srun_gate_asks_for_the_gpus_and_fails_a_node_that_shows_none(slurm_gate, tmp_path):
    """Where Slurm constrains devices, a step that asks for no GPU sees none and its check would pass without
    looking at a GPU. The gate's step asks for them (the job's --gpus-per-node, a count, or --exclusive), and a
    node whose check shows no GPU fails the gate."""
    # the job asked for no GPU count: the step asks for whole nodes (--exclusive) and every node shows its GPU
    proc, srun = slurm_gate("n[1,3-4]", "n1 n3 n4", tmp_path / "r1")
    opts, task = _task_args(srun)
    assert "--exclusive" in opts and task[1] == "1", opts
    assert proc.returncode == 0 and "No GPU visible" not in proc.stdout, proc.stdout + proc.stderr
    # n4's GPUs are not visible to the step (gres.conf wrong, GPU lost): tfcompat alone would pass it; the gate fails
    proc, srun = slurm_gate("n[1,3-4]", "n1 n3 n4", tmp_path / "r2", TFCOMPAT_GPUS="h100:8", STUB_BLIND="n4")
    assert "--gpus-per-node=h100:8" in _task_args(srun)[0]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Passing (3): n[1,3-4]" in proc.stdout  # what tfcompat alone says
    assert "2: n4: pass - NO GPU VISIBLE" in proc.stdout and "No GPU visible (1): n4" in proc.stdout
    junit = ET.parse(tmp_path / "r2" / "gpu-visibility.junit.xml").getroot()
    assert junit.get("failures") == "1" and [t.get("classname") for t in junit] == ["n4"]
    # the next run starts clean: markers of an earlier run do not fail a node that shows its GPUs now
    proc, _ = slurm_gate("n[1,3-4]", "n1 n3 n4", tmp_path / "r2", TFCOMPAT_GPUS="8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ET.parse(tmp_path / "r2" / "gpu-visibility.junit.xml").getroot().get("failures") == "0"
    # a partition without GPUs: nothing asked for, nothing expected
    proc, srun = slurm_gate("n[1,3]", "n1 n3", tmp_path / "r3", TFCOMPAT_GPUS="none", SLURM_GPUS_PER_NODE="8")
    opts, task = _task_args(srun)
    assert not any("gpu" in o or o == "--exclusive" for o in opts) and task[1] == "0"
    assert proc.returncode == 0 and "GPUs visible: 0" in proc.stdout, proc.stdout + proc.stderr


def _eight_gpu_node_with_container_limits(name):
    """The issue's snapshot: an 8-GPU node as seen from a container with Kubernetes' default limits (/dev/shm
    64 MiB, memlock 8 MiB, a 256 MiB memory cgroup) on a node with InfiniBand HCAs."""
    import dataclasses

    from tfcompat.model import Resources

    mib, gib = 1 << 20, 1 << 30
    gpus = [Gpu(i, "NVIDIA H100 80GB HBM3", f"GPU-{name}-{i}", None, "9.0", 81559, False) for i in range(8)]
    env = make_env(driver="575.57.08", gpus=gpus)
    res = Resources(
        shm_bytes=64 * mib,
        shm_source="/proc/mounts",
        memlock_soft=8 * mib,
        memlock_hard=8 * mib,
        rlimit_source="getrlimit() of the checking process",
        cgroup_version=2,
        cgroup_memory_limit=256 * mib,
        cgroup_memory_current=60 * mib,
        cgroup_source="/sys/fs/cgroup/memory.max",
        mem_total=2048 * gib,
        rdma_devices=("mlx5_0",),
    )
    return _fresh_snapshot(dataclasses.replace(env, host=dataclasses.replace(env.host, resources=res)), name)


def test_node_agent_passes_container_limits_that_fail_inside_the_job(slurm_gate, tmp_path):
    """Issue 13, Deliver 5: the same 8-GPU node with a 64 MiB /dev/shm passes the NHC check (a node agent:
    --scope node, the limits are the checker's) and fails the Slurm gate (inside the job: --scope job, TFC801)."""
    snap = tmp_path / "n1.json"
    snap.write_text(_eight_gpu_node_with_container_limits("n1"))
    # NHC, with the real tfcompat judging the snapshot
    bin_dir = tmp_path / "nhcbin"
    bin_dir.mkdir()
    real = _stub(bin_dir / "tfcompat", f'exec {sys.executable} -m tfcompat "$@" --from "{snap}"\n')
    conf = tmp_path / "nhc.conf"
    conf.write_text(_nhc_line() + "\n")
    harness = tmp_path / "harness.sh"
    harness.write_text(NHC_HARNESS)
    proc = subprocess.run(
        ["bash", str(harness), str(conf), str(DEPLOY / "slurm" / "tfcompat.nhc")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(
            os.environ,
            TFCOMPAT_NHC_CMD=str(real),
            TFCOMPAT_NHC_PYTHON="",
            OFFLINE=str(tmp_path / "offline"),
            NHC_LOG=str(tmp_path / "log"),
            NHC_SYSLOG=str(tmp_path / "syslog"),
        ),
    )
    assert proc.returncode == 0 and not (tmp_path / "offline").exists(), proc.stdout + proc.stderr
    # the same node inside the job's allocation: the gate fails it on the job's limits
    (tmp_path / "snaps" / "n1.json").write_text(snap.read_text())
    proc, _ = slurm_gate("n[1,3]", "n1 n3", tmp_path / "r", TFCOMPAT_GPUS="8")
    assert proc.returncode == 1 and "Failing (1): n1" in proc.stdout, proc.stdout + proc.stderr
    assert "0: n1: fail TFC801" in proc.stdout and "GPUs visible: 8" in proc.stdout
