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
    make_dist(site, "tensorflow", "2.21.0", wheel_tags=[TF_WHEEL_TAG], requires_python=">=3.10",
              requires=["numpy>=1.26.0", "protobuf<8.0.0,>=6.31.1", "keras>=3.12.0",
                        'nvidia-cudnn-cu12<10.0,>=9.3.0.75; extra == "and-cuda"'])
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


@pytest.mark.parametrize("explicit, environ, expected", [
    ("cli-name", {"NODE_NAME": "k8s-node", "SLURMD_NODENAME": "slurm-node"}, ("cli-name", "--node-name")),
    (None, {"NODE_NAME": "k8s-node", "SLURMD_NODENAME": "slurm-node"}, ("k8s-node", "$NODE_NAME")),
    (None, {"SLURMD_NODENAME": "slurm-node"}, ("slurm-node", "$SLURMD_NODENAME")),
    (None, {"NODE_NAME": "", "SLURMD_NODENAME": "slurm-node"}, ("slurm-node", "$SLURMD_NODENAME")),
    ("", {"NODE_NAME": "k8s-node"}, ("k8s-node", "$NODE_NAME")),
])
def test_node_identity_precedence(explicit, environ, expected):
    assert node_identity(explicit, environ=environ) == expected


def test_node_identity_falls_back_to_host_name():
    assert node_identity(None, environ={"HOSTNAME": "ignored"}) == (socket.gethostname(), "host name")
    assert node_identity(None, environ={"NODE_NAME": "", "SLURMD_NODENAME": ""}) == (socket.gethostname(),
                                                                                     "host name")


def test_scan_environ_reaches_every_probe(site, tmp_path):
    """One `environ` for the whole scan: the job's variables, not tfcompat's own."""
    env = scan(TargetSpec(site_packages=(str(site),)), nvml=False, environ={"CUDA_VISIBLE_DEVICES": "7"})
    assert env.host.resources.cuda_visible_devices == "7"  # not this process's CUDA_VISIBLE_DEVICES
