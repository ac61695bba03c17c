"""The main window: Upscale/Compare, Batch and Train tabs, menus, drag and drop, settings."""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.dialogs import AboutDialog, HelpDialog, MessageBar
from app.downloads import DownloadManager
from app.gui_gc import collect_on_gui_thread
from app.interrupt import exit_cleanly_on_interrupt
from app.jobs import ModelChoice
from app.models_dialog import ModelsDialog
from app.panels.batch_tab import BatchTab
from app.panels.upscale_tab import UpscaleTab
from app.qt_binding import ADVICE as BINDING_ADVICE
from app.qt_binding import binding_loses_references
from app.screen_fit import default_geometry, fit_to_screen
from app.settings import (
    APPLICATION,
    ORGANIZATION,
    AppSettings,
    load_settings,
    reset_settings,
    save_settings,
)
from app.theme import app_icon, apply_theme, icon
from app.wheel_guard import install_wheel_guard

log = logging.getLogger(__name__)


def _trainer_tab(parent: QWidget) -> QWidget:
    try:
        from app.panels.trainer_tab import TrainerTab
    except ImportError as exc:
        label = QLabel(f"Training is not available in this build ({exc}).")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label
    try:
        return TrainerTab(parent)
    except Exception as exc:  # a broken tab must not stop the rest of the app
        log.exception("the Train tab failed to start")
        label = QLabel(f"The Train tab could not start: {exc}")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        install_wheel_guard(QApplication.instance())  # before any control is made
        self.settings = settings or load_settings()
        self.setWindowTitle("SR Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)

        self.message_bar = MessageBar()
        # One download at a time for the whole app: the Models dialog, the model pickers (Upscale
        # and Batch tabs) and the offer of the authors' weights all go through it.
        self.downloads = DownloadManager(self)
        self.downloads.installed.connect(self._release_installed)
        self.upscale = UpscaleTab(self.settings, downloads=self.downloads)
        self.batch = BatchTab(
            self.settings,
            self.upscale.panel.options,
            downloads=self.downloads,
            device_name=self.upscale.panel.device.currentText,
        )
        self.trainer = _trainer_tab(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.upscale, icon("fa5s.search-plus"), "Upscale/Compare")
        self.tabs.addTab(self.batch, icon("fa5s.layer-group"), "Batch")
        self.tabs.addTab(self.trainer, icon("fa5s.graduation-cap"), "Train")

        for tab in (self.upscale, self.batch):
            tab.message.connect(functools.partial(self.show_message, source=tab))
            tab.stale.connect(functools.partial(self.message_bar.clear_from, tab))
            tab.busy_changed.connect(self._busy_changed)
        if self.settings.note():  # saved choices this machine or build cannot use, said once
            self.show_message(self.settings.note(), "info")
        # the run's progress and time left where the eyes are too, whichever tab is in view
        for control in (self.upscale.run_box.control, self.batch.control):
            control.said.connect(self.statusBar().showMessage)
        trainer_control = getattr(self.trainer, "control", None)
        if trainer_control is not None:
            trainer_control.said.connect(self.statusBar().showMessage)
        self.upscale.folder_dropped.connect(self.queue_for_batch)
        trained = getattr(self.trainer, "model_trained", None)
        if trained is not None:
            trained.connect(self.offer_trained)
        self.models_dialog: ModelsDialog | None = None
        self.upscale.recent_changed.connect(self._fill_recent)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.setSpacing(4)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self.statusBar().showMessage("Ready")
        self._restore_window()

    # ================================================================= menus

    def _build_menus(self) -> None:
        a = self.upscale.actions
        file_menu = self.menuBar().addMenu("&File")
        for name in ("open", "paste"):
            file_menu.addAction(a[name])
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.setIcon(icon("fa5s.history"))
        file_menu.addMenu(self.recent_menu)
        self._fill_recent()
        file_menu.addSeparator()
        for name in ("save", "copy", "reference"):
            file_menu.addAction(a[name])
        file_menu.addSeparator()
        self.models_action = QAction(icon("fa5s.cubes"), "&Models...", self)
        self.models_action.setToolTip("Download the authors' weights, import weights files")
        self.models_action.triggered.connect(self.show_models)
        file_menu.addAction(self.models_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        run_menu = self.menuBar().addMenu("&Run")
        for name in ("run", "compare", "cancel"):
            run_menu.addAction(a[name])

        view_menu = self.menuBar().addMenu("&View")
        for name in ("fit", "actual", "zoom_in", "zoom_out"):
            view_menu.addAction(a[name])
        view_menu.addSeparator()
        for name in ("wipe", "heatmap", "bicubic_input"):
            view_menu.addAction(a[name])
        view_menu.addSeparator()
        self.dark_action = QAction(icon("fa5s.moon"), "Dark theme", self)
        self.dark_action.setCheckable(True)
        self.dark_action.setShortcut(QKeySequence("Ctrl+T"))
        self.dark_action.setChecked(self.settings.theme == "dark")
        self.dark_action.toggled.connect(self.set_dark)
        view_menu.addAction(self.dark_action)
        self.auto_run_action = QAction("Upscale as soon as an image is opened", self)
        self.auto_run_action.setCheckable(True)
        self.auto_run_action.setChecked(self.settings.auto_run)
        self.auto_run_action.toggled.connect(lambda on: setattr(self.settings, "auto_run", on))
        view_menu.addAction(self.auto_run_action)
        self.hold_long_action = QAction("...but not when it would take over 10 s", self)
        self.hold_long_action.setCheckable(True)
        self.hold_long_action.setChecked(self.settings.hold_long_runs)
        self.hold_long_action.setToolTip(
            "Before upscaling an image just opened, estimate the time (a quick calibration of "
            "the model on this device); a run of more than about 10 s waits for Upscale"
        )
        self.hold_long_action.toggled.connect(
            lambda on: setattr(self.settings, "hold_long_runs", on)
        )
        view_menu.addAction(self.hold_long_action)
        view_menu.addSeparator()
        self.reset_action = QAction("Reset settings...", self)
        self.reset_action.setToolTip("Back to the default options, theme, window size and lists")
        self.reset_action.triggered.connect(self.ask_reset_settings)
        view_menu.addAction(self.reset_action)
        next_tab = QAction("Next tab", self)
        next_tab.setShortcut(QKeySequence("Ctrl+Tab"))
        next_tab.triggered.connect(
            lambda: self.tabs.setCurrentIndex((self.tabs.currentIndex() + 1) % self.tabs.count())
        )
        self.addAction(next_tab)

        help_menu = self.menuBar().addMenu("&Help")
        help_action = QAction(icon("fa5s.keyboard"), "Keyboard shortcuts", self)
        help_action.setShortcut(QKeySequence("F1"))
        help_action.triggered.connect(self.show_help)
        about_action = QAction(icon("fa5s.info-circle"), "About SR Studio", self)
        about_action.triggered.connect(self.show_about)
        help_menu.addAction(help_action)
        help_menu.addAction(about_action)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    # ================================================================= actions

    def show_message(self, text: str, level: str = "error", source: object | None = None) -> None:
        self.message_bar.show_message(text, level, source)
        self.statusBar().showMessage(text.splitlines()[0] if text else "", 8000)

    def open_path(self, path: str) -> None:
        if not Path(path).exists():
            self.show_message(f"{path}: file not found", "error")
            return
        self.tabs.setCurrentWidget(self.upscale)
        self.upscale.open_path(path)

    def queue_for_batch(self, paths: list[str]) -> None:
        self.batch.add_paths(paths)
        self.tabs.setCurrentWidget(self.batch)
        self.show_message(
            f"Added {len(paths)} item{'s' * (len(paths) != 1)} to the batch queue.", "info"
        )

    def set_dark(self, dark: bool) -> None:
        self.settings.theme = "dark" if dark else "light"
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.theme)

    def show_help(self) -> None:
        HelpDialog(self).exec()

    def show_about(self) -> None:
        AboutDialog(self).exec()

    def show_models(self) -> ModelsDialog:
        """The Models dialog, modeless (a download goes on while the window is used)."""
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self, self.downloads)
            self.models_dialog.installed.connect(self.offer_installed)
            self.models_dialog.removed.connect(self.weights_removed)
        elif not self.models_dialog.isVisible() and not self.models_dialog.busy:
            self.models_dialog.message_bar.hide()  # said during the last visit
        self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        self.models_dialog.activateWindow()
        return self.models_dialog

    def offer_installed(self, choice: ModelChoice) -> None:
        """Weights just downloaded or imported: list them everywhere; in the Upscale panel
        select the model (its best weights, downloaded over imported over bundled)."""
        self.batch.refresh_models(installed=choice)
        if self.upscale.busy:
            self.upscale.panel.refresh()
        else:
            self.upscale.panel.refresh(select=choice)

    def _release_installed(self, release, path) -> None:
        """A download installed a release: one chosen on its own (the Models dialog, the
        picker) is selected; those of a bulk download (the offer) are only listed."""
        del path
        if len(self.downloads.releases) == 1:
            self.offer_installed(ModelChoice(release.family, release.variant, release.scale))
        else:
            self.weights_removed()

    def weights_removed(self) -> None:
        """Weights moved to the trash: the panels fall back to the next best weights."""
        self.batch.refresh_models()
        self.upscale.panel.refresh()

    def offer_trained(self, path: str) -> None:
        """A training run wrote weights: list them, and select them in the Upscale panel."""
        self.batch.refresh_models()
        if self.upscale.busy:
            self.upscale.panel.refresh()
        else:
            self.upscale.panel.offer_file(path)
        if self.models_dialog is not None:
            self.models_dialog.refresh()

    def _busy_changed(self, busy: bool) -> None:
        """The run's own texts follow (RunControl.said); its last one stays when it ends."""
        if busy:
            self.statusBar().showMessage("Working...")

    # ================================================================= drag and drop

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.handle_drop(paths)
        elif mime.hasImage():
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.upscale)
            self.upscale.paste_image(mime.imageData())

    def handle_drop(self, paths: list[str]) -> None:
        """One image: open it here (and upscale it); folders or several files: the batch queue.
        Dropped on the Batch tab, everything goes to the queue."""
        if self.tabs.currentWidget() is self.batch or len(paths) > 1 or Path(paths[0]).is_dir():
            self.queue_for_batch(paths)
        else:
            self.open_path(paths[0])

    # ================================================================= settings

    def available_geometry(self) -> QRect:
        """The screen's area less its task bars (the screen the window is on, else the primary)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, 1280, 720)

    def _restore_window(self) -> None:
        s = self.settings
        available = self.available_geometry()
        if s.geometry and self.restoreGeometry(QByteArray(s.geometry)):
            if not self.isMaximized() and not self.isFullScreen():
                self.setGeometry(fit_to_screen(self.geometry(), available))
        else:
            self.setGeometry(default_geometry(available))
        if s.window_state:
            self.restoreState(QByteArray(s.window_state))
        self.tabs.setCurrentIndex(min(max(0, s.current_tab), self.tabs.count() - 1))

    def ask_reset_settings(self) -> None:
        answer = QMessageBox.question(
            self,
            "Reset settings",
            "Go back to the default settings? The model and its options, the output and batch "
            "choices, the theme, the recent files and the window's size are all forgotten.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.reset_settings()

    def reset_settings(self) -> None:
        """Forget the stored settings and show the defaults (not during a run: it uses them)."""
        if self.upscale.busy or self.batch.busy:
            self.show_message("Stop the running job first, then reset the settings.", "error")
            return
        reset_settings()
        defaults = AppSettings()
        for f in dataclasses.fields(defaults):  # in place: the tabs hold this object too
            setattr(self.settings, f.name, getattr(defaults, f.name))
        self._show_settings()
        self.show_message("Settings are back to the defaults.", "info")

    def _show_settings(self) -> None:
        """Every control that shows a setting, set from self.settings (after a reset)."""
        s = self.settings
        self.upscale._restore(s)  # the tab's own restore, as at start-up
        b = self.batch
        b.output_dir.setText(s.batch_output_dir)
        b.format.setCurrentIndex(max(0, b.format.findData(s.batch_format)))
        b.quality.setValue(s.batch_quality)
        b.template.setText(s.batch_template)
        b.skip_existing.setChecked(s.batch_skip_existing)
        b.recursive.setChecked(s.batch_recursive)
        self.dark_action.setChecked(s.theme == "dark")
        self.auto_run_action.setChecked(s.auto_run)
        self.hold_long_action.setChecked(s.hold_long_runs)
        self._fill_recent()
        if self.isMaximized() or self.isFullScreen():
            self.showNormal()
        self._restore_window()

    def store_settings(self) -> None:
        s = self.settings
        self.upscale.store(s)
        self.batch.store(s)
        s.geometry = bytes(self.saveGeometry().data())
        s.window_state = bytes(self.saveState().data())
        s.current_tab = self.tabs.currentIndex()
        save_settings(s)

    def closeEvent(self, event) -> None:  # noqa: N802
        try:
            self.store_settings()
        except Exception:  # settings must never keep the window from closing
            log.exception("could not save the settings")
        self.upscale.shutdown()
        self.batch.shutdown()
        if self.models_dialog is not None:
            self.models_dialog.shutdown()
        self.downloads.shutdown()
        shutdown = getattr(self.trainer, "shutdown", None)
        if callable(shutdown):
            shutdown()
        super().closeEvent(event)


def _excepthook(exc_type, exc, tb) -> None:
    """Slots that raise must not take the app down: log, and tell the user in the window."""
    logging.getLogger("srstudio").error("unexpected error", exc_info=(exc_type, exc, tb))
    app = QApplication.instance()
    for widget in app.topLevelWidgets() if app else []:
        if isinstance(widget, MainWindow):
            widget.show_message(f"Unexpected error: {exc_type.__name__}: {exc}", "error")


def start_app(argv: list[str]) -> MainWindow:
    """The application and its window, shown; the image and folder paths in argv[1:] ("Open
    with", `srstudio PATH...`) are opened once the event loop runs: one image in the Upscale tab,
    several or a folder in the Batch queue."""
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(app_icon())
    collect_on_gui_thread(app)  # never from a worker thread (app/gui_gc.py)
    settings = load_settings()
    apply_theme(app, settings.theme)
    sys.excepthook = _excepthook
    window = MainWindow(settings)
    window.show()
    if binding_loses_references():
        log.error(BINDING_ADVICE)
        window.show_message(BINDING_ADVICE, "error")
    paths = [a for a in argv[1:] if not a.startswith("-")]
    if paths:
        QTimer.singleShot(0, lambda: window.handle_drop(paths))
    return window


def run_app(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    window = start_app(sys.argv if argv is None else argv)
    app = QApplication.instance()
    handler = exit_cleanly_on_interrupt(app, window)
    try:
        return app.exec()
    finally:
        handler.uninstall()
