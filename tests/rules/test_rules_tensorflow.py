from envs import make_env, pkg, run_rule, tf_build

from tfcompat.model import Severity, Unknown


def test_clean_221_env_has_no_findings(matrix):
    from tfcompat.rules import evaluate

    report = evaluate(make_env("2.21.0"), matrix)
    assert report.findings == ()
    assert report.status == "pass" and report.exit_code == 0
    # the driver and GPU rules are skipped with the probe's reason, not silently dropped
    skips = {s.rule: s.reason for s in report.skipped}
    assert skips["TFC201"] == "driver unknown: no NVIDIA driver on this node (test)"
    assert skips["TFC205"].startswith("gpus unknown")
    assert all(r.startswith(("TFC2", "TFC3", "TFC4", "TFC8")) for r in skips), skips


def test_tf_not_found_blocks_the_verdict(matrix):
    from tfcompat.rules import evaluate

    report = evaluate(make_env(tf=None), matrix)
    assert report.status == "error" and report.exit_code == 2
    (f,) = [f for f in report.findings if f.rule == "TFC100"]
    assert "no TensorFlow distribution installed in /venv/lib/python3.11/site-packages" in f.message
    assert any(e.value.startswith("/venv/bin/python") for e in f.evidence)
    assert "--python" in f.remediation
    # every TF rule is skipped with the reason
    skipped = {s.rule for s in report.skipped}
    assert {"TFC101", "TFC102", "TFC103", "TFC104", "TFC105", "TFC201"} <= skipped


def test_tf_not_found_waived_is_not_an_error(matrix):
    from tfcompat.rules import evaluate

    report = evaluate(make_env(tf=None), matrix, ignore={"TFC100": "CPU-only image, TF added later"})
    assert report.exit_code == 0
    assert report.findings[0].waived == "CPU-only image, TF added later"


def test_conflicting_distributions(matrix):
    env = make_env(tf_builds=[tf_build("2.21.0"), tf_build("2.15.1", distribution="tensorflow-cpu")])
    (f,), _ = run_rule(env, matrix, "TFC101")
    assert f.severity is Severity.ERROR
    assert "tensorflow 2.21.0" in f.message and "tensorflow-cpu 2.15.1" in f.message
    assert "pip uninstall -y tensorflow tensorflow-cpu" in f.remediation


def test_wrapper_distribution_is_not_a_conflict(matrix):
    # tensorflow on Windows / old aarch64 is a wrapper that requires tensorflow-intel / tensorflow-cpu-aws ==same
    wrapper = pkg("tensorflow", "2.15.1", ["tensorflow-cpu-aws==2.15.1"])
    env = make_env(tf_builds=[tf_build("2.15.1", distribution="tensorflow-cpu-aws")], extra=[wrapper])
    findings, _ = run_rule(env, matrix, "TFC101")
    assert findings == []


def test_shadowed_tf_copy_is_a_warning(matrix):
    shadow = pkg("tensorflow", "2.15.1", location="/usr/lib/python3/dist-packages")
    (f,), _ = run_rule(make_env("2.21.0", shadowed=[shadow]), matrix, "TFC101")
    assert f.severity is Severity.WARNING
    assert "/usr/lib/python3/dist-packages" in f.message and "2.15.1" in f.message


def test_python_wheel_tag_mismatch(matrix):
    (f,), _ = run_rule(make_env("2.21.0", python="3.12.1"), matrix, "TFC102")
    assert f.severity is Severity.ERROR
    assert "CPython 3.11" in f.message and "3.12.1" in f.message


def test_python_requires_python(matrix):
    # a py3-none wheel (no cp tag) falls back to Requires-Python (>=3.10 for 2.21)
    env = make_env(tf_builds=[tf_build("2.21.0", tags=("py3-none-any",))], python="3.9.18")
    (f,), _ = run_rule(env, matrix, "TFC102")
    assert "requires Python >=3.10" in f.message


def test_python_outside_matrix_range_is_warning(matrix):
    env = make_env(tf_builds=[tf_build("2.15.1", tags=())], python="3.12.1")
    (f,), _ = run_rule(env, matrix, "TFC102")
    assert f.severity is Severity.WARNING and "(<3.12,>=3.9)" in f.message


def test_python_version_unknown_skips(matrix):
    env = make_env("2.21.0", python=None, unknowns=[Unknown("python.version", "no interpreter was run")])
    findings, (skip,) = run_rule(env, matrix, "TFC102")
    assert findings == [] and "no interpreter was run" in skip.reason


def test_protobuf_too_new(matrix):
    (f,), _ = run_rule(make_env("2.15.1", packages={"protobuf": "5.27.0"}), matrix, "TFC103")
    assert "protobuf" in f.message and "5.27.0" in f.message
    assert f.remediation.startswith('pip install "protobuf')


def test_missing_keras(matrix):
    (f,), _ = run_rule(make_env("2.21.0", packages={"keras": None}), matrix, "TFC103")
    assert "keras>=3.12.0, which is not installed" in f.message


def test_extra_requirements_are_not_demanded(matrix):
    # nvidia-cudnn-cu12 is behind the and-cuda extra: not a finding when absent
    findings, _ = run_rule(make_env("2.21.0"), matrix, "TFC106")
    assert findings == []


def test_minor_requirement_is_info(matrix):
    (f,), _ = run_rule(make_env("2.21.0", packages={"absl-py": "0.9.0"}), matrix, "TFC106")
    assert f.severity is Severity.INFO and "absl-py" in f.message


def test_numpy2_on_numpy1_build_reported_once(matrix):
    env = make_env("2.15.1", packages={"numpy": "2.1.3"})
    (f,), _ = run_rule(env, matrix, "TFC105")
    assert "NumPy 2.1.3" in f.message and "tensorflow 2.15.1" in f.message
    assert "numpy<2" in f.remediation
    # TFC103 leaves numpy to TFC105
    assert run_rule(env, matrix, "TFC103")[0] == []


def test_numpy2_where_metadata_has_no_upper_bound(matrix):
    # 2.14.0 declares numpy>=1.23.5 without a cap: metadata is satisfied, the ABI is not
    env = make_env("2.14.0", packages={"numpy": "2.0.0"})
    (f,), _ = run_rule(env, matrix, "TFC105")
    assert "2.14.0" in f.message


def test_numpy2_on_numpy2_build_is_fine(matrix):
    assert run_rule(make_env("2.21.0", packages={"numpy": "2.4.0"}), matrix, "TFC105")[0] == []


def test_numpy_rule_skips_for_release_unknown_to_matrix(matrix):
    env = make_env(tf_builds=[tf_build("2.99.0")])
    findings, (skip,) = run_rule(env, matrix, "TFC105")
    assert findings == [] and "2.99.0" in skip.reason


def test_companion_pinned_to_other_minor(matrix):
    text = pkg(
        "tensorflow-text",
        "2.20.1",
        ["tensorflow<2.21,>=2.20.0; platform_machine != 'arm64' or platform_system != 'Darwin'"],
    )
    tfk = pkg("tf-keras", "2.21.0", ["tensorflow<2.22,>=2.21"])
    findings, _ = run_rule(make_env("2.21.0", extra=[text, tfk]), matrix, "TFC104")
    assert len(findings) == 1
    assert "tensorflow-text 2.20.1 requires tensorflow<2.21,>=2.20.0" in findings[0].message
    assert "2.21.*" in findings[0].remediation


def test_companion_marker_for_other_platform_is_ignored(matrix):
    mac_only = pkg("some-ext", "1.0", ['tensorflow<2.0; sys_platform == "darwin"'])
    assert run_rule(make_env("2.21.0", extra=[mac_only]), matrix, "TFC104")[0] == []


def test_matrix_stale_for_unknown_release(matrix):
    (f,), _ = run_rule(make_env(tf_builds=[tf_build("2.99.0")]), matrix, "TFC109")
    assert f.severity is Severity.INFO and "no entry for tensorflow 2.99.0" in f.message


def test_matrix_disagrees_with_build(matrix):
    env = make_env(tf_builds=[tf_build("2.21.0", cuda="11.8")])
    (f,), _ = run_rule(env, matrix, "TFC109")
    assert "CUDA 11.8" in f.message and "12.5.1" in f.message


def test_matrix_disagrees_on_cudnn_major(matrix):
    import dataclasses

    b = dataclasses.replace(tf_build("2.21.0"), cudnn_version="8")
    (f,), _ = run_rule(make_env(tf_builds=[b]), matrix, "TFC109")
    assert "cuDNN 8" in f.message and "9.3" in f.message


# tensorflow-probability: its import checks the TF version (0.25: >= 2.18) and imports tf_keras, but its
# Requires-Dist (the `tf` extra) says only tensorflow>=2.16: the matrix's [[companion]] rows judge it.
TFP_025 = ('tensorflow>=2.16; extra == "tf"', 'tf-keras>=2.16; extra == "tf"', "numpy>=1.13.3")


def test_tfp_025_on_tf_217_is_an_error(matrix):
    tfp = pkg("tensorflow-probability", "0.25.0", TFP_025)
    tfk = pkg("tf-keras", "2.17.0", ["tensorflow<2.18,>=2.17"])
    (f,), _ = run_rule(make_env(tf_builds=[tf_build("2.17.1")], extra=[tfp, tfk]), matrix, "TFC104")
    assert f.severity is Severity.ERROR
    assert "tensorflow-probability 0.25.0 needs TensorFlow >=2.18" in f.message and "2.17.1" in f.message
    assert any("tensorflow-probability/0.25.0" in e.source for e in f.evidence)


def test_tfp_025_on_tf_218_with_tf_keras_is_clean(matrix):
    from tfcompat.rules import evaluate

    tfp = pkg("tensorflow-probability", "0.25.0", TFP_025)
    tfk = pkg("tf-keras", "2.18.0", ["tensorflow<2.19,>=2.18"])
    env = make_env(tf_builds=[tf_build("2.18.1")], extra=[tfp, tfk])
    assert run_rule(env, matrix, "TFC104")[0] == []
    report = evaluate(env, matrix)
    assert [f for f in report.findings if f.severity is Severity.ERROR] == []


def test_tfp_025_without_tf_keras_is_an_error(matrix):
    tfp = pkg("tensorflow-probability", "0.25.0", TFP_025)
    (f,), _ = run_rule(make_env(tf_builds=[tf_build("2.18.1")], extra=[tfp]), matrix, "TFC104")
    assert "imports tf-keras" in f.message and "not installed" in f.message
    assert "2.18.*" in f.remediation


def test_tfp_023_on_tf_215_is_clean(matrix):
    tfp = pkg("tensorflow-probability", "0.23.0", ["numpy>=1.13.3"])
    assert run_rule(make_env("2.15.1", extra=[tfp]), matrix, "TFC104")[0] == []


def test_tf_keras_2150_on_python_38_is_clean(matrix):
    from tfcompat.rules import evaluate

    # tf-keras 2.15.0 says Requires-Python >=3.8 (its wheel) and no TF requirement; TF 2.13 supports 3.8
    tfk = pkg("tf-keras", "2.15.0", requires_python=">=3.8")
    env = make_env(tf_builds=[tf_build("2.13.1")], extra=[tfk], python="3.8.18")
    report = evaluate(env, matrix)
    assert [f for f in report.findings if "tf-keras" in f.message] == []
    (row,) = [c for c in matrix.companions if c.package == "tf-keras" and c.versions.contains("2.15.0")]
    assert row.python is not None and row.python.contains("3.8") and row.tensorflow is None
