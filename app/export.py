"""Exporting a comparison: one side-by-side PNG of the panes (with their titles) and a CSV table."""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from app.jobs import ModelResult
from app.views.canvas import PaneContent

GAP = 8
LABEL_HEIGHT = 28
CSV_HEADER = (
    "model",
    "seconds",
    "device",
    "psnr_db",
    "ssim",
    "params",
    "weights",
    "width",
    "height",
)


def side_by_side(contents: Sequence[PaneContent]) -> QImage:
    """The panes in a row at output size (nearest pixels for the input), a title above each."""
    if not contents:
        raise ValueError("nothing to export")
    sizes = [c.output_size for c in contents]
    width = sum(math.ceil(s.width()) for s in sizes) + GAP * (len(contents) + 1)
    height = max(math.ceil(s.height()) for s in sizes) + LABEL_HEIGHT + 2 * GAP
    canvas = QImage(width, height, QImage.Format.Format_RGB888)
    canvas.fill(QColor(255, 255, 255))
    p = QPainter(canvas)
    font = QFont()
    font.setPixelSize(15)
    font.setBold(True)
    p.setFont(font)
    p.setPen(QColor(20, 20, 20))
    x = GAP
    for content, size in zip(contents, sizes, strict=True):
        w = math.ceil(size.width())
        text = "  ".join([content.title, *content.info])
        p.drawText(
            QRect(x, GAP, w, LABEL_HEIGHT),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            p.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, w),
        )
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        _draw_whole(p, content, x, GAP + LABEL_HEIGHT)
        x += w + GAP
    p.end()
    return canvas


STRIP_PIXELS = 1 << 22  # image pixels drawn at a time


def _draw_whole(p: QPainter, content: PaneContent, x: float, y: float) -> None:
    """The content's full resolution at output size, a strip of rows at a time (an output kept
    on disk is read a strip at a time, never whole)."""
    h, w = content.shape
    s = content.image_scale
    step = max(1, STRIP_PIXELS // max(1, w))
    for top in range(0, h, step):
        rows = min(step, h - top)
        target = QRectF(x, y + top * s, w * s, rows * s)
        p.drawImage(target, content.image(0, top, 0, top + rows, w))


def save_qimage(image: QImage, path: str | Path) -> None:
    """Save atomically; OSError with the reason on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        if not image.save(tmp, "PNG"):
            raise OSError(f"cannot write {path}")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def csv_rows(results: Iterable[ModelResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in results:
        h, w = r.size
        psnr = f"{r.metrics.psnr:.4f}" if r.metrics.psnr is not None else ""
        ssim = f"{r.metrics.ssim:.6f}" if r.metrics.ssim is not None else ""
        rows.append([r.label, f"{r.seconds:.4f}", r.device, psnr, ssim, r.params, r.source, w, h])
    return rows


def write_csv(rows: Sequence[Sequence[object]], path: str | Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_HEADER)
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
