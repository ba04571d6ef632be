"""The provider's slots across every process (see ``provider_slots`` in V3__provider_slots.sql).

Each turn runs under one advisory lock, so turns of all processes run one after another and
each counts what the one before it granted: slots in use are the jobs at the provider (by
their state, whoever runs them) plus the jobs granted a slot and not sent yet whose owner
still holds their lease. The line holds the jobs that asked and were not granted yet, of
owners whose lease is live; it goes round servers, then each server's members, in the order
they were last given a slot (``slot_turns_*``), oldest first within a member, and the first
``capacity - in use`` of it may go. A process grants only its own jobs (it alone can start
them); the others' turn comes with the signal every freed slot sends.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import JobState
from bot.store.coordination import SlotRound
from bot.store.postgres.guild_sql import StoreCore
from bot.store.postgres.rows import utc
from bot.store.postgres.signals import notify

__all__ = ["SLOTS_LOCK", "SlotMixin"]

SLOTS_LOCK = -7_205_759_403_792_793_599
"""The advisory lock every turn at the slots takes (negative, so never a server's lock)."""

AT_PROVIDER = ", ".join(
    f"'{state.value}'"
    for state in (
        JobState.SUBMITTING,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.DELIVERING,
        JobState.UNKNOWN_SUBMISSION,
    )
)

# $1 now. A slot row counts while its job waits to be sent under its owner's live lease.
_LIVE = "j.state = 'accepted' AND j.owner = s.owner AND j.lease_until >= $1"

_IN_USE = (
    f"SELECT (SELECT COUNT(*) FROM jobs WHERE state IN ({AT_PROVIDER})) + "
    "(SELECT COUNT(*) FROM provider_slots s JOIN jobs j ON j.id = s.job_id "
    f"WHERE s.granted_at IS NOT NULL AND {_LIVE})"
)

# The line goes round like one process's in-memory line: servers in the order they were last
# served (never first, then the longest ago, then the oldest ask), a server's members the same
# way; a member's n-th waiting job has turn n, and a server's k-th slot goes to its k-th job
# counting round its members turn by turn.
_LINE = (
    "WITH waiting AS ("
    " SELECT s.job_id, s.guild_id, s.member_id, s.owner, s.asked_at,"
    " g.served_at AS guild_served, m.served_at AS member_served"
    " FROM provider_slots s JOIN jobs j ON j.id = s.job_id"
    " LEFT JOIN slot_turns_guild g ON g.guild_id = s.guild_id"
    " LEFT JOIN slot_turns_member m ON m.guild_id = s.guild_id AND m.member_id = s.member_id"
    f" WHERE s.granted_at IS NULL AND {_LIVE}"
    "), by_member AS ("
    " SELECT *, row_number() OVER (PARTITION BY guild_id, member_id"
    "  ORDER BY asked_at, job_id) AS turn,"
    " min(asked_at) OVER (PARTITION BY guild_id, member_id) AS member_since FROM waiting"
    "), by_guild AS ("
    " SELECT *, row_number() OVER (PARTITION BY guild_id ORDER BY turn,"
    "  member_served NULLS FIRST, member_since, member_id) AS round,"
    " min(asked_at) OVER (PARTITION BY guild_id) AS guild_since FROM by_member"
    ") SELECT job_id, guild_id, member_id, owner FROM by_guild"
    " ORDER BY round, guild_served NULLS FIRST, guild_since, guild_id"
)


class SlotMixin(StoreCore):
    """Provider slots shared by processes; mixed into the PostgreSQL store."""

    async def ask_slot(
        self, job_id: int, guild_id: int, member_id: int, *, owner: str, now: datetime
    ) -> None:
        """Put an accepted job in the line for a slot (a job taken over keeps its place)."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO provider_slots (job_id, guild_id, member_id, owner, asked_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO UPDATE "
                "SET owner = excluded.owner, granted_at = NULL",
                job_id,
                guild_id,
                member_id,
                owner,
                utc(now),
            )

    async def grant_slots(self, owner: str, *, capacity: int, now: datetime) -> SlotRound:
        """Give ``owner``'s waiting jobs the slots free for them, in the fair order."""
        stamp = utc(now)
        async with self._write() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SLOTS_LOCK)
            # Asks of this owner whose job no longer waits for it: ended, sent, or taken over.
            gone = await conn.fetch(
                "DELETE FROM provider_slots s USING jobs j WHERE s.job_id = j.id "
                "AND s.owner = $1 AND s.granted_at IS NULL "
                "AND (j.state <> 'accepted' OR j.owner IS DISTINCT FROM s.owner) "
                "RETURNING s.job_id",
                owner,
            )
            in_use = int(await conn.fetchval(_IN_USE, stamp))
            line = await conn.fetch(_LINE, stamp)
            free = max(0, capacity - in_use)
            chosen = [r for r in line[:free] if r["owner"] == owner]
            granted = [int(r["job_id"]) for r in chosen]
            if granted:
                await conn.execute(
                    "UPDATE provider_slots SET granted_at = $2 WHERE job_id = ANY($1::bigint[])",
                    granted,
                    stamp,
                )
                await conn.executemany(
                    "INSERT INTO slot_turns_guild (guild_id, served_at) VALUES ($1, $2) "
                    "ON CONFLICT (guild_id) DO UPDATE SET served_at = excluded.served_at",
                    [(r["guild_id"], stamp) for r in chosen],
                )
                await conn.executemany(
                    "INSERT INTO slot_turns_member (guild_id, member_id, served_at) "
                    "VALUES ($1, $2, $3) ON CONFLICT (guild_id, member_id) "
                    "DO UPDATE SET served_at = excluded.served_at",
                    [(r["guild_id"], r["member_id"], stamp) for r in chosen],
                )
        taken = set(granted)
        return SlotRound(
            granted=tuple(granted),
            gone=tuple(int(r[0]) for r in gone),
            order=tuple(int(r["job_id"]) for r in line if int(r["job_id"]) not in taken),
            in_use=in_use + len(granted),
        )

    async def give_slot(self, job_id: int, *, owner: str) -> None:
        """Take the job out of the line, or give back its slot (and wake the others)."""
        async with self._write() as conn:
            status = await conn.execute(
                "DELETE FROM provider_slots WHERE job_id = $1 AND owner = $2", job_id, owner
            )
            if status != "DELETE 0":
                await notify(conn, "slots")
