"""The delivery outbox as ``televikar-pbx status`` shows it, read from the database by
the command line itself: the running service's status endpoint knows the desk, the
database knows what is still to be delivered (and it is there even while the service
is down, which is when an operator most wants to see it).

A database that cannot be read is no reason to hide the live desk: the outbox part then
says why instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.outbox_repo import OutboxRepository
from televikar_pbx.settings import Settings

STATES = ("pending", "sending", "sent", "delivered", "failed")


def read_outbox(settings: Settings) -> dict[str, Any]:
    """``{"pending": n, "sending": n, "sent": n, "delivered": n, "failed": n,
    "last_failure": {...} | None}``, or ``{"error": "..."}``."""

    async def main() -> dict[str, Any]:
        engine = make_engine(settings.sqlalchemy_url)
        try:
            repo = OutboxRepository(make_sessionmaker(engine))
            counts = await repo.counts()
            last = await repo.last_failure()
        finally:
            await engine.dispose()
        outbox: dict[str, Any] = {state: counts.get(state, 0) for state in STATES}
        outbox["last_failure"] = (
            None
            if last is None
            else {
                "message_id": last.message_id,
                "at": last.at.isoformat(),
                "final": last.status == "failed",
                "channel": last.channel,
                "recipient": last.recipient,
                "reason": last.result,
            }
        )
        return outbox

    url = make_url(settings.sqlalchemy_url)
    file = url.database if url.get_backend_name() == "sqlite" else None
    # Reading must not create an empty database file.
    if file and file != ":memory:" and not Path(file).is_file():
        return {"error": f"no database file {file} (run: televikar-pbx db upgrade)"}
    try:
        return asyncio.run(main())
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(exc).__name__])[0]
        return {"error": f"database not readable: {reason}"}


def render_outbox(outbox: dict[str, Any]) -> list[str]:
    lines = ["Outbox (message deliveries)"]
    if "error" in outbox:
        return [*lines, f"  {outbox['error']}"]
    lines.append(
        f"  {outbox['pending']} pending, {outbox['sending']} sending, {outbox['failed']} failed"
        f" ({outbox['sent']} sent, {outbox['delivered']} delivered)"
    )
    last = outbox["last_failure"]
    if last is not None:
        what = "gave up" if last["final"] else "will retry"
        lines.append(
            f"  last failure {last['at']}: message {last['message_id']}"
            f" {last['channel'] or ''} {last['recipient'] or ''} ({what}): {last['reason']}"
        )
    return lines
