"""Fan-out on Dask distributed (extra ``tfcompat[dask]``): one ``tfcompat check`` per distinct node.

The cluster is the operator's (``--scheduler ADDRESS``; ``--scheduler-file FILE`` as dask-jobqueue, dask-mpi and
``dask scheduler --scheduler-file`` write it; else ``$DASK_SCHEDULER_ADDRESS``) or a LocalCluster of worker
processes started here (``--local N``, for demos and tests). Each worker says which node it is on (the same
identity rule as ``check``: ``$NODE_NAME``, ``$SLURMD_NODENAME``, the host name); one worker per node runs
``python -m tfcompat check ... -f json`` as a subprocess from a task (the worker's thread pool, never its event
loop), bounded by ``--timeout``. Results go straight into the gate as parsed reports.

The wait for the tasks is bounded too (``--timeout`` plus a grace, GRACE_S): a task can wait forever where its
worker is gone (tasks are pinned to a worker address, and a worker that its nanny restarts comes back at another
address). A node without a result by then is undecided, with the reason, and its task is cancelled; so is a node
whose check did not finish, crashed or printed no report.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Callable, Optional

from tfcompat.errors import TfcompatError
from tfcompat.fleet.gate import Loaded
from tfcompat.fleet.nodeset import abbreviate, fold

FORBIDDEN = ("-f", "--format", "-o", "--output", "--output-dir")
GRACE_S = 30.0  # beyond --timeout: scheduling, the subprocess's start, the result's way back
CONNECT_S = 30.0  # to reach the scheduler
SCHEDULER_FILE_WAIT_S = 30.0  # for a scheduler file that is not there yet (dask-mpi started in the same job script)


class FleetError(TfcompatError):
    """The fleet cannot run: Dask missing, scheduler unreachable, no workers, bad check arguments."""


def identify() -> str:
    """Runs on a worker: the node this worker is on."""
    from tfcompat.scan import node_identity

    return node_identity(None)[0]


def check_on_node(args: Sequence[str], node: str, timeout: float) -> dict[str, object]:
    """Runs as a task on a worker: `tfcompat check` in a subprocess; returns what it printed."""
    argv = [sys.executable, "-m", "tfcompat", "check"] + [a.replace("{node}", node) for a in args]
    if "--node-name" not in args and "--from" not in args:
        argv += ["--node-name", node]
    argv += ["--format", "json"]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"node": node, "returncode": None, "stdout": "", "stderr": f"timed out after {timeout:g} s"}
    except OSError as exc:
        return {"node": node, "returncode": None, "stdout": "", "stderr": f"cannot start {argv[0]}: {exc}"}
    return {"node": node, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr[-2000:]}


def undecided(node: str, source: str, reason: str) -> Loaded:
    """What the gate gets for a node whose check gave no report: an error report (tfcompat could not decide)
    named by the node, so that the node is undecided with `reason`, not missing."""
    from tfcompat.engine import error_report
    from tfcompat.model import to_json_dict

    return Loaded(source, to_json_dict(error_report(reason)), None, node)


def _to_loaded(result: dict[str, object], source: str) -> Loaded:
    node = str(result.get("node"))
    stdout = str(result.get("stdout") or "")
    stderr = " ".join(str(result.get("stderr") or "").split())[-300:]
    code = result.get("returncode")
    if code not in (0, 1, 2):
        why = f"exit {code}" if code is not None else "did not finish"
        return undecided(node, source, f"tfcompat check {why}: {stderr or 'no output'}")
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return undecided(node, source, f"tfcompat check printed no JSON report (exit {code}): {stderr or 'no output'}")
    if not isinstance(data, dict):
        return undecided(node, source, "tfcompat check printed JSON that is not a report")
    return Loaded(source, data, None, node)


def read_scheduler_file(path: str, wait: Optional[float] = None) -> str:
    """The scheduler's address from a Dask scheduler file (its ``address``). Bounded, where distributed's
    ``Client(scheduler_file=...)`` waits for ever for a file that never comes: up to `wait` seconds
    (SCHEDULER_FILE_WAIT_S) for the file to appear, and about a second for one being written to be complete."""
    wait = SCHEDULER_FILE_WAIT_S if wait is None else wait
    start = time.monotonic()
    unreadable_since: Optional[float] = None
    while True:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            address = data.get("address") if isinstance(data, dict) else None
            if isinstance(address, str) and address:
                return address
            why = 'it names no scheduler (no "address" string)'
        except FileNotFoundError:
            if time.monotonic() - start >= wait:
                raise FleetError(f"--scheduler-file {path}: no such file (waited {wait:g} s for it)") from None
            time.sleep(0.2)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise FleetError(f"--scheduler-file {path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        except (ValueError, RecursionError):  # being written, or not a scheduler file
            why = "not a JSON scheduler file"
        now = time.monotonic()
        unreadable_since = now if unreadable_since is None else unreadable_since
        if now - unreadable_since >= 1.0:
            raise FleetError(f"--scheduler-file {path}: {why}")
        time.sleep(0.1)


def _workers_by_node(client) -> dict[str, list[str]]:
    """node name -> the addresses of its workers (asked of each worker; quick: no subprocess)."""
    nodes_of = client.run(identify)  # worker address -> node name
    workers_on: dict[str, list[str]] = {}
    for addr in sorted(nodes_of):
        workers_on.setdefault(str(nodes_of[addr]), []).append(addr)
    return workers_on


def run_fleet(
    check_args: Sequence[str],
    scheduler: Optional[str] = None,
    local: Optional[int] = None,
    timeout: float = 120.0,
    progress: Callable[[str], None] = lambda line: None,
    client=None,
    grace: float = GRACE_S,
    scheduler_file: Optional[str] = None,
    scheduler_from: str = "--scheduler",
) -> list[Loaded]:
    """One check per distinct node of the cluster; a Loaded per node: its report, or an error report saying why
    there is none (the node is then undecided). Returns within about `timeout` + `grace` seconds of submitting.

    The cluster: `client`, a LocalCluster of `local` workers, the scheduler at `scheduler` (`scheduler_from`
    says where that address came from, for the messages: ``--scheduler``, ``$DASK_SCHEDULER_ADDRESS``), or the
    one a `scheduler_file` names."""
    bad = [a for a in check_args if a.split("=", 1)[0] in FORBIDDEN]
    if bad:
        raise FleetError(
            f"check arguments {' '.join(bad)}: the fleet sets the format and collects the reports "
            "itself (use `fleet --format/--output/--output-dir`)"
        )
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise FleetError("tfcompat fleet needs Dask distributed: pip install 'tfcompat[dask]'") from None

    cluster = None
    own_client = client is None
    try:
        if client is None:
            if local is not None:
                progress(f"tfcompat fleet: starting a LocalCluster of {local} worker processes")
                cluster = LocalCluster(
                    n_workers=local, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
                )
                client = Client(cluster)
                client.wait_for_workers(local, timeout=120)
            else:
                if scheduler_file is not None:
                    scheduler = read_scheduler_file(scheduler_file)
                    scheduler_from = f"--scheduler-file {scheduler_file}"
                if not scheduler:
                    raise FleetError("no Dask scheduler named: --scheduler, --scheduler-file or --local")
                progress(f"tfcompat fleet: Dask scheduler {scheduler} (from {scheduler_from})")
                try:
                    client = Client(scheduler, timeout=CONNECT_S)
                except (OSError, TimeoutError) as exc:
                    raise FleetError(
                        f"cannot reach the Dask scheduler at {scheduler} (from {scheduler_from}): {exc}"
                    ) from None
        workers_on = _workers_by_node(client)
        if not workers_on:
            raise FleetError("the Dask cluster has no workers")
        n_workers = sum(len(addrs) for addrs in workers_on.values())
        progress(
            f"tfcompat fleet: {n_workers} worker{'s' if n_workers != 1 else ''} on "
            f"{len(workers_on)} node{'s' if len(workers_on) != 1 else ''}; one check per node"
        )
        run_id = uuid.uuid4().hex[:8]
        futures = {}
        finished: queue.Queue = queue.Queue()
        for node, addrs in sorted(workers_on.items()):
            fut = client.submit(
                check_on_node,
                list(check_args),
                node,
                timeout,
                workers=[addrs[0]],
                allow_other_workers=False,
                pure=False,
                key=f"tfcompat-check-{node}-{run_id}",
            )
            futures[fut] = (node, addrs[0])
        for fut in futures:
            fut.add_done_callback(finished.put)  # called from another thread: a Queue, not a list
        wait_s = timeout + grace
        deadline = time.monotonic() + wait_s
        pending = set(futures)
        out: list[Loaded] = []
        while pending:
            try:
                fut = finished.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if fut not in pending:
                continue
            pending.discard(fut)
            node, addr = futures[fut]
            source = f"dask {addr} ({node})"
            try:
                out.append(_to_loaded(fut.result(), source))
            except Exception as exc:  # noqa: BLE001 - a lost worker is an undecided node, not a crash
                out.append(undecided(node, source, f"the check task failed on the worker: {type(exc).__name__}: {exc}"))
            progress(f"tfcompat fleet: {len(futures) - len(pending)}/{len(futures)} nodes checked ({node})")
        if pending:
            late = sorted(pending, key=lambda f: futures[f][0])
            client.cancel(late)
            for fut in late:
                node, addr = futures[fut]
                out.append(
                    undecided(
                        node,
                        f"dask {addr} ({node})",
                        f"no result from the check task within {wait_s:g} s (--timeout {timeout:g} s "
                        f"+ {grace:g} s): its worker may be gone or restarted at another address; "
                        "task cancelled",
                    )
                )
            names = [futures[f][0] for f in late]
            progress(
                f"tfcompat fleet: {len(late)} node{'s' if len(late) != 1 else ''} without a result after "
                f"{wait_s:g} s, cancelled: {abbreviate(fold(names))}"
            )
        return sorted(out, key=lambda item: item.name_hint or "")
    finally:
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
