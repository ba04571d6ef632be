"""The hostile-input corpus: what a member, a moderator, the video service or an operator's
config file can throw at the bot, and what each is told.

Six kinds of input, each case refused (or, for the video service's answers, ended) with a clear
message, and nothing charged wherever a charge is possible: images and prompts sent to
/animate, regex and word rules given to `/admin blocklist add`, button custom ids, the video
service's answers, and config values. Every case drives the real code: /animate and the buttons
in the cog world (tests/harness/worlds.py: the real engine, the RunComfy emulator, SQLite),
the config through the operator's `seedance-bot check`.

Deeper tests of the same defences, by kind:

- images: tests/unit/test_frames.py (every rule and format), test_decode_limits.py (decode
  time and threads), test_fetch_safety.py (which hosts are fetched), bench abuse (a);
- prompts: tests/unit/test_hostile_regex.py (look-alikes, marks, Hypothesis properties of
  folding and matching), test_moderation.py (word boundaries, the check's time budget),
  test_shown_text.py (prompts shown as inert text), bench abuse (b);
- regex rules: tests/unit/test_moderation.py (RE2 vetting, stored rules that RE2 refuses);
- custom ids: tests/cogs/test_hostile_face.py (buttons bound to their server and message);
- the video service's answers: tests/unit/test_runcomfy_client.py, tests/e2e/test_e2e_faults.py;
- config values: tests/unit/test_config.py, test_cli.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest

from bot.cli import main as seedance_bot
from bot.models import JobState
from cogs.animate.buttons import CancelButton, DeleteButton, RetryButton
from cogs.moderation.buttons import ApproveButton, DenyButton
from tests.harness.discord_fakes import (
    FakeChannel,
    Member,
    answered,
    invoke,
    make_attachment,
    make_interaction,
    member_saw,
    snowflake,
)
from tests.harness.e2e import E2E
from tests.harness.images import make_ftyp, make_image, make_png_claiming
from tests.harness.worlds import World

GONE = "This video job no longer exists here, or this button does not belong to this message."


@dataclass(frozen=True)
class Hostile:
    """One hostile input: what it is, and words of the message it must get."""

    name: str
    told: str
    input: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def cases(*hostile: Hostile, marks: Any = ()) -> list[Any]:
    return [pytest.param(h, id=h.name, marks=marks) for h in hostile]


async def nothing_charged(world: World, member: Member) -> None:
    """No credit of the member or their server is used or held."""
    usage = await world.bot.guild_admin.usage(world.channel.guild_id, member.id)
    held = (usage.member_used, usage.member_reserved, usage.server_used, usage.server_reserved)
    assert held == (0, 0, 0, 0)


async def nothing_started(world: World, member: Member) -> None:
    """Refused before anything: no job, nothing sent to the video service, nothing posted."""
    await nothing_charged(world, member)
    assert await world.store.recent_jobs(world.channel.guild_id, member.id) == []
    assert world.rc.submitted == []
    assert world.channel.messages == []


# -- 1. images ----------------------------------------------------------------------------

NOT_READABLE = "this file isn't an image we can read"
IMAGES = cases(
    Hostile("plain-text", NOT_READABLE, b"this is plain text, not a picture at all"),
    Hostile("html-named-png", NOT_READABLE, b"<html><script>alert(1)</script></html>"),
    Hostile("empty-file", "the file is empty", b""),
    Hostile("truncated-png", "damaged or incomplete", make_image(800, 600, noisy=True)[:5000]),
    Hostile("pixel-bomb-header", "far too many pixels", make_png_claiming(50_000, 50_000)),
    Hostile("too-narrow", "250 px", make_image(250, 700)),
    Hostile("svg-with-script", "SVG (vector) images aren't supported", b"<svg><script/></svg>"),
    Hostile("heic-photo", "HEIC/HEIF photos aren't supported", make_ftyp("heic", ["mif1"])),
    Hostile("video-as-image", "a video file, not a still image", make_ftyp("isom", ["mp41"])),
    Hostile("animated-gif", "Animated GIFs aren't", make_image(320, 320, "GIF", frames=3)),
    Hostile("claims-30-mb", "30 MB", make_image(640, 480), {"size": 30_000_000}),
)


@pytest.mark.parametrize("case", IMAGES)
async def test_a_hostile_image_is_refused_and_charges_nothing(world: World, case: Hostile) -> None:
    attachment = make_attachment(world.image_url, case.input)
    for key, value in case.extra.items():
        setattr(attachment, key, value)
    refused = await world.animate(world.alice, image=attachment)
    [text] = member_saw(refused)
    assert "Image:" in text and case.told in text
    await nothing_started(world, world.alice)


async def test_a_hostile_last_frame_is_named_and_charges_nothing(world: World) -> None:
    last = make_attachment(world.image_url, b"GIF89a\x01\x00garbage", filename="end.gif")
    refused = await world.animate(world.alice, last_frame=last)
    [text] = member_saw(refused)
    assert "Last frame:" in text and "Image:" not in text
    await nothing_started(world, world.alice)


# -- 2. prompts ---------------------------------------------------------------------------

BLOCKED = "Your prompt was refused by the server's blocklist: rule #1 (a blocked word)."
PROMPTS = cases(
    Hostile("blank", "Prompt", "   \n\t  "),
    Hostile("over-1900-characters", "1900", "a" * 1901),
    Hostile("cyrillic-look-alike", BLOCKED, "a dr\u0430gon at dawn"),
    Hostile("greek-capital-look-alike", BLOCKED, "A DR\u0391GON AT DAWN"),
    Hostile("strikethrough-marks", BLOCKED, "d\u0336r\u0336a\u0336g\u0336o\u0336n\u0336"),
    Hostile("accents", BLOCKED, "a dr\u00e1g\u00f3n"),
    Hostile("zero-width-inside", BLOCKED, "dra\u200bg\u200don here"),
    Hostile("bidi-isolates-inside", BLOCKED, "a dr\u2066ag\u2069on"),
    Hostile("full-width-letters", BLOCKED, "\uff44\uff52\uff41\uff47\uff4f\uff4e"),
    Hostile(
        "mathematical-bold",
        BLOCKED,
        "\U0001d41d\U0001d42b\U0001d41a\U0001d420\U0001d428\U0001d427 flies",
    ),
    Hostile("zalgo", BLOCKED, "d\u0300\u0301\u0302r\u0303\u0304a\u0489g\u20ddon"),
)


@pytest.mark.parametrize("case", PROMPTS)
async def test_a_hostile_prompt_is_refused_and_charges_nothing(world: World, case: Hostile) -> None:
    await moderator_adds(world, "dragon", "word")
    refused = await world.animate(world.alice, prompt=case.input)
    [text] = member_saw(refused)
    assert case.told in text
    assert "dragon" not in text.lower()  # the member never learns the rule's text
    await nothing_started(world, world.alice)


# -- 3. regex and word rules --------------------------------------------------------------


async def moderator_adds(world: World, pattern: str, kind: str) -> str:
    """Run `/admin blocklist add` as the moderator; what they were told."""
    interaction = world.interaction(world.mod)
    await invoke(world.bot.tree, interaction, "admin blocklist add", pattern=pattern, kind=kind)
    [text] = member_saw(interaction)
    return text


RULES = cases(
    Hostile("look-ahead", "look-around like (?=…)", r"(?=.*\bcat\b)(?=.*\bdog\b)"),
    Hostile("look-behind", "look-around", r"(?<!x)y"),
    Hostile("back-reference", r"back-references like \1", r"(a)\1"),
    Hostile("named-back-reference", "back-references", r"(?P<x>a)(?P=x)"),
    Hostile("conditional", "conditionals", r"(a)?(?(1)b|c)"),
    Hostile("possessive", "possessive quantifiers", r"a++b"),
    Hostile("atomic-group", "atomic groups", r"(?>ab)c"),
    Hostile("nested-counted-repeats", "too large", r"(a{1,30}){1,30}x"),
    Hostile("nested-repeats-over-1000", "nested repetitions multiply", r"(\w{100}){100}"),
    Hostile("matches-every-prompt", "matches an empty text", r"(a|a)*"),
    Hostile("empty-group", "matches an empty text", r"(?:)"),
    Hostile("unbalanced", "not a valid regular expression", r"(["),
    Hostile("inverted-repeat", "in {2,1} the first count must not be larger", r"a{2,1}"),
    Hostile("repeat-over-1000", "counts to at most 1000", r"a{1001}"),
    Hostile("nul-character", "NUL", "a\x00b"),
    Hostile("blank-regex", "cannot be empty", "   "),
    Hostile("blank-word", "cannot be empty", "\u200b \u200d", {"kind": "word"}),
    Hostile("word-of-101-letters", "at most 100", "x" * 101, {"kind": "word"}),
    Hostile("word-with-control-character", "control characters", "bad\x07word", {"kind": "word"}),
)


@pytest.mark.parametrize("case", RULES)
async def test_a_hostile_rule_is_refused_with_the_reason(world: World, case: Hostile) -> None:
    told = await moderator_adds(world, case.input, case.extra.get("kind", "regex"))
    assert told.startswith("That ") and "was not added" in told
    assert case.told in told
    guild = world.channel.guild_id
    assert await world.store.block_rules(guild) == []
    assert await world.store.audit_log(guild) == []


# -- 4. button custom ids -----------------------------------------------------------------


@dataclass(frozen=True)
class Click:
    """A click carrying a custom id: on which job, by whom, where."""

    kind: Any
    custom_id: str
    """With ``{job}`` for the id of the job the scenario made."""
    job: JobState | None = None
    """Alice's job the click is about, waited into this state first (None: no job)."""
    by: str = "bob"
    on: str | None = None
    """The clicked message: "status", "video", "other", or None (none known)."""
    other_server: bool = False


def button(kind: Any, custom_id: str, interaction: discord.Interaction[Any]) -> Any:
    """The button discord.py builds when a click carries ``custom_id`` (its own template)."""
    match = re.fullmatch(kind.__discord_ui_compiled_template__, custom_id)
    assert match is not None
    item = create_autospec(discord.ui.Button, instance=True)
    return kind.from_custom_id(interaction, item, match)


async def job_in(world: World, state: JobState) -> int:
    if state is JobState.QUEUED:
        world.rc.plan_next_job(queue_seconds=30.0)
    await world.animate(world.alice)
    return (await world.wait_for((await world.only_job()).id, state)).id


async def message_for(world: World, job_id: int, on: str | None) -> int | None:
    if on is None:
        return None
    job = await world.store.get_job(job_id)
    assert job is not None
    if on == "status":
        return job.status_message_id
    if on == "video":
        return job.result_message_id
    if on == "other":
        return (await world.channel.partial().send("an ordinary message")).id
    return None


NOT_YOURS = "Only the member who asked for this video, or a moderator, can"
CUSTOM_IDS = cases(
    Hostile("cancel-30-digit-id", GONE, Click(CancelButton, f"job:cancel:{'9' * 30}")),
    Hostile("retry-40-digit-id", GONE, Click(RetryButton, f"job:retry:{'9' * 40}")),
    Hostile("delete-20-digit-id", GONE, Click(DeleteButton, f"job:delete:{'1' * 20}")),
    Hostile("deny-25-digit-id", GONE, Click(DenyButton, f"approval:deny:{'9' * 25}", by="mod")),
    Hostile("job-zero", GONE, Click(CancelButton, "job:cancel:0")),
    Hostile(
        "zero-padded-id-on-another-message",
        GONE,
        Click(CancelButton, "job:cancel:{job:019d}", JobState.QUEUED, by="mod", on="other"),
    ),
    Hostile(
        "retry-from-another-server",
        GONE,
        Click(RetryButton, "job:retry:{job}", JobState.DELIVERED, other_server=True),
    ),
    Hostile(
        "approve-from-another-server",
        GONE,
        Click(
            ApproveButton,
            "approval:approve:{job}",
            JobState.QUEUED,
            by="intruder",
            other_server=True,
        ),
    ),
    Hostile(
        "approve-a-job-that-never-asked",
        "This request was already decided, or withdrawn.",
        Click(ApproveButton, "approval:approve:{job}", JobState.QUEUED, by="mod", on="status"),
    ),
    Hostile(
        "cancel-someone-elses-job",
        f"{NOT_YOURS} cancel it.",
        Click(CancelButton, "job:cancel:{job}", JobState.QUEUED, on="status"),
    ),
    Hostile(
        "delete-someone-elses-video",
        f"{NOT_YOURS} delete it.",
        Click(DeleteButton, "job:delete:{job}", JobState.DELIVERED, on="video"),
    ),
)


@pytest.mark.parametrize("case", CUSTOM_IDS)
async def test_a_hostile_click_is_answered_privately_and_changes_nothing(
    world: World, case: Hostile
) -> None:
    scenario: Click = case.input
    job_id = await job_in(world, scenario.job) if scenario.job is not None else 0
    clicker = {
        "bob": world.bob,
        "mod": world.mod,
        "intruder": Member("a moderator elsewhere", moderator=True),
    }[scenario.by]
    channel = FakeChannel(snowflake(), snowflake()) if scenario.other_server else world.channel
    interaction = make_interaction(world.bot, clicker, channel)
    clicked = await message_for(world, job_id, scenario.on)
    if clicked is not None:
        interaction.message = world.channel.message_object(clicked)
    guild = world.channel.guild_id
    before = [(j.id, j.state) for j in await world.store.recent_jobs(guild, world.alice.id)]
    alices = await world.bot.guild_admin.usage(guild, world.alice.id)

    clicks = button(scenario.kind, scenario.custom_id.format(job=job_id), interaction)
    await (await clicks).callback(interaction)

    assert (await answered(interaction))[-1] == case.told
    # Alice's job is untouched, nobody has a new job, nothing is deleted or charged anew.
    assert [(j.id, j.state) for j in await world.store.recent_jobs(guild, world.alice.id)] == before
    assert await world.store.recent_jobs(guild, clicker.id) == []
    assert await world.store.recent_jobs(channel.guild_id, clicker.id) == []
    assert all(not m.deleted for m in world.channel.messages)
    assert await world.bot.guild_admin.usage(guild, world.alice.id) == alices
    for server in {guild, channel.guild_id}:
        usage = await world.bot.guild_admin.usage(server, clicker.id)
        assert (usage.member_used, usage.member_reserved) == (0, 0)


# -- 5. the video service's answers -------------------------------------------------------

RAW = "GPU on fire <@&1> @everyone https://evil.example"
"""Text a provider answer carries that a member must never be shown."""


def plan(outcome: str = "completed", **details: Any) -> dict[str, Any]:
    return {"plan": {"outcome": outcome, **details}}


def fault(route: str, kind: str, **details: Any) -> dict[str, Any]:
    return {"fault": {"route": route, "kind": kind, **details}}


PROVIDER_ANSWERS = [
    *cases(
        Hostile("failed-with-a-hostile-error", "could not make this video", plan("failed")),
        Hostile(
            "a-state-nobody-knows",
            "reported a state the bot does not understand",
            plan("unknown_state", state=f"\u202e{RAW}"),
        ),
        Hostile("completed-without-a-video", "returned no video", plan("missing_video")),
        Hostile("a-video-link-that-is-gone", "could not be fetched", plan("video_404")),
        Hostile(
            "a-web-page-for-a-video",
            "is not an MP4 video",
            plan(video_bytes=f"<html><script>{RAW}</script></html>".encode()),
        ),
        Hostile(
            "submit-rejected",
            "rejected this request (the image, prompt or settings)",
            fault("submit", "http", status=422, message=RAW),
        ),
        Hostile(
            "submit-key-refused",
            "video service key was refused",
            fault("submit", "http", status=401, message=RAW),
        ),
        Hostile("submit-out-of-balance", "run out of balance", fault("submit", "http", status=402)),
    ),
    *cases(
        Hostile(
            "submit-answer-without-a-request-id",
            "never confirmed this job. Your credits were released.",
            fault("submit", "json", status=200, body={"message": RAW}),
        ),
        Hostile(
            "submit-answer-that-is-a-list",
            "never confirmed this job. Your credits were released.",
            fault("submit", "json", status=200, body=[RAW]),
        ),
        marks=pytest.mark.settings(job_deadline=2.0),
    ),
]


def what_happened(world: World, status_message_id: int | None) -> tuple[str, str]:
    """The status message's title and its "What happened" field, as the channel shows them."""
    embed = world.channel.by_id(status_message_id or 0).current_embed()
    assert embed is not None
    shown = {f.name: f.value or "" for f in embed.fields}
    return embed.title or "", shown["What happened"].replace("\\", "")


@pytest.mark.parametrize("case", PROVIDER_ANSWERS)
async def test_a_hostile_provider_answer_fails_the_job_plainly_and_charges_nothing(
    world: World, case: Hostile
) -> None:
    if "plan" in case.input:
        world.rc.plan_next_job(**{"error": {"message": RAW}, **case.input["plan"]})
    else:
        world.rc.faults.add(**case.input["fault"])
    accepted = await world.animate(world.alice)
    assert "on its way" in member_saw(accepted)[0]

    job = await world.wait_for((await world.only_job()).id, JobState.FAILED)
    title, happened = what_happened(world, job.status_message_id)
    assert "Failed" in title and "no credits used" in title
    assert case.told in happened
    shown = " ".join(str(m.current_embed()) + (m.content or "") for m in world.channel.messages)
    assert "GPU on fire" not in shown and "evil.example" not in shown
    assert [m for m in world.channel.messages if m.file is not None] == []
    await nothing_charged(world, world.alice)


# -- 6. config values ---------------------------------------------------------------------

CONFIG = cases(
    Hostile("approval-hours-a-day", "[quota] approval_hours", "[quota]\napproval_hours = 24\n"),
    Hostile("approval-hours-two-days", "below 24", "[quota]\napproval_hours = 48\n"),
    Hostile("approval-hours-zero", "above 0", "[quota]\napproval_hours = 0\n"),
    Hostile("approval-hours-negative", "[quota] approval_hours", "[quota]\napproval_hours = -1\n"),
    Hostile("approval-hours-text", "[quota] approval_hours", '[quota]\napproval_hours = "20"\n'),
    Hostile("approval-hours-true", "[quota] approval_hours", "[quota]\napproval_hours = true\n"),
    Hostile("cooldown-nan", "[animate] cooldown_seconds", "[animate]\ncooldown_seconds = nan\n"),
    Hostile(
        "cooldown-negative", "[animate] cooldown_seconds", "[animate]\ncooldown_seconds = -1\n"
    ),
    Hostile("cooldown-text", "[animate] cooldown_seconds", '[animate]\ncooldown_seconds = "3"\n'),
    Hostile("credits-infinite", "[quota] member_credits", "[quota]\nmember_credits = inf\n"),
    Hostile(
        "credits-beyond-any-pool",
        "[quota] server_credits must be an integer ≤ 1,000,000,000",
        f"[quota]\nserver_credits = {10**30}\n",
    ),
    Hostile(
        "a-million-jobs-at-once",
        "[quota] member_concurrent_jobs must be an integer ≤ 1,000",
        "[quota]\nmember_concurrent_jobs = 1000000\n",
    ),
    Hostile(
        "a-cost-beyond-any-pool",
        "[quota.cost] 480p.5 must be an integer ≤ 1,000,000,000",
        "[quota.cost]\n480p = { 5 = 1000000000000 }\n",
    ),
    Hostile(
        "a-server-id-beyond-64-bits",
        "[discord] dev_guild_id must be a Discord server id",
        f"[discord]\ndev_guild_id = {2**70}\n",
    ),
    Hostile(
        "a-nul-in-the-database-path",
        "[database] path must be a file path",
        '[database]\npath = "bot\\u0000.sqlite3"\n',
    ),
    Hostile(
        "cleartext-provider-url",
        "[runcomfy] base_url may use plain http only on a loopback host",
        '[runcomfy]\nbase_url = "http://api.runcomfy.example"\n',
    ),
    Hostile("not-toml-at-all", "is not valid TOML", "\x00\x01\x02 MZ\x90\x00"),
)


@pytest.mark.parametrize("case", CONFIG)
def test_a_hostile_config_value_stops_the_bot_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: Hostile,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(case.input)
    monkeypatch.chdir(tmp_path)
    assert seedance_bot(["check", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("seedance-bot: ") and err.count("\n") == 1
    assert case.told in err
    assert out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no database was made


# -- over the wire ------------------------------------------------------------------------
# A few of the cases again through the real discord.py client against the emulated Discord:
# the refusal reaches the member privately, and Discord saw nothing wrong (the fixture checks).

WIRE = cases(
    Hostile("image/plain-text", NOT_READABLE, {"image": b"plain text, not a picture"}),
    Hostile("prompt/cyrillic-look-alike", "rule #1 (a blocked word)", {"prompt": "a dr\u0430gon"}),
    Hostile("prompt/zalgo", "rule #1 (a blocked word)", {"prompt": "d\u0336r\u0336agon"}),
)


@pytest.mark.parametrize("case", WIRE)
async def test_over_the_wire_a_hostile_request_is_refused_privately(
    e2e: E2E, case: Hostile
) -> None:
    emu = e2e.emu
    added = await emu.invoke_command(
        "admin blocklist add", {"pattern": "dragon"}, user_id=emu.moderator_id
    )
    assert "Rule #1 blocks the word" in await e2e.reply_text(added)
    handle = await e2e.animate(**{"prompt": "a quiet lake", **case.input})
    reply = await e2e.reply_text(handle)
    assert handle.ephemeral and case.told in reply
    assert e2e.runcomfy.submitted == []
    assert emu.channel_messages() == []
    assert (await e2e.usage_fields())["Used today"].startswith("0 credits")


async def test_over_the_wire_a_moderator_is_told_why_a_regex_is_refused(e2e: E2E) -> None:
    emu = e2e.emu
    handle = await emu.invoke_command(
        "admin blocklist add",
        {"pattern": r"(?=.*cat)dog", "kind": "regex"},
        user_id=emu.moderator_id,
    )
    reply = await e2e.reply_text(handle)
    assert handle.ephemeral
    assert reply.startswith("That regex was not added") and "look-around like (?=…)" in reply


# -- the corpus itself --------------------------------------------------------------------


def test_the_corpus_covers_six_kinds_of_input_with_forty_cases_or_more() -> None:
    kinds = {
        "images": len(IMAGES) + 1,  # and the hostile last frame
        "prompts": len(PROMPTS),
        "rules": len(RULES),
        "custom ids": len(CUSTOM_IDS),
        "provider answers": len(PROVIDER_ANSWERS),
        "config values": len(CONFIG),
    }
    kinds["over the wire"] = len(WIRE) + 1
    assert all(count >= 5 for name, count in kinds.items() if name != "over the wire"), kinds
    assert sum(kinds.values()) >= 40
