"""A scripted paper session with hand-computed books: locks, partial fill, cancel, sell to flat, flip."""

from decimal import Decimal as D

import httpx

from cashup.api.auth import issue_token
from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, take_outside_fills_on_paper, wait_for_status
from tests.conftest import JWT_SECRET

SERVICE = {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'ops', Role.ADMIN)}"}


async def balance(client: httpx.AsyncClient, asset: str) -> tuple[D, D]:
    [row] = (await client.get(f"{API}/balances/{asset}")).json()
    assert D(row["total"]) == D(row["available"]) + D(row["locked"])
    return D(row["available"]), D(row["locked"])


async def place(client: httpx.AsyncClient, side: str, quantity: str, price: str) -> str:
    response = await client.post(
        f"{API}/orders",
        json={"symbol": "BTC/USDT", "side": side, "order_type": "limit", "quantity": quantity, "price": price},
    )
    assert response.status_code == 201, response.text
    await wait_for_status(client, response.json()["id"], "accepted")
    return response.json()["id"]


async def fill(
    client: httpx.AsyncClient, order_id: str, execution_id: str, quantity: str, price: str, fee: str
) -> None:
    response = await client.post(
        f"{API}/orders/{order_id}/executions", headers=SERVICE,
        json={"execution_id": execution_id, "quantity": quantity, "price": price, "fee": fee, "fee_currency": "USDT"},
    )
    assert response.status_code == 201, response.text


async def position(client: httpx.AsyncClient) -> dict:
    [row] = (await client.get(f"{API}/positions/BTC-USDT")).json()
    return row


async def test_buy_partial_fill_cancel_sell_to_flat_and_flip_are_booked_exactly(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    take_outside_fills_on_paper(runtime)
    assert await balance(client, "USDT") == (D("100000"), D(0))

    buy = await place(client, "buy", "0.5", "20000")
    assert await balance(client, "USDT") == (D("89990"), D("10010"))  # 20000 × 0.5 × 1.001

    await fill(client, buy, "x-1", "0.2", "19990", "3.998")
    # 4004 of the lock is used: 3998 cost + 3.998 fee, 2.002 back to available
    assert await balance(client, "USDT") == (D("89992.002"), D("6006"))
    assert await balance(client, "BTC") == (D("1.2"), D(0))
    long = await position(client)
    assert (D(long["quantity"]), D(long["average_entry_price"]), D(long["realized_pnl"]), D(long["fees"])) == (
        D("0.2"),
        D("19990"),
        D(0),
        D("3.998"),
    )
    [trade] = (await client.get(f"{API}/trades")).json()["items"]
    assert (D(trade["quantity"]), D(trade["price"]), D(trade["fee"]), D(trade["realized_pnl"])) == (
        D("0.2"),
        D("19990"),
        D("3.998"),
        D(0),
    )

    canceled = await client.delete(f"{API}/orders/{buy}")
    assert canceled.json()["status"] == "canceled"
    assert await balance(client, "USDT") == (D("95998.002"), D(0))

    sell = await place(client, "sell", "0.2", "50000")
    assert await balance(client, "BTC") == (D("1.0"), D("0.2"))
    await fill(client, sell, "x-2", "0.2", "21000", "4.2")
    assert (await client.get(f"{API}/orders/{sell}")).json()["status"] == "filled"
    assert await balance(client, "BTC") == (D("1.0"), D(0))
    assert await balance(client, "USDT") == (D("100193.802"), D(0))  # + 4200 proceeds − 4.2 fee
    flat = await position(client)
    assert (D(flat["quantity"]), flat["average_entry_price"], D(flat["realized_pnl"]), D(flat["fees"])) == (
        D(0),
        None,
        D("202"),
        D("8.198"),
    )  # (21000 − 19990) × 0.2

    again = await place(client, "buy", "0.1", "20000")
    await fill(client, again, "x-3", "0.1", "20000", "2")
    flip = await place(client, "sell", "0.3", "50000")
    await fill(client, flip, "x-4", "0.3", "21000", "6.3")
    short = await position(client)
    assert (D(short["quantity"]), D(short["average_entry_price"]), D(short["realized_pnl"])) == (
        D("-0.2"),
        D("21000"),
        D("302"),
    )  # + (21000 − 20000) × 0.1 on the closed part
    assert D(short["fees"]) == D("16.498")

    summary = (await client.get(f"{API}/trades/summary")).json()
    assert summary["count"] == 4
    assert D(summary["volume"]) == D("0.8")
    assert D(summary["notional"]) == D("3998") + D("4200") + D("2000") + D("6300")
    assert {currency: D(amount) for currency, amount in summary["fees"].items()} == {"USDT": D("16.498")}
    assert D(summary["realized_pnl"]) == D("302")
    # the 0.1 buy spent its whole 2002 lock (2000 cost + 2 fee); the short sale brought 6300 − 6.3
    assert await balance(client, "USDT") == (D("100193.802") - D("2002") + D("6300") - D("6.3"), D(0))
