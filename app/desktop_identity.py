"""How desktops recognise the app: its id (the name of the installed .desktop entry) and its icon."""

from __future__ import annotations

from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QApplication

import medvault_resources


def app_icon() -> QIcon:
    pixmap = QPixmap()
    pixmap.loadFromData(medvault_resources.app_icon_svg(), "SVG")
    return QIcon(pixmap)


def apply(app: QApplication) -> None:
    # Wayland compositors and task bars match windows to the .desktop entry by this name, for the icon and the
    # "open with" association; on X11 it becomes the window's class hint.
    app.setDesktopFileName(medvault_resources.APP_ID)
    app.setWindowIcon(app_icon())
