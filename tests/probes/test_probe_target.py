"""Which environment to look at: --python, --site-packages, --root."""

import os
import shutil
import subprocess
import sys

import pytest
from probe_helpers import make_dist, symlink, write

from tfcompat.probes.packages import scan_packages
from tfcompat.probes.target import TargetError, TargetSpec, resolve_target

PY_XY = "python{}.{}".format(*sys.version_info[:2])
PY_XYZ = "{}.{}.{}".format(*sys.version_info[:3])


def real(paths):
    return [os.path.realpath(p) for p in paths]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A real venv (no pip: fast) with one fake distribution in its site-packages."""
    base = tmp_path_factory.mktemp("target")
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=60)
    site = env / "lib" / PY_XY / "site-packages"
    assert site.is_dir()
    make_dist(site, "only-in-the-venv", "1.0")
    return env, site


def test_python_venv(venv):
    env, site = venv
    python = str(env / "bin" / "python")
    target = resolve_target(TargetSpec(python=python))
    assert os.path.realpath(site) in real(target.search_path)
    assert target.python.version == PY_XYZ
    assert target.python.implementation == sys.implementation.name
    assert python in target.python.source
    assert "" not in target.search_path
    assert all(os.path.isabs(p) and os.path.isdir(p) for p in target.search_path)
    # the venv's own path, not ours: the dev venv's site-packages is not on it
    ours = os.path.realpath(os.path.join(sys.prefix, "lib", PY_XY, "site-packages"))
    assert ours not in real(target.search_path)
    names = [p.name for p in scan_packages(target.search_path)[0]]
    assert "only-in-the-venv" in names
    assert "tfcompat" not in names


def test_python_venv_with_extra_site_packages_first(venv, tmp_path):
    env, site = venv
    extra = tmp_path / "extra"
    extra.mkdir()
    target = resolve_target(TargetSpec(python=str(env / "bin" / "python"), site_packages=(str(extra),)))
    assert target.search_path[0] == str(extra)
    assert os.path.realpath(site) in real(target.search_path[1:])


def test_default_is_running_interpreter():
    target = resolve_target(TargetSpec())
    assert target.python.executable == sys.executable
    assert target.python.version == PY_XYZ
    assert "running interpreter" in target.python.source
    assert all(os.path.isdir(p) for p in target.search_path)


def one_line_error(spec, *words):
    with pytest.raises(TargetError) as info:
        resolve_target(spec)
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg
    return msg


def test_python_missing_file(tmp_path):
    path = str(tmp_path / "nope" / "python")
    assert one_line_error(TargetSpec(python=path), path) == f"--python {path}: no such file"


def test_python_not_executable(tmp_path):
    path = write(tmp_path / "python", "#!/bin/sh\necho hi\n", mode=0o644)
    assert one_line_error(TargetSpec(python=path), path) == f"--python {path}: not an executable file"


def test_python_is_a_directory(tmp_path):
    one_line_error(TargetSpec(python=str(tmp_path)), str(tmp_path), "not an executable file")


@pytest.mark.skipif(not os.path.exists("/bin/false"), reason="no /bin/false")
def test_python_that_is_not_python():
    msg = one_line_error(TargetSpec(python="/bin/false"), "/bin/false")
    assert msg.startswith("--python /bin/false: is not a working Python interpreter")


def test_python_that_prints_garbage(tmp_path):
    path = write(tmp_path / "python", "#!/bin/sh\necho 'not json'\necho 'boom: broken' >&2\nexit 1\n", mode=0o755)
    assert one_line_error(TargetSpec(python=path), path) == (
        f"--python {path}: is not a working Python interpreter (boom: broken)"
    )


def test_site_packages_version_from_dir_name(tmp_path):
    site = tmp_path / "env" / "lib" / "python3.9" / "site-packages"
    site.mkdir(parents=True)
    target = resolve_target(TargetSpec(site_packages=(str(site),)))
    assert target.search_path == (str(site),)
    assert target.python.version == "3.9"
    assert target.python.executable is None
    assert target.python.source == f"directory name {site}"


def test_site_packages_version_from_pyvenv_cfg(tmp_path):
    env = tmp_path / "env"
    site = env / "lib" / "python3.10" / "site-packages"
    site.mkdir(parents=True)
    write(env / "pyvenv.cfg", "home = /usr/local/bin\ninclude-system-site-packages = false\nversion = 3.10.4\n")
    target = resolve_target(TargetSpec(site_packages=(str(site),)))
    assert target.python.version == "3.10.4"
    assert target.python.source == f"{env}/pyvenv.cfg"


def test_site_packages_without_version(tmp_path):
    site = tmp_path / "pkgs"
    site.mkdir()
    target = resolve_target(TargetSpec(site_packages=(str(site),)))
    assert target.python.version is None
    assert target.python.source.startswith("unknown")


def test_site_packages_missing(tmp_path):
    path = str(tmp_path / "nope")
    assert one_line_error(TargetSpec(site_packages=(path,))) == f"--site-packages {path}: not a directory"


def test_site_packages_duplicates_removed(tmp_path):
    site = tmp_path / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True)
    link = symlink(tmp_path / "link", str(site))
    target = resolve_target(TargetSpec(site_packages=(str(site), link, str(site))))
    assert target.search_path == (str(site),)


@pytest.fixture
def image(tmp_path):
    root = tmp_path / "img"
    sys_site = root / "usr/lib/python3.11/site-packages"
    local_dist = root / "usr/local/lib/python3.11/dist-packages"
    make_dist(sys_site, "numpy", "1.24.2")
    make_dist(local_dist, "numpy", "2.1.3")
    return root, sys_site, local_dist


def test_root_finds_both_site_dirs(image):
    root, sys_site, local_dist = image
    target = resolve_target(TargetSpec(root=str(root)))
    assert target.search_path == (str(local_dist), str(sys_site))  # /usr/local before /usr
    assert target.unknowns == ()
    assert target.python.version == "3.11"
    assert target.python.executable is None
    packages, shadowed = scan_packages(target.search_path)
    assert [(p.name, p.version) for p in packages] == [("numpy", "2.1.3")]
    assert [(p.name, p.version) for p in shadowed] == [("numpy", "1.24.2")]


def test_root_with_site_packages_inside_root(image):
    root, sys_site, _local_dist = image
    target = resolve_target(TargetSpec(root=str(root), site_packages=("/usr/lib/python3.11/site-packages",)))
    assert target.search_path == (str(sys_site),)
    assert target.python.version == "3.11"


def test_root_site_packages_is_resolved_in_root_not_on_host(image):
    root, _sys_site, _ = image
    # a path that exists on the host (the dev venv's lib) but not in the image
    host_only = os.path.dirname(os.__file__)
    assert os.path.isdir(host_only)
    if os.path.isdir(os.path.join(str(root), host_only.lstrip("/"))):
        pytest.skip("path exists in both")
    msg = one_line_error(TargetSpec(root=str(root), site_packages=(host_only,)), host_only, str(root))
    assert "not a directory" in msg


def test_root_with_symlinked_site_packages(image):
    root, sys_site, _ = image
    symlink(root / "srv/site", "/usr/lib/python3.11/site-packages")  # absolute: re-anchored in the image
    target = resolve_target(TargetSpec(root=str(root), site_packages=("/srv/site",)))
    assert target.search_path == (str(sys_site),)


def test_root_missing(tmp_path):
    path = str(tmp_path / "no-image")
    assert one_line_error(TargetSpec(root=path)) == f"--root {path}: not a directory"


def test_root_without_any_site_dir(tmp_path):
    (tmp_path / "img" / "etc").mkdir(parents=True)
    target = resolve_target(TargetSpec(root=str(tmp_path / "img")))
    assert target.search_path == ()
    assert [u.fact for u in target.unknowns] == ["python"]
    assert target.python.version is None


def test_root_with_python_in_image(tmp_path):
    root = tmp_path / "img"
    site = root / "usr/lib/python3.11/site-packages"
    site.mkdir(parents=True)
    write(root / "usr/bin/python3.11", "", mode=0o755)
    target = resolve_target(TargetSpec(root=str(root), python="/usr/bin/python3.11"))
    assert target.search_path == (str(site),)
    assert target.python.executable == "/usr/bin/python3.11"
    assert target.python.version == "3.11"
    one_line_error(
        TargetSpec(root=str(root), python="/usr/bin/python3.99"), "/usr/bin/python3.99", "no such file inside --root"
    )


def test_root_with_venv_python_symlink(tmp_path):
    root = tmp_path / "img"
    write(root / "usr/bin/python3.11", "", mode=0o755)
    (root / "usr/lib/python3.11/site-packages").mkdir(parents=True)
    venv_site = root / "venv/lib/python3.11/site-packages"
    venv_site.mkdir(parents=True)
    symlink(root / "venv/bin/python", "/usr/bin/python3.11")  # what `python -m venv` makes
    write(root / "venv/pyvenv.cfg", "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n")
    target = resolve_target(TargetSpec(root=str(root), python="/venv/bin/python"))
    assert target.search_path == (str(venv_site),)
    assert target.python.version == "3.11.2"


def test_root_site_dir_behind_absolute_symlink(tmp_path):
    root = tmp_path / "img"
    site = root / "opt/py-img-only/lib/python3.11/site-packages"
    site.mkdir(parents=True)
    assert not os.path.exists("/opt/py-img-only")  # the host has no such dir
    symlink(root / "usr/local/lib/python3.11", "/opt/py-img-only/lib/python3.11")
    target = resolve_target(TargetSpec(root=str(root)))
    assert real(target.search_path) == [str(site)]
    assert target.unknowns == ()


def test_python_dangling_interpreter_link(venv, tmp_path):
    """A venv whose interpreter link dangles (base Python removed) is reported, not crashed on."""
    env, _ = venv
    broken = tmp_path / "broken"
    shutil.copytree(env, broken, symlinks=True)
    os.remove(broken / "bin" / "python")
    symlink(broken / "bin" / "python", str(tmp_path / "gone" / "python3"))
    path = str(broken / "bin" / "python")
    assert one_line_error(TargetSpec(python=path), path) == f"--python {path}: no such file"


def test_python_version_from_the_lib_dir_not_an_outer_dir_name(tmp_path):
    site = tmp_path / "python3.8-envs" / "myenv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    target = resolve_target(TargetSpec(site_packages=(str(site),)))
    assert target.python.version == "3.11"
