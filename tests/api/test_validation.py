"""Bad input is a 4xx that names the field and the rule, and writes nothing."""

from decimal import Decimal

import httpx
import pytest

from tests.api.helpers import API, limit_buy, market


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        (limit_buy("1000", quantity="-1"), "quantity", "greater_than"),
        (limit_buy("1000", quantity="0"), "quantity", "greater_than"),
        (limit_buy("1000", quantity="0.000001"), "quantity", "lot_size"),
        (limit_buy("1000.05"), "price", "tick_size"),
        (limit_buy("1", quantity="0.001"), "quantity", "min_notional"),
        (limit_buy("1000", quantity="1e30"), "quantity", "decimal_whole_digits"),
        (limit_buy("1000", quantity="0.1234567890123456789"), "quantity", "decimal_max_places"),
        (limit_buy("1000", quantity="NaN"), "quantity", "decimal_format"),
        (limit_buy("1000", symbol="DOGE/USDT"), "symbol", "unknown_instrument"),
        (limit_buy("1000", symbol="nonsense"), "symbol", "format"),
        (limit_buy("1000", exchange="nowhere"), "exchange", "unknown_exchange"),
        (limit_buy("1000", side="hold"), "side", "enum"),
        (limit_buy("1000", order_type="moonshot"), "order_type", "literal_error"),
        (limit_buy("1000", order_type="stop_limit"), "trigger_price", "required"),
        ({**limit_buy("1000"), "order_type": "bracket", "stop_loss_price": "900"}, "take_profit_price", "required"),
        ({**limit_buy("1000"), "order_type": "trailing_stop", "price": None}, "trailing_offset", "required"),
        ({**limit_buy("1000"), "price": None}, "price", "required"),
        (market("buy", price="1000"), "price", "not_allowed"),
        (market("buy", post_only=True), "post_only", "not_allowed"),
        (limit_buy("1000", time_in_force="GTD"), "body", "value_error"),
        (limit_buy("1000", unexpected="x"), "unexpected", "extra_forbidden"),
        (limit_buy("1000", client_order_id="has space"), "client_order_id", "string_pattern_mismatch"),
    ],
)
async def test_invalid_order_answers_422_naming_field_and_rule(
    client: httpx.AsyncClient, body: dict, field: str, rule: str
) -> None:
    response = await client.post(f"{API}/orders", json=body)

    assert response.status_code == 422, response.text
    payload = response.json()
    named = {(item["field"], item["rule"]) for item in payload.get("errors") or []}
    named.add((payload.get("field"), payload.get("rule")))
    assert (field, rule) in named, payload
    assert field in payload["detail"] or field == "body"
    assert (await client.get(f"{API}/orders")).json()["items"] == []


async def test_malformed_json_answers_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/orders", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "MalformedRequest"


async def test_numbers_are_accepted_and_amounts_come_back_as_exact_strings(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/orders", json={**limit_buy("1000"), "quantity": 0.12345, "price": 1000.5})

    assert response.status_code == 201, response.text
    assert response.json()["quantity"] == "0.12345"
    assert response.json()["price"] == "1000.5"


async def test_bad_query_and_path_values_are_4xx(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/orders/not-a-uuid")).status_code == 404  # not an order id: no such order
    assert (await client.get(f"{API}/orders", params={"cursor": "!!"})).status_code == 422
    assert (await client.get(f"{API}/orders", params={"limit": 0})).status_code == 422
    assert (await client.get(f"{API}/orders", params={"status": "nope"})).status_code == 422
    assert (await client.get(f"{API}/orders/01a1fd95-5c8e-7171-93cc-254f7bd47e72")).status_code == 404


async def test_times_without_a_zone_are_refused_in_bodies_and_read_as_utc_in_queries(
    client: httpx.AsyncClient,
) -> None:
    order = (await client.post(f"{API}/orders", json=limit_buy("1000"))).json()
    naive_fill = await client.post(f"{API}/orders/{order['id']}/executions", json={
        "execution_id": "n-1", "quantity": "0.001", "price": "1000", "executed_at": "2024-01-01T00:00:00"})
    naive_expiry = await client.post(f"{API}/orders", json=limit_buy(
        "1000", time_in_force="GTD", expire_at="2030-01-01T00:00:00"))

    assert naive_fill.status_code == 422
    assert naive_fill.json()["errors"][0]["field"] == "executed_at"
    assert naive_expiry.status_code == 422
    assert naive_expiry.json()["errors"][0]["field"] == "expire_at"
    assert Decimal((await client.get(f"{API}/orders/{order['id']}")).json()["filled_quantity"]) == 0
    trades = await client.get(f"{API}/trades", params={"start": "2024-01-01T00:00:00"})
    listed = await client.get(f"{API}/orders", params={"created_from": "2024-01-01T00:00:00"})
    assert (trades.status_code, listed.status_code) == (200, 200)
    assert [item["id"] for item in listed.json()["items"]] == [order["id"]]
