"""`tfcompat matrix ...` end to end, and the overlay on `tfcompat check`: the real console entry point."""

import json

import pytest

from tfcompat.cli import main
from tfcompat.matrix import default_matrix_path


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def ask(capsys, *argv):
    code, out, err = run(capsys, "matrix", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


# the legacy releases (issue 14): tests/matrix/test_matrix.py LEGACY_RELEASES
LEGACY = ["1.5.0", "1.5.1", "1.6.0", "1.7.0", "1.7.1", "1.8.0", "1.9.0", "1.10.0", "1.10.1", "1.11.0"]
LEGACY += ["1.12.0", "1.12.2", "1.12.3", "1.13.1", "1.13.2", "1.14.0", "1.15.0", "1.15.2", "1.15.3", "1.15.4", "1.15.5"]
LEGACY += ["2.0.0", "2.0.1", "2.0.2", "2.0.3", "2.0.4", "2.1.0", "2.1.1", "2.1.2", "2.1.3", "2.1.4"]
LEGACY += ["2.2.0", "2.2.1", "2.2.2", "2.2.3", "2.3.0", "2.3.1", "2.3.2", "2.3.3", "2.3.4"]

# Facts picked from the fact sheet (../shared/facts/compat_facts.md), each as the sheet states it.
FACTS = [
    # §1a tested builds: 2.15 -> CUDA 12.2 / cuDNN 8.9
    (("tensorflow", "2.15"), "cuda", "==", "12.2"),
    (("tensorflow", "2.15"), "cudnn", "==", "8.9"),
    (("tensorflow", "2.15"), "version", "==", "2.15.1"),
    # §0.2: TF 2.4 (CUDA 11.0) -> >= 450.51.05; 2.5-2.14 -> 450.80.02 via minor-version compatibility
    (("tensorflow", "2.4"), "min_driver", "==", "450.51.05"),
    (("tensorflow", "2.11.1"), "min_driver", "==", "450.80.02"),
    (("tensorflow", "2.19"), "min_driver", "==", "525.60.13"),
    # §1a Python column
    (("tensorflow", "2.4.0"), "python", "==", ">=3.6,<3.9"),
    (("tensorflow", "2.21"), "python", "==", ">=3.10,<3.14"),
    # §0.5 compute capabilities
    (("tensorflow", "2.17"), "compute_capabilities", "==", ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]),
    (("tensorflow", "2.15.0"), "compute_capabilities", "==", ["sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
    # §3a Requires-Dist
    (("tensorflow", "2.18.0"), "numpy", "==", ">=1.26.0,<2.1.0"),
    (("tensorflow", "2.21"), "protobuf", "==", ">=6.31.1,<8.0.0"),
    (("tensorflow", "2.16"), "keras", "==", ">=3.0.0"),
    (("tensorflow", "2.15.1"), "ml_dtypes", "==", "~=0.3.1"),
    (("tensorflow", "2.13.1"), "keras", "==", ">=2.13.1,<2.14"),
    # §10 glibc floor; §10 C++11 ABI switch at 2.9
    (("tensorflow", "2.21"), "glibc", "==", "2.27"),
    (("tensorflow", "2.20"), "glibc", "==", "2.17"),
    (("tensorflow", "2.8"), "cxx11_abi", "==", 0),
    (("tensorflow", "2.9"), "cxx11_abi", "==", 1),
    # §11 TensorRT
    (("tensorflow", "2.11"), "tensorrt_lib", "==", "libnvinfer.so.7"),
    (("tensorflow", "2.18"), "tensorrt", "==", False),
    # §2a [and-cuda]
    (("tensorflow", "2.14.0"), "and_cuda", "has", ("tensorrt", "==8.5.3.1")),
    (("tensorflow", "2.19.1"), "and_cuda", "has", ("nvidia-cudnn-cu12", "==9.3.0.75")),
    # §5a / §5b drivers
    (("cuda", "12.4"), "min_driver", "==", "550.54.14"),
    (("cuda", "12.4"), "min_driver_compat", "==", "525.60.13"),
    (("cuda", "11.8"), "min_driver", "==", "520.61.05"),
    (("cuda", "11.8"), "min_driver_compat", "==", "450.80.02"),
    (("cuda", "13.2.2"), "label", "==", "CUDA 13.2 Update 2"),
    (("cuda", "13.2.2"), "min_driver", "==", "595.71.05"),
    (("cuda", "13.0"), "min_driver_compat", "==", "580.65.06"),
    (("cuda", "12.6.3"), "min_driver_windows", "==", "561.17"),
    (("cuda", "10.2"), "min_driver", "==", "440.33"),
    (("cuda", "10.2"), "min_driver_compat", "==", None),
    # what a driver runs
    (("driver", "535.54.03"), "tensorflow_full", "in", "2.15.1"),
    (("driver", "535.54.03"), "tensorflow_compat", "in", "2.16.1"),
    (("driver", "535.54.03"), "cuda_none", "in", "13.0.0"),
    (("driver", "470.82.01"), "tensorflow_none", "in", "2.15.0"),
    (("driver", "470.82.01"), "tensorflow_compat", "in", "2.14.1"),
    # (and every legacy release: CUDA 9.0 / 10.0 / 10.1 need 384.81 / 410.48 / 418.39)
    (("driver", "450.51.05"), "tensorflow_full", "==", LEGACY + ["2.4.0", "2.4.1", "2.4.2", "2.4.3", "2.4.4"]),
    # §6c which wheels cover which GPUs
    (("gpu", "8.6"), "native", "in", "2.21.0"),
    (("gpu", "9.0"), "ptx_jit", "in", "2.15.1"),
    (("gpu", "9.0"), "native", "in", "2.16.1"),
    (("gpu", "5.2"), "none", "in", "2.17.0"),
    (("gpu", "5.2"), "native", "in", "2.16.2"),
    (("gpu", "3.7"), "native", "in", "2.14.1"),
    (("gpu", "3.7"), "none", "in", "2.15.0"),
    (("gpu", "sm_120"), "ptx_jit", "in", "2.21.0"),
    (("gpu", "7.5"), "cuda_first", "==", "10.0"),
]


@pytest.mark.parametrize("argv, key, op, expected", FACTS, ids=[f"{' '.join(a)}:{k}" for a, k, _, _ in FACTS])
def test_fact_sheet_facts_come_back(capsys, argv, key, op, expected):
    answer = ask(capsys, *argv)
    if op == "==":
        assert answer[key] == expected
    elif op == "in":
        assert expected in answer[key]
    else:
        name, spec = expected
        assert answer[key][name] == spec


def test_tensorflow_json_has_the_keys_the_issue_names(capsys):
    a = ask(capsys, "tensorflow", "2.15")
    for key in (
        "version",
        "python",
        "cuda",
        "cudnn",
        "compute_capabilities",
        "min_driver",
        "numpy",
        "protobuf",
        "keras",
        "glibc",
        "sources",
    ):
        assert a[key] not in (None, [], ""), key
    assert "https://www.tensorflow.org/install/source#gpu" in a["sources"]
    assert any(s.startswith("https://docs.nvidia.com/") for s in a["sources"])
    assert {o["releases"][0] for o in a["other_entries"]} == {"2.15.0", "2.15.0.post1"}
    assert {c["package"] for c in a["companions"]} >= {"tensorflow-text", "tensorflow-addons"}


def test_patch_release_answers_differ(capsys):
    a, b = ask(capsys, "tensorflow", "2.15.0"), ask(capsys, "tensorflow", "2.15.0.post1")
    assert "tensorrt" in a["and_cuda"] and "tensorrt" not in b["and_cuda"]


def test_cuda_json_keys(capsys):
    a = ask(capsys, "cuda", "12.4")
    assert (a["cuda"], a["update"]) == ("12.4.0", "GA")
    assert [t["cuda"] for t in a["same_minor"]] == ["12.4.0", "12.4.1"]
    assert "Data Center" in a["forward_compatibility"]


def test_cuda_newer_than_the_matrix_answers_with_the_majors_floor(capsys):
    """Issue 15: `tfcompat matrix cuda 13.5` answers while the matrix ends at an older 13.x: every toolkit of a major
    with minor-version compatibility starts on the major's floor driver; its own driver is said to be unrecorded."""
    from tfcompat.matrix import load_matrix

    newest = max(t.version for t in load_matrix().cuda if t.version.major == 13)
    query = f"13.{newest.minor + 3}"
    a = ask(capsys, "cuda", query)
    assert a["known"] is False and a["min_driver"] is None
    assert a["min_driver_floor"] == a["min_driver_compat"] == "580.65.06"
    assert f"up to {newest}" in a["note"]
    code, out, _ = run(capsys, "matrix", "cuda", query)
    assert code == 0 and "not recorded" in out and ">= 580.65.06" in out
    # a major without minor-version compatibility, or an unknown major, still has no answer
    assert run(capsys, "matrix", "cuda", "10.3")[0] == 2
    assert run(capsys, "matrix", "cuda", "14.1")[0] == 2


def test_driver_with_overlay_reports_known_bad(capsys, tmp_path):
    overlay = tmp_path / "site.toml"
    overlay.write_text(SITE_OVERLAY)
    code, out, err = run(capsys, "matrix", "driver", "550.54.15", "--matrix-overlay", str(overlay), "-f", "json")
    assert code == 0, err
    (bad,) = json.loads(out)["known_bad"]
    assert bad["reason"].startswith("Xid 79") and bad["overlay"] == str(overlay)
    assert ask(capsys, "driver", "550.54.15")["known_bad"] == []


@pytest.mark.parametrize(
    "argv, text",
    [
        (("tensorflow", "2.15"), "Linux driver          >= 525.60.13 (starts); >= 535.54.03 for every feature"),
        (("cuda", "11.0"), "starts on             >= 450.51.05"),
        (("driver", "535.54.03"), "TensorFlow, minor-version compat  2.16.1 ... 2.21.0 (10 releases)"),
        (("gpu", "12.0"), "2.16.1 ... 2.21.0            ptx_jit via compute_90"),
        (("tensorflow", "2.16.1"), "[and-cuda] driver     >= 545.23.08 for every feature"),
        (
            ("tensorflow", "2.14.0.600"),
            "tensorflow-rocm 2.14.0.600 (TensorFlow 2.14.0 for ROCm 6.0.0; not a CUDA build)",
        ),
    ],
)
def test_text_output(capsys, argv, text):
    code, out, err = run(capsys, "matrix", *argv)
    assert code == 0 and err == ""
    assert text in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (("tensorflow", "2.22.0"), "tensorflow 2.22.0 is not in the matrix"),
        (("tensorflow", "1.4"), "tensorflow 1.4 is not in the matrix"),
        (("tensorflow", "two"), "TensorFlow version 'two' is not a version"),
        (("cuda", "12.7"), "CUDA 12.7 is not in the matrix"),
        (("driver", "latest"), "driver version 'latest' is not an NVIDIA driver version"),
        (("gpu", "8.8"), "compute capability 8.8 is not in the matrix"),
    ],
)
def test_unknown_versions_exit_2_one_line(capsys, argv, message):
    code, out, err = run(capsys, "matrix", *argv)
    assert code == 2 and out == ""
    assert err.startswith("tfcompat: error: ") and message in err and err.count("\n") == 1
    code, out, err = run(capsys, "matrix", *argv, "-f", "json")
    assert code == 2 and message in json.loads(out)["errors"][0]


# ---------------------------------------------------------------------------------------------- validate


def test_validate_shipped_matrix(capsys):
    code, out, err = run(capsys, "matrix", "validate", str(default_matrix_path()))
    assert code == 0, err
    assert "valid matrix (51 tensorflow, 92 releases, 62 cuda" in out


def test_validate_broken_matrix_names_entry_and_field(capsys, tmp_path):
    text = default_matrix_path().read_text(encoding="utf-8")
    broken = tmp_path / "m.toml"
    broken.write_text(text.replace('min_driver = "555.42.06"', 'min_driver = "555.42.O6"', 1))
    code, out, err = run(capsys, "matrix", "validate", str(broken))
    assert code == 2 and out == ""
    assert err == f"tfcompat: error: {broken}: [[cuda]] #46 '12.5.1': min_driver '555.42.O6' is not a version\n"


def test_validate_reports_broken_invariants(capsys, tmp_path):
    text = default_matrix_path().read_text(encoding="utf-8")
    broken = tmp_path / "m.toml"
    broken.write_text(text.replace('cuda = "12.3"', 'cuda = "12.7"', 1))
    code, _, err = run(capsys, "matrix", "validate", str(broken))
    assert code == 2 and "cuda 12.7 has no [[cuda]] entry" in err and err.count("\n") == 1


def test_validate_overlay(capsys, tmp_path):
    overlay = tmp_path / "site.toml"
    overlay.write_text(SITE_OVERLAY)
    code, out, _ = run(capsys, "matrix", "validate", str(overlay), "-f", "json")
    assert code == 0 and json.loads(out)["counts"] == {"known_bad_driver": 1, "waiver": 1, "thresholds": 0}
    overlay.write_text(SITE_OVERLAY.replace('rule = "TFC201"', 'rule = "201"'))
    code, _, err = run(capsys, "matrix", "validate", str(overlay))
    assert code == 2 and "[[waiver]] #1 '201': rule '201' is not a rule id prefix" in err


def test_matrix_help_lists_commands(capsys):
    code, out, _ = run(capsys, "matrix", "--help")
    assert code == 0
    for cmd in ("tensorflow", "cuda", "driver", "gpu", "validate"):
        assert cmd in out


# ---------------------------------------------------------------------------------------------- check


SITE_OVERLAY = """
[meta]
schema = 1
kind = "overlay"
updated = "2026-11-20"

[[known_bad_driver]]
versions = ">=550.54.14,<550.90"
reason = "Xid 79 under NCCL all-reduce on our A100 nodes"
source = "https://tickets.example.org/HPC-1234"
checked = "2026-11-20"

[[waiver]]
rule = "TFC201"
reason = "these nodes run TF on the CPU only"
checked = "2026-11-20"
"""

BUILD_INFO = (
    "import collections\n"
    "build_info = collections.OrderedDict([('cpu_compiler', 'clang'), ('cuda_compute_capabilities', "
    "['sm_60', 'sm_70', 'sm_80', 'sm_89', 'compute_90']), ('cuda_version', '12.5.1'), ('cudnn_version', '9'), "
    "('is_cuda_build', True), ('is_rocm_build', False), ('is_tensorrt_build', False)])\n"
)


def tf_site(tmp_path, version):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "tensorflow" / "python" / "platform").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text("")
    (site / "tensorflow" / "python" / "platform" / "build_info.py").write_text(BUILD_INFO)
    for name, ver, requires in (
        ("tensorflow", version, ["numpy>=1.26.0", "protobuf<8.0.0,>=6.31.1"]),
        ("numpy", "2.1.0", []),
        ("protobuf", "6.31.1", []),
    ):
        d = site / f"{name}-{ver}.dist-info"
        d.mkdir()
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {ver}"] + [
            f"Requires-Dist: {r}" for r in requires
        ]
        (d / "METADATA").write_text("\n".join(lines) + "\n")
        if name == "tensorflow":
            (d / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_27_x86_64\n")
    return site


def test_release_newer_than_the_matrix_is_judged_from_its_own_files(capsys, tmp_path):
    site = tf_site(tmp_path, "2.22.0")
    code, out, err = run(capsys, "check", "--site-packages", str(site), "--no-nvml", "-f", "json")
    report = json.loads(out)
    assert code == 0 and report["status"] == "pass", err
    assert report["errors"] == []  # no rule crashed on a release the matrix does not know
    assert [(f["rule"], f["severity"]) for f in report["findings"]] == [("TFC109", "info")]
    assert "no entry for tensorflow 2.22.0" in report["findings"][0]["message"]


def snapshot_with_driver(capsys, tmp_path, driver):
    site = tf_site(tmp_path, "2.21.0")
    snap = tmp_path / "snap.json"
    code, _, err = run(capsys, "scan", "--site-packages", str(site), "--no-nvml", "-o", str(snap))
    assert code == 0, err
    data = json.loads(snap.read_text())
    data["host"]["driver"] = {
        "kernel_module_version": driver,
        "kernel_module_source": "/proc/driver/nvidia/version",
        "nvml_driver_version": None,
        "cuda_driver_version": None,
    }
    data["unknowns"] = [u for u in data["unknowns"] if u["fact"] not in ("driver",)]
    snap.write_text(json.dumps(data))
    return snap


def test_check_overlay_known_bad_driver_and_waiver(capsys, tmp_path):
    overlay = tmp_path / "site.toml"
    overlay.write_text(SITE_OVERLAY)
    snap = snapshot_with_driver(capsys, tmp_path, "550.54.15")
    # without the overlay: TFC201 warns (550.54.15 < CUDA 12.5.1's 555.42.06), nothing knows the site's bad range
    code, out, _ = run(capsys, "check", "--from", str(snap), "-f", "json", "--select", "TFC20")
    rules = {f["rule"]: f for f in json.loads(out)["findings"]}
    assert "TFC202" not in rules and rules["TFC201"]["waived"] is None
    code, out, _ = run(
        capsys, "check", "--from", str(snap), "-f", "json", "--select", "TFC20", "--matrix-overlay", str(overlay)
    )
    report = json.loads(out)
    rules = {f["rule"]: f for f in report["findings"]}
    assert code == 1 and rules["TFC202"]["severity"] == "error" and rules["TFC202"]["waived"] is None
    assert "Xid 79" in rules["TFC202"]["message"] and "550.54.15" in rules["TFC202"]["message"]
    assert rules["TFC201"]["waived"] == f"these nodes run TF on the CPU only (site overlay {overlay})"
    # a driver outside the range: no TFC202
    snap = snapshot_with_driver(capsys, tmp_path / "b", "560.35.03")
    code, out, _ = run(capsys, "check", "--from", str(snap), "-f", "json", "--matrix-overlay", str(overlay))
    assert "TFC202" not in {f["rule"] for f in json.loads(out)["findings"]}


def test_check_broken_overlay_is_exit_2_one_line(capsys, tmp_path):
    overlay = tmp_path / "site.toml"
    overlay.write_text(SITE_OVERLAY.replace('reason = "Xid', 'reson = "Xid'))
    snap = snapshot_with_driver(capsys, tmp_path, "550.54.15")
    code, _, err = run(capsys, "check", "--from", str(snap), "--matrix-overlay", str(overlay))
    assert code == 2
    assert err == (f"tfcompat: error: {overlay}: [[known_bad_driver]] #1 '>=550.54.14,<550.90': unknown key 'reson'\n")


def test_rocm_release_answers_for_rocm_not_cuda(capsys):
    a = ask(capsys, "tensorflow", "2.14.0.600")
    assert a["distribution"] == "tensorflow-rocm" and a["tensorflow"] == "2.14.0" and a["rocm"] == "6.0.0"
    assert a["gfx"] == ["gfx900", "gfx906", "gfx908", "gfx90a", "gfx1030", "gfx1100"]
    assert a["manylinux"] == "manylinux2014_x86_64" and a["glibc"] == "2.17"  # read from the wheel itself
    assert a["cuda"] is None and a["and_cuda"] is None and a["numpy_abi"] == 1
    assert [r["rocm"] for r in a["rocm_lines"]] == ["==6.0.*", "==6.1.*"]
    code, out, _err = run(capsys, "matrix", "tensorflow", "2.14.0.600")
    assert code == 0 and "CUDA 11.8" not in out and "and-cuda" not in out and "nvidia-" not in out
    assert ask(capsys, "tensorflow", "2.14.0")["cuda"] == "11.8"  # the CUDA release itself is unchanged


def test_tf_216_and_cuda_driver(capsys):
    a = ask(capsys, "tensorflow", "2.16.1")
    assert a["and_cuda_cuda"] == "12.3.2" and a["and_cuda_min_driver"] == "545.23.08"
    assert a["min_driver"] == "525.60.13" and a["min_driver_full"] == "545.23.06"
    assert ask(capsys, "tensorflow", "2.15.1")["and_cuda_min_driver"] is None
