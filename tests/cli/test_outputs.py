"""outputs.write_atomic: a regular file is replaced atomically; a device or FIFO is written into, never
replaced (`-o /dev/null` once turned /dev/null into a regular file when tfcompat ran as root)."""

import os
import stat
import threading

from tfcompat.outputs import write_atomic


def test_regular_file_is_replaced_by_rename(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    inode = target.stat().st_ino
    write_atomic(str(target), "new\n")
    assert target.read_text() == "new\n" and target.stat().st_ino != inode  # a new file, renamed over the old
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left


def test_fifo_is_written_into_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_atomic(str(fifo), "one line\n")
    reader.join(10)
    assert got == ["one line\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # not replaced by a regular file
