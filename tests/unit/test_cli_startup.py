"""Every CLI command (``status`` in a terminal, ``agents login`` from a script) starts
without loading what only reports need: the PDF and chart libraries take a second."""

from __future__ import annotations

import subprocess
import sys


def test_the_command_line_loads_no_pdf_or_chart_library() -> None:
    code = (
        "import sys, televikar_pbx.cli as cli; cli.build_parser(); "
        "print(sorted(m for m in ('fpdf', 'matplotlib', 'numpy', 'scipy', 'PIL') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
