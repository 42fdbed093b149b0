"""The customers' knowledge base: pages in Markdown, their versions, search and review.

Pure: time is an argument; the database (``db/knowledge_repo.py``) and the web pages
(``web/knowledge.py``) carry out what these functions decide.

Theory of operation
-------------------
- **Rendering.** A page's text is CommonMark, rendered by markdown-it-py with raw HTML
  off: ``<script>`` in the text comes out as the text ``&lt;script&gt;``. Links (and
  autolinks) are kept only with the schemes ``http``, ``https``, ``mailto`` and ``tel``;
  any other link (``javascript:``, ``data:``, a relative path) is left as the literal
  Markdown text. Images are off (a page is text; an image would be a request to
  anywhere). Links get ``rel="noopener noreferrer nofollow"``.
- **Search** is Norwegian on both databases, and finds a word in any inflection
  (``bestilling`` finds ``bestillinger``): words are lower-cased, Norwegian stop words
  (PostgreSQL's list, "og", "i", ...) dropped, and the rest stemmed with the Snowball
  Norwegian stemmer, the algorithm PostgreSQL's ``norwegian`` configuration uses.
  PostgreSQL stems itself (``to_tsvector('norwegian', ...)``); on SQLite the repository
  keeps the stemmed text (``stemmed_text``) in an FTS5 table and matches the query's
  stems (``fts5_query``). A page matches when it has every word of the query.
- **Review.** A page is stale when its last review is more than ``STALE_AFTER`` (90
  days) before now. Saving a page counts as a review; so does "Merk som gjennomgått".
- **Editing.** An admin edits every customer's pages; an account manager those of the
  customers it manages (``UserAccount.customer_ids``), not those it sees as an agent;
  agents and supervisors read. Every save is a new version; ``diff`` shows what one
  version changed from the one before.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

import snowballstemmer
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from televikar_pbx.domain.auth import Role, UserAccount

STALE_AFTER = dt.timedelta(days=90)
MAX_TITLE = 200
MAX_BODY = 100_000
MAX_QUERY = 200
LINK_SCHEMES = ("http", "https", "mailto", "tel")
LINK_REL = "noopener noreferrer nofollow"

# PostgreSQL 15's tsearch_data/norwegian.stop (from Snowball), so that both databases
# ignore the same words.
_STOP_WORDS = """og i jeg det at en et den til er som på de med han av ikke ikkje der så var meg
    seg men ett har om vi min mitt ha hadde hun nå over da ved fra du ut sin dem oss opp
    man kan hans hvor eller hva skal selv sjøl her alle vil bli ble blei blitt kunne inn
    når være kom noen noe ville dere deres kun ja etter ned skulle denne for deg si sine
    sitt mot å meget hvorfor dette disse uten hvordan ingen din ditt blir samme hvilken
    hvilke sånn inni mellom vår hver hvem vors hvis både bare enn fordi før mange også
    slik vært begge siden dykk dykkar dei deira deires deim di då eg ein eit eitt elles
    honom hjå ho hoe henne hennar hennes hoss hossen ingi inkje korleis korso kva kvar
    kvarhelst kven kvi kvifor me medan mi mine mykje no nokon noka nokor noko nokre sia
    sidan so somt somme um upp vere vore verte vort varte vart båe"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

# A word: letters and digits (not "_"), as FTS5's unicode61 tokenizer splits text.
_WORD = re.compile(r"[^\W_]+")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class PageInvalid(ValueError):
    """A page's title or text cannot be saved; the message is for the editor (bokmål)."""


# --- what the repository returns ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class KbPage:
    """A page as it stands (its newest version)."""

    id: int
    customer_id: int
    title: str
    body: str
    version: int
    updated_at: dt.datetime
    updated_by: str | None  # username at the time (the user may be gone)
    last_reviewed_at: dt.datetime
    last_reviewed_by: str | None


@dataclass(frozen=True, slots=True)
class KbVersion:
    """One save of a page: who, when, what."""

    page_id: int
    version: int
    title: str
    body: str
    saved_at: dt.datetime
    user_id: int | None
    username: str | None


@dataclass(frozen=True, slots=True)
class KbHit:
    """A search result; ``rank``: higher is better (comparable within one search)."""

    page: KbPage
    customer_name: str
    rank: float


# --- pages --------------------------------------------------------------------------


def check_page(title: str, body: str) -> tuple[str, str]:
    """The title (trimmed, one line) and text (line breaks as ``\\n``) to store, or
    PageInvalid."""
    title = " ".join(title.split())
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not title:
        raise PageInvalid("Tittel må fylles ut.")
    if len(title) > MAX_TITLE:
        raise PageInvalid(f"Tittelen kan ha høyst {MAX_TITLE} tegn.")
    if len(body) > MAX_BODY:
        raise PageInvalid(f"Teksten kan ha høyst {MAX_BODY} tegn.")
    if _CONTROL.search(title) or _CONTROL.search(body):
        raise PageInvalid("Teksten har ugyldige kontrolltegn.")
    return title, body


def may_edit(user: UserAccount, customer_id: int) -> bool:
    """Whether ``user`` may write ``customer_id``'s pages (seeing them is checked apart)."""
    if user.disabled:
        return False
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.ACCOUNT_MANAGER and customer_id in user.customer_ids


def is_stale(last_reviewed_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether a page last reviewed at ``last_reviewed_at`` needs a review at ``now``."""
    return now - last_reviewed_at > STALE_AFTER


# --- rendering ----------------------------------------------------------------------


def link_allowed(url: str) -> bool:
    """Whether a link may point at ``url``: only http, https, mailto and tel."""
    found = _SCHEME.match(url.strip())
    return found is not None and found.group(1).lower() in LINK_SCHEMES


def _link_open(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.validateLink = link_allowed  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


def render(text: str) -> str:
    """A page's Markdown as HTML that is safe to put in a page as it is."""
    return str(_markdown().render(text))


def plain_text(text: str) -> str:
    """A page's Markdown as the words a reader sees (for search snippets): no ``**``,
    ``#`` or link targets; blocks separated by a space."""
    out: list[str] = []
    for block in _markdown().parse(text):
        if block.type in ("code_block", "fence"):
            out.append(block.content)
        for child in block.children or ():
            if child.type in ("text", "code_inline"):
                out.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                out.append(" ")
        if block.block and block.nesting != 1:
            out.append(" ")
    return " ".join("".join(out).split())


# --- search -------------------------------------------------------------------------


@cache
def _stemmer() -> Any:
    return snowballstemmer.stemmer("norwegian")


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased, in order."""
    return [w.casefold() for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """The Snowball Norwegian stem of a lower-case word (``bestillinger`` -> ``bestilling``)."""
    return str(_stemmer().stemWord(word))


def stemmed_text(text: str) -> str:
    """``text`` as the SQLite index keeps it: its words' stems, without stop words."""
    return " ".join(stem(w) for w in words(text) if w not in STOP_WORDS)


def search_terms(query: str) -> tuple[str, ...]:
    """The words a search looks for (lower-case, no stop words, each once, in order);
    empty when the query has none (then nothing is searched)."""
    found = (w for w in words(query[:MAX_QUERY]) if w not in STOP_WORDS)
    return tuple(dict.fromkeys(found))


def fts5_query(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression for pages holding every term's stem: each stem a
    quoted string, so no term is read as FTS5 syntax (``OR``, ``NEAR``, ``*``)."""
    stems = dict.fromkeys(stem(t) for t in terms)
    return " AND ".join('"' + s.replace('"', '""') + '"' for s in stems)


@dataclass(frozen=True, slots=True)
class SnippetPart:
    text: str
    hit: bool  # a word that matched the search


def snippet(text: str, terms: Iterable[str], width: int = 30) -> tuple[SnippetPart, ...]:
    """About ``width`` words of ``text`` around the first word that matches one of
    ``terms`` (by stem), the matching words marked; the start when none matches."""
    flat = " ".join(text.split())
    wanted = {stem(t) for t in terms}
    spans = [(m.start(), m.end(), stem(m.group().casefold())) for m in _WORD.finditer(flat)]
    if not spans:
        return ()
    first = next((i for i, s in enumerate(spans) if s[2] in wanted), 0)
    start = max(0, first - width // 3)
    end = min(len(spans), start + width)
    parts: list[SnippetPart] = []
    if start > 0:
        parts.append(SnippetPart("… ", False))
    pos = spans[start][0]
    for a, b, s in spans[start:end]:
        if a > pos:
            parts.append(SnippetPart(flat[pos:a], False))
        parts.append(SnippetPart(flat[a:b], s in wanted))
        pos = b
    tail = flat[pos:] if end == len(spans) else flat[pos : spans[end][0]].rstrip() + " …"
    if tail:
        parts.append(SnippetPart(tail, False))
    merged: list[SnippetPart] = []
    for part in parts:  # neighbours alike become one part
        if merged and merged[-1].hit == part.hit:
            merged[-1] = SnippetPart(merged[-1].text + part.text, part.hit)
        else:
            merged.append(part)
    return tuple(merged)


# --- versions -----------------------------------------------------------------------


class DiffKind(StrEnum):
    HEADER = "header"  # the --- / +++ lines
    HUNK = "hunk"  # @@ -1,3 +1,4 @@
    ADDED = "added"
    REMOVED = "removed"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: DiffKind
    text: str


def _lines(title: str, body: str) -> list[str]:
    return [f"Tittel: {title}", "", *body.split("\n")]


def diff(before: KbVersion | None, after: KbVersion) -> tuple[DiffLine, ...]:
    """What ``after`` changed from ``before`` (None: the first version, all added), as
    a unified diff of the title line and the text, three lines of context."""
    old = _lines(before.title, before.body) if before is not None else []
    new = _lines(after.title, after.body)
    old_name = f"versjon {before.version}" if before is not None else "(ingen)"
    found = difflib.unified_diff(old, new, old_name, f"versjon {after.version}", lineterm="")
    # The first two lines of a unified diff are its "---" and "+++" headers.
    return tuple(
        DiffLine(DiffKind.HEADER if i < 2 else _kind(line), line) for i, line in enumerate(found)
    )


def _kind(line: str) -> DiffKind:
    if line.startswith("@@"):
        return DiffKind.HUNK
    if line.startswith("+"):
        return DiffKind.ADDED
    if line.startswith("-"):
        return DiffKind.REMOVED
    return DiffKind.SAME
