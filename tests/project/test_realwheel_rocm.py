"""ROCm from the binaries, on real tensorflow-rocm wheels from PyPI. Opt-in (the wheels are 290-430 MB each):

    pip download --no-deps --only-binary=:all: --python-version 3.8 tensorflow-rocm==2.2.0 -d /tmp/rocm-wheels
    pip download --no-deps --only-binary=:all: --python-version 3.8 tensorflow-rocm==2.4.0 -d /tmp/rocm-wheels
    pip download --no-deps --only-binary=:all: --python-version 3.9 tensorflow-rocm==2.9.1 -d /tmp/rocm-wheels
    pip download --no-deps --only-binary=:all: --python-version 3.9 tensorflow-rocm==2.14.0.600 -d /tmp/rocm-wheels
    TFCOMPAT_ROCM_WHEELS=/tmp/rocm-wheels python -m pytest -m realwheel tests/project/test_realwheel_rocm.py

Skipped unless TFCOMPAT_ROCM_WHEELS is set, and for each wheel not in that directory. TF's own objects are unpacked to a temporary directory and read
with the project's readers: their DT_NEEDED ROCm sonames, the build's RUNPATH and the gfx targets of the clang
offload bundles in .hip_fatbin. What the wheels held when read on 2026-12-07 is asserted here.
"""

import glob
import os
import shutil
import zipfile

import pytest

from tfcompat.model import TensorFlowBuild
from tfcompat.probes.rocm import probe_rocm_objects
from tfcompat.probes.rootfs import Root

WHEELS = os.environ.get("TFCOMPAT_ROCM_WHEELS")
OBJECTS = ("tensorflow/python/_pywrap_tensorflow_internal.so", "tensorflow/libtensorflow_framework.so.2")
CASES = {
    "2.2.0": {
        "needed": {"libamdhip64.so.3", "libhsa-runtime64.so.1"},
        "runpath": "/opt/rocm-3.5.0/lib",
        "gfx": ("gfx803", "gfx900", "gfx906", "gfx908"),
        "objects": OBJECTS,
    },
    "2.4.0": {
        "needed": {"libamdhip64.so.4", "libhsa-runtime64.so.1"},
        "runpath": "/opt/rocm-4.0.0/lib",
        "gfx": ("gfx803", "gfx900", "gfx906", "gfx908"),
        "objects": OBJECTS,
    },
    "2.9.1": {
        "needed": {"libamdhip64.so.5", "libhsa-runtime64.so.1"},
        "runpath": "/opt/rocm-5.1.3/lib",
        "gfx": ("gfx1030", "gfx900", "gfx906", "gfx908", "gfx90a"),
        "objects": OBJECTS,
    },
    "2.14.0.600": {
        "needed": {"libamdhip64.so.6", "libhsa-runtime64.so.1"},
        "runpath": "/opt/rocm-6.0.0/lib",
        "gfx": ("gfx1030", "gfx1100", "gfx900", "gfx906", "gfx908", "gfx90a"),
        "objects": OBJECTS + ("tensorflow/libtensorflow_cc.so.2",),
    },
}

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(not WHEELS, reason="set TFCOMPAT_ROCM_WHEELS to a directory of tensorflow-rocm wheels"),
]


@pytest.mark.parametrize("version", sorted(CASES))
def test_rocm_wheel_binaries(version, tmp_path, matrix):
    wheels = glob.glob(os.path.join(WHEELS or "", f"tensorflow_rocm-{version}-*.whl"))
    if not wheels:
        pytest.skip(f"no tensorflow_rocm-{version} wheel in {WHEELS}")
    case = CASES[version]
    with zipfile.ZipFile(wheels[0]) as whl:
        for member in case["objects"]:
            whl.extract(member, tmp_path)
    tf = TensorFlowBuild("tensorflow-rocm", version, str(tmp_path), str(tmp_path / "tensorflow"), None)
    try:
        objects, unknowns = probe_rocm_objects(Root(None), tf, None)
    finally:  # up to 1.4 GB unpacked: not left in pytest's kept temporary directories
        shutil.rmtree(tmp_path / "tensorflow")
    assert unknowns == []
    assert {os.path.basename(o.path) for o in objects} == {os.path.basename(m) for m in case["objects"]}
    for o in objects:
        assert case["needed"] <= set(o.rocm_needed), o.path
        assert case["runpath"] in o.build_rocm, o.path
        assert not o.offload_problems and not o.offload_compressed, o.path
    assert tuple(sorted({g for o in objects for g in o.gfx_targets})) == case["gfx"]
    rel = matrix.tf_rocm_release(version)
    if rel is not None:  # the matrix's list agrees with the binaries (TFC404 would say otherwise)
        assert sorted(rel.gfx) == sorted(case["gfx"])
