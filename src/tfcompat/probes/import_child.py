"""Runs INSIDE the target interpreter, started by importprobe.py as
``python -X faulthandler -c <this text> FD[:ACK] [JSON]``.

It imports TensorFlow, then the installed companion packages with native code, lists the physical
devices, runs one tiny op on each GPU, and reports the shared objects mapped in the process.

Rules for this file: the standard library only until ``import tensorflow``; Python 3.6 syntax (old
TF environments run old interpreters); no import of tfcompat (the target does not have it). Every
event goes to the file descriptor FD as one line, written before the step it announces, so that
when a step crashes the process the parent still knows which one it was:

    start<TAB>STEP
    ok<TAB>STEP<TAB>{json detail}
    error<TAB>STEP<TAB>{"type": ..., "message": ..., "traceback": ...}
    skip<TAB>STEP<TAB>{"reason": ...}
    maps<TAB>[paths of the mapped shared objects]
    done

With ACK, a second descriptor, the child waits after each ``start`` (at most ACK_WAIT seconds) for one
byte from the parent, which sends it once it has read /proc/<pid>/maps: a step that crashes at once
still leaves the libraries mapped before it (a dead process's maps read empty).
"""

import json
import os
import sys
import time
import traceback

COMPANIONS = (
    "tensorflow_text",
    "tensorflow_io",
    "tensorflow_addons",
    "tensorflow_decision_forests",
    "tensorflow_recommenders_addons",
)
TRACEBACK_CHARS = 6000
ACK_WAIT = 2.0  # seconds to wait for the parent's read of our maps before a step runs anyway


def _setup():
    # `-c` puts '' (the working directory) first on sys.path: the job's own scripts are not part
    # of the environment, and a directory named tensorflow there must not shadow the real one.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except Exception:  # noqa: BLE001 - best effort; the parent sets it too
        pass
    import faulthandler
    import signal

    faulthandler.enable(all_threads=True)
    try:  # the parent sends SIGUSR1 before killing a hung child: the Python stack of the hang
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (AttributeError, ValueError, RuntimeError):
        pass


class Channel:
    def __init__(self, fd, ack=None):
        self.fd = fd
        self.ack = ack

    def wait_ack(self):
        """Wait for the parent's byte after a `start` (it has read our maps); give up on EOF or timeout."""
        if self.ack is None:
            return
        import select

        try:
            ready, _, _ = select.select([self.ack], [], [], ACK_WAIT)
            if not ready or not os.read(self.ack, 1):
                self.ack = None  # a silent or gone parent: do not wait at every step
        except (OSError, ValueError):
            self.ack = None

    def send(self, *fields):
        line = "\t".join(f if isinstance(f, str) else json.dumps(f) for f in fields) + "\n"
        data = line.encode("utf-8", "replace")
        while data:
            try:
                n = os.write(self.fd, data)
            except InterruptedError:
                continue
            except OSError:
                return  # the parent is gone: nothing to report to
            data = data[n:]


def _error(exc_info):
    etype, value = exc_info[0], exc_info[1]
    text = "".join(traceback.format_exception(*exc_info))
    return {
        "type": getattr(etype, "__name__", str(etype)),
        "message": str(value),
        "traceback": text[-TRACEBACK_CHARS:],
    }


def _step(channel, name, func):
    """Run one step; report ok/error. Returns (ok, value)."""
    channel.send("start", name)
    channel.wait_ack()
    t0 = time.time()
    try:
        detail, value = func()
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - SystemExit from an import is a failure to report too
        err = _error(sys.exc_info())
        err["ms"] = int((time.time() - t0) * 1000)
        try:  # where the job would print it: the parent classifies these lines too
            sys.stderr.write(err["traceback"])
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        channel.send("error", name, err)
        return False, None
    detail = dict(detail or {})
    detail["ms"] = int((time.time() - t0) * 1000)
    channel.send("ok", name, detail)
    return True, value


def mapped_libraries(maps_path="/proc/self/maps"):
    """Paths of the shared objects mapped in this process, in address order, once each."""
    seen = []
    try:
        with open(maps_path) as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                if path.endswith(" (deleted)"):
                    path = path[: -len(" (deleted)")]
                if not path.startswith("/"):
                    continue
                base = path.rsplit("/", 1)[-1]
                if (".so" in base) and path not in seen:
                    seen.append(path)
    except OSError:
        pass
    return seen


def run(channel, companions=COMPANIONS):
    def import_tf():
        import tensorflow as tf

        return {"version": str(getattr(tf, "__version__", "")), "file": str(getattr(tf, "__file__", "") or "")}, tf

    ok, tf = _step(channel, "import tensorflow", import_tf)

    import importlib
    import importlib.util

    for name in companions:
        try:
            present = importlib.util.find_spec(name) is not None
        except Exception:  # noqa: BLE001 - a broken parent package: try the import and see
            present = True
        if not present:
            continue
        step = "import " + name
        if not ok:
            channel.send("skip", step, {"reason": "tensorflow did not import"})
            continue

        def import_companion(name=name):
            module = importlib.import_module(name)
            return {
                "version": str(getattr(module, "__version__", "") or ""),
                "file": str(getattr(module, "__file__", "") or ""),
            }, module

        _step(channel, step, import_companion)

    if ok:

        def list_devices():
            config = getattr(tf, "config", None)
            if config is None or not hasattr(config, "list_physical_devices"):
                raise RuntimeError("this TensorFlow has no tf.config.list_physical_devices")
            devices = config.list_physical_devices()
            for d in devices:
                if d.device_type == "GPU":
                    try:  # a probe must not take all the GPU memory of a shared node
                        config.experimental.set_memory_growth(d, True)
                    except Exception:  # noqa: BLE001
                        pass
            out = [{"name": str(d.name), "type": str(d.device_type)} for d in devices]
            return {"devices": out}, devices

        _ok_dev, devices = _step(channel, "list physical devices", list_devices)
        gpus = [d for d in devices or () if d.device_type == "GPU"]
        for index, _gpu in enumerate(gpus):

            def tiny_op(index=index):
                with tf.device("/GPU:%d" % index):
                    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
                    m = tf.linalg.matmul(a, a)  # cuBLAS
                    image = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
                    kernel = tf.ones([2, 2, 1, 1])
                    c = tf.nn.conv2d(image, kernel, strides=1, padding="VALID")  # cuDNN
                    total = float(tf.reduce_sum(m).numpy()) + float(tf.reduce_sum(c).numpy())
                if abs(total - (54.0 + 270.0)) > 1e-3:
                    raise ArithmeticError("wrong result on /GPU:%d: %r (expected 324.0)" % (index, total))
                return {"device": str(getattr(c, "device", "")), "ops": "matmul, conv2d"}, None

            _step(channel, "op on /GPU:%d" % index, tiny_op)

    channel.send("maps", mapped_libraries())
    channel.send("done")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    _setup()
    fds = [int(x) for x in argv[0].split(":")]
    channel = Channel(fds[0], fds[1] if len(fds) > 1 else None)
    companions = tuple(json.loads(argv[1])) if len(argv) > 1 else COMPANIONS
    for fd in fds:
        try:
            os.set_inheritable(fd, False)  # TF's own subprocesses (ptxas) must not hold them open
        except (AttributeError, OSError):
            pass
    run(channel, companions)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    # Skip the interpreter's teardown: TensorFlow's threads and atexit handlers are not what we test.
    os._exit(0)


if __name__ == "__main__":
    main()
