"""Only the app and the command line import the composition root (``cashup.runtime``): every other module is
handed what it needs, so slices stay importable and testable on their own."""

from pathlib import Path

import cashup
from tests.unit.test_core_purity import imported_names, modules_under

PACKAGE_DIR = Path(cashup.__file__).parent
COMPOSITION_ROOT = "cashup.runtime"
MAY_IMPORT_IT = ("cashup.api", "cashup.cli", "cashup.intake.operations")
"""The app (its package builds the runtime and hands its parts to routes), the CLI, and the failure commands the
CLI runs (they start a runtime of their own)."""


def may_import_it(module: str) -> bool:
    return module == COMPOSITION_ROOT or any(module == name or module.startswith(name + ".") for name in MAY_IMPORT_IT)


def test_only_the_app_and_the_cli_import_the_runtime() -> None:
    modules = modules_under(PACKAGE_DIR, "cashup")
    assert {"cashup.runtime", "cashup.trading.router", "cashup.intake.service"} <= set(modules)

    importers = sorted(
        f"{module} (line {line})"
        for module, path in modules.items() if not may_import_it(module)
        for line, name in imported_names(module, path) if name == COMPOSITION_ROOT
    )

    assert importers == []
