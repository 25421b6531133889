"""The installed TensorFlow distributions and their build, read from files (never imported).

The build facts come from ``tensorflow/python/platform/build_info.py``, a generated module whose
dict literal is what ``tf.sysconfig.get_build_info()`` returns; we read it with ``ast``. TF 1.15, 2.0 and 2.1
install the real package as ``tensorflow_core/`` (``tensorflow/`` only forwards to it): build_info.py and the
native objects live there.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from tfcompat.model import Package, TensorFlowBuild, Unknown
from tfcompat.probes.build_abi import read_abi_facts
from tfcompat.probes.rootfs import Root

BUILD_INFO = os.path.join("tensorflow", "python", "platform", "build_info.py")
_BUILD_INFO_IN_PACKAGE = os.path.join("python", "platform", "build_info.py")
# Where a release keeps its real package, the newest layout last: tensorflow_core/ (1.15, 2.0, 2.1), tensorflow/.
CORE_PACKAGES = ("tensorflow_core", "tensorflow")


def core_dirs(location: str, root: Optional[Root] = None) -> list[str]:
    """The package directories under `location` that hold TensorFlow's build_info.py and native objects, the one
    `import tensorflow` really runs first (tensorflow_core/ when a 1.15-2.1 layout has it)."""
    root = root or Root(None)
    return [d for d in (os.path.join(location, name) for name in CORE_PACKAGES) if _is_dir(root, d)]


def parse_build_info(source: str) -> dict[str, Any]:
    """The build_info mapping from the text of build_info.py.

    TF >= 2.4 writes ``build_info = collections.OrderedDict([(k, v), ...])`` (or a dict literal);
    older releases wrote module-level constants (``is_cuda_build = True``, ``cuda_version_number = '10.1'``).
    """
    tree = ast.parse(source)
    info: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name, value = node.targets[0].id, node.value
        if name == "build_info":
            if isinstance(value, ast.Call) and value.args:  # OrderedDict([...]) / dict([...])
                value = value.args[0]
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue
            info.update(dict(literal))
        else:
            try:
                info.setdefault(name, ast.literal_eval(value))
            except ValueError:
                continue
    # Old key names.
    if "cuda_version_number" in info:
        info.setdefault("cuda_version", info["cuda_version_number"])
    if "cudnn_version_number" in info:
        info.setdefault("cudnn_version", info["cudnn_version_number"])
    return info


def _str(value: Any) -> Optional[str]:
    return None if value in (None, "") else str(value)


def _bool(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def _wheel_tags(dist_info: str, root: Optional[Root] = None) -> tuple[Optional[str], tuple[str, ...]]:
    root = root or Root(None)
    path = os.path.join(dist_info, "WHEEL")
    try:
        text = root.read_bytes(root.inside(path), "wheel").decode("utf-8", "replace")
    except OSError:
        return None, ()
    return path, tuple(line.split(":", 1)[1].strip() for line in text.splitlines() if line.lower().startswith("tag:"))


def _is_file(root: Root, real: str) -> bool:
    try:
        return root.is_file(root.inside(real))
    except OSError:
        return False


def _is_dir(root: Root, real: str) -> bool:
    try:
        return root.is_dir(root.inside(real))
    except OSError:
        return False


def read_build(pkg: Package, root: Optional[Root] = None) -> tuple[TensorFlowBuild, list[Unknown]]:
    root = root or Root(None)
    unknowns: list[Unknown] = []
    package_dir: Optional[str] = os.path.join(pkg.location, "tensorflow")
    if not _is_dir(root, os.path.join(pkg.location, "tensorflow")):
        package_dir = None
    # build_info.py of the real package: tensorflow_core/ first where a 1.15-2.1 layout has one
    candidates = [os.path.join(d, _BUILD_INFO_IN_PACKAGE) for d in core_dirs(pkg.location, root)]
    build_info_path: Optional[str] = next(
        (c for c in candidates if _is_file(root, c)), os.path.join(pkg.location, BUILD_INFO)
    )
    info: dict[str, Any] = {}
    try:
        # bounded read (a link to /dev/urandom or a 10 GB file is refused); bad UTF-8 is an unknown, not a crash
        source = root.read_bytes(root.inside(build_info_path or ""), "build_info").decode("utf-8")
        info = parse_build_info(source)
    except FileNotFoundError:
        build_info_path = None
        unknowns.append(
            Unknown(
                "tensorflow.build",
                f"{pkg.display_name} {pkg.version} has no {BUILD_INFO} in {pkg.location} "
                "(a wrapper distribution, or a broken install): its CUDA/cuDNN build is unknown",
            )
        )
    except (OSError, SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        unknowns.append(Unknown("tensorflow.build", f"cannot read {build_info_path}: {why}"))
        build_info_path = None
    wheel_path: Optional[str] = None
    tags: tuple[str, ...] = ()
    if pkg.metadata_path.endswith("METADATA"):
        wheel_path, tags = _wheel_tags(os.path.dirname(pkg.metadata_path), root)
    ccs = info.get("cuda_compute_capabilities") or ()
    binary, binary_source = _binary_capabilities(pkg, info, bool(ccs) and wheel_path is not None, root, unknowns)
    abi = read_abi_facts(root, pkg.location)  # two or three files of a few KB: graph_pb2.py, NumPy's config headers
    build = TensorFlowBuild(
        distribution=pkg.name,
        version=pkg.version,
        location=pkg.location,
        package_dir=package_dir,
        build_info_path=build_info_path,
        cuda_version=_str(info.get("cuda_version")),
        cudnn_version=_str(info.get("cudnn_version")),
        compute_capabilities=tuple(str(c) for c in ccs) if isinstance(ccs, (list, tuple)) else (),
        is_cuda_build=_bool(info.get("is_cuda_build")),
        is_rocm_build=_bool(info.get("is_rocm_build")),
        is_tensorrt_build=_bool(info.get("is_tensorrt_build")),
        cpu_compiler=_str(info.get("cpu_compiler")),
        wheel_tags=tags,
        wheel_path=wheel_path,
        metadata_path=pkg.metadata_path,
        binary_capabilities=binary,
        binary_capabilities_source=binary_source,
        pb2_path=abi.pb2_path,
        pb2_gencode=abi.pb2_gencode,
        pb2_protobuf=abi.pb2_protobuf,
        numpy_headers_path=abi.numpy_headers_path,
        numpy_built_with=abi.numpy_built_with,
        numpy_c_api=abi.numpy_c_api,
    )
    return build, unknowns


def _binary_capabilities(
    pkg: Package, info: dict[str, Any], wheel_with_ccs: bool, root: Root, unknowns: list[Unknown]
) -> tuple[tuple[str, ...], Optional[str]]:
    """The SASS/PTX entries of TF's own CUDA objects, read only where build_info may not tell the truth: it
    lists no compute capabilities (TF < 2.3, source builds), or the build is not a wheel that pip or uv
    installed (conda, a source tree). A PyPI wheel with its capabilities stated costs nothing here."""
    if info.get("is_cuda_build") is False or info.get("is_rocm_build") is True:
        return (), None
    if wheel_with_ccs and pkg.installer in ("pip", "uv"):  # INSTALLER, as the packages probe read it
        return (), None
    from tfcompat.probes.native.fatbin import read_tensorflow_binaries  # only on this slow path

    scan, objects = read_tensorflow_binaries(pkg.location, root)
    unknowns += [Unknown("tensorflow.binary_capabilities", p) for p in scan.problems[:3]]
    return scan.archs, (", ".join(objects) or None)


def find_tensorflow(
    packages: Iterable[Package],
    search_path: Iterable[str],
    root: Optional[Root] = None,
    names: Optional[Sequence[str]] = None,
) -> tuple[tuple[TensorFlowBuild, ...], list[Unknown]]:
    """Every TF distribution, the one `import tensorflow` would use first.

    The effective one is the distribution installed where the first `tensorflow/` package
    directory on the search path lives (that is what the import system picks).
    """
    root = root or Root(None)
    search = list(search_path)
    if names is None:  # the matrix's [[tensorflow_distribution]] names; the shipped matrix's by default
        from tfcompat.matrix import shipped_facts

        names = shipped_facts().tf_distribution_names
    tf_pkgs = [p for p in packages if p.name in names]
    first_dir = next((d for d in search if _is_file(root, os.path.join(d, "tensorflow", "__init__.py"))), None)
    builds: list[TensorFlowBuild] = []
    unknowns: list[Unknown] = []
    for pkg in tf_pkgs:
        build, problems = read_build(pkg, root)
        builds.append(build)
        unknowns += problems

    def order(b: TensorFlowBuild) -> tuple[int, int]:
        in_first = 0 if b.location == first_dir else 1
        has_build = 0 if b.build_info_path else 1
        return (in_first, has_build)

    builds.sort(key=order)
    if builds and builds[0].build_info_path is not None:
        unknowns = [u for u in unknowns if u.fact != "tensorflow.build"]
    if not builds:
        sites = [d for d in search if os.path.basename(d.rstrip("/")) in ("site-packages", "dist-packages")]
        where = ", ".join(sites or search) if search else "(an empty search path)"
        if first_dir is not None:
            unknowns.append(
                Unknown(
                    "tensorflow",
                    f"found {os.path.join(first_dir, 'tensorflow')} but no distribution metadata (*.dist-info) "
                    "for it, so its version is unknown; reinstall it with pip",
                )
            )
        else:
            unknowns.append(Unknown("tensorflow", f"no TensorFlow distribution installed in {where}"))
    return tuple(builds), unknowns
