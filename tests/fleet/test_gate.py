"""The fleet gate: completeness, per-node verdicts, drift, joins; text, JSON (schema) and JUnit."""

import dataclasses
import datetime
import io
import json
import os
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from envs import make_env

from tfcompat.cli import main
from tfcompat.fleet.gate import (
    GateError,
    GateOptions,
    Loaded,
    parse_duration,
    parse_expect,
    read_inputs,
    run_gate,
)
from tfcompat.model import Gpu, Severity, Unknown, to_json_dict
from tfcompat.render.gate_json import gate_schema_text, render_gate_json
from tfcompat.render.gate_text import render_gate_text
from tfcompat.render.junit import render_junit
from tfcompat.rules import evaluate

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
FRESH = (NOW - datetime.timedelta(hours=1)).isoformat()
OLD = (NOW - datetime.timedelta(days=30)).isoformat()
H100 = "NVIDIA H100 80GB HBM3"


def gpus(n=2, name=H100, cc="9.0", mig=False, node="n"):
    return [Gpu(i, name, f"GPU-{node}-{i}", f"00000000:{i + 1:02x}:00.0", cc, 81559, mig) for i in range(n)]


def node_env(
    name, driver="560.35.03", created=FRESH, tf="2.21.0", n_gpus=2, gpu_name=H100, cc="9.0", mig=False, python="3.11.7"
):
    env = make_env(tf=tf, driver=driver, gpus=gpus(n_gpus, gpu_name, cc, mig, name), python=python)
    return dataclasses.replace(env, host=dataclasses.replace(env.host, node_name=name), created=created)


def report(matrix, name, **kw):
    return to_json_dict(evaluate(node_env(name, **kw), matrix))


def write(tmp_path, data, name=None):
    node = name or data["environment"]["host"]["node_name"]
    path = tmp_path / f"{node}.json"
    path.write_text(json.dumps(data))
    return path


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def validate(data):
    jsonschema.validate(data, json.loads(gate_schema_text()))


def junit_suites(xml_text):
    root = ET.fromstring(xml_text)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert len(suites) == len(root.findall("testsuite")), "suite names must be unique"
    for s in suites.values():
        names = [c.get("name") for c in s.findall("testcase")]
        assert len(names) == len(set(names)), f"duplicate testcase names in {s.get('name')}: {names}"
        assert int(s.get("tests")) == len(names)
        assert int(s.get("failures")) == sum(1 for c in s.findall("testcase") if c.find("failure") is not None)
        assert int(s.get("errors")) == sum(1 for c in s.findall("testcase") if c.find("error") is not None)
    return suites


@pytest.fixture
def fleet_dir(tmp_path, matrix):
    """Five expected nodes: 001, 002 fine; 003 on an old driver; 004 never reported; 005's report is a month old."""
    d = tmp_path / "reports"
    d.mkdir()
    for name in ("gpu-001", "gpu-002"):
        write(d, report(matrix, name))
    write(d, report(matrix, "gpu-003", driver="470.82.01"))
    write(d, report(matrix, "gpu-005", created=OLD))
    (d / ".gpu-006.json.tmp").write_text("{half a file")  # write_atomic's temp file: never read
    return d


def test_operator_scenario_text(capsys, fleet_dir):
    code, out, err = run(capsys, "gate", fleet_dir, "--expect", "gpu-[001-005]", "--max-age", "1d")
    assert code == 1, err
    assert "Failing (1): gpu-003" in out
    assert "ERROR TFC201 driver-too-old-for-cuda: NVIDIA driver 470.82.01" in out
    assert "Missing (1): gpu-004" in out
    assert "Stale (1): gpu-005" in out and "30d old" in out
    assert "Passing (2): gpu-[001-002]" in out
    assert "TFC605 NVIDIA driver: 560.35.03 on gpu-[001-002] (2)" in out
    assert "outlier: 470.82.01 on gpu-003 (1)" in out
    assert out.rstrip().splitlines()[-1].startswith("Result: FAIL (2 pass, 1 fail, 0 undecided, 1 stale, 1 missing")
    assert out.rstrip().endswith("exit 1)")


def test_operator_scenario_json(capsys, fleet_dir):
    code, out, _ = run(capsys, "gate", fleet_dir, "--expect", "gpu-[001-005]", "--max-age", "1d", "-f", "json")
    data = json.loads(out)
    validate(data)
    assert code == data["exit_code"] == 1 and data["status"] == "fail"
    c = data["completeness"]
    assert c["missing"] == ["gpu-004"] and c["stale"] == ["gpu-005"] and c["expected"] == 5
    nodes = {n["node"]: n for n in data["nodes"]}
    assert nodes["gpu-003"]["status"] == "fail" and nodes["gpu-003"]["findings"][0]["rule"] == "TFC201"
    assert nodes["gpu-005"]["status"] == "stale" and nodes["gpu-005"]["verdict"] == "pass"
    assert data["counts"] == {
        "nodes": 4,
        "passed": 2,
        "failed": 1,
        "undecided": 0,
        "stale": 1,
        "missing": 1,
        "duplicate": 0,
        "unreadable": 0,
        "unexpected": 0,
        "drift": 1,
    }
    (drift,) = data["groups"][0]["drift"]
    assert drift["rule"] == "TFC605" and drift["majority"] == "560.35.03"
    assert drift["outliers"] == [{"value": "470.82.01", "count": 1, "nodeset": "gpu-003", "nodes": ["gpu-003"]}]


def test_operator_scenario_junit(capsys, fleet_dir, tmp_path):
    out_file = tmp_path / "gate.xml"
    code, out, _ = run(
        capsys, "gate", fleet_dir, "--expect", "gpu-[001-005]", "--max-age", "1d", "-f", "junit", "-o", out_file
    )
    assert code == 1 and out == ""
    suites = junit_suites(out_file.read_text())
    assert set(suites) == {"gpu-001", "gpu-002", "gpu-003", "gpu-004", "gpu-005", "tfcompat fleet"}
    cases = {c.get("name"): c for c in suites["gpu-003"].findall("testcase")}
    assert cases["verdict"].find("failure") is not None
    assert "470.82.01" in cases["TFC201 driver-too-old-for-cuda"].find("failure").get("message")
    assert suites["gpu-004"].find("testcase/error").get("type") == "missing"
    assert suites["gpu-005"].find("testcase/error").get("type") == "stale"
    assert suites["gpu-001"].get("failures") == "0" and suites["gpu-001"].get("errors") == "0"
    fleet = {c.get("name"): c for c in suites["tfcompat fleet"].findall("testcase")}
    assert fleet["completeness"].find("error") is not None
    assert "TFC605 NVIDIA driver [all]" in fleet  # a warning: reported, not failed, at fail-on error
    assert fleet["TFC605 NVIDIA driver [all]"].find("failure") is None
    # at --fail-on warning the drift fails its testcase
    code, out, _ = run(capsys, "gate", fleet_dir, "--expect", "gpu-[001-005]", "--fail-on", "warning", "-f", "junit")
    fleet = {c.get("name"): c for c in junit_suites(out)["tfcompat fleet"].findall("testcase")}
    assert fleet["TFC605 NVIDIA driver [all]"].find("failure") is not None


def test_exit_codes_pass_incomplete_fail(capsys, tmp_path, matrix):
    for name in ("a1", "a2"):
        write(tmp_path, report(matrix, name))
    assert run(capsys, "gate", tmp_path, "--expect", "a[1-2]")[0] == 0
    code, out, _ = run(capsys, "gate", tmp_path, "--expect", "a[1-3]")
    assert code == 2 and "Result: INCOMPLETE" in out and "Missing (1): a3" in out
    write(tmp_path, report(matrix, "a3", driver="470.82.01"))
    assert run(capsys, "gate", tmp_path, "--expect", "a[1-4]")[0] == 1  # a failure beats a missing node


def test_rejudged_from_findings_not_exit_code(tmp_path, matrix):
    lying = report(matrix, "n1", driver="470.82.01")
    lying["status"], lying["exit_code"] = "pass", 0
    honest_warning = report(matrix, "n2", driver="550.54.15")  # TFC201 as a warning (minor-version compat)
    waived = report(matrix, "n3", driver="470.82.01")
    waived["findings"][0]["waived"] = "known, being upgraded"
    waived["status"], waived["exit_code"] = "pass", 0
    loaded = [Loaded(f"r{i}", r) for i, r in enumerate((lying, honest_warning, waived))]
    fr = run_gate(loaded, GateOptions(now=NOW))
    by = {n.node: n for n in fr.nodes}
    assert by["n1"].status == "fail" and "judged from the findings" in by["n1"].notes[0]
    assert by["n2"].status == "pass" and by["n3"].status == "pass"
    strict = {n.node: n for n in run_gate(loaded, GateOptions(fail_on=Severity.WARNING, now=NOW)).nodes}
    assert strict["n2"].status == "fail" and strict["n3"].status == "pass"


def test_duplicates_unreadable_and_unexpected(capsys, tmp_path, matrix):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write(a, report(matrix, "n1", created=(NOW - datetime.timedelta(hours=3)).isoformat(), driver="470.82.01"))
    write(b, report(matrix, "n1"))  # newer: this one counts
    write(a, report(matrix, "n2"))
    write(a, report(matrix, "login1"))
    (a / "broken.json").write_text('{"schema_version": 1, "environment": ')
    (a / "other.json").write_text('{"hello": "world"}')
    future = report(matrix, "n9")
    future["schema_version"] = 2
    write(a, future)
    code, out, _ = run(capsys, "gate", a, b, "--expect", "n[1-2]", "-f", "json")
    data = json.loads(out)
    validate(data)
    assert code == 2 and data["status"] == "incomplete"
    (dup,) = data["completeness"]["duplicates"]
    assert dup["node"] == "n1" and dup["used"].startswith(str(b))
    assert {n["node"]: n["status"] for n in data["nodes"]}["n1"] == "pass"
    reasons = {u["source"].rsplit("/", 1)[-1]: u["reason"] for u in data["completeness"]["unreadable"]}
    assert "not valid JSON" in reasons["broken.json"]
    assert "neither a tfcompat report" in reasons["other.json"]
    assert "schema_version 2 is not supported" in reasons["n9.json"]
    assert data["completeness"]["unexpected"] == ["login1"]
    assert data["counts"]["unexpected"] == 1 and data["counts"]["nodes"] == 2


def test_json_lines_on_stdin(capsys, monkeypatch, matrix):
    lines = [json.dumps(report(matrix, f"n{i}")) for i in range(1, 4)]
    lines.insert(1, "{not json")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, _ = run(capsys, "gate", "-", "--expect", "n[1-3]", "-f", "json")
    data = json.loads(out)
    assert code == 2  # the bad line is an unreadable report
    assert [n["node"] for n in data["nodes"]] == ["n1", "n2", "n3"]
    assert data["completeness"]["unreadable"][0]["source"] == "<stdin>:2"


def test_concatenated_pretty_json_and_glob(tmp_path, matrix):
    text = "".join(json.dumps(report(matrix, n), indent=2) + "\n" for n in ("x1", "x2"))
    (tmp_path / "all.jsonl").write_text(text)
    write(tmp_path, report(matrix, "x3"))
    loaded = read_inputs([str(tmp_path / "*.json*")])
    fr = run_gate(loaded, GateOptions(expect=parse_expect(["x[1-3]"]), now=NOW))
    assert fr.exit_code == 0, fr.reasons


def test_user_errors_are_one_line_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "gate", tmp_path / "nope")
    assert code == 2 and err.strip() == f"tfcompat: error: {tmp_path / 'nope'}: no such file or directory"
    code, out, err = run(capsys, "gate", tmp_path / "*.json", "-f", "json")
    assert code == 2 and "no file matches" in err
    data = json.loads(out)
    validate(data)
    assert data["status"] == "error" and data["exit_code"] == 2
    assert run(capsys, "gate", tmp_path, "--max-age", "soon")[0] == 2
    code, _, err = run(capsys, "gate", tmp_path, "--expect", "gpu-[3-1]")
    assert code == 2 and "runs backwards" in err and "Traceback" not in err


def test_empty_directory_is_incomplete(capsys, tmp_path):
    code, out, _ = run(capsys, "gate", tmp_path)
    assert code == 2 and "no node report to judge" in out


def test_drift_majority_outliers_and_tf_drift_fails(tmp_path, matrix):
    loaded = [Loaded(n, report(matrix, n)) for n in ("g01", "g02", "g03", "g07", "g19")]
    loaded += [Loaded("g08", report(matrix, "g08", tf="2.15.1", python="3.11.7"))]
    fr = run_gate(loaded, GateOptions(now=NOW))
    drift = {d.rule: d for d in fr.groups[0].drift}
    tf = drift["TFC601"]
    assert tf.majority == "tensorflow 2.21.0" and tf.majority_nodeset == "g[01-03,07,19]" and tf.majority_count == 5
    assert [(o.value, o.nodeset) for o in tf.outliers] == [("tensorflow 2.15.1", "g08")]
    assert "TFC603" in drift  # the build's CUDA differs too
    assert fr.status == "fail" and fr.exit_code == 1  # TF drift is an error at the default fail-on
    assert any(r.startswith("TFC601") for r in fr.reasons)


def test_gpu_drift_and_group_by_field(tmp_path, matrix):
    a100 = "NVIDIA A100-SXM4-80GB"
    loaded = [Loaded(n, report(matrix, n)) for n in ("h1", "h2", "h3")]
    loaded += [Loaded("h4", report(matrix, "h4", n_gpus=4, mig=True))]
    loaded += [Loaded(n, report(matrix, n, gpu_name=a100, cc="8.0")) for n in ("a1", "a2")]
    fr = run_gate(loaded, GateOptions(now=NOW))
    rules = {d.rule for d in fr.groups[0].drift}
    assert {"TFC606", "TFC607", "TFC608", "TFC609"} <= rules
    grouped = run_gate(loaded, GateOptions(group_by="environment.host.gpus.0.name", now=NOW))
    groups = {g.name: g for g in grouped.groups}
    assert set(groups) == {H100, a100}
    assert groups[a100].drift == () and groups[a100].nodeset == "a[1-2]"
    h = {d.rule: d for d in groups[H100].drift}
    assert set(h) == {"TFC607", "TFC609"}
    assert h["TFC607"].majority == "2" and h["TFC607"].outliers[0].nodeset == "h4"
    text = render_gate_text(grouped)
    assert f"Group {H100} by environment.host.gpus.0.name (4 nodes: h[1-4]): 2 drifts" in text


def test_group_by_label_from_expect_file(capsys, tmp_path, matrix):
    d = tmp_path / "r"
    d.mkdir()
    for n in ("p1", "p2", "q1", "q2"):
        write(d, report(matrix, n, python="3.11.7" if n != "q2" else "3.11.9"))
    expect = tmp_path / "nodes.txt"
    expect.write_text("# pools\np[1-2] pool=alpha\nq[1-2] pool=beta  # the new pool\n")
    code, out, _ = run(capsys, "gate", d, "--expect", expect, "--group-by", "label:pool", "-f", "json")
    data = json.loads(out)
    validate(data)
    groups = {g["name"]: g for g in data["groups"]}
    assert groups["alpha"]["drift"] == []
    assert [x["rule"] for x in groups["beta"]["drift"]] == ["TFC602"]
    assert code == 0  # Python drift is a warning
    code, _, err = run(capsys, "gate", d, "--group-by", "label:pool")
    assert code == 2 and "labels come from an --expect file" in err


def test_libraries_and_custom_ops_read_defensively(matrix):
    """`target.native` (the loader model) and `target.custom_ops` are read as JSON, where a report has them."""

    def lib(name, soname, version, role="gpu"):
        return {
            "name": name,
            "soname": soname,
            "role": role,
            "purpose": "",
            "requested_by": None,
            "found": {
                "path": f"/v/nvidia/{name}/lib/{soname}",
                "real_path": f"/v/nvidia/{name}/lib/{soname}",
                "found_via": "DT_RUNPATH",
                "search_entry": "$ORIGIN/../nvidia",
                "version": version,
            },
            "others": [],
        }

    def with_extras(name, cudnn="9.3.0.75", op_hash="aa11", op=True, nccl=True):
        r = report(matrix, name)
        libs = [
            lib("cudart", "libcudart.so.12", "12.5.82"),
            lib("cudnn", "libcudnn.so.9", cudnn),
            lib("cudnn_ops", "libcudnn_ops.so.9", "9.1.0", role="cudnn-sublibrary"),
            lib("cuda", "libcuda.so.1", name, role="driver"),
        ]
        if nccl:
            libs.append(lib("nccl", "libnccl.so.2", "2.21.5"))
        else:
            libs.append(dict(lib("nccl", "libnccl.so.2", None), found=None))
        r["environment"]["target"]["native"] = {
            "caller": "/v/tensorflow/libtensorflow_framework.so.2",
            "caller_source": "test",
            "libraries": libs,
        }
        r["environment"]["target"]["custom_ops"] = (
            [{"owner": "tensorflow-text", "path": f"/venv-{name}/site/_text_ops.so", "ok": True, "build_id": op_hash}]
            if op
            else []
        )
        return r

    older = report(matrix, "f")
    for key in ("native", "custom_ops"):
        older["environment"]["target"].pop(key, None)
    loaded = [
        Loaded("a", with_extras("a")),
        Loaded("b", with_extras("b")),
        Loaded("c", with_extras("c")),
        Loaded("d", with_extras("d", cudnn="8.9.7.29", op_hash="bb22")),
        Loaded("e", with_extras("e", op=False, nccl=False)),
        Loaded("f", older),
    ]  # an older report without the fields: unknown, not drift
    fr = run_gate(loaded, GateOptions(now=NOW))
    drift = {(d.rule, d.fact): d for d in fr.groups[0].drift}
    cudnn = drift[("TFC604", "CUDA library cudnn")]
    assert cudnn.majority == "9.3.0.75" and [(o.value, o.nodeset) for o in cudnn.outliers] == [("8.9.7.29", "d")]
    nccl = drift[("TFC604", "CUDA library nccl")]
    assert [(o.value, o.nodeset) for o in nccl.outliers] == [("(not found)", "e")]
    assert ("TFC604", "CUDA library cuda") not in drift and ("TFC604", "CUDA library cudnn_ops") not in drift
    ops = drift[("TFC610", "custom op tensorflow-text:_text_ops.so")]
    assert ops.majority == "aa11" and {o.value: o.nodeset for o in ops.outliers} == {"bb22": "d", "(absent)": "e"}
    assert not any(o.nodeset == "f" for d in drift.values() for o in d.outliers)


def test_join_image_environment_with_host_reports(capsys, tmp_path, matrix):
    image = make_env(
        tf="2.21.0",
        unknowns=[
            Unknown("driver", "--root: host facts are not in an image"),
            Unknown("gpus", "--root: host facts are not in an image"),
        ],
    )
    image_file = tmp_path / "image.json"
    image_file.write_text(json.dumps(to_json_dict(evaluate(image, matrix))))
    hosts = tmp_path / "hosts"
    hosts.mkdir()
    for name, driver in (("n1", "560.35.03"), ("n2", "560.35.03"), ("n3", "470.82.01")):
        env = node_env(name, driver=driver, tf=None)  # the host's own python has no TF: irrelevant here
        write(hosts, to_json_dict(evaluate(env, matrix)))
    code, out, _ = run(capsys, "gate", hosts, "--environment", image_file, "-f", "json")
    data = json.loads(out)
    validate(data)
    nodes = {n["node"]: n for n in data["nodes"]}
    assert code == 1 and data["environment_source"] == str(image_file)
    assert nodes["n1"]["status"] == "pass" and nodes["n2"]["status"] == "pass"
    assert nodes["n3"]["status"] == "fail" and nodes["n3"]["findings"][0]["rule"] == "TFC201"
    assert not any(f["rule"] == "TFC100" for n in nodes.values() for f in n["findings"])
    # without the join, the host reports alone cannot decide (no TensorFlow on the hosts)
    code, out, _ = run(capsys, "gate", hosts)
    assert code == 2 and "Undecided (3)" in out


def test_snapshot_inputs_are_judged(tmp_path, matrix):
    snap = to_json_dict(node_env("s1", driver="470.82.01"))
    fr = run_gate([Loaded("s1.json", snap)], GateOptions(now=NOW))
    assert fr.nodes[0].status == "fail" and fr.nodes[0].findings[0].rule == "TFC201"


def test_error_report_named_by_file(capsys, tmp_path):
    (tmp_path / "n7.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "tool_version": "0.1.0",
                "status": "error",
                "exit_code": 2,
                "fail_on": "error",
                "matrix": None,
                "findings": [],
                "skipped": [],
                "errors": ["--python /x: no such file"],
                "environment": None,
            }
        )
    )
    code, out, _ = run(capsys, "gate", tmp_path, "--expect", "n7")
    assert code == 2 and "Undecided (1): n7" in out and "--python /x: no such file" in out


def test_undated_report_is_stale_with_max_age(matrix):
    fr = run_gate([Loaded("u", report(matrix, "u1", created=""))], GateOptions(max_age_seconds=3600, now=NOW))
    assert fr.nodes[0].status == "stale" and fr.exit_code == 2


def test_parse_expect_and_duration(tmp_path):
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800 and parse_duration("1.5h") == 5400
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(GateError):
        parse_duration("-1h")
    f = tmp_path / "x.txt"
    f.write_text("a[1-2] zone=z1\n\nb1\n")
    e = parse_expect([str(f), "c[1-2]"])
    assert e.nodes == ("a1", "a2", "b1", "c1", "c2") and e.labels["a2"] == {"zone": "z1"} and "b1" not in e.labels
    f.write_text("a1 nolabel\n")
    with pytest.raises(GateError, match=r"x\.txt:1"):
        parse_expect([str(f)])
    with pytest.raises(GateError, match="no such file"):
        parse_expect(["/nowhere/nodes.txt"])


def test_renderers_agree_on_big_fleet(matrix):
    base = report(matrix, "n0")
    loaded = []
    for i in range(300):
        r = json.loads(json.dumps(base))
        r["environment"]["host"]["node_name"] = f"gpu-{i:04d}"
        if i % 97 == 5:
            r["environment"]["host"]["driver"]["kernel_module_version"] = "550.54.15"
        loaded.append(Loaded(f"gpu-{i:04d}", r))
    fr = run_gate(loaded, GateOptions(expect=parse_expect(["gpu-[0000-0301]"]), now=NOW))
    assert fr.exit_code == 2 and fr.completeness.missing_nodeset == "gpu-[0300-0301]"
    (d,) = fr.groups[0].drift
    assert d.outliers[0].nodeset == "gpu-[0005,0102,0199,0296]"
    validate(json.loads(render_gate_json(fr)))
    junit_suites(render_junit(fr))
    assert len(render_gate_text(fr).splitlines()) < 40


# --------------------------------------------------------------------------- review fixes


class _CountingText(str):
    """A str that adds up how many characters str.count() scans: the JSON Lines reader must scan each once."""

    scanned = 0

    def count(self, sub, start=None, end=None):
        lo = 0 if start is None else start
        hi = len(self) if end is None else end
        type(self).scanned += max(0, hi - lo)
        return str.count(self, sub, lo, hi)


def test_json_lines_newlines_are_counted_once(matrix):
    """Line numbers of JSON Lines come from one pass over the text, not a rescan per record (quadratic)."""
    from tfcompat.fleet.gate import _iter_json_values

    line = json.dumps(report(matrix, "n0"))
    lines = [line.replace('"n0"', f'"n{i}"') for i in range(200)]
    lines[7] = "{not json"
    pretty = json.dumps(report(matrix, "p1"), indent=2)  # several lines: the next record's line number moves on
    text = _CountingText("\n".join(lines[:100]) + "\n" + pretty + "\n" + "\n".join(lines[100:]) + "\n")
    _CountingText.scanned = 0
    items = list(_iter_json_values(text, "<stdin>"))
    assert _CountingText.scanned <= len(text), "newlines rescanned for every record"
    assert len(items) == 201
    assert items[7].source == "<stdin>:8" and items[7].data is None
    assert items[100].source == "<stdin>:101" and items[100].data["environment"]["host"]["node_name"] == "p1"
    assert items[101].source == f"<stdin>:{101 + pretty.count(chr(10)) + 1}"
    assert items[-1].source == f"<stdin>:{200 + pretty.count(chr(10)) + 1}"


def test_json_values_split_at_lines_that_start_like_a_value():
    """Hand-written JSON whose inner object starts a line is still one value; a broken one is skipped alone."""
    from tfcompat.fleet.gate import _iter_json_values

    text = '{"a":\n{"b": [\n1]}}\n{"c": 2}\n{"d": \n{broken\n{"e": 3}\n7\n'
    got = [(i.source, i.data, i.error) for i in _iter_json_values(text, "s")]
    assert got[:2] == [("s:1", {"a": {"b": [1]}}, None), ("s:4", {"c": 2}, None)]
    assert got[2][0] == "s:5" and got[2][1] is None and got[2][2].startswith("not valid JSON")
    assert got[3][0] == "s:6" and got[3][1] is None  # "{broken": its own bad line
    assert got[4] == ("s:7", {"e": 3}, None)
    assert got[5] == ("s:8", None, "not a JSON object but int")


@pytest.mark.parametrize(
    "field, value, why",
    [
        ("fail_on", [], "$.fail_on"),
        ("fail_on", "fatal", "$.fail_on"),
        ("fail_on", None, "$.fail_on"),
        ("errors", "boom", "$.errors"),
        ("errors", [1, 2], "$.errors"),
        ("errors", {"a": 1}, "$.errors"),
        ("status", ["pass"], "$.status"),
        ("status", "maybe", "$.status"),
        ("environment", "boom", "$.environment"),
        ("findings", {}, "$.findings"),
    ],
)
def test_an_odd_field_makes_one_report_unreadable(capsys, tmp_path, matrix, field, value, why):
    good = report(matrix, "n1")
    odd = report(matrix, "n2")
    odd[field] = value
    write(tmp_path, good)
    write(tmp_path, odd, "n2")
    code, out, err = run(capsys, "gate", tmp_path, "--expect", "n[1-2]", "-f", "json")
    assert code == 2 and "Traceback" not in err and "internal error" not in err, err
    data = json.loads(out)
    validate(data)
    (u,) = data["completeness"]["unreadable"]
    assert u["source"].endswith("n2.json") and u["reason"].startswith(why) and "\n" not in u["reason"], u
    assert [n["node"] for n in data["nodes"]] == ["n1"] and data["completeness"]["missing"] == ["n2"]


@pytest.mark.parametrize(
    "finding_field, value",
    [
        ("severity", []),
        ("severity", "fatal"),
        ("rule", 7),
        ("name", {"x": 1}),
        ("message", ["m"]),
        ("waived", True),
    ],
)
def test_an_odd_finding_field_makes_one_report_unreadable(matrix, finding_field, value):
    odd = report(matrix, "n2", driver="470.82.01")
    odd["findings"][0][finding_field] = value
    fr = run_gate([Loaded("n1.json", report(matrix, "n1")), Loaded("n2.json", odd)], GateOptions(now=NOW))
    (u,) = fr.completeness.unreadable
    assert u.source == "n2.json" and u.reason.startswith("$.findings[0]") and "\n" not in u.reason
    assert [n.node for n in fr.nodes] == ["n1"]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            yield from _paths(v, prefix + (i,))


def _replaced(data, path, new):
    data = json.loads(json.dumps(data))
    if not path:
        return new
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return data


def test_no_field_value_crashes_the_gate(matrix):
    """Every field of a report, replaced by a value of another type, leaves a readable or an unreadable report:
    never an exception out of the gate (one bad report must not stop the verdict on the others)."""
    base = report(matrix, "n2", driver="470.82.01")
    base["environment"]["target"]["native"] = {
        "caller": "x",
        "libraries": [
            {
                "name": "cudnn",
                "soname": "libcudnn.so.9",
                "role": "gpu",
                "found": {"path": "/l/libcudnn.so.9", "version": "9.3.0.75"},
            }
        ],
    }
    base["environment"]["target"]["custom_ops"] = [{"owner": "o", "path": "/p/x.so", "build_id": "ab"}]
    other = report(matrix, "n1")
    odd_values = ([], {}, "boom", 7, None, True, [[]], [{}], {"a": []})
    options = GateOptions(now=NOW, max_age_seconds=3600, group_by="environment.host.gpus.0.name")
    for path in _paths(base):
        for odd in odd_values:
            mutated = _replaced(base, path, odd)
            loaded = [
                Loaded("n1.json", other),
                Loaded("n2.json", mutated) if isinstance(mutated, dict) else Loaded("n2.json", None, "not an object"),
            ]
            try:
                fr = run_gate(loaded, options)
                render_gate_text(fr), render_gate_json(fr), render_junit(fr)
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{'.'.join(map(str, path)) or '$'} = {odd!r}: {type(exc).__name__}: {exc}")
            assert fr.exit_code in (0, 1, 2)


def test_error_report_is_undecided_with_its_reason_whatever_max_age(capsys, tmp_path, matrix):
    """An error report (the check could not run: status error, no environment, no date) is an undecided node
    with the report's own reason, not an "undated" stale one, with or without --max-age."""
    from tfcompat.engine import error_report

    (tmp_path / "n7.json").write_text(json.dumps(to_json_dict(error_report("--python /x: no such file"))))
    write(tmp_path, report(matrix, "n1", created=NOW.isoformat()))
    for extra in ((), ("--max-age", "1h")):
        code, out, _ = run(capsys, "gate", tmp_path, "--expect", "n1,n7", *extra)
        assert code == 2, out
        assert "Undecided (1): n7" in out and "Stale" not in out and "undated" not in out, out
        assert "error: --python /x: no such file" in out
        why = [line for line in out.splitlines() if "undecided" in line and line.lstrip().startswith("- ")]
        assert why and "--python /x: no such file" in why[0], out
        code, out, _ = run(capsys, "gate", tmp_path, "--expect", "n1,n7", "-f", "json", *extra)
        data = json.loads(out)
        validate(data)
        nodes = {n["node"]: n for n in data["nodes"]}
        assert nodes["n7"]["status"] == "error" and nodes["n7"]["errors"] == ["--python /x: no such file"]
        assert data["completeness"]["undecided"] == ["n7"] and data["completeness"]["stale"] == []
    # a dated error report older than --max-age is still undecided (with its age in a note), not stale
    old = report(matrix, "n8", tf=None, created=OLD)
    assert old["status"] == "error"
    fr = run_gate([Loaded("n8.json", old)], GateOptions(max_age_seconds=3600, now=NOW))
    assert fr.nodes[0].status == "error" and fr.completeness.stale == () and fr.exit_code == 2
    assert any("old" in n for n in fr.nodes[0].notes)
    # something failing still wins
    write(tmp_path, report(matrix, "n3", driver="470.82.01", created=NOW.isoformat()))
    assert run(capsys, "gate", tmp_path, "--max-age", "1h")[0] == 1


# --------------------------------------------------------------------------- the restructured gate (issue 12)


def test_drift_rules_are_registered_fleet_rules_with_docs(capsys):
    """TFC601-614 are rules like every other: listed, explained, documented; `check` never runs them. TFC613/614
    judge declared pools (fleet.pools), not a group's drift."""
    from tfcompat.engine import DOC_SECTIONS
    from tfcompat.fleet.drift import drift_rules
    from tfcompat.rules import catalog

    fleet = {r.id: r for r in catalog() if r.scope == "fleet"}
    assert sorted(fleet) == [f"TFC6{i:02d}" for i in range(1, 15)]
    assert sorted(r.id for r in drift_rules()) == [f"TFC6{i:02d}" for i in range(1, 13)]
    assert (fleet["TFC613"].severity, fleet["TFC614"].severity) == (Severity.ERROR, Severity.WARNING)
    assert fleet["TFC601"].severity is Severity.ERROR
    assert {fleet[i].severity for i in ("TFC611", "TFC612")} == {Severity.INFO}
    assert all(fleet[f"TFC6{i:02d}"].severity is Severity.WARNING for i in range(2, 11))
    for r in fleet.values():
        assert r.summary and all(f"{s}:" in r.doc for s in DOC_SECTIONS), r.id
    code, out, _ = run(capsys, "explain", "TFC601")
    assert code == 0 and out.startswith("TFC601 tensorflow-drift (default severity: error)") and "How to fix" in out
    code, out, _ = run(capsys, "rules")
    assert code == 0 and "TFC612  info     matrix-drift" in out


def test_check_does_not_run_fleet_rules(matrix):
    report = evaluate(node_env("n1"), matrix)
    assert not any(r.startswith("TFC6") for r in [f.rule for f in report.findings] + [s.rule for s in report.skipped])


def test_report_of_a_newer_release_is_judged(tmp_path, matrix):
    """Fields this tfcompat does not know (added within schema_version 1 by a newer release) are skipped; the
    fields it knows still have to have their type."""
    newer = report(matrix, "n2", driver="470.82.01")
    newer["provenance"] = {"signed": True}
    newer["environment"]["host"]["gpus"][0]["nvlink"] = [1, 2]
    newer["findings"][0]["fix_url"] = "https://example.org"
    fr = run_gate([Loaded("n1.json", report(matrix, "n1")), Loaded("n2.json", newer)], GateOptions(now=NOW))
    assert fr.completeness.unreadable == () and {n.node: n.status for n in fr.nodes} == {"n1": "pass", "n2": "fail"}
    newer["environment"]["host"]["gpus"][0]["name"] = 7
    (u,) = run_gate([Loaded("n2.json", newer)], GateOptions(now=NOW)).completeness.unreadable
    assert u.reason == "$.environment.host.gpus[0].name: expected a string, got 7"


def test_older_report_without_gpu_list_is_unknown_not_no_gpu(matrix):
    """A report that does not carry `host.gpus` at all (an older release) has unknown GPUs: no GPU drift."""
    older = report(matrix, "n3")
    del older["environment"]["host"]["gpus"]
    loaded = [Loaded(n, report(matrix, n)) for n in ("n1", "n2")] + [Loaded("n3", older)]
    drift = {d.rule for d in run_gate(loaded, GateOptions(now=NOW)).groups[0].drift}
    assert not drift & {"TFC606", "TFC607", "TFC608", "TFC609"}, drift
    older["environment"]["host"]["gpus"] = []  # carried and empty: no GPU, which is drift
    drift = {d.rule: d for d in run_gate(loaded, GateOptions(now=NOW)).groups[0].drift}
    assert drift["TFC606"].outliers[0].value == "no GPU" and drift["TFC607"].outliers[0].value == "0"


def test_report_directory_contract_both_halves(tmp_path, matrix):
    """What `check --output-dir` writes is what `gate DIR` reads: one file per node, named from the node, written
    through a hidden temp file that the reader skips."""
    from tfcompat.fleet.reportdir import (
        ReportDirError,
        node_file,
        node_of_file,
        report_files,
        write_node_report,
    )

    assert node_file("gpu-001") == "gpu-001.json" and node_of_file("/d/gpu-001.json") == "gpu-001"
    assert node_file("../.x/y z") == "%2E.%2F.x%2Fy%20z.json" and node_file("...") == "%2E...json"
    path = write_node_report(str(tmp_path), "n1", json.dumps(report(matrix, "n1")))
    assert path == str(tmp_path / "n1.json") and json.loads((tmp_path / "n1.json").read_text())["status"]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []  # the temp file was renamed away
    (tmp_path / ".n2.json.abc.tmp").write_text("{half")  # a writer's temp file
    (tmp_path / "notes.txt").write_text("not a report")
    assert report_files(str(tmp_path)) == [path]
    fr = run_gate(read_inputs([str(tmp_path)]), GateOptions(expect=parse_expect(["n1"]), now=NOW))
    assert fr.exit_code == 0 and fr.nodes[0].source == path
    with pytest.raises(ReportDirError, match="no such directory"):
        write_node_report(str(tmp_path / "nope"), "n1", "{}")


def test_group_by_a_field_reads_the_typed_report(matrix):
    loaded = [Loaded(n, report(matrix, n, python="3.11.7" if n != "p3" else "3.12.1")) for n in ("p1", "p2", "p3")]
    for field, want in (
        ("environment.target.python.version", {"3.11.7", "3.12.1"}),
        ("fail_on", {"error"}),
        ("environment.host.gpus.-1.index", {"1"}),
        ("environment.nope", {"(unknown)"}),
        ("environment.host.gpus.x", {"(unknown)"}),
        ("environment.host.gpus.99999999999", {"(unknown)"}),
    ):
        fr = run_gate(loaded, GateOptions(group_by=field, now=NOW))
        assert {g.name for g in fr.groups} == want, field


@pytest.mark.parametrize("option", ["--select", "--ignore"])
def test_check_refuses_a_prefix_of_fleet_rules_only(capsys, tmp_path, matrix, option):
    """TFC6xx are registered, but `check` never runs them: selecting (or waiving) only them is refused, not a pass."""
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(to_json_dict(node_env("n1"))))
    code, _, err = run(capsys, "check", "--from", snap, option, "TFC60")
    assert code == 2 and "only fleet rules match it" in err and "tfcompat gate" in err
    assert run(capsys, "check", "--from", snap, option, "TFC")[0] == 0  # every rule: fleet ones included, fine
