"""``cashup failures``: list, retry (with a corrected message) and discard from the command line."""

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.intake.harness import intake_env, request

BROKEN = {"request_id": "cli-1", "symbol": "BTC/USDT"}
FIXED = {"request_id": "cli-1", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01",
         "price": "1000"}


def cashup(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cashup.cli", "failures", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_failures_are_listed_retried_with_a_fix_and_discarded_from_the_command_line(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "cashup.db"
    shutil.copy(sqlite_template, database)
    _, headers = request("x", "alice")
    with sqlite3.connect(database) as connection:  # two failed order requests, as the consumer records them
        for number, message in enumerate([BROKEN, "not json"]):
            connection.execute(
                "INSERT INTO failures (id, kind, order_id, payload, error, retry_count, status, created_at, "
                "updated_at, next_retry_at) VALUES (?, ?, NULL, ?, ?, 0, 'failed', datetime('now'), "
                "datetime('now'), NULL)",
                (f"{number:032x}", "intake.invalid" if number == 0 else "intake.undecodable",
                 json.dumps({"message": message, "headers": {}, "reason": "invalid",
                             "principal": {"user_id": "alice", "role": "strategy"}}), "side: Field required"))
    env = intake_env(tmp_path, f"sqlite+aiosqlite:///{database}", "amqp://127.0.0.1:1/", "unused")
    fix = tmp_path / "fixed.json"
    fix.write_text(json.dumps(FIXED))
    first = f"{0:032x}"
    first_id = f"{first[:8]}-{first[8:12]}-{first[12:16]}-{first[16:20]}-{first[20:]}"

    listed = cashup(env, tmp_path, "list", "--source", "intake", "--status", "failed")
    assert "intake.invalid" in listed and "intake.undecodable" in listed
    retried = cashup(env, tmp_path, "retry", first_id, "--message", str(fix))
    assert "retry: 1 success" in retried
    discarded = cashup(env, tmp_path, "discard", "--all", "--source", "intake")
    assert "discard: 1 discarded" in discarded

    with sqlite3.connect(database) as connection:
        statuses = dict(connection.execute("SELECT kind, status FROM failures").fetchall())
        orders = connection.execute("SELECT count(*) FROM orders").fetchone()[0]
    assert statuses == {"intake.invalid": "success", "intake.undecodable": "discarded"}
    assert orders == 1
