"""Charts of measurements over time (QtCharts lives here and nowhere else).

Every colour comes from the widget's palette, so a dark theme gets a dark chart. A flagged reading differs from
the others by shape (a triangle), size and colour, never by colour alone; the reference range is a faint band
behind the line. The chart is for the eye: the same readings are in the table beside it for the keyboard and
screen readers, so the chart view itself takes no focus.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timezone

from PySide6.QtCharts import (QAreaSeries, QChart, QChartView, QDateTimeAxis, QLegend, QLineSeries, QScatterSeries,
                              QValueAxis)
from PySide6.QtCore import QDate, QDateTime, QMargins, QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QToolTip, QWidget

from vault.records.describe import local_date, unit_text
from vault.records.ranges import Line, Range, Reading, format_value

DAY_MS = 86_400_000
MARKERS_UP_TO = 150     # more points than this and a marker on each is clutter (and slow to paint)


def epoch_ms(date: str) -> float:
    """Where a FHIR date sits on the time axis: instants exactly, a bare date at local midnight (so it is shown
    on its own day in every time zone), a year or month at its first day. ``ranges.placeable`` dates only."""
    if len(date) <= 10:
        parts = [int(p) for p in date.split("-")] + [1, 1]
        return float(QDate(parts[0], parts[1], parts[2]).startOfDay().toMSecsSinceEpoch())
    when = datetime.fromisoformat(date.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() * 1000.0


def time_ticks(x_min: float, x_max: float) -> tuple[QDateTime, QDateTime, int, str]:
    """An axis range that starts and ends on a year (or month) boundary with a tick on each step, so a label
    "1994" sits at the start of 1994 rather than somewhere in it."""
    first = QDateTime.fromMSecsSinceEpoch(int(x_min)).date()
    last = QDateTime.fromMSecsSinceEpoch(int(x_max)).date()
    years = last.year() - first.year() + 1
    if years >= 3:
        # end just after the last reading and step back, so the spare room is before the first at most
        step = next((s for s in (1, 2, 5, 10, 20, 50) if years / s <= 8), -(-years // 8))
        y1 = last.year() + 1
        y0 = max(1, y1 - -(-(y1 - first.year()) // step) * step)     # year 1 at the earliest, as in FHIR
        # ticks are evenly spaced in milliseconds and leap days push them off 1 January; starting two days in
        # keeps every tick inside the year its label names
        return (QDate(y0, 1, 3).startOfDay(), QDate(y1, 1, 3).startOfDay(), (y1 - y0) // step + 1, "yyyy")
    months = (last.year() - first.year()) * 12 + last.month() - first.month() + 1
    if months >= 3:
        step = next(s for s in (1, 2, 3, 6) if months / s <= 8)
        m1 = last.year() * 12 + last.month()
        m0 = m1 - -(-months // step) * step
        return (QDate(m0 // 12, m0 % 12 + 1, 5).startOfDay(), QDate(m1 // 12, m1 % 12 + 1, 5).startOfDay(),
                (m1 - m0) // step + 1, "MMM yyyy")
    return (QDateTime.fromMSecsSinceEpoch(int(x_min)), QDateTime.fromMSecsSinceEpoch(int(x_max)), 5, "d MMM yyyy")


@dataclass(frozen=True)
class ChartColours:
    background: QColor
    text: QColor
    grid: QColor
    lines: tuple[QColor, ...]
    flagged: QColor
    band: QColor

    @classmethod
    def of(cls, palette: QPalette) -> "ChartColours":
        role = QPalette.ColorRole
        accent = palette.color(role.Highlight)
        band = QColor(accent)
        band.setAlphaF(0.14)
        # the second series (diastolic) is a shade of the first, set apart by its dashes and square points;
        # flagged readings take the text colour, the strongest contrast the theme has, and a triangle
        second = accent.darker(170) if accent.lightness() > 80 else accent.lighter(160)
        return cls(background=palette.color(role.Base), text=palette.color(role.Text),
                   grid=palette.color(role.Midlight), lines=(accent, second),
                   flagged=palette.color(role.Text), band=band)


def reading_text(reading: Reading, line_name: str | None = None, digits: int | None = None) -> str:
    lines = [local_date(reading.date)]
    value = format_value(reading.value, unit_text(reading.unit) or None, digits)
    lines.append(f"{line_name}: {value}" if line_name else value)
    if reading.flag_label:
        rng = reading.range.describe() if reading.range is not None else ""
        lines.append(reading.flag_label + (f" (reference range {_unit_in(rng, reading.range.unit)})" if rng else ""))
    return "\n".join(lines)


def _unit_in(text: str, unit: str | None) -> str:
    return text.replace(unit, unit_text(unit)) if unit else text


def range_text(rng: Range) -> str:
    """A reference range as people write it: "13.5–17.5 g/dL", "up to 200 mg/dL"."""
    return _unit_in(rng.describe(), rng.unit)


class MeasurementChart(QChartView):
    """One measurement's readings over time: a line per series, points you can hover, flags, the range band."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.viewport().setFocusPolicy(Qt.FocusPolicy.NoFocus)   # QGraphicsView gives its viewport wheel focus
        self.setAccessibleName("Chart of the selected measurement over time")
        self.setAccessibleDescription("The same readings are listed in the table of results.")
        self.setMinimumHeight(220)
        self.readings_by_point: dict[tuple[int, float], tuple[str, Reading, int]] = {}
        self.band_series: QAreaSeries | None = None
        self.value_lines: list[QLineSeries] = []
        self.flagged_points: QScatterSeries | None = None
        self._new_chart()

    def _new_chart(self) -> QChart:
        chart = QChart()
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        chart.setBackgroundRoundness(0)
        chart.setMargins(QMargins(4, 4, 4, 4))
        colours = ChartColours.of(self.palette())
        chart.setBackgroundBrush(colours.background)
        chart.setPlotAreaBackgroundVisible(False)
        chart.legend().setLabelColor(colours.text)
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.legend().setMarkerShape(QLegend.MarkerShape.MarkerShapeFromSeries)
        old = self.chart()
        self.setChart(chart)
        if old is not None:
            old.deleteLater()
        self.readings_by_point = {}
        self.band_series = None
        self.value_lines = []
        self.flagged_points = None
        return chart

    def clear(self) -> None:
        self._new_chart()

    def show_lines(self, lines: list[Line], band: Range | None) -> None:
        chart = self._new_chart()
        colours = ChartColours.of(self.palette())
        readings = [r for line in lines for r in line.readings]
        if not readings:
            return
        xs = [epoch_ms(r.date) for r in readings]
        ys = [r.value for r in readings]
        x_min, x_max = min(xs), max(xs)
        pad = max((x_max - x_min) * 0.04, 20 * DAY_MS)
        x_min, x_max = x_min - pad, x_max + pad
        limits = ys + [v for v in ((band.low, band.high) if band else ()) if v is not None]
        y_min, y_max = min(limits), max(limits)
        y_pad = (y_max - y_min) * 0.12 or max(abs(y_max) * 0.1, 1.0)
        y_min = 0.0 if y_min >= 0 and y_min - y_pad < 0 else y_min - y_pad
        y_max += y_pad

        x_axis = QDateTimeAxis()
        start, end, ticks, fmt = time_ticks(x_min, x_max)
        x_axis.setFormat(fmt)
        x_axis.setTickCount(ticks)
        x_axis.setRange(start, end)
        x_min, x_max = float(start.toMSecsSinceEpoch()), float(end.toMSecsSinceEpoch())
        y_axis = QValueAxis()
        y_axis.setRange(y_min, y_max)
        y_axis.applyNiceNumbers()
        step = (y_axis.max() - y_axis.min()) / max(y_axis.tickCount() - 1, 1)
        y_axis.setLabelFormat("%.0f" if abs(step - round(step)) < 1e-9 else "%.1f" if step >= 0.1 else "%.2f")
        unit = unit_text(lines[0].unit)
        y_axis.setTitleText(unit)
        for axis in (x_axis, y_axis):
            axis.setLabelsColor(colours.text)
            axis.setTitleBrush(colours.text)
            axis.setGridLineColor(colours.grid)
            axis.setLinePenColor(colours.grid)
            axis.setMinorGridLineVisible(False)
        chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)

        if band is not None and band.numeric:
            low = band.low if band.low is not None else y_axis.min()
            high = band.high if band.high is not None else y_axis.max()
            upper, lower = QLineSeries(), QLineSeries()
            upper.append([QPointF(x_min, high), QPointF(x_max, high)])
            lower.append([QPointF(x_min, low), QPointF(x_max, low)])
            area = QAreaSeries(upper, lower)
            upper.setParent(area)
            lower.setParent(area)
            area.setName("Reference range")
            area.setBrush(colours.band)
            edge = QColor(colours.lines[0])
            edge.setAlphaF(0.35)
            area.setPen(QPen(edge, 1, Qt.PenStyle.DotLine))
            self._add(chart, area, x_axis, y_axis)
            self.band_series = area

        flagged = QScatterSeries()
        flagged.setName("Outside the reference range")
        flagged.setMarkerShape(QScatterSeries.MarkerShape.MarkerShapeTriangle)
        flagged.setMarkerSize(14)
        flagged.setColor(colours.flagged)
        flagged.setBorderColor(colours.background)
        for i, line in enumerate(lines):
            colour = colours.lines[i % len(colours.lines)]
            series = QLineSeries()
            series.setName(line.name)
            pen = QPen(colour, 2)
            if i % 2:
                pen.setStyle(Qt.PenStyle.DashLine)
            series.setPen(pen)
            xy = [QPointF(epoch_ms(r.date), r.value) for r in line.readings]
            series.replace(xy)          # one call: a thousand appends would each redraw
            name = line.name if len(lines) > 1 else ""
            for p, r in zip(xy, line.readings):
                self.readings_by_point[(int(p.x()), p.y())] = (name, r, line.digits)
            flagged.append([p for p, r in zip(xy, line.readings) if r.flag])
            self._add(chart, series, x_axis, y_axis)
            # hovering near the line names the closest reading, so long series need no marker per point
            xs = [p.x() for p in xy]
            series.hovered.connect(lambda p, state, xy=xy, xs=xs: self._line_hovered(xy, xs, p, state))
            if len(xy) <= MARKERS_UP_TO:
                points = QScatterSeries()
                points.setMarkerShape(QScatterSeries.MarkerShape.MarkerShapeCircle if i % 2 == 0
                                      else QScatterSeries.MarkerShape.MarkerShapeRectangle)
                points.setMarkerSize(8)
                points.setColor(colour)
                points.setBorderColor(colours.background)
                points.append([p for p, r in zip(xy, line.readings) if not r.flag])
                self._add(chart, points, x_axis, y_axis)
                points.hovered.connect(self._hovered)
                chart.legend().markers(points)[0].setVisible(False)
            self.value_lines.append(series)
        self._add(chart, flagged, x_axis, y_axis)
        flagged.hovered.connect(self._hovered)
        self.flagged_points = flagged
        if flagged.count() == 0:
            chart.legend().markers(flagged)[0].setVisible(False)
        chart.legend().setVisible(len(lines) > 1 or band is not None or flagged.count() > 0)
        chart.layout().activate()   # place the axes now, so no frame shows the points without them

    @staticmethod
    def _add(chart: QChart, series, x_axis, y_axis) -> None:
        chart.addSeries(series)
        series.attachAxis(x_axis)
        series.attachAxis(y_axis)

    def _hovered(self, point: QPointF, state: bool) -> None:
        if not state:
            QToolTip.hideText()
            return
        found = self.readings_by_point.get((int(point.x()), point.y()))
        if found is not None:
            QToolTip.showText(QCursor.pos(), reading_text(found[1], found[0] or None, found[2]), self)

    def _line_hovered(self, xy: list[QPointF], xs: list[float], point: QPointF, state: bool) -> None:
        if not state or not xy:
            self._hovered(point, state)
            return
        i = bisect.bisect_left(xs, point.x())
        nearest = min((j for j in (i - 1, i) if 0 <= j < len(xy)), key=lambda j: abs(xs[j] - point.x()))
        self._hovered(xy[nearest], True)

    def select(self, dates: set[str]) -> None:
        """Mark the points of the readings selected in the table, so eye and keyboard meet."""
        for series in self.chart().series():
            if isinstance(series, QScatterSeries):
                series.deselectAllPoints()
                for i, p in enumerate(series.points()):
                    found = self.readings_by_point.get((int(p.x()), p.y()))
                    if found is not None and found[1].date in dates:
                        series.selectPoint(i)

