"""The customers' knowledge base (migration 0008): pages, their versions, and search.

A save writes the page, its new version and (on SQLite) its row of stemmed text in the
search table in ONE transaction, so search never finds text that was not saved, nor
misses text that was. The rules (what a page may hold, how words are stemmed) are
``domain.knowledge``'s; PostgreSQL stems by itself with its ``norwegian`` configuration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import bindparam, case, func, insert, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession

from televikar_pbx.db import models
from televikar_pbx.db.repo_base import Conflict, NotFound, Repository, flush, require_aware
from televikar_pbx.domain.knowledge import (
    KbHit,
    KbPage,
    KbVersion,
    check_page,
    fts5_query,
    search_terms,
    stemmed_text,
)

DEFAULT_LIMIT = 50
# A match in the title counts this much more than one in the text.
TITLE_WEIGHT = 5.0


class KbPageNotFound(NotFound):
    pass


class PageChanged(Conflict):
    """The page was saved by someone else since the editor opened it."""


class KnowledgeRepository(Repository):
    # --- writing ------------------------------------------------------------------------

    async def create_page(
        self,
        customer_id: int,
        title: str,
        body: str,
        *,
        user_id: int | None,
        username: str | None,
        now: dt.datetime,
    ) -> KbPage:
        """A new page (version 1, reviewed now); NotFound without such a customer,
        ``domain.knowledge.PageInvalid`` for a title or text that cannot be saved."""
        title, body = check_page(title, body)
        require_aware("now", now)
        async with self._unit() as s:
            if await s.get(models.Customer, customer_id) is None:
                raise NotFound(f"no customer with id {customer_id}")
            row = models.KbPage(
                customer_id=customer_id,
                title=title,
                body=body,
                version=1,
                created_at=now,
                updated_at=now,
                updated_by=username,
                last_reviewed_at=now,
                last_reviewed_by=username,
            )
            s.add(row)
            await flush(s, f"knowledge-base page {title!r}")
            await _add_version(s, row, user_id)
            await _index(s, row, new=True)
            return _page(row)

    async def save_page(
        self,
        page_id: int,
        title: str,
        body: str,
        *,
        base_version: int,
        user_id: int | None,
        username: str | None,
        now: dt.datetime,
    ) -> KbPage:
        """Save a new version of a page edited from ``base_version`` (saving counts as a
        review). PageChanged when another save came first, KbPageNotFound."""
        title, body = check_page(title, body)
        require_aware("now", now)
        p = models.KbPage
        async with self._unit() as s:
            # Compare-and-set on the version: of two editors who opened the same version,
            # the second to save is told, not silently overwritten.
            done = await s.execute(
                update(p)
                .where(p.id == page_id, p.version == base_version)
                .values(
                    title=title,
                    body=body,
                    version=p.version + 1,
                    updated_at=now,
                    updated_by=username,
                    last_reviewed_at=now,
                    last_reviewed_by=username,
                )
                .execution_options(synchronize_session=False)
            )
            row = await _load(s, page_id, refresh=True)
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise PageChanged(f"page {page_id} is at version {row.version}, not {base_version}")
            await _add_version(s, row, user_id)
            await _index(s, row, new=False)
            return _page(row)

    async def mark_reviewed(
        self, page_id: int, *, username: str | None, now: dt.datetime
    ) -> KbPage:
        require_aware("now", now)
        p = models.KbPage
        async with self._unit() as s:
            await s.execute(
                update(p)
                .where(p.id == page_id)
                .values(last_reviewed_at=now, last_reviewed_by=username)
                .execution_options(synchronize_session=False)
            )
            return _page(await _load(s, page_id, refresh=True))

    # --- reading ------------------------------------------------------------------------

    async def get_page(self, page_id: int) -> KbPage:
        async with self._unit() as s:
            return _page(await _load(s, page_id))

    async def list_pages(self, customer_id: int) -> tuple[KbPage, ...]:
        """A customer's pages by title."""
        p = models.KbPage
        query = select(p).where(p.customer_id == customer_id).order_by(p.title, p.id)
        async with self._unit() as s:
            return tuple(_page(r) for r in await s.scalars(query))

    async def versions(self, page_id: int) -> tuple[KbVersion, ...]:
        """Every version of a page, newest first (KbPageNotFound without the page)."""
        v = models.KbPageVersion
        query = select(v).where(v.page_id == page_id).order_by(v.version.desc())
        async with self._unit() as s:
            await _load(s, page_id)
            return tuple(_version(r) for r in await s.scalars(query))

    async def customer_names(self, customer_ids: Collection[int] | None) -> dict[int, str]:
        """The display names of ``customer_ids`` that exist (None: every customer), by id."""
        c = models.Customer
        query = select(c.id, c.display_name).order_by(c.display_name, c.id)
        if customer_ids is not None:
            query = query.where(c.id.in_(list(customer_ids)))
        async with self._unit() as s:
            return {i: name for i, name in await s.execute(query)}

    async def search(
        self, query: str, customer_ids: Collection[int] | None, *, limit: int = DEFAULT_LIMIT
    ) -> tuple[KbHit, ...]:
        """The pages of ``customer_ids`` (None: all) that hold every word of ``query`` in
        some inflection, best first. Nothing for a query of stop words only."""
        terms = search_terms(query)
        if not terms or (customer_ids is not None and not customer_ids):
            return ()
        async with self._unit() as s:
            if s.get_bind().dialect.name == "sqlite":
                ranked = await _search_sqlite(s, terms, customer_ids, limit)
            else:
                ranked = await _search_postgres(s, terms, customer_ids, limit)
            if not ranked:
                return ()
            p, c = models.KbPage, models.Customer
            rows = await s.execute(
                select(p, c.display_name)
                .join(c, c.id == p.customer_id)
                .where(p.id.in_([page_id for page_id, _ in ranked]))
            )
            found = {page.id: (page, name) for page, name in rows}
        return tuple(
            KbHit(_page(found[page_id][0]), found[page_id][1], rank)
            for page_id, rank in ranked
            if page_id in found
        )


# --- search per database -------------------------------------------------------------


async def _search_sqlite(
    s: AsyncSession, terms: tuple[str, ...], customer_ids: Collection[int] | None, limit: int
) -> list[tuple[int, float]]:
    # bm25() is lower for better matches; the title's column weighs more.
    table = models.KB_SEARCH_TABLE
    sql = (
        f"SELECT p.id, bm25({table}, :title_weight, 1.0) AS score"
        f" FROM {table} JOIN kb_pages AS p ON p.id = {table}.rowid"
        f" WHERE {table} MATCH :match"
    )
    params: dict[str, object] = {"match": fts5_query(terms), "title_weight": TITLE_WEIGHT}
    if customer_ids is not None:
        sql += " AND p.customer_id IN :customers"
        params["customers"] = list(customer_ids)
    statement = text(sql + " ORDER BY score, p.id LIMIT :limit")
    if customer_ids is not None:
        statement = statement.bindparams(bindparam("customers", expanding=True))
    rows = await s.execute(statement, {**params, "limit": limit})
    return [(int(page_id), -float(score)) for page_id, score in rows]


async def _search_postgres(
    s: AsyncSession, terms: tuple[str, ...], customer_ids: Collection[int] | None, limit: int
) -> list[tuple[int, float]]:
    p = models.KbPage
    # Spelled as the GIN index's expression (KB_TSVECTOR), so the index is used.
    document = literal_column(models.KB_TSVECTOR, TSVECTOR)
    wanted = func.plainto_tsquery(literal_column("'norwegian'::regconfig"), " ".join(terms))
    in_title = func.to_tsvector(literal_column("'norwegian'::regconfig"), p.title).op("@@")(wanted)
    rank = (func.ts_rank(document, wanted) + case((in_title, TITLE_WEIGHT), else_=0.0)).label(
        "rank"
    )
    query = select(p.id, rank).where(document.op("@@")(wanted))
    if customer_ids is not None:
        query = query.where(p.customer_id.in_(list(customer_ids)))
    rows = await s.execute(query.order_by(rank.desc(), p.id).limit(limit))
    return [(int(page_id), float(score)) for page_id, score in rows]


# --- rows ------------------------------------------------------------------------------


async def _load(s: AsyncSession, page_id: int, *, refresh: bool = False) -> models.KbPage:
    row = await s.get(models.KbPage, page_id, populate_existing=refresh)
    if row is None:
        raise KbPageNotFound(f"no knowledge-base page with id {page_id}")
    return row


async def _add_version(s: AsyncSession, row: models.KbPage, user_id: int | None) -> None:
    await s.execute(
        insert(models.KbPageVersion).values(
            page_id=row.id,
            version=row.version,
            title=row.title,
            body=row.body,
            saved_at=row.updated_at,
            user_id=user_id,
            username=row.updated_by,
        )
    )


async def _index(s: AsyncSession, row: models.KbPage, *, new: bool) -> None:
    """Keep SQLite's search table in step with the page (PostgreSQL needs nothing)."""
    if s.get_bind().dialect.name != "sqlite":
        return
    table = models.KB_SEARCH_TABLE
    if not new:
        await s.execute(text(f"DELETE FROM {table} WHERE rowid = :id"), {"id": row.id})
    await s.execute(
        text(f"INSERT INTO {table} (rowid, title, body) VALUES (:id, :title, :body)"),
        {"id": row.id, "title": stemmed_text(row.title), "body": stemmed_text(row.body)},
    )


def _page(row: models.KbPage) -> KbPage:
    return KbPage(
        id=row.id,
        customer_id=row.customer_id,
        title=row.title,
        body=row.body,
        version=row.version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        last_reviewed_at=row.last_reviewed_at,
        last_reviewed_by=row.last_reviewed_by,
    )


def _version(row: models.KbPageVersion) -> KbVersion:
    return KbVersion(
        page_id=row.page_id,
        version=row.version,
        title=row.title,
        body=row.body,
        saved_at=row.saved_at,
        user_id=row.user_id,
        username=row.username,
    )
