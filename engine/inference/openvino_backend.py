"""OpenVINO as the inference backend on the CPU (optional: `pip install srstudio[openvino]`).

A network is traced once into a graph (engine.inference.graph), converted to OpenVINO's IR and
kept on disk in the user cache directory, keyed by the weights' sha256, the network and the
OpenVINO version: the next run reads it back instead of converting again (a conversion takes
5-15 s on 2 cores). The cache decides the output, so it is not trusted as it is (engine.cache):
the folder must be the user's own (0700), and each IR's .xml and .bin are sealed with their
sha256 and the whole weights digest; an IR that does not match its seal is converted again, and
the bytes handed to OpenVINO are the very bytes that were checked; a folder that is not the
user's own means converting in memory, with nothing cached.

A family whose graph takes any height and width (Family.dynamic_graph) has one IR; the others
have one per input shape. The IR is compiled in memory once per (shape,
precision): the tiler gives every tile of an image one shape (engine.inference.tiling's
fixed windows), so one compiled network serves the whole image.

Precision: fp32, or bf16 on CPUs that compute it natively (native_bf16; OpenVINO would run
bf16 requests in fp32 elsewhere). A bf16 input tile asks for the bf16 network; the tiler redoes
a tile whose output is not finite in fp32, as on CUDA.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import cache as disk_cache
from engine.archs.registry import get_family
from engine.descriptor import ModelDescriptor
from engine.errors import SRStudioError
from engine.inference.graph import export_program, quiet

log = logging.getLogger(__name__)

COMPILED_SHAPES = 4  # compiled networks kept per precision (an ensemble's tiles take two shapes)


def available() -> bool:
    """Whether the openvino package is installed (it is an optional extra)."""
    return importlib.util.find_spec("openvino") is not None


@functools.cache
def _core() -> Any:
    import openvino

    return openvino.Core()


def version() -> str:
    import openvino

    return openvino.__version__.split("-")[0]


@functools.cache
def native_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    if not available():
        return False
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def cache_dir() -> Path:
    """Where converted networks are kept: SRSTUDIO_CACHE_DIR, else the user cache directory."""
    return disk_cache.cache_root() / "openvino"


def converts(descriptor: ModelDescriptor) -> bool:
    """Whether the network's family traces into a graph OpenVINO can run."""
    try:
        return get_family(descriptor.family).static_graph
    except ValueError:  # bicubic, or a family this build does not know
        return False


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict: names, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class _Handle:
    def __init__(self, remove: Callable[[], object]) -> None:
        self.remove = remove


class OpenVinoNetwork:
    """A descriptor's network on OpenVINO's CPU plugin, called like the module:
    (1, 3, H, W) float32 or bfloat16 -> (1, 3, H * s, W * s) float32."""

    def __init__(self, descriptor: ModelDescriptor, *, cache: Path | None = None) -> None:
        if not available():
            from engine.inference.backends import openvino_missing

            raise SRStudioError(openvino_missing())
        if not converts(descriptor):
            raise SRStudioError(
                f"{descriptor.label} cannot run on OpenVINO; use the PyTorch engine"
            )
        self.descriptor = descriptor
        self.model = descriptor.model.eval()
        self.dynamic = get_family(descriptor.family).dynamic_graph
        self.cache = disk_cache.private_folder(cache or cache_dir())  # None: nothing cached
        self.weights_digest = weights_sha256(self.model)
        self.key = self.weights_digest[:16]
        self.converted: list[tuple[int, int] | None] = []  # shapes converted (None: dynamic)
        self._models: dict[tuple[int, int] | None, Any] = {}
        self._compiled: dict[tuple[tuple[int, int], bool], Any] = {}
        self._hooks: dict[int, Callable[..., Any]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        bf16 = x.dtype == torch.bfloat16
        request = self._request((int(x.shape[-2]), int(x.shape[-1])), bf16)
        out = request.infer({0: x.detach().float().contiguous().numpy()}, share_inputs=True)
        y = torch.from_numpy(out[0])
        for hook in list(self._hooks.values()):
            hook(self, (x,), y)
        return y

    def register_forward_hook(self, hook: Callable[..., Any]) -> _Handle:
        """hook(network, inputs, output) after each forward, as on a torch module (progress)."""
        key = id(hook)
        self._hooks[key] = hook
        return _Handle(lambda: self._hooks.pop(key, None))

    def _request(self, shape: tuple[int, int], bf16: bool) -> Any:
        found = self._compiled.get((shape, bf16))
        if found is None:
            if len(self._compiled) >= 2 * COMPILED_SHAPES:
                self._compiled.pop(next(iter(self._compiled)))
            found = self._compiled[(shape, bf16)] = self._compile(shape, bf16)
        return found

    def _compile(self, shape: tuple[int, int], bf16: bool) -> Any:
        model = self._ir(None if self.dynamic else shape)
        if self.dynamic:
            model = model.clone()
            model.reshape({0: [1, 3, *shape]})
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        t0 = time.perf_counter()
        compiled = _core().compile_model(model, "CPU", config)
        log.info(
            "OpenVINO: %s compiled for %dx%d, %s (%.1f s)",
            self.descriptor.label,
            shape[1],
            shape[0],
            "bf16" if bf16 else "fp32",
            time.perf_counter() - t0,
        )
        return compiled.create_infer_request()

    def ir_path(self, shape: tuple[int, int] | None) -> Path:
        d = self.descriptor
        size = "any" if shape is None else f"{shape[1]}x{shape[0]}"
        name = f"{d.family}-{d.variant}-x{d.scale}-{self.key}-{size}-ov{version()}.xml"
        return (self.cache or cache_dir()) / name

    def _ir(self, shape: tuple[int, int] | None) -> Any:
        found = self._models.get(shape)
        if found is None:
            found = self._cached(shape)
            if found is None:
                found = self._convert(shape)
                self._save(found, self.ir_path(shape))
            self._models[shape] = found
        return found

    def _cached(self, shape: tuple[int, int] | None) -> Any:
        """The IR kept for `shape`, from the bytes its seal vouches for; None to convert."""
        if self.cache is None:
            return None
        path = self.ir_path(shape)
        files = [path, path.with_suffix(".bin")]
        sealed = disk_cache.read_sealed(files, self.weights_digest, "OpenVINO network")
        if sealed is None:
            return None
        import openvino

        xml, weights = sealed
        try:
            found = _core().read_model(xml, openvino.Tensor(np.frombuffer(weights, np.uint8)))
        except RuntimeError as exc:  # sealed but unreadable (another OpenVINO?): convert again
            log.warning("OpenVINO: cached %s unreadable (%s), converting again", path, exc)
            disk_cache.discard(files)
            return None
        log.info("OpenVINO: %s read from the cache (%s)", self.descriptor.label, path.name)
        return found

    def _convert(self, shape: tuple[int, int] | None) -> Any:
        import openvino

        h, w = shape or (48, 40)  # H != W, so that nothing ties the two sides together
        t0 = time.perf_counter()
        try:
            program = export_program(self.model, torch.zeros(1, 3, h, w), dynamic=shape is None)
            with quiet():
                model = openvino.convert_model(program)
        except Exception as exc:  # noqa: BLE001 - any tracing or conversion failure
            raise SRStudioError(
                f"{self.descriptor.label} could not be converted for OpenVINO "
                f"({type(exc).__name__}); use the PyTorch engine"
            ) from exc
        self.converted.append(shape)
        log.info(
            "OpenVINO: %s converted%s (%.1f s)",
            self.descriptor.label,
            "" if shape is None else f" for {w}x{h}",
            time.perf_counter() - t0,
        )
        return model

    def _save(self, model: Any, path: Path) -> None:
        """Written under temporary names and renamed, then sealed (engine.cache): a reader
        never uses a pair whose seal is not yet written. A cache that cannot be written is
        only logged."""
        import openvino

        if self.cache is None:
            return
        files = [path, path.with_suffix(".bin")]
        try:
            disk_cache.discard(files)  # no old seal may vouch for the pair while it is replaced
            with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
                staged = Path(tmp) / path.name
                openvino.save_model(model, str(staged), compress_to_fp16=False)
                os.replace(staged.with_suffix(".bin"), files[1])
                os.replace(staged, path)
            disk_cache.write_seal(files, self.weights_digest)
        except (OSError, RuntimeError) as exc:
            log.warning("OpenVINO: could not keep the converted network in %s (%s)", path, exc)
