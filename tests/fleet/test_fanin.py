"""Fan-in from any launcher: `check --format jsonl` (one line per node), the gate reading it from stdin with the
launchers' labels and headers (clush, pdsh, srun -l, Ansible), and `--expect` refusing what is not a host name."""

import dataclasses
import datetime
import io
import json

import jsonschema
import pytest
from envs import make_env

from tfcompat.cli import main
from tfcompat.fleet.gate import GateError, GateOptions, parse_expect, read_inputs, run_gate
from tfcompat.fleet.read import _iter_json_values
from tfcompat.model import Gpu, to_json_dict
from tfcompat.render.json import render_json, render_json_line, schema_text
from tfcompat.rules import evaluate

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
FRESH = (NOW - datetime.timedelta(minutes=10)).isoformat()
H100 = "NVIDIA H100 80GB HBM3"


def node_env(name, driver="560.35.03"):
    gpus = [Gpu(i, H100, f"GPU-{name}-{i}", f"00000000:{i + 1:02x}:00.0", "9.0", 81559, False) for i in range(8)]
    env = make_env(driver=driver, gpus=gpus)
    return dataclasses.replace(env, host=dataclasses.replace(env.host, node_name=name), created=FRESH)


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def snapshots(tmp_path, bad=()):
    """Three emulated nodes' snapshots (`scan` output); the nodes in `bad` run driver 470 (TFC201)."""
    paths = {}
    for name in ("gpu-001", "gpu-002", "gpu-003"):
        path = tmp_path / f"snap-{name}.json"
        path.write_text(json.dumps(to_json_dict(node_env(name, "470.82.01" if name in bad else "560.35.03"))))
        paths[name] = path
    return paths


def jsonl_of(capsys, snaps):
    """`tfcompat check --from SNAP -f jsonl` on each node: node -> (exit code, its one line)."""
    out = {}
    for name, snap in snaps.items():
        code, text, _err = run(capsys, "check", "--from", snap, "-f", "jsonl")
        out[name] = (code, text)
    return out


# ---------------------------------------------------------------------------
# check --format jsonl


def test_jsonl_is_the_json_report_on_one_line(capsys, tmp_path, matrix):
    snaps = snapshots(tmp_path, bad=("gpu-002",))
    lines = jsonl_of(capsys, snaps)
    for name, (code, text) in lines.items():
        assert text.endswith("\n") and text.count("\n") == 1 and "\r" not in text
        data = json.loads(text)
        jsonschema.validate(data, json.loads(schema_text()))
        assert data["environment"]["host"]["node_name"] == name
        assert code == data["exit_code"] == (1 if name == "gpu-002" else 0)
        # the same report as -f json, only compact
        _, pretty, _ = run(capsys, "check", "--from", snaps[name], "-f", "json")
        assert json.loads(pretty) == data


def test_jsonl_escapes_what_a_line_splitter_would_split(matrix):
    env = node_env("gpu-001")
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, node_name="gpu-001\n\r\u2028\u2029\x85"))
    line = render_json_line(evaluate(env, matrix))
    assert len(line.splitlines()) == 1 and line.endswith("}\n")  # str.splitlines splits at all of them
    assert json.loads(line) == json.loads(render_json(evaluate(env, matrix)))


def test_jsonl_error_is_the_one_error_shape_on_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "check", "--from", tmp_path / "nope.json", "-f", "jsonl")
    _, pretty, _ = run(capsys, "check", "--from", tmp_path / "nope.json", "-f", "json")
    assert code == 2 and out.count("\n") == 1 and out.endswith("\n")
    assert json.loads(out) == json.loads(pretty)
    data = json.loads(out)
    assert data["status"] == "error" and data["exit_code"] == 2 and data["environment"] is None
    assert err == f"tfcompat: error: {data['errors'][0]}\n"


# ---------------------------------------------------------------------------
# Done when: clush-style jsonl of 3 emulated nodes gates correctly


def clush(lines):
    """What `clush -w gpu-[001-003] tfcompat check -f jsonl` prints (clush without -b, pdsh alike)."""
    return "".join(f"{name}: {text}" for name, (_code, text) in sorted(lines.items()))


@pytest.mark.parametrize("bad, code, verdict", [((), 0, "PASS"), (("gpu-002",), 1, "FAIL")])
def test_clush_style_jsonl_of_three_nodes_gates(capsys, monkeypatch, tmp_path, matrix, bad, code, verdict):
    lines = jsonl_of(capsys, snapshots(tmp_path, bad=bad))
    monkeypatch.setattr("sys.stdin", io.StringIO(clush(lines)))
    got, out, err = run(capsys, "gate", "-", "--expect", "gpu-[001-003]", "--max-age", "1h")
    assert got == code, out + err
    assert "3 nodes reported" in out and f"Result: {verdict}" in out and "Missing" not in out
    if bad:
        assert "Failing (1): gpu-002" in out and "TFC201" in out and "Passing (2): gpu-[001,003]" in out
    else:
        assert "Passing (3): gpu-[001-003]" in out
    # a node that printed nothing is missing: incomplete, not a pass
    del lines["gpu-003"]
    if not bad:
        monkeypatch.setattr("sys.stdin", io.StringIO(clush(lines)))
        got, out, _ = run(capsys, "gate", "-", "--expect", "gpu-[001-003]", "-f", "json")
        data = json.loads(out)
        assert got == 2 and data["completeness"]["missing"] == ["gpu-003"]


def test_every_launchers_output_reads_as_the_same_reports(matrix):
    good = {n: render_json_line(evaluate(node_env(n), matrix)) for n in ("gpu-001", "gpu-002", "gpu-003")}
    outputs = {
        "pdsh": "".join(f"{n}: {t}" for n, t in good.items()),
        "srun -l": "".join(f"{i:>2}: {t}" for i, t in enumerate(good.values())),
        "clush -b": "".join(f"---------------\n{n}\n---------------\n{t}" for n, t in good.items()),
        "pdsh | dshbak": "".join(f"----------------\n{n}\n----------------\n{t}" for n, t in good.items()),
        "ansible": "".join(f"{n} | CHANGED | rc=0 >>\n{t}" for n, t in good.items()),
        # Ansible ad-hoc: stdout stripped, then stderr and "non-zero return code" on the same line
        "ansible rc=1": "".join(
            f"{n} | FAILED | rc=1 >>\n{t.rstrip()}tfcompat: warning\nnon-zero return code\n" for n, t in good.items()
        ),
        "plain": "".join(good.values()),
    }
    for launcher, text in outputs.items():
        items = list(_iter_json_values(text, "<stdin>"))
        assert [i.error for i in items] == [None] * 3, launcher
        assert [i.data["environment"]["host"]["node_name"] for i in items] == list(good), launcher
        fr = run_gate(items, GateOptions(expect=parse_expect(["gpu-[001-003]"]), now=NOW))
        assert fr.exit_code == 0 and fr.counts.passed == 3, launcher


def test_an_unreachable_ansible_host_is_one_unreadable_report(matrix):
    line = render_json_line(evaluate(node_env("gpu-001"), matrix))
    unreachable = (
        '{\n    "changed": false,\n    "msg": "ssh: connect to host gpu-002 port 22",\n    "unreachable": true\n}'
    )
    text = f"gpu-002 | UNREACHABLE! => {unreachable}\ngpu-001 | CHANGED | rc=0 >>\n{line.rstrip()}\n"
    items = list(_iter_json_values(text, "<stdin>"))
    assert [i.error is None for i in items] == [False, True] and items[0].source == "<stdin>:1"
    fr = run_gate(items, GateOptions(expect=parse_expect(["gpu-[001-002]"]), now=NOW))
    assert fr.exit_code == 2 and fr.counts.passed == 1 and fr.counts.unreadable == 1
    assert fr.completeness.missing == ("gpu-002",)


def test_a_label_names_a_report_that_names_no_node(matrix):
    """An error report (no environment) takes its node from the launcher's label; a rank or a gathered set is
    not a node name."""
    from tfcompat.engine import error_report

    err = render_json_line(error_report("--python /opt/venv/bin/python: no such interpreter"))
    items = list(_iter_json_values(f"gpu-007: {err} 3: {err}gpu-[001-002]: {err}", "<stdin>"))
    assert [i.name_hint for i in items] == ["gpu-007", None, None]
    items = list(_iter_json_values(f"---------------\ngpu-009\n---------------\n{err}", "<stdin>"))
    assert [i.name_hint for i in items] == ["gpu-009"]
    fr = run_gate(items[:1], GateOptions(expect=parse_expect(["gpu-009"]), now=NOW))
    assert fr.exit_code == 2 and fr.completeness.undecided == ("gpu-009",) and fr.completeness.missing == ()


def test_errors_stay_per_line(matrix):
    good = {n: render_json_line(evaluate(node_env(n), matrix)) for n in ("gpu-001", "gpu-002", "gpu-003")}
    cut = good["gpu-002"][: len(good["gpu-002"]) // 2] + "\n"  # interleaved or cut output
    pretty = render_json(evaluate(node_env("gpu-004"), matrix))
    text = (
        f"gpu-001: {good['gpu-001']}gpu-002: {cut}gpu-003: {good['gpu-003']}gpu-005: not json\n"
        + "".join(f"gpu-004: {line}\n" for line in pretty.splitlines())  # a multi-line report, labelled
        + "gpu-006: "
        + good["gpu-001"].replace('"gpu-001"', '"gpu-006"')
    )
    items = list(_iter_json_values(text, "<stdin>"))
    ok = [i.data["environment"]["host"]["node_name"] for i in items if i.data is not None]
    assert ok == ["gpu-001", "gpu-003", "gpu-006"]
    bad = [i for i in items if i.data is None]
    assert bad[0].source == "<stdin>:2" and bad[0].name_hint == "gpu-002" and "not valid JSON" in bad[0].error
    assert "labelled 'gpu-002': a labelled report must be one line, `check -f jsonl`" in bad[0].error
    assert all(i.error for i in bad)
    fr = run_gate(items, GateOptions(expect=parse_expect(["gpu-[001-006]"]), now=NOW))
    assert fr.counts.passed == 3 and fr.counts.unreadable == len(bad) and fr.exit_code == 2


def test_json_lines_file_with_labels(tmp_path, matrix):
    good = {n: render_json_line(evaluate(node_env(n), matrix)) for n in ("gpu-001", "gpu-002")}
    (tmp_path / "all.jsonl").write_text("".join(f"{n}: {t}" for n, t in good.items()))
    fr = run_gate(read_inputs([str(tmp_path)]), GateOptions(expect=parse_expect(["gpu-[001-002]"]), now=NOW))
    assert fr.exit_code == 0 and fr.counts.passed == 2


class _SlicedText(str):
    sliced = 0

    def __getitem__(self, key):
        if isinstance(key, slice):
            type(self).sliced += len(range(*key.indices(len(self))))
        return str.__getitem__(self, key)


def test_labelled_json_lines_stay_linear(matrix):
    """Each value is decoded within its own line (a labelled line ends the window): no copy of the rest of the
    input per record."""
    line = render_json_line(evaluate(node_env("n0"), matrix))
    text = _SlicedText("".join(f"n{i}: " + line.replace('"n0"', f'"n{i}"') for i in range(300)))
    _SlicedText.sliced = 0
    items = list(_iter_json_values(text, "<stdin>"))
    assert len(items) == 300 and all(i.error is None for i in items)
    assert _SlicedText.sliced <= len(text), "the rest of the input copied for every record"


# ---------------------------------------------------------------------------
# --expect: host names only


@pytest.mark.parametrize(
    "value, shown",
    [
        ("gpu-[001-004]!gpu-002", "'!'"),
        ("gpu-[001-004]&gpu-[002-003]", "'&'"),
        ("gpu-[001-004]^gpu-002", "'^'"),
        ("@gpu", "'@'"),
        ("gpu 001", "white space"),
        ("gpu-[001-002] pool=h100", "labels go in an --expect file"),
        ("gpu-00*", "'*'"),
        ("gpu-001;rm", "';'"),
    ],
)
def test_expect_refuses_what_is_not_a_host_name(capsys, tmp_path, value, shown):
    with pytest.raises(GateError, match="node names are host names"):
        parse_expect([value])
    code, out, err = run(capsys, "gate", tmp_path, "--expect", value)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("tfcompat: error: --expect")
    assert shown in err and "letters, digits, '-', '.', '_'; ranges as gpu-[001-128]" in err


def test_expect_file_labels_still_work_and_bad_names_in_it_are_refused(tmp_path):
    listing = tmp_path / "nodes.txt"
    listing.write_text("gpu-[001-002] pool=h100  # comment\nlogin_1.example.org\n")
    exp = parse_expect([str(listing)])
    assert exp.nodes == ("gpu-001", "gpu-002", "login_1.example.org") and exp.labels["gpu-001"] == {"pool": "h100"}
    listing.write_text("gpu-[001-002] pool=h100\n@login role=login\n")
    with pytest.raises(GateError, match=r"nodes.txt:2: node set '@login': '@' \(a node group"):
        parse_expect([str(listing)])


def test_fleet_refuses_a_bad_expect_before_it_starts(capsys, tmp_path):
    out_dir = tmp_path / "a" / "b"
    code, _, err = run(capsys, "fleet", "--local", "1", "--expect", "gpu-[1-2]!gpu-1", "--output-dir", out_dir)
    assert code == 2 and "node names are host names" in err and not out_dir.exists()
