"""The codec's fast path (issue #16, Deliver 4: the gate decodes 10,000 reports): generated decoders give the
same objects as the checked decoders, and every input they decline is decoded (or refused, with the same
message naming the field) by the checked ones."""

import copy
import glob
import json
import os
import random

import pytest

from tfcompat.model import Environment, Report, SnapshotError, codec, from_json_dict

EXAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "fleet", "*.json")))


def checked(cls, data, lenient):
    """What the checked decoder alone says: the value, or the error message."""
    try:
        return codec._decoder(cls)(data, lenient)
    except codec._Bad as exc:
        return "$" + "".join(reversed(exc.path)) + f": {exc.args[0]}"


def fast_or_fallback(cls, data, lenient):
    try:
        return from_json_dict(cls, data, lenient=lenient)
    except SnapshotError as exc:
        return str(exc)


def test_examples_decode_alike_and_fast():
    assert EXAMPLES
    for path in EXAMPLES:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        for cls, value, lenient in ((Report, data, True), (Environment, data["environment"], False)):
            got = codec._fast_decoder(cls)(value, lenient)  # the fast path itself accepts a real report
            assert got == checked(cls, value, lenient)
            assert type(got.environment.host.gpus if cls is Report else got.host.gpus) is tuple


def _leaves(value, path=()):
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        yield path, value
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
    else:
        yield path, value


def _mutated(data, rng):
    data = copy.deepcopy(data)
    paths = [p for p, _ in _leaves(data) if p]
    path = rng.choice(paths)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    choice = rng.randrange(4)
    if choice == 0 and isinstance(parent, dict):
        del parent[key]
    elif choice == 1 and isinstance(parent, dict):
        parent["not_a_field"] = 1
    else:
        parent[key] = rng.choice([None, 0, 1, -3, 2.5, True, False, "", "x", "error", [], {}, ["x"], [{}], {"a": 1}])
    return data


@pytest.mark.parametrize("lenient", [True, False])
def test_mutated_reports_give_the_same_value_or_the_same_error(lenient):
    """Hundreds of one-step mutations of a real report (a field dropped, an unknown field added, a value of
    another type): the fast path with its fallback says exactly what the checked decoder says."""
    with open(EXAMPLES[0], encoding="utf-8") as fh:
        base = json.load(fh)
    rng = random.Random(16)
    differ = 0
    for _ in range(400):
        data = _mutated(base, rng)
        cls, value = (Report, data) if lenient else (Environment, data.get("environment"))
        want, got = checked(cls, value, lenient), fast_or_fallback(cls, value, lenient)
        assert got == want, data
        differ += isinstance(want, str)
    assert 60 < differ < 400  # both kinds were exercised: refused and decoded mutations


def test_errors_still_name_the_field():
    with open(EXAMPLES[0], encoding="utf-8") as fh:
        data = json.load(fh)
    data["environment"]["host"]["gpus"][3]["mig_mode"] = "yes"
    with pytest.raises(SnapshotError, match=r"^\$\.environment\.host\.gpus\[3\]\.mig_mode: expected true/false"):
        from_json_dict(Report, data, lenient=True)
    env = data["environment"]
    env["host"]["gpus"][3]["mig_mode"] = False
    env["host"]["extra"] = 1
    with pytest.raises(SnapshotError, match=r"^\$\.host: unknown field 'extra'"):
        from_json_dict(Environment, env)
    assert from_json_dict(Report, data, lenient=True).environment.host.gpus[3].mig_mode is False


def test_a_report_named_twice_is_read_once(tmp_path):
    """Reading a directory takes one realpath for the directory (speed): a report reached again through a link in
    it, the directory named twice, or the file named on its own is still read once."""
    from tfcompat.fleet.read import read_inputs

    d = tmp_path / "r"
    d.mkdir()
    with open(EXAMPLES[0], encoding="utf-8") as fh:
        (d / "gpu-001.json").write_text(fh.read())
    os.symlink(d / "gpu-001.json", d / "link.json")
    os.symlink(d, tmp_path / "again")
    got = read_inputs([str(d), str(tmp_path / "again"), str(d / "gpu-001.json"), str(tmp_path / "again" / "*.json")])
    assert [x.source for x in got] == [str(d / "gpu-001.json")]
