"""A TWAP on the bundled real BTC/USDT bars reports its slippage against the market VWAP (SPEC §7).

A 10-slice market TWAP, one slice a second, runs through the real processes while the exchange replays the
bundled 1-minute bars of January 2022 (one bar a second). ``twap-progress`` gives the market VWAP over the
TWAP's window and the slippage of the TWAP's average price against it; the figures are printed under the
label ``TWAP slippage`` (always on the terminal, and as test properties in a JUnit report).
"""

from decimal import Decimal

import pytest

from tests.reliability.cluster import Cluster, canceled_unfilled, children, get_order, wait_for

QUANTITY = Decimal("0.1")
SLICES = 10


def test_twap_on_real_data_reports_slippage_against_market_vwap(
    sqlite_cluster: Cluster, capsys: pytest.CaptureFixture[str], record_property
) -> None:
    cluster = sqlite_cluster
    cluster.start_worker()
    with cluster.api() as api:
        created = api.post(
            "/orders",
            json={
                "symbol": "BTC/USDT",
                "side": "buy",
                "order_type": "twap",
                "quantity": str(QUANTITY),
                "twap_slices": SLICES,
                "twap_interval": 1,
            },
        )
        assert created.status_code == 201, created.text
        parent = created.json()
        done = wait_for(
            lambda: (order := get_order(api, parent["id"]))["status"] in ("filled", "expired") and order,
            30,
            "the TWAP finished",
            interval=0.2,
            describe=cluster.describe,
        )
        response = api.get(f"/orders/{parent['id']}/twap-progress")
        assert response.status_code == 200, response.text
        progress = response.json()
        slices = children(api, parent["id"])

    assert done["status"] == "filled", done
    assert (progress["slices_done"], progress["slices_total"]) == (SLICES, SLICES)
    assert Decimal(progress["filled_quantity"]) == QUANTITY
    # At most one child per slice: a slice that fell overdue (a busy machine) is merged into the next, never
    # skipped, and one the worker did not send before its deadline is canceled unfilled and carried into a
    # later one. The filled children make up the parent.
    filled = [child for child in slices if child["status"] == "filled"]
    dropped = [child for child in slices if child["status"] != "filled"]
    assert 1 <= len(filled) <= SLICES and sum(Decimal(child["quantity"]) for child in filled) == QUANTITY, slices
    assert all(canceled_unfilled(child) for child in dropped), slices
    assert all(Decimal(child["quantity"]) % (QUANTITY / SLICES) == 0 for child in slices), slices
    assert isinstance(progress["market_vwap"], str) and isinstance(progress["slippage_bps"], str), progress
    average = Decimal(progress["average_price"])
    vwap = Decimal(progress["market_vwap"])
    slippage = Decimal(progress["slippage_bps"])
    assert vwap > 0 and average > 0
    assert abs(average - Decimal(done["average_price"])) < Decimal("1e-12")
    # A buy's slippage: how much more than the market VWAP it paid, in basis points.
    assert abs(slippage - (average - vwap) / vwap * 10_000) < Decimal("1e-9")
    assert abs(slippage) < 100, "a 10-minute TWAP of 0.1 BTC does not stray 1% from the market VWAP"

    line = (
        f"TWAP slippage: buy {QUANTITY} BTC/USDT in {SLICES} market slices over "
        f"{progress['window_start']} .. {progress['window_end']} (bundled Jan 2022 bars, 1 bar/s): "
        f"average price {average.quantize(Decimal('0.01'))}, market VWAP {vwap.quantize(Decimal('0.01'))}, "
        f"slippage {slippage.quantize(Decimal('0.01'))} bps"
    )
    record_property("twap_average_price", str(average))
    record_property("twap_market_vwap", str(vwap))
    record_property("twap_slippage_bps", str(slippage))
    print(line)
    with capsys.disabled():
        print(f"\n{line}")
