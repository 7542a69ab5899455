"""The files the package ships: every example, and policies whose content hashes never move."""

from __future__ import annotations

from pathlib import Path

from retention import examples
from retention.policy import load_policy_set

# The content hashes of the shipped policies as released: a plan made with them and pending at
# an upgrade names these, and `apply` refuses one whose policies hash otherwise (`changed_plan`).
# An edit to a shipped policy changes its hash on purpose; a change to the loader must not.
RELEASED_HASHES = {
    "attendee-lists-1y": "6bff3ae5c3f69fa39f21b8bcdabde79f37bbc91cb7bc2dbe842718e97f98b749",
    "board-keep-10y": "22f64a7f8b8cd1ada38ec84803a0629bb39798747e83d971d6a7feda408da291",
    "hr-interviews-6m": "c71770575de413167fbf0c2cbced5c686f2bdc6e164b60cfd47dd0317c4cb8d9",
    "legal-keep-7y": "547e82b538f812fc4c44169614ec2215221d0c23554767a1f3566e55b171cb87",
    "recordings-90d": "a94d910c6395241a514497d69c98c98199ad8813d46121cba213ee6cfa024dba",
    "sales-demo-recordings-30d": "03901b1c5eb8fef1c22232f2f743b860ff4a4918ac2e27cc838d65d8618b663c",
    "sessions-3y": "ba38ff44ab042c89a39dbd21a7dd340993530bb52bc773070099c9a924154928",
    "support-attendees-6m": "311debead6c2ba5f13ddc4dd3a1aef08d4358e8a6412fcd49e29da815b3d679f",
}
RELEASED_DIGEST = "88012d09d927321668349754db59684b0a7c1914868ce6e68548e2f30eeb893c"


def test_shipped_policies_keep_their_released_content_hashes() -> None:
    shipped = load_policy_set([examples.POLICIES])
    assert dict(shipped.content_hashes) == RELEASED_HASHES
    assert shipped.digest == RELEASED_DIGEST


def test_the_package_ships_policies_with_tests_schema_settings_and_units() -> None:
    assert [str(p) for p in examples.files_under(examples.POLICIES)] == [
        *(f"{name}.yaml" for name in ("attendees", "holds", "recordings", "retain", "sessions")),
        *(
            f"tests/{name}.yaml"
            for name in ("attendees", "holds", "recordings", "retain", "sessions")
        ),
    ]
    assert examples.files_under(examples.SCHEMA) == [Path("policy.schema.json")]
    assert examples.SETTINGS.is_file()
    assert [str(p) for p in examples.files_under(examples.SYSTEMD)] == [
        "retention-run.service",
        "retention-run.timer",
        "retention-run@.service",
        "retention-run@.timer",
        "retention.service",
        "retention@.service",
    ]
    for unit in examples.SYSTEMD.glob("*.service"):
        assert f"ExecStart={examples.UNIT_PROGRAM} " in unit.read_text()
