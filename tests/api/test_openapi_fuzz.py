"""Schemathesis over the whole OpenAPI document: whatever it sends, the service never answers 5xx."""

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from cashup.api.app import create_app
from cashup.api.auth import issue_token
from cashup.config import Settings
from cashup.core.enums import Role
from tests.conftest import JWT_SECRET


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("fuzz")
    database = directory / "cashup.db"
    database.write_bytes(sqlite_template.read_bytes())
    app_settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}", debug=True, jwt_secret_key=JWT_SECRET,
        state_dir=directory / "state", order_action_wait_seconds=0.2, _env_file=None,
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")
HEADERS = {
    role: {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'fuzzer', role)}"} for role in (Role.TRADER, Role.ADMIN)
}


FUZZ_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _call(case: schemathesis.Case, role: Role) -> None:
    response = case.call(headers=HEADERS[role], timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_trader_request_gets_a_server_error(case: schemathesis.Case) -> None:
    _call(case, Role.TRADER)


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_admin_request_gets_a_server_error(case: schemathesis.Case) -> None:
    _call(case, Role.ADMIN)
