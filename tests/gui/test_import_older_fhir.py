"""The app's Import on a real Synthea STU3 file: the same summary line as the CLI, saying the records were converted
from FHIR STU3 and which types were left out; a record's detail names the version it came from."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from app.main_window import MainWindow
from app.screens.detail import load, letter_html
from app.tasks import SyncRunner
from tests.conftest import ROOT

SYNTHEA_STU3 = ROOT / "tests" / "data" / "fhir-stu3" / "synthea-Shawnee493_Osinski784.json"


def test_gui_import_of_an_stu3_file_says_it_was_converted(qtbot, unlocked_vault, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(unlocked_vault, SyncRunner(), settings=settings,
                        choose_files=lambda parent: [str(SYNTHEA_STU3)])
    qtbot.addWidget(window)
    window.choose_and_import()
    panel = window.import_panel
    assert panel.summary.text().startswith("1 file imported: 148 records added")
    line = panel.details.item(0).text()
    assert line == (f"{SYNTHEA_STU3.name}: Imported 148 new record(s) converted from FHIR STU3, 32 left out as types "
                    "medvault does not convert from STU3 (Basic 1, Claim 31).")
    with unlocked_vault.read() as conn:
        cid = conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Condition' LIMIT 1").fetchone()[0]
        loaded = load(conn, "Condition", cid)
    assert ("Format", "FHIR STU3, converted to R4 when imported (the original file is kept)") in loaded.sources
    assert "FHIR STU3, converted to R4" in letter_html(loaded)
