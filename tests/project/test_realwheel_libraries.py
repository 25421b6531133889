"""The loader model against the real loader, on real TensorFlow venvs. Opt-in (multi-GB installs).

    python -m venv /tmp/tf221cuda && /tmp/tf221cuda/bin/pip install "tensorflow[and-cuda]==2.21.0"
    TFCOMPAT_TF_CUDA_PYTHON=/tmp/tf221cuda/bin/python TFCOMPAT_TF_PYTHON=/tmp/tf221/bin/python \\
        python -m pytest -m realwheel tests/test_realwheel_libraries.py

A child process of the venv's interpreter (never tfcompat itself) loads libtensorflow_framework.so.2 and
calls TensorFlow's own tsl::internal::DsoLoader::Get<Lib>DsoHandle() functions under LD_DEBUG=libs, so
that glibc dlopen()s each library exactly as TensorFlow does on a GPU node (no GPU needed), then asks
cuDNN to load its sub-libraries. Every file glibc initialises must be the file tfcompat predicted.
"""

import json
import os
import re
import subprocess

import pytest

VENVS = [v for v in (os.environ.get("TFCOMPAT_TF_CUDA_PYTHON"), os.environ.get("TFCOMPAT_TF_PYTHON")) if v]

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(
        not VENVS, reason="set TFCOMPAT_TF_CUDA_PYTHON (a tensorflow[and-cuda] venv's python) and/or TFCOMPAT_TF_PYTHON"
    ),
]

# tfcompat library name -> the DsoLoader function TF uses for it.
DSO_FUNCS = {
    "cuda": "CudaDriver",
    "cudart": "CudaRuntime",
    "cublas": "Cublas",
    "cublasLt": "CublasLt",
    "cufft": "Cufft",
    "cusolver": "Cusolver",
    "cusparse": "Cusparse",
    "cudnn": "Cudnn",
    "nccl": "Nccl",
    "cupti": "Cupti",
    "nvshmem": "Nvshmem",
    "nvinfer": "NvInfer",
    "nvinfer_plugin": "NvInferPlugin",
}

CHILD = r"""
import ctypes, json, os, sys
site, names = sys.argv[1], sys.argv[2:]
fw = ctypes.CDLL(os.path.join(site, "tensorflow", "libtensorflow_framework.so.2"), mode=os.RTLD_NOW | ctypes.RTLD_GLOBAL)
asked = {}
for n in names:
    sym = "_ZN3tsl8internal9DsoLoader%dGet%sDsoHandleEv" % (len("Get" + n + "DsoHandle"), n)
    fn = getattr(fw, sym, None)
    if fn is None:
        asked[n] = "nosym"
        continue
    fn.restype, fn.argtypes = None, [ctypes.c_void_p]
    buf = (ctypes.c_uint64 * 8)()
    fn(ctypes.addressof(buf))
try:
    cudnn = ctypes.CDLL("libcudnn.so.9", mode=os.RTLD_NOLOAD | os.RTLD_NOW)
except OSError:
    cudnn = None
if cudnn is not None:
    for f in ("cudnnGraphVersionCheck", "cudnnOpsVersionCheck", "cudnnCnnVersionCheck", "cudnnAdvVersionCheck"):
        getattr(cudnn, f)()
print(json.dumps(asked))
"""


def _ld_debug(python, site, names):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    env.update(LD_DEBUG="libs", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([python, "-c", CHILD, site] + names, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    asked, initialised = [], []
    for line in proc.stderr.splitlines():
        m = re.search(r"find library=(\S+) \[0\]; searching", line)
        if m:  # libcudart.so.12 is dlopen()ed while the framework initialises, before any call
            asked.append(m.group(1))
        m = re.search(r"calling init: (/\S+)", line)
        if m:
            initialised.append(os.path.realpath(m.group(1)))
    return json.loads(proc.stdout.strip().splitlines()[-1]), asked, initialised


@pytest.mark.parametrize("python", VENVS)
def test_loader_model_agrees_with_ld_debug(python):
    from tfcompat.probes.native.elf import read_elf
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    env = scan(TargetSpec(python=python), nvml=False, environ={})
    native = env.target.native
    tf = env.tensorflow
    assert native is not None and tf is not None and native.libraries
    site = tf.location
    libs = {lib.name: lib for lib in native.libraries}
    funcs = [DSO_FUNCS[n] for n in libs if n in DSO_FUNCS]
    nosym, asked, initialised = _ld_debug(python, site, funcs)
    # 1. TF asks for exactly the sonames in tfcompat's table.
    for name, func in DSO_FUNCS.items():
        if name in libs and nosym.get(func) != "nosym":
            assert libs[name].soname in asked, (name, libs[name].soname, asked)
    # 2. Every library glibc loaded is the file tfcompat predicted, and nothing predicted missing was loaded.
    by_soname = {}
    for path in initialised:
        so = read_elf(path).soname
        if so:
            by_soname.setdefault(so, path)
    checked = 0
    for lib in native.libraries:
        if lib.role == "cudnn-sublibrary" and lib.name not in ("cudnn_graph", "cudnn_ops", "cudnn_cnn", "cudnn_adv"):
            continue  # the child only makes cuDNN load these four
        loaded = by_soname.get(lib.soname)
        if lib.found is None or lib.found.problem:
            assert loaded is None, f"{lib.soname}: tfcompat says not loadable, glibc loaded {loaded}"
        else:
            assert os.path.realpath(lib.found.real_path) in initialised, (lib.soname, lib.found, initialised)
        checked += 1
    assert checked >= 10
