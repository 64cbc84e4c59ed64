"""Idempotency: Idempotency-Key replay and client_order_id per account."""

import asyncio

import httpx

from tests.api.helpers import API, limit_buy


async def test_twenty_concurrent_creates_with_one_key_make_one_order(client: httpx.AsyncClient) -> None:
    body = limit_buy("1000")
    headers = {"Idempotency-Key": "batch-7"}

    responses = await asyncio.gather(*(client.post(f"{API}/orders", json=body, headers=headers) for _ in range(20)))

    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}
    created = [response for response in responses if response.status_code == 201]
    assert len({response.json()["id"] for response in created}) == 1
    listed = (await client.get(f"{API}/orders")).json()["items"]
    assert len(listed) == 1

    replay = await client.post(f"{API}/orders", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == created[0].content


async def test_same_key_with_another_body_answers_409(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await client.post(f"{API}/orders", json=limit_buy("1000"), headers=headers)
    second = await client.post(f"{API}/orders", json=limit_buy("1001"), headers=headers)

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"] == "IdempotencyConflict"
    assert len((await client.get(f"{API}/orders")).json()["items"]) == 1


async def test_key_of_a_refused_request_can_be_used_again(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-2"}
    refused = await client.post(f"{API}/orders", json=limit_buy("1000.05"), headers=headers)
    fixed = await client.post(f"{API}/orders", json=limit_buy("1000"), headers=headers)

    assert refused.status_code == 422
    assert fixed.status_code == 201


async def test_repeated_client_order_id_returns_the_original_or_409(client: httpx.AsyncClient) -> None:
    first = await client.post(f"{API}/orders", json=limit_buy("1000", client_order_id="strat-42"))
    again = await client.post(f"{API}/orders", json=limit_buy("1000", client_order_id="strat-42"))
    different = await client.post(f"{API}/orders", json=limit_buy("1001", client_order_id="strat-42"))

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert different.status_code == 409
    assert different.json()["field"] == "client_order_id"
    by_client_id = (await client.get(f"{API}/orders/by-client-id/strat-42")).json()
    assert by_client_id["id"] == first.json()["id"]


async def test_concurrent_creates_with_one_client_order_id_make_one_order(client: httpx.AsyncClient) -> None:
    body = limit_buy("1000", client_order_id="race-1")
    responses = await asyncio.gather(*(client.post(f"{API}/orders", json=body) for _ in range(10)))

    assert sorted(response.status_code for response in responses) == [200] * 9 + [201]
    assert len({response.json()["id"] for response in responses}) == 1


async def test_a_denied_create_is_replayed_not_placed_again(client: httpx.AsyncClient) -> None:
    body = limit_buy("1000", quantity="1000")  # 1,000,000 USDT: above the order value limit
    headers = {"Idempotency-Key": "too-big"}

    first = await client.post(f"{API}/orders", json=body, headers=headers)
    again = await client.post(f"{API}/orders", json=body, headers=headers)

    assert (first.status_code, first.json()["rule"]) == (422, "max_order_value")
    assert again.status_code == 422
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    denied = (await client.get(f"{API}/orders", params={"status": "denied"})).json()["items"]
    assert [order["id"] for order in denied] == [first.json()["order_id"]]
