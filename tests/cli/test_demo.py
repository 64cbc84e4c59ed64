"""``tools/demo.py`` in a subprocess: the embedded service, the scripted session and its closing table.

The process runs in a temporary working directory with an environment stripped of the service's settings;
the embedded service listens on no socket (it is reached through ASGI). Every wait is bounded.
"""

import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from cashup.config import Settings

SECONDS = 25
BOUND = SECONDS + 45  # setup, cancels and the report on top of the session's own time
SETTING_NAMES = {name.lower() for name in Settings.model_fields}


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.lower() not in SETTING_NAMES}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", TERM="dumb", COLUMNS="220")
    return env


DEMO = Path(__file__).resolve().parents[2] / "tools" / "demo.py"


def run_demo(*args: str, cwd: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(DEMO), *args], cwd=cwd, env=clean_env(),
                            capture_output=True, text=True, timeout=timeout, check=False)
    return result, time.monotonic() - started


def table_rows(output: str) -> dict[str, list[str]]:
    """The closing table's rows by their first cell (``TWAP``, ``iceberg``, ...), cells stripped."""
    rows = {}
    for line in output.splitlines():
        if line[:1] in ("│", "┃"):
            cells = [cell.strip() for cell in re.split("[│┃]", line.strip().strip("│┃"))]
            rows.setdefault(cells[0], cells)  # the header's first line is the one naming the columns
    return rows


def test_embedded_demo_places_four_algorithms_and_ends_with_the_table(tmp_path: Path) -> None:
    result, elapsed = run_demo("--seconds", str(SECONDS), cwd=tmp_path, timeout=BOUND + 30)
    described = (f"exit code {result.returncode}\n--- stdout ---\n{result.stdout}\n"
                 f"--- stderr ---\n{result.stderr[-4000:]}")

    assert result.returncode == 0, described
    assert elapsed < BOUND, f"took {elapsed:.1f} s\n{described}"
    assert "CashUp demo: orders" in result.stdout, described
    rows = table_rows(result.stdout)
    header = rows["order"]
    assert header[:3] == ["order", "type", "status"], described
    types = {label: cells[1] for label, cells in rows.items()}
    assert (types["TWAP"], types["iceberg"], types["bracket"], types["trailing stop"]) == (
        "twap", "iceberg", "bracket", "trailing_stop"), described

    twap = dict(zip(["order", "type", "status", "filled", "average", "vwap", "slippage", "fills", "fees"],
                    rows["TWAP"], strict=True))
    assert re.fullmatch(r"-?\d+\.\d{2}", twap["slippage"]), described
    assert Decimal(twap["vwap"]) > 0 and Decimal(twap["average"]) > 0, described
    filled, quantity = (Decimal(part) for part in twap["filled"].split(" / "))
    assert quantity == Decimal("0.05") and 0 < filled <= quantity, described
    assert int(twap["fills"]) >= 1, described

    fees = r"(\S+ [A-Z]+(?: \+ \S+ [A-Z]+)*|0)"  # per currency: "0.0003 BTC + 13.33 USDT"
    summary = re.search(rf"^trades: (\d+)\s+volume (\S+)\s+notional (\S+)\s+fees {fees}\s+realized PnL (\S+)$",
                        result.stdout, re.MULTILINE)
    assert summary is not None, described
    assert int(summary.group(1)) >= int(twap["fills"]), described
    assert re.search(r"^(time ran out|all orders done) after [\d.]+ s", result.stdout, re.MULTILINE), described
    assert not list(tmp_path.iterdir()), "the embedded demo leaves nothing in the working directory"


def test_demo_refuses_a_service_that_is_not_on_this_machine(tmp_path: Path) -> None:
    result, _ = run_demo("--url", "http://example.com:8002", "--token", "x", cwd=tmp_path, timeout=60)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "--url must be a service on this machine" in result.stderr
