"""The ``cashup`` command line."""

import sys
from typing import Annotated

import typer
from rich.console import Console

from cashup.config import Settings, get_settings
from cashup.core.enums import Role

app = typer.Typer(help="CashUp Order Service", no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _secret(settings: Settings, *, read_state_file: bool = False) -> tuple[str, bool]:
    from cashup.api.secrets import InsecureConfiguration, resolve_jwt_secret

    try:
        secret, state_file = resolve_jwt_secret(settings, read_state_file=read_state_file)
    except InsecureConfiguration as error:
        _fail(str(error))
        raise
    return secret, state_file is not None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT or 8002)")] = None,
    worker: Annotated[bool | None, typer.Option("--worker/--no-worker", help="Run the embedded worker")] = None,
) -> None:
    """Run the API (with the paper exchange and, by default, an embedded worker)."""
    import uvicorn

    from cashup.api.app import create_app
    from cashup.api.auth import issue_token
    from cashup.db.migrate import upgrade_to_head
    from cashup.logging import configure_logging

    settings = get_settings()
    updates = {key: value for key, value in {"host": host, "port": port, "embedded_worker": worker}.items()
               if value is not None}
    settings = settings.model_copy(update=updates)
    configure_logging(settings)
    secret, local_secret = _secret(settings)
    if settings.migrate_on_start:
        upgrade_to_head(settings.database_url)
    app = create_app(settings)
    if local_secret:
        token = issue_token(secret, "trader", Role.TRADER, algorithm=settings.jwt_algorithm,
                            minutes=settings.jwt_access_token_expire_minutes,
                            issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        base = f"http://{settings.host}:{settings.port}"
        code = app.state.sign_in_codes.issue(token)
        print(
            f"\nCashUp Order Service on {base}  (docs: {base}/docs)\n"
            f"The desk, signed in as 'trader' (a one-time link, valid 15 minutes):\n\n  {base}/#sign-in={code}\n\n"
            f"A trader token for user 'trader' (signed with the local secret in {settings.state_dir}/jwt_secret):\n\n"
            f"  export TOKEN={token}\n\n"
            f"  curl -s -X POST {base}/api/v1/orders -H \"Authorization: Bearer $TOKEN\" "
            "-H 'Content-Type: application/json' \\\n"
            "    -d '{\"symbol\": \"BTC/USDT\", \"side\": \"buy\", \"order_type\": \"market\", "
            "\"quantity\": \"0.01\"}'\n",
            flush=True,
        )
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                access_log=False, timeout_graceful_shutdown=10)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Work steps run at once (default WORKER_CONCURRENCY)")] = None,
) -> None:
    """Run a standalone worker: claim due work from the database until stopped (SIGTERM or Ctrl-C)."""
    import asyncio
    import signal

    from cashup.db.migrate import upgrade_to_head
    from cashup.logging import configure_logging
    from cashup.runtime import Runtime

    settings = get_settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    configure_logging(settings)
    if settings.migrate_on_start:
        upgrade_to_head(settings.database_url)
    if settings.paper_exchange_url is None:
        console.print("[yellow]note:[/] PAPER_EXCHANGE_URL is not set; this worker runs its own embedded "
                      "paper exchange")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        runtime = Runtime(settings, run_worker=True)
        await runtime.start()
        try:
            await stop.wait()
        finally:
            await runtime.stop()

    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Bring the database schema of DATABASE_URL up to date."""
    from cashup.db.migrate import upgrade_to_head

    settings = get_settings()
    upgrade_to_head(settings.database_url)
    console.print(f"schema up to date on {settings.database_url.split('@')[-1]}")


@app.command()
def token(
    user: Annotated[str, typer.Option(help="User id (the token's subject)")] = "trader",
    role: Annotated[Role, typer.Option(help="Role")] = Role.TRADER,
    minutes: Annotated[int | None, typer.Option(help="Lifetime in minutes")] = None,
) -> None:
    """Print a bearer token signed with the configured secret (or the local one of the embedded default)."""
    from cashup.api.auth import issue_token

    settings = get_settings()
    secret, _ = _secret(settings, read_state_file=True)
    lifetime = minutes or settings.jwt_access_token_expire_minutes
    sys.stdout.write(issue_token(secret, user, role, algorithm=settings.jwt_algorithm, minutes=lifetime,
                                 issuer=settings.jwt_issuer, audience=settings.jwt_audience) + "\n")


@app.command("paper-exchange")
def paper_exchange(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default PAPER_EXCHANGE_PORT or 8003)")] = None,
    journal: Annotated[str | None, typer.Option(
        help="Journal of the exchange's state (default PAPER_JOURNAL_PATH or <STATE_DIR>/paper-exchange.db)")] = None,
    tick: Annotated[bool, typer.Option("--tick/--no-tick", help="Move the market every PAPER_TICK_SECONDS")] = True,
    dialect: Annotated[str | None, typer.Option(
        help="Speak a venue's REST API instead: binance (spot) or gateio (spot and USDT futures); state in memory")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="PAPER_DIALECT_API_KEY",
                                                help="With --dialect: an API key it accepts")] = None,
    secret: Annotated[str | None, typer.Option(envvar="PAPER_DIALECT_SECRET",
                                               help="With --dialect: the secret of --api-key")] = None,
    keys_file: Annotated[str | None, typer.Option(
        help='With --dialect: JSON list of {"api_key", "secret", "balances"} accounts')] = None,
    rate_limit: Annotated[int | None, typer.Option(
        min=1, help="With --dialect: requests per second per API key before the venue's 429")] = None,
) -> None:
    """Run the paper exchange as its own process, shared by services started with PAPER_EXCHANGE_URL."""
    if dialect is not None:
        _serve_dialect(dialect, port, api_key, secret, keys_file, rate_limit, tick)
        return
    import uvicorn

    from cashup.logging import configure_logging
    from cashup.venues.paper.exchange import PaperExchange
    from cashup.venues.paper.journal import JournalLocked, JournalMismatch
    from cashup.venues.paper.server import create_app
    from cashup.venues.registry import paper_exchange_config

    settings = get_settings()
    configure_logging(settings)
    path = journal or settings.paper_journal_path or str(settings.state_dir / "paper-exchange.db")
    port = settings.paper_exchange_port if port is None else port
    try:  # replay the journal before serving: a locked or foreign journal is a clear error
        exchange = PaperExchange(paper_exchange_config(settings, journal_path=path))
    except (JournalLocked, JournalMismatch) as error:
        _fail(str(error))
        raise
    print(f"paper exchange on http://127.0.0.1:{port}  (journal: {path}, report head {exchange.report_head})",
          flush=True)
    try:
        uvicorn.run(create_app(exchange=exchange, tick=tick), host="127.0.0.1", port=port, log_config=None,
                    access_log=False, timeout_graceful_shutdown=2)
    finally:
        exchange.close()


def _serve_dialect(dialect: str, port: int | None, api_key: str | None, secret: str | None,
                   keys_file: str | None, rate_limit: int | None, tick: bool) -> None:
    from cashup.logging import configure_logging
    from cashup.venues.paper.dialects import (
        DIALECTS,
        ApiKey,
        RateLimit,
        build_venue,
        load_keys_file,
        run_dialect_server,
    )
    from cashup.venues.registry import paper_exchange_config

    settings = get_settings()
    configure_logging(settings)
    if dialect not in DIALECTS:
        _fail(f"--dialect: one of {', '.join(DIALECTS)}, not {dialect!r}")
    if (api_key is None) != (secret is None):
        _fail("--api-key and --secret go together")
    keys = [ApiKey(api_key, secret)] if api_key is not None and secret is not None else []
    if keys_file is not None:
        try:
            keys += load_keys_file(keys_file)
        except (OSError, ValueError) as error:
            _fail(f"--keys-file: {error}")
    if not keys:
        _fail("--dialect needs --api-key and --secret, or --keys-file")
    port = settings.paper_exchange_port if port is None else port
    venue = build_venue(dialect, paper_exchange_config(settings), keys, settings.initial_paper_balances)
    print(f"paper exchange speaking {dialect} on http://127.0.0.1:{port}  ({len(keys)} API keys)", flush=True)
    run_dialect_server(dialect, venue, port=port, tick=tick,
                       rate_limit=RateLimit(rate_limit) if rate_limit is not None else None)


if __name__ == "__main__":
    app()
