"""The example fleet that ships with tfcompat (examples/, issue #16 Deliver 1): its reports load and validate, the
gate gives the verdict the READMEs show (their output is the real output), a re-judged report still agrees with
the verdict it carries (regenerate with examples/compose.py when a rule's wording changes), and an installed
tfcompat finds the files (`python -m tfcompat.examples`)."""

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from tfcompat import examples
from tfcompat.cli import main
from tfcompat.model import Report, from_json_dict
from tfcompat.render.json import schema_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET = os.path.join(ROOT, "examples", "fleet")
NODES = ["gpu-001", "gpu-002", "gpu-003", "gpu-004", "gpu-005", "gpu-006", "gpu-008"]  # gpu-007 never reported
# node -> the rules its findings name, at every severity (the documented problems, nothing else)
FINDINGS = {
    "gpu-001": set(),
    "gpu-002": set(),
    "gpu-003": {"TFC201"},  # driver 470.82.01 cannot run CUDA 12
    "gpu-004": set(),
    "gpu-005": {"TFC302", "TFC304"},  # cuDNN 9.1.0 from LD_LIBRARY_PATH shadows the wheel's 9.28
    "gpu-006": {"TFC206", "TFC208"},  # Tesla M40, compute capability 5.2: no kernels in TF 2.21 nor cuDNN 9.28
    "gpu-008": set(),
}


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def load(node):
    with open(os.path.join(FLEET, f"{node}.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_the_checkout_finds_the_shipped_fleet():
    assert str(examples.fleet_dir()) == FLEET
    assert sorted(os.listdir(FLEET)) == [f"{n}.json" for n in NODES]
    assert examples.gate_command() == f"tfcompat gate {FLEET} --expect 'gpu-[001-008]'"


def test_python_m_tfcompat_examples_prints_the_folder():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "tfcompat.examples"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == FLEET + "\n"


@pytest.mark.parametrize("node", NODES)
def test_report_validates_loads_and_names_the_documented_problem(node):
    data = load(node)
    jsonschema.validate(data, json.loads(schema_text()))
    report = from_json_dict(Report, data)
    assert report.environment is not None and report.environment.host.node_name == node
    assert {f.rule for f in report.findings} == FINDINGS[node]
    assert report.status == ("pass" if node in ("gpu-001", "gpu-002", "gpu-004", "gpu-008") else "fail")
    tf = report.environment.tensorflow
    assert tf is not None and (tf.distribution, tf.version) == ("tensorflow", "2.21.0")
    # the image's paths, not the machine the scans were recorded on
    text = json.dumps(data)
    assert "/tmp/" not in text and "/work/" not in text and "/opt/venv/lib/python3.11/site-packages" in text


@pytest.mark.parametrize("node", NODES)
def test_rejudged_report_agrees_with_the_one_shipped(capsys, node):
    """`check --from` re-judges the embedded facts with today's rules and matrix: the same findings and verdict.
    When a rule changes on purpose, regenerate the reports (examples/README.md, "How the files were made")."""
    code, out, _ = run(capsys, "check", "--from", os.path.join(FLEET, f"{node}.json"), "-f", "json")
    fresh, shipped = json.loads(out), load(node)
    assert code == shipped["exit_code"]
    assert [(f["rule"], f["severity"], f["message"]) for f in fresh["findings"]] == [
        (f["rule"], f["severity"], f["message"]) for f in shipped["findings"]
    ]


def test_gate_gives_the_documented_verdict(capsys):
    code, out, _ = run(capsys, "gate", FLEET, "--expect", examples.EXPECT, "-f", "json")
    data = json.loads(out)
    assert code == 1 and data["status"] == "fail" and data["exit_code"] == 1
    assert data["completeness"]["missing"] == ["gpu-007"]
    failing = {n["node"] for n in data["nodes"] if n["status"] == "fail"}
    assert failing == {"gpu-003", "gpu-005", "gpu-006"}
    assert {n["node"] for n in data["nodes"] if n["status"] == "pass"} == {"gpu-001", "gpu-002", "gpu-004", "gpu-008"}
    errors = {n["node"]: {f["rule"] for f in n["findings"] if f["severity"] == "error"} for n in data["nodes"]}
    assert (
        errors["gpu-003"] == {"TFC201"}
        and errors["gpu-005"] == {"TFC302"}
        and errors["gpu-006"] == {"TFC206", "TFC208"}
    )


def _console_block(path, command):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    start = text.index(f"```console\n$ {command}\n") + len(f"```console\n$ {command}\n")
    return text[start : text.index("```", start)]


@pytest.mark.parametrize("readme", ["README.md", "examples/README.md"])
def test_readme_shows_the_real_gate_output(capsys, monkeypatch, readme):
    monkeypatch.chdir(ROOT)
    command = "tfcompat gate examples/fleet --expect 'gpu-[001-008]'"
    code, out, _ = run(capsys, "gate", "examples/fleet", "--expect", "gpu-[001-008]")
    assert code == 1
    assert _console_block(os.path.join(ROOT, readme), command) == out


def test_readme_first_command_gates_the_examples():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    setup = text[text.index("## Set-up: two commands") : text.index("## Quick start")]
    first, second = [b.split("\n", 1)[1].split("```", 1)[0].strip() for b in setup.split("```sh")[1:3]]
    assert first == (
        "python3 -m venv .venv && .venv/bin/pip install . && "
        ".venv/bin/tfcompat gate examples/fleet --expect 'gpu-[001-008]'"
    )
    assert second == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"


def test_no_tensorflow_says_where_to_point_and_how_to_try_the_examples(capsys, tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    code, out, _ = run(capsys, "check", "--site-packages", str(site), "--no-nvml", "-f", "json")
    assert code == 2
    (f,) = [f for f in json.loads(out)["findings"] if f["rule"] == "TFC100"]
    for option in ("--python", "--site-packages", "--root", "--from"):
        assert option in f["remediation"], option
    assert examples.gate_command() in f["remediation"]


def test_the_examples_command_prints_the_fleet_folder():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "tfcompat", "examples"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert os.path.isfile(os.path.join(out, "gpu-001.json")) and not os.path.exists(os.path.join(out, "gpu-007.json"))
