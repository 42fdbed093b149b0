"""The SIP front's read access to the agents' phone secrets (issue 16).

Kamailio (asterisk/kamailio/kamailio.cfg) digest-checks every REGISTER and every INVITE
of an agent's phone against ``agents.endpoint`` (username) and ``agents.secret``
(password), reading the service's own PostgreSQL database at each check: a secret the
operator sets (``televikar-pbx agents add|edit``) counts from the phone's next request,
and nothing is copied anywhere.

Kamailio connects as a role of its own that may read those two columns and nothing
else: a PostgreSQL column privilege, granted by :func:`grant_sip_front` (``televikar-pbx
db grant-sip-front ROLE``) as the owner of the tables, after ``db upgrade``. The role
itself (``CREATE ROLE kamailio LOGIN PASSWORD ...``) is the database administrator's,
like the service's own. Why a grant and no view: a view would be one more schema object
for every migration to keep in step, and PostgreSQL refuses to change the type of a
column a view reads; a column grant keeps across such changes, and a migration that
renames or drops either column fails Kamailio's query loudly (the cluster tests).
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from televikar_pbx.errors import ConfigError

# An unquoted PostgreSQL identifier, lower case (what CREATE ROLE kamailio makes).
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# What Kamailio reads (its auth_db user_column and password_column).
COLUMNS = ("endpoint", "secret")


async def grant_sip_front(engine: AsyncEngine, role: str) -> None:
    """Let ``role`` read ``agents.endpoint`` and ``agents.secret``, and nothing else of
    the table (whatever it was granted before); idempotent."""
    if not ROLE_NAME.fullmatch(role):
        raise ConfigError(f"a role name is lower-case letters, digits and _, not {role!r}")
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            f"the SIP front reads the agents from PostgreSQL, not {engine.dialect.name}"
        )
    async with engine.begin() as conn:
        exists = await conn.scalar(
            text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
        )
        if not exists:
            raise ConfigError(f"no database role {role!r}: CREATE ROLE {role} LOGIN PASSWORD ...")
        # Table-level privileges go, and with them any column privilege (PostgreSQL).
        await conn.execute(text(f'REVOKE ALL ON agents FROM "{role}"'))
        columns = ", ".join(COLUMNS)
        await conn.execute(text(f'GRANT SELECT ({columns}) ON agents TO "{role}"'))
