"""The model picker of the Upscale tab: one list, at the chosen scale, of every network that is
installed or one click away (the authors' releases), each row in plain words: what it is good
for, a quality bar (Set5, exact figures in the tooltip), its estimated time for the current image
on this machine and where it comes from. Choosing a release offers to download it.

The rows are app.catalog entries in a list model (PickerModel), painted by PickerDelegate; the
times come from a SpeedEstimator (a worker thread, never the GUI thread), asked by PickerTimes for
what the tab will run: the open image (Upscale tab), the queued images (Batch tab), or one
megapixel when there is neither."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app import jobs
from app.catalog import (
    SCALES,
    CatalogEntry,
    catalog,
    decode_file_choice,
    library_choices,
)
from app.downloads import DownloadManager
from app.jobs import ModelChoice, bicubic_choice
from app.panels.weights_files import WeightsFiles
from app.settings import AppSettings
from app.theme import icon
from app.workers import TaskHandle, start_task
from engine import (
    Release,
    RunOutcome,
    UpscaleOptions,
    best_weights,
    format_size,
    installed_weights,
)

NO_IMAGE_SIZE = (1000, 1000)  # with no image open, times are given per megapixel of input
VISIBLE_ROWS = 5
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
TIME_ROLE = Qt.ItemDataRole.UserRole + 2
PENDING = "pending"


def approx_time(seconds: float | None, per_megapixel: bool = False) -> str:
    """A time as a photographer reads it, short enough for a row: "< 1 s", "~12 s", "~3 min"
    ("/MP" added when it is per megapixel)."""
    if seconds is None:
        return "-"
    unit = "/MP" if per_megapixel else ""
    if seconds < 1:
        return f"< 1 s{unit}"
    if seconds < 90:
        return f"~{seconds:.0f} s{unit}"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min{unit}"
    return f"~{seconds / 3600:.1f} h{unit}"


def megapixels_text(megapixels: float) -> str:
    """ "48", "12.3", "0.42": as many figures as say the size."""
    if megapixels >= 10:
        return f"{megapixels:.0f}"
    if megapixels >= 1:
        return f"{megapixels:.1f}"
    return f"{megapixels:.2g}"


# ===================================================================== the list's model


class PickerModel(QAbstractListModel):
    """The catalog entries of one scale and their estimated times (key -> seconds, None when
    it could not be estimated, PENDING while being estimated)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[CatalogEntry] = []
        self.seconds: dict[str, float | None | str] = {}
        self.per_megapixel = True  # no image open: times per megapixel of input
        self.size_words = "a 1-megapixel image (none is open)"
        self.device_words = "this computer"

    def set_entries(self, entries: list[CatalogEntry]) -> None:
        self.beginResetModel()
        self.entries = entries
        self.endResetModel()

    def mark_pending(self) -> None:
        self.seconds = {e.key: PENDING for e in self.entries}
        self._all_changed()

    def set_seconds(self, key: str, seconds: float | None) -> None:
        self.seconds[key] = seconds
        for row, entry in enumerate(self.entries):
            if entry.key == key:
                index = self.index(row)
                self.dataChanged.emit(index, index, [TIME_ROLE, Qt.ItemDataRole.ToolTipRole])

    def _all_changed(self) -> None:
        if self.entries:
            self.dataChanged.emit(self.index(0), self.index(len(self.entries) - 1))

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.entries)

    def time_text(self, entry: CatalogEntry) -> str:
        seconds = self.seconds.get(entry.key, PENDING)
        if seconds == PENDING:
            return "estimating..."
        return approx_time(seconds, self.per_megapixel)  # type: ignore[arg-type]

    def time_tip(self, entry: CatalogEntry) -> str:
        seconds = self.seconds.get(entry.key, PENDING)
        if seconds == PENDING:
            return "Time: being estimated (a quick trial run on this computer)"
        if seconds is None:
            return "Time: could not be estimated"
        return (
            f"Time: about {seconds:.1f} s for {self.size_words} on {self.device_words}, "
            "from a quick trial run of the network (reading and saving the image not counted)"
        )

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        entry = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.tooltip() + "<br>" + self.time_tip(entry)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{entry.title}, {entry.summary}, {entry.origin_text}, {self.time_text(entry)}"
        if role == ENTRY_ROLE:
            return entry
        if role == TIME_ROLE:
            return self.time_text(entry)
        return None

    def row_of(self, key: str) -> int:
        return next((i for i, e in enumerate(self.entries) if e.key == key), -1)


# ===================================================================== painting a row


class PickerDelegate(QStyledItemDelegate):
    """Two lines a row: the name and where it comes from, with the quality bar on the right;
    what it is good for, with the estimated time on the right."""

    PAD = 6
    RIGHT = 84  # the right column: bar and time

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        height = QFontMetrics(option.font).height()
        return QSize(200, 2 * height + 2 * self.PAD + 3)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        entry: CatalogEntry | None = index.data(ENTRY_ROLE)
        if entry is None:
            return
        painter.save()
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawPrimitive(
                QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget
            )
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        text_color = palette.color(text_role)
        dim = palette.color(QPalette.ColorRole.PlaceholderText)
        if selected:
            dim = text_color
        rect = option.rect.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        line = QFontMetrics(option.font).height()
        right_x = rect.right() - self.RIGHT + 1
        left_w = right_x - rect.left() - 8

        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        title_w = QFontMetrics(bold).horizontalAdvance(entry.title)
        title = QFontMetrics(bold).elidedText(entry.title, Qt.TextElideMode.ElideMiddle, left_w)
        top = QRect(rect.left(), rect.top(), left_w, line)
        painter.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        origin_x = rect.left() + min(title_w, left_w) + 8
        if origin_x < right_x - 30:
            painter.setFont(option.font)
            link = palette.color(QPalette.ColorRole.Link) if not selected else text_color
            painter.setPen(link if entry.release is not None else dim)
            origin_rect = QRect(origin_x, rect.top(), right_x - origin_x - 4, line)
            text = QFontMetrics(option.font).elidedText(
                entry.origin_text, Qt.TextElideMode.ElideRight, origin_rect.width()
            )
            painter.drawText(
                origin_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text
            )

        painter.setFont(option.font)
        painter.setPen(text_color)
        second = QRect(rect.left(), rect.top() + line + 3, left_w, line)
        summary = QFontMetrics(option.font).elidedText(
            entry.summary, Qt.TextElideMode.ElideRight, left_w
        )
        painter.drawText(
            second, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, summary
        )

        self._paint_bar(
            painter,
            QRect(right_x, rect.top() + line // 2 - 4, self.RIGHT, 8),
            entry,
            palette,
            selected,
        )
        painter.setPen(dim)
        time_rect = QRect(right_x, rect.top() + line + 3, self.RIGHT, line)
        painter.drawText(
            time_rect,
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            str(index.data(TIME_ROLE)),
        )
        painter.restore()

    @staticmethod
    def _paint_bar(
        painter: QPainter, rect: QRect, entry: CatalogEntry, palette: QPalette, selected: bool
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        track = palette.color(QPalette.ColorRole.Mid)
        if entry.fraction is None:  # not rated: an outline only
            painter.setPen(track)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(0, 0, -1, -1), 3, 3)
            return
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(rect, 3, 3)
        fill = QRect(rect)
        fill.setWidth(max(0, round(rect.width() * entry.fraction)))
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Highlight
        painter.setBrush(palette.color(role))
        if fill.width() > 0:
            painter.drawRoundedRect(fill, 3, 3)


# ===================================================================== estimating times


class SpeedEstimator(QObject):
    """Times the listed models in one worker at a time; a new request replaces a pending one
    and stops the one running. Held back while the tab runs a model (both would be slowed)."""

    estimated = Signal(str, object)  # entry key, seconds or None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self._pending: tuple | None = None
        self._blocked = False
        self._serial = 0
        self._running_serial = -1
        self._running: tuple | None = None  # the request being timed
        self._cache: dict = {}  # networks built, used by the worker only (one at a time)

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    @property
    def idle(self) -> bool:
        """Nothing being timed and nothing waiting to be."""
        return not self.busy and self._pending is None

    @property
    def requests(self) -> int:
        """How many times a timing was asked for (requests, and runs redone after a block)."""
        return self._serial

    def request(
        self, items: list[jobs.SpeedItem], options: UpscaleOptions, size: tuple[int, int]
    ) -> None:
        self._serial += 1
        self._pending = (items, options, size)
        self._kick()

    def set_blocked(self, blocked: bool) -> None:
        """While blocked nothing is timed: an estimate under way is stopped and redone after."""
        self._blocked = blocked
        if blocked and self.busy and self._pending is None and self._running is not None:
            self._pending = self._running
            self._serial += 1
            self.task.cancel()  # type: ignore[union-attr]
        self._kick()

    def _kick(self) -> None:
        if self.busy:
            if self._pending is not None:
                self.task.cancel()  # type: ignore[union-attr]  # its done starts the next
            return
        if self._blocked or self._pending is None:
            return
        items, options, size = self._running = self._pending
        self._pending = None
        self._running_serial, cache = self._serial, self._cache
        self.task = start_task(
            self, lambda ctx: jobs.estimate_speeds(ctx, items, options, size, cache)
        )
        # bound methods: disconnected by Qt when this object is deleted
        self.task.event.connect(self._estimated)
        self.task.done.connect(self._kick)

    def _estimated(self, found: jobs.SpeedEstimate) -> None:
        if self._running_serial == self._serial:  # else a newer request replaces these
            self.estimated.emit(found.key, found.seconds)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self._pending = None
        if self.task is not None:
            self.task.cancel()
            self.task.wait(timeout_ms)


class PickerTimes(QObject):
    """Keeps a ModelPicker's estimated times current, for what its tab will run: the shared
    piece of the Upscale tab's panel and the Batch tab.

    The times are for one image (set_image_size), for a batch (set_batch: its files' total
    megapixels, the time per megapixel times that), else per megapixel of input. They are redone
    when the listed rows or the options that change the time (device, precision, self-ensemble)
    change; a new batch total only rescales them. While blocked (a run holds the machine) the
    estimator waits; while inactive (a hidden tab) nothing new is asked."""

    def __init__(
        self,
        picker: ModelPicker,
        options_fn: Callable[[], UpscaleOptions],
        device_name: Callable[[], str] = lambda: "this computer",
        idle_words: str = "a 1-megapixel image (none is open)",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent if parent is not None else picker)
        self.picker = picker
        self.options_fn = options_fn
        self.device_name = device_name
        self.idle_words = idle_words
        self.active = True
        self.estimator = SpeedEstimator(self)
        self.estimator.estimated.connect(self._estimated)
        self._image_size: tuple[int, int] | None = None  # (height, width)
        self._batch: tuple[int, float] | None = None  # files, megapixels
        self._key: tuple | None = None
        self._seconds: dict[str, float | None] = {}  # of the request of _key, per its size
        picker.model.modelReset.connect(self.update)

    # ------------------------------------------------------------ what the times are for

    def set_image_size(self, size: tuple[int, int] | None) -> None:
        """The LR image the times are for (height, width); None: per megapixel."""
        self._image_size, self._batch = size, None
        self.update()

    def set_batch(self, files: int, megapixels: float) -> None:
        """The times are for a batch of `files` images of `megapixels` in all (none: per
        megapixel)."""
        self._image_size = None
        self._batch = (files, megapixels) if files > 0 and megapixels > 0 else None
        self._show_words()
        self._show_seconds()

    def _size(self) -> tuple[int, int]:
        return self._image_size or NO_IMAGE_SIZE

    def _factor(self) -> float:
        return self._batch[1] if self._batch is not None else 1.0

    def _show_words(self) -> None:
        model = self.picker.model
        model.per_megapixel = self._image_size is None and self._batch is None
        if self._image_size is not None:
            h, w = self._image_size
            model.size_words = f"this image ({w}x{h})"
        elif self._batch is not None:
            files, megapixels = self._batch
            model.size_words = (
                f"the {files} queued image{'s' * (files != 1)} "
                f"({megapixels_text(megapixels)} megapixels)"
            )
        else:
            model.size_words = self.idle_words

    def _show_seconds(self) -> None:
        """The rows' times from those estimated (still pending: left pending)."""
        for key, seconds in self._seconds.items():
            self._show(key, seconds)

    def _show(self, key: str, seconds: float | None) -> None:
        self.picker.set_seconds(key, None if seconds is None else seconds * self._factor())

    # ------------------------------------------------------------ estimating

    def update(self) -> None:
        """(Re)estimate each listed model's time when the list, the size or the options that
        change the time changed; else show the times already estimated."""
        if not self.active:
            return
        try:
            options = self.options_fn()
        except Exception:  # noqa: BLE001 - options the run itself will refuse with a message
            return
        items = self.picker.speed_items()
        key = (tuple(items), options.device, options.precision, options.ensemble, self._size())
        self._show_words()
        model = self.picker.model
        model.device_words = self.device_name()
        if options.ensemble:
            model.device_words += ", with extra quality (8 passes)"
        if key == self._key:
            self._show_seconds()  # the list was rebuilt with the same rows: same times
            return
        self._key = key
        self._seconds = {}
        model.mark_pending()
        self.estimator.request(items, options, self._size())

    def _estimated(self, key: str, seconds: float | None) -> None:
        self._seconds[key] = seconds
        self._show(key, seconds)

    def set_blocked(self, blocked: bool) -> None:
        """A run holds the machine: estimates wait for it (both would be slowed)."""
        self.estimator.set_blocked(blocked)

    def shutdown(self, wait_ms: int = 5000) -> None:
        self.active = False
        self.estimator.shutdown(wait_ms)


# ===================================================================== the picker


class DownloadStrip(QFrame):
    """Under the list: the offer to download the release just chosen, then its progress."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("offerBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.download_button = QPushButton(icon("fa5s.download"), "Download")
        self.download_button.setToolTip(
            "Download the authors' weights from their release, check the sha256, install them"
        )
        self.dismiss_button = QPushButton("Not now")
        self.dismiss_button.setToolTip("Keep the current model; the release stays in the list")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.label)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.download_button)
        row.addWidget(self.dismiss_button)
        layout.addLayout(row)


class ModelPicker(WeightsFiles, QWidget):
    """Scale, the list and "Load weights...": the model selector of the Upscale tab's panel and
    of the Batch tab (choices, current(), set_current(), refresh(), add_choice(), restore(),
    store(), load_weights()). One DownloadManager may serve several pickers: a download started
    in one shows its progress in the one that offered it."""

    changed = Signal()
    error = Signal(str)

    def __init__(
        self, downloads: DownloadManager | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.downloads = downloads or DownloadManager(self)
        self.choices: list[ModelChoice] = library_choices()
        self._current: ModelChoice = bicubic_choice(4)
        self.offered: Release | None = None  # the release the strip offers
        self._task = None

        self.scale = QComboBox()
        for s in SCALES:
            self.scale.addItem(f"x{s}", s)
        self.scale.setCurrentIndex(self.scale.findData(self._current.scale))
        self.scale.setToolTip("How many times larger the output is, in width and height")
        self.load_button = QPushButton("Load weights...")
        self.load_button.setToolTip(
            "Use a .safetensors / .pt / .pth file of RNAN, CRAN, A2F or HPINet"
        )
        self.model = PickerModel(self)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setItemDelegate(PickerDelegate(self.list))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(True)
        self.list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip(
            "The networks you can use at this scale, and those one download away: what each "
            "is good for, its quality (bar), its time for this image on this computer and where "
            "it comes from. Hover over a row for the exact figures."
        )
        self.strip = DownloadStrip()
        self.strip.hide()

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Scale"))
        top.addWidget(self.scale)
        top.addStretch(1)
        top.addWidget(self.load_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(self._captions())
        layout.addWidget(self.list)
        layout.addWidget(self.strip)
        self._fit_height()

        self.scale.currentIndexChanged.connect(self._scale_changed)
        self.list.selectionModel().currentChanged.connect(self._row_chosen)
        self.load_button.clicked.connect(self._ask_weights)
        self.strip.download_button.clicked.connect(self.download_offered)
        self.strip.dismiss_button.clicked.connect(self.dismiss_offer)
        self.downloads.changed.connect(self._show_strip)
        self.downloads.finished.connect(self._download_finished)
        self._fill()

    def _captions(self) -> QHBoxLayout:
        """What the columns of the rows are, above the list."""
        left = QLabel("Network: what it is good for")
        right = self.time_caption = QLabel("Quality / time")
        right.setToolTip(
            "Quality: the bar runs from plain bicubic enlargement (empty) to the best score "
            "in the papers (full), on the Set5 test photos. Time: for the open image on this "
            "computer (per megapixel when none is open)."
        )
        for label in (left, right):
            label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        row = QHBoxLayout()
        scroll = self.list.verticalScrollBar().sizeHint().width()
        row.setContentsMargins(PickerDelegate.PAD + 1, 4, scroll + PickerDelegate.PAD + 2, 0)
        row.addWidget(left)
        row.addStretch(1)
        row.addWidget(right)
        return row

    # ------------------------------------------------------------ the list

    def _fit_height(self) -> None:
        rows = PickerDelegate().sizeHint(QStyleOptionViewItem(), QModelIndex()).height()
        row = max(rows, self.list.sizeHintForRow(0) if self.model.rowCount() else 0)
        self.list.setFixedHeight(VISIBLE_ROWS * row + 2 * self.list.frameWidth() + row // 2)

    def entries(self) -> list[CatalogEntry]:
        return list(self.model.entries)

    def selected_entry(self) -> CatalogEntry | None:
        """The row highlighted in the list (the current model's, unless a release is offered)."""
        return self.list.currentIndex().data(ENTRY_ROLE)

    def _fill(self) -> None:
        """Build the rows of the current scale and select the current model's."""
        scale = self.scale.currentData()
        installed = installed_weights()
        best = {}
        for e in installed:
            if e.scale == scale and e.origin != "trained" and (e.family, e.variant) not in best:
                found = best_weights(e.family, e.variant, scale)
                if found is not None:
                    best[(e.family, e.variant)] = found
        trained = [e for e in installed if e.scale == scale and e.origin == "trained"]
        library_paths = {str(e.path) for e in trained}
        files = [c for c in self.choices if c.path and c.scale == scale]
        files = [c for c in files if c.path not in library_paths]
        releases = {str(e.metadata.get("release")) for e in installed if e.metadata.get("release")}
        entries = catalog(scale, best, trained, files, releases)
        self.model.set_entries(entries)  # PickerTimes, told by modelReset, shows their times
        self._select_row(self._current)
        self._fit_height()

    def _select_row(self, choice: ModelChoice) -> None:
        row = self.model.row_of(choice.label)
        if row < 0:
            return
        self.list.selectionModel().blockSignals(True)
        self.list.setCurrentIndex(self.model.index(row))
        self.list.selectionModel().blockSignals(False)
        self.list.scrollTo(self.model.index(row))

    def _scale_changed(self, _index: int) -> None:
        scale = self.scale.currentData()
        if self._current.scale != scale:
            same = [c for c in self.choices if c.scale == scale]
            target = ModelChoice(self._current.family, self._current.variant, scale)
            if target not in same:
                target = next(
                    (c for c in same if c.family == self._current.family and not c.path),
                    bicubic_choice(scale),
                )
            self._current = target
        self.hide_offer()
        self._fill()
        self.changed.emit()

    def _row_chosen(self, index: QModelIndex, _previous: QModelIndex = QModelIndex()) -> None:  # noqa: B008
        entry: CatalogEntry | None = index.data(ENTRY_ROLE)
        if entry is None:
            return
        if entry.release is not None:
            self.offer(entry.release)
            return
        self.hide_offer()
        if entry.choice != self._current:
            self._current = entry.choice
            self.changed.emit()

    def choose(self, key: str) -> bool:
        """Choose a row as a click does: False when it is not listed."""
        row = self.model.row_of(key)
        if row < 0:
            return False
        index = self.model.index(row)
        if self.list.currentIndex() == index:
            self._row_chosen(index)
        else:
            self.list.setCurrentIndex(index)
        return True

    def set_seconds(self, key: str, seconds: float | None) -> None:
        self.model.set_seconds(key, seconds)

    # ------------------------------------------------------------ download offer

    def offer(self, release: Release) -> None:
        """Say that this release is not installed and offer to download it."""
        self.offered = release
        self._show_strip()

    def hide_offer(self) -> None:
        self.offered = None
        self._show_strip()

    def dismiss_offer(self) -> None:
        """ "Not now": the list shows the model in use again."""
        if self.downloads.busy and self.offered is not None:
            self.downloads.cancel()
            return
        self.hide_offer()
        self._select_row(self._current)

    def download_offered(self) -> TaskHandle | None:
        if self.offered is None or self.downloads.busy:
            return None
        task = self.downloads.download([self.offered])
        self._show_strip()
        return task

    def _show_strip(self) -> None:
        release, d, strip = self.offered, self.downloads, self.strip
        if release is None:
            strip.hide()
            return
        mine = d.busy and release in d.releases
        if mine:
            strip.label.setText(f"Downloading the authors' weights: {d.progress_text()}")
            strip.download_button.setEnabled(False)
            strip.dismiss_button.setText("Cancel")
            strip.dismiss_button.setToolTip("Stop the download; what was received is kept")
        else:
            strip.label.setText(
                f"Get the authors' {release.family}-{release.variant} x{release.scale} weights "
                f"({format_size(release.size)})?"
            )
            strip.download_button.setEnabled(not d.busy)
            strip.dismiss_button.setText("Not now")
            strip.dismiss_button.setToolTip("Keep the current model; the release stays in the list")
        strip.show()

    def _download_finished(self, outcome: RunOutcome, text: str) -> None:
        if self.offered is None or self.offered not in self.downloads.releases:
            return
        if outcome is RunOutcome.DONE:
            self.hide_offer()  # the window selects what was installed
        else:
            self._show_strip()
            if outcome is RunOutcome.FAILED:
                self.strip.label.setText(text)

    # ------------------------------------------------------------ choice

    def current(self) -> ModelChoice:
        return self._current

    def set_current(self, choice: ModelChoice) -> bool:
        """Select `choice` (adding it when it is a weights file); False when it is not available."""
        if choice.path and choice not in self.choices:
            self.add_choice(choice)
        if choice not in self.choices:
            return False
        self._current = choice
        if self.scale.currentData() != choice.scale:
            self.scale.blockSignals(True)
            self.scale.setCurrentIndex(self.scale.findData(choice.scale))
            self.scale.blockSignals(False)
            self._fill()
        else:
            self._select_row(choice)
        self.hide_offer()
        self.changed.emit()
        return True

    def refresh(self) -> None:
        """Re-read the installed weights (after a download, an import or a training run), keeping
        the weights files loaded by hand and, where it is still there, the current choice."""
        current = self.current()
        self.reread_choices()
        if current not in self.choices:
            same = [c for c in self.choices if c.scale == current.scale]
            fallback = ModelChoice(current.family, current.variant, current.scale)
            self._current = fallback if fallback in same else bicubic_choice(current.scale)
        self._fill()
        if self.offered is not None and self.model.row_of("release:" + self.offered.name) < 0:
            self.hide_offer()
        self.changed.emit()  # the weights behind the same choice may have changed

    def add_choice(self, choice: ModelChoice) -> None:
        if choice not in self.choices:
            self.choices.append(choice)
            if choice.scale == self.scale.currentData():
                self._fill()

    def speed_items(self) -> list[jobs.SpeedItem]:
        return [jobs.SpeedItem(e.key, e.choice, e.installed) for e in self.model.entries]

    def restore(self, s: AppSettings) -> None:
        """The weights files loaded before (those still there) and the last model."""
        for text in s.loaded_weights:
            choice = decode_file_choice(text)
            if choice is not None and Path(choice.path).is_file():
                self.add_choice(choice)
        wanted = ModelChoice(s.family, s.variant, s.scale, s.weights_path or None)
        if not self.set_current(wanted):
            self.set_current(bicubic_choice(s.scale if s.scale in SCALES else 4))
