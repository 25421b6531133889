"""Legacy TensorFlow (issue 14): 1.5-1.6 and 1.13-2.3, judged from minimal real installs on disk and the real scan.

Each install is a real tree (tests/legacy_tree.py: the wheels' layout, gcc-built libtensorflow_framework with the
symbol TF's dlopen() lives in, struct-built CUDA/cuDNN libraries named with their versions); `scan()` reads it as
`tfcompat check --root` does, and the node's driver and GPUs are joined to it as host facts.
"""

from __future__ import annotations

import pytest
from elf_fixtures import needs_gcc
from legacy_tree import INSTALLED_1_15_5, REQUIRES_1_15_5, SITE, make_install, with_host
from packaging.version import Version

from tfcompat.matrix import shipped_facts
from tfcompat.model import Gpu
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.target import TargetSpec
from tfcompat.rules import evaluate
from tfcompat.scan import scan

pytestmark = needs_gcc
V100 = Gpu(0, "Tesla V100-SXM2-16GB", compute_capability="7.0")


@pytest.fixture(autouse=True)
def _fresh_elf_cache():
    clear_cache()
    yield
    clear_cache()


def judge(root, matrix, driver, gpus=(V100,), site=SITE):
    env = scan(TargetSpec(root=str(root), site_packages=(site,)), nvml=False)
    report = evaluate(with_host(env, driver, tuple(gpus)), matrix)
    return env, report


def counted(report, severity):
    return [f for f in report.findings if f.severity.value == severity and f.waived is None]


def install_1_15(tmp_path, cudnn="7.6.5"):
    sonames = tuple(s.soname for s in shipped_facts().sonames("10", "1.15.5", 7))
    return make_install(
        tmp_path, "1.15.5", requires=REQUIRES_1_15_5, packages=INSTALLED_1_15_5, cudnn=cudnn, sonames=sonames
    )


# -- the case: TF 1.15 tensorflow-gpu, cuDNN 7.4 on the path, driver 410 ------------------------------


def test_tf_1_15_with_cudnn_7_4_and_driver_410_is_the_cudnn_minor(tmp_path, matrix):
    """tensorflow-gpu 1.15.5, cuDNN 7.4.1 from the system, driver 410.48, a V100: one error, TFC302.

    What is correct, from primary sources: the tested-build table (tensorflow.org/install/source#gpu) lists
    cuDNN 7.4 / CUDA 10.0 for tensorflow_gpu-1.15.0, but the wheels were compiled with cuDNN 7.6.0 (the constant
    in CudnnSupport::Init of the 1.15.0 and 1.15.5 wheels) and refuse an older minor:
    https://github.com/tensorflow/tensorflow/issues/35376 ("Loaded runtime CuDNN library: 7.4.1 but source was
    compiled with: 7.6.0", tensorflow-gpu==1.15.0, CUDA 10, cuDNN 7.4.1). The driver is fine: CUDA 10.0.130
    needs >= 410.48 (CUDA release notes, "CUDA Toolkit and Corresponding Driver Versions"). The CUDA 10.0
    libraries are the sonames the wheel asks for (libcudart.so.10.0, libcublas.so.10.0, ...).
    """
    inst = install_1_15(tmp_path, cudnn="7.4.1")
    env, report = judge(tmp_path, matrix, "410.48")
    native = env.target.native
    assert native.caller == inst.framework  # tensorflow_core/libtensorflow_framework.so.1 does the dlopen()
    assert "tensorflow::internal::LoadLibrary" in native.caller_source
    found = {lib.soname: lib.found for lib in native.libraries}
    assert found["libcudart.so.10.0"].version == "10.0.130"
    assert found["libcudnn.so.7"].version == "7.4.1"
    errors, warnings = counted(report, "error"), counted(report, "warning")
    assert [f.rule for f in errors] == ["TFC302"], [f.message for f in errors]
    assert warnings == [], [f.message for f in warnings]
    assert "cuDNN 7.4.1" in errors[0].message and "cuDNN 7.6" in errors[0].message
    assert "no pip wheel" in errors[0].remediation  # not "pip install nvidia-cudnn-cu12" for a cuDNN 7
    assert not [f for f in report.findings if f.rule.startswith("TFC20")]  # 410.48 meets CUDA 10.0


def test_tf_1_15_with_cudnn_7_6_and_driver_410_is_healthy(tmp_path, matrix):
    """The same node with the cuDNN the wheel was compiled with (7.6.5): nothing to report."""
    install_1_15(tmp_path, cudnn="7.6.5")
    _env, report = judge(tmp_path, matrix, "410.48")
    assert counted(report, "error") == [] and counted(report, "warning") == [], [f.message for f in report.findings]


def test_tf_1_15_on_driver_396_fails_for_cuda_10_0(tmp_path, matrix):
    """A CUDA 9.2 driver (396.54) under tensorflow-gpu 1.15: CUDA 10.0 needs >= 410.48, so cuInit fails
    ("CUDA driver version is insufficient for CUDA runtime version"):
    https://github.com/tensorflow/tensorflow/issues/26182 (tensorflow-gpu 1.13, libcublas.so.10.0) and the
    release notes' driver table. The finding names the CUDA 10.0 floor, which the matrix knows although
    build_info.py states only '10'."""
    install_1_15(tmp_path)
    _env, report = judge(tmp_path, matrix, "396.54")
    errors = counted(report, "error")
    assert [f.rule for f in errors] == ["TFC201"], [(f.rule, f.message) for f in report.findings]
    assert "410.48" in errors[0].message and "396.54" in errors[0].message


# -- TF 1.5 / 1.6: the exact cuDNN minor --------------------------------------------------------------------------


def install_1_5(tmp_path, cudnn):
    sonames = tuple(s.soname for s in shipped_facts().sonames("9.0", "1.5.0", 7))
    return make_install(
        tmp_path,
        "1.5.0",
        cuda="9.0",
        cudnn=cudnn,
        requires=("numpy (>=1.12.1)", "protobuf (>=3.4.0)"),
        packages={"numpy": "1.14.5", "protobuf": "3.5.1"},
        sonames=sonames,
        site_dir="/opt/venv/lib/python3.6/site-packages",
    )


def test_tf_1_5_refuses_a_newer_cudnn_minor(tmp_path, matrix):
    """tensorflow-gpu 1.5.0 (compiled with cuDNN 7.0.4) with cuDNN 7.1.2: refused although newer.

    https://github.com/stanfordnlp/mac-network/issues/23: TF 1.5 prints "Loaded runtime CuDNN library: 7102
    (compatibility version 7100) but source was compiled with 7004 (compatibility version 7000). If using a binary
    install, upgrade your CuDNN library to match." TF 1.5/1.6 compare major.minor for equality (the 1.5.0 and
    1.6.0 wheels compare with 7000 and carry that message; 1.7 relaxed it to "equal or higher minor"). The
    build_info.py of 1.5 states no CUDA or cuDNN: the sonames come from the DT_NEEDED of TF's own objects."""
    install_1_5(tmp_path, "7.1.2")
    env, report = judge(tmp_path, matrix, "390.46", site="/opt/venv/lib/python3.6/site-packages")
    names = {lib.soname for lib in env.target.native.libraries}
    assert {"libcudart.so.9.0", "libcublas.so.9.0", "libcusolver.so.9.0", "libcudnn.so.7"} <= names
    errors = counted(report, "error")
    assert [f.rule for f in errors] == ["TFC302"], [(f.rule, f.message) for f in report.findings]
    assert "accepts only that minor" in errors[0].message and "7.1.2" in errors[0].message


def test_tf_1_5_accepts_another_patch_of_its_minor(tmp_path, matrix):
    """cuDNN 7.0.5 under a 7.0.4 build: the same compatibility version (7000), accepted."""
    install_1_5(tmp_path, "7.0.5")
    _env, report = judge(tmp_path, matrix, "390.46", site="/opt/venv/lib/python3.6/site-packages")
    assert not [f for f in report.findings if f.rule == "TFC302"]
    assert counted(report, "error") == [], [(f.rule, f.message) for f in report.findings]


def test_tf_2_1_accepts_a_newer_cudnn_minor(tmp_path, matrix):
    """From 1.7 a newer minor is fine: tensorflow 2.1.4 (compiled with 7.6.4) with cuDNN 7.6.5 -> no TFC302;
    with 7.5.1 -> TFC302 (https://github.com/tensorflow/tensorflow/issues/37606: "Loaded runtime CuDNN library:
    7.5.1 but source was compiled with: 7.6.5")."""
    facts = shipped_facts()
    sonames = tuple(s.soname for s in facts.sonames("10.1", "2.1.4", 7))
    common = {
        "distribution": "tensorflow",
        "cuda": "10.1",
        "requires": ("numpy (<1.19.0,>=1.16.0)", "protobuf (>=3.8.0)"),
        "packages": {"numpy": "1.18.5", "protobuf": "3.19.6"},
        "sonames": sonames,
    }
    make_install(tmp_path / "ok", "2.1.4", cudnn="7.6.5", **common)
    _env, report = judge(tmp_path / "ok", matrix, "418.39")
    assert not [f for f in report.findings if f.rule == "TFC302"]
    make_install(tmp_path / "old", "2.1.4", cudnn="7.5.1", **common)
    _env, report = judge(tmp_path / "old", matrix, "418.39")
    assert [f.rule for f in counted(report, "error")] == ["TFC302"]


# -- every release in the matrix, healthy ----------------------------------------------------------------------


def _lowest(candidates, spec):
    hits = [c for c in candidates if spec is None or spec.contains(Version(c), prereleases=True)]
    return hits[0] if hits else None


NUMPY = ("1.12.1", "1.13.3", "1.14.5", "1.16.6", "1.18.5", "1.19.5", "1.21.6", "1.23.5", "1.24.3", "1.26.4", "2.1.0")
PROTOBUF = ("3.4.0", "3.6.1", "3.8.0", "3.9.2", "3.19.6", "3.20.3", "4.21.12", "4.25.3", "5.28.3", "6.31.1")
KERAS = tuple(sorted([f"2.{i}.0" for i in range(6, 16)] + ["2.13.1"], key=Version)) + (
    "3.0.0",
    "3.2.0",
    "3.5.0",
    "3.10.0",
    "3.12.0",
)
ML_DTYPES = ("0.2.0", "0.3.1", "0.3.2", "0.4.0", "0.5.1")
H5PY = ("2.10.0", "3.1.0", "3.6.0", "3.10.0", "3.11.0", "3.14.0")
PYTHONS = ("3.13", "3.12", "3.11", "3.10", "3.9", "3.8", "3.7", "3.6", "3.5")


def _above_build_floor(rel, name, version):
    """Inside the floors the build sets beyond its metadata (TFC110/TFC111): NumPy with the C API TF was compiled
    against, protobuf below 4.21 where the generated code predates protoc 3.19."""
    from tfcompat.matrix.abi_floors import PROTOBUF_UPB, legacy_gencode, numpy_floor

    if name == "numpy" and rel.numpy_built_with is not None:
        floor = numpy_floor(rel.numpy_built_with)
        return floor is None or Version(version) >= floor[0]
    if name == "protobuf" and rel.protoc is not None and legacy_gencode(rel.protoc):
        return Version(version) < PROTOBUF_UPB
    return True


def healthy_case(rel, matrix):
    """A healthy install of the newest release of matrix row `rel`: (install kwargs, driver, GPU, site)."""
    version = rel.releases[-1]
    facts = matrix.facts
    cuda = str(rel.cuda)
    major = rel.cudnn.major
    cudnn = f"{rel.cudnn}.5"  # a newer patch of the compiled minor
    python = next(p for p in PYTHONS if rel.python.contains(Version(p)))
    site = f"/opt/venv/lib/python{python}/site-packages"
    requires, packages = [], {}
    for name, spec, candidates in (
        ("numpy", rel.numpy, NUMPY if rel.numpy_abi != 1 else tuple(n for n in NUMPY if n < "2")),
        ("protobuf", rel.protobuf, PROTOBUF),
        ("keras", rel.keras, KERAS),
        ("ml-dtypes", rel.ml_dtypes, ML_DTYPES),
        ("h5py", rel.h5py, H5PY),
    ):
        if spec is None:
            continue
        requires.append(f"{name} ({spec})")
        candidates = tuple(c for c in candidates if _above_build_floor(rel, name, c))
        packages[name] = _lowest(candidates, spec)
        assert packages[name], (rel.label, name, spec)
    sass = rel.sass
    cc = "7.0" if not sass or "7.0" in sass else max(sass, key=Version)
    need = matrix.driver_need(cuda)
    kwargs = {
        "distribution": "tensorflow-gpu" if Version(version) < Version("2.1") else "tensorflow",
        "cuda": cuda,
        "cudnn": cudnn,
        "ccs": rel.compute_capabilities,
        "requires": tuple(requires),
        "packages": packages,
        "sonames": tuple(s.soname for s in facts.sonames(cuda, version, major)),
        "sublibraries": facts.cudnn_sublibraries(major),
        "site_dir": site,
    }
    return version, kwargs, need.full_text, Gpu(0, "test GPU", compute_capability=cc), site


def _rows():
    from tfcompat.matrix import load_matrix

    return [pytest.param(i, id=r.label.split(" ", 2)[-1]) for i, r in enumerate(load_matrix().tensorflow)]


@pytest.mark.parametrize("index", _rows())
def test_healthy_install_of_every_release_has_no_error_and_no_warning(tmp_path, matrix, index):
    """The newest release of each [[tensorflow]] row, installed as its wheel would be (layout of its minor), with
    Python, NumPy, protobuf, Keras, ml_dtypes, h5py inside its ranges, every library it loads at the CUDA/cuDNN it
    was built with, the driver of its CUDA and a GPU its build covers: zero errors, zero warnings."""
    rel = matrix.tensorflow[index]
    version, kwargs, driver, gpu, site = healthy_case(rel, matrix)
    make_install(tmp_path, version, **kwargs)
    env, report = judge(tmp_path, matrix, driver, (gpu,), site=site)
    bad = [(f.rule, f.message) for f in report.findings if f.severity.value in ("error", "warning")]
    assert bad == []
    assert env.target.native is not None and env.target.native.libraries
    # the verdict was reached, not skipped: the driver, the libraries, cuDNN's version and the ABI were judged
    skipped = {s.rule: s.reason for s in report.skipped}
    assert not {"TFC201", "TFC301", "TFC302", "TFC306"} & set(skipped), skipped


def test_custom_op_check_finds_tf_1_15_core_in_tensorflow_core(tmp_path, matrix):
    """TF 1.15-2.1 keep libtensorflow_framework and _pywrap_tensorflow_internal in tensorflow_core/ (tensorflow/
    is a shim): the custom-op check must take TF's symbols from there, not report "no TensorFlow core library"."""
    from elf_fixtures import gcc_so
    from legacy_tree import LOAD_LIBRARY
    from probe_helpers import make_dist

    inst = install_1_15(tmp_path)
    site = str(tmp_path) + inst.site
    dist = make_dist(site, "my-op", "1.0")
    # a plugin calling tensorflow::internal::LoadLibrary, linked against the framework as TF's build links plugins
    framework = str(tmp_path) + inst.framework
    plugin = gcc_so(
        f"{site}/my_op/_my_op.so",
        f"extern void {LOAD_LIBRARY}(void);\nvoid my_op(void) {{ {LOAD_LIBRARY}(); }}\n",
        flags=["-nostdlib", "-Wl,--no-as-needed", framework],
    )
    with open(f"{dist}/RECORD", "w") as f:
        f.write("my_op/_my_op.so,,\n")
    env, _ = judge(tmp_path, matrix, "440.33.01")
    why = env.unknown("custom_ops")
    assert why is None or "no TensorFlow core library" not in why, why
    (op,) = [o for o in env.target.custom_ops if o.path.endswith("_my_op.so")]
    assert op.ok and not op.undefined, op  # its one TF symbol is defined by tensorflow_core/'s framework
    assert plugin
