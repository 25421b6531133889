"""Declared pools (issue #14, "Fleet pools"): `gate --pool NAME=NODESET` and `--pool-by KEY` declare nodes that
run one job; GPU model, driver, CUDA driver API and MIG mode must be identical there (TFC613), a node whose driver
or GPUs are unknown is a difference, and a pool node without a usable report is TFC614 (incomplete)."""

import dataclasses
import datetime
import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from envs import make_env

from tfcompat.cli import main
from tfcompat.fleet.gate import GateError, GateOptions, Loaded, parse_expect, parse_pools, run_gate
from tfcompat.model import Driver, Gpu, Severity, to_json_dict
from tfcompat.render.gate_json import gate_schema_text, render_gate_json
from tfcompat.render.gate_text import render_gate_text
from tfcompat.render.junit import render_junit
from tfcompat.rules import evaluate

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
FRESH = (NOW - datetime.timedelta(hours=1)).isoformat()
OLD = (NOW - datetime.timedelta(days=30)).isoformat()
A100 = "NVIDIA A100-SXM4-80GB"
H100 = "NVIDIA H100 80GB HBM3"


def node_env(name, driver="560.35.03", cuda="12.6", gpu=A100, n_gpus=8, mig=False, created=FRESH):
    """A node as `tfcompat check` sees it; driver=None: no NVIDIA driver (kernel module not loaded)."""
    gpus = [Gpu(i, gpu, f"GPU-{name}-{i}", f"00000000:{i + 0x10:02x}:00.0", "8.0", 81920, mig) for i in range(n_gpus)]
    env = make_env(driver=driver, gpus=gpus if driver else [])
    host = env.host
    if driver:
        host = dataclasses.replace(host, driver=Driver(driver, "/proc/driver/nvidia/version", driver, cuda))
    return dataclasses.replace(env, host=dataclasses.replace(host, node_name=name), created=created)


def report(matrix, name, **kw):
    return to_json_dict(evaluate(node_env(name, **kw), matrix))


def loaded(matrix, names, **special):
    """Reports of `names`; special[node] = the node_env arguments of that node."""
    return [Loaded(f"{n}.json", report(matrix, n, **special.get(n, {}))) for n in names]


def pools(*values, pool_by=None, expect=None):
    e = parse_expect(expect) if expect else None
    return parse_pools(values, pool_by, e.labels if e else None, e.nodes if e else None)


def validate(fr):
    data = json.loads(render_gate_json(fr))
    jsonschema.validate(data, json.loads(gate_schema_text()))
    return data


FOUR = ["gpu-001", "gpu-002", "gpu-003", "gpu-004"]


def test_a_node_without_a_driver_fails_its_pool(matrix):
    """Four GPU nodes of one partition, the driver missing on one: the node passes on its own (TensorFlow falls
    back to the CPU), the job scheduled on the four does not run there.

    Public cases: https://github.com/ArjunaCluster/ArjunaUsers/issues/9 (the NVIDIA driver installed on only some
    of a cluster's compute nodes: TensorFlow jobs must exclude the others by hand, "sbatch -x c002,c003,...");
    https://github.com/NVIDIA/gpu-operator/issues/854 (a 4-node cluster: one worker rebooted, its driver did not
    come back, and no GPU workload could run on it)."""
    items = loaded(matrix, FOUR, **{"gpu-003": {"driver": None}})
    spec = pools("train=gpu-[001-004]")
    fr = run_gate(items, GateOptions(now=NOW, pools=spec))
    assert fr.status == "fail" and fr.exit_code == 1
    (pool,) = fr.pools
    assert (pool.name, pool.status, pool.declared_by, pool.compared) == ("train", "fail", "--pool gpu-[001-004]", 4)
    by_fact = {f.fact: f for f in pool.findings}
    assert set(by_fact) == {"GPU model", "NVIDIA driver", "CUDA driver API version", "MIG mode"}
    driver = by_fact["NVIDIA driver"]
    assert (driver.rule, driver.severity.value, driver.majority, driver.majority_nodeset) == (
        "TFC613",
        "error",
        "560.35.03",
        "gpu-[001-002,004]",
    )
    assert [(o.value, o.nodes) for o in driver.outliers] == [("(no driver found)", ("gpu-003",))]
    assert by_fact["GPU model"].outliers[0].value == "(unknown)"
    why = [r for r in fr.reasons if r.startswith("TFC613 NVIDIA driver")]
    assert why and "pool train" in why[0] and "gpu-003" in why[0] and "cannot be shown to run" in why[0]
    assert next(v for v in fr.nodes if v.node == "gpu-003").pools == ("train",)
    assert next(v for v in fr.nodes if v.node == "gpu-003").status == "pass"  # the node alone passes

    text = render_gate_text(fr)
    assert "Pool train (--pool gpu-[001-004]; 4 nodes: gpu-[001-004]): FAIL" in text
    assert "  ERROR TFC613 NVIDIA driver: 560.35.03 on gpu-[001-002,004] (3)" in text
    assert "      outlier: (no driver found) on gpu-003 (1)" in text
    assert text.rstrip().splitlines()[-1].startswith("Result: FAIL")

    data = validate(fr)
    assert data["pools"][0]["findings"][1]["outliers"][0]["nodes"] == ["gpu-003"]
    assert data["nodes"][2]["pools"] == ["train"]

    root = ET.fromstring(render_junit(fr))
    fleet = next(s for s in root.findall("testsuite") if s.get("name") == "tfcompat fleet")
    case = next(c for c in fleet.findall("testcase") if c.get("name") == "TFC613 NVIDIA driver [pool train]")
    assert "gpu-003" in case.find("failure").get("message")
    node = next(s for s in root.findall("testsuite") if s.get("name") == "gpu-003")
    assert {p.get("name"): p.get("value") for p in node.iter("property")}["pools"] == "train"


def test_without_a_pool_the_missing_driver_is_unknown_as_before(matrix):
    """The same four reports, no pool declared: drift ignores unknown values (TFC605/606 see three nodes that
    agree), the node passes on its own, and the gate passes, as it did before pools existed."""
    items = loaded(matrix, FOUR, **{"gpu-003": {"driver": None}})
    fr = run_gate(items, GateOptions(now=NOW))
    assert fr.status == "pass" and fr.exit_code == 0 and fr.pools == ()
    assert fr.groups[0].drift == ()
    data = validate(fr)
    assert data["pools"] == [] and all(v["pools"] == [] for v in data["nodes"])
    assert "Pool " not in render_gate_text(fr)
    assert "pool [" not in render_junit(fr)


def test_a_pool_that_agrees_passes_and_says_so(matrix):
    fr = run_gate(loaded(matrix, FOUR), GateOptions(now=NOW, pools=pools("train=gpu-[001-004]")))
    assert fr.status == "pass" and fr.pools[0].status == "pass" and fr.pools[0].findings == ()
    assert "same GPU model, driver, CUDA driver API and MIG mode on 4" in render_gate_text(fr)
    validate(fr)


def test_driver_and_cuda_driver_api_and_mig_differences(matrix):
    items = loaded(
        matrix,
        FOUR,
        **{"gpu-002": {"driver": "550.54.15", "cuda": "12.4"}, "gpu-004": {"mig": True}},
    )
    fr = run_gate(items, GateOptions(now=NOW, pools=pools("p=gpu-[001-004]")))
    by_fact = {f.fact: f for f in fr.pools[0].findings}
    assert set(by_fact) == {"NVIDIA driver", "CUDA driver API version", "MIG mode"}
    assert by_fact["CUDA driver API version"].outliers[0].value == "12.4"
    assert by_fact["MIG mode"].outliers[0].value == "enabled"
    assert "cannot be shown" not in by_fact["MIG mode"].message  # known values that differ: no "unknown" note
    assert fr.status == "fail"


def test_pools_from_a_label(capsys, tmp_path, matrix):
    """`--pool-by pool`: one pool per value of the label in the --expect file; nodes without it are in no pool."""
    d = tmp_path / "r"
    d.mkdir()
    special = {"h2": {"gpu": H100, "driver": None}}
    for n in ("a1", "a2", "h1", "h2", "x1"):
        (d / f"{n}.json").write_text(json.dumps(report(matrix, n, **special.get(n, {}))))
    expect = tmp_path / "nodes.txt"
    expect.write_text("a[1-2] pool=a100\nh[1-2] pool=h100 rack=r1\nx1\n")
    with pytest.raises(SystemExit) as exc:
        main(["gate", str(d), "--expect", str(expect), "--pool-by", "pool", "-f", "json"])
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, json.loads(gate_schema_text()))
    assert exc.value.code == 1
    by_name = {p["name"]: p for p in data["pools"]}
    assert list(by_name) == ["a100", "h100"]
    assert by_name["a100"]["status"] == "pass" and by_name["a100"]["declared_by"] == "label pool=a100"
    assert by_name["h100"]["status"] == "fail" and by_name["h100"]["nodeset"] == "h[1-2]"
    assert {v["node"]: v["pools"] for v in data["nodes"]}["x1"] == []
    # `label:KEY` reads the same, as --group-by writes it
    assert [p.name for p in pools(pool_by="label:pool", expect=[str(expect)])] == ["a100", "h100"]


def test_overlapping_pools_are_judged_each_on_its_own(matrix):
    """A node in two pools (a job's and a rack's): an outlier in one pool is not one in the other."""
    names = ["gpu-001", "gpu-002", "gpu-003", "gpu-004", "gpu-005", "gpu-006"]
    items = loaded(matrix, names, **{n: {"gpu": H100} for n in ("gpu-004", "gpu-005", "gpu-006")})
    spec = pools("job=gpu-[001-004]", "rack2=gpu-[004-006]")
    fr = run_gate(items, GateOptions(now=NOW, pools=spec))
    job, rack = fr.pools
    assert job.status == "fail" and [o.nodes for o in job.findings[0].outliers] == [("gpu-004",)]
    assert rack.status == "pass" and rack.compared == 3
    assert next(v for v in fr.nodes if v.node == "gpu-004").pools == ("job", "rack2")
    assert [r for r in fr.reasons if "TFC613" in r] == [f"TFC613 {job.findings[0].message}"]


def test_pool_nodes_that_sent_nothing_leave_the_gate_incomplete(matrix):
    """A declared pool node without a report (or with a stale one, or one whose check could not run) is TFC614:
    the pool cannot be shown to agree, so the gate is incomplete (exit 2), never passed, never failed for it."""
    error_report = {**report(matrix, "gpu-004"), "status": "error", "exit_code": 2, "errors": ["no Python"]}
    items = loaded(matrix, ["gpu-001", "gpu-002"]) + [
        Loaded("gpu-005.json", report(matrix, "gpu-005", created=OLD)),
        Loaded("gpu-004.json", {**error_report, "environment": None}, name_hint="gpu-004"),
    ]
    spec = pools("train=gpu-[001-005]")
    fr = run_gate(items, GateOptions(now=NOW, pools=spec, max_age_seconds=86400))
    (pool,) = fr.pools
    assert pool.status == "incomplete" and pool.unreported == ("gpu-003", "gpu-004", "gpu-005")
    (f,) = pool.findings
    assert (f.rule, f.severity.value, f.majority, f.majority_count) == ("TFC614", "warning", "fresh report", 2)
    assert {o.value: o.nodes for o in f.outliers} == {
        "(its check could not run: no environment)": ("gpu-004",),
        "(no readable report)": ("gpu-003",),
        "(stale report)": ("gpu-005",),
    }
    assert fr.status == "incomplete" and fr.exit_code == 2
    assert any(r.startswith("TFC614 3 nodes of pool train without a fresh report") for r in fr.reasons)
    validate(fr)
    assert "      without: (no readable report) on gpu-003 (1)" in render_gate_text(fr)
    junit = render_junit(fr)
    assert 'name="TFC614 report [pool train]"' in junit and 'type="incomplete"' in junit
    # TFC614 never fails the gate, whatever --fail-on says (a warning at --fail-on warning would)
    strict = run_gate(items, GateOptions(now=NOW, pools=spec, max_age_seconds=86400, fail_on=Severity.WARNING))
    assert not any(v.status == "fail" for v in strict.nodes) and strict.status == "incomplete"
    nobody = run_gate(loaded(matrix, ["gpu-001"]), GateOptions(now=NOW, pools=pools("far=gpu-[100-101]")))
    assert nobody.pools[0].compared == 0 and nobody.pools[0].findings[0].majority_count == 0
    assert nobody.exit_code == 2 and "Pool far" in render_gate_text(nobody)


def test_pool_declarations_that_are_refused(capsys, tmp_path, matrix):
    for values, expect, why in (
        (["train"], None, "expected NAME=NODESET"),
        (["=gpu-001"], None, "expected NAME=NODESET"),
        (["t=gpu-[001-"], None, "--pool t:"),
        (["t=gpu-001", "t=gpu-002"], None, "declared twice"),
        (["t=gpu-[001-004]"], ["gpu-[001-003]"], "gpu-004 not in --expect"),
    ):
        with pytest.raises(GateError, match=why):
            pools(*values, expect=expect)
    with pytest.raises(GateError, match="labels come from an --expect file"):
        pools(pool_by="pool")
    f = tmp_path / "nodes.txt"
    f.write_text("gpu-[001-002] rack=r1\n")
    with pytest.raises(GateError, match="no node in the --expect file has a label pool"):
        pools(pool_by="pool", expect=[str(f)])
    with pytest.raises(GateError, match="declared twice"):
        pools("r1=gpu-001", pool_by="rack", expect=[str(f)])
    d = tmp_path / "r"
    d.mkdir()
    (d / "gpu-001.json").write_text(json.dumps(report(matrix, "gpu-001")))
    with pytest.raises(SystemExit) as exc:
        main(["gate", str(d), "--pool", "train"])
    assert exc.value.code == 2 and "expected NAME=NODESET" in capsys.readouterr().err


def test_help_documents_the_pool_options(capsys):
    for command in ("gate", "fleet"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "--pool" in out and "NAME=NODESET" in out and "--pool-by" in out, command


# -- counts and limits the mutation run found unguarded (2026-12-07) ---------------------------------------------


def test_one_node_is_one_node(matrix):
    """Two-node pool, one driver each: "on 1 node" (singular), and one missing node of a pool is "1 node"."""
    items = loaded(matrix, ["gpu-001", "gpu-002"], **{"gpu-002": {"driver": "550.54.15", "cuda": "12.4"}})
    fr = run_gate(items, GateOptions(now=NOW, pools=pools("pair=gpu-[001-003]")))
    driver = next(f for f in fr.pools[0].findings if f.fact == "NVIDIA driver")
    assert "NVIDIA driver differs in pool pair: 560.35.03 on 1 node, but 550.54.15 on gpu-002" in driver.message
    unreported = next(f for f in fr.pools[0].findings if f.rule == "TFC614")
    assert unreported.message.startswith(
        "1 node of pool pair without a fresh report (no readable report: gpu-003): the pool cannot be shown to agree"
    )


@pytest.mark.parametrize("n", [6, 7])
def test_the_message_names_five_other_values_then_counts(matrix, n):
    """A pool whose nodes all run different drivers (a rolling upgrade gone wrong): the message names at most five
    outlier values and counts the rest ("; 1 more values" with six outliers, nothing with five)."""
    names = [f"gpu-{i:03d}" for i in range(1, n + 1)]
    special = {name: {"driver": f"550.{i}.01"} for i, name in enumerate(names[1:], 1)}
    fr = run_gate(loaded(matrix, names, **special), GateOptions(now=NOW, pools=pools(f"p=gpu-[001-{n:03d}]")))
    driver = next(f for f in fr.pools[0].findings if f.fact == "NVIDIA driver")
    assert len(driver.outliers) == n - 1
    shown = "; ".join(f"550.{i}.01 on gpu-{i + 1:03d}" for i in range(1, 6))
    assert driver.message.endswith(shown + ("; 1 more values" if n == 7 else ""))


def test_pools_may_declare_exactly_max_nodes_in_all():
    """MAX_NODES (1,000,000) names across all --pool values is the limit, inclusive: one more is refused."""
    (a, b) = parse_pools(["a=n[0000001-0999999]", "b=gpu-001"], None, None, None)
    assert len(a.nodes) + len(b.nodes) == 1_000_000
    with pytest.raises(GateError, match="more than 1000000 names"):
        parse_pools(["a=n[0000001-0999999]", "b=gpu-[001-002]"], None, None, None)
