"""Settings read from the environment: the price band can be turned off."""

from decimal import Decimal

import pytest

from cashup.config import Settings


@pytest.mark.parametrize("value", ["", "off", "OFF", "none", "disabled", " off "])
def test_price_band_is_off_for_an_empty_or_off_value(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RISK_PRICE_BAND", value)

    assert Settings(_env_file=None).risk_price_band is None


def test_price_band_reads_a_fraction_and_defaults_to_half(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).risk_price_band == Decimal("0.5")
    monkeypatch.setenv("RISK_PRICE_BAND", "0.1")

    assert Settings(_env_file=None).risk_price_band == Decimal("0.1")


def test_price_band_refuses_a_word_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_PRICE_BAND", "sometimes")

    with pytest.raises(ValueError, match="risk_price_band"):
        Settings(_env_file=None)
