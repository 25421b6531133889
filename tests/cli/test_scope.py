"""--scope node|job (issue 13, Deliver 1 and 5): a node agent judges the node, a check inside the job judges the job.

The snapshot is the issue's: an 8-GPU node scanned by the DaemonSet, whose container runs with Kubernetes' limits
(/dev/shm 64 MiB, memlock 8 MiB or 64 KiB, a 256Mi memory cgroup), on a node with an InfiniBand HCA.
"""

import dataclasses
import json

import jsonschema
import pytest
from envs import make_env, run_rule
from probe_helpers import write

from tfcompat.cli import main
from tfcompat.model import Gpu, Resources, Scope, Severity, environment_from_json, from_json_dict, to_json_dict
from tfcompat.model.report import Report
from tfcompat.probes.resources import probe_resources, rdma_devices
from tfcompat.probes.rootfs import Root
from tfcompat.render.json import schema_text
from tfcompat.rules import evaluate

MiB, GiB = 1 << 20, 1 << 30
JOB_LIMITS = ("TFC801", "TFC802", "TFC803")


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def gpu(i):
    return Gpu(
        i,
        name="NVIDIA H100 80GB HBM3",
        uuid=f"GPU-h100-{i}",
        pci_bus_id=f"00000000:{i + 0x18:02X}:00.0",
        compute_capability="9.0",
        memory_total_mib=81559,
        memory_used_mib=4,
        persistence_mode=True,
        ecc_enabled=True,
        ecc_uncorrected_volatile=0,
        remap_pending=False,
        remap_failure=False,
    )


def daemonset_snapshot(memlock=8 * MiB, scope=Scope.NODE, rdma=("mlx5_0", "mlx5_1"), **res):
    """What `tfcompat scan --scope node` records inside the DaemonSet's container on an 8-GPU node."""
    limits = {
        "shm_bytes": 64 * MiB,
        "shm_source": "/proc/mounts",
        "memlock_soft": memlock,
        "memlock_hard": memlock,
        "rlimit_source": "getrlimit() of the checking process",
        "cgroup_version": 2,
        "cgroup_memory_limit": 256 * MiB,
        "cgroup_memory_current": 60 * MiB,
        "cgroup_source": "/sys/fs/cgroup/memory.max",
        "mem_total": 2048 * GiB,
        "rdma_devices": rdma,
        **res,
    }
    env = make_env("2.21.0", driver="575.57.08", gpus=[gpu(i) for i in range(8)])
    host = dataclasses.replace(env.host, node_name="gpu-017", resources=Resources(**limits))
    return dataclasses.replace(env, host=host, scope=scope)


def write_snapshot(path, env):
    path.write_text(json.dumps(to_json_dict(env)))
    return path


def validate(report):
    jsonschema.validate(report, json.loads(schema_text()))


# ---------------------------------------------------------------- the "done when"


@pytest.mark.parametrize("memlock", [8 * MiB, 64 * 1024])
def test_daemonset_snapshot_passes_as_node_and_fails_as_job(capsys, tmp_path, memlock):
    snap = write_snapshot(tmp_path / "gpu-017.json", daemonset_snapshot(memlock))

    code, out, err = run(capsys, "check", "--from", snap, "-f", "json")  # the recorded scope: node
    node = json.loads(out)
    validate(node)
    assert code == 0 and node["status"] == "pass" and node["scope"] == "node", err
    assert node["environment"]["scope"] == "node"
    as_node = {f["rule"]: f for f in node["findings"]}
    assert set(JOB_LIMITS) <= set(as_node)
    for rule in JOB_LIMITS:
        f = as_node[rule]
        assert f["severity"] == "info" and f["message"].startswith("node scope: the checker's own limit, not the job's")
        assert {"fact": "scope", "value": "node"}.items() <= f["evidence"][-1].items()
    assert "(error inside a job)" in as_node["TFC801"]["message"]

    code, out, err = run(capsys, "check", "--from", snap, "--scope", "job", "-f", "json")
    job = json.loads(out)
    validate(job)
    assert code == 1 and job["status"] == "fail" and job["scope"] == "job"
    assert job["environment"]["scope"] == "node"  # recorded as it was taken
    assert err == f"tfcompat: --scope job: judging {snap} as a job (it was recorded with --scope node)\n"
    severities = {f["rule"]: f["severity"] for f in job["findings"]}
    assert severities["TFC801"] == "error" and severities["TFC802"] == "error" and severities["TFC803"] == "warning"
    assert not any(f["message"].startswith("node scope") for f in job["findings"])


def test_node_scope_still_fails_a_node_fact(matrix):
    """Only the job limits inform: a node fact (an ECC error) fails the node agent as before."""
    env = daemonset_snapshot()
    bad = dataclasses.replace(env.host.gpus[3], ecc_uncorrected_volatile=2)
    env = dataclasses.replace(
        env, host=dataclasses.replace(env.host, gpus=env.host.gpus[:3] + (bad,) + env.host.gpus[4:])
    )
    report = evaluate(env, matrix)
    assert report.status == "fail" and report.scope is Scope.NODE
    assert [f.rule for f in report.findings if f.severity is Severity.ERROR] == ["TFC805"]


def test_visible_devices_is_a_job_limit(matrix):
    env = daemonset_snapshot(cuda_visible_devices="7,9")
    as_job = evaluate(env, matrix, scope=Scope.JOB)
    as_node = evaluate(env, matrix)
    assert [f.severity for f in as_job.findings if f.rule == "TFC807"] == [Severity.WARNING]
    assert [f.severity for f in as_node.findings if f.rule == "TFC807"] == [Severity.INFO]


def test_scope_flag_wins_over_the_recorded_one(matrix):
    """--scope node on a job snapshot judges it as a node (the agent re-renders a job's report, say)."""
    env = daemonset_snapshot(scope=Scope.JOB)
    assert evaluate(env, matrix).status == "fail"
    assert evaluate(env, matrix, scope=Scope.NODE).status == "pass"


def test_older_snapshot_without_scope_is_a_job(matrix):
    data = to_json_dict(daemonset_snapshot())
    del data["scope"], data["host"]["resources"]["rdma_devices"]
    env = environment_from_json(data)
    assert env.scope is Scope.JOB and env.host.resources.rdma_devices is None
    assert evaluate(env, matrix).status == "fail"


# ---------------------------------------------------------------- text header


def test_text_header_shows_the_scope(capsys, tmp_path):
    snap = write_snapshot(tmp_path / "gpu-017.json", daemonset_snapshot())
    code, out, _ = run(capsys, "check", "--from", snap, "--no-color")
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith("Node        gpu-017")
    assert lines[2].startswith("Scope       node (a node agent:")
    code, out, _ = run(capsys, "check", "--from", snap, "--scope", "job", "--no-color")
    assert code == 1
    assert (
        "Scope       job (the limits this check runs under are judged as the job's); the snapshot was recorded "
        "with --scope node" in out
    )


# ---------------------------------------------------------------- a real scan records its scope


def test_real_scan_records_its_scope(capsys, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    code, out, _ = run(capsys, "scan", "--site-packages", site, "--no-nvml", "--scope", "node")
    assert code == 0 and json.loads(out)["scope"] == "node"
    code, out, _ = run(capsys, "scan", "--site-packages", site, "--no-nvml")
    snap = json.loads(out)
    assert code == 0 and snap["scope"] == "job"  # the default: a person or CI checking an environment
    assert isinstance(snap["host"]["resources"]["rdma_devices"], list)  # the live system: a list, maybe empty
    code, out, _ = run(capsys, "check", "--site-packages", site, "--no-nvml", "--scope", "node", "-f", "json")
    report = json.loads(out)
    validate(report)
    assert report["scope"] == "node" and report["environment"]["scope"] == "node"


def test_scope_choices_are_checked(capsys):
    code, _, err = run(capsys, "check", "--from", "x.json", "--scope", "cluster")
    assert code == 2 and "--scope" in err


def test_error_report_keeps_the_one_error_shape(capsys, tmp_path):
    code, out, _ = run(capsys, "check", "--from", tmp_path / "nope.json", "--scope", "node", "-f", "json")
    assert code == 2 and "scope" not in json.loads(out)


# ---------------------------------------------------------------- the gate


def _report(tmp_path, capsys, env, name, *args):
    snap = write_snapshot(tmp_path / f"{name}.snap", env)
    _code, out, _ = run(capsys, "check", "--from", snap, "-f", "json", *args)
    (tmp_path / "reports").mkdir(exist_ok=True)
    (tmp_path / "reports" / f"{name}.json").write_text(out)
    return json.loads(out)


def test_gate_judges_a_node_scope_report_as_node(capsys, tmp_path):
    _report(tmp_path, capsys, daemonset_snapshot(), "gpu-017")
    code, out, _ = run(capsys, "gate", tmp_path / "reports", "--expect", "gpu-017", "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "pass"
    (node,) = data["nodes"]
    assert any("judged as a node agent (--scope node)" in n for n in node["notes"])


def test_gate_judges_a_job_scope_report_as_job(capsys, tmp_path):
    _report(tmp_path, capsys, daemonset_snapshot(), "gpu-017", "--scope", "job")
    code, out, _ = run(capsys, "gate", tmp_path / "reports", "--expect", "gpu-017", "-f", "json")
    assert code == 1 and json.loads(out)["nodes"][0]["verdict"] == "fail"


def test_gate_judges_a_snapshot_by_its_recorded_scope(capsys, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    write_snapshot(reports / "gpu-017.json", daemonset_snapshot())
    write_snapshot(reports / "gpu-018.json", dataclasses.replace(daemonset_snapshot(scope=Scope.JOB)))
    data = to_json_dict(daemonset_snapshot(scope=Scope.JOB))
    data["host"]["node_name"] = "gpu-018"
    (reports / "gpu-018.json").write_text(json.dumps(data))
    code, out, _ = run(capsys, "gate", reports, "--expect", "gpu-[017-018]", "-f", "json")
    nodes = {n["node"]: n for n in json.loads(out)["nodes"]}
    assert code == 1 and nodes["gpu-017"]["verdict"] == "pass" and nodes["gpu-018"]["verdict"] == "fail"


def test_gate_demotes_job_limits_of_an_altered_node_report(capsys, tmp_path):
    """A node-scope report with a job-limit error in it (hand-made, or altered) is judged as its scope says."""
    data = _report(tmp_path, capsys, daemonset_snapshot(), "gpu-017", "--scope", "job")
    data["scope"] = "node"
    (tmp_path / "reports" / "gpu-017.json").write_text(json.dumps(data))
    code, out, _ = run(capsys, "gate", tmp_path / "reports", "--expect", "gpu-017", "-f", "json")
    (node,) = json.loads(out)["nodes"]
    assert code == 0 and node["verdict"] == "pass"
    assert {f["rule"]: f["severity"] for f in node["findings"]}["TFC801"] == "info"


def test_gate_refuses_an_unknown_scope(capsys, tmp_path):
    data = _report(tmp_path, capsys, daemonset_snapshot(), "gpu-017")
    data["scope"] = "cluster"
    (tmp_path / "reports" / "gpu-017.json").write_text(json.dumps(data))
    code, out, _ = run(capsys, "gate", tmp_path / "reports", "--expect", "gpu-017", "-f", "json")
    assert code != 0 and "scope" in out


def test_report_decodes_without_scope():
    """A report of an older release has no scope: judged as a job."""
    report = from_json_dict(
        Report,
        {
            "schema_version": 1,
            "tool_version": "0.1.0",
            "status": "pass",
            "exit_code": 0,
            "fail_on": "error",
            "matrix": None,
            "findings": [],
            "skipped": [],
            "errors": [],
            "environment": None,
        },
    )
    assert report.scope is None and report.judged_as is Scope.JOB


# ---------------------------------------------------------------- TFC802: RDMA decides the severity


@pytest.mark.parametrize(
    "rdma, severity, words",
    [
        (("mlx5_0",), Severity.ERROR, "on a node with RDMA devices (mlx5_0)"),
        ((), Severity.WARNING, "no RDMA devices on this node"),
        (None, Severity.WARNING, "RDMA devices unknown"),
    ],
)
def test_memlock_is_an_error_only_where_rdma_is_in_play(matrix, rdma, severity, words):
    env = daemonset_snapshot(memlock=64 * 1024, scope=Scope.JOB, rdma=rdma)
    (f,), _ = run_rule(env, matrix, "TFC802")
    assert f.severity is severity and words in f.message
    if severity is Severity.WARNING:
        assert "cudaHostAlloc) is not bounded by it" in f.message


def test_memlock_rule_cites_its_sources():
    from tfcompat.rules import find

    doc = find("TFC802").doc
    assert "ib_umem_get" in doc and "os_lock_user_pages" in doc and "getrlimit(2)" in doc


def test_rdma_devices_probe(tmp_path):
    write(tmp_path / "sys/class/infiniband/mlx5_1/node_type", "1: CA\n")
    write(tmp_path / "sys/class/infiniband/mlx5_0/node_type", "1: CA\n")
    assert rdma_devices(Root(str(tmp_path))) == ("mlx5_0", "mlx5_1")
    assert rdma_devices(Root(str(tmp_path / "image"))) is None  # a sysroot without /sys: unknown
    res, _ = probe_resources(Root(str(tmp_path)))
    assert res.rdma_devices == ("mlx5_0", "mlx5_1")


def test_gate_joins_an_image_with_a_node_agent_report_as_node(capsys, tmp_path):
    """gate --environment IMAGE: the joined environment's limits are the node report's, judged with its scope."""
    _report(tmp_path, capsys, daemonset_snapshot(), "gpu-017")
    image = write_snapshot(tmp_path / "image.json", dataclasses.replace(daemonset_snapshot(), scope=Scope.JOB))
    code, out, _ = run(
        capsys, "gate", tmp_path / "reports", "--expect", "gpu-017", "--environment", image, "-f", "json"
    )
    (node,) = json.loads(out)["nodes"]
    assert code == 0 and node["verdict"] == "pass"
    assert any("judged as a node agent" in n for n in node["notes"])


def test_node_agent_does_not_use_its_own_ld_library_path(tmp_path):
    """A Slurm health check or NHC (--scope node) runs with slurmd's environment, not the job's: its LD_LIBRARY_PATH
    says nothing of where the job's loader looks. The loader model then uses none, says so as an unknown, and a
    check inside the job (--scope job) still sees the toolkit that shadows the wheel."""
    from elf_fixtures import link, write_so
    from test_libraries import make_image

    from tfcompat.model import Scope
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    site = make_image(tmp_path, site="/venv/lib/python3.11/site-packages")
    toolkit = tmp_path / "usr/local/cuda-12.2/lib64"
    write_so(toolkit / "libcublas.so.12.2.5.6", soname="libcublas.so.12", needed=("libcublasLt.so.12",))
    link(toolkit / "libcublas.so.12", "libcublas.so.12.2.5.6")
    write_so(toolkit / "libcublasLt.so.12")
    spec = TargetSpec(site_packages=(site,))
    environ = {"LD_LIBRARY_PATH": str(toolkit), "PATH": "/usr/bin:/bin"}

    def cublas(scope):
        env = scan(spec, nvml=False, environ=environ, scope=scope)
        (lib,) = [x for x in env.target.native.libraries if x.name == "cublas"]
        return env, lib

    env, lib = cublas(Scope.JOB)
    assert lib.found.found_via == "LD_LIBRARY_PATH" and env.unknown("native.job_loader_environment") is None
    env, lib = cublas(Scope.NODE)
    assert lib.found.found_via == "DT_RUNPATH" and lib.found.distribution == "nvidia-cublas-cu12"
    why = env.unknown("native.job_loader_environment")
    assert why and "LD_LIBRARY_PATH" in why and "--scope job" in why
    assert env.target.native.ld_library_path is None
