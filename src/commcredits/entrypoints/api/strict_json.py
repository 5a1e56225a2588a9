"""JSON bodies as RFC 8259 has them, or a 422 that says what is wrong and where.

* **UTF-8 only.** A body in UTF-16 or UTF-32 (which Python's ``json`` would guess and
  accept) or with bytes that are not UTF-8 is refused. A UTF-8 byte order mark is ignored
  (RFC 8259 lets a parser do so).
* **No duplicate names.** ``{"amount": "1", "amount": "1000"}`` is refused, naming the field:
  money must not depend on which duplicate a parser keeps.
* **Malformed JSON** is refused with where it broke: ``body is not valid JSON: Expecting
  ',' delimiter (line 1, column 38)``, field ``body``.

:class:`StrictJsonBodies` checks every JSON body (or a body without a content type, which
FastAPI parses as JSON) before any route sees it. The switch's hot path
(``front.engine_request``) does not parse twice: it compares the number of names orjson
kept with the number of ``:`` in the bytes (:func:`has_duplicate_names`), and hands a body
that differs to the application, which refuses it here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# every JSON string in order, and whether a ":" follows it (then it is a member name); strings
# never overlap and no '"' occurs outside one, so the scan stays aligned on valid JSON
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"\s*(:?)', re.DOTALL)
_BOM = b"\xef\xbb\xbf"


class BodyProblem(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def _names_in(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_names_in(v) for v in value.values())
    if isinstance(value, list):
        return sum(_names_in(v) for v in value)
    return 0


def has_duplicate_names(body: bytes, parsed: Any) -> bool:
    """Whether ``body`` (valid JSON, already parsed into ``parsed``) names a member twice
    in one object: the parser keeps one of them, so fewer names survive than were sent.

    Every name is followed by one ``:`` outside strings, and every such ``:`` follows a
    name. Without escapes (``\\u003a``) the body's ``:`` inside strings are exactly those
    of its strings, so the body has as many ``:`` as the parsed value written again
    (orjson, compact) unless a name and its value were dropped: one serialisation and two
    byte counts, about a microsecond for a switch's body. A body with escapes has its names
    counted by a scan of its strings instead."""
    if not isinstance(parsed, dict | list):
        return False
    if b"\\" not in body:
        try:
            return body.count(b":") != orjson.dumps(parsed).count(b":")
        except TypeError:  # a number orjson cannot write (beyond 64 bits): count names
            pass
    sent = _STRING.findall(body)
    return len(sent) - sent.count(b"") != _names_in(parsed)


def _position(doc: str, pos: int) -> str:
    line = doc.count("\n", 0, pos) + 1
    column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise BodyProblem(name, "appears more than once in the body; send each field "
                                    "once")
        out[name] = value
    return out


def loads(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`BodyProblem` naming the field if it is not UTF-8
    JSON with unique names."""
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        utf16 = body[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(body) > 1 and 0 in body[:4])
        raise BodyProblem("body", "is not UTF-8" + (" (it looks like UTF-16 or UTF-32)"
                                                   if utf16 else "")
                          + "; JSON must be sent as UTF-8 (RFC 8259)") from None
    if "\x00" in text[:4]:  # ASCII in UTF-16/32 without a BOM (a raw NUL is never JSON)
        raise BodyProblem("body", "is not UTF-8 (it looks like UTF-16 or UTF-32); JSON must "
                                  "be sent as UTF-8 (RFC 8259)")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise BodyProblem("body", f"is not valid JSON: {e.msg} ({_position(text, e.pos)})"
                          ) from None
    except RecursionError:
        raise BodyProblem("body", "is nested too deeply") from None


def check(body: bytes) -> BodyProblem | None:
    """What is wrong with a JSON body (None: nothing). Fast for the usual good body: orjson
    and a count of names; the strict parse only when those disagree or orjson refuses."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = _STRICT
    if parsed is not _STRICT and not has_duplicate_names(body, parsed):
        return None
    try:
        loads(body)
    except BodyProblem as problem:
        return problem
    return None


_STRICT = object()


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind = bytes(value).split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/")
                                                    and kind.endswith(b"+json"))
    return True  # FastAPI parses a body without a content type as JSON


def problem_body(problem: BodyProblem) -> bytes:
    message = f"{problem.field} {problem.problem}"
    return json.dumps({"error": {"code": "validation_error", "message": message,
                                 "details": [{"field": problem.field,
                                              "problem": problem.problem}]}}).encode()


class StrictJsonBodies:
    """Refuses (422 ``validation_error``) a JSON body that is not UTF-8, names a member
    twice or does not parse; any other request passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") \
                or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, once(message), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = check(body) if body.strip() else None
        if problem is not None:
            payload = problem_body(problem)
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, replayed(body, receive), send)


def once(message: Message) -> Receive:
    """A receive that hands the app ``message`` (an event already read)."""
    async def receive() -> Message:
        return message
    return receive


def replayed(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own events."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay
