"""A throwaway PostgreSQL server for one test, to stop and start at will (the shared
test cluster of tests/setup/postgres.sh must stay up for everything else)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from lab.postgres import PgServer, PostgresError


class PgInstance(PgServer):
    """``initdb`` in a temporary directory owned by postgres, listening on 127.0.0.1:port
    only, trust authentication (loopback, test only)."""

    def __init__(self, port: int) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="televikar-pg-")), "127.0.0.1", port)
        self.init()
        self.start()
        self.createdb("televikar")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/televikar"

    def remove(self) -> None:
        with contextlib.suppress(PostgresError):  # not running
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
