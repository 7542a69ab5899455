"""Small policy sets for runs against the sandbox, shared by the tests and the benchmarks."""

from __future__ import annotations

_RULES = {
    "recordings": (
        "delete_recordings",
        "Recordings go {after} after the session ended.",
        "{has_recording: true}",
    ),
    "attendees": ("delete_attendees", "Attendee lists go after {after}.", "{min_attendees: 1}"),
    "sessions": ("delete_session", "Whole sessions go after {after}.", None),
}


def rule(kind: str, after: int | str, **fields: str | None) -> str:
    """One rule named `KIND-AFTER`: `recordings`, `attendees` or `sessions`, due `after` days
    (or a duration such as `1y`). Recording and attendee rules match what they remove; `fields`
    add fields (`schedule`, `limits`) or replace them, None leaving one out."""
    action, description, match = _RULES[kind]
    span = f"{after}d" if isinstance(after, int) else after
    said = f"{after} days" if isinstance(after, int) else span
    lines = {
        "name": f"{kind}-{span}",
        "description": description.format(after=said),
        "action": action,
        "after": span,
        "match": match,
        **fields,
    }
    shown = [f"{key}: {value}" for key, value in lines.items() if value is not None]
    return "  - " + "\n    ".join(shown) + "\n"


def policy_set(*rules: str, holds: str = "") -> str:
    """A policy file holding `rules`, then `holds` (the YAML of a `holds:` list) when given."""
    return "policies:\n" + "".join(rules) + (f"holds:\n{holds}" if holds else "")


RECORDINGS_30D = policy_set(rule("recordings", 30))
THREE_ACTIONS = policy_set(rule("recordings", 30), rule("attendees", 60), rule("sessions", 90))
# A retain rule on a subject pattern, for sets whose plans must show blocked sessions.
BOARD_7Y = """\
  - name: board-7y
    description: Board meetings are kept seven years.
    action: retain
    after: 7y
    match: {subject: "(?i)board"}
"""
