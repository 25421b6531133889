"""Compute capabilities: the one parser of CC spellings and the one SASS/PTX coverage rule.

Spellings: "8.6" (NVML, the matrix), "86" / "120" (nvcc's digits), "sm_86" (SASS in a build list),
"compute_90" (PTX plus SASS in TF's build rules), with an optional arch suffix ("sm_90a").

Coverage (NVIDIA's binary-compatibility rule as TF's .bazelrc states it, tensorflow/tensorflow:.bazelrc):
SASS for sm_XY runs on compute capability X.Z for Z >= Y (same major only); PTX for compute_XY is
JIT-compiled by the driver for any GPU at or above X.Y. In TF's build rules every entry produces SASS
and `compute_XY` adds PTX (third_party/gpus/cuda_configure.bzl, _compute_cuda_extra_copts).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Optional

CC = tuple[int, int]

# sm_90, sm_90a, compute_120: the last digit is the minor, the rest the major.
_ARCH = re.compile(r"^(sm|compute)_(\d+)(\d)([a-z]?)$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d)$")
_DIGITS = re.compile(r"^(\d{1,2})(\d)$")


def parse_arch(entry: str) -> Optional[tuple[str, int, int]]:
    """'sm_86' -> ('sm', 8, 6); 'compute_90' -> ('compute', 9, 0); 'sm_120' / 'sm_120a' -> ('sm', 12, 0);
    anything else -> None."""
    m = _ARCH.match(entry.strip())
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def parse_cc(text: Optional[str]) -> Optional[CC]:
    """Any spelling of a compute capability -> (major, minor): "8.6", "86", "120", "sm_86", "sm_90a",
    "compute_90"; None when it is none of them."""
    if not text:
        return None
    t = text.strip()
    arch = parse_arch(t)
    if arch is not None:
        return arch[1], arch[2]
    m = _DOTTED.match(t) or _DIGITS.match(t)
    return (int(m.group(1)), int(m.group(2))) if m else None


def cc_tuple(cc: str) -> CC:
    """Like parse_cc, but a malformed spelling is a ValueError (for facts already validated)."""
    parsed = parse_cc(cc)
    if parsed is None:
        raise ValueError(f"{cc!r} is not a compute capability")
    return parsed


def cc_text(cc: str) -> str:
    """Any spelling -> "X.Y"."""
    major, minor = cc_tuple(cc)
    return f"{major}.{minor}"


def is_build_cc(entry: str) -> bool:
    """A build-list entry as the matrix states it: sm_XY or compute_XY, digits only."""
    m = _ARCH.match(entry)
    return m is not None and not m.group(4) and entry == entry.strip()


def is_cc(text: str) -> bool:
    """A compute capability as the matrix states it: "X.Y"."""
    return bool(_DOTTED.match(text))


@dataclasses.dataclass(frozen=True)
class Coverage:
    """How a GPU runs a build: kind "native" (SASS), "ptx" (JIT from PTX) or "none".

    `via` names the covering architecture the way the driver rules print it ("sm_89" for SASS,
    "compute_90" for PTX); `entry` is the build-list entry as written ("compute_90" also gives SASS)."""

    kind: str
    via: Optional[str]
    entry: Optional[str] = dataclasses.field(default=None, compare=False)


def _best(entries: list[tuple[str, CC]]) -> tuple[str, CC]:
    # the highest CC; on a tie the entry listed first (max() keeps the first maximum)
    return max(entries, key=lambda e: e[1])


def coverage(cc: CC, build: Sequence[str]) -> Coverage:
    """How a GPU of compute capability `cc` runs a build with these `cuda_compute_capabilities`: SASS of the
    same major at or below its minor, else PTX at or below it, else not at all. Entries that are not
    sm_XY / compute_XY are ignored."""
    archs = [
        (e, kind, (major, minor)) for e in build for kind, major, minor in (parse_arch(e) or ("", -1, -1),) if kind
    ]
    sass = [(e, c) for e, _, c in archs if c[0] == cc[0] and c[1] <= cc[1]]
    if sass:
        entry, best = _best(sass)
        return Coverage("native", f"sm_{best[0]}{best[1]}", entry)
    ptx = [(e, c) for e, kind, c in archs if kind == "compute" and c <= cc]
    if ptx:
        entry, best = _best(ptx)
        return Coverage("ptx", f"compute_{best[0]}{best[1]}", entry)
    return Coverage("none", None, None)


__all__ = ["CC", "Coverage", "cc_text", "cc_tuple", "coverage", "is_build_cc", "is_cc", "parse_arch", "parse_cc"]
