"""The layer order of README's "Layout" holds, and a wrong import breaks ``make check``.

``make check`` runs ``lint-imports`` with the contracts in pyproject.toml
(``[tool.importlinter]``). These tests run the same tool on a copy of the package with
one wrong import added, and check that it fails and names the import; and that no
import of our own modules hides inside a function (where it once dodged a circle).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "televikar_pbx"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# The only imports of our modules inside a function: for start-up time, not a circle
# (tests/unit/test_cli_startup.py). lint-imports checks them like any other.
LAZY_FOR_START_UP = {
    ("cli.py", "televikar_pbx.app"),  # aioari, aiohttp, panoramisk: `serve` only
    ("cli.py", "televikar_pbx.db.migrate"),  # alembic: `db upgrade` only
    ("cli.py", "televikar_pbx.delivery.service"),  # aiohttp, SMTP, SMS: `deliver` only
    ("admin/sla.py", "televikar_pbx.reports.pdf"),  # fpdf2, matplotlib
    ("reports/delivery.py", "televikar_pbx.reports.pdf"),
    ("admin/staffing.py", "televikar_pbx.reports.staffing"),  # numpy, scipy: the model
    ("admin/staffing.py", "televikar_pbx.reports.staffing_pdf"),  # fpdf2, matplotlib
}


def lint_imports(root: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}  # before the installed package's path
    # No timeout: waiting with one polls with time.sleep, which fails with EINVAL under
    # faketime (tests/setup/shifted-clock.sh); lint-imports reads files and always ends.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_layers_hold() -> None:
    done = lint_imports(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "added", "broken"),
    [
        # reports/ using admin/ (as rows.py did): a lower layer imports a higher one.
        (
            "reports/table.py",
            "from televikar_pbx.admin import calls as _calls\n",
            "televikar_pbx.reports.table -> televikar_pbx.admin.calls",
        ),
        # The same, dodged inside a function: still an import, still broken.
        (
            "db/calls_repo.py",
            "def _later() -> None:\n    from televikar_pbx.reports import sla_table  # noqa\n",
            "televikar_pbx.db.calls_repo -> televikar_pbx.reports.sla_table",
        ),
        # Two packages of one layer may not import each other.
        (
            "reports/table.py",
            "import televikar_pbx.calls.state\n",
            "televikar_pbx.reports.table -> televikar_pbx.calls.state",
        ),
        # The core reads no clock and no database library.
        (
            "domain/sla.py",
            "import sqlalchemy\n",
            "televikar_pbx.domain.sla -> sqlalchemy",
        ),
        (
            "domain/outcomes.py",
            "from televikar_pbx import clock\n",
            "televikar_pbx.domain.outcomes -> televikar_pbx.clock",
        ),
    ],
)
def test_a_wrong_import_fails_the_check(
    tmp_path: Path, module: str, added: str, broken: str
) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    copy = tmp_path / "src" / "televikar_pbx"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a", encoding="utf-8") as source:
        source.write("\n" + added)
    done = lint_imports(tmp_path, tmp_path / "src")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout and broken in done.stdout, done.stdout


def test_a_package_outside_the_layer_order_fails_the_check(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    copy = tmp_path / "src" / "televikar_pbx"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kb").mkdir()
    (copy / "kb" / "__init__.py").write_text('"""Not placed in the layers yet."""\n')
    done = lint_imports(tmp_path, tmp_path / "src")
    assert done.returncode == 1
    assert "televikar_pbx.kb" in done.stdout + done.stderr


def test_no_import_of_our_modules_inside_a_function() -> None:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "televikar_pbx"
                ):
                    found.add((path.relative_to(PACKAGE).as_posix(), node.module))
                elif isinstance(node, ast.Import):
                    found.update(
                        (path.relative_to(PACKAGE).as_posix(), alias.name)
                        for alias in node.names
                        if alias.name.startswith("televikar_pbx")
                    )
    assert found == LAZY_FOR_START_UP
