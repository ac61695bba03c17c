"""Reading a weights file that may have been crafted: its kind, structure, tensors and metadata.

Every weights file may have been crafted by an attacker. Loading one never runs code from it
(safetensors, or torch.load(weights_only=True)), never allocates what it merely declares, and any
file it cannot use gives one CheckpointError line that names the file and the problem.

The validation is written out here rather than left to safetensors and torch: they refuse many bad
files, but with terse messages or exceptions of any type, after trusting some of the sizes a file
declares, and they accept what is well formed but useless (NaN weights, integer tensors, metadata
of the wrong JSON type). So, before a tensor is read:

- the kind of a file is told from its content (safetensors, torch's zip, a legacy pickle), and an
  ONNX model, an image, a text file or a folder is called what it is;
- a safetensors header is parsed here: its length within the file, known dtypes, shapes of whole
  numbers, data offsets that tile the data section exactly, metadata of text;
- a torch zip may hold only uncompressed entries (torch.save never compresses, so no zip bomb) no
  larger than the file, and is memory-mapped rather than read into new storages;
then the state dict must map names to dense floating-point tensors, none larger than the file and
all finite, and the srstudio metadata must be a JSON object whose known fields have sane values.

engine.checkpoints builds networks from what this module returns.
"""

from __future__ import annotations

import json
import math
import pickle
import reprlib
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, load_file
from torch import nn

from engine.errors import CheckpointError

META_KEY = "srstudio"
FORMAT_VERSION = 1
SUPPORTED = "SR Studio loads .safetensors, .pt and .pth state dicts"
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
_HUGE = 1 << 64  # more bytes than any file holds: products of dimensions stop growing there
_FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
_OTHER_DTYPES = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "C64"}
_OTHER_DTYPES |= {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"}
_TORCH_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_ZIP_MAGIC = b"PK\x03\x04"
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x89HDF", "an HDF5 file (Keras weights?)"),
    (b"GGUF", "a GGUF model"),
    (b"\x93NUMPY", "a NumPy array"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"%PDF", "a PDF document"),
)


# ------------------------------------------------------------------------------ message parts


def show_value(value: object, limit: int = 80) -> str:
    """`value` as text fit for a one-line message: control characters escaped, shortened."""
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(value: object, limit: int = 60) -> str:
    """repr(value), shortened (reprlib also stops at nesting a crafted file could make deep)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return show_value(lines[0] if lines else type(exc).__name__, 200)


def display_name(path: Path) -> str:
    return show_value(path.name)


def _json_kind(value: object) -> str:
    kinds = ((bool, "true/false"), (dict, "object"), (list, "array"), (str, "string"))
    kinds += (((int, float), "number"), (type(None), "null"))
    return next((kind for types, kind in kinds if isinstance(value, types)), type(value).__name__)


def _not_readable(name: str, exc: BaseException) -> CheckpointError:
    return CheckpointError(
        f"{name} is not a readable PyTorch checkpoint (truncated, corrupt or another kind of "
        f"file): {first_line(exc)}"
    )


# ------------------------------------------------------------------------------ kinds of file


def _file_size(path: Path) -> int:
    if path.is_dir():
        raise CheckpointError(f"{display_name(path)} is a folder, not a weights file")
    if not path.exists():
        raise CheckpointError(f"weights file not found: {show_value(path, 300)}")
    if not path.is_file():
        raise CheckpointError(f"{display_name(path)} is not a regular file, not a weights file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{display_name(path)} is empty (0 bytes)")
    return size


def _read_head(path: Path, count: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(count)
    except OSError as exc:
        raise CheckpointError(f"cannot read {display_name(path)}: {exc.strerror or exc}") from None


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    return len(head) > 8 and int.from_bytes(head[:8], "little") <= size - 8 and head[8:9] == b"{"


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto opens with field 1 (ir_version, a small varint), then another field."""
    fields = (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42)
    return len(head) >= 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] in fields


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of `head` is still text
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\r\n\t" for c in text)


def _what_it_is(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    return "a text file" if _looks_like_text(head) else None


def _not_weights(path: Path, head: bytes) -> CheckpointError:
    name = display_name(path)
    if path.suffix.lower() == ".onnx" or _looks_like_onnx(head):
        return CheckpointError(
            f"{name} is an ONNX model, not a PyTorch/safetensors state dict; {SUPPORTED}"
        )
    what = _what_it_is(head)
    content = f"it looks like {what}" if what else "its content is none of those formats"
    return CheckpointError(
        f"refused to load {name}: it is not a readable PyTorch checkpoint or safetensors file "
        f"({content}); {SUPPORTED}"
    )


def _file_kind(path: Path, size: int) -> str:
    """The kind of a weights file, told from its content: safetensors, zip (torch.save's format)
    or pickle (torch.save's legacy format); a CheckpointError saying what else it is otherwise."""
    head = _read_head(path, 64)
    if _looks_like_safetensors(head, size):
        return "safetensors"
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2 to 5
        return "pickle"
    if path.suffix.lower() == ".safetensors":  # a damaged one: its header says what is wrong
        return "safetensors"
    raise _not_weights(path, head)


# ------------------------------------------------------------------------------ safetensors


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _bytes_needed(shape: list[int], itemsize: int, limit: int) -> int:
    """numel * itemsize, or limit + 1 as soon as it exceeds `limit` (no huge products)."""
    if 0 in shape:
        return 0
    total = itemsize
    for dim in shape:
        total *= dim
        if total > limit:
            return limit + 1
    return total


def _tensor_span(name: str, key: str, entry: object, data_bytes: int) -> tuple[int, int]:
    """(begin, end) of one tensor's data, after checking its header entry."""
    label = f"{name}: tensor {_quote(key)}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{label} is described by a JSON {_json_kind(entry)}, not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(dtype, str) and dtype in _FLOAT_DTYPES):
        if isinstance(dtype, str) and dtype in _OTHER_DTYPES:
            raise CheckpointError(
                f"{label} is {dtype}, not floating point; network weights are F16, BF16, F32 or F64"
            )
        raise CheckpointError(f"{label} has unknown dtype {_quote(dtype)}")
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
        raise CheckpointError(f"{label} has shape {_quote(shape)}; a shape is whole numbers >= 0")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_count(o) for o in offsets)
        and offsets[0] <= offsets[1]
    ):
        raise CheckpointError(
            f"{label} has data_offsets {_quote(offsets)}; expected [begin, end], 0 <= begin <= end"
        )
    begin, end = offsets
    if end > data_bytes:
        raise CheckpointError(
            f"{label} ends at byte {end:,} of the data, beyond the {data_bytes:,} bytes of data "
            "the file holds; it is truncated or damaged"
        )
    needed = _bytes_needed(shape, _FLOAT_DTYPES[dtype], _HUGE)
    if needed != end - begin:
        amount = f"{needed:,}" if needed <= _HUGE else f"more than {_HUGE:,}"
        raise CheckpointError(
            f"{label} of shape {_quote(tuple(shape))} and dtype {dtype} needs {amount} bytes, "
            f"but its data_offsets span {end - begin:,}; the file is damaged"
        )
    return begin, end


def _check_layout(name: str, entries: dict[str, object], data_bytes: int) -> None:
    """The tensors' data must tile the data section exactly: no overlap, no gap, nothing after."""
    spans = sorted((*_tensor_span(name, key, e, data_bytes), key) for key, e in entries.items())
    end, previous = 0, None
    for begin, stop, key in spans:
        if begin < end:
            raise CheckpointError(
                f"{name}: tensors {_quote(previous)} and {_quote(key)} overlap in the file; "
                "it is damaged"
            )
        if begin > end:
            raise CheckpointError(
                f"{name}: a gap of {begin - end:,} bytes lies before tensor {_quote(key)}; "
                "the file is damaged"
            )
        end, previous = stop, key
    if end != data_bytes:
        raise CheckpointError(
            f"{name}: {data_bytes - end:,} bytes follow the last tensor's data; the file is damaged"
        )


def _header_bytes(path: Path, size: int) -> bytes:
    name = display_name(path)
    if size < 8:
        raise CheckpointError(
            f"{name} is too short to be a safetensors file ({size} bytes); it is truncated or "
            "not safetensors"
        )
    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if length > size - 8:
                raise CheckpointError(
                    f"{name}: its safetensors header claims {length:,} bytes but the file holds "
                    f"{size:,}; it is truncated or not safetensors"
                )
            if length > MAX_HEADER_BYTES:
                raise CheckpointError(
                    f"{name}: its safetensors header claims {length:,} bytes, more than the "
                    f"{MAX_HEADER_BYTES:,} safetensors allows; the file is damaged"
                )
            return f.read(length)
    except OSError as exc:
        raise CheckpointError(f"cannot read {name}: {exc.strerror or exc}") from None


def _reject_constant(text: str) -> None:
    raise ValueError(f"{text} is not JSON")


def _safetensors_header(path: Path, size: int) -> tuple[dict[str, object], dict[str, str]]:
    """(tensor entries, __metadata__) of a safetensors file, checked against the file's size."""
    name, raw = display_name(path), _header_bytes(path, size)
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise CheckpointError(
            f"{name}: its safetensors header is not valid JSON; the file is damaged or not "
            "safetensors"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{name}: its safetensors header is a JSON {_json_kind(header)}, not an object"
        )
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{name}: its safetensors __metadata__ must map names to text")
    _check_layout(name, header, size - 8 - len(raw))
    return header, metadata


def _utf8_name(path: Path) -> bool:
    """Whether `path` can be handed to torch's and safetensors' native code, which take names as
    UTF-8: a name with bytes that are not UTF-8 (a surrogate-escaped str) is read by Python."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_safetensors(path: Path, size: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    _, header_meta = _safetensors_header(path, size)
    meta = parse_metadata(header_meta.get(META_KEY), display_name(path))
    try:
        return (load_file(str(path)) if _utf8_name(path) else load(path.read_bytes())), meta
    except Exception as exc:  # what is left after the checks above is damage
        raise CheckpointError(
            f"{display_name(path)} is not a readable safetensors file (truncated or corrupt?): "
            f"{first_line(exc)}"
        ) from None


# ------------------------------------------------------------------------------ PyTorch files


def _check_torch_zip(path: Path, size: int) -> None:
    """torch.save's zip, inspected before torch reads it: stored (never compressed) entries, no
    larger than the file, with the data.pkl every checkpoint has."""
    name = display_name(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except Exception as exc:  # zipfile raises several types on damaged archives
        raise _not_readable(name, exc) from None
    for info in entries:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"{name}: its zip entry {_quote(show_value(info.filename))} is compressed, which "
                "torch.save never does; refused (it could be a zip bomb)"
            )
        if info.header_offset + info.file_size > size:
            raise CheckpointError(
                f"{name}: its zip entry {_quote(show_value(info.filename))} claims more bytes than "
                "the file holds; it is truncated or damaged"
            )
    files = [info.filename.rsplit("/", 1)[-1] for info in entries]
    if "constants.pkl" in files:
        raise CheckpointError(
            f"{name} is a TorchScript model, not a PyTorch/safetensors state dict; {SUPPORTED}"
        )
    if "data.pkl" not in files:
        raise CheckpointError(
            f"{name} is a zip archive but not a PyTorch checkpoint (it has no data.pkl); "
            f"{SUPPORTED}"
        )
    total = sum(info.file_size for info in entries)
    if total > size:
        raise CheckpointError(
            f"{name}: its zip entries add up to {total:,} bytes, more than the file's {size:,}; "
            "refused"
        )


def _mappable(path: Path) -> bool:
    """Whether torch.load may map `path` (see _utf8_name; else it reads an open file)."""
    return _utf8_name(path) and path.suffix.lower() != ".safetensors"


def _torch_load_file(path: Path, *, mmap: bool) -> Any:
    """torch.load(weights_only=True): tensors and plain containers only, never code. An open file
    unless memory-mapped: torch.load hands a path named *.safetensors to safetensors unchecked."""
    with warnings.catch_warnings():  # a crafted pickle's protocol is no news to the user
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        if mmap and _mappable(path):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        with open(path, "rb") as f:
            return torch.load(f, map_location="cpu", weights_only=True)


def _torch_load(path: Path, *, mmap: bool) -> Any:
    name = display_name(path)
    try:
        return _torch_load_file(path, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise _not_readable(name, exc) from None
        raise CheckpointError(
            f"refused to load {name}: it holds Python objects other than tensors, and "
            "unpickling them could run code. Only plain state dicts are accepted "
            f"({first_line(exc)})"
        ) from None
    except Exception as exc:  # torch raises many types on damaged files
        raise _not_readable(name, exc) from None


def load_pytorch_file(path: str | Path, *, mmap: bool = False) -> Any:
    """What a .pt/.pth file holds, loaded with torch.load(weights_only=True) once its content is
    known to be torch's zip (inspected first) or legacy pickle format. With `mmap`, a zip's
    storages map the file instead of being allocated."""
    path = Path(path)
    size = _file_size(path)
    kind = _file_kind(path, size)
    if kind == "safetensors":
        raise CheckpointError(
            f"{display_name(path)} is a safetensors file, not a PyTorch checkpoint"
        )
    if kind == "zip":
        _check_torch_zip(path, size)
    return _torch_load(path, mmap=mmap and kind == "zip")


# ------------------------------------------------------------------------------ state dicts


def _check_tensor(name: str, key: str, tensor: torch.Tensor, limit: int) -> None:
    label = f"{name}: tensor {_quote(key)}"
    plain = type(tensor) in (torch.Tensor, nn.Parameter) and tensor.layout == torch.strided
    if not plain or tensor.device.type != "cpu" or tensor.is_quantized:
        raise CheckpointError(f"{label} is not a plain dense tensor; expected a plain state dict")
    if tensor.dtype not in _TORCH_FLOATS:
        raise CheckpointError(
            f"{label} is {str(tensor.dtype).removeprefix('torch.')}, not floating point; "
            "network weights are floating point"
        )
    if 0 in tensor.shape:
        raise CheckpointError(
            f"{label} has a zero-sized dimension (shape {tuple(tensor.shape)}); the file is damaged"
        )
    needed = tensor.numel() * tensor.element_size()
    if max(needed, tensor.untyped_storage().nbytes()) > limit:
        raise CheckpointError(
            f"{label} of shape {tuple(tensor.shape)} needs {needed:,} bytes, more than the "
            f"file's {limit:,}; refused"
        )


def check_state_dict(sd: Mapping[Any, Any], name: str, limit: int) -> None:
    """Names (str) to dense floating-point tensors with no zero-sized dimension, none needing more
    than `limit` bytes (the file's size), all finite. `name` (the file) leads each message."""
    for key, value in sd.items():
        if not isinstance(key, str):
            raise CheckpointError(
                f"{name}: key {_quote(key)} ({type(key).__name__}) is not a tensor name; "
                "expected a plain state dict"
            )
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{name}: entry {_quote(key)} is a {type(value).__name__}, not a tensor; "
                "expected a plain state dict"
            )
        _check_tensor(name, key, value, limit)
    for key, tensor in sd.items():  # after the cheap checks: this one reads every weight
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{name}: tensor {_quote(key)} holds NaN or infinite values; the file is damaged"
            )


def describe_state_dict(sd: Mapping[str, torch.Tensor], limit: int = 4) -> str:
    items = list(sd.items())[:limit]
    shown = ", ".join(f"{show_value(k)} {tuple(v.shape)}" for k, v in items)
    return f"{len(sd)} tensors ({shown}{', ...' if len(sd) > limit else ''})"


def _unwrap(obj: Any, name: str, limit: int) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        found = "an empty mapping" if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{name}: expected a state dict (a mapping of names to tensors), found {found}"
        )
    check_state_dict(obj, name, limit)
    return {key.removeprefix("module."): value for key, value in obj.items()}


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, srstudio metadata or {}) from a .safetensors, .pt or .pth file, checked as
    the module docstring says; CheckpointError otherwise."""
    path = Path(path)
    size = _file_size(path)
    if _file_kind(path, size) == "safetensors":
        sd, meta = _read_safetensors(path, size)
    else:
        sd, meta = load_pytorch_file(path, mmap=True), {}
    return _unwrap(sd, display_name(path), size), meta


def inspect_weights_file(path: str | Path) -> dict[str, Any]:
    """What a weights file says of itself, checked without reading its tensors: a safetensors
    file's srstudio metadata ({} without any; always {} for a PyTorch file). CheckpointError for
    a file that is damaged or not weights (a header that lies, a compressed zip, an ONNX model)."""
    path = Path(path)
    size = _file_size(path)
    kind = _file_kind(path, size)
    if kind == "safetensors":
        _, header_meta = _safetensors_header(path, size)
        return parse_metadata(header_meta.get(META_KEY), display_name(path))
    if kind == "zip":
        _check_torch_zip(path, size)
    return {}


# ------------------------------------------------------------------------------ metadata


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_scale(value: object) -> bool:
    return type(value) is int and 1 <= value <= 4  # 1: the clean-up network


def _is_positive(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and value > 0


def _is_version(value: object) -> bool:
    return type(value) is int and value >= 1


_META_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "family": (_is_text, "the name of a network family"),
    "variant": (_is_text, "the name of a variant"),
    "scale": (_is_scale, "1 (clean-up), 2, 3 or 4"),
    "input_range": (_is_positive, "a finite number above 0"),
    "format_version": (_is_version, "a whole number from 1"),
    "origin": (_is_text, "text"),
    "release": (_is_text, "text"),
}


def check_metadata(meta: object, name: str, what: str = "its SR Studio metadata") -> dict[str, Any]:
    """`meta` if it is a JSON object whose known fields have sane values (see _META_FIELDS)."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: {what} is a JSON {_json_kind(meta)}, not an object")
    for key, (valid, expected) in _META_FIELDS.items():
        if key in meta and not valid(meta[key]):
            raise CheckpointError(
                f"{name}: {what} gives {key} {_quote(meta[key])}; expected {expected}"
            )
    return meta


def parse_metadata(
    text: str | None, name: str, what: str = "its SR Studio metadata"
) -> dict[str, Any]:
    """The srstudio metadata from its JSON text ({} for None), checked by check_metadata."""
    if text is None:
        return {}
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{name}: {what} is not valid JSON") from None
    return check_metadata(meta, name, what)
