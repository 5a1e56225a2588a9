"""Card rules that need no gateway: number checks, last four digits, expiry.

Card numbers never leave the request that carries them: the gateway turns them into a token,
and only the token, the last four digits and the expiry date are stored.
"""

from __future__ import annotations

from datetime import datetime

from commcredits.domain.errors import invalid, payment


def digits(card_number: str) -> str:
    number = card_number.replace(" ", "").replace("-", "")
    if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
        raise invalid("validation_error", "card_number must be 12 to 19 digits")
    if not luhn_ok(number):
        raise invalid("validation_error", "card_number fails the Luhn check")
    return number


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def check_expiry_fields(exp_month: int, exp_year: int) -> None:
    if not 1 <= exp_month <= 12:
        raise invalid("validation_error", "exp_month must be 1 to 12")
    if not 2000 <= exp_year <= 2100:
        raise invalid("validation_error", "exp_year must be a four-digit year")


def is_expired(exp_month: int, exp_year: int, now: datetime) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (now.year, now.month) > (exp_year, exp_month)


def check_not_expired(exp_month: int, exp_year: int, now: datetime) -> None:
    if is_expired(exp_month, exp_year, now):
        raise payment("card_expired", f"the card expired at the end of {exp_month:02d}/{exp_year}")


def check_card(card_number: str, exp_month: int, exp_year: int, now: datetime) -> None:
    """A card that may be saved: 12-19 digits passing Luhn, a real expiry month, and not
    expired at ``now`` (valid through the last day of its month). ``validation_error``."""
    digits(card_number)
    check_expiry_fields(exp_month, exp_year)
    if is_expired(exp_month, exp_year, now):
        raise invalid("validation_error",
                      f"the card expired at the end of {exp_month:02d}/{exp_year}")
