"""Hostile and broken weights files: every one is refused with one CheckpointError line that names
the file and the problem; nothing in them runs, nothing large is allocated, nothing escapes as
another exception. Every crafted file is built here, in a temporary folder."""

from __future__ import annotations

import builtins
import functools
import io
import json
import math
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file

from engine import library
from engine.checkpoints import build_untrained, load_model, read_state_dict, save_checkpoint
from engine.cli import main
from engine.errors import CheckpointError
from engine.training import train
from engine.training.state import load_state, state_path
from tests.engine.hostile import stopped_training, train_config

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def refused(path: Path, *words: str, load=load_model) -> str:
    """The CheckpointError message of loading `path`: one line, naming the file and `words`."""
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert path.name in message, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return message


def safetensors_bytes(header: object, data: bytes = b"", *, length: int | None = None) -> bytes:
    """A safetensors file: 8-byte little-endian header length, the header, the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_untrained("A2F-SD", 2).model


@functools.cache
def tiny_state_dict() -> dict[str, torch.Tensor]:
    return dict(tiny_model().state_dict())


def good_safetensors(path: Path, **metadata: object) -> Path:
    return save_checkpoint(
        path, tiny_model(), family="A2F", variant="SD", scale=2, metadata=metadata or None
    )


def with_srstudio_text(path: Path, text: str) -> Path:
    """The tiny model's tensors with `text` as the raw srstudio metadata."""
    tensors = {k: v.contiguous() for k, v in tiny_model().state_dict().items()}
    save_file(tensors, str(path), metadata={"srstudio": text})
    return path


# ------------------------------------------------------------------------------ safetensors headers

F32_4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
LYING_HEADERS = {
    "more data than the file": (
        {"w": {**F32_4, "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}},
        "bytes",
    ),
    "offsets outside the file": ({"w": {**F32_4, "data_offsets": [64, 80]}}, "beyond"),
    "shape disagrees with offsets": (
        {"w": {**F32_4, "shape": [1000, 1000]}},
        "4,000,000 bytes",
    ),
    "overlapping tensors": ({"a": F32_4, "b": F32_4}, "overlap"),
    "gap before a tensor": ({"w": {**F32_4, "shape": [2], "data_offsets": [8, 16]}}, "gap"),
    "header a JSON list": ([1, 2, 3], "not an object"),
    "header a JSON string": ("weights", "not an object"),
    "entry not an object": ({"w": 5}, "not an object"),
    "negative shape": ({"w": {**F32_4, "shape": [-1, -4]}}, "shape"),
    "float shape": ({"w": {**F32_4, "shape": [4.0]}}, "shape"),
    "bool shape": ({"w": {**F32_4, "shape": [True, 4]}}, "shape"),
    "shape not a list": ({"w": {**F32_4, "shape": "4"}}, "shape"),
    "unknown dtype": ({"w": {**F32_4, "dtype": "Q7"}}, "dtype"),
    "integer dtype": ({"w": {**F32_4, "dtype": "I32"}}, "floating point"),
    "offsets reversed": ({"w": {**F32_4, "data_offsets": [16, 0]}}, "data_offsets"),
    "offsets not numbers": ({"w": {**F32_4, "data_offsets": ["0", "16"]}}, "data_offsets"),
    "metadata not an object": ({"__metadata__": [1], "w": F32_4}, "__metadata__"),
    "metadata values not text": ({"__metadata__": {"srstudio": 5}, "w": F32_4}, "__metadata__"),
}


@pytest.mark.parametrize("case", sorted(LYING_HEADERS))
def test_safetensors_header_that_lies_is_refused_before_loading(tmp_path, case):
    header, word = LYING_HEADERS[case]
    path = tmp_path / "lying.safetensors"
    path.write_bytes(safetensors_bytes(header, bytes(16)))
    refused(path, word, load=read_state_dict)


@pytest.mark.parametrize(
    ("content", "word"),
    [
        (safetensors_bytes(b"{}", length=2**63), "bytes"),  # a huge header length
        (safetensors_bytes(b'{"w": 1}', length=4096), "bytes"),  # longer than the file
        (safetensors_bytes(b"\xff\xfenot json at all"), "not valid JSON"),
        (safetensors_bytes(b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
        (b"\x05\x00\x00", "too short"),
    ],
    ids=["huge length", "length past the end", "not JSON", "deeply nested", "3 bytes"],
)
def test_unreadable_safetensors_header_is_refused(tmp_path, content, word):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    refused(path, word, load=read_state_dict)


def test_declared_data_larger_than_the_file_is_never_allocated(tmp_path, monkeypatch):
    path = tmp_path / "huge.safetensors"
    shape = [1 << 20, 1 << 20]  # 4 TiB of F32
    header = {"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4 << 40]}}
    path.write_bytes(safetensors_bytes(header, bytes(64)))
    monkeypatch.setattr(
        "engine.weights_file.load_file", lambda *a, **k: pytest.fail("safetensors was called")
    )
    refused(path, "4,398,046,511,104", "truncated", load=read_state_dict)


# ------------------------------------------------------------------------------ state dicts


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_zero_sized_dimension_is_refused(tmp_path, suffix):
    path = tmp_path / f"empty_dim{suffix}"
    tensors = {"head.weight": torch.zeros(0, 3), "tail.weight": torch.ones(2)}
    if suffix == ".pt":
        torch.save(tensors, path)
    else:
        save_file(tensors, str(path))
    assert "head.weight" in refused(path, "zero-sized", load=read_state_dict)


@pytest.mark.parametrize("key", [1, None, (1, 2), 2.5, b"bytes"], ids=repr)
def test_non_string_keys_are_refused(tmp_path, key):
    path = tmp_path / "keys.pt"
    torch.save({key: torch.ones(2), "fine": torch.ones(2)}, path)
    refused(path, "key", load=read_state_dict)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_nan_and_infinite_weights_are_refused_naming_the_tensor(tmp_path, bad, suffix):
    model = tiny_model()
    name = "body.0.body.0.weight_v"
    with torch.no_grad():
        model.state_dict()[name].view(-1)[7] = bad
    path = tmp_path / f"poisoned{suffix}"
    if suffix == ".pt":
        torch.save(model.state_dict(), path)
    else:
        save_checkpoint(path, model, family="A2F", variant="SD", scale=2)
    message = refused(path, "NaN or infinite", "damaged")
    assert repr(name) in message


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.complex64], ids=str)
def test_tensors_that_are_not_floating_point_are_refused(tmp_path, dtype):
    path = tmp_path / "ints.pt"
    torch.save({"head.weight": torch.ones(2, 2).to(dtype)}, path)
    refused(path, "floating point", load=read_state_dict)


def test_stride_trick_cannot_make_a_small_file_allocate_a_huge_tensor(tmp_path):
    path = tmp_path / "expanded.pt"
    torch.save({"w": torch.zeros(1).expand(1 << 16, 1 << 16)}, path)  # 16 GiB of views of 4 B
    refused(path, "w", load=read_state_dict)


def test_odd_shapes_where_the_registry_expects_others_are_refused(tmp_path):
    sd = dict(tiny_model().state_dict())
    sd["head.0.weight_v"] = torch.ones(5)  # 1-D where a 4-D conv weight belongs
    sd["body.0.body.0.weight_v"] = torch.ones(())  # 0-D
    path = tmp_path / "odd.pt"
    torch.save(sd, path)
    refused(path, "matches none")


# ------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("[1, 2]", "not an object"),
        ("5", "not an object"),
        ('"A2F"', "not an object"),
        ("{not json", "not valid JSON"),
        ('{"family": "A2F", "variant": "SD", "scale": "x"}', "scale"),
        ('{"family": "A2F", "variant": "SD", "scale": 7}', "scale"),
        ('{"family": "A2F", "variant": "SD", "scale": true}', "scale"),
        ('{"family": "A2F", "variant": "SD", "scale": 2.5}', "scale"),
        ('{"family": 5, "variant": "SD", "scale": 2}', "family"),
        ('{"family": "A2F", "variant": ["SD"], "scale": 2}', "variant"),
        ('{"family": "A2F", "variant": "SD", "scale": 2, "input_range": -1}', "input_range"),
        ('{"family": "A2F", "variant": "SD", "scale": 2, "input_range": NaN}', "input_range"),
        ('{"family": "A2F", "variant": "SD", "scale": 2, "input_range": "255"}', "input_range"),
        ('{"family": "A2F", "variant": "SD", "scale": 4}', "x4"),  # the tensors are x2
    ],
)
def test_metadata_of_the_wrong_type_or_value_is_refused(tmp_path, text, word):
    path = with_srstudio_text(tmp_path / "meta.safetensors", text)
    message = refused(path, word)
    assert "metadata" in message


# ------------------------------------------------------------------------------ code and formats


class _Payload:
    """Unpickling this creates a file: code execution a checkpoint must never get."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.open, (self.target, "w"))


@pytest.mark.parametrize(
    "form", ["zip.pth", "legacy.pt", "raw-pickle.pt", "raw-pickle.safetensors", "zip.onnx"]
)
def test_pickle_that_would_run_code_never_runs(tmp_path, form):
    marker = tmp_path / "pwned.txt"
    payload = {"head.weight": torch.zeros(1), "trap": _Payload(str(marker))}
    path = tmp_path / f"evil-{form}"
    if form.startswith("zip"):
        torch.save(payload, path)
    elif form.startswith("legacy"):
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=4))
    refused(path, "Python objects")
    assert not marker.exists()
    other = tmp_path / "proof.txt"
    pickle.loads(pickle.dumps(_Payload(str(other))))  # the payload is real
    assert other.exists()


def onnx_like_bytes() -> bytes:
    """The start of an ONNX ModelProto: ir_version, producer, a graph with one node."""
    node = b"\x0a\x01x\x12\x01y\x22\x04Relu"  # input, output, op_type
    graph = b"\x0a" + bytes([len(node)]) + node + b"\x12\x05graph"
    return b"\x08\x08\x12\x07pytorch\x1a\x052.3.0\x3a" + bytes([len(graph)]) + graph


@pytest.mark.parametrize("name", ["model.onnx", "model.pth", "model.pt"])
def test_onnx_model_is_named_for_what_it_is(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(onnx_like_bytes())
    message = refused(path, "is an ONNX model", ".safetensors, .pt and .pth")
    assert "could run code" not in message


@pytest.mark.parametrize(
    ("content", "word"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "PNG image"),
        (b"\xff\xd8\xff\xe0" + bytes(64), "JPEG image"),
        (b"these are not weights\nat all\n", "text file"),
    ],
    ids=["png", "jpeg", "text"],
)
def test_other_kinds_of_file_are_named(tmp_path, content, word):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    refused(path, word, "not a readable PyTorch checkpoint")


def test_folder_given_as_weights_is_called_a_folder(tmp_path):
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    refused(folder, "is a folder, not a weights file")
    refused(folder, "is a folder", load=read_state_dict)


def _rezip(src: Path, dst: Path, extra: dict[str, bytes] | None = None) -> None:
    """`src` (a torch zip) with every entry deflate-compressed, plus `extra` entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        for name, data in (extra or {}).items():
            zout.writestr(f"{prefix}/{name}", data)


def test_compressed_zip_entries_and_zip_bombs_are_refused(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(4, 4)}, good)
    deflated = tmp_path / "deflated.pt"
    _rezip(good, deflated)
    refused(deflated, "compressed", load=read_state_dict)
    bomb = tmp_path / "bomb.pt"
    _rezip(good, bomb, {"data/99": bytes(64 << 20)})  # 64 MiB of zeros in about 64 KiB
    assert bomb.stat().st_size < 1 << 20
    refused(bomb, "compressed", load=read_state_dict)


def test_zip_that_is_not_a_torch_checkpoint_is_refused(tmp_path):
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    refused(path, "not a PyTorch checkpoint", load=read_state_dict)


@pytest.mark.parametrize("keep", [5, 8, 100, 1000, 0.5, -1])
def test_truncated_real_checkpoint_is_refused_and_listed_as_broken(tmp_path, monkeypatch, keep):
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    good = good_safetensors(tmp_path / "good.safetensors", origin="imported")
    data = good.read_bytes()
    end = int(len(data) * keep) if isinstance(keep, float) else keep
    cut = library.user_dir() / "A2F-SD-x2-cut.safetensors"
    cut.parent.mkdir(parents=True)
    cut.write_bytes(data[:end])
    refused(cut)
    assert [b.path for b in library.broken_weights()] == [cut]
    assert all(e.path != cut for e in library.installed_weights())


@pytest.mark.parametrize("keep", [0.5, -1])
def test_truncated_pytorch_checkpoint_is_listed_as_broken(tmp_path, monkeypatch, keep):
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    folder = library.user_dir()
    folder.mkdir(parents=True)
    whole = tmp_path / "whole.pt"
    torch.save(tiny_model().state_dict(), whole)
    data = whole.read_bytes()
    cut = folder / "A2F-SD-x2.pt"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    (folder / "A2F-SD-x2.json").write_text(
        json.dumps({"family": "A2F", "variant": "SD", "scale": 2})
    )
    refused(cut, "not a readable PyTorch checkpoint")
    broken = library.broken_weights()
    assert [b.path for b in broken] == [cut]
    assert cut.name in broken[0].reason


# ------------------------------------------------------------------------------ the command line


def _image(path: Path) -> Path:
    arr = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _one_line_error(capsys, path: Path) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert path.name in err
    return err


def test_upscale_with_bad_weights_exits_2_with_one_line(tmp_path, capsys):
    img = _image(tmp_path / "a.png")
    nan = tmp_path / "nan.pt"
    sd = tiny_model().state_dict()
    sd["tail.0.bias"] = torch.full_like(sd["tail.0.bias"], math.nan)
    torch.save(sd, nan)
    keys = tmp_path / "keys.pt"
    torch.save({1: torch.ones(2)}, keys)
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    for bad in (nan, keys, folder):
        argv = ["upscale", str(img), "-o", str(tmp_path / "out"), "--weights", str(bad)]
        assert main([*argv, "--device", "cpu", "--tile", "0"]) == 2
        _one_line_error(capsys, bad)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _fill_with_broken_files(folder: Path) -> dict[str, str]:
    """Broken files in a user weights folder; their names and a word of each reason."""
    folder.mkdir(parents=True, exist_ok=True)
    with_srstudio_text(folder / "meta-list.safetensors", "[1, 2]")
    with_srstudio_text(folder / "meta-number.safetensors", "7")
    with_srstudio_text(
        folder / "scale-x.safetensors", '{"family":"A2F","variant":"SD","scale":"x"}'
    )
    with_srstudio_text(folder / "family-5.safetensors", '{"family":5,"variant":"SD","scale":2}')
    with_srstudio_text(
        folder / "family-unknown.safetensors", '{"family":"Nope","variant":"SD","scale":2}'
    )
    good = good_safetensors(folder.parent / "tmp.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    torch.save(tiny_model().state_dict(), folder / "sidecar-list.pt")
    (folder / "sidecar-list.json").write_text("[]")
    torch.save(tiny_model().state_dict(), folder / "sidecar-bad.pth")
    (folder / "sidecar-bad.json").write_text("{not json")
    (folder / "onnx.pt").write_bytes(onnx_like_bytes())
    (folder / "onnx.json").write_text('{"family":"A2F","variant":"SD","scale":2}')
    return {
        "meta-list.safetensors": "not an object",
        "meta-number.safetensors": "not an object",
        "scale-x.safetensors": "scale",
        "family-5.safetensors": "family",
        "family-unknown.safetensors": "Nope",
        "truncated.safetensors": "truncated",
        "sidecar-list.pt": "not an object",
        "sidecar-bad.pth": "not valid JSON",
        "onnx.pt": "ONNX",
    }


def test_models_lists_broken_files_and_model_commands_still_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    folder = library.user_dir()
    expected = _fill_with_broken_files(folder)
    good = good_safetensors(folder / "A2F-SD-x2-good.safetensors", origin="imported")

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, word in expected.items():
        line = next(line for line in out.splitlines() if name in line and word in line)
        assert line
    assert "Traceback" not in out

    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    broken = {Path(b["path"]).name: b["reason"] for b in data["broken"]}
    assert set(broken) == set(expected)
    assert all(word in broken[name] for name, word in expected.items())
    a2f = next(r for r in data["models"] if r["name"] == "A2F-SD")
    assert a2f["best"]["2"]["path"] == str(good)

    assert library.best_weights("A2F", "SD", 2).path == good
    img = _image(tmp_path / "a.png")
    argv = ["upscale", str(img), "-o", str(tmp_path / "out"), "--model", "A2F-SD", "--scale", "2"]
    assert main([*argv, "--device", "cpu", "--tile", "0"]) == 0
    assert any((tmp_path / "out").iterdir())


def test_importing_a_broken_file_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    model = tiny_model()
    with torch.no_grad():
        model.state_dict()["head.0.bias"].fill_(math.inf)
    nan = save_checkpoint(tmp_path / "inf.safetensors", model, family="A2F", variant="SD", scale=2)
    scale = with_srstudio_text(tmp_path / "scale.safetensors", '{"scale": "x"}')
    for bad in (nan, scale):
        assert main(["models", "import", str(bad)]) == 2
        _one_line_error(capsys, bad)
    assert not library.user_dir().exists() or not any(library.user_dir().iterdir())


# ------------------------------------------------------------------------------ training resume


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A training run stopped after two iterations: its folder, output and resume state."""
    root = tmp_path_factory.mktemp("run")
    out = stopped_training(root)
    saved = torch.load(state_path(out), map_location="cpu", weights_only=True)
    return root, out, saved


def _damaged_state(stopped_run, tmp_path: Path, damage) -> tuple[Path, Path]:
    root, out, saved = stopped_run
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
    damage(state)
    mine = tmp_path / out.name
    mine.write_bytes(out.read_bytes())
    torch.save(state, state_path(mine))
    return root, mine


def _first_param(state: dict) -> dict:
    return state["optimizer"]["state"][0]


def _set(key, value):
    return lambda state: state.__setitem__(key, value)


def _nan_model(state: dict) -> None:
    state["model"] = {k: v.clone() for k, v in state["model"].items()}
    state["model"]["tail.0.bias"][0] = math.nan


def _wrong_optimizer_shape(state: dict) -> None:
    state["optimizer"] = {**state["optimizer"], "state": dict(state["optimizer"]["state"])}
    state["optimizer"]["state"][0] = {**_first_param(state), "exp_avg": torch.zeros(3)}


def _rng_python_not_text(state: dict) -> None:
    state["rng"] = {**state["rng"], "python": 5}


def _rng_python_wrong_json(state: dict) -> None:
    state["rng"] = {**state["rng"], "python": json.dumps([3, [1, 2], None])}


def _model_wrong_shapes(state: dict) -> None:
    state["model"] = {k: torch.zeros(2) for k in state["model"]}


DAMAGES = {
    "python rng not text": _rng_python_not_text,
    "python rng wrong json": _rng_python_wrong_json,
    "missing optimizer": lambda state: state.pop("optimizer"),
    "missing model": lambda state: state.pop("model"),
    "optimizer of the wrong shape": _wrong_optimizer_shape,
    "optimizer not a dict": _set("optimizer", [1, 2]),
    "model with NaN": _nan_model,
    "model of the wrong shapes": _model_wrong_shapes,
    "history not JSON": _set("history", "[1"),
    "history not text": _set("history", 5),
    "best a number": _set("best", "5"),
    "config a list": _set("config", "[]"),
    "base without a name": _set("base", '{"tensors": "5 of 9"}'),
    "family a number": _set("family", 5),
    "unknown family": _set("family", "Nope"),
    "unknown variant": _set("variant", "XXL"),
    "scale text": _set("scale", "x"),
    "iteration negative": _set("iteration", -3),
    "iteration text": _set("iteration", "3"),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_resuming_from_a_damaged_state_is_one_clear_error(stopped_run, tmp_path, case):
    root, out = _damaged_state(stopped_run, tmp_path, DAMAGES[case])
    with pytest.raises(CheckpointError) as info:
        train(train_config(root, out, resume=True))
    message = str(info.value)
    assert "\n" not in message and state_path(out).name in message, message


def test_truncated_training_state_is_one_clear_error(stopped_run, tmp_path):
    root, out, _ = stopped_run
    data = state_path(out).read_bytes()
    for keep in (10, len(data) // 2, len(data) - 1):
        mine = tmp_path / "cut.resume.pt"
        mine.write_bytes(data[:keep])
        refused(mine, load=load_state)


def test_untouched_state_still_resumes(stopped_run, tmp_path):
    root, out = _damaged_state(stopped_run, tmp_path, lambda state: None)
    assert train(train_config(root, out, resume=True)).iterations == 3


# ------------------------------------------------------------------------------ properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
DTYPES = ["F16", "BF16", "F32", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "Q7", ""]
SMALL = st.integers(-3, 40) | st.floats(-2, 40) | st.booleans() | st.none() | st.text(max_size=2)


def tensor_entries():
    entry = st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(DTYPES) | JSON,
            "shape": st.lists(SMALL, max_size=3) | JSON,
            "data_offsets": st.lists(SMALL, min_size=2, max_size=2) | st.lists(SMALL, max_size=3),
        }
    )
    return st.dictionaries(st.text(min_size=1, max_size=5), entry | JSON, max_size=4)


ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I32": 4, "U8": 1, "BOOL": 1}


@st.composite
def consistent_files(draw) -> bytes:
    """A well-formed safetensors file with random tensors, bytes and srstudio metadata."""
    header: dict[str, object] = {}
    offset = 0
    for name in draw(st.lists(st.text(min_size=1, max_size=6), max_size=4, unique=True)):
        dtype = draw(st.sampled_from(sorted(ITEMSIZE)))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        size = math.prod(shape) * ITEMSIZE[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    meta = draw(st.none() | st.text(max_size=8) | JSON.map(json.dumps))
    if meta is not None:
        header["__metadata__"] = {"srstudio": meta}
    return safetensors_bytes(header, draw(st.binary(min_size=offset, max_size=offset)))


def headers():
    meta = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | JSON, max_size=3)
    with_meta = st.builds(lambda t, m: {**t, "__metadata__": m}, tensor_entries(), meta | JSON)
    return tensor_entries() | with_meta | JSON


def _only_checkpoint_errors(path: Path, load=read_state_dict) -> None:
    """Loading `path` either fails with one CheckpointError line naming the file, or gives what a
    weights file should: a state dict of finite floating-point tensors, and dict metadata."""
    try:
        result = load(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and path.name in str(exc), str(exc)
        return
    if load is read_state_dict:
        sd, meta = result
        assert isinstance(meta, dict)
        tensors = sd.values()
    else:
        assert isinstance(result.metadata, dict)
        assert math.isfinite(result.input_range) and result.input_range > 0
        tensors = result.model.state_dict().values()
    for tensor in tensors:
        assert tensor.is_floating_point() and tensor.numel() > 0
        assert bool(torch.isfinite(tensor).all())


@PROPERTY
@given(header=headers(), data=st.binary(max_size=96))
def test_property_random_safetensors_headers(tmp_path_factory, header, data):
    path = tmp_path_factory.getbasetemp() / "random-header.safetensors"
    path.write_bytes(safetensors_bytes(header, data))
    _only_checkpoint_errors(path)


@PROPERTY
@given(content=consistent_files())
def test_property_well_formed_safetensors_with_random_content(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "random-content.safetensors"
    path.write_bytes(content)
    _only_checkpoint_errors(path)


@PROPERTY
@given(content=st.binary(max_size=200), suffix=st.sampled_from([".safetensors", ".pt", ".pth"]))
def test_property_random_bytes(tmp_path_factory, content, suffix):
    path = tmp_path_factory.getbasetemp() / f"random-bytes{suffix}"
    path.write_bytes(content)
    _only_checkpoint_errors(path)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("valid")
    st_path = good_safetensors(folder / "good.safetensors")
    pt_path = folder / "good.pt"
    torch.save(tiny_model().state_dict(), pt_path)
    return {".safetensors": st_path.read_bytes(), ".pt": pt_path.read_bytes()}


NAN_INF_F32 = [struct.pack("<f", v) * 2 for v in (math.nan, math.inf, -math.inf)]
BYTES = st.binary(max_size=8) | st.sampled_from(NAN_INF_F32)


@PROPERTY
@given(
    suffix=st.sampled_from([".safetensors", ".pt"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), BYTES), max_size=4),
    cut=st.none() | st.floats(0, 1),
)
def test_property_mutated_valid_files(tmp_path_factory, valid_files, suffix, edits, cut):
    data = bytearray(valid_files[suffix])
    for where, new in edits:
        at = int(where * len(data))
        data[at : at + len(new)] = new
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path_factory.getbasetemp() / f"mutated{suffix}"
    path.write_bytes(bytes(data))
    _only_checkpoint_errors(path)


TORCH_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64]
TORCH_DTYPES += [torch.uint8, torch.bool, torch.complex64]


@st.composite
def tensors(draw):
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    values = draw(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=4)
    )
    flat = torch.tensor(values * (1 + math.prod(shape)))[: math.prod(shape)]
    return flat.reshape(shape).to(draw(st.sampled_from(TORCH_DTYPES)))


def state_dicts():
    keys = st.text(max_size=12) | st.integers() | st.none() | st.tuples(st.integers())
    values = (
        tensors()
        | st.integers()
        | st.text(max_size=4)
        | st.none()
        | st.lists(tensors(), max_size=2)
    )
    flat = st.dictionaries(keys, values, max_size=5)
    return flat | st.dictionaries(st.sampled_from(["state_dict", "params_ema", "model"]), flat)


@PROPERTY
@given(obj=state_dicts() | tensors() | st.lists(tensors(), max_size=3))
def test_property_random_state_dicts_in_pytorch_files(tmp_path_factory, obj):
    path = tmp_path_factory.getbasetemp() / "random-state.pt"
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path.write_bytes(buffer.getvalue())
    _only_checkpoint_errors(path)


@PROPERTY
@given(sd=st.dictionaries(st.text(min_size=1, max_size=12), tensors(), min_size=1, max_size=5))
def test_property_random_state_dicts_in_safetensors_files(tmp_path_factory, sd):
    path = tmp_path_factory.getbasetemp() / "random-state.safetensors"
    try:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    except Exception:  # a dtype safetensors cannot store
        assume(False)
    _only_checkpoint_errors(path)


@PROPERTY
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(tiny_state_dict())), tensors(), min_size=1, max_size=3
    ),
)
def test_property_registry_network_with_odd_tensors(tmp_path_factory, changes):
    sd = {**tiny_state_dict(), **changes}
    path = tmp_path_factory.getbasetemp() / "odd-network.pt"
    torch.save(sd, path)
    _only_checkpoint_errors(path, load=load_model)


METADATA = JSON | st.fixed_dictionaries(
    {},
    optional={
        "family": st.just("A2F") | JSON,
        "variant": st.just("SD") | JSON,
        "scale": st.sampled_from([2, 3, 4]) | JSON,
        "input_range": st.floats() | JSON,
        "origin": st.just("imported") | JSON,
    },
)


@PROPERTY
@given(meta=METADATA | st.text(max_size=12).map(lambda t: {"raw": t}))
def test_property_registry_network_with_random_metadata(tmp_path_factory, meta):
    path = tmp_path_factory.getbasetemp() / "random-meta.safetensors"
    text = meta["raw"] if isinstance(meta, dict) and set(meta) == {"raw"} else json.dumps(meta)
    with_srstudio_text(path, text)
    _only_checkpoint_errors(path, load=load_model)
