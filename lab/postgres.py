"""A PostgreSQL server of its own (Debian 12's PostgreSQL 15 binaries): ``initdb`` into
a directory owned by postgres, started and stopped with ``pg_ctl`` on one address and
port, its unix socket in that directory (never Debian's own cluster's).

The cluster lab keeps one under its directory as the service's shared database
(lab/cluster.py); tests make throwaway ones to stop and start at will
(tests/asterisk/pg_instance.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresError(RuntimeError):
    """PostgreSQL is missing, or a command of it failed."""


def as_postgres(*args: str, timeout: float = 60) -> str:
    """Run a PostgreSQL program as the postgres user; its standard output."""
    try:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise PostgresError(f"{exc.filename} not found (Debian package postgresql)") from exc
    except subprocess.CalledProcessError as exc:
        raise PostgresError(f"{Path(args[0]).name} failed: {exc.stderr.strip()[-500:]}") from exc
    return done.stdout


class PgServer:
    """``dir/data`` (made by :meth:`init` unless it exists), listening on ``ip:port``
    only; ``local_auth``/``host_auth``: pg_hba methods for the unix socket and TCP."""

    def __init__(self, directory: Path, ip: str, port: int) -> None:
        self.dir = directory
        self.ip = ip
        self.port = port
        self.data = directory / "data"

    def init(self, *, local_auth: str = "trust", host_auth: str = "trust") -> None:
        """A new data directory (the directory is made and given to postgres, 0700)."""
        if not (PG_BIN / "initdb").is_file():
            raise PostgresError(f"no {PG_BIN / 'initdb'}: Debian package postgresql-15")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        shutil.chown(self.dir, "postgres", "postgres")
        as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
            f"--auth-local={local_auth}", f"--auth-host={host_auth}",
        )  # fmt: skip

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def running(self) -> bool:
        try:
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status")
        except PostgresError:
            return False
        return True

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={self.ip} -k {self.dir}"
        # The server must not hold our pipes: its output goes to a log file.
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """``sql`` as the superuser over the unix socket (ON_ERROR_STOP); the rows,
        unaligned, one per line."""
        return as_postgres(
            str(PG_BIN / "psql"), "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-qAt",
            "-h", str(self.dir), "-p", str(self.port), "-d", database, "-c", sql,
        )  # fmt: skip

    def createdb(self, name: str, owner: str = "postgres") -> None:
        as_postgres(
            str(PG_BIN / "createdb"), "-h", str(self.dir), "-p", str(self.port),
            "-O", owner, name,
        )  # fmt: skip
