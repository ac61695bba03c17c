"""ONNX export of a loaded network, for ONNX Runtime and the tools built on it (chaiNNer).

The graph is engine.inference.graph.export_program's: torch.export with autograd on, so that
each network takes its reference path. Any height and width are tried first, and that file is
kept only when ONNX Runtime reproduces the torch output at the traced size and at a second one:
a converter can bake a trace-time size into a graph that still loads (torch's decomposition of
adaptive average pooling does: _adaptive_avg_pool2d replaces it). Otherwise the network is
exported at one fixed square shape. Either way the file written has run in ONNX Runtime and
matched torch (TOLERANCE).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.archs.registry import get_family
from engine.atomic import atomic_open, refuse_writing_over_inputs
from engine.descriptor import ModelDescriptor
from engine.errors import SRStudioError
from engine.inference.graph import export_program, quiet

log = logging.getLogger(__name__)

DEFAULT_TILE = 256  # side of the fixed input when a network cannot take any height and width
MIN_TILE = 8
# what torch.onnx writes natively; its conversion down to 17 writes a ReduceMean ONNX Runtime
# rejects (noop_with_empty_axes), so 17 is refused rather than written broken
ONNX_OPSET = 18
# largest |ONNX - torch| accepted on the [0, 1] output: correct files measure ~1e-6; CRAN's
# dynamic file with torch's own pooling decomposition (wrong at any size but the traced one)
# measured 2e-3 at CHECK_SIZE
TOLERANCE = 1e-4
# H != W: equal sizes would be traced as one symbol, and the file would require H == W
TRACE_SIZE = (48, 40)
CHECK_SIZE = (37, 53)  # the second size a dynamic file must reproduce torch at
CONTRACT = "float32 RGB [0,1] NCHW"
INSTALL_HINT = "pip install 'srstudio[onnx]' (onnx, onnxscript, onnxruntime)"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    dynamic: bool  # True: the file takes any height and width
    input_shape: tuple[int, int, int, int]  # the traced shape; a fixed file takes only this one
    opset: int
    seconds: float


def export_onnx(
    descriptor: ModelDescriptor,
    path: str | Path,
    *,
    tile: int | None = None,
    opset: int = ONNX_OPSET,
    overwrite: bool = False,
) -> ExportResult:
    """Write `descriptor`'s network to `path` as ONNX, atomically. `tile`: the input side used
    when the network cannot take any height and width (default DEFAULT_TILE). SRStudioError,
    one line, for anything that prevents a correct file; an existing file is kept unless
    `overwrite`."""
    path = Path(path)
    tile = DEFAULT_TILE if tile is None else tile
    if tile < MIN_TILE:
        raise SRStudioError(f"the tile side must be at least {MIN_TILE} pixels, got {tile}")
    if opset < ONNX_OPSET:
        raise SRStudioError(f"ONNX opset {opset} is not supported; use {ONNX_OPSET} or later")
    _check_target(path, overwrite, descriptor)
    runtime = _onnx_runtime()
    start = time.monotonic()
    proto = _dynamic_graph(descriptor, opset, runtime)
    dynamic = proto is not None
    shape = (1, 3, *TRACE_SIZE) if dynamic else (1, 3, tile, tile)
    if not dynamic:
        proto = _fixed_graph(descriptor, shape, opset, runtime)
    _add_metadata(proto, descriptor, dynamic=dynamic, shape=shape)
    _write(proto.SerializeToString(), path, overwrite)
    seconds = time.monotonic() - start
    log.info("%s: %s written in %.1f s (dynamic H/W: %s)", descriptor.label, path, seconds, dynamic)
    return ExportResult(path, dynamic, shape, opset, seconds)


def _check_target(path: Path, overwrite: bool, descriptor: ModelDescriptor) -> None:
    """Before the export's work: the file is new (or may be replaced, never the weights file
    being exported), its folder writable."""
    if os.path.isfile(descriptor.source):  # not "builtin", "untrained"...
        refuse_writing_over_inputs(path, [descriptor.source])
    if path.is_dir():
        raise SRStudioError(f"{path} is a folder; give a file name ending in .onnx")
    if path.exists() and not overwrite:
        raise SRStudioError(f"{path} exists; choose another name or replace it (--force)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SRStudioError(f"cannot create the folder {path.parent}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise SRStudioError(f"cannot write to the folder {path.parent}: permission denied")


def _onnx_runtime() -> Any:
    """onnxruntime; the exporter itself needs onnx and onnxscript."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise SRStudioError(f"ONNX export needs {exc.name}: {INSTALL_HINT}") from None
    return onnxruntime


def _dynamic_graph(descriptor: ModelDescriptor, opset: int, runtime: Any) -> Any | None:
    """The graph for any height and width, or None (logged why) when there is no such graph or
    it does not reproduce torch at both sizes."""
    if not _family_dynamic(descriptor):
        log.info("%s: its graph takes one input size; exporting at a fixed size", descriptor.label)
        return None
    try:
        proto = _convert(descriptor, _image(TRACE_SIZE), opset, dynamic=True)
        error = max(
            _difference(descriptor, proto, size, runtime) for size in (TRACE_SIZE, CHECK_SIZE)
        )
    except Exception as exc:  # tracer and converter raise many types; all mean "not dynamic"
        log.info(
            "%s: no graph for any height and width (%s); exporting at a fixed size",
            descriptor.label,
            _cause(exc),
        )
        return None
    if error > TOLERANCE:
        log.info(
            "%s: the graph for any height and width differs from torch by %.2g; exporting at "
            "a fixed size",
            descriptor.label,
            error,
        )
        return None
    return proto


def _fixed_graph(
    descriptor: ModelDescriptor, shape: tuple[int, int, int, int], opset: int, runtime: Any
) -> Any:
    side = f"{shape[2]}x{shape[3]}"
    fixed = f"{descriptor.family} takes no dynamic height and width, and at a fixed {side}"
    try:
        proto = _convert(descriptor, _image(shape[2:]), opset)
        error = _difference(descriptor, proto, shape[2:], runtime)
    except Exception as exc:  # any failure is reported as one line
        raise SRStudioError(
            f"{descriptor.label} cannot be exported to ONNX: {fixed}: {_cause(exc)}"
        ) from None
    if error > TOLERANCE:
        raise SRStudioError(
            f"{descriptor.label} cannot be exported to ONNX: at {side}, ONNX Runtime's output "
            f"differs from torch's by up to {error:.2g}"
        )
    log.info("%s: exported at a fixed %s input", descriptor.label, side)
    return proto


def _family_dynamic(descriptor: ModelDescriptor) -> bool:
    """Family.dynamic_graph (bicubic, not a Family, is tried)."""
    try:
        return get_family(descriptor.family).dynamic_graph
    except ValueError:
        return True


def _convert(
    descriptor: ModelDescriptor, example: torch.Tensor, opset: int, *, dynamic: bool = False
) -> Any:
    """The ONNX ModelProto of the network traced at `example` (for any height and width with
    `dynamic`), input named "input" and output "output"."""
    program = export_program(descriptor.model, example, dynamic=dynamic)
    with _quiet_exporter():
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            opset_version=opset,
            input_names=["input"],
            output_names=["output"],
            custom_translation_table=_translations(),
            verbose=False,
        )
    proto = onnx_program.model_proto
    written = {o.domain: o.version for o in proto.opset_import}.get("", 0)
    if written != opset:
        raise RuntimeError(f"the exporter wrote opset {written}, not {opset}")
    return proto


def _translations() -> dict[Any, Any]:
    """The ATen operations this module converts itself, instead of the exporter's way."""
    return {torch.ops.aten.adaptive_avg_pool2d.default: _adaptive_avg_pool2d}


def _adaptive_avg_pool2d(x: Any, output_size: Sequence[int]) -> Any:
    """aten.adaptive_avg_pool2d in ONNX for any input height and width (A2F's channel attention,
    CRAN's grid pooling). The exporter would use torch's decomposition, which fixes the cells at
    the traced size and, when they differ in length, unrolls them into Gathers that grow with
    the size (CRAN at 44x44: 1,088 Gathers, 83 s to convert; at 128x128 over 5 minutes). Here
    cell i of k along an axis of length L is [floor(i L / k), ceil((i + 1) L / k)): a Slice and
    a ReduceMean, the bounds computed from the input's shape."""
    from onnxscript import opset18 as op

    def ints(*values: int) -> Any:
        return op.Constant(value_ints=list(values))

    def bounds(axis: int, k: int) -> list[tuple[Any, Any]]:
        length = op.Shape(x, start=axis, end=axis + 1 if axis < -1 else None)
        return [
            (
                op.Div(op.Mul(length, ints(i)), ints(k)),
                op.Div(op.Add(op.Mul(length, ints(i + 1)), ints(k - 1)), ints(k)),
            )
            for i in range(k)
        ]

    axes = ints(-2, -1)
    columns = bounds(-1, output_size[1])
    rows = []
    for r0, r1 in bounds(-2, output_size[0]):
        cells = [
            op.ReduceMean(
                op.Slice(x, op.Concat(r0, c0, axis=0), op.Concat(r1, c1, axis=0), axes), axes
            )
            for c0, c1 in columns
        ]
        rows.append(op.Concat(*cells, axis=-1))
    return op.Concat(*rows, axis=-2)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs each optional library it lacks (torchvision) and every optimisation step
    (onnxscript, onnx_ir), and warns about its own internals: noise to a command-line user,
    even with --verbose."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with quiet():
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _difference(
    descriptor: ModelDescriptor, proto: Any, size: tuple[int, int], runtime: Any
) -> float:
    """Largest |ONNX Runtime - torch| on a seeded random input of `size`: the file checked
    against the torch path the project upscales with (no_grad, the inference paths)."""
    x = _image(size)
    with torch.no_grad():
        expected = descriptor.model(x).numpy()
    session = runtime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run(None, {"input": x.numpy()})
    if out.shape != expected.shape:
        return math.inf
    return float(np.abs(out - expected).max())


def _image(size: tuple[int, int]) -> torch.Tensor:
    """A seeded random input, leaving the global random state alone."""
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))


def _add_metadata(
    proto: Any, descriptor: ModelDescriptor, *, dynamic: bool, shape: tuple[int, ...]
) -> None:
    """What a reader needs to use the file without SR Studio: which network, the tensor contract,
    which shapes it takes, and which weights (sha256) it was made from."""
    import onnx

    from engine import __version__

    props = {
        "family": descriptor.family,
        "variant": descriptor.variant,
        "scale": str(descriptor.scale),
        "tensor_contract": CONTRACT,
        "dynamic_hw": "true" if dynamic else "false",
        "input_shape": "1x3xHxW" if dynamic else "x".join(map(str, shape)),
        "producer": f"srstudio {__version__}",
    }
    digest = _weights_sha256(descriptor)
    if digest:
        props["weights_sha256"] = digest
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = f"{descriptor.label} (SR Studio): {CONTRACT} in, x{descriptor.scale} out"


def _weights_sha256(descriptor: ModelDescriptor) -> str | None:
    """The sha256 of the weights file the network was loaded from; else the one its metadata
    records (a release's, an imported file's); None for untrained or built-in networks."""
    from engine.downloads import sha256_file

    source = Path(descriptor.source)
    if source.is_file():
        return sha256_file(source)
    meta = descriptor.metadata
    return meta.get("sha256") or meta.get("source_sha256")


def _write(data: bytes, path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:  # appeared while the export ran
        raise SRStudioError(f"{path} exists; choose another name or replace it (--force)")
    try:
        with atomic_open(path) as f:
            f.write(data)
    except OSError as exc:
        raise SRStudioError(f"cannot write {path}: {exc.strerror or exc}") from None


def _cause(exc: BaseException) -> str:
    """The first line of the innermost cause: the converter wraps the reason in pages of
    advice."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
