"""The compare canvas: 1 to 4 image panes sharing one zoom and pan (ViewState), or one pane with a
before/after wipe, plus a readout of the pixel under the cursor in every pane.

Coordinates: everything is placed in output-image pixels. A pane's image may be smaller (the LR
input drawn with nearest pixels at output size): its `image_scale` is output pixels per image pixel.
A pane draws from its image's pyramid (app.views.pyramid): only the region it shows, from the
level that suits the zoom, so a 192-megapixel output is never held or copied whole to be seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.qimage import array_to_qimage
from app.views.pyramid import Pyramid

MAX_PANES = 6  # a grid of 3 x 2: the input, four outputs and the reference
MIN_ZOOM = 1 / 64
MAX_ZOOM = 32.0
WHEEL_STEP = 1.25
HANDLE_GRAB = 8  # pixels either side of the wipe divider that grab it


@dataclass
class PaneContent:
    key: str  # "input", "reference" or a result key
    title: str
    # HxWx3 uint8, or the pyramid of an image kept on disk, for drawing and the readout
    pixels: np.ndarray | Pyramid = field(repr=False)
    image_scale: float = 1.0
    info: list[str] = field(default_factory=list)  # lines under the title (time, metrics)
    kind: str = "output"  # "input", "output", "reference" or "heatmap"
    pyramid: Pyramid = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.pyramid is None:
            pixels = self.pixels
            self.pyramid = pixels if isinstance(pixels, Pyramid) else Pyramid.of(pixels)

    @property
    def shape(self) -> tuple[int, int]:
        """The image's (height, width) in its own pixels."""
        return self.pyramid.shape

    @property
    def output_size(self) -> QSizeF:
        h, w = self.shape
        return QSizeF(w * self.image_scale, h * self.image_scale)

    def value_at(self, x: float, y: float) -> tuple[int, int, tuple[int, ...]] | None:
        """(image x, image y, RGB) under output coordinates (x, y), or None outside."""
        ix, iy = math.floor(x / self.image_scale), math.floor(y / self.image_scale)
        h, w = self.shape
        if 0 <= ix < w and 0 <= iy < h and iy < self.pyramid.rows_ready:
            return ix, iy, self.pyramid.pixel(iy, ix)
        return None

    def image(self, level: int, top: int, left: int, bottom: int, right: int) -> QImage:
        """A region of one pyramid level as a QImage of its own."""
        return array_to_qimage(self.pyramid.region(level, top, left, bottom, right))


class ViewState(QObject):
    """Zoom (screen pixels per output pixel) and the output point at the centre of every pane."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.zoom = 1.0
        self.center = QPointF(0, 0)

    def set_view(self, zoom: float, center: QPointF) -> None:
        self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.center = QPointF(center)
        self.changed.emit()

    def zoom_at(self, factor: float, point: QPointF | None = None, offset: QPointF | None = None):
        """Zoom by `factor` keeping output `point`, seen at `offset` from a pane's centre, fixed."""
        new_zoom = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        if point is None or offset is None:
            self.set_view(new_zoom, self.center)
            return
        self.set_view(new_zoom, point - offset / new_zoom)

    def pan(self, dx: float, dy: float) -> None:
        self.set_view(self.zoom, self.center - QPointF(dx, dy) / self.zoom)


class ImagePane(QWidget):
    """Draws one content (or two, split by a wipe divider) through the shared ViewState."""

    hovered = Signal(object)  # QPointF in output coordinates, or None when the cursor leaves
    clicked = Signal(str)  # key of the content clicked (the left one in wipe mode)
    wipe_moved = Signal(float)
    resized = Signal()

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.content: PaneContent | None = None
        self.right: PaneContent | None = None  # wipe mode: shown right of the divider
        self.wipe = 0.5
        self.selected = False
        self._drag: QPointF | None = None
        self._dragging_divider = False
        self.setMouseTracking(True)
        self.setMinimumSize(120, 100)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        state.changed.connect(self.update)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.resized.emit()

    # ---------------------------------------------------------------- geometry

    def to_output(self, pos: QPointF) -> QPointF:
        half = QPointF(self.width() / 2, self.height() / 2)
        return self.state.center + (pos - half) / self.state.zoom

    def to_widget(self, point: QPointF) -> QPointF:
        half = QPointF(self.width() / 2, self.height() / 2)
        return (point - self.state.center) * self.state.zoom + half

    # ---------------------------------------------------------------- painting

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if self.content is None:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter,
                "Drop an image here, or open one (Ctrl+O)",
            )
            p.end()
            return
        if self.right is None:
            self._draw_image(p, self.content, QRectF(self.rect()))
            self._draw_label(p, self.content, left=True)
        else:
            split = self.wipe * self.width()
            self._draw_image(p, self.content, QRectF(0, 0, split, self.height()))
            self._draw_image(p, self.right, QRectF(split, 0, self.width() - split, self.height()))
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(split, 0), QPointF(split, self.height()))
            p.setBrush(QColor(255, 255, 255, 220))
            p.drawEllipse(QPointF(split, self.height() / 2), 7, 7)
            self._draw_label(p, self.content, left=True)
            self._draw_label(p, self.right, left=False)
        if self.selected:
            p.setPen(QPen(self.palette().color(self.palette().ColorRole.Highlight), 3))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.rect().adjusted(1, 1, -2, -2))
        p.end()

    def _draw_image(self, p: QPainter, content: PaneContent, clip: QRectF) -> None:
        zoom = self.state.zoom
        level = content.pyramid.level_for(1 / (zoom * content.image_scale))
        s = content.image_scale * 2**level  # output pixels per pixel of that level
        h, w = content.pyramid.level_shape(level)
        # The part of the level inside `clip`, widened to whole pixels.
        top_left = self.to_output(clip.topLeft()) / s
        bottom_right = self.to_output(clip.bottomRight()) / s
        x0, y0 = max(0, math.floor(top_left.x())), max(0, math.floor(top_left.y()))
        x1, y1 = min(w, math.ceil(bottom_right.x())), min(h, math.ceil(bottom_right.y()))
        if x1 <= x0 or y1 <= y0:
            return
        target_tl = self.to_widget(QPointF(x0 * s, y0 * s))
        target = QRectF(target_tl, QSizeF((x1 - x0) * s * zoom, (y1 - y0) * s * zoom))
        p.save()
        p.setClipRect(clip)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom * s < 1.0)
        p.drawImage(target, content.image(level, y0, x0, y1, x1))
        p.restore()

    def _draw_label(self, p: QPainter, content: PaneContent, *, left: bool) -> None:
        lines = [content.title, *content.info]
        font = QFont(self.font())
        p.setFont(font)
        metrics = p.fontMetrics()
        width = max(metrics.horizontalAdvance(line) for line in lines) + 12
        height = metrics.height() * len(lines) + 8
        x = 6 if left else self.width() - width - 6
        box = QRectF(x, 6, width, height)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 165))
        p.drawRoundedRect(box, 4, 4)
        p.setPen(QColor(255, 255, 255))
        for i, line in enumerate(lines):
            if i == 0:
                bold = QFont(font)
                bold.setBold(True)
                p.setFont(bold)
            else:
                p.setFont(font)
            p.drawText(QPointF(x + 6, 10 + metrics.ascent() + i * metrics.height()), line)

    # ---------------------------------------------------------------- mouse

    def _near_divider(self, pos: QPointF) -> bool:
        return self.right is not None and abs(pos.x() - self.wipe * self.width()) <= HANDLE_GRAB

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        if self._near_divider(pos):
            self._dragging_divider = True
        else:
            self._drag = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        if self.content is not None:
            on_right = self.right is not None and pos.x() > self.wipe * self.width()
            self.clicked.emit(self.right.key if on_right else self.content.key)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._dragging_divider:
            self.set_wipe(pos.x() / max(1, self.width()))
            self.wipe_moved.emit(self.wipe)
        elif self._drag is not None:
            delta = pos - self._drag
            self._drag = pos
            self.state.pan(delta.x(), delta.y())
        elif self._near_divider(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        else:
            self.unsetCursor()
        self.hovered.emit(self.to_output(pos) if self.content is not None else None)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag = None
        self._dragging_divider = False
        self.unsetCursor()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered.emit(None)

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if not steps or self.content is None:
            return
        pos = event.position()
        offset = pos - QPointF(self.width() / 2, self.height() / 2)
        self.state.zoom_at(WHEEL_STEP**steps, self.to_output(pos), offset)

    def set_wipe(self, fraction: float) -> None:
        self.wipe = min(1.0, max(0.0, fraction))
        self.update()


def choose_visible(keys: list[str], hidden: set[str]) -> list[str]:
    """At most MAX_PANES keys, in order: all not hidden; when there are too many, the last
    outputs are left out (the Panes menu picks them), never the input or the reference, which
    every output is compared with."""
    shown = [k for k in keys if k not in hidden]
    kept = {"input", "reference"}
    while len(shown) > MAX_PANES:
        extra = [k for k in shown if k not in kept]
        if not extra:
            break
        shown.remove(extra[-1])
    return shown[:MAX_PANES]


class CompareCanvas(QWidget):
    """Panes side by side (a grid of up to 6) or one wipe pane; a pixel readout underneath."""

    selection_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState()
        self.contents: dict[str, PaneContent] = {}
        self.hidden: set[str] = set()
        self.mode = "side"
        self.selected_key: str | None = None
        self._fitted = False
        self._fit_pending = True
        # Fitted and not zoomed or panned since: the view fits again when the panes change size
        # (outputs arriving, the window resized), as the user would expect of "Fit".
        self.stays_fitted = False
        self._fitting = False
        self.state.changed.connect(self._view_changed)

        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(4)
        self.panes = [self._new_pane() for _ in range(MAX_PANES)]
        self.wipe_pane = self._new_pane()
        self.wipe_pane.wipe_moved.connect(self._sync_slider)

        self.wipe_bar = QWidget()
        bar = QHBoxLayout(self.wipe_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.wipe_left = QComboBox()
        self.wipe_right = QComboBox()
        self.wipe_left.setToolTip("The image shown left of the divider")
        self.wipe_right.setToolTip("The image shown right of the divider")
        self.wipe_slider = QSlider(Qt.Orientation.Horizontal)
        self.wipe_slider.setRange(0, 1000)
        self.wipe_slider.setValue(500)
        self.wipe_slider.setToolTip(
            "Position of the before/after divider (or drag it in the image)"
        )
        bar.addWidget(QLabel("Left:"))
        bar.addWidget(self.wipe_left)
        bar.addWidget(self.wipe_slider, 1)
        bar.addWidget(QLabel("Right:"))
        bar.addWidget(self.wipe_right)
        self._wipe_chosen: list[str | None] = [None, None]  # picked by the user in the combos
        self.wipe_left.activated.connect(lambda i: self._wipe_picked(0, i))
        self.wipe_right.activated.connect(lambda i: self._wipe_picked(1, i))
        self.wipe_slider.valueChanged.connect(lambda v: self.wipe_pane.set_wipe(v / 1000))

        self.readout = QLabel(" ")
        self.readout.setObjectName("pixelReadout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.zoom_label = QLabel()
        self.zoom_label.setObjectName("pixelReadout")
        self.zoom_label.setToolTip("Zoom: 100% shows each output pixel as one screen pixel")
        self.state.changed.connect(self._show_zoom)
        self._show_zoom()
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.readout, 1)
        bottom.addWidget(self.zoom_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.grid_host, 1)
        layout.addWidget(self.wipe_pane, 1)
        layout.addWidget(self.wipe_bar)
        layout.addLayout(bottom)
        self._layout_panes()

    def _new_pane(self) -> ImagePane:
        pane = ImagePane(self.state)
        pane.hovered.connect(self._show_readout)
        pane.clicked.connect(self.select)
        pane.resized.connect(self._pane_resized)
        return pane

    def _view_changed(self) -> None:
        if not self._fitting:
            self.stays_fitted = False

    def _pane_resized(self) -> None:
        if self.stays_fitted and self.contents:
            self.fit()

    # ---------------------------------------------------------------- contents

    def set_content(self, content: PaneContent) -> None:
        """Add or replace a pane (by key), keeping the order of first insertion."""
        first = not self.contents
        self.contents[content.key] = content
        if first:
            self._fit_pending = True
        self._layout_panes()

    def set_contents(self, contents: list[PaneContent]) -> None:
        """Replace every pane; the zoom and pan stay unless the image size changed."""
        old_size = self.content_size()
        self.contents = {c.key: c for c in contents}
        if self.selected_key not in self.contents:
            self.selected_key = None
        if self.content_size() != old_size:
            self._fit_pending = True
        self._layout_panes()

    def repaint_panes(self) -> None:
        """Draw every pane again (an image filling in, a label changed)."""
        for pane in [*self.panes, self.wipe_pane]:
            if pane.isVisible():
                pane.update()

    def remove(self, key: str) -> None:
        if self.contents.pop(key, None) is not None:
            self._layout_panes()

    def clear(self) -> None:
        self.contents.clear()
        self.selected_key = None
        self._fit_pending = True
        self._layout_panes()

    def keys(self) -> list[str]:
        return list(self.contents)

    def visible_keys(self) -> list[str]:
        if self.mode == "wipe":
            return [k for k in (self.wipe_left.currentData(), self.wipe_right.currentData()) if k]
        return choose_visible(list(self.contents), self.hidden)

    def set_hidden(self, key: str, hidden: bool) -> None:
        if hidden:
            self.hidden.add(key)
        else:
            self.hidden.discard(key)
        self._layout_panes()

    def set_mode(self, mode: str) -> None:
        if mode not in ("side", "wipe"):
            raise ValueError(mode)
        self.mode = mode
        self._layout_panes()

    def select(self, key: str) -> None:
        if key not in self.contents:
            return
        self.selected_key = key
        for pane in self.panes:
            pane.selected = pane.content is not None and pane.content.key == key
            pane.update()
        if self.mode == "wipe":
            self._layout_panes()
        self.selection_changed.emit(key)

    def _wipe_defaults(self, keys: list[str]) -> tuple[str | None, str | None]:
        """Before/after: the input (else the first pane) against the selected output (else the
        last output, else the last pane)."""
        if not keys:
            return None, None
        left = "input" if "input" in keys else keys[0]
        outputs = [k for k in keys if self.contents[k].kind in ("output", "heatmap")]
        if self.selected_key in outputs:
            return left, self.selected_key
        return left, outputs[-1] if outputs else keys[-1]

    def _refill_wipe_choices(self) -> None:
        keys = list(self.contents)
        defaults = self._wipe_defaults(keys)
        for side, combo in enumerate((self.wipe_left, self.wipe_right)):
            chosen = self._wipe_chosen[side]  # kept while that pane exists
            combo.blockSignals(True)
            combo.clear()
            for key in keys:
                combo.addItem(self.contents[key].title, key)
            key = chosen if chosen in keys else defaults[side]
            combo.setCurrentIndex(keys.index(key) if key in keys else -1)
            combo.blockSignals(False)

    def _wipe_picked(self, side: int, index: int) -> None:
        combo = (self.wipe_left, self.wipe_right)[side]
        self._wipe_chosen[side] = combo.itemData(index)
        self._layout_panes()

    def _layout_panes(self) -> None:
        self._refill_wipe_choices()
        wipe = self.mode == "wipe"
        self.grid_host.setVisible(not wipe)
        self.wipe_pane.setVisible(wipe)
        self.wipe_bar.setVisible(wipe)
        if wipe:
            self.wipe_pane.content = self.contents.get(self.wipe_left.currentData())
            right = self.contents.get(self.wipe_right.currentData())
            self.wipe_pane.right = right if right is not self.wipe_pane.content else None
            self.wipe_pane.update()
        else:
            keys = self.visible_keys() or [None]
            columns = {1: 1, 2: 2, 4: 2}.get(len(keys), 3)
            for pane in self.panes:
                self.grid.removeWidget(pane)
                pane.hide()
            for i, key in enumerate(keys):
                pane = self.panes[i]
                pane.content = self.contents.get(key) if key else None
                pane.selected = key is not None and key == self.selected_key
                self.grid.addWidget(pane, i // columns, i % columns)
                pane.show()
                pane.update()
        if self._fit_pending and self.contents:
            self._fit_pending = False
            self.fit()

    # ---------------------------------------------------------------- zoom

    def content_size(self) -> QSizeF:
        size = QSizeF(0, 0)
        for c in self.contents.values():
            s = c.output_size
            size = QSizeF(max(size.width(), s.width()), max(size.height(), s.height()))
        return size

    def active_panes(self) -> list[ImagePane]:
        if self.mode == "wipe":
            return [self.wipe_pane]
        return [p for p in self.panes if p.isVisibleTo(self) and p.content is not None]

    def fit(self) -> None:
        size = self.content_size()
        if size.isEmpty():
            return
        panes = self.active_panes() or [self.panes[0]]
        width = min(max(p.width(), 50) for p in panes)
        height = min(max(p.height(), 50) for p in panes)
        zoom = min(width / size.width(), height / size.height()) * 0.98
        self._fitting = True
        try:
            self.state.set_view(zoom, QPointF(size.width() / 2, size.height() / 2))
        finally:
            self._fitting = False
        self.stays_fitted = True

    def actual_size(self) -> None:
        self.state.set_view(1.0, self.state.center)

    def zoom_in(self) -> None:
        self.state.zoom_at(WHEEL_STEP)

    def zoom_out(self) -> None:
        self.state.zoom_at(1 / WHEEL_STEP)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.contents and not self._fitted:
            self._fitted = True
            self.fit()

    # ---------------------------------------------------------------- readout

    def readout_text(self, point: QPointF | None) -> str:
        if point is None:
            return " "
        x, y = math.floor(point.x()), math.floor(point.y())
        parts = [f"x {x}  y {y}"]
        for key in self.visible_keys():
            c = self.contents.get(key)
            found = c.value_at(point.x(), point.y()) if c else None
            if found is None:
                continue
            ix, iy, rgb = found
            where = f" @ {ix},{iy}" if c.image_scale != 1 else ""
            parts.append(f"{c.title}{where}: {' '.join(str(v) for v in rgb)}")
        return "   |   ".join(parts)

    def _show_zoom(self) -> None:
        self.zoom_label.setText(f"Zoom {self.state.zoom * 100:.0f}%")

    def _show_readout(self, point: QPointF | None) -> None:
        self.readout.setText(self.readout_text(point))

    def _sync_slider(self, fraction: float) -> None:
        self.wipe_slider.blockSignals(True)
        self.wipe_slider.setValue(round(fraction * 1000))
        self.wipe_slider.blockSignals(False)
