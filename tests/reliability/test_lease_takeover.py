"""A worker killed while it works on an order: another worker resumes the order within 5 s (SPEC §7).

The worker renews its leases while it works, so the default lease can be short: worker A is caught in the
middle of a submission (the exchange is frozen with SIGSTOP, so A's venue call hangs), keeps its lease alive
for longer than one lease, and is then killed with SIGKILL; worker B, running beside it all along, takes the
order once A's last renewal has run out.
"""

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cashup.config import Settings
from tests.reliability.cluster import Cluster, get_order, wait_for

DEFAULT_LEASE = str(Settings.model_fields["lease_seconds"].default)


def lease_of(database: Path, order_id: str) -> tuple[str | None, datetime | None]:
    with sqlite3.connect(database) as connection:
        owner, expires = connection.execute(
            "SELECT lease_owner, lease_expires_at FROM orders WHERE id = ?", (order_id.replace("-", ""),)
        ).fetchone() or (None, None)
    return owner, datetime.fromisoformat(expires).replace(tzinfo=UTC) if expires else None


def workers_alive(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM workers").fetchone()[0])


def test_killed_workers_order_is_resumed_by_another_within_5_seconds(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(service_env={"LEASE_SECONDS": DEFAULT_LEASE, "ORDER_TIMEOUT_SECONDS": "30"}).start()
    database = cluster.workdir / "cashup.db"
    exchange = next(process for process in cluster.processes if process.name.endswith("paper-exchange"))
    workers = [cluster.start_worker(), cluster.start_worker()]
    wait_for(lambda: workers_alive(database) == 2, 30, "both workers registered", describe=cluster.describe)

    exchange.freeze()
    with cluster.api() as api:
        created = api.post("/orders", json={"symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
                                            "quantity": "0.01", "price": "30000"})
        assert created.status_code == 201, created.text
        order_id = created.json()["id"]
        wait_for(lambda: get_order(api, order_id)["status"] == "submitted", 10, "a worker sends the order",
                 describe=cluster.describe)
        owner, first_expiry = lease_of(database, order_id)
        assert owner is not None and first_expiry is not None
        [holder] = [worker for worker in workers if f":{worker.pid}:" in owner]
        [other] = [worker for worker in workers if worker is not holder]
        renewed = wait_for(lambda: (lease := lease_of(database, order_id))[1] is not None
                           and lease[1].timestamp() > first_expiry.timestamp() + float(DEFAULT_LEASE) and lease,
                           15, "the holder renews its lease while its venue call hangs", describe=cluster.describe)
        assert renewed[0] == owner

        holder.kill9()
        killed_at = time.monotonic()
        exchange.thaw()
        resumed = wait_for(lambda: (order := get_order(api, order_id))["status"] == "accepted" and order, 5,
                           "the other worker resumes the order within 5 s of the kill", describe=cluster.describe)
        took = time.monotonic() - killed_at

    assert resumed["status"] == "accepted"
    assert took < 5
    assert other.returncode is None
