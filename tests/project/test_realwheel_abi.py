"""TFC110/TFC111 prediction vs `import tensorflow` on a real venv, and the probe's ABI facts vs the matrix. Opt-in.

python3.7 -m venv /tmp/tf27 && /tmp/tf27/bin/pip install tensorflow-cpu==2.7.1 protobuf==4.21.0 numpy==1.15.4
TFCOMPAT_TF_PYTHON=/tmp/tf27/bin/python python -m pytest -m realwheel tests/project/test_realwheel_abi.py
(2026-12-07: TFC110 and TFC111 fired there and the import failed with "Descriptors cannot not be created directly";
with protobuf 3.20.3, "No module named 'numpy.core._multiarray_umath'"; with NumPy 1.16.0 it imported.)
"""

import os
import subprocess

import pytest
from packaging.version import Version

TF_PYTHON = os.environ.get("TFCOMPAT_TF_PYTHON")

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(not TF_PYTHON, reason="set TFCOMPAT_TF_PYTHON to a venv's python with TensorFlow installed"),
]


# (TF minor, Python) whose wheels ship other NumPy headers than the row's numpy_built_with (its comment says which)
OTHER_HEADERS = {
    ("2.12", "3.11"),
    ("2.13", "3.11"),
    ("2.16", "3.12"),
    ("2.17", "3.12"),
    ("2.19", "3.9"),
    ("2.20", "3.9"),
}


def test_prediction_matches_import_and_the_matrix():
    from tfcompat.matrix import load_matrix
    from tfcompat.matrix.abi_floors import legacy_gencode, numpy_floor
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    env = scan(TargetSpec(python=TF_PYTHON), nvml=False)
    matrix = load_matrix()
    tf = env.tensorflow
    assert tf is not None and tf.pb2_gencode in ("descriptors", "pool") and tf.numpy_built_with
    row = matrix.tf_release(tf.version)
    if row is not None:  # the wheel's own files agree with the matrix row (per-Python exceptions are in its comments)
        assert (tf.pb2_gencode == "descriptors") == legacy_gencode(row.protoc)
        if tf.pb2_protobuf:
            assert Version(tf.pb2_protobuf) == row.protoc
        py = ".".join(env.target.python.version.split(".")[:2])
        if (".".join(tf.version.split(".")[:2]), py) not in OTHER_HEADERS:
            assert Version(tf.numpy_built_with) == row.numpy_built_with
        assert numpy_floor(Version(tf.numpy_built_with)) is not None
    report = evaluate(env, matrix, select=["TFC103", "TFC110", "TFC111"])
    fired = {f.rule for f in report.findings}
    proc = subprocess.run(
        [TF_PYTHON, "-c", "import tensorflow"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if "TFC110" in fired:
        assert "Descriptors cannot" in proc.stderr
    elif "TFC111" in fired:
        assert "_multiarray_umath" in proc.stderr or "API version" in proc.stderr, proc.stderr[-2000:]
    if not fired:
        assert proc.returncode == 0, proc.stderr[-2000:]
