"""CSV that Excel with Norwegian settings opens as it should, and that cannot run formulas.

- Delimiter ``;``: Norwegian Excel's list separator (``,`` is its decimal separator),
  so a double-click opens the file in columns.
- Numbers with a decimal comma (``12,5``, written so by the caller), which Norwegian
  Excel reads as numbers.
- UTF-8 with a byte order mark, the only way Excel detects UTF-8 (æ, ø, å) in a CSV.
- CRLF line ends (RFC 4180); cells with ``;``, ``"`` or a line break are quoted.
- A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR gets a ``'`` in front
  (OWASP's advice against CSV injection): a caller name like ``=HYPERLINK(...)`` shows as
  text instead of running. Every cell is checked, ours too: the rule has no exceptions to
  get wrong. The price is a visible ``'`` before a caller number such as ``+4791234567``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

DELIMITER = ";"
ENCODING = "utf-8-sig"  # UTF-8, written with a BOM
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """``cell`` as text a spreadsheet will not take for a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def encode(headers: Sequence[str], rows: Iterable[Sequence[str | None]]) -> bytes:
    """The whole file: a header line, then one line per row (None is an empty cell)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
    return buffer.getvalue().encode(ENCODING)
