"""argon2id hashing (auth.passwords): verify, rehash on new parameters, dummy check."""

from __future__ import annotations

import time

from televikar_pbx.auth.passwords import TEST_PARAMS, HashParams, Passwords, Verdict


def test_hash_is_argon2id_and_verifies() -> None:
    passwords = Passwords(TEST_PARAMS)
    stored = passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert passwords.verify(stored, "correct horse battery").ok
    assert passwords.verify(stored, "correct horse battery").new_hash is None
    assert not passwords.verify(stored, "wrong horse battery").ok
    assert passwords.hash("x" * 12) != passwords.hash("x" * 12)  # salted


def test_changed_parameters_ask_for_a_rehash() -> None:
    old = Passwords(TEST_PARAMS).hash("correct horse battery")
    stronger = Passwords(HashParams(time_cost=2, memory_kib=2048, parallelism=1))
    verdict = stronger.verify(old, "correct horse battery")
    assert verdict.ok and verdict.new_hash is not None
    assert verdict.new_hash.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert stronger.verify(verdict.new_hash, "correct horse battery") == Verdict(True, None)
    # A wrong password is never rehashed.
    assert stronger.verify(old, "wrong").new_hash is None


def test_unknown_user_and_foreign_hashes_never_match() -> None:
    passwords = Passwords(TEST_PARAMS)
    assert not passwords.verify(None, "anything").ok
    assert not passwords.verify("plaintext", "plaintext").ok
    assert not passwords.verify("$2b$12$abcdefghijklmnopqrstuv", "x").ok


def test_unknown_user_costs_as_much_as_a_known_one() -> None:
    # The dummy hash has the same parameters, so the time is of the same order (a
    # loose factor: the machine is shared; what matters is that it is not ~0).
    passwords = Passwords(HashParams(time_cost=2, memory_kib=8192, parallelism=1))
    stored = passwords.hash("correct horse battery")

    def timed(h: str | None) -> float:
        start = time.perf_counter()
        for _ in range(5):
            passwords.verify(h, "wrong password!")
        return time.perf_counter() - start

    known, unknown = min(timed(stored) for _ in range(3)), min(timed(None) for _ in range(3))
    assert unknown > known / 3
