"""Conformance: every sandbox response against a JSON schema derived from the API reference.

The schema lives in reference_schema.json; `python tests/sandbox/test_reference.py` rewrites
it from the reference text. Time patterns are cut short in the reference ("…"), so each cut
pattern is completed with the one of FULL_TIME_SHAPES (the shapes retention/times.py parses) it
begins with.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from retention.sandbox.app import API_ROUTES

HERE = Path(__file__).parent
REFERENCE = HERE.parents[1] / ".." / "shared" / "seeds" / "000_a2412334581d5a30.txt"
SCHEMA_FILE = HERE / "reference_schema.json"
URL = re.compile(r"method: '(GET|DELETE|POST|PUT)', url: 'https://api\.getgo\.com/G2M/rest([^']*)'")
ROW = re.compile(r"^(?:(?P<name>\w+) (?P<required>required )?\| )?(?P<type>.*) \|$")
FULL_TIME_SHAPES = (
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.[+-]\d{4})?$",
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)?$",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
)


def _complete(pattern: str) -> str:
    if not pattern.endswith("..."):
        return pattern
    prefix = pattern[:-3]
    matches = [full for full in FULL_TIME_SHAPES if full.startswith(prefix)]
    assert len(matches) == 1, f"cannot complete pattern {pattern!r}: {matches}"
    return matches[0]


def _field_schema(type_text: str) -> dict[str, Any]:
    kind = type_text.split(" ", maxsplit=1)[0]
    if type_text.startswith("Array of strings"):
        return {"type": "array", "items": {"type": "string"}}
    if kind == "integer":
        return {"type": "integer"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "object":
        return {"type": "object"}
    assert kind.startswith("string"), f"unknown type {type_text!r}"
    schema: dict[str, Any] = {"type": "string"}
    pattern = re.search(r"(\^\S*)", type_text)
    enum = re.match(r"string (?:\(\w+\) )?Enum: ((?:\"[^\"]+\" ?)+)", type_text)
    if pattern:
        schema["pattern"] = _complete(pattern.group(1))
    elif enum:
        schema["enum"] = re.findall(r'"([^"]+)"', enum.group(1))
    elif "<= 0 characters" in type_text:
        schema["maxLength"] = 0
    return schema


def _sample(lines: list[str]) -> Any:
    text = "\n".join(lines)
    text = re.sub(r"(^|[\[{,] ?)- ", r"\1", text, flags=re.MULTILINE)
    return json.loads(text)


def _sample_schema(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    return {"type": "string"}


def derive(text: str) -> dict[str, Any]:
    """Per endpoint ("GET /path"), the JSON schema of its 200 response."""
    schemas: dict[str, Any] = {}
    rows: list[re.Match[str]] | None = None
    pending: list[re.Match[str]] = []
    endpoint = None
    sample: list[str] | None = None
    for line in text.splitlines():
        if line == "Response Schema: application/json":
            rows = []
        elif line == "Request samples":
            pending, rows = rows or [], None
        elif rows is not None and (row := ROW.match(line)):
            rows.append(row)
        elif (url := URL.search(line)) is not None:
            endpoint = f"{url.group(1)} {url.group(2).replace('%7B', '{').replace('%7D', '}')}"
        elif line == "- 200" and endpoint and pending:
            sample = []
        elif sample is not None:
            if re.match(r"^([\[\]{}]|- |\], - )", line):
                sample.append(line)
                continue
            schemas[endpoint] = _endpoint_schema(pending, _sample(sample))  # type: ignore[index]
            sample, pending = None, []
    return schemas


def _endpoint_schema(rows: list[re.Match[str]], sample: Any) -> dict[str, Any]:
    item = sample[0] if isinstance(sample, list) else sample
    properties: dict[str, Any] = {}
    required: list[str] = []
    for row in rows:
        name = row.group("name")
        field = _field_schema(row.group("type"))
        if name is None:  # the reference's recording row has a type but no name
            name = next(key for key, value in item.items() if isinstance(value, dict))
            field["properties"] = {k: _sample_schema(v) for k, v in item[name].items()}
            field["additionalProperties"] = False
        properties[name] = field
        if row.group("required"):
            required.append(name)
    body = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {"type": "array", "items": body} if isinstance(sample, list) else body


def test_stored_schema_is_what_the_reference_says() -> None:
    if not REFERENCE.exists():
        pytest.skip(f"the API reference is not at {REFERENCE}")
    assert json.loads(SCHEMA_FILE.read_text()) == derive(REFERENCE.read_text())


def test_schema_holds_the_reference_oddities() -> None:
    schemas = json.loads(SCHEMA_FILE.read_text())
    history = schemas["GET /organizers/{organizerKey}/historicalMeetings"]["items"]
    assert history["properties"]["sessionId"] == {"type": "string"}
    assert history["properties"]["numAttendees"] == {"type": "string"}
    assert re.match(history["properties"]["startTime"]["pattern"], "2021-07-01T23:00:00.+0000")
    group = schemas["GET /groups/{groupKey}/historicalMeetings"]["items"]
    assert "sessionId" not in group["properties"]
    assert re.match(group["properties"]["startTime"]["pattern"], "2021-07-01T23:00:00.000Z")
    attendees = schemas["GET /meetings/{meetingId}/attendees"]["items"]
    assert re.match(attendees["properties"]["joinTime"]["pattern"], "2021-07-01T23:00:00")
    assert not re.match(attendees["properties"]["joinTime"]["pattern"], "2021-07-01T23:00:00Z")


WINDOW = "startDate=2026-10-01T00:00:00Z&endDate=2026-11-23T00:00:00Z"
SERVED = {
    "GET /organizers": "/organizers",
    "GET /organizers/{organizerKey}": "/organizers/1001",
    "GET /organizers/{organizerKey}/attendees": f"/organizers/1001/attendees?{WINDOW}",
    "GET /organizers/{organizerKey}/historicalMeetings": (
        f"/organizers/1001/historicalMeetings?{WINDOW}"
    ),
    "GET /organizers/{organizerKey}/upcomingMeetings": "/organizers/1001/upcomingMeetings",
    "GET /historicalMeetings": f"/historicalMeetings?{WINDOW}",
    "GET /meetings/{meetingId}/historicalMeetings": "/meetings/100000000/historicalMeetings",
    "GET /upcomingMeetings": "/upcomingMeetings",
    "GET /meetings/{meetingId}": "/meetings/100000000",
    "GET /meetings/{meetingId}/attendees": "/meetings/100000000/attendees",
    "GET /groups": "/groups",
    "GET /groups/{groupKey}/attendees": f"/groups/11/attendees?{WINDOW}",
    "GET /groups/{groupKey}/historicalMeetings": f"/groups/11/historicalMeetings?{WINDOW}",
    "GET /groups/{groupKey}/upcomingMeetings": "/groups/11/upcomingMeetings",
    "GET /groups/{groupKey}/organizers": "/groups/11/organizers",
}


@pytest.mark.anyio
@pytest.mark.parametrize("endpoint", sorted(SERVED))
async def test_every_response_matches_the_reference_schema(
    sandbox_asgi: Any, endpoint: str
) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())[endpoint]
    sandbox = sandbox_asgi()
    async with sandbox.client() as client:
        response = await client.get("/G2M/rest" + SERVED[endpoint])
    assert response.status_code == 200
    body = response.json()
    assert body, f"{endpoint} answered an empty list; the check would prove nothing"
    jsonschema.validate(body, schema)


@pytest.mark.anyio
async def test_recordings_and_unknown_end_times_match_the_reference_schema(
    sandbox_asgi: Any,
) -> None:
    sandbox = sandbox_asgi()
    admin = sandbox.account.admin.organizer_key  # meeting-id history serves only its meetings
    session = next(
        s
        for s in sandbox.account.sessions.values()
        if s.recording is not None and s.organizer_key == admin
    )
    session.end = None  # a finished session whose end the API does not know
    schemas = json.loads(SCHEMA_FILE.read_text())
    async with sandbox.client() as client:
        response = await client.get(
            f"/G2M/rest/meetings/{session.meeting_id}/historicalMeetings"
            "?startDate=2026-01-01T00:00:00Z&endDate=2026-11-23T00:00:00Z"
        )
    rows = [row for row in response.json() if row["sessionId"] == str(session.session_id)]
    assert rows[0]["endTime"] == ""
    assert rows[0]["recording"]["recordingId"] == session.recording.recording_id
    jsonschema.validate(rows, schemas["GET /meetings/{meetingId}/historicalMeetings"])


def test_served_endpoints_cover_every_get_the_sandbox_serves() -> None:
    gets = {f"GET {path}" for path, _, verb in API_ROUTES if verb == "GET"}
    assert gets == set(SERVED)


if __name__ == "__main__":
    derived = derive(REFERENCE.read_text())
    SCHEMA_FILE.write_text(json.dumps(derived, indent=2, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_FILE} ({len(derived)} endpoints)", file=sys.stderr)
