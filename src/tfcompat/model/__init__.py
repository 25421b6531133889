"""The facts tfcompat collects and the verdicts it gives, as frozen dataclasses.

Probes build an :class:`Environment` (``host``: the node's facts; ``target``: the Python environment's;
``probe``: the import probe's); rules read it; the engine returns a :class:`Report` (``report``).
Everything round-trips through JSON (``codec``) so that a snapshot taken on a GPU node can be judged
anywhere with ``tfcompat check --from``.
"""

from tfcompat.model.codec import (
    SnapshotError,
    environment_from_json,
    from_json_dict,
    read_snapshot,
    to_json_dict,
)
from tfcompat.model.environment import SNAPSHOT_VERSION, Environment, Scope, Unknown
from tfcompat.model.host import (
    AmdGpu,
    Driver,
    DriverLibrary,
    Gpu,
    GpuProcess,
    Host,
    Platform,
    Resources,
    Rocm,
)
from tfcompat.model.probe import (
    LoadedLibrary,
    LogLine,
    ProbeDevice,
    ProbeResult,
    ProbeStep,
)
from tfcompat.model.report import (
    REPORT_SCHEMA_VERSION,
    Evidence,
    Finding,
    MatrixInfo,
    Report,
    Severity,
    Skip,
)
from tfcompat.model.target import (
    CondaPackage,
    CustomOp,
    LibraryCopy,
    LibraryResolution,
    NativeLibraries,
    Package,
    Provenance,
    PythonInfo,
    RocmObject,
    Target,
    TensorFlowBuild,
    VersionNeedCheck,
)

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "SNAPSHOT_VERSION",
    "AmdGpu",
    "CondaPackage",
    "CustomOp",
    "Driver",
    "DriverLibrary",
    "Environment",
    "Evidence",
    "Finding",
    "Gpu",
    "GpuProcess",
    "Host",
    "LibraryCopy",
    "LibraryResolution",
    "LoadedLibrary",
    "LogLine",
    "MatrixInfo",
    "NativeLibraries",
    "Package",
    "Platform",
    "ProbeDevice",
    "ProbeResult",
    "ProbeStep",
    "Provenance",
    "PythonInfo",
    "Report",
    "Resources",
    "Rocm",
    "RocmObject",
    "Scope",
    "Severity",
    "Skip",
    "SnapshotError",
    "Target",
    "TensorFlowBuild",
    "Unknown",
    "VersionNeedCheck",
    "environment_from_json",
    "from_json_dict",
    "read_snapshot",
    "to_json_dict",
]
