"""HPINet as one static graph (engine.inference.graph.export_program at a fixed input shape): the
patch tables are a function of the shape alone, the exported program gives the eager output, and
OpenVINO and ONNX Runtime run the graph."""

from __future__ import annotations

import functools

import pytest
import torch

from engine import load_model
from engine.archs import hpinet
from engine.inference.graph import export_program

# odd sizes that are no multiple of the patch sizes (8, 12 in HPINet-T); rows and columns covered
# by three patches for both (33 and 23: (size - 3) % (P - 2) == 0); smaller than a patch (padded)
SHAPES = [(37, 53), (33, 23), (5, 7)]


def _image(h: int, w: int) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1000 * h + w))


@functools.cache
def _exported(scale: int, h: int, w: int):
    """(input, eager output, exported program) of the bundled HPINet-T at one shape."""
    model = load_model("HPINet-T", scale=scale).model.eval()
    x = _image(h, w)
    with torch.no_grad():
        expected = model(x)
    return x, expected, export_program(model, x)


def _max_difference(a, b) -> float:
    return float((torch.as_tensor(a) - b).abs().max())


@pytest.mark.parametrize("patch", range(3, 27))
def test_cover_depth_from_the_shape_equals_the_count_over_the_patches(patch: int) -> None:
    for size in range(patch, patch + 160):
        starts = torch.tensor(hpinet.patch_starts(size, patch))
        coord = torch.arange(size)
        covers = (coord >= starts[:, None]) & (coord < starts[:, None] + patch)
        assert hpinet._cover_depth(size, patch) == int(covers.sum(0).max()), (size, patch)


def test_family_has_one_graph_per_shape() -> None:
    assert hpinet.FAMILY.static_graph
    assert not hpinet.FAMILY.dynamic_graph


@pytest.mark.slow
def test_a_trace_leaves_no_tracer_tensor_in_the_table_cache() -> None:
    """The tables made while torch.export traces are its fake tensors: they are not cached, so
    the eager forward at the same shape afterwards still runs, on real tables."""
    model = hpinet.HPINet(scale=2, dim=8, qk_dim=4, mlp_dim=8, patch_sizes=(8, 5)).eval()
    x = _image(13, 11)
    hpinet._cached_patch_index.cache_clear()
    program = export_program(model, x)
    assert hpinet._cached_patch_index.cache_info().currsize == 0
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(program.module()(x), expected)
    assert hpinet._cached_patch_index.cache_info().currsize == 2
    for key in [(13, 11, 8), (13, 11, 5)]:
        index = hpinet._patch_index(*key, torch.device("cpu"))
        tables = [index.gather, index.first, index.weight, *(t for e in index.extras for t in e)]
        assert all(type(t) is torch.Tensor for t in tables)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_exported_program_gives_the_eager_output(scale: int, h: int, w: int) -> None:
    x, expected, program = _exported(scale, h, w)
    with torch.no_grad():
        out = program.module()(x)
    assert out.shape == (1, 3, h * scale, w * scale)
    assert _max_difference(out, expected) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(("scale", "h", "w"), [(2, 37, 53), (3, 37, 53), (4, 37, 53), (4, 5, 7)])
def test_openvino_runs_the_graph(scale: int, h: int, w: int) -> None:
    ov = pytest.importorskip("openvino")
    x, expected, program = _exported(scale, h, w)
    compiled = ov.Core().compile_model(
        ov.convert_model(program), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    out = compiled.create_infer_request().infer({0: x.numpy()})[0]
    assert out.shape == tuple(expected.shape)
    assert _max_difference(out, expected) <= 1e-4


@pytest.mark.slow
def test_onnx_runtime_runs_the_graph() -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    x, expected, program = _exported(4, 37, 53)
    # opset 18, as engine.export writes: torch's conversion down to 17 fails on this graph
    proto = torch.onnx.export(program, dynamo=True, opset_version=18, verbose=False).model_proto
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert out.shape == tuple(expected.shape)
    assert _max_difference(out, expected) <= 1e-4


def test_matching_of_many_patches_converts_to_openvino() -> None:
    """n >= 256 patches (a 256x256 tile): torch.eye(n) would trace into an arange OpenVINO
    2026.4 cannot convert (a uint16 index); the identity is a constant of the graph instead."""
    ov = pytest.importorskip("openvino")
    torch.manual_seed(0)
    match = hpinet.Match(dim=8).eval()
    tokens = torch.rand(1, 300, 4, 8)
    with torch.no_grad():
        expected = match(tokens)
    compiled = ov.Core().compile_model(
        ov.convert_model(export_program(match, tokens)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    out = compiled.create_infer_request().infer({0: tokens.numpy()})[0]
    assert _max_difference(out, expected) <= 1e-5
