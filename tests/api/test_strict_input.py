"""Strict input: canonical amounts only, no expired GTD, JSON bodies only, every symbol form in paths, and an
OpenAPI document that says so route by route (SPEC §3, §4 Errors)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.api.helpers import API, limit_buy, take_outside_fills_on_paper, wait_for_status


@pytest.mark.parametrize("amount", [" 1 ", "1_000", "30_000", "١", "٣٠", "1,000", "0x10", "1.2.3", "", "1e", "NaN",
                                    "Infinity", "１"])
@pytest.mark.parametrize("field", ["quantity", "price"])
async def test_amount_that_is_not_a_canonical_decimal_string_is_422_naming_the_field(
    client: httpx.AsyncClient, field: str, amount: str
) -> None:
    body = limit_buy("30000", quantity="0.01") | {field: amount}

    response = await client.post(f"{API}/orders", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert (await client.get(f"{API}/orders")).json()["items"] == []


@pytest.mark.parametrize(("quantity", "price", "expected"), [
    ("0.01", "30000", ("0.01", "30000")),
    (0.01, 30000, ("0.01", "30000")),
    ("1e-2", "3E4", ("0.01", "30000")),
    ("+0.010", "30000.0", ("0.01", "30000")),
])
async def test_canonical_strings_and_json_numbers_are_accepted(
    client: httpx.AsyncClient, quantity: object, price: object, expected: tuple[str, str]
) -> None:
    response = await client.post(f"{API}/orders", json=limit_buy("1") | {"quantity": quantity, "price": price})

    assert response.status_code == 201, response.text
    assert (response.json()["quantity"], response.json()["price"]) == expected


async def test_gtd_order_already_past_its_expiry_is_422(client: httpx.AsyncClient) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    expired = await client.post(f"{API}/orders", json=limit_buy("30000", time_in_force="GTD", expire_at=past))
    valid = await client.post(f"{API}/orders", json=limit_buy("30000", time_in_force="GTD", expire_at=future))

    assert expired.status_code == 422
    assert expired.json()["errors"][0]["field"] == "expire_at"
    assert valid.status_code == 201, valid.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_json_body_sent_with_another_content_type_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    body = '{"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01", "price": "30000"}'

    response = await client.post(f"{API}/orders", content=body, headers={"Content-Type": content_type})

    assert response.status_code == 415, response.text
    assert response.json()["error"] == "UnsupportedMediaType"
    assert (await client.get(f"{API}/orders")).json()["items"] == []


async def test_json_content_types_with_parameters_are_accepted(client: httpx.AsyncClient) -> None:
    body = '{"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01", "price": "30000"}'

    response = await client.post(f"{API}/orders", content=body,
                                 headers={"Content-Type": "application/json; charset=utf-8"})

    assert response.status_code == 201, response.text


async def test_every_symbol_form_works_in_paths(
    client: httpx.AsyncClient, runtime: Runtime, token_for: Callable[..., str]
) -> None:
    take_outside_fills_on_paper(runtime)
    order = (await client.post(f"{API}/orders", json=limit_buy("30000", quantity="0.02"))).json()
    await wait_for_status(client, order["id"], "accepted")
    admin = {"Authorization": f"Bearer {token_for('ops', Role.ADMIN)}"}
    filled = await client.post(f"{API}/orders/{order['id']}/executions", headers=admin,
                               json={"execution_id": "sym-1", "quantity": "0.02", "price": "30000"})
    assert filled.status_code == 201, filled.text

    for form in ("BTC-USDT", "BTC_USDT", "BTC%2FUSDT", "btc-usdt"):
        listed = await client.get(f"{API}/positions/{form}")
        one = await client.get(f"{API}/positions/-/paper/{form}")
        assert listed.status_code == 200, (form, listed.text)
        assert one.status_code == 200, (form, one.text)
        assert [Decimal(item["quantity"]) for item in listed.json()] == [Decimal("0.02")]
        assert (one.json()["symbol"], Decimal(one.json()["quantity"])) == ("BTC/USDT", Decimal("0.02"))


async def test_openapi_documents_amount_patterns_and_errors_route_by_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    quantity = schemas["OrderCreate"]["properties"]["quantity"]
    patterns = [branch["pattern"] for branch in quantity["anyOf"] if branch["type"] == "string"]
    responses = {(method, path): set(operation["responses"])
                 for path, item in document["paths"].items() for method, operation in item.items()}

    assert patterns and all(pattern.startswith("^") and "[0-9]" in pattern for pattern in patterns)
    assert {"number"} <= {branch["type"] for branch in quantity["anyOf"]}
    assert schemas["OrderOut"]["properties"]["quantity"]["pattern"] == r"^-?[0-9]+(\.[0-9]+)?$"
    assert responses[("post", "/api/v1/orders")] >= {"201", "400", "401", "403", "409", "415", "422", "503"}
    assert responses[("get", "/api/v1/orders/{order_id}")] == {"200", "401", "404", "422", "503"}
    assert responses[("get", "/api/v1/orders")] == {"200", "401", "422", "503"}
    assert "415" not in responses[("delete", "/api/v1/orders/{order_id}")]
    assert "Retry-After" in document["paths"]["/api/v1/orders"]["get"]["responses"]["503"]["headers"]


async def test_a_query_parameter_the_route_does_not_take_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    misspelt = await client.get(f"{API}/orders", params={"stauts": "filled"})
    known = await client.get(f"{API}/orders", params={"status": "filled", "limit": 5})

    assert misspelt.status_code == 422
    assert misspelt.json()["errors"] == [
        {"field": "stauts", "rule": "extra_forbidden", "message": "unknown query parameter"}]
    assert known.status_code == 200
