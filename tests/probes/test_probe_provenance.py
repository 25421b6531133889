"""Provenance facts (issue 14): INSTALLER, direct_url.json (PEP 610) and top_level per distribution; an NGC
image's release; conda-meta/; the TensorFlow C library found by its soname. Real files in tmp trees."""

from __future__ import annotations

import json
import os

import pytest
from elf_fixtures import make_cache, write_so
from probe_helpers import make_dist, make_tf, symlink, write

from tfcompat.model import Environment, from_json_dict, to_json_dict
from tfcompat.probes.packages import scan_packages
from tfcompat.probes.provenance import parse_env_file, probe_libtensorflow, probe_provenance
from tfcompat.probes.rootfs import Root

SITE = "/usr/local/lib/python3.11/dist-packages"


def _one(site, name):
    packages, _ = scan_packages([str(site)])
    return next(p for p in packages if p.name == name)


def test_installer_and_direct_url_kinds(tmp_path):
    """pip writes INSTALLER always and direct_url.json for a URL or path install (PEP 610): each kind is read."""
    cases = {
        "a": ({"url": "file:///src/tensorflow", "dir_info": {"editable": True}}, "editable"),
        "b": ({"url": "file:///tmp/build", "dir_info": {}}, "dir"),
        "c": ({"url": "https://github.com/x/y.git", "vcs_info": {"vcs": "git", "commit_id": "ab" * 20}}, "vcs"),
        "d": ({"url": "file:///w/tensorflow-2.15.0-cp311-cp311-linux_x86_64.whl", "archive_info": {}}, "archive"),
    }
    for name, (data, _kind) in cases.items():
        d = make_dist(tmp_path, f"dist-{name}", "1.0")
        write(os.path.join(d, "INSTALLER"), "uv\n")
        write(os.path.join(d, "direct_url.json"), json.dumps(data))
    for name, (data, kind) in cases.items():
        p = _one(tmp_path, f"dist-{name}")
        assert (p.installer, p.direct_url, p.origin) == ("uv", data["url"], kind)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        '{"url": 5, "dir_info": {}}',
        "[" * 100000 + "]" * 100000,  # deeper than json's recursion limit
        '{"url": "file:///x", "dir_info": "yes"}',
        "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
    ],
)
def test_garbage_direct_url_is_none_never_a_crash(tmp_path, content):
    d = make_dist(tmp_path, "garbage", "1.0")
    write(os.path.join(d, "direct_url.json"), content)
    write(os.path.join(d, "INSTALLER"), "p i p\n")  # not a tool name: None
    p = _one(tmp_path, "garbage")
    assert p.version == "1.0" and p.installer is None
    assert p.origin is None
    assert p.direct_url in (None, "file:///x")


def test_direct_url_over_the_cap_is_refused(tmp_path):
    d = make_dist(tmp_path, "huge", "1.0")
    write(os.path.join(d, "direct_url.json"), '{"url": "' + "x" * (300 << 10) + '", "dir_info": {}}')
    p = _one(tmp_path, "huge")
    assert (p.direct_url, p.origin) == (None, None)


def test_top_level_from_top_level_txt_and_from_record_for_tensorflow_names(tmp_path):
    """top_level.txt when setuptools wrote one; a *tensorflow* distribution without it: RECORD's first components."""
    d = make_dist(tmp_path, "tensorflow-text", "2.21.1")
    write(os.path.join(d, "top_level.txt"), "tensorflow_text\n")
    d = make_dist(tmp_path, "mystery-tensorflow", "2.15.0")
    write(
        os.path.join(d, "RECORD"),
        "tensorflow/__init__.py,sha256=x,10\ntensorflow/python/x.so,,\n"
        "mystery_tensorflow-2.15.0.dist-info/METADATA,,\n../../bin/tool,,\nsix.py,,\n",
    )
    d = make_dist(tmp_path, "numpy", "2.1.0")
    write(os.path.join(d, "RECORD"), "numpy/__init__.py,,\n")  # not read: not a TF-like name
    assert _one(tmp_path, "tensorflow-text").top_level == ("tensorflow_text",)
    assert _one(tmp_path, "mystery-tensorflow").top_level == ("six", "tensorflow")
    assert _one(tmp_path, "numpy").top_level == ()


@pytest.mark.realwheel
@pytest.mark.skipif(not os.environ.get("TFCOMPAT_TF_PYTHON"), reason="set TFCOMPAT_TF_PYTHON (a TF venv's python)")
def test_real_venv_provenance_facts(matrix):
    """Opt-in, on a real venv (`pip install tensorflow==2.21.0 tensorflow-text`, e.g. /tmp/tftext):
    TFCOMPAT_TF_PYTHON=/tmp/tftext/bin/python python -m pytest -m realwheel tests/probes/test_probe_provenance.py.
    pip installed both from an index (INSTALLER pip, no direct_url.json), TF is a PyPI wheel (manylinux tag), and
    tensorflow-text's wheel ships .so files: the matrix's `native = true` for it is the wheel's content."""
    from tfcompat.probes.packages import record_files
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules.provenance import tf_origin
    from tfcompat.scan import scan

    env = scan(TargetSpec(python=os.environ["TFCOMPAT_TF_PYTHON"]), nvml=False)
    tf = env.package(env.tensorflow.distribution)
    assert (tf.installer, tf.origin, tf.top_level) == ("pip", None, ("tensorflow",))
    assert tf_origin(env, matrix).label == "a PyPI wheel (pip)"
    text = env.package("tensorflow-text")
    if text is None:
        pytest.skip("no tensorflow-text in that venv")
    assert (text.installer, text.origin, text.top_level) == ("pip", None, ("tensorflow_text",))
    files, _ = record_files(text, keep=lambda rel: rel.endswith(".so"))
    assert len(files) > 10 and any(c.native for c in matrix.companions if c.package == "tensorflow-text")


def test_ngc_release_from_the_host_environment(tmp_path):
    prov, unknowns = probe_provenance(
        Root(None), None, [str(tmp_path)], {"NVIDIA_TENSORFLOW_VERSION": "23.03-tf1", "NVIDIA_BUILD_ID": "55416458"}
    )
    assert prov is not None and (prov.ngc_version, prov.ngc_build_id) == ("23.03-tf1", "55416458")
    assert prov.ngc_source == "$NVIDIA_TENSORFLOW_VERSION" and unknowns == []
    assert probe_provenance(Root(None), None, [str(tmp_path)], {}) == (None, [])


@pytest.mark.parametrize(
    "line",
    [
        'export NVIDIA_TENSORFLOW_VERSION="22.09-tf1"',  # older Apptainer/Singularity
        'export NVIDIA_TENSORFLOW_VERSION="${NVIDIA_TENSORFLOW_VERSION:-"22.09-tf1"}"',  # newer: overridable
    ],
)
def test_ngc_release_under_root_from_the_apptainer_env_file(tmp_path, line):
    """Under --root the checker's own environment is never read; an Apptainer sandbox of the NGC image keeps the
    image's Env in /.singularity.d/env/10-docker2singularity.sh."""
    write(tmp_path / ".singularity.d/env/10-docker2singularity.sh", f'#!/bin/sh\nexport PATH="/usr/bin"\n{line}\n')
    host_env = {"NVIDIA_TENSORFLOW_VERSION": "99.99-host"}
    prov, unknowns = probe_provenance(Root(str(tmp_path)), None, [SITE], host_env)
    assert prov is not None and prov.ngc_version == "22.09-tf1" and unknowns == []
    assert prov.ngc_source == "/.singularity.d/env/10-docker2singularity.sh"


def test_ngc_release_under_root_without_env_file_is_unknown(tmp_path):
    prov, unknowns = probe_provenance(Root(str(tmp_path)), None, [SITE], {"NVIDIA_TENSORFLOW_VERSION": "23.03-tf1"})
    assert prov is None
    assert [u.fact for u in unknowns] == ["ngc"] and "OCI config" in unknowns[0].reason


def test_env_file_values_that_are_not_versions_are_dropped():
    text = 'export NVIDIA_TENSORFLOW_VERSION="$(rm -rf /)"\nexport NVIDIA_BUILD_ID=12\\"3\n'
    assert parse_env_file(text) == {}


def test_conda_meta_next_to_the_environment(tmp_path):
    prefix = tmp_path / "envs" / "tf"
    site = prefix / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (prefix / "conda-meta").mkdir()
    prov, _ = probe_provenance(Root(None), None, [str(site)], {})
    assert prov is not None and prov.conda_meta == str(prefix / "conda-meta") and prov.ngc_version is None
    assert probe_provenance(Root(None), None, [str(tmp_path)], {})[0] is None


@pytest.mark.parametrize(
    "site", ["lib/python3.11/site-packages", "lib64/python3.9/site-packages", "lib/python3.12/dist-packages/"]
)
def test_conda_meta_of_the_environments_the_conda_probe_reads(tmp_path, site):
    # provenance and probes/conda.py derive the environment from a site dir in one place (env_prefix)
    from tfcompat.probes.conda import conda_prefixes

    prefix = tmp_path / "envs" / "tf"
    (prefix / site).mkdir(parents=True)
    (prefix / "conda-meta").mkdir()
    prov, _ = probe_provenance(Root(None), None, [str(prefix / site)], {})
    assert prov is not None and prov.conda_meta == str(prefix / "conda-meta")
    assert conda_prefixes(Root(None), [str(prefix / site)]) == [str(prefix)]


def _libtensorflow_image(root):
    lib = root / "usr/local/lib"
    write_so(lib / "libtensorflow.so.2.15.0", soname="libtensorflow.so.2")
    symlink(lib / "libtensorflow.so.2", "libtensorflow.so.2.15.0")
    write(root / "etc/os-release", 'ID=ubuntu\nVERSION_ID="22.04"\n')
    return lib


def test_libtensorflow_in_usr_local_lib_before_ldconfig(tmp_path):
    """The libtensorflow tarball extracted into /usr/local (tensorflow.org/install/lang_c), ldconfig not run."""
    _libtensorflow_image(tmp_path)
    copies, unknowns = probe_libtensorflow(Root(str(tmp_path)))
    assert unknowns == []
    assert [(c.path, c.real_path, c.version, c.found_via) for c in copies] == [
        (
            "/usr/local/lib/libtensorflow.so.2",
            "/usr/local/lib/libtensorflow.so.2.15.0",
            "2.15.0",
            "installed, not on the search path",
        )
    ]
    assert copies[0].version_source == "file name libtensorflow.so.2.15.0"


def test_libtensorflow_through_the_ld_so_cache(tmp_path):
    _libtensorflow_image(tmp_path)
    ok, err = make_cache(str(tmp_path), ["/usr/local/lib"], "new")
    if not ok:
        pytest.skip(f"ldconfig cannot build a cache here: {err}")
    copies, _ = probe_libtensorflow(Root(str(tmp_path)))
    assert [(c.real_path, c.found_via, c.version) for c in copies] == [
        ("/usr/local/lib/libtensorflow.so.2.15.0", "ld.so.cache", "2.15.0")
    ]


def test_no_libtensorflow_and_the_python_wheel_is_not_it(tmp_path):
    """TF's Python wheel ships libtensorflow_framework.so.2 / libtensorflow_cc.so.2, not the C library."""
    site = tmp_path / SITE.lstrip("/")
    write_so(site / "tensorflow/libtensorflow_framework.so.2")
    write_so(site / "tensorflow/libtensorflow_cc.so.2")
    assert probe_libtensorflow(Root(str(tmp_path))) == ((), [])


def test_scan_records_provenance_and_round_trips(tmp_path, matrix):
    """A whole --root scan: the new Package and Target fields reach the snapshot, decode back, validate."""
    import jsonschema

    from tfcompat.probes.target import TargetSpec
    from tfcompat.render.json import render_json, schema_text
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    site = tmp_path / SITE.lstrip("/")
    make_tf(site, "2.15.0", "build_info = {'is_cuda_build': False}\n")
    d = make_dist(site, "tensorflow", "2.15.0", wheel_tags=["cp311-cp311-linux_x86_64"])
    write(os.path.join(d, "INSTALLER"), "pip\n")
    write(os.path.join(d, "top_level.txt"), "tensorflow\n")
    write(os.path.join(d, "direct_url.json"), '{"url": "file:///w/tf.whl", "archive_info": {}}')
    _libtensorflow_image(tmp_path)
    env = scan(TargetSpec(root=str(tmp_path), site_packages=(SITE,)), nvml=False)
    tf = next(p for p in env.target.packages if p.name == "tensorflow")
    assert (tf.installer, tf.origin, tf.top_level) == ("pip", "archive", ("tensorflow",))
    assert env.target.libtensorflow[0].version == "2.15.0"
    assert env.unknown("ngc") is not None
    back = from_json_dict(Environment, json.loads(json.dumps(to_json_dict(env))))
    assert back == env
    report = evaluate(env, matrix)
    jsonschema.validate(json.loads(render_json(report)), json.loads(schema_text()))
    assert [f.rule for f in report.findings if f.rule == "TFC114"] == ["TFC114"]  # the C library, 2.15.0
