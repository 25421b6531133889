"""3xx rules from constructed Environments: environment in, findings out."""

import dataclasses

import pytest
from envs import SITE, make_env, run_rule, tf_build

from tfcompat.model import (
    Evidence,
    Gpu,
    LibraryCopy,
    LibraryResolution,
    NativeLibraries,
    Severity,
    Unknown,
    VersionNeedCheck,
)
from tfcompat.rules import catalog

FW = f"{SITE}/tensorflow/libtensorflow_framework.so.2"
AVX = ("avx", "avx2", "fma", "sse4_2")


def wheel(pkg, soname, version, dist, via="DT_RUNPATH"):
    path = f"{SITE}/nvidia/{pkg}/lib/{soname}"
    return LibraryCopy(
        path,
        path,
        via,
        f"$ORIGIN/../nvidia/{pkg}/lib",
        FW,
        version,
        f"{SITE}/{dist.replace('-', '_')}-{version}.dist-info/METADATA",
        dist,
    )


def system(path, version, via="ld.so.cache", entry="/etc/ld.so.cache", source=None):
    return LibraryCopy(path, path, via, entry, None, version, source or f"file name {path}")


def res(name, soname, found, role="gpu", others=(), missing_deps=(), other_sonames=()):
    return LibraryResolution(
        name, soname, role, name, FW, found, tuple(others), tuple(missing_deps), tuple(other_sonames)
    )


def good_libraries():
    return [
        res("cuda", "libcuda.so.1", None, role="driver"),
        res(
            "cudart", "libcudart.so.12", wheel("cuda_runtime", "libcudart.so.12", "12.5.82", "nvidia-cuda-runtime-cu12")
        ),
        res("cublas", "libcublas.so.12", wheel("cublas", "libcublas.so.12", "12.5.3.2", "nvidia-cublas-cu12")),
        res("cudnn", "libcudnn.so.9", wheel("cudnn", "libcudnn.so.9", "9.3.0.75", "nvidia-cudnn-cu12")),
        res(
            "cudnn_ops",
            "libcudnn_ops.so.9",
            wheel("cudnn", "libcudnn_ops.so.9", "9.3.0.75", "nvidia-cudnn-cu12", "DT_RPATH"),
            role="cudnn-sublibrary",
        ),
        res(
            "cudnn_cnn",
            "libcudnn_cnn.so.9",
            wheel("cudnn", "libcudnn_cnn.so.9", "9.3.0.75", "nvidia-cudnn-cu12", "DT_RPATH"),
            role="cudnn-sublibrary",
            missing_deps=("libcuda.so.1 (needed by x)",),
        ),
        res("nccl", "libnccl.so.2", wheel("nccl", "libnccl.so.2", "2.27.7", "nvidia-nccl-cu12"), role="feature"),
        res("nvshmem", "libnvshmem_host.so.3", None, role="optional"),
        res(
            "cupti",
            "libcupti.so.12",
            wheel("cuda_cupti", "libcupti.so.12", "12.5.82", "nvidia-cuda-cupti-cu12"),
            role="feature",
        ),
    ]


def native(libs=None, abi=(), cpu=("avx",), llp=None):
    return NativeLibraries(
        FW,
        "defines tsl::internal::LoadDynamicLibrary",
        "/venv/bin/python",
        llp,
        (),
        "/etc/ld.so.cache (new format, 10 entries)",
        None,
        (),
        (),
        tuple(good_libraries() if libs is None else libs),
        tuple(abi),
        tuple(cpu),
        "TensorFlow 1.6.0 release notes",
    )


def replace(libs, name, new):
    return [new if lib.name == name else lib for lib in libs]


H100 = Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-1", "00000000:01:00.0", "9.0")


def test_healthy_environment_has_no_3xx_findings(matrix):
    env = make_env(native=native(), cpu_flags=AVX)
    for rid in ("TFC301", "TFC302", "TFC303", "TFC304", "TFC305", "TFC306", "TFC307"):
        findings, _ = run_rule(env, matrix, rid)
        assert findings == [], rid


def test_rules_are_documented():
    rules = {r.id: r for r in catalog() if r.id.startswith("TFC3")}
    assert set(rules) == {"TFC301", "TFC302", "TFC303", "TFC304", "TFC305", "TFC306", "TFC307"}
    for r in rules.values():
        for section in ("What:", "Why it crashes:", "How to fix:"):
            assert section in r.doc, (r.id, section)
        # TFC306 reads TF's own objects, which are known when the CUDA library list is not (issue 14)
        assert ("libraries" in r.requires or r.id == "TFC306") and "tensorflow" in r.requires


# -- TFC301 --------------------------------------------------------------------------------------------


def missing_cusolver():
    off = LibraryCopy(
        f"{SITE}/nvidia/cusolver/lib/libcusolver.so.11",
        f"{SITE}/nvidia/cusolver/lib/libcusolver.so.11",
        "installed, not on the search path",
        f"{SITE}/nvidia/cusolver/lib",
        None,
        "11.6.3.83",
        "m",
        "nvidia-cusolver-cu12",
    )
    return good_libraries() + [res("cusolver", "libcusolver.so.11", None, others=[off])]


def test_missing_library_without_gpu_is_a_warning(matrix):
    env = make_env(native=native(missing_cusolver()))
    (f,), _ = run_rule(env, matrix, "TFC301")
    assert f.severity is Severity.WARNING
    assert "libcusolver.so.11" in f.message and "no GPU" in f.message
    assert f"export LD_LIBRARY_PATH={SITE}/nvidia/cusolver/lib" in f.remediation
    assert any("installed but not on the search path" in e.value for e in f.evidence)


def missing_everywhere():
    return good_libraries() + [res("cusolver", "libcusolver.so.11", None)]


def test_missing_library_with_gpus_is_an_error(matrix):
    env = make_env(native=native(missing_everywhere()), gpus=[H100], driver="550.54.15")
    (f,), _ = run_rule(env, matrix, "TFC301")
    assert f.severity is Severity.ERROR and "1 GPU" in f.message and "H100" in f.message
    # a loaded kernel module counts as GPUs present even when NVML did not list them
    env = make_env(
        native=native(missing_everywhere()),
        driver="550.54.15",
        unknowns=[Unknown("gpus", "NVML not queried (--no-nvml)")],
    )
    (f,), _ = run_rule(env, matrix, "TFC301")
    assert f.severity is Severity.ERROR


def test_installed_but_off_path_with_gpus_is_an_unconfirmed_warning(matrix):
    """The TF 2.21 [and-cuda] cuSOLVER case: the wheel is installed, the framework's RUNPATH misses it.
    Predicted from TF's loader code, not yet seen on a GPU node: a warning that says how to confirm."""
    env = make_env(native=native(missing_cusolver()), gpus=[H100], driver="550.54.15")
    (f,), _ = run_rule(env, matrix, "TFC301")
    assert f.severity is Severity.WARNING and "TF_CPP_VMODULE=dso_loader=1" in f.message


def test_plain_tensorflow_suggests_the_and_cuda_extra(matrix):
    libs = [
        res(lib.name, lib.soname, None, role=lib.role) for lib in good_libraries() if lib.role != "cudnn-sublibrary"
    ]
    env = make_env(native=native(libs))
    findings, _ = run_rule(env, matrix, "TFC301")
    gpu = [f for f in findings if f.severity is Severity.WARNING]
    assert len(gpu) == 1 and "3 libraries" in gpu[0].message
    assert 'pip install "tensorflow[and-cuda]==2.21.0"' in gpu[0].remediation
    optional = [f for f in findings if f.severity is Severity.INFO]
    assert len(optional) == 1 and "libnccl.so.2" in optional[0].message and "nvshmem" not in optional[0].message


def test_missing_dependency_breaks_a_found_library(matrix):
    libs = replace(
        good_libraries(),
        "cublas",
        res(
            "cublas",
            "libcublas.so.12",
            wheel("cublas", "libcublas.so.12", "12.5.3.2", "nvidia-cublas-cu12"),
            missing_deps=("libnvJitLink.so.12 (needed by /x/libcublas.so.12)",),
        ),
    )
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC301")
    assert "libnvJitLink.so.12" in f.remediation and "libcublas.so.12" in f.message


def test_unusable_file_counts_as_missing(matrix):
    bad = LibraryCopy(
        "/usr/lib/libcudnn.so.9",
        "/usr/lib/libcudnn.so.9",
        "default path",
        "/usr/lib",
        None,
        None,
        None,
        None,
        "cannot be loaded: not an ELF file (invalid ELF header)",
    )
    libs = replace(good_libraries(), "cudnn", res("cudnn", "libcudnn.so.9", bad))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC301")
    assert "invalid ELF header" in f.evidence[0].value


def test_cpu_only_build_and_unknown_libraries_are_skipped(matrix):
    env = make_env(tf_builds=[tf_build("2.21.0", is_cuda=False)], native=native([]))
    findings, skips = run_rule(env, matrix, "TFC301")
    assert findings == [] and "CPU-only build" in skips[0].reason
    env = make_env(unknowns=[Unknown("libraries", "no libtensorflow_framework.so* in /x")])
    findings, skips = run_rule(env, matrix, "TFC301")
    assert findings == [] and "no libtensorflow_framework" in skips[0].reason


# -- TFC302 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version,expect",
    [
        ("9.3.0.75", None),
        ("9.28.0.42", None),
        ("9.1.0", "older than cuDNN 9.3"),
        ("8.9.7", "another major"),
        ("9", None),  # only the major is known: nothing to say about the minor
    ],
)
def test_cudnn_version_against_the_build(matrix, version, expect):
    libs = replace(
        good_libraries(),
        "cudnn",
        res("cudnn", "libcudnn.so.9", system("/usr/lib/x86_64-linux-gnu/libcudnn.so.9", version)),
    )
    findings, _ = run_rule(make_env(native=native(libs)), matrix, "TFC302")
    if expect is None:
        assert findings == []
    else:
        (f,) = findings
        assert expect in f.message and f.severity is Severity.ERROR and version in f.message


def test_cudnn_unknown_version_is_skipped(matrix):
    libs = replace(good_libraries(), "cudnn", res("cudnn", "libcudnn.so.9", system("/usr/lib/libcudnn.so.9", None)))
    findings, skips = run_rule(make_env(native=native(libs)), matrix, "TFC302")
    assert findings == [] and "unknown" in skips[0].reason


# -- TFC303 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version,severity,text",
    [
        ("13.0.48", Severity.ERROR, "another CUDA major"),
        ("12.2.140", Severity.WARNING, "older than CUDA 12.5.1"),
        ("12.9.79", None, None),
        ("12", None, None),
    ],
)
def test_cuda_runtime_against_the_build(matrix, version, severity, text):
    libs = replace(
        good_libraries(),
        "cudart",
        res("cudart", "libcudart.so.12", system("/usr/local/cuda/lib64/libcudart.so.12", version)),
    )
    findings, _ = run_rule(make_env(native=native(libs)), matrix, "TFC303")
    if severity is None:
        assert findings == []
    else:
        (f,) = findings
        assert f.severity is severity and text in f.message


def test_cupti_of_another_major_is_a_warning(matrix):
    cupti = LibraryCopy(
        "/usr/local/cuda-13.0/lib/libcupti.so",
        "/usr/local/cuda-13.0/lib/libcupti.so.13",
        "ld.so.cache",
        "/etc/ld.so.cache",
        None,
        "13",
        "file name (major version only)",
    )
    libs = replace(good_libraries(), "cupti", res("cupti", "libcupti.so.12", cupti, role="feature"))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC303")
    assert f.severity is Severity.WARNING and "found as libcupti.so" in f.message and "profiler" in f.message


# -- TFC304 --------------------------------------------------------------------------------------------


def test_ld_library_path_copy_shadows_the_wheel(matrix):
    winner = system(
        "/usr/local/cuda-12.2/lib64/libcublas.so.12.2.5.6",
        "12.2.5.6",
        via="LD_LIBRARY_PATH",
        entry="/usr/local/cuda-12.2/lib64",
    )
    libs = replace(
        good_libraries(),
        "cublas",
        res(
            "cublas",
            "libcublas.so.12",
            winner,
            others=[wheel("cublas", "libcublas.so.12", "12.5.3.2", "nvidia-cublas-cu12")],
        ),
    )
    (f,), _ = run_rule(make_env(native=native(libs, llp="/usr/local/cuda-12.2/lib64")), matrix, "TFC304")
    assert f.severity is Severity.WARNING
    assert "shadows" in f.message and "12.2.5.6" in f.message and "nvidia-cublas-cu12 12.5.3.2" in f.message
    assert "Remove /usr/local/cuda-12.2/lib64 from LD_LIBRARY_PATH" in f.remediation
    assert any(e.fact == "LD_LIBRARY_PATH" for e in f.evidence)


def test_disagreeing_copies_behind_the_winner_are_info(matrix):
    libs = replace(
        good_libraries(),
        "cudart",
        res(
            "cudart",
            "libcudart.so.12",
            wheel("cuda_runtime", "libcudart.so.12", "12.5.82", "nvidia-cuda-runtime-cu12"),
            others=[
                system("/usr/local/cuda/lib64/libcudart.so.12.2.140", "12.2.140"),
                system("/usr/lib/libcudart.so.12", "12.5.82", via="default path"),
            ],
        ),
    )
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC304")
    assert f.severity is Severity.INFO and "12.2.140" in f.message and "/usr/lib/libcudart.so.12" not in f.message


def test_winner_of_unknown_version_is_named_by_its_path(matrix):
    """Issue 14 (small defects): TFC304 printed "None wins" when the winning copy's version was unknown (a
    libcudart.so.12 without a version in its name or a wheel's metadata)."""
    libs = replace(
        good_libraries(),
        "cudart",
        res(
            "cudart",
            "libcudart.so.12",
            system("/opt/app/lib/libcudart.so.12", None),
            others=[system("/usr/local/cuda/lib64/libcudart.so.12.2.140", "12.2.140")],
        ),
    )
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC304")
    assert "None" not in f.message
    assert "libcudart.so.12: a copy of unknown version (/opt/app/lib/libcudart.so.12) wins, also" in f.message


# -- TFC305 --------------------------------------------------------------------------------------------


def test_mixed_cudnn_sublibraries(matrix):
    stray = system(
        "/usr/local/cudnn-9.1/lib/libcudnn_cnn.so.9.1.0",
        "9.1.0",
        via="LD_LIBRARY_PATH",
        entry="/usr/local/cudnn-9.1/lib",
    )
    libs = replace(good_libraries(), "cudnn_cnn", res("cudnn_cnn", "libcudnn_cnn.so.9", stray, role="cudnn-sublibrary"))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC305")
    assert f.severity is Severity.ERROR and "libcudnn_cnn.so.9 is 9.1.0" in f.message
    assert "LD_LIBRARY_PATH" in f.remediation


def test_unknown_sublibrary_versions_from_two_directories_warn(matrix):
    odd = system("/opt/other/libcudnn_cnn.so.9", None, via="default path")
    libs = replace(good_libraries(), "cudnn_cnn", res("cudnn_cnn", "libcudnn_cnn.so.9", odd, role="cudnn-sublibrary"))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC305")
    assert f.severity is Severity.WARNING and "2 directories" in f.message


# -- TFC306 --------------------------------------------------------------------------------------------


def test_glibcxx_not_met_by_the_picked_libstdcxx(matrix):
    check = VersionNeedCheck(
        FW,
        "libstdc++.so.6",
        ("GLIBCXX_3.4.22", "GLIBCXX_3.4.30"),
        "/opt/conda/lib/libstdc++.so.6.0.28",
        "LD_LIBRARY_PATH",
        ("GLIBCXX_3.4.30",),
        ("GLIBCXX_3.4.28",),
    )
    ok = VersionNeedCheck(FW, "libc.so.6", ("GLIBC_2.17",), "/lib/libc.so.6", "already loaded", (), ("GLIBC_2.36",))
    (f,), _ = run_rule(make_env(native=native(abi=[check, ok])), matrix, "TFC306")
    assert f.severity is Severity.ERROR
    assert "GLIBCXX_3.4.30" in f.message and "/opt/conda/lib/libstdc++.so.6.0.28" in f.message
    assert "GLIBCXX_3.4.28" in f.message and "import tensorflow fails" in f.message


def test_needed_system_library_not_found(matrix):
    check = VersionNeedCheck(FW, "libstdc++.so.6", ("GLIBCXX_3.4.22",), None, None, ("GLIBCXX_3.4.22",), ())
    (f,), _ = run_rule(make_env(native=native(abi=[check])), matrix, "TFC306")
    assert f.severity is Severity.ERROR and "cannot open shared object file" in f.message


def test_cuda_library_abi_depends_on_gpus(matrix):
    check = VersionNeedCheck(
        f"{SITE}/nvidia/cudnn/lib/libcudnn_ops.so.9",
        "libc.so.6",
        ("GLIBC_2.28",),
        "/lib/libc.so.6",
        "already loaded",
        ("GLIBC_2.28",),
        ("GLIBC_2.27",),
    )
    driver = VersionNeedCheck(FW, "libcuda.so.1", ("libcuda.so.1",), None, None, ("libcuda.so.1",), ())
    (f,), _ = run_rule(make_env(native=native(abi=[check, driver])), matrix, "TFC306")
    assert f.severity is Severity.WARNING and "first GPU op" in f.message
    (f,), _ = run_rule(make_env(native=native(abi=[check]), gpus=[H100], driver="550.54.15"), matrix, "TFC306")
    assert f.severity is Severity.ERROR


# -- TFC307 --------------------------------------------------------------------------------------------


def test_cpu_without_avx(matrix):
    env = make_env(native=native(), cpu_flags=("sse2", "sse4_2"))
    (f,), _ = run_rule(env, matrix, "TFC307")
    assert f.severity is Severity.ERROR and "AVX" in f.message and "aborts" in f.message


def test_cpu_flags_unknown_or_no_requirement(matrix):
    env = make_env(native=native(), unknowns=[Unknown("platform.cpu_flags", "no /proc/cpuinfo inside --root")])
    findings, skips = run_rule(env, matrix, "TFC307")
    assert findings == [] and "/proc/cpuinfo" in skips[0].reason
    findings, skips = run_rule(make_env(native=native(cpu=()), cpu_flags=("sse2",)), matrix, "TFC307")
    assert findings == [] and "not x86-64" in skips[0].reason


# -- TFC306/TFC307: branches the mutation run found unguarded (2026-12-07) ------------------------------------


def _glibcxx(obj):
    """`obj` needs GLIBCXX_3.4.30 from a conda libstdc++ that defines up to 3.4.28 (the rule's docstring case:
    "version `GLIBCXX_3.4.30' not found")."""
    return VersionNeedCheck(
        obj,
        "libstdc++.so.6",
        ("GLIBCXX_3.4.30",),
        "/opt/conda/lib/libstdc++.so.6.0.28",
        "LD_LIBRARY_PATH",
        ("GLIBCXX_3.4.30",),
        ("GLIBCXX_3.4.28",),
    )


@pytest.mark.parametrize(
    "obj",
    [
        f"{SITE}/tensorflow/compiler/tf2xla/ops/_xla_ops.so",  # inside the package, not one of TF_OBJECTS' names
        f"{SITE}/tensorflow_core/python/_pywrap_tensorflow_internal.so",  # the 1.15-2.1 layout
        "/opt/tf-build/bazel-bin/tensorflow/libtensorflow_framework.so.2",  # by name, outside the package
    ],
)
def test_tfs_own_objects_by_place_or_by_name(matrix, obj):
    """One of TF's own objects fails `import tensorflow` itself: an error on a node without GPUs, with no GPU
    evidence, and the message says "needs" for one object."""
    (f,), _ = run_rule(make_env(native=native(abi=[_glibcxx(obj)])), matrix, "TFC306")
    assert f.severity is Severity.ERROR and "import tensorflow fails" in f.message
    assert f.message.startswith(f"{obj.rsplit('/', 1)[1]} needs GLIBCXX_3.4.30 from libstdc++.so.6")
    assert not any(e.fact == "gpus" for e in f.evidence)


def test_two_objects_need_and_a_cuda_library_names_the_gpus(matrix):
    cudnn = f"{SITE}/nvidia/cudnn/lib/libcudnn_ops.so.9"
    env = make_env(native=native(abi=[_glibcxx(FW), _glibcxx(cudnn)]))
    (f,), _ = run_rule(env, matrix, "TFC306")
    assert f.message.startswith("libtensorflow_framework.so.2, libcudnn_ops.so.9 need GLIBCXX_3.4.30")
    (f,), _ = run_rule(make_env(native=native(abi=[_glibcxx(cudnn)])), matrix, "TFC306")
    assert f.severity is Severity.WARNING and any(e.fact == "gpus" for e in f.evidence)


def test_tfc306_skips(matrix):
    """No symbol-version needs read, or no library data at all: TFC306 says which."""
    findings, (skip,) = run_rule(make_env(native=native(abi=[])), matrix, "TFC306")
    assert findings == [] and "no symbol-version needs were read" in skip.reason
    env = make_env(native=None, unknowns=[Unknown("libraries", "no [[dlopen]] table for tensorflow 9.9")])
    findings, (skip,) = run_rule(env, matrix, "TFC306")
    assert findings == [] and skip.reason == "no [[dlopen]] table for tensorflow 9.9"
    findings, (skip,) = run_rule(make_env(native=None), matrix, "TFC306")
    assert findings == [] and "were not resolved" in skip.reason


def test_tfc307_names_the_cpu_and_its_grammar(matrix):
    """A CPU model unknown says so; one missing set is "it", two are "them"; no library data is a skip."""
    (f,), _ = run_rule(make_env(native=native(), cpu_flags=("sse2",)), matrix, "TFC307")
    assert "this CPU (model unknown) does not have it:" in f.message
    env = make_env(native=native(cpu=("avx", "avx2")), cpu_flags=("sse2",))
    (f,), _ = run_rule(env, matrix, "TFC307")
    assert "compiled to use AVX, AVX2, but this CPU (model unknown) does not have them:" in f.message
    findings, (skip,) = run_rule(make_env(native=None, cpu_flags=("sse2",)), matrix, "TFC307")
    assert findings == [] and "were not resolved" in skip.reason


# -- TFC302: skips and fallbacks the mutation run found unguarded (2026-12-07) ----------------------------------


def _cudnn(version):
    return replace(
        good_libraries(),
        "cudnn",
        res("cudnn", "libcudnn.so.9", system("/usr/lib/x86_64-linux-gnu/libcudnn.so.9", version)),
    )


def test_tfc302_skips_say_why(matrix):
    cpu = make_env(tf_builds=[tf_build(is_cuda=False)], native=native())
    assert "CPU-only build" in run_rule(cpu, matrix, "TFC302")[1][0].reason
    no_cudnn = [lib for lib in good_libraries() if lib.name != "cudnn"]
    assert "loads no cuDNN" in run_rule(make_env(native=native(no_cudnn)), matrix, "TFC302")[1][0].reason
    absent = replace(good_libraries(), "cudnn", res("cudnn", "libcudnn.so.9", None))
    findings, (skip,) = run_rule(make_env(native=native(absent)), matrix, "TFC302")
    assert findings == [] and "libcudnn.so.9 is not found (TFC301 reports it)" in skip.reason
    # a development build the matrix does not list: the build's minor is unknown (build_info states the major)
    dev = dataclasses.replace(tf_build(), version="2.22.0.dev20251201")
    findings, (skip,) = run_rule(make_env(tf_builds=[dev], native=native(_cudnn("9.1.0"))), matrix, "TFC302")
    assert findings == [] and "was built with is not in the matrix (build_info.py says only 9)" in skip.reason


def test_another_major_named_from_the_soname_without_build_info(matrix):
    """No build_info.py stating cuDNN (TF 1.5's has none): the soname TF asks for (libcudnn.so.9) gives the major,
    and the evidence names build_info.py generically."""
    build = dataclasses.replace(tf_build(), cudnn_version=None, build_info_path=None)
    (f,), _ = run_rule(make_env(tf_builds=[build], native=native(_cudnn("8.9.7"))), matrix, "TFC302")
    assert "was built with cuDNN 9: another major version" in f.message
    assert ("tensorflow build cuDNN", "9", "build_info.py") in [(e.fact, e.value, e.source) for e in f.evidence]


@pytest.mark.parametrize(("version", "hits"), [("9.3.0.75", 0), ("9.28.0.42", 0), ("9.1.0", 1)])
def test_without_a_matrix_runtime_rule_the_minor_rule_applies(matrix, version, hits):
    """A matrix that states no [cudnn_runtime] rule (an older or site matrix): same major, minor >= the build's."""
    bare = dataclasses.replace(matrix, cudnn_runtime=None)
    assert len(run_rule(make_env(native=native(_cudnn(version))), bare, "TFC302")[0]) == hits


def _old_cudnn(tf_version, cuda, cudnn_major, loaded, distribution=None):
    """TF `tf_version` (CUDA `cuda`, cuDNN `cudnn_major` by build_info) whose libcudnn.so.<major> resolves to
    `loaded` in /usr/lib (or a conda package's copy when `distribution` names one)."""
    build = dataclasses.replace(tf_build(tf_version), cuda_version=cuda, cudnn_version=cudnn_major)
    copy = system(f"/usr/lib/x86_64-linux-gnu/libcudnn.so.{cudnn_major}", loaded)
    if distribution:
        copy = dataclasses.replace(copy, distribution=distribution)
    libs = replace(good_libraries(), "cudnn", res("cudnn", f"libcudnn.so.{cudnn_major}", copy))
    return make_env(tf_builds=[build], native=native(libs))


def test_remediation_names_the_next_major_as_the_bound(matrix):
    """Another major: install <major>.x, below the next major (pip's wheel, or conda's channel for a conda copy)."""
    (f,), _ = run_rule(make_env(native=native(_cudnn("8.9.7"))), matrix, "TFC302")
    assert 'pip install "nvidia-cudnn-cu12>=9,<10" for CUDA 12 wheels' in f.remediation
    env = _old_cudnn("2.21.0", "12.5.1", "9", "8.9.7.29", distribution="conda-forge::cudnn")
    (f,), _ = run_rule(env, matrix, "TFC302")
    assert 'conda install -c conda-forge "cudnn>=9,<10"' in f.remediation and "pip install" not in f.remediation


def test_older_minor_remediation_by_major(matrix):
    """An older minor: from cuDNN 8 a pip wheel exists (TF 2.5, built with 8.1, on 8.0.5: tensorflow/tensorflow#50217);
    cuDNN 7 has none (TF 2.1, built with 7.6, on 7.5.1: tensorflow/tensorflow#37606), so the fix names NVIDIA's
    package or conda, with the next major as the bound."""
    (f,), _ = run_rule(_old_cudnn("2.5.0", "11.2", "8", "8.0.5"), matrix, "TFC302")
    # a CUDA 11 build: the cu11 wheel (the cu12 wheels carry CUDA 12 builds of cuDNN)
    assert f.remediation.startswith('Install cuDNN >= 8.1, < 9 (pip install "nvidia-cudnn-cu11>=8.1,<9")')
    (f,), _ = run_rule(_old_cudnn("2.1.0", "10.1", "7", "7.5.1"), matrix, "TFC302")
    assert 'cuDNN 7 has no pip wheel: NVIDIA\'s libcudnn7 package or conda "cudnn>=7.6,<8"' in f.remediation
    assert f.remediation.startswith("Install cuDNN >= 7.6, < 8 (")


# -- TFC301 and TFC303: the verdicts a mutation run (scripts/mutate.py --lines) found unguarded -------------


def _sub(name, found):
    return res(name, f"lib{name}.so.9", found, role="cudnn-sublibrary")


def test_cudnn_sublibraries_judged_only_behind_a_usable_cudnn(matrix):
    """TFC301: a missing cuDNN sub-library is its own finding only when libcudnn.so.9 itself loads (the first
    convolution fails: "Could not load library libcudnn_ops_infer.so.8", SYSTRAN/faster-whisper#516); when
    libcudnn.so.9 is missing or unusable, the finding names it alone, "1 library", not its sub-libraries."""
    with_sub_missing = replace(good_libraries(), "cudnn_cnn", _sub("cudnn_cnn", None))
    (f,), _ = run_rule(make_env(native=native(with_sub_missing)), matrix, "TFC301")
    assert "1 library that" in f.message and f.message.count("libcudnn") == 1 and "libcudnn_cnn.so.9" in f.message
    bad = system("/usr/lib/libcudnn.so.9", None)
    bad = dataclasses.replace(bad, problem="cannot be loaded: wrong ELF class")
    for cudnn in (None, bad):
        libs = replace(with_sub_missing, "cudnn", res("cudnn", "libcudnn.so.9", cudnn))
        libs = replace(libs, "cudnn_ops", _sub("cudnn_ops", None))
        (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC301")
        assert "1 library that" in f.message and "libcudnn.so.9" in f.message
        assert "libcudnn_cnn" not in f.message and "libcudnn_ops" not in f.message


def test_missing_everywhere_names_the_caller_and_no_invented_fix(matrix):
    """TFC301, a library not installed anywhere (tensorflow/tensorflow#46310: "libcudnn.so.8 and libcusolver.so.10
    dont load"): the message names the object whose search path failed, the evidence says only "not found", the
    fix is the [and-cuda] extra, with no LD_LIBRARY_PATH export of nothing and no empty dependency list;
    with GPUs it is an error without the "predicted" hint, which belongs to off-path copies only."""
    env = make_env(native=native(missing_everywhere()), gpus=[H100], driver="550.54.15")
    (f,), _ = run_rule(env, matrix, "TFC301")
    assert "cannot be loaded from …/site-packages/tensorflow/libtensorflow_framework.so.2: libcusolver.so.11" in (
        f.message
    )
    assert (f.evidence[0].fact, f.evidence[0].value) == ("library libcusolver.so.11", "not found")
    assert f.remediation == 'pip install "tensorflow[and-cuda]==2.21.0" (the nvidia-* wheels TF\'s RUNPATH points at).'
    assert "predicted" not in f.message and f.severity is Severity.ERROR


def test_other_sonames_of_a_missing_library_are_named_three_at_most(matrix):
    """TFC301, TF asks for libcudart.so.11.0 where only other versions lie (tensorflow/tensorflow#53362, CUDA 11.5
    installed: "Could not load dynamic library 'libcudart.so.11.0'"): the evidence names the first three other
    sonames found."""
    others = tuple(f"libcudart.so.{v} in /usr/local/cuda/lib64 (ld.so.cache)" for v in ("12", "10.1", "10.0", "9.2"))
    libs = good_libraries() + [res("cudart11", "libcudart.so.11.0", None, other_sonames=others)]
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC301")
    assert f.evidence[0].value == "not found; other versions: " + ", ".join(others[:3])


def test_off_path_copy_without_gpus_is_not_marked_predicted(matrix):
    """TFC301: the "confirm on the node" hint is for a node with GPUs; without them the warning states the fix."""
    (f,), _ = run_rule(make_env(native=native(missing_cusolver())), matrix, "TFC301")
    assert "predicted" not in f.message and "TF_CPP_VMODULE" not in f.message


def test_missing_dependency_of_an_optional_library_is_not_a_gpu_failure(matrix):
    """TFC301: NCCL found but its own dependency missing fails only multi-GPU all-reduce, not GPU setup: no finding;
    with the off-path directory known, the fix exports it and lists no dependency the export would also fix."""
    nccl = res(
        "nccl",
        "libnccl.so.2",
        wheel("nccl", "libnccl.so.2", "2.27.7", "nvidia-nccl-cu12"),
        role="feature",
        missing_deps=("libnvJitLink.so.12 (needed by /x/libnccl.so.2)",),
    )
    assert run_rule(make_env(native=native(replace(good_libraries(), "nccl", nccl))), matrix, "TFC301")[0] == []
    cusolver = dataclasses.replace(
        missing_cusolver()[-1], missing_deps=("libnvJitLink.so.12 (needed by /x/libcusolver.so.11)",)
    )
    (f,), _ = run_rule(make_env(native=native(good_libraries() + [cusolver])), matrix, "TFC301")
    assert "export LD_LIBRARY_PATH" in f.remediation and "Missing dependencies" not in f.remediation


def test_without_the_and_cuda_extra_the_fix_names_the_builds_cuda_and_cudnn(matrix):
    """TFC301 on TF 2.14 (no [and-cuda] extra before 2.14's wheels): the fix names CUDA 11.8 and cuDNN 8 from
    build_info, the versions the "Could not load dynamic library" lines ask for (tensorflow/tensorflow#60854)."""
    env = make_env(tf="2.14.0", native=native(missing_everywhere()))
    (f,), _ = run_rule(env, matrix, "TFC301")
    assert f.remediation.startswith("Install the CUDA 11.8 libraries and cuDNN 8 that ")


def test_optional_library_evidence_names_the_search_path_it_failed(matrix):
    """TFC301's info finding: a missing NCCL names the object whose search path was tried."""
    libs = replace(good_libraries(), "nccl", res("nccl", "libnccl.so.2", None, role="feature"))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC301")
    assert f.severity is Severity.INFO
    assert f.evidence == (Evidence("library libnccl.so.2", "not found", f"search path of {FW}"),)


def _cudart(version, path="/usr/local/cuda/lib64/libcudart.so.12", real=None, problem=None):
    copy = LibraryCopy(path, real or path, "ld.so.cache", "/etc/ld.so.cache", None, version, f"file name {path}")
    return res("cudart", "libcudart.so.12", dataclasses.replace(copy, problem=problem) if problem else copy)


def test_tfc303_skips_say_why(matrix):
    """TFC303 judges nothing it cannot read (unknown is data): a CPU-only build, a build whose CUDA version
    build_info does not state (or states unreadably), and a runtime and CUPTI of unknown version or unusable."""
    cpu = make_env(tf_builds=[tf_build("2.21.0", is_cuda=False)], native=native([]))
    findings, (skip,) = run_rule(cpu, matrix, "TFC303")
    assert findings == [] and "CPU-only build" in skip.reason
    for cuda in (None, "unknown"):
        env = make_env(tf_builds=[tf_build("2.21.0", cuda=cuda)], native=native())
        findings, (skip,) = run_rule(env, matrix, "TFC303")
        assert findings == [] and skip.reason == "the CUDA version of tensorflow 2.21.0 is unknown"
    unusable = _cudart("11.8.89", problem="cannot be loaded: not an ELF file")
    for cudart in (_cudart(None), res("cudart", "libcudart.so.12", None), unusable):
        libs = [cudart if lib.name == "cudart" else lib for lib in good_libraries() if lib.name != "cupti"]
        findings, (skip,) = run_rule(make_env(native=native(libs)), matrix, "TFC303")
        assert findings == [] and skip.reason == "no CUDA library of known version or CUDA major is loaded"


def test_cudart_of_another_major_names_the_file_and_the_runtime_to_install(matrix):
    """TFC303 error: libcudart.so.12 is a symlink to a CUDA 13 runtime (the soname TF asks for, another version's
    ABI: the `ln -s libcudart.so.10.2 libcudart.so.10.1` workaround of tensorflow/tensorflow#39132):
    the message names the name it was found as, the version and the build's CUDA; the fix the cu12 runtime wheel."""
    link = _cudart("13.0.48", path="/opt/cuda/lib64/libcudart.so", real="/opt/cuda/lib64/libcudart.so.13.0.48")
    (f,), _ = run_rule(make_env(native=native(replace(good_libraries(), "cudart", link))), matrix, "TFC303")
    assert f.severity is Severity.ERROR
    assert f.message.startswith("libcudart.so.12 resolves to CUDA runtime 13.0.48 (found as libcudart.so), ")
    assert f.message.endswith("was built with CUDA 12.5.1: another CUDA major") and "profiler" not in f.message
    assert f.evidence[1] == Evidence("tensorflow build CUDA", "12.5.1", tf_build().build_info_path)
    assert f.remediation == (
        "Remove or re-point /opt/cuda/lib64/libcudart.so and install the CUDA 12 runtime (pip install "
        '"nvidia-cuda-runtime-cu12").'
    )
    # found under the soname itself, or under its real file name: no "found as"
    for path, real in (("/opt/l/libcudart.so.12", "/opt/l/libcudart.so.13.0.48"), ("/opt/l/x.so", "/opt/l/x.so")):
        lib = _cudart("13.0.48", path=path, real=real)
        (f,), _ = run_rule(make_env(native=native(replace(good_libraries(), "cudart", lib))), matrix, "TFC303")
        assert "found as" not in f.message


def test_cupti_only_by_major_and_its_fix(matrix):
    """TFC303 for CUPTI: another major is a warning whose fix is the build's CUPTI wheel or dropping the directory
    ("CUPTI could not be loaded" in the profiler); an older minor of CUPTI says nothing (only cudart's minor counts)."""
    cupti = system("/usr/local/cuda-11.8/lib64/libcupti.so.12", "11.8.87")
    libs = replace(good_libraries(), "cupti", res("cupti", "libcupti.so.12", cupti, role="feature"))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC303")
    assert f.message.endswith("another CUDA major; only the profiler uses it")
    assert f.remediation == (
        'pip install "nvidia-cuda-cupti-cu12" (TF\'s RUNPATH finds it first), or remove /usr/local/cuda-11.8/lib64 '
        "from the loader's path."
    )
    older = system("/usr/local/cuda-12.2/lib64/libcupti.so.12", "12.2.142")
    libs = replace(good_libraries(), "cupti", res("cupti", "libcupti.so.12", older, role="feature"))
    assert run_rule(make_env(native=native(libs)), matrix, "TFC303")[0] == []


def test_older_cudart_minor_names_the_floor(matrix):
    """TFC303 warning: a CUDA 12.2 runtime under a 12.5 build; the fix is the runtime wheel at the build's minor."""
    libs = replace(good_libraries(), "cudart", _cudart("12.2.140"))
    (f,), _ = run_rule(make_env(native=native(libs)), matrix, "TFC303")
    assert f.message.startswith("CUDA runtime 12.2.140 (/usr/local/cuda/lib64/libcudart.so.12 (12.2.140, via ")
    assert f.remediation == 'Install a CUDA 12 runtime >= 12.5 (pip install "nvidia-cuda-runtime-cu12>=12.5").'


def test_evidence_names_the_search_path_of_the_object_that_asked(matrix):
    """TFC301: a library that libcublas.so.12 needs in turn (libcublasLt.so.12) is looked up on libcublas's own
    RUNPATH, not TensorFlow's: the evidence names the object whose search path failed."""
    cublas = f"{SITE}/nvidia/cublas/lib/libcublas.so.12"
    lt = dataclasses.replace(res("cublasLt", "libcublasLt.so.12", None), requested_by=cublas)
    (f,), _ = run_rule(make_env(native=native(good_libraries() + [lt])), matrix, "TFC301")
    assert f.evidence[0] == Evidence("library libcublasLt.so.12", "not found", f"search path of {cublas}")


def _cusolver(needed, path="/usr/lib/x86_64-linux-gnu/libcusolver.so.11"):
    copy = LibraryCopy(path, path + ".4.1.48", "ld.so.cache", "/etc/ld.so.cache", None, "11.4.1.48", "file name")
    return res("cusolver", "libcusolver.so.11", dataclasses.replace(copy, needed=tuple(needed)))


def test_tfc303_a_cusolver_of_cuda_11_under_the_soname_cuda_12_shares(matrix):
    """Debian 12's CUDA 11.8 packages (libcusolver11 11.4.1.48) put libcusolver.so.11 in the ld.so.cache; CUDA
    12 names its cuSOLVER libcusolver.so.11 too, so a CUDA 12 TensorFlow that finds cuSOLVER through the cache
    (TF 2.21's libtensorflow_framework.so.2 has no RUNPATH to the nvidia-cusolver-cu12 wheel) loads CUDA 11's.
    What tells: it needs libcublas.so.11 and libcublasLt.so.11, names of CUDA 11's [[dlopen]] table only."""
    cuda11 = _cusolver(["libcublas.so.11", "libcublasLt.so.11", "libcusolver.so.11", "libc.so.6"])
    libs = [lib for lib in good_libraries() if lib.name != "cusolver"] + [cuda11]
    (f,) = run_rule(make_env(native=native(libs)), matrix, "TFC303")[0]
    assert f.severity is Severity.WARNING
    assert "a CUDA 11 build (it needs libcublas.so.11, libcublasLt.so.11)" in f.message
    assert "CUDA 12.5.1" in f.message and "libcusolver.so.11 resolves to" in f.message
    assert 'pip install "nvidia-cusolver-cu12"' in f.remediation
    assert "/usr/lib/x86_64-linux-gnu" in f.remediation
    # CUDA 12's own cuSOLVER (nvidia-cusolver-cu12 12.x needs libcublas.so.12 and libnvJitLink.so.12): nothing
    cuda12 = _cusolver(["libcublas.so.12", "libcublasLt.so.12", "libnvJitLink.so.12", "libcusparse.so.12"])
    libs12 = [lib for lib in good_libraries() if lib.name != "cusolver"] + [cuda12]
    assert run_rule(make_env(native=native(libs12)), matrix, "TFC303")[0] == []
    # names both majors share say nothing: no finding either way
    shared = _cusolver(["libcusolver.so.11", "libc.so.6"])
    libs_shared = [lib for lib in good_libraries() if lib.name != "cusolver"] + [shared]
    assert run_rule(make_env(native=native(libs_shared)), matrix, "TFC303")[0] == []
