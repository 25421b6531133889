"""The tensorflow probe reads the SASS/PTX entries of TF's own CUDA objects only where build_info.py may not tell
the truth (no compute capabilities in it, or not a wheel that pip/uv installed); a PyPI wheel never pays for it."""

import os
import shutil

import pytest
from probe_helpers import BUILD_INFO_2_21_0, BUILD_INFO_OLD, TF_WHEEL_TAG, make_dist, make_tf, write

import tfcompat.probes.native.fatbin as fatbin
from tfcompat.probes.packages import scan_packages
from tfcompat.probes.tensorflow import find_tensorflow

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "fatbin", "libaxpy_sm75_sm90.so")
CPU_BUILD_INFO = "import collections\nbuild_info = collections.OrderedDict([('is_cuda_build', False)])\n"


def install(site, version, build_info, installer="pip", wheel=True, objects=("libtensorflow_framework.so.2",)):
    make_dist(site, "tensorflow", version, wheel_tags=(TF_WHEEL_TAG,) if wheel else ())
    dist_info = os.path.join(site, f"tensorflow-{version}.dist-info")
    if installer is not None:
        write(os.path.join(dist_info, "INSTALLER"), installer + "\n")
    pkg = make_tf(site, version, build_info)
    for name in objects:
        os.makedirs(os.path.dirname(os.path.join(pkg, name)), exist_ok=True)
        shutil.copy(FIXTURE, os.path.join(pkg, name))
    return pkg


def probe(site):
    packages, _ = scan_packages([str(site)])
    builds, unknowns = find_tensorflow(packages, [str(site)])
    return builds[0], unknowns


def test_old_build_info_without_capabilities_reads_the_objects(tmp_path):
    """TF 2.2's build_info.py (module constants, no compute capabilities): the objects say what the build has."""
    pkg = install(str(tmp_path), "2.2.0", BUILD_INFO_OLD, objects=("libtensorflow_framework.so.2",))
    tf, unknowns = probe(tmp_path)
    assert tf.compute_capabilities == ()
    assert tf.binary_capabilities == ("sm_75", "sm_90", "compute_90")
    assert tf.binary_capabilities_source == f"{pkg}/libtensorflow_framework.so.2"
    assert not [u for u in unknowns if u.fact == "tensorflow.binary_capabilities"]


def test_pypi_wheel_installed_by_pip_or_uv_is_not_read(tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("the PyPI fast path read TF's objects")

    monkeypatch.setattr(fatbin, "read_tensorflow_binaries", boom)
    for n, installer in enumerate(("pip", "uv")):
        site = tmp_path / str(n)
        install(str(site), "2.21.0", BUILD_INFO_2_21_0, installer=installer)
        tf, _ = probe(site)
        assert tf.binary_capabilities == () and tf.binary_capabilities_source is None


@pytest.mark.parametrize("installer, wheel", [("conda", True), ("pip", False), (None, True)])
def test_conda_or_source_builds_are_read_even_with_capabilities(tmp_path, installer, wheel):
    install(str(tmp_path), "2.21.0", BUILD_INFO_2_21_0, installer=installer, wheel=wheel)
    tf, _ = probe(tmp_path)
    assert tf.compute_capabilities == ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
    assert tf.binary_capabilities == ("sm_75", "sm_90", "compute_90")


def test_cpu_build_is_not_read(tmp_path):
    install(str(tmp_path), "2.21.0", CPU_BUILD_INFO, installer="conda")
    assert probe(tmp_path)[0].binary_capabilities_source is None


def test_tf_1_15_layout_and_damaged_object(tmp_path):
    """TF 1.15 keeps its objects in tensorflow_core/; a truncated one is an unknown, never a crash."""
    site = str(tmp_path)
    install(site, "1.15.5", BUILD_INFO_OLD, objects=())
    core = os.path.join(site, "tensorflow_core")
    os.makedirs(os.path.join(core, "python"))
    shutil.copy(FIXTURE, os.path.join(core, "libtensorflow_framework.so.1"))
    with open(FIXTURE, "rb") as fh:
        head = fh.read(9000)  # the ELF header and part of the section, not all of it
    write(os.path.join(core, "python", "_pywrap_tensorflow_internal.so"))
    with open(os.path.join(core, "python", "_pywrap_tensorflow_internal.so"), "wb") as fh:
        fh.write(head)
    tf, unknowns = probe(tmp_path)
    assert tf.binary_capabilities == ("sm_75", "sm_90", "compute_90")
    assert "_pywrap_tensorflow_internal.so" in tf.binary_capabilities_source
    assert [u for u in unknowns if u.fact == "tensorflow.binary_capabilities"]
