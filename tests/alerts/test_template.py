"""The owner notice's template: the shipped one, an operator's replacement, HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from retention.alerts import mail
from retention.alerts.notices import NoticeLine, OwnerNotice, render
from retention.cli.app import cli
from retention.errors import InvalidInput
from retention.sandbox.policies import RECORDINGS_30D
from retention.settings import Settings, load_settings

DUE = datetime(2026, 3, 8, tzinfo=UTC)
NOTICE = OwnerNotice(
    7,
    "ana@example.com",
    (
        NoticeLine(
            session_id=11,
            action="delete_recordings",
            started=datetime(2026, 1, 30, 9, tzinfo=UTC),
            subject="Q1 <b>plan</b> & review",
            what="the recording",
            due=DUE,
            policy="recordings-30d",
            description="Recordings go 30 days after the session ended.",
        ),
    ),
)


def test_the_shipped_notice_names_session_date_policy_and_contact(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, notice_contact="legal@example.com")

    subject, body = render(NOTICE, settings)

    assert subject == "1 of your GoTo Meeting items will be removed from 2026-03-08"
    assert "2026-01-30 09:00 UTC  Q1 <b>plan</b> & review" in body
    assert "removed: the recording, on 2026-03-08" in body
    assert "recordings-30d: Recordings go 30 days after the session ended." in body
    assert "ask legal@example.com for a hold" in body


def test_an_html_template_replaces_the_shipped_one_and_escapes_subjects(tmp_path: Path) -> None:
    template = tmp_path / "notice.html"
    template.write_text(
        "Subject: Removals for {{ organizer }}\n"
        "<ul>{% for line in lines %}<li>{{ line.subject }}</li>{% endfor %}</ul>\n"
    )
    settings = Settings(state_dir=tmp_path, notice_template=str(template))

    subject, body = render(NOTICE, settings)
    sent = mail.message(settings, "ana@example.com", subject, body)

    assert subject == "Removals for ana@example.com"
    assert "<li>Q1 &lt;b&gt;plan&lt;/b&gt; &amp; review</li>" in body
    assert sent.get_content_type() == "text/html"


def test_a_broken_template_is_invalid_input(tmp_path: Path) -> None:
    template = tmp_path / "notice.txt"
    template.write_text("{{ no_such_variable }}")
    settings = Settings(state_dir=tmp_path, notice_template=str(template))

    with pytest.raises(InvalidInput, match="cannot be rendered"):
        render(NOTICE, settings)


def test_a_password_in_the_smtp_url_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETENTION_SMTP_URL", "smtp+starttls://ops:hunter22@mail:587")

    with pytest.raises(InvalidInput, match="holds a password") as refused:
        load_settings(state_dir=tmp_path)
    assert "hunter22" not in f"{refused.value} {refused.value.hint}"
    assert mail.relay_of(Settings(state_dir=tmp_path, smtp_url="smtp://localhost")).port == 25


def test_a_notice_preview_without_an_inventory_says_so_and_creates_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(RECORDINGS_30D)
    env = {
        "RETENTION_STATE_DIR": str(tmp_path / "state"),
        "RETENTION_POLICY_DIR": str(tmp_path / "policies"),
    }
    result = CliRunner().invoke(cli, ["notify", "preview", "--days", "7"], env=env)
    assert result.exit_code == 2, result.output
    assert "no inventory to preview a notice from" in result.output
    assert not (tmp_path / "state" / "state.db").exists()
