"""The report's timeliness section: lateness per policy, overdue at the period's end, and the
overdue series as an inline SVG chart (no script) whose lines break at gaps.

A gap is an interval between two overdue points longer than `gap_seconds`: twice the longest
schedule interval in force (at least 2 h) as the caller knows it, else twice the median
interval between the period's runs (at least 2 h). No run looked then, so nothing is drawn.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from retention.audit.export import Filters
from retention.audit.timeliness import OverduePoint, lateness_since, overdue_points, run_starts

MIN_GAP_SECONDS = 2 * 3600.0
_WIDTH, _HEIGHT, _LEFT, _TOP, _PLOT_W, _PLOT_H = 640, 240, 48, 12, 420, 190
_COLOURS = ("#3f6fb5", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")


@dataclass(frozen=True, slots=True)
class PolicyTimeliness:
    """One policy's row: removals made in the period, their lateness, what was overdue at its
    end and since when."""

    policy: str
    made: int
    median_s: float | None
    p95_s: float | None
    max_s: float | None
    overdue: int | None
    oldest_due_at: str | None


@dataclass(frozen=True, slots=True)
class Series:
    """One policy's line: its path (segments broken at gaps), lone points, label, colour."""

    policy: str
    path: str
    dots: list[tuple[float, float]]
    colour: str
    label_y: int
    points: int


@dataclass(frozen=True, slots=True)
class Timeliness:
    """The section: per-policy rows, the chart's series and scale, and the gaps found."""

    policies: list[PolicyTimeliness]
    series: list[Series]
    peak: int
    start: str | None
    end: str | None
    gaps: int
    gap_seconds: float
    width: int = _WIDTH
    height: int = _HEIGHT
    left: int = _LEFT
    top: int = _TOP
    plot_w: int = _PLOT_W
    plot_h: int = _PLOT_H


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted `values` (not empty)."""
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def read_timeliness(
    conn: sqlite3.Connection, period: Filters, gap_seconds: float | None = None
) -> Timeliness:
    """The section's figures for the period, from the record alone."""
    late: dict[str, list[float]] = defaultdict(list)
    for made in lateness_since(conn, 0, period.since, period.until):
        late[made.policy].append(made.seconds)
    points = overdue_points(conn, period.since, period.until)
    if gap_seconds is None:
        starts = run_starts(conn, period.since, period.until)
        steps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
        gap_seconds = 2 * statistics.median(steps) if steps else MIN_GAP_SECONDS
    gap_seconds = max(gap_seconds, MIN_GAP_SECONDS)
    last: dict[str, dict[str, object]] = {}
    for point in points:
        last.update(point.policies)
    names = sorted(set(late) | set(last))
    rows = []
    for name in names:
        values = sorted(late.get(name, []))
        end = last.get(name)
        rows.append(
            PolicyTimeliness(
                policy=name,
                made=len(values),
                median_s=statistics.median(values) if values else None,
                p95_s=percentile(values, 0.95) if values else None,
                max_s=values[-1] if values else None,
                overdue=int(str(end["overdue"])) if end else None,
                oldest_due_at=str(end["oldest_due_at"]) if end and end["oldest_due_at"] else None,
            )
        )
    return _chart(rows, points, gap_seconds)


def _chart(
    rows: list[PolicyTimeliness], points: list[OverduePoint], gap_seconds: float
) -> Timeliness:
    charted = sorted({name for point in points for name in point.policies})
    times = [point.time for point in points]
    peak = max(
        (int(entry["overdue"]) for point in points for entry in point.policies.values()),
        default=0,
    )
    gaps = sum(1 for a, b in itertools.pairwise(times) if (b - a).total_seconds() > gap_seconds)
    series = []
    if times:
        first, span = times[0], max((times[-1] - times[0]).total_seconds(), 1.0)
        scale = max(peak, 1)

        def x(moment: datetime) -> float:
            return round(_LEFT + _PLOT_W * (moment - first).total_seconds() / span, 1)

        def y(count: int) -> float:
            return round(_TOP + _PLOT_H - _PLOT_H * count / scale, 1)

        for index, name in enumerate(charted):
            segments: list[list[tuple[float, float]]] = []
            previous: datetime | None = None
            for point in points:
                entry = point.policies.get(name)
                if entry is None:
                    continue
                if previous is None or (point.time - previous).total_seconds() > gap_seconds:
                    segments.append([])
                segments[-1].append((x(point.time), y(int(entry["overdue"]))))
                previous = point.time
            path = " ".join(
                "M " + " L ".join(f"{px} {py}" for px, py in segment)
                for segment in segments
                if len(segment) > 1
            )
            dots = [segment[0] for segment in segments if len(segment) == 1]
            series.append(
                Series(
                    policy=name,
                    path=path,
                    dots=dots,
                    colour=_COLOURS[index % len(_COLOURS)],
                    label_y=_TOP + 14 + 18 * index,
                    points=sum(len(segment) for segment in segments),
                )
            )
    return Timeliness(
        policies=rows,
        series=series,
        peak=peak,
        start=times[0].isoformat() if times else None,
        end=times[-1].isoformat() if times else None,
        gaps=gaps,
        gap_seconds=gap_seconds,
    )


def span_text(seconds: float | None) -> str:
    """A lateness as people read it: `3d 0h`, `5h 12m`, `42 s`; empty when None."""
    if seconds is None:
        return ""
    whole = round(seconds)
    sign, whole = ("-", -whole) if whole < 0 else ("", whole)
    days, rest = divmod(whole, 86400)
    if days:
        return f"{sign}{days}d {rest // 3600}h"
    if rest >= 3600:
        return f"{sign}{rest // 3600}h {rest % 3600 // 60}m"
    return f"{sign}{rest // 60}m" if rest >= 60 else f"{sign}{rest} s"
