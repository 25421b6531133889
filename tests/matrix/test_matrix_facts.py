"""World facts in data/compat_matrix.toml (Matrix.facts): each table equals the constant it replaces in the
probes and rules, is validated like the rest of the file, and keeps its source."""

import subprocess
import sys
import textwrap

import pytest

from tfcompat.matrix import MatrixError, load_matrix, parse_matrix, parse_overlay
from tfcompat.matrix.facts import Soname, WorldFacts

# The constants as they were in probes/libraries.py, probes/tensorflow.py, rules/probe.py, probes/nvidia.py
# and rules/resources.py before they became data: the oracle for the tables.
OLD_CUDA12 = (
    ("cudart", "libcudart.so.12", "gpu"),
    ("cublas", "libcublas.so.12", "gpu"),
    ("cublasLt", "libcublasLt.so.12", "gpu"),
    ("cufft", "libcufft.so.11", "gpu"),
    ("cusolver", "libcusolver.so.11", "gpu"),
    ("cusparse", "libcusparse.so.12", "gpu"),
    ("nccl", "libnccl.so.2", "feature"),
    ("cupti", "libcupti.so.12", "feature"),
)
OLD_CUDA11 = (
    ("cudart", "libcudart.so.11.0", "gpu"),
    ("cublas", "libcublas.so.11", "gpu"),
    ("cublasLt", "libcublasLt.so.11", "gpu"),
    ("cufft", "libcufft.so.10", "gpu"),
    ("curand", "libcurand.so.10", "gpu"),
    ("cusolver", "libcusolver.so.11", "gpu"),
    ("cusparse", "libcusparse.so.11", "gpu"),
    ("nccl", "libnccl.so.2", "feature"),
)
OLD_PURPOSE = {
    "cudart": "CUDA runtime",
    "cublas": "cuBLAS (matrix multiplication)",
    "cublasLt": "cuBLASLt (matrix multiplication)",
    "cufft": "cuFFT (FFT ops)",
    "curand": "cuRAND (random numbers)",
    "cusolver": "cuSOLVER (linear algebra)",
    "cusparse": "cuSPARSE (sparse ops)",
    "cudnn": "cuDNN (convolutions, RNNs)",
    "nccl": "NCCL (multi-GPU collectives)",
    "cupti": "CUPTI (profiler only)",
    "nvshmem": "NVSHMEM (optional XLA collectives)",
    "nvinfer": "TensorRT (TF-TRT only)",
    "nvinfer_plugin": "TensorRT plugins (TF-TRT only)",
    "cuda": "CUDA driver (installed with the NVIDIA driver, not with TensorFlow)",
}
OLD_CUDNN_SUBLIBRARIES = {
    8: (
        "libcudnn_ops_infer.so.8",
        "libcudnn_ops_train.so.8",
        "libcudnn_cnn_infer.so.8",
        "libcudnn_cnn_train.so.8",
        "libcudnn_adv_infer.so.8",
        "libcudnn_adv_train.so.8",
    ),
    9: (
        "libcudnn_graph.so.9",
        "libcudnn_engines_precompiled.so.9",
        "libcudnn_engines_runtime_compiled.so.9",
        "libcudnn_heuristic.so.9",
        "libcudnn_ops.so.9",
        "libcudnn_cnn.so.9",
        "libcudnn_adv.so.9",
    ),
}
OLD_CPU_NEEDS_SOURCE = "TensorFlow 1.6.0 release notes (https://github.com/tensorflow/tensorflow/releases/tag/v1.6.0)"
OLD_TF_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tf-nightly",
    "tf-nightly-cpu",
    "tf-nightly-gpu",
    "tensorflow-rocm",
    "intel-tensorflow",
    "intel-tensorflow-avx512",
    "tensorflow-intel",
    "tensorflow-macos",
    "tensorflow-aarch64",
    "tensorflow-cpu-aws",
    "tensorflow-directml",
    "nvidia-tensorflow",  # issue 14
)
OLD_PROBE_TF_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tf-nightly",
    "tf-nightly-cpu",
    "tf-nightly-gpu",
    "tensorflow-intel",
    "tensorflow-rocm",
    "intel-tensorflow",
)
OLD_COMPANION_DISTRIBUTIONS = {
    "tensorflow_text": "tensorflow-text",
    "tensorflow_io": "tensorflow-io",
    "tensorflow_addons": "tensorflow-addons",
    "tensorflow_decision_forests": "tensorflow-decision-forests",
    "tensorflow_recommenders_addons": "tensorflow-recommenders-addons",
}
GiB, MiB = 1 << 30, 1 << 20
OLD_DEFAULT_THRESHOLDS = {
    "shm_min_bytes_multi_gpu": 1 * GiB,
    "shm_min_bytes": 256 * MiB,
    "memlock_min_bytes": 64 * MiB,
    "cgroup_memory_per_gpu_bytes": 8 * GiB,
    "cgroup_memory_used_percent": 90,
    "gpu_memory_used_mib": 1024,
    "gpu_memory_used_percent_error": 50,
}


def old_specs(cuda, tf, cudnn_major, is_cuda12):
    """probes/libraries.tf_library_specs as it was (without TensorRT): (name, soname, role, fallbacks)."""
    table = (
        list(OLD_CUDA12)
        if is_cuda12
        else [(n, "libcusolver.so.10" if n == "cusolver" and cuda[:2] == (11, 0) else s, r) for n, s, r in OLD_CUDA11]
    )
    out = [("cuda", "libcuda.so.1", "driver", ())]
    for name, soname, role in table:
        out.append((name, soname, role, ("libcupti.so",) if name == "cupti" else ()))
        if name == "cusparse" and cudnn_major is not None:
            out.append(("cudnn", f"libcudnn.so.{cudnn_major}", "gpu", ()))
    if tf[:2] >= (2, 21) and is_cuda12:
        out.append(("nvshmem", "libnvshmem_host.so.3", "optional", ()))
    if not is_cuda12:  # observed on the 2.10.1-2.14.1 wheels 2026-12-08 (the [[dlopen]] 11 note)
        gone = {"curand": (2, 14), "nccl": (2, 10)}  # from this TF release on
        out = [o for o in out if not (o[0] in gone and tf[:2] >= gone[o[0]])]
        if cuda[:2] in ((11, 2), (11, 8)):
            out.append(("cupti", f"libcupti.so.{cuda[0]}.{cuda[1]}", "feature", ("libcupti.so",)))
    return out


@pytest.mark.parametrize(
    "cuda, tf, cudnn",
    [
        ("12.5.1", "2.21.0", 9),
        ("12.5.1", "2.20.0", 9),
        ("12.2", "2.15.1", 8),
        ("12.3", "2.16.1", None),
        ("11.0", "2.4.0", 8),
        ("11.0.3", "2.4.4", 8),
        ("11.2", "2.10.0", 8),
        ("11.8", "2.14.0", 8),
        ("12.5.1", "2.21.0rc1", 9),
        ("12.5.1", "2.22.0.dev20260101", 9),
    ],
)
def test_sonames_equal_the_old_tables(matrix, cuda, tf, cudnn):
    specs = matrix.facts.sonames(cuda, tf, cudnn)
    c = tuple(int(x) for x in cuda.split(".")[:2])
    t = tuple(int(x) for x in tf.split(".")[:2])
    assert [(s.name, s.soname, s.role, s.fallbacks) for s in specs] == old_specs(c, t, cudnn, c[0] == 12)
    assert all(s.purpose == OLD_PURPOSE[s.name] for s in specs)


def test_cuda_10_cupti_sonames(matrix):
    """The CUDA 10 wheels' DsoLoader::GetCuptiDsoHandle under LD_DEBUG=libs (2026-12-08): tensorflow-gpu 1.14-2.0
    libcupti.so.10.0, tensorflow 2.1-2.2 libcupti.so.10.1, 2.3 libcupti.so.10.1 then libcupti.so. TF 2.2's
    "Could not load dynamic library 'libcupti.so.10.1'" with profiling on:
    https://github.com/aws/deep-learning-containers/pull/235"""
    want = {
        ("10.0", "1.14.0"): [("libcupti.so.10.0", ())],
        ("10", "1.15.5"): [("libcupti.so.10.0", ())],
        ("10", "2.0.4"): [("libcupti.so.10.0", ())],
        ("10.1", "2.1.4"): [("libcupti.so.10.1", ())],
        ("10", "2.2.3"): [("libcupti.so.10.1", ())],
        ("10.1", "2.3.4"): [("libcupti.so.10.1", ("libcupti.so",))],
        ("10.0", "1.13.1"): [],  # the 1.13 framework exports no CUPTI loader
    }
    for (cuda, tf), cupti in want.items():
        specs = matrix.facts.sonames(cuda, tf, 7)
        assert [(s.soname, s.fallbacks) for s in specs if s.name == "cupti"] == cupti, (cuda, tf)
        assert all(s.role == "feature" for s in specs if s.name == "cupti")


def test_sonames_of_an_unknown_cuda_major(matrix):
    assert matrix.facts.sonames("8.0", "1.4.0", 6) is None  # no [[dlopen]] 8 table
    assert matrix.facts.sonames("13.0", "2.22.0", 9) is None
    assert matrix.facts.sonames("not-a-version", "2.21.0", 9) is None


def test_tensorrt_sonames(matrix):
    for tf in ("2.15.0", "2.15.0.post1", "2.15.1"):
        assert [s.soname for s in matrix.facts.tensorrt_sonames(tf)] == [
            "libnvinfer.so.8.6.1",
            "libnvinfer_plugin.so.8.6.1",
        ]
        assert matrix.facts.tensorrt_sonames(tf)[0] == Soname(
            "nvinfer", "libnvinfer.so.8.6.1", "feature", OLD_PURPOSE["nvinfer"]
        )
    assert matrix.facts.tensorrt_sonames("2.16.1")[0].soname == "libnvinfer.so.8.6.1"
    assert matrix.facts.tensorrt_sonames("2.14.1")[0].soname == "libnvinfer.so.8"
    assert matrix.facts.tensorrt_sonames("2.10.0")[0].soname == "libnvinfer.so.7"
    for tf in ("2.18.0", "2.21.0", "garbage"):  # 2.18+: no TensorRT builds
        assert matrix.facts.tensorrt_sonames(tf) is None


def test_cudnn_sublibraries(matrix):
    for major, subs in OLD_CUDNN_SUBLIBRARIES.items():
        assert matrix.facts.cudnn_sublibraries(major) == subs
    assert matrix.facts.cudnn_sublibraries(7) == ()


def test_cpu_needs(matrix):
    f = matrix.facts
    assert f.cpu_needs("tensorflow", "x86_64") == ("avx",)
    assert f.cpu_needs("some-fork", "x86_64") == ("avx",)  # the default of the machine, as before
    assert f.cpu_needs("intel-tensorflow-avx512", "x86_64") == ("avx", "avx2", "avx512f")
    assert f.cpu_needs("tensorflow", "aarch64") == ()
    assert f.cpu_needs_source == OLD_CPU_NEEDS_SOURCE


def test_one_list_of_tensorflow_distributions(matrix):
    names = matrix.facts.tf_distribution_names
    assert names == OLD_TF_DISTRIBUTIONS
    assert set(OLD_PROBE_TF_DISTRIBUTIONS) <= set(names)
    assert matrix.facts.distribution("tensorflow-rocm").gpu == "rocm"
    assert matrix.facts.distribution("tensorflow-cpu").gpu == "none"
    assert matrix.facts.distribution("nope") is None


def test_companion_modules_and_driver_sonames(matrix):
    assert matrix.facts.companion_distributions == OLD_COMPANION_DISTRIBUTIONS
    assert matrix.facts.companion_distribution("tensorflow_text") == "tensorflow-text"
    assert matrix.facts.companion_distribution(None) is None
    # the old table plus the PTX JIT compiler libcuda dlopen()s (read in Debian's packages 2026-12-08)
    assert matrix.facts.driver_sonames == ("libcuda.so.1", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1")


def test_thresholds_are_matrix_data(matrix):
    from tfcompat.rules import resources

    assert dict(matrix.facts.thresholds) == OLD_DEFAULT_THRESHOLDS
    assert resources.DEFAULT_THRESHOLDS == OLD_DEFAULT_THRESHOLDS  # still importable from the rules
    assert resources.threshold(matrix, "shm_min_bytes") == (256 * MiB, "tfcompat default threshold shm_min_bytes")


def test_a_matrix_without_fact_tables_falls_back_to_the_shipped_thresholds():
    from test_matrix import GOOD

    from tfcompat.rules.resources import threshold

    m = parse_matrix(GOOD, "m.toml")
    assert m.facts == WorldFacts()
    assert threshold(m, "memlock_min_bytes") == (64 * MiB, "tfcompat default threshold memlock_min_bytes")


def test_overlay_threshold_keys_come_from_the_matrix(tmp_path):
    overlay = tmp_path / "site.toml"
    overlay.write_text(
        '[meta]\nschema = 1\nkind = "overlay"\nupdated = "2026-11-20"\n[thresholds]\nshm_min_bytes = 1\n'
    )
    assert load_matrix(overlays=[overlay]).thresholds == {"shm_min_bytes": 1}
    with pytest.raises(MatrixError, match="unknown key 'shm_min_bytes'"):
        parse_overlay(overlay.read_text(), "site.toml", known_thresholds=("memlock_min_bytes",))


def test_every_fact_entry_has_a_source(matrix):
    f = matrix.facts
    entries = [
        *f.libraries,
        *f.dlopen,
        *f.tensorrt,
        *f.cudnn,
        *f.distributions,
        *f.companion_modules,
        *f.threshold_entries,
        f.cpu,
        f.driver,
    ]
    assert len(entries) > 40
    for e in entries:
        assert e.source, e
        for s in e.source:
            assert s.startswith("https://") or ("/" in s and ":" in s), (e, s)


FACTS_HEAD = """
[meta]
schema = 1
updated = "2026-11-25"

[[library]]
name = "cudart"
purpose = "CUDA runtime"
source = "https://docs.nvidia.com/cuda/cuda-runtime-api/index.html"
checked = "2026-11-25"
"""
DLOPEN = """
[[dlopen]]
cuda_major = 12
libraries = [{ name = "cudart", soname = "libcudart.so.12", role = "gpu" }]
source = "https://pypi.org/project/tensorflow/2.21.0/#files"
checked = "2026-11-25"
"""


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            ('role = "gpu"', 'role = "needed"'),
            "m.toml: [[dlopen]] #1 12: libraries #1: role 'needed' must be one of driver, gpu, feature, optional",
        ),
        (
            ('role = "gpu"', 'role = "gpu", soname2 = "x"'),
            "m.toml: [[dlopen]] #1 12: libraries #1: unknown key 'soname2'",
        ),
        (
            ('name = "cudart", soname', 'name = "cudartx", soname'),
            "m.toml: [[dlopen]] #1 12: libraries #1: name 'cudartx' has no [[library]] entry",
        ),
        (
            ('"libcudart.so.12"', '"cudart12"'),
            "m.toml: [[dlopen]] #1 12: libraries #1: soname 'cudart12' is not a soname like 'libcudart.so.12'",
        ),
        (("libraries = [{", "libraries = [] #"), "m.toml: [[dlopen]] #1 12: libraries must be a non-empty list"),
        (("cuda_major = 12", "cuda_major = 12\nextra = 1"), "m.toml: [[dlopen]] #1 12: unknown key 'extra'"),
    ],
)
def test_broken_fact_tables_one_line_error(edit, message):
    old, new = edit
    with pytest.raises(MatrixError) as exc:
        parse_matrix(FACTS_HEAD + DLOPEN.replace(old, new, 1), "m.toml")
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "table, message",
    [
        (
            '[[threshold]]\nkey = "a"\nvalue = -1\nsource = "https://x.org/a"\nchecked = "2026-11-25"\n',
            "[[threshold]] #1 'a': value -1 must be >= 0",
        ),
        (
            '[[threshold]]\nkey = "a"\nvalue = 1\nsource = "https://x.org/a"\nchecked = "2026-11-25"\n' * 2,
            "[[threshold]] 'a' is stated twice",
        ),
        (
            '[[cudnn_sublibraries]]\ncudnn_major = 9\nsonames = ["libcudnn_ops.so.8"]\nsource = "https://x.org/a"\n'
            'checked = "2026-11-25"\n',
            "[[cudnn_sublibraries]] #1 9: sonames 'libcudnn_ops.so.8' does not end in .so.9",
        ),
        (
            '[[tensorflow_distribution]]\nname = "TensorFlow_CPU"\ngpu = "none"\nsource = "https://x.org/a"\n'
            'checked = "2026-11-25"\n',
            "name 'TensorFlow_CPU' is not a canonical distribution name",
        ),
        (
            '[[tensorflow_distribution]]\nname = "tensorflow"\ngpu = "tpu"\nsource = "https://x.org/a"\n'
            'checked = "2026-11-25"\n',
            "gpu 'tpu' must be one of cuda, rocm, directml, none",
        ),
        (
            '[cpu_needs]\nmachine = "x86_64"\ndefault = ["AVX!"]\ncited_as = "x"\nsource = "https://x.org/a"\n'
            'checked = "2026-11-25"\n',
            "[cpu_needs]: default 'AVX!' is not a CPU flag name",
        ),
        (
            '[driver_libraries]\nsonames = ["libcuda.so.1"]\nchecked = "2026-11-25"\n',
            "[driver_libraries]: missing required key 'source'",
        ),
        (
            '[[companion_module]]\nmodule = "tensorflow-text"\ndistribution = "tensorflow-text"\nsource = "https://x.org/a"\n'
            'checked = "2026-11-25"\n',
            "module 'tensorflow-text' is not a Python module name",
        ),
    ],
)
def test_broken_fact_entries(table, message):
    with pytest.raises(MatrixError, match=None) as exc:
        parse_matrix(FACTS_HEAD + table, "m.toml")
    assert message in str(exc.value)


def test_shipped_fact_dates_checked_by_invariants(matrix):
    import dataclasses
    import datetime

    from tfcompat.matrix import invariant_problems

    old = dataclasses.replace(matrix.facts.threshold_entries[0], checked=datetime.date(2999, 1, 1))
    facts = dataclasses.replace(matrix.facts, threshold_entries=(old,) + matrix.facts.threshold_entries[1:])
    problems = invariant_problems(dataclasses.replace(matrix, facts=facts))
    assert any("[[threshold]] #1 'shm_min_bytes_multi_gpu': checked 2999-01-01 is in the future" in p for p in problems)


def test_matrix_imports_no_rules_and_no_engine():
    """The matrix is data: loading it must not import the engine or any rule (the old import circle)."""
    code = textwrap.dedent("""
        import sys
        from tfcompat.matrix import load_matrix
        load_matrix()
        bad = sorted(m for m in sys.modules if m.startswith(("tfcompat.rules", "tfcompat.engine", "tfcompat.probes")))
        print(",".join(bad))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
