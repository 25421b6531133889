"""ROCm from the binaries, end to end through `scan --root`: a minimal tensorflow-rocm tree whose gcc-built objects
need the HIP runtime by soname (libamdhip64.so.N) and carry a .hip_fatbin section of clang offload bundles, and a
ROCm install under /opt/rocm-X.Y.Z/lib with gcc-built stubs that define some HIP symbols."""

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest

from tfcompat.model import AmdGpu, Rocm, RocmObject, Severity
from tfcompat.probes.target import TargetSpec
from tfcompat.rules import evaluate
from tfcompat.scan import scan

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures", "offload"))
import build_offload_fixtures as fx
from envs import make_env, run_rule, tf_build

pytestmark = pytest.mark.needs_tool("gcc", "objcopy")

SITE = "/usr/local/lib/python3.8/dist-packages"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
HIP_USED = ("hipGetDeviceCount", "hipModuleGetGlobal", "hipMallocAsync")


def gcc(out, source, *flags):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    src = out + ".c"
    with open(src, "w") as fh:
        fh.write(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", out, src, *flags], check=True, capture_output=True)
    os.unlink(src)
    return out


def hip_stub(out, soname, defines, *flags):
    source = "".join(f"int {name}(void) {{ return 0; }}\n" for name in defines)
    return gcc(out, source, f"-Wl,-soname,{soname}", *flags)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def rocm_tree(
    tmp_path,
    *,
    version="2.3.3",
    hip_soname="libamdhip64.so.5",
    runpath="/opt/rocm/lib",
    uses=HIP_USED,
    targets=("gfx900", "gfx906", "gfx908"),
    rocm="5.3.0",
    rocm_soname="libamdhip64.so.5",
    rocm_defines=HIP_USED,
    gpus=(90006,),
):
    """A --root image: tensorflow-rocm `version` whose objects need `hip_soname` (RUNPATH `runpath`) and call
    `uses`, with code for `targets`; ROCm `rocm` installed in /opt/rocm-<rocm>/lib with `rocm_soname` defining
    `rocm_defines`; KFD nodes with the given gfx_target_versions."""
    root = str(tmp_path / "img")
    build = str(tmp_path / "build")  # the build machine's ROCm: only what the linker needed
    if not os.path.exists(f"{build}/{hip_soname}"):  # a test may have built its own (with symbol versions)
        hip_stub(f"{build}/{hip_soname}", hip_soname, uses)
    os.makedirs(os.path.dirname(root + LIBC), exist_ok=True)
    shutil.copy(LIBC, root + LIBC)  # the objects need libc: without it the loader would skip symbol checks
    pkg = f"{root}{SITE}/tensorflow"
    calls = "".join(f"int {n}(void);\n" for n in uses) + "int tf_framework_init(void) { return 0"
    calls += "".join(f" + {n}()" for n in uses) + "; }\n"
    link = [f"-L{build}", f"-l:{hip_soname}", f"-Wl,-rpath,{runpath}", "-Wl,--enable-new-dtags"]
    gcc(f"{pkg}/libtensorflow_framework.so.2", calls, "-Wl,-soname,libtensorflow_framework.so.2", *link)
    pywrap = f"{tmp_path}/pywrap.so"
    gcc(
        pywrap,
        "int tf_framework_init(void); int hipGetDeviceCount(void);\n"
        "int pywrap_init(void) { return tf_framework_init() + hipGetDeviceCount(); }\n",
        f"-L{pkg}",
        "-l:libtensorflow_framework.so.2",
        *link,
    )
    bundles = fx.section([fx.bundle([f"hipv4-amdgcn-amd-amdhsa--{t}" for t in targets])])
    blob = f"{tmp_path}/fatbin.bin"
    with open(blob, "wb") as fh:
        fh.write(bundles)
    os.makedirs(f"{pkg}/python/platform", exist_ok=True)
    subprocess.run(
        ["objcopy", "--add-section", f".hip_fatbin={blob}", pywrap, f"{pkg}/python/_pywrap_tensorflow_internal.so"],
        check=True,
    )
    write(f"{pkg}/__init__.py", f'__version__ = "{version}"\n')
    write(f"{pkg}/python/platform/build_info.py", "is_rocm_build = True\nis_cuda_build = False\n")
    write(
        f"{root}{SITE}/tensorflow_rocm-{version}.dist-info/METADATA",
        f"Metadata-Version: 2.1\nName: tensorflow-rocm\nVersion: {version}\n",
    )
    if rocm is not None:  # None: the test installs its own ROCm
        hip_stub(f"{root}/opt/rocm-{rocm}/lib/{rocm_soname}", rocm_soname, rocm_defines)
        write(f"{root}/opt/rocm-{rocm}/.info/version", f"{rocm}-72\n")
        os.symlink(f"/opt/rocm-{rocm}", f"{root}/opt/rocm")
    for node, target in enumerate(gpus, start=1):
        write(f"{root}/sys/class/kfd/kfd/topology/nodes/{node}/properties", f"gfx_target_version {target}\n")
    return root


def check(root, matrix, select="TFC4"):
    env = scan(TargetSpec(root=root), nvml=False)
    return env, evaluate(env, matrix, select=[select])


def by_rule(report):
    out = {}
    for f in report.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_healthy_rocm_build_gives_nothing(tmp_path, matrix):
    env, report = check(rocm_tree(tmp_path), matrix)
    tf = env.tensorflow
    names = {os.path.basename(o.path): o for o in tf.rocm_objects}
    assert set(names) == {"_pywrap_tensorflow_internal.so", "libtensorflow_framework.so.2"}
    pywrap = names["_pywrap_tensorflow_internal.so"]
    assert pywrap.rocm_needed == ("libamdhip64.so.5",) and pywrap.checked
    assert pywrap.gfx_targets == ("gfx900", "gfx906", "gfx908") and pywrap.offload_bundles == 1
    assert pywrap.rocm_resolved == ("libamdhip64.so.5 -> /opt/rocm/lib/libamdhip64.so.5",)
    assert names["libtensorflow_framework.so.2"].offload_section is None
    assert report.findings == ()


def test_rocm_major_mismatch_libamdhip64_missing(tmp_path, matrix):
    """https://github.com/ROCm/tensorflow-upstream/issues/1207: tensorflow-rocm 2.3.3 on ROCm 4.0.0,
    "ImportError: libamdhip64.so.3: cannot open shared object file: No such file or directory". The wheel was
    built for ROCm 3.x (its objects need libamdhip64.so.3); ROCm 4.0.0 ships libamdhip64.so.4."""
    root = rocm_tree(tmp_path, hip_soname="libamdhip64.so.3", rocm="4.0.0", rocm_soname="libamdhip64.so.4")
    _env, report = check(root, matrix)
    found = by_rule(report)
    assert set(found) == {"TFC401", "TFC403"}
    missing = found["TFC403"]
    assert {os.path.basename(f.message.split(" needs ")[0]) for f in missing} == {
        "libtensorflow_framework.so.2",
        "_pywrap_tensorflow_internal.so",
    }
    f = missing[0]
    assert f.severity is Severity.ERROR and "libamdhip64.so.3" in f.message and "ROCm 4.0.0 is installed" in f.message
    assert "libamdhip64.so.3 comes with ROCm 3.x" in f.message and "cannot open shared object file" in f.message
    (v,) = found["TFC401"]
    assert "built for ROCm 3.x" in v.message and "ROCm 4.0.0 is installed" in v.message
    assert any(e.value == "libamdhip64.so.3" for e in v.evidence)


def test_undefined_hip_symbol_in_tf_own_library(tmp_path, matrix):
    """https://github.com/ROCm/legacy-rocm-build/issues/764: after a ROCm change, `import tensorflow` fails with
    "libtensorflow_framework.so: undefined symbol: hipModuleGetGlobal": TF's own library needs a HIP symbol the
    installed runtime does not define (same soname, other release)."""
    root = rocm_tree(tmp_path, rocm="5.0.0", rocm_defines=("hipGetDeviceCount",))
    _env, report = check(root, matrix)
    (f,) = by_rule(report)["TFC403"]
    assert f.message.startswith(f"{SITE}/tensorflow/libtensorflow_framework.so.2 needs 2 undefined symbols")
    assert "hipModuleGetGlobal" in f.message and "hipMallocAsync" in f.message and "ROCm 5.0.0" in f.message
    assert any("libamdhip64.so.5 -> /opt/rocm/lib/libamdhip64.so.5" in e.value for e in f.evidence)


def test_build_rocm_from_runpath_before_2_10(tmp_path, matrix):
    """tensorflow-rocm 2.2.0's objects name their build's ROCm in RUNPATH (/opt/rocm-3.5.0/lib, read from the
    PyPI wheel): on ROCm 5.3 the libraries are not found and TFC401 names ROCm 3.5.0 as the build's."""
    root = rocm_tree(
        tmp_path, version="2.2.0", hip_soname="libamdhip64.so.3", runpath="/opt/rocm-3.5.0/lib:/opt/rocm/lib"
    )
    _env, report = check(root, matrix)
    (v,) = by_rule(report)["TFC401"]
    assert v.severity is Severity.ERROR and "built for ROCm 3.5.0" in v.message and "5.3.0" in v.message
    assert any(e.value == "/opt/rocm-3.5.0/lib" for e in v.evidence)


def test_gpu_not_in_the_binaries_and_matrix_disagreement(tmp_path, matrix):
    """gfx90a (MI200, gfx_target_version 90010) on tensorflow-rocm 2.2.0, whose code objects are gfx803-gfx908
    only (read from the wheel): TFC402 judges by the binaries and says so."""
    root = rocm_tree(
        tmp_path,
        version="2.2.0",
        hip_soname="libamdhip64.so.3",
        runpath="/opt/rocm/lib",
        targets=("gfx803", "gfx900", "gfx906", "gfx908"),
        rocm="3.5.0",
        rocm_soname="libamdhip64.so.3",
        gpus=(90010, 90006),
    )
    _env, report = check(root, matrix)
    found = by_rule(report)
    assert set(found) == {"TFC402"}
    (f,) = found["TFC402"]
    assert "gfx90a" in f.message and "KFD node 1" in f.message and ".hip_fatbin code objects" in f.message
    assert any(e.source.endswith("_pywrap_tensorflow_internal.so") for e in f.evidence)


def _env_with_objects(matrix, version, objects, gpus=()):
    b = dataclasses.replace(
        tf_build("2.21.0", distribution="tensorflow-rocm", is_cuda=False),
        version=version,
        is_rocm_build=True,
        rocm_objects=objects,
    )
    env = make_env(tf_builds=[b])
    return dataclasses.replace(
        env, host=dataclasses.replace(env.host, rocm=Rocm("6.0.2", "/opt/rocm/.info/version", gpus))
    )


def test_table_disagreement_is_information(matrix):
    obj = RocmObject("/t/libtensorflow_cc.so.2", offload_section=10, gfx_targets=("gfx90a", "gfx942"))
    (f,), _ = run_rule(_env_with_objects(matrix, "2.14.0.600", (obj,)), matrix, "TFC404")
    assert f.severity is Severity.INFO and "not in the matrix: gfx942" in f.message and "gfx1100" in f.message
    same = RocmObject(
        "/t/x.so", offload_section=10, gfx_targets=("gfx900", "gfx906", "gfx908", "gfx90a", "gfx1030", "gfx1100")
    )
    assert run_rule(_env_with_objects(matrix, "2.14.0.600", (same,)), matrix, "TFC404")[0] == []


def test_compressed_bundles_fall_back_to_the_matrix(matrix):
    """Targets not all readable (a zstd bundle): the binary list could be short, so TFC402 uses the matrix."""
    obj = RocmObject("/t/x.so", offload_section=10, offload_compressed=1, gfx_targets=("gfx900",))
    gpus = (AmdGpu(1, "gfx90a", "/sys/class/kfd/kfd/topology/nodes/1/properties"),)
    findings, _ = run_rule(_env_with_objects(matrix, "2.14.0.600", (obj,), gpus), matrix, "TFC402")
    assert findings == []  # gfx90a is in the matrix's list for 2.14.0.600
    (skip,) = run_rule(_env_with_objects(matrix, "2.14.0.600", (obj,), gpus), matrix, "TFC404")[1]
    assert "not known from both" in skip.reason


def test_matrix_rocm_soname_table(matrix):
    assert str(matrix.rocm_soname("libamdhip64.so.6").rocm) == "==6.*"
    assert matrix.rocm_soname("libamdhip64.so.3").confirmed
    assert matrix.rocm_soname("libamdhip64.so.5").confirmed  # read from tensorflow-rocm 2.9.1
    assert not matrix.rocm_soname("libamdhip64.so.7").confirmed  # from the CMake rule only
    assert matrix.rocm_soname("libcudart.so.12") is None
    # 2.2.0 is also a [[tensorflow]] release: no [[tensorflow_rocm]] row may claim it (the binaries say its ROCm)
    assert matrix.tf_rocm_release("2.2.0") is None


def test_hip_symbol_version_missing_from_an_older_runtime(tmp_path, matrix):
    """A libamdhip64.so.6 reference to hipMallocAsync@hip_6.0 (as tensorflow-rocm 2.14.0.600's objects need
    hip_4.2 and hip_6.0, read from the wheel) against a runtime whose version script defines hip_4.2 only: the
    loader stops with "version `hip_6.0' not found (required by .../libtensorflow_framework.so.2)"."""
    build, root = str(tmp_path / "build"), str(tmp_path / "img")
    both = "hip_4.2 { global: hipGetDeviceCount; local: *; };\nhip_6.0 { global: hipMallocAsync; } hip_4.2;\n"
    old = "hip_4.2 { global: hipGetDeviceCount; hipMallocAsync; local: *; };\n"
    for where, script in ((build, both), (f"{root}/opt/rocm-6.0.0/lib", old)):
        write(f"{where}/hip.map", script)
        hip_stub(
            f"{where}/libamdhip64.so.6", "libamdhip64.so.6", HIP_USED[::2], f"-Wl,--version-script,{where}/hip.map"
        )
        os.unlink(f"{where}/hip.map")
    targets = ("gfx900", "gfx906", "gfx908", "gfx90a", "gfx1030", "gfx1100")  # as the matrix lists (no TFC404)
    tree = rocm_tree(
        tmp_path, version="2.14.0.600", hip_soname="libamdhip64.so.6", uses=HIP_USED[::2], targets=targets, rocm=None
    )
    assert tree == root
    write(f"{root}/opt/rocm-6.0.0/.info/version", "6.0.0-91\n")
    os.symlink("/opt/rocm-6.0.0", f"{root}/opt/rocm")
    _env, report = check(root, matrix)
    found = by_rule(report)
    assert set(found) == {"TFC403"}
    f = found["TFC403"][0]
    assert "symbol versions hip_6.0 (libamdhip64.so.6: /opt/rocm-6.0.0/lib/libamdhip64.so.6)" in f.message


def test_rocm_objects_round_trip_and_validate_against_the_report_schema(tmp_path, matrix):
    """The new snapshot fields survive `scan` -> JSON -> `check --from`, and the JSON report validates."""
    import json

    import jsonschema

    from tfcompat.model import environment_from_json, to_json_dict
    from tfcompat.render.json import schema_text

    root = rocm_tree(tmp_path, hip_soname="libamdhip64.so.3", rocm="4.0.0", rocm_soname="libamdhip64.so.4")
    env, report = check(root, matrix)
    assert env.tensorflow.rocm_objects and environment_from_json(json.loads(json.dumps(to_json_dict(env)))) == env
    doc = json.loads(json.dumps(to_json_dict(report)))
    jsonschema.Draft202012Validator(json.loads(schema_text())).validate(doc)
    assert doc["environment"]["target"]["tensorflow"][0]["rocm_objects"][0]["rocm_needed"] == ["libamdhip64.so.3"]


# -- the branches the mutation run found unguarded (2026-12-07) ------------------------------------------------

HIP_NAMES = (
    "hipMallocAsync",
    "hipFreeAsync",
    "hipMemPoolCreate",
    "hipStreamGetCaptureInfo_v2",
    "hipGraphLaunch",
    "hipModuleGetGlobal",
)


def _no_rocm(env):
    return dataclasses.replace(env, host=dataclasses.replace(env.host, rocm=None))


def test_tfc403_skipped_when_no_object_was_checked(matrix):
    obj = RocmObject("/t/libtensorflow_framework.so.2", rocm_needed=("libamdhip64.so.6",), checked=False)
    findings, (skip,) = run_rule(_env_with_objects(matrix, "2.14.0.600", (obj,)), matrix, "TFC403")
    assert findings == [] and "no ROCm-linked object of TensorFlow was checked" in skip.reason


@pytest.mark.parametrize(("count", "shown"), [(5, ", ".join(HIP_NAMES[:5])), (6, ", ".join(HIP_NAMES[:5]) + " ...")])
def test_tfc403_lists_five_undefined_symbols_then_an_ellipsis(matrix, count, shown):
    """A node without /opt/rocm/.info/version (an image whose ROCm came from the distribution's packages): the
    message says so; undefined HIP symbols are named, the first five of those the probe kept (up to 8), with "..."
    only past five."""
    obj = RocmObject(
        "/t/libtensorflow_framework.so.2", checked=True, undefined_count=count, undefined=HIP_NAMES[:count]
    )
    env = _no_rocm(_env_with_objects(matrix, "2.14.0.600", (obj,)))
    (f,), _ = run_rule(env, matrix, "TFC403")
    assert f"{count} undefined symbols ({shown})" in f.message and "(no ROCm version file)" in f.message


def test_tfc403_version_only_evidence_says_no_symbol_is_undefined(matrix):
    """Only a symbol version is missing (hip_6.0, as in test_hip_symbol_version_missing_from_an_older_runtime):
    the "undefined in" evidence says "-" rather than an empty value."""
    need = "hip_6.0 (libamdhip64.so.6: /opt/rocm-6.0.0/lib/libamdhip64.so.6)"
    obj = RocmObject("/t/libtensorflow_framework.so.2", checked=True, missing_versions=(need,))
    (f,), _ = run_rule(_env_with_objects(matrix, "2.14.0.600", (obj,)), matrix, "TFC403")
    assert ("undefined in /t/libtensorflow_framework.so.2", "-") in [(e.fact, e.value) for e in f.evidence]
    assert ("version needed by /t/libtensorflow_framework.so.2", need) in [(e.fact, e.value) for e in f.evidence]
