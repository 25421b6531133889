"""GPU rules on the architectures read from TF's own CUDA objects (TFC205/TFC206 where build_info.py states none),
and TFC210 where build_info.py and the objects disagree. Each case comes from a documented public failure."""

import dataclasses

from envs import make_env, run_rule, tf_build

from tfcompat.model import Gpu, Severity

# What cuobjdump showed in TF 2.3.1's GPU build (tensorflow/tensorflow#46537): SASS for 3.5, 3.7, 5.2, 6.0, 6.1,
# 7.0 and PTX for 7.0.
TF231_BINARY = ("sm_35", "sm_37", "sm_52", "sm_60", "sm_61", "sm_70", "compute_70")
# Read from the real tensorflow==2.21.0 wheel (tests/project/test_realwheel_fatbin.py checks it).
TF221_BINARY = ("sm_60", "sm_70", "sm_80", "sm_89", "sm_90", "compute_90")
SOURCE = "/venv/lib/python3.11/site-packages/tensorflow/libtensorflow_framework.so.2"


def gpu(i, name, cc):
    return Gpu(i, name, f"GPU-{i:08x}-0000-0000-0000-000000000000", f"00000000:{0x18 + i:02X}:00.0", cc, 16000)


def env_with(version, stated, binary, gpus, driver="575.57.08"):
    build = dataclasses.replace(
        tf_build(version),
        compute_capabilities=stated,
        binary_capabilities=binary,
        binary_capabilities_source=SOURCE if binary else None,
    )
    return make_env(version, tf_builds=[build], driver=driver, gpus=gpus)


def test_cc_50_gpu_on_tf_2_3_1_from_the_binaries(matrix):
    """https://github.com/tensorflow/tensorflow/issues/46537: TF 2.3.1 crashes on a compute capability 5.0 GPU with
    "no kernel image is available for execution on the device"; the user needed cuobjdump to see that the build
    has SASS for 3.5 ... 7.0 but not 5.0 (5.2 SASS does not run on 5.0, 7.0 PTX does not JIT down). With build_info
    silent, TFC206 judges by the entries read from the objects and says where they came from."""
    env = env_with("2.3.1", (), TF231_BINARY, [gpu(0, "GeForce GTX 960M", "5.0"), gpu(1, "Tesla V100", "7.0")])
    (f,), _ = run_rule(env, matrix, "TFC206")
    assert f.severity is Severity.ERROR and "GPU 0 (GeForce GTX 960M" in f.message and "no kernel image" in f.message
    (ev,) = [e for e in f.evidence if e.fact == "tensorflow binary compute capabilities"]
    assert ev.value == " ".join(TF231_BINARY) and ev.source == f"read from the SASS/PTX entries of {SOURCE}"
    assert "CUDA_VISIBLE_DEVICES=GPU-00000001" in f.remediation
    assert run_rule(env, matrix, "TFC205")[0] == []


def test_titan_v_on_a_source_build_with_configure_defaults_jits(matrix):
    """https://github.com/tensorflow/benchmarks/issues/105: TF master built from source (CUDA 9) stalls 3-4 minutes
    on a Titan V (7.0); the user could not tell which architectures the build had. configure.py's default then
    was TF_CUDA_COMPUTE_CAPABILITIES=3.5,5.2 (tensorflow/tensorflow:configure.py), which nvcc builds as SASS and
    PTX for each: a 7.0 GPU JIT-compiles compute_52 PTX at start-up (TFC205)."""
    binary = ("sm_35", "sm_52", "compute_35", "compute_52")
    env = env_with("1.5.0", (), binary, [gpu(0, "TITAN V", "7.0")])
    (f,), _ = run_rule(env, matrix, "TFC205")
    assert f.severity is Severity.WARNING and "compute_52 PTX" in f.message
    assert any(e.source.startswith("read from the SASS/PTX entries of") for e in f.evidence)


def test_ptx_in_a_binary_is_not_sass(matrix):
    """In build_info compute_XY also means SASS for XY; in a binary's entries it is PTX alone: a 7.5 GPU with only
    compute_70 PTX JITs (TFC205), where build_info's reading would have called it native."""
    env = env_with("2.2.0", (), ("sm_52", "compute_70"), [gpu(0, "Tesla T4", "7.5")])
    (f,), _ = run_rule(env, matrix, "TFC205")
    assert "from compute_70 PTX" in f.message
    stated = env_with("2.2.0", ("sm_52", "compute_70"), (), [gpu(0, "Tesla T4", "7.5")])
    assert run_rule(stated, matrix, "TFC205")[0] == []


def test_no_list_anywhere_skips(matrix):
    env = env_with("2.2.0", (), (), [gpu(0, "Tesla T4", "7.5")])
    _, (skip,) = run_rule(env, matrix, "TFC206")
    assert "none were read from its CUDA objects" in skip.reason


def test_real_221_lists_agree(matrix):
    """The real TF 2.21 wheel: build_info's compute_90 is SASS and PTX for 9.0, which its objects carry."""
    env = env_with("2.21.0", ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90"), TF221_BINARY, [gpu(0, "H100", "9.0")])
    findings, skips = run_rule(env, matrix, "TFC210")
    assert findings == [] and skips == []


def test_build_info_claiming_kernels_the_objects_lack(matrix):
    """tensorflow/tensorflow#46537 seen the other way round: had the build's build_info.py stated sm_50 (as a build
    configured with 5.0 says), its objects (the entries cuobjdump listed) would still lack it: a 5.0 GPU that the
    GPU rules judge native by build_info gets "no kernel image" (error); without GPUs, a warning."""
    stated = ("sm_35", "sm_50", "sm_60", "sm_70", "compute_70")
    env = env_with("2.3.1", stated, TF231_BINARY, [gpu(0, "GeForce GTX 960M", "5.0")])
    (f,), _ = run_rule(env, matrix, "TFC210")
    assert f.severity is Severity.ERROR
    assert "stated but not in the binaries: sm_50" in f.message
    assert "in the binaries but not stated: sm_37 sm_52 sm_61" in f.message
    assert "native by build_info (sm_50), none by the binaries (no kernels)" in f.message
    assert SOURCE in f.message
    (f,), _ = run_rule(env_with("2.3.1", stated, TF231_BINARY, []), matrix, "TFC210")
    assert f.severity is Severity.WARNING and "GPU" not in f.message


def test_binaries_carrying_more_is_information(matrix):
    env = env_with("2.21.0", ("sm_60", "sm_70", "sm_80", "compute_90"), TF221_BINARY, [gpu(0, "L4", "8.9")])
    (f,), _ = run_rule(env, matrix, "TFC210")
    assert f.severity is Severity.INFO and "in the binaries but not stated: sm_89" in f.message
    assert "native by build_info (sm_80), native by the binaries" not in f.message  # same kind: no GPU note


def test_tfc210_not_applicable_without_binary_entries(matrix):
    env = env_with("2.21.0", ("sm_60", "compute_90"), (), [])
    _, (skip,) = run_rule(env, matrix, "TFC210")
    assert "not read for a wheel that pip or uv installed" in skip.reason
    _, (skip,) = run_rule(env_with("2.2.0", (), TF231_BINARY, []), matrix, "TFC210")
    assert "states no compute capabilities" in skip.reason


def test_binary_fields_round_trip_and_validate(matrix):
    """The two TensorFlowBuild fields survive a snapshot and the report schema accepts them (an old snapshot,
    without them, still decodes: they have defaults)."""
    import json

    import jsonschema

    from tfcompat.model import environment_from_json, to_json_dict
    from tfcompat.render.json import schema_text
    from tfcompat.rules import evaluate

    env = env_with("2.3.1", (), TF231_BINARY, [gpu(0, "GeForce GTX 960M", "5.0")])
    data = json.loads(json.dumps(to_json_dict(env)))
    assert environment_from_json(data) == env
    report = to_json_dict(evaluate(env, matrix))
    jsonschema.validate(report, json.loads(schema_text()))
    for tf in data["target"]["tensorflow"]:
        del tf["binary_capabilities"], tf["binary_capabilities_source"]
    assert environment_from_json(data).tensorflow.binary_capabilities == ()


# -- the branches the mutation run found unguarded (2026-12-07) ------------------------------------------------


def test_entries_are_read_as_tf_build_rules_write_them():
    """build_info's "compute_70" is SASS and PTX for 7.0; an entry that is not an architecture name (configure's
    "3.5" form) is ignored, not a crash; a binary entry that does not parse is not counted."""
    from tfcompat.rules.binaries import carried_entries, stated_entries

    assert stated_entries(("3.5", "sm_60", "compute_70")) == {"sm_60", "sm_70", "compute_70"}
    assert carried_entries(("sm_80", "sm_", "compute_90")) == {"sm_80", "compute_90"}


def test_missing_entries_are_listed_sass_first_by_architecture(matrix):
    """The message lists SASS before PTX, each by architecture (7.0 < 7.5 < 8.0), as cuobjdump users read them."""
    env = env_with("2.3.1", ("sm_75", "sm_80", "compute_70"), ("sm_60",), [])
    (f,), _ = run_rule(env, matrix, "TFC210")
    assert "stated but not in the binaries: sm_70 sm_75 sm_80 compute_70" in f.message


def test_a_gpu_without_a_compute_capability_and_no_build_info_path(matrix):
    """NVML gave no compute capability for a GPU: it is left out of the per-GPU notes (the stated/binary
    difference is still reported); a build without a build_info.py path names "?" as the source."""
    env = env_with("2.3.1", ("sm_35", "sm_50", "sm_60", "sm_70", "compute_70"), TF231_BINARY, [gpu(0, "GPU", None)])
    tf = dataclasses.replace(env.target.tensorflow[0], build_info_path=None)
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, tensorflow=(tf,)))
    (f,), _ = run_rule(env, matrix, "TFC210")
    assert f.severity is Severity.WARNING and "GPU" not in f.message
    ev = next(e for e in f.evidence if e.fact == "tensorflow build compute capabilities")
    assert ev.source == "?"
