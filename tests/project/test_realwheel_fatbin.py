"""The fatbin reader on a real TensorFlow wheel's CUDA objects. Opt-in (a multi-GB install).

    python -m venv /tmp/tf221 && /tmp/tf221/bin/pip install tensorflow==2.21.0
    TFCOMPAT_TF_PYTHON=/tmp/tf221/bin/python python -m pytest -m realwheel -s tests/project/test_realwheel_fatbin.py

Reads the .nv_fatbin sections of libtensorflow_framework.so.2, libtensorflow_cc.so.2 and
python/_pywrap_tensorflow_internal.so (headers only), prints every sm/compute entry with its count and the time
taken, and checks them against build_info.py's cuda_compute_capabilities (compute_XY there means SASS and PTX
for XY). Seen on tensorflow==2.21.0 (CUDA 12.5.1): sm_60 sm_70 sm_80 sm_89 sm_90 and compute_90, 249 containers
in libtensorflow_cc.so.2 and 40 in libtensorflow_framework.so.2, each with all six entries, every payload
compressed; ~25 ms with the files cached, ~0.2-0.4 s cold, on a shared 2-core machine.
"""

import os
import subprocess
import time

import pytest

from tfcompat.probes.native.fatbin import describe, merge, read_fatbins, tensorflow_objects
from tfcompat.probes.tensorflow import BUILD_INFO, parse_build_info
from tfcompat.rules.binaries import carried_entries, stated_entries

TF_PYTHON = os.environ.get("TFCOMPAT_TF_PYTHON")

pytestmark = [
    pytest.mark.realwheel,
    pytest.mark.skipif(not TF_PYTHON, reason="set TFCOMPAT_TF_PYTHON to a venv's python with TensorFlow installed"),
]


def _site_packages() -> str:
    # sysconfig only: the venv's TensorFlow is never imported
    out = subprocess.run(
        [TF_PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_fatbin_entries_match_build_info():
    site = _site_packages()
    with open(os.path.join(site, BUILD_INFO), encoding="utf-8") as fh:
        stated = tuple(parse_build_info(fh.read()).get("cuda_compute_capabilities") or ())
    objects = tensorflow_objects(site)
    assert any(o.endswith("libtensorflow_cc.so.2") for o in objects), objects
    scans = []
    for path in objects:
        start = time.perf_counter()
        scan = read_fatbins(path)
        took = time.perf_counter() - start
        scans.append(scan)
        print(
            f"\n{path}: {scan.containers} containers, {scan.entries} entries ({scan.compressed} compressed) in "
            f"{scan.section_bytes} bytes, {took * 1000:.1f} ms: {describe(scan)}"
        )
        assert scan.problems == ()
        assert took < 10
    merged = merge(scans)
    print(f"build_info: {' '.join(stated)}; binaries: {' '.join(merged.archs)}")
    assert merged.entries > 0
    assert stated_entries(stated) == carried_entries(merged.archs)
    for scan in scans:  # every container of TF's kernels carries every architecture
        assert len({n for _, n in scan.counts}) <= 1, describe(scan)
