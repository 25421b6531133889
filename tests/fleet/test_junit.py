"""JUnit XML of the gate: parsed back with xml.etree; suites per node plus fleet consistency; unique names."""

import datetime
import json
import xml.etree.ElementTree as ET

from envs import make_env

from tfcompat.fleet.gate import GateOptions, Loaded, parse_expect, run_gate
from tfcompat.model import Gpu, Severity, to_json_dict
from tfcompat.render.junit import FLEET_SUITE, render_junit
from tfcompat.rules import evaluate

NOW = datetime.datetime.now(datetime.timezone.utc)


def rep(matrix, name, driver="560.35.03", gpu="NVIDIA H100 80GB HBM3", created=None, tf="2.21.0"):
    env = make_env(driver=driver, gpus=[Gpu(0, gpu, "GPU-0", None, "9.0")], tf=tf)
    d = to_json_dict(evaluate(env, matrix))
    d["environment"]["host"]["node_name"] = name
    d["environment"]["created"] = created or NOW.isoformat()
    return d


def parse(fr):
    root = ET.fromstring(render_junit(fr))
    suites = root.findall("testsuite")
    names = [s.get("name") for s in suites]
    assert len(names) == len(set(names))
    total = 0
    for s in suites:
        cases = s.findall("testcase")
        assert len({c.get("name") for c in cases}) == len(cases)
        assert int(s.get("tests")) == len(cases)
        assert int(s.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
        total += len(cases)
    assert int(root.get("tests")) == total
    return {s.get("name"): {c.get("name"): c for c in s.findall("testcase")} for s in suites}


def outcome(case):
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def test_findings_waivers_and_warnings(matrix):
    warn = rep(matrix, "w1", driver="550.54.15")  # TFC201 as a warning
    waived = rep(matrix, "w2", driver="470.82.01")
    for f in waived["findings"]:
        f["waived"] = "upgrade booked"
    double = rep(matrix, "w3", driver="470.82.01")
    double["findings"].append(dict(double["findings"][0], message="a second hit of the same rule"))
    suites = parse(
        run_gate([Loaded(n, d) for n, d in (("a", warn), ("b", waived), ("c", double))], GateOptions(now=NOW))
    )
    assert outcome(suites["w1"]["TFC201 driver-too-old-for-cuda"]) == "passed"
    assert "WARNING" in suites["w1"]["TFC201 driver-too-old-for-cuda"].find("system-out").text
    assert outcome(suites["w2"]["TFC201 driver-too-old-for-cuda"]) == "skipped"
    assert outcome(suites["w2"]["verdict"]) == "passed"
    case = suites["w3"]["TFC201 driver-too-old-for-cuda"]  # one testcase per rule, every hit in its text
    assert outcome(case) == "failure" and "a second hit" in case.find("failure").text
    strict = parse(run_gate([Loaded("a", warn)], GateOptions(now=NOW, fail_on=Severity.WARNING)))
    assert outcome(strict["w1"]["TFC201 driver-too-old-for-cuda"]) == "failure"


def test_duplicates_undecided_unexpected_unreadable(matrix):
    loaded = [
        Loaded("old/n1.json", rep(matrix, "n1", created=(NOW - datetime.timedelta(days=1)).isoformat())),
        Loaded("new/n1.json", rep(matrix, "n1")),
        Loaded("n2.json", rep(matrix, "n2", tf=None)),
        Loaded("login.json", rep(matrix, "login")),
        Loaded("x.json", None, "not valid JSON"),
        Loaded("y.json", None, "empty file"),
    ]
    suites = parse(run_gate(loaded, GateOptions(now=NOW, expect=parse_expect(["n[1-2]"]))))
    assert suites["n1"]["report"].find("error").get("type") == "duplicate"
    assert suites["n2"]["verdict"].find("error").get("type") == "undecided"
    assert outcome(suites["login"]["report"]) == "skipped"
    fleet = suites[FLEET_SUITE]
    assert outcome(fleet["readable x.json"]) == "error" and outcome(fleet["readable y.json"]) == "error"
    assert "undecided: n2" in fleet["completeness"].find("error").get("message")


def test_drift_testcases_per_group_are_unique(matrix):
    loaded = []
    for name, gpu, driver in (
        ("a1", "A100", "560.35.03"),
        ("a2", "A100", "560.35.03"),
        ("a3", "A100", "550.54.15"),
        ("h1", "H100", "560.35.03"),
        ("h2", "H100", "550.54.15"),
        ("h3", "H100", "550.54.15"),
    ):
        loaded.append(Loaded(name, rep(matrix, name, driver=driver, gpu=gpu)))
    suites = parse(run_gate(loaded, GateOptions(now=NOW, group_by="environment.host.gpus.0.name")))
    fleet = suites[FLEET_SUITE]
    assert {
        "TFC605 NVIDIA driver [A100]",
        "TFC605 NVIDIA driver [H100]",
        "consistency [A100]",
        "consistency [H100]",
        "completeness",
    } <= set(fleet)
    assert outcome(fleet["completeness"]) == "passed"


def test_node_names_are_xml_safe(matrix):
    weird = rep(matrix, 'n<1>&"x"')
    suites = parse(run_gate([Loaded("w", weird)], GateOptions(now=NOW)))
    assert 'n<1>&"x"' in suites
    json.dumps(list(suites))  # plain strings back


def _calls(func):
    """How many Python and C calls func() makes: a machine-independent measure of work (no clock)."""
    import sys

    n = 0

    def profile(frame, event, arg):
        nonlocal n
        if event in ("call", "c_call"):
            n += 1

    sys.setprofile(profile)
    try:
        func()
    finally:
        sys.setprofile(None)
    return n


def test_render_is_linear_in_testcases():
    """Unique testcase names are kept per suite as they are added, not recomputed per testcase (quadratic on
    10,000 nodes): twice the unreadable reports (testcases of one suite), about twice the work."""

    def fleet(k):
        loaded = [Loaded(f"r{i:05d}.json", None, "not valid JSON") for i in range(k)]
        loaded += [Loaded("same.json", None, "empty file")] * (k // 4)  # the same name again: "#2", "#3", ...
        fr = run_gate(loaded, GateOptions(now=NOW))
        return lambda: render_junit(fr)

    small, big = _calls(fleet(200)), _calls(fleet(400))
    assert big / small < 2.5, (small, big)
    names = [c.get("name") for c in ET.fromstring(fleet(8)()).find(f"testsuite[@name='{FLEET_SUITE}']")]
    assert names.count("readable same.json") == 1 and "readable same.json #2" in names


def test_undecided_testcase_says_why(matrix):
    err = {
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
    suites = parse(run_gate([Loaded("n7.json", err, None, "n7")], GateOptions(now=NOW, max_age_seconds=60)))
    error = suites["n7"]["verdict"].find("error")
    assert error.get("type") == "undecided" and "--python /x: no such file" in error.get("message")
