"""The version of one library file: its nvidia-* wheel, its real file name, cudnn_version.h, a toolkit's version.json."""

from __future__ import annotations

import json
import os
import re
from typing import Dict, Optional, Sequence, Tuple

from tfcompat.model import Package
from tfcompat.probes.rootfs import Root

# CUDA toolkit version.json component keys.
_TOOLKIT_KEYS = {"cudart": "cuda_cudart", "cublas": "libcublas", "cublasLt": "libcublas", "cufft": "libcufft",
                 "curand": "libcurand", "cusolver": "libcusolver", "cusparse": "libcusparse", "cupti": "cuda_cupti",
                 "nvJitLink": "libnvjitlink", "nccl": "nccl"}


class LibraryVersions:
    """Version of a library file: nvidia-* wheel metadata, real file name, cudnn_version.h, toolkit version.json."""

    def __init__(self, root: Root, packages: Sequence[Package], site_dirs: Sequence[str]):
        self.root = root
        self.site_dirs = [d.rstrip("/") for d in site_dirs]
        self.packages = [p for p in packages if p.name.startswith(("nvidia-", "tensorrt"))]
        self._records: Dict[str, Dict[str, Package]] = {}
        self._headers: Dict[str, Optional[Tuple[str, str]]] = {}
        self._toolkit: Dict[str, Optional[Tuple[dict, str]]] = {}

    def _safe(self, host_path: str) -> str:
        """`host_path` re-resolved inside the root, so a symlink on the way cannot lead to the host."""
        if self.root.root is None:
            return host_path
        try:
            return self.root.path(self.root.display(host_path))
        except OSError:
            return os.path.join(self.root.root, ".tfcompat-unresolvable")  # too many links: read nothing

    def _record_map(self, site: str) -> Dict[str, Package]:
        if site not in self._records:
            out: Dict[str, Package] = {}
            for p in self.packages:
                if p.location.rstrip("/") != site or not p.metadata_path.endswith("METADATA"):
                    continue
                try:
                    with open(self._safe(os.path.join(os.path.dirname(p.metadata_path), "RECORD")),
                              encoding="utf-8") as fh:
                        for line in fh:
                            rel = line.split(",", 1)[0]
                            if ".so" in rel:
                                out[rel] = p
                except OSError:
                    continue
            self._records[site] = out
        return self._records[site]

    def distribution(self, host_path: str) -> Optional[Package]:
        for site in self.site_dirs:
            real_site = os.path.realpath(site)
            for base in {site, real_site}:
                if host_path.startswith(base + "/"):
                    return self._record_map(site).get(host_path[len(base) + 1:])
        return None

    def of(self, name: str, soname: str, host_path: str) -> Tuple[Optional[str], Optional[str], Optional[str]]:
        """(version, where it came from, distribution) of the library file at `host_path`."""
        pkg = self.distribution(host_path)
        if pkg is not None:
            return pkg.version, pkg.metadata_path, pkg.name
        prefix = soname.split(".so", 1)[0] + ".so."
        base = os.path.basename(host_path)
        if base.startswith(prefix) and re.fullmatch(r"\d+(\.\d+){2,}", base[len(prefix):]):
            return base[len(prefix):], f"file name {self.root.display(host_path)}", None
        if name.startswith("cudnn"):
            hdr = self._cudnn_header(os.path.dirname(host_path), soname)
            if hdr:
                return hdr
        toolkit = self._toolkit_version(os.path.dirname(host_path), name)
        if toolkit:
            return toolkit
        m = re.fullmatch(re.escape(prefix) + r"(\d+)(?:\.\d+)*", base)
        if m:  # only the major is known: libcupti.so.13
            return m.group(1), f"file name {self.root.display(host_path)} (major version only)", None
        return None, None, None

    def _cudnn_header(self, libdir: str, soname: str) -> Optional[Tuple[str, str, None]]:
        major = soname.rsplit(".", 1)[-1]
        shown_dir = self.root.display(libdir)
        candidates = [self._safe(os.path.join(os.path.dirname(libdir), "include", "cudnn_version.h"))]
        m = re.match(r"^/usr/lib/([^/]+)$", shown_dir)
        if m or shown_dir in ("/usr/lib64", "/usr/lib"):
            for rel in ("/usr/include/cudnn_version.h", f"/usr/include/{m.group(1) if m else ''}/cudnn_version_v{major}.h",
                        f"/usr/include/cudnn_version_v{major}.h"):
                try:
                    candidates.append(self.root.path(rel.replace("//", "/")))
                except OSError:
                    continue
        for path in candidates:
            if path in self._headers:
                hit = self._headers[path]
            else:
                hit = _read_cudnn_header(path, self.root)
                self._headers[path] = hit
            if hit and hit[0].split(".")[0] == major:
                return hit[0], hit[1], None
        return None

    def _toolkit_version(self, libdir: str, name: str) -> Optional[Tuple[str, str, None]]:
        key = _TOOLKIT_KEYS.get(name)
        if key is None:
            return None
        d = libdir
        for _ in range(4):
            d = os.path.dirname(d)
            if d in self._toolkit:
                found = self._toolkit[d]
            else:
                found = None
                path = self._safe(os.path.join(d, "version.json"))
                try:
                    with open(path, encoding="utf-8") as fh:
                        data = json.load(fh)
                    if isinstance(data, dict) and "cuda" in data:
                        found = (data, path)
                except (OSError, ValueError):
                    pass
                self._toolkit[d] = found
            if found:
                entry = found[0].get(key)
                if isinstance(entry, dict) and entry.get("version"):
                    return str(entry["version"]), self.root.display(found[1]), None
                return None
        return None


_CUDNN_DEFINE = re.compile(rb"#define\s+CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)")


def _read_cudnn_header(path: str, root: Root) -> Optional[Tuple[str, str]]:
    try:
        with open(path, "rb") as fh:
            text = fh.read(1 << 16)
    except OSError:
        return None
    found = {k.decode(): v.decode() for k, v in _CUDNN_DEFINE.findall(text)}
    if "MAJOR" not in found:
        return None
    version = ".".join(found.get(k, "0") for k in ("MAJOR", "MINOR", "PATCHLEVEL"))
    return version, root.display(path)
