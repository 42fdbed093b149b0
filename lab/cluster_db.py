"""The cluster lab's PostgreSQL: the service's shared database (leader and standby
write there) and where Kamailio reads the agents' phone secrets (auth_db, as the role
``kamailio`` that may read ``agents.endpoint`` and ``agents.secret`` only:
``televikar_pbx.db.sip_front``).

A server of its own (lab/postgres.py) on 127.0.1.4:5432 (beside Debian's cluster on
127.0.0.1), data under ``$TELEVIKAR_CLUSTER_DIR/postgres``, kept between runs; TCP
logins by password (scram-sha-256), the roles' passwords in the cluster's
``credentials``. Each start migrates it to the newest schema, grants Kamailio's role
its two columns again and makes sure the lab's agents agent1..5 exist with their phone
secrets (the same credentials file; the sipp phones register with them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lab.postgres import PgServer
from televikar_pbx.asterisk_conf import PhoneAccount
from televikar_pbx.db import migrate
from televikar_pbx.db.agents_repo import AgentRepository
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repo_base import NotFound
from televikar_pbx.db.sip_front import grant_sip_front

DB_IP = "127.0.1.4"
DB_PORT = 5432
DB_NAME = "televikar"
OWNER = "televikar"  # the service's role: owns the tables (migrations run as it)
SIP_FRONT_ROLE = "kamailio"

T = TypeVar("T")


def _in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a loop of its own in a worker thread (a caller's loop may be
    running: pytest-asyncio)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class ClusterDatabase:
    def __init__(self, directory: Path, passwords: Mapping[str, str]) -> None:
        self.server = PgServer(directory, DB_IP, DB_PORT)
        self._owner_password = passwords["DB_PASSWORD"]
        self._front_password = passwords["KAMAILIO_DB_PASSWORD"]

    @property
    def url(self) -> str:
        """The service's TELEVIKAR_DATABASE_URL."""
        return f"postgresql+asyncpg://{OWNER}:{self._owner_password}@{DB_IP}:{DB_PORT}/{DB_NAME}"

    @property
    def sip_front_url(self) -> str:
        """Kamailio's db_url (db_postgres)."""
        return f"postgres://{SIP_FRONT_ROLE}:{self._front_password}@{DB_IP}:{DB_PORT}/{DB_NAME}"

    def start(self) -> None:
        """Running, migrated, Kamailio's role granted its two columns."""
        server = self.server
        if not server.initialised():
            server.init(local_auth="trust", host_auth="scram-sha-256")
        if not server.running():
            server.start()
        for role, password in ((OWNER, self._owner_password),
                               (SIP_FRONT_ROLE, self._front_password)):  # fmt: skip
            # The passwords are the lab's own (URL-safe base64): no quoting needed.
            exists = server.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")
            verb = "ALTER" if exists.strip() else "CREATE"
            server.psql(f"{verb} ROLE {role} LOGIN PASSWORD '{password}'")
        if not server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'").strip():
            server.createdb(DB_NAME, owner=OWNER)
        # alembic runs a loop of its own: not in a thread whose loop may be running.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(migrate.upgrade, self.url).result()

        async def grant() -> None:
            engine = make_engine(self.url)
            try:
                await grant_sip_front(engine, SIP_FRONT_ROLE)
            finally:
                await engine.dispose()

        _in_thread(grant)

    def stop(self) -> None:
        if self.server.running():
            self.server.stop()

    def reset(self) -> None:
        """Every table emptied (the schema and the grants stay): a test's fresh start."""
        tables = self.server.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'",
            DB_NAME,
        ).split()
        if tables:
            self.server.psql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE", DB_NAME)

    def seed_agents(self, secrets: Mapping[str, str]) -> None:
        """Agents with these endpoints (named as the endpoint), each with its phone
        secret, through the service's repository: added, or their secret set."""

        async def seed() -> None:
            engine = make_engine(self.url)
            try:
                agents = AgentRepository(make_sessionmaker(engine))
                for endpoint, secret in secrets.items():
                    try:
                        agent = await agents.find_agent(endpoint)
                    except NotFound:
                        await agents.add_agent(endpoint, endpoint, secret=secret)
                    else:
                        await agents.set_agent_secret(agent.id, secret)
            finally:
                await engine.dispose()

        _in_thread(seed)

    def phone_accounts(self) -> list[PhoneAccount]:
        """What the service would install on the nodes: every agent with a secret."""

        async def read() -> list[PhoneAccount]:
            engine = make_engine(self.url)
            try:
                rows = await AgentRepository(make_sessionmaker(engine)).agent_credentials()
            finally:
                await engine.dispose()
            return [PhoneAccount(r.endpoint, r.secret, r.contact) for r in rows if r.secret]

        return _in_thread(read)
