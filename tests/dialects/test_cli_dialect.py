"""``cashup paper-exchange --dialect`` as a real process, used by CCXT; and its refusals of bad options."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from cashup.venues.paper.dialects import repoint
from cashup.venues.paper.dialects.serve import free_port


def _environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith(("PAPER_", "DATABASE_"))}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cashup.cli", "paper-exchange", *args], cwd=cwd,
                          env=_environment(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def gate_process(tmp_path: Path) -> Iterator[int]:
    """A Gate.io dialect process with two keys from a keys file; stopped (terminate, then kill) at the end."""
    keys = [{"api_key": "cli-key-a", "secret": "cli-secret-a", "balances": {"USDT": "250.5"}},
            {"api_key": "cli-key-b", "secret": "cli-secret-b"}]
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    port = free_port()
    with (tmp_path / "out.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cashup.cli", "paper-exchange", "--dialect", "gateio", "--keys-file",
             "keys.json", "--port", str(port), "--no-tick"],
            cwd=tmp_path, env={**_environment(), "PAPER_INITIAL_BALANCES": "USDT=1000,BTC=2"}, stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "out.log").read_text()) from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def test_the_process_serves_each_key_its_own_balances(gate_process: int) -> None:
    balances = {}
    for key, secret in (("cli-key-a", "cli-secret-a"), ("cli-key-b", "cli-secret-b")):
        exchange = ccxt.gate({"apiKey": key, "secret": secret, "options": {"fetchMarkets": {"types": ["spot"]}}})
        repoint(exchange, f"http://127.0.0.1:{gate_process}")
        try:
            answer = await exchange.fetch_balance()
        finally:
            await exchange.close()
        balances[key] = {row["currency"]: Decimal(row["available"]) for row in answer["info"]}

    assert balances == {"cli-key-a": {"USDT": Decimal("250.5")},
                        "cli-key-b": {"USDT": Decimal("1000"), "BTC": Decimal("2")}}


def test_bad_dialect_options_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    unknown = _run(["--dialect", "kraken", "--api-key", "k", "--secret", "s"], tmp_path)
    half = _run(["--dialect", "binance", "--api-key", "k"], tmp_path)
    none = _run(["--dialect", "binance"], tmp_path)
    (tmp_path / "bad.json").write_text('[{"api_key": "k"}]')
    bad_file = _run(["--dialect", "gateio", "--keys-file", "bad.json"], tmp_path)
    bad_rate = _run(["--dialect", "gateio", "--api-key", "k", "--secret", "s", "--funding-rate", "lots"], tmp_path)

    assert unknown.returncode == 2 and "one of binance, gateio" in unknown.stderr
    assert half.returncode == 2 and "--api-key and --secret go together" in half.stderr
    assert none.returncode == 2 and "needs --api-key and --secret, or --keys-file" in none.stderr
    assert bad_file.returncode == 2 and "entry 0 needs a non-empty api_key and secret" in bad_file.stderr
    assert bad_rate.returncode == 2 and "--funding-rate: not a decimal number" in bad_rate.stderr
