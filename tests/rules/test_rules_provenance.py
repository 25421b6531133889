"""TFC112-TFC114 (issue 14): where TensorFlow came from. Environments built from documented failures, the
boundaries of each rule, and healthy environments that report nothing."""

from __future__ import annotations

import dataclasses

import pytest
from envs import SITE, make_env, pkg, run_rule, tf_build

from tfcompat.model import CustomOp, LibraryCopy, Provenance
from tfcompat.rules.provenance import tf_origin

LOCAL_TAG = ("cp37-cp37m-linux_x86_64",)


def _with(p, **kw):
    return dataclasses.replace(p, **kw)


def _env(tf_version="2.21.0", dist="tensorflow", tf_installer="pip", tags=None, extra=(), provenance=None, **kw):
    """A venv whose TF (`dist`) was installed by `tf_installer`, plus `extra` packages."""
    build = dataclasses.replace(tf_build(tf_version, distribution=dist, tags=tags), is_rocm_build=None)
    env = make_env(tf_version, tf_builds=[build], extra=extra, **kw)
    packages = tuple(_with(p, installer=tf_installer) if p.name == dist else p for p in env.target.packages)
    target = dataclasses.replace(env.target, packages=packages, provenance=provenance)
    return dataclasses.replace(env, target=target)


def _text(version="2.21.1", requires=("tensorflow<2.22,>=2.21.0",), installer="pip", origin=None):
    return _with(pkg("tensorflow-text", version, requires), installer=installer, origin=origin)


# -- TFC112 -------------------------------------------------------------------------------------------


def test_tfc112_conda_tensorflow_with_pip_tensorflow_text(matrix):
    """tensorflow/text#192 (https://github.com/tensorflow/text/issues/192): `conda create -n tf-test tensorflow`,
    then `pip install tensorflow-text`: `import tensorflow_text` fails with "undefined symbol:
    _ZN10tensorflow12OpDefBuilder4AttrESs" though both are 2.0 (also tensorflow/text#30, tensorflow/tensorflow#30171).
    """
    env = _env(
        "2.0.0",
        tf_installer="conda",
        tags=LOCAL_TAG,
        extra=[_text("2.0.1", ("tensorflow<2.1,>=2.0.0",))],
    )
    findings, _ = run_rule(env, matrix, "TFC112")
    assert len(findings) == 1
    f = findings[0]
    assert f.severity.value == "warning"
    assert "tensorflow-text 2.0.1" in f.message and "tensorflow 2.0.0 is a conda build" in f.message
    assert "installed by pip" in f.message
    assert any(e.fact == "INSTALLER" and e.value == "conda" for e in f.evidence)
    assert "conda install -c conda-forge tensorflow-text" in f.remediation


def test_tfc112_healthy_pypi_tensorflow_and_pypi_text(matrix):
    env = _env(extra=[_text()])
    assert tf_origin(env, matrix).label == "a PyPI wheel (pip)"
    assert run_rule(env, matrix, "TFC112") == ([], [])


@pytest.mark.parametrize(
    "kwargs, kind",
    [
        # an older conda package: INSTALLER still says pip (pypa/pip#9949), a local tag, in a conda env
        ({"tags": LOCAL_TAG, "provenance": Provenance(conda_meta="/opt/conda/conda-meta")}, "conda"),
        ({"tf_installer": "conda"}, "conda"),
        ({"tags": LOCAL_TAG}, "source"),  # a wheel built here: PyPI hosts no linux_x86_64 wheel
        ({"dist": "tensorflow-rocm"}, "rocm"),
        ({"tags": LOCAL_TAG, "provenance": Provenance(ngc_version="24.02-tf2", ngc_source="$X")}, "ngc"),
        ({"tf_version": "1.15.5+nv22.9", "dist": "nvidia-tensorflow"}, "ngc"),
        ({"tf_version": "2.15.0+nv24.01"}, "ngc"),  # NVIDIA's local version label on `tensorflow`
    ],
)
def test_tfc112_each_foreign_build(matrix, kwargs, kind):
    addons = _with(pkg("tensorflow-addons", "0.23.0", ("typeguard<3.0.0,>=2.7",)), installer="pip")
    env = _env(extra=[addons], **kwargs)
    assert tf_origin(env, matrix).kind == kind
    findings, _ = run_rule(env, matrix, "TFC112")
    assert [f.message.split(" is a wheel")[0] for f in findings] == ["tensorflow-addons 0.23.0"]


def test_tfc112_boundaries_nothing_reported(matrix):
    # NGC's variable alone does not make a PyPI wheel an NVIDIA build (pip install tensorflow inside the image)
    ngc = Provenance(ngc_version="24.02-tf2")
    assert tf_origin(_env(provenance=ngc), matrix).kind == "pypi"
    # `pip install tensorflow` into a conda env: PyPI's wheel, with PyPI's companions (the usual advice)
    in_conda = _env(extra=[_text()], provenance=Provenance(conda_meta="/opt/conda/conda-meta"))
    assert tf_origin(in_conda, matrix).kind == "pypi" and run_rule(in_conda, matrix, "TFC112")[0] == []
    # a locally saved PyPI wheel (archive_info, manylinux tag) is still PyPI's build
    env = _env(extra=[_text()])
    packages = tuple(
        _with(p, origin="archive", direct_url="file:///w/t.whl") if p.name == "tensorflow" else p
        for p in env.target.packages
    )
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, packages=packages))
    assert tf_origin(env, matrix).kind == "pypi"
    conda = {"tf_installer": "conda", "tags": LOCAL_TAG}
    cases = [
        _env(extra=[_text(installer="conda")], **conda),  # the companion from the same channel
        _env(extra=[_text(installer=None)], **conda),  # who installed it is unknown
        _env(extra=[_text(origin="dir")], **conda),  # built from a local checkout
        _env(extra=[_with(pkg("tf-keras", "2.21.0", ("tensorflow<2.22,>=2.21",)), installer="pip")], **conda),
        _env(extra=[_text("2.20.1", ("tensorflow<2.21,>=2.20.0",))], **conda),  # another release: TFC104's
    ]
    for env in cases:
        assert run_rule(env, matrix, "TFC112")[0] == []
    # the symbol check already failed this companion (TFC5xx explains it)
    env = _env(extra=[_text()], **conda)
    op = CustomOp(owner="tensorflow-text", path=f"{SITE}/tensorflow_text/x.so", ok=False, undefined_count=3)
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, custom_ops=(op,)))
    assert run_rule(env, matrix, "TFC112")[0] == []
    assert run_rule(_env(extra=[_text()], **conda), matrix, "TFC112")[0] != []  # the same without it does


# -- TFC113 -------------------------------------------------------------------------------------------


def test_tfc113_tensorflow_cpu_with_tensorflow_text(matrix):
    """tensorflow/text#547 (https://github.com/tensorflow/text/issues/547): `pip install tensorflow-cpu==2.4.1`,
    then `pip install tensorflow-text` installs `tensorflow<2.5,>=2.4.0` as well (also tensorflow/text#1393, #195)."""
    text = _text("2.4.3", ("tensorflow<2.5,>=2.4.0",))
    env = _env("2.4.1", dist="tensorflow-cpu", extra=[text])
    findings, _ = run_rule(env, matrix, "TFC113")
    assert len(findings) == 1
    f = findings[0]
    assert f.severity.value == "error"
    assert "tensorflow-text 2.4.3 requires the distribution tensorflow<2.5,>=2.4.0" in f.message
    assert "comes from tensorflow-cpu 2.4.1" in f.message
    assert "the installed version 2.4.1 would satisfy" in f.message
    assert "constraints" in f.remediation and "tensorflow-cpu==2.4.1" in f.remediation


@pytest.mark.parametrize("dist", ["tensorflow-rocm", "nvidia-tensorflow"])
def test_tfc113_other_distributions_and_a_version_that_does_not_fit(matrix, dist):
    env = _env("2.14.0", dist=dist, extra=[_text("2.15.0", ("tensorflow<2.16,>=2.15.0",))])
    findings, _ = run_rule(env, matrix, "TFC113")
    assert len(findings) == 1
    assert f"comes from {dist} 2.14.0" in findings[0].message
    assert "2.14.0 would not satisfy <2.16,>=2.15.0 either (TFC104)" in findings[0].message


def test_tfc113_healthy_and_boundaries(matrix):
    assert run_rule(_env(extra=[_text()]), matrix, "TFC113")[0] == []  # tensorflow + tensorflow-text
    # Linux aarch64 2.15: tensorflow (a wrapper) requires tensorflow-cpu-aws; a companion requiring tensorflow
    wrapper = pkg("tensorflow", "2.15.1", ("tensorflow-cpu-aws==2.15.1",))
    env = _env("2.15.1", dist="tensorflow-cpu-aws", extra=[wrapper, _text("2.15.0", ("tensorflow<2.16,>=2.15",))])
    assert run_rule(env, matrix, "TFC113")[0] == []
    only_elsewhere = [
        'tensorflow-macos<2.22,>=2.21; platform_machine == "arm64" and sys_platform == "darwin"',
        'tensorflow<2.22,>=2.21; extra == "tensorflow"',
    ]
    env = _env(dist="tensorflow-cpu", extra=[_text(requires=only_elsewhere)])
    assert run_rule(env, matrix, "TFC113")[0] == []


# -- TFC114 -------------------------------------------------------------------------------------------


def test_tfc114_libtensorflow_next_to_the_python_package(matrix):
    """tensorflow/tensorflow#50787 (https://github.com/tensorflow/tensorflow/issues/50787): a library linked
    against libtensorflow 2.5 (the C API) and `import tensorflow` in one Python process segfault; two TensorFlow
    runtimes register the same ops (tensorflow/tensorflow#20561)."""
    lib = LibraryCopy(
        path="/usr/local/lib/libtensorflow.so.2",
        real_path="/usr/local/lib/libtensorflow.so.2.5.0",
        found_via="ld.so.cache",
        search_entry="/etc/ld.so.cache",
        version="2.5.0",
        version_source="file name libtensorflow.so.2.5.0",
    )
    env = _env()
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, libtensorflow=(lib,)))
    findings, _ = run_rule(env, matrix, "TFC114")
    assert [f.severity.value for f in findings] == ["info"]
    msg = findings[0].message
    assert "/usr/local/lib/libtensorflow.so.2.5.0 (version 2.5.0)" in msg
    assert "differs from the Python TensorFlow, tensorflow 2.21.0" in msg
    same = _with(lib, real_path="/usr/local/lib/libtensorflow.so.2.21.0", version="2.21.0")
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, libtensorflow=(same,)))
    assert "the same release as the Python TensorFlow" in run_rule(env, matrix, "TFC114")[0][0].message
    major = _with(lib, real_path="/opt/x/libtensorflow.so.2", version="2")
    env = make_env(None)
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, libtensorflow=(major,)))
    assert "no Python TensorFlow is installed" in run_rule(env, matrix, "TFC114")[0][0].message


def test_tfc114_unknown_tensorflow_like_distributions(matrix):
    writes_tf = _with(pkg("tensorflow-mkl-fork", "2.9.0"), top_level=("tensorflow",))
    unnamed = pkg("my-tensorflow-build", "2.9.0")  # no top_level.txt, no RECORD entry for tensorflow/
    env = _env(extra=[writes_tf, unnamed])
    findings, _ = run_rule(env, matrix, "TFC114")
    assert [f.message.split(" (")[0] for f in findings] == ["tensorflow-mkl-fork 2.9.0", "my-tensorflow-build 2.9.0"]
    assert "installs the `tensorflow` import package" in findings[0].message
    assert "what it installs is unknown" in findings[1].message


def test_tfc114_healthy_nothing_reported(matrix):
    companions = [
        _text(),
        _with(pkg("tensorflow-datasets", "4.9.9"), top_level=("tensorflow_datasets",)),
        pkg("tensorflow-io-gcs-filesystem", "0.37.1"),  # TF requires it: part of TensorFlow's own install
        pkg("tensorflow-serving-api", "2.21.0", ("tensorflow<3,>=2.21",)),  # requires TF: a companion
        pkg("tensorflow-io", "0.37.1"),  # in the matrix's [[companion]] rows
    ]
    env = _env(extra=companions)
    tf = next(p for p in env.target.packages if p.name == "tensorflow")
    packages = tuple(
        _with(p, requires=p.requires + ("tensorflow-io-gcs-filesystem>=0.23.1",)) if p is tf else p
        for p in env.target.packages
    )
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, packages=packages))
    assert run_rule(env, matrix, "TFC114") == ([], [])
    assert run_rule(make_env(), matrix, "TFC114") == ([], [])


# -- branches the mutation run found unguarded (2026-12-07) ---------------------------------------------------


@pytest.mark.parametrize("kind", ["dir", "editable", "vcs"])
def test_tf_installed_from_a_directory_is_a_source_build_whatever_its_tag(matrix, kind):
    """direct_url.json (PEP 610) says TF was installed from a directory, in editable mode or from a VCS: a build
    made here, even when its WHEEL carries a manylinux tag (`auditwheel repair` writes one), so PyPI's
    tensorflow-text (tensorflow/text#192's failure mode) is flagged, and the direct_url.json is the evidence."""
    env = _env(extra=[_text()])
    packages = tuple(
        _with(p, origin=kind, direct_url="file:///src/tensorflow/bazel-bin") if p.name == "tensorflow" else p
        for p in env.target.packages
    )
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, packages=packages))
    origin = tf_origin(env, matrix)
    assert origin.kind == "source" and origin.installer == "pip"
    assert any(e.fact == "direct_url.json" and e.value.startswith(f"{kind}: file:///src/") for e in origin.evidence)
    (f,), _ = run_rule(env, matrix, "TFC112")
    assert "is a source/local build" in f.message


def test_no_tensorflow_has_no_origin(matrix):
    assert tf_origin(make_env(None), matrix) is None


def test_the_evidence_names_its_files(matrix):
    """Each Origin's evidence names the file or fact it rests on (the report's provenance): the INSTALLER next to
    TF's METADATA, an NGC image's variable with where it was read, the build_info.py of a ROCm build."""
    origin = tf_origin(_env(), matrix)
    installer = next(e for e in origin.evidence if e.fact == "INSTALLER")
    assert (installer.value, installer.source) == ("pip", f"{SITE}/tensorflow-2.21.0.dist-info/INSTALLER")
    ngc = Provenance(ngc_version="24.02-tf2", ngc_source="/etc/environment")
    origin = tf_origin(_env(tags=LOCAL_TAG, provenance=ngc), matrix)
    assert ("NVIDIA_TENSORFLOW_VERSION", "24.02-tf2", "/etc/environment") in [
        (e.fact, e.value, e.source) for e in origin.evidence
    ]
    origin = tf_origin(_env("2.14.0", dist="tensorflow-rocm"), matrix)
    rocm = next(e for e in origin.evidence if e.fact == "ROCm build")
    assert rocm.value == "matrix gpu = rocm" and rocm.source == f"{SITE}/tensorflow/python/platform/build_info.py"


def test_tf_without_a_wheel_file_is_a_source_build(matrix):
    """`python setup.py install` / `pip install .` of an old source tree leaves METADATA but no WHEEL (no tags):
    not PyPI's wheel, so PyPI's companions are flagged (tensorflow/text#192's failure mode); the evidence says
    the WHEEL file is missing rather than leaving the value empty."""
    env = _env(tags=(), extra=[_text()])
    build = dataclasses.replace(env.target.tensorflow[0], wheel_path=None)
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, tensorflow=(build,)))
    origin = tf_origin(env, matrix)
    assert origin.kind == "source"
    assert ("wheel tags", "(none)", "WHEEL") in [(e.fact, e.value, e.source) for e in origin.evidence]
    (f,), _ = run_rule(env, matrix, "TFC112")
    assert "is a source/local build" in f.message


def test_tfc112_remediation_and_companion_evidence(matrix):
    """The conda case of tensorflow/text#192: the fix is a sentence (first letter capitalised, nothing cut), and
    the companion's own INSTALLER is evidence with its value."""
    env = _env("2.0.0", tf_installer="conda", tags=LOCAL_TAG, extra=[_text("2.0.1", ("tensorflow<2.1,>=2.0.0",))])
    (f,), _ = run_rule(env, matrix, "TFC112")
    assert f.remediation.startswith("Install it from the same channel as TensorFlow (`conda install -c conda-forge")
    ev = next(e for e in f.evidence if e.fact == "tensorflow-text INSTALLER")
    assert ev.value == "pip" and ev.source == f"{SITE}/tensorflow-text-2.0.1.dist-info/INSTALLER"


def test_tfc113_a_tf_distribution_requiring_another_is_left_to_tfc101(matrix):
    """Linux aarch64 2.15: the wrapper `tensorflow` requires tensorflow-cpu-aws. When that is missing while
    tensorflow-cpu provides the module, it is a wrapper problem (TFC101), not a companion's requirement."""
    wrapper = pkg("tensorflow", "2.15.1", ("tensorflow-cpu-aws==2.15.1",))
    env = _env("2.15.1", dist="tensorflow-cpu", extra=[wrapper])
    assert run_rule(env, matrix, "TFC113")[0] == []


def test_tfc113_a_requirement_without_a_version(matrix):
    """A companion that requires plain `tensorflow` (no version) next to tensorflow-cpu: the message says the
    installed version would satisfy "it" (no empty specifier)."""
    env = _env("2.15.1", dist="tensorflow-cpu", extra=[pkg("tensorflow-hub", "0.16.1", ("tensorflow",))])
    (f,), _ = run_rule(env, matrix, "TFC113")
    assert "the installed version 2.15.1 would satisfy it" in f.message


def test_tfc114_evidence_and_odd_metadata(matrix):
    """A `*tensorflow*` distribution with no top_level.txt says "(unknown)" in its evidence; a Requires-Dist line
    that is not a requirement is skipped, not a crash; libtensorflow's evidence names how it was found and from
    what its version was read."""
    unnamed = pkg("my-tensorflow-build", "2.9.0")
    odd = pkg("oddpkg", "1.0", ("tensorflow >= = 2",))  # an invalid Requires-Dist line
    (f,), _ = run_rule(_env(extra=[unnamed, odd]), matrix, "TFC114")
    assert ("top_level", "(unknown)") in [(e.fact, e.value) for e in f.evidence]
    lib = LibraryCopy(
        path="/usr/local/lib/libtensorflow.so.2",
        real_path="/usr/local/lib/libtensorflow.so.2.5.0",
        found_via="ld.so.cache",
        search_entry="/etc/ld.so.cache",
        version="2.5.0",
        version_source="file name libtensorflow.so.2.5.0",
    )
    env = _env()
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, libtensorflow=(lib,)))
    (f,), _ = run_rule(env, matrix, "TFC114")
    assert any(e.source == "ld.so.cache: file name libtensorflow.so.2.5.0" for e in f.evidence)
    # only the major known (libtensorflow.so.2, no versioned file): not "differs", not "the same release"
    major = _with(lib, real_path="/usr/local/lib/libtensorflow.so.2", version="2", version_source=None)
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, libtensorflow=(major,)))
    (f,), _ = run_rule(env, matrix, "TFC114")
    assert "; the Python TensorFlow is tensorflow 2.21.0" in f.message
