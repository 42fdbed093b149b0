"""``televikar-pbx kb import CUSTOMER FILE.md --title T``: a page of a customer's
knowledge base from a Markdown file, for ops moving a customer's notes in
(docs/desk-web.md, "Knowledge base"). The page is reviewed as of now, saved by "cli".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from televikar_pbx.admin import render, session
from televikar_pbx.db.knowledge_repo import KnowledgeRepository
from televikar_pbx.db.repositories import DirectoryRepository
from televikar_pbx.domain.knowledge import KbPage
from televikar_pbx.errors import ConfigError
from televikar_pbx.settings import Settings

SAVED_BY = "cli"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("kb", help="the customers' knowledge base (agent desk)")
    actions = parser.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    imported = actions.add_parser(
        "import",
        help="add a page from a Markdown file",
        description="Add a page to CUSTOMER's knowledge base from FILE (UTF-8 Markdown; "
        "- reads stdin). The page counts as reviewed now.",
    )
    imported.add_argument("customer", help="customer name or id")
    imported.add_argument("file", help="a Markdown file, or - for stdin")
    imported.add_argument("--title", required=True, help="the page's title")
    imported.add_argument("--json", action="store_true")
    imported.set_defaults(func=cmd_import)


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {name}: {exc}") from None


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    body = _read(args.file)

    async def work(repo: DirectoryRepository) -> tuple[str, KbPage]:
        customer = await repo.find_customer(args.customer)
        page = await KnowledgeRepository(repo.source).create_page(
            customer.id,
            args.title,
            body,
            user_id=None,
            username=SAVED_BY,
            now=args.clock.now(),
        )
        return customer.name, page

    customer, page = session.run(settings, work)
    if args.json:
        print(
            render.dumps(
                {
                    "id": page.id,
                    "customer_id": page.customer_id,
                    "title": page.title,
                    "version": page.version,
                }
            )
        )
    else:
        print(f"added page {page.id} {page.title!r} to {customer}'s knowledge base")
    return 0
