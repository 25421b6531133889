"""probes/libraries.py: the libraries a TF build dlopen()s, resolved in fake venvs and images (tmp_path).

The fake TensorFlow has the layout of a real 2.21 wheel: libtensorflow_framework.so.2 with a DT_RUNPATH
to ../nvidia/<pkg>/lib (cusolver's directory is missing from it, as in the real wheel), nvidia-* wheels
with METADATA and RECORD, cuDNN with its sub-libraries and cudnn_version.h.
"""

import json
import os

import pytest
from elf_fixtures import gcc_so, link, needs_gcc, write_so
from probe_helpers import BUILD_INFO_2_21_0, make_dist, make_tf, write
from test_ldcache import new_cache_body

from tfcompat.matrix import shipped_facts
from tfcompat.model import (
    Platform,
    PythonInfo,
    TensorFlowBuild,
    environment_from_json,
    to_json_dict,
)
from tfcompat.probes.libraries import probe_libraries, tf_library_specs
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.packages import scan_packages
from tfcompat.probes.rootfs import Root
from tfcompat.probes.tensorflow import find_tensorflow

SITE = "/opt/venv/lib/python3.11/site-packages"
X86_64 = 0x0303
GLIBC = tuple(f"GLIBC_2.{i}" for i in (2, 3, 4, 14, 17, 27, 28, 34, 35))
GLIBCXX = tuple(f"GLIBCXX_3.4.{i}" for i in range(0, 31))
FRAMEWORK_RUNPATH = ":".join(
    f"$ORIGIN/../nvidia/{p}/lib" for p in ("nccl", "cuda_cupti", "cublas", "cudnn", "cufft", "cusparse", "cuda_runtime")
)
WHEELS = {  # pkg dir -> (distribution, version, [(file, needed, runpath/rpath)])
    "cuda_runtime": ("nvidia-cuda-runtime-cu12", "12.5.82", [("libcudart.so.12", (), None)]),
    "cublas": (
        "nvidia-cublas-cu12",
        "12.5.3.2",
        [("libcublas.so.12", ("libcublasLt.so.12",), "$ORIGIN"), ("libcublasLt.so.12", (), "$ORIGIN")],
    ),
    "cufft": ("nvidia-cufft-cu12", "11.2.3.61", [("libcufft.so.11", (), "$ORIGIN")]),
    "cusolver": (
        "nvidia-cusolver-cu12",
        "11.6.3.83",
        [("libcusolver.so.11", ("libnvJitLink.so.12",), "$ORIGIN:$ORIGIN/../../nvjitlink/lib")],
    ),
    "cusparse": (
        "nvidia-cusparse-cu12",
        "12.5.1.3",
        [("libcusparse.so.12", ("libnvJitLink.so.12",), "$ORIGIN/../../nvjitlink/lib:$ORIGIN")],
    ),
    "nvjitlink": ("nvidia-nvjitlink-cu12", "12.5.82", [("libnvJitLink.so.12", (), None)]),
    "nccl": ("nvidia-nccl-cu12", "2.27.7", [("libnccl.so.2", (), None)]),
    "cuda_cupti": ("nvidia-cuda-cupti-cu12", "12.5.82", [("libcupti.so.12", (), None)]),
    "cudnn": (
        "nvidia-cudnn-cu12",
        "9.3.0.75",
        [("libcudnn.so.9", (), "rpath:$ORIGIN")]
        + [
            (f"libcudnn_{s}.so.9", ("libz.so.1",), "$ORIGIN")
            for s in ("graph", "engines_precompiled", "engines_runtime_compiled", "heuristic", "ops", "cnn", "adv")
        ],
    ),
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def make_image(
    root,
    site=SITE,
    wheels=WHEELS,
    skip=(),
    libstdcxx=GLIBCXX,
    framework_needs=("GLIBCXX_3.4.22",),
    cache_entries=(),
    and_cuda=True,
):
    """A sysroot with a system libc/libstdc++ and a venv with a fake TF 2.21 (+ nvidia wheels)."""
    root = str(root)
    lib = os.path.join(root, "usr/lib/x86_64-linux-gnu")
    write_so(f"{lib}/libc.so.6", version_defs=GLIBC)
    write_so(f"{lib}/libz.so.1")
    if libstdcxx is not None:
        write_so(
            f"{lib}/libstdc++.so.6",
            version_defs=libstdcxx + ("CXXABI_1.3.11",),
            version_needs={"libc.so.6": ("GLIBC_2.17",)},
        )
    link(os.path.join(root, "lib"), "usr/lib")
    write_so(f"{root}/usr/bin/python3.11", soname=None, needed=("libc.so.6",), e_type=2)
    if cache_entries:
        write(os.path.join(root, "etc/ld.so.cache"), "")
        with open(os.path.join(root, "etc/ld.so.cache"), "wb") as fh:
            fh.write(new_cache_body([(X86_64, s, p, None) for s, p in cache_entries]))
    s = root + site
    tf_dir = make_tf(s, "2.21.0", BUILD_INFO_2_21_0)
    requires = ['nvidia-cudnn-cu12<10.0,>=9.3.0.75; extra == "and-cuda"'] if and_cuda else []
    make_dist(s, "tensorflow", "2.21.0", requires=requires)
    write_so(
        f"{tf_dir}/libtensorflow_framework.so.2",
        needed=("libstdc++.so.6", "libc.so.6"),
        runpath=FRAMEWORK_RUNPATH,
        version_needs={"libstdc++.so.6": framework_needs, "libc.so.6": ("GLIBC_2.17", "GLIBC_2.27")},
    )
    write_so(
        f"{tf_dir}/libtensorflow_cc.so.2",
        needed=("libtensorflow_framework.so.2", "libc.so.6"),
        runpath="$ORIGIN/:$ORIGIN/../nvidia/cusolver/lib",
        version_needs={"libc.so.6": ("GLIBC_2.17",)},
    )
    write_so(
        f"{tf_dir}/python/_pywrap_tensorflow_internal.so",
        soname=None,
        needed=("libtensorflow_cc.so.2", "libtensorflow_framework.so.2"),
        runpath="$ORIGIN/../",
    )
    for pkg, (dist, version, files) in wheels.items():
        if pkg in skip:
            continue
        record = []
        for name, needed, path in files:
            kw = {"rpath": path[6:]} if path and path.startswith("rpath:") else {"runpath": path}
            write_so(f"{s}/nvidia/{pkg}/lib/{name}", needed=needed, **kw)
            record.append(f"nvidia/{pkg}/lib/{name},sha256=x,1")
        if pkg == "cudnn":
            major, minor, patch = version.split(".")[:3]
            write(
                f"{s}/nvidia/cudnn/include/cudnn_version.h",
                f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n",
            )
        info = make_dist(s, dist, version)
        write(os.path.join(info, "RECORD"), "\n".join(record) + "\n")
    return s


def probe(root, site=SITE, environ=None, host=False, cpu_flags=()):
    r = Root(None if host else str(root))
    real_site = site if host else str(root) + site
    packages, _ = scan_packages([real_site])
    builds, _ = find_tensorflow(packages, [real_site])
    python = PythonInfo(None if host else "/usr/bin/python3.11", "3.11.7", "cpython", (), "test")
    return probe_libraries(r, builds[0], packages, [real_site], python, Platform(cpu_flags=tuple(cpu_flags)), environ)


def by_name(native):
    return {lib.name: lib for lib in native.libraries}


def test_and_cuda_image_resolves_the_wheels(tmp_path):
    make_image(tmp_path)
    native, unknowns = probe(tmp_path)
    assert unknowns == []
    libs = by_name(native)
    assert native.caller == SITE + "/tensorflow/libtensorflow_framework.so.2"
    assert native.executable == "/usr/bin/python3.11"
    cudart = libs["cudart"].found
    assert cudart.found_via == "DT_RUNPATH" and cudart.search_entry == "$ORIGIN/../nvidia/cuda_runtime/lib"
    assert cudart.real_path == SITE + "/nvidia/cuda_runtime/lib/libcudart.so.12"
    assert (cudart.version, cudart.distribution) == ("12.5.82", "nvidia-cuda-runtime-cu12")
    assert cudart.version_source.endswith("nvidia_cuda_runtime_cu12-12.5.82.dist-info/METADATA")
    # cuBLASLt is a DT_NEEDED of cuBLAS: already loaded when TF asks for it
    assert libs["cublasLt"].found.found_via == "already loaded"
    # as in the real 2.21 wheel, cuSOLVER's directory is not on the framework's RUNPATH
    cusolver = libs["cusolver"]
    assert cusolver.found is None
    assert [(c.found_via, c.version) for c in cusolver.others] == [("installed, not on the search path", "11.6.3.83")]
    # cuDNN and its sub-libraries (dlopen()ed by libcudnn.so.9 through its DT_RPATH $ORIGIN)
    assert libs["cudnn"].found.version == "9.3.0.75"
    subs = [lib for lib in native.libraries if lib.role == "cudnn-sublibrary"]
    assert len(subs) == 7 and all(
        s.found and s.found.found_via == "DT_RPATH" and s.found.version == "9.3.0.75" for s in subs
    )
    assert libs["cuda"].found is None and libs["cuda"].role == "driver"
    # cusparse found libnvJitLink through its own RUNPATH: no missing dependency
    assert libs["cusparse"].missing_deps == ()
    assert native.cpu_instructions == ("avx",)


def test_plain_tensorflow_image_says_what_is_absent(tmp_path):
    make_image(
        tmp_path,
        wheels={},
        and_cuda=False,
        cache_entries=[
            ("libcudnn.so.8", "/usr/lib/x86_64-linux-gnu/libcudnn.so.8"),
            ("libcudart.so.13", "/usr/local/cuda-13.0/lib/libcudart.so.13"),
        ],
    )
    write_so(tmp_path / "usr/lib/x86_64-linux-gnu/libcudnn.so.8")
    write_so(tmp_path / "usr/local/cuda-13.0/lib/libcudart.so.13")
    native, _ = probe(tmp_path)
    libs = by_name(native)
    assert all(lib.found is None for lib in native.libraries)
    assert native.ld_so_cache.startswith("/etc/ld.so.cache (new format")
    # once: /lib is a link to usr/lib here, /lib/x86_64-linux-gnu (searched first) is the same directory
    assert [s for s in libs["cudnn"].other_sonames if s.startswith("libcudnn.so.8 in ")] == [
        "libcudnn.so.8 in /lib/x86_64-linux-gnu (default path)"
    ]
    assert libs["cudart"].other_sonames == ("libcudart.so.13 in /usr/local/cuda-13.0/lib (ld.so.cache)",)
    assert not [lib for lib in native.libraries if lib.role == "cudnn-sublibrary"]  # no cuDNN, no sub-libraries


def test_ld_library_path_shadows_the_wheel(tmp_path):
    site = make_image(tmp_path, site="/venv/lib/python3.11/site-packages")
    toolkit = tmp_path / "usr/local/cuda-12.2/lib64"
    write_so(toolkit / "libcublas.so.12.2.5.6", soname="libcublas.so.12", needed=("libcublasLt.so.12",))
    link(toolkit / "libcublas.so.12", "libcublas.so.12.2.5.6")
    write_so(toolkit / "libcublasLt.so.12")
    native, _ = probe(tmp_path, site=site, host=True, environ={"LD_LIBRARY_PATH": str(toolkit)})
    assert native.ld_library_path == str(toolkit)
    libs = by_name(native)
    cublas = libs["cublas"]
    assert cublas.found.found_via == "LD_LIBRARY_PATH" and cublas.found.real_path == str(
        toolkit / "libcublas.so.12.2.5.6"
    )
    assert cublas.found.version == "12.2.5.6" and cublas.found.distribution is None
    wheel = [c for c in cublas.others if c.distribution == "nvidia-cublas-cu12"]
    assert wheel and wheel[0].found_via == "DT_RUNPATH" and wheel[0].version == "12.5.3.2"
    # cuBLASLt came in as cuBLAS's dependency, from the toolkit too
    assert libs["cublasLt"].found.real_path == str(toolkit / "libcublasLt.so.12")


def test_system_cudnn_version_from_its_header(tmp_path):
    make_image(tmp_path, skip=("cudnn",), cache_entries=[("libcudnn.so.9", "/usr/lib/x86_64-linux-gnu/libcudnn.so.9")])
    write_so(tmp_path / "usr/lib/x86_64-linux-gnu/libcudnn.so.9")
    write(
        tmp_path / "usr/include/x86_64-linux-gnu/cudnn_version_v9.h",
        "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 1\n#define CUDNN_PATCHLEVEL 0\n",
    )
    native, _ = probe(tmp_path)
    cudnn = by_name(native)["cudnn"].found
    assert cudnn.found_via == "ld.so.cache" and cudnn.version == "9.1.0"
    assert cudnn.version_source == "/usr/include/x86_64-linux-gnu/cudnn_version_v9.h"


def test_cudnn_tries_its_versioned_sublibrary_names_first(tmp_path):
    make_image(tmp_path)
    # a stray libcudnn_ops.so.9.3.0 in a default dir wins over the wheel's libcudnn_ops.so.9
    write_so(tmp_path / "usr/lib/x86_64-linux-gnu/libcudnn_ops.so.9.3.0", soname="libcudnn_ops.so.9")
    native, _ = probe(tmp_path)
    ops = by_name(native)["cudnn_ops"].found
    assert ops.real_path == "/usr/lib/x86_64-linux-gnu/libcudnn_ops.so.9.3.0" and ops.found_via == "default path"
    assert ops.path == "/lib/x86_64-linux-gnu/libcudnn_ops.so.9.3.0"  # /lib -> usr/lib, searched first
    assert ops.version == "9.3.0"


def test_abi_needs_against_the_libstdcxx_the_loader_picks(tmp_path):
    make_image(
        tmp_path,
        libstdcxx=tuple(f"GLIBCXX_3.4.{i}" for i in range(0, 29)),
        framework_needs=("GLIBCXX_3.4.22", "GLIBCXX_3.4.30"),
    )
    native, _ = probe(tmp_path)
    fw = [c for c in native.abi if c.object.endswith("libtensorflow_framework.so.2") and c.library == "libstdc++.so.6"]
    assert len(fw) == 1
    assert fw[0].missing == ("GLIBCXX_3.4.30",) and fw[0].provider == "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    assert "GLIBCXX_3.4.28" in fw[0].provider_highest
    libc = [c for c in native.abi if c.object.endswith("libtensorflow_framework.so.2") and c.library == "libc.so.6"]
    assert libc[0].missing == () and libc[0].needed == ("GLIBC_2.17", "GLIBC_2.27")


def test_abi_needed_library_not_found(tmp_path):
    make_image(tmp_path, libstdcxx=None)
    native, _ = probe(tmp_path)
    fw = [c for c in native.abi if c.object.endswith("libtensorflow_framework.so.2") and c.library == "libstdc++.so.6"]
    assert fw[0].provider is None and fw[0].missing == ("GLIBCXX_3.4.22",)


def test_symlink_in_the_venv_pointing_outside_the_root(tmp_path):
    host = tmp_path / "host"
    write_so(host / "libcudnn.so.9")
    root = tmp_path / "img"
    site = make_image(root, skip=("cudnn",))
    link(f"{site}/nvidia/cudnn/lib/libcudnn.so.9", str(host / "libcudnn.so.9"))
    native, _ = probe(root)
    assert by_name(native)["cudnn"].found is None  # the host's file is never used


def test_no_package_dir_or_no_libraries_is_unknown(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow", "2.21.0")
    packages, _ = scan_packages([str(site)])
    tf = TensorFlowBuild("tensorflow", "2.21.0", str(site), None, None, "12.5.1", "9", (), True)
    native, unknowns = probe_libraries(Root(None), tf, packages, [str(site)], PythonInfo(None, None), Platform())
    assert native is None and unknowns[0].fact == "libraries"
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    tf = TensorFlowBuild("tensorflow", "2.21.0", str(site), str(site / "tensorflow"), None, "12.5.1", "9", (), True)
    native, unknowns = probe_libraries(Root(None), tf, packages, [str(site)], PythonInfo(None, None), Platform())
    assert native is None and "not a Linux build" in unknowns[0].reason
    assert probe_libraries(Root(None), None, [], [], PythonInfo(None, None), Platform()) == (None, [])


def _tf(cuda, cudnn="8", version="2.15.1", trt=False, cuda_build=True):
    return TensorFlowBuild("tensorflow", version, "/s", "/s/tensorflow", None, cuda, cudnn, (), cuda_build, False, trt)


def test_sonames_follow_the_build():
    specs, _ = tf_library_specs(_tf("12.2", "8", trt=True), shipped_facts())
    names = [s.soname for s in specs]
    assert names[:9] == [
        "libcuda.so.1",
        "libcudart.so.12",
        "libcublas.so.12",
        "libcublasLt.so.12",
        "libcufft.so.11",
        "libcusolver.so.11",
        "libcusparse.so.12",
        "libcudnn.so.8",
        "libnccl.so.2",
    ]
    assert "libnvinfer.so.8.6.1" in names and "libnvinfer_plugin.so.8.6.1" in names
    assert "libnvshmem_host.so.3" not in names  # 2.21+ only
    cupti = next(s for s in specs if s.name == "cupti")
    assert cupti.fallbacks == ("libcupti.so",)
    specs, _ = tf_library_specs(_tf("11.8", "8", version="2.14.0"), shipped_facts())
    assert {"libcudart.so.11.0", "libcusolver.so.11", "libcufft.so.10", "libcupti.so.11.8"} <= {s.soname for s in specs}
    assert not {"libcurand.so.10", "libnccl.so.2"} & {s.soname for s in specs}  # no such loader in the 2.14 wheels
    specs, _ = tf_library_specs(_tf("11.8", "8", version="2.13.1"), shipped_facts())
    assert "libcurand.so.10" in {s.soname for s in specs}
    specs, _ = tf_library_specs(_tf("11.0", "8", version="2.4.0"), shipped_facts())
    assert "libcusolver.so.10" in {s.soname for s in specs}
    specs, unknowns = tf_library_specs(_tf("13.0", "9", version="2.30.0"), shipped_facts())
    assert specs == [] and unknowns[0].fact == "libraries"
    specs, unknowns = tf_library_specs(_tf("12.5.1", "9", version="2.19.0", trt=True), shipped_facts())
    assert unknowns[0].fact == "libraries.tensorrt"
    assert tf_library_specs(_tf(None, None, cuda_build=False), shipped_facts()) == ([], [])


def test_cpu_instructions_by_distribution(tmp_path):
    make_image(tmp_path)
    native, _ = probe(tmp_path)
    assert native.cpu_instructions == ("avx",) and "1.6" in native.cpu_instructions_source


@needs_gcc
def test_dlopen_caller_is_the_object_defining_load_dynamic_library(tmp_path):
    """TF's dlopen() happens in whichever object defines tsl::internal::LoadDynamicLibrary (2.21: the framework)."""
    site = make_image(tmp_path)
    cc = f"{site}/tensorflow/libtensorflow_cc.so.2"
    os.unlink(cc)
    gcc_so(
        cc,
        "void _ZN3tsl8internal18LoadDynamicLibraryEPKcPPv(void) {}\n",
        soname="libtensorflow_cc.so.2",
        flags=["-Wl,-rpath,$ORIGIN/../nvidia/cusolver/lib", "-Wl,--enable-new-dtags", "-nostdlib"],
    )
    native, _ = probe(tmp_path)
    assert native.caller == SITE + "/tensorflow/libtensorflow_cc.so.2"
    assert "defines tsl::internal::LoadDynamicLibrary" in native.caller_source
    libs = by_name(native)
    assert libs["cusolver"].found is not None  # the cc's RUNPATH has cuSOLVER's directory
    assert libs["cudart"].found is None  # ... but not the runtime's


def test_snapshot_round_trip(tmp_path):
    import dataclasses

    from envs import make_env

    make_image(tmp_path)
    native, _ = probe(tmp_path)
    env = make_env()
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, native=native))
    text = json.dumps(to_json_dict(env))
    assert environment_from_json(json.loads(text)) == env


def test_scan_of_an_image_reports_the_table_and_valid_json(tmp_path, matrix):
    import jsonschema

    from tfcompat.probes.target import TargetSpec
    from tfcompat.render.json import render_json, schema_text
    from tfcompat.render.text import render_text
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    make_image(tmp_path)
    env = scan(
        TargetSpec(root=str(tmp_path), site_packages=(SITE,)),
        nvml=False,
        environ={"LD_LIBRARY_PATH": "/must/not/be/used"},
    )
    assert env.target.native is not None and env.target.native.ld_library_path is None
    report = evaluate(env, matrix)
    text = render_text(report)
    assert "Libraries   dlopen()ed by …/site-packages/tensorflow/libtensorflow_framework.so.2" in text
    assert "libcudart.so.12" in text and "12.5.82" in text and "DT_RUNPATH" in text
    assert "libcudnn_*.so.9 (7)" in text  # the sub-libraries fold onto one line
    assert "installed off the search path: …/site-packages/nvidia/cusolver/lib/libcusolver.so.11" in text
    assert "TFC301" in text  # cuSOLVER is not on the RUNPATH
    jsonschema.validate(json.loads(render_json(report)), json.loads(schema_text()))


def test_version_header_behind_a_symlink_stays_inside_the_root(tmp_path):
    """nvidia/cudnn/include -> /host/dir must be followed inside the image, never to the host's header."""
    from tfcompat.probes.library_versions import LibraryVersions as _Versions
    from tfcompat.probes.rootfs import Root

    host_dir = tmp_path / "host-include"
    host_dir.mkdir()
    (host_dir / "cudnn_version.h").write_text(
        "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 99\n#define CUDNN_PATCHLEVEL 7\n"
    )
    root = tmp_path / "img"
    lib = root / "venv/site/nvidia/cudnn/lib"
    lib.mkdir(parents=True)
    (lib / "libcudnn.so.9").write_bytes(b"\x7fELF")
    os.symlink(str(host_dir), root / "venv/site/nvidia/cudnn/include")  # absolute: the host's path
    v = _Versions(Root(str(root)), [], [str(root / "venv/site")])
    version, _source, _ = v.of("cudnn", "libcudnn.so.9", str(lib / "libcudnn.so.9"))
    assert version != "9.99.7"
