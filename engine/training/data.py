"""Training data: image folders, the BI/BD/DN degradations, random patches and validation pairs.

Randomness is counter-based: the image order of each epoch comes from (seed, epoch) and every
patch's crop, flips and noise from (seed, rank, sample number), so a batch is a pure function of
the iteration and a resumed run sees exactly the batches an uninterrupted one would have seen.
Sharding follows torch's DistributedSampler: rank r takes every world-th image of the epoch order.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.errors import ImageError, SRStudioError
from engine.evaluate import Pair
from engine.imaging.io import READ_EXTENSIONS, read_rgb_uint8
from engine.imaging.resize import imresize
from engine.imaging.safe_open import DEFAULT_MAX_PIXELS, image_size
from engine.metrics import SSIM_WINDOW
from engine.training.real_degradation import RealDegradation, degrade_real

Warn = Callable[[str], None]
BLUR_SIZE, BLUR_SIGMA = 7, 1.6
# LR pixels of context degraded around a patch: the 7x7 blur (3 HR pixels) plus the bicubic
# kernel (2 LR pixels) never reach the border of the region, so a patch equals the same crop of
# the whole degraded image.
MARGIN = 4
# The clean-up network (scale 1) learns to restore LR images as upscalers see them: its clean
# targets are the training photos shrunk by one of these factors with MATLAB bicubic, as benchmark
# LR images are made, so that it never learns to smooth away their fine texture.
CLEANUP_SHRINK = (1, 2, 3, 4)
CLEANUP_VAL_SHRINK = 2


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise SRStudioError(f"image folder not found: {folder}")
    files = (p for p in folder.iterdir() if p.is_file())
    return sorted(p for p in files if p.suffix.lower() in READ_EXTENSIONS)


def gaussian_kernel(size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """MATLAB fspecial('gaussian', size, sigma), float64."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def degrade(
    hr: np.ndarray,
    scale: int,
    kind: str,
    *,
    noise_level: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """LR (uint8 HxWx3) from a uint8 HR image whose sides are multiples of `scale`, as the papers'
    MATLAB scripts make it: BI imresize(hr, 1/s, 'bicubic'); BD imfilter(hr,
    fspecial('gaussian', 7, 1.6), 'replicate') then the same imresize; DN the imresize plus
    noise_level * randn, rounded."""
    t = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).double()
    if kind == "BD":
        pad = BLUR_SIZE // 2
        padded = torch.nn.functional.pad(t[None], (pad, pad, pad, pad), mode="replicate")
        kernel = gaussian_kernel().expand(3, 1, -1, -1)
        t = torch.nn.functional.conv2d(padded, kernel, groups=3)[0]
        t = torch.floor(t + 0.5).clamp_(0, 255)  # imfilter on uint8 returns uint8
    lr = imresize(t, 1 / scale, round_between=True)
    if kind == "DN" and noise_level > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        noise = torch.from_numpy(rng.standard_normal(tuple(lr.shape))) * noise_level
        lr = torch.floor(lr + noise + 0.5).clamp_(0, 255)
    return lr.permute(1, 2, 0).to(torch.uint8).numpy()


def shrink(img: np.ndarray, factor: int) -> np.ndarray:
    """uint8 HxWx3 shrunk by an integer factor with MATLAB bicubic, as benchmark LR images are."""
    if factor == 1:
        return img
    img = modcrop(img, factor)
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).double()
    return imresize(t, 1 / factor, round_between=True).permute(1, 2, 0).to(torch.uint8).numpy()


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    return img[: img.shape[0] // scale * scale, : img.shape[1] // scale * scale]


@dataclass(frozen=True)
class ImageEntry:
    hr: Path
    lr: Path | None  # paired LR image, or None to degrade on the fly
    lr_side: int = 0  # the shorter side of the HR image divided by the scale


def _lr_index(folder: Path) -> dict[str, Path]:
    return {p.stem.lower(): p for p in list_images(folder)}


def _match_lr(hr: Path, index: dict[str, Path], scale: int) -> Path | None:
    stem = hr.stem.lower()
    return index.get(stem) or index.get(f"{stem}x{scale}")


def scan(
    hr_dirs: Sequence[str], lr_dirs: Sequence[str] | None, scale: int, min_lr_side: int, warn: Warn
) -> list[ImageEntry]:
    """The usable images of the folders: unreadable ones, ones too small for a patch and HR
    images without their LR partner are skipped with a warning."""
    entries = []
    for i, hr_dir in enumerate(hr_dirs):
        index = _lr_index(Path(lr_dirs[i])) if lr_dirs else None
        for path in list_images(hr_dir):
            try:
                w, h = image_size(path, max_pixels=DEFAULT_MAX_PIXELS)
            except SRStudioError as exc:
                warn(f"skipped {path}: {exc}")
                continue
            lr = None
            if index is not None:
                lr = _match_lr(path, index, scale)
                if lr is None:
                    warn(f"skipped {path}: no LR image of that name in {lr_dirs[i]}")
                    continue
            entries.append(ImageEntry(path, lr, min(w, h) // scale))
    return large_enough(entries, min_lr_side, warn)


def large_enough(entries: list[ImageEntry], min_lr_side: int, warn: Warn) -> list[ImageEntry]:
    """The entries whose LR side is at least min_lr_side; the others skipped with a warning."""
    kept = []
    for entry in entries:
        if entry.lr_side < min_lr_side:
            side = entry.lr_side
            warn(f"skipped {entry.hr}: too small for {min_lr_side}px LR patches (LR side {side}px)")
        else:
            kept.append(entry)
    return kept


def hold_out(
    entries: list[ImageEntry], split: float, seed: int
) -> tuple[list[ImageEntry], list[ImageEntry]]:
    """(training, validation): a fraction (split < 1) or a count of the images, chosen by seed.
    Give it every usable image, before any filter that depends on the scale or the patch size:
    runs at other scales or patch sizes then hold out the same images, so weights started from
    another run's never validate on images that run trained on."""
    if split <= 0 or len(entries) < 2:
        return entries, []
    count = int(split) if split >= 1 else round(split * len(entries))
    count = min(max(1, count), len(entries) - 1)
    chosen = set(np.random.default_rng([seed, 17]).permutation(len(entries))[:count].tolist())
    train = [e for i, e in enumerate(entries) if i not in chosen]
    val = [e for i, e in enumerate(entries) if i in chosen]
    return train, val


class ImageCache:
    """Decoded images by path, least recently used dropped beyond `limit_mb`."""

    def __init__(self, limit_mb: int) -> None:
        self.limit = limit_mb * 2**20
        self.size = 0
        self.items: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()  # the data thread preloads while the trainer reads

    def get(self, path: Path) -> np.ndarray:
        with self.lock:
            if path in self.items:
                self.items.move_to_end(path)
                return self.items[path]
        img = read_rgb_uint8(path)
        with self.lock:
            if path not in self.items:
                self.items[path] = img
                self.size += img.nbytes
            while self.size > self.limit and len(self.items) > 1:
                _, old = self.items.popitem(last=False)
                self.size -= old.nbytes
        return img


def _augment(img: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    if transpose:
        img = img.transpose(1, 0, 2)
    return img


def _to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    arr = np.stack([np.ascontiguousarray(p) for p in patches])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 7, epoch]).permutation(n)


class PatchSampler:
    """Batches of (LR, HR) patch tensors, float32 in [0, 1], for one rank of `world`."""

    def __init__(
        self,
        entries: list[ImageEntry],
        *,
        scale: int,
        patch_size: int,
        degradation: str,
        noise_level: float,
        seed: int,
        rank: int = 0,
        world: int = 1,
        cache_mb: int = 2048,
        warn: Warn = lambda text: None,
        real: RealDegradation | None = None,
    ) -> None:
        if not entries:
            raise SRStudioError("no usable training images")
        if (degradation == "real") != (real is not None):
            raise SRStudioError("the real degradation needs its ranges")
        self.entries = entries
        self.scale, self.patch = scale, patch_size
        self.degradation, self.noise_level, self.real = degradation, noise_level, real
        self.seed, self.rank, self.world = seed, rank, world
        self.cache = ImageCache(cache_mb)
        self.warn = warn
        self.bad: set[int] = set()

    def _image_index(self, k: int) -> int:
        """DistributedSampler order: epoch permutation, padded by wrapping, rank-strided."""
        n = len(self.entries)
        epoch, pos = divmod(k, math.ceil(n / self.world))
        return int(_permutation(self.seed, epoch, n)[(pos * self.world + self.rank) % n])

    def _load(self, index: int) -> tuple[int, np.ndarray, np.ndarray | None]:
        """Images of entry `index`, or of the next readable entry when it fails to decode (a
        deterministic substitute, so that runs and resumed runs stay identical)."""
        n = len(self.entries)
        for step in range(n):
            i = (index + step) % n
            if i in self.bad:
                continue
            entry = self.entries[i]
            try:
                hr = self.cache.get(entry.hr)
                lr = self.cache.get(entry.lr) if entry.lr is not None else None
                self._check_size(entry, hr, lr)
                return i, hr, lr
            except (ImageError, SRStudioError) as exc:
                self.bad.add(i)
                self.warn(f"skipped {entry.hr}: {exc}")
        raise SRStudioError("none of the training images could be read")

    def _check_size(self, entry: ImageEntry, hr: np.ndarray, lr: np.ndarray | None) -> None:
        lr_h, lr_w = (
            (hr.shape[0] // self.scale, hr.shape[1] // self.scale) if lr is None else (lr.shape[:2])
        )
        if min(lr_h, lr_w) < self.patch:
            raise SRStudioError(f"too small for {self.patch}px LR patches")
        if lr is not None and (hr.shape[0] < lr_h * self.scale or hr.shape[1] < lr_w * self.scale):
            raise SRStudioError(f"HR is smaller than LR {entry.lr} times {self.scale}")

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Patch number k of this rank: (LR pxpx3, HR (p*s)x(p*s)x3) uint8."""
        rng = np.random.default_rng([self.seed, 11, self.rank, k])
        _, hr, lr = self._load(self._image_index(k))
        s, p = self.scale, self.patch
        lr_h, lr_w = (hr.shape[0] // s, hr.shape[1] // s) if lr is None else lr.shape[:2]
        y = int(rng.integers(0, lr_h - p + 1))
        x = int(rng.integers(0, lr_w - p + 1))
        if self.real is not None and s == 1:
            lr_patch, hr_patch = self._cleanup_pair(hr, rng)
            flips = rng.random(3) < 0.5
            return _augment(lr_patch, *flips), _augment(hr_patch, *flips)
        hr_patch = hr[y * s : (y + p) * s, x * s : (x + p) * s]
        if lr is not None:
            lr_patch = lr[y : y + p, x : x + p]
        else:
            y0, x0 = max(0, y - MARGIN), max(0, x - MARGIN)
            y1, x1 = min(lr_h, y + p + MARGIN), min(lr_w, x + p + MARGIN)
            region = hr[y0 * s : y1 * s, x0 * s : x1 * s]
            lr_region = (
                degrade_real(region, s, rng, self.real)
                if self.real is not None
                else degrade(region, s, self.degradation, noise_level=self.noise_level, rng=rng)
            )
            lr_patch = lr_region[y - y0 : y - y0 + p, x - x0 : x - x0 + p]
        flips = rng.random(3) < 0.5
        return _augment(lr_patch, *flips), _augment(hr_patch, *flips)

    def _cleanup_pair(self, hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(damaged, clean) patches for the clean-up network: a region of the photo shrunk by a
        random CLEANUP_SHRINK factor (clean target), then noise and JPEG (its input); the patch
        is cut from the middle, away from the region's edges, as a whole photo would give it."""
        p, m = self.patch, 4 * MARGIN  # JPEG's 8x8 blocks and 16x16 chroma reach past a patch
        side = p + 2 * m
        fits = [f for f in CLEANUP_SHRINK if min(hr.shape[:2]) >= side * f]
        f = int(rng.choice(fits)) if fits else 1
        side = min(side, hr.shape[0] // f, hr.shape[1] // f)
        y = int(rng.integers(0, hr.shape[0] // f - side + 1))
        x = int(rng.integers(0, hr.shape[1] // f - side + 1))
        region = hr[y * f : (y + side) * f, x * f : (x + side) * f]
        clean = shrink(region, f)
        damaged = degrade_real(clean, 1, rng, self.real)  # type: ignore[arg-type]
        top = int(rng.integers(0, side - p + 1))
        left = int(rng.integers(0, side - p + 1))
        cut = np.s_[top : top + p, left : left + p]
        return damaged[cut], clean[cut]

    def preload(self, iteration: int, batch_size: int) -> None:
        """Decode the images of batch `iteration` into the cache. Pillow only, so it can run in
        a second thread while the network trains; the resizing in batch() uses torch, and two
        threads sharing torch's CPU thread pool oversubscribe it (a batch took 40x longer)."""
        for b in range(batch_size):
            self._load(self._image_index(iteration * batch_size + b))

    def batch(self, iteration: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self.sample(iteration * batch_size + b) for b in range(batch_size)]
        return _to_tensor([s[0] for s in samples]), _to_tensor([s[1] for s in samples])


def validation_pairs(
    entries: list[ImageEntry],
    *,
    scale: int,
    degradation: str,
    noise_level: float,
    seed: int,
    limit: int,
    warn: Warn,
    real: RealDegradation | None = None,
) -> list[Pair]:
    """Whole-image (HR, LR) pairs; LR degraded like the training data (fixed noise per image).
    For the clean-up network (scale 1, real degradation) the HR image is the photo shrunk by
    CLEANUP_VAL_SHRINK, and its LR the same damaged."""
    pairs = []
    for i, entry in enumerate(entries):
        if len(pairs) >= limit:
            break
        try:
            hr = read_rgb_uint8(entry.hr)
            if entry.lr is not None:
                lr = read_rgb_uint8(entry.lr)
                hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
                if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
                    raise SRStudioError(f"HR is smaller than LR {entry.lr} times {scale}")
            else:
                hr = modcrop(hr, scale)
                rng = np.random.default_rng([seed, 13, i])
                if real is not None:
                    hr = shrink(hr, CLEANUP_VAL_SHRINK) if scale == 1 else hr
                    lr = degrade_real(hr, scale, rng, real)
                else:
                    lr = degrade(hr, scale, degradation, noise_level=noise_level, rng=rng)
        except (ImageError, SRStudioError) as exc:
            warn(f"skipped validation image {entry.hr}: {exc}")
            continue
        if min(hr.shape[:2]) < SSIM_WINDOW + 2 * scale:  # the window after shaving `scale` pixels
            warn(f"skipped validation image {entry.hr}: too small to measure SSIM")
            continue
        pairs.append(Pair(entry.hr.name, hr, lr))
    return pairs
