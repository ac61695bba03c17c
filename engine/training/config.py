"""Training settings, the events a run reports, and its result."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import SRStudioError
from engine.training.real_degradation import RealDegradation

DEGRADATIONS = ("BI", "BD", "DN", "real")
SCHEDULES = ("cosine", "step")
PRECISIONS = ("auto", "fp32", "bf16")  # the CPU's arithmetic (CUDA: `amp`)
# The training step's memory format, one default for every family (the only place it is
# decided): channels_last (NHWC) was not faster than contiguous (NCHW) for any bundled family in
# every run on a 2-core AVX2 CPU (0.93-1.32x, within the noise between rounds; BENCHMARKS.md,
# "Training (CPU)"), so contiguous, as the bundled weights were trained.
CHANNELS_LAST_DEFAULT = False


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `model` (e.g. "A2F-SD") is needed when training from scratch; with
    `base` (a weights file, or an installed model name) the network comes from the weights.
    `init` (with `model`): start from the tensors of these weights whose names and shapes match,
    e.g. x2 weights for a x3 or x4 network (the upsampler then starts fresh).

    Data: `hr_dirs` are folders of HR images; LR patches are made on the fly by `degradation`:
    "BI" (MATLAB bicubic), "BD" (7x7 Gaussian blur, sigma 1.6, then bicubic) or "DN" (bicubic, then
    Gaussian noise of `noise_level` on the 0..255 scale) or "real" (blur, a resize by a random
    method, noise and JPEG as real photos are made, engine.training.real_degradation; `jpeg` and
    `noise_range` narrow its JPEG qualities and noise sigmas for a targeted run). `behind` (with
    "real"): the weights of a 1x restorer (the clean-up network) every LR patch passes through,
    frozen, before the network sees it, so that the network learns to upscale what the clean-up
    leaves; the LR is then made as the clean-up was trained for (MATLAB bicubic, no blur) before
    its noise and JPEG. With `lr_dirs`
    (one per HR folder, same file names, or DIV2K-style "<stem>x<scale>") the LR images are read
    instead.
    `patch_size` is the LR patch side; `batch_size` is per process under torchrun.
    Validation: `val_dir` (HR, and `val_lr_dir` for paired LR) or `val_split` (a fraction of the HR
    images, or a count when >= 1, held out of training); every `val_every` iterations.
    `lr` None: 1e-4 from scratch, 2e-5 when fine-tuning; `warmup` None: iterations // 20 (at most
    1000); `step_every` None: iterations // 4. `ema` 0 turns the weight average off.
    `output` None: a new file under the library's user folder, trained/.
    Arithmetic: `amp` runs the forward in fp16 on CUDA (with a gradient scaler). `precision` is the
    CPU's: "auto" runs the forward under bf16 autocast where the CPU computes bf16 natively
    (AVX512-BF16 or AMX, or Arm's BF16) and in fp32 elsewhere; "bf16" forces it (emulated, slow,
    without native support); "fp32" never. The loss, gradients, optimiser state, EMA and the
    weights stay fp32, and validation runs in fp32. `channels_last` trains with NHWC tensors
    (same numbers up to rounding, a different speed). The arithmetic actually used is recorded
    with the run (weights metadata "training"/"numerics", and the resume state); a resume that
    changes it says that it will not match an uninterrupted run."""

    model: str | None = None
    scale: int | None = None
    base: str | None = None
    init: str | None = None
    hr_dirs: tuple[str, ...] = ()
    lr_dirs: tuple[str, ...] | None = None
    degradation: str = "BI"
    noise_level: float = 30.0
    jpeg: tuple[int, int] | None = None  # "real": JPEG qualities (default RealDegradation's)
    noise_range: tuple[float, float] | None = None  # "real": noise sigmas on 0..255
    behind: str | None = None  # a 1x restorer's weights the LR patches pass through first
    patch_size: int = 48
    batch_size: int = 16
    iterations: int = 10_000
    lr: float | None = None
    schedule: str = "cosine"
    warmup: int | None = None
    step_every: int | None = None
    step_gamma: float = 0.5
    grad_clip: float = 0.0
    ema: float = 0.999
    val_dir: str | None = None
    val_lr_dir: str | None = None
    val_split: float = 0.0
    val_every: int = 500
    val_max_images: int = 20
    checkpoint_every: int | None = None
    log_every: int = 10
    seed: int = 0
    output: str | None = None
    resume: bool = False
    device: str = "auto"
    amp: bool = True
    precision: str = "auto"
    channels_last: bool = CHANNELS_LAST_DEFAULT
    cache_mb: int = 2048

    def __post_init__(self) -> None:
        if self.model is None and self.base is None:
            raise SRStudioError("give a model name (to train from scratch) or base weights")
        if not self.hr_dirs:
            raise SRStudioError("give at least one folder of HR training images")
        if self.init and (self.base or not self.model):
            raise SRStudioError("initial weights go with --model (from scratch), not --base")
        if self.lr_dirs is not None and len(self.lr_dirs) != len(self.hr_dirs):
            raise SRStudioError("give one LR folder per HR folder")
        if self.degradation not in DEGRADATIONS:
            raise SRStudioError(f"degradation must be one of {', '.join(DEGRADATIONS)}")
        if self.schedule not in SCHEDULES:
            raise SRStudioError(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise SRStudioError(f"precision must be one of {', '.join(PRECISIONS)}")
        if (self.jpeg or self.noise_range) and self.degradation != "real":
            raise SRStudioError("JPEG and noise ranges go with the real degradation")
        self.real_degradation()  # checks the ranges
        if self.behind and self.degradation != "real":
            raise SRStudioError("training behind the clean-up goes with the real degradation")
        checks = {
            "iterations": self.iterations >= 1,
            "batch size": self.batch_size >= 1,
            "patch size": self.patch_size >= 4,
            "validation interval": self.val_every >= 1,
            "EMA decay (0..1)": 0.0 <= self.ema < 1.0,
            "noise level": self.noise_level >= 0,
            "learning rate": self.lr is None or self.lr > 0,
            "gradient clip": self.grad_clip >= 0,
            "validation split": self.val_split >= 0,
            "checkpoint interval": self.checkpoint_every is None or self.checkpoint_every >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise SRStudioError(f"invalid {', '.join(bad)}")

    def real_degradation(self) -> RealDegradation | None:
        """The "real" degradation's ranges, None for the others."""
        if self.degradation != "real":
            return None
        ranges: dict[str, Any] = {}
        if self.jpeg:
            ranges["jpeg"] = (int(self.jpeg[0]), int(self.jpeg[1]))
        if self.noise_range:
            ranges["noise"] = (float(self.noise_range[0]), float(self.noise_range[1]))
        if self.behind:  # the LR images the clean-up network was trained to give back
            ranges |= {"blur_probability": 0.0, "resize_methods": ("bicubic",)}
        return RealDegradation(**ranges)

    @property
    def effective_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 2e-5 if self.base else 1e-4

    @property
    def effective_warmup(self) -> int:
        return self.warmup if self.warmup is not None else min(1000, self.iterations // 20)

    @property
    def effective_checkpoint_every(self) -> int:
        return self.checkpoint_every or self.val_every

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        for key in ("hr_dirs", "lr_dirs", "jpeg", "noise_range"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def learning_rate(config: TrainConfig, iteration: int) -> float:
    """The rate for (0-based) `iteration`: linear warm-up, then cosine to 1% or steps of
    step_gamma. A pure function of the iteration, so a resumed run follows the same curve."""
    base, warmup = config.effective_lr, config.effective_warmup
    if iteration < warmup:
        return base * (iteration + 1) / (warmup + 1)
    if config.schedule == "step":
        every = config.step_every or max(1, config.iterations // 4)
        return base * config.step_gamma ** ((iteration - warmup) // every)
    span = max(1, config.iterations - warmup)
    t = min(1.0, (iteration - warmup) / span)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass(frozen=True)
class LossEvent:
    iteration: int  # iterations done
    loss: float  # mean L1 (0..1 scale) since the previous LossEvent
    lr: float


@dataclass(frozen=True)
class ValidationEvent:
    iteration: int
    psnr: float
    ssim: float
    best: bool  # the best so far (its weights were written to the output file)
    preview: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LogEvent:
    text: str


@dataclass(frozen=True)
class TrainResult:
    output: str  # the weights file (best validation, or the last weights without validation)
    resume_state: str  # the state file a resumed run continues from
    iterations: int  # done in total, including earlier runs of a resumed training
    stopped: bool  # should_stop() ended it before `iterations`
    best_psnr: float | None
    history: list[dict[str, float]]
    seconds: float
