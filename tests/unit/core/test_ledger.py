"""The double-entry ledger: balanced postings, the builders, fills, and the balance book."""

import uuid
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cashup.core.enums import OrderSide
from cashup.core.errors import DomainError
from cashup.core.ids import new_id
from cashup.core.ledger import (
    EXTERNAL_ACCOUNT,
    FEES_ACCOUNT,
    BalanceBook,
    Bucket,
    Entry,
    InsufficientFunds,
    LedgerReason,
    Posting,
    adjustment,
    deposit,
    fill,
    is_system_account,
    lock,
    release,
    trade_value,
    transfer,
    venue_account,
)
from cashup.core.money import ZERO, fits_storage

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
QUICK = settings(max_examples=150, deadline=None)
WIDE = 100  # digits: test-side sums stay exact, whatever the default context
PAPER = venue_account("paper")


def funded(account_id: uuid.UUID, **amounts: str) -> BalanceBook:
    book = BalanceBook()
    for asset, amount in amounts.items():
        book.apply(deposit(account_id, asset, D(amount), f"funding:{asset}"))
    return book


def asset_totals(postings: list[Posting]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    with localcontext(prec=WIDE):
        for posting in postings:
            for entry in posting.entries:
                totals[entry.asset] = totals.get(entry.asset, ZERO) + entry.amount
    return totals


def changes_of(postings: list[Posting]) -> dict[tuple[uuid.UUID, str, Bucket], Decimal]:
    changes: dict[tuple[uuid.UUID, str, Bucket], Decimal] = {}
    with localcontext(prec=WIDE):
        for posting in postings:
            for entry in posting.entries:
                key = (entry.account_id, entry.asset, entry.bucket)
                changes[key] = changes.get(key, ZERO) + entry.amount
    return {key: value for key, value in changes.items() if value}


# Postings


def test_posting_balanced_per_asset_is_built() -> None:
    account = new_id()
    posting = Posting(
        "c1",
        LedgerReason.ADJUSTMENT,
        [Entry(account, "USDT", Bucket.AVAILABLE, D("5")), Entry(EXTERNAL_ACCOUNT, "USDT", Bucket.AVAILABLE, D("-5"))],
    )

    assert isinstance(posting.entries, tuple)
    assert posting.order_id is None


@pytest.mark.parametrize(
    "entries",
    [
        [("USDT", "5"), ("USDT", "-4.999999999999999999")],
        [("USDT", "5"), ("BTC", "-5")],  # balanced in total, not per asset
        [("USDT", "5")],
    ],
    ids=["off_by_one_unit", "mixed_assets", "single_entry"],
)
def test_posting_that_does_not_balance_per_asset_is_refused(entries: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="does not balance"):
        Posting("c1", LedgerReason.ADJUSTMENT, tuple(Entry(new_id(), a, Bucket.AVAILABLE, D(x)) for a, x in entries))


def test_posting_with_a_zero_amount_is_refused() -> None:
    account = new_id()
    with pytest.raises(ValueError, match="zero"):
        Posting(
            "c1",
            LedgerReason.ADJUSTMENT,
            (
                Entry(account, "USDT", Bucket.AVAILABLE, D("1")),
                Entry(account, "USDT", Bucket.LOCKED, D("0")),
                Entry(EXTERNAL_ACCOUNT, "USDT", Bucket.AVAILABLE, D("-1")),
            ),
        )


@pytest.mark.parametrize("amount", ["0.0000000000000000001", "123456789012345678901"])
def test_posting_with_an_amount_beyond_numeric_38_18_is_refused(amount: str) -> None:
    with pytest.raises(ValueError, match="NUMERIC"):
        deposit(new_id(), "USDT", D(amount), "c1")


def test_posting_without_entries_or_correlation_is_refused() -> None:
    with pytest.raises(ValueError):
        Posting("c1", LedgerReason.DEPOSIT, ())
    with pytest.raises(ValueError):
        deposit(new_id(), "USDT", D("1"), "")


def test_entry_refuses_a_float_amount() -> None:
    with pytest.raises(TypeError):
        Entry(new_id(), "USDT", Bucket.AVAILABLE, 1.5)  # type: ignore[arg-type]


def test_posting_sums_exactly_beyond_the_default_28_digits() -> None:
    big = D("12345678901234567890.123456789012345678")
    posting = transfer(new_id(), new_id(), "USDT", big, "c1")
    assert posting.entries[0].amount == big.copy_negate()
    assert posting.entries[1].amount == big


# System accounts


def test_system_accounts_are_fixed_and_recognised() -> None:
    assert EXTERNAL_ACCOUNT != FEES_ACCOUNT
    assert str(EXTERNAL_ACCOUNT) == "1b2cc585-2a9a-5ac0-9c3c-ab89af3feebd"
    assert str(FEES_ACCOUNT) == "8a2d022d-0229-50ed-a888-64e2198cd7ed"
    for account in (EXTERNAL_ACCOUNT, FEES_ACCOUNT, PAPER, venue_account("binance")):
        assert is_system_account(account)
    assert not is_system_account(new_id())
    assert not is_system_account(uuid.uuid4())


def test_venue_account_is_deterministic_per_venue() -> None:
    assert venue_account("paper") == venue_account(" Paper ") == PAPER
    assert str(PAPER) == "688fa2c4-cbec-5572-b3c4-9c3d4a857822"
    assert venue_account("binance") != PAPER
    assert venue_account("binance") not in (EXTERNAL_ACCOUNT, FEES_ACCOUNT)
    with pytest.raises(ValueError):
        venue_account(" ")


# Builders and the balance book


def test_deposit_credits_available_against_external_which_goes_negative() -> None:
    account = new_id()
    book = funded(account, USDT="100000", BTC="1")

    assert book.available(account, "USDT") == D("100000")
    assert book.locked(account, "USDT") == ZERO
    assert book.available(EXTERNAL_ACCOUNT, "USDT") == D("-100000")
    assert book.total(account, "BTC") == D("1")


def test_negative_deposit_withdraws_and_cannot_overdraw() -> None:
    account = new_id()
    book = funded(account, USDT="100")

    book.apply(deposit(account, "USDT", D("-40"), "w1"))
    assert book.available(account, "USDT") == D("60")
    with pytest.raises(InsufficientFunds):
        book.apply(deposit(account, "USDT", D("-60.000000000000000001"), "w2"))
    assert book.available(account, "USDT") == D("60")


def test_lock_and_release_move_between_buckets_of_one_account() -> None:
    account, order = new_id(), new_id()
    book = funded(account, USDT="100")

    locking = lock(account, "USDT", D("30"), "l1", order)
    book.apply(locking)
    assert (book.available(account, "USDT"), book.locked(account, "USDT")) == (D("70"), D("30"))
    assert locking.reason is LedgerReason.LOCK and locking.order_id == order

    book.apply(release(account, "USDT", D("12.5"), "r1", order))
    assert (book.available(account, "USDT"), book.locked(account, "USDT")) == (D("82.5"), D("17.5"))
    assert book.total(account, "USDT") == D("100")


def test_lock_beyond_available_raises_insufficient_funds_and_changes_nothing() -> None:
    account = new_id()
    book = funded(account, USDT="100")

    with pytest.raises(InsufficientFunds) as raised:
        book.apply(lock(account, "USDT", D("100.01"), "l1"))

    error = raised.value
    assert isinstance(error, DomainError)
    assert error.code == "InsufficientFunds"
    assert error.context == {
        "account_id": str(account),
        "asset": "USDT",
        "bucket": "available",
        "required": "100.01",
        "available": "100",
    }
    assert (book.available(account, "USDT"), book.locked(account, "USDT")) == (D("100"), ZERO)


def test_release_beyond_locked_raises_on_the_locked_bucket() -> None:
    account = new_id()
    book = funded(account, USDT="100")
    book.apply(lock(account, "USDT", D("10"), "l1"))

    with pytest.raises(InsufficientFunds) as raised:
        book.apply(release(account, "USDT", D("10.5"), "r1"))
    assert raised.value.bucket is Bucket.LOCKED
    assert book.locked(account, "USDT") == D("10")


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_lock_release_and_transfer_need_a_positive_amount(amount: str) -> None:
    for build in (
        lambda: lock(new_id(), "USDT", D(amount), "c"),
        lambda: release(new_id(), "USDT", D(amount), "c"),
        lambda: transfer(new_id(), new_id(), "USDT", D(amount), "c"),
    ):
        with pytest.raises(ValueError):
            build()


def test_transfer_moves_available_funds_atomically() -> None:
    source, target = new_id(), new_id()
    book = funded(source, USDT="50")

    book.apply(transfer(source, target, "USDT", D("20"), "t1"))
    assert (book.available(source, "USDT"), book.available(target, "USDT")) == (D("30"), D("20"))

    with pytest.raises(InsufficientFunds):
        book.apply(transfer(source, target, "USDT", D("30.1"), "t2"))
    assert (book.available(source, "USDT"), book.available(target, "USDT")) == (D("30"), D("20"))
    with pytest.raises(ValueError):
        transfer(source, source, "USDT", D("1"), "t3")


def test_adjustment_corrects_against_external_in_both_directions() -> None:
    account = new_id()
    book = funded(account, ETH="10")

    book.apply(adjustment(account, "ETH", D("-0.25"), "a1"))
    book.apply(adjustment(account, "ETH", D("0.05"), "a2"))
    assert book.available(account, "ETH") == D("9.8")
    assert book.available(EXTERNAL_ACCOUNT, "ETH") == D("-9.8")


def test_apply_all_applies_every_posting_or_none() -> None:
    account = new_id()
    book = funded(account, USDT="100")

    with pytest.raises(InsufficientFunds):
        book.apply_all([lock(account, "USDT", D("60"), "l1"), lock(account, "USDT", D("60"), "l2")])
    assert (book.available(account, "USDT"), book.locked(account, "USDT")) == (D("100"), ZERO)

    # Within one batch a credit may cover a later debit.
    book.apply_all([deposit(account, "USDT", D("20"), "d"), lock(account, "USDT", D("120"), "l3")])
    assert (book.available(account, "USDT"), book.locked(account, "USDT")) == (ZERO, D("120"))


def test_balance_book_stays_exact_beyond_the_default_28_digits() -> None:
    account = new_id()
    big = D("12345678901234567890.123456789012345678")
    book = funded(account, USDT=str(big))

    book.apply(lock(account, "USDT", D("0.000000000000000001"), "l1"))
    assert book.available(account, "USDT") == D("12345678901234567890.123456789012345677")
    assert book.total(account, "USDT") == big
    assert book.balances()[(account, "USDT")] == (D("12345678901234567890.123456789012345677"), D("1E-18"))


# Fills


def test_buy_fill_spends_the_lock_pays_the_fee_and_releases_the_unspent_part() -> None:
    """Buy 0.5 BTC at 40000 with a 0.1 % fee locks 20020; a fill of 0.2 at 39990 uses 8008 of it."""
    account, order = new_id(), new_id()
    book = funded(account, USDT="100000")
    book.apply(lock(account, "USDT", D("20020"), "l1", order))

    postings = fill(
        account, "paper", BUY, "BTC", "USDT", D("0.2"), D("39990"), D("7.998"), "USDT", D("8008"), "f1", order
    )

    assert [posting.reason for posting in postings] == [LedgerReason.FILL, LedgerReason.FEE, LedgerReason.RELEASE]
    assert all(posting.correlation_id == "f1" and posting.order_id == order for posting in postings)
    assert changes_of(postings) == {
        (account, "USDT", Bucket.LOCKED): D("-8008"),
        (account, "USDT", Bucket.AVAILABLE): D("2.002"),
        (account, "BTC", Bucket.AVAILABLE): D("0.2"),
        (PAPER, "USDT", Bucket.AVAILABLE): D("7998"),
        (PAPER, "BTC", Bucket.AVAILABLE): D("-0.2"),
        (FEES_ACCOUNT, "USDT", Bucket.AVAILABLE): D("7.998"),
    }
    assert postings[2].entries[1].amount == D("2.002")

    book.apply_all(postings)
    assert book.available(account, "USDT") == D("79982.002")
    assert book.locked(account, "USDT") == D("12012")
    assert book.available(account, "BTC") == D("0.2")
    assert book.available(FEES_ACCOUNT, "USDT") == D("7.998")


def test_buy_fill_that_spends_the_whole_lock_releases_nothing() -> None:
    account = new_id()
    postings = fill(account, "paper", BUY, "BTC", "USDT", D("0.5"), D("40000"), D("20"), "USDT", D("20020"), "f")

    assert [posting.reason for posting in postings] == [LedgerReason.FILL, LedgerReason.FEE]
    assert changes_of(postings)[(account, "USDT", Bucket.LOCKED)] == D("-20020")


def test_sell_fill_gives_the_locked_base_and_pays_the_fee_from_the_proceeds() -> None:
    account, order = new_id(), new_id()
    book = funded(account, BTC="1")
    book.apply(lock(account, "BTC", D("0.5"), "l1", order))

    postings = fill(
        account, "paper", SELL, "BTC", "USDT", D("0.5"), D("40010"), D("20.005"), "USDT", D("0.5"), "f1", order
    )

    assert [posting.reason for posting in postings] == [LedgerReason.FILL, LedgerReason.FEE]
    assert changes_of(postings) == {
        (account, "BTC", Bucket.LOCKED): D("-0.5"),
        (account, "USDT", Bucket.AVAILABLE): D("19984.995"),
        (PAPER, "BTC", Bucket.AVAILABLE): D("0.5"),
        (PAPER, "USDT", Bucket.AVAILABLE): D("-20005"),
        (FEES_ACCOUNT, "USDT", Bucket.AVAILABLE): D("20.005"),
    }
    book.apply_all(postings)
    assert (book.available(account, "BTC"), book.locked(account, "BTC")) == (D("0.5"), ZERO)
    assert book.available(account, "USDT") == D("19984.995")


def test_sell_fill_with_more_locked_than_sold_releases_the_rest() -> None:
    account = new_id()
    postings = fill(account, "paper", SELL, "BTC", "USDT", D("0.3"), D("100"), ZERO, "USDT", D("0.5"), "f")

    assert [posting.reason for posting in postings] == [LedgerReason.FILL, LedgerReason.RELEASE]
    assert changes_of(postings)[(account, "BTC", Bucket.LOCKED)] == D("-0.5")
    assert changes_of(postings)[(account, "BTC", Bucket.AVAILABLE)] == D("0.2")


def test_buy_fee_in_base_comes_out_of_the_base_received() -> None:
    account = new_id()
    postings = fill(account, "paper", BUY, "BTC", "USDT", D("1"), D("100"), D("0.001"), "BTC", D("100.1"), "f")

    assert changes_of(postings) == {
        (account, "USDT", Bucket.LOCKED): D("-100.1"),
        (account, "USDT", Bucket.AVAILABLE): D("0.1"),
        (account, "BTC", Bucket.AVAILABLE): D("0.999"),
        (PAPER, "USDT", Bucket.AVAILABLE): D("100"),
        (PAPER, "BTC", Bucket.AVAILABLE): D("-1"),
        (FEES_ACCOUNT, "BTC", Bucket.AVAILABLE): D("0.001"),
    }
    book = funded(account, USDT="100.1")
    book.apply(lock(account, "USDT", D("100.1"), "l"))
    book.apply_all(postings)
    assert book.available(account, "BTC") == D("0.999")


def test_fill_after_the_lock_was_released_is_paid_from_available() -> None:
    account = new_id()
    book = funded(account, USDT="50")

    postings = fill(account, "paper", BUY, "ETH", "USDT", D("0.01"), D("2000"), D("0.02"), "USDT", ZERO, "late")

    assert changes_of(postings)[(account, "USDT", Bucket.AVAILABLE)] == D("-20.02")
    assert (account, "USDT", Bucket.LOCKED) not in changes_of(postings)
    book.apply_all(postings)
    assert book.available(account, "USDT") == D("29.98")


def test_fill_costing_more_than_the_lock_takes_the_shortfall_from_available() -> None:
    account = new_id()
    book = funded(account, USDT="1000")
    book.apply(lock(account, "USDT", D("100"), "l"))

    postings = fill(account, "paper", BUY, "BTC", "USDT", D("1"), D("100"), D("0.5"), "USDT", D("100"), "f")

    assert changes_of(postings)[(account, "USDT", Bucket.LOCKED)] == D("-100")
    assert changes_of(postings)[(account, "USDT", Bucket.AVAILABLE)] == D("-0.5")
    book.apply_all(postings)
    assert (book.available(account, "USDT"), book.locked(account, "USDT")) == (D("899.5"), ZERO)


def test_fill_without_the_funds_raises_insufficient_funds() -> None:
    account = new_id()
    book = funded(account, USDT="10")

    with pytest.raises(InsufficientFunds):
        book.apply_all(fill(account, "paper", BUY, "BTC", "USDT", D("1"), D("100"), ZERO, "USDT", ZERO, "f"))
    assert book.available(account, "USDT") == D("10")


def test_trade_value_rounds_half_even_to_18_decimals_only_when_it_must() -> None:
    assert trade_value(D("0.2"), D("39990")) == D("7998")
    exact = trade_value(D("12345678901234567890.5"), D("2"))
    assert exact == D("24691357802469135781")
    assert trade_value(D("0.000000001"), D("0.0000000015")) == D("2E-18")  # 1.5E-18: ties to even
    assert trade_value(D("0.000000001"), D("0.0000000025")) == D("2E-18")
    assert fits_storage(trade_value(D("1.123456789012345678"), D("1.123456789012345678")))


@pytest.mark.parametrize(
    ("quantity", "price", "fee", "locked_used"),
    [("0", "1", "0", "0"), ("1", "0", "0", "0"), ("1", "1", "-0.1", "0"), ("1", "1", "0", "-1")],
)
def test_fill_refuses_impossible_figures(quantity: str, price: str, fee: str, locked_used: str) -> None:
    with pytest.raises(ValueError):
        fill(new_id(), "paper", BUY, "BTC", "USDT", D(quantity), D(price), D(fee), "USDT", D(locked_used), "f")


# Properties

amounts = st.decimals(min_value=D("0.000000000000000001"), max_value=D("1000000"), places=18)
assets = st.sampled_from(["BTC", "USDT", "ETH"])


@QUICK
@given(
    side=st.sampled_from([BUY, SELL]),
    quantity=amounts,
    price=amounts,
    fee=st.decimals(min_value=D(0), max_value=D("1000"), places=18),
    fee_currency=st.sampled_from(["USDT", "BTC", "BNB"]),
    locked_used=st.decimals(min_value=D(0), max_value=D("100000000"), places=18),
)
def test_every_fill_posting_balances_and_fits_storage(
    side: OrderSide, quantity: Decimal, price: Decimal, fee: Decimal, fee_currency: str, locked_used: Decimal
) -> None:
    account = new_id()
    postings = fill(account, "paper", side, "BTC", "USDT", quantity, price, fee, fee_currency, locked_used, "f")

    for posting in postings:
        assert not any(asset_totals([posting]).values())
        assert all(entry.amount and fits_storage(entry.amount) for entry in posting.entries)
    locked_asset = "USDT" if side is BUY else "BTC"
    changes = changes_of(postings)
    assert changes.get((account, locked_asset, Bucket.LOCKED), ZERO).copy_negate() == locked_used
    assert changes.get((FEES_ACCOUNT, fee_currency, Bucket.AVAILABLE), ZERO) == fee


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, tuple]]:
    accounts = [new_id() for _ in range(3)]
    account = st.sampled_from(accounts)
    step = st.one_of(
        st.tuples(st.just("deposit"), account, assets, amounts),
        st.tuples(st.just("withdraw"), account, assets, amounts),
        st.tuples(st.just("lock"), account, assets, amounts),
        st.tuples(st.just("release"), account, assets, amounts),
        st.tuples(st.just("transfer"), account, account, assets, amounts),
        st.tuples(st.just("fill"), account, st.sampled_from([BUY, SELL]), amounts, amounts, amounts, amounts),
    )
    return draw(st.lists(step, min_size=1, max_size=30))


def build(operation: tuple) -> list[Posting]:
    kind, *args = operation
    if kind == "deposit":
        return [deposit(*args, "c")]
    if kind == "withdraw":
        account, asset, amount = args
        return [deposit(account, asset, -amount, "c")]
    if kind == "lock":
        return [lock(*args, "c")]
    if kind == "release":
        return [release(*args, "c")]
    if kind == "transfer":
        source, target, asset, amount = args
        return [transfer(source, target, asset, amount, "c")] if source != target else []
    account, side, quantity, price, fee, locked_used = args
    return fill(account, "paper", side, "BTC", "USDT", quantity, price, fee, "USDT", locked_used, "c")


@QUICK
@given(operations())
def test_balance_book_sums_to_zero_per_asset_and_customer_buckets_never_go_negative(
    steps: list[tuple],
) -> None:
    book = BalanceBook()
    for operation in steps:
        before = book.balances()
        try:
            book.apply_all(build(operation))
        except InsufficientFunds:
            assert book.balances() == before

        totals: dict[str, Decimal] = {}
        for (account_id, asset), (available, locked) in book.balances().items():
            with localcontext(prec=WIDE):
                totals[asset] = totals.get(asset, ZERO) + available + locked
            if not is_system_account(account_id):
                assert available >= ZERO and locked >= ZERO
        assert not any(totals.values())
