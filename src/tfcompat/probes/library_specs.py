"""Which libraries a TensorFlow build dlopen()s: the sonames by CUDA major, TensorRT's, cuDNN's sub-libraries.

The facts themselves are data (data/compat_matrix.toml: [[dlopen]], [[tensorrt_dlopen]], [[library]],
[[cudnn_sublibraries]], each with its source); this module only asks them for one build and says what
is unknown.
"""

from __future__ import annotations

from typing import Optional

from packaging.version import InvalidVersion, Version

from tfcompat.matrix.facts import Soname, WorldFacts
from tfcompat.model import TensorFlowBuild, Unknown

LibrarySpec = Soname  # one library to resolve: name, soname, role, purpose, fallbacks


def _major(version: Optional[str]) -> Optional[int]:
    try:
        return Version(version or "").major
    except InvalidVersion:
        return None


def tf_library_specs(tf: TensorFlowBuild, facts: WorldFacts) -> tuple[list[LibrarySpec], list[Unknown]]:
    """The sonames `tf` will dlopen, in the order TF asks for them (the driver first)."""
    unknowns: list[Unknown] = []
    if not tf.is_cuda_build:
        return [], unknowns
    if _major(tf.cuda_version) is None:
        return [], [
            Unknown(
                "libraries",
                f"{tf.distribution} {tf.version}: build_info.py has no CUDA version, so the "
                "sonames TensorFlow dlopen()s are unknown",
            )
        ]
    cudnn_major = _major(tf.cudnn_version)
    sonames = facts.sonames(tf.cuda_version or "", tf.version, cudnn_major)
    if sonames is None:
        return [], [
            Unknown(
                "libraries",
                f"tfcompat does not know which sonames a CUDA {tf.cuda_version} build of TensorFlow dlopen()s",
            )
        ]
    specs = list(sonames)
    if cudnn_major is None:
        unknowns.append(
            Unknown("libraries.cudnn", f"{tf.distribution} {tf.version}: build_info.py has no cuDNN version")
        )
    if tf.is_tensorrt_build:
        trt = facts.tensorrt_sonames(tf.version)
        if trt:
            specs += trt
        else:
            unknowns.append(
                Unknown(
                    "libraries.tensorrt",
                    f"{tf.distribution} {tf.version} is a TensorRT build, but "
                    "tfcompat does not know which TensorRT soname it asks for",
                )
            )
    return specs, unknowns
