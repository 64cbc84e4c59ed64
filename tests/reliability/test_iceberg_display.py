"""An iceberg never shows the exchange more than its display quantity (SPEC §7, §13).

The exchange does not tick: the test walks the bundled replay forward one step every 100 ms while it
samples, every ~50 ms, the exchange's own book of open orders. The iceberg's limit is the median price of
the steps ahead, so the market crosses it again and again: clips rest, fill as the market falls through
them, or fill at once when the market is already below.
"""

import statistics
import time
from decimal import Decimal

from cashup.venues.paper.instruments import PAPER_INSTRUMENTS
from cashup.venues.paper.market_data import BarReplay, load_bundled_bars
from tests.reliability.cluster import (
    Cluster,
    children,
    counted,
    get_order,
    last_price,
    received_ids,
    venue_id,
    wait_for,
)

QUANTITY = Decimal("0.05")
DISPLAY = Decimal("0.01")
RUN_SECONDS = 30
FINAL = ("filled", "canceled", "expired")


def test_iceberg_never_shows_more_than_display(still_cluster: Cluster) -> None:
    cluster = still_cluster
    cluster.start_worker()
    btc = next(instrument for instrument in PAPER_INSTRUMENTS if instrument.symbol == "BTC/USDT")
    replay = BarReplay(load_bundled_bars(), btc.tick_size)  # the exchange's feed, from its first bar
    ahead = [replay.step() for _ in range(200)]
    limit = Decimal(statistics.median_low(ahead))
    samples: list[Decimal] = []
    most_open_orders = 0
    with cluster.api() as api, cluster.exchange() as exchange:
        assert last_price(exchange) == replay_start_price(btc.tick_size)
        created = api.post(
            "/orders",
            json={
                "symbol": "BTC/USDT",
                "side": "buy",
                "order_type": "iceberg",
                "quantity": str(QUANTITY),
                "display_quantity": str(DISPLAY),
                "price": str(limit),
            },
        )
        assert created.status_code == 201, created.text
        parent = created.json()

        deadline = time.monotonic() + RUN_SECONDS
        next_step = next_look = time.monotonic()
        status = parent["status"]
        while status not in FINAL and time.monotonic() < deadline:
            book = exchange.get("/orders", params={"symbol": "BTC/USDT"})
            assert book.status_code == 200, book.text
            orders = book.json()["orders"]
            shown = sum(
                (Decimal(order["quantity"]) - Decimal(order["filled_quantity"]) for order in orders), Decimal(0)
            )
            samples.append(shown)
            most_open_orders = max(most_open_orders, len(orders))
            assert shown <= DISPLAY, f"the exchange shows {shown} of the iceberg: {orders}"
            now = time.monotonic()
            if now >= next_step:
                assert exchange.post("/advance", json={"steps": 1}).status_code == 200
                next_step = now + 0.1
            if now >= next_look:
                status = get_order(api, parent["id"])["status"]
                next_look = now + 0.5
            time.sleep(0.05)

        if status not in FINAL:  # bounded: whatever is left is canceled
            assert api.delete(f"/orders/{parent['id']}").status_code == 200
        done = wait_for(
            lambda: (order := get_order(api, parent["id"]))["status"] in FINAL and order,
            15,
            "the iceberg final",
            describe=cluster.describe,
        )
        clips = children(api, parent["id"])
        progress = api.get(f"/orders/{parent['id']}/iceberg-progress").json()
        sent = counted(received_ids(exchange))
        left_open = exchange.get("/orders", params={"symbol": "BTC/USDT"}).json()["orders"]

    filled = Decimal(done["filled_quantity"])
    print(
        f"\niceberg: {len(samples)} samples of the exchange's book, largest shown {max(samples)}, "
        f"status {done['status']}, filled {filled} of {QUANTITY} in {len(clips)} clips at limit {limit}"
    )
    assert len(samples) >= 20
    assert Decimal(0) < max(samples) <= DISPLAY  # clips did rest at the exchange, never more than one display
    assert most_open_orders <= 1
    assert Decimal(0) < filled <= QUANTITY
    assert done["status"] == "filled" or filled < QUANTITY
    assert all(Decimal(clip["quantity"]) <= DISPLAY for clip in clips)
    assert sum(Decimal(clip["filled_quantity"]) for clip in clips) == filled
    assert Decimal(progress["display_quantity"]) == DISPLAY and Decimal(progress["filled_quantity"]) == filled
    assert left_open == []
    # The exchange saw nothing but the iceberg's clips, each once (a clip canceled before it was sent never
    # reaches it).
    assert all(count == 1 for count in sent.values()), sent
    assert set(sent) <= {venue_id(clip) for clip in clips}
    assert {venue_id(clip) for clip in clips if clip["exchange_order_id"]} <= set(sent)


def replay_start_price(tick: Decimal) -> Decimal:
    return BarReplay(load_bundled_bars(), tick).price
