"""Password hashing: argon2id through argon2-cffi.

The parameters are argon2-cffi's defaults (RFC 9106's "second recommended option":
t=3, m=64 MiB, p=4; about 50-100 ms on our machines). A stored hash made with other
parameters still verifies; the log-in that proves the password then stores a new hash
with the current ones (``Verdict.new_hash``).

An unknown username is checked against a dummy hash made with the same parameters, so
a log-in takes as long whether or not the user exists.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


@dataclass(frozen=True, slots=True)
class HashParams:
    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


# Cheap parameters for tests only (they check behaviour, not strength).
TEST_PARAMS = HashParams(time_cost=1, memory_kib=1024, parallelism=1)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    # A hash with the current parameters when the stored one should be replaced.
    new_hash: str | None = None


class Passwords:
    def __init__(self, params: HashParams = HashParams()) -> None:
        self.params = params
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> Verdict:
        """Whether ``password`` matches ``stored_hash`` (None: no such user; the dummy
        hash is checked instead and the answer is no). CPU-bound: call it in a thread."""
        if stored_hash is None:
            self._check(self._dummy, password)
            return Verdict(False)
        if not self._check(stored_hash, password):
            return Verdict(False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verdict(True, self._hasher.hash(password))
        return Verdict(True)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError is a VerificationError; a hash that is not argon2
            # (InvalidHashError) never matches.
            return False
