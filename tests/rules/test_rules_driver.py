import pytest
from envs import make_env, run_rule, tf_build

from tfcompat.model import Severity


@pytest.mark.parametrize(
    "driver, severity, floor",
    [
        ("470.82.01", Severity.ERROR, "525.60.13"),  # below the CUDA 12 floor
        ("550.54.15", Severity.WARNING, "555.42.06"),  # CUDA 12.5.1's own driver is newer
    ],
)
def test_driver_too_old_for_221(matrix, driver, severity, floor):
    (f,), _ = run_rule(make_env("2.21.0", driver=driver), matrix, "TFC201")
    assert f.severity is severity
    assert driver in f.message and floor in f.message and "12.5.1" in f.message
    sources = {e.fact: e.source for e in f.evidence}
    assert sources["driver.version"] == "/proc/driver/nvidia/version"
    assert sources["tensorflow build CUDA"].endswith("build_info.py")
    assert any(s.startswith("https://docs.nvidia.com/") for s in sources.values())


@pytest.mark.parametrize("driver", ["555.42.06", "580.95.05"])
def test_new_enough_driver(matrix, driver):
    assert run_rule(make_env("2.21.0", driver=driver), matrix, "TFC201")[0] == []


def test_cuda11_build_on_r450(matrix):
    # TF 2.14 (CUDA 11.8) on 450.80.02 runs under minor-version compatibility
    (f,), _ = run_rule(make_env("2.14.0", driver="450.80.02"), matrix, "TFC201")
    assert f.severity is Severity.WARNING and "520.61.05" in f.message
    (f,), _ = run_rule(make_env("2.14.0", driver="440.33.01"), matrix, "TFC201")
    assert f.severity is Severity.ERROR and "450.80.02" in f.message


def test_cpu_build_not_applicable(matrix):
    env = make_env(tf_builds=[tf_build("2.21.0", distribution="tensorflow-cpu", is_cuda=False)], driver="470.82.01")
    findings, (skip,) = run_rule(env, matrix, "TFC201")
    assert findings == [] and "not a CUDA build" in skip.reason


def test_no_driver_skips_with_reason(matrix):
    findings, (skip,) = run_rule(make_env("2.21.0"), matrix, "TFC201")
    assert findings == [] and skip.reason == "driver unknown: no NVIDIA driver on this node (test)"


def test_cuda_11_0_build_has_its_own_floor(matrix):
    # CUDA 11.0 shipped with 450.51.05, below the 11.x minor-version-compatibility floor 450.80.02
    env = make_env(tf_builds=[tf_build("2.21.0", cuda="11.0")], driver="450.51.06")
    import dataclasses

    env = dataclasses.replace(
        env,
        target=dataclasses.replace(
            env.target, tensorflow=(dataclasses.replace(env.target.tensorflow[0], version="2.4.4"),)
        ),
    )
    assert run_rule(env, matrix, "TFC201")[0] == []
    env = dataclasses.replace(
        env,
        host=dataclasses.replace(
            env.host, driver=dataclasses.replace(env.host.driver, kernel_module_version="440.33.01")
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC201")
    assert f.severity is Severity.ERROR and "450.51.05" in f.message


def test_build_cuda_missing_falls_back_to_matrix(matrix):
    env = make_env(tf_builds=[tf_build("2.15.1", cuda=None)], driver="530.30.02")
    (f,), _ = run_rule(env, matrix, "TFC201")
    assert "12.2" in f.message and "535.54.03" in f.message
    assert any("in the matrix" in e.source for e in f.evidence)
