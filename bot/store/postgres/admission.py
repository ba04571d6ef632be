"""What admission reads before it fetches a request's images, in one statement.

Every ``/animate`` asks for a server's settings, the member's ban, the blocklist and the
member's usage. The usage depends on the server's period, which only the settings row knows;
so the statement is handed the windows of every period containing ``now`` and picks the one
the server uses (its own or the default), then counts the grants, the credits and the open
jobs in it. One statement is one snapshot, even at READ COMMITTED: the parts agree with each
other, with no transaction to open and close around them (one round trip instead of four).
The reservation reads the same statement, less the blocklist, under the server's lock
(``reservations``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.models import BlockRule, GuildDefaults
from bot.quota import Period, period_window
from bot.store.postgres.guild_sql import SETTINGS_SQL, StoreCore, settings_of
from bot.store.postgres.ledger import admission_counts_sql, counts_of, usage_record
from bot.store.postgres.rows import utc
from bot.store.protocol import AdmissionView

__all__ = ["AdmissionMixin", "server_view_args", "server_view_sql"]

# $1 guild, $2 member, $3 the default period, then each period's window:
# $4/$5 day, $6/$7 week, $8/$9 month (start, end).
_WINDOW = (
    "SELECT CASE COALESCE(g.period, $3::text) WHEN 'day' THEN $4::timestamptz "
    "WHEN 'week' THEN $6::timestamptz WHEN 'month' THEN $8::timestamptz END AS ws, "
    "CASE COALESCE(g.period, $3::text) WHEN 'day' THEN $5::timestamptz "
    "WHEN 'week' THEN $7::timestamptz WHEN 'month' THEN $9::timestamptz END AS we FROM g"
)


def server_view_sql(extra: str = "") -> str:
    """One statement: the server's settings, channels and role limits and the member's ban
    (:data:`SETTINGS_SQL`), the member's grants in the server's current period
    (``granted``), its credits and open jobs (:func:`admission_counts_sql`), and any
    ``extra`` columns; parameters as :func:`server_view_args` gives them."""
    return (
        f"WITH g AS ({SETTINGS_SQL}), w AS ({_WINDOW}) SELECT g.*, {extra}"
        "(SELECT COALESCE(SUM(credits), 0) FROM credit_grants WHERE guild_id = $1 "
        "AND member_id = $2 AND created_at >= w.ws AND created_at < w.we) AS granted, "
        f"c.* FROM g, w, LATERAL ({admission_counts_sql('w.ws', 'w.we', '$2')}) c"
    )


def server_view_args(
    guild_id: int, member_id: int, defaults: GuildDefaults, when: datetime
) -> list[object]:
    """The parameters of :func:`server_view_sql` at ``when``: the windows of every period
    containing it, for the statement to pick the server's own."""
    args: list[object] = [guild_id, member_id, defaults.period.value]
    for period in (Period.DAY, Period.WEEK, Period.MONTH):
        window = period_window(period, when)
        args += [window.start, window.end]
    return args


_ADMISSION_VIEW = server_view_sql(
    "ARRAY(SELECT id FROM block_rules WHERE guild_id = $1 ORDER BY id) AS rule_ids, "
    "ARRAY(SELECT kind FROM block_rules WHERE guild_id = $1 ORDER BY id) AS rule_kinds, "
    "ARRAY(SELECT pattern FROM block_rules WHERE guild_id = $1 ORDER BY id) AS rule_patterns, "
)


class AdmissionMixin(StoreCore):
    """The admission view; mixed into the PostgreSQL store."""

    async def admission_view(
        self,
        guild_id: int,
        member_id: int,
        *,
        role_ids: Collection[int],
        defaults: GuildDefaults,
        now: datetime,
    ) -> AdmissionView:
        """Settings, ban, blocklist and usage as ``guild_settings``, ``is_banned``,
        ``block_rules`` and ``member_usage`` answer them, in one statement (one snapshot,
        one round trip)."""
        when = utc(now)
        async with self._connection() as conn:
            row = await conn.fetchrow(
                _ADMISSION_VIEW, *server_view_args(guild_id, member_id, defaults, when)
            )
        assert row is not None
        settings = settings_of(row, guild_id, defaults)
        # The same window the statement picked: the server's period containing ``now``.
        window = settings.window(when)
        limits = settings.limits(role_ids, int(row["granted"]))
        totals, active_member, active_server = counts_of(row)
        rules = tuple(
            BlockRule(kind=kind, pattern=pattern, id=int(rule_id))
            for rule_id, kind, pattern in zip(
                row["rule_ids"], row["rule_kinds"], row["rule_patterns"], strict=True
            )
        )
        return AdmissionView(
            settings=settings,
            banned=bool(row["banned"]),
            rules=rules,
            usage=usage_record(totals, limits, window, active_member, active_server),
        )
