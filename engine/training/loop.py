"""train(): L1 loss, Adam, warm-up + cosine/step schedule, clipping, EMA, AMP on CUDA (fp16) and
on CPUs with native bf16 (bf16 autocast), channels-last tensors, periodic validation with the
papers' PSNR/SSIM, the best weights kept, atomic checkpoints and exact resume.

Exact resume: the network, EMA, optimiser and AMP scaler states are saved with the iteration; the
learning rate is a pure function of the iteration; every batch is a pure function of (seed, rank,
iteration) (engine.training.data); and torch's global generator (HPINet's Gumbel noise) is
re-seeded from (seed, rank, iteration) before each step. A killed run resumed from its last
checkpoint therefore ends with the weights of an uninterrupted run (on the same device and
thread count, with the same precision and memory format).

The data thread decodes the images of the next batch while the network trains; the steps wait
for it ~0 ms once the images are cached (~3 ms an iteration over the first epoch). The crops and
the degradation (torch resizing) run on the training thread: ~12 ms a batch of 8 32x32 patches
at x2, ~5% of an A2F-SD step on 2 cores; made in the data thread (one torch thread) instead, the
steps measured no faster there (bench/bench_training.py, BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.archs import registry
from engine.atomic import refuse_writing_over_inputs
from engine.checkpoints import load_model, save_checkpoint
from engine.descriptor import ModelDescriptor
from engine.distributed import local_device
from engine.errors import ProgressFn, SRStudioError, StopFn, never_stop, no_progress
from engine.evaluate import Pair, evaluate
from engine.imaging.color import tensor_to_uint8
from engine.inference.devices import cpu_native_bf16
from engine.library import file_sha256
from engine.training import data, distributed, state
from engine.training.config import (
    LogEvent,
    LossEvent,
    TrainConfig,
    TrainResult,
    ValidationEvent,
    learning_rate,
)
from engine.training.distributed import DistInfo

EventFn = Callable[[object], None]
PREVIEW_LR_SIDE = 128  # LR pixels of the validation preview crop
# Settings that decide the batches and the updates: an exact resume needs them unchanged.
_SAME_ON_RESUME = (
    "hr_dirs",
    "lr_dirs",
    "degradation",
    "noise_level",
    "jpeg",
    "noise_range",
    "patch_size",
    "batch_size",
    "lr",
    "schedule",
    "warmup",
    "step_every",
    "step_gamma",
    "grad_clip",
    "ema",
    "seed",
    "amp",
)
# Also kept: the arithmetic actually used (_Numerics: the "auto" precision depends on the CPU).


HELD_OUT_IMAGES = "held-out images"  # metadata data.validation: "10 held-out images"


def _data_name(path: Path, folders: Sequence[str]) -> str:
    """An image's name as FOLDER/relative/path, the same on any machine."""
    resolved = path.resolve()
    for folder in folders:
        root = Path(folder).resolve()
        if resolved.is_relative_to(root):
            return f"{root.name}/{resolved.relative_to(root).as_posix()}"
    return path.name


def _no_event(event: object) -> None:
    """Default on_event."""


@dataclass
class _Network:
    family: str
    variant: str
    scale: int
    model: nn.Module
    base: dict[str, Any] | None  # provenance of the starting weights


@dataclass
class _Progress:
    iteration: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None


def _network(config: TrainConfig) -> _Network:
    """The starting network: base weights (a file or an installed model name), or a fresh one
    initialised from the seed."""
    if config.base:
        desc = load_model(config.base, scale=config.scale)
        if desc.family == "Bicubic":
            raise SRStudioError("bicubic has nothing to train")
        if config.model and config.model.lower() not in (desc.name.lower(), desc.family.lower()):
            raise SRStudioError(f"{config.base} holds {desc.name}, not {config.model}")
        return _Network(desc.family, desc.variant, desc.scale, desc.model, _provenance(desc))
    try:
        family, variant, name_scale = registry.parse_model_name(config.model or "")
    except ValueError as exc:
        raise SRStudioError(str(exc)) from None
    scale = config.scale or name_scale
    if scale is None:
        raise SRStudioError(f"give a scale for {config.model} (e.g. 2, 3 or 4)")
    if name_scale is not None and config.scale is not None and name_scale != config.scale:
        raise SRStudioError(f"{config.model} names x{name_scale} but x{config.scale} was asked")
    try:
        arch = family.config(variant, scale)
    except ValueError as exc:
        raise SRStudioError(str(exc)) from None
    torch.manual_seed(config.seed)
    model = family.build(arch)
    base = _init_from(model, family.name, config.init) if config.init else None
    return _Network(family.name, variant, scale, model, base)


def _init_from(model: nn.Module, family: str, source: str) -> dict[str, Any]:
    """Copy into `model` every tensor of `source` whose name and shape match (x2 weights give a
    x3/x4 run all but its upsampler); the rest keeps its fresh initialisation."""
    desc = load_model(source)
    if desc.family != family:
        raise SRStudioError(f"{source} holds {desc.name}, not a {family} network")
    theirs = desc.model.state_dict()
    ours = model.state_dict()
    same = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    model.load_state_dict(same, strict=False)
    return _provenance(desc, tensors=f"{len(same)} of {len(ours)}")


# What a weights file says of its own making. It goes into the weights trained from it, so that
# a chain (x2 -> x4 -> x4 trained further) stays traceable to its data when a file is replaced.
_LINEAGE = ("origin", "release", "data", "iterations", "training", "base_weights", "created")


def _provenance(desc: ModelDescriptor, **extra: str) -> dict[str, Any]:
    source = Path(desc.source)
    base: dict[str, Any] = {"name": desc.label, "path": str(source), **extra}
    if source.is_file():
        base["sha256"] = file_sha256(source)
    made = {key: desc.metadata[key] for key in _LINEAGE if key in desc.metadata}
    if made:
        base["metadata"] = made
    return base


def _network_from_state(saved: dict[str, Any]) -> _Network:
    family = registry.get_family(saved["family"])
    model = family.build(family.config(saved["variant"], int(saved["scale"])))
    model.load_state_dict(saved["model"], strict=True)
    base = json.loads(saved["base"])
    return _Network(family.name, saved["variant"], int(saved["scale"]), model, base)


def resolve_precision(precision: str, native: bool | None = None) -> str:
    """The CPU precision a TrainConfig.precision means here: "bf16" or "fp32" ("auto": bf16 only
    where the CPU computes it natively; `native` None asks cpu_native_bf16)."""
    if precision == "auto":
        return "bf16" if (cpu_native_bf16() if native is None else native) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise SRStudioError(f"unknown precision {precision!r}: use auto, fp32 or bf16")
    return precision


@dataclass(frozen=True)
class _Numerics:
    """The arithmetic of the training step: the forward's autocast dtype (None: fp32) and the
    memory format of the network and its input."""

    autocast: torch.dtype | None
    channels_last: bool

    @classmethod
    def of(cls, config: TrainConfig, device: torch.device) -> _Numerics:
        if device.type == "cuda":
            dtype = torch.float16 if config.amp else None
        elif device.type == "cpu" and resolve_precision(config.precision) == "bf16":
            dtype = torch.bfloat16
        else:
            dtype = None
        return cls(dtype, config.channels_last)

    def describe(self) -> dict[str, Any]:
        names = {torch.float16: "fp16", torch.bfloat16: "bf16", None: "fp32"}
        return {"precision": names[self.autocast], "channels_last": self.channels_last}

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def _step_seed(seed: int, rank: int, iteration: int) -> int:
    return int(np.random.SeedSequence([seed, 23, rank, iteration]).generate_state(1, np.uint64)[0])


class _EMA:
    """Exponential moving average of the weights, decay warmed up as min(d, (1 + t) / (10 + t))."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for ema, cur in zip(
            self.model.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema.is_floating_point():
                ema.lerp_(cur, 1.0 - d)
            else:
                ema.copy_(cur)


class _Trainer:
    def __init__(
        self, config: TrainConfig, info: DistInfo, device: torch.device, on_event: EventFn
    ) -> None:
        self.config, self.info, self.device = config, info, device
        self.emit = on_event if info.is_main else _no_event
        self.started = time.perf_counter()
        self.numerics = _Numerics.of(config, device)
        # seconds the steps waited for the data thread, and spent making batches themselves
        self.data_wait = self.data_batch = 0.0

    def log(self, text: str) -> None:
        self.emit(LogEvent(text))

    # ----------------------------------------------------------------------------- set-up

    def setup(self) -> None:
        cfg = self.config
        if cfg.resume and not cfg.output:
            raise SRStudioError("resuming needs the output file of the run to continue")
        saved = None
        if cfg.resume:
            self.output = Path(cfg.output)  # type: ignore[arg-type]
            saved = state.load_state(state.state_path(self.output))
            self.net = _network_from_state(saved)
        else:
            self.net = _network(cfg)
            default = state.default_output(self.net.family, self.net.variant, self.net.scale)
            self.output = Path(cfg.output) if cfg.output else default
            self.output = Path(distributed.broadcast(self.info, str(self.output)))
        if self.output.suffix.lower() != ".safetensors":
            raise SRStudioError(f"the output must be a .safetensors file, got {self.output.name}")
        self.state_file = state.state_path(self.output)
        # The output is the base file itself (weights trained further): its starting point is
        # not written back, since the file already holds those weights and rewriting it would
        # give it this run's record before the run has changed anything.
        base_path = (self.net.base or {}).get("path")
        self.in_place = bool(base_path) and Path(base_path).resolve() == self.output.resolve()
        inputs = [p for p in (cfg.init, *cfg.hr_dirs, *(cfg.lr_dirs or ()), cfg.val_dir) if p]
        inputs += [cfg.val_lr_dir] if cfg.val_lr_dir else []
        inputs += [cfg.behind] if cfg.behind and Path(cfg.behind).exists() else []
        refuse_writing_over_inputs(self.output, inputs)
        refuse_writing_over_inputs(self.state_file, [*inputs, *([base_path] if base_path else [])])
        self.front = self._front() if cfg.behind else None
        self._data()
        model = self.net.model.to(self.device, memory_format=self.numerics.memory_format).train()
        self.ema = _EMA(model, cfg.ema) if cfg.ema > 0 else None
        self.ddp = distributed.wrap(model, self.info, self.device)
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.effective_lr, betas=(0.9, 0.999), eps=1e-8
        )
        self.amp = self.numerics.autocast == torch.float16  # fp16 needs the gradient scaler
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.progress = _Progress()
        if saved is not None:
            self._restore(saved)
        what = "from scratch"
        if self.net.base:
            what = f"from {self.net.base['name']}"
            if "tensors" in self.net.base:
                what += f" ({self.net.base['tensors']} tensors)"
        numerics = self.numerics.describe()
        how = numerics["precision"] + (", channels last" if numerics["channels_last"] else "")
        self.log(
            f"training {self.net.family}-{self.net.variant} x{self.net.scale} {what} on "
            f"{len(self.sampler.entries)} images ({cfg.degradation}), "
            f"{len(self.val_pairs)} validation images, {self.device} ({how})"
            + (f", {self.info.world} processes" if self.info.enabled else "")
            + (f", resuming at iteration {self.progress.iteration}" if saved else "")
        )

    def _front(self) -> nn.Module:
        """The frozen 1x restorer of TrainConfig.behind, on the training device."""
        desc = load_model(self.config.behind)
        if desc.scale != 1 or desc.family not in {f.name for f in registry.RESTORERS}:
            raise SRStudioError(f"{self.config.behind} holds {desc.label}, not a clean-up network")
        if self.net.scale == 1:
            raise SRStudioError("a clean-up network trains on its own, not behind another")
        self.behind = _provenance(desc)
        front = desc.model.to(self.device).eval()
        for p in front.parameters():
            p.requires_grad_(False)
        return front

    def _restore_lr(self, lr: torch.Tensor) -> torch.Tensor:
        """What the network sees of an LR batch: the clean-up network's output when training
        behind it."""
        if self.front is None:
            return lr
        with torch.no_grad():
            return self.front(lr).clamp(0, 1)

    def _data(self) -> None:
        cfg, scale = self.config, self.net.scale
        warn = self.log
        entries = data.scan(cfg.hr_dirs, cfg.lr_dirs, scale, 1, warn)
        if cfg.val_dir:
            lr_dirs = [cfg.val_lr_dir] if cfg.val_lr_dir else None
            val_entries = data.scan([cfg.val_dir], lr_dirs, scale, 1, warn)
        else:
            entries, val_entries = data.hold_out(entries, cfg.val_split, cfg.seed)
        entries = data.large_enough(entries, cfg.patch_size, warn)
        held = [] if cfg.val_dir else val_entries
        self.held_out = sorted(_data_name(e.hr, cfg.hr_dirs) for e in held)
        self.sampler = data.PatchSampler(
            entries,
            scale=scale,
            patch_size=cfg.patch_size,
            degradation=cfg.degradation,
            noise_level=cfg.noise_level,
            seed=cfg.seed,
            rank=self.info.rank,
            world=self.info.world,
            cache_mb=cfg.cache_mb,
            warn=warn,
            real=cfg.real_degradation(),
        )
        self.val_pairs: list[Pair] = []
        if self.info.is_main and val_entries:
            self.val_pairs = data.validation_pairs(
                val_entries,
                scale=scale,
                degradation=cfg.degradation,
                noise_level=cfg.noise_level,
                seed=cfg.seed,
                limit=cfg.val_max_images,
                warn=warn,
                real=cfg.real_degradation(),
            )
        self.data_meta = {
            "hr_dirs": [str(Path(d).resolve()) for d in cfg.hr_dirs],
            "lr_dirs": [str(Path(d).resolve()) for d in cfg.lr_dirs] if cfg.lr_dirs else None,
            "degradation": cfg.degradation,
            "noise_level": cfg.noise_level if cfg.degradation == "DN" else None,
            "real": real.describe() if (real := cfg.real_degradation()) else None,
            "train_images": len(entries),
            "validation": None,
        }
        if self.front is not None:
            self.data_meta["behind"] = self.behind
        if cfg.val_dir:
            self.data_meta["validation"] = str(Path(cfg.val_dir).resolve())
        elif val_entries:
            self.data_meta["validation"] = f"{len(val_entries)} {HELD_OUT_IMAGES}"
            self.data_meta["held_out"] = self.held_out
            self._compare_held_out_with_base()

    def _compare_held_out_with_base(self) -> None:
        made = (self.net.base or {}).get("metadata") or {}
        base_data = made.get("data") if isinstance(made.get("data"), dict) else {}
        theirs = base_data.get("held_out")
        if isinstance(theirs, list) and theirs != self.held_out:
            why = "held out other images than this run does"
        elif theirs is None and str(base_data.get("validation", "")).endswith(HELD_OUT_IMAGES):
            why = "do not record which images they held out"  # made before they were recorded
        else:
            return
        self.log(
            f"note: the starting weights {why}, so some of this run's validation images may "
            "have been in their training data"
        )

    def _restore(self, saved: dict[str, Any]) -> None:
        if self.ema is not None and saved["ema"]:
            self.ema.model.load_state_dict(saved["ema"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.amp and saved["scaler"]:
            self.scaler.load_state_dict(saved["scaler"])
        self.progress = _Progress(
            int(saved["iteration"]), json.loads(saved["history"]), json.loads(saved["best"])
        )
        state.restore_rng(saved["rng"])
        before = json.loads(saved["config"])
        now = self.config.to_dict()
        changed = [k for k in _SAME_ON_RESUME if json.dumps(before.get(k)) != json.dumps(now[k])]
        recorded = before.get("held_out")
        if recorded is not None and recorded != self.held_out:
            changed.append("the held-out images")
        elif recorded is None and self.held_out:  # a state from before they were recorded
            changed.append("perhaps the held-out images (not recorded then)")
        used, numerics = before.get("numerics"), self.numerics.describe()
        if not isinstance(used, dict):  # a state from before the option: fp32 (fp16 with amp
            # on CUDA), contiguous
            used = {"precision": "fp16" if self.amp else "fp32", "channels_last": False}
        changed += [k for k, v in numerics.items() if used.get(k) != v]
        if changed:
            self.log(
                f"note: {', '.join(changed)} changed since the run began; the resumed run "
                "will not match an uninterrupted one"
            )

    # ----------------------------------------------------------------------------- files

    @property
    def model(self) -> nn.Module:
        return distributed.unwrap(self.ddp)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.model

    def _write_output(self, measured: dict[str, float] | None) -> None:
        p = self.progress
        meta = {
            "origin": "trained",
            "base_weights": self.net.base,
            "data": self.data_meta,
            "iterations": p.iteration,
            "validation_history": p.history,
            "psnr": measured["psnr"] if measured else None,
            "ssim": measured["ssim"] if measured else None,
            "weights": "ema" if self.ema is not None else "raw",
            "training": self.config.to_dict()
            | {"output": str(self.output), "numerics": self.numerics.describe()},
            "world_size": self.info.world,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        save_checkpoint(
            self.output,
            self.eval_model,
            family=self.net.family,
            variant=self.net.variant,
            scale=self.net.scale,
            metadata=meta,
        )

    def _write_state(self) -> None:
        p = self.progress
        cpu = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        ema = {}
        if self.ema is not None:
            ema = {k: v.detach().cpu().contiguous() for k, v in self.ema.model.state_dict().items()}
        state.save_state(
            self.state_file,
            {
                "family": self.net.family,
                "variant": self.net.variant,
                "scale": self.net.scale,
                "iteration": p.iteration,
                "model": cpu,
                "ema": ema,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.amp else {},
                "history": json.dumps(p.history),
                "best": json.dumps(p.best),
                "base": json.dumps(self.net.base),
                "config": json.dumps(
                    self.config.to_dict()
                    | {"numerics": self.numerics.describe(), "held_out": self.held_out}
                ),
                "rng": state.capture_rng(),
            },
        )

    def _may_write(self) -> bool:
        """Whether the output may be written now: not at iteration 0 of a run in place, whose
        output already holds the starting weights."""
        return self.progress.iteration > 0 or not self.in_place

    def checkpoint(self) -> None:
        if self.info.is_main:
            self._write_state()
            # Without validation the output follows the latest weights.
            if not self.val_pairs and self._may_write():
                self._write_output(None)

    # ----------------------------------------------------------------------------- validation

    def validate(self) -> None:
        if not self.info.is_main or not self.val_pairs:
            return
        model, scale = self.eval_model, self.net.scale
        was_training = model.training
        model.eval()
        first: list[torch.Tensor] = []

        def upscale(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                y = model(self._restore_lr(x.to(self.device))).float().cpu()
            if not first:
                first.append(y)
            return y

        try:
            result = evaluate(
                upscale, self.val_pairs, scale, model="training", device=str(self.device)
            )
        finally:
            model.train(was_training)
        p = self.progress
        entry = {"iteration": p.iteration, "psnr": result.psnr, "ssim": result.ssim}
        p.history.append(entry)
        best = p.best is None or result.psnr > p.best["psnr"]
        if best:
            p.best = entry
            if self._may_write():
                self._write_output(entry)
        self.emit(
            ValidationEvent(p.iteration, result.psnr, result.ssim, best, self._preview(first))
        )
        self.log(
            f"iteration {p.iteration}: validation PSNR {result.psnr:.3f} dB, SSIM "
            f"{result.ssim:.4f}" + (" (best)" if best else "")
        )

    def _preview(self, first: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pair, s, side = self.val_pairs[0], self.net.scale, PREVIEW_LR_SIDE
        sr = tensor_to_uint8(first[0])
        h, w = pair.lr.shape[:2]
        y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
        crop_lr = pair.lr[y : y + side, x : x + side]
        crop_sr = sr[y * s : (y + side) * s, x * s : (x + side) * s]
        crop_hr = pair.hr[y * s : (y + side) * s, x * s : (x + side) * s]
        return crop_lr.copy(), crop_sr.copy(), crop_hr.copy()

    # ----------------------------------------------------------------------------- training

    def _prefetch(self, iteration: int) -> Future | None:
        """Decode the images of batch `iteration` in the data thread while the network trains
        (batches depend only on the iteration, so this changes nothing but the speed)."""
        if iteration >= self.total:
            return None
        return self.pool.submit(self.sampler.preload, iteration, self.config.batch_size)

    def step(self, iteration: int) -> float:
        cfg = self.config
        rate = learning_rate(cfg, iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        torch.manual_seed(_step_seed(cfg.seed, self.info.rank, iteration))
        loading = self.next_load or self._prefetch(iteration)
        assert loading is not None
        started = time.perf_counter()
        loading.result()
        waited = time.perf_counter()
        self.next_load = self._prefetch(iteration + 1)
        lr, hr = self.sampler.batch(iteration, cfg.batch_size)
        self.data_wait += waited - started
        self.data_batch += time.perf_counter() - waited
        lr = self._restore_lr(lr.to(self.device)).contiguous(
            memory_format=self.numerics.memory_format
        )
        hr = hr.to(self.device)
        dtype = self.numerics.autocast
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            sr = self.ddp(lr)
        loss = F.l1_loss(sr.float(), hr)  # the loss, the gradients and Adam in fp32
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model, iteration)
        return float(loss.detach())

    def run(self, on_progress: ProgressFn, should_stop: StopFn) -> TrainResult:
        with ThreadPoolExecutor(1, thread_name_prefix="srstudio-data") as self.pool:
            self.next_load: Future | None = None
            try:
                return self._run(on_progress, should_stop)
            finally:
                if self.next_load is not None:
                    self.next_load.cancel()

    def _run(self, on_progress: ProgressFn, should_stop: StopFn) -> TrainResult:
        cfg, p = self.config, self.progress
        self.total = total = max(cfg.iterations, p.iteration)
        if p.iteration == 0 and not p.history:
            self.validate()  # the starting point (fine-tuning must not end below it)
            self.checkpoint()
        on_progress(p.iteration, total)
        loss_sum, loss_count, stopped = 0.0, 0, False
        while p.iteration < total:
            loss = self.step(p.iteration)
            p.iteration += 1
            loss, stopped = distributed.sum_and_any(self.info, loss, should_stop(), self.device)
            if not math.isfinite(loss):
                raise SRStudioError(
                    f"the loss became {loss} at iteration {p.iteration}; lower the learning rate"
                    " or enable gradient clipping"
                )
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            on_progress(p.iteration, total)
            done = p.iteration == total
            if p.iteration % cfg.log_every == 0 or done or stopped:
                rate = learning_rate(cfg, p.iteration - 1)
                self.emit(LossEvent(p.iteration, loss_sum / loss_count, rate))
                loss_sum, loss_count = 0.0, 0
            if p.iteration % cfg.val_every == 0 or done:
                self.validate()
            if p.iteration % cfg.effective_checkpoint_every == 0 or done or stopped:
                self.checkpoint()
            if stopped:
                break
        if stopped:
            self.log(f"stopped at iteration {p.iteration}; resume state: {self.state_file}")
        if p.best is not None and p.best["iteration"] == 0 and self.in_place:
            self.log(f"no better than the starting weights: {self.output} left as it was")
        else:
            self.log(f"weights written to {self.output}")
        distributed.barrier(self.info)
        return TrainResult(
            output=str(self.output),
            resume_state=str(self.state_file),
            iterations=p.iteration,
            stopped=stopped and p.iteration < total,
            best_psnr=p.best["psnr"] if p.best else None,
            history=list(p.history),
            seconds=time.perf_counter() - self.started,
        )


def train(
    config: TrainConfig,
    *,
    on_progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    on_event: EventFn = _no_event,
) -> TrainResult:
    """Train (or resume, with config.resume) and write the project's weights format. Under
    torchrun each process calls this; only rank 0 reports events and writes files."""
    info = distributed.from_env()
    device = local_device(config.device, info)
    owns_group = distributed.init(info, device)
    try:
        trainer = _Trainer(config, info, device, on_event)
        trainer.setup()
        return trainer.run(on_progress, should_stop)
    finally:
        if owns_group:
            distributed.shutdown()
