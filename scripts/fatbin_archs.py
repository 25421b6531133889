#!/usr/bin/env python3
"""Print the GPU architectures CUDA objects carry, from the entry headers of their fatbins (``.nv_fatbin``).

Reads ELF objects (shared libraries, executables, .o files) and raw ``.fatbin`` files with
tfcompat.probes.native.fatbin: only the container and entry headers are read, payloads are skipped (a
compressed entry is reported by the architecture in its header, never decompressed), so multi-hundred-MB
libraries (libtensorflow_cc.so.2, libcudnn_engines_precompiled.so.9) take milliseconds once cached.
Nothing is loaded or executed; no cuobjdump needed.

    PYTHONPATH=src python scripts/fatbin_archs.py /path/to/libcudnn_engines_precompiled.so.9 ...
    PYTHONPATH=src python scripts/fatbin_archs.py --json FILE...

Text output, one block per file: the architectures (SASS ``sm_XY``, PTX ``compute_XY``, ``lto_XY``) with
their entry counts, the containers and compressed entries, the time taken, and any problem (a truncated
or damaged section is reported, never raised). Exit status 1 when a file could not be read at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from tfcompat.probes.native.fatbin import describe, read_fatbins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, one a line")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        start = time.perf_counter()
        scan = read_fatbins(os.path.abspath(path))
        took = time.perf_counter() - start
        unreadable = bool(scan.problems) and not scan.containers
        status = 1 if unreadable else status
        if args.json:
            record = {
                "file": path,
                "sass": list(scan.sass),
                "ptx": list(scan.ptx),
                "counts": dict(scan.counts),
                "containers": scan.containers,
                "entries": scan.entries,
                "compressed": scan.compressed,
                "section_bytes": scan.section_bytes,
                "seconds": round(took, 4),
                "problems": list(scan.problems),
            }
            print(json.dumps(record))
            continue
        print(path)
        print(f"  archs       {' '.join(scan.archs) or '-'}")
        print(f"  entries     {describe(scan)}")
        print(
            f"  containers  {scan.containers} in {scan.section_bytes} bytes of fatbin data; "
            f"{scan.compressed} of {scan.entries} entries compressed; read in {took * 1000:.1f} ms"
        )
        for problem in scan.problems:
            print(f"  problem     {problem}")
    return status


if __name__ == "__main__":
    sys.exit(main())
