"""Floors that a build's generated code and compiled extension modules set, beyond what its metadata states:
protobuf's runtime against the protoc that generated the `*_pb2.py` modules, and NumPy's C API against the
NumPy headers the extension modules were compiled with. Pure functions of versions; TFC110/TFC111 and
`tfcompat matrix tensorflow X` use them.

Sources (read at the tags named):
- protocolbuffers/protobuf:python/google/protobuf/descriptor.py (v21.0): with a C backend (upb, the 4.21
  default, or cpp) every direct `Descriptor(...)`/`FieldDescriptor(...)` call goes through
  `_message.Message._CheckCalledFromGeneratedFile()`, which the upb backend always refuses
  (protocolbuffers/protobuf:python/message.c: "Descriptors cannot be created directly ... must be regenerated
  with protoc >= 3.19.0 ... 1. Downgrade the protobuf package to 3.20.x or lower. 2. Set
  PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python"); https://protobuf.dev/news/2022-05-06/ announces it.
- numpy/numpy:numpy/core/code_generators/cversions.txt (v1.26.0) and setup_common.py / meson.build
  C_API_VERSION per tag: the C API version of each NumPy minor.
- numpy/numpy:numpy/core/code_generators/generate_numpy_api.py (v1.24.0): `_import_array` fails when
  NPY_FEATURE_VERSION > the running NumPy's ("module compiled against API version 0x%x but this version of
  numpy is 0x%x"); before 1.25 NPY_FEATURE_VERSION is the headers' NPY_API_VERSION.
- numpy/numpy:numpy/_core/include/numpy/numpyconfig.h (v1.25.0 ... v2.5.0): from 1.25 on, NPY_FEATURE_VERSION
  defaults to an older target unless NPY_TARGET_VERSION is set (1.25-2.0: 1.19's API; 2.1-2.2: 1.21's;
  2.3-2.4: 1.23's; 2.5: 1.25's).
"""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

# protoc >= 3.19 writes `AddSerializedFile` (descriptors from the pool); older protoc builds descriptors directly.
PROTOC_POOL_GENCODE = Version("3.19.0")
# The first protobuf whose default backend (upb) refuses directly built descriptors.
PROTOBUF_UPB = Version("4.21.0")
PROTOBUF_FIX = "3.20"  # `pip install "protobuf<3.20"`: the bound TF's own patch releases set (2.6.5, 2.7.3+, ...)

# C API version of each NumPy minor (cversions.txt; 1.25+ from setup_common.py / meson.build at the tag).
_C_API: tuple[tuple[str, int], ...] = (
    ("1.8", 0x9),
    ("1.10", 0xA),
    ("1.13", 0xB),
    ("1.14", 0xC),
    ("1.16", 0xD),
    ("1.20", 0xE),
    ("1.22", 0xF),
    ("1.23", 0x10),
    ("1.25", 0x11),
    ("2.0", 0x12),
    ("2.1", 0x13),
    ("2.3", 0x14),
    ("2.4", 0x15),
    ("2.5", 0x16),
)
# NumPy >= 1.25 headers target an older C API by default (numpyconfig.h, "Use the default"); newest first.
_DEFAULT_TARGET: tuple[tuple[str, str], ...] = (("2.5", "1.25"), ("2.3", "1.23"), ("2.1", "1.21"), ("1.25", "1.19"))
_KNOWN_UP_TO = Version("2.6")  # numpyconfig.h read up to 2.5 (2.6 states the same default)
TARGET_SINCE = Version("1.25")


def _minor(v: Version) -> Version:
    return Version(f"{v.major}.{v.minor}")


def c_api(numpy: Version) -> Optional[int]:
    """The C API version NumPy `numpy` provides; None for one older than 1.8 or newer than the table."""
    mm = _minor(numpy)
    if mm < Version("1.8") or mm >= _KNOWN_UP_TO:
        return None
    return next(api for first, api in reversed(_C_API) if mm >= Version(first))


def first_numpy_with(api: int) -> Optional[Version]:
    """The oldest NumPy minor whose C API version is `api` or newer."""
    return next((Version(first) for first, have in _C_API if have >= api), None)


def numpy_floor(built_with: Version) -> Optional[tuple[Version, int]]:
    """(oldest NumPy that imports the modules, the C API version they require) for modules compiled with
    NumPy `built_with`'s headers and no NPY_TARGET_VERSION; None where the tables end."""
    mm = _minor(built_with)
    if mm >= _KNOWN_UP_TO:
        return None
    target = mm
    if mm >= TARGET_SINCE:
        target = next(Version(t) for since, t in _DEFAULT_TARGET if mm >= Version(since))
    api = c_api(target)
    if api is None:
        return None
    first = first_numpy_with(api)
    return (first, api) if first is not None else None


def legacy_gencode(protoc: Version) -> bool:
    """Whether protoc `protoc` writes `*_pb2.py` code that builds descriptors directly (refused by protobuf >= 4.21)."""
    return protoc < PROTOC_POOL_GENCODE
