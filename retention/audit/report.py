"""The compliance officer's HTML report: self-contained, inline SVG charts, prints cleanly."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from retention.audit.summary import Group, Summary
from retention.audit.verify import VerifyReport
from retention.units import format_bytes

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1f24; margin: 2rem auto; max-width: 64rem;
  padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ccd; padding-bottom: .2rem; }
.status { padding: .8rem 1rem; border-radius: 6px; font-weight: 600; }
.clean { background: #e3f4e6; border: 1px solid #2e7d32; }
.failed { background: #fdecea; border: 1px solid #c62828; }
code, .hash { font-family: ui-monospace, monospace; font-size: .85em; word-break: break-all; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .8rem; }
.figure { border: 1px solid #ccd; border-radius: 6px; padding: .6rem .8rem; }
.figure b { display: block; font-size: 1.5rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e3e5ea; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { max-width: 100%; height: auto; } svg text { font: 12px system-ui, sans-serif; }
pre { background: #f5f6f8; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  .status, .figure { break-inside: avoid; } section { break-inside: avoid-page; }
  details { display: block; } details > summary { list-style: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def _bytes(size: int) -> str:
    return format_bytes(size)


def _bars(groups: Sequence[Group], label: str) -> str:
    """A horizontal bar chart of removal counts as inline SVG."""
    if not groups:
        return "<p>No removals recorded.</p>"
    width, row, left = 640, 22, 190
    peak = max(group.count for group in groups) or 1
    bars = []
    for index, group in enumerate(groups):
        y = index * row
        length = max(1, round((width - left - 60) * group.count / peak))
        bars.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(group.key[:28])}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{length}" height="{row - 8}" fill="#3f6fb5"'
            f' data-key="{escape(group.key)}" data-count="{group.count}"/>'
            f'<text x="{left + length + 6}" y="{y + 15}">{group.count:,}</text>'
        )
    height = row * len(groups)
    return (
        f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}">' + "".join(bars) + "</svg>"
    )


def _group_table(table_id: str, attribute: str, title: str, groups: Sequence[Group]) -> str:
    rows = "".join(
        f'<tr data-{attribute}="{escape(g.key)}" data-count="{g.count}" data-bytes="{g.bytes}">'
        f'<td>{escape(g.key)}</td><td class="n">{g.count:,}</td>'
        f'<td class="n">{_bytes(g.bytes)}</td></tr>'
        for g in groups
    )
    return (
        f'<table id="{table_id}"><thead><tr><th>{title}</th><th class="n">removals</th>'
        f'<th class="n">recording bytes</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _figure(element_id: str, title: str, value: int, shown: str | None = None) -> str:
    return (
        f'<div class="figure">{title}<b id="{element_id}" data-value="{value}">'
        f"{shown or f'{value:,}'}</b></div>"
    )


def _status(verified: VerifyReport) -> str:
    state = "clean" if verified.clean else "failed"
    findings = "".join(f"<li>{escape(f.message)}</li>" for f in verified.findings[:50])
    more = len(verified.findings) - 50
    return (
        f'<div id="verify-status" class="status {state}" data-clean="{str(verified.clean).lower()}"'
        f' data-findings="{len(verified.findings)}">'
        + (
            f"Verified: {verified.rows:,} rows, chain intact, no findings."
            if verified.clean
            else f"Verification FAILED: {len(verified.findings)} findings."
        )
        + (f"<ul>{findings}</ul>" if findings else "")
        + (
            f"<p>… and {more} more (run <code>retention audit verify</code>).</p>"
            if more > 0
            else ""
        )
        + f'</div><p>Head hash (row <span id="row-count" data-value="{verified.rows}">'
        f'{verified.rows:,}</span>): <span id="head-hash" class="hash">{verified.head_hash}'
        f"</span><br>Log id: <code>{escape(verified.log_id or '?')}</code></p>"
    )


def _holds(summary: Summary) -> str:
    rows = "".join(
        f'<tr data-hold="{escape(h.hold_id)}" data-sessions="{len(h.sessions)}"'
        f' data-blocked="{sum(h.blocked.values())}"><td>{escape(h.hold_id)}</td>'
        f"<td>{escape(h.reason)}</td><td>{escape(h.expires or 'no expiry')}</td>"
        f'<td class="n">{len(h.sessions):,}</td><td>'
        + escape(", ".join(f"{action}: {n:,}" for action, n in sorted(h.blocked.items())))
        + "</td></tr>"
        for h in summary.holds
    )
    return (
        '<table id="holds"><thead><tr><th>hold</th><th>reason</th><th>expires</th>'
        '<th class="n">sessions protected</th><th>removals blocked</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _failures(summary: Summary, verified: VerifyReport) -> str:
    rows = "".join(
        f'<tr data-seq="{seq}"><td>{seq}</td><td>{escape(moment)}</td><td>{escape(action)}</td>'
        f"<td>{session}</td><td>{status or '-'}</td><td>{escape(reason or '')}</td></tr>"
        for seq, moment, action, session, status, reason in summary.failures
    )
    refused = "".join(
        f'<li data-seq="{seq}">{escape(moment)} run <code>{escape(run or "-")}</code>:'
        f" {escape(reason)}</li>"
        for seq, moment, run, reason in summary.refusals
    )
    pending = ", ".join(str(seq) for seq in verified.pending_intents[:100])
    return (
        '<table id="failures"><thead><tr><th>row</th><th>time</th><th>action</th><th>session</th>'
        f"<th>status</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
        + (f"<p>Intents without an outcome (rows): {pending}</p>" if pending else "")
        + (f'<h3>Runs refused</h3><ul id="refusals">{refused}</ul>' if refused else "")
    )


def _runs(summary: Summary) -> str:
    rows = "".join(
        f'<tr data-run="{escape(r.run)}"><td><code>{escape(r.run)}</code></td>'
        f"<td>{escape(r.started or '')}</td><td>{escape(r.trigger or '')}</td>"
        f"<td>{escape(r.result or 'unfinished')}</td><td>"
        + escape(", ".join(f"{k}: {v}" for k, v in sorted(r.counts.items())))
        + "</td><td>"
        + "<br>".join(f"{escape(name)} <code>{sha[:16]}</code>" for name, sha in r.files)
        + "</td></tr>"
        for r in summary.runs
    )
    texts = "".join(
        f'<details data-sha256="{sha}"><summary>{escape(name)} <code>{sha}</code></summary>'
        f"<pre>{escape(text)}</pre></details>"
        for sha, (name, text) in sorted(summary.texts.items(), key=lambda item: item[1][0])
    )
    return (
        '<table id="runs"><thead><tr><th>run</th><th>started</th><th>trigger</th><th>result</th>'
        f"<th>counts</th><th>policy files (sha256)</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<h3>Policy and hold texts in force</h3><div id="policy-files">{texts}</div>'
    )


def render_report(summary: Summary, verified: VerifyReport, *, generated: str) -> str:
    """The whole page as one HTML string: no scripts, no external assets."""
    outcomes = summary.outcomes
    figures = "".join(
        (
            _figure("removed-count", "Removals", outcomes["deleted"]),
            _figure(
                "bytes-removed",
                "Recording bytes removed",
                summary.bytes_removed,
                _bytes(summary.bytes_removed),
            ),
            _figure("absent-count", "Already absent", outcomes["already_absent"]),
            _figure("held-count", "Skipped (hold)", outcomes["skipped_hold"]),
            _figure("failed-count", "Failed", outcomes["failed"]),
            _figure("pending-count", "Without outcome", len(verified.pending_intents)),
        )
    )
    sections = [
        (
            "Removals by month",
            _bars(summary.by_month, "removals by month"),
            _group_table("by-month", "month", "month", summary.by_month),
        ),
        (
            "Removals by policy",
            _bars(summary.by_policy, "removals by policy"),
            _group_table("by-policy", "policy", "policy", summary.by_policy),
        ),
        (
            "Removals by action",
            _bars(summary.by_action, "removals by action"),
            _group_table("by-action", "action", "action", summary.by_action),
        ),
    ]
    charts = "".join(
        f"<section><h2>{title}</h2>{chart}{table}</section>" for title, chart, table in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Retention audit report</title><style>{_STYLE}</style></head><body>"
        f"<h1>Retention audit report</h1><p>Generated {escape(generated)} from"
        f" <code>{escape(verified.path)}</code>.</p>"
        f"{_status(verified)}<section><h2>Summary</h2>"
        f'<div class="figures">{figures}</div></section>{charts}'
        f"<section><h2>Legal holds in force</h2>{_holds(summary)}</section>"
        f"<section><h2>Needing attention</h2>{_failures(summary, verified)}</section>"
        f"<section><h2>Runs and the policies in force</h2>{_runs(summary)}</section>"
        "</body></html>"
    )
