"""ONNX export (engine.export, `srstudio models export`): the file ONNX Runtime runs gives the
torch output, at a second size too when it takes any height and width; it carries its metadata;
an existing file is replaced only when asked, and only by a complete one."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import engine.export as export_module  # noqa: E402
from engine import SRStudioError, export_onnx, load_model, run_cli  # noqa: E402
from engine.atomic import atomic_open  # noqa: E402
from engine.descriptor import ModelDescriptor  # noqa: E402

TOLERANCE = 1e-4  # on the [0, 1] output
TILE = 24
SECOND_SIZE = (29, 45)  # not the exporter's own check size: this test checks beyond it


def image(h: int, w: int) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * 1000 + w))


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def max_difference(desc: ModelDescriptor, path: Path, x: torch.Tensor) -> float:
    with torch.no_grad():
        expected = desc.model(x).numpy()
    out = run_onnx(path, x)
    assert out.shape == expected.shape == (1, 3, x.shape[2] * desc.scale, x.shape[3] * desc.scale)
    return float(np.abs(out - expected).max())


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


class Pools(nn.Module):
    """Attention from a 3 x 3 adaptive average pooling, like CRAN's grid pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        gate = torch.sigmoid(F.adaptive_avg_pool2d(y, 3).amax((2, 3), keepdim=True))
        return F.pixel_shuffle(y * gate, 2)


class OneWidth(nn.Module):
    """Reads its input width as a Python number: torch.export can trace it at one width only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(x.shape[-2] * 2, int(x.shape[-1]) * 2), mode="nearest")


class Untraceable(nn.Module):
    """Refuses torch.export, at any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            raise RuntimeError("not traceable\nsecond line of a long report")
        return F.interpolate(x, scale_factor=2.0)


def tiny(net: nn.Module | None = None, scale: int = 2) -> ModelDescriptor:
    """A small network: the export's logic without a real network's export time."""
    torch.manual_seed(0)
    if net is None:
        net = nn.Sequential(nn.Conv2d(3, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
    return ModelDescriptor(
        family="Tiny",
        variant="test",
        scale=scale,
        params=sum(p.numel() for p in net.parameters()),
        input_range=1.0,
        size_multiple=1,
        tiling_safe=True,
        tile_overlap=0,
        source="untrained",
        model=net.eval(),
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["A2F-SD", "RNAN-tiny", "CRAN-tiny"])
def test_onnx_runtime_gives_the_torch_output_at_any_size(name, tmp_path):
    desc = load_model(name, scale=2)
    result = export_onnx(desc, tmp_path / "model.onnx")
    assert result.dynamic and result.path.is_file() and result.opset >= 17
    assert result.input_shape == (1, 3, *export_module.TRACE_SIZE)
    for size in (export_module.TRACE_SIZE, SECOND_SIZE):
        assert max_difference(desc, result.path, image(*size)) <= TOLERANCE
    model = onnx.load(str(result.path))
    assert {o.domain: o.version for o in model.opset_import}[""] == result.opset
    assert (
        metadata(result.path).items()
        >= {
            "family": desc.family,
            "variant": desc.variant,
            "scale": "2",
            "tensor_contract": "float32 RGB [0,1] NCHW",
            "dynamic_hw": "true",
            "input_shape": "1x3xHxW",
            "weights_sha256": hashlib.sha256(Path(desc.source).read_bytes()).hexdigest(),
        }.items()
    )


def check_fixed(desc: ModelDescriptor, path: Path) -> None:
    """A file that takes TILE x TILE only, gives the torch output there, and says so."""
    assert max_difference(desc, path, image(TILE, TILE)) <= TOLERANCE
    with pytest.raises(Exception, match="dimension"):  # ONNX Runtime's InvalidArgument
        run_onnx(path, image(TILE + 8, TILE))
    props = metadata(path)
    assert props["dynamic_hw"] == "false" and props["input_shape"] == f"1x3x{TILE}x{TILE}"


@pytest.mark.slow
def test_a_network_traced_at_one_size_is_exported_at_the_tile(tmp_path):
    desc = tiny(OneWidth())
    result = export_onnx(desc, tmp_path / "one.onnx", tile=TILE)
    assert not result.dynamic and result.input_shape == (1, 3, TILE, TILE)
    check_fixed(desc, result.path)


@pytest.mark.slow
def test_a_dynamic_file_wrong_at_another_size_is_not_kept(tmp_path, monkeypatch):
    """Without this module's own pooling conversion, the exporter's file takes any size but
    pools as at the traced one: the check at a second size catches it."""
    desc = tiny(Pools())
    result = export_onnx(desc, tmp_path / "own.onnx", tile=TILE)
    assert result.dynamic
    assert max_difference(desc, result.path, image(*SECOND_SIZE)) <= TOLERANCE
    monkeypatch.setattr(export_module, "_translations", dict)
    result = export_onnx(desc, tmp_path / "torch.onnx", tile=TILE)
    assert not result.dynamic
    check_fixed(desc, result.path)


@pytest.mark.slow
def test_hpinet_is_exported_at_the_tile(tmp_path):
    """HPINet's patch tables are computed from the input size in NumPy, so it traces at one size
    only; at that size ONNX Runtime gives the torch output."""
    desc = load_model("HPINet-T", scale=2)
    result = export_onnx(desc, tmp_path / "hpinet.onnx", tile=TILE)
    assert not result.dynamic and result.input_shape == (1, 3, TILE, TILE)
    check_fixed(desc, result.path)
    assert metadata(result.path)["family"] == "HPINet"


@pytest.mark.slow
def test_a_network_that_exports_at_no_shape_gives_a_one_line_error(tmp_path):
    with pytest.raises(SRStudioError) as info:
        export_onnx(tiny(Untraceable()), tmp_path / "none.onnx", tile=TILE)
    message = str(info.value)
    assert message.startswith("Tiny-test x2 cannot be exported to ONNX: Tiny ")
    assert f"{TILE}x{TILE}" in message and "not traceable" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_writes_the_file_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "a2f.onnx"
    argv = ["models", "export", "A2F-SD", "--scale", "2", "--format", "onnx", "-o", str(out)]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "any height and width" in printed
    assert metadata(out)["family"] == "A2F"
    written = out.read_bytes()
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out} exists") and "--force" in err and err.count("\n") == 1
    assert out.read_bytes() == written
    assert [p.name for p in tmp_path.iterdir()] == ["a2f.onnx"]  # no temporary file left


@contextlib.contextmanager
def full_disk(path: Path, mode: str = "wb"):
    """engine.atomic.atomic_open whose writes fail as on a full disk."""
    with atomic_open(path, mode):

        def write(data: bytes) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        yield types.SimpleNamespace(write=write)


@pytest.mark.slow
def test_existing_file_is_replaced_only_when_asked_and_only_whole(tmp_path, monkeypatch):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(b"old")
    with pytest.raises(SRStudioError, match="exists"):
        export_onnx(tiny(), path)
    with monkeypatch.context() as m:
        m.setattr(export_module, "atomic_open", full_disk)
        with pytest.raises(SRStudioError, match="No space left on device") as info:
            export_onnx(tiny(), path, overwrite=True)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]
    result = export_onnx(tiny(), path, overwrite=True)
    desc = tiny()
    assert result.dynamic and max_difference(desc, path, image(*SECOND_SIZE)) <= TOLERANCE
    assert "weights_sha256" not in metadata(path)  # an untrained network has no weights file


def test_unwritable_folder_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(SRStudioError, match="cannot create the folder"):
        export_onnx(tiny(), blocker / "out" / "tiny.onnx")


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder_is_refused_before_the_export(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    with pytest.raises(SRStudioError, match="cannot write to the folder"):
        export_onnx(tiny(), folder / "tiny.onnx")


@pytest.mark.parametrize(
    ("options", "message"), [({"tile": 4}, "at least 8"), ({"opset": 17}, "opset 17")]
)
def test_bad_options_are_refused(tmp_path, options, message):
    with pytest.raises(SRStudioError, match=message):
        export_onnx(tiny(), tmp_path / "tiny.onnx", **options)
    assert list(tmp_path.iterdir()) == []
