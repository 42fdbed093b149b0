"""``customers add|edit --greeting``: what the agent says when answering for the
customer, shown on the desk's screen pop (docs/desk-web.md, "The greeting")."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.desk_live import DEFAULT_GREETING, PLACEHOLDERS, check_greeting
from televikar_pbx.domain.directory import Customer
from televikar_pbx.errors import ConfigError


def greeting_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--greeting",
        metavar="TEXT",
        help=f"what the agent says on answering, with {', '.join(PLACEHOLDERS)}"
        f" ('' for the default {DEFAULT_GREETING!r})",
    )


def checked_greeting(args: argparse.Namespace) -> str | None:
    """The option's template, checked before anything is written ('' -> None)."""
    text: str | None = args.greeting
    if not text or not text.strip():
        return None
    try:
        return check_greeting(text)
    except ValueError as exc:
        raise ConfigError(f"--greeting: {exc}") from None


def with_greeting(
    work: Callable[[DirectoryRepository], Awaitable[Customer]], args: argparse.Namespace
) -> Callable[[DirectoryRepository], Awaitable[Customer]]:
    """``work`` (customers add or edit), then ``--greeting`` in its transaction."""
    greeting = checked_greeting(args)

    async def both(repo: DirectoryRepository) -> Customer:
        customer = await work(repo)
        if args.greeting is not None:
            await repo.set_greeting(customer.id, greeting)
        return customer

    return both
