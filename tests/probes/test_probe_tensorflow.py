"""TensorFlow distributions and their build_info.py, read from disk (never imported)."""

import os

import pytest
from probe_helpers import (
    BUILD_INFO_2_4_4,
    BUILD_INFO_2_21_0,
    BUILD_INFO_OLD,
    BUILD_INFO_ROCM,
    TF_WHEEL_TAG,
    make_dist,
    make_tf,
)

from tfcompat.probes.packages import scan_packages
from tfcompat.probes.tensorflow import BUILD_INFO, find_tensorflow, parse_build_info

CPU_BUILD_INFO = (
    "import collections\n"
    "build_info = collections.OrderedDict([('cpu_compiler', 'clang'), ('is_cuda_build', False), "
    "('is_rocm_build', False), ('is_tensorrt_build', False)])\n"
)


def find(*sites):
    search = [str(s) for s in sites]
    packages, _ = scan_packages(search)
    return find_tensorflow(packages, search)


def facts(unknowns):
    return [u.fact for u in unknowns]


# ---------------------------------------------------------------------------
# parse_build_info


def test_parse_build_info_2_21_0():
    info = parse_build_info(BUILD_INFO_2_21_0)
    assert info == {
        "cpu_compiler": "clang",
        "cuda_compute_capabilities": ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"],
        "cuda_version": "12.5.1",
        "cudnn_version": "9",
        "is_cuda_build": True,
        "is_rocm_build": False,
        "is_tensorrt_build": False,
    }


def test_parse_build_info_2_4_4_has_no_tensorrt_key():
    info = parse_build_info(BUILD_INFO_2_4_4)
    assert info["cuda_version"] == "11.0"
    assert info["cudnn_version"] == "8"
    assert info["cuda_compute_capabilities"] == ["sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]
    assert info["is_cuda_build"] is True
    assert info["cpu_compiler"] == "/dt7/usr/bin/gcc"
    assert "is_tensorrt_build" not in info


def test_parse_build_info_rocm():
    assert parse_build_info(BUILD_INFO_ROCM) == {
        "is_cuda_build": False,
        "is_rocm_build": True,
        "is_tensorrt_build": False,
    }


def test_parse_build_info_old_module_constants():
    info = parse_build_info(BUILD_INFO_OLD)
    assert info["is_cuda_build"] is True
    assert info["is_rocm_build"] is False
    assert info["cuda_version"] == "10.1"
    assert info["cudnn_version"] == "7"
    assert info["cuda_version_number"] == "10.1"


def test_parse_build_info_plain_dict_literal_and_non_literals():
    info = parse_build_info(
        "import sys\n"
        "cuda_version_number = sys.version\n"  # not a literal: ignored, no crash
        "build_info = {'cuda_version': '11.8', 'is_cuda_build': True}\n"
    )
    assert info == {"cuda_version": "11.8", "is_cuda_build": True}


# ---------------------------------------------------------------------------
# find_tensorflow


def test_no_tensorflow_names_the_search_path(tmp_path):
    site, user = tmp_path / "site", tmp_path / "user"
    make_dist(site, "numpy", "2.1.3")
    os.makedirs(user)
    builds, unknowns = find(user, site)
    assert builds == ()
    assert facts(unknowns) == ["tensorflow"]
    assert "no TensorFlow distribution installed" in unknowns[0].reason
    assert f"{user}, {site}" in unknowns[0].reason


def test_no_tensorflow_empty_search_path():
    builds, unknowns = find_tensorflow((), ())
    assert builds == ()
    assert "(an empty search path)" in unknowns[0].reason


def test_real_tensorflow_2_21_0(tmp_path):
    site = tmp_path / "site"
    dist = make_dist(site, "tensorflow", "2.21.0", wheel_tags=[TF_WHEEL_TAG])
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    (tf,), unknowns = find(site)
    assert unknowns == []
    assert tf.distribution == "tensorflow"
    assert tf.version == "2.21.0"
    assert tf.location == str(site)
    assert tf.package_dir == str(site / "tensorflow")
    assert tf.build_info_path == os.path.join(str(site), BUILD_INFO)
    assert tf.cuda_version == "12.5.1"
    assert tf.cudnn_version == "9"
    assert tf.compute_capabilities == ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
    assert (tf.is_cuda_build, tf.is_rocm_build, tf.is_tensorrt_build) == (True, False, False)
    assert tf.cpu_compiler == "clang"
    assert tf.wheel_tags == (TF_WHEEL_TAG,)
    assert tf.wheel_path == os.path.join(dist, "WHEEL")
    assert tf.metadata_path == os.path.join(dist, "METADATA")


def test_old_build_info_and_several_wheel_tags(tmp_path):
    site = tmp_path / "site"
    tags = ["cp37-cp37m-manylinux2010_x86_64", "cp37-cp37m-manylinux_2_12_x86_64"]
    make_dist(site, "tensorflow-gpu", "2.1.4", wheel_tags=tags)
    make_tf(site, "2.1.4", BUILD_INFO_OLD)
    (tf,), unknowns = find(site)
    assert unknowns == []
    assert tf.distribution == "tensorflow-gpu"
    assert (tf.cuda_version, tf.cudnn_version, tf.is_cuda_build) == ("10.1", "7", True)
    assert tf.compute_capabilities == ()
    assert tf.is_tensorrt_build is None
    assert tf.wheel_tags == tuple(tags)


def test_rocm_build(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow-rocm", "2.14.0.600")
    make_tf(site, "2.14.0", BUILD_INFO_ROCM)
    (tf,), _ = find(site)
    assert (tf.is_cuda_build, tf.is_rocm_build, tf.cuda_version) == (False, True, None)
    assert tf.wheel_tags == () and tf.wheel_path is None


def test_tensorflow_and_tensorflow_cpu_first_tensorflow_dir_wins(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    make_dist(first, "tensorflow-cpu", "2.21.0")
    make_tf(first, "2.21.0", CPU_BUILD_INFO)
    make_dist(second, "tensorflow", "2.15.1")
    make_tf(second, "2.15.1", BUILD_INFO_2_21_0)
    search = [str(first), str(second)]
    packages, _ = scan_packages(search)
    builds, unknowns = find_tensorflow(packages, search)
    assert [(b.distribution, b.version, b.location) for b in builds] == [
        ("tensorflow-cpu", "2.21.0", str(first)),
        ("tensorflow", "2.15.1", str(second)),
    ]
    assert (builds[0].is_cuda_build, builds[1].is_cuda_build) == (False, True)
    assert unknowns == []
    # the order comes from where tensorflow/ is, not from the order the packages are handed in
    builds, _ = find_tensorflow(tuple(reversed(packages)), search)
    assert [b.distribution for b in builds] == ["tensorflow-cpu", "tensorflow"]
    # and follows the search path when it changes
    builds, _ = find_tensorflow(packages, list(reversed(search)))
    assert [b.distribution for b in builds] == ["tensorflow", "tensorflow-cpu"]


def test_both_in_one_site_packages(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow", "2.21.0")
    make_dist(site, "tensorflow-cpu", "2.20.0")
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    builds, unknowns = find(site)
    assert sorted((b.distribution, b.version) for b in builds) == [
        ("tensorflow", "2.21.0"),
        ("tensorflow-cpu", "2.20.0"),
    ]
    assert all(b.build_info_path == os.path.join(str(site), BUILD_INFO) for b in builds)
    assert unknowns == []


def test_wrapper_without_build_info_next_to_real_one(tmp_path):
    wrap, real = tmp_path / "wrap", tmp_path / "real"
    make_dist(wrap, "tensorflow", "2.21.0", requires=["tensorflow-intel==2.21.0"])  # metadata only
    make_dist(real, "tensorflow-intel", "2.21.0")
    make_tf(real, "2.21.0", BUILD_INFO_2_21_0)
    builds, unknowns = find(wrap, real)
    assert [b.distribution for b in builds] == ["tensorflow-intel", "tensorflow"]
    assert builds[0].cuda_version == "12.5.1"
    assert builds[1].build_info_path is None and builds[1].package_dir is None
    assert builds[1].cuda_version is None
    assert unknowns == []  # the effective build is known: the wrapper's missing build_info is no gap


def test_wrapper_alone_records_unknown_build(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow", "2.21.0")
    (tf,), unknowns = find(site)
    assert tf.build_info_path is None
    assert facts(unknowns) == ["tensorflow.build"]
    assert "tensorflow 2.21.0 has no" in unknowns[0].reason
    assert BUILD_INFO in unknowns[0].reason


def test_unparsable_build_info(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow", "2.21.0")
    make_tf(site, "2.21.0", "build_info = (\n")
    (tf,), unknowns = find(site)
    assert tf.build_info_path is None and tf.cuda_version is None
    assert facts(unknowns) == ["tensorflow.build"]
    assert unknowns[0].reason.startswith("cannot read ")


def test_tensorflow_dir_without_metadata(tmp_path):
    site = tmp_path / "site"
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    make_dist(site, "keras", "3.12.0")
    builds, unknowns = find(site)
    assert builds == ()
    assert facts(unknowns) == ["tensorflow"]
    assert str(site / "tensorflow") in unknowns[0].reason
    assert "no distribution metadata" in unknowns[0].reason


def test_non_tf_distribution_is_ignored(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow-io", "0.37.1")
    make_dist(site, "tensorflow-estimator", "2.15.0")
    builds, unknowns = find(site)
    assert builds == ()
    assert facts(unknowns) == ["tensorflow"]


@pytest.mark.parametrize("text", ["build_info = 5\n", "build_info = collections.OrderedDict([({}, 1)])\n"])
def test_malformed_build_info_is_unknown_not_a_crash(tmp_path, text):
    from tfcompat.model import Package
    from tfcompat.probes.tensorflow import read_build

    site = tmp_path / "site"
    (site / "tensorflow" / "python" / "platform").mkdir(parents=True)
    (site / "tensorflow" / "python" / "platform" / "build_info.py").write_text("import collections\n" + text)
    build, unknowns = read_build(Package("tensorflow", "2.21.0", str(site), str(site / "x" / "METADATA")))
    assert build.cuda_version is None and [u.fact for u in unknowns] == ["tensorflow.build"]
