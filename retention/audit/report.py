"""The compliance officer's HTML report: a Jinja2 template (autoescaped), inline SVG charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from retention.audit.summary import Group, Summary
from retention.audit.timelyreport import Timeliness, span_text
from retention.audit.verify import VerifyReport
from retention.units import format_bytes

_WIDTH, _ROW, _LEFT = 640, 22, 190


@dataclass(frozen=True, slots=True)
class _Bar:
    key: str
    count: int
    x: int
    y: int
    length: int
    thickness: int
    label_x: int
    text_y: int


@dataclass(frozen=True, slots=True)
class _Chart:
    title: str
    label: str
    table_id: str
    attribute: str
    heading: str
    groups: Sequence[Group]
    bars: list[_Bar]
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class _Figure:
    id: str
    title: str
    value: int
    shown: str


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("retention.audit", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["bytes"] = format_bytes
    environment.filters["when"] = shown_time
    environment.filters["span"] = span_text
    return environment


def shown_time(moment: str | None) -> str:
    """A time of the record as the page shows it: `2026-05-01 03:00:00Z`, to the second."""
    if not moment:
        return ""
    day, _, rest = moment.partition("T")
    return f"{day} {rest[:8]}Z" if rest else day


def _chart(attribute: str, groups: Sequence[Group]) -> _Chart:
    """A horizontal bar chart of removal counts, laid out here and drawn by the template."""
    peak = max((group.count for group in groups), default=0) or 1
    bars = []
    for index, group in enumerate(groups):
        y = index * _ROW
        bars.append(
            _Bar(
                key=group.key,
                count=group.count,
                x=_LEFT,
                y=y + 4,
                length=max(1, round((_WIDTH - _LEFT - 60) * group.count / peak)),
                thickness=_ROW - 8,
                label_x=_LEFT - 8,
                text_y=y + 15,
            )
        )
    return _Chart(
        title=f"Removals by {attribute}",
        label=f"removals by {attribute}",
        table_id=f"by-{attribute}",
        attribute=attribute,
        heading=attribute,
        groups=groups,
        bars=bars,
        width=_WIDTH,
        height=_ROW * len(groups),
    )


def render_report(
    summary: Summary,
    verified: VerifyReport,
    *,
    generated: str,
    timeliness: Timeliness | None = None,
) -> str:
    """The whole page as one HTML string: no scripts, no external assets.

    The verification covers the whole record; every other figure covers `summary.period`;
    `timeliness` (audit/timelyreport.py) fills the `#timeliness` section.
    """
    outcomes = summary.outcomes

    def count(element_id: str, title: str, value: int) -> _Figure:
        return _Figure(element_id, title, value, f"{value:,}")

    figures = [
        count("removed-count", "Removals", outcomes["deleted"]),
        _Figure(
            "bytes-removed",
            "Recording bytes removed",
            summary.bytes_removed,
            format_bytes(summary.bytes_removed),
        ),
        count("absent-count", "Already absent", outcomes["already_absent"]),
        count("held-count", "Skipped (hold)", outcomes["skipped_hold"]),
        count("failed-count", "Failed", outcomes["failed"]),
        count("pending-count", "Without outcome", len(verified.pending_intents)),
    ]
    charts = [
        _chart("month", summary.by_month),
        _chart("policy", summary.by_policy),
        _chart("action", summary.by_action),
    ]
    return (
        _environment()
        .get_template("report.html")
        .render(
            summary=summary,
            verified=verified,
            generated=generated,
            figures=figures,
            charts=charts,
            timeliness=timeliness,
        )
    )
