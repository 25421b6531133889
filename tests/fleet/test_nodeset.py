"""Folded node lists: expand and fold like Slurm's hostlist, and round-trip."""

import random

import pytest

from tfcompat.fleet.nodeset import MAX_NODES, NodeSetError, expand, fold


@pytest.mark.parametrize(
    "text, names",
    [
        ("gpu-001", ["gpu-001"]),
        ("gpu-[001-003]", ["gpu-001", "gpu-002", "gpu-003"]),
        ("gpu-[001-002,007]", ["gpu-001", "gpu-002", "gpu-007"]),
        ("gpu-[098-101]", ["gpu-098", "gpu-099", "gpu-100", "gpu-101"]),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("gpu-[1-2],login1", ["gpu-1", "gpu-2", "login1"]),
        ("a[1-2],b[01-02]", ["a1", "a2", "b01", "b02"]),
        ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
        ("gpu-[001-002].cluster.local", ["gpu-001.cluster.local", "gpu-002.cluster.local"]),
        ("x1,x1,x[1-2]", ["x1", "x2"]),
        (" gpu-[1-2] , cpu-3 ", ["gpu-1", "gpu-2", "cpu-3"]),
    ],
)
def test_expand(text, names):
    assert expand(text) == names


@pytest.mark.parametrize(
    "bad", ["gpu-[1-", "gpu-]1[", "gpu-[3-1]", "gpu-[a-b]", "gpu-[[1-2]]", "gpu-[1-2", "a b", f"n[0-{MAX_NODES + 5}]"]
)
def test_expand_rejects(bad):
    with pytest.raises(NodeSetError):
        expand(bad)


@pytest.mark.parametrize(
    "names, folded",
    [
        (["gpu-001", "gpu-002", "gpu-003", "gpu-007"], "gpu-[001-003,007]"),
        (["gpu-007", "gpu-019"], "gpu-[007,019]"),
        (["gpu-099", "gpu-100"], "gpu-[099-100]"),
        (["n9", "n10", "n11"], "n[9-11]"),
        (["n1", "n01"], "n1,n01"),
        (["gpu-001"], "gpu-001"),
        (["login", "gpu-2", "gpu-1"], "gpu-[1-2],login"),
        (["a-1.x", "a-2.x", "a-1.y"], "a-[1-2].x,a-1.y"),
        ([], ""),
        (["b1", "a1", "a2"], "a[1-2],b1"),
    ],
)
def test_fold(names, folded):
    assert fold(names) == folded


def test_round_trip_random():
    rng = random.Random(7)
    for _ in range(200):
        names = set()
        for _ in range(rng.randint(1, 40)):
            prefix = rng.choice(["gpu-", "cpu", "r1n", "node-", ""])
            n = rng.randint(0, 1200)
            width = rng.choice([0, 3, 4])
            names.add(f"{prefix}{str(n).zfill(width)}{rng.choice(['', '.ib'])}")
        folded = fold(names)
        assert sorted(expand(folded)) == sorted(names), folded


def test_fold_of_128_nodes():
    names = [f"gpu-{i:03d}" for i in range(1, 129)] + ["gpu-130"]
    assert fold(names) == "gpu-[001-128,130]"
    assert len(expand("gpu-[001-128,130]")) == 129
