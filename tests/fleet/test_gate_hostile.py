"""Hostile gate input (#17 items 6 and 7): one bad input is one unreadable report, never the whole verdict;
untrusted strings are escaped in text and JUnit; dates from the future are not fresh; --output-dir names are
one-to-one; --expect has a total limit; overlay waivers are checked like --ignore."""

import dataclasses
import datetime
import io
import json
import os
import time
import xml.etree.ElementTree as ET

import pytest
from envs import make_env

from tfcompat.cli import main
from tfcompat.fleet.expect import CLOCK_SKEW_SECONDS
from tfcompat.fleet.gate import GateError, GateOptions, Loaded, parse_expect, read_inputs, run_gate
from tfcompat.fleet.nodeset import MAX_DIGITS, NodeSetError, expand, fold
from tfcompat.fleet.read import _iter_json_values
from tfcompat.fleet.reportdir import node_file, node_of_file, report_files, write_node_report
from tfcompat.model import Report, to_json_dict
from tfcompat.render.escape import visible, xml_safe
from tfcompat.render.gate_json import render_gate_json
from tfcompat.render.gate_text import render_gate_text
from tfcompat.render.junit import render_junit
from tfcompat.render.text import render_text
from tfcompat.rules import evaluate

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
FRESH = (NOW - datetime.timedelta(hours=1)).isoformat()
FORGED = "gpu-9\nResult: PASS\x1b]0;owned\x07\x1b[2J\u202e\ud800"


def node_env(name, created=FRESH, **kw):
    env = make_env(**kw)
    return dataclasses.replace(env, host=dataclasses.replace(env.host, node_name=name), created=created)


def report(matrix, name, **kw):
    return to_json_dict(evaluate(node_env(name, **kw), matrix))


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# -- item 6: one bad input is one unreadable report ---------------------------------------------------------------


def test_deep_nesting_and_huge_numbers_are_one_unreadable_report_each(capsys, tmp_path, matrix):
    (tmp_path / "gpu-001.json").write_text(json.dumps(report(matrix, "gpu-001")))
    (tmp_path / "deep.json").write_text("[" * 100_000)
    (tmp_path / "digits.json").write_text('{"schema_version": 1, "x": ' + "9" * 5000 + "}")
    (tmp_path / "lines.jsonl").write_text(
        "[" * 100_000 + "\n" + '{"a": ' + "7" * 5000 + "}\n" + json.dumps(report(matrix, "gpu-002")) + "\n"
    )
    code, out, err = run(capsys, "gate", tmp_path, "--expect", "gpu-[001-002]")
    assert code == 2 and err == "", err
    assert "2 pass" in out and "4 unreadable" in out
    assert f"{tmp_path}/deep.json: not readable: JSON nested deeper than this Python's recursion limit" in out
    assert f"{tmp_path}/digits.json: not readable: a JSON number of more than" in out
    assert f"{tmp_path}/lines.jsonl:1: not readable: JSON nested deeper" in out
    assert f"{tmp_path}/lines.jsonl:2: not readable: a JSON number" in out


def test_decoded_but_too_deep_for_the_judge_is_unreadable(matrix):
    data = report(matrix, "n1")
    deep: list = []
    for _ in range(5000):  # built in Python (no parser limit), as a Dask worker could hand it over
        deep = [deep]
    data["status"] = deep
    fr = run_gate([Loaded("deep", data), Loaded("ok", report(matrix, "n2"))], GateOptions(now=NOW))
    assert [v.node for v in fr.nodes] == ["n2"] and len(fr.completeness.unreadable) == 1


def test_a_name_ending_in_thousands_of_digits_is_kept_whole(capsys, tmp_path, matrix):
    long_name = "node" + "7" * 4300
    assert fold(["gpu-001", long_name, "gpu-002"]) == f"gpu-[001-002],{long_name}"
    assert sorted(expand(fold([long_name, "n1"]))) == sorted([long_name, "n1"])
    at_limit = ["a" + "1" * MAX_DIGITS, "a" + "1" * (MAX_DIGITS - 1) + "2"]  # still numbers: folded
    assert fold(at_limit) == f"a[{at_limit[0][1:]}-{at_limit[1][1:]}]" and expand(fold(at_limit)) == at_limit
    with pytest.raises(NodeSetError, match="more than 18 digits"):
        expand("n[1-" + "9" * 5000 + "]")
    (tmp_path / "a.json").write_text(json.dumps(report(matrix, long_name)))
    (tmp_path / "b.json").write_text(json.dumps(report(matrix, "gpu-001")))
    code, out, err = run(capsys, "gate", tmp_path)
    assert code == 0 and err == "" and "2 pass" in out
    code, out, err = run(capsys, "gate", tmp_path, "-f", "json")
    assert code == 0 and long_name in {n["node"] for n in json.loads(out)["nodes"]}
    code, out, err = run(capsys, "gate", tmp_path, "--expect", "n[1-" + "9" * 5000 + "]")
    assert code == 2 and "more than 18 digits" in err and len(err) < 300


def test_expect_has_a_total_limit(tmp_path):
    start = time.monotonic()
    with pytest.raises(GateError, match="makes more than 1000000 names in all"):
        parse_expect([f"r{i}n[1-1000000]" for i in range(8)])
    listing = tmp_path / "nodes.txt"
    listing.write_text("".join(f"r{i}n[1-600000]\n" for i in range(8)))
    with pytest.raises(GateError, match=r"nodes\.txt:2: .*makes more than 1000000 names in all"):
        parse_expect([str(listing)])
    assert time.monotonic() - start < 20  # was 45 s and 1.9 GB
    assert len(parse_expect(["a[1-500000]", "b[1-500000]"]).nodes) == 1_000_000


# -- item 7: reports from the future ------------------------------------------------------------------------------


def test_a_report_from_the_future_is_stale_beyond_the_clock_skew_allowance(matrix):
    ahead = (NOW + datetime.timedelta(days=3650)).isoformat()
    skewed = (NOW + datetime.timedelta(seconds=CLOCK_SKEW_SECONDS / 2)).isoformat()
    loaded = [Loaded("f", report(matrix, "fut", created=ahead)), Loaded("s", report(matrix, "skew", created=skewed))]
    fr = run_gate(loaded, GateOptions(max_age_seconds=3600, now=NOW))
    by = {v.node: v for v in fr.nodes}
    assert by["fut"].status == "stale" and by["skew"].status == "pass" and fr.exit_code == 2
    assert "3650d in the future, beyond the clock-skew allowance of 5m" in by["fut"].notes[0]
    assert any("dated more than 5m ahead (clock-skew allowance)" in r for r in fr.reasons)
    text = render_gate_text(fr)
    assert "fut  report from " + ahead + ", 3650d in the future" in text
    assert "in the future) is dated beyond the clock-skew allowance" in render_junit(fr)
    # without --max-age no age is judged, but the note says so
    assert run_gate(loaded, GateOptions(now=NOW)).exit_code == 0


def test_a_forged_future_duplicate_does_not_outrank_the_real_report(matrix):
    real = report(matrix, "n1", driver="470.82.01")  # fails
    forged = report(matrix, "n1", created=(NOW + datetime.timedelta(days=365)).isoformat())
    fr = run_gate([Loaded("real", real), Loaded("forged", forged)], GateOptions(now=NOW))
    assert fr.nodes[0].source == "real" and fr.status == "fail"
    assert fr.completeness.duplicates[0].ignored == ("forged",)


# -- item 7: untrusted strings in text and JUnit ------------------------------------------------------------------


def test_escape_functions():
    assert visible("gpu-001 /usr/lib/libcuda.so.1\ttab \\x1b") == "gpu-001 /usr/lib/libcuda.so.1\ttab \\x1b"
    assert (
        visible("a\nb\rc\x1b[31m\x07\x7f\x9b\u2028\u202e\ud800")
        == "a\\nb\\rc\\x1b[31m\\x07\\x7f\\x9b\\u2028\\u202e\\ud800"
    )
    assert xml_safe("a\nb\tc\x1b\x00\ufffe\udc80") == "a\nb\tc\\x1b\\x00\\ufffe\\udc80"


def test_node_names_with_escapes_cannot_forge_lines_or_break_junit(matrix):
    bad = report(matrix, FORGED, driver="470.82.01")
    bad["findings"][0]["message"] += "\x1b]0;title\x07\nResult: PASS"
    loaded = [
        Loaded("ok.json", report(matrix, "gpu-001")),
        Loaded("bad\n.json", bad),
        Loaded("tfc.json", report(matrix, "tfcompat fleet")),
    ]
    fr = run_gate(loaded, GateOptions(expect=parse_expect(["gpu-001"]), now=NOW))
    for colour in (False, True):
        text = render_gate_text(fr, colour=colour)
        lines = text.splitlines()
        assert sum(1 for ln in lines if ln.startswith("Result:")) == 1 and lines[-1].startswith("Result: ")
        body = "\n".join(lines[:-1])
        assert not any(c in body for c in "\x1b\x07\r\u202e\ud800"), repr(body)
        assert "gpu-9\\nResult: PASS\\x1b]0;owned\\x07\\x1b[2J\\u202e\\ud800" in body
        text.encode("utf-8")  # printable: no lone surrogate
    xml = render_junit(fr)
    root = ET.fromstring(xml.encode("utf-8"))  # well-formed XML 1.0
    names = [s.get("name") for s in root.findall("testsuite")]
    assert len(names) == len(set(names)) and "tfcompat fleet #2" in names
    assert "gpu-9\nResult: PASS\\x1b]0;owned\\x07\\x1b[2J\u202e\\ud800" in names
    json.loads(render_gate_json(fr))


def test_check_text_escapes_strings_from_the_environment(matrix):
    env = node_env("n\x1b]0;x\x07\nResult: PASS", tf="2.21.0")
    tf = dataclasses.replace(env.tensorflow, location="/site/tensorflow\x1b[2J\n/evil")
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, tensorflow=(tf,)))
    rep: Report = evaluate(env, matrix)
    rep = dataclasses.replace(rep, errors=("libbad.so\x1b[31m: DT_NEEDED \udcff\n",))
    for colour in (False, True):
        text = render_text(rep, colour=colour)
        lines = text.splitlines()
        assert sum(1 for ln in lines if ln.startswith("Result:")) == 1
        assert "Node        n\\x1b]0;x\\x07\\nResult: PASS" in text and "/site/tensorflow\\x1b[2J\\n/evil" in text
        assert "libbad.so\\x1b[31m: DT_NEEDED \\udcff\\n" in text
        assert "\x07" not in text and "\udcff" not in text
        if not colour:
            assert "\x1b" not in text


# -- item 7: --output-dir is one-to-one ---------------------------------------------------------------------------


def test_output_dir_file_names_are_one_to_one(tmp_path, matrix):
    nodes = [
        "gpu-001",
        "a/b",
        "a_b",
        ".x",
        "x",
        "",
        "unnamed-node",
        "..",
        "a%2Fb",
        "a~b",
        "gp\u00fc",
        "a\ud800",
        "n" + "7" * 4300,
        "n" + "7" * 4301,
        "A\nB",
    ]
    files = [node_file(n) for n in nodes]
    assert len(set(files)) == len(nodes)
    assert files[0] == "gpu-001.json" and files[2] == "a_b.json" and files[4] == "x.json"
    assert all(not f.startswith(".") and "/" not in f and len(f.encode()) < 255 for f in files)
    for n, f in zip(nodes, files):
        assert node_of_file(os.path.join("/d", f)) == (n if "~" not in f else None)
    for n in nodes[:5]:
        write_node_report(str(tmp_path), n, json.dumps(report(matrix, n)))
    assert len(report_files(str(tmp_path))) == 5
    fr = run_gate(read_inputs([str(tmp_path)]), GateOptions(now=NOW))
    assert sorted(v.node for v in fr.nodes) == sorted(nodes[:5]) and fr.counts.duplicate == 0


def test_report_naming_no_node_takes_the_decoded_file_name(tmp_path):
    (tmp_path / "a%2Fb.json").write_text(
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
                "errors": ["no scan"],
                "environment": None,
            }
        )
    )
    fr = run_gate(read_inputs([str(tmp_path)]), GateOptions(now=NOW))
    assert [v.node for v in fr.nodes] == ["a/b"]


# -- item 7: overlay waivers are checked like --ignore ------------------------------------------------------------

OVERLAY = """
[meta]
schema = 1
kind = "overlay"
updated = "2026-11-20"

[[waiver]]
rule = "{rule}"
reason = "site decision"
checked = "2026-11-20"
"""


@pytest.mark.parametrize("rule, why", [("TFC999", "no rule id starts with it"), ("TFC6", "only fleet rules")])
def test_overlay_waiver_of_an_unknown_rule_is_refused_like_ignore(capsys, tmp_path, rule, why):
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(to_json_dict(node_env("n1"))))
    overlay = tmp_path / "site.toml"
    overlay.write_text(OVERLAY.format(rule=rule))
    code, _out, err = run(capsys, "check", "--from", snap, "--matrix-overlay", overlay)
    assert code == 2 and f"site overlay {overlay}: [[waiver]] rule {rule}: {why}" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "check", "--from", snap, "--ignore", rule)
    assert code == 2 and why in err
    overlay.write_text(OVERLAY.format(rule="TFC105"))
    code, _, err = run(capsys, "check", "--from", snap, "--matrix-overlay", overlay)
    assert code in (0, 1), err


def test_stdin_json_lines_with_a_deep_line_keeps_the_rest(matrix):
    text = "[" * 50_000 + "\n" + json.dumps(report(matrix, "n1")) + "\n"
    items = list(_iter_json_values(text, "<stdin>"))
    assert [i.error is None for i in items] == [False, True]
    fr = run_gate(read_inputs(["-"], stdin=io.StringIO(text)), GateOptions(now=NOW))
    assert fr.counts.passed == 1 and fr.counts.unreadable == 1


def test_the_error_line_is_one_line_whatever_the_snapshot_holds(capsys, tmp_path):
    data = to_json_dict(node_env("n1"))
    data["host"]["\x1b]0;owned\x07\nResult: PASS"] = 1
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(data))
    code, _out, err = run(capsys, "check", "--from", snap)
    assert code == 2 and len(err.splitlines()) == 1 and "\x1b" not in err and "\\x1b]0;owned\\x07\\nResult" in err


def test_a_fifo_or_device_named_like_a_report_is_refused_not_waited_on(tmp_path, matrix):
    (tmp_path / "gpu-001.json").write_text(json.dumps(report(matrix, "gpu-001")))
    os.mkfifo(tmp_path / "gpu-002.json")
    os.symlink("/dev/zero", tmp_path / "gpu-003.json")
    start = time.monotonic()
    fr = run_gate(read_inputs([str(tmp_path), str(tmp_path / "gpu-002.json")]), GateOptions(now=NOW))
    assert time.monotonic() - start < 10
    reasons = {os.path.basename(u.source): u.reason for u in fr.completeness.unreadable}
    assert reasons == {
        "gpu-002.json": "cannot read: not a regular file",
        "gpu-003.json": "cannot read: not a regular file",
    }
    assert fr.counts.passed == 1


def test_crlf_report_files_read_as_before(tmp_path, matrix):
    (tmp_path / "gpu-001.json").write_text(json.dumps(report(matrix, "gpu-001"), indent=1).replace("\n", "\r\n"))
    (tmp_path / "bad.json").write_bytes(b'{\r\n"a": 1,\r\n}')
    fr = run_gate(read_inputs([str(tmp_path)]), GateOptions(now=NOW))
    assert fr.counts.passed == 1
    assert fr.completeness.unreadable[0].reason.startswith("line 3, column 1: not valid JSON")
