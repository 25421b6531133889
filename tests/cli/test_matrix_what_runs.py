"""`tfcompat matrix what-runs`: what may I run here, from a driver and GPUs or a `tfcompat scan` snapshot,
answered from the shipped matrix."""

import json

import pytest
from envs import make_env

from tfcompat.cli import main
from tfcompat.matrix import load_matrix
from tfcompat.matrix.answers import QueryError
from tfcompat.matrix.what_runs import what_runs_answer
from tfcompat.model import Gpu
from tfcompat.model.codec import to_json_dict


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(["matrix", "what-runs", *argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def ask(capsys, *argv):
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def matrix():
    return load_matrix()


def newest_tf(matrix):
    return matrix.tf_releases()[-1]


def test_old_driver_gets_a_cuda_11_tensorflow(capsys, matrix):
    a = ask(capsys, "--driver", "470.82.01", "--gpu", "8.0")
    tf = a["tensorflow"]
    assert tf["cuda"].startswith("11.") and tf["version"] == "2.14.1"
    assert tf["driver"] == "compat" and tf["min_driver"] == "450.80.02"  # the CUDA 11.x floor
    assert a["tensorflow_full"]["version"] == "2.11.1"  # CUDA 11.2: 460.27.03 <= 470.82.01
    assert a["pip"] == 'pip install "tensorflow[and-cuda]==2.14.1"'
    assert a["newer_blocked"] == {"version": newest_tf(matrix), "why": ["needs driver >= 525.60.13 (CUDA 12.5.1)"]}
    assert (a["cuda_full"], a["cuda_compat"]) == ("11.4.4", "11.8.0")


def test_new_driver_on_hopper_gets_the_newest(capsys, matrix):
    a = ask(capsys, "--driver", "560.35.03", "--gpu", "9.0")
    assert a["tensorflow"]["version"] == newest_tf(matrix) and a["tensorflow"]["driver"] == "full"
    assert a["tensorflow"]["kernels"] == [{"compute_capability": "9.0", "mode": "native", "via": "compute_90"}]
    assert a["pip"] == f'pip install "tensorflow[and-cuda]=={newest_tf(matrix)}"'
    assert a["newer_blocked"] is None and a["notes"] == []


def test_a_cc_no_tensorflow_covers(capsys):
    code, out, err = run(capsys, "--driver", "535.104.05", "--gpu", "3.0")
    assert code == 0, err
    assert "TensorFlow            (none in the matrix runs here)" in out
    assert "no TensorFlow release in the matrix has kernels (SASS or PTX) for compute capability 3.0" in out
    a = ask(capsys, "--driver", "535.104.05", "--gpu", "3.0")
    assert a["tensorflow"] is None and a["pip"] is None and a["uncovered_gpus"] == ["3.0"]


def test_every_gpu_must_be_covered(capsys):
    # Kepler 3.5 keeps the node on the last release with sm_35 (and without it, 8.0 alone gets the newest)
    a = ask(capsys, "--driver", "535.104.05", "--gpu", "3.5", "--gpu", "sm_80")
    assert a["tensorflow"]["version"] == "2.14.1"
    assert [g["compute_capability"] for g in a["gpus"]] == ["3.5", "8.0"]
    assert a["newer_blocked"]["why"][0].startswith("no kernels for compute capability 3.5")


def test_ptx_jit_needs_the_build_toolkits_driver(capsys):
    # Blackwell runs TF only by JIT from compute_90 PTX built by CUDA 12.5.1: a 535 driver cannot JIT it
    a = ask(capsys, "--driver", "535.104.05", "--gpu", "12.0")
    assert a["tensorflow"]["cuda"] != "12.5.1"
    assert "minor-version compatibility does not cover PTX" in a["newer_blocked"]["why"][0]
    b = ask(capsys, "--driver", "575.57.08", "--gpu", "12.0")
    assert b["tensorflow"]["kernels"][0]["mode"] == "ptx_jit" and b["tensorflow"]["driver"] == "full"


def test_pascal_gets_a_cudnn_pin(capsys):
    # cuDNN 9.17's support matrix has no Pascal; [and-cuda] admits any 9.x >= 9.3, so the line pins 9.10.2
    a = ask(capsys, "--driver", "570.86.10", "--gpu", "6.1")
    assert a["tensorflow"]["cudnn_here"]["versions"] == "==9.10.2.*"
    assert a["pip"].endswith('"nvidia-cudnn-cu12==9.10.2.*"')


def test_from_snapshot(capsys, tmp_path, matrix):
    env = make_env(driver="560.35.03", gpus=[Gpu(0, compute_capability="9.0"), Gpu(1, compute_capability="9.0")])
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(to_json_dict(env)), encoding="utf-8")
    a = ask(capsys, "--from", str(snap))
    assert a["driver"] == "560.35.03" and a["driver_source"] == f"{snap} (/proc/driver/nvidia/version)"
    assert a["gpus"] == [{"compute_capability": "9.0", "architecture": "Hopper"}]
    assert a["tensorflow"]["version"] == newest_tf(matrix)
    # --driver / --gpu override the snapshot. Hopper on 470: TF <= 2.15 runs 9.0 only by JIT from compute_80
    # PTX, which needs the build toolkit's own driver: CUDA 11.2 (2.11.1), not 11.8 under minor-version compat
    b = ask(capsys, "--from", str(snap), "--driver", "470.82.01")
    assert b["tensorflow"]["version"] == "2.11.1" and b["driver_source"] == "--driver"
    assert b["tensorflow"]["kernels"] == [{"compute_capability": "9.0", "mode": "ptx_jit", "via": "compute_80"}]
    c = ask(capsys, "--from", str(snap), "--driver", "470.82.01", "--gpu", "8.0")
    assert c["tensorflow"]["version"] == "2.14.1"
    code, out, _ = run(capsys, "--from", str(snap))
    assert code == 0 and out.startswith(f"What runs here: NVIDIA driver 560.35.03  (from {snap} (")


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--gpu", "8.0"), "no NVIDIA driver version: give --driver VERSION or a snapshot with host.driver"),
        (("--driver", "latest", "--gpu", "8.0"), "driver version 'latest' is not an NVIDIA driver version"),
        (("--driver", "535.104.05", "--gpu", "8.8"), "compute capability 8.8 is not in the matrix"),
        (("--driver", "535.104.05", "--gpu", "ampere"), "compute capability 'ampere' is not like 8.6 or sm_86"),
        (("--from", "/nonexistent/snap.json"), "/nonexistent/snap.json: cannot read snapshot"),
    ],
)
def test_bad_input_exit_2_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("tfcompat: error: ") and message in err and err.count("\n") == 1
    code, out, err = run(capsys, *argv, "-f", "json")
    assert code == 2 and message in json.loads(out)["errors"][0]


def test_snapshot_without_a_driver(tmp_path, capsys):
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(to_json_dict(make_env(driver=None))), encoding="utf-8")
    code, _, err = run(capsys, "--from", str(snap))
    assert code == 2 and f"{snap}: the snapshot has no NVIDIA driver version (host.driver): give --driver" in err
    assert ask(capsys, "--from", str(snap), "--driver", "560.35.03", "--gpu", "9.0")["tensorflow"] is not None


def test_no_gpu_given_is_a_note(matrix):
    a = what_runs_answer(matrix, "560.35.03", [])
    assert a["tensorflow"]["version"] == newest_tf(matrix)
    assert "no GPU given: kernel and cuDNN coverage not checked" in a["notes"]
    with pytest.raises(QueryError):
        what_runs_answer(matrix, None, ["8.0"])
