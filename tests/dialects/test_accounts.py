"""The bookkeeping of dialect accounts: spot locks and one-way futures positions."""

from decimal import Decimal

import pytest

from cashup.venues.paper.dialects.accounts import FuturesPosition, InsufficientBalance, SpotWallet

SIZE = Decimal("0.0001")


def test_a_lock_beyond_the_free_balance_is_refused_and_changes_nothing() -> None:
    wallet = SpotWallet({"USDT": Decimal("100")})
    wallet.lock("USDT", Decimal("60"))

    with pytest.raises(InsufficientBalance):
        wallet.lock("USDT", Decimal("40.01"))
    assert (wallet.balance("USDT").free, wallet.balance("USDT").locked) == (Decimal("40"), Decimal("60"))
    wallet.release("USDT", Decimal("100"))
    assert (wallet.balance("USDT").free, wallet.balance("USDT").locked) == (Decimal("100"), Decimal("0"))


def test_adding_to_a_position_averages_the_entry_price() -> None:
    position = FuturesPosition("BTC/USDT")

    assert position.apply_fill(Decimal(10), Decimal("40000"), SIZE) == 0
    assert position.apply_fill(Decimal(30), Decimal("44000"), SIZE) == 0
    assert (position.size, position.entry_price) == (Decimal(40), Decimal("43000"))


def test_closing_part_of_a_short_realises_its_pnl_and_keeps_the_entry() -> None:
    position = FuturesPosition("BTC/USDT")
    position.apply_fill(Decimal(-20), Decimal("50000"), SIZE)

    realised = position.apply_fill(Decimal(5), Decimal("48000"), SIZE)

    assert realised == Decimal("2000") * 5 * SIZE
    assert (position.size, position.entry_price) == (Decimal(-15), Decimal("50000"))


def test_a_fill_through_zero_closes_and_opens_the_other_side_at_the_fill_price() -> None:
    position = FuturesPosition("BTC/USDT")
    position.apply_fill(Decimal(10), Decimal("40000"), SIZE)

    realised = position.apply_fill(Decimal(-25), Decimal("39000"), SIZE)

    assert realised == Decimal("-1000") * 10 * SIZE
    assert (position.size, position.entry_price, position.last_close_pnl) == (
        Decimal(-15), Decimal("39000"), realised)
    assert position.closable(+1) == 15 and position.closable(-1) == 0
    assert position.unrealised_pnl(Decimal("38000"), SIZE) == Decimal("1000") * 15 * SIZE
