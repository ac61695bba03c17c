"""What the model picker lists at one scale, in plain words: every network with installed weights
(bundled, downloaded, imported, trained, a file loaded by hand), bicubic, and every authors'
release one click away. Plain data, no Qt: the picker's list model renders it.

Each entry says what it is good for (Family.summary), its expected quality (Set5, from
engine.expected_set5, as a 0..1 fraction for a bar), where it comes from, and the precise terms
(family, variant, scale, parameters, file) for the tooltip. Its time for the current image is
estimated separately (app.jobs.estimate_speeds) and filled in later."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.jobs import BICUBIC, ModelChoice, bicubic_choice
from engine import (
    RELEASES,
    Release,
    Set5Figure,
    WeightsEntry,
    expected_set5,
    format_size,
    get_family,
    installed_weights,
    load_model,
    param_count,
    quality_fraction,
    variant_note,
)

BICUBIC_SUMMARY = "No network: instant but soft"
ORIGIN_WORDS = {
    "bundled": "bundled",
    "downloaded": "authors' weights",
    "imported": "imported",
    "trained": "trained by you",
    "file": "your file",
    "builtin": "built in",
}
ORIGIN_TIPS = {
    "bundled": "Bundled: shipped with SR Studio, trained by the project on its own photos",
    "downloaded": "Downloaded: the weights the network's authors released",
    "imported": "Imported: a weights file you installed (File > Models...)",
    "trained": "Trained by you in the Train tab",
    "file": "A weights file you loaded with 'Load weights...'",
    "builtin": "Built in: MATLAB's bicubic interpolation, no weights",
}


@dataclass(frozen=True)
class CatalogEntry:
    choice: ModelChoice  # what runs (for a release: the choice it becomes once installed)
    title: str  # "A2F-SD", "A2F-SD (my_run.safetensors)"
    summary: str  # what it is good for, in plain words
    origin: str  # "bundled", "downloaded", "imported", "trained", "file", "builtin", "download"
    quality: Set5Figure | None
    fraction: float | None  # 0 (bicubic) .. 1 (the best paper figure); None: not known
    release: Release | None = None  # set for a release not yet installed
    params: int | None = None
    path: Path | None = None

    @property
    def key(self) -> str:
        """Tells the entries of one list apart."""
        if self.release is not None:
            return "release:" + self.release.name
        return self.choice.label

    @property
    def installed(self) -> bool:
        return self.release is None

    @property
    def origin_text(self) -> str:
        if self.release is not None:
            return f"download ({format_size(self.release.size)})"
        return ORIGIN_WORDS.get(self.origin, self.origin)

    def quality_text(self) -> str:
        """The Set5 figures behind the bar, exactly, and what they are."""
        if self.quality is None:
            if self.origin in ("trained", "imported", "file"):
                return (
                    "Quality: not measured on Set5 (compare it on your image with a reference, "
                    "or with `srstudio eval`)"
                )
            return "Quality: unknown"
        q = self.quality
        ssim = f", SSIM {q.ssim:.4f}" if q.ssim else ""
        if self.choice.family == BICUBIC:
            basis = "the papers' figure for plain enlargement, the baseline"
        elif q.basis == "paper":
            basis = "the paper's figure; the authors' released weights reproduce it"
        else:
            basis = "measured by SR Studio on these bundled weights"
        return f"Quality: Set5 PSNR {q.psnr:.2f} dB{ssim} ({basis})"

    def tooltip(self) -> str:
        c = self.choice
        lines = [f"<b>{html.escape(self.title)}</b>: {html.escape(self.summary)}"]
        if c.family == BICUBIC:
            lines.append(f"Bicubic interpolation (MATLAB imresize), x{c.scale}")
        else:
            lines.append(f"Network {c.family}, variant {c.variant}, x{c.scale}")
            lines.append(f"Variant: {html.escape(variant_note(c.family, c.variant))}")
        if self.params is not None:
            lines.append(f"Parameters: {self.params:,}")
        lines.append(html.escape(self.quality_text()))
        lines.append(
            "The bar: where that score lies between bicubic (empty) and the best score in the "
            "papers at this scale (full)"
        )
        if self.release is not None:
            lines.append(
                f"Not installed: the authors' release {self.release.name}, "
                f"{format_size(self.release.size)}; choose it to download it (sha256-checked)"
            )
        else:
            lines.append(html.escape(ORIGIN_TIPS.get(self.origin, self.origin)))
        if self.path is not None:
            lines.append(f"File: {html.escape(str(self.path))}")
        return "<br>".join(lines)


def _summary(family: str, variant: str) -> str:
    if family == BICUBIC:
        return BICUBIC_SUMMARY
    try:
        return get_family(family).summary_of(variant)
    except ValueError:
        return ""


def _entry(
    choice: ModelChoice,
    origin: str,
    *,
    title: str | None = None,
    metadata: dict | None = None,
    release: Release | None = None,
    path: Path | None = None,
) -> CatalogEntry:
    figure = expected_set5(choice.family, choice.variant, choice.scale, origin, metadata)
    fraction = quality_fraction(figure.psnr, choice.scale) if figure is not None else None
    return CatalogEntry(
        choice=choice,
        title=title or choice.name,
        summary=_summary(choice.family, choice.variant),
        origin=origin,
        quality=figure,
        fraction=fraction,
        release=release,
        params=param_count(choice.family, choice.variant, choice.scale),
        path=path,
    )


def _best_key(entry: CatalogEntry) -> tuple:
    return (-(entry.fraction if entry.fraction is not None else -1.0), entry.title)


def catalog(
    scale: int,
    best: dict[tuple[str, str], WeightsEntry],
    trained: Sequence[WeightsEntry],
    files: Sequence[ModelChoice],
    installed_releases: set[str],
) -> list[CatalogEntry]:
    """The entries at `scale`: installed networks best first, then bicubic, then the releases
    not installed (best first).

    best: (family, variant) -> the weights used for it at this scale (engine.best_weights);
    trained: trained files at this scale, each its own entry; files: weights files loaded by
    hand at this scale; installed_releases: names of the releases in the library."""
    installed = []
    for (family, variant), entry in best.items():
        choice = ModelChoice(family, variant, scale)
        origin = entry.origin if entry.origin in ORIGIN_WORDS else "imported"
        installed.append(_entry(choice, origin, metadata=entry.metadata, path=entry.path))
    for entry in trained:
        choice = ModelChoice(entry.family, entry.variant, scale, str(entry.path))
        title = f"{choice.name} ({entry.path.name})"
        installed.append(_entry(choice, "trained", title=title, path=entry.path))
    for choice in files:
        title = f"{choice.name} ({Path(choice.path or '').name})"
        path = Path(choice.path) if choice.path else None
        installed.append(_entry(choice, "file", title=title, path=path))
    installed.sort(key=_best_key)
    releases = [
        _entry(
            ModelChoice(r.family, r.variant, scale),
            "download",
            release=r,
        )
        for r in RELEASES
        if r.scale == scale and r.name not in installed_releases
    ]
    releases.sort(key=_best_key)
    return [*installed, _entry(bicubic_choice(scale), "builtin"), *releases]


SCALES = (2, 3, 4)


def library_choices() -> list[ModelChoice]:
    """Bicubic at every scale, then each family-variant-scale with installed weights (the best
    file of each: engine.best_weights), then each trained file on its own: runs of one model
    differ, and none should hide another or a release."""
    found = [bicubic_choice(s) for s in SCALES]
    entries = installed_weights()
    for entry in entries:
        choice = ModelChoice(entry.family, entry.variant, entry.scale)
        if entry.origin != "trained" and choice not in found:
            found.append(choice)
    for entry in entries:
        if entry.origin == "trained":
            found.append(ModelChoice(entry.family, entry.variant, entry.scale, str(entry.path)))
    return found


def encode_file_choice(choice: ModelChoice) -> str:
    return f"{choice.family}|{choice.variant}|{choice.scale}|{choice.path}"


def decode_file_choice(text: str) -> ModelChoice | None:
    parts = text.split("|", 3)
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3]:
        return None
    return ModelChoice(parts[0], parts[1], int(parts[2]), parts[3])


def recognise_weights(path: str) -> ModelChoice:
    """The choice a weights file makes (loading it: a worker's job)."""
    desc = load_model(path)
    return ModelChoice(desc.family, desc.variant, desc.scale, path)
