"""The knowledge base's rules (domain.knowledge): safe Markdown, Norwegian search terms,
staleness against a given time, who edits, snippets and the diff between versions."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from televikar_pbx.domain.auth import Role, UserAccount
from televikar_pbx.domain.knowledge import (
    MAX_TITLE,
    DiffKind,
    KbVersion,
    PageInvalid,
    check_page,
    diff,
    fts5_query,
    is_stale,
    link_allowed,
    may_edit,
    plain_text,
    render,
    search_terms,
    snippet,
    stem,
    stemmed_text,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


# --- rendering ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "Hei <script>alert(1)</script> du",
        '<img src="x" onerror="alert(1)">',
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">klikk</a>',
        "<iframe src=https://example.com></iframe>",
        '<div style="x" onclick="alert(1)">\n\nblokk\n\n</div>',
    ],
)
def test_raw_html_comes_out_as_text(source: str) -> None:
    html = render(source)
    assert not re.search(r"<(script|img|a|iframe|div)\b", html), html
    assert "&lt;" in html  # shown, escaped


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x]( javascript:alert(1) )",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox)",
        "<javascript:alert(1)>",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "[x](/relative/path)",
        "[x](//evil.example/)",
    ],
)
def test_links_other_than_http_mailto_tel_are_not_links(source: str) -> None:
    html = render(source)
    assert "<a " not in html and "href" not in html, html


def test_allowed_links_render_with_rel() -> None:
    html = render(
        "[Nettside](https://fjordbakst.no/?a=1&b=2) <http://x.no> [Ring](tel:+4721000001)"
        " [Skriv](mailto:post@fjordbakst.no)"
    )
    rel = 'rel="noopener noreferrer nofollow"'
    assert f'<a href="https://fjordbakst.no/?a=1&amp;b=2" {rel}>Nettside</a>' in html
    assert f'<a href="http://x.no" {rel}>' in html
    assert f'<a href="tel:+4721000001" {rel}>Ring</a>' in html
    assert f'<a href="mailto:post@fjordbakst.no" {rel}>Skriv</a>' in html


def test_images_are_not_loaded() -> None:
    assert "<img" not in render("![logo](https://example.com/spor.png)")


def test_markdown_still_renders() -> None:
    html = render("# Priser\n\n**Brød** koster *mye*.\n\n- rug\n- hvete\n\n`<b>kode</b>`")
    assert "<h1>Priser</h1>" in html and "<strong>Brød</strong>" in html
    assert "<em>mye</em>" in html and "<li>rug</li>" in html
    assert "&lt;b&gt;kode&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://a.no", True),
        ("HTTP://a.no", True),
        ("mailto:a@b.no", True),
        ("tel:+47", True),
        ("javascript:alert(1)", False),
        ("ftp://a.no", False),
        ("/side", False),
        ("", False),
    ],
)
def test_link_allowed(url: str, ok: bool) -> None:
    assert link_allowed(url) is ok


def test_plain_text_is_what_a_reader_sees() -> None:
    source = "# Priser\n\n**Brød** [her](https://x.no) og `kode`.\nNy linje.\n\n- a\n- b"
    assert plain_text(source) == "Priser Brød her og kode. Ny linje. a b"
    assert plain_text("<b>x</b>") == "<b>x</b>"  # text, escaped where it is shown


# --- search -------------------------------------------------------------------------


def test_inflections_share_a_stem() -> None:
    stems = {stem(w) for w in ("bestilling", "bestillinger", "bestillingen", "bestillingene")}
    assert stems == {"bestilling"}
    assert stem("åpningstider") == stem("åpningstid")
    assert stem("kunder") == stem("kunde")


def test_stemmed_text_drops_stop_words_and_case() -> None:
    assert stemmed_text("Bestillinger av brød OG kaker") == "bestilling brød kak"


def test_search_terms() -> None:
    assert search_terms("  Bestilling og priser, bestilling ") == ("bestilling", "priser")
    assert search_terms("og i det") == ()
    assert search_terms("***") == ()


def test_fts5_query_quotes_every_term() -> None:
    # FTS5 operators and special characters in a query are only words to look for.
    assert fts5_query(["bestillinger", "or", "near"]) == '"bestilling" AND "or" AND "near"'
    assert fts5_query(search_terms('pris* "NOT" (x)')) == '"pris" AND "not" AND "x"'


def test_snippet_marks_the_matching_words() -> None:
    text = "Åpent hver dag. " * 20 + "Vi tar imot bestillinger til kl. 14. " + "Slutt. " * 30
    parts = snippet(text, ["bestilling"])
    assert [p.text for p in parts if p.hit] == ["bestillinger"]
    joined = "".join(p.text for p in parts)
    assert joined.startswith("… ") and joined.endswith(" …")
    assert "Vi tar imot bestillinger til kl. 14." in joined
    assert "".join(p.text for p in snippet("Kort tekst.", ["annet"])) == "Kort tekst."
    assert snippet("", ["x"]) == ()


# --- staleness, editing, checking -----------------------------------------------------


@pytest.mark.parametrize(("days", "stale"), [(0, False), (89, False), (90, False), (91, True)])
def test_stale_after_90_days(days: int, stale: bool) -> None:
    assert is_stale(T0, T0 + days * DAY) is stale


def test_stale_just_past_90_days() -> None:
    assert is_stale(T0, T0 + 90 * DAY + dt.timedelta(seconds=1))


def _user(
    role: Role, customers: frozenset[int] = frozenset(), disabled: bool = False
) -> UserAccount:
    return UserAccount(1, "u", role, None, disabled, T0, None, customers)


def test_who_may_edit() -> None:
    assert may_edit(_user(Role.ADMIN), 7)
    assert may_edit(_user(Role.ACCOUNT_MANAGER, frozenset({7})), 7)
    assert not may_edit(_user(Role.ACCOUNT_MANAGER, frozenset({7})), 8)
    assert not may_edit(_user(Role.AGENT), 7)
    assert not may_edit(_user(Role.SUPERVISOR), 7)
    assert not may_edit(_user(Role.ADMIN, disabled=True), 7)


def test_check_page() -> None:
    assert check_page("  Priser \n og  tider ", "a\r\nb\rc") == ("Priser og tider", "a\nb\nc")
    with pytest.raises(PageInvalid, match="Tittel må fylles ut"):
        check_page("   ", "x")
    with pytest.raises(PageInvalid, match="høyst"):
        check_page("x" * (MAX_TITLE + 1), "")
    with pytest.raises(PageInvalid, match="kontrolltegn"):
        check_page("x", "a\x00b")


# --- versions -----------------------------------------------------------------------


def _version(n: int, title: str, body: str) -> KbVersion:
    return KbVersion(1, n, title, body, T0, 1, "anne")


def test_diff_shows_what_changed() -> None:
    v1 = _version(1, "Priser", "Brød: 50 kr\nKake: 200 kr\nBoller: 10 kr")
    v2 = _version(2, "Priser 2027", "Brød: 55 kr\nKake: 200 kr\nBoller: 10 kr")
    lines = diff(v1, v2)
    assert [(line.kind, line.text) for line in lines[:2]] == [
        (DiffKind.HEADER, "--- versjon 1"),
        (DiffKind.HEADER, "+++ versjon 2"),
    ]
    changed = {(line.kind, line.text) for line in lines}
    assert (DiffKind.REMOVED, "-Tittel: Priser") in changed
    assert (DiffKind.ADDED, "+Tittel: Priser 2027") in changed
    assert (DiffKind.REMOVED, "-Brød: 50 kr") in changed
    assert (DiffKind.ADDED, "+Brød: 55 kr") in changed
    assert (DiffKind.SAME, " Kake: 200 kr") in changed


def test_diff_of_the_first_version_adds_everything() -> None:
    lines = diff(None, _version(1, "T", "a\nb"))
    assert lines[0].text == "--- (ingen)"
    assert [line.text for line in lines if line.kind is DiffKind.ADDED] == [
        "+Tittel: T",
        "+",
        "+a",
        "+b",
    ]


def test_diff_of_an_unchanged_save_is_empty() -> None:
    assert diff(_version(1, "T", "a"), _version(2, "T", "a")) == ()
