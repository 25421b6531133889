"""The version of one library file: its nvidia-* wheel, its conda package, its real file name, cudnn_version.h,
a toolkit's version.json."""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
from collections.abc import Sequence
from typing import Optional

from tfcompat.model import CondaPackage, Package
from tfcompat.probes.packages import record_files
from tfcompat.probes.rootfs import Root

# CUDA toolkit version.json component keys.
_TOOLKIT_KEYS = {
    "cudart": "cuda_cudart",
    "cublas": "libcublas",
    "cublasLt": "libcublas",
    "cufft": "libcufft",
    "curand": "libcurand",
    "cusolver": "libcusolver",
    "cusparse": "libcusparse",
    "cupti": "cuda_cupti",
    "nvJitLink": "libnvjitlink",
    "nccl": "nccl",
}


class LibraryVersions:
    """Version of a library file: nvidia-* wheel metadata, the conda-meta record that lists it, real file name,
    cudnn_version.h, toolkit version.json.

    Every file is read through the Root (inside --root, regular files only, capped); a file that is there
    but refused (a FIFO, a device, over its cap) is noted in `problems`, once, for the probe's unknowns."""

    def __init__(
        self, root: Root, packages: Sequence[Package], site_dirs: Sequence[str], conda: Sequence[CondaPackage] = ()
    ):
        self.root = root
        self.site_dirs = [d.rstrip("/") for d in site_dirs]
        self.packages = [p for p in packages if p.name.startswith(("nvidia-", "tensorrt"))]
        self.conda = [c for c in conda if c.libraries]
        self._owners: Optional[dict[str, Package]] = None
        self._conda_owners: Optional[dict[str, CondaPackage]] = None
        self._headers: dict[str, Optional[tuple[str, str]]] = {}
        self._toolkit: dict[str, Optional[tuple[dict, str]]] = {}
        self.problems: list[str] = []

    def _note(self, what: str, exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError) and exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            line = f"{what}: {exc.strerror or exc}"
            if line not in self.problems:
                self.problems.append(line)

    def _owner_map(self) -> dict[str, Package]:
        """Real path of each shared object an nvidia-*/tensorrt wheel installed (its RECORD) -> the wheel."""
        if self._owners is None:
            owners: dict[str, Package] = {}
            for p in self.packages:
                files, why = record_files(
                    p, self.root, keep=lambda rel: ".so" in posixpath.basename(rel), contains=".so"
                )
                if why:
                    self.problems.append(f"cannot list the files {p.name} installed: {why}")
                for path in files:
                    if ".so" in os.path.basename(path):
                        owners.setdefault(path, p)
                        if self.root.is_host:  # record_files keeps the host's links; the loader resolves them
                            owners.setdefault(os.path.realpath(path), p)
            self._owners = owners
        return self._owners

    def distribution(self, host_path: str) -> Optional[Package]:
        return self._owner_map().get(host_path)

    def conda_package(self, host_path: str) -> Optional[CondaPackage]:
        """The conda package whose record lists the file at `host_path` (a real path on this machine)."""
        if self._conda_owners is None:
            owners: dict[str, CondaPackage] = {}
            for pkg in self.conda:
                for inside in pkg.libraries:
                    # the record lists the link (lib/libcudnn.so.8) and its target; both map to the real file
                    for key in (self._host(inside, resolve=False), self._host(inside, resolve=True)):
                        if key:
                            owners.setdefault(key, pkg)
            self._conda_owners = owners
        return self._conda_owners.get(host_path)

    def _host(self, inside: str, resolve: bool) -> Optional[str]:
        try:
            if self.root.is_host:
                return os.path.realpath(inside) if resolve else inside
            return self.root.path(inside) if resolve else (self.root.root or "").rstrip("/") + inside
        except OSError:
            return None

    def of(
        self, name: str, soname: str, host_path: str, elf_soname: Optional[str] = None
    ) -> tuple[Optional[str], Optional[str], Optional[str]]:
        """(version, where it came from, distribution) of the library file at `host_path`; `elf_soname`: the
        file's own DT_SONAME (a CUPTI file named by its year release is versioned by it)."""
        pkg = self.distribution(host_path)
        if pkg is not None:
            return pkg.version, pkg.metadata_path, pkg.name
        conda = self.conda_package(host_path)
        if conda is not None:  # like a wheel: the package's version ("channel::name" is conda's own spelling)
            return conda.version, conda.record_path, f"{conda.channel}::{conda.name}"
        prefix = soname.split(".so", 1)[0] + ".so."
        base = os.path.basename(host_path)
        named = base[len(prefix) :] if base.startswith(prefix) else ""
        year_named = name == "cupti" and _YEAR_RELEASE.fullmatch(named) is not None
        if re.fullmatch(r"\d+(\.\d+){2,}", named) and not year_named:
            return named, f"file name {self.root.display(host_path)}", None
        libdir = self.root.display(os.path.dirname(host_path))  # inside the root from here on
        if name.startswith("cudnn"):
            hdr = self._cudnn_header(libdir, soname)
            if hdr:
                return hdr
        toolkit = self._toolkit_version(libdir, name)
        if toolkit:
            return toolkit
        if year_named:  # CUPTI's own release (2022.3.0 is CUDA 11.8's): its SONAME names the CUDA version
            m = re.fullmatch(re.escape(prefix) + r"(\d+(?:\.\d+)*)", elf_soname or "")
            if m and _YEAR_RELEASE.fullmatch(m.group(1)) is None:
                return m.group(1), f"SONAME {elf_soname} of {self.root.display(host_path)}", None
            return None, None, None
        m = re.fullmatch(re.escape(prefix) + r"(\d+)(?:\.\d+)*", base)
        if m:  # only the major is known: libcupti.so.13
            return m.group(1), f"file name {self.root.display(host_path)} (major version only)", None
        return None, None, None

    def _cudnn_header(self, libdir: str, soname: str) -> Optional[tuple[str, str, None]]:
        major = soname.rsplit(".", 1)[-1]
        candidates = [posixpath.join(posixpath.dirname(libdir), "include", "cudnn_version.h")]
        m = re.match(r"^/usr/lib/([^/]+)$", libdir)
        if m or libdir in ("/usr/lib64", "/usr/lib"):
            arch = m.group(1) if m else ""
            for rel in (
                "/usr/include/cudnn_version.h",
                f"/usr/include/{arch}/cudnn_version_v{major}.h",
                f"/usr/include/cudnn_version_v{major}.h",
            ):
                candidates.append(rel.replace("//", "/"))
        for path in candidates:
            if path in self._headers:
                hit = self._headers[path]
            else:
                hit = self._read_cudnn_header(path)
                self._headers[path] = hit
            if hit and hit[0].split(".")[0] == major:
                return hit[0], hit[1], None
        return None

    def _read_cudnn_header(self, path: str) -> Optional[tuple[str, str]]:
        try:
            text = self.root.read_bytes(path, "header", truncate=True)
        except OSError as exc:
            self._note(path, exc)
            return None
        return cudnn_header_version(text, path)

    def _toolkit_version(self, libdir: str, name: str) -> Optional[tuple[str, str, None]]:
        key = _TOOLKIT_KEYS.get(name)
        if key is None:
            return None
        d = libdir
        for _ in range(4):
            d = posixpath.dirname(d)
            if d in self._toolkit:
                found = self._toolkit[d]
            else:
                found = None
                path = posixpath.join(d, "version.json")
                try:
                    data = json.loads(self.root.read_bytes(path, "text").decode("utf-8", "replace"))
                    if isinstance(data, dict) and "cuda" in data:
                        found = (data, path)
                except OSError as exc:
                    self._note(path, exc)
                except ValueError:
                    pass
                self._toolkit[d] = found
            if found:
                entry = found[0].get(key)
                if isinstance(entry, dict) and entry.get("version"):
                    return str(entry["version"]), found[1], None
                return None
        return None


# CUPTI's real files carry CUPTI's own year-based release, not the CUDA version: Debian's libcupti11.8 ships
# libcupti.so.11.8 -> libcupti.so.2022.3.0 (read 2026-12-08); a toolkit's libcupti.so.2022.2.1 linked by hand as
# the libcupti.so.11.2 that a CUDA 11.2 TensorFlow asks for (https://github.com/openxla/xprof/issues/443).
_YEAR_RELEASE = re.compile(r"20\d\d(\.\d+)*")

_CUDNN_DEFINE = re.compile(rb"#define\s+CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)")


def cudnn_header_version(text: bytes, shown: str) -> Optional[tuple[str, str]]:
    """(version, `shown`) from the CUDNN_MAJOR/MINOR/PATCHLEVEL defines of cudnn_version.h (or cudnn.h)."""
    found = {k.decode(): v.decode() for k, v in _CUDNN_DEFINE.findall(text[: 1 << 16])}
    if "MAJOR" not in found:
        return None
    version = ".".join(found.get(k, "0") for k in ("MAJOR", "MINOR", "PATCHLEVEL"))
    return version, shown
