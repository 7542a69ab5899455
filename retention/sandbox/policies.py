"""Small policy sets for runs against the sandbox, shared by the tests and the benchmarks."""

from __future__ import annotations

_RULES = {
    "recordings": (
        "delete_recordings",
        "Recordings go {days} days after the session ended.",
        "{has_recording: true}",
    ),
    "attendees": ("delete_attendees", "Attendee lists go after {days} days.", "{min_attendees: 1}"),
    "sessions": ("delete_session", "Whole sessions go after {days} days.", None),
}


def rule(kind: str, days: int, **more: str) -> str:
    """One rule, named `KIND-DAYSd`: `recordings`, `attendees` (with a recording or an attendee,
    as they need) or `sessions`; `more` adds fields such as `schedule`."""
    action, description, match = _RULES[kind]
    lines = [
        f"  - name: {kind}-{days}d",
        f"    description: {description.format(days=days)}",
        f"    action: {action}",
        f"    after: {days}d",
    ]
    if match is not None:
        lines.append(f"    match: {match}")
    lines.extend(f"    {key}: {value}" for key, value in more.items())
    return "\n".join(lines) + "\n"


def policy_set(*rules: str) -> str:
    """A policy file holding `rules`."""
    return "policies:\n" + "".join(rules)


RECORDINGS_30D = policy_set(rule("recordings", 30))
THREE_ACTIONS = policy_set(rule("recordings", 30), rule("attendees", 60), rule("sessions", 90))
