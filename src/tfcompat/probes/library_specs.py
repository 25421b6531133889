"""Which libraries a TensorFlow build dlopen()s: sonames by CUDA major, TensorRT, cuDNN sub-libraries, CPU needs.

The world facts below (_PURPOSE, _CUDA12, _CUDA11, _TENSORRT, CUDNN_SUBLIBRARIES, _CPU_NEEDS) are kept in one
block, unchanged, so that they can be swapped for the matrix's data in one place.
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

from packaging.version import InvalidVersion, Version

from tfcompat.model import TensorFlowBuild, Unknown

# ---------------------------------------------------------------------------------------------------------
# The sonames TensorFlow dlopen()s, as data.
#
# CUDA 12: verified on tensorflow 2.21.0 and 2.15.1 Linux x86-64 wheels by calling TF's own
# tsl::internal::DsoLoader::Get<Lib>DsoHandle() in a child process under LD_DEBUG=libs (2026-11-25):
# libcudart.so.12, libcublas.so.12, libcublasLt.so.12, libcufft.so.11, libcusolver.so.11, libcusparse.so.12,
# libcudnn.so.<cuDNN major>, libnccl.so.2, libcupti.so.12, libcuda.so.1; 2.21 adds libnvshmem_host.so.3;
# 2.15.1 (is_tensorrt_build) asks for libnvinfer.so.8.6.1 / libnvinfer_plugin.so.8.6.1.
# tsl::internal::DsoLoader::TryDlopenCUDALibraries() (what TF runs before it registers GPUs: "Cannot dlopen
# some GPU libraries ... Skipping registering GPU devices") needs cudart, cublas, cublasLt, cufft, cusolver,
# cusparse, cudnn (2.21.0, same call).
# CUDA 11: TF's own "Successfully opened dynamic library" / "Could not load dynamic library" lines in public
# reports (tensorflow/tensorflow#44777, #45263, #45848): libcudart.so.11.0, libcublas.so.11,
# libcublasLt.so.11, libcufft.so.10, libcurand.so.10, libcusolver.so.11 (libcusolver.so.10 with CUDA 11.0),
# libcusparse.so.11, libcudnn.so.8.
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LibrarySpec:
    name: str
    soname: str
    role: str  # "gpu": TF registers no GPU without it; "feature"; "optional" (not installed by TF); "driver";
    # "cudnn-sublibrary"
    purpose: str
    fallbacks: Tuple[str, ...] = ()  # names TF tries when the soname is not found


_PURPOSE = {
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
_CUDA12 = (("cudart", "libcudart.so.12", "gpu"), ("cublas", "libcublas.so.12", "gpu"),
           ("cublasLt", "libcublasLt.so.12", "gpu"), ("cufft", "libcufft.so.11", "gpu"),
           ("cusolver", "libcusolver.so.11", "gpu"), ("cusparse", "libcusparse.so.12", "gpu"),
           ("nccl", "libnccl.so.2", "feature"), ("cupti", "libcupti.so.12", "feature"))
_CUDA11 = (("cudart", "libcudart.so.11.0", "gpu"), ("cublas", "libcublas.so.11", "gpu"),
           ("cublasLt", "libcublasLt.so.11", "gpu"), ("cufft", "libcufft.so.10", "gpu"),
           ("curand", "libcurand.so.10", "gpu"), ("cusolver", "libcusolver.so.11", "gpu"),
           ("cusparse", "libcusparse.so.11", "gpu"), ("nccl", "libnccl.so.2", "feature"))
# TensorRT sonames by TF release (build_info says only is_tensorrt_build, not which TensorRT).
_TENSORRT = (((2, 15), (2, 16), "8.6.1"),)
# cuDNN sub-libraries that libcudnn.so.<major> dlopen()s (cuDNN 8 / 9 API overview, docs.nvidia.com/deeplearning/cudnn).
CUDNN_SUBLIBRARIES = {
    8: ("libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8", "libcudnn_cnn_infer.so.8", "libcudnn_cnn_train.so.8",
        "libcudnn_adv_infer.so.8", "libcudnn_adv_train.so.8"),
    9: ("libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
        "libcudnn_heuristic.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9"),
}
# CPU instructions the x86-64 wheels are compiled for: AVX since TF 1.6 ("Prebuilt binaries will use AVX
# instructions", TF 1.6.0 release notes; `--copt=-mavx` in TF's release .bazelrc); intel-tensorflow-avx512
# for AVX-512. Without them `import tensorflow` aborts: "The TensorFlow library was compiled to use AVX
# instructions, but these aren't available on your machine."
CPU_NEEDS_SOURCE = "TensorFlow 1.6.0 release notes (https://github.com/tensorflow/tensorflow/releases/tag/v1.6.0)"
_CPU_NEEDS = {"intel-tensorflow-avx512": ("avx", "avx2", "avx512f")}


def _release(version: str) -> Tuple[int, ...]:
    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def tf_library_specs(tf: TensorFlowBuild) -> Tuple[List[LibrarySpec], List[Unknown]]:
    """The sonames `tf` will dlopen, in the order TF asks for them (the driver first)."""
    unknowns: List[Unknown] = []
    if not tf.is_cuda_build:
        return [], unknowns
    cuda = _release(tf.cuda_version or "")
    if not cuda:
        return [], [Unknown("libraries", f"{tf.distribution} {tf.version}: build_info.py has no CUDA version, so the "
                                         "sonames TensorFlow dlopen()s are unknown")]
    if cuda[0] == 12:
        table = list(_CUDA12)
    elif cuda[0] == 11:
        table = [(n, "libcusolver.so.10" if n == "cusolver" and cuda[:2] == (11, 0) else s, r) for n, s, r in _CUDA11]
    else:
        return [], [Unknown("libraries", f"tfcompat does not know which sonames a CUDA {tf.cuda_version} build of "
                                         f"TensorFlow dlopen()s")]
    specs = [LibrarySpec("cuda", "libcuda.so.1", "driver", _PURPOSE["cuda"])]
    cudnn_major = _release(tf.cudnn_version or "")[:1]
    for name, soname, role in table:
        # TF's DsoLoader falls back to the unversioned libcupti.so (LD_DEBUG=libs, TF 2.15.1 and 2.21.0).
        fallbacks = ("libcupti.so",) if name == "cupti" else ()
        specs.append(LibrarySpec(name, soname, role, _PURPOSE[name], fallbacks))
        if name == "cusparse":  # TryDlopenCUDALibraries order: ..., cusparse, cudnn
            if cudnn_major:
                specs.append(LibrarySpec("cudnn", f"libcudnn.so.{cudnn_major[0]}", "gpu", _PURPOSE["cudnn"]))
            else:
                unknowns.append(Unknown("libraries.cudnn", f"{tf.distribution} {tf.version}: build_info.py has no "
                                                           "cuDNN version"))
    tf_release = _release(tf.version)
    if tf_release[:2] >= (2, 21) and cuda[0] == 12:
        specs.append(LibrarySpec("nvshmem", "libnvshmem_host.so.3", "optional", _PURPOSE["nvshmem"]))
    if tf.is_tensorrt_build:
        trt = next((v for lo, hi, v in _TENSORRT if lo <= tf_release[:2] < hi), None)
        if trt:
            specs.append(LibrarySpec("nvinfer", f"libnvinfer.so.{trt}", "feature", _PURPOSE["nvinfer"]))
            specs.append(LibrarySpec("nvinfer_plugin", f"libnvinfer_plugin.so.{trt}", "feature",
                                     _PURPOSE["nvinfer_plugin"]))
        else:
            unknowns.append(Unknown("libraries.tensorrt", f"{tf.distribution} {tf.version} is a TensorRT build, but "
                                                          "tfcompat does not know which TensorRT soname it asks for"))
    return specs, unknowns
