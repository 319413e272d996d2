"""Each test's alerts from an empty delivery queue: another test's notices must not reach its receivers or join its
messages, nor a channel's last message (at another test's clock) hold its messages back, nor an endpoint another
test disabled stay disabled."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: The delivery queue's tables: notices, messages, their attempts, channels' last messages, digests.
QUEUE_TABLES = ("delivery_attempts", "deliveries", "gatherings", "digests")


async def empty_queue(session: AsyncSession, *also: str) -> None:
    """Empties the alerts service's delivery queue (and the tables ``also`` names) and enables every webhook."""
    await session.execute(text(f"TRUNCATE {', '.join((*QUEUE_TABLES, *also))} CASCADE"))
    await session.execute(text("UPDATE agencies SET webhook_disabled_at = NULL, webhook_failing_since = NULL"))
