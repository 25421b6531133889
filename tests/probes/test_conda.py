"""probes/conda.py: the conda-meta records of a conda environment's CUDA packages, and the versions they give
the libraries the loader picks (probes/library_versions.py). Trees from conda_fixtures.py (records written by
hand in conda's documented PrefixRecord format, real ELF libraries)."""

import dataclasses
import json
import os

import pytest
from conda_fixtures import CONDA_FORGE, PREFIX, SITE, conda_env, record, system_libs, tensorflow, toolkit
from elf_fixtures import needs_gcc
from probe_helpers import write

from tfcompat.model import CondaPackage, environment_from_json, to_json_dict
from tfcompat.probes import conda as conda_probe
from tfcompat.probes.conda import channel_name, conda_prefixes, probe_conda
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec
from tfcompat.scan import scan


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def by_name(native):
    return {lib.name: lib for lib in native.libraries}


@needs_gcc
def test_done_when_environment_is_read_and_versions_its_libraries(tmp_path):
    """cudatoolkit 11.2.2 + cudnn 8.1.0.77 + nccl from conda-forge, TF 2.5: every library TF dlopen()s is the
    conda package's file, with the package's version, like the nvidia-* wheels' (record path as the source)."""
    conda_env(tmp_path)
    env = scan(TargetSpec(root=str(tmp_path)), nvml=False)
    pkgs = {p.name: p for p in env.target.conda_packages}
    assert set(pkgs) == {"cudatoolkit", "cudnn", "nccl", "tensorflow-base"}  # python's record is not kept
    cudnn = pkgs["cudnn"]
    assert (cudnn.version, cudnn.build, cudnn.build_number, cudnn.channel, cudnn.subdir) == (
        "8.1.0.77",
        "h90431f1_0",
        0,
        "conda-forge",
        "linux-64",
    )
    assert cudnn.prefix == PREFIX and cudnn.record_path == PREFIX + "/conda-meta/cudnn-8.1.0.77-h90431f1_0.json"
    assert PREFIX + "/lib/libcudnn.so.8.1.0" in cudnn.libraries
    assert PREFIX + "/include/cudnn_version.h" not in cudnn.libraries  # only shared objects are kept
    assert pkgs["tensorflow-base"].build == "cuda112py39h01bd6f0_0"  # conda-forge names the build's CUDA
    assert not [u for u in env.unknowns if u.fact.startswith(("conda", "libraries"))]
    libs = by_name(env.target.native)
    front = libs["cudnn"].found
    assert front.real_path == PREFIX + "/lib/libcudnn.so.8.1.0" and front.found_via == "DT_RPATH"
    assert (front.version, front.distribution) == ("8.1.0.77", "conda-forge::cudnn")
    assert front.version_source == cudnn.record_path
    cudart = libs["cudart"].found
    assert (cudart.version, cudart.distribution) == ("11.2.2", "conda-forge::cudatoolkit")
    assert libs["nccl"].found.distribution == "conda-forge::nccl"
    subs = [lib for lib in env.target.native.libraries if lib.role == "cudnn-sublibrary"]
    assert len(subs) == 6 and {s.found.distribution for s in subs} == {"conda-forge::cudnn"}


def test_snapshot_round_trip_keeps_the_conda_packages(tmp_path):
    conda_env(tmp_path, cudnn_version=None)
    env = scan(TargetSpec(root=str(tmp_path)), nvml=False)
    assert env.target.conda_packages
    back = environment_from_json(json.loads(json.dumps(to_json_dict(env))))
    assert back == env
    # an old snapshot without the field still decodes, to no conda packages
    data = to_json_dict(env)
    del data["target"]["conda_packages"]
    assert environment_from_json(data).target.conda_packages == ()


def test_report_with_conda_packages_validates_against_the_schema(tmp_path, matrix):
    import jsonschema

    from tfcompat.render.json import render_json, schema_text
    from tfcompat.rules import evaluate

    conda_env(tmp_path, cudnn_version=None)
    env = scan(TargetSpec(root=str(tmp_path)), nvml=False)
    report = evaluate(env, matrix)
    out = json.loads(render_json(report))
    assert out["environment"]["target"]["conda_packages"][0]["name"] == "cudatoolkit"
    jsonschema.validate(out, json.loads(schema_text()))


def test_prefix_from_site_packages_from_the_interpreter_and_none_without_conda_meta(tmp_path):
    root = Root(str(tmp_path))
    write(str(tmp_path) + PREFIX + "/conda-meta/history", "")
    os.makedirs(str(tmp_path) + SITE)
    assert conda_prefixes(root, [str(tmp_path) + SITE]) == [PREFIX]
    assert conda_prefixes(root, [], PREFIX + "/bin/python3.9") == [PREFIX]
    # a venv made from the conda env's python: its own prefix has no conda-meta/, the interpreter's has
    os.makedirs(str(tmp_path) + "/venv/bin")
    os.symlink(PREFIX + "/bin/python3.9", str(tmp_path) + "/venv/bin/python")
    assert conda_prefixes(root, [], "/venv/bin/python") == [PREFIX]
    # a plain venv: no conda-meta/ beside its lib/
    os.makedirs(str(tmp_path) + "/venv/lib/python3.11/site-packages")
    assert conda_prefixes(root, [str(tmp_path) + "/venv/lib/python3.11/site-packages"]) == []
    # host mode: real paths
    assert conda_prefixes(Root(None), [str(tmp_path) + SITE]) == [str(tmp_path) + PREFIX]


def test_named_environment_under_envs(tmp_path):
    """`conda create -n tf` puts the environment in <base>/envs/tf with its own conda-meta/; the base's records
    (another cudatoolkit) are not the environment's."""
    root = str(tmp_path)
    system_libs(root)
    toolkit(root, "10.1.243", "h6bb024c_0", libs=[("libcudart.so.10.1.243", "libcudart.so.10.1")])
    env_prefix = PREFIX + "/envs/tf"
    record(root, "cudatoolkit", "11.2.2", "hbe64b41_10", ["lib/libcudart.so.11.2.152"], prefix=env_prefix)
    os.makedirs(root + env_prefix + "/lib/python3.9/site-packages")
    pkgs, unknowns = probe_conda(Root(root), [root + env_prefix + "/lib/python3.9/site-packages"])
    assert [(p.name, p.version, p.prefix) for p in pkgs] == [("cudatoolkit", "11.2.2", env_prefix)]
    assert pkgs[0].libraries == (env_prefix + "/lib/libcudart.so.11.2.152",) and unknowns == []


@pytest.mark.parametrize(
    "data, want",
    [
        ({"channel": "https://conda.anaconda.org/conda-forge/linux-64"}, "conda-forge"),
        # rattler/pixi write the channel without its subdir (conda/rattler test-data/conda-meta/*.json)
        ({"channel": "https://conda.anaconda.org/conda-forge/"}, "conda-forge"),
        ({"channel": "https://conda.anaconda.org/nvidia/label/cuda-11.8.0/linux-64"}, "nvidia/label/cuda-11.8.0"),
        ({"channel": "https://repo.anaconda.com/pkgs/main/linux-64"}, "pkgs/main"),
        ({"channel": "conda-forge"}, "conda-forge"),
        ({"url": "https://conda.anaconda.org/conda-forge/linux-64/cudnn-8.1.0.77-h90431f1_0.tar.bz2"}, "conda-forge"),
        ({"channel": "https://mirror.example.org/conda/main/linux-64"}, "https://mirror.example.org/conda/main"),
        ({}, "unknown channel"),
        ({"channel": 7}, "unknown channel"),
    ],
)
def test_channel_names(data, want):
    assert channel_name(data) == want


def test_garbage_records_are_unknowns_not_crashes(tmp_path):
    root = str(tmp_path)
    meta = root + PREFIX + "/conda-meta"
    os.makedirs(root + SITE)
    write(f"{meta}/cudnn-8.1.0.77-h90431f1_0.json", "{not json")
    write(f"{meta}/cudatoolkit-11.2.2-hbe64b41_10.json", "[1, 2]")
    write(f"{meta}/nccl-2.8.4.1-h97a9cb7_0.json", json.dumps({"name": "nccl", "files": "lib/libnccl.so.2"}))
    write(
        f"{meta}/libcublas-11.4.1.1043-0.json",
        json.dumps(
            {"name": "libcublas", "version": "11.4.1.1043", "build": "0", "build_number": True, "files": [3, None]}
        ),
    )
    os.mkfifo(f"{meta}/cuda-cudart-11.2.152-0.json")  # a FIFO is never opened
    write(f"{meta}/numpy-1.19.5-py39h.json", "{not json either, but not a package of interest")
    write(f"{meta}/history", "==> 2021-03-01 <==\n")
    pkgs, unknowns = probe_conda(Root(root), [root + SITE])
    assert [(p.name, p.build_number, p.libraries, p.channel) for p in pkgs] == [
        ("libcublas", None, (), "unknown channel")
    ]
    reasons = sorted(u.reason for u in unknowns)
    assert all(u.fact == "conda" for u in unknowns) and len(reasons) == 4
    assert any("cudnn-8.1.0.77-h90431f1_0.json is not JSON" in r for r in reasons)
    assert any("cudatoolkit-11.2.2-hbe64b41_10.json is not a conda-meta record" in r for r in reasons)
    assert any("nccl-2.8.4.1-h97a9cb7_0.json states no name and version" in r for r in reasons)
    assert any("cuda-cudart-11.2.152-0.json" in r and "FIFO" in r for r in reasons)


def test_record_count_is_bounded(tmp_path, monkeypatch):
    root = str(tmp_path)
    os.makedirs(root + SITE)
    for i in range(5):
        record(root, "cuda-nvcc", f"11.{i}.0", "0", [])
    monkeypatch.setattr(conda_probe, "MAX_RECORDS", 3)
    pkgs, unknowns = probe_conda(Root(root), [root + SITE])
    assert len(pkgs) == 3 and [u.reason for u in unknowns] == ["over 3 CUDA or TensorFlow records; the rest unread"]


def test_record_link_outside_the_root_is_not_followed(tmp_path):
    """conda-meta/cudnn-...json -> /etc/... must resolve inside the image, never on the host."""
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"name": "cudnn", "version": "9.9.9", "build": "0", "files": []}))
    root = tmp_path / "img"
    os.makedirs(str(root) + SITE)
    os.makedirs(str(root) + PREFIX + "/conda-meta")
    os.symlink(str(host), str(root) + PREFIX + "/conda-meta/cudnn-9.9.9-0.json")
    pkgs, unknowns = probe_conda(Root(str(root)), [str(root) + SITE])
    assert pkgs == () and len(unknowns) == 1 and "cannot read" in unknowns[0].reason


def test_pip_wheel_still_wins_over_a_conda_record_for_its_own_file(tmp_path):
    """A file both an nvidia-* wheel's RECORD and a conda record list (a wheel pip-installed into the env over a
    conda package) keeps the wheel's version: the wheel is what pip resolved against TF's requirements."""
    from tfcompat.model import Package
    from tfcompat.probes.library_versions import LibraryVersions

    root = str(tmp_path)
    lib = root + PREFIX + "/lib/libcudnn.so.8"
    write(lib, "")
    info = root + SITE + "/nvidia_cudnn_cu11-8.6.0.163.dist-info"
    write(info + "/METADATA", "Name: nvidia-cudnn-cu11\nVersion: 8.6.0.163\n")
    write(info + "/RECORD", "../../libcudnn.so.8,,\n")
    wheel = Package("nvidia-cudnn-cu11", "8.6.0.163", root + SITE, info + "/METADATA")
    conda = CondaPackage(
        "cudnn", "8.1.0.77", "0", "conda-forge", PREFIX, "/r.json", libraries=(PREFIX + "/lib/libcudnn.so.8",)
    )
    v = LibraryVersions(Root(root), [wheel], [root + SITE], [conda])
    assert v.of("cudnn", "libcudnn.so.8", lib)[2] == "nvidia-cudnn-cu11"
    v = LibraryVersions(Root(root), [], [root + SITE], [conda])
    assert v.of("cudnn", "libcudnn.so.8", lib) == ("8.1.0.77", "/r.json", "conda-forge::cudnn")


@needs_gcc
def test_installed_but_off_the_search_path_is_listed_with_its_package(tmp_path):
    """A pip TF whose framework has a DT_RUNPATH (so glibc ignores the interpreter's DT_RPATH $ORIGIN/../lib) in
    a conda env: the conda copies are 'installed, not on the search path', named with their package."""
    conda_env(tmp_path, tf_kw={"rpath": None, "runpath": "$ORIGIN/../../_solib_local", "conda_build": None})
    env = scan(TargetSpec(root=str(tmp_path)), nvml=False)
    cudart = by_name(env.target.native)["cudart"]
    assert cudart.found is None
    assert [(c.real_path, c.found_via, c.distribution, c.version) for c in cudart.others] == [
        (
            PREFIX + "/lib/libcudart.so.11.2.152",
            "installed, not on the search path",
            "conda-forge::cudatoolkit",
            "11.2.2",
        )
    ]


@needs_gcc
def test_host_mode_with_ld_library_path(tmp_path):
    """Host mode (no --root): real paths, LD_LIBRARY_PATH=$CONDA_PREFIX/lib as TF's pip guide for conda said."""
    conda_env(tmp_path, tf_kw={"rpath": None, "runpath": "$ORIGIN/../../_solib_local", "conda_build": None})
    prefix = str(tmp_path) + PREFIX
    env = scan(
        TargetSpec(site_packages=(str(tmp_path) + SITE,)), nvml=False, environ={"LD_LIBRARY_PATH": prefix + "/lib"}
    )
    assert {p.prefix for p in env.target.conda_packages} == {prefix}
    cudnn = by_name(env.target.native)["cudnn"].found
    assert cudnn.found_via == "LD_LIBRARY_PATH" and cudnn.distribution == "conda-forge::cudnn"
    assert cudnn.version_source == prefix + "/conda-meta/cudnn-8.1.0.77-h90431f1_0.json"


def test_no_conda_environment_changes_nothing(tmp_path):
    """A plain venv: no conda packages, no conda unknown."""
    root = str(tmp_path)
    system_libs(root)
    site = tensorflow(root, conda_build=None)
    env = scan(TargetSpec(root=root, site_packages=(site[len(root) :],)), nvml=False)
    # the site dir is under /opt/conda here, but there is no conda-meta/
    assert env.target.conda_packages == () and not [u for u in env.unknowns if u.fact == "conda"]


def test_conda_forge_channel_url_with_label_record_is_kept(tmp_path):
    root = str(tmp_path)
    os.makedirs(root + SITE)
    record(
        root,
        "cuda-cudart",
        "11.8.89",
        "0",
        ["targets/x86_64-linux/lib/libcudart.so.11.8.89", "lib/libcudart.so.11.0", "lib/stubs/libcuda.so"],
        channel="https://conda.anaconda.org/nvidia/label/cuda-11.8.0/linux-64",
    )
    (pkg,), _ = probe_conda(Root(root), [root + SITE])
    assert pkg.channel == "nvidia/label/cuda-11.8.0"
    assert pkg.libraries == (
        PREFIX + "/targets/x86_64-linux/lib/libcudart.so.11.8.89",
        PREFIX + "/lib/libcudart.so.11.0",
    )  # lib/stubs/ is not where the loader looks
    assert dataclasses.asdict(pkg)["record_path"].endswith("cuda-cudart-11.8.89-0.json")
    assert CONDA_FORGE.endswith("linux-64")
