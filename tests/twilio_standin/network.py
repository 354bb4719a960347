"""The telephone network behind the stand-in: scripted people at numbers, and calls that play our TwiML.

Calls run as tasks in the stand-in's event loop. They fetch TwiML from the `Url` given at create, follow
`<Say>`, `<Gather>`, `<Dial><Number>` and `<Hangup>`, and post signed status, action and recording
callbacks, the way Twilio does (on a compressed time scale: a "ring" lasts a few milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

TICK = 0.01  # seconds: one "moment" on the stand-in's network


@dataclass(frozen=True)
class Person:
    """How the person (or machine) at a number treats a call."""

    answers: bool = True
    busy: bool = False
    voicemail: bool = False  # a greeting answers and listens; it never presses a key
    presses: str | None = None  # digits pressed at the first Gather
    talk_for: int = 42  # seconds of conversation (reported as the duration; played in a moment)
    refuse_code: int | None = None  # Twilio refuses the number with this error code
    ring_for: float = 0.0  # real seconds an unanswered phone rings (a test may act meanwhile)

    @classmethod
    def never_answers(cls) -> Person:
        return cls(answers=False)

    @classmethod
    def busy_line(cls) -> Person:
        return cls(busy=True)

    @classmethod
    def voicemail_box(cls) -> Person:
        return cls(voicemail=True)

    @classmethod
    def pressing(cls, digits: str = "1", talk_for: int = 42) -> Person:
        return cls(presses=digits, talk_for=talk_for)

    @classmethod
    def invalid(cls, code: int = 21211) -> Person:
        return cls(refuse_code=code)


@dataclass
class Call:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None = None
    status_callback: str | None = None
    status_events: frozenset[str] = frozenset()
    timeout: int = 60
    parent_sid: str | None = None
    status: str = "queued"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: datetime | None = None
    ended: datetime | None = None
    duration: int | None = None
    heard: list[str] = field(default_factory=list)  # what was said to this person
    pressed: list[str] = field(default_factory=list)
    dial_attrs: dict[str, str] = field(default_factory=dict)  # the <Dial> that placed this child call
    price_fetches: int = 0
    hangup: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # set when the call is over
    redirect: str | None = None
    sequence: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def over(self) -> bool:
        return self.ended is not None


@dataclass(frozen=True)
class Posted:
    url: str
    params: dict[str, str]
    status: int


class Network:
    def __init__(self, account_sid: str, auth_token: str, base_url: str, *, price_lag: int = 2) -> None:
        self.messages: list[tuple[str, str, str]] = []  # (to, from, body) of text messages sent
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.base_url = base_url
        self.price_lag = price_lag  # fetches that see no price yet, after a call ends
        self.people: dict[str, Person] = {}
        self.calls: dict[str, Call] = {}
        self.posted: list[Posted] = []
        self.recordings: dict[str, bytes] = {}
        self.rates = {"+1": Decimal("0.0140"), "+48": Decimal("0.0350")}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # bookkeeping ------------------------------------------------------------------------------------

    def person(self, number: str) -> Person:
        return self.people.get(number, Person(presses="1"))

    def new_sid(self, prefix: str = "CA") -> str:
        return prefix + secrets.token_hex(16)

    def calls_to(self, number: str) -> list[Call]:
        return [c for c in self.calls.values() if c.to == number]

    def price_of(self, call: Call) -> str | None:
        """Twilio bills per started minute and fills the price in only a while after the call."""
        if not call.over:
            return None
        call.price_fetches += 1
        if call.price_fetches <= self.price_lag:
            return None
        rate = next((r for p, r in self.rates.items() if call.to.startswith(p)), Decimal("0.08"))
        minutes = math.ceil((call.duration or 0) / 60)
        return str(-(rate * minutes).quantize(Decimal("0.00001")))

    def start(self, call: Call) -> None:
        self.calls[call.sid] = call
        task = asyncio.ensure_future(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # talking to Ringback ----------------------------------------------------------------------------

    async def post(self, url: str, params: dict[str, str]) -> str:
        """A signed webhook request, as Twilio sends it; returns the body (TwiML, or nothing)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        async with self._session.post(url, data=params, headers=headers) as response:
            body = await response.text()
            self.posted.append(Posted(url, dict(params), response.status))
            return body if response.status == 200 else ""

    def _params(self, call: Call, **extra: object) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Direction": "outbound-dial" if call.parent_sid else "outbound-api",
            "From": call.from_,
            "To": call.to,
        }
        if call.parent_sid:
            params["ParentCallSid"] = call.parent_sid
        params.update({k: str(v) for k, v in extra.items() if v is not None})
        return params

    async def _status(self, call: Call, status: str, event: str) -> None:
        call.status = status
        if call.status_callback and event in call.status_events:
            extra: dict[str, object] = {"SequenceNumber": next(call.sequence), "CallbackSource": "call-progress-events"}
            if call.over:
                extra.update(CallDuration=call.duration or 0, Duration=math.ceil((call.duration or 0) / 60))
            await self.post(call.status_callback, self._params(call, **extra))

    async def _end(self, call: Call, status: str, duration: int = 0) -> None:
        if call.over:
            return
        call.ended, call.duration = datetime.now(UTC), duration
        call.finished.set()
        await self._status(call, status, "completed")

    # playing a call ---------------------------------------------------------------------------------

    async def _wait(self, call: Call, seconds: float = TICK) -> bool:
        """Let a moment pass; True if the call was hung up or redirected through the REST API meanwhile."""
        try:
            await asyncio.wait_for(call.hangup.wait(), max(seconds, TICK))
        except TimeoutError:
            return False
        return True

    async def _run(self, call: Call) -> None:
        with contextlib.suppress(aiohttp.ClientError):  # Ringback went away (the test is over)
            await self._play_call(call)

    async def _play_call(self, call: Call) -> None:
        person = self.person(call.to)
        await self._status(call, "initiated", "initiated")
        if await self._wait(call):
            await self._end(call, "canceled")
            return
        if person.busy:
            await self._end(call, "busy")
            return
        await self._status(call, "ringing", "ringing")
        if await self._wait(call, 0 if person.answers else person.ring_for) or not person.answers:
            await self._end(call, "canceled" if call.hangup.is_set() else "no-answer")
            return
        call.started = datetime.now(UTC)
        await self._status(call, "in-progress", "answered")
        talked = 30 if person.voicemail else 20
        document = await self.post(call.url or "", self._params(call)) if call.url else "<Response/>"
        talked += await self._play(call, person, document)
        await self._end(call, "completed", duration=talked)

    async def _play(self, call: Call, person: Person, document: str) -> int:
        """Follow one TwiML document (and those it leads to); returns the seconds the call lasted."""
        seconds = 0
        while True:
            try:
                verbs = list(ET.fromstring(document)) if document.strip() else []
            except ET.ParseError:
                call.heard.append("An application error has occurred.")
                return seconds
            next_document = None
            for verb in verbs:
                if call.hangup.is_set():
                    if call.redirect is None:
                        return seconds
                    next_document, call.redirect = call.redirect, None
                    call.hangup.clear()
                    break
                if verb.tag == "Say":
                    call.heard.append((verb.text or "").strip())
                    seconds += 3
                elif verb.tag == "Hangup":
                    return seconds
                elif verb.tag == "Gather":
                    call.heard.extend((say.text or "").strip() for say in verb.iter("Say"))
                    seconds += 6
                    digits = None if person.voicemail or call.pressed else person.presses
                    if digits:
                        call.pressed.append(digits)
                        action = verb.get("action") or call.url or ""
                        next_document = await self.post(action, self._params(call, Digits=digits, FinishedOnKey=""))
                        break
                    await self._wait(call)
                elif verb.tag == "Dial":
                    talked, next_document = await self._dial(call, verb)
                    seconds += talked
                    if next_document is None:
                        return seconds
                    break
            if next_document is None:
                return seconds
            document = next_document

    async def _dial(self, parent: Call, dial: ET.Element) -> tuple[int, str | None]:
        number = dial.find("Number")
        if number is None or not (number.text or "").strip():
            return 0, None
        attrs = {k: v for k, v in dial.attrib.items()}
        child = Call(
            sid=self.new_sid(),
            account_sid=self.account_sid,
            to=(number.text or "").strip(),
            from_=attrs.get("callerId") or parent.from_,
            status_callback=number.get("statusCallback"),
            status_events=frozenset((number.get("statusCallbackEvent") or "completed").split()),
            timeout=int(attrs.get("timeout", "30")),
            parent_sid=parent.sid,
            dial_attrs=attrs,
        )
        self.calls[child.sid] = child
        person = self.person(child.to)
        result: dict[str, object] = {"DialCallSid": child.sid}
        duration = 0
        if person.refuse_code is not None:
            await self._end(child, "failed")
            result.update(DialCallStatus="failed", ErrorCode=person.refuse_code,
                          ErrorMessage="Dial: Twilio does not support calling this number or the number is invalid")
        elif person.busy:
            await self._end(child, "busy")
            result.update(DialCallStatus="busy")
        else:
            await self._status(child, "ringing", "ringing")
            if not person.answers:
                await self._wait(parent)
                await self._end(child, "no-answer")
                result.update(DialCallStatus="no-answer")
            else:
                child.started = datetime.now(UTC)
                await self._status(child, "in-progress", "answered")
                if number.get("url"):
                    notice = await self.post(number.get("url") or "", self._params(child))
                    child.heard.extend((s.text or "").strip() for s in ET.fromstring(notice).iter("Say"))
                await self._wait(parent)  # the conversation
                duration = person.talk_for
                await self._end(child, "completed", duration=duration)
                result.update(DialCallStatus="completed", DialCallDuration=duration)
                if attrs.get("record", "do-not-record").startswith("record") and attrs.get("recordingStatusCallback"):
                    await self._recorded(parent, attrs["recordingStatusCallback"], duration)
        action = attrs.get("action")
        if not action:
            return duration, None
        return duration, await self.post(action, self._params(parent, **result))

    async def _recorded(self, parent: Call, callback: str, duration: int) -> None:
        sid = self.new_sid("RE")
        self.recordings[sid] = b"RIFF" + secrets.token_bytes(64)
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        params = {
            "AccountSid": self.account_sid,
            "CallSid": parent.sid,
            "RecordingSid": sid,
            "RecordingUrl": url,
            "RecordingStatus": "completed",
            "RecordingDuration": str(duration),
            "RecordingChannels": "2",
            "RecordingSource": "DialVerb",
        }
        await self.post(callback, params)

    def to_json(self, call: Call) -> dict[str, Any]:
        from email.utils import format_datetime

        def when(value: datetime | None) -> str | None:
            return format_datetime(value) if value else None

        return {
            "sid": call.sid,
            "account_sid": call.account_sid,
            "parent_call_sid": call.parent_sid,
            "to": call.to,
            "from": call.from_,
            "status": call.status,
            "direction": "outbound-dial" if call.parent_sid else "outbound-api",
            "date_created": when(call.created),
            "date_updated": when(call.ended or call.started or call.created),
            "start_time": when(call.started),
            "end_time": when(call.ended),
            "duration": str(call.duration) if call.duration is not None else None,
            "price": self.price_of(call),
            "price_unit": "USD",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{call.account_sid}/Calls/{call.sid}.json",
        }
