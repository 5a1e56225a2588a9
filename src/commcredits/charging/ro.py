"""Diameter Credit-Control (RFC 4006 / RFC 8506; the Ro and Gy interfaces of 3GPP TS 32.299)
mapped onto the charging engine's requests, and its decisions back onto answers.

Pure: no network, no database. ``entrypoints.diameter`` reads a message off a connection,
hands its AVPs here, asks the engine what this module says to ask, and sends back the AVPs
this module builds. The rules stay those of the engine (``charging.requests``):

- CCR-Initial → ``authorize`` (``user_out``): Granted-Service-Unit CC-Time = what authorize
  grants (``max_duration_s``), Validity-Time = its ``validity_s``, Final-Unit-Indication
  TERMINATE when it is ``final``.
- CCR-Update → ``interim`` with the total used so far (each Used-Service-Unit is the seconds
  since the previous report); the first non-zero report is the answer (ringing is free).
- CCR-Termination → ``end`` with the total used seconds (0: never answered, free).
- CCR-Event (DIRECT_DEBITING) → an SMS.

The call id is derived from the Session-Id (``ro:`` + the Session-Id, or its hash when it
does not fit a call id), so a CCR retransmitted after a restart names the same call.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from diameter.message import constants as c
from diameter.message.avp import Avp, AvpGrouped

from commcredits.charging.requests import Kind

APP_CREDIT_CONTROL = 4  # Auth-Application-Id of Diameter Credit-Control
TGPP = c.VENDOR_TGPP
CALL_PREFIX = "ro:"
CALL_ID_MAX = 128  # domain.text.ID_MAX


class Code(IntEnum):
    SUCCESS = 2001
    COMMAND_UNSUPPORTED = 3001
    UNABLE_TO_DELIVER = 3002
    APPLICATION_UNSUPPORTED = 3007
    UNKNOWN_PEER = 3010
    END_USER_SERVICE_DENIED = 4010
    CREDIT_LIMIT_REACHED = 4012
    AVP_UNSUPPORTED = 5001
    UNKNOWN_SESSION_ID = 5002
    INVALID_AVP_VALUE = 5004
    MISSING_AVP = 5005
    NO_COMMON_APPLICATION = 5010
    UNABLE_TO_COMPLY = 5012
    USER_UNKNOWN = 5030
    RATING_FAILED = 5031


class RequestType(IntEnum):
    INITIAL = 1
    UPDATE = 2
    TERMINATION = 3
    EVENT = 4


SUB_E164, SUB_IMSI, SUB_SIP_URI = 0, 1, 2  # Subscription-Id-Type
DIRECT_DEBITING = 0  # Requested-Action
FINAL_TERMINATE = 0  # Final-Unit-Action

# our refusal reasons → Result-Code (API.md §Diameter Ro/Gy); any other reason is 4010
REFUSALS: dict[str, Code] = {
    "insufficient_credits": Code.CREDIT_LIMIT_REACHED,
    "daily_cap_reached": Code.CREDIT_LIMIT_REACHED,
    "unknown_user": Code.USER_UNKNOWN,
    "tenant_unresolved": Code.USER_UNKNOWN,
    "no_rate": Code.RATING_FAILED,
    "invalid_number": Code.RATING_FAILED,
}
# DomainError codes raised before a decision (the tenant or user cannot be found, …)
ERRORS: dict[str, Code] = {
    "tenant_unresolved": Code.USER_UNKNOWN,
    "not_found": Code.USER_UNKNOWN,
    "validation_error": Code.INVALID_AVP_VALUE,
    "forbidden": Code.END_USER_SERVICE_DENIED,
}


def refusal(reason: str | None) -> Code:
    return REFUSALS.get(reason or "", Code.END_USER_SERVICE_DENIED)


class Rejected(Exception):
    """A CCR that cannot be served as sent: answered with ``code`` (and the AVP at fault)."""

    def __init__(self, code: Code, message: str, avp: Avp | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.avp = avp


# -- reading a CCR -----------------------------------------------------------------------------
def first(avps: list[Avp], code: int, vendor: int = 0) -> Avp | None:
    for avp in avps:
        if avp.code == code and avp.vendor_id == vendor:
            return avp
    return None


def value(avps: list[Avp], *path: int | tuple[int, int]) -> Any:
    """The value at the end of ``path`` (AVP codes, or (code, vendor) pairs), or None."""
    found: Avp | None = None
    for step in path:
        code, vendor = step if isinstance(step, tuple) else (step, 0)
        found = first(avps, code, vendor)
        if found is None:
            return None
        if isinstance(found, AvpGrouped):
            avps = found.value
    return None if found is None else found.value


def unknown_mandatory(avps: list[Avp]) -> Avp | None:
    """The first AVP (at any depth) with the M bit that the dictionary does not know."""
    for avp in avps:
        if type(avp) is Avp and avp.is_mandatory:
            return avp
        if isinstance(avp, AvpGrouped):
            found = unknown_mandatory(avp.value)
            if found is not None:
                return found
    return None


def text(v: Any) -> str | None:
    if v is None:
        return None
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


@dataclass(frozen=True, slots=True)
class Ccr:
    session_id: str
    request_type: RequestType
    number: int
    origin_host: str
    subscriber: tuple[int, str] | None  # (Subscription-Id-Type, Subscription-Id-Data)
    called: str | None  # Called-Party-Address (or an SMS's recipient)
    calling: str | None
    requested_s: int | None  # Requested-Service-Unit CC-Time
    used_s: int  # Used-Service-Unit CC-Time (seconds since the previous report)
    segments: int = 1  # an SMS's (Requested-Service-Unit CC-Service-Specific-Units)
    direct_debiting: bool = False


def parse_ccr(avps: list[Avp]) -> Ccr:
    """The fields of a CCR we act on; :class:`Rejected` when one is missing or wrong."""
    bad = unknown_mandatory(avps)
    if bad is not None:
        raise Rejected(Code.AVP_UNSUPPORTED, f"AVP {bad.code} (vendor {bad.vendor_id}) is "
                                             "not supported", bad)
    session_id = text(value(avps, c.AVP_SESSION_ID))
    rtype, number = value(avps, c.AVP_CC_REQUEST_TYPE), value(avps, c.AVP_CC_REQUEST_NUMBER)
    host = text(value(avps, c.AVP_ORIGIN_HOST))
    for name, v in (("Session-Id", session_id), ("CC-Request-Type", rtype),
                    ("CC-Request-Number", number), ("Origin-Host", host)):
        if v is None or v == "":
            raise Rejected(Code.MISSING_AVP, f"{name} is missing")
    if rtype not in set(RequestType):
        raise Rejected(Code.INVALID_AVP_VALUE, f"CC-Request-Type {rtype} is not 1-4",
                       first(avps, c.AVP_CC_REQUEST_TYPE))
    subscriber = None
    sub = first(avps, c.AVP_SUBSCRIPTION_ID)
    if isinstance(sub, AvpGrouped):
        kind = value(sub.value, c.AVP_SUBSCRIPTION_ID_TYPE)
        data = text(value(sub.value, c.AVP_SUBSCRIPTION_ID_DATA))
        if kind is not None and data:
            subscriber = (int(kind), data.strip())
    ims = ((c.AVP_TGPP_SERVICE_INFORMATION, TGPP), (c.AVP_TGPP_IMS_INFORMATION, TGPP))
    called = text(value(avps, *ims, (c.AVP_TGPP_CALLED_PARTY_ADDRESS, TGPP))) or text(value(
        avps, (c.AVP_TGPP_SERVICE_INFORMATION, TGPP), (c.AVP_TGPP_SMS_INFORMATION, TGPP),
        (c.AVP_TGPP_RECIPIENT_INFO, TGPP), (c.AVP_TGPP_RECIPIENT_ADDRESS, TGPP),
        (c.AVP_TGPP_ADDRESS_DATA, TGPP)))
    calling = text(value(avps, *ims, (c.AVP_TGPP_CALLING_PARTY_ADDRESS, TGPP)))
    mscc = [a for a in avps if a.code == c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL]
    requested, used, units = None, 0, None
    for m in mscc:
        if not isinstance(m, AvpGrouped):
            continue
        asked = value(m.value, c.AVP_REQUESTED_SERVICE_UNIT, c.AVP_CC_TIME)
        requested = asked if asked is not None else requested
        units = value(m.value, c.AVP_REQUESTED_SERVICE_UNIT, c.AVP_CC_SERVICE_SPECIFIC_UNITS) \
            or units
        used += sum(value(u.value, c.AVP_CC_TIME) or 0 for u in m.value
                    if u.code == c.AVP_USED_SERVICE_UNIT and isinstance(u, AvpGrouped))
    if requested is None:
        requested = value(avps, c.AVP_REQUESTED_SERVICE_UNIT, c.AVP_CC_TIME)
    used += sum(value(u.value, c.AVP_CC_TIME) or 0 for u in avps
                if u.code == c.AVP_USED_SERVICE_UNIT and isinstance(u, AvpGrouped))
    segments = units or value(avps, c.AVP_REQUESTED_SERVICE_UNIT,
                              c.AVP_CC_SERVICE_SPECIFIC_UNITS) or 1
    action = value(avps, c.AVP_REQUESTED_ACTION)
    return Ccr(session_id, RequestType(rtype), int(number), host, subscriber, called, calling,
               requested, int(used), int(segments),
               action == DIRECT_DEBITING if action is not None else rtype == RequestType.EVENT)


# -- identities --------------------------------------------------------------------------------
_PRINTABLE = re.compile(r"[!-~]+")


def call_id_of(session_id: str) -> str:
    """Our call id for a Session-Id: the same every time it is asked."""
    plain = CALL_PREFIX + session_id
    if len(plain) <= CALL_ID_MAX and _PRINTABLE.fullmatch(plain):
        return plain
    return CALL_PREFIX + "h:" + hashlib.sha256(session_id.encode()).hexdigest()


def message_id_of(session_id: str) -> str:
    """Our SMS message id for a Session-Id (an identifier: no "/" either)."""
    plain = call_id_of(session_id)
    if "/" not in plain:
        return plain
    return CALL_PREFIX + "h:" + hashlib.sha256(session_id.encode()).hexdigest()


def e164(address: str | None) -> str | None:
    """``+E164`` from ``tel:+E164``, ``sip:+E164@host;user=phone`` or bare digits."""
    if not address:
        return None
    a = address.strip()
    a = re.sub(r"^(tel|sips?):", "", a, flags=re.I).split("@")[0].split(";")[0]
    digits = a.lstrip("+").replace("-", "").replace(".", "")
    return "+" + digits if digits.isdigit() and 4 <= len(digits) <= 15 else None


def subscriber_key(subscriber: tuple[int, str] | None) -> tuple[str, str] | None:
    """What identifies the user: ``("phone", "+E164")`` or ``("upn", "user@domain")``."""
    if subscriber is None:
        return None
    kind, data = subscriber
    if kind == SUB_E164:
        number = e164(data)
        return ("phone", number) if number else None
    if kind == SUB_SIP_URI:
        uri = re.sub(r"^sips?:", "", data, flags=re.I).split(";")[0].strip().lower()
        user = uri.split("@")[0]
        if re.fullmatch(r"\+?[0-9]{4,15}", user):  # sip:+E164@host: a phone number
            number = e164(user)
            return ("phone", number) if number else None
        return ("upn", uri.split(":")[0] if uri.count(":") == 1 else uri) if "@" in uri \
            else None
    return None


# -- the session: what to ask the engine -------------------------------------------------------
@dataclass(slots=True)
class Session:
    """One Credit-Control session as this process knows it."""
    session_id: str
    call_id: str
    peer: str  # the Origin-Host that opened it
    used_s: int = 0  # total used seconds reported so far
    answered: bool = False
    ended: bool = False
    answers: dict[int, Any] = field(default_factory=dict)  # CC-Request-Number → answer
    seen: float = 0.0  # when it was last heard from (monotonic seconds)


def call_body(ccr: Ccr, tenant_id: str, upn: str, frm: str | None) -> dict[str, Any]:
    """The ``POST /v1/calls`` body of a CCR-Initial (what ``CallIn`` validates)."""
    to = e164(ccr.called)
    if to is None:
        raise Rejected(Code.MISSING_AVP if not ccr.called else Code.INVALID_AVP_VALUE,
                       "Service-Information/IMS-Information/Called-Party-Address must be "
                       "tel:+E164 or sip:+E164@…")
    return {"call_id": call_id_of(ccr.session_id), "tenant_id": tenant_id,
            "call_type": "user_out", "from": frm or e164(ccr.calling) or "", "to": to,
            "upn": upn}


def sms_body(ccr: Ccr, tenant_id: str, upn: str, frm: str | None) -> dict[str, Any]:
    """The ``POST /v1/sms`` body of a CCR-Event."""
    to = e164(ccr.called)
    if to is None:
        raise Rejected(Code.MISSING_AVP, "the SMS recipient (Called-Party-Address or "
                                         "SMS-Information/Recipient-Address) is missing")
    return {"message_id": message_id_of(ccr.session_id), "tenant_id": tenant_id, "upn": upn,
            "from": frm or "", "to": to, "direction": "out",
            "segments": max(1, min(ccr.segments, 100))}


def report(session: Session, ccr: Ccr, now: datetime) -> tuple[Kind, dict[str, Any], int]:
    """The engine request of a CCR-Update or -Termination in ``session``, and the total used
    seconds it reports (kept in the session once the engine has answered)."""
    total = session.used_s + max(ccr.used_s, 0)
    answered_at = None
    if total > 0 and not session.answered:
        answered_at = now - timedelta(seconds=total)
    body: dict[str, Any] = {"call_id": session.call_id, "answered_at": answered_at}
    if ccr.request_type == RequestType.TERMINATION:
        return Kind.END, {**body, "duration_s": total}, total
    return Kind.INTERIM, {**body, "elapsed_s": total}, total


# -- answers -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cca:
    code: Code
    granted_s: int | None = None  # Granted-Service-Unit CC-Time
    validity_s: int | None = None
    final: bool = False  # Final-Unit-Indication TERMINATE
    message: str | None = None  # Error-Message


def _granted(answer: dict[str, Any], elapsed_s: int, default_s: int) -> int:
    max_s = answer.get("max_duration_s")
    if max_s is None:  # unlimited (free or included): grant a slice at a time
        return max(int(answer.get("validity_s") or default_s), 1)
    return max(int(max_s) - elapsed_s, 0)


def for_authorize(decision: dict[str, Any], default_s: int) -> Cca:
    if decision.get("decision") != "allowed":
        return Cca(refusal(decision.get("reason")), message=decision.get("reason"))
    return Cca(Code.SUCCESS, _granted(decision, 0, default_s), decision.get("validity_s"),
               bool(decision.get("final")))


def for_interim(answer: dict[str, Any], elapsed_s: int, default_s: int) -> Cca:
    if not answer.get("continue", True):
        reason = answer.get("reason")
        return Cca(refusal(reason) if reason else Code.CREDIT_LIMIT_REACHED, 0, None, True,
                   reason)
    granted = _granted(answer, elapsed_s, default_s)
    if granted <= 0:
        return Cca(Code.CREDIT_LIMIT_REACHED, 0, None, True, "insufficient_credits")
    return Cca(Code.SUCCESS, granted, answer.get("validity_s"), bool(answer.get("final")))


def for_sms(result: dict[str, Any]) -> Cca:
    if result.get("decision") == "blocked":
        return Cca(refusal(result.get("reason")), message=result.get("reason"))
    return Cca(Code.SUCCESS)


def for_error(code: str, message: str) -> Cca:
    return Cca(ERRORS.get(code, Code.UNABLE_TO_COMPLY), message=f"{code}: {message}"[:200])


def new(code: int, v: Any, vendor: int = 0, mandatory: bool = True) -> Avp:
    return Avp.new(code, vendor, value=v, is_mandatory=mandatory)


def identity(origin_host: str, origin_realm: str) -> list[Avp]:
    return [new(c.AVP_ORIGIN_HOST, origin_host.encode()),
            new(c.AVP_ORIGIN_REALM, origin_realm.encode())]


def cca_avps(cca: Cca, ccr: Ccr, origin_host: str, origin_realm: str) -> list[Avp]:
    """The AVPs of the Credit-Control-Answer to ``ccr``."""
    avps = [new(c.AVP_SESSION_ID, ccr.session_id), new(c.AVP_RESULT_CODE, int(cca.code)),
            *identity(origin_host, origin_realm),
            new(c.AVP_AUTH_APPLICATION_ID, APP_CREDIT_CONTROL),
            new(c.AVP_CC_REQUEST_TYPE, int(ccr.request_type)),
            new(c.AVP_CC_REQUEST_NUMBER, ccr.number)]
    if cca.message:
        avps.append(new(c.AVP_ERROR_MESSAGE, cca.message, mandatory=False))
    if cca.granted_s is not None and ccr.request_type in (RequestType.INITIAL,
                                                          RequestType.UPDATE):
        mscc: list[Avp] = [new(c.AVP_GRANTED_SERVICE_UNIT, [new(c.AVP_CC_TIME, cca.granted_s)])]
        if cca.validity_s is not None and not cca.final:
            mscc.append(new(c.AVP_VALIDITY_TIME, int(cca.validity_s)))
        mscc.append(new(c.AVP_RESULT_CODE, int(cca.code)))
        if cca.final:
            mscc.append(new(c.AVP_FINAL_UNIT_INDICATION,
                            [new(c.AVP_FINAL_UNIT_ACTION, FINAL_TERMINATE)]))
        avps.append(new(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, mscc))
    return avps


def error_avps(session_id: str | None, code: Code, origin_host: str, origin_realm: str,
               message: str | None = None, failed: Avp | None = None) -> list[Avp]:
    """An answer that refuses the request itself (RFC 6733 §7: 3xxx/5xxx)."""
    avps = ([new(c.AVP_SESSION_ID, session_id)] if session_id else []) + [
        new(c.AVP_RESULT_CODE, int(code)), *identity(origin_host, origin_realm)]
    if message:
        avps.append(new(c.AVP_ERROR_MESSAGE, message[:200], mandatory=False))
    if failed is not None:
        avps.append(new(c.AVP_FAILED_AVP, [failed]))
    return avps
