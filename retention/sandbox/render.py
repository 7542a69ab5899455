"""The API's JSON rows, field by field as the reference shapes them for each endpoint."""

from __future__ import annotations

from typing import Any

from retention.sandbox.account import Account, Attendee, Group, Meeting, Organizer, Session
from retention.sandbox.times import bare, dot_offset, millis_z

JOIN_URL = "https://meet.goto.com/{meeting_id}"


def _minutes(start: int | None, end: int | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start) / 60)


def organizer_row(account: Account, organizer: Organizer, *, legacy_key: bool) -> dict[str, Any]:
    """An organizer; `legacy_key` adds the deprecated lowercase `organizerkey` duplicate."""
    group = account.groups[organizer.group_key]
    row: dict[str, Any] = {
        "lastName": organizer.last_name,
        "groupId": group.group_key,
        "groupName": group.name,
        "status": organizer.status,
        "organizerKey": organizer.organizer_key,
        "email": organizer.email,
        "firstName": organizer.first_name,
        "products": list(organizer.products),
        "maxNumAttendeesAllowed": organizer.max_attendees,
    }
    if legacy_key:
        row["organizerkey"] = organizer.organizer_key
    return row


def group_row(account: Account, group: Group) -> dict[str, Any]:
    """A group; note the reference's lowercase `groupkey`."""
    return {
        "groupkey": group.group_key,
        "groupName": group.name,
        "parentKey": group.parent_key,
        "status": group.status,
        "numOrganizers": len(account.group_members(group.group_key)),
    }


def _host(account: Account, session: Session) -> tuple[Organizer, Meeting]:
    return account.organizers[session.organizer_key], account.meetings[session.meeting_id]


def _meeting_fields(organizer: Organizer, meeting: Meeting) -> dict[str, Any]:
    """The run of fields history and upcoming rows share, in their order, ids as strings."""
    return {
        "subject": meeting.subject,
        "locale": organizer.locale,
        "organizerKey": str(organizer.organizer_key),
        "meetingId": str(meeting.meeting_id),
        "meetingType": meeting.meeting_type,
        "firstName": organizer.first_name,
    }


def history_row(account: Account, session: Session) -> dict[str, Any]:
    """Organizer and meeting-id history: ids and counts as strings, `.+0000` times."""
    organizer, meeting = _host(account, session)
    minutes = _minutes(session.start, session.end)
    row: dict[str, Any] = {
        "startTime": dot_offset(session.start),
        "lastName": organizer.last_name,
        "duration": "" if minutes is None else str(minutes),
        "numAttendees": str(session.attendee_count),
        "accountKey": account.account_key,
        "email": organizer.email,
        "sessionId": str(session.session_id),
        **_meeting_fields(organizer, meeting),
        "endTime": dot_offset(session.end),
        "conferenceCallInfo": meeting.conference_call_info,
    }
    recording = session.recording
    if recording is not None:
        base = f"https://recordings.sandbox.invalid/{recording.recording_id}"
        row["recording"] = {
            "recordingName": recording.name,
            "recordingId": recording.recording_id,
            "downloadUrl": f"{base}/download",
            "fileSize": recording.file_size,
            "shareUrl": f"{base}/share",
            **({"transcriptUrl": f"{base}/transcript"} if recording.transcript else {}),
            **({"aiSummaryUrl": f"{base}/summary"} if recording.ai_summary else {}),
        }
    return _bent(row, session)


def _bent(row: dict[str, Any], session: Session) -> dict[str, Any]:
    """The row with the session's deliberate overrides (`_raw`, `_omit`) applied."""
    if session.raw:
        row.update(session.raw)
    for name in session.omitted:
        row.pop(name, None)
    return row


def group_history_row(account: Account, session: Session) -> dict[str, Any]:
    """Group history: no `sessionId`, no recording, `.000Z` times, the group's name."""
    organizer, meeting = _host(account, session)
    minutes = _minutes(session.start, session.end)
    return {
        "startTime": millis_z(session.start),
        "endTime": millis_z(session.end),
        "lastName": organizer.last_name,
        "duration": "" if minutes is None else str(minutes),
        "numAttendees": str(session.attendee_count),
        "accountKey": account.account_key,
        "email": organizer.email,
        **_meeting_fields(organizer, meeting),
        "groupName": account.groups[organizer.group_key].name,
    }


def _attendee_common(account: Account, session: Session, attendee: Attendee) -> dict[str, Any]:
    organizer, meeting = _host(account, session)
    row: dict[str, Any] = {
        "lastName": organizer.last_name,
        "numAttendees": session.attendee_count,
        "attendeeName": attendee.name,
        "subject": meeting.subject,
        "conferenceCallInfo": meeting.conference_call_info,
        "organizerkey": organizer.organizer_key,
        "meetingInstanceKey": session.session_id,
        "email": organizer.email,
        "attendeeEmail": attendee.email,
        "meetingType": meeting.meeting_type,
        "firstName": organizer.first_name,
    }
    attended = _minutes(attendee.join_time, attendee.leave_time)
    if attended is not None:
        row["duration"] = attended
    return row


def _times(row: dict[str, Any], fmt: Any, session: Session, attendee: Attendee) -> None:
    row["startTime"] = fmt(session.start)
    for name, value in (
        ("endTime", session.end),
        ("joinTime", attendee.join_time),
        ("leaveTime", attendee.leave_time),
    ):
        if value is not None:
            row[name] = fmt(value)


def organizer_attendee_row(
    account: Account, session: Session, attendee: Attendee
) -> dict[str, Any]:
    """Attendees by organizer: bare UTC times; `name` is the organizer's full name."""
    organizer, meeting = _host(account, session)
    row = _attendee_common(account, session, attendee)
    row["groupName"] = account.groups[organizer.group_key].name
    row["name"] = f"{organizer.first_name} {organizer.last_name}"
    row["newMeetingId"] = _formatted_id(meeting.meeting_id)
    row["meetingId"] = meeting.meeting_id
    _times(row, bare, session, attendee)
    return row


def meeting_attendee_row(account: Account, session: Session, attendee: Attendee) -> dict[str, Any]:
    """Attendees by meeting: bare UTC times; `groupName` is "NA", `name` the attendee's."""
    row = _attendee_common(account, session, attendee)
    row["groupName"] = "NA"
    row["name"] = attendee.name
    row["meetingId"] = session.meeting_id
    _times(row, bare, session, attendee)
    return row


def group_attendee_row(account: Account, session: Session, attendee: Attendee) -> dict[str, Any]:
    """Attendees by group: `.000Z` times, `organizerKey` and `meetingId` as strings."""
    organizer, _ = _host(account, session)
    row = _attendee_common(account, session, attendee)
    row["groupName"] = account.groups[organizer.group_key].name
    row["organizerKey"] = str(organizer.organizer_key)
    row["meetingId"] = str(session.meeting_id)
    _times(row, millis_z, session, attendee)
    return row


def _formatted_id(meeting_id: int) -> str:
    digits = str(meeting_id)
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def upcoming_row(account: Account, session: Session, *, group_shape: bool) -> dict[str, Any]:
    """An upcoming meeting: `.+0000` times, or `.000Z` plus `groupName` for group queries."""
    organizer, meeting = _host(account, session)
    fmt = millis_z if group_shape else dot_offset
    row: dict[str, Any] = {
        "startTime": fmt(session.start),
        "endTime": fmt(session.end),
        "lastName": organizer.last_name,
        "accountKey": account.account_key,
        "passwordRequired": "true" if meeting.password_required else "false",
        "email": organizer.email,
        "status": "INACTIVE",
        **_meeting_fields(organizer, meeting),
        "conferenceCallInfo": meeting.conference_call_info,
        "joinURL": JOIN_URL.format(meeting_id=meeting.meeting_id),
    }
    if group_shape:
        row["groupName"] = account.groups[organizer.group_key].name
        del row["conferenceCallInfo"]
    return row


def meeting_row(account: Account, meeting: Meeting, now: int) -> dict[str, Any]:
    """Get meeting: its next session's times (else its latest), ACTIVE while one is running."""
    sessions = account.all_meeting_sessions(meeting.meeting_id)
    upcoming = [session for session in sessions if session.start > now]
    shown = upcoming[0] if upcoming else (sessions[-1] if sessions else None)
    running = any(s.end is not None and s.start <= now < s.end for s in sessions)
    minutes = None if shown is None else _minutes(shown.start, shown.end)
    return {
        "createTime": "",
        "passwordRequired": "true" if meeting.password_required else "false",
        "status": "ACTIVE" if running else "INACTIVE",
        "subject": meeting.subject,
        "conferenceCallInfo": meeting.conference_call_info,
        "maxParticipants": account.organizers[meeting.organizer_key].max_attendees,
        "meetingId": meeting.meeting_id,
        "meetingKey": meeting.meeting_id,
        "meetingType": meeting.meeting_type,
        "uniqueMeetingId": meeting.meeting_id,
        "coorganizerKeys": [],
        "joinURL": JOIN_URL.format(meeting_id=meeting.meeting_id),
        "startTime": dot_offset(None if shown is None else shown.start),
        "endTime": dot_offset(None if shown is None else shown.end),
        "duration": minutes or 0,
    }
