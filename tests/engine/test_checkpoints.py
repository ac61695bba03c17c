from __future__ import annotations

import builtins
import json
import os
import stat

import pytest
import torch

from engine.archs.registry import FAMILIES, detect, model_names
from engine.checkpoints import (
    build_untrained,
    load_model,
    read_state_dict,
    save_checkpoint,
)
from engine.errors import CheckpointError


class _Payload:
    """Unpickling this opens (creates) a file: code execution a checkpoint must never get."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.open, (self.target, "w"))


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"head.weight": torch.zeros(1), "trap": _Payload(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="refused to load evil.pth"):
        load_model(evil)
    assert not marker.exists()
    # The payload is real: an unsafe load would have run it.
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_empty_and_truncated_files_get_clear_errors(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(empty)
    good = tmp_path / "good.pth"
    torch.save({"w": torch.randn(64, 64)}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_model(cut)
    desc = build_untrained("A2F-SD", 2)
    st = save_checkpoint(
        tmp_path / "m.safetensors", desc.model, family="A2F", variant="SD", scale=2
    )
    cut_st = tmp_path / "cut.safetensors"
    cut_st.write_bytes(st.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(cut_st)
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_model(text)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pth")


def test_unrecognised_state_dict_says_what_was_found_and_expected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.conv.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "encoder.conv.weight (8, 3, 3, 3)" in message
    for family in FAMILIES:
        assert family.name in message
    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        load_model(not_a_dict)


@pytest.mark.parametrize("name", [n for n in model_names() if not n.endswith("-paper")])
def test_project_format_round_trip(tmp_path, name):
    desc = build_untrained(name, 3)
    meta = {"provenance": "test", "psnr": {"Set5": 30.5}}
    path = save_checkpoint(
        tmp_path / f"{name}.safetensors",
        desc.model,
        family=desc.family,
        variant=desc.variant,
        scale=3,
        metadata=meta,
    )
    assert not list(tmp_path.glob("*.tmp"))
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not safetensors' 0600
    loaded = load_model(path)
    assert (loaded.family, loaded.variant, loaded.scale) == (desc.family, desc.variant, 3)
    assert loaded.params == desc.params
    assert loaded.metadata["provenance"] == "test"
    assert loaded.metadata["psnr"] == {"Set5": 30.5}
    for key, value in desc.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[key]), key
    sd, meta_read = read_state_dict(path)
    assert json.dumps(meta_read["psnr"]) == json.dumps(meta["psnr"])
    assert detect(sd)[0].name == desc.family


def test_wrapped_and_prefixed_state_dicts_load(tmp_path):
    desc = build_untrained("A2F-SD", 4)
    wrapped = {"params": {f"module.{k}": v for k, v in desc.model.state_dict().items()}}
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    loaded = load_model(path)
    assert (loaded.name, loaded.scale) == ("A2F-SD", 4)


def test_scale_mismatch_and_unknown_names(tmp_path):
    desc = build_untrained("A2F-SD", 2)
    path = save_checkpoint(
        tmp_path / "m.safetensors", desc.model, family="A2F", variant="SD", scale=2
    )
    with pytest.raises(CheckpointError, match="x2 model"):
        load_model(path, scale=4)
    with pytest.raises(CheckpointError, match="unknown network family"):
        load_model("NotANet-X", scale=2)
    with pytest.raises(CheckpointError, match="no weights installed"):
        load_model("A2F-L", scale=3)
    assert load_model("bicubic", scale=3).model(torch.rand(1, 3, 5, 7)).shape == (1, 3, 15, 21)


RELEASED = {
    "a2f/AAF_SD_x2.pt": ("A2F-SD", 2, 313_372, 255.0),
    "a2f/AAF_SD_x3.pt": ("A2F-SD", 3, 315_997, 255.0),
    "a2f/AAF_SD_x4.pt": ("A2F-SD", 4, 319_672, 255.0),
    "a2f/AAF_S_x3.pt": ("A2F-S", 3, 324_433, 255.0),
    "a2f/AAF_S_x4.pt": ("A2F-S", 4, 331_132, 255.0),
    "a2f/AAF_M_x3.pt": ("A2F-M", 3, 1_003_369, 255.0),
    "a2f/AAF_M_x4.pt": ("A2F-M", 4, 1_010_068, 255.0),
    "hpinet/HPINet-M-x2.pth": ("HPINet-M", 2, 782_539, 1.0),
    "hpinet/HPINet-M-x3.pth": ("HPINet-M", 3, 923_939, 1.0),
    "hpinet/HPINet-M-x4.pth": ("HPINet-M", 4, 895_659, 1.0),
    "hpinet/HPINet-S-x4.pth": ("HPINet-S", 4, 463_131, 1.0),
}


@pytest.mark.parametrize("file", sorted(RELEASED))
def test_released_checkpoints_are_recognised(shared_dir, file):
    name, scale, params, input_range = RELEASED[file]
    desc = load_model(shared_dir / "official-weights" / file)
    assert (desc.name, desc.scale, desc.params, desc.input_range) == (
        name,
        scale,
        params,
        input_range,
    )
