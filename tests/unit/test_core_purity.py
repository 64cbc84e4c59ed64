"""The pure core imports nothing but the standard library and itself: no database, web, broker or I/O library."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cashup.core

CORE_DIR = Path(cashup.core.__file__).parent
CORE_PACKAGE = "cashup.core"

# Standard-library modules that mean network, event loop, database or processes: not for the core either.
STDLIB_IO_MODULES = frozenset(
    {
        "asyncio",
        "socket",
        "ssl",
        "selectors",
        "sqlite3",
        "dbm",
        "http",
        "urllib",
        "ftplib",
        "smtplib",
        "subprocess",
        "multiprocessing",
    }
)
# What the shells use; named so a failure message is obvious even if the stdlib list changed.
KNOWN_FOREIGN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "pydantic",
    "ccxt",
    "httpx",
    "structlog",
    "faststream",
    "redis",
    "alembic",
    "uvicorn",
    "asyncpg",
    "aiosqlite",
    "aiomysql",
    "pymysql",
    "jwt",
    "prometheus_client",
)


def modules_under(directory: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (in ``directory``) by dotted name, found on disk so new modules are covered as
    they appear."""
    modules = {}
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(directory).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def imported_names(module: str, path: Path) -> list[tuple[int, str]]:
    """The absolute names a module imports anywhere in its body (functions and ``TYPE_CHECKING`` blocks included)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
            else:
                names.append((node.lineno, node.module or ""))
    return names


def is_allowed(name: str) -> bool:
    if name == CORE_PACKAGE or name.startswith(CORE_PACKAGE + "."):
        return True
    top = name.partition(".")[0]
    return top in sys.stdlib_module_names and top not in STDLIB_IO_MODULES


MODULES = modules_under(CORE_DIR, CORE_PACKAGE)


def test_core_modules_are_found() -> None:
    assert {"cashup.core", "cashup.core.money", "cashup.core.orders", "cashup.core.orders.order"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_core_module_imports_only_stdlib_and_core(module: str) -> None:
    foreign = [f"line {line}: {name}" for line, name in imported_names(module, MODULES[module]) if not is_allowed(name)]

    assert foreign == [], f"{module} imports outside the standard library and {CORE_PACKAGE}: {foreign}"


def test_importing_the_whole_core_loads_no_foreign_library() -> None:
    """Catch what a static walk cannot: imports made by ``cashup/__init__`` or by dynamic means."""
    script = (
        "import importlib, sys\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(sorted({name.partition('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(result.stdout.split())

    foreign = {
        name for name in loaded if name not in sys.stdlib_module_names and name != "cashup" and not name.startswith("_")
    }
    assert foreign == set()
    assert loaded.isdisjoint(KNOWN_FOREIGN)
    assert not {name for name in loaded if name.startswith("aio")}
    assert "asyncio" not in loaded


def test_the_walk_flags_foreign_relative_and_io_imports(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text(
        "import decimal\n"
        "from cashup.core.money import ZERO\n"
        "from .. import enums\n"
        "from ...db import models\n"
        "import asyncio\n"
        "def later():\n"
        "    import sqlalchemy.orm\n",
        encoding="utf-8",
    )

    flagged = [name for _, name in imported_names("cashup.core.orders.sample", module) if not is_allowed(name)]

    assert flagged == ["cashup.db", "asyncio", "sqlalchemy.orm"]
