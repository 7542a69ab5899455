"""Random moves, holds, caps and notices between runs: each run removes what the reference says.

Hypothesis draws a short history of changes; after each change `retention run` (its real entry
point, in-process on the sandbox) runs, and what reached the sandbox's DELETE endpoint is what
`routes.reference` calls for on the account as it then is, with what every hold has covered in
an earlier run while it was in force.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from routes import Change, Folder, Hold, Scenario, World, record_notices, reference

from retention.errors import RetentionError
from retention.service import pipeline
from retention.service.context import RunContext

EXAMPLES = int(os.environ.get("RETENTION_HYPOTHESIS_EXAMPLES", "6"))
GROUPS = (0, 1)  # the two groups of the generated account, by position


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[str, object]]:
    """A few changes: a move, a hold placed or lifted, a cap, notices sent or not."""
    step = st.one_of(
        st.tuples(st.just("move"), st.sampled_from(GROUPS)),
        st.tuples(st.just("hold"), st.sampled_from(("group0", "group1", "email", "all"))),
        st.tuples(st.just("lift"), st.none()),
        st.tuples(st.just("cap"), st.sampled_from((None, 1, 3, 50))),
        st.tuples(st.just("notice"), st.sampled_from((None, 3, 30))),
        st.tuples(st.just("age"), st.sampled_from((1, 5, 8))),
    )
    return draw(st.lists(step, min_size=1, max_size=4))


def folder_of(world: World, state: dict[str, object]) -> Folder:
    names = sorted(world.groups)
    hold = state.get("hold")
    holds: tuple[Hold, ...] = ()
    if hold == "all":
        holds = (Hold("H"),)
    elif hold == "email":
        holds = (Hold("H", email=world.account.organizers[world.organizer].email),)
    elif isinstance(hold, str):
        holds = (Hold("H", group=names[int(hold[-1])]),)
    cap = state.get("cap")
    return Folder(
        period_days=int(str(state.get("age", 1))),
        holds=holds,
        cap=cap if isinstance(cap, int) else None,
        notice=state.get("noticed") is not None,
    )


async def history(root: Path, changes: list[tuple[str, object]]) -> None:
    world = World.make(root)
    names = sorted(world.groups)
    state: dict[str, object] = {}
    kept: dict[str, frozenset[int]] = {}
    for kind, value in changes:
        if kind == "move":
            world.apply_change(Change(move_to=names[int(str(value))]))
        elif kind == "hold":
            state["hold"] = value
        elif kind == "lift":
            state.pop("hold", None)
        elif kind == "cap":
            state["cap"] = value
        elif kind == "notice":
            state["noticed"] = value
        else:
            state["age"] = value
        folder = folder_of(world, state)
        if not folder.holds:
            kept = {}  # a hold lifted releases what it covered; narrowed, it releases nothing
        world.write(folder)
        noticed = state.get("noticed")
        if isinstance(noticed, int):
            record_notices(world, noticed)
        scenario = Scenario("drawn", folder, folder, noticed_days_ago=noticed)  # type: ignore[arg-type]
        for hold in folder.holds:  # what the hold covers now, before the run decides
            now_covered = {
                s.session_id
                for s in world.listed()
                if hold.covers(
                    world.group_of(s.organizer_key),
                    world.account.organizers[s.organizer_key].email,
                )
            }
            kept[hold.id] = kept.get(hold.id, frozenset()) | frozenset(now_covered)
        expected = reference(world, scenario, kept, datetime.now(UTC))
        world.spy.deleted.clear()
        ctx = RunContext(world.settings(), transport=world.spy)
        refused = None
        try:
            await pipeline.run(ctx, trigger="test", confirm=None, approved_by="test")
        except RetentionError as exc:
            refused = exc.reason
        assert refused in (None, "cap"), refused
        assert world.removed() == expected.due, (changes, kind, value)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(changes=steps())
def test_each_run_removes_what_the_rules_call_for_after_random_changes(
    changes: list[tuple[str, object]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(history(Path(folder), changes))
