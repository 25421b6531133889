"""ABI floors a TensorFlow build states in its own files, read without importing it (TFC110, TFC111).

- protobuf: one generated module, ``tensorflow/core/framework/graph_pb2.py`` (2-5 KB in every 2.x wheel).
  protoc < 3.19 writes code that builds descriptors directly (``_descriptor.FileDescriptor(...,
  serialized_pb=...)``, ``_descriptor.FieldDescriptor(``); protoc >= 3.19 asks the pool
  (``AddSerializedFile``), and protoc >= 25 adds a ``# Protobuf Python Version: X`` header.
- NumPy: the headers TF was compiled with, which its wheels ship under
  ``tensorflow/include/external/local_config_python/numpy_include/numpy/``: ``_numpyconfig.h`` states
  NPY_API_VERSION, ``numpyconfig.h`` defines one ``NPY_<major>_<minor>_API_VERSION`` macro per NumPy minor up
  to its own. That is the fact of this build (a source or conda build included), not of its release.

Each read is one small file, capped at 64 KiB; a missing or unreadable file leaves the field None.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

from tfcompat.probes.rootfs import Root

_PB2 = os.path.join("core", "framework", "graph_pb2.py")
_NUMPY_DIR = os.path.join("include", "external", "local_config_python", "numpy_include", "numpy")
_PKG_DIRS = ("tensorflow", "tensorflow_core")  # tensorflow_core/: TF 2.0-2.1 (and 1.15) keep their modules there
_LIMIT = 64 << 10

_PB2_VERSION = re.compile(rb"^# Protobuf Python Version: ([0-9][0-9A-Za-z.+-]*)\s*$", re.M)
# [ \t], not \s: a \s* at each line start would run on over every following blank line (quadratic in the file)
_NPY_API = re.compile(rb"^[ \t]*#define[ \t]+NPY_API_VERSION[ \t]+(0x[0-9A-Fa-f]+)\b", re.M)
_NPY_MINOR = re.compile(rb"^[ \t]*#define[ \t]+NPY_(\d+)_(\d+)_API_VERSION\b", re.M)


def _read(root: Root, path: str) -> Optional[bytes]:
    try:
        return root.read_text(root.inside(path), limit=_LIMIT).encode("utf-8")
    except (OSError, ValueError):
        return None


def _first(root: Root, location: str, rel: str) -> tuple[Optional[str], Optional[bytes]]:
    for pkg in _PKG_DIRS:
        path = os.path.join(location, pkg, rel)
        data = _read(root, path)
        if data is not None:
            return path, data
    return None, None


@dataclasses.dataclass(frozen=True)
class AbiFacts:
    """The TensorFlowBuild fields of the same names; None where nothing was read."""

    pb2_path: Optional[str] = None
    pb2_gencode: Optional[str] = None
    pb2_protobuf: Optional[str] = None
    numpy_headers_path: Optional[str] = None
    numpy_built_with: Optional[str] = None
    numpy_c_api: Optional[str] = None


def pb2_facts(root: Root, location: str) -> dict[str, Optional[str]]:
    """pb2_path, pb2_gencode ("descriptors" / "pool"), pb2_protobuf (the header's version) for TF in `location`."""
    path, data = _first(root, location, _PB2)
    if data is None:
        return {}
    if b"AddSerializedFile" in data:
        gencode: Optional[str] = "pool"
    elif b"_descriptor.FileDescriptor(" in data:
        gencode = "descriptors"
    else:
        gencode = None  # neither style: a hand-edited or unknown generator; no verdict from it
    m = _PB2_VERSION.search(data)
    return {"pb2_path": path, "pb2_gencode": gencode, "pb2_protobuf": m.group(1).decode() if m else None}


def numpy_facts(root: Root, location: str) -> dict[str, Optional[str]]:
    """numpy_headers_path, numpy_built_with ("1.21"), numpy_c_api ("0xe") for TF in `location`."""
    path, data = _first(root, location, os.path.join(_NUMPY_DIR, "_numpyconfig.h"))
    if data is None or path is None:
        return {}
    m = _NPY_API.search(data)
    api = f"{int(m.group(1), 16):#x}" if m else None
    config = _read(root, os.path.join(os.path.dirname(path), "numpyconfig.h")) or b""
    minors = {(int(a), int(b)) for a, b in _NPY_MINOR.findall(config)}
    built = ".".join(map(str, max(minors))) if minors else None
    return {"numpy_headers_path": path, "numpy_built_with": built, "numpy_c_api": api}


def read_abi_facts(root: Root, location: str) -> AbiFacts:
    """Both readers' facts for the TensorFlow installed in `location` (site-packages)."""
    return AbiFacts(**pb2_facts(root, location), **numpy_facts(root, location))
