"""Documents: the PDFs, images and notes in the vault, listed by date and shown inside the app.

A document's bytes are decrypted by the database on a worker and handed to the viewer in memory: a PDF is read by
QtPdf from a ``QBuffer``, an image is decoded by ``QImage.fromData`` on the worker. Nothing is written to disk on the way (no temporary
file, no cache), so a document is in clear only in this process's memory while it is shown. An attachment the
app cannot show is described (its kind and size) instead. QtPdf lives in this module only.
"""

from __future__ import annotations

import base64
import binascii
import html.parser
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QModelIndex, Qt, Signal
from PySide6.QtGui import QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QPlainTextEdit, QScrollArea, QSplitter,
                               QStackedWidget, QTableView, QVBoxLayout, QWidget)

from app.errors import user_message
from app.screens import LatestQuery, ScreenContext
from app.screens.parts import heading, read_only_rows
from vault.records import query, sources, store
from vault.records.describe import concept, local_date
from vault.records.documents import ATTACHMENT_URL

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1
LIST_LIMIT = 5000

_KINDS = {"application/pdf": "PDF document", "image/png": "PNG image", "image/jpeg": "JPEG image",
          "image/gif": "GIF image", "image/tiff": "TIFF image", "image/webp": "WebP image",
          "text/plain": "Text", "text/html": "Web page", "application/xhtml": "Web page",
          "application/xhtml+xml": "Web page", "application/msword": "Word document",
          "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
          "application/rtf": "RTF document", "text/rtf": "RTF document", "application/dicom": "DICOM image",
          "application/xml": "XML file", "text/xml": "XML file", "application/json": "JSON file",
          "application/fhir+json": "FHIR JSON file", "application/zip": "ZIP archive"}


@dataclass(frozen=True)
class DocumentItem:
    rtype: str                  # DocumentReference, or DiagnosticReport for a report's presented form
    id: str
    index: int                  # which attachment of the resource
    date: str | None
    title: str
    kind: str                   # what the record says it is: "Discharge summary", "Lab report"
    content_type: str


@dataclass(frozen=True)
class Opened:
    item: DocumentItem
    content_type: str           # from the bytes when they say (magic numbers), else as the record claims
    data: bytes | None          # None: nothing the app can fetch
    note: str = ""              # why there are no bytes
    image: QImage | None = None     # decoded on the worker: a camera photo takes longer than a frame to decode
    text: str | None = None


# wider than any screen shows it; a 12-megapixel photo scaled down once on the worker, not at every resize
IMAGE_MAX_WIDTH = 2400


def _attachments(resource: dict) -> list[dict]:
    if resource.get("resourceType") == "DiagnosticReport":
        found = resource.get("presentedForm")
    else:
        found = [c.get("attachment") for c in resource.get("content") or [] if isinstance(c, dict)]
    return [a for a in found or [] if isinstance(a, dict)]


def _items(conn: Any, rtype: str, person: int | None) -> list[DocumentItem]:
    out = []
    for row in query.list_records(conn, rtype=rtype, limit=LIST_LIMIT, person=person):
        resource = query.get_by_rid(conn, row.rid) or {}
        attachments = _attachments(resource)
        if rtype == "DocumentReference":
            kind = concept(resource.get("type")) or "Document"
            base = resource.get("description") if isinstance(resource.get("description"), str) else None
        else:
            kind = "Report"
            base = concept(resource.get("code"))
        for i, att in enumerate(attachments):
            ctype = att.get("contentType") if isinstance(att.get("contentType"), str) else ""
            title = att.get("title") if isinstance(att.get("title"), str) else None
            title = title or base or kind
            if len(attachments) > 1 and not att.get("title"):
                title = f"{title} ({i + 1} of {len(attachments)})"
            out.append(DocumentItem(rtype, row.id, i, row.date, title, kind, ctype))
    return out


def load_documents(conn: Any, person: int | None) -> list[DocumentItem]:
    """Every document of the person, newest first: DocumentReferences and the presented forms of reports."""
    items = _items(conn, "DocumentReference", person) + _items(conn, "DiagnosticReport", person)
    return sorted(items, key=lambda i: (i.date or "", i.id, i.index), reverse=True)


def load_document(conn: Any, item: DocumentItem) -> Opened:
    """The bytes of one attachment: from the vault's encrypted attachment table, inline base64, or a Binary
    resource in the vault. A link to somewhere else is not followed."""
    resource = query.get(conn, item.rtype, item.id) or {}
    attachments = _attachments(resource)
    if item.index >= len(attachments):
        return Opened(item, item.content_type, None, "This document is no longer in your vault.")
    att = attachments[item.index]
    url = att.get("url") if isinstance(att.get("url"), str) else ""
    data: bytes | None = None
    if url.startswith(ATTACHMENT_URL):
        data = store.attachment_by_sha256(conn, url[len(ATTACHMENT_URL):])
    elif isinstance(att.get("data"), str):
        try:
            data = base64.b64decode(att["data"], validate=False)
        except (binascii.Error, ValueError):
            return Opened(item, item.content_type, None, "The document's content is damaged (not valid base64).")
    elif url.startswith("Binary/"):
        binary = query.get(conn, "Binary", url.split("/", 1)[1]) or {}
        if isinstance(binary.get("data"), str):
            try:
                data = base64.b64decode(binary["data"], validate=False)
            except (binascii.Error, ValueError):
                data = None
    if data is None:
        note = ("The record points to a document kept elsewhere; medvault does not fetch it." if url else
                "The record describes a document but does not include it.")
        return Opened(item, item.content_type, None, note)
    ctype = sources.document_type(data[:64]) or item.content_type or "application/octet-stream"
    base = ctype.split(";")[0].strip().lower()
    if base.startswith("image/"):
        image = QImage.fromData(data)
        if image.width() > IMAGE_MAX_WIDTH:
            image = image.scaledToWidth(IMAGE_MAX_WIDTH, Qt.TransformationMode.SmoothTransformation)
        return Opened(item, ctype, data, image=image)
    if base.startswith("text/") or "xhtml" in base:
        return Opened(item, ctype, data, text=readable_text(data, base))
    return Opened(item, ctype, data)


def describe_kind(content_type: str, size: int | None = None) -> str:
    base = content_type.split(";")[0].strip().lower()
    kind = _KINDS.get(base) or (f"{base.split('/')[0]} file" if "/" in base else "file of an unknown kind")
    if size is None:
        return kind
    amount = f"{size / (1 << 20):.1f} MB" if size >= 1 << 20 else f"{max(1, round(size / 1024))} KB"
    return f"{kind}, {amount}"


class _TextOnly(html.parser.HTMLParser):
    """The words of an HTML report, without loading anything it refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def readable_text(data: bytes, content_type: str) -> str:
    text = data.decode("utf-8", errors="replace")
    if "html" in content_type:
        parser = _TextOnly()
        parser.feed(text)
        lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
        text = "\n".join(line for line in lines if line)
    return text


class ImageView(QScrollArea):
    """An image at its own size, or shrunk to the width available; never enlarged beyond its pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setAccessibleName("Image of the selected document")
        self.image = QImage()
        self._pixmap = QPixmap()

    def show_image(self, image: QImage) -> None:
        self.image = image
        self._pixmap = QPixmap.fromImage(image)
        self._fit()

    def clear(self) -> None:
        self.image = QImage()
        self._pixmap = QPixmap()
        self.label.clear()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.image.isNull():
            return
        width = max(self.viewport().width() - 8, 50)
        pix = self._pixmap
        if pix.width() > width:
            pix = pix.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
        self.label.setPixmap(pix)


class DocumentsScreen(QWidget):
    open_record = Signal(str, str)
    title = "Documents"

    def __init__(self, ctx: ScreenContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.setAccessibleName("Documents")
        self._list_read = LatestQuery(ctx)
        self._open_read = LatestQuery(ctx)
        self.opened: Opened | None = None
        self._buffer: QBuffer | None = None

        self.model = QStandardItemModel(0, 3)
        self.model.setHorizontalHeaderLabels(["Date", "Title", "Type"])
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Documents, newest first")
        read_only_rows(self.table, pad=8)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.activated.connect(self._open_record)
        self.list_note = QLabel("Reading your documents…")
        self.list_note.setWordWrap(True)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.list_note)

        self.heading = heading()
        self.about = QLabel()
        self.about.setWordWrap(True)

        self.message = QLabel("Choose a document on the left to read it here.")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pdf = QPdfDocument(self)
        self.pdf_view = QPdfView()
        self.pdf_view.setDocument(self.pdf)
        self.pdf_view.setPageMode(QPdfView.PageMode.MultiPage)
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf_view.setAccessibleName("PDF document viewer")
        self.image_view = ImageView()
        self.text_view = QPlainTextEdit()
        self.text_view.setReadOnly(True)
        self.text_view.setAccessibleName("Text of the selected document")
        self.viewer = QStackedWidget()
        for page in (self.message, self.pdf_view, self.image_view, self.text_view):
            self.viewer.addWidget(page)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.heading)
        right_layout.addWidget(self.about)
        right_layout.addWidget(self.viewer, 1)

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setStretchFactor(0, 2)
        body.setStretchFactor(1, 5)
        body.setChildrenCollapsible(False)
        body.setSizes([380, 720])
        layout = QVBoxLayout(self)
        layout.addWidget(body)
        self.setFocusProxy(self.table)

    # --- the list -----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        person = self.ctx.person
        self._list_read.run(lambda conn: load_documents(conn, person), self._show_list, self._list_failed)

    def _list_failed(self, exc: BaseException) -> None:
        self.list_note.setText(user_message(exc))
        self.list_note.show()

    def _show_list(self, items: list[DocumentItem]) -> None:
        keep = self.opened.item if self.opened else None
        self.model.removeRows(0, self.model.rowCount())
        for item in items:
            cells = [QStandardItem(local_date(item.date)), QStandardItem(item.title),
                     QStandardItem(item.kind)]
            cells[0].setData(item, ITEM_ROLE)
            cells[1].setToolTip(f"{item.title} ({describe_kind(item.content_type)})" if item.content_type
                                else item.title)
            for cell in cells:
                cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.model.appendRow(cells)
        for column in (0, 2):
            self.table.resizeColumnToContents(column)
        if items:
            self.list_note.hide()
        else:
            self.list_note.setText("No documents yet. Import PDFs or pictures of letters and results (Import, or "
                                   "drop the files on the window) and they appear here.")
            self.list_note.show()
        row = next((r for r, i in enumerate(items) if keep and (i.rtype, i.id, i.index) ==
                    (keep.rtype, keep.id, keep.index)), None)
        if row is not None:
            self.table.selectRow(row)
        else:
            self._show_message("", "", "Choose a document on the left to read it here." if items else "")

    def select_row(self, row: int) -> None:
        """Open the document on ``row`` of the list, as a click would (the user guide's pictures use it)."""
        self.table.selectRow(row)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        item = current.siblingAtColumn(0).data(ITEM_ROLE) if current.isValid() else None
        if item is not None:
            self._open(item)

    # --- one document -------------------------------------------------------------------------------------------
    def _open(self, item: DocumentItem) -> None:
        self.heading.setText(item.title)
        self.about.setText("Opening…")
        self._open_read.run(lambda conn: load_document(conn, item), self._show,
                            lambda exc: self._show_message(self.heading.text(), "", user_message(exc)))

    def _release(self) -> None:
        """Drop the previous document's bytes from the viewers."""
        self.pdf.close()
        if self._buffer is not None:
            self._buffer.close()
            self._buffer.deleteLater()
            self._buffer = None
        self.image_view.clear()
        self.text_view.clear()

    def _show_message(self, heading: str, about: str, message: str) -> None:
        self._release()
        self.opened = None
        self.heading.setText(heading)
        self.about.setText(about)
        self.message.setText(message)
        self.viewer.setCurrentWidget(self.message)

    def _show(self, opened: Opened) -> None:
        item = opened.item
        facts = [local_date(item.date)]
        if opened.data is None:
            facts.insert(0, item.kind)
            self._show_message(item.title, " · ".join(f for f in facts if f), opened.note)
            self.opened = opened
            return
        self._release()
        self.opened = opened
        ctype = opened.content_type.split(";")[0].strip().lower()
        kind = describe_kind(ctype, len(opened.data))
        if not kind.startswith(item.kind):       # "Clinic note · …" but not "PDF document · … · PDF document"
            facts.insert(0, item.kind)
        facts.append(kind)
        self.heading.setText(item.title)
        self.about.setText(" · ".join(f for f in facts if f))
        if ctype == "application/pdf":
            self._show_pdf(opened.data)
        elif opened.image is not None:
            image = opened.image
            if image.isNull():
                self._show_message(item.title, self.about.text(), "This image is damaged or in a format the app "
                                   "cannot draw, so it cannot be shown.")
                return
            self.image_view.show_image(image)
            self.viewer.setCurrentWidget(self.image_view)
        elif opened.text is not None:
            self.text_view.setPlainText(opened.text)
            self.viewer.setCurrentWidget(self.text_view)
        else:
            self.message.setText(f"{describe_kind(ctype, len(opened.data))} ({ctype or 'no type given'}): medvault "
                                 "shows PDFs, images and text, not this kind of file.")
            self.viewer.setCurrentWidget(self.message)

    def _show_pdf(self, data: bytes) -> None:
        self._buffer = QBuffer(self)
        self._buffer.setData(QByteArray(data))
        self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        self.pdf.load(self._buffer)
        status = self.pdf.status()
        if status == QPdfDocument.Status.Error or self.pdf.error() != QPdfDocument.Error.None_:
            locked = self.pdf.error() == QPdfDocument.Error.IncorrectPassword
            self._show_message(self.heading.text(), self.about.text(),
                               "This PDF is protected by a password, so it cannot be shown here." if locked else
                               "This PDF is damaged, so it cannot be shown.")
            return
        self.viewer.setCurrentWidget(self.pdf_view)

    def _open_record(self, index: QModelIndex) -> None:
        item = index.siblingAtColumn(0).data(ITEM_ROLE)
        if item is not None:
            self.open_record.emit(item.rtype, item.id)
