"""PostgreSQL made unreachable for the service: every request 503 within 5 s, readiness 503 within 2 s,
and the service recovers without a restart once the database is back (SPEC §4 Errors, §13).

The real server stays up for everyone else: the service reaches it through a TCP proxy on 127.0.0.1 that
the test stops (closing every connection it carried and refusing new ones) and starts again.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from cashup.api.app import create_app
from cashup.config import Settings
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy
from tests.api.test_books_invariants import plain_tracebacks  # noqa: F401 - a fixture, as production logs
from tests.conftest import POSTGRES_URL, require_server
from tests.integration.databases import recreate_schema

pytestmark = pytest.mark.postgres


class TcpProxy:
    """Forward 127.0.0.1:<port> to a server; ``stop`` cuts every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)


@pytest.fixture
def migrated_postgres() -> str:
    require_server(POSTGRES_URL)
    recreate_schema(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
async def proxy(migrated_postgres: str) -> AsyncIterator[TcpProxy]:
    url = make_url(migrated_postgres)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    with contextlib.suppress(Exception):
        await proxy.stop()


async def timed(call: Callable[[], object]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call()  # type: ignore[misc]
    return response, time.monotonic() - started


@pytest.mark.usefixtures("plain_tracebacks")  # the test default renders each traceback with its locals, for seconds
async def test_database_outage_answers_503_fast_and_recovers_without_restart(
    proxy: TcpProxy, migrated_postgres: str, settings: Settings, tmp_path: Path, token_for: Callable[..., str]
) -> None:
    through_proxy = make_url(migrated_postgres).set(host="127.0.0.1", port=proxy.port)
    service_settings = settings.model_copy(update={
        "database_url": through_proxy.render_as_string(hide_password=False), "state_dir": tmp_path / "state"})
    runtime = Runtime(service_settings)
    await runtime.start()
    headers = {"Authorization": f"Bearer {token_for()}"}
    try:
        app = create_app(service_settings, runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers=headers) as client:
            created = await client.post(f"{API}/orders", json=limit_buy("1000", client_order_id="before"))
            assert created.status_code == 201, created.text
            order_id = created.json()["id"]

            await proxy.stop()
            calls = {
                "list": lambda: client.get(f"{API}/orders"),
                "get": lambda: client.get(f"{API}/orders/{order_id}"),
                "create": lambda: client.post(f"{API}/orders", json=limit_buy("1000", client_order_id="during")),
                "cancel": lambda: client.delete(f"{API}/orders/{order_id}"),
                "balances": lambda: client.get(f"{API}/balances"),
            }
            for name, call in calls.items():
                response, seconds = await timed(call)
                assert response.status_code == 503, (name, response.text)
                assert seconds < 5, (name, seconds)
                assert response.headers["Retry-After"] == "2"
                assert response.json()["error"] == "ServiceUnavailable"
                assert response.json()["dependency"] == "database"
            ready, seconds = await timed(lambda: client.get("/health/ready"))
            assert (ready.status_code, ready.json()["checks"]["database"][:4]) == (503, "down")
            assert seconds < 2

            await proxy.start()
            recovered = await client.post(f"{API}/orders", json=limit_buy("1000", client_order_id="after"))
            assert recovered.status_code == 201, recovered.text
            assert (await client.get("/health/ready")).status_code == 200
            listed = (await client.get(f"{API}/orders")).json()["items"]
            assert sorted(item["client_order_id"] for item in listed) == ["after", "before"]  # "during": not written
    finally:
        await runtime.stop()
