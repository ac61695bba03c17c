"""The offer of the authors' weights, inline at the top of the Upscale tab (never a dialog):
"Get the authors' weights for A2F and HPINet (13.9 MB) for sharper results" with Download and
Not now. Shown while some of the recommended releases (engine.recommended_releases) are missing,
unless the user said "Not now" to each of those; a release missing that was not declined (a newer
or better one) brings it back. Hidden when they are installed.

DownloadOffer is the state (plain, with a change signal); OfferBanner renders it."""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.downloads import DownloadManager
from app.settings import AppSettings, save_settings
from app.theme import icon
from app.workers import TaskHandle
from engine import Release, RunOutcome, format_size, installed_weights, recommended_releases

STAR_COLOUR = "#e8a900"  # amber: reads on the banner of either theme


class DownloadOffer(QObject):
    changed = Signal()

    def __init__(
        self, settings: AppSettings, downloads: DownloadManager, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.downloads = downloads
        self.missing: list[Release] = []
        self.error = ""
        self._mine = False  # the download going on was started here
        downloads.changed.connect(self.changed)
        downloads.finished.connect(self._finished)
        self.update()

    def update(self) -> None:
        """Re-read which recommended releases are installed."""
        installed = {str(e.metadata.get("release")) for e in installed_weights()}
        self.missing = [r for r in recommended_releases() if r.name not in installed]
        self.changed.emit()

    @property
    def downloading(self) -> bool:
        return self._mine and self.downloads.busy

    @property
    def visible(self) -> bool:
        if self.downloading or (self.error and self.missing):
            return True
        return bool({r.name for r in self.missing} - set(self.settings.declined_downloads))

    def size(self) -> int:
        return sum(r.size or 0 for r in self.missing)

    def text(self) -> str:
        if self.downloading:
            return f"Downloading the authors' weights: {self.downloads.progress_text()}"
        families = list(dict.fromkeys(r.family for r in self.missing))
        names = " and ".join(families)
        size = format_size(self.size())
        offer = f"Get the authors' weights for {names} ({size}) for sharper results."
        return f"{self.error} {offer}" if self.error else offer

    def tooltip(self) -> str:
        return (
            "The networks' authors released trained weights that score well above the bundled "
            "ones (Set5 PSNR about 1-2 dB higher). Downloads: "
            + ", ".join(f"{r.name} ({format_size(r.size)})" for r in self.missing)
            + ". Each file is checked against its published sha256."
        )

    def accept(self) -> TaskHandle | None:
        """Download every missing recommended release."""
        if self.downloads.busy or not self.missing:
            return None
        self.error = ""
        task = self.downloads.download(self.missing)
        self._mine = task is not None
        self.changed.emit()
        return task

    def cancel(self) -> None:
        if self.downloading:
            self.downloads.cancel()

    def decline(self) -> None:
        """ "Not now": remembered (in the settings file at once) until another one is missing."""
        declined = set(self.settings.declined_downloads) | {r.name for r in self.missing}
        self.settings.declined_downloads = sorted(declined)
        self.error = ""
        save_settings(self.settings, only=("declined_downloads",))
        self.changed.emit()

    def _finished(self, outcome: RunOutcome, text: str) -> None:
        if not self._mine:
            self.update()
            return
        self._mine = False
        self.error = text if outcome is RunOutcome.FAILED else ""
        self.update()


class OfferBanner(QFrame):
    """Renders a DownloadOffer: the sentence, Download (or Cancel while downloading), Not now."""

    def __init__(self, offer: DownloadOffer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.offer = offer
        self.setObjectName("offerBanner")
        glyph = QLabel()
        glyph.setPixmap(qta.icon("fa5s.star", color=STAR_COLOUR).pixmap(16, 16))
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button = QPushButton(icon("fa5s.download"), "Download")
        self.download_button.setObjectName("primary")
        self.later_button = QPushButton("Not now")
        self.later_button.setToolTip(
            "Hide this offer; it comes back only when a newer or better download appears "
            "(File > Models... downloads them at any time)"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(glyph)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.download_button)
        layout.addWidget(self.later_button)
        self.download_button.clicked.connect(self._download_clicked)
        self.later_button.clicked.connect(offer.decline)
        offer.changed.connect(self.render)
        self.render()

    def _download_clicked(self) -> None:
        if self.offer.downloading:
            self.offer.cancel()
        else:
            self.offer.accept()

    def render(self) -> None:
        offer = self.offer
        self.setVisible(offer.visible)
        if not offer.visible:
            return
        self.label.setText(offer.text())
        self.label.setToolTip(offer.tooltip())
        if offer.downloading:
            self.download_button.setText("Cancel")
            self.download_button.setIcon(icon("fa5s.times"))
            self.download_button.setToolTip("Stop the download; what was received is kept")
            self.later_button.setEnabled(False)
        else:
            self.download_button.setText("Download")
            self.download_button.setIcon(icon("fa5s.download"))
            self.download_button.setToolTip(
                f"Download {len(offer.missing)} files ({format_size(offer.size())}) from the "
                "authors' releases, check each one's sha256 and install them"
            )
            self.download_button.setEnabled(not offer.downloads.busy)
            self.later_button.setEnabled(True)
