"""``televikar-pbx users add|passwd|disable|enable|list``: who may log in to the agent
desk (docs/desk-web.md).

A password never comes from the command line (it would sit in the shell history and in
``ps``): it is asked for twice when stdin is a terminal, else read as the first line of
stdin (``--password-stdin`` says so explicitly), or generated (``--generate``) and
printed once. Changing the password or disabling a user ends its sessions.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from televikar_pbx.admin import render, session
from televikar_pbx.auth.passwords import Passwords
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.db.users_repo import UserRepository
from televikar_pbx.domain.auth import Role, UserAccount, check_password
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

ROLES = [r.value for r in Role]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("users", help="users of the agent desk (web)")
    actions = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add a user",
        description="Add a desk user. The password is asked for (terminal), read from "
        "stdin, or generated and printed once; never given as an argument.",
    )
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", metavar="A", help="the agent (endpoint, id or name) it is")
    add.add_argument(
        "--customer",
        action="append",
        default=[],
        metavar="C",
        help="a customer an account_manager manages (name or id; repeat)",
    )
    _password_options(add)
    add.set_defaults(func=cmd_add)

    passwd = actions.add_parser("passwd", help="set a user's password (ends its sessions)")
    passwd.add_argument("username")
    _password_options(passwd)
    passwd.set_defaults(func=cmd_passwd)

    disable = actions.add_parser("disable", help="refuse a user's log-ins (ends its sessions)")
    disable.add_argument("username")
    disable.set_defaults(func=cmd_disable, disabled=True)
    enable = actions.add_parser("enable", help="let a disabled user log in again")
    enable.add_argument("username")
    enable.set_defaults(func=cmd_disable, disabled=False)

    listing = actions.add_parser("list", help="every user")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)


def _password_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    source.add_argument(
        "--generate", action="store_true", help="generate a password and print it once"
    )


def read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new password and whether it was generated (then it must be shown)."""
    if args.generate:
        return secrets.token_urlsafe(18), True
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise ConfigError("the two passwords differ")
    try:
        return check_password(password), False
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    role = Role(args.role)
    if args.customer and role is not Role.ACCOUNT_MANAGER:
        raise ConfigError("--customer is for --role account_manager only")
    password, generated = read_password(args)
    password_hash = Passwords().hash(password)

    async def work(repo: DirectoryRepository) -> UserAccount:
        agent_id = (await repo.find_agent(args.agent)).id if args.agent else None
        customers = [(await repo.find_customer(c)).id for c in args.customer]
        return await UserRepository(repo.source).add_user(
            args.username,
            password_hash,
            role,
            agent_id=agent_id,
            customer_ids=customers,
            now=args.clock.now(),
        )

    user = session.run(settings, work)
    tied = f", agent id {user.agent_id}" if user.agent_id is not None else ""
    print(f"added user {user.username!r} (id {user.id}, {user.role}{tied})")
    if generated:
        print(f"password (shown once): {password}")
    return 0


def cmd_passwd(settings: Settings, args: argparse.Namespace) -> int:
    password, generated = read_password(args)
    password_hash = Passwords().hash(password)

    async def work(repo: DirectoryRepository) -> tuple[UserAccount, int]:
        users = UserRepository(repo.source)
        user = await users.find_user(args.username)
        await users.set_password_hash(user.id, password_hash, args.clock.now())
        return user, await users.delete_sessions_of(user.id)

    user, ended = session.run(settings, work)
    print(f"password of {user.username!r} changed; {ended} session(s) ended")
    if generated:
        print(f"password (shown once): {password}")
    return 0


def cmd_disable(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> tuple[UserAccount, int]:
        users = UserRepository(repo.source)
        user = await users.find_user(args.username)
        await users.set_disabled(user.id, args.disabled)
        return user, (await users.delete_sessions_of(user.id) if args.disabled else 0)

    user, ended = session.run(settings, work)
    if args.disabled:
        print(f"user {user.username!r} disabled; {ended} session(s) ended")
    else:
        print(f"user {user.username!r} enabled")
    return 0


def user_json(user: UserAccount) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role.value,
        "agent_id": user.agent_id,
        "customer_ids": sorted(user.customer_ids),
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repo: DirectoryRepository) -> tuple[UserAccount, ...]:
        return await UserRepository(repo.source).list_users()

    users = session.run(settings, work)
    if args.json:
        print(render.dumps([user_json(u) for u in users]))
        return 0
    rows = [
        [
            u.username,
            u.role.value,
            "" if u.agent_id is None else str(u.agent_id),
            ",".join(str(c) for c in sorted(u.customer_ids)),
            "disabled" if u.disabled else "",
            u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never",
        ]
        for u in users
    ]
    headers = ["username", "role", "agent", "customers", "state", "last login"]
    print(render.table(headers, rows) if rows else "no users")
    return 0
