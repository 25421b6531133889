"""node-problem-detector plugin output and NFD features.d labels."""

import dataclasses
import json
import re

import pytest
from envs import make_env

from tfcompat.cli import main
from tfcompat.engine import error_report
from tfcompat.model import Gpu, to_json_dict
from tfcompat.render.nfd import DEFAULT_EXPIRY_SECONDS, LABEL_VALUE, PREFIX, label_value, labels, render_nfd
from tfcompat.render.npd import MAX_LEN, npd_exit_code, render_npd
from tfcompat.rules import evaluate

# Kubernetes label rules (k8s.io/apimachinery validation): optional DNS-subdomain prefix + '/', then a name
# segment of <= 63 characters, alphanumeric at both ends, [-_.A-Za-z0-9] inside; values likewise, or empty.
NAME = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
VALUE = re.compile(r"^(([A-Za-z0-9][-_.A-Za-z0-9]{0,61})?[A-Za-z0-9])?$")
# NFD's local source: a `# +expiry-time=` directive, parsed with Go's time.RFC3339, applies to the lines after it
EXPIRY_LINE = re.compile(r"^# \+expiry-time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")


def assert_k8s_label(key, value):
    prefix, slash, name = key.rpartition("/")
    assert slash and DNS_SUBDOMAIN.match(prefix) and len(prefix) <= 253, key
    assert NAME.match(name) and len(name) <= 63, key
    assert VALUE.match(value) and len(value) <= 63, (key, value)


def node(driver="560.35.03", gpu_names=("NVIDIA H100 80GB HBM3",), tf="2.21.0"):
    gpus = [Gpu(i, n, f"GPU-{i}", None, "9.0") for i, n in enumerate(gpu_names)]
    return make_env(driver=driver, gpus=gpus, tf=tf)


@pytest.mark.parametrize(
    "env_kw, status, code",
    [
        ({}, "pass", 0),
        ({"driver": "470.82.01"}, "fail", 1),
        ({"tf": None}, "error", 2),
    ],
)
def test_npd_one_line_and_exit_codes(matrix, env_kw, status, code):
    report = evaluate(node(**env_kw), matrix)
    assert report.status == status and npd_exit_code(report) == code
    text = render_npd(report)
    assert text.endswith("\n") and text.count("\n") == 1 and len(text.rstrip("\n")) <= MAX_LEN


def test_npd_messages(matrix):
    assert render_npd(evaluate(node(), matrix)).strip() == "tfcompat OK: tensorflow 2.21.0 on driver 560.35.03"
    fail = render_npd(evaluate(node(driver="470.82.01"), matrix)).strip()
    assert fail.startswith("TFC201 NVIDIA driver 470.82.01") and fail.endswith("...") and len(fail) == MAX_LEN
    assert render_npd(error_report("x\ny")).strip() == "tfcompat could not decide: x y"


def test_npd_cli_exit_codes_and_error_line(capsys, tmp_path):
    snap = tmp_path / "s.json"
    for driver, want in (("560.35.03", 0), ("470.82.01", 1)):
        snap.write_text(json.dumps(to_json_dict(node(driver=driver))))
        with pytest.raises(SystemExit) as exc:
            main(["check", "--from", str(snap), "-f", "npd"])
        out, _ = capsys.readouterr()
        assert exc.value.code == want and out.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["check", "--from", str(tmp_path / "absent.json"), "-f", "npd"])
    out, _err = capsys.readouterr()
    assert exc.value.code == 2  # NPD: Unknown
    assert out.startswith("tfcompat could not run: ") and out.count("\n") == 1 and len(out) <= MAX_LEN + 1


@pytest.mark.parametrize(
    "raw, want",
    [
        ("2.21.0", "2.21.0"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3"),
        ("NVIDIA GeForce RTX 4090 (Laptop)", "NVIDIA-GeForce-RTX-4090-Laptop"),
        ("(weird)", "weird"),
        ("!!!", ""),
        ("x" * 80, "x" * 63),
        ("a" * 62 + "/b", "a" * 62),
    ],
)
def test_label_value(raw, want):
    assert label_value(raw) == want
    assert VALUE.match(want) and LABEL_VALUE.match(want)


@pytest.mark.parametrize(
    "env",
    [
        node(),
        node(driver="470.82.01"),
        node(tf=None),
        node(gpu_names=("NVIDIA A100-SXM4-80GB", "Tesla V100-SXM2-32GB / (rev. a1)")),
        node(gpu_names=("-" * 70 + "é" * 10,)),
    ],
)
def test_nfd_labels_pass_kubernetes_rules(matrix, env):
    report = evaluate(env, matrix)
    text = render_nfd(report)
    head, *lines = text.splitlines()
    assert EXPIRY_LINE.match(head), head
    assert lines and all(line.startswith(PREFIX) for line in lines)
    keys = []
    for line in lines:
        key, eq, value = line.partition("=")
        assert eq
        assert_k8s_label(key, value)
        keys.append(key)
    assert len(keys) == len(set(keys))
    got = dict(line.split("=", 1) for line in lines)
    assert got[PREFIX + "tfcompat.status"] == report.status
    assert got[PREFIX + "tfcompat.compatible"] == ("true" if report.status == "pass" else "false")


def test_nfd_content(matrix):
    got = dict(labels(evaluate(node(driver="470.82.01", gpu_names=("NVIDIA H100 80GB HBM3",) * 2), matrix)))
    assert got["tfcompat.rules"] == "TFC201" and got["tfcompat.driver"] == "470.82.01"
    assert got["tfcompat.gpu-model"] == "NVIDIA-H100-80GB-HBM3" and got["tfcompat.gpu-count"] == "2"
    mixed = dict(labels(evaluate(node(gpu_names=("A", "B")), matrix)))
    assert mixed["tfcompat.gpu-model"] == "mixed"
    for key, value in labels(error_report("x")):
        assert_k8s_label(PREFIX + key, value)


def test_nfd_invalid_characters_never_reach_a_label(matrix):
    env = node()
    env = dataclasses.replace(
        env,
        target=dataclasses.replace(
            env.target, python=dataclasses.replace(env.target.python, version="3.11.7+local build")
        ),
    )
    got = dict(labels(evaluate(env, matrix)))
    assert got["tfcompat.python"] == "3.11.7-local-build"


def test_nfd_rules_label_holds_whole_rule_ids_and_a_count(matrix):
    """Many failing rules: the rules label lists only whole ids that fit in 63 characters (never a cut one such
    as TFC30), and tfcompat.rules-count says how many there are."""
    base = evaluate(node(driver="470.82.01"), matrix)
    (f,) = [f for f in base.findings if f.rule == "TFC201"]
    ids = [f"TFC{300 + i}" for i in range(14)] + ["TFC201"]
    report = dataclasses.replace(base, findings=tuple(dataclasses.replace(f, rule=r) for r in ids))
    got = dict(labels(report))
    listed = got["tfcompat.rules"].split("_")
    assert set(listed) <= set(ids) and len(listed) == len(set(listed)) and listed == sorted(listed)
    assert len(got["tfcompat.rules"]) <= 63 and len(listed) == 9  # 9 ids of 6 characters and 8 separators: 62
    assert got["tfcompat.rules-count"] == "15"
    for key, value in labels(report):
        assert_k8s_label(PREFIX + key, value)
    # one rule: the label and a count of 1; none: neither label
    one = dict(labels(evaluate(node(driver="470.82.01"), matrix)))
    assert one["tfcompat.rules"] == "TFC201" and one["tfcompat.rules-count"] == "1"
    assert "tfcompat.rules" not in dict(labels(evaluate(node(), matrix)))


def test_nfd_file_expires_twice_the_daemonset_interval_after_the_facts(matrix, monkeypatch):
    """A node whose checker died must not keep compatible=true: the file's first line is NFD's expiry directive,
    the facts' collection time plus TFCOMPAT_NFD_EXPIRY seconds (default 1800, twice the DaemonSet's 900 s)."""
    import datetime

    monkeypatch.delenv("TFCOMPAT_NFD_EXPIRY", raising=False)
    report = evaluate(node(), matrix)  # environment.created 2026-11-25T00:00:00Z
    assert DEFAULT_EXPIRY_SECONDS == 1800
    assert render_nfd(report).splitlines()[0] == "# +expiry-time=2026-11-25T00:30:00Z"
    monkeypatch.setenv("TFCOMPAT_NFD_EXPIRY", "7200")
    assert render_nfd(report).splitlines()[0] == "# +expiry-time=2026-11-25T02:00:00Z"
    monkeypatch.setenv("TFCOMPAT_NFD_EXPIRY", "0")  # asked for: labels that never expire
    assert render_nfd(report).startswith(PREFIX)
    monkeypatch.setenv("TFCOMPAT_NFD_EXPIRY", "soon")  # not a number: the default
    assert render_nfd(report).splitlines()[0] == "# +expiry-time=2026-11-25T00:30:00Z"
    # no collection time (could not decide): from the render time
    now = datetime.datetime(2026, 12, 7, 21, 0, 0, 123, tzinfo=datetime.timezone.utc)
    assert render_nfd(error_report("x"), expiry=60, now=now).splitlines()[0] == "# +expiry-time=2026-12-07T21:01:00Z"
    # a created time in another zone is converted; one at the end of time does not overflow
    late = dataclasses.replace(node(), created="2026-11-25T01:00:00+01:00")
    assert render_nfd(evaluate(late, matrix), expiry=1800).splitlines()[0] == "# +expiry-time=2026-11-25T00:30:00Z"
    end = dataclasses.replace(node(), created="9999-12-31T23:59:00Z")
    assert render_nfd(evaluate(end, matrix), expiry=1800).splitlines()[0] == "# +expiry-time=9999-12-31T23:59:59Z"


def test_nfd_cli_writes_the_expiry_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("TFCOMPAT_NFD_EXPIRY", raising=False)
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(to_json_dict(node())))
    with pytest.raises(SystemExit) as exc:
        main(["check", "--from", str(snap), "-f", "nfd"])
    out, _ = capsys.readouterr()
    assert exc.value.code == 0 and EXPIRY_LINE.match(out.splitlines()[0]) and out.splitlines()[1].startswith(PREFIX)
