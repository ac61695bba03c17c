"""Whether the clean-up network runs before the upscaler for one image (`--clean-up auto|on|off`).

"auto" turns it on for a JPEG saved below AUTO_JPEG_BELOW and for a noisy image (an estimated
noise sigma of NOISY_SIGMA or more on the 0..255 scale), and leaves clean PNG and TIFF input to the
upscaler alone, so that their output is exactly what it was without a clean-up stage.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from engine.errors import SRStudioError
from engine.imaging.input_quality import LITTLE_NOISE, InputQuality, noise_sigma
from engine.imaging.io import ImageData

log = logging.getLogger(__name__)

CLEANUP_MODES = ("auto", "on", "off")
AUTO_JPEG_BELOW = 90  # a JPEG saved below this quality carries visible block artifacts
NOISY_SIGMA = LITTLE_NOISE  # "some noise" from here (a clean textured photo reads up to ~3.7)


class CleanupReason(enum.Enum):
    ASKED_ON = "asked for"
    ASKED_OFF = "turned off"
    COMPRESSED = "a compressed JPEG"
    NOISY = "a noisy image"
    CLEAN = "a clean image"
    NO_NETWORK = "no clean-up network installed"


@dataclass(frozen=True)
class CleanupDecision:
    on: bool
    reason: CleanupReason
    quality: InputQuality | None = None  # what "auto" measured

    def describe(self) -> str:
        """'clean-up on: a compressed JPEG (saved at quality about 70)' and the like."""
        state = "on" if self.on else "off"
        text = f"clean-up {state}: {self.reason.value}"
        if self.quality is not None:
            text += f" ({self.quality.description})"
        return text


def measure_input(img: ImageData) -> InputQuality:
    """The image's JPEG quality (read with its file) and noise, measured on its pixels."""
    rgb = img.rgb if img.rgb.dtype.is_floating_point is False else (img.rgb * 255).round()
    pixels = rgb[:1] if img.grayscale else rgb
    sigma = noise_sigma(pixels.permute(1, 2, 0).numpy())
    return InputQuality(img.source_format or "unknown", img.jpeg, sigma)


def short_note(decision: CleanupDecision) -> str:
    """A few words for a pane's caption: 'clean-up on: JPEG quality 70'; '' when turned off."""
    reason, quality = decision.reason, decision.quality
    if reason is CleanupReason.COMPRESSED and quality is not None and quality.jpeg is not None:
        return f"clean-up on: JPEG quality {quality.jpeg.quality}"
    if reason is CleanupReason.NOISY and quality is not None:
        return f"clean-up on: noise about sigma {round(quality.noise_sigma)}"
    return {
        CleanupReason.ASKED_ON: "clean-up on",
        CleanupReason.CLEAN: "clean-up off: a clean image",
        CleanupReason.NO_NETWORK: "no clean-up network installed",
    }.get(reason, "")


def check_mode(mode: str) -> str:
    if mode not in CLEANUP_MODES:
        raise SRStudioError(f"clean-up must be one of {', '.join(CLEANUP_MODES)}, got {mode!r}")
    return mode


def decide_auto(quality: InputQuality) -> CleanupDecision:
    """What "auto" decides for an image of this (measured) quality."""
    jpeg = quality.jpeg.quality if quality.jpeg is not None else None
    if jpeg is not None and jpeg < AUTO_JPEG_BELOW:
        return CleanupDecision(True, CleanupReason.COMPRESSED, quality)
    if quality.noise_sigma >= NOISY_SIGMA:
        return CleanupDecision(True, CleanupReason.NOISY, quality)
    return CleanupDecision(False, CleanupReason.CLEAN, quality)


def decide(mode: str, img: ImageData, quality: InputQuality | None = None) -> CleanupDecision:
    """The decision for `img` under `mode`; "auto" measures the image (JPEG tables and noise)
    unless its `quality` was measured already."""
    check_mode(mode)
    if mode == "off":
        return CleanupDecision(False, CleanupReason.ASKED_OFF)
    if mode == "on":
        return CleanupDecision(True, CleanupReason.ASKED_ON)
    decision = decide_auto(quality or measure_input(img))
    log.info("%s", decision.describe())
    return decision
