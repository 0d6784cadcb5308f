"""The records of an opened share in the patient's own views, read-only and in memory only: exactly the records the
patient shared (the Summary, Records, Timeline and Labs show those and nothing of the rest of the patient's vault),
no write reaches them, and nothing of the patient's is written to the clinician's disk (the temporary folder and the
clinician's vault folder are searched for the patient's name after every view and a record's detail were shown)
until "Keep a copy", which imports them into the vault marked as a received share. Every widget the keyboard
reaches has an accessible name."""

from __future__ import annotations

import json

import sqlite3
import tempfile

import pytest
from PySide6.QtCore import Qt

from app.clinician.window import RECORD_SCREENS, ClinicianWindow
from app.services import Session
from app.services import received as rc
from app.tasks import TaskRunner
from tests.gui.clinician_support import (PATIENT_WORDS, FeedSource, files_containing, noise_frame,
                                         serving_patient, share)
from tests.gui.test_accessibility import offenders

OPEN_TIMEOUT = 30000


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    with serving_patient(tmp_path_factory.mktemp("patient") / "vault") as session:
        yield session


@pytest.fixture
def clean_tmp(tmp_path, monkeypatch):
    """A fresh, empty temporary folder for everything this test's process writes as temporary files."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)      # forget the folder chosen before TMPDIR changed
    return folder


@pytest.fixture
def opened(qtbot, vault_factory):
    runner = TaskRunner()
    made: list[ClinicianWindow] = []

    def open_link(link: str, vault=None, **options) -> tuple[ClinicianWindow, rc.Received]:
        vault = vault or vault_factory("clinician")
        window = ClinicianWindow(Session(vault), runner, source=FeedSource([noise_frame()]), tell=lambda _s: None,
                                 **options)
        window.resize(1280, 800)
        made.append(window)
        window.show()
        qtbot.waitExposed(window)
        with qtbot.waitSignal(window.opened, timeout=OPEN_TIMEOUT) as got:
            window.open_text(link)
        assert got.args[0].opened, got.args[0].refusal
        return window, got.args[0]

    yield open_link
    for window in made:
        window.close()
    runner.wait()


def _all_tabs_loaded(qtbot, window: ClinicianWindow) -> None:
    for index in range(len(RECORD_SCREENS)):
        window.show_tab(index)
    qtbot.waitUntil(lambda: window.screens["summary"].summary is not None, timeout=10000)
    records = window.screens["records"]
    qtbot.waitUntil(lambda: records.categories_model.total is not None, timeout=10000)
    labs = window.screens["labs"]
    qtbot.waitUntil(lambda: labs.list_note.isHidden() or not labs.list_note.text().startswith("Reading"),
                    timeout=10000)
    timeline = window.screens["timeline"]
    qtbot.waitUntil(lambda: not timeline.model.loading, timeout=10000)


def _category_counts(window: ClinicianWindow) -> dict[str, int]:
    model = window.screens["records"].categories_model
    return {model.category(r).key: model.count(model.category(r).key) for r in range(model.rowCount())}


def test_the_views_show_exactly_the_shared_records(qtbot, patient, opened):
    from vault.records.summary import summary
    out = share(patient, ips=False, types=("Patient", "Immunization", "Condition"))
    window, received = opened(out.link)
    with received.records.read_only() as conn:
        in_memory = {f"{t}/{i}" for t, i in conn.execute("SELECT rtype, id FROM rec_resources")}
    in_share = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for b in received.bundles
                for e in b["entry"]}
    assert in_memory == in_share
    assert {r for r in in_memory if not r.startswith("Consent/")} == set(out.created.resource_ids)
    _all_tabs_loaded(qtbot, window)

    mine = window.screens["summary"].summary
    with patient.read() as conn:
        whole = summary(conn)
    assert [i.label for i in mine.immunizations] == [i.label for i in whole.immunizations]
    assert [i.label for i in mine.problems] == [i.label for i in whole.problems]
    assert whole.results and whole.medications and whole.vitals    # the patient has these; they were not shared
    assert not mine.results and not mine.medications and not mine.vitals and not mine.encounters

    counts = {k: n for k, n in _category_counts(window).items() if n}
    shared_types = [r.split("/")[0] for r in out.created.resource_ids]
    assert counts["immunizations"] == shared_types.count("Immunization")
    assert counts["conditions"] == shared_types.count("Condition")
    assert set(counts) <= {"immunizations", "conditions", "other"}   # Patient and Consent: "other"
    assert window.screens["labs"].source.rowCount() == 0       # no measurement was shared
    assert window.person_label.text().startswith("<b>Juliette Padberg</b>")


def test_the_views_are_read_only(qtbot, patient, opened):
    window, received = opened(share(patient, ips=False, types=("Condition",)).link)
    with window.ctx.read() as conn:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM rec_resources")
        assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == sum(received.counts.values())


def test_nothing_of_the_patient_reaches_the_clinicians_disk_until_keep_a_copy(qtbot, patient, opened,
                                                                              vault_factory, clean_tmp):
    from vault.records import query
    clinician = vault_factory("clinician")
    out = share(patient)                             # the whole summary: names, problems, medicines, results
    window, received = opened(out.link, vault=clinician, confirm_keep=lambda _parent: True)
    _all_tabs_loaded(qtbot, window)
    records = window.screens["records"]
    qtbot.waitUntil(lambda: records.model.rowCount() > 0, timeout=10000)
    records.table.setFocus()
    records.table.selectRow(0)
    index = records.table.model().index(0, 0)
    records.table.activated.emit(index)
    qtbot.waitUntil(lambda: window.detail is not None and window.detail.isVisible(), timeout=10000)
    qtbot.waitUntil(lambda: window.detail.inner.loaded is not None, timeout=10000)
    window._runner.wait()

    assert files_containing(clean_tmp, PATIENT_WORDS) == []
    assert files_containing(clinician.folder, PATIENT_WORDS) == []
    with clinician.read() as conn:
        assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == 0

    with qtbot.waitSignal(window.kept, timeout=OPEN_TIMEOUT) as kept:
        qtbot.mouseClick(window.keep_button, Qt.MouseButton.LeftButton)
    assert sum(r.added for r in kept.args[0]) == sum(received.counts.values())
    assert "copy was kept" in window.note.text()
    with clinician.read() as conn:
        sources = conn.execute("SELECT kind, verification FROM rec_sources").fetchall()
        patient_id = conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Patient'").fetchone()[0]
        origin = query.provenance(conn, "Patient", patient_id)
    assert [k for k, _v in sources] == ["received-share"]
    verification = json.loads(sources[0][1])["received"]
    assert verification["kind"] == "shlink" and verification["checks"]["consent"] == "not_checked"
    assert origin[0]["verification"]["received"]["cid"] == out.created.cid
    # kept, and still encrypted: the name is in the vault's database, never in clear on the disk
    assert files_containing(clinician.folder, PATIENT_WORDS) == []
    assert files_containing(clean_tmp, PATIENT_WORDS) == []
    assert window.keep_button.text() == "Copy kept" and not window.keep_button.isEnabled()


def test_a_kept_copy_says_where_it_came_from(qtbot, patient, opened):
    from app.screens.detail import load
    window, received = opened(share(patient, ips=False, types=("Condition",)).link,
                              confirm_keep=lambda _parent: True)
    with qtbot.waitSignal(window.kept, timeout=OPEN_TIMEOUT):
        window.keep_copy()
    vault = window.session.vault
    with vault.read() as conn:
        rid = conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Condition' LIMIT 1").fetchone()[0]
        loaded = load(conn, "Condition", rid)
    assert ("Came from", "A share you received") in loaded.sources


def test_closing_the_record_frees_it_and_a_late_answer_is_dropped(qtbot, patient, opened):
    window, received = opened(share(patient, ips=False, types=("Condition",)).link)
    ctx = window.ctx
    window.scan_another()
    assert window.ctx is None and ctx.alive is False and window.screens == {}
    window._runner.wait()
    assert not received.records.is_open
    answers: list = []
    ctx.query(lambda conn: 1, answers.append, answers.append)      # a screen's read still on its way
    window._runner.wait()
    qtbot.wait(50)
    assert answers == []
    assert window.pages.currentWidget() is window.scan


def test_every_widget_the_keyboard_reaches_has_a_name(qtbot, patient, opened):
    window, received = opened(share(patient).link)
    _all_tabs_loaded(qtbot, window)
    problems: list[str] = []
    for index, (text, _key, _cls) in enumerate(RECORD_SCREENS):
        window.show_tab(index)
        qtbot.wait(50)
        problems += offenders(window, f"clinician window, {text.replace('&&', '&')}")
    window.scan_another()
    for tab in range(window.scan.tabs.count()):
        window.scan.tabs.setCurrentIndex(tab)
        problems += offenders(window, f"scan, tab {tab}")
    assert problems == [], "\n".join(problems)
