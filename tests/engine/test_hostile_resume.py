"""Resume files checked before torch.load reads them: the zip's CRCs and the digest save_state
writes, so that damaged bytes inside a tensor (still finite, still well formed) refuse the resume
rather than let training go on from them; and weights files whose name is not UTF-8."""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from engine.checkpoints import build_untrained, load_model, save_checkpoint
from engine.errors import CheckpointError
from engine.training import train
from engine.training.state import DIGEST_ENTRY, load_state, state_path
from tests.engine.hostile import stopped_training, train_config


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> tuple[Path, Path]:
    """A run stopped after two iterations: its folder and output (the state is beside it)."""
    root = tmp_path_factory.mktemp("run")
    out = stopped_training(root)
    return root, out


def _copy(stopped, tmp_path: Path) -> tuple[Path, Path]:
    """The stopped run's output and state, copied into `tmp_path`: (output, state file)."""
    _, out = stopped
    mine = tmp_path / out.name
    shutil.copyfile(out, mine)
    shutil.copyfile(state_path(out), state_path(mine))
    return mine, state_path(mine)


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(CheckpointError) as info:
        load_state(path)
    message = str(info.value)
    assert "\n" not in message and path.name in message, message
    for word in words:
        assert word in message, (word, message)
    return message


def _largest_tensor(path: Path) -> tuple[int, int]:
    """(offset, size) in the file of the bytes of the largest tensor (zip entry 'x/data/N')."""
    with zipfile.ZipFile(path) as archive:
        entries = [i for i in archive.infolist() if "/data/" in i.filename]
    info = max(entries, key=lambda i: i.file_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _flip_low_bytes(path: Path, count: int = 64) -> None:
    """Invert the low mantissa byte of `count` float32 values inside a tensor's data: every
    value stays finite and close, so only the file's own checks can tell."""
    start, size = _largest_tensor(path)
    assert size >= 4 * count
    data = bytearray(path.read_bytes())
    for k in range(count):
        data[start + 4 * k] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_saved_state_carries_a_digest_and_resumes(stopped, tmp_path, caplog):
    root, _ = stopped
    out, state = _copy(stopped, tmp_path)
    with zipfile.ZipFile(state) as archive:
        assert any(i.filename.endswith("/" + DIGEST_ENTRY) for i in archive.infolist())
    with caplog.at_level(logging.WARNING, logger="engine.training.state"):
        assert train(train_config(root, out, resume=True)).iterations == 3
    assert "digest" not in caplog.text


def test_flipped_bytes_inside_a_tensor_refuse_the_resume_in_one_line(stopped, tmp_path):
    root, _ = stopped
    out, state = _copy(stopped, tmp_path)
    _flip_low_bytes(state)
    _refused(state, "CRC")
    with pytest.raises(CheckpointError) as info:
        train(train_config(root, out, resume=True))
    assert "\n" not in str(info.value) and state.name in str(info.value)


def test_flipped_bytes_are_refused_without_a_digest_too(stopped, tmp_path):
    """A state written before the digest existed still has its CRCs checked."""
    _, state = _copy(stopped, tmp_path)
    saved = torch.load(state, map_location="cpu", weights_only=True)
    with open(state, "wb") as f:
        torch.save(saved, f)
    _flip_low_bytes(state)
    _refused(state, "CRC")


def test_a_state_whose_digest_differs_is_refused(stopped, tmp_path):
    """Valid CRCs (the file is rewritten whole) but one EMA weight changed since the digest."""
    _, state = _copy(stopped, tmp_path)
    with zipfile.ZipFile(state) as archive:
        entry = next(i for i in archive.infolist() if i.filename.endswith("/" + DIGEST_ENTRY))
        record = archive.read(entry)
    saved = torch.load(state, map_location="cpu", weights_only=True)
    key = next(iter(saved["ema"]))
    saved["ema"][key] = saved["ema"][key] + 0.25
    with open(state, "wb") as f:
        torch.save(saved, f)
    with zipfile.ZipFile(state, "a") as archive:
        folder = archive.infolist()[0].filename.split("/", 1)[0]
        archive.writestr(f"{folder}/{DIGEST_ENTRY}", record)
    _refused(state, "digest")


def test_an_unreadable_digest_is_refused(stopped, tmp_path):
    _, state = _copy(stopped, tmp_path)
    saved = torch.load(state, map_location="cpu", weights_only=True)
    with open(state, "wb") as f:
        torch.save(saved, f)
    with zipfile.ZipFile(state, "a") as archive:
        folder = archive.infolist()[0].filename.split("/", 1)[0]
        archive.writestr(f"{folder}/{DIGEST_ENTRY}", b"[1")
    _refused(state, "digest")


def test_a_state_without_a_digest_still_loads_with_a_log_line(stopped, tmp_path, caplog):
    _, state = _copy(stopped, tmp_path)
    saved = torch.load(state, map_location="cpu", weights_only=True)
    with open(state, "wb") as f:
        torch.save(saved, f)
    with caplog.at_level(logging.WARNING, logger="engine.training.state"):
        assert load_state(state)["iteration"] == saved["iteration"]
    assert "no digest" in caplog.text


def test_a_legacy_pickle_state_is_refused(stopped, tmp_path):
    _, state = _copy(stopped, tmp_path)
    saved = torch.load(state, map_location="cpu", weights_only=True)
    buf = io.BytesIO()
    torch.save(saved, buf, _use_new_zipfile_serialization=False)
    state.write_bytes(buf.getvalue())
    _refused(state, "not a zip")


# ------------------------------------------------------------------------------ file names


def _undecodable(folder: Path, name: bytes) -> Path:
    """folder/name where name is not UTF-8 (a surrogate-escaped str); skip where the file
    system refuses such names."""
    path = folder / os.fsdecode(name)
    try:
        path.write_bytes(b"")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes UTF-8 names only")
    return path


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_weights_whose_name_is_not_utf8_load(tmp_path, suffix):
    path = _undecodable(tmp_path, b"w\xff" + suffix.encode())
    torch.manual_seed(0)
    model = build_untrained("A2F-SD", 2).model
    plain = tmp_path / f"plain{suffix}"
    if suffix == ".pt":
        torch.save(model.state_dict(), plain)
    else:
        save_checkpoint(plain, model, family="A2F", variant="SD", scale=2)
    os.replace(plain, path)
    desc = load_model(path)
    assert (desc.family, desc.variant, desc.scale) == ("A2F", "SD", 2)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(desc.model.state_dict()[key], value, atol=0, rtol=0)
