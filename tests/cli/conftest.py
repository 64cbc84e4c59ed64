"""The ``cashup`` process fixture of ``test_cli_serve.py``, shared by the other tests of real processes here."""

from tests.cli.test_cli_serve import cashup  # noqa: F401 - a fixture, found by name
