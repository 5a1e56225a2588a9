"""What a dialled number is: country, type, domestic or international (``phonenumbers``)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from commcredits.domain.errors import invalid

_DECK_TYPE = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "geographic",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "geographic",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.SHARED_COST: "geographic",
    PhoneNumberType.VOIP: "geographic",
    PhoneNumberType.PERSONAL_NUMBER: "geographic",
    PhoneNumberType.UAN: "geographic",
}


#: Calls between these countries are domestic both ways (Microsoft: US and Canada).
SHARED_DOMESTIC = frozenset({"US", "CA"})


def is_domestic(country: str | None, location: str | None) -> bool:
    """Is a number in ``country`` domestic for a user located in ``location``?"""
    if country is None or location is None:
        return False
    return country == location or (country in SHARED_DOMESTIC and location in SHARED_DOMESTIC)


@dataclass(frozen=True, slots=True)
class Number:
    e164: str  # "+14255550100"
    digits: str  # "14255550100"
    country: str | None  # ISO 3166 alpha-2; None for non-geographic (+800, ...)
    number_type: str  # rate-deck type: geographic, mobile, toll_free, premium

    def is_domestic_for(self, location: str) -> bool:
        return is_domestic(self.country, location)

    def scope_for(self, location: str) -> str:
        return "Domestic" if self.is_domestic_for(location) else "International"


def classify(raw: str) -> Number:
    """Parse an E.164 number (``+`` and digits; spaces tolerated). Invalid → ``invalid_number``."""
    text = raw.strip()
    if not text.startswith("+"):
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise invalid("invalid_number", f"{raw!r} is not an E.164 number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise invalid("invalid_number", f"{raw!r} is not a possible phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    region = (phonenumbers.region_code_for_number(parsed)
              or phonenumbers.region_code_for_country_code(parsed.country_code))
    country = region if region and region not in {"001", "ZZ"} else None
    kind = _DECK_TYPE.get(phonenumbers.number_type(parsed), "geographic")
    return Number(e164, e164[1:], country, kind)
