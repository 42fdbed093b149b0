"""Third-party modules we import compile from source under the suite's warning filters.

pip installs some of them without compiling bytecode (aioari has no wheel), and this
machine sets PYTHONDONTWRITEBYTECODE=1, so on a fresh machine their source is compiled
inside pytest, where ``filterwarnings = error`` turns a compile warning into a
SyntaxError. Compiling every file here does not depend on any cache (issue 11).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PACKAGES = ["aioari", "aioswagger11", "panoramisk", "structlog", "fpdf", "aiosmtpd"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_source_compiles_under_the_suites_warning_filters(package: str) -> None:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} not installed"
    files = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.py"))
    assert files
    for path in files:
        compile(path.read_bytes(), str(path), "exec")
