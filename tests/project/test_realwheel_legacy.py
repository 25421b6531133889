"""The probes on a real tensorflow-gpu 1.15 wheel (issue 14). Opt-in: it unpacks ~1.2 GB.

pip download --no-deps --only-binary=:all: --python-version 3.7 --platform manylinux2010_x86_64 \\
    tensorflow-gpu==1.15.5 -d /tmp/wheels
TFCOMPAT_TF115_WHEEL=/tmp/wheels/tensorflow_gpu-1.15.5-cp37-cp37m-manylinux2010_x86_64.whl \\
    python -m pytest -m realwheel tests/project/test_realwheel_legacy.py
"""

from __future__ import annotations

import os
import zipfile

import pytest

WHEEL = os.environ.get("TFCOMPAT_TF115_WHEEL")

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(not WHEEL, reason="set TFCOMPAT_TF115_WHEEL to a tensorflow-gpu 1.15 Linux wheel"),
]

MEMBERS = (
    "tensorflow/__init__.py",
    "tensorflow_core/__init__.py",
    "tensorflow_core/python/platform/build_info.py",
    "tensorflow_core/libtensorflow_framework.so.1",
    "tensorflow_core/python/_pywrap_tensorflow_internal.so",
)


def test_real_1_15_wheel_layout_caller_and_sonames(tmp_path):
    from tfcompat.matrix import load_matrix
    from tfcompat.model import Platform, PythonInfo
    from tfcompat.probes.libraries import probe_libraries
    from tfcompat.probes.packages import scan_packages
    from tfcompat.probes.rootfs import Root
    from tfcompat.probes.tensorflow import find_tensorflow

    site = tmp_path / "site-packages"
    with zipfile.ZipFile(WHEEL) as z:
        names = z.namelist()
        dist_info = [n for n in names if ".dist-info/" in n and n.endswith(("METADATA", "WHEEL"))]
        for n in list(MEMBERS) + dist_info:
            z.extract(n, site)
    packages, _ = scan_packages([str(site)])
    builds, _ = find_tensorflow(packages, [str(site)], Root(None))
    tf = builds[0]
    assert tf.distribution == "tensorflow-gpu"
    assert tf.build_info_path == f"{site}/tensorflow_core/python/platform/build_info.py"
    assert (tf.cuda_version, tf.cudnn_version, tf.is_cuda_build) == ("10", "7", True)
    native, _ = probe_libraries(
        Root(None), tf, packages, [str(site)], PythonInfo(None, "3.7.17", "cpython", (), "test"), Platform()
    )
    assert native.caller == f"{site}/tensorflow_core/libtensorflow_framework.so.1"
    assert "tensorflow::internal::LoadLibrary" in native.caller_source
    sonames = [lib.soname for lib in native.libraries]
    assert sonames[:3] == ["libcuda.so.1", "libcudart.so.10.0", "libcublas.so.10.0"]
    assert "libcudnn.so.7" in sonames
    pywrap = next(c for c in native.abi if c.object.endswith("_pywrap_tensorflow_internal.so") and "GLIBCXX" in str(c))
    assert max(pywrap.needed, key=lambda v: tuple(int(x) for x in v.split("_")[1].split("."))) == "GLIBCXX_3.4.11"
    rel = load_matrix().tf_release(tf.version)
    assert (str(rel.cuda), str(rel.glibcxx), rel.manylinux) == ("10.0", "3.4.11", "manylinux2010_x86_64")
