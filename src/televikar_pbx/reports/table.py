"""Plain-text tables with aligned columns, for a terminal or an e-mail body."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """Aligned columns; those numbered in ``right`` (from 0) flush right, for amounts."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )
