"""Conda environments judged like pip's nvidia-* wheels: the 3xx rules on the libraries a conda package installed.

End to end: a conda prefix on disk (conda_fixtures.py: conda-meta records in conda's documented format, real
ELF libraries), scanned with tfcompat.scan.scan, judged with every rule. No rule has conda code: the libraries
probe gives each file a conda record lists that package's version and name ("conda-forge::cudnn"), as it
gives a wheel's file the wheel's.
"""

import pytest
from conda_fixtures import (
    BUILD_INFO_2_5,
    CUDNN8_SUBS,
    PREFIX,
    SITE,
    TOOLKIT_10_1,
    TOOLKIT_11_1,
    TOOLKIT_11_8,
    conda_env,
)
from elf_fixtures import link, needs_gcc, write_so
from probe_helpers import BUILD_INFO_2_4_4, make_dist, write

from tfcompat.model import Severity
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.target import TargetSpec
from tfcompat.rules import evaluate
from tfcompat.scan import scan

PIP_TF = {"rpath": None, "runpath": "$ORIGIN/../../_solib_local/_U_S_Stensorflow", "conda_build": None}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def judge(matrix, root, environ=None, host=False):
    if host:
        env = scan(TargetSpec(site_packages=(str(root) + SITE,)), nvml=False, environ=environ or {})
    else:
        env = scan(TargetSpec(root=str(root)), nvml=False)
    return env, evaluate(env, matrix)


def hits(report, rule_id):
    return [f for f in report.findings if f.rule == rule_id]


@needs_gcc
@pytest.mark.parametrize("tf_version", ["2.5.0", "2.6.0"])
def test_done_when_cudatoolkit_11_2_and_cudnn_8_1_is_healthy(tmp_path, matrix, tf_version):
    """Issue 14's Done-when: TF 2.5/2.6 (CUDA 11.2, cuDNN 8.1 in the matrix) in a conda environment with
    cudatoolkit 11.2.2 and cudnn 8.1.0.77 from conda-forge: every library found, versioned from conda-meta,
    zero errors and zero warnings."""
    conda_env(tmp_path, tf_kw={"version": tf_version, "conda_build": f"cuda112py39h01bd6f0_{tf_version[2]}"})
    env, report = judge(matrix, tmp_path)
    bad = [f for f in report.findings if f.severity in (Severity.ERROR, Severity.WARNING)]
    assert bad == [], [f"{f.rule}: {f.message}" for f in bad]
    libs = {lib.name: lib.found for lib in env.target.native.libraries}
    assert libs["cudnn"].version == "8.1.0.77" and libs["cudart"].version == "11.2.2"
    # the judging rules ran (not skipped) on the conda versions
    skipped = {s.rule for s in report.skipped}
    assert not {"TFC301", "TFC302", "TFC303", "TFC304", "TFC305"} & skipped


@needs_gcc
def test_conda_cudnn_8_0_under_tf_built_with_8_1(tmp_path, matrix):
    """A conda environment's cuDNN older (minor) than the one TF was built with: "Loaded runtime CuDNN library:
    7.3.1 but source was compiled with: 7.4.2" from a conda-installed cudnn (https://github.com/conda/conda/issues/8736);
    the same with 8.0.5 against TF 2.5's 8.1.0 (https://github.com/tensorflow/tensorflow/issues/50217).
    conda-forge's cudnn 8.0.5.39 under TF 2.5: TFC302, naming the conda package."""
    conda_env(tmp_path, cudnn_version="8.0.5.39")
    _, report = judge(matrix, tmp_path)
    (hit,) = hits(report, "TFC302")
    assert hit.severity == Severity.ERROR
    assert "cuDNN 8.0.5.39 (/opt/conda/lib/libcudnn.so.8.0.5 (conda-forge::cudnn 8.0.5.39" in hit.message
    assert "older than cuDNN 8.1" in hit.message
    assert any(e.source == PREFIX + "/conda-meta/cudnn-8.0.5.39-h90431f1_0.json" for e in hit.evidence)
    # fixed with conda, from the package's channel, not with a pip wheel beside it
    assert 'conda install -c conda-forge "cudnn>=8.1,<9"' in hit.remediation and "pip install" not in hit.remediation


@needs_gcc
def test_conda_cudnn_7_6_under_a_cudnn_8_build(tmp_path, matrix):
    """cudnn 7.6.5 (conda's last cuDNN 7) in an environment whose TF asks for libcudnn.so.8: the soname is not
    there, TFC301 names the libcudnn.so.7 conda installed (https://github.com/tensorflow/tensorflow/issues/45930:
    a TF 2.4+ CUDA 11 build with the CUDA 10 / cuDNN 7 stack installed)."""
    conda_env(tmp_path, cudnn_version="7.6.5.32")
    _, report = judge(matrix, tmp_path)
    (hit,) = [h for h in hits(report, "TFC301") if "libcudnn.so.8" in h.message]
    assert hit.severity == Severity.WARNING  # an image: the GPUs are unknown
    assert any("libcudnn.so.7 in /opt/conda/lib" in e.value for e in hit.evidence)


@needs_gcc
def test_cudatoolkit_10_1_under_a_cuda_11_2_tf(tmp_path, matrix):
    """cudatoolkit 10.1 left in the environment under a CUDA 11.2 TF: TF asks for libcudart.so.11.0 and the
    CUDA 11 sonames, conda has libcudart.so.10.1 (https://github.com/tensorflow/tensorflow/issues/42162: an
    Anaconda env whose TF asks for one CUDA while another is installed; the conda form, cudatoolkit=10.1 under a
    build for another CUDA: https://github.com/cianfrocco-lab/Automatic-cryoEM-preprocessing/issues/13)."""
    conda_env(tmp_path, toolkit_version="10.1.243", toolkit_libs=TOOLKIT_10_1)
    _, report = judge(matrix, tmp_path)
    (hit,) = [h for h in hits(report, "TFC301") if "libcudart.so.11.0" in h.message]
    assert "libcublas.so.11" in hit.message and "libcusolver.so.11" in hit.message
    assert any("libcudart.so.10.1 in /opt/conda/lib" in e.value for e in hit.evidence)
    assert "CUDA 11.2 libraries" in hit.remediation


@needs_gcc
def test_cudatoolkit_10_1_symlinked_to_the_cuda_11_soname(tmp_path, matrix):
    """The workaround the reports pass around, `ln -s libcudart.so.10.x libcudart.so.<wanted>`
    (https://github.com/tensorflow/tensorflow/issues/39132, https://github.com/tensorflow/tensorflow/issues/38578),
    done inside a conda env: the link is not in cudatoolkit's record but the file it points to is, so the copy
    is conda's cudatoolkit 10.1.243: TFC303, another CUDA major."""
    conda_env(tmp_path, toolkit_version="10.1.243", toolkit_libs=TOOLKIT_10_1)
    link(str(tmp_path) + PREFIX + "/lib/libcudart.so.11.0", "libcudart.so.10.1.243")
    _, report = judge(matrix, tmp_path)
    (hit,) = hits(report, "TFC303")
    assert hit.severity == Severity.ERROR
    assert hit.message.startswith(
        "libcudart.so.11.0 resolves to CUDA runtime 10.1.243, /opt/conda/lib/libcudart.so.10.1.243 "
        "(conda-forge::cudatoolkit 10.1.243, via DT_RPATH"
    )
    assert "another CUDA major" in hit.message


@needs_gcc
def test_pip_tf_in_conda_env_without_ld_library_path(tmp_path, matrix):
    """pip's TF in a conda env with cudatoolkit 11.2 / cudnn 8.1 installed by conda, LD_LIBRARY_PATH not set:
    "Could not load dynamic library 'libcudart.so.11.0'" although it is in <env>/lib
    (https://github.com/tensorflow/tensorflow/issues/56413, TF 2.9; https://github.com/tensorflow/tensorflow/issues/52988).
    TFC301 lists the conda copies as installed off the search path and says which directory to add."""
    conda_env(tmp_path, tf_kw=dict(PIP_TF, version="2.9.0"))
    _, report = judge(matrix, tmp_path)
    (hit,) = [h for h in hits(report, "TFC301") if "libcudart.so.11.0" in h.message]
    detail = " ".join(e.value for e in hit.evidence)
    assert (
        "installed but not on the search path: /opt/conda/lib/libcudart.so.11.2.152 (conda-forge::cudatoolkit 11.2.2)"
        in detail
    )
    assert "/opt/conda/lib/libcudnn.so.8.1.0 (conda-forge::cudnn 8.1.0.77)" in detail
    assert hit.remediation.startswith(
        "Put the installed copies on the loader's path: export LD_LIBRARY_PATH=/opt/conda/lib"
    )


@needs_gcc
def test_system_cudnn_in_ld_library_path_shadows_the_conda_one(tmp_path, matrix):
    """A system CUDA in LD_LIBRARY_PATH ahead of $CONDA_PREFIX/lib: TF loads the system cuDNN, not the conda one
    ("Loaded runtime CuDNN library: 8.1.1 but source was compiled with ..."
    https://github.com/tensorflow/tensorflow/issues/60750, fixed in TF's guide by tensorflow/docs#2230; the same
    with a system /usr/local/cuda-11.2: https://github.com/NVIDIA/tensorflow/issues/55). TFC304 says that the
    system copy shadows the conda package's, and TFC302 judges the one that wins."""
    conda_env(tmp_path, tf_kw=PIP_TF)
    system = str(tmp_path) + "/usr/local/cuda-11.0/lib64"
    write_so(f"{system}/libcudnn.so.8.0.5", soname="libcudnn.so.8")
    link(f"{system}/libcudnn.so.8", "libcudnn.so.8.0.5")
    write(
        str(tmp_path) + "/usr/local/cuda-11.0/include/cudnn_version.h",
        "#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 0\n#define CUDNN_PATCHLEVEL 5\n",
    )
    llp = f"{system}:{tmp_path}{PREFIX}/lib"
    _, report = judge(matrix, tmp_path, {"LD_LIBRARY_PATH": llp}, host=True)
    (shadow,) = [h for h in hits(report, "TFC304") if h.severity == Severity.WARNING]
    assert shadow.message.startswith(f"libcudnn.so.8: {system}/libcudnn.so.8.0.5 (8.0.5, via LD_LIBRARY_PATH {system})")
    assert f"shadows {tmp_path}{PREFIX}/lib/libcudnn.so.8.1.0 (conda-forge::cudnn 8.1.0.77" in shadow.message
    assert (
        shadow.remediation == f"Remove {system} from LD_LIBRARY_PATH (it is searched before TensorFlow's DT_RUNPATH)."
    )
    (old,) = hits(report, "TFC302")
    assert "cuDNN 8.0.5" in old.message and old.severity == Severity.ERROR
    # the conda copies that do win (cudart, cuBLAS, ...) are not reported as shadowed
    assert all("libcudnn" in h.message for h in hits(report, "TFC304") if h.severity == Severity.WARNING)


@needs_gcc
def test_conda_forge_tf_rpath_is_searched_before_ld_library_path(tmp_path, matrix):
    """conda-forge's TF objects carry conda-build's DT_RPATH to <prefix>/lib, which glibc searches before
    LD_LIBRARY_PATH: the same system cuDNN in LD_LIBRARY_PATH loses, and is only noted (TFC304 info)."""
    conda_env(tmp_path)
    system = str(tmp_path) + "/usr/local/cuda-11.0/lib64"
    write_so(f"{system}/libcudnn.so.8.0.5", soname="libcudnn.so.8")
    link(f"{system}/libcudnn.so.8", "libcudnn.so.8.0.5")
    env, report = judge(matrix, tmp_path, {"LD_LIBRARY_PATH": system}, host=True)
    cudnn = next(lib for lib in env.target.native.libraries if lib.name == "cudnn").found
    assert cudnn.found_via == "DT_RPATH" and cudnn.distribution == "conda-forge::cudnn"
    assert not hits(report, "TFC302")
    assert [h.severity for h in hits(report, "TFC304")] == [Severity.INFO]


@needs_gcc
def test_conda_cudnn_ahead_of_the_pip_cudnn_wheel_in_ld_library_path(tmp_path, matrix):
    """TF's pip guide for 2.12 (conda cudatoolkit=11.8 + pip nvidia-cudnn-cu11==8.6.0.163, then
    LD_LIBRARY_PATH=$CONDA_PREFIX/lib/:$CUDNN_PATH/lib) with an older conda cudnn left in the env: "Loaded runtime
    CuDNN library: 8.1.0 but source was compiled with: 8.6.0" because <env>/lib comes first
    (https://github.com/tensorflow/docs/pull/2251). TFC302 names the conda package that wins; TFC304 notes the
    wheel's 8.6 further down the path."""
    conda_env(
        tmp_path,
        toolkit_version="11.8.0",
        toolkit_libs=TOOLKIT_11_8,
        tf_kw=dict(PIP_TF, version="2.12.0", build_info=BUILD_INFO_2_5.replace("'11.2'", "'11.8'")),
    )
    site = str(tmp_path) + SITE
    wheel_lib = site + "/nvidia/cudnn/lib"
    files = ["libcudnn.so.8"] + [f"libcudnn_{s}.so.8" for s in CUDNN8_SUBS]
    for name in files:
        write_so(f"{wheel_lib}/{name}")
    info = make_dist(site, "nvidia-cudnn-cu11", "8.6.0.163")
    write(info + "/RECORD", "".join(f"nvidia/cudnn/lib/{n},sha256=x,1\n" for n in files))
    llp = f"{tmp_path}{PREFIX}/lib:{wheel_lib}"
    _, report = judge(matrix, tmp_path, {"LD_LIBRARY_PATH": llp}, host=True)
    (old,) = hits(report, "TFC302")
    assert old.severity == Severity.ERROR
    assert f"cuDNN 8.1.0.77 ({tmp_path}{PREFIX}/lib/libcudnn.so.8.1.0 (conda-forge::cudnn 8.1.0.77" in old.message
    assert "older than cuDNN 8.6" in old.message
    (note,) = hits(report, "TFC304")
    assert note.severity == Severity.INFO
    assert f"libcudnn.so.8: 8.1.0.77 wins, also {wheel_lib}/libcudnn.so.8 (nvidia-cudnn-cu11 8.6.0.163" in note.message


@needs_gcc
def test_tf_2_4_with_conda_cudatoolkit_11_1_lacks_cusolver_10(tmp_path, matrix):
    """TF 2.4 (CUDA 11.0) asks for libcusolver.so.10, which CUDA 11.1+ no longer ships ("Could not load dynamic
    library 'libcusolver.so.10'", https://github.com/tensorflow/tensorflow/issues/45263,
    https://github.com/kundajelab/chrombpnet/issues/49): with conda's cudatoolkit 11.1 the rest loads (cudart
    11.1 is newer than the build's 11.0: no TFC303), cuSOLVER does not, and TFC301 names the .so.11 conda has."""
    conda_env(
        tmp_path,
        toolkit_version="11.1.74",
        toolkit_libs=TOOLKIT_11_1,
        cudnn_version="8.0.5.39",
        tf_kw={"version": "2.4.1", "build_info": BUILD_INFO_2_4_4, "conda_build": None},
    )
    _, report = judge(matrix, tmp_path)
    (hit,) = hits(report, "TFC301")
    assert "cannot be loaded" in hit.message and ": libcusolver.so.10;" in hit.message
    assert any("libcusolver.so.11 in /opt/conda/lib" in e.value for e in hit.evidence)
    assert not hits(report, "TFC303") and not hits(report, "TFC302")
