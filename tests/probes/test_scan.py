"""scan(): every probe assembled into one Environment that survives a JSON round trip."""

import json
import socket

import pytest
from probe_helpers import BUILD_INFO_2_21_0, TF_WHEEL_TAG, make_dist, make_tf

from tfcompat import __version__
from tfcompat.model import Environment, environment_from_json, to_json_dict
from tfcompat.probes.target import TargetSpec
from tfcompat.scan import node_identity, scan


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    make_dist(
        site,
        "tensorflow",
        "2.21.0",
        wheel_tags=[TF_WHEEL_TAG],
        requires_python=">=3.10",
        requires=[
            "numpy>=1.26.0",
            "protobuf<8.0.0,>=6.31.1",
            "keras>=3.12.0",
            'nvidia-cudnn-cu12<10.0,>=9.3.0.75; extra == "and-cuda"',
        ],
    )
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    make_dist(site, "numpy", "2.1.3", requires_python=">=3.10")
    make_dist(site, "keras", "3.12.0")
    return site


def test_scan_fake_tree(site):
    env = scan(TargetSpec(site_packages=(str(site),)), node_name="gpu-node-07", nvml=False)
    assert isinstance(env, Environment)
    assert env.tool_version == __version__
    assert env.created.endswith("+00:00")
    assert env.host.node_name == "gpu-node-07" and env.host.node_name_source == "--node-name"
    assert env.target.root is None
    assert env.target.site_packages == (str(site),)
    assert env.target.python.version == "3.11"
    assert sorted(p.name for p in env.target.packages) == ["keras", "numpy", "tensorflow"]
    tf = env.tensorflow
    assert (tf.version, tf.cuda_version, tf.cudnn_version) == ("2.21.0", "12.5.1", "9")
    assert tf.wheel_tags == (TF_WHEEL_TAG,)
    assert env.unknown("tensorflow") is None
    assert env.unknown("python.version") is None
    assert env.host.platform.arch  # the live host's


def test_scan_round_trips_through_json(site):
    env = scan(TargetSpec(site_packages=(str(site),)), nvml=False)
    data = json.loads(json.dumps(to_json_dict(env)))
    back = environment_from_json(data)
    assert back == env
    assert back.tensorflow.compute_capabilities == ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
    assert isinstance(back.target.packages, tuple) and isinstance(back.host.platform.cpu_flags, tuple)


def test_scan_without_python_version_records_unknown(tmp_path):
    site = tmp_path / "pkgs"
    make_dist(site, "numpy", "2.1.3")
    env = scan(TargetSpec(site_packages=(str(site),)), nvml=False)
    assert env.target.python.version is None
    assert "pass --python" in env.unknown("python.version")
    assert "no TensorFlow distribution installed" in env.unknown("tensorflow")


def test_scan_root_image(tmp_path):
    root = tmp_path / "img"
    site = root / "usr/local/lib/python3.11/dist-packages"
    make_dist(site, "tensorflow", "2.21.0")
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    env = scan(TargetSpec(root=str(root)), node_name="builder", nvml=True)
    assert env.target.root == str(root)
    assert env.tensorflow.cuda_version == "12.5.1"
    assert env.host.driver is None and env.host.gpus == ()
    assert "image" in env.unknown("gpus")
    assert env.unknown("platform.glibc") is not None
    assert environment_from_json(json.loads(json.dumps(to_json_dict(env)))) == env


@pytest.mark.parametrize(
    "explicit, environ, expected",
    [
        ("cli-name", {"NODE_NAME": "k8s-node", "SLURMD_NODENAME": "slurm-node"}, ("cli-name", "--node-name")),
        (None, {"NODE_NAME": "k8s-node", "SLURMD_NODENAME": "slurm-node"}, ("k8s-node", "$NODE_NAME")),
        (None, {"SLURMD_NODENAME": "slurm-node"}, ("slurm-node", "$SLURMD_NODENAME")),
        (None, {"NODE_NAME": "", "SLURMD_NODENAME": "slurm-node"}, ("slurm-node", "$SLURMD_NODENAME")),
        ("", {"NODE_NAME": "k8s-node"}, ("k8s-node", "$NODE_NAME")),
    ],
)
def test_node_identity_precedence(explicit, environ, expected):
    assert node_identity(explicit, environ=environ) == expected


def test_node_identity_falls_back_to_host_name():
    assert node_identity(None, environ={"HOSTNAME": "ignored"}) == (socket.gethostname(), "host name")
    assert node_identity(None, environ={"NODE_NAME": "", "SLURMD_NODENAME": ""}) == (socket.gethostname(), "host name")


def test_scan_environ_reaches_every_probe(site, tmp_path):
    """One `environ` for the whole scan: the job's variables, not tfcompat's own."""
    env = scan(TargetSpec(site_packages=(str(site),)), nvml=False, environ={"CUDA_VISIBLE_DEVICES": "7"})
    assert env.host.resources.cuda_visible_devices == "7"  # not this process's CUDA_VISIBLE_DEVICES


AARCH64_CACHE_FLAGS = 0x0A03  # FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6, as ldconfig writes it on arm64


def make_arm64_image(root):
    """A Grace Hopper-like arm64 image: aarch64 python and libc, the NVIDIA driver's libraries in a directory
    that only the image's ld.so.cache (aarch64 entries) names: not a default dir of either architecture."""
    from elf_fixtures import EM_AARCH64, link, write_so
    from test_ldcache import new_cache_body

    lib = root / "usr/lib/aarch64-linux-gnu"
    write_so(lib / "libc.so.6", machine=EM_AARCH64, version_defs=("GLIBC_2.17", "GLIBC_2.34"))
    link(root / "lib", "usr/lib")
    write_so(root / "usr/bin/python3.11", soname=None, needed=("libc.so.6",), e_type=2, machine=EM_AARCH64)
    drv = root / "opt/nvidia/driver/lib"
    entries = []
    for soname, real in (("libcuda.so.1", "libcuda.so.560.35.03"), ("libnvidia-ml.so.1", "libnvidia-ml.so.560.35.03")):
        write_so(drv / real, soname=soname, machine=EM_AARCH64)
        link(drv / soname, real)
        entries.append((AARCH64_CACHE_FLAGS, soname, f"/opt/nvidia/driver/lib/{soname}", None))
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/ld.so.cache").write_bytes(new_cache_body(entries))
    return drv


def test_arm64_root_finds_driver_libraries_through_its_ld_so_cache(tmp_path):
    """Regression: the loader model assumed x86-64, so an arm64 image's (aarch64) ld.so.cache entries never
    matched and its driver libraries were not found."""
    root = tmp_path / "img"
    drv = make_arm64_image(root)
    env = scan(TargetSpec(root=str(root), python="/usr/bin/python3.11"), nvml=False)
    libs = {lib.soname: lib for lib in env.host.driver.libraries}
    assert set(libs) == {"libcuda.so.1", "libnvidia-ml.so.1"}
    assert libs["libcuda.so.1"].path == str(drv / "libcuda.so.560.35.03")
    assert libs["libcuda.so.1"].version == libs["libnvidia-ml.so.1"].version == "560.35.03"
    assert env.host.platform.arch == "aarch64"


def test_arm64_root_arch_comes_from_its_binaries_not_this_machine(tmp_path):
    from tfcompat.probes.native.config import LoaderConfig, target_arch
    from tfcompat.probes.rootfs import Root

    root = tmp_path / "img"
    make_arm64_image(root)
    arch = target_arch(Root(str(root)), "/usr/bin/python3.11")
    assert (arch.machine, arch.elf_class) == ("aarch64", 64) and "/usr/bin/python3.11" in arch.source
    cfg = LoaderConfig.for_target(Root(str(root)))  # without the python: its libc says the same
    assert (cfg.machine, cfg.elf_class) == ("aarch64", 64) and "libc.so.6" in cfg.arch_source
    assert cfg.default_dirs[:2] == ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu")


def test_scan_builds_the_loader_model_once_and_shares_it(site, monkeypatch):
    from tfcompat.probes import custom_ops, libraries, nvidia
    from tfcompat.probes.native.config import LoaderConfig

    built, seen = [], []
    real = LoaderConfig.for_target.__func__

    def counting(cls, *args, **kwargs):
        built.append(real(cls, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(LoaderConfig, "for_target", classmethod(counting))
    for module, name in ((libraries, "probe_libraries"), (custom_ops, "probe_custom_ops"), (nvidia, "probe_nvidia")):
        probe = getattr(module, name)

        def spy(*args, _probe=probe, **kwargs):
            seen.append(kwargs.get("loader_config", args[-1] if args else None))
            return _probe(*args, **kwargs)

        monkeypatch.setattr(f"tfcompat.scan.{name}", spy)
    scan(TargetSpec(site_packages=(str(site),)), nvml=False, ops=())
    assert len(built) == 1 and len(seen) == 3 and all(c is built[0] for c in seen)
