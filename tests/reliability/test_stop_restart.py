"""A held stop triggers exactly once across a ``kill -9`` of the worker that was watching it (SPEC §7, §13).

The exchange does not tick here: its market moves only when the test advances it, so the stop cannot fire
while the first worker watches it, and the market crosses the trigger only while no worker runs.
"""

import signal
import time
from decimal import Decimal

from tests.reliability.cluster import Cluster, counted, events, get_order, last_price, received_ids, venue_id, wait_for

TICK = Decimal("0.1")


def test_stop_triggers_exactly_once_across_a_restart(still_cluster: Cluster) -> None:
    cluster = still_cluster
    first = cluster.start_worker()
    with cluster.api() as api, cluster.exchange() as exchange:
        market = last_price(exchange)
        trigger = (market * Decimal("1.001")).quantize(TICK)  # a buy stop just above the market
        created = api.post(
            "/orders",
            json={
                "symbol": "BTC/USDT",
                "side": "buy",
                "order_type": "stop_market",
                "quantity": "0.01",
                "trigger_price": str(trigger),
            },
        )
        assert created.status_code == 201, created.text
        stop = created.json()
        wait_for(
            lambda: get_order(api, stop["id"])["status"] == "untriggered",
            15,
            "the stop held untriggered",
            describe=cluster.describe,
        )
        time.sleep(0.5)  # the worker looks at the market every 50 ms: it keeps the stop held
        assert get_order(api, stop["id"])["status"] == "untriggered"
        assert last_price(exchange) == market
        assert first.kill9() == -signal.SIGKILL

        # With no worker alive, move the market across the trigger.
        for _ in range(2000):
            moved = exchange.post("/advance", json={"steps": 1})
            assert moved.status_code == 200, moved.text
            if Decimal(moved.json()["prices"]["BTC/USDT"]) >= trigger:
                break
        crossed = last_price(exchange)
        assert crossed >= trigger, f"the replay never reached {trigger} (at {crossed})"
        held = get_order(api, stop["id"])
        assert held["status"] == "untriggered", held
        assert received_ids(exchange) == []

        second = cluster.start_worker()
        done = wait_for(
            lambda: (order := get_order(api, stop["id"]))["status"] in ("filled", "accepted") and order,
            20,
            "the stop triggered and filled",
            describe=cluster.describe,
        )
        # Another restart after the fill changes nothing.
        assert second.kill9() == -signal.SIGKILL
        cluster.start_worker()
        time.sleep(1.0)
        kinds = [event["kind"] for event in events(api, stop["id"])]
        final = get_order(api, stop["id"])
        sent = counted(received_ids(exchange))

    assert done["status"] in ("filled", "accepted")
    assert final["status"] == done["status"] and final["filled_quantity"] == done["filled_quantity"]
    assert kinds.count("triggered") == 1, kinds
    assert kinds.count("submitted") == 1, kinds
    assert kinds[:3] == ["created", "held", "triggered"], kinds
    assert sent == {venue_id(stop): 1}
