"""scripts/cudnn_archs.py on a wheel-like zip built here (the nvcc-built tests/fixtures/fatbin/*.so as
lib/libcudnn_cnn.so.9), offline (--wheel) and through a fake PyPI that serves the JSON API the way this
machine's PyPI proxy does (file URLs relative to the JSON document). The real download is not run here
(network, ~700 MB a wheel)."""

import hashlib
import importlib.util
import io
import json
import os
import urllib.error
import zipfile

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FATBIN = os.path.join(TESTS, "fixtures", "fatbin")
SCRIPT = os.path.join(os.path.dirname(TESTS), "scripts", "cudnn_archs.py")
WHEEL = "nvidia_cudnn_cu12-9.99.0.1-py3-none-manylinux_2_27_x86_64.whl"


@pytest.fixture(scope="module")
def ca():
    spec = importlib.util.spec_from_file_location("cudnn_archs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_wheel(path):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.write(os.path.join(FATBIN, "libaxpy_sm75_sm90.so"), "nvidia/cudnn/lib/libcudnn_cnn.so.9")
        z.write(os.path.join(FATBIN, "libaxpy_suffixes.so"), "nvidia/cudnn/lib/libcudnn_ops.so.9")
        z.writestr("nvidia/cudnn/include/cudnn.h", "/* not a library */\n")
        z.writestr("nvidia_cudnn_cu12-9.99.0.1.dist-info/METADATA", "Name: nvidia-cudnn-cu12\nVersion: 9.99.0.1\n")
    return path


CNN = {"sm_75": 2, "sm_90": 2, "compute_90": 1}
OPS = {"sm_90a": 2, "sm_100f": 2, "sm_120": 2, "compute_90a": 1}


def test_a_wheel_on_disk(ca, tmp_path, capsys):
    whl = build_wheel(tmp_path / WHEEL)
    assert ca.main(["--wheel", str(whl)]) == 0
    out, err = capsys.readouterr()
    rec = json.loads(out)
    assert err == "" and out.count("\n") == 1
    assert (rec["dist"], rec["version"], rec["wheel"]) == ("nvidia-cudnn-cu12", "9.99.0.1", WHEEL)
    assert rec["sha256"] == hashlib.sha256(whl.read_bytes()).hexdigest()
    # every lib/*.so* member, nothing else; architectures with entry counts, in architecture order
    assert rec["libs"] == {
        "libcudnn_cnn.so.9": {"archs": CNN, "problems": []},
        "libcudnn_ops.so.9": {"archs": OPS, "problems": []},
    }
    assert list(rec["libs"]["libcudnn_ops.so.9"]["archs"]) == list(OPS)
    assert ca.main(["--wheel", str(whl), "--fixture"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "dist": "nvidia-cudnn-cu12",
        "version": "9.99.0.1",
        "wheel": WHEEL,
        "sha256": rec["sha256"],
        "libcudnn_cnn.so.9": list(CNN),
        "libcudnn_ops.so.9": list(OPS),
    }


def test_a_cudnn8_wheel_keeps_its_infer_and_train_libraries(ca, tmp_path, capsys):
    # cuDNN 8 (e.g. nvidia-cudnn-cu12 8.8.1.3) splits the legacy API into *_infer / *_train .so.8
    whl = tmp_path / "nvidia_cudnn_cu12-8.99.0.1-py3-none-manylinux1_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for half in ("cnn_infer", "cnn_train", "ops_infer", "ops_train"):
            lib = "libaxpy_sm75_sm90.so" if half.startswith("cnn") else "libaxpy_suffixes.so"
            z.write(os.path.join(FATBIN, lib), f"nvidia/cudnn/lib/libcudnn_{half}.so.8")
        z.write(os.path.join(FATBIN, "libaxpy_suffixes.so"), "nvidia/cudnn/lib/libcudnn_adv_infer.so.8")
    assert ca.main(["--wheel", str(whl), "--fixture"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["dist"], line["version"]) == ("nvidia-cudnn-cu12", "8.99.0.1")
    assert {k: v for k, v in line.items() if k.startswith("lib")} == {
        "libcudnn_cnn_infer.so.8": list(CNN),
        "libcudnn_cnn_train.so.8": list(CNN),
        "libcudnn_ops_infer.so.8": list(OPS),
        "libcudnn_ops_train.so.8": list(OPS),
    }


def test_a_damaged_library_is_reported_exit_1(ca, tmp_path, capsys):
    whl = build_wheel(tmp_path / WHEEL)
    with zipfile.ZipFile(whl, "a") as z:
        z.writestr("nvidia/cudnn/lib/libcudnn_graph.so.9", b"\x7fELF" + b"\0" * 8)
    assert ca.main(["--wheel", str(whl)]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["libs"]["libcudnn_graph.so.9"]["problems"]
    assert problem.startswith("nvidia/cudnn/lib/libcudnn_graph.so.9: ") and "member.so" not in problem


def fake_pypi(wheel_bytes, sha256=None):
    """pypi.org/pypi/NAME/json with a relative file URL, and the file at the URL it resolves to."""
    seen = []
    digest = sha256 or hashlib.sha256(wheel_bytes).hexdigest()
    wheel_path = f"/packages/packages/ab/cd/{WHEEL}"

    def opener(req, timeout=None):
        url = req.full_url
        seen.append(url)
        if url == "https://pypi.org/pypi/nvidia-cudnn-cu12/json":
            files = [
                {"filename": WHEEL.replace("x86_64", "aarch64"), "url": "../../x", "digests": {"sha256": "0"}},
                {"filename": WHEEL, "url": f"../..{wheel_path}", "digests": {"sha256": digest}},
            ]
            return io.BytesIO(json.dumps({"releases": {"9.99.0.1": files}}).encode())
        if url == f"https://pypi.org{wheel_path}":
            return io.BytesIO(wheel_bytes)
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    return opener, seen


def test_download_resolves_relative_urls_and_checks_sha256(ca, tmp_path, capsys):
    data = build_wheel(tmp_path / WHEEL).read_bytes()
    opener, seen = fake_pypi(data)
    work = tmp_path / "work"
    work.mkdir()
    assert ca.main(["nvidia-cudnn-cu12==9.99.0.1", "--workdir", str(work)], opener=opener) == 0
    rec = json.loads(capsys.readouterr().out)
    assert seen == [
        "https://pypi.org/pypi/nvidia-cudnn-cu12/json",
        f"https://pypi.org/packages/packages/ab/cd/{WHEEL}",
    ]
    assert rec["url"] == seen[1] and rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert rec["libs"]["libcudnn_cnn.so.9"]["archs"] == CNN
    assert os.listdir(work) == []  # the wheel and its members were temporary


@pytest.mark.parametrize(
    "argv, opener_sha, message",
    [
        (["nvidia-cudnn-cu12==9.99.0.1"], "0" * 64, "sha256 "),
        (["nvidia-cudnn-cu12==9.98.0.1"], None, "PyPI lists no files for nvidia-cudnn-cu12 9.98.0.1"),
        (["nvidia-cudnn-cu12==9.99.0.1", "--machine", "ppc64le"], None, "no manylinux ppc64le wheel among 2"),
        (["nvidia-cudnn-cu11==9.99.0.1"], None, "https://pypi.org/pypi/nvidia-cudnn-cu11/json: Not Found"),
        (["nvidia-cudnn-cu12"], None, "expected NAME==VERSION"),
        ([], None, "give NAME==VERSION or --wheel FILE"),
    ],
)
def test_errors_are_one_line_exit_2(ca, tmp_path, capsys, argv, opener_sha, message):
    opener, _ = fake_pypi(build_wheel(tmp_path / WHEEL).read_bytes(), opener_sha)
    assert ca.main(argv, opener=opener) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("cudnn_archs: error: ") and message in err and err.count("\n") == 1


def test_not_a_wheel_is_exit_2(ca, tmp_path, capsys):
    bad = tmp_path / WHEEL
    bad.write_bytes(b"not a zip")
    assert ca.main(["--wheel", str(bad)]) == 2
    assert "not a readable wheel" in capsys.readouterr().err
