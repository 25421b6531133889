"""The probes on the layouts of old TensorFlow wheels (issue 14): tensorflow_core/ (1.15, 2.0, 2.1), build_info.py
that states only the CUDA major or nothing, CUDA linked by DT_NEEDED (1.5-1.13), tensorflow::internal::LoadLibrary
as the dlopen() caller; and TFC306 on those objects. Trees: tests/legacy_tree.py (the real wheels' layout)."""

from __future__ import annotations

import dataclasses

import pytest
from elf_fixtures import needs_gcc
from legacy_tree import SITE, make_install, with_host

from tfcompat.matrix import shipped_facts
from tfcompat.model import Gpu
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.packages import scan_packages
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec
from tfcompat.probes.tensorflow import find_tensorflow
from tfcompat.rules import evaluate
from tfcompat.scan import scan

pytestmark = needs_gcc


@pytest.fixture(autouse=True)
def _fresh_elf_cache():
    clear_cache()
    yield
    clear_cache()


def sonames(cuda, tf, cudnn_major=7):
    return tuple(s.soname for s in shipped_facts().sonames(cuda, tf, cudnn_major))


def test_build_info_of_the_tensorflow_core_layout(tmp_path):
    """1.15: build_info.py is tensorflow_core/python/platform/build_info.py; tensorflow/ stays the package that
    `import tensorflow` finds (it forwards to tensorflow_core)."""
    make_install(tmp_path, "1.15.5", sonames=sonames("10", "1.15.5"))
    site = str(tmp_path) + SITE
    packages, _ = scan_packages([site])
    builds, unknowns = find_tensorflow(packages, [site], Root(None))
    tf = builds[0]
    assert (tf.distribution, tf.version) == ("tensorflow-gpu", "1.15.5")
    assert tf.build_info_path == f"{site}/tensorflow_core/python/platform/build_info.py"
    assert tf.package_dir == f"{site}/tensorflow"
    assert (tf.cuda_version, tf.cudnn_version, tf.is_cuda_build) == ("10", "7", True)
    assert not [u for u in unknowns if u.fact.startswith("tensorflow")]


def test_tensorflow_core_objects_and_their_rpath(tmp_path):
    """The objects come from tensorflow_core/; the CUDA 10.0 sonames (libcublas.so.10.0, not .so.10) are looked up
    from libtensorflow_framework.so.1, which defines tensorflow::internal::LoadLibrary (the 1.14-2.3 name)."""
    inst = make_install(tmp_path, "1.15.5", cudnn="7.6.5", sonames=sonames("10", "1.15.5"))
    env = scan(TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False)
    native = env.target.native
    assert native.caller == inst.framework and inst.framework.endswith("tensorflow_core/libtensorflow_framework.so.1")
    libs = {lib.name: lib for lib in native.libraries}
    assert libs["cublas"].soname == "libcublas.so.10.0" and libs["cublas"].found.version == "10.0.130"
    assert libs["cudnn"].found.version == "7.6.5"
    assert not [u for u in env.unknowns if u.fact.startswith("libraries")]
    assert {c.object for c in native.abi} == {inst.pywrap}  # the gcc-built framework stub needs no symbol versions


def test_2_2_states_cuda_10_and_loads_the_10_1_sonames(tmp_path):
    """tensorflow 2.2's build_info.py says cuda_version_number '10' (the 2.2.3 wheel), but the wheel asks for
    libcudart.so.10.1 and libcublas.so.10 (https://github.com/tensorflow/tensorflow/issues/38578): the [[dlopen]]
    entries' TF range picks them where the CUDA minor is unknown."""
    make_install(tmp_path, "2.2.3", distribution="tensorflow", cuda="10.1", sonames=sonames("10", "2.2.3"))
    env = scan(TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False)
    names = [lib.soname for lib in env.target.native.libraries]
    assert "libcudart.so.10.1" in names and "libcublas.so.10" in names and "libcublas.so.10.0" not in names
    assert env.tensorflow.build_info_path.endswith("/tensorflow/python/platform/build_info.py")


def test_1_13_links_cuda_by_dt_needed_and_states_no_version(tmp_path):
    """tensorflow-gpu 1.13.1: build_info.py says only is_cuda_build; libtensorflow_framework.so needs
    libcudart.so.10.0 and libcudnn.so.7, _pywrap_tensorflow_internal.so libcublas/libcusolver.so.10.0 (the
    1.13.1 wheel). The sonames come from those DT_NEEDED entries; a missing libcublas.so.10.0 is what
    https://github.com/tensorflow/tensorflow/issues/26209 reports ("ImportError: libcublas.so.10.0: cannot open
    shared object file")."""
    all_libs = sonames("10.0", "1.13.1")
    make_install(tmp_path, "1.13.1", sonames=all_libs, skip=("libcublas.so.10.0",))
    env = scan(TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False)
    assert env.tensorflow.cuda_version is None  # build_info's facts stay what the file says
    libs = {lib.soname: lib for lib in env.target.native.libraries}
    assert set(all_libs) - {"libcuda.so.1"} <= set(libs)
    assert libs["libcublas.so.10.0"].found is None
    report = evaluate(with_host(env, "410.48", (Gpu(0, "Tesla T4", compute_capability="7.5"),)), _matrix())
    tfc301 = [f for f in report.findings if f.rule == "TFC301"]
    assert tfc301 and "libcublas.so.10.0" in tfc301[0].message


def _matrix():
    from tfcompat.matrix import load_matrix

    return load_matrix()


# -- TFC306 on old objects, with and without the library list ----------------------------------------------------

OLD_LIBSTDCXX = tuple(f"GLIBCXX_3.4.{i}" for i in range(0, 20)) + ("GLIBCXX_3.4",)  # GCC 4.8 (CentOS 7)


def test_tfc306_names_the_old_pywrap_as_tensorflows_own(tmp_path):
    """tensorflow-gpu 1.14.0's _pywrap_tensorflow_internal.so needs GLIBCXX_3.4.21 (the 1.14.0 wheel, built on
    Ubuntu 16.04); a libstdc++ of GCC 4.8 defines up to 3.4.19: `import tensorflow` fails,
    https://github.com/tensorflow/tensorflow/issues/30856 ("version `GLIBCXX_3.4.21' not found (required by
    .../tensorflow/python/_pywrap_tensorflow_internal.so)", TF 1.14.0)."""
    make_install(
        tmp_path,
        "1.14.0",
        sonames=sonames("10.0", "1.14.0"),
        libstdcxx=OLD_LIBSTDCXX,
        pywrap_glibcxx=("GLIBCXX_3.4.11", "GLIBCXX_3.4.21"),
    )
    env = scan(TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False)
    report = evaluate(with_host(env, None, ()), _matrix())
    hits = [f for f in report.findings if f.rule == "TFC306"]
    assert len(hits) == 1 and hits[0].severity.value == "error"
    assert "_pywrap_tensorflow_internal.so" in hits[0].message and "import tensorflow fails" in hits[0].message


def test_tfc306_judges_when_the_library_list_is_unknown(tmp_path):
    """Without a [[dlopen]] table the CUDA library list is unknown ("libraries" unknown), but TF's own objects were
    read: TFC306 still judges them instead of being skipped."""
    make_install(
        tmp_path,
        "1.14.0",
        sonames=sonames("10.0", "1.14.0"),
        libstdcxx=OLD_LIBSTDCXX,
        pywrap_glibcxx=("GLIBCXX_3.4.21",),
    )
    facts = dataclasses.replace(shipped_facts(), dlopen=())
    env = scan(TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False, facts=facts)
    assert env.unknown("libraries") and env.target.native is not None
    report = evaluate(with_host(env, None, ()), _matrix())
    assert [f.rule for f in report.findings if f.rule == "TFC306"] == ["TFC306"]
    assert "TFC302" in {s.rule for s in report.skipped}  # the rules that need the list are still skipped


def test_tfc306_counts_any_object_inside_tensorflow_core_as_tensorflows(matrix):
    """An object of TF's package that is not one of the four known names (an old layout's extension module) is
    TF's own: the message says `import tensorflow` fails, not "at the first GPU op"."""
    from envs import make_env, tf_build

    from tfcompat.model import NativeLibraries, VersionNeedCheck

    tf = dataclasses.replace(tf_build("2.21.0"), version="1.15.5", distribution="tensorflow-gpu")
    obj = f"{tf.location}/tensorflow_core/python/_tf_stack.so"
    check = VersionNeedCheck(
        obj,
        "libstdc++.so.6",
        ("GLIBCXX_3.4.26",),
        "/usr/lib/libstdc++.so.6",
        "default path",
        ("GLIBCXX_3.4.26",),
        ("GLIBCXX_3.4.25",),
    )
    env = make_env(tf_builds=[tf], native=NativeLibraries(caller=None, caller_source="test", abi=(check,)))
    report = evaluate(env, matrix, select=["TFC306"])
    assert [f.severity.value for f in report.findings] == ["error"]
    assert "import tensorflow fails" in report.findings[0].message
