"""Moderation: the prompt blocklist and its RE2 regex vetting, gates, bans, allowed channels,
forgetting a member, and the audit trail — on real database files."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import MemberBusy
from bot.models import BlockRule, GuildDefaults, JobState, NewJob
from bot.moderation.blocklist import (
    WORD_CHUNK,
    BlocklistTimeout,
    check_prompt_blocked,
    find_blocked_rule,
    normalize_word,
)
from bot.moderation.gates import RequestRefused
from bot.moderation.regexes import MAX_PROMPT_CHARS, validate_regex
from bot.quota import Period
from bot.store import Store, open_store
from tests.harness.store_calls import add_block_rule, check_gates, effective_limits, reserve_job

GUILD = 1000
OTHER_GUILD = 2000
MEMBER = 11
OTHER = 12
MOD = 99
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULTS = GuildDefaults(period=Period.DAY, server_credits=100, member_credits=10)

# Patterns that make a backtracking engine take seconds to ages on a long prompt. The old
# hand-written analysis refused them; RE2 runs them in linear time, so they are accepted now.
BACKTRACKING = [
    r"(a+)+b",
    r"(a|ab)*c",
    r"(?:a*)*x",
    r"(a?){30}a{30}",
    r".*.*x",
    r"\s+\s+x",
    r"\w+\s*\w+x",
    r"foo.*bar.*baz",
    "a?" * 20 + "a" * 20,
    r"\w+.{2}[ab]+?foo",
]

SAFE = [
    r"\bnude\b.*\bchild",
    r"https?://\S+",
    r"kill\s+all\s+\w+",
    r"colou?r",
    r"\d{3}-\d{4}",
    r"(foo|bar)+baz",
    r"n[i1!|]gg",
    r"[a-z]+ing\b",
]


def word(pattern: str, rule_id: int | None = None) -> BlockRule:
    return BlockRule("word", normalize_word(pattern), rule_id)


def regex(pattern: str, rule_id: int | None = None) -> BlockRule:
    return BlockRule("regex", pattern, rule_id)


def request(*, member: int = MEMBER, prompt: str = "a cat turns its head") -> NewJob:
    return NewJob(GUILD, GUILD + 1, member, prompt, "https://cdn/x.png", None, "480p", 5)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    async with open_store(db_path) as opened:
        yield opened


# -- matching -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "blocked"),
    [
        ("a GORE scene", True),
        ("gore.", True),
        ("(gore)", True),
        ("gorey details", False),
        ("allegorE", False),
        ("\uff47\uff4f\uff52\uff45 in full-width letters", True),
        ("go\u200bre with a zero-width space", True),
        ("", False),
    ],
)
def test_words_match_whole_words_case_insensitively(prompt: str, blocked: bool) -> None:
    rule = word("Gore")
    assert (check_prompt_blocked(prompt, [rule]) == rule) is blocked


def test_phrases_and_punctuation_words() -> None:
    phrase = word("  Blood   Bath ")
    assert phrase.pattern == "blood bath"
    assert check_prompt_blocked("a blood\n\tbath at dawn", [phrase]) == phrase
    assert check_prompt_blocked("a bloodbath", [phrase]) is None
    plus = word("c++")
    assert check_prompt_blocked("write C++ code", [plus]) == plus
    assert check_prompt_blocked("c+++", [plus]) == plus  # "+" is no word character
    assert check_prompt_blocked("abc++", [plus]) is None


def test_a_long_word_list_finds_the_first_rule_in_order() -> None:
    # Words are screened WORD_CHUNK at a time; a hit in any chunk still names the first rule.
    words = [word(f"banned{n}", n) for n in range(WORD_CHUNK * 3 + 7)]
    rules = [*words[:40], regex(r"\bbanned7[0-9]\b", 999), *words[40:]]
    assert check_prompt_blocked("a banned71 and a banned3", rules) == words[3]
    assert check_prompt_blocked("a banned71 and a banned45", rules) == rules[40]
    assert check_prompt_blocked("only banned81 here", rules) == words[81]
    assert check_prompt_blocked("banned81x and xbanned3 are longer words", rules) is None
    # The same chunk holds a word inside a longer one and a whole one: only the whole counts.
    assert check_prompt_blocked("notbanned2 but BANNED5.", rules) == words[5]


def test_a_full_blocklist_of_the_longest_phrases_still_matches_whole_phrases() -> None:
    # 200 phrases of 99 characters: screened a few at a time, each found where it is whole.
    phrases = [
        " ".join(f"{n:03d}{part}" for part in "abcdefghijklmnopqrstuvwxy") for n in range(200)
    ]
    phrases = [p[:99] for p in phrases]
    rules = [word(p, n) for n, p in enumerate(phrases)]
    assert len(rules[150].pattern) == 99
    assert check_prompt_blocked(f"say {phrases[150].upper()}!", rules) == rules[150]
    assert check_prompt_blocked(f"say {phrases[150][:-1]}", rules) is None  # not whole
    assert check_prompt_blocked(f"{phrases[199]}\n{phrases[3]}", rules) == rules[3]


def test_a_whole_word_after_many_near_misses_is_still_found() -> None:
    rule = word("cat")
    assert check_prompt_blocked("scat " * 100, [rule]) is None
    assert check_prompt_blocked("scat " * 100 + "cat", [rule]) == rule
    assert check_prompt_blocked("cats " * 100 + "(CAT)", [rule]) == rule


def test_a_check_that_pauses_at_every_step_gives_the_same_answers() -> None:
    # In a worker thread the check pauses now and then to let the event loop in.
    rules = [word("cat", 1), regex(r"\bdo+g\b", 2), *(word(f"w{n}", n + 3) for n in range(60))]
    for prompt in ("a cat", "a DOOG", "scat " * 50 + "w59", "w5x " * 40, ""):
        paused = check_prompt_blocked(prompt, rules, pause_every=0.0)
        assert paused == check_prompt_blocked(prompt, rules)
    assert check_prompt_blocked("scat " * 50 + "w59", rules, pause_every=0.0) == rules[-1]


def test_regex_matches_case_insensitively_and_the_first_rule_wins() -> None:
    rules = [word("cat", 1), regex(r"\bdo+g\b", 2), regex(r"k[i1]tten", 3)]
    assert check_prompt_blocked("a DOOOG runs", rules) == rules[1]
    assert check_prompt_blocked("a K1TTEN and a cat", rules) == rules[0]
    assert check_prompt_blocked("a hamster", rules) is None


def test_the_member_is_told_the_rule_not_the_pattern() -> None:
    refused = RequestRefused("blocked", rule=regex(r"secret\s+pattern", 7))
    assert (
        refused.message
        == "Your prompt was refused by the server's blocklist: rule #7 (a blocked pattern)."
    )
    assert "secret" not in refused.message
    assert "a blocked word" in RequestRefused("blocked", rule=word("x", 2)).message


async def test_matching_runs_off_the_event_loop() -> None:
    rules = [regex(r"[a-z]+ing\b", 1)]
    assert await find_blocked_rule("a" * MAX_PROMPT_CHARS + " running", rules) is None
    assert await find_blocked_rule("running", rules) == rules[0]


async def test_waiting_for_a_worker_thread_does_not_count_against_the_prompt() -> None:
    """Every worker thread busy (image decodes, other checks): a prompt waits for one, then
    gets its whole budget, rather than being refused unchecked for the wait."""
    rules = [word("cat", 1), regex(r"\bdog\b", 2)]
    loop = asyncio.get_running_loop()
    workers = 64  # more than the default executor's threads
    blockers = [loop.run_in_executor(None, time.sleep, 0.4) for _ in range(workers)]
    try:
        assert await find_blocked_rule("a dog", rules, budget=0.2) == rules[1]
    finally:
        await asyncio.gather(*blockers)


def test_the_check_stops_when_its_time_is_up() -> None:
    rules = [word("cat", 1), regex(r"\bdog\b", 2)]
    with pytest.raises(BlocklistTimeout):
        check_prompt_blocked("a dog", rules, deadline=time.monotonic() - 1)
    assert check_prompt_blocked("a dog", rules, deadline=time.monotonic() + 60) == rules[1]


async def test_a_prompt_the_blocklist_cannot_check_in_time_is_refused(store: Store) -> None:
    await add_block_rule(store, GUILD, "word", "cat", by=MOD)
    with pytest.raises(RequestRefused) as info:
        await check_gates(store, GUILD, MEMBER, 1, prompt="a dog", blocklist_budget=-1)
    assert info.value.reason == "unchecked"
    assert "could not be checked" in info.value.message


def test_a_stored_regex_re2_cannot_take_is_skipped_not_run() -> None:
    # Rules are checked when added; a database from an older bot may hold a look-ahead.
    assert check_prompt_blocked("a cat", [regex(r"(?=.*cat)cat", 1)]) is None
    # A shape that once had to be refused now simply runs, linearly.
    assert check_prompt_blocked("a" * MAX_PROMPT_CHARS, [regex(r"(a+)+b", 1)]) is None
    assert check_prompt_blocked("aaab", [regex(r"(a+)+b", 1)]) is not None


def test_bad_words_are_refused() -> None:
    for bad in ("", "   ", "x" * 101, "bad\x00word"):
        with pytest.raises(ValueError):
            normalize_word(bad)


# -- the safe regex check -----------------------------------------------------------------


@pytest.mark.parametrize("pattern", BACKTRACKING)
def test_backtracking_shapes_are_accepted_and_run_on_re2(pattern: str) -> None:
    validate_regex(pattern)
    hostile = ("a" * 19 + " ") * (MAX_PROMPT_CHARS // 20)
    assert check_prompt_blocked(hostile, [regex(pattern, 1)]) is None


@pytest.mark.parametrize("pattern", SAFE)
def test_ordinary_blocklist_regexes_are_accepted(pattern: str) -> None:
    validate_regex(pattern)
    re.compile(pattern)


# -- the blocklist in the store -----------------------------------------------------------


async def test_rules_are_stored_normalised_and_refuse_prompts(store: Store) -> None:
    first = await add_block_rule(store, GUILD, "word", "  GoRe ", by=MOD)
    second = await add_block_rule(store, GUILD, "regex", r"blood\s*bath", by=MOD)
    assert (first.id, first.pattern, second.id) == (1, "gore", 2)
    assert await add_block_rule(store, GUILD, "word", "gore", by=MOD) == first
    assert await store.block_rules(GUILD) == [first, second]
    assert await store.block_rules(OTHER_GUILD) == []

    with pytest.raises(RequestRefused) as info:
        await check_gates(store, GUILD, MEMBER, 1, prompt="A BloodBath at noon")
    assert (info.value.reason, info.value.rule) == ("blocked", second)
    assert "#2" in info.value.message
    await check_gates(store, GUILD, MEMBER, 1, prompt="a quiet lake")
    await check_gates(store, OTHER_GUILD, MEMBER, 1, prompt="gore")

    assert await store.remove_block_rule(GUILD, first.id or 0, by=MOD) == first
    assert await store.remove_block_rule(GUILD, first.id or 0, by=MOD) is None
    await check_gates(store, GUILD, MEMBER, 1, prompt="gore")


async def test_a_server_has_a_bounded_blocklist(store: Store, db_path: Path) -> None:
    for n in range(200):
        await add_block_rule(store, GUILD, "word", f"word{n}", by=MOD)
    with pytest.raises(ValueError, match="at most 200"):
        await add_block_rule(store, GUILD, "word", "one too many", by=MOD)
    # At most 50 of them regexes (each an RE2 scan of every prompt).
    with sqlite3.connect(db_path) as raw:
        raw.executemany(
            "INSERT INTO block_rules (guild_id, kind, pattern, added_by, added_at) "
            "VALUES (?, 'regex', ?, ?, '2026-11-20T12:00:00.000000+00:00')",
            [(OTHER_GUILD, f"rx{n}", MOD) for n in range(50)],
        )
    raw.close()
    with pytest.raises(ValueError, match="at most 50 regex"):
        await add_block_rule(store, OTHER_GUILD, "regex", r"one\s+more", by=MOD)
    assert (await add_block_rule(store, OTHER_GUILD, "word", "fine", by=MOD)).id is not None


# -- gates, bans and channels ---------------------------------------------------------------


async def test_gates_in_order_paused_banned_channel(store: Store) -> None:
    await store.set_paused(GUILD, True, by=MOD)
    await store.ban_member(GUILD, MEMBER, by=MOD, reason="spam")
    await store.allow_channel(GUILD, 555, by=MOD)
    await add_block_rule(store, GUILD, "word", "cat", by=MOD)
    reasons = []
    for undo in (
        lambda: store.set_paused(GUILD, False, by=MOD),
        lambda: store.unban_member(GUILD, MEMBER, by=MOD),
        lambda: store.disallow_channel(GUILD, 555, by=MOD),
    ):
        with pytest.raises(RequestRefused) as info:
            await check_gates(store, GUILD, MEMBER, 777, prompt="a cat")
        reasons.append(info.value.reason)
        await undo()
    with pytest.raises(RequestRefused) as info:
        await check_gates(store, GUILD, MEMBER, 777, prompt="a cat")
    reasons.append(info.value.reason)
    assert reasons == ["paused", "banned", "channel", "blocked"]


async def test_allowed_channels_and_threads(store: Store) -> None:
    assert await store.allow_channel(GUILD, 555, by=MOD)
    assert not await store.allow_channel(GUILD, 555, by=MOD)
    await store.allow_channel(GUILD, 556, by=MOD)
    settings = await store.guild_settings(GUILD, DEFAULTS)
    assert settings.allowed_channels == {555, 556}
    await check_gates(store, GUILD, MEMBER, 555)
    await check_gates(store, GUILD, MEMBER, 9999, parent_channel_id=556)  # a thread of 556
    with pytest.raises(RequestRefused, match="cannot be made in this channel"):
        await check_gates(store, GUILD, MEMBER, 9999, parent_channel_id=1234)
    await check_gates(store, OTHER_GUILD, MEMBER, 9999)
    assert await store.clear_channels(GUILD, by=MOD) == 2
    await check_gates(store, GUILD, MEMBER, 9999)


async def test_bans_are_per_server_and_listed(store: Store) -> None:
    assert await store.ban_member(GUILD, MEMBER, by=MOD, reason="spam", now=NOW)
    assert not await store.ban_member(GUILD, MEMBER, by=MOD)
    assert await store.is_banned(GUILD, MEMBER)
    assert not await store.is_banned(OTHER_GUILD, MEMBER)
    [ban] = await store.banned_members(GUILD)
    assert (ban.member_id, ban.reason, ban.banned_by, ban.banned_at) == (MEMBER, "spam", MOD, NOW)
    with pytest.raises(RequestRefused, match="not allowed to use"):
        await check_gates(store, GUILD, MEMBER, 1)
    assert await store.unban_member(GUILD, MEMBER, by=MOD)
    assert not await store.unban_member(GUILD, MEMBER, by=MOD)
    await check_gates(store, GUILD, MEMBER, 1)


async def test_pause_and_modlog_settings(store: Store) -> None:
    await store.set_modlog_channel(GUILD, 4444, by=MOD)
    await store.set_paused(GUILD, True, by=MOD)
    settings = await store.guild_settings(GUILD, DEFAULTS)
    assert (settings.paused, settings.modlog_channel_id) == (True, 4444)
    assert not (await store.guild_settings(OTHER_GUILD, DEFAULTS)).paused
    await store.set_modlog_channel(GUILD, None, by=MOD)
    assert (await store.guild_settings(GUILD, DEFAULTS)).modlog_channel_id is None


# -- forgetting a member --------------------------------------------------------------------


async def reserve(store: Store, member: int, cost: int, prompt: str) -> int:
    job = await store.reserve_request(
        request(member=member, prompt=prompt), cost=cost, role_ids=(), defaults=DEFAULTS, now=NOW
    )
    return job.id


async def test_forget_deletes_prompts_and_jobs_but_keeps_the_pool_right(db_path: Path) -> None:
    secret = "my very personal prompt about Zanzibar"
    async with open_store(db_path) as store:
        await store.set_approvals(GUILD, True, by=MOD)
        done = await reserve(store, MEMBER, 4, secret)
        await store.finish_delivered(done, result_message_id=1, now=NOW)
        failed = await reserve(store, MEMBER, 2, secret)
        await store.finish_failed(failed, JobState.FAILED, error="x", now=NOW)
        pending = await reserve(store, MEMBER, 9, secret)  # over the cap of 10: to moderators
        await store.grant_credits(GUILD, MEMBER, 3, defaults=DEFAULTS, by=MOD, now=NOW)
        await store.ban_member(GUILD, MEMBER, by=MOD)
        await reserve(store, OTHER, 5, "someone else's prompt")
        before = await store.member_usage(GUILD, OTHER, role_ids=(), defaults=DEFAULTS, now=NOW)

        report = await store.forget_member(GUILD, MEMBER, by=MOD, now=NOW)
        assert (report.jobs_deleted, report.requests_withdrawn, report.grants_deleted) == (3, 1, 1)
        assert report.ledger_rows_anonymised == 3
        assert await store.get_job(done) is None
        assert await store.get_approval(pending) is None
        assert await store.recent_jobs(GUILD, MEMBER) == []

        mine = await store.member_usage(GUILD, MEMBER, role_ids=(), defaults=DEFAULTS, now=NOW)
        assert (mine.member_used, mine.member_reserved, mine.member_limit) == (0, 0, 10)
        after = await store.member_usage(GUILD, OTHER, role_ids=(), defaults=DEFAULTS, now=NOW)
        # The delivered job's 4 credits still count for the pool; the released ones never did
        # and the withdrawn request's hold is gone.
        assert (after.server_used, after.server_reserved) == (4, 5)
        assert before.server_reserved == 14
        assert await store.is_banned(GUILD, MEMBER)
        entries = await store.audit_log(GUILD)
        assert entries[0].action == "forget"
        assert all(entry.target_id != MEMBER for entry in entries)
    # Nothing of the prompt is left in the file, not even in freed pages.
    content = await asyncio.to_thread(db_path.read_bytes)
    assert secret.encode() not in content
    assert b"someone else's prompt" in content


async def test_forget_waits_for_jobs_at_the_provider(store: Store) -> None:
    running = await reserve(store, MEMBER, 1, "a running job")
    await store.set_submission(
        running, request_id="r", status_url="s", result_url="r", cancel_url="c", now=NOW
    )
    with pytest.raises(MemberBusy, match="1 open job"):
        await store.forget_member(GUILD, MEMBER, by=MOD)
    assert await store.get_job(running) is not None
    await store.finish_delivered(running, result_message_id=None, now=NOW)
    assert (await store.forget_member(GUILD, MEMBER, by=MOD)).jobs_deleted == 1


async def test_forget_is_scoped_to_one_server(store: Store) -> None:
    here = await reserve(store, MEMBER, 1, "here")
    await store.finish_delivered(here, result_message_id=None, now=NOW)
    there = await reserve_job(
        store,
        NewJob(OTHER_GUILD, 1, MEMBER, "there", "https://cdn/x.png", None, "480p", 5),
        cost=1,
        limits=(await effective_limits(store, OTHER_GUILD, MEMBER, (), defaults=DEFAULTS, now=NOW)),
        window=(await store.guild_settings(OTHER_GUILD, DEFAULTS)).window(NOW),
        now=NOW,
    )
    await store.forget_member(GUILD, MEMBER, by=MOD)
    assert await store.get_job(there.id) is not None


# -- the audit trail ------------------------------------------------------------------------


async def test_every_moderator_change_is_in_the_audit_trail(store: Store) -> None:
    await store.set_guild_budget(GUILD, by=MOD, server_credits=50, period=Period.WEEK, now=NOW)
    await store.set_role_limit(GUILD, 77, 30, by=MOD, now=NOW)
    await store.grant_credits(GUILD, MEMBER, 5, defaults=DEFAULTS, by=MOD, now=NOW, reason="won")
    await store.set_approvals(GUILD, True, by=MOD, now=NOW)
    await store.ban_member(GUILD, OTHER, by=MOD, now=NOW)
    await add_block_rule(store, GUILD, "word", "gore", by=MOD, now=NOW)
    entries = await store.audit_log(GUILD)
    assert [e.action for e in entries] == [
        "block_add",
        "ban",
        "approvals",
        "grant",
        "role_limit",
        "budget",
    ]
    assert entries[-1].detail == "period=week, server_credits=50"
    assert (entries[3].target_id, entries[3].detail) == (MEMBER, "+5 credits in 2026-W47: won")
    assert all(e.actor_id == MOD and e.created_at == NOW for e in entries)
    assert len(await store.audit_log(GUILD, limit=2)) == 2
    assert await store.audit_log(OTHER_GUILD) == []


async def test_gate_checks_from_many_members_at_once(store: Store) -> None:
    await add_block_rule(store, GUILD, "regex", r"\bdr[a@]gon\b", by=MOD)
    results = await asyncio.gather(
        *(
            check_gates(store, GUILD, n, 1, prompt="a dr@gon" if n % 2 else "a horse")
            for n in range(40)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, RequestRefused) for r in results) == 20
    assert sum(r is None for r in results) == 20
