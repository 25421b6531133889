"""The [[cudnn]] rows read from the wheels' binaries agree with their evidence (issue 15).

tests/fixtures/cudnn_survey.json is a trimmed copy of the survey behind those rows: per nvidia-cudnn-cu12 /
-cu13 wheel (downloaded from PyPI on 2026-12-07, sha256 verified) the SASS (sm_) and PTX (compute_)
architectures that scripts/fatbin_archs.py lists in libcudnn_cnn.so.9 and libcudnn_ops.so.9, the legacy API
TensorFlow calls. A row whose `source` names PyPI wheel pages must list exactly the compute capabilities
those wheels' kernels cover, so an edit that contradicts the evidence fails here. The same reading
reproduces the lists NVIDIA publishes for 9.5.x, 9.10.2 and 9.17.0 (the calibration test).
"""

import dataclasses
import json
import os
import re

import pytest
from packaging.version import Version

from tfcompat.matrix.entries import CC_NATIVE

SURVEY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "cudnn_survey.json")
# the device compute capabilities NVIDIA's cuDNN support matrix uses, oldest first
NVIDIA_CCS = ("5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")
_WHEEL_PAGE = re.compile(r"^https://pypi\.org/project/(nvidia-cudnn-cu1\d)/([0-9.]+)/#files$")
_ARCH = re.compile(r"^(sm|compute)_(\d+)(\d)([af]?)$")


def covers(arch: str, cc: str) -> bool:
    """Whether the kernels of one fatbin entry run natively on compute capability `cc`: sm_XY on X.Y ... X.9
    (NVIDIA's binary compatibility within a major), sm_XYa on X.Y only, sm_XYf on the family X.Y ... X.9.
    A compute_XY PTX entry also JIT-compiles for every newer GPU, but NVIDIA's tables list the architectures
    a release targets (that forward reach is `forward_compatible`), so PTX is counted within its major."""
    m = _ARCH.match(arch)
    assert m, arch
    major, minor, suffix = int(m.group(2)), int(m.group(3)), m.group(4)
    c_major, c_minor = (int(p) for p in cc.split("."))
    if suffix == "a":
        return (c_major, c_minor) == (major, minor)
    return c_major == major and c_minor >= minor


def covered(wheel: dict, libraries: list[str]) -> tuple[str, ...]:
    """NVIDIA's compute capabilities that every library of `wheel` has kernels for."""
    return tuple(cc for cc in NVIDIA_CCS if all(any(covers(a, cc) for a in wheel[lib]) for lib in libraries))


@pytest.fixture(scope="module")
def survey():
    with open(SURVEY, encoding="utf-8") as fh:
        data = json.load(fh)
    assert "scripts/fatbin_archs.py" in data["README"] and "2026-12-07" in data["README"]
    return data


def _wheel(survey, dist, version):
    return next((w for w in survey["wheels"] if (w["dist"], w["version"]) == (dist, version)), None)


def binary_rows(matrix):
    return [r for r in matrix.cudnn if r.source and all(_WHEEL_PAGE.match(s) for s in r.source)]


def evidence_problems(matrix, survey) -> list[str]:
    """Every disagreement between a binary-derived [[cudnn]] row and the survey of its `source` wheels."""
    problems = []
    for row in binary_rows(matrix):
        for src in row.source:
            dist, version = _WHEEL_PAGE.match(src).groups()
            wheel = _wheel(survey, dist, version)
            if wheel is None:
                problems.append(f"{row.label}: {dist} {version} is not in the survey")
                continue
            if dist != f"nvidia-cudnn-cu{row.cuda_major}" or not row.versions.contains(Version(version)):
                problems.append(f"{row.label}: {dist} {version} is not a release of this row")
            have = covered(wheel, survey["libraries"])
            if tuple(row.compute_capabilities) != have:
                problems.append(
                    f"{row.label}: lists {' '.join(row.compute_capabilities)}, {dist} {version}'s kernels cover "
                    f"{' '.join(have)}"
                )
            has_ptx = all(any(a.startswith("compute_") for a in wheel[lib]) for lib in survey["libraries"])
            if row.forward_compatible != has_ptx:
                problems.append(f"{row.label}: forward_compatible {row.forward_compatible}, {version} PTX {has_ptx}")
    return problems


def test_binary_rows_are_the_new_ones(matrix):
    labels = sorted((r.cuda_major, str(r.versions)) for r in binary_rows(matrix))
    assert labels == [
        (12, "<9.10,>=9.7.0"),
        (12, "<9.10.2,>=9.10.0"),
        (12, "<9.17,>=9.11.0"),
        (12, "<9.29,>=9.17.1"),
        (12, "<9.5,>=9.1.0"),
        (12, "==9.6.0.*"),
        (13, "<9.17,>=9.12.0"),
        (13, "<9.29,>=9.17.1"),
    ]


def test_binary_rows_list_what_their_wheels_cover(matrix, survey):
    assert evidence_problems(matrix, survey) == []


def test_the_reading_reproduces_nvidias_lists(matrix, survey):
    """Calibration: on the wheels of releases whose support matrix NVIDIA published (and the matrix holds
    from that page), the same reading gives NVIDIA's list. The PyPI 9.10.2 wheel is the CUDA 12.8 build."""
    checked = 0
    for dist, version, build_cuda in [
        ("nvidia-cudnn-cu12", "9.5.1.17", "12.6"),
        ("nvidia-cudnn-cu12", "9.10.2.21", "12.8"),
        ("nvidia-cudnn-cu12", "9.17.0.29", "12.8"),
        ("nvidia-cudnn-cu13", "9.17.0.29", "13.0"),
    ]:
        major = int(dist[-2:])
        (row,) = [
            r
            for r in matrix.cudnn
            if r.cuda_major == major
            and r.versions.contains(version)
            and r.cuda.contains(build_cuda)
            and (not r.cuda.contains("12.0") or version != "9.10.2.21")  # the 12.0-12.9 build is not on PyPI
        ]
        assert not binary_rows(dataclasses.replace(matrix, cudnn=(row,)))  # NVIDIA's page, not the binaries
        nvidia = tuple(cc for cc in NVIDIA_CCS if row.cc_status(cc) == CC_NATIVE)
        assert covered(_wheel(survey, dist, version), survey["libraries"]) == nvidia, (version, row.label)
        checked += 1
    assert checked == 4


@pytest.mark.parametrize(
    "arch, yes, no",
    [
        ("sm_61", ["6.1", "6.2"], ["6.0", "7.0"]),
        ("sm_90a", ["9.0"], ["9.1", "10.0"]),
        ("sm_100f", ["10.0", "10.3"], ["9.0", "12.0"]),
        ("sm_120f", ["12.0", "12.1"], ["10.0"]),
        ("compute_121", ["12.1"], ["12.0", "13.0"]),
    ],
)
def test_covers(arch, yes, no):
    assert all(covers(arch, cc) for cc in yes) and not any(covers(arch, cc) for cc in no)


def test_a_row_contradicting_its_evidence_fails(matrix, survey):
    # Volta put back into 9.11-9.16: the wheels carry no sm_70
    (r911,) = [r for r in binary_rows(matrix) if r.cuda_major == 12 and r.versions.contains("9.14.0.64")]
    bad = dataclasses.replace(r911, compute_capabilities=("7.0",) + r911.compute_capabilities)
    problems = evidence_problems(dataclasses.replace(matrix, cudnn=(bad,)), survey)
    assert len(problems) == len(r911.source) and all("lists 7.0 7.5" in p for p in problems)
    # Blackwell taken out of 9.7-9.9: the wheels carry sm_100 / sm_120
    (r97,) = [r for r in binary_rows(matrix) if r.versions.contains("9.8.0.87")]
    bad = dataclasses.replace(r97, compute_capabilities=r97.compute_capabilities[:-2])
    assert len(evidence_problems(dataclasses.replace(matrix, cudnn=(bad,)), survey)) == len(r97.source)


def test_a_source_wheel_missing_from_the_survey_fails(matrix, survey):
    (r97,) = [r for r in binary_rows(matrix) if r.versions.contains("9.8.0.87")]
    lost = {**survey, "wheels": [w for w in survey["wheels"] if w["version"] != "9.7.0.66"]}
    assert evidence_problems(dataclasses.replace(matrix, cudnn=(r97,)), lost) == [
        f"{r97.label}: nvidia-cudnn-cu12 9.7.0.66 is not in the survey"
    ]
    # and a survey that loses a library's architecture disagrees with the row
    trimmed = json.loads(json.dumps(survey))
    (w,) = [w for w in trimmed["wheels"] if (w["dist"], w["version"]) == ("nvidia-cudnn-cu12", "9.8.0.87")]
    w["libcudnn_ops.so.9"].remove("sm_100")
    (problem,) = evidence_problems(dataclasses.replace(matrix, cudnn=(r97,)), trimmed)
    assert problem.endswith("9.8.0.87's kernels cover 5.0 6.0 6.1 7.0 7.5 8.0 8.6 8.9 9.0 12.0")
    w["libcudnn_cnn.so.9"].remove("compute_120")  # no PTX: no forward compatibility either
    assert (
        "forward_compatible True, 9.8.0.87 PTX False"
        in evidence_problems(dataclasses.replace(matrix, cudnn=(r97,)), trimmed)[1]
    )
