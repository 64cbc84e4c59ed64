"""The pure settlement of margined contracts: margin locks, fills that open, reduce, close and flip a position,
funding, each posting balanced and the margin held equal to what the position needs."""

from datetime import UTC, datetime
from decimal import Decimal as D
from uuid import uuid4

import pytest

from cashup.core import ledger
from cashup.core.enums import Liquidity, OrderSide
from cashup.core.ids import new_id
from cashup.core.ledger import BalanceBook
from cashup.core.positions import PositionState, apply_fill, unrealized_pnl
from cashup.core.reservation import margin_lock, position_margin
from cashup.core.settlement import ContractFill, TradeFacts, settle_contract_fill, settle_funding, settlement_asset

AT = datetime(2026, 11, 30, tzinfo=UTC)
SIZE = D("0.0001")
ACCOUNT = new_id()


def fill(side: OrderSide, contracts: str, price: str, *, fee: str = "0", lock_used: str = "0",
         leverage: str = "5") -> ContractFill:
    trade = TradeFacts("x", side, D(contracts), D(price), D(fee), "USDT", Liquidity.TAKER, AT)
    return ContractFill(ACCOUNT, uuid4(), "gateio", "USDT", side, D(contracts), D(price), D(fee), "USDT", SIZE,
                        D(leverage), D(lock_used), "fill:test", trade)


def funded(amount: str = "1000") -> BalanceBook:
    book = BalanceBook()
    book.apply(ledger.deposit(ACCOUNT, "USDT", D(amount), "funding"))
    return book


def test_a_contract_order_locks_margin_and_fee_on_the_notional() -> None:
    # 40 contracts of 0.0001 BTC at 50000: notional 200, margin at 5x 40, fee 0.2 at 0.1 %.
    assert margin_lock(D(50000), D(40), SIZE, D(5), D("0.001")) == D("40.2")
    assert margin_lock(D(50000), D(40), SIZE, D(5), D("0.001"), reduce_only=True) == D("0.2")
    assert position_margin(D(50000), D(40), SIZE, D(5)) == D(40)
    # A leverage of 3 is an endless fraction: rounded up to 18 decimals, never short.
    assert margin_lock(D(100), D(1), D(1), D(3), D(0)) == D("33.333333333333333334")
    with pytest.raises(ValueError):
        margin_lock(D(100), D(1), D(1), D(0), D(0))


def test_contract_pnl_counts_the_contract_size() -> None:
    state, realized = apply_fill(PositionState(), OrderSide.BUY, D(40), D(50000), multiplier=SIZE)
    assert realized == 0
    assert unrealized_pnl(state, D(51000), SIZE) == D(4)
    state, realized = apply_fill(state, OrderSide.SELL, D(10), D(51000), multiplier=SIZE)
    assert realized == D(1) and state.quantity == D(30) and state.realized_pnl == D(1)


def test_opening_holds_the_margin_locked_and_pays_the_fee_from_the_order_lock() -> None:
    book = funded()
    book.apply(ledger.lock(ACCOUNT, "USDT", D("40.4"), "order"))  # what the order locked at its limit 50000
    postings, state, realized = settle_contract_fill(
        fill(OrderSide.BUY, "40", "49900", fee="0.1996", lock_used="40.4"), PositionState())
    book.apply_all(postings)
    assert realized == 0
    assert (state.quantity, state.average_entry_price, state.margin, state.fees) == (
        D(40), D(49900), D("39.92"), D("0.1996"))
    assert book.locked(ACCOUNT, "USDT") == D("39.92")
    assert book.total(ACCOUNT, "USDT") == D(1000) - D("0.1996")


def test_closing_releases_the_margin_and_books_the_pnl_against_the_venue() -> None:
    book = funded()
    book.apply(ledger.lock(ACCOUNT, "USDT", D(40), "order"))
    postings, state, _ = settle_contract_fill(fill(OrderSide.BUY, "40", "50000", lock_used="40"), PositionState())
    book.apply_all(postings)

    half, state, realized = settle_contract_fill(fill(OrderSide.SELL, "20", "49000", fee="0.098"), state)
    book.apply_all(half)
    assert realized == D(-2) and state.margin == D(20) and state.quantity == D(20)
    rest, state, realized = settle_contract_fill(fill(OrderSide.SELL, "20", "52000", fee="0.104"), state)
    book.apply_all(rest)
    assert realized == D(4) and state.margin == 0 and state.quantity == 0
    assert (state.realized_pnl, state.fees) == (D(2), D("0.202"))
    assert book.locked(ACCOUNT, "USDT") == 0
    assert book.available(ACCOUNT, "USDT") == D(1000) + D(2) - D("0.202")
    assert book.available(ledger.venue_account("gateio"), "USDT") == D(-2)


def test_a_fill_through_zero_closes_then_opens_the_rest_at_the_fill_price() -> None:
    book = funded()
    postings, state, _ = settle_contract_fill(fill(OrderSide.SELL, "10", "50000"), PositionState())
    book.apply_all(postings)  # margin 10 locked from available
    assert state.margin == D(10) and book.locked(ACCOUNT, "USDT") == D(10)
    flip, state, realized = settle_contract_fill(fill(OrderSide.BUY, "30", "49000"), state)
    book.apply_all(flip)
    assert realized == D(1)
    assert (state.quantity, state.average_entry_price, state.margin) == (D(20), D(49000), D("19.6"))
    assert book.locked(ACCOUNT, "USDT") == D("19.6")


def test_a_loss_larger_than_what_is_available_is_paid_from_the_released_margin() -> None:
    book = funded("50")
    postings, state, _ = settle_contract_fill(fill(OrderSide.BUY, "40", "50000", leverage="4"), PositionState())
    book.apply_all(postings)
    assert book.available(ACCOUNT, "USDT") == D(0)
    loss, state, realized = settle_contract_fill(fill(OrderSide.SELL, "40", "40000", leverage="4"), state)
    book.apply_all(loss)
    assert realized == D(-40) and book.total(ACCOUNT, "USDT") == D(10) and book.locked(ACCOUNT, "USDT") == 0


def test_funding_moves_against_the_venue_and_is_kept_on_the_position() -> None:
    book = funded("5")
    book.apply(ledger.lock(ACCOUNT, "USDT", D(5), "margin"))
    book.apply(ledger.funding(ACCOUNT, "gateio", "USDT", D("-0.6"), "funding:1", available=D(0)))
    assert (book.available(ACCOUNT, "USDT"), book.locked(ACCOUNT, "USDT")) == (D(0), D("4.4"))
    book.apply(ledger.funding(ACCOUNT, "gateio", "USDT", D("0.25"), "funding:2", available=D(0)))
    assert book.available(ACCOUNT, "USDT") == D("0.25")
    assert settle_funding(PositionState(), D("-0.6")).funding == D("-0.6")
    assert settlement_asset("BTC/USDT:USDT") == "USDT" and settlement_asset("ETH/BTC") == "BTC"
