"""The shared vocabulary of the algorithms: child ids, child views, fill averages and the overfill cap."""

from decimal import Decimal

from algo_harness import child

from cashup.core.algos import CancelChild, ChildRole, ResizeChild, average_fill_price, child_client_order_id
from cashup.core.algos.base import cap_working, placeable
from cashup.core.enums import OrderStatus


def test_child_ids_are_deterministic_from_parent_role_and_index() -> None:
    assert child_client_order_id("018f-abc", ChildRole.SLICE, 3) == "018f-abc-s3"
    assert child_client_order_id("018f-abc", "stop_loss", 0) == "018f-abc-sl0"
    ids = {child_client_order_id("p", role, index) for role in ChildRole for index in range(12)}
    assert len(ids) == len(ChildRole) * 12


def test_a_child_view_knows_what_is_left_and_whether_it_is_open() -> None:
    working = child(quantity="1.5", filled="0.25", status=OrderStatus.PENDING_CANCEL)
    refused = child(status=OrderStatus.DENIED)

    assert working.remaining == Decimal("1.25") and working.is_open and working.is_changing
    assert not refused.is_open and refused.is_refused
    assert child(status=OrderStatus.UNTRIGGERED).is_open


def test_the_average_fill_price_is_weighted_and_fits_18_decimals() -> None:
    views = [
        child(filled="1", average_price="100"),
        child(filled="2", average_price="101"),
        child(filled="0"),
    ]

    assert average_fill_price(views) == Decimal("100.666666666666666667")
    assert average_fill_price([child()]) is None


def test_working_children_are_capped_to_what_the_parent_may_still_fill() -> None:
    first = child("a", index=0, quantity="1", filled="0.5")
    second = child("b", index=1, quantity="1")
    canceling = child("c", index=2, quantity="1", status=OrderStatus.PENDING_CANCEL)

    assert cap_working([first, second], Decimal("2"), "r") == []
    assert cap_working([second, first], Decimal("1"), "r") == [ResizeChild("b", Decimal("0.5"))]
    assert cap_working([first, second], Decimal("0.5"), "r") == [CancelChild("b", "r")]
    assert cap_working([canceling, second], Decimal("0.5"), "r") == [CancelChild("b", "r")]


def test_placeable_rounds_down_to_the_lot_and_drops_what_is_below_the_minimum() -> None:
    assert placeable(Decimal("1.2345"), Decimal("0.01"), Decimal("0.1")) == Decimal("1.23")
    assert placeable(Decimal("0.0999"), Decimal("0.01"), Decimal("0.1")) == Decimal("0")
    assert placeable(Decimal("-1"), Decimal("0.01"), Decimal("0")) == Decimal("0")
    assert placeable(Decimal("1"), Decimal("0.03"), Decimal("0")) == Decimal("0.99")
