"""Run one probe in a forked child while the scan goes on, and take its result later.

Why: checking 24 plugins symbol by symbol (~45 ms) is the largest probe of a tensorflow-text venv, and it needs
nothing the next probes compute; on a node with two CPUs it can run while the libraries, driver and resource
probes do. The child is a fork of this process: it runs our own code on our own data and sends the result back
pickled through a pipe (nothing of the scanned environment is unpickled: the child is tfcompat). Anything
unusual (no fork, one CPU, the child failing, dying or sending garbage) falls back to running the probe here, so
the result is always the one a serial scan gives. ``TFCOMPAT_SERIAL=1`` turns it off.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")

_MAX_RESULT = 256 << 20  # a result larger than this is not read: the probe runs here instead


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Pending(Generic[T]):
    """`fn(*args, **kwargs)`, started in a forked child when that can help; ``result()`` returns what `fn` returns."""

    def __init__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._pid: Optional[int] = None
        self._fd: Optional[int] = None
        if os.environ.get("TFCOMPAT_SERIAL", "").strip() not in ("", "0") or _cpus() < 2 or not hasattr(os, "fork"):
            return
        try:
            read_fd, write_fd = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return
        if pid == 0:  # the child: compute, send, and leave without running the parent's exit handlers
            status = 0
            try:
                os.close(read_fd)
                data = pickle.dumps(fn(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(data)
                while view:
                    view = view[os.write(write_fd, view) :]
            except BaseException:  # noqa: BLE001 - any failure: the parent runs the probe itself
                status = 1
            finally:
                os._exit(status)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    def result(self) -> T:
        if self._pid is None or self._fd is None:
            return self._fn(*self._args, **self._kwargs)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > _MAX_RESULT:
                    chunks = []
                    break
                chunks.append(chunk)
        except OSError:
            chunks = []
        finally:
            os.close(self._fd)
            self._fd = None
        try:
            _, status = os.waitpid(self._pid, 0)
        except ChildProcessError:  # pragma: no cover - reaped elsewhere
            status = 1
        self._pid = None
        if status != 0 or not chunks:
            return self._fn(*self._args, **self._kwargs)
        try:
            value: T = pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 - a damaged answer: compute it here
            return self._fn(*self._args, **self._kwargs)
        return value
