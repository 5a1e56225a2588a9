"""Request bodies. Money travels as strings (``"50.00"``); a JSON float is refused.

Every string that is stored follows ``domain.text``: identifiers (``Ident``) are taken
exactly as sent, printable ASCII without spaces; free text (``Text``) has no control
characters. ``Stored`` names the column a field lands in, and a test checks every limit here
against the column it fills. Booleans and integers are strict: ``0.0`` is not ``false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
)

from commcredits.domain import dates, text
from commcredits.domain.money import MAX_DIGITS, currency_codes
from commcredits.domain.tenancy import country_codes, tenant_country_codes
from commcredits.domain.text import ID_MAX

# What the identifier and text policies (domain.text) accept, stated in the OpenAPI as JSON
# Schema patterns (documentation only: the validators keep their own messages), so that a
# client, and schemathesis, know which strings are valid.
ID_PATTERN = r"^[!-.0-~]+$"  # printable ASCII without space and "/"
CALL_ID_PATTERN = r"^[!-~]+$"  # printable ASCII without space
# no control characters, and nothing to trim at either end (bodies are trimmed before the
# length is checked, so this keeps minLength exact)
TEXT_PATTERN = (r"^([^\s\x00-\x1f\x7f-\x9f]"
                r"([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?)?$")
COUNTRIES = {"enum": list(country_codes())}
TENANT_COUNTRIES = {"enum": list(tenant_country_codes())}  # with a currency to sell in
CURRENCIES = {"enum": list(currency_codes())}


def _money(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError('money must be a decimal string such as "50.00", not a JSON number')
    if isinstance(value, int):
        return str(value)
    return value


Money = Annotated[str, BeforeValidator(_money), Field(
    examples=["50.00"], max_length=40,
    json_schema_extra={"pattern": rf"^\s*\+?[0-9]{{1,{MAX_DIGITS}}}(\.[0-9]{{1,12}})?\s*$"})]


def _whole(value: Any) -> Any:
    """A JSON integer as JSON Schema has it: ``2`` or ``2.0``, never ``2.5``, ``"2"`` or
    ``true``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number (a JSON integer)")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number (a JSON integer)")
        return int(value)
    return value


# what OpenAPI calls "integer" (which 2.0 is too); booleans and strings are refused
WholeInt = Annotated[int, BeforeValidator(_whole)]


@dataclass(frozen=True, slots=True)
class Stored:
    """The column (``table.column``) a string field is stored in; ``prefix`` characters are
    put before it on the way (a ledger reference), ``items`` of a list are joined with a
    separator into the one column."""

    column: str
    prefix: int = 0
    items: bool = False


def _ident_check(max_len: int) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str):
            problem = text.id_problem(value, max_len)
            if problem:
                raise ValueError(problem)
        return value
    return check


def _text_check(max_len: int) -> Any:
    def check(value: str) -> str:
        problem = text.text_problem(value, max_len)
        if problem:
            raise ValueError(problem)
        return value
    return check


def ident(column: str, max_len: int = ID_MAX, prefix: int = 0) -> Any:
    """An identifier the client chooses, stored in ``column``."""
    return Annotated[str, BeforeValidator(_ident_check(max_len)),
                     Field(min_length=1, max_length=max_len,
                           json_schema_extra={"pattern": ID_PATTERN}), Stored(column, prefix)]


def txt(column: str | None, max_len: int, min_len: int = 0, *,
        schema: dict[str, Any] | None = None, **field: Any) -> Any:
    """Free text of at most ``max_len`` characters, stored in ``column`` (None: not stored);
    ``schema`` replaces the documented pattern (e.g. an enum of country codes)."""
    marks: tuple[Any, ...] = (Stored(column),) if column else ()
    return Annotated[str, AfterValidator(_text_check(max_len)),
                     Field(min_length=min_len, max_length=max_len,
                           json_schema_extra=schema or {"pattern": TEXT_PATTERN}, **field),
                     *marks]


TenantId = ident("tenants.id", 40)
PaymentMethodId = ident("payment_methods.id", 40)
Sku = ident("subscriptions.sku", 30)
Upn = txt("users.upn", 320, 3)
Email = Annotated[EmailStr, AfterValidator(_text_check(320)), Stored("admins.email")]
CallId = ident("calls.call_id", prefix=len("call "))


def _sip_call_id_check(value: Any) -> Any:
    if isinstance(value, str):
        problem = text.call_id_problem(value)
        if problem:
            raise ValueError(problem)
    return value


# any SIP Call-ID ("/" and "?" included): the body forms of the call endpoints take these
SipCallId = Annotated[str, BeforeValidator(_sip_call_id_check),
                      Field(min_length=1, max_length=ID_MAX,
                            description="the switch's call id (e.g. the SIP Call-ID)",
                            json_schema_extra={"pattern": CALL_ID_PATTERN}),
                      Stored("calls.call_id", len("call "))]
SipDomain = txt("sip_domains.domain", 253, 1)
MessageId = ident("messages.message_id", prefix=len("sms "))
Number = txt("calls.to_number", 40, 1)
class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    def fingerprint(self) -> str:
        """What identifies this request for Idempotency-Key matching (stored hashed)."""
        return self.model_dump_json()


class TenantIn(Body):
    name: txt("tenants.name", 200, 1)
    country: txt("tenants.country", 2, 2, examples=["US"], schema=TENANT_COUNTRIES)
    commerce: Literal["legacy", "nce"] = "legacy"
    currency: txt("tenants.currency", 3, 3, schema=CURRENCIES) | None = None


class TenantPatch(Body):
    commerce: Literal["legacy", "nce"] | None = None
    allow_premium: StrictBool | None = None  # premium-rate destinations (blocked by default)
    # stored joined with "," in one column
    blocked_prefixes: Annotated[list[txt(None, 16, schema={
        "pattern": r"^\s*(\+*[0-9]{1,15})?\s*$", "examples": ["1900"]})], Field(max_length=58),
                                Stored("tenants.blocked_prefixes", items=True)] | None = None
    user_daily_cap: Money | None = None  # null removes the cap
    overage_enabled: bool | None = None  # nce: pay-as-you-go overage (off by default)
    no_rate: Literal["free", "block"] | None = None  # operator: calls no rate prices


class ApiKeyIn(Body):
    role: Literal["operator", "switch", "global_admin", "billing_admin", "user_admin",
                  "reports_reader"]
    tenant_id: TenantId | None = None


class ApiKeyOut(BaseModel):
    """An API key as listed (never the key itself: it is shown once, when created)."""

    id: str
    role: str
    tenant_id: str | None
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="the last request made with it, exact to the minute; null: never used")
    revoked_at: datetime | None = Field(description="null while the key works")


class SubscriptionIn(Body):
    sku: Sku
    quantity: WholeInt = Field(ge=1, le=10_000_000)


class UserIn(Body):
    upn: Upn
    display_name: txt("users.display_name", 200) = ""
    usage_location: txt("users.usage_location", 2, 2, schema=COUNTRIES)
    # stored normalized to E.164 (at most 16 characters)
    phone_number: txt(None, 30) | None = None
    # the user's Entra ID (Azure AD) object id: the usage exports' "AAD ObjectId" column
    aad_object_id: UUID | None = None


class BulkAssignIn(Body):
    sku: Sku
    upns: list[Upn] = Field(min_length=1, max_length=10_000)


class NumberIn(Body):
    number: txt(None, 30, 3)  # stored normalized to E.164
    type: Literal["user", "toll", "toll_free"]


class ContactsIn(Body):
    emails: list[Email] = Field(max_length=50)


# a password is taken exactly as typed (never trimmed: the sign-in form does not trim it)
Password = Annotated[str, StringConstraints(strip_whitespace=False),
                     AfterValidator(_text_check(200)),
                     Field(min_length=8, max_length=200,
                           json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"})]


class OperatorAdminIn(Body):
    email: EmailStr
    password: Password

    def fingerprint(self) -> str:
        return self.model_dump_json(exclude={"password"})


class AdminIn(Body):
    email: Email
    password: Password
    role: Literal["global_admin", "billing_admin", "user_admin", "reports_reader"]

    def fingerprint(self) -> str:
        return self.model_dump_json(exclude={"password"})


class PaymentMethodIn(Body):
    type: Literal["card", "enterprise_agreement"]
    card_number: txt(None, 30, schema={"pattern": r"^[ -]*([0-9][ -]*){12,19}$",
                                       "examples": ["4242 4242 4242 4242"]}) | None = Field(
        None, repr=False)
    exp_month: Annotated[int, Field(ge=1, le=12), BeforeValidator(_whole)] | None = None
    exp_year: Annotated[int, Field(ge=2000, le=2100), BeforeValidator(_whole)] | None = None
    agreement_number: txt("payment_methods.agreement_number", 100) | None = None
    # the Stripe gateway: a SetupIntent the browser confirmed (instead of a card number)
    setup_intent_id: ident("payment_methods.token") | None = None

    def fingerprint(self) -> str:
        # Never let the card number reach storage, not even inside a hash.
        last4 = (self.card_number or "")[-4:]
        return self.model_dump_json(exclude={"card_number"}) + last4


class AutoRechargeIn(Body):
    enabled: StrictBool
    recharge_amount: Money | None = None
    trigger_amount: Money | None = None
    payment_method_id: PaymentMethodId | None = None


class OrderIn(Body):
    amount: Money
    payment_method_id: PaymentMethodId
    po_number: txt("orders.po_number", 100) | None = None
    auto_recharge: AutoRechargeIn | None = None


class ClockIn(Body):
    now: txt(None, 40, examples=["2027-01-01T00:00:00Z"])


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+00:01 is before year 1 in UTC: a 422
        raise ValueError("time out of range") from None


def _timestamp(value: Any) -> Any:
    """An RFC 3339 string: not a number (pydantic would take ``0`` as 1970-01-01), not a
    date alone."""
    problem = None if value is None else dates.timestamp_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Timestamp = {"format": "date-time", "examples": [dates.TIMESTAMP_EXAMPLE]}
AnswerTime = Annotated[datetime | None, BeforeValidator(_timestamp), AfterValidator(_utc),
                       Field(None, description="when the callee answered (UTC, RFC 3339); "
                                               "default: when the service hears of it",
                             json_schema_extra=Timestamp)]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600), BeforeValidator(_whole)]
CallType = Literal["user_in", "user_out", "user_out_conf", "user_out_transfer",
                   "user_out_forwarding", "conf_in", "conf_out", "ucap_in", "ucap_out"]


class CallIn(Body):
    call_id: SipCallId
    tenant_id: TenantId | None = Field(None, description="omit to find the tenant from its "
                                                       "numbers or sip_domain")
    call_type: CallType
    from_: txt("calls.from_number", 40, alias="from") = ""
    to: Number
    upn: Upn | None = None
    organizer_upn: Upn | None = None
    conference_id: ident("calls.conference_id", ID_MAX) | None = None
    sip_domain: SipDomain | None = Field(None, description="a SIP domain of the tenant's "
                                                           "(when no tenant_id)")

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
    call_id: SipCallId


class InterimByIdIn(InterimIn):
    call_id: SipCallId


class CallEndByIdIn(CallEndIn):
    call_id: SipCallId


class CutIn(Body):
    call_id: SipCallId
    reason: str | None = Field(None, max_length=40, examples=["fraud_suspected"],
                               json_schema_extra={"pattern": r"^[a-z][a-z0-9_]*$"})


class SipDomainsIn(Body):
    domains: list[SipDomain] = Field(max_length=100)


class CdrIn(Body):
    call_id: SipCallId
    tenant_id: TenantId | None = None
    call_type: CallType
    from_: txt("calls.from_number", 40, alias="from") = ""
    to: Number
    upn: Upn | None = None
    organizer_upn: Upn | None = None
    sip_domain: SipDomain | None = None
    start_time: Annotated[datetime, BeforeValidator(_timestamp), AfterValidator(_utc),
                          Field(json_schema_extra=Timestamp)]
    duration_s: Seconds

    # other fields are kept aside (``model_extra``), not rated: the answer names them
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, populate_by_name=True)


class CdrsIn(Body):
    cdrs: list[CdrIn] = Field(min_length=1, max_length=1000)


class SmsIn(Body):
    message_id: MessageId
    tenant_id: TenantId
    upn: Upn | None = None
    from_: txt("usage_records.caller_id", 40, alias="from") = ""
    to: Number
    direction: Literal["out", "in"] = "out"
    segments: WholeInt = Field(1, ge=1, le=100)

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)
