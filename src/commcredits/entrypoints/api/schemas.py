"""Request bodies. Money travels as strings (``"50.00"``); a JSON float is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
)


def _money(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError('money must be a decimal string such as "50.00", not a JSON number')
    if isinstance(value, int):
        return str(value)
    return value


Money = Annotated[str, BeforeValidator(_money), Field(examples=["50.00"], max_length=40)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    def fingerprint(self) -> str:
        """What identifies this request for Idempotency-Key matching (stored hashed)."""
        return self.model_dump_json()


class TenantIn(Body):
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=2, max_length=2, examples=["US"])
    commerce: Literal["legacy", "nce"] = "legacy"
    currency: str | None = Field(None, min_length=3, max_length=3)


class TenantPatch(Body):
    commerce: Literal["legacy", "nce"] | None = None
    allow_premium: bool | None = None  # premium-rate destinations (blocked by default)
    blocked_prefixes: list[str] | None = Field(None, max_length=500)
    user_daily_cap: Money | None = None  # null removes the cap


class ApiKeyIn(Body):
    role: Literal["operator", "switch", "global_admin", "billing_admin", "user_admin",
                  "reports_reader"]
    tenant_id: str | None = None


class SubscriptionIn(Body):
    sku: str = Field(min_length=1, max_length=30)
    quantity: int = Field(ge=1, le=10_000_000)


class UserIn(Body):
    upn: str = Field(min_length=3, max_length=320)
    display_name: str = Field("", max_length=200)
    usage_location: str = Field(min_length=2, max_length=2)
    phone_number: str | None = Field(None, max_length=30)


class BulkAssignIn(Body):
    sku: str = Field(min_length=1, max_length=30)
    upns: list[str] = Field(min_length=1, max_length=10_000)


class NumberIn(Body):
    number: str = Field(min_length=3, max_length=30)
    type: Literal["user", "toll", "toll_free"]


class ContactsIn(Body):
    emails: list[EmailStr] = Field(max_length=50)


class AdminIn(Body):
    email: EmailStr
    password: str = Field(min_length=8, max_length=200)
    role: Literal["global_admin", "billing_admin", "user_admin", "reports_reader"]

    def fingerprint(self) -> str:
        return self.model_dump_json(exclude={"password"})


class PaymentMethodIn(Body):
    type: Literal["card", "enterprise_agreement"]
    card_number: str | None = Field(None, max_length=30, repr=False)
    exp_month: int | None = Field(None, ge=1, le=12)
    exp_year: int | None = Field(None, ge=2000, le=2100)
    agreement_number: str | None = Field(None, max_length=100)

    def fingerprint(self) -> str:
        # Never let the card number reach storage, not even inside a hash.
        last4 = (self.card_number or "")[-4:]
        return self.model_dump_json(exclude={"card_number"}) + last4


class AutoRechargeIn(Body):
    enabled: bool
    recharge_amount: Money | None = None
    trigger_amount: Money | None = None
    payment_method_id: str | None = Field(None, max_length=40)


class OrderIn(Body):
    amount: Money
    payment_method_id: str = Field(min_length=1, max_length=40)
    po_number: str | None = Field(None, max_length=100)
    auto_recharge: AutoRechargeIn | None = None


class ClockIn(Body):
    now: str = Field(examples=["2027-01-01T00:00:00Z"])


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


AnswerTime = Annotated[datetime | None, AfterValidator(_utc),
                       Field(None, description="when the callee answered (UTC); default: "
                                               "when the service hears of it")]
CallId = Annotated[str, Field(min_length=1, max_length=200,
                              description="the switch's call id (e.g. the SIP Call-ID)")]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]


class CallIn(Body):
    call_id: CallId
    tenant_id: str | None = Field(None, min_length=1, max_length=40,
                                  description="omit to find the tenant from its numbers "
                                              "or sip_domain")
    call_type: Literal["user_in", "user_out", "user_out_conf", "conf_in", "conf_out",
                       "ucap_in", "ucap_out"]
    from_: str = Field("", alias="from", max_length=40)
    to: str = Field(min_length=1, max_length=40)
    upn: str | None = Field(None, max_length=320)
    organizer_upn: str | None = Field(None, max_length=320)
    conference_id: str | None = Field(None, max_length=200)
    sip_domain: str | None = Field(None, max_length=253,
                                   description="a SIP domain of the tenant's (when no "
                                               "tenant_id)")

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)


class AnswerIn(Body):
    answered_at: AnswerTime = None


class InterimIn(Body):
    elapsed_s: Seconds
    answered_at: AnswerTime = None


class CallEndIn(Body):
    duration_s: Seconds
    answered_at: AnswerTime = None


class AnswerByIdIn(AnswerIn):
    call_id: CallId


class InterimByIdIn(InterimIn):
    call_id: CallId


class CallEndByIdIn(CallEndIn):
    call_id: CallId


class CutIn(Body):
    call_id: CallId
    reason: str | None = Field(None, max_length=40, examples=["fraud_suspected"])


class SipDomainsIn(Body):
    domains: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(max_length=100)


class CdrIn(Body):
    call_id: CallId
    tenant_id: str | None = Field(None, min_length=1, max_length=40)
    call_type: Literal["user_in", "user_out", "user_out_conf", "conf_in", "conf_out",
                       "ucap_in", "ucap_out"]
    from_: str = Field("", alias="from", max_length=40)
    to: str = Field(min_length=1, max_length=40)
    upn: str | None = Field(None, max_length=320)
    organizer_upn: str | None = Field(None, max_length=320)
    sip_domain: str | None = Field(None, max_length=253)
    start_time: Annotated[datetime, AfterValidator(_utc)]
    duration_s: Seconds

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)


class CdrsIn(Body):
    cdrs: list[CdrIn] = Field(min_length=1, max_length=1000)


class SmsIn(Body):
    message_id: str = Field(min_length=1, max_length=200)
    tenant_id: str = Field(min_length=1, max_length=40)
    upn: str | None = Field(None, max_length=320)
    from_: str = Field("", alias="from", max_length=40)
    to: str = Field(min_length=1, max_length=40)
    direction: Literal["out", "in"] = "out"
    segments: int = Field(1, ge=1, le=100)

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)
