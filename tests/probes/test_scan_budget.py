"""--budget (#17 item 3): the probes not finished within the scan's wall-clock budget become unknowns with
that reason, the rules that need them are skipped, and the check still gives a verdict for the rest.

No test here waits: a fake clock stands in for time, and slow probes are monkeypatched ones that move it.
"""

import pytest
from probe_helpers import make_dist, write
from test_libraries import SITE, make_image

from tfcompat import scan as scan_mod
from tfcompat.engine import evaluate
from tfcompat.probes import custom_ops as custom_ops_mod
from tfcompat.probes import libraries as libraries_mod
from tfcompat.probes import nvidia as nvidia_mod
from tfcompat.probes.budget import DEFAULT_BUDGET, Budget
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.target import TargetSpec

REASON = "not finished within the --budget of 10 s"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_budget_arithmetic(clock):
    b = Budget(10, clock=clock)
    assert not b.expired() and b.left() == 10 and b.cap(3) == 3
    clock.now += 8
    assert b.cap(5) == pytest.approx(2)
    clock.now += 2
    assert b.expired() and b.left() == 0 and b.cap(5) == 0
    assert b.reason == REASON
    assert Budget(None).left() is None and not Budget(None).expired() and Budget(None).cap(7) == 7
    assert Budget(2.5, clock=clock).reason == "not finished within the --budget of 2.5 s"


def slow(fn, clock, seconds):
    """`fn`, made to take `seconds` of the fake clock."""

    def wrapper(*a, **kw):
        clock.now += seconds
        return fn(*a, **kw)

    return wrapper


def test_probes_after_a_slow_one_become_unknowns_and_their_rules_are_skipped(tmp_path, clock, monkeypatch, matrix):
    make_image(tmp_path)
    monkeypatch.setattr(scan_mod, "probe_platform", slow(scan_mod.probe_platform, clock, 11))
    called = []
    for name in ("probe_libraries", "probe_custom_ops", "probe_nvidia", "probe_rocm", "probe_resources"):
        monkeypatch.setattr(scan_mod, name, lambda *a, _n=name, **kw: called.append(_n))
    env = scan_mod.scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False, budget=Budget(10, clock=clock)
    )
    assert called == []  # not started
    assert env.tensorflow is not None and env.tensorflow.version == "2.21.0"  # finished before: kept
    late = {u.fact: u.reason for u in env.unknowns if u.reason == REASON}
    assert set(late) == {
        "libraries",
        "custom_ops",
        "provenance",
        "libtensorflow",
        "driver",
        "gpus",
        "rocm",
        "tensorflow.rocm_objects",
        "resources",
    }
    assert env.target.native is None and env.host.driver is None and env.host.resources is None
    from tfcompat.rules import catalog

    report = evaluate(env, matrix, catalog())
    assert report.exit_code in (0, 1) and report.status in ("pass", "fail")  # a verdict, not an error
    skipped = {s.rule: s.reason for s in report.skipped}
    by_fact = {"libraries": "TFC3", "driver": "TFC2", "resources.shm": "TFC801"}
    for fact, prefix in by_fact.items():
        assert any(rule.startswith(prefix) and REASON in reason for rule, reason in skipped.items()), (fact, skipped)
    assert any(rule.startswith("TFC5") and REASON in reason for rule, reason in skipped.items())  # custom ops
    judged = {r.id for r in catalog() if r.scope == "environment"} - {s.rule for s in report.skipped}
    assert len(judged) >= 5, judged  # the rules on TensorFlow and its packages still ran


def test_a_budget_spent_before_the_packages_leaves_every_probe_unknown(tmp_path, clock, monkeypatch):
    make_image(tmp_path)
    monkeypatch.setattr(scan_mod, "resolve_target", slow(scan_mod.resolve_target, clock, 60))
    env = scan_mod.scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False, probe=True, budget=Budget(10, clock=clock)
    )
    late = {u.fact for u in env.unknowns if u.reason == REASON}
    assert late == {
        "packages",
        "tensorflow",
        "conda",
        "platform",
        "libraries",
        "custom_ops",
        "provenance",
        "libtensorflow",
        "driver",
        "gpus",
        "rocm",
        "resources",
        "probe",
    }
    assert env.target.packages == () and env.target.python is not None


def test_libraries_stop_between_lookups(tmp_path, clock, monkeypatch):
    make_image(tmp_path)
    real = libraries_mod._Probe.resolve
    calls = []

    def resolve(self, *a, **kw):
        calls.append(a[0].soname)
        clock.now += 4
        return real(self, *a, **kw)

    monkeypatch.setattr(libraries_mod._Probe, "resolve", resolve)
    env = scan_mod.scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False, budget=Budget(10, clock=clock)
    )
    assert len(calls) == 3  # 4 s each: the fourth would start after the budget
    assert [lib.soname for lib in env.target.native.libraries] == calls
    (u,) = [u for u in env.unknowns if u.fact == "libraries"]
    assert u.reason.startswith(REASON + ": ") and "libraries not looked up" in u.reason


def _plugins(site, n):
    from elf_fixtures import write_so

    for i in range(n):
        info = make_dist(site, f"ops{i}", "1.0")
        write_so(f"{site}/ops{i}/_op.so", soname=None, needed=("libtensorflow_framework.so.2",))
        write(f"{info}/RECORD", f"ops{i}/_op.so,,\n")


def test_custom_ops_stop_between_plugins(tmp_path, clock, monkeypatch):
    site = make_image(tmp_path)
    _plugins(site, 4)
    real = custom_ops_mod.CustomOpChecker.check

    def check(self, owner, path):
        clock.now += 4
        return real(self, owner, path)

    monkeypatch.setattr(custom_ops_mod.CustomOpChecker, "check", check)
    env = scan_mod.scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False, budget=Budget(10, clock=clock)
    )
    assert len(env.target.custom_ops) == 3
    (u,) = [u for u in env.unknowns if u.fact == "custom_ops"]
    assert u.reason.startswith(REASON + ": 1 of 4 plugins not checked")


def test_custom_ops_stop_between_packages(tmp_path, clock, monkeypatch):
    site = make_image(tmp_path)
    _plugins(site, 4)
    real = custom_ops_mod.record_files

    def record_files(pkg, root, **kw):
        clock.now += 4
        return real(pkg, root, **kw)

    monkeypatch.setattr(custom_ops_mod, "record_files", record_files)
    env = scan_mod.scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False, budget=Budget(30, clock=clock)
    )
    reasons = [u.reason for u in env.unknowns if u.fact == "custom_ops"]
    assert any("packages were not looked at" in r for r in reasons), reasons
    assert env.target.custom_ops == ()  # found ones are not checked after the budget either


def test_nvml_gets_what_is_left_and_is_not_called_hung(clock, monkeypatch, tmp_path):
    proc = tmp_path / "version"
    write(proc, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n")
    seen = {}

    def child(python, env, timeout):
        seen["timeout"] = timeout
        clock.now += timeout
        return None, f"NVML did not answer within {timeout:.0f} s (driver hung?)", None

    monkeypatch.setattr(nvidia_mod, "_nvml_child", child)
    budget = Budget(10, clock=clock)
    clock.now += 7
    from tfcompat.probes.rootfs import Root

    _driver, _gpus, unknowns = nvidia_mod.probe_nvidia(
        Root(None), proc_version=str(proc), budget=budget, driver_sonames=()
    )
    assert seen["timeout"] == pytest.approx(3)
    reasons = {u.fact: u.reason for u in unknowns}
    assert "hung" not in reasons["gpus"] and REASON in reasons["gpus"]


def test_probe_child_stopped_by_the_budget_is_not_a_hang(tmp_path, clock, monkeypatch):
    make_image(tmp_path)
    seen = {}

    class Timeout:
        outcome = "timeout"

    def probe_import(root, python, builds, timeout, environ):
        seen["timeout"] = timeout
        clock.now += timeout
        return Timeout(), []

    monkeypatch.setattr(scan_mod, "probe_import", probe_import)
    monkeypatch.setattr(scan_mod, "probe_rocm", slow(scan_mod.probe_rocm, clock, 6))
    env = scan_mod.scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)),
        nvml=False,
        probe=True,
        probe_timeout=120,
        budget=Budget(10, clock=clock),
    )
    assert seen["timeout"] == pytest.approx(4)
    assert env.probe is None
    (u,) = [u for u in env.unknowns if u.fact == "probe"]
    assert u.reason.startswith(REASON)


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], DEFAULT_BUDGET),
        (["--budget", "25"], 25.0),
        (["--probe", "--probe-timeout", "30"], DEFAULT_BUDGET + 30),
        (["--probe", "--budget", "45"], 45.0),
    ],
)
@pytest.mark.parametrize("command", ["check", "scan"])
def test_cli_budget_option(tmp_path, capsys, monkeypatch, command, argv, expected):
    from tfcompat.cli import main

    seen = {}
    real = scan_mod.scan

    def scan(spec, **kw):
        seen["budget"] = kw["budget"]
        return real(spec, **{**kw, "probe": False})

    monkeypatch.setattr(scan_mod, "scan", scan)
    make_dist(tmp_path / "site", "tensorflow", "2.21.0")
    with pytest.raises(SystemExit) as exc:
        main([command, "--site-packages", str(tmp_path / "site"), "--no-nvml", *argv])
    assert exc.value.code in (0, 1), capsys.readouterr().err
    assert seen["budget"].seconds == expected


def test_cli_budget_must_be_positive(capsys):
    from tfcompat.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["check", "--budget", "0"])
    assert exc.value.code == 2
