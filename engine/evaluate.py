"""PSNR/SSIM of a model over a folder of HR (and optionally LR) images, by the papers' protocol."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import Cancelled, ProgressFn, SRStudioError, StopFn, never_stop, no_progress
from engine.imaging.color import tensor_to_uint8, uint8_to_tensor
from engine.imaging.io import READ_EXTENSIONS, read_rgb_uint8
from engine.imaging.resize import imresize
from engine.metrics import SSIM_WINDOW, psnr, ssim

UpscaleFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Pair:
    name: str
    hr: np.ndarray  # HxWx3 uint8, cropped to LR size * scale
    lr: np.ndarray  # HxWx3 uint8
    lr_path: Path | None = None  # the LR file, when read from one (not made from the HR image)


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    seconds: float
    cleanup: str = ""  # whether the clean-up network ran first, and why ("" when it was off)


@dataclass(frozen=True)
class EvalResult:
    model: str
    scale: int
    psnr: float
    ssim: float
    seconds: float
    device: str
    y_round: bool
    images: list[ImageScore] = field(default_factory=list)
    cleanup: str = "off"  # the --clean-up mode, and how many images it cleaned
    cleaned: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR from an HxWx3 uint8 HR image with MATLAB's bicubic, as the benchmark LRs were made."""
    t = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).double()
    lr = imresize(t, 1 / scale, round_between=True)
    return lr.permute(1, 2, 0).numpy().astype(np.uint8)


def _check_measurable(name: str, hr: np.ndarray, scale: int) -> None:
    """PSNR/SSIM shave `scale` pixels a side and SSIM's window needs SSIM_WINDOW more."""
    need = SSIM_WINDOW + 2 * scale
    if min(hr.shape[:2]) < need:
        raise SRStudioError(
            f"{name}: HR {hr.shape[1]}x{hr.shape[0]} is too small to measure at x{scale} "
            f"(needs at least {need}x{need}: SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window after "
            f"shaving {scale} pixels a side)"
        )


def load_pairs(hr_dir: str | Path, lr_dir: str | Path | None, scale: int) -> list[Pair]:
    """The HR images of a folder, each with its LR image: the one of the same name, whatever
    its extension, in lr_dir (or "<name>x<scale>", as some benchmarks name theirs), or made
    from the HR image with MATLAB's bicubic when lr_dir is None."""
    hr_dir = Path(hr_dir)
    if not hr_dir.is_dir():
        raise SRStudioError(f"HR folder not found: {hr_dir}")
    files = _images(hr_dir)
    if not files:
        raise SRStudioError(f"no images in {hr_dir}")
    partners = None if lr_dir is None else _pair_by_name(hr_dir, files, Path(lr_dir), scale)
    pairs = []
    for hr_path in files:
        hr = read_rgb_uint8(hr_path)
        if partners is None:
            hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
            _check_measurable(hr_path.name, hr, scale)
            lr = make_lr(hr, scale)
        else:
            lr_path = partners[hr_path]
            lr = read_rgb_uint8(lr_path)
            if hr.shape[0] < lr.shape[0] * scale or hr.shape[1] < lr.shape[1] * scale:
                raise SRStudioError(
                    f"{hr_path.name}: HR {hr.shape[1]}x{hr.shape[0]} is smaller than LR "
                    f"{lr.shape[1]}x{lr.shape[0]} times {scale}"
                )
            hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
        _check_measurable(hr_path.name, hr, scale)
        pairs.append(Pair(hr_path.name, hr, lr, None if partners is None else lr_path))
    return pairs


def _images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in READ_EXTENSIONS and p.is_file()
    )


def _pair_by_name(hr_dir: Path, hr_files: list[Path], lr_dir: Path, scale: int) -> dict[Path, Path]:
    """HR image -> its LR image in lr_dir, matched by name without the extension (case
    ignored; an LR name may add "x<scale>": baboonx4.png for baboon.png). Every LR image must
    have an HR partner and every HR image one LR image: a one-line SRStudioError otherwise."""
    if not lr_dir.is_dir():
        raise SRStudioError(f"LR folder not found: {lr_dir}")
    by_stem: dict[str, Path] = {}
    for hr in hr_files:
        if (twin := by_stem.setdefault(hr.stem.lower(), hr)) is not hr:
            raise SRStudioError(
                f"two HR images named {hr.stem} in {hr_dir}: {twin.name}, {hr.name}"
            )
    partners: dict[Path, Path] = {}
    for lr in _images(lr_dir):
        short = _without_scale(lr.stem, scale)
        hr = by_stem.get(lr.stem.lower()) or (by_stem.get(short) if short else None)
        if hr is None:
            names = f"{lr.stem} or {short}" if short else lr.stem
            raise SRStudioError(
                f"LR image {lr.name} has no HR partner: no image named {names} in {hr_dir}"
            )
        if (twin := partners.setdefault(hr, lr)) is not lr:
            raise SRStudioError(f"two LR images for {hr.name} in {lr_dir}: {twin.name}, {lr.name}")
    for hr in hr_files:
        if hr not in partners:
            raise SRStudioError(f"no LR image for {hr.name} in {lr_dir}")
    return partners


def _without_scale(stem: str, scale: int) -> str:
    """The lower-case name without an "x<scale>" suffix (baboonx4 -> baboon at x4); "" when it
    has none."""
    suffix = f"x{scale}"
    stem = stem.lower()
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else ""


def score(
    sr: np.ndarray, hr: np.ndarray, scale: int, *, y_round: bool = False
) -> tuple[float, float]:
    """(PSNR, SSIM) on Y with `scale` pixels shaved, for uint8 HxWx3 images of equal size."""
    return (
        psnr(sr, hr, crop_border=scale, y_channel=True, round_y=y_round),
        ssim(sr, hr, crop_border=scale, y_channel=True, round_y=y_round),
    )


def evaluate(
    upscale: Callable[[torch.Tensor], torch.Tensor],
    pairs: list[Pair],
    scale: int,
    *,
    model: str,
    device: str = "cpu",
    y_round: bool = False,
    on_progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    choose: Callable[[Pair], tuple[UpscaleFn, str]] | None = None,
    cleanup: str = "off",
) -> EvalResult:
    """`upscale` maps a (1, 3, h, w) [0, 1] tensor to (1, 3, h*scale, w*scale). `choose`, when
    given, picks each pair's upscale function instead, with a note of what it runs (the
    clean-up decision, `cleanup` being its mode): the note goes with the image's score."""
    scores = []
    start = time.perf_counter()
    for i, pair in enumerate(pairs):
        if should_stop():
            raise Cancelled()
        t0 = time.perf_counter()
        run, note = choose(pair) if choose is not None else (upscale, "")
        with torch.inference_mode():
            sr = tensor_to_uint8(run(uint8_to_tensor(pair.lr)))
        seconds = time.perf_counter() - t0
        if sr.shape != pair.hr.shape:
            raise SRStudioError(f"{pair.name}: output {sr.shape} does not match HR {pair.hr.shape}")
        p, s = score(sr, pair.hr, scale, y_round=y_round)
        scores.append(ImageScore(pair.name, p, s, seconds, note))
        on_progress(i + 1, len(pairs))
    return EvalResult(
        model=model,
        scale=scale,
        psnr=float(np.mean([s.psnr for s in scores])),
        ssim=float(np.mean([s.ssim for s in scores])),
        seconds=time.perf_counter() - start,
        device=device,
        y_round=y_round,
        images=scores,
        cleanup=cleanup,
        cleaned=sum(s.cleanup.startswith("clean-up on") for s in scores),
    )
