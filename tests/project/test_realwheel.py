"""Prediction vs reality on a real TensorFlow venv. Opt-in: it needs a multi-GB install.

python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow==2.21.0
TFCOMPAT_TF_PYTHON=/tmp/tf/bin/python python -m pytest -m realwheel
"""

import json
import os
import subprocess

import pytest

TF_PYTHON = os.environ.get("TFCOMPAT_TF_PYTHON")

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(not TF_PYTHON, reason="set TFCOMPAT_TF_PYTHON to a venv's python with TensorFlow installed"),
]

ASK_TF = """
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy, tensorflow as tf
print(json.dumps({"version": tf.__version__, "build": dict(tf.sysconfig.get_build_info()),
                  "numpy": numpy.__version__, "file": tf.__file__}))
"""


def test_static_scan_agrees_with_import():
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    env = scan(TargetSpec(python=TF_PYTHON), nvml=False)
    proc = subprocess.run(
        [TF_PYTHON, "-c", ASK_TF],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    real = json.loads(proc.stdout.strip().splitlines()[-1])
    tf = env.tensorflow
    assert tf is not None
    assert tf.version == real["version"]
    assert os.path.dirname(real["file"]) == tf.package_dir
    build = real["build"]
    assert tf.cuda_version == build.get("cuda_version")
    assert tf.cudnn_version == build.get("cudnn_version")
    assert list(tf.compute_capabilities) == list(build.get("cuda_compute_capabilities", []))
    assert tf.is_cuda_build == build.get("is_cuda_build")
    assert env.package("numpy").version == real["numpy"]
