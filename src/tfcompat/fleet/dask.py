"""Fan-out on Dask distributed (extra ``tfcompat[dask]``): one ``tfcompat check`` per distinct node.

The cluster is the operator's (``--scheduler ADDRESS``) or a LocalCluster of worker processes started here
(``--local N``, for demos and tests). Each worker says which node it is on (the same identity rule as
``check``: ``$NODE_NAME``, ``$SLURMD_NODENAME``, the host name); one worker per node runs
``python -m tfcompat check ... -f json`` as a subprocess from a task (the worker's thread pool, never its event
loop), bounded by ``--timeout``. Results go straight into the gate as parsed reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Callable, Dict, List, Optional, Sequence

from tfcompat.fleet.gate import Loaded

FORBIDDEN = ("-f", "--format", "-o", "--output", "--output-dir")


class FleetError(ValueError):
    """The fleet cannot run: Dask missing, scheduler unreachable, no workers, bad check arguments."""


def identify() -> str:
    """Runs on a worker: the node this worker is on."""
    from tfcompat.scan import node_identity

    return node_identity(None)[0]


def check_on_node(args: Sequence[str], node: str, timeout: float) -> Dict[str, object]:
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


def _to_loaded(result: Dict[str, object], source: str) -> Loaded:
    node = str(result.get("node"))
    stdout = str(result.get("stdout") or "")
    stderr = " ".join(str(result.get("stderr") or "").split())[-300:]
    code = result.get("returncode")
    if code not in (0, 1, 2):
        why = f"exit {code}" if code is not None else "did not finish"
        return Loaded(source, None, f"tfcompat check {why}: {stderr or 'no output'}", node)
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return Loaded(source, None, f"tfcompat check printed no JSON report (exit {code}): {stderr or 'no output'}",
                      node)
    if not isinstance(data, dict):
        return Loaded(source, None, "tfcompat check printed JSON that is not a report", node)
    return Loaded(source, data, None, node)


def run_fleet(check_args: Sequence[str], scheduler: Optional[str] = None, local: Optional[int] = None,
              timeout: float = 120.0, progress: Callable[[str], None] = lambda line: None,
              client=None) -> List[Loaded]:
    """One check per distinct node of the cluster; a Loaded per node (the report, or why there is none)."""
    bad = [a for a in check_args if a.split("=", 1)[0] in FORBIDDEN]
    if bad:
        raise FleetError(f"check arguments {' '.join(bad)}: the fleet sets the format and collects the reports "
                         "itself (use `fleet --format/--output/--output-dir`)")
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise FleetError("tfcompat fleet needs Dask distributed: pip install 'tfcompat[dask]'") from None

    cluster = None
    own_client = client is None
    try:
        if client is None:
            if local is not None:
                progress(f"tfcompat fleet: starting a LocalCluster of {local} worker processes")
                cluster = LocalCluster(n_workers=local, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
                client = Client(cluster)
                client.wait_for_workers(local, timeout=120)
            else:
                try:
                    client = Client(scheduler, timeout=30)
                except (OSError, TimeoutError) as exc:
                    raise FleetError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        nodes_of = client.run(identify)  # worker address -> node name (quick: no subprocess here)
        if not nodes_of:
            raise FleetError("the Dask cluster has no workers")
        workers_on: Dict[str, List[str]] = {}
        for addr in sorted(nodes_of):
            workers_on.setdefault(str(nodes_of[addr]), []).append(addr)
        progress(f"tfcompat fleet: {len(nodes_of)} worker{'s' if len(nodes_of) != 1 else ''} on "
                 f"{len(workers_on)} node{'s' if len(workers_on) != 1 else ''}; one check per node")
        run_id = uuid.uuid4().hex[:8]
        futures = {}
        for node, addrs in sorted(workers_on.items()):
            fut = client.submit(check_on_node, list(check_args), node, timeout, workers=[addrs[0]],
                                allow_other_workers=False, pure=False, key=f"tfcompat-check-{node}-{run_id}")
            futures[fut] = (node, addrs[0])
        out: List[Loaded] = []
        done = 0
        for fut in as_completed(list(futures)):
            node, addr = futures[fut]
            source = f"dask {addr} ({node})"
            try:
                out.append(_to_loaded(fut.result(), source))
            except Exception as exc:  # noqa: BLE001 - a lost worker is an unreadable node, not a crash
                out.append(Loaded(source, None, f"the check task failed on the worker: {type(exc).__name__}: {exc}",
                                  node))
            done += 1
            progress(f"tfcompat fleet: {done}/{len(futures)} nodes checked ({node})")
        return sorted(out, key=lambda item: item.name_hint or "")
    finally:
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
