"""Our service (system (a)): ``televikar-pbx serve`` on a fresh, seeded SQLite database,
pointed at the benchmark's Asterisk, as tests/asterisk/conftest.py starts it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.loadbench import procs
from benchmarks.loadbench.asterisk import AMI_USER, ARI_USER, BenchAsterisk, did
from televikar_pbx.db import migrate
from televikar_pbx.db.engine import make_engine, make_sessionmaker
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.calendar import Agreement
from televikar_pbx.domain.directory import CustomerRules

REPO = Path(__file__).resolve().parents[2]
# Waiting is never cut short by the maximum wait (message capture) during a run.
MAX_WAIT_S = 3600


@dataclass(frozen=True)
class Seed:
    """Customers Bench 001..N (DIDs 4721100001..) and agents agentb1..M, each serving
    every customer, or (``one_agent_per_customer``) agent n customer n only."""

    customers: int
    agents: int
    one_agent_per_customer: bool = False


async def _seed(db_url: str, seed: Seed) -> None:
    engine = make_engine(db_url)
    try:
        directory = DirectoryRepository(make_sessionmaker(engine))
        rules = CustomerRules(wrap_up_s=0, max_wait_s=MAX_WAIT_S)
        agreement = Agreement(date.today() - timedelta(days=1))
        ids = []
        for c in range(1, seed.customers + 1):
            customer = await directory.add_customer(
                f"Bench {c:03d} AS", f"Bench {c:03d}", [did("ours", c)],
                rules=rules, agreement=agreement,
            )  # fmt: skip
            ids.append(customer.id)
        for n in range(1, seed.agents + 1):
            served = [ids[(n - 1) % len(ids)]] if seed.one_agent_per_customer else ids
            await directory.add_agent(f"Agent {n}", f"agentb{n}", served, logged_in=True)
    finally:
        await engine.dispose()


class Service:
    """A running ``televikar-pbx serve``; :meth:`stop` is idempotent."""

    def __init__(
        self,
        asterisk: BenchAsterisk,
        workdir: Path,
        name: str,
        seed: Seed,
        *,
        ari_app: str,
        ring_timeout_s: int,
        log_level: str,
    ) -> None:
        self.asterisk = asterisk
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite+aiosqlite:///{self.workdir / 'televikar.sqlite3'}"
        self.seed = seed
        self.ari_app = ari_app
        self.control_port = procs.free_tcp_port()
        self.log = self.workdir / "serve.log"
        spool = asterisk.state / "spool" / "recording"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TELEVIKAR_")},
            # No env file: every setting is here.
            "TELEVIKAR_ENV_FILE": str(self.workdir / "no-env-file"),
            "TELEVIKAR_ARI_URL": asterisk.ari_url,
            "TELEVIKAR_ARI_USER": ARI_USER,
            "TELEVIKAR_ARI_PASSWORD": asterisk.creds["ARI_PASSWORD"],
            "TELEVIKAR_ARI_APP": ari_app,
            "TELEVIKAR_AMI_HOST": "127.0.0.1",
            "TELEVIKAR_AMI_PORT": str(asterisk.ports.ami),
            "TELEVIKAR_AMI_USER": AMI_USER,
            "TELEVIKAR_AMI_PASSWORD": asterisk.creds["AMI_PASSWORD"],
            "TELEVIKAR_AGI_PORT": str(procs.free_tcp_port()),
            "TELEVIKAR_CONTROL_PORT": str(self.control_port),
            "TELEVIKAR_DATABASE_URL": self.db_url,
            "TELEVIKAR_RING_TIMEOUT_S": str(ring_timeout_s),
            "TELEVIKAR_RECORDING_SPOOL": str(spool),
            "TELEVIKAR_CDR_FILE": str(asterisk.log_dir / "cdr-custom" / "Master.csv"),
            "TELEVIKAR_SPOOL_DIR": str(self.workdir / "spool"),
            "TELEVIKAR_MESSAGES_DIR": str(self.workdir / "messages"),
            "TELEVIKAR_LOG_FORMAT": "json",
            "TELEVIKAR_LOG_LEVEL": log_level,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 30.0) -> None:
        migrate.upgrade(self.db_url)
        asyncio.run(_seed(self.db_url, self.seed))
        self.proc = procs.start(
            [sys.executable, "-m", "televikar_pbx.cli", "serve"],
            self.log,
            env=self.env,
            cwd=REPO,
        )
        # Ready once the application is registered in Asterisk (its websocket is up) and
        # the control API answers (the desk is built).
        deadline = time.monotonic() + timeout_s
        while not (self.asterisk.app_connected(self.ari_app) and self._status_ok()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"televikar-pbx serve exited at start-up, see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"televikar-pbx serve not ready in {timeout_s:.0f} s")
            time.sleep(0.2)
        time.sleep(1.0)  # AMI presence and the first device states settle

    def _status_ok(self) -> bool:
        try:
            self.status(timeout=1.0)
        except OSError:
            return False
        return True

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """The control API's live view (``televikar-pbx status --json``)."""
        url = f"http://127.0.0.1:{self.control_port}/status"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data

    def waiting(self) -> int:
        """Callers queued or being offered right now."""
        return sum(len(c["waiting"]) for c in self.status()["customers"])

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, grace_s=15.0)
            self.proc = None
