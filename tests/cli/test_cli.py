"""The command line, end to end: real files in tmp_path, the real console entry point."""

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from tfcompat.cli import main
from tfcompat.render.json import schema_text

BUILD_INFO_221 = (
    "import collections\n"
    "build_info = collections.OrderedDict([('cpu_compiler', 'clang'), ('cuda_compute_capabilities', "
    "['sm_60', 'sm_70', 'sm_80', 'sm_89', 'compute_90']), ('cuda_version', '12.5.1'), ('cudnn_version', '9'), "
    "('is_cuda_build', True), ('is_rocm_build', False), ('is_tensorrt_build', False)])\n"
)


def write_dist(site, name, version, requires=(), tags=()):
    d = site / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (d / "METADATA").write_text("\n".join(lines) + "\n\nLong description.\n")
    if tags:
        (d / "WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags))


@pytest.fixture
def tf_site(tmp_path):
    """A site-packages dir shaped like a `pip install tensorflow==2.21.0` for Python 3.11."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "tensorflow" / "python" / "platform").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text("")
    (site / "tensorflow" / "python" / "platform" / "build_info.py").write_text(BUILD_INFO_221)
    write_dist(
        site,
        "tensorflow",
        "2.21.0",
        ["numpy>=1.26.0", "protobuf<8.0.0,>=6.31.1"],
        tags=["cp311-cp311-manylinux_2_27_x86_64"],
    )
    write_dist(site, "numpy", "2.1.0")
    write_dist(site, "protobuf", "6.31.1")
    return site


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def validate(report):
    jsonschema.validate(report, json.loads(schema_text()))


def test_check_site_packages_text(capsys, tf_site):
    code, out, err = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "--node-name", "n1")
    assert code == 0, err
    assert "tensorflow 2.21.0 (CUDA 12.5.1, cuDNN 9, sm_60 sm_70 sm_80 sm_89 compute_90)" in out
    assert "Python      3.11" in out
    assert "Result: PASS" in out and "exit 0" in out


def test_check_json_matches_exit_code_and_schema(capsys, tf_site):
    write_dist(tf_site, "tf-keras", "2.20.1", ["tensorflow<2.21,>=2.20"])
    # --select TFC1: the node's own limits (shared memory, cgroups) differ from machine to machine
    code, out, _ = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "-f", "json", "--select", "TFC1")
    report = json.loads(out)
    validate(report)
    assert code == report["exit_code"] == 1 and report["status"] == "fail"
    assert [f["rule"] for f in report["findings"]] == ["TFC104"]
    # the same verdict in text
    code_text, out_text, _ = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml")
    assert code_text == 1 and "ERROR TFC104 companion-package-mismatch" in out_text and "Result: FAIL" in out_text


def test_fail_on_and_ignore(capsys, tf_site):
    write_dist(tf_site, "tf-keras", "2.20.1", ["tensorflow<2.21,>=2.20"])
    code, out, _ = run(
        capsys,
        "check",
        "--site-packages",
        str(tf_site),
        "--no-nvml",
        "-f",
        "json",
        "--ignore",
        "TFC104=pinned by the platform team until Dec",
    )
    report = json.loads(out)
    validate(report)
    assert code == 0 and report["findings"][0]["waived"] == "pinned by the platform team until Dec"
    code, out, _ = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "--select", "TFC2")
    assert code == 0 and "TFC104" not in out


def test_info_fails_only_with_fail_on_info(capsys, tf_site):
    write_dist(tf_site, "absl-py", "0.1.0")
    (tf_site / "tensorflow-2.21.0.dist-info" / "METADATA").write_text(
        "Name: tensorflow\nVersion: 2.21.0\nRequires-Dist: absl-py>=1.0.0\n"
    )
    assert run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml")[0] == 0
    assert run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "--fail-on", "info")[0] == 1


def test_no_tensorflow_is_exit_2_with_a_hint(capsys, tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    code, out, _ = run(capsys, "check", "--site-packages", str(site), "--no-nvml")
    assert code == 2
    assert "TensorFlow is not installed in the checked environment" in out and "--python" in out
    assert "UNDECIDED" in out
    code, out, _ = run(capsys, "check", "--site-packages", str(site), "--no-nvml", "-f", "json")
    report = json.loads(out)
    validate(report)
    assert code == 2 and report["status"] == "error" and report["errors"]


def test_scan_then_check_from_snapshot(capsys, tf_site, tmp_path):
    snap = tmp_path / "snap.json"
    code, _, err = run(capsys, "scan", "--site-packages", str(tf_site), "--no-nvml", "-o", str(snap))
    assert code == 0, err
    data = json.loads(snap.read_text())
    assert data["target"]["tensorflow"][0]["cuda_version"] == "12.5.1"
    # a GPU node with an old driver, recorded elsewhere, judged here
    data["host"]["driver"] = {
        "kernel_module_version": "470.82.01",
        "kernel_module_source": "/proc/driver/nvidia/version",
        "nvml_driver_version": None,
        "cuda_driver_version": None,
    }
    data["unknowns"] = [u for u in data["unknowns"] if u["fact"] not in ("driver", "gpus")]
    snap.write_text(json.dumps(data))
    code, out, _ = run(capsys, "check", "--from", str(snap), "-f", "json")
    report = json.loads(out)
    validate(report)
    assert code == 1 and report["findings"][0]["rule"] == "TFC201"
    assert "470.82.01" in report["findings"][0]["message"]


def test_output_file_written_atomically(capsys, tf_site, tmp_path):
    out_file = tmp_path / "report.json"
    code, out, _ = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "-f", "json", "-o", str(out_file))
    assert code == 0 and out == ""
    validate(json.loads(out_file.read_text()))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "--python", "/nonexistent/bin/python"], "--python /nonexistent/bin/python: no such file"),
        (["check", "--site-packages", "/nonexistent"], "--site-packages /nonexistent: not a directory"),
        (["check", "--root", "/nonexistent"], "--root /nonexistent: not a directory"),
        (["check", "--fail-on", "fatal"], "fatal"),
        (["check", "--bogus"], "--bogus"),
        (["explain", "TFC999"], "no rule 'TFC999'"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("tfcompat: error:")
    assert "Traceback" not in err + out


def test_corrupt_snapshot(capsys, tmp_path):
    bad = tmp_path / "snap.json"
    bad.write_text('{"host": {}, ')
    code, _, err = run(capsys, "check", "--from", str(bad))
    assert code == 2 and f"{bad}: line 1, column" in err and len(err.strip().splitlines()) == 1
    bad.write_text(json.dumps({"snapshot_version": 1, "host": {"gpus": "many"}}))
    code, out, err = run(capsys, "check", "--from", str(bad), "-f", "json")
    assert code == 2 and "$.host.gpus: expected a list" in err
    report = json.loads(out)  # JSON mode: the error is JSON too
    validate(report)
    assert report["status"] == "error" and "$.host.gpus" in report["errors"][0]


def test_broken_matrix(capsys, tf_site, tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text(
        '[meta]\nschema = 1\nupdated = "2026-01-01"\n[[tensorflow]]\nversions = "2.21"\npython = ">=3.10"\n'
        'cudnn = "9.x"\nsource = "x/y"\nchecked = "2026-01-01"\n'
    )
    code, _, err = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "--matrix", str(bad))
    assert code == 2
    assert (
        err.strip() == f"tfcompat: error: {bad}: [[tensorflow]] #1 '2.21': versions '2.21' is not a PEP 440 specifier"
    )


def test_output_to_missing_directory(capsys, tf_site, tmp_path):
    code, _, err = run(
        capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "-o", str(tmp_path / "no" / "r.txt")
    )
    assert code == 2 and "does not exist" in err


def test_rules_explain_schema_version(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0 and "TFC201" in out and "driver-too-old-for-cuda" in out
    code, out, _ = run(capsys, "explain", "TFC105")
    assert code == 0 and "Why it crashes" in out and "How to fix" in out
    code, out, _ = run(capsys, "schema")
    assert code == 0 and json.loads(out)["$schema"].endswith("2020-12/schema")
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("tfcompat ")


def test_every_rule_is_documented():
    from tfcompat.engine import DOC_SECTIONS
    from tfcompat.rules import catalog

    rules = catalog()
    assert len(rules) >= 8
    for r in rules:
        assert r.summary, r.id
        for section in DOC_SECTIONS:
            assert f"{section}:" in r.doc, (r.id, section)


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_text()))


def test_python_option_against_a_real_interpreter(capsys, tf_site, tmp_path):
    """--python asks another interpreter for its sys.path (here: a venv that sees tf_site via a .pth file)."""
    venv = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "tf.pth").write_text(str(tf_site) + "\n")
    py = venv / "bin" / "python"
    _code, out, _err = run(capsys, "check", "--python", str(py), "--no-nvml", "-f", "json")
    report = json.loads(out)
    assert report["environment"]["target"]["python"]["executable"] == str(py)
    assert report["environment"]["target"]["tensorflow"][0]["version"] == "2.21.0"
    assert str(tf_site) in report["environment"]["target"]["site_packages"]


def test_console_script_and_module_entry_points(tf_site):
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tfcompat", "check", "--site-packages", str(tf_site), "--no-nvml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Result: PASS" in proc.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--select", "TCF105"], "--select TCF105: no rule id starts with it"),
        (["--ignore", "TFC9999=typo"], "--ignore TFC9999: no rule id starts with it"),
        (["--op", "/nonexistent/op.so"], "--op /nonexistent/op.so: no such file"),
        (["--op", "/nonexistent/*.so"], "--op /nonexistent/*.so: no such file"),
    ],
)
def test_typos_do_not_pass_a_gate(capsys, tf_site, argv, message):
    code, _out, err = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"tfcompat: error: {message}")


def test_ignore_list_shares_its_reason(capsys, tf_site):
    write_dist(tf_site, "tf-keras", "2.20.1", ["tensorflow<2.21,>=2.20"])
    code, out, _ = run(
        capsys,
        "check",
        "--site-packages",
        str(tf_site),
        "--no-nvml",
        "-f",
        "json",
        "--select",
        "TFC1",
        "--ignore",
        "TFC104,TFC105=platform pin",
    )
    report = json.loads(out)
    assert code == 0 and [f["waived"] for f in report["findings"]] == ["platform pin"]


def test_output_is_a_directory(capsys, tf_site, tmp_path):
    code, _, err = run(capsys, "check", "--site-packages", str(tf_site), "--no-nvml", "-o", str(tmp_path))
    assert code == 2 and "is a directory" in err and "internal error" not in err


def test_undecided_says_why_in_text_and_on_stderr(capsys, tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    code, _out, err = run(capsys, "check", "--site-packages", str(site), "--no-nvml")
    assert code == 2 and err.startswith("tfcompat: error: TensorFlow is not installed")


def test_one_json_error_shape_for_every_command(capsys, tmp_path):
    """check, gate and matrix print an error in JSON as the same object: the check report with status error."""
    from tfcompat.render.gate_json import gate_schema_text

    runs = {
        "check": run(capsys, "check", "--from", str(tmp_path / "nope.json"), "-f", "json"),
        "gate": run(capsys, "gate", str(tmp_path / "nope"), "-f", "json"),
        "matrix": run(capsys, "matrix", "tensorflow", "9.9", "-f", "json"),
    }
    keys = [
        "schema_version",
        "tool_version",
        "status",
        "exit_code",
        "fail_on",
        "matrix",
        "findings",
        "skipped",
        "errors",
        "environment",
    ]
    for command, (code, out, err) in runs.items():
        data = json.loads(out)
        validate(data)
        assert code == 2 and list(data) == keys, command
        assert data["status"] == "error" and data["exit_code"] == 2 and len(data["errors"]) == 1
        assert err == f"tfcompat: error: {data['errors'][0]}\n"
    jsonschema.validate(json.loads(runs["gate"][1]), json.loads(gate_schema_text()))


def test_format_choices_come_from_the_formats_table():
    from tfcompat.cli.options import CheckFormat, GateFormat
    from tfcompat.render.formats import FORMATS

    assert (
        [f.value for f in CheckFormat]
        == list(FORMATS["check"])
        == ["text", "json", "jsonl", "prometheus", "npd", "nfd"]
    )
    assert [f.value for f in GateFormat] == list(FORMATS["gate"]) == ["text", "json", "junit"]
    for command, formats in FORMATS.items():
        for name, fmt in formats.items():
            assert fmt.render is not None or command == "matrix", (command, name)
