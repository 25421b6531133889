import json

import pytest
from envs import make_env

from tfcompat.model import (
    Environment,
    Gpu,
    SnapshotError,
    environment_from_json,
    from_json_dict,
    to_json_dict,
)


def test_environment_round_trip_through_json_text():
    env = make_env(
        "2.21.0",
        driver="550.54.15",
        gpus=[Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-1", "00000000:18:00.0", "9.0", 81559, False, True)],
    )
    text = json.dumps(to_json_dict(env))
    back = environment_from_json(json.loads(text))
    assert back == env
    assert isinstance(back.target.packages, tuple) and back.host.gpus[0].compute_capability == "9.0"


def test_report_is_accepted_as_snapshot(matrix):
    from tfcompat.rules import evaluate

    env = make_env("2.15.1")
    report = json.loads(json.dumps(to_json_dict(evaluate(env, matrix))))
    assert environment_from_json(report) == env


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("host"), "$: missing field 'host'"),
        (lambda d: d["target"].update(packages="numpy"), "$.target.packages: expected a list"),
        (lambda d: d["host"].update(gpus=[{"index": "0"}]), "$.host.gpus[0].index: expected an integer"),
        (lambda d: d.update(snapshot_version=99), "snapshot_version: 99 is not supported"),
        (lambda d: d["target"].update(colour="red"), "$.target: unknown field 'colour'"),
    ],
)
def test_corrupt_snapshot_names_the_field(mutate, message):
    data = to_json_dict(make_env("2.21.0"))
    mutate(data)
    with pytest.raises(SnapshotError) as err:
        environment_from_json(data)
    assert message in str(err.value)


def test_from_json_rejects_non_object():
    with pytest.raises(SnapshotError):
        from_json_dict(Environment, [])


def test_error_report_is_not_a_snapshot():
    from tfcompat.engine import error_report

    with pytest.raises(SnapshotError, match="no environment"):
        environment_from_json(to_json_dict(error_report("--python /x: no such file")))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read snapshot: No such file or directory"),
        (b"\xff\xfe", "not a JSON snapshot (not UTF-8 text)"),
        (b'{"host": ', "line 1, column 10: not valid JSON"),
        (b'{"snapshot_version": 1, "host": 3}', "$.host: expected an object"),
    ],
)
def test_read_snapshot_errors_name_the_file(tmp_path, content, message):
    from tfcompat.model import read_snapshot

    path = tmp_path / "snap.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SnapshotError) as err:
        read_snapshot(str(path))
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_read_snapshot_round_trip(tmp_path):
    from tfcompat.model import read_snapshot

    env = make_env("2.21.0")
    (tmp_path / "s.json").write_text(json.dumps(to_json_dict(env)))
    assert read_snapshot(str(tmp_path / "s.json")) == env


def test_package_reexports_every_public_name():
    import tfcompat.model as model
    from tfcompat.model import codec, environment, host, probe, report, target

    for module in (codec, environment, host, probe, report, target):
        for name in dir(module):
            obj = getattr(module, name)
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__:
                assert getattr(model, name) is obj, name
                assert name in model.__all__, name
