"""The resume state beside a training's output file, and the random states it carries.

The state file holds only tensors and plain values (non-tensor structures as JSON text), so it is
read back with torch.load(weights_only=True). It is written to a temporary file and renamed.

A resume goes on from whatever the file holds, and flipped bytes inside a tensor's data leave it
well formed (torch.load checks no CRC), so the file is checked before torch.load reads it: every
zip entry is read once, which checks its CRC, and hashed; the sha256 must equal the digest that
save_state appended as one more small JSON entry. A file without that entry (written before it
existed) still has its CRCs checked, and a log line says so.

A state file may be damaged (or crafted), and the trainer would only fail on it later, deep in a
training step, so load_state checks everything the trainer reads before handing it over: the
fields and their JSON types, the network's tensors against a network built on the meta device
(shapes only), the optimiser state against that network's parameters, and the random states by
restoring them into scratch generators. Any problem is one CheckpointError line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import reprlib
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.archs import registry
from engine.atomic import atomic_path
from engine.errors import CheckpointError
from engine.weights_file import (
    check_state_dict,
    display_name,
    inspect_weights_file,
    load_pytorch_file,
    show_value,
)

log = logging.getLogger(__name__)

STATE_FORMAT = "srstudio-train-state"
STATE_VERSION = 1
DIGEST_ENTRY = "srstudio-digest.json"  # the last zip entry: sha256 of all the others


def state_path(output: Path) -> Path:
    """'x.safetensors' -> 'x.resume.pt' (the library ignores .pt files without a sidecar)."""
    return output.with_name(output.stem + ".resume.pt")


def default_output(family: str, variant: str, scale: int) -> Path:
    from engine import library

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return library.user_dir() / "trained" / f"{family}-{variant}-x{scale}-{stamp}.safetensors"


def capture_rng() -> dict[str, Any]:
    state = {
        "python": json.dumps(random.getstate()),
        "numpy": json.dumps(_numpy_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = json.loads(state["numpy"])
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save's zip, then the digest entry (module docstring), renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, **state}, tmp)
        _append_digest(tmp)


def load_state(path: Path) -> dict[str, Any]:
    """The state saved by save_state, checked as the module docstring says."""
    if not path.is_file():
        raise CheckpointError(f"nothing to resume: {path} not found")
    try:
        inspect_weights_file(path)  # the zip's structure, before an entry is read
        check_archive(path)
        state = load_pytorch_file(path)
    except CheckpointError as exc:  # truncated, corrupt or not ours: one clear message
        raise CheckpointError(f"cannot read the training state: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path.name} is not an SR Studio training state")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path.name}: unsupported training state version")
    check_state(state, path.name, path.stat().st_size)
    return state


# ------------------------------------------------------------------------------ the digest


def _entries_digest(archive: zipfile.ZipFile) -> str:
    """sha256 over every entry but the digest, names and bytes; reading an entry to its end
    makes zipfile check its CRC (BadZipFile when it differs)."""
    h = hashlib.sha256()
    for info in archive.infolist():
        if info.filename.rsplit("/", 1)[-1] == DIGEST_ENTRY:
            continue
        h.update(f"{info.filename}\0{info.file_size}\0".encode("utf-8", "surrogateescape"))
        with archive.open(info) as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _append_digest(path: Path) -> None:
    """One more stored entry in torch's zip, inside its folder (torch reads entries by name and
    ignores this one): {"sha256": digest of all the other entries}."""
    with zipfile.ZipFile(path, "a") as archive:
        folder = archive.infolist()[0].filename.split("/", 1)[0]
        record = json.dumps({"sha256": _entries_digest(archive)})
        archive.writestr(f"{folder}/{DIGEST_ENTRY}", record, compress_type=zipfile.ZIP_STORED)


def _recorded_digest(archive: zipfile.ZipFile, name: str) -> str | None:
    entries = [i for i in archive.infolist() if i.filename.rsplit("/", 1)[-1] == DIGEST_ENTRY]
    if not entries:
        return None
    try:
        digest = json.loads(archive.read(entries[0])[:1000])["sha256"]
    except (ValueError, TypeError, KeyError, zipfile.BadZipFile):
        digest = None
    if len(entries) > 1 or not isinstance(digest, str):
        raise CheckpointError(f"{name}: its digest entry is unreadable; the file is damaged")
    return digest


def check_archive(path: Path) -> None:
    """Each zip entry's CRC, and the sha256 of all of them against the digest save_state wrote,
    before torch.load reads anything (module docstring). CheckpointError naming the file."""
    name = display_name(path)
    if not zipfile.is_zipfile(path):  # torch's legacy pickle: nothing to check it by
        raise CheckpointError(f"{name} is not an SR Studio training state (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            recorded = _recorded_digest(archive, name)
            actual = _entries_digest(archive)
    except zipfile.BadZipFile as exc:  # "Bad CRC-32 for file '...'"
        raise CheckpointError(f"{name}: {show_value(exc)}; the file is damaged") from None
    except (OSError, EOFError) as exc:
        raise CheckpointError(f"cannot read {name}: {show_value(exc)}") from None
    if recorded is None:
        log.warning("%s carries no digest (an older SR Studio wrote it); its CRCs match", name)
    elif recorded != actual:
        raise CheckpointError(
            f"{name}: its content differs from the digest written when it was saved; "
            "the file is damaged"
        )


# ------------------------------------------------------------------------------ checks


def _damaged(name: str, problem: str) -> CheckpointError:
    return CheckpointError(f"cannot resume from {name}: {problem}; the training state is damaged")


def _short(value: object) -> str:
    return reprlib.repr(value)  # shortened, and safe from deep nesting


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _json_of(check: Callable[[Any], bool]) -> Callable[[object], bool]:
    """A check of JSON text whose decoded value passes `check`."""

    def valid(value: object) -> bool:
        try:
            return isinstance(value, str) and check(json.loads(value))
        except (ValueError, RecursionError):
            return False

    return valid


def _is_best(value: object) -> bool:  # a PSNR may be infinite (a perfect match)
    return value is None or (isinstance(value, dict) and type(value.get("psnr")) in (int, float))


def _is_base(value: object) -> bool:
    return value is None or (isinstance(value, dict) and isinstance(value.get("name"), str))


def _is_history(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(entry, dict) for entry in value)


_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "family": (lambda v: isinstance(v, str), "text"),
    "variant": (lambda v: isinstance(v, str), "text"),
    "scale": (lambda v: type(v) is int and 2 <= v <= 4, "2, 3 or 4"),
    "iteration": (lambda v: type(v) is int and v >= 0, "a whole number >= 0"),
    "model": (lambda v: isinstance(v, dict) and bool(v), "a state dict"),
    "ema": (lambda v: isinstance(v, dict), "a state dict"),
    "optimizer": (lambda v: isinstance(v, dict), "an optimiser state"),
    "scaler": (lambda v: isinstance(v, dict), "a gradient scaler state"),
    "history": (_json_of(_is_history), "JSON text of a list of objects"),
    "best": (_json_of(_is_best), "JSON text of null or an object with a psnr"),
    "base": (_json_of(_is_base), "JSON text of null or an object with a name"),
    "config": (_json_of(lambda v: isinstance(v, dict)), "JSON text of an object"),
    "rng": (lambda v: isinstance(v, dict), "random number states"),
}


def check_state(state: dict[str, Any], name: str, limit: int) -> None:
    """Everything the trainer reads from a resume state (`name`: the file; `limit`: its size)."""
    for key, (valid, expected) in _FIELDS.items():
        if key not in state:
            raise _damaged(name, f"it has no {key}")
        if not valid(state[key]):
            raise _damaged(name, f"its {key} is {_short(state[key])}, not {expected}")
    network = _network_on_meta(state, name)
    _check_network_state(state["model"], network, f"{name} (model)", limit)
    if state["ema"]:
        _check_network_state(state["ema"], network, f"{name} (ema)", limit)
    _check_optimizer(state["optimizer"], [p.shape for p in network.parameters()], name)
    _check_scaler(state["scaler"], name)
    _check_rng(state["rng"], name)


def _network_on_meta(state: dict[str, Any], name: str) -> nn.Module:
    """The state's network built on the meta device: its shapes, without memory."""
    try:
        family = registry.get_family(state["family"])
        config = family.config(state["variant"], state["scale"])
    except ValueError as exc:
        raise CheckpointError(f"cannot resume from {name}: {exc}") from None
    with torch.device("meta"):
        return family.build(config)


def _check_network_state(sd: dict[Any, Any], network: nn.Module, name: str, limit: int) -> None:
    check_state_dict(sd, name, limit)
    expected = {key: tuple(t.shape) for key, t in network.state_dict().items()}
    found = {key: tuple(t.shape) for key, t in sd.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [k for k in found if found[k] != expected[k]]
        raise CheckpointError(
            f"{name}: its tensors do not fit the network (first: {_short(wrong[0])}); "
            "the training state is damaged"
        )


# The trainer's optimiser: Adam over all parameters in one group, flags at their defaults.
_ADAM_FLAGS = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")


def _is_adam_group(group: object, count: int) -> bool:
    if not isinstance(group, dict) or group.get("params") != list(range(count)):
        return False
    betas = group.get("betas")
    numbers = [group.get(k) for k in ("lr", "eps", "weight_decay")]
    return (
        isinstance(betas, (tuple, list))
        and len(betas) == 2
        and all(_is_number(b) and 0 <= b < 1 for b in betas)
        and all(_is_number(v) and v >= 0 for v in numbers)
        and all(group.get(flag, False) is False for flag in _ADAM_FLAGS)
        and all(group.get(flag) in (None, False) for flag in ("foreach", "fused"))
    )


def _check_optimizer(optimizer: dict[str, Any], shapes: list[torch.Size], name: str) -> None:
    groups, per_param = optimizer.get("param_groups"), optimizer.get("state")
    if not (
        isinstance(groups, list) and len(groups) == 1 and _is_adam_group(groups[0], len(shapes))
    ):
        raise _damaged(name, "its optimiser settings are not those of the trainer's Adam")
    if not isinstance(per_param, dict) or not set(per_param) <= set(range(len(shapes))):
        raise _damaged(name, "its optimiser state is not one entry per network parameter")
    for index, values in per_param.items():
        _check_adam_values(values, shapes[index], f"parameter {index}", name)


def _check_adam_values(values: object, shape: torch.Size, label: str, name: str) -> None:
    if not isinstance(values, dict):
        raise _damaged(name, f"its optimiser state of {label} is not a mapping")
    for key, value in values.items():
        if key == "step" and _is_number(value):
            continue
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise _damaged(name, f"its optimiser {_short(key)} of {label} is not a float tensor")
        wanted = () if key == "step" else tuple(shape)
        if tuple(value.shape) != wanted or value.device.type != "cpu":
            raise _damaged(
                name,
                f"its optimiser {_short(key)} of {label} has shape {tuple(value.shape)}, "
                f"not {wanted}",
            )
        if not bool(torch.isfinite(value).all()):
            raise _damaged(name, f"its optimiser {_short(key)} of {label} holds NaN or infinity")


_SCALER_KEYS = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")


def _check_scaler(scaler: dict[str, Any], name: str) -> None:
    """Empty (no AMP), or the numbers GradScaler.load_state_dict reads."""
    if scaler and not all(_is_number(scaler.get(key)) for key in _SCALER_KEYS):
        raise _damaged(name, "its gradient scaler state lacks numbers it needs")


def _check_rng(rng: dict[str, Any], name: str) -> None:
    """Restores each random state into a scratch generator: what restore_rng will do."""
    try:
        version, internal, gauss = json.loads(rng["python"])
        random.Random().setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = json.loads(rng["numpy"])
        state = (kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)
        np.random.RandomState().set_state(state)
        torch.Generator().set_state(rng["torch"])
        cuda = rng.get("cuda", [])
        if not all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda):
            raise TypeError("CUDA states are not byte tensors")
    except Exception:  # whatever a damaged state makes these raise
        raise _damaged(name, "its random number states cannot be restored") from None
