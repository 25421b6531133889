"""The [[cudnn]] rows read from the wheels' binaries agree with their evidence (issue 15).

tests/fixtures/cudnn_survey.json is a trimmed copy of the survey behind those rows: per nvidia-cudnn-cu11 /
-cu12 / -cu13 wheel (downloaded from PyPI on 2026-12-07 and 2026-12-08, sha256 verified) the SASS (sm_) and PTX
(compute_) architectures that scripts/fatbin_archs.py / cudnn_archs.py list in libcudnn_cnn.so.9 and
libcudnn_ops.so.9, the legacy API TensorFlow calls (cuDNN 8: libcudnn_{cnn,ops}_{infer,train}.so.8). A row whose `source` names PyPI wheel pages must list exactly the compute capabilities
those wheels' kernels cover, so an edit that contradicts the evidence fails here. The same reading
reproduces the lists NVIDIA publishes for 9.0.0, 9.5.x, 9.10.2 and 9.17.0 (the calibration test), for CUDA 11
builds as well as CUDA 12 and 13 ones.
"""

import dataclasses
import json
import os
import re

import pytest
from packaging.version import Version

from tfcompat.matrix.entries import CC_DROPPED, CC_NATIVE, CC_NEWER

SURVEY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "cudnn_survey.json")
# the device compute capabilities NVIDIA's cuDNN support matrices use, oldest first (3.5: Kepler, to cuDNN 8.7)
NVIDIA_CCS = ("3.5", "5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")
MAXWELL_TO_HOPPER = ("5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0")
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


def libraries(survey, wheel) -> list[str]:
    """The legacy-API libraries of `wheel`: cuDNN 8 splits them into infer and train halves."""
    return survey["libraries_8"] if Version(wheel["version"]).major == 8 else survey["libraries"]


def forward_compatible(survey, wheel, cuda_major: int) -> bool:
    """NVIDIA: hardware forward compatibility "was added in cuDNN 9.0.0, and only for builds which use CUDA
    toolkit 12 or higher": PTX in every library of a cuDNN >= 9 wheel for CUDA >= 12."""
    has_ptx = all(any(a.startswith("compute_") for a in wheel[lib]) for lib in libraries(survey, wheel))
    return has_ptx and cuda_major >= 12 and Version(wheel["version"]).major >= 9


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
            have = covered(wheel, libraries(survey, wheel))
            if tuple(row.compute_capabilities) != have:
                problems.append(
                    f"{row.label}: lists {' '.join(row.compute_capabilities)}, {dist} {version}'s kernels cover "
                    f"{' '.join(have)}"
                )
            fc = forward_compatible(survey, wheel, row.cuda_major)
            if row.forward_compatible != fc:
                problems.append(f"{row.label}: forward_compatible {row.forward_compatible}, {dist} {version}: {fc}")
    return problems


def test_binary_rows_are_the_new_ones(matrix):
    labels = sorted((r.cuda_major, str(r.versions)) for r in binary_rows(matrix))
    assert labels == [
        (11, "<8.6,>=8.5.0"),
        (11, "<8.8,>=8.6.0"),
        (11, "<8.9,>=8.8.0"),
        (11, "<9.10.2,>=9.7.0"),
        (11, "<9.5,>=9.1.0"),
        (11, "==9.6.0.*"),
        (12, "<8.9,>=8.8.0"),
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
    from that page), the same reading gives NVIDIA's list. The PyPI 9.10.2 cu12 wheel is the CUDA 12.8 build;
    the cu11 wheels are the CUDA 11.8 builds (`build_cuda` picks the row where NVIDIA's page has several)."""
    checked = 0
    for dist, version, build_cuda in [
        ("nvidia-cudnn-cu11", "9.0.0.312", "11.8"),
        ("nvidia-cudnn-cu11", "9.5.1.17", "11.8"),
        ("nvidia-cudnn-cu11", "9.10.2.21", "11.8"),
        ("nvidia-cudnn-cu12", "9.0.0.312", "12.3"),
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
        wheel = _wheel(survey, dist, version)
        assert covered(wheel, libraries(survey, wheel)) == nvidia, (dist, version, row.label)
        checked += 1
    assert checked == 8


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
    (r97,) = [r for r in binary_rows(matrix) if r.cuda_major == 12 and r.versions.contains("9.8.0.87")]
    bad = dataclasses.replace(r97, compute_capabilities=r97.compute_capabilities[:-2])
    assert len(evidence_problems(dataclasses.replace(matrix, cudnn=(bad,)), survey)) == len(r97.source)


def test_a_source_wheel_missing_from_the_survey_fails(matrix, survey):
    (r97,) = [r for r in binary_rows(matrix) if r.cuda_major == 12 and r.versions.contains("9.8.0.87")]
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
        "forward_compatible True, nvidia-cudnn-cu12 9.8.0.87: False"
        in evidence_problems(dataclasses.replace(matrix, cudnn=(r97,)), trimmed)[1]
    )


# every nvidia-cudnn-cu11 9.x release PyPI listed on 2026-12-08 (https://pypi.org/pypi/nvidia-cudnn-cu11/json)
CU11_9X = [
    "9.0.0.312",
    "9.1.0.70",
    "9.1.1.17",
    "9.2.0.82",
    "9.2.1.18",
    "9.3.0.75",
    "9.4.0.58",
    "9.5.0.50",
    "9.5.1.17",
    "9.6.0.74",
    "9.7.0.66",
    "9.7.1.26",
    "9.8.0.87",
    "9.9.0.52",
    "9.10.0.56",
    "9.10.1.4",
    "9.10.2.21",
]


def test_every_cuda11_cudnn9_release_is_read_and_has_a_row(matrix, survey):
    for version in CU11_9X:
        assert _wheel(survey, "nvidia-cudnn-cu11", version), version
        s = matrix.cudnn_support(version, 11)
        assert s.basis == "exact" and all(r.cuda_major == 11 for r in s.entries), version


def test_the_cuda11_build_lacks_blackwell_from_97(matrix, survey):
    """The same cuDNN release differs by build: up to 9.6 the cu11 and cu12 wheels carry the same architectures;
    from 9.7 the cu12 wheels (CUDA 12.8) add sm_100 / sm_120, the cu11 ones (CUDA 11.8) stop at sm_90 and from
    9.8.0 carry no PTX at all. The rows say so: Blackwell native for CUDA 12, newer than the list for CUDA 11."""
    compared = 0
    for version in CU11_9X:
        cu11, cu12 = _wheel(survey, "nvidia-cudnn-cu11", version), _wheel(survey, "nvidia-cudnn-cu12", version)
        if cu12 is None:
            continue
        compared += 1
        same = all(set(cu11[lib]) == set(cu12[lib]) for lib in survey["libraries"])
        assert same == (Version(version) < Version("9.7")), version
        if Version(version) >= Version("9.7"):
            assert covered(cu11, survey["libraries"]) == MAXWELL_TO_HOPPER  # 5.0 ... 9.0
            assert covered(cu12, survey["libraries"]) == MAXWELL_TO_HOPPER + ("10.0", "12.0")
            ptx = any(a.startswith("compute_") for lib in survey["libraries"] for a in cu11[lib])
            assert ptx == (Version(version) < Version("9.8")), version
            if Version(version) < Version("9.10.2"):  # 9.10.2: NVIDIA's page, two CUDA 12 builds
                (r11,) = matrix.cudnn_support(version, 11).entries
                (r12,) = matrix.cudnn_support(version, 12).entries
                assert r11.cc_status("12.0") == CC_NEWER and not r11.forward_compatible
                assert r12.cc_status("12.0") == CC_NATIVE
    assert compared >= 15


def test_forward_compatibility_is_not_read_into_a_cuda11_or_cudnn8_row(matrix, survey):
    # the cu11 9.1-9.4 wheels and the cu12 8.8 wheels carry compute_90 PTX, but NVIDIA's hardware forward
    # compatibility needs cuDNN >= 9.0 built with CUDA >= 12
    for version, major in (("9.3.0.75", 11), ("8.8.1.3", 12)):
        (row,) = [r for r in binary_rows(matrix) if r.cuda_major == major and r.versions.contains(version)]
        assert not row.forward_compatible and evidence_problems(dataclasses.replace(matrix, cudnn=(row,)), survey) == []
        bad = dataclasses.replace(row, forward_compatible=True)
        problems = evidence_problems(dataclasses.replace(matrix, cudnn=(bad,)), survey)
        assert len(problems) == len(row.source) and all("forward_compatible True" in p for p in problems)


def test_a_cudnn8_row_is_held_to_its_train_libraries_too(matrix, survey):
    (r88,) = [r for r in binary_rows(matrix) if r.cuda_major == 12 and r.versions.contains("8.8.0.121")]
    assert r88.compute_capabilities == MAXWELL_TO_HOPPER
    trimmed = json.loads(json.dumps(survey))
    (w,) = [w for w in trimmed["wheels"] if (w["dist"], w["version"]) == ("nvidia-cudnn-cu12", "8.8.1.3")]
    w["libcudnn_cnn_train.so.8"].remove("sm_90")  # compute_90 still covers 9.0 within its major
    w["libcudnn_cnn_train.so.8"].remove("compute_90")
    (problem,) = evidence_problems(dataclasses.replace(matrix, cudnn=(r88,)), trimmed)
    assert problem.endswith("8.8.1.3's kernels cover 5.0 6.0 6.1 7.0 7.5 8.0 8.6 8.9")


def test_cuda11_cudnn8_rows_kepler_to_87_hopper_from_86(matrix, survey):
    """The cu11 cuDNN 8 wheels: sm_35 (Kepler) through 8.7 and gone from 8.8.0; sm_90 (Hopper) from 8.6.
    8.7.0.84, the cuDNN tensorflow[and-cuda] 2.14 pins, is described by a row of its own now."""
    status = {
        v: matrix.cudnn_support(v, 11).entries for v in ("8.5.0.96", "8.6.0.163", "8.7.0.84", "8.8.0.121", "8.8.1.3")
    }
    assert all(len(rows) == 1 for rows in status.values())
    assert [status[v][0].cc_status("3.7") for v in ("8.5.0.96", "8.7.0.84", "8.8.1.3")] == [
        CC_NATIVE,
        CC_NATIVE,
        CC_DROPPED,
    ]
    assert [status[v][0].cc_status("9.0") for v in ("8.5.0.96", "8.6.0.163", "8.8.0.121")] == [
        CC_NEWER,
        CC_NATIVE,
        CC_NATIVE,
    ]
    assert matrix.cudnn_support("8.7.0.84", 11).basis == "exact"
    for version in ("8.8.0.121", "8.8.1.3"):  # the CUDA 11 and 12 builds of 8.8 carry the same kernels
        cu11, cu12 = _wheel(survey, "nvidia-cudnn-cu11", version), _wheel(survey, "nvidia-cudnn-cu12", version)
        assert all(cu11[lib] == cu12[lib] for lib in survey["libraries_8"])
