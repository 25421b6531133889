"""`tfcompat fleet` on Dask: a LocalCluster of 4 worker processes, each emulating a node.

Each worker gets its own $NODE_NAME and replays that node's snapshot (`check --from snaps/{node}.json`) in a
subprocess; the results go through the gate. Runs in the default suite (a few seconds); skipped without Dask.
"""

import dataclasses
import datetime
import json
import os
import sys

import pytest

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from envs import make_env  # noqa: E402

from tfcompat.cli import main  # noqa: E402
from tfcompat.fleet.dask import FleetError, run_fleet  # noqa: E402
from tfcompat.fleet.gate import GateOptions, parse_expect, run_gate  # noqa: E402
from tfcompat.model import Gpu, to_json_dict  # noqa: E402

pytestmark = pytest.mark.dask

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _set_node_name(name):
    """Runs on a worker (pickled by value): the node this worker pretends to be."""
    os.environ["NODE_NAME"] = name
    return name


def snapshot(name, driver="560.35.03", age=datetime.timedelta(minutes=5)):
    env = make_env(driver=driver, gpus=[Gpu(0, "NVIDIA H100 80GB HBM3", f"GPU-{name}", None, "9.0")])
    env = dataclasses.replace(env, host=dataclasses.replace(env.host, node_name=name), created=(NOW - age).isoformat())
    return to_json_dict(env)


@pytest.fixture(scope="module")
def cluster():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with (
        distributed.LocalCluster(
            n_workers=4, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as lc,
        distributed.Client(lc) as client,
    ):
        client.wait_for_workers(4, timeout=60)
        for i, addr in enumerate(sorted(client.scheduler_info()["workers"]), 1):
            client.run(_set_node_name, f"emu-{i}", workers=[addr])
        yield lc, client
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    d = tmp_path_factory.mktemp("snaps")
    nodes = {
        "emu-1": snapshot("emu-1"),
        "emu-2": snapshot("emu-2"),
        "emu-3": snapshot("emu-3", driver="470.82.01"),  # an old driver
        "emu-4": snapshot("emu-4", age=datetime.timedelta(days=30)),
    }  # a stale snapshot
    for name, data in nodes.items():
        (d / f"{name}.json").write_text(json.dumps(data))
    return d


def test_fleet_cli_on_four_emulated_nodes(capsys, cluster, snaps, tmp_path):
    lc, _ = cluster
    keep = tmp_path / "reports"
    keep.mkdir()
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fleet",
                "--scheduler",
                lc.scheduler_address,
                "--expect",
                "emu-[1-5]",
                "--max-age",
                "1d",
                "--output-dir",
                str(keep),
                "-f",
                "json",
                "--",
                "--from",
                f"{snaps}/{{node}}.json",
            ]
        )
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert exc.value.code == 1 and data["status"] == "fail", err
    nodes = {n["node"]: n for n in data["nodes"]}
    assert set(nodes) == {"emu-1", "emu-2", "emu-3", "emu-4"}
    assert all(n["source"].startswith("dask tcp://") for n in nodes.values())
    assert nodes["emu-3"]["status"] == "fail" and nodes["emu-3"]["findings"][0]["rule"] == "TFC201"
    assert nodes["emu-4"]["status"] == "stale"
    assert data["completeness"]["missing"] == ["emu-5"]
    assert "4 workers on 4 nodes" in err and "4/4 nodes checked" in err
    assert sorted(p.name for p in keep.iterdir()) == [f"emu-{i}.json" for i in range(1, 5)]
    # the kept reports gate the same offline
    with pytest.raises(SystemExit) as exc:
        main(["gate", str(keep), "--expect", "emu-[1-5]", "--max-age", "1d"])
    out, _ = capsys.readouterr()
    assert exc.value.code == 1 and "Missing (1): emu-5" in out and "Failing (1): emu-3" in out


def test_run_fleet_api_and_a_node_whose_check_fails(cluster, snaps, tmp_path):
    _, client = cluster
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("emu-1", "emu-2", "emu-3"):
        (partial / f"{name}.json").write_text((snaps / "emu-1.json").read_text().replace('"emu-1"', f'"{name}"'))
    loaded = run_fleet(["--from", f"{partial}/{{node}}.json"], client=client)
    assert [item.name_hint for item in loaded] == ["emu-1", "emu-2", "emu-3", "emu-4"]
    fr = run_gate(loaded, GateOptions(expect=parse_expect(["emu-[1-4]"])))
    by = {n.node: n for n in fr.nodes}
    assert by["emu-4"].status == "error" and "cannot read snapshot" in by["emu-4"].errors[0]
    assert fr.exit_code == 2 and fr.completeness.undecided == ("emu-4",)
    with pytest.raises(FleetError, match="sets the format"):
        run_fleet(["-f", "text"], client=client)


def test_fleet_local_cluster_runs_one_check_per_node(capsys, monkeypatch, tmp_path):
    """--local 2: both workers are on this machine, so one node and one check."""
    monkeypatch.setenv("NODE_NAME", "solo-1")
    snap = tmp_path / "solo-1.json"
    snap.write_text(json.dumps(snapshot("solo-1")))
    with pytest.raises(SystemExit) as exc:
        main(["fleet", "--local", "2", "--expect", "solo-1", "--", "--from", str(tmp_path / "{node}.json")])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, out + err
    assert "2 workers on 1 node" in err and "Passing (1): solo-1" in out


def test_fleet_usage_errors(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    (tmp_path / "file").write_text("")
    for argv in (
        ["fleet"],
        ["fleet", "--local", "1", "--scheduler", "tcp://127.0.0.1:1"],
        ["fleet", "--scheduler-file", "s.json", "--scheduler", "tcp://127.0.0.1:1"],
        ["fleet", "--local", "0"],
        ["fleet", "--local", "1", "--output-dir", str(tmp_path / "file" / "sub")],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        _, err = capsys.readouterr()
        assert exc.value.code == 2 and err.startswith("tfcompat: error: ") and "Traceback" not in err


def _instant_check(args, node, timeout):
    """Runs on a worker (pickled by value) instead of a `tfcompat check` subprocess: a passing report at once."""
    snap = snapshot(node)
    report = {
        "schema_version": 1,
        "tool_version": "0.1.0",
        "status": "pass",
        "exit_code": 0,
        "fail_on": "error",
        "matrix": None,
        "findings": [],
        "skipped": [],
        "errors": [],
        "environment": snap,
    }
    return {"node": node, "returncode": 0, "stdout": json.dumps(report), "stderr": ""}


def test_a_task_that_never_runs_is_undecided_and_cancelled(cluster, monkeypatch):
    """A task pinned to a worker address that no longer exists (a nanny restarted the worker elsewhere) never
    runs: the fleet stops waiting after --timeout plus the grace, reports that node as undecided with the reason,
    cancels its task, and the other nodes are judged as usual."""
    import time

    import tfcompat.fleet.dask as fleet_dask

    _, client = cluster
    real = fleet_dask._workers_by_node(client)
    # Warm the emu-1 worker first (unpickle _instant_check, import envs and the model there): on a loaded 2-core
    # machine a cold first task took longer than the whole wait once in ~20 runs, and emu-1 came out undecided.
    client.submit(_instant_check, [], "emu-1", 0, workers=real["emu-1"], pure=False).result(timeout=60)
    monkeypatch.setattr(
        fleet_dask, "_workers_by_node", lambda c: {"emu-1": real["emu-1"], "ghost-1": ["tcp://127.0.0.1:9"]}
    )
    monkeypatch.setattr(fleet_dask, "check_on_node", _instant_check)
    lines = []
    # The ghost never runs, so the wait always lasts timeout + grace (5 s): a warm emu-1 answers in ~0.1 s.
    loaded = run_fleet(["--from", "x"], client=client, timeout=1.0, grace=4.0, progress=lines.append)
    assert [item.name_hint for item in loaded] == ["emu-1", "ghost-1"]
    fr = run_gate(loaded, GateOptions(expect=parse_expect(["emu-1,ghost-1"]), now=NOW, max_age_seconds=3600))
    by = {n.node: n for n in fr.nodes}
    assert by["emu-1"].status == "pass", by["emu-1"]
    assert by["ghost-1"].status == "error" and "no result from the check task within 5 s" in by["ghost-1"].errors[0]
    assert fr.exit_code == 2 and fr.completeness.undecided == ("ghost-1",) and fr.completeness.missing == ()
    assert any("without a result after 5 s, cancelled: ghost-1" in line for line in lines), lines

    def ghost_tasks():
        return client.run_on_scheduler(
            lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks if "tfcompat-check-ghost-1" in str(k)]
        )

    # client.cancel() sends its message on the client's batched stream, which run_on_scheduler() may overtake:
    # give the scheduler a moment to act on it (an uncancelled task would stay there for good).
    deadline = time.monotonic() + 30
    while ghost_tasks() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ghost_tasks() == []  # cancelled: nothing waits on the scheduler for the ghost


def test_a_check_that_crashes_is_undecided_with_its_reason():
    from tfcompat.fleet.dask import _to_loaded

    for result, why in (
        ({"node": "n1", "returncode": None, "stderr": "timed out after 9 s"}, "did not finish"),
        ({"node": "n1", "returncode": -11, "stderr": "Segmentation fault"}, "exit -11"),
        ({"node": "n1", "returncode": 1, "stdout": "oops"}, "printed no JSON report"),
    ):
        fr = run_gate([_to_loaded(result, "dask w (n1)")], GateOptions(now=NOW))
        (v,) = fr.nodes
        assert v.node == "n1" and v.status == "error" and why in v.errors[0] and fr.exit_code == 2


def test_fleet_scheduler_file_quiet_and_a_new_output_dir(capsys, cluster, snaps, tmp_path):
    """--scheduler-file as dask-jobqueue/dask-mpi write it (Client.write_scheduler_file, the same JSON);
    --output-dir is created with its parents; -q: no progress lines."""
    lc, _ = cluster
    sched = tmp_path / "scheduler.json"
    with distributed.Client(lc.scheduler_address, timeout=60) as writer:
        writer.write_scheduler_file(str(sched))
    assert json.loads(sched.read_text())["address"] == lc.scheduler_address
    keep = tmp_path / "new" / "reports"
    code, out, err = _fleet(
        capsys,
        ["--scheduler-file", str(sched), "-q", "--output-dir", str(keep), "--expect", "emu-[1-4]"],
        ["--from", f"{snaps}/{{node}}.json"],
    )
    assert code == 1 and "Failing (1): emu-3" in out, out + err
    assert "tfcompat fleet" not in err
    assert sorted(p.name for p in keep.iterdir()) == [f"emu-{i}.json" for i in range(1, 5)]


def _fleet(capsys, options, check_args):
    with pytest.raises(SystemExit) as exc:
        main(["fleet", *options, "--", *check_args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_fleet_honours_dask_scheduler_address(capsys, cluster, monkeypatch):
    import tfcompat.fleet.dask as fleet_dask

    lc, _ = cluster
    monkeypatch.setattr(fleet_dask, "check_on_node", _instant_check)  # pickled by value: no subprocess
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", lc.scheduler_address)
    code, out, err = _fleet(capsys, ["--expect", "emu-[1-4]", "--max-age", "1h"], ["--from", "x"])
    assert code == 0 and "Passing (4): emu-[1-4]" in out, out + err
    assert f"Dask scheduler {lc.scheduler_address} (from $DASK_SCHEDULER_ADDRESS)" in err
    # --scheduler wins over the variable; an unreachable one says where its address came from
    monkeypatch.setattr(fleet_dask, "CONNECT_S", 1.0)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    code, out, err = _fleet(capsys, ["--scheduler", lc.scheduler_address, "-q"], ["--from", "x"])
    assert code == 0 and err == "", err
    code, out, err = _fleet(capsys, ["-f", "json"], ["--from", "x"])
    assert code == 2 and json.loads(out)["status"] == "error"
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1 (from $DASK_SCHEDULER_ADDRESS)" in err


def test_scheduler_file_waits_bounded(tmp_path):
    import threading

    from tfcompat.fleet.dask import read_scheduler_file

    path = tmp_path / "scheduler.json"
    with pytest.raises(FleetError, match="no such file"):
        read_scheduler_file(str(path), wait=0.3)
    path.write_text("{not json")
    with pytest.raises(FleetError, match="not a JSON scheduler file"):
        read_scheduler_file(str(path), wait=0.3)
    path.write_text('{"type": "Scheduler"}')
    with pytest.raises(FleetError, match="names no scheduler"):
        read_scheduler_file(str(path), wait=0.3)
    path.unlink()
    later = threading.Timer(0.5, lambda: path.write_text('{"address": "tcp://10.0.0.1:8786"}'))
    later.start()
    try:
        assert read_scheduler_file(str(path), wait=30) == "tcp://10.0.0.1:8786"
    finally:
        later.cancel()
