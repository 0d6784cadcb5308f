"""Sharing records picked in a list (issue 9): two rows picked in Records, results picked in Search, or the record
in a detail, open the share wizard on a real vault (Fletcher Hyatt's Synthea records) with exactly those records,
and its check step lists exactly them. Where there is no session (the clinician's window), nothing offers to share.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QAbstractItemView

from app.screens import vault_context
from app.screens.detail import RecordDetail
from app.screens.records import RecordsScreen
from app.screens.search import SearchScreen
from app.services import Session
from app.tasks import SyncRunner
from tests.gui.synthea_vault import FLETCHER, synthea_vault
from tests.gui.test_accessibility import offenders

WAIT = 60_000
SELECT = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    v = synthea_vault(tmp_path_factory.mktemp("share-picked") / "vault", FLETCHER)
    yield v
    v.close()


@pytest.fixture
def ctx(vault, runner):
    errors: list[BaseException] = []
    context = vault_context(vault, runner, extras={"session": Session(vault)}, show_error=errors.append)
    context.errors = errors         # type: ignore[attr-defined]
    return context


def _listing(qtbot, screen: RecordsScreen, key: str) -> None:
    """``key``'s records on screen once the categories are counted (the count arriving later would reload the
    table and clear what was picked)."""
    qtbot.waitUntil(lambda: screen.categories_model.count(key) is not None, timeout=WAIT)
    screen.show_category(key)
    qtbot.waitUntil(lambda: screen.model.rowCount() > 3 and not screen.model.loading, timeout=WAIT)


def _checked(qtbot, wizard, ids: list[str]) -> None:
    """The wizard starts on "the records you picked"; its check step lists exactly ``ids``. (Its parent, the
    screen, holds it; leaving deletes it.)"""
    qtbot.waitUntil(lambda: wizard.what_page.kinds.count() > 0, timeout=WAIT)
    assert wizard.isVisible() and wizard.ids == ids
    assert wizard.what_page.picked_radio.isChecked() and wizard.what_page.picked_radio.isVisible()
    word = "record" if len(ids) == 1 else "records"
    assert wizard.what_page.picked_radio.text() == f"The {len(ids)} {word} you &picked"
    wizard.forward()
    qtbot.waitUntil(lambda: wizard.step == 1 and not wizard.busy, timeout=WAIT)
    assert not wizard.message.isVisible(), wizard.message.text()
    # picked records are shared as they are: nothing added (not even the person's details), nothing left out
    assert sorted(r.key for r in wizard.preview.records) == sorted(ids) and not wizard.preview.left_out
    tree = wizard.check_page.shared
    listed = [tree.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole)
              for i in range(tree.topLevelItemCount()) for j in range(tree.topLevelItem(i).childCount())]
    assert sorted(listed) == sorted(ids)
    assert wizard.check_page.summary.text().startswith(f"{len(ids)} {word} will leave this computer")
    wizard.reject()


def test_two_records_picked_in_records_open_the_wizard_with_exactly_those_two(qtbot, ctx, runner):
    screen = RecordsScreen(ctx)
    qtbot.addWidget(screen)
    screen.resize(1100, 700)
    screen.show()
    _listing(qtbot, screen, "immunizations")
    share = screen.sharing
    assert share is not None and not share.button.isEnabled() and not share.action.isEnabled()
    assert share.button.accessibleName() == "Share the selected records"
    assert share.button.focusPolicy() & Qt.FocusPolicy.TabFocus           # Tab reaches it
    assert screen.table.selectionMode() == QAbstractItemView.SelectionMode.ExtendedSelection
    assert screen.table.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    assert share.action in screen.table.actions()
    assert offenders(screen, "records") == []

    # from the keyboard: the first row, then Shift+Down picks the second as well
    screen.table.setFocus()
    screen.table.setCurrentIndex(screen.model.index(0, 0))
    qtbot.keyClick(screen.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    picked = [screen.model.row_at(0).ref, screen.model.row_at(1).ref]
    assert screen.picked() == picked and share.button.isEnabled() and share.action.isEnabled()
    qtbot.waitUntil(lambda: screen.detail.loaded is not None, timeout=WAIT)
    # the detail follows the cursor (the second row), not the first of the picked
    assert f"{screen.detail.loaded.rtype}/{screen.detail.loaded.id}" == picked[1]

    share.button.click()
    assert share.wizard is not None and share.wizard.parent() is screen
    _checked(qtbot, share.wizard, picked)

    # rows apart, picked with the mouse's Ctrl+click equivalent, through the context menu's entry
    screen.table.clearSelection()
    assert not share.button.isEnabled()
    for row in (3, 1):
        screen.table.selectionModel().select(screen.model.index(row, 0), SELECT)
    apart = [screen.model.row_at(1).ref, screen.model.row_at(3).ref]
    assert screen.picked() == apart          # in the table's order, whatever the order of picking
    share.action.trigger()
    _checked(qtbot, share.wizard, apart)
    assert not ctx.errors


def test_results_picked_in_search_open_the_wizard_with_exactly_those(qtbot, ctx, runner):
    screen = SearchScreen(ctx)
    qtbot.addWidget(screen)
    screen.show()
    opened: list[tuple[str, str]] = []
    screen.open_record.connect(lambda rtype, rid: opened.append((rtype, rid)))
    screen.set_query("influenza")
    qtbot.waitUntil(lambda: screen.results.topLevelItemCount() > 2, timeout=WAIT)
    share = screen.sharing
    assert share is not None and not share.button.isEnabled()
    assert screen.results.selectionMode() == QAbstractItemView.SelectionMode.ExtendedSelection
    assert share.action in screen.results.actions() and offenders(screen, "search") == []

    first, third = screen.results.topLevelItem(0), screen.results.topLevelItem(2)
    rect = screen.results.visualItemRect(first)
    qtbot.mouseClick(screen.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert len(opened) == 1                         # a plain click still opens the record
    rect = screen.results.visualItemRect(third)
    qtbot.mouseClick(screen.results.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     rect.center())
    assert len(opened) == 1                         # Ctrl+click picks one more instead of opening it
    picked = ["/".join(item.data(0, Qt.ItemDataRole.UserRole)) for item in (first, third)]
    assert screen.picked() == picked and share.button.isEnabled()
    share.button.click()
    _checked(qtbot, share.wizard, picked)
    assert not ctx.errors


def test_the_record_detail_shares_the_record_it_shows(qtbot, ctx, runner):
    screen = RecordsScreen(ctx, detail_pane=False)
    qtbot.addWidget(screen)
    _listing(qtbot, screen, "conditions")
    target = screen.model.row_at(0).ref
    detail = RecordDetail(ctx)
    qtbot.addWidget(detail)
    detail.show()
    assert detail.share_button is not None and detail.share_button.isHidden()      # nothing shown, nothing to share
    assert detail.share() is None
    detail.show_record(*target.split("/", 1))
    qtbot.waitUntil(lambda: detail.loaded is not None, timeout=WAIT)
    assert detail.share_button.isVisible() and detail.share_button.accessibleName() == "Share this record"
    assert offenders(detail, "detail") == []
    detail.share_button.click()
    _checked(qtbot, detail.wizard, [target])
    detail.clear()
    assert detail.share_button.isHidden()
    assert not ctx.errors


def test_without_a_session_nothing_offers_to_share(qtbot, vault):
    """The clinician's window shows a patient's records through these screens: they are not the clinician's to
    share on."""
    ctx = vault_context(vault, SyncRunner())
    records, search, detail = RecordsScreen(ctx), SearchScreen(ctx), RecordDetail(ctx)
    for widget in (records, search, detail):
        qtbot.addWidget(widget)
    assert records.sharing is None and search.sharing is None and detail.share_button is None
    assert records.table.selectionMode() == QAbstractItemView.SelectionMode.SingleSelection
    assert not records.table.actions() and not search.results.actions()


def test_new_share_in_sharing_opens_the_wizard_with_nothing_picked(qtbot, ctx, runner):
    """The Sharing screen's button, clicked (its signal carries a 'checked' flag, which is no list of records)."""
    from app.screens.sharing import SharingScreen
    screen = SharingScreen(ctx)
    qtbot.addWidget(screen)
    screen.show()
    screen.new_button.click()
    wizard = screen.wizard
    assert wizard is not None and wizard.ids == []
    qtbot.waitUntil(lambda: wizard.what_page.kinds.count() > 0, timeout=WAIT)
    assert wizard.what_page.summary_radio.isChecked() and wizard.what_page.picked_radio.isHidden()
    wizard.reject()
    assert not ctx.errors
