"""Labs & vitals on a real vault holding a Synthea patient: the chart's points are exactly the vault's observations,
blood pressure shows both numbers, a reference range becomes a band and a reading outside it is flagged (in the
chart by shape and in the table in words), and the last cholesterol result is found by typing one word."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCharts import QScatterSeries
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QToolTip, QWidget

from app.charts import epoch_ms
from app.screens import vault_context
from app.screens.labs import MEASUREMENT_ROLE, LabsScreen
from app.tasks import TaskRunner
from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE
from vault.records import ranges
from vault.records.describe import local_date
from vault.records.importer import ImportService

FLETCHER = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"
CHOLESTEROL = "2093-3"
HEMOGLOBIN = "718-7"
# (date, g/dL, interpretation the lab wrote or None); the range is 13.5-17.5 g/dL on every one of them
BP_PANEL_DATE, SYSTOLIC_ALONE_DATE = "2005-06-01", "2006-01-10"
HEMOGLOBIN_READINGS = [("2001-03-01", 14.2, None), ("2002-02-11", 18.4, None), ("2002-09-20", 16.1, None),
                       ("2003-05-02", 12.9, None), ("2004-01-10", 17.9, "N"), ("2004-06-10", 15.0, "H")]


def _observation(i: int, patient: str, date: str, value: float, interpretation: str | None) -> dict:
    obs = {"resourceType": "Observation", "id": f"test-hb-{i}", "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": HEMOGLOBIN,
                                "display": "Hemoglobin [Mass/volume] in Blood"}]},
           "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": date,
           "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
           "referenceRange": [{"low": {"value": 13.5, "unit": "g/dL"}, "high": {"value": 17.5, "unit": "g/dL"},
                               "type": {"coding": [{"code": "normal"}]}}]}
    if interpretation:
        obs["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                              "v3-ObservationInterpretation", "code": interpretation}]}]
    return obs


def _blood_pressures(patient: str) -> list[dict]:
    """A blood pressure as US Core writes it (panel 85354-9, the systolic above the range the source gave), and
    later a systolic pressure taken on its own."""
    loinc = "http://loinc.org"

    def part(code: str, value: float, **extra) -> dict:
        return {"code": {"coding": [{"system": loinc, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mm[Hg]", "code": "mm[Hg]"}, **extra}

    vital = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                          "code": "vital-signs"}]}]
    panel = {"resourceType": "Observation", "id": "test-bp-panel", "status": "final", "category": vital,
             "code": {"coding": [{"system": loinc, "code": "85354-9",
                                  "display": "Blood pressure panel with all children optional"}]},
             "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": BP_PANEL_DATE,
             "component": [part("8480-6", 128, referenceRange=[{"high": {"value": 120, "unit": "mm[Hg]"}}]),
                           part("8462-4", 84)]}
    alone = {"resourceType": "Observation", "id": "test-systolic", "status": "final", "category": vital,
             "code": {"coding": [{"system": loinc, "code": "8480-6", "display": "Systolic blood pressure"}]},
             "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": SYSTOLIC_ALONE_DATE,
             "valueQuantity": {"value": 118, "unit": "mm[Hg]", "code": "mm[Hg]"}}
    return [panel, alone]


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    from vault.store import Vault
    v, _ = Vault.create(tmp_path_factory.mktemp("labs") / "v", PASSPHRASE, kdf_profile=TEST_PROFILE)
    synthea = FIXTURES / "synthea"
    files = sorted(synthea.glob("*Information*.json")) + [synthea / FLETCHER]
    for path, outcome in ImportService(v).import_paths(files):
        assert getattr(outcome, "added", 0) > 0, (path.name, outcome)
    with v.read() as conn:
        patient = conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Patient'").fetchone()[0]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": _observation(i, patient, d, value, interp)}
                        for i, (d, value, interp) in enumerate(HEMOGLOBIN_READINGS)]}
    bundle["entry"] += [{"resource": r} for r in _blood_pressures(patient)]
    report = ImportService(v).import_data(json.dumps(bundle).encode(), "more-readings.json")
    assert report.added == len(HEMOGLOBIN_READINGS) + 2
    yield v
    v.close()


@pytest.fixture
def screen(qtbot, vault):
    runner = TaskRunner()
    s = LabsScreen(vault_context(vault, runner))
    qtbot.addWidget(s)
    s.resize(1150, 720)
    s.show()
    s.refresh()
    qtbot.waitUntil(lambda: s.source.rowCount() > 0, timeout=20000)
    yield s
    runner.wait()


def _show(qtbot, s: LabsScreen, code: str) -> None:
    assert s.select(code)
    qtbot.waitUntil(lambda: s.chart_data is not None and s.chart_data.measurement.code == code, timeout=20000)


def _chart_points(s: LabsScreen, line: int = 0) -> list[tuple[float, float]]:
    return [(p.x(), p.y()) for p in s.chart.value_lines[line].points()]


def _table(s: LabsScreen) -> list[list[str]]:
    m = s.readings
    return [[m.index(r, c).data() for c in range(m.columnCount())] for r in range(m.rowCount())]


def _db_readings(vault, code: str) -> list[tuple[str, float, str]]:
    with vault.read() as conn:
        return conn.execute("SELECT date, value_num, id FROM rec_resources WHERE rtype = 'Observation' AND code = ?"
                            " AND value_num IS NOT NULL ORDER BY date, rid", (code,)).fetchall()


def test_last_cholesterol_and_its_change_by_typing_one_word(qtbot, screen, vault, screenshot):
    # The search field has the focus as the screen opens: no click is needed before typing.
    qtbot.waitUntil(lambda: screen.search.hasFocus(), timeout=5000)
    qtbot.keyClicks(screen.search, "cholesterol")
    qtbot.waitUntil(lambda: screen.chart_data is not None, timeout=20000)
    assert screen.heading.text() == "Total Cholesterol"
    rows = _db_readings(vault, CHOLESTEROL)
    assert len(rows) == 14
    (prev_date, prev, _), (last_date, last, _) = rows[-2], rows[-1]
    change = screen.change.text()
    assert change.startswith(f"Latest: {ranges.format_value(last, 'mg/dL')} on {local_date(last_date)}.")
    moved = round(last) - round(prev)
    assert f"{'Up' if moved > 0 else 'Down'} {abs(moved)} mg/dL since {local_date(prev_date)}." in change
    assert "14 readings" in change
    # the newest reading heads the table
    assert _table(screen)[0][:2] == [local_date(last_date), ranges.format_value(last, "mg/dL")]
    screenshot(screen, "labs-cholesterol")


def test_typing_slowly_ends_on_the_closest_match_and_keeps_a_choice_that_still_matches(qtbot, screen):
    for letter in "chol":
        qtbot.keyClicks(screen.search, letter)
        qtbot.wait(250)             # longer than the pause after which the best match is shown
    qtbot.waitUntil(lambda: screen.chart_data is not None and screen.chart_data.measurement.code == CHOLESTEROL,
                    timeout=20000)
    hdl = screen._index_of(("2085-9", None))
    screen.tree.setCurrentIndex(hdl)
    qtbot.waitUntil(lambda: screen.chart_data.measurement.code == "2085-9", timeout=20000)
    qtbot.keyClicks(screen.search, "esterol")
    qtbot.wait(250)
    assert screen.current.code == "2085-9"      # the user's pick still matches, so it stays


def test_one_click_on_the_list_shows_a_measurement(qtbot, screen):
    index = screen._index_of((CHOLESTEROL, None))
    screen.tree.scrollTo(index)
    rect = screen.tree.visualRect(index)
    qtbot.mouseClick(screen.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: screen.chart_data is not None, timeout=20000)
    assert screen.chart_data.measurement.code == CHOLESTEROL


def test_chart_points_are_exactly_the_vaults_observations(qtbot, screen, vault):
    _show(qtbot, screen, CHOLESTEROL)
    rows = _db_readings(vault, CHOLESTEROL)
    assert _chart_points(screen) == [(epoch_ms(d), v) for d, v, _ in rows]
    # every reading is also a hoverable point, once, flagged or not
    scattered = sorted((p.x(), p.y()) for series in screen.chart.chart().series() if isinstance(series, QScatterSeries)
                       for p in series.points())
    assert scattered == sorted((epoch_ms(d), v) for d, v, _ in rows)
    assert screen.chart.chart().axes(Qt.Orientation.Vertical)[0].titleText() == "mg/dL"
    # the table mirrors the chart: same readings, newest first, each a row
    table = _table(screen)
    assert [(r[0], r[1]) for r in table] == [(local_date(d), ranges.format_value(v, "mg/dL"))
                                             for d, v, _ in reversed(rows)]
    assert screen.readings.headerData(len(table[0]) - 1, Qt.Orientation.Horizontal) == "Flag"
    assert not any(screen.readings.flags(screen.readings.index(r, c)) & Qt.ItemFlag.ItemIsEditable
                   for r in range(len(table)) for c in range(len(table[0])))


def test_blood_pressure_shows_systolic_and_diastolic(qtbot, screen, vault, screenshot):
    with vault.read() as conn:
        panels = [(d, json.loads(raw)) for d, raw in conn.execute(
            "SELECT date, json FROM rec_resources WHERE rtype = 'Observation' AND code IN ('55284-4', '85354-9')"
            " ORDER BY date")]
    assert len(panels) == 11        # Synthea's ten (55284-4) and the US Core one (85354-9)

    def component(obs: dict, code: str) -> float:
        return next(c["valueQuantity"]["value"] for c in obs["component"] if c["code"]["coding"][0]["code"] == code)

    # one entry for every panel of the pair, counting the systolic taken alone too; no separate "Systolic" entry
    listed = [screen.source.item(g).child(r).data(MEASUREMENT_ROLE) for g in range(screen.source.rowCount())
              for r in range(screen.source.item(g).rowCount())]
    pressures = [m for m in listed if {c[0] for c in m.components} == {"8480-6", "8462-4"}]
    assert len(pressures) == 1 and pressures[0].count == 12
    assert not any(m.code in ("8480-6", "8462-4") for m in listed)

    _show(qtbot, screen, pressures[0].code)
    assert [s.name() for s in screen.chart.value_lines] == ["Systolic", "Diastolic"]
    systolic = sorted([(epoch_ms(d), component(p, "8480-6")) for d, p in panels] +
                      [(epoch_ms(SYSTOLIC_ALONE_DATE), 118.0)])
    assert _chart_points(screen, 0) == systolic
    assert _chart_points(screen, 1) == [(epoch_ms(d), component(p, "8462-4")) for d, p in panels]
    # the source's range on the systolic part flags its 128, and is not drawn behind the diastolic line
    assert {(p.x(), p.y()) for p in screen.chart.flagged_points.points()} == {(epoch_ms(BP_PANEL_DATE), 128.0)}
    assert screen.chart.band_series is None
    assert "systolic up to 120 mmHg" in screen.range_note.text()
    assert screen.readings.headerData(1, Qt.Orientation.Horizontal) == "Systolic"
    assert screen.readings.headerData(2, Qt.Orientation.Horizontal) == "Diastolic"
    table = _table(screen)
    assert len(table) == 12 and table[0][:3] == [local_date(SYSTOLIC_ALONE_DATE), "118 mmHg", ""]
    assert table[1][:3] == [local_date(BP_PANEL_DATE), "128 mmHg", "84 mmHg"] and table[1][-1] == "Systolic: high"
    # the latest day had only a systolic reading: it is not paired with an older diastolic one
    assert screen.change.text().startswith(f"Latest: systolic 118 mmHg on {local_date(SYSTOLIC_ALONE_DATE)}. "
                                           f"Systolic down 10 mmHg since {local_date(BP_PANEL_DATE)}.")
    screenshot(screen, "labs-blood-pressure")


def test_reference_range_is_a_band_and_readings_outside_it_are_flagged(qtbot, screen, vault, screenshot):
    _show(qtbot, screen, HEMOGLOBIN)
    band = screen.chart.band_series
    assert band is not None
    assert {p.y() for p in band.upperSeries().points()} == {17.5}
    assert {p.y() for p in band.lowerSeries().points()} == {13.5}
    flagged = screen.chart.flagged_points
    assert flagged.markerShape() == QScatterSeries.MarkerShape.MarkerShapeTriangle
    # above and below the range by value; "H" from the lab although in range; "N" from the lab wins over the value
    expected = {(epoch_ms(d), v) for d, v, interp in HEMOGLOBIN_READINGS
                if interp == "H" or (interp is None and not 13.5 <= v <= 17.5)}
    assert {(p.x(), p.y()) for p in flagged.points()} == expected
    rows = {(r[0], r[1]): r[-1] for r in _table(screen)}
    assert rows[(local_date("2002-02-11"), "18.4 g/dL")] == "High"
    assert rows[(local_date("2003-05-02"), "12.9 g/dL")] == "Low"
    assert rows[(local_date("2004-01-10"), "17.9 g/dL")] == "In range"
    assert rows[(local_date("2004-06-10"), "15 g/dL")] == "High"
    assert "13.5–17.5 g/dL" in screen.range_note.text()
    # Synthea's own two hemoglobin readings carry no range, so nothing is claimed about them
    synthea = [r for r in _table(screen) if r[2] == ""]
    assert len(synthea) == 2 and all(r[-1] == "" for r in synthea)
    screenshot(screen, "labs-reference-range")


def test_hovering_a_point_shows_date_value_and_unit(qtbot, screen):
    _show(qtbot, screen, HEMOGLOBIN)
    point = QPointF(epoch_ms("2002-02-11"), 18.4)
    screen.chart.flagged_points.hovered.emit(point, True)
    qtbot.waitUntil(lambda: QToolTip.isVisible(), timeout=5000)
    text = QToolTip.text()
    assert local_date("2002-02-11") in text and "18.4 g/dL" in text and "High" in text
    screen.chart.flagged_points.hovered.emit(point, False)


def test_a_long_series_has_no_marker_per_point_but_hovering_the_line_names_the_closest(qtbot):
    from app.charts import MARKERS_UP_TO, MeasurementChart
    days = [f"{2000 + i // 365:04d}-{(i // 28) % 12 + 1:02d}-{i % 28 + 1:02d}" for i in range(0, 3000, 7)]
    readings = [ranges.Reading(d, 100.0 + i % 17, "mg/dL", i, None, "high" if i == 5 else None)
                for i, d in enumerate(sorted(set(days)))]
    assert len(readings) > MARKERS_UP_TO
    chart = MeasurementChart()
    qtbot.addWidget(chart)
    chart.show_lines([ranges.Line("x", None, "Glucose", "mg/dL", readings)], None)
    scatters = [s for s in chart.chart().series() if isinstance(s, QScatterSeries)]
    assert scatters == [chart.flagged_points] and chart.flagged_points.count() == 1   # flags keep their triangle
    target = readings[40]
    near = QPointF(epoch_ms(target.date) + 3600_000.0, target.value + 0.4)   # an hour off, on the line
    chart.value_lines[0].hovered.emit(near, True)
    qtbot.waitUntil(lambda: QToolTip.isVisible(), timeout=5000)
    assert local_date(target.date) in QToolTip.text() and ranges.format_value(target.value, "mg/dL") in QToolTip.text()
    chart.value_lines[0].hovered.emit(near, False)


def test_activating_a_reading_opens_its_record(qtbot, screen, vault):
    _show(qtbot, screen, CHOLESTEROL)
    opened = []
    screen.open_record.connect(lambda rtype, rid: opened.append((rtype, rid)))
    screen.table.setFocus()
    screen.table.setCurrentIndex(screen.readings.index(0, 0))
    qtbot.keyClick(screen.table, Qt.Key.Key_Return)
    assert opened == [("Observation", _db_readings(vault, CHOLESTEROL)[-1][2])]


class _HeldRunner:
    """Runs each read only when the test says, in the order it chooses: answers arriving out of order."""

    def __init__(self) -> None:
        self.held: list = []

    def run(self, fn, on_done, on_error) -> None:
        self.held.append((fn, on_done, on_error))

    def deliver(self, index: int) -> None:
        fn, on_done, on_error = self.held.pop(index)
        try:
            result = fn()
        except BaseException as exc:
            on_error(exc)
        else:
            on_done(result)


def test_an_answer_that_arrives_after_the_user_moved_on_is_dropped(qtbot, vault):
    runner = _HeldRunner()
    s = LabsScreen(vault_context(vault, runner))
    qtbot.addWidget(s)
    s.refresh()
    runner.deliver(0)                               # the list
    assert s.select(CHOLESTEROL) and s.select(HEMOGLOBIN)
    runner.deliver(1)                               # hemoglobin's readings come first...
    runner.deliver(0)                               # ...cholesterol's, asked for earlier, come last
    assert s.chart_data.measurement.code == HEMOGLOBIN and s.heading.text() == "Hemoglobin in Blood"


def test_search_narrows_the_list_and_an_unknown_word_empties_it(qtbot, screen):
    screen.search.setText("glucose")
    names = [screen.filter.index(r, 0, screen.filter.index(g, 0)).data()
             for g in range(screen.filter.rowCount()) for r in range(screen.filter.rowCount(screen.filter.index(g, 0)))]
    assert names == ["Glucose"]
    screen.search.setText("zzzz")
    assert screen.filter.rowCount() == 0
    screen.search.clear()
    assert screen.filter.rowCount() == 3     # Vital signs, Lab results, Other measurements


def test_every_focusable_widget_has_an_accessible_name(qtbot, screen):
    _show(qtbot, screen, HEMOGLOBIN)
    unnamed = [w for w in screen.findChildren(QWidget)
               if w.focusPolicy() != Qt.FocusPolicy.NoFocus and not w.accessibleName()]
    assert unnamed == []


def test_an_empty_vault_says_where_measurements_come_from(qtbot, vault_factory):
    runner = TaskRunner()
    s = LabsScreen(vault_context(vault_factory("empty"), runner))
    qtbot.addWidget(s)
    s.refresh()
    qtbot.waitUntil(lambda: "No measurements yet" in s.list_note.text(), timeout=20000)
    runner.wait()


def test_ranges_compare_only_like_units_and_read_the_labs_words():
    rng = ranges.Range(13.5, 17.5, "g/dL", None)
    assert ranges.flag_for(18.0, "g/dL", rng) == "high"
    assert ranges.flag_for(18.0, "g/L", rng) is None              # another unit: no claim
    assert ranges.flag_for(12.0, None, rng) == "low"
    assert ranges.flag_for(15.0, "g/dL", rng, "critical-low") == "critical-low"   # the lab said so
    assert ranges.interpretation_flag({"interpretation": [{"coding": [{"code": "HH"}]}]}) == "critical-high"
    treatment = {"referenceRange": [{"high": {"value": 7}, "type": {"coding": [{"code": "treatment"}]}},
                                    {"low": {"value": 4}, "high": {"value": 6}}]}
    assert ranges.reference_range(treatment) == ranges.Range(4.0, 6.0, None, None)
    # a date no calendar has cannot be placed on the time axis; the chart leaves that reading out
    assert [ranges.placeable(d) for d in ("1995", "1995-12", "1995-12-23T19:20:06Z", "2020-13-45", "2021-02-29")] \
        == [True, True, True, False, False]
