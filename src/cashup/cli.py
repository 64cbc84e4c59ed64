"""The ``cashup`` command line."""

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from cashup.config import Settings, get_settings
from cashup.core.enums import Role

if TYPE_CHECKING:
    from uuid import UUID

app = typer.Typer(help="CashUp Order Service", no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)
STOP_GRACE_SECONDS = 10.0


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
def intake(
    schema: Annotated[bool, typer.Option("--schema", help="Print the order request's JSON Schema and exit")] = False,
) -> None:
    """Consume order requests from BROKER_URL (RabbitMQ by default) until stopped (SIGTERM or Ctrl-C)."""
    import asyncio
    import json
    import signal

    from cashup.intake.schemas import json_schema

    if schema:
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
        return
    from cashup.api.app import placement_writer
    from cashup.api.auth import TokenVerifier
    from cashup.db.migrate import upgrade_to_head
    from cashup.intake.service import IntakeService
    from cashup.logging import configure_logging
    from cashup.runtime import Runtime

    settings = get_settings()
    configure_logging(settings)
    secret, _ = _secret(settings, read_state_file=True)
    if settings.migrate_on_start:
        upgrade_to_head(settings.database_url)
    if settings.intake_metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.intake_metrics_port, addr="127.0.0.1")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        runtime = Runtime(settings, run_worker=False)
        await runtime.start()
        placements = placement_writer(runtime)
        tokens = TokenVerifier(secret, settings.jwt_algorithm, issuer=settings.jwt_issuer,
                               audience=settings.jwt_audience)
        service = IntakeService(runtime, placements, tokens)
        try:
            await service.start()
            print(f"intake consuming {settings.intake_queue} ({service.consumer.kind})", flush=True)
            await stop.wait()
        finally:
            await service.stop()  # every message in hand is acknowledged (or given back) by now
            await placements.stop()
            stopping = asyncio.create_task(runtime.stop())
            done, _ = await asyncio.wait({stopping}, timeout=STOP_GRACE_SECONDS)
            if not done:
                # Nothing is left in hand; what hangs is a database connection (seen after an outage). Exit.
                console.print(f"[yellow]note:[/] the runtime did not stop within {STOP_GRACE_SECONDS} s; exiting")
                sys.stdout.flush()
                os._exit(0)

    asyncio.run(run())


failures_app = typer.Typer(help="The failure table: failed order requests and failed work", no_args_is_help=True)
app.add_typer(failures_app, name="failures")
FailureIds = Annotated[list[str] | None, typer.Argument(help="failure ids", show_default=False)]
EveryOpen = Annotated[bool, typer.Option("--all", help="every failure that is failed or pending")]
SourceOption = Annotated[str | None, typer.Option(help="intake (order requests) or engine (work)")]


def _failure_ids(ids: list[str] | None, every: bool) -> list["UUID"]:
    from uuid import UUID

    if every == bool(ids):
        _fail("give failure ids or --all (not both)")
    try:
        return [UUID(value) for value in ids or []]
    except ValueError:
        _fail("a failure id is a UUID, as `cashup failures list` shows")
        raise


def _source(source: str | None) -> str | None:
    if source not in (None, "intake", "engine"):
        _fail("--source: intake or engine")
    return source


def _with_progress(title: str, work: "Callable[..., Any]", **arguments: Any) -> None:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    outcomes: dict[str, int] = {}
    with Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(title, total=None)

        def started(total: int) -> None:
            bar.update(task, total=total)

        def progress(failure_id: "UUID", outcome: str) -> None:
            outcomes[outcome.split(":")[0]] = outcomes.get(outcome.split(":")[0], 0) + 1
            bar.console.print(f"{failure_id}  {outcome}")
            bar.advance(task)

        asyncio.run(work(started=started, progress=progress, **arguments))
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "nothing to do"
    console.print(f"[bold]{title}:[/] {summary}")


@failures_app.command("list")
def failures_list(
    status: Annotated[str | None, typer.Option(help="pending, processing, success, failed or discarded")] = None,
    source: SourceOption = None,
    day: Annotated[str | None, typer.Option("--date", help="recorded on this UTC day (YYYY-MM-DD)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List failures, newest first."""
    import asyncio
    from datetime import date

    from rich.table import Table

    from cashup.intake.operations import find_failures

    try:
        on = date.fromisoformat(day) if day else None
    except ValueError:
        _fail("--date: YYYY-MM-DD")
        raise
    rows = asyncio.run(find_failures(get_settings(), status=status, source=_source(source), day=on, limit=limit))
    table = Table("id", "kind", "status", "tries", "next retry", "created", "error")
    for row in rows:
        table.add_row(str(row.id), row.kind, row.status, str(row.retry_count),
                      row.next_retry_at.isoformat(timespec="seconds") if row.next_retry_at else "",
                      row.created_at.isoformat(timespec="seconds"), row.error[:80])
    out = Console()
    (out if out.is_terminal else Console(width=200)).print(table)


@failures_app.command("retry")
def failures_retry(
    ids: FailureIds = None,
    every: EveryOpen = False,
    source: SourceOption = None,
    message: Annotated[str | None, typer.Option(help="JSON file: the corrected order request (one id only)")] = None,
    authorization: Annotated[str | None, typer.Option(
        envvar="CASHUP_SENDER_AUTHORIZATION", help="`Bearer <token>` of the sender, for an unauthenticated message")
    ] = None,
) -> None:
    """Retry failures now: an order request is placed again through the dedupe; failed work is queued again."""
    import json

    from cashup.intake.operations import retry_failures

    failure_ids = _failure_ids(ids, every)
    corrected = None
    if message is not None:
        if every or len(failure_ids) != 1:
            _fail("--message goes with exactly one failure id")
        try:
            with open(message) as file:
                corrected = json.load(file)
        except (OSError, ValueError) as error:
            _fail(f"--message: {error}")
    settings = get_settings()
    secret, _ = _secret(settings, read_state_file=True)
    _with_progress("retry", retry_failures, settings=settings, ids=failure_ids, every=every, source=_source(source),
                   message=corrected, authorization=authorization, secret=secret)


@failures_app.command("discard")
def failures_discard(ids: FailureIds = None, every: EveryOpen = False, source: SourceOption = None) -> None:
    """Set failures aside for good: kept, never retried on a schedule."""
    from cashup.intake.operations import discard_failures

    failure_ids = _failure_ids(ids, every)
    _with_progress("discard", discard_failures, settings=get_settings(), ids=failure_ids, every=every,
                   source=_source(source))


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
    funding_rate: Annotated[str | None, typer.Option(
        help="With --dialect gateio: the perpetuals' funding rate per interval (default 0.0001)")] = None,
    funding_interval: Annotated[int | None, typer.Option(
        min=1, help="With --dialect gateio: seconds between funding settlements (default 28800)")] = None,
) -> None:
    """Run the paper exchange as its own process, shared by services started with PAPER_EXCHANGE_URL."""
    if dialect is not None:
        _serve_dialect(dialect, port, api_key, secret, keys_file, rate_limit, tick, funding_rate, funding_interval)
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
                   keys_file: str | None, rate_limit: int | None, tick: bool, funding_rate: str | None = None,
                   funding_interval: int | None = None) -> None:
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
    if funding_rate is not None or funding_interval is not None:
        from datetime import timedelta
        from decimal import Decimal, InvalidOperation

        try:
            rate = Decimal(funding_rate) if funding_rate is not None else None
        except InvalidOperation:
            _fail(f"--funding-rate: not a decimal number: {funding_rate!r}")
            raise
        if rate is not None and not rate.is_finite():
            _fail(f"--funding-rate: not a finite number: {funding_rate!r}")
        venue.set_funding(rate, timedelta(seconds=funding_interval) if funding_interval is not None else None)
    print(f"paper exchange speaking {dialect} on http://127.0.0.1:{port}  ({len(keys)} API keys)", flush=True)
    run_dialect_server(dialect, venue, port=port, tick=tick,
                       rate_limit=RateLimit(rate_limit) if rate_limit is not None else None)


if __name__ == "__main__":
    app()
