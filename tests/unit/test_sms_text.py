"""GSM-7 / UCS-2 encoding choice and segmentation at every boundary."""

from __future__ import annotations

import pytest

from televikar_pbx.domain.sms_text import (
    GSM7_EXTENSION,
    Encoding,
    encoding_for,
    is_gsm7,
    length,
    split,
    truncate,
)


def test_norwegian_letters_are_gsm7() -> None:
    assert is_gsm7("Blåbærsyltetøy fra Ærøy og Ålesund, Øyvind!")
    assert encoding_for("Ring tilbake på +47 22 33 44 55") is Encoding.GSM7
    assert encoding_for("Şebnem ringte") is Encoding.UCS2
    assert encoding_for("Takk 🙂") is Encoding.UCS2


@pytest.mark.parametrize(
    ("n", "segments"), [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3)]
)
def test_gsm7_boundaries(n: int, segments: int) -> None:
    result = split("a" * n)
    assert (result.encoding, result.segments) == (Encoding.GSM7, segments)
    assert "".join(result.parts) == "a" * n
    if segments > 1:
        assert all(u <= 153 for u in result.units) and result.units[0] == 153


def test_extension_characters_count_two() -> None:
    assert length("€") == 2 and all(length(c) == 2 for c in GSM7_EXTENSION)
    assert split("€" * 80).segments == 1  # 160 septets
    assert split("a" + "€" * 80).segments == 2  # 161
    # 152 septets of 'a' then '€': the escape pair does not fit in part one's last
    # septet, so it opens part two whole.
    result = split("a" * 152 + "€" + "b" * 10)
    assert result.parts[0] == "a" * 152 and result.parts[1].startswith("€")
    assert result.units == (152, 12)


@pytest.mark.parametrize(("n", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_boundaries(n: int, segments: int) -> None:
    text = "ş" * n
    result = split(text)
    assert (result.encoding, result.segments) == (Encoding.UCS2, segments)
    assert "".join(result.parts) == text


def test_one_non_gsm_character_makes_the_whole_text_ucs2() -> None:
    assert split("a" * 100).segments == 1
    assert split("a" * 99 + "ş").segments == 2


def test_emoji_is_two_units_and_never_split() -> None:
    assert length("🙂") == 2
    result = split("a" * 66 + "🙂" + "a" * 10)
    assert result.parts[0] == "a" * 66 and result.parts[1].startswith("🙂")
    assert result.units == (66, 12)
    for part in result.parts:
        part.encode("utf-16-le")  # a lone surrogate would raise here


def test_truncate() -> None:
    assert truncate("kort", 1) == "kort"
    cut = truncate("ord " * 100, 2)
    assert cut.endswith("...") and split(cut).segments == 2 and split(cut).encoding is Encoding.GSM7
    assert len(cut) > 290  # as much as fits, not a crude cut
    cut = truncate("ş" * 200, 1)
    assert cut == "ş" * 69 + "…" and split(cut).segments == 1
    cut = truncate("ord " * 100, 1, suffix=" Melding nr. 42")
    assert cut.endswith("... Melding nr. 42") and split(cut).units == (160,)
    with pytest.raises(ValueError):
        truncate("x", 0)
    with pytest.raises(ValueError, match="alone"):
        truncate("x" * 200, 1, suffix="y" * 200)
