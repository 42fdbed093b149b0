"""Kroner as the operator types them and as Norwegians read them; øre inside.

    typed     '1500'  '1500,50'  '1500.5'  '1 500,50'  (at most 2 decimals, not negative)
    shown     '1 500,50' (tables: space between thousands, decimal comma)
    for CSV   '1500,50'  (no grouping: Norwegian Excel reads a plain space as text)

Parsing is string arithmetic on the digits, never a float: ``'0,29'`` is exactly 29 øre.
"""

from __future__ import annotations

import re

# ASCII digits, optionally grouped by thousands with a space (as tables print them),
# then optionally a decimal comma or point and its decimals (at most 2, checked after).
_KRONER = re.compile(
    r"(?P<whole>[0-9]+|[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+)(?:[.,](?P<frac>[0-9]+))?"
)


def parse_kroner(text: str) -> int:
    """Whole øre from kroner: ``'1500,50'`` -> 150050. ValueError for the operator."""
    value = text.strip()
    if value.startswith("-"):
        raise ValueError("must not be negative")
    match = _KRONER.fullmatch(value)
    if match is None:
        raise ValueError("not an amount in kroner (e.g. 1500 or 1500,50)")
    frac = match["frac"] or ""
    if len(frac) > 2:
        raise ValueError("at most 2 decimals (whole øre)")
    whole = re.sub(r"[^0-9]", "", match["whole"]).lstrip("0") or "0"
    if len(whole) > 15:
        raise ValueError("too large an amount")
    return int(whole) * 100 + int(frac.ljust(2, "0"))


def format_kroner(ore: int, *, grouped: bool = True) -> str:
    """``123450`` -> ``'1 234,50'`` (``grouped=False``: ``'1234,50'``)."""
    sign = "-" if ore < 0 else ""
    whole, rest = divmod(abs(ore), 100)
    digits = f"{whole:,}".replace(",", " ") if grouped else str(whole)
    return f"{sign}{digits},{rest:02}"
