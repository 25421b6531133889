"""Custom ops checked against real ELF files compiled here by g++: a stub "framework" in two releases,
plugins built against each, a pre-C++11-ABI build, a versioned need the provider lacks, a missing
DT_NEEDED, and a pybind-style module that needs libpython (must not be flagged)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tfcompat.model import CustomOp, Package, TensorFlowBuild
from tfcompat.probes.custom_ops import CustomOpChecker, discover, probe_custom_ops
from tfcompat.probes.rootfs import Root
from tfcompat.rules.custom_ops import explain

GXX = shutil.which("g++")
pytestmark = pytest.mark.needs_tool("g++")  # conftest: skipped without g++, failed under CI=true

FRAMEWORK = r"""
#include <string>
namespace absl { inline namespace ABSL_NS {
  std::string StrCat(const std::string& a, const std::string& b) { return a + b; }
} }
namespace tensorflow {
  void RegisterOp(const std::string& name) { (void)name; }
#ifdef FW_V1
  void LegacyOnlyInV1() {}
#endif
}
extern "C" {
#ifdef FW_V1
  void TF_VLog(int level, const char* msg) { (void)level; (void)msg; }
#endif
  void TF_SetStatus(void* s, int code, const char* msg) { (void)s; (void)code; (void)msg; }
}
"""

OP = r"""
#include <string>
namespace absl { inline namespace ABSL_NS {
  std::string StrCat(const std::string& a, const std::string& b);
} }
namespace tensorflow { void RegisterOp(const std::string& name); void LegacyOnlyInV1(); }
static int registered = (tensorflow::RegisterOp(absl::StrCat("My", "Op")), 0);
#ifdef USE_LEGACY
void use_legacy() { tensorflow::LegacyOnlyInV1(); }
#endif
"""

C_API_OP = r"""
extern "C" void TF_VLog(int level, const char* msg);
extern "C" void TF_SetStatus(void* s, int code, const char* msg);
extern "C" void op_init() { TF_SetStatus(0, 0, "ok"); TF_VLog(1, "hello"); }
"""

FOO = r"""
extern "C" int foo1() { return 1; }
#ifdef FOO_V2
extern "C" int foo2() { return 2; }
#endif
"""

USES_FOO2 = r"""
extern "C" int foo2();
namespace tensorflow { void RegisterOp(const char*); }
extern "C" int op() { return foo2(); }
"""

PYBIND = r"""
#include <Python.h>
#include <string>
namespace tensorflow { void RegisterOp(const std::string& name); }
extern "C" PyObject* make() { tensorflow::RegisterOp("x"); return PyLong_FromLong(42); }
"""

BUILD_INFO = (
    "import collections\nbuild_info = collections.OrderedDict([('cuda_version', '12.5.1'), "
    "('cudnn_version', '9'), ('is_cuda_build', True)])\n"
)


def gxx(out, source, *flags):
    src = out + ".cc"
    with open(src, "w") as fh:
        fh.write(source)
    subprocess.run([GXX, "-shared", "-fPIC", "-O0", "-o", out, src, *flags], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """site-packages with a stub TF "2.21" (framework v2) and plugins built against v1 and v2."""
    base = str(tmp_path_factory.mktemp("customops"))
    build = os.path.join(base, "build")
    v1, v2 = os.path.join(build, "v1"), os.path.join(build, "v2")
    for d in (v1, v2):
        os.makedirs(d)
    fw = "libtensorflow_framework.so.2"
    gxx(os.path.join(v1, fw), FRAMEWORK, "-DFW_V1", "-DABSL_NS=lts_20230802", f"-Wl,-soname,{fw}")
    gxx(os.path.join(v2, fw), FRAMEWORK, "-DABSL_NS=lts_20250814", f"-Wl,-soname,{fw}")
    gxx(
        os.path.join(v1, "libfoo.so.1"),
        FOO,
        "-Wl,-soname,libfoo.so.1",
        "-Wl,--version-script=" + _script(build, "v1.map", "FOO_1.0 { global: foo1; local: *; };"),
    )
    gxx(
        os.path.join(v2, "libfoo.so.1"),
        FOO,
        "-DFOO_V2",
        "-Wl,-soname,libfoo.so.1",
        "-Wl,--version-script="
        + _script(build, "v2.map", "FOO_1.0 { global: foo1; local: *; };\nFOO_2.0 { global: foo2; } FOO_1.0;"),
    )
    gxx(os.path.join(build, "libbar.so.1"), 'extern "C" int bar() { return 0; }', "-Wl,-soname,libbar.so.1")

    site = os.path.join(base, "site")
    tf_dir = os.path.join(site, "tensorflow")
    os.makedirs(os.path.join(tf_dir, "python", "platform"))
    shutil.copy(os.path.join(v2, fw), os.path.join(tf_dir, fw))
    with open(os.path.join(tf_dir, "python", "platform", "build_info.py"), "w") as fh:
        fh.write(BUILD_INFO)
    # _pywrap_tensorflow_internal.so: needs the framework through $ORIGIN/.. as the real wheel does
    gxx(
        os.path.join(tf_dir, "python", "_pywrap_tensorflow_internal.so"),
        "int pywrap_stub = 1;",
        "-L" + tf_dir,
        "-l:" + fw,
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/..",
    )
    # the provider of FOO_x in the installed tree is v1 (no FOO_2.0)
    libs = os.path.join(site, "myops", "lib")
    os.makedirs(libs)
    shutil.copy(os.path.join(v1, "libfoo.so.1"), os.path.join(libs, "libfoo.so.1"))

    ops = os.path.join(site, "myops")
    link_v1 = ["-L" + v1, "-l:" + fw]
    link_v2 = ["-L" + v2, "-l:" + fw]
    plugins = {
        "good": gxx(os.path.join(ops, "_good.so"), OP, "-DABSL_NS=lts_20250814", *link_v2),
        "old": gxx(os.path.join(ops, "_old.so"), OP, "-DABSL_NS=lts_20230802", "-DUSE_LEGACY", *link_v1),
        "oldabi": gxx(
            os.path.join(ops, "_oldabi.so"), OP, "-DABSL_NS=lts_20250814", "-D_GLIBCXX_USE_CXX11_ABI=0", *link_v2
        ),
        "capi": gxx(os.path.join(ops, "_capi.so"), C_API_OP, *link_v1),
        "version": gxx(
            os.path.join(ops, "_version.so"),
            USES_FOO2,
            *link_v2,
            "-L" + v2,
            "-l:libfoo.so.1",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib",
        ),
        "needsbar": gxx(
            os.path.join(ops, "_needsbar.so"),
            'extern "C" int bar(); int x() { return bar(); }',
            *link_v2,
            "-L" + build,
            "-l:libbar.so.1",
            "-Wl,--no-as-needed",
        ),
    }
    import sysconfig

    inc = sysconfig.get_paths()["include"]
    if os.path.isfile(os.path.join(inc, "Python.h")):
        plugins["pybind"] = gxx(os.path.join(ops, "_pybind.so"), PYBIND, "-I" + inc, *link_v2)
    tf_dist = os.path.join(site, "tensorflow-2.21.0.dist-info")
    os.makedirs(tf_dist)
    with open(os.path.join(tf_dist, "METADATA"), "w") as fh:
        fh.write("Name: tensorflow\nVersion: 2.21.0\n")
    # an installed distribution owning some of them, through its RECORD
    dist = os.path.join(site, "my_ops-1.0.dist-info")
    os.makedirs(dist)
    with open(os.path.join(dist, "METADATA"), "w") as fh:
        fh.write("Name: my-ops\nVersion: 1.0\nRequires-Dist: tensorflow<2.21,>=2.20\n")
    with open(os.path.join(dist, "RECORD"), "w") as fh:
        fh.write("myops/_old.so,,\nmyops/_good.so,,\nmyops/lib/libfoo.so.1,,\nmy_ops-1.0.dist-info/METADATA,,\n")
    return {"site": site, "tf_dir": tf_dir, "plugins": plugins}


def _script(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as fh:
        fh.write(text + "\n")
    return path


def tf_build(tree):
    return TensorFlowBuild(
        "tensorflow",
        "2.21.0",
        tree["site"],
        tree["tf_dir"],
        os.path.join(tree["tf_dir"], "python", "platform", "build_info.py"),
    )


@pytest.fixture(scope="module")
def checker(tree):
    c = CustomOpChecker(Root(None), tf_build(tree), sys.executable)
    yield c
    c.close()


def test_op_built_against_the_installed_tf_passes(checker, tree):
    op = checker.check("--op", tree["plugins"]["good"])
    assert op.ok, op
    assert op.undefined_count == 0 and op.missing_libraries == () and op.missing_versions == ()


def test_op_built_against_another_release(checker, tree):
    op = checker.check("my-ops", tree["plugins"]["old"])
    assert not op.ok and op.undefined_count == 2
    assert set(op.undefined) == {
        "_ZN4absl12lts_202308026StrCatERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEES8_",
        "_ZN10tensorflow14LegacyOnlyInV1Ev",
    }
    assert op.abseil == ("lts_20230802",)
    assert op.namespaces == ("tensorflow", "absl") and op.reasons == ()  # raw facts; the rule says why
    assert any("abseil lts_20230802" in r for r in explain(op))
    if shutil.which("c++filt") or os.environ.get("CI") == "true":  # CI must have c++filt
        assert "tensorflow::LegacyOnlyInV1()" in op.demangled


def test_pre_cxx11_abi_build_fails_even_on_its_own_release(checker, tree):
    op = checker.check("--op", tree["plugins"]["oldabi"])
    assert not op.ok
    assert op.undefined == ("_ZN10tensorflow10RegisterOpERKSs",) or "_ZN10tensorflow10RegisterOpERKSs" in op.undefined
    assert op.old_string_abi and "tensorflow" in op.namespaces
    assert any("_GLIBCXX_USE_CXX11_ABI=0" in r for r in explain(op))


def test_removed_c_api_symbol(checker, tree):
    op = checker.check("--op", tree["plugins"]["capi"])
    assert op.undefined == ("TF_VLog",)  # TF_SetStatus still exists
    assert op.c_api == ("TF_VLog",) and not op.old_string_abi
    assert any("C API" in r and "TF_VLog" in r for r in explain(op))


def test_symbol_version_the_provider_lacks(checker, tree):
    op = checker.check("--op", tree["plugins"]["version"])
    assert not op.ok and len(op.missing_versions) == 1
    assert op.missing_versions[0].startswith("FOO_2.0 (libfoo.so.1: ")
    assert op.undefined_count == 0  # foo2@FOO_2.0 is not double-counted as a plain undefined symbol


def test_missing_needed_library(checker, tree):
    op = checker.check("--op", tree["plugins"]["needsbar"])
    assert op.missing_libraries == ("libbar.so.1",)
    assert op.undefined_count == 0  # bar() is reported through its missing library, not as a symbol


def test_pybind_module_resolves_libpython_from_the_interpreter(checker, tree):
    if "pybind" not in tree["plugins"]:
        pytest.skip("Python headers not installed")
    op = checker.check("--op", tree["plugins"]["pybind"])
    assert op.ok, op.undefined


def test_without_an_interpreter_python_symbols_are_assumed(tree):
    if "pybind" not in tree["plugins"]:
        pytest.skip("Python headers not installed")
    c = CustomOpChecker(Root(None), tf_build(tree), None)
    try:
        assert c.check("--op", tree["plugins"]["pybind"]).ok
        assert any(u.fact == "custom_ops.python" for u in c.unknowns)
    finally:
        c.close()


def test_discovery_through_record_and_op_globs(tree):
    pkg = Package("my-ops", "1.0", tree["site"], os.path.join(tree["site"], "my_ops-1.0.dist-info", "METADATA"))
    found, unknowns = discover(
        [pkg], ["tensorflow"], [os.path.join(tree["site"], "myops", "_cap*.so"), "/nonexistent/op.so"]
    )
    assert ("my-ops", tree["plugins"]["old"]) in found and ("my-ops", tree["plugins"]["good"]) in found
    # libfoo.so.1 is in the RECORD but does not link TensorFlow: not a plugin
    assert not any(p.endswith("libfoo.so.1") for _, p in found)
    assert ("--op", tree["plugins"]["capi"]) in found
    assert [u.reason for u in unknowns] == ["--op /nonexistent/op.so: no such file"]


def test_probe_and_rule_per_distribution(tree, matrix):
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    env = scan(TargetSpec(site_packages=(tree["site"],)), nvml=False)
    env_ops = {os.path.basename(o.path): o for o in env.target.custom_ops}
    assert set(env_ops) == {"_old.so", "_good.so"} and env_ops["_good.so"].ok and not env_ops["_old.so"].ok
    report = evaluate(env, matrix, select=["TFC5"])
    (f,) = report.findings
    assert f.rule == "TFC501" and f.message.startswith("my-ops 1.0: 1 of 2 objects will fail to load")
    assert "myops/_old.so" in f.message and "abseil lts_20230802" in f.message
    assert any(e.value == "tensorflow<2.21,>=2.20" for e in f.evidence)


def test_cli_op_flag_wrong_abi_fails_right_flags_pass(tree, tmp_path):
    base = [
        sys.executable,
        "-m",
        "tfcompat",
        "check",
        "--site-packages",
        tree["site"],
        "--no-nvml",
        "--select",
        "TFC5",
        "-f",
        "json",
    ]
    good = subprocess.run(base + ["--op", tree["plugins"]["good"]], capture_output=True, text=True, timeout=120)
    bad = subprocess.run(base + ["--op", tree["plugins"]["oldabi"]], capture_output=True, text=True, timeout=120)
    good_ops = [f for f in json.loads(good.stdout)["findings"] if "(--op)" in f["message"]]
    assert good_ops == []
    (f,) = [f for f in json.loads(bad.stdout)["findings"] if "(--op)" in f["message"]]
    assert bad.returncode == 1 and "_GLIBCXX_USE_CXX11_ABI=0" in f["message"]
    assert "-D_GLIBCXX_USE_CXX11_ABI=1" in f["remediation"]


def _op(**facts):
    return CustomOp("pkg", "/x.so", ok=False, **facts)


def test_explain_reasons_from_names():
    assert explain(_op(c_api=("TF_VLog",))) == [
        "uses C API symbols the installed TensorFlow no longer exports (TF_VLog)"
    ]
    assert explain(_op(missing_versions=("GLIBCXX_3.4.30 (libstdc++.so.6: /usr/lib/libstdc++.so.6)",)))[0].endswith(
        "GLIBCXX_3.4.30)"
    )
    assert explain(_op(namespaces=("tensorflow",))) == [
        "needs TensorFlow C++ internals that the installed TensorFlow does not define (built against another "
        "TensorFlow release)"
    ]


def test_explain_names_the_old_abi_only_when_tensorflow_names_are_missing():
    assert explain(_op(old_string_abi=True)) == []
    assert explain(_op(old_string_abi=True, namespaces=("xla",)))[0].startswith("needs TensorFlow C++ internals")
    (cxx11,) = explain(_op(old_string_abi=True, namespaces=("tsl",)))
    assert "_GLIBCXX_USE_CXX11_ABI=0" in cxx11


def test_old_snapshot_keeps_its_recorded_reasons():
    """Snapshots of tfcompat <= 0.1.0 carry prose, not the facts: the rule reads the prose back."""
    assert explain(_op(reasons=("built against abseil lts_1",), namespaces=("tsl",))) == ["built against abseil lts_1"]


def test_no_plugins_no_checker(tree):
    ops, unknowns = probe_custom_ops(Root(None), tf_build(tree), [], ["tensorflow"], sys.executable)
    assert ops == () and unknowns == []


def test_build_id_matches_readelf(tree):
    from tfcompat.probes.custom_ops import build_id

    path = tree["plugins"]["good"]
    readelf = shutil.which("readelf")
    got = build_id(path)
    if readelf:
        out = subprocess.run([readelf, "-n", path], capture_output=True, text=True).stdout
        expected = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Build ID" in line]
        assert [got] == expected
    assert got is None or len(got) >= 16
    assert build_id(tree["plugins"]["old"]) != got or got is None


def test_probe_demangles_every_plugin_in_one_cxxfilt_and_matches_one_by_one(tree, monkeypatch):
    """probe_custom_ops batches c++filt and shares lookups between plugins: the same CustomOps as checking
    each plugin alone with its own c++filt."""
    import tfcompat.probes.custom_ops as mod

    names = ["old", "oldabi", "capi", "good", "version", "needsbar"]
    paths = [tree["plugins"][n] for n in names]
    alone = []
    for path in paths:
        c = CustomOpChecker(Root(None), tf_build(tree), sys.executable)
        try:
            alone.append(c.check("--op", path))
        finally:
            c.close()
    calls = []
    real_run = mod.subprocess.run

    def run(cmd, *a, **kw):
        calls.append(cmd)
        return real_run(cmd, *a, **kw)

    monkeypatch.setattr(mod.subprocess, "run", run)
    ops, _unknowns = probe_custom_ops(Root(None), tf_build(tree), [], ["tensorflow"], sys.executable, ops=paths)
    assert list(ops) == alone
    assert sum(1 for op in ops if op.undefined) >= 3
    assert len(calls) == (1 if shutil.which("c++filt") else 0)


def test_demangle_all_keeps_a_plugin_with_an_unsplittable_name_mangled():
    from tfcompat.probes.custom_ops import demangle_all

    odd = CustomOp("x", "/a.so", ok=False, undefined=("_ZN3foo\n3barEv", "_ZN10tensorflow3fooEv"))
    fine = CustomOp("x", "/b.so", ok=False, undefined=("_ZN10tensorflow3fooEv",))
    out = demangle_all([odd, fine, CustomOp("x", "/c.so", ok=True)])
    assert out[0] is odd and out[2].demangled == ()
    if shutil.which("c++filt"):
        assert out[1].demangled == ("tensorflow::foo()",)
