"""TFC502, TFC503 and TFC504 judged end to end: plugins compiled here by gcc, scanned by `tfcompat check` in a
child process, the verdict read from its JSON (issue #12, Deliver 6: no test ran these three rules before).

Also the rules alone, from constructed Environments, for what the messages must say."""

import json
import os
import subprocess
import sys

import pytest
from elf_fixtures import EM_AARCH64, gcc_so, needs_gcc, write_so
from envs import SITE, make_env, run_rule
from probe_helpers import make_dist, make_tf, write

from tfcompat.model import CustomOp, Severity

FW = "libtensorflow_framework.so.2"
BUILD_INFO = (
    "import collections\nbuild_info = collections.OrderedDict([('cuda_version', '12.5.1'), "
    "('cudnn_version', '9'), ('is_cuda_build', True)])\n"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """site-packages with a stub TF 2.21 and one plugin per verdict, owned by distributions through RECORD."""
    base = tmp_path_factory.mktemp("verdicts")
    build, site = base / "build", base / "site"
    tf_dir = make_tf(site, "2.21.0", BUILD_INFO)
    make_dist(site, "tensorflow", "2.21.0")
    gcc_so(os.path.join(tf_dir, FW), "void TF_SetStatus(void *s, int c, const char *m) {}", soname=FW)
    link_fw = ["-Wl,--no-as-needed", "-L" + tf_dir, "-l:" + FW]
    # libfoo: the build tree's defines FOO_2.0, the installed one only FOO_1.0
    gcc_so(
        build / "v2" / "libfoo.so.1",
        "int foo1(void) { return 1; } int foo2(void) { return 2; }",
        soname="libfoo.so.1",
        version_script="FOO_1.0 { global: foo1; local: *; };\nFOO_2.0 { global: foo2; } FOO_1.0;",
    )
    gcc_so(
        site / "verops" / "lib" / "libfoo.so.1",
        "int foo1(void) { return 1; }",
        soname="libfoo.so.1",
        version_script="FOO_1.0 { global: foo1; local: *; };",
    )
    gcc_so(build / "libbar.so.1", "int bar(void) { return 0; }", soname="libbar.so.1")
    plugins = {
        "good": gcc_so(
            site / "goodops" / "_good.so",
            "void TF_SetStatus(void*, int, const char*);\nvoid op(void) { TF_SetStatus(0, 0, 0); }",
            flags=link_fw,
        ),
        "needsbar": gcc_so(
            site / "barops" / "_needsbar.so",
            "int bar(void); int op(void) { return bar(); }",
            flags=[*link_fw, "-L" + str(build), "-l:libbar.so.1"],
        ),
        "version": gcc_so(
            site / "verops" / "_version.so",
            "int foo2(void); int op(void) { return foo2(); }",
            flags=[*link_fw, "-L" + str(build / "v2"), "-l:libfoo.so.1", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"],
        ),
    }
    # another machine's plugin that links TF: installed by mistake from an aarch64 wheel
    plugins["arm"] = write_so(site / "armops" / "_arm.so", needed=[FW, "libc.so.6"], machine=EM_AARCH64)
    for dist, files in (
        ("good-ops", ["goodops/_good.so"]),
        ("bar-ops", ["barops/_needsbar.so"]),
        ("ver-ops", ["verops/_version.so", "verops/lib/libfoo.so.1"]),
        ("arm-ops", ["armops/_arm.so"]),
    ):
        info = make_dist(site, dist, "1.0", requires=["tensorflow>=2.21,<2.22"])
        write(os.path.join(info, "RECORD"), "".join(f"{f},,\n" for f in files))
    return {"site": str(site), "plugins": plugins}


def check(site, *args):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfcompat",
            "check",
            "--site-packages",
            site["site"],
            "--no-nvml",
            "--format",
            "json",
            "--select",
            "TFC5",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@needs_gcc
def test_each_plugin_gets_its_own_verdict(site):
    code, report = check(site)
    got = sorted((f["rule"], f["severity"], f["message"].split(":")[0]) for f in report["findings"])
    assert got == [
        ("TFC502", "error", "bar-ops 1.0"),
        ("TFC503", "error", "ver-ops 1.0"),
        ("TFC504", "info", "arm-ops 1.0"),
    ], report["findings"]
    assert code == 1
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert "libbar.so.1" in by_rule["TFC502"]["message"]
    assert "cannot open shared object file" in by_rule["TFC502"]["message"]
    assert "version `FOO_2.0' not found in libfoo.so.1" in by_rule["TFC503"]["message"]
    assert "_arm.so could not be checked" in by_rule["TFC504"]["message"]
    assert not any("good-ops" in f["message"] for f in report["findings"])


@needs_gcc
def test_fail_on_error_ignores_the_info_verdict(site):
    code, report = check(site, "--ignore", "TFC502=known", "--ignore", "TFC503=known")
    assert code == 0, report  # TFC504 is info: never fails the default --fail-on error


@needs_gcc
def test_an_in_house_op_given_with_op(site):
    _code, report = check(site, "--op", site["plugins"]["needsbar"], "--select", "TFC502")
    (f,) = [f for f in report["findings"] if f["rule"] == "TFC502"]
    assert f["message"].startswith("bar-ops 1.0")  # the installed owner wins over --op for the same file


# -- the rules alone -------------------------------------------------------------------------------------


def env_with(*ops):
    import dataclasses

    env = make_env("2.21.0")
    return dataclasses.replace(env, target=dataclasses.replace(env.target, custom_ops=tuple(ops)))


def op(name, **kw):
    return CustomOp("--op", f"{SITE}/myops/{name}", ok=False, **kw)


def test_tfc502_names_every_missing_library_once(matrix):
    ops = [op("_a.so", missing_libraries=("libbar.so.1",)), op("_b.so", missing_libraries=("libbar.so.1", "libz.so.9"))]
    (f,), _ = run_rule(env_with(*ops), matrix, "TFC502")
    assert f.severity is Severity.ERROR
    assert "2 object(s) need libbar.so.1, libz.so.9" in f.message and "myops/_a.so" in f.message
    assert [e.value for e in f.evidence] == ["libbar.so.1", "libbar.so.1, libz.so.9"]


def test_tfc503_counts_the_other_objects(matrix):
    ops = [
        op("_a.so", missing_versions=("GLIBCXX_3.4.30 (libstdc++.so.6: /usr/lib/libstdc++.so.6)",)),
        op("_b.so", missing_versions=("GLIBCXX_3.4.30 (libstdc++.so.6: /usr/lib/libstdc++.so.6)",)),
    ]
    (f,), _ = run_rule(env_with(*ops), matrix, "TFC503")
    assert "needs version `GLIBCXX_3.4.30' not found in libstdc++.so.6: /usr/lib/libstdc++.so.6" in f.message
    assert "(and 1 more objects)" in f.message
    (f,), _ = run_rule(env_with(ops[0]), matrix, "TFC503")
    assert "more objects" not in f.message


def test_tfc504_only_for_objects_with_a_problem(matrix):
    ops = [
        CustomOp("--op", f"{SITE}/myops/_ok.so", ok=True),
        op("_bad.so", problem="not a loadable ELF object for this machine"),
    ]
    findings, _ = run_rule(env_with(*ops), matrix, "TFC504")
    assert [f.severity for f in findings] == [Severity.INFO]
    assert "_bad.so could not be checked: not a loadable ELF object" in findings[0].message


def test_clean_ops_have_no_5xx_findings(matrix):
    env = env_with(CustomOp("--op", f"{SITE}/myops/_ok.so", ok=True))
    for rid in ("TFC501", "TFC502", "TFC503", "TFC504"):
        assert run_rule(env, matrix, rid)[0] == [], rid


# -- TFC501: what the finding says and which fix it offers ---------------------------------------------------

TEXT_OP = f"{SITE}/tensorflow_text/python/ops/_regex_split_ops.so"


def _undefined(owner, path, **kw):
    base = {"undefined_count": 2, "undefined": ("_ZN4absl12lts_202308026StrCatEv", "TF_VLog")}
    base.update(kw)
    return CustomOp(owner, path, ok=False, **base)


def test_tfc501_companion_package_gets_the_matrix_release_and_its_pin(matrix):
    import dataclasses

    from envs import pkg

    env = env_with(
        _undefined("tensorflow-text", TEXT_OP, reasons=("built against abseil lts_20230802",)),
        CustomOp("tensorflow-text", f"{SITE}/tensorflow_text/core/pybinds/_ok.so", ok=True),
    )
    text = pkg("tensorflow-text", "2.20.0", requires=["tensorflow<2.21,>=2.20.0", "numpy"])
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, packages=(*env.target.packages, text)))
    (f,), _ = run_rule(env, matrix, "TFC501")
    assert f.severity is Severity.ERROR
    assert f.message.startswith("tensorflow-text 2.20.0: 1 of 2 objects will fail to load against tensorflow 2.21.0")
    assert "(2 undefined symbols)" in f.message and "built against abseil lts_20230802" in f.message
    assert "tensorflow_text/python/ops/_regex_split_ops.so" in f.message
    assert f.remediation.startswith(
        'pip install "tensorflow-text<2.22.0,>=2.21.1" (the release built for TensorFlow 2.21)'
    )
    pins = [e for e in f.evidence if e.fact == "tensorflow-text Requires-Dist"]
    assert [e.value for e in pins] == ["tensorflow<2.21,>=2.20.0"]  # numpy is not a TensorFlow pin


def test_tfc501_in_house_op_is_rebuilt_and_old_abi_named(matrix):
    (f,), _ = run_rule(env_with(_undefined("--op", f"{SITE}/myops/_x.so")), matrix, "TFC501")
    assert f.message.startswith("in-house op (--op): 1 of 1 objects")
    assert f.remediation.startswith("Rebuild it against the installed TensorFlow")
    old_abi = _undefined("--op", f"{SITE}/myops/_x.so", reasons=("built with -D_GLIBCXX_USE_CXX11_ABI=0 (...)",))
    (f,), _ = run_rule(env_with(old_abi), matrix, "TFC501")
    assert f.remediation.startswith("Rebuild with -D_GLIBCXX_USE_CXX11_ABI=1")


def test_tfc501_unknown_package_without_a_matrix_entry(matrix):
    (f,), _ = run_rule(env_with(_undefined("my-ops", f"{SITE}/myops/_x.so")), matrix, "TFC501")
    assert f.message.startswith("my-ops: 1 of 1 objects")  # not installed as a distribution: its name as given
    assert f.remediation.startswith("Install the my-ops release built for TensorFlow 2.21, or the TensorFlow")


def test_tfc501_names_five_objects_and_counts_the_rest(matrix):
    ops = [_undefined("--op", f"{SITE}/myops/_{i}.so") for i in range(7)]
    (f,), _ = run_rule(env_with(*ops), matrix, "TFC501")
    per_object = [e for e in f.evidence if e.fact.endswith("undefined")]
    assert len(per_object) == 5
    assert ("more objects", "2 more fail the same way") in [(e.fact, e.value) for e in f.evidence]
    assert "7 of 7 objects" in f.message and "(14 undefined symbols)" in f.message


def test_tfc501_demangled_name_is_shown_beside_the_mangled_one(matrix):
    op_ = _undefined("--op", f"{SITE}/myops/_x.so", demangled=("absl::lts_20230802::StrCat()", "TF_VLog"))
    (f,), _ = run_rule(env_with(op_), matrix, "TFC501")
    assert "undefined symbol absl::lts_20230802::StrCat()" in f.message
    (ev,) = [e for e in f.evidence if e.fact.endswith("undefined")]
    assert ev.value == "_ZN4absl12lts_202308026StrCatEv = absl::lts_20230802::StrCat()"


def test_5xx_skip_when_plugins_could_not_be_checked(matrix):
    import dataclasses

    from tfcompat.model import Unknown

    env = make_env("2.21.0")
    env = dataclasses.replace(env, unknowns=(*env.unknowns, Unknown("custom_ops", "no TensorFlow core library")))
    for rid in ("TFC501", "TFC502", "TFC503"):
        findings, (skip,) = run_rule(env, matrix, rid)
        assert findings == [] and skip.reason == "custom ops not checked: no TensorFlow core library", rid
