"""`tfcompat matrix`: ask the compatibility matrix the questions users ask.

    tfcompat matrix tensorflow 2.15      what a release needs (2.15 = the newest 2.15 release)
    tfcompat matrix cuda 12.4            the drivers a CUDA toolkit needs
    tfcompat matrix driver 535.54.03     which CUDA toolkits and TensorFlow releases a driver runs
    tfcompat matrix gpu 8.6              which TensorFlow releases run on a compute capability
    tfcompat matrix validate FILE        check a matrix or site-overlay file (exit 0 valid, 2 not)
    tfcompat matrix what-runs --driver 535.104.05 --gpu 8.0 --gpu 9.0    (or --from SNAPSHOT)
                                         what may I run here: the newest TensorFlow, cuDNN and CUDA, the pip line

Wiring only: the answers are built as plain dicts by tfcompat.matrix.answers (the JSON output) and
rendered by tfcompat.render.matrix_text. Unknown versions are a one-line error and exit 2.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer

from tfcompat.cli.classes import Command, Group
from tfcompat.errors import TfcompatError

if TYPE_CHECKING:
    from tfcompat.matrix import Matrix

# The matrix, its answers and their renderers are imported inside the commands: `tfcompat --version` and
# `tfcompat check --help` do not load them.


class Format(str, Enum):
    text = "text"
    json = "json"


matrix_app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Ask the compatibility matrix: what a TensorFlow release needs, what a driver or GPU can run, "
    "what runs here (driver + GPUs); validate a matrix or site-overlay file.",
)

FormatOpt = typer.Option(Format.text, "--format", "-f", help="Output format.")
MatrixOpt = typer.Option(None, "--matrix", metavar="FILE", help="Use this compatibility matrix file.")
OverlayOpt = typer.Option(
    None, "--matrix-overlay", metavar="FILE", help="Add a site overlay (known-bad drivers, waivers); repeatable."
)


# ---------------------------------------------------------------------------------------------- commands


def _answer(fmt: Format, build: Callable[[], dict[str, Any]], render: Callable[[dict[str, Any]], str]) -> None:
    try:
        answer = build()
    except TfcompatError as exc:  # MatrixError, QueryError: bad input, one line
        message = str(exc).replace("\n", " ")
        # JSON: every command's one error shape
        from tfcompat.render.formats import render_error

        sys.stdout.write(render_error("matrix", fmt.value, message) or "")
        print(f"tfcompat: error: {message}", file=sys.stderr)
        raise typer.Exit(2) from None
    from tfcompat.render.matrix_text import render_answer_json

    sys.stdout.write(render_answer_json(answer) if fmt is Format.json else render(answer))


def _load(matrix: Optional[str], overlays: Optional[list[str]]) -> Matrix:
    from tfcompat.matrix import load_matrix

    return load_matrix(Path(matrix) if matrix else None, [Path(o) for o in overlays or ()])


@matrix_app.command("tensorflow", cls=Command)
def tensorflow_cmd(
    version: str = typer.Argument(..., metavar="VERSION", help="2.15 (newest 2.15 release), 2.15.1, 2.15.0.post1"),
    fmt: Format = FormatOpt,
    matrix: Optional[str] = MatrixOpt,
    overlay: Optional[list[str]] = OverlayOpt,
) -> None:
    """What a TensorFlow release needs: Python, CUDA, cuDNN, GPUs, driver, packages, glibc."""
    from tfcompat.matrix.answers import tensorflow_answer
    from tfcompat.render.matrix_text import render_tensorflow

    _answer(fmt, lambda: tensorflow_answer(_load(matrix, overlay), version), render_tensorflow)


@matrix_app.command("cuda", cls=Command)
def cuda_cmd(
    version: str = typer.Argument(..., metavar="VERSION", help="12.4 (GA) or 12.4.1 (Update 1)"),
    fmt: Format = FormatOpt,
    matrix: Optional[str] = MatrixOpt,
    overlay: Optional[list[str]] = OverlayOpt,
) -> None:
    """The Linux driver a CUDA toolkit needs: its own, and the minor-version-compatibility floor."""
    from tfcompat.matrix.answers import cuda_answer
    from tfcompat.render.matrix_text import render_cuda

    _answer(fmt, lambda: cuda_answer(_load(matrix, overlay), version), render_cuda)


@matrix_app.command("driver", cls=Command)
def driver_cmd(
    version: str = typer.Argument(..., metavar="VERSION", help="NVIDIA driver version, e.g. 535.54.03"),
    fmt: Format = FormatOpt,
    matrix: Optional[str] = MatrixOpt,
    overlay: Optional[list[str]] = OverlayOpt,
) -> None:
    """Which CUDA toolkits and TensorFlow releases a driver runs, fully or under minor-version compatibility."""
    from tfcompat.matrix.answers_host import driver_answer
    from tfcompat.render.matrix_text import render_driver

    _answer(fmt, lambda: driver_answer(_load(matrix, overlay), version), render_driver)


@matrix_app.command("gpu", cls=Command)
def gpu_cmd(
    cc: str = typer.Argument(..., metavar="CC", help="compute capability, e.g. 8.6 or sm_86"),
    fmt: Format = FormatOpt,
    matrix: Optional[str] = MatrixOpt,
    overlay: Optional[list[str]] = OverlayOpt,
) -> None:
    """Which TensorFlow releases run on a GPU of this compute capability: natively, by PTX JIT, or not."""
    from tfcompat.matrix.answers_host import gpu_answer
    from tfcompat.render.matrix_text import render_gpu

    _answer(fmt, lambda: gpu_answer(_load(matrix, overlay), cc), render_gpu)


@matrix_app.command("validate", cls=Command)
def validate_cmd(
    path: str = typer.Argument(..., metavar="FILE", help="a matrix file or a site overlay ([meta] kind = 'overlay')"),
    fmt: Format = FormatOpt,
) -> None:
    """Check a matrix or site-overlay file: exit 0 if valid, 2 with a one-line error naming entry and field."""
    from tfcompat.matrix.answers_host import validate_answer
    from tfcompat.render.matrix_text import render_validate

    _answer(fmt, lambda: validate_answer(path), render_validate)


@matrix_app.command("what-runs", cls=Command)
def what_runs_cmd(
    driver: Optional[str] = typer.Option(
        None, "--driver", metavar="VERSION", help="NVIDIA driver version, e.g. 535.104.05"
    ),
    gpu: Optional[list[str]] = typer.Option(
        None,
        "--gpu",
        metavar="CC",
        help="a GPU's compute capability, e.g. 8.0 or sm_90; repeatable (one per GPU model)",
    ),
    snapshot: Optional[str] = typer.Option(
        None,
        "--from",
        metavar="SNAPSHOT",
        help="a snapshot written by `tfcompat scan` (or a report): its host.driver and host.gpus; "
        "--driver / --gpu override",
    ),
    fmt: Format = FormatOpt,
    matrix: Optional[str] = MatrixOpt,
    overlay: Optional[list[str]] = OverlayOpt,
) -> None:
    """What may I run here: the newest TensorFlow whose CUDA the driver runs and whose kernels (and cuDNN) cover
    every GPU, the newest cuDNN and CUDA that work, and the pip line."""
    from tfcompat.matrix.answers import QueryError
    from tfcompat.matrix.what_runs import host_from_snapshot, what_runs_answer
    from tfcompat.render.matrix_text import render_what_runs

    def build() -> dict[str, Any]:
        version, ccs, source = driver, list(gpu or ()), "--driver"
        if snapshot is not None:
            snap_driver, snap_ccs, where = host_from_snapshot(snapshot)
            if driver is None:
                if snap_driver is None:
                    raise QueryError(
                        f"{snapshot}: the snapshot has no NVIDIA driver version (host.driver): give --driver"
                    )
                version, source = snap_driver, where
            if not gpu:
                ccs = snap_ccs
        return what_runs_answer(_load(matrix, overlay), version, ccs, source)

    _answer(fmt, build, render_what_runs)


__all__ = ["matrix_app"]
