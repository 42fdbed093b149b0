"""How an SMS text is encoded and split into segments (3GPP TS 23.038 / 23.040).

A text made only of the GSM 7-bit default alphabet (which has æøå ÆØÅ) is sent in
septets: 160 in one SMS; a longer text is a concatenated SMS whose parts carry a User
Data Header and hold 153 septets each. Characters of the extension table (``€ [ ] { }
\\ ^ ~ |`` and form feed) take two septets (escape + character), and an escape pair is
never split between two parts. Any other character (an emoji, "ä" is fine but "ş" is
not) makes the whole text UCS-2: 70 UTF-16 units in one SMS, 67 per part, and a
surrogate pair (an emoji) is never split.

Gateways split for us, but we must know where: to count segments (they are billed), to
keep a text within a limit (:func:`truncate`), and to test that what the phone shows is
what we meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
_ESC = "\x1b"
_BASIC = frozenset(GSM7_BASIC) - {_ESC}  # the escape itself is not a character
_EXT = frozenset(GSM7_EXTENSION)

SINGLE = {"gsm7": 160, "ucs2": 70}
PART = {"gsm7": 153, "ucs2": 67}
assert len(GSM7_BASIC) == 128


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SmsSplit:
    """``parts``: the texts of the segments in order (one for a single SMS);
    ``units``: septets (GSM-7) or UTF-16 units (UCS-2) in each."""

    encoding: Encoding
    parts: tuple[str, ...]
    units: tuple[int, ...]

    @property
    def segments(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    return all(c in _BASIC or c in _EXT for c in text)


def encoding_for(text: str) -> Encoding:
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


def _cost(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in _EXT else 1
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair in UTF-16


def length(text: str) -> int:
    """Septets (GSM-7) or UTF-16 units (UCS-2) of ``text`` in its encoding."""
    encoding = encoding_for(text)
    return sum(_cost(c, encoding) for c in text)


def split(text: str) -> SmsSplit:
    """The segments ``text`` is sent as. An empty text is one empty SMS."""
    encoding = encoding_for(text)
    costs = [_cost(c, encoding) for c in text]
    if sum(costs) <= SINGLE[encoding.value]:
        return SmsSplit(encoding, (text,), (sum(costs),))
    limit = PART[encoding.value]
    parts: list[str] = []
    units: list[int] = []
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if used + cost > limit:  # the whole character (pair) goes to the next part
            parts.append(text[start:i])
            units.append(used)
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    units.append(used)
    return SmsSplit(encoding, tuple(parts), tuple(units))


def truncate(text: str, max_segments: int, ellipsis: str = "…", suffix: str = "") -> str:
    """``text + suffix`` if it fits in ``max_segments``, else the longest beginning of
    ``text`` that fits with ``ellipsis`` and ``suffix`` after it. "…" is not GSM-7: for
    a GSM-7 text it becomes "..." rather than make the whole SMS UCS-2."""
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, got {max_segments}")
    if split(text + suffix).segments <= max_segments:
        return text + suffix
    if is_gsm7(text + suffix) and not is_gsm7(ellipsis):
        ellipsis = "..."
    if split(ellipsis + suffix).segments > max_segments:
        raise ValueError(f"{suffix!r} alone does not fit in {max_segments} segments")
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits, by bisection
        mid = (low + high + 1) // 2
        if split(text[:mid].rstrip() + ellipsis + suffix).segments <= max_segments:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ellipsis + suffix
