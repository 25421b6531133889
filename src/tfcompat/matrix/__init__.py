"""The compatibility matrix (data/compat_matrix.toml): facts of the world as frozen dataclasses.

Facts live in the TOML file; this package checks their shape and answers lookups. One module a job:

    arch        compute-capability spellings and SASS/PTX coverage (the one implementation)
    entries     the entry dataclasses, one per table
    facts       world facts the probes and rules read: dlopen sonames, TensorRT, cuDNN sub-libraries,
                CPU needs, TensorFlow distributions, companion modules, driver sonames, thresholds
    fields      field readers: every error names file, entry and field (MatrixError)
    load        parse + validate the file into a Matrix; facts_load the world-fact tables
    overlay     site overlays: known-bad drivers, waivers, thresholds
    lookup      the Matrix and its queries
    invariants  what `tfcompat matrix validate` checks beyond shape
    answers     the answers of `tfcompat matrix tensorflow|cuda|driver|gpu|validate` as plain dicts

Every name other modules imported from the single-module `tfcompat.matrix` is re-exported here.
"""

from tfcompat.matrix.arch import (
    Coverage,
    cc_text,
    cc_tuple,
    coverage,
    parse_arch,
    parse_cc,
)
from tfcompat.matrix.entries import (
    Companion,
    ComputeCapability,
    CudaMajor,
    CudaToolkit,
    CudnnRelease,
    CudnnRuntime,
    DriverNeed,
    ForwardCompatibility,
    RocmRelease,
    RocmSoname,
    TFRelease,
    TFRocmRelease,
    spec_text,
)
from tfcompat.matrix.facts import Soname, TFDistribution, WorldFacts
from tfcompat.matrix.fields import SCHEMA, MatrixError, default_matrix_path
from tfcompat.matrix.invariants import invariant_problems
from tfcompat.matrix.load import (
    MATRIX_TABLES,
    file_kind,
    load_matrix,
    parse_matrix,
    shipped_facts,
)
from tfcompat.matrix.lookup import Matrix
from tfcompat.matrix.overlay import (
    OVERLAY_TABLES,
    KnownBadDriver,
    Overlay,
    Waiver,
    load_overlay,
    parse_overlay,
)

__all__ = [
    "MATRIX_TABLES",
    "OVERLAY_TABLES",
    "SCHEMA",
    "Companion",
    "ComputeCapability",
    "Coverage",
    "CudaMajor",
    "CudaToolkit",
    "CudnnRelease",
    "CudnnRuntime",
    "DriverNeed",
    "ForwardCompatibility",
    "KnownBadDriver",
    "Matrix",
    "MatrixError",
    "Overlay",
    "RocmRelease",
    "RocmSoname",
    "Soname",
    "TFDistribution",
    "TFRelease",
    "TFRocmRelease",
    "Waiver",
    "WorldFacts",
    "cc_text",
    "cc_tuple",
    "coverage",
    "default_matrix_path",
    "file_kind",
    "invariant_problems",
    "load_matrix",
    "load_overlay",
    "parse_arch",
    "parse_cc",
    "parse_matrix",
    "parse_overlay",
    "shipped_facts",
    "spec_text",
]
