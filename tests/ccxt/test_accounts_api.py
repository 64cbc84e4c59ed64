"""Venue accounts over the API: who may register, see and change them; keys never out, never in clear."""

from collections.abc import Callable
from uuid import UUID

import pytest
from sqlalchemy import text

from cashup.accounts.credentials import CredentialsKeyMissing
from cashup.config import Settings
from cashup.core.enums import Role
from cashup.runtime import Runtime
from tests.ccxt.conftest import API, API_KEY, SECRET, Service, account_body, bearer


async def test_an_admin_registers_an_account_and_its_keys_never_come_back(
    service: Service, venue_server: Callable, token_for: Callable[..., str]
) -> None:
    server = venue_server("binance")
    created = await service.client.post(f"{API}/accounts", json=account_body("binance", server.url),
                                        headers=service.admin)
    assert created.status_code == 201, created.text
    account = created.json()
    assert (account["user_id"], account["exchange"], account["market"], account["label"], account["status"],
            account["has_credentials"], account["api_key_hint"]) == (
        "alice", "binance", "spot", "binance-main", "ok", True, "…abcd")
    for response in (created,
                     await service.client.get(f"{API}/accounts", headers=service.alice),
                     await service.client.get(f"{API}/accounts/{account['id']}", headers=service.alice)):
        assert SECRET not in response.text and API_KEY not in response.text
        assert "secret" not in response.json() and "api_key" not in response.json()

    mine = (await service.client.get(f"{API}/accounts", headers=service.alice)).json()["accounts"]
    assert [item["id"] for item in mine] == [account["id"]]
    bob = bearer(token_for("bob"))
    assert (await service.client.get(f"{API}/accounts", headers=bob)).json()["accounts"] == []
    assert (await service.client.get(f"{API}/accounts/{account['id']}", headers=bob)).status_code == 404
    risk = bearer(token_for("carol", Role.RISK))
    assert [item["id"] for item in (await service.client.get(f"{API}/accounts", headers=risk)).json()["accounts"]] \
        == [account["id"]]

    async with service.runtime.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM accounts"))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert SECRET not in stored and API_KEY not in stored
    assert service.runtime.venues.account_venue(UUID(account["id"])) is not None


async def test_only_an_admin_registers_or_changes_accounts(
    service: Service, venue_server: Callable, token_for: Callable[..., str]
) -> None:
    server = venue_server("gateio")
    body = account_body("gateio", server.url)
    assert (await service.client.post(f"{API}/accounts", json=body, headers=service.alice)).status_code == 403
    risk = bearer(token_for("carol", Role.RISK))
    assert (await service.client.post(f"{API}/accounts", json=body, headers=risk)).status_code == 403
    account = (await service.client.post(f"{API}/accounts", json=body, headers=service.admin)).json()
    patched = await service.client.patch(f"{API}/accounts/{account['id']}", json={"enabled": False},
                                         headers=service.alice)
    assert patched.status_code == 403
    again = await service.client.post(f"{API}/accounts", json=body, headers=service.admin)
    assert again.status_code == 409


@pytest.mark.parametrize(("change", "field"), [
    ({"exchange": "kraken"}, "exchange"),
    ({"market": "futures"}, "body"),
    ({"market": "margin"}, "market"),
    ({"api_key": ""}, "api_key"),
    ({"secret": None}, "secret"),
    ({"api_url": "ftp://x"}, "api_url"),
    ({"label": "x" * 65}, "label"),
    ({"extra": 1}, "extra"),
])
async def test_bad_accounts_are_refused_naming_the_field(
    service: Service, change: dict, field: str
) -> None:
    body = account_body("binance", "http://127.0.0.1:1") | change
    response = await service.client.post(f"{API}/accounts", json=body, headers=service.admin)
    assert response.status_code == 422
    assert field in response.json()["detail"] or field in str(response.json().get("errors"))
    assert SECRET not in response.text


async def test_futures_are_gate_only(service: Service) -> None:
    body = account_body("binance", "http://127.0.0.1:1", market="futures")
    response = await service.client.post(f"{API}/accounts", json=body, headers=service.admin)
    assert response.status_code == 422
    assert "futures is supported on gateio only" in response.json()["detail"]


async def test_rotating_keys_and_disabling(service: Service, venue_server: Callable) -> None:
    server = venue_server("binance")
    account = (await service.client.post(f"{API}/accounts", json=account_body("binance", server.url),
                                         headers=service.admin)).json()
    half = await service.client.patch(f"{API}/accounts/{account['id']}", json={"api_key": "new-key-only"},
                                      headers=service.admin)
    assert half.status_code == 422 and "together" in half.json()["detail"]
    rotated = await service.client.patch(f"{API}/accounts/{account['id']}",
                                         json={"api_key": "rotated-key-9876", "secret": "rotated-secret"},
                                         headers=service.admin)
    assert rotated.status_code == 200
    assert (rotated.json()["api_key_hint"], rotated.json()["updated_at"] is not None) == ("…9876", True)
    disabled = await service.client.patch(f"{API}/accounts/{account['id']}", json={"enabled": False},
                                          headers=service.admin)
    assert (disabled.json()["enabled"], disabled.json()["status"]) == (False, "disabled")
    assert service.runtime.venues.account_venue(UUID(account["id"])) is None


async def test_without_a_credentials_key_nothing_is_stored(
    settings: Settings, token_for: Callable[..., str], venue_server: Callable
) -> None:
    from tests.ccxt.conftest import running_service

    async with running_service(settings, token_for) as service:
        response = await service.client.post(f"{API}/accounts", json=account_body("binance", "http://127.0.0.1:1"),
                                             headers=service.admin)
        assert response.status_code == 409
        assert "CREDENTIALS_KEY" in response.json()["detail"]


async def test_the_service_refuses_to_start_with_stored_credentials_and_no_key(
    ccxt_settings: Settings, token_for: Callable[..., str], venue_server: Callable
) -> None:
    from tests.ccxt.conftest import running_service

    server = venue_server("gateio")
    async with running_service(ccxt_settings, token_for) as service:
        created = await service.client.post(f"{API}/accounts", json=account_body("gateio", server.url),
                                            headers=service.admin)
        assert created.status_code == 201
    runtime = Runtime(ccxt_settings.model_copy(update={"credentials_key": None}))
    try:
        with pytest.raises(CredentialsKeyMissing, match="1 venue account"):
            await runtime.start()
    finally:
        await runtime.stop()


async def test_a_process_picks_up_accounts_registered_or_disabled_by_another(
    ccxt_settings: Settings, token_for: Callable[..., str], venue_server: Callable
) -> None:
    from tests.ccxt.conftest import running_service

    server = venue_server("binance")
    async with running_service(ccxt_settings, token_for) as api, running_service(ccxt_settings, token_for) as other:
        created = await api.client.post(f"{API}/accounts", json=account_body("binance", server.url),
                                        headers=api.admin)
        account_id = UUID(created.json()["id"])
        assert other.runtime.venues.account_venue(account_id) is None
        await other.runtime.venue_accounts.refresh()
        assert other.runtime.venues.account_venue(account_id) is not None
        assert other.runtime.instruments.get("binance", "BTC/USDT") is not None

        await api.client.patch(f"{API}/accounts/{account_id}", json={"enabled": False}, headers=api.admin)
        await other.runtime.venue_accounts.refresh()
        assert other.runtime.venues.account_venue(account_id) is None
