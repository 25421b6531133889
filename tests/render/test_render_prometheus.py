"""`check --format prometheus`: the node_exporter textfile, parsed with the official client's parser and, where
installed, checked with `promtool check metrics`."""

import dataclasses
import json
import re
import shutil
import subprocess

import pytest
from envs import make_env
from prometheus_client.parser import text_string_to_metric_families

from tfcompat.cli import main
from tfcompat.engine import error_report
from tfcompat.model import Evidence, Finding, Gpu, Severity, to_json_dict
from tfcompat.render import prometheus
from tfcompat.render.prometheus import METRICS, render_prometheus
from tfcompat.rules import evaluate

# dcgm-exporter's labels on its DCGM_FI_* series (its default counters) that promtool accepts: what a PromQL join
# can match on. Its camelCase modelName is not written (promtool check metrics exits 3 on it); model_name is.
DCGM_JOIN_LABELS = {"gpu", "UUID", "pci_bus_id", "device", "Hostname"}
JOIN_LABELS = DCGM_JOIN_LABELS | {"hostname", "model_name"}


def env_with(driver="560.35.03", names=("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"), node="gpu-007"):
    gpus = [Gpu(i, n, f"GPU-{i}a2b", f"00000000:{i + 0x18:02X}:00.0", "9.0", 81559, False) for i, n in enumerate(names)]
    env = make_env(driver=driver, gpus=gpus)
    return dataclasses.replace(env, host=dataclasses.replace(env.host, node_name=node))


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams, name):
    return fams[name].samples if name in fams else []


def test_parses_and_follows_conventions(matrix):
    text = render_prometheus(evaluate(env_with(driver="470.82.01"), matrix))
    fams = families(text)
    assert fams and all(name.startswith("tfcompat_") for name in fams)
    assert set(fams) <= set(METRICS)
    for fam in fams.values():
        assert fam.type == "gauge" and fam.documentation
        for s in fam.samples:
            assert s.timestamp is None  # the textfile collector rejects timestamps
            if s.name.endswith("_info"):
                assert s.value == 1
    (info,) = samples(fams, "tfcompat_tensorflow_info")
    assert info.labels["version"] == "2.21.0" and info.labels["cuda_version"] == "12.5.1"
    assert info.labels["hostname"] == "gpu-007"
    (drv,) = samples(fams, "tfcompat_driver_info")
    assert drv.labels["driver_version"] == "470.82.01"
    gpu_info = samples(fams, "tfcompat_gpu_info")
    assert len(gpu_info) == 2
    for s in gpu_info:
        assert set(s.labels) >= JOIN_LABELS
        assert s.labels["Hostname"] == s.labels["hostname"] == "gpu-007"
        assert s.labels["model_name"] == "NVIDIA H100 80GB HBM3" and "modelName" not in s.labels
    assert [s.labels["gpu"] for s in gpu_info] == ["0", "1"]
    assert gpu_info[1].labels["pci_bus_id"] == "00000000:19:00.0" and gpu_info[1].labels["UUID"] == "GPU-1a2b"
    (finding,) = samples(fams, "tfcompat_findings")
    assert (
        finding.labels
        == {"hostname": "gpu-007", "rule": "TFC201", "name": "driver-too-old-for-cuda", "severity": "error"}
        and finding.value == 1
    )
    by_sev = {s.labels["severity"]: s.value for s in samples(fams, "tfcompat_findings_by_severity")}
    assert by_sev == {"error": 1, "warning": 0, "info": 0}
    status = {s.labels["status"]: s.value for s in samples(fams, "tfcompat_check_status")}
    assert status == {"pass": 0, "fail": 1, "error": 0}
    assert samples(fams, "tfcompat_exit_code")[0].value == 1
    assert samples(fams, "tfcompat_compatible")[0].value == 0
    (last,) = samples(fams, "tfcompat_last_run_timestamp_seconds")
    assert last.value == 1795564800  # environment.created of make_env: 2026-11-25T00:00:00Z


def test_passing_node_and_gpu_compatibility(matrix):
    fams = families(render_prometheus(evaluate(env_with(), matrix)))
    assert samples(fams, "tfcompat_compatible")[0].value == 1
    assert [s.value for s in samples(fams, "tfcompat_gpu_compatible")] == [1, 1]
    assert "tfcompat_findings" not in fams or all(
        s.labels["severity"] != "error" for s in fams["tfcompat_findings"].samples
    )


def test_label_values_are_escaped(matrix):
    env = env_with(names=('Weird "GPU" \\ model\nline2', "NVIDIA H100 80GB HBM3"))
    fams = families(render_prometheus(evaluate(env, matrix)))
    assert samples(fams, "tfcompat_gpu_info")[0].labels["model_name"] == 'Weird "GPU" \\ model\nline2'


def test_gpu_series_carry_dcgm_exporters_join_labels_that_promtool_accepts(matrix):
    """dcgm-exporter labels its series gpu, UUID, pci_bus_id, device, modelName, Hostname: tfcompat writes all of
    them but modelName, whose camelCase makes `promtool check metrics` exit 3; the model is model_name, and the
    module says how to join on it (label_replace)."""
    for name in ("tfcompat_gpu_info", "tfcompat_gpu_compatible"):
        for s in samples(families(render_prometheus(evaluate(env_with(), matrix))), name):
            assert set(s.labels) >= JOIN_LABELS and "modelName" not in s.labels, (name, sorted(s.labels))
            assert s.labels["device"] == f"nvidia{s.labels['gpu']}"
            assert not any(re.search(r"[a-z][A-Z]", label) for label in s.labels)  # promtool's camelCase test
    from tfcompat.render import prometheus

    assert 'label_replace(DCGM_FI_DEV_GPU_UTIL, "model_name", "$1", "modelName", "(.*)")' in prometheus.__doc__


def gpu_compatible(report):
    return [s.value for s in samples(families(render_prometheus(report)), "tfcompat_gpu_compatible")]


def test_a_node_wide_failure_makes_every_gpu_incompatible(matrix):
    """TFC201 (driver too old) names no GPU: the node fails, so no GPU on it is compatible."""
    report = evaluate(env_with(driver="470.82.01"), matrix)
    assert {f.rule for f in report.findings if f.severity.value == "error"} == {"TFC201"}
    assert gpu_compatible(report) == [0, 0]
    # waived, or below fail-on, it counts for nothing
    waived = dataclasses.replace(
        report, findings=tuple(dataclasses.replace(f, waived="known") for f in report.findings), status="pass"
    )
    assert gpu_compatible(waived) == [1, 1]


def test_a_finding_about_one_gpu_marks_that_gpu_only(matrix):
    env = env_with(names=("NVIDIA H100 80GB HBM3", "Tesla K80"))
    env = dataclasses.replace(
        env,
        host=dataclasses.replace(
            env.host, gpus=(env.host.gpus[0], dataclasses.replace(env.host.gpus[1], compute_capability="3.7"))
        ),
    )
    report = evaluate(env, matrix)
    assert report.status == "fail" and {f.rule for f in report.findings if f.severity.value == "error"} == {"TFC206"}
    assert gpu_compatible(report) == [1, 0]
    # the same GPU named by its UUID in a source, not by its index
    (f,) = [f for f in report.findings if f.rule == "TFC206"]
    by_uuid = dataclasses.replace(f, evidence=(Evidence("compute capability", "3.7", "NVML, GPU-1a2b"),))
    assert prometheus.gpus_named(by_uuid, env.host.gpus) == {1}
    assert (
        prometheus.gpus_named(dataclasses.replace(f, evidence=(Evidence("x", "y", "GPU-1a2bc"),)), env.host.gpus)
        == set()
    )
    # plus a node-wide finding: every GPU
    node_wide = Finding(
        "TFC203",
        "driver-library-mismatch",
        Severity.ERROR,
        "mismatch",
        (Evidence("kernel module", "560.35.03", "/proc/driver/nvidia/version"),),
        "reboot",
    )
    assert gpu_compatible(dataclasses.replace(report, findings=report.findings + (node_wide,))) == [0, 0]


def test_an_undecided_check_marks_no_gpu_compatible(matrix):
    report = dataclasses.replace(error_report("no TensorFlow"), environment=env_with())
    assert gpu_compatible(report) == [0, 0]


def test_last_run_time_zones():
    """`environment.created` with Z, an offset or no zone (read as UTC): one parser for the gate and the textfile."""
    from tfcompat.fleet.facts import parse_time

    for created in ("2026-11-25T00:00:00Z", "2026-11-25T01:00:00+01:00", "2026-11-25T00:00:00"):
        env = dataclasses.replace(env_with(), created=created)
        report = dataclasses.replace(error_report("x"), environment=env)
        (last,) = samples(families(render_prometheus(report)), "tfcompat_last_run_timestamp_seconds")
        assert last.value == 1795564800 == parse_time(created).timestamp()


def test_error_report_still_gives_a_textfile():
    fams = families(render_prometheus(error_report("cannot read snapshot"), hostname="gpu-009", now=1700000000.0))
    assert samples(fams, "tfcompat_exit_code")[0].value == 2
    assert {s.labels["status"]: s.value for s in samples(fams, "tfcompat_check_status")}["error"] == 1
    assert samples(fams, "tfcompat_last_run_timestamp_seconds")[0].value == 1700000000
    assert samples(fams, "tfcompat_info")[0].labels["hostname"] == "gpu-009"


def test_library_series_when_the_report_has_libraries(matrix):
    """The loader model (`Target.native`) gives one _info series per CUDA library TF will load."""
    from tfcompat import model

    def res(name, soname, version):
        copy = model.LibraryCopy(
            path=f"/x/{soname}",
            real_path=f"/x/{soname}",
            found_via="DT_RUNPATH",
            search_entry="$ORIGIN",
            version=version,
        )
        return model.LibraryResolution(name=name, soname=soname, role="gpu", purpose="", requested_by=None, found=copy)

    env = env_with()
    native = model.NativeLibraries(
        caller="/x/libtensorflow_framework.so.2",
        caller_source="test",
        libraries=(res("cudnn", "libcudnn.so.9", "9.3.0.75"), res("cudart", "libcudart.so.12", "12.5.82")),
    )
    report = evaluate(dataclasses.replace(env, target=dataclasses.replace(env.target, native=native)), matrix)
    series = samples(families(render_prometheus(report)), "tfcompat_library_info")
    assert {s.labels["library"]: s.labels["version"] for s in series} == {"cudnn": "9.3.0.75", "cudart": "12.5.82"}
    assert "tfcompat_library_info" not in families(render_prometheus(evaluate(env, matrix)))


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return (exc.value.code,) + capsys.readouterr()


def test_cli_writes_textfile_atomically_with_exit_code(capsys, tmp_path, matrix):
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(to_json_dict(env_with(driver="470.82.01"))))
    prom = tmp_path / "tfcompat.prom"
    code, out, err = run(capsys, "check", "--from", snap, "-f", "prometheus", "-o", prom)
    assert code == 1 and out == "" and err == ""
    assert samples(families(prom.read_text()), "tfcompat_exit_code")[0].value == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    code, out, _ = run(capsys, "check", "--from", tmp_path / "missing.json", "-f", "prometheus", "-o", prom)
    assert code == 2
    assert samples(families(prom.read_text()), "tfcompat_exit_code")[0].value == 2


def test_output_dir_writes_node_json(capsys, tmp_path):
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(to_json_dict(env_with(node="gpu/../x"))))
    reports = tmp_path / "reports"
    reports.mkdir()
    code, out, _ = run(capsys, "check", "--from", snap, "-f", "npd", "--output-dir", reports)
    assert code == 0 and out.startswith("tfcompat OK")
    (written,) = list(reports.iterdir())
    assert written.name == "gpu%2F..%2Fx.json"  # one file per node: reportdir.node_file
    assert json.loads(written.read_text())["environment"]["host"]["node_name"] == "gpu/../x"
    code, _, err = run(
        capsys, "check", "--from", tmp_path / "nope.json", "--output-dir", reports, "--node-name", "gpu-010"
    )
    assert code == 2 and json.loads((reports / "gpu-010.json").read_text())["status"] == "error"
    code, _, err = run(capsys, "check", "--from", snap, "--output-dir", tmp_path / "absent")
    assert code == 2 and "--output-dir" in err


def promtool_outputs(matrix):
    """Every kind of textfile with GPUs (and without): node-wide fail, one-GPU fail, pass, undecided, odd values."""
    mixed = env_with(names=("NVIDIA H100 80GB HBM3", "Tesla K80"))
    mixed = dataclasses.replace(
        mixed,
        host=dataclasses.replace(
            mixed.host, gpus=(mixed.host.gpus[0], dataclasses.replace(mixed.host.gpus[1], compute_capability="3.7"))
        ),
    )
    return {
        "driver too old": evaluate(env_with(driver="470.82.01"), matrix),
        "one GPU unsupported": evaluate(mixed, matrix),
        "pass": evaluate(env_with(), matrix),
        "undecided, no facts": error_report("x"),
        "undecided, with GPUs": dataclasses.replace(error_report("no TensorFlow"), environment=env_with()),
        "odd label values": evaluate(env_with(names=('Weird "GPU" \\ model\nline2', "NVIDIA H100 80GB HBM3")), matrix),
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_metrics_is_clean(matrix):
    """`promtool check metrics` exits 0 with no output (no lint problem at all, not even a camelCase label) on
    every output: with GPUs, without, failing, passing, undecided."""
    outputs = promtool_outputs(matrix)
    assert any(samples(families(render_prometheus(r)), "tfcompat_gpu_info") for r in outputs.values())
    for what, report in outputs.items():
        text = render_prometheus(report, hostname="n1", now=1700000000.0)
        proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), (what, proc.stdout + proc.stderr)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_does_fail_on_a_camel_case_label():
    """The test above means something: the promtool here exits 3 on dcgm-exporter's modelName spelling."""
    text = '# HELP x_info x\n# TYPE x_info gauge\nx_info{modelName="H100"} 1\n'
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "camelCase" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_info_series_says_the_scope_the_findings_were_judged_in(matrix):
    """A dashboard must tell a node agent's run (job limits are information there) from a job's own check."""
    from tfcompat.model import Scope

    for scope in (Scope.NODE, Scope.JOB):
        report = dataclasses.replace(evaluate(env_with(), matrix), scope=scope)
        (info,) = samples(families(render_prometheus(report)), "tfcompat_info")
        assert info.labels["scope"] == scope.value
    old = dataclasses.replace(evaluate(env_with(), matrix), scope=None)  # a report of an older release: a job
    (info,) = samples(families(render_prometheus(old)), "tfcompat_info")
    assert info.labels["scope"] == "job"
