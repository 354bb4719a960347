"""The telephone network behind the stand-in: scripted people at numbers, and calls that play our TwiML.

Calls run as tasks in the stand-in's event loop, on a compressed time scale (`Network.second` real
seconds per second of the call: a 20 s ring lasts 0.2 s). They fetch TwiML and post signed callbacks the
way Twilio does. One set of behaviours, each following Twilio's documentation:

- Status callbacks are asynchronous: the call goes on while they travel, and only the events asked for
  in `StatusCallbackEvent` (or `<Number statusCallbackEvent>`) are sent, else only `completed`. They carry
  `CallSid`, `CallStatus`, `Timestamp`, `CallbackSource`, `SequenceNumber` and the common parameters
  (`AccountSid`, `ApiVersion`, `Direction`, `From`, `To`, `ParentCallSid` on a `<Dial>` leg), plus
  `CallDuration` once completed and `AnsweredBy` where machine detection ran.
  https://www.twilio.com/docs/voice/api/call-resource#statuscallback ,
  https://www.twilio.com/docs/voice/twiml/number#attributes-status-callback-event
  In **hostile** mode (`Hostility`, seeded) a status callback may be held back (so a call's callbacks
  arrive reordered), delivered twice, or lost: Twilio does not promise order, retries webhooks, and a
  request can fail for good (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides).
  TwiML fetches (the call's `Url`, a `<Gather>` or `<Dial>` action, a `<Number url>`) are requests the call
  waits on: never lost or repeated, but bounded by the deadline below.
- Twilio waits 15 s in all for a TwiML answer (`twiml_deadline`); when the `Url` fails (late, not 2xx, not
  TwiML) the call's `FallbackUrl` is requested with `ErrorCode` and `ErrorUrl`, else the caller hears "An
  application error has occurred" and the call ends. An action URL that fails ends the call likewise.
  https://www.twilio.com/docs/errors/11205 , https://www.twilio.com/docs/usage/security/availability-reliability
- `<Redirect>` hands the call to the TwiML at its URL (POSTed, signed like every request); the verbs after it
  are never played (https://www.twilio.com/docs/voice/twiml/redirect). `<Pause length>` waits that many
  seconds (https://www.twilio.com/docs/voice/twiml/pause). A Redirect whose TwiML fails is a failure "while
  executing your call": the call's `FallbackUrl` is requested with `ErrorUrl` the Redirect's URL
  (https://www.twilio.com/docs/usage/security/availability-reliability). A REST update replaces whatever is
  playing, a Pause or a Redirect's fetch alike.
- Ring timeouts are honoured: `Timeout` on a REST call (default 60), `<Dial timeout>` (default 30); a
  phone not answered by then ends `no-answer`. https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource ,
  https://www.twilio.com/docs/voice/twiml/dial#timeout
- Answering machine detection (`MachineDetection` on a REST call, `<Number machineDetection>` on a
  `<Dial>` leg, synchronous there): once the phone answers, `AnsweredBy` is `human` for a person and
  `machine_start` for a voicemail greeting (`DetectMessageEnd` waits for its end: `machine_end_beep`),
  sent with the first TwiML fetch of that call (the `Url`, or the Number's `url`) and its status
  callbacks, and kept on the call resource (`answered_by`). Confirmed: `<Number machineDetection>` and its
  timeouts exist, synchronous detection decides before the parties are connected, the verdict stays on the
  call resource (https://www.twilio.com/docs/voice/answering-machine-detection ,
  https://www.twilio.com/docs/voice/twiml/number , https://www.twilio.com/docs/api/errors/21262). Not
  confirmed: which requests of a `<Dial>` leg carry `AnsweredBy` (the `<Number url>` fetch, its status
  callbacks, the Dial action). `Network.answered_by_on_screen = False` leaves it off the `url` fetch;
  Ringback then reads the call resource.
- `<Number url>` runs on the called party after they answer and before the bridge; a `<Hangup>` there
  ends that leg unbridged. The `<Dial>` action gets `DialCallStatus`, `DialCallSid`, `DialCallDuration`
  and `DialBridged` (true only when the parties were connected), with the parent call's own `CallStatus`
  (`completed` when the caller hung up during the dial). https://www.twilio.com/docs/voice/twiml/dial#action
  Whether the action is requested after the caller hung up is not confirmed: the kind network requests it,
  the hostile one at random.
- A `<Dial record>` recording is kept on the parent call, `processing` for a moment after the dial and
  then `completed`, when its `recordingStatusCallback` is sent: an asynchronous request like the status
  callbacks (hostile mode may hold it back, repeat or lose it; `lose_recording_callbacks` loses them all).
  `GET /Recordings.json?CallSid=` lists them with the documented fields.
  https://www.twilio.com/docs/voice/api/recording , https://www.twilio.com/docs/voice/twiml/dial#recordingstatuscallback
- A manager can hang up while the visitor rings or talks (`Person.hangs_up_after`), or in the instant
  between the visitor's screen (answered, a person) and the bridge (`Person.hangs_up_at_bridge`): the
  `<Dial>` ends with the parent call, and its action says `DialBridged=false`. Their `completed` status
  callback and the Dial action race (`Network.caller_status_first` puts either first). A REST update with `Twiml` replaces what the call is doing (an interrupted `<Dial>` ends
  its leg and requests no action); `Status=completed` hangs it up.
  https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin

import aiohttp
from twilio.request_validator import RequestValidator

SECOND = 0.01  # real seconds per second of a call, by default
TWIML_DEADLINE = 15.0  # real seconds Twilio waits for a TwiML answer
APPLICATION_ERROR = "An application error has occurred."


@dataclass(frozen=True)
class Person:
    """How the person (or machine) at a number treats a call."""

    answers: bool = True
    busy: bool = False
    voicemail: bool = False  # a greeting answers and listens; it never presses a key
    presses: str | None = None  # digits pressed at the first Gather
    talk_for: int = 42  # seconds of conversation, then this person hangs up
    refuse_code: int | None = None  # Twilio refuses the number with this error code
    ring_for: float = 0.0  # real seconds an unanswered phone rings at least (a test may act meanwhile)
    answer_after: float = 1.0  # seconds of ringing before they pick up
    hangs_up_after: float | None = None  # seconds after pressing a key at which they hang up anyway
    # A manager who hangs up in the instant between the visitor's screen (answered: a person) and the
    # bridge: the visitor's leg ends answered and never bridged.
    hangs_up_at_bridge: bool = False

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
    def pressing(cls, digits: str = "1", talk_for: int = 42, hangs_up_after: float | None = None) -> Person:
        return cls(presses=digits, talk_for=talk_for, hangs_up_after=hangs_up_after)

    @classmethod
    def invalid(cls, code: int = 21211) -> Person:
        return cls(refuse_code=code)


@dataclass(frozen=True)
class Hostility:
    """How unkind the network is to status callbacks; the same seed gives the same misfortunes."""

    seed: int = 0
    delay: float = 0.5  # real seconds a callback may be held back
    duplicate: float = 0.2  # probability a callback is delivered twice
    lose: float = 0.1  # probability a callback is never delivered
    action_after_hangup: float = 0.5  # probability the Dial action is requested once the caller hung up


@dataclass
class Call:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None = None
    fallback_url: str | None = None
    status_callback: str | None = None
    status_events: frozenset[str] = frozenset()
    timeout: int = 60
    machine_detection: str | None = None
    parent_sid: str | None = None
    status: str = "queued"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: datetime | None = None
    ended: datetime | None = None
    duration: int | None = None
    answered_by: str | None = None
    heard: list[str] = field(default_factory=list)  # what was said to this person
    pressed: list[str] = field(default_factory=list)
    dial_attrs: dict[str, str] = field(default_factory=dict)  # the <Dial> that placed this child call
    price_fetches: int = 0
    hangup: asyncio.Event = field(default_factory=asyncio.Event)  # hung up or redirected (REST, or the person)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # set when the call is over
    redirect: str | None = None
    bridged: bool = False
    sequence: itertools.count[int] = field(default_factory=itertools.count)
    outbox: list[asyncio.Task[None]] = field(default_factory=list)  # its callbacks on their way
    _queue: asyncio.Task[None] | None = None  # the kind network's in-order delivery

    @property
    def over(self) -> bool:
        return self.ended is not None


@dataclass
class Recording:
    """A `<Dial record>` recording, kept on the parent call (a Recording's `call_sid` "will always refer to
    the parent leg of a two-leg call": https://www.twilio.com/docs/voice/api/recording). It is `processing`
    for a moment after the call, then `completed`; only then is its media there and its callback sent."""

    sid: str
    call_sid: str
    created: datetime
    duration: int
    status: str = "processing"


@dataclass(frozen=True)
class Posted:
    url: str
    params: dict[str, str]
    status: int


class _Failed(Exception):
    """A TwiML fetch that did not give TwiML in time (Twilio's 11200/11205)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Network:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str,
        *,
        price_lag: int = 2,
        hostile: Hostility | None = None,
        second: float = SECOND,
        twiml_deadline: float = TWIML_DEADLINE,
    ) -> None:
        self.messages: list[tuple[str, str, str]] = []  # (to, from, body) of text messages sent
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.base_url = base_url
        self.price_lag = price_lag  # fetches that see no price yet, after a call ends
        self.hostile = hostile
        self.second = second
        self.twiml_deadline = twiml_deadline
        self.rng = random.Random(hostile.seed if hostile else 0)
        self.lost: list[Posted] = []  # callbacks the hostile network never delivered
        self.people: dict[str, Person] = {}
        self.calls: dict[str, Call] = {}
        self.posted: list[Posted] = []
        self.replies: dict[str, str] = {}  # what Ringback answered to each TwiML fetch, by URL (the last)
        self.recordings: dict[str, bytes] = {}  # recording sid -> its media, once completed
        self.recorded: dict[str, Recording] = {}  # recording sid -> the resource (`GET /Recordings.json`)
        self.lose_recording_callbacks = False  # every recording status callback is lost (a test asks)
        self.rates = {"+1": Decimal("0.0140"), "+48": Decimal("0.0350")}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        # When a caller hangs up during a <Dial>: True, their `completed` status callback is delivered
        # before the Dial action is requested; False, only after it; None, the two race.
        self.caller_status_first: bool | None = None
        # Whether the <Number url> fetch carries `AnsweredBy` (not confirmed by Twilio's documentation;
        # the call resource keeps it either way).
        self.answered_by_on_screen = True

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
        self._spawn(self._run(call))

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settled(self, call: Call) -> None:
        """The call is over and each of its callbacks delivered (or lost)."""
        await call.finished.wait()
        while any(not t.done() for t in call.outbox):
            await asyncio.gather(*call.outbox, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # talking to Ringback ----------------------------------------------------------------------------

    async def post(self, url: str, params: dict[str, str], *, timeout: float | None = None) -> str:
        """A signed webhook request, as Twilio sends it; returns the body (TwiML, or nothing)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        limit = aiohttp.ClientTimeout(total=timeout or self.twiml_deadline)
        async with self._session.post(url, data=params, headers=headers, timeout=limit) as response:
            body = await response.text()
            self.posted.append(Posted(url, dict(params), response.status))
            return body if response.status == 200 else ""

    async def fetch_twiml(self, url: str, params: dict[str, str]) -> list[ET.Element]:
        """The verbs of the TwiML at `url`; `_Failed` when Twilio would not get it (late, not 2xx, not XML)."""
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
            limit = aiohttp.ClientTimeout(total=self.twiml_deadline)
            async with self._session.post(url, data=params, headers=headers, timeout=limit) as response:
                body = await response.text()
                self.posted.append(Posted(url, dict(params), response.status))
                self.replies[url] = body
        except TimeoutError:
            self.posted.append(Posted(url, dict(params), 0))
            raise _Failed(11205) from None
        if response.status != 200:
            raise _Failed(11200)
        try:
            root = ET.fromstring(body) if body.strip() else ET.Element("Response")
        except ET.ParseError:
            raise _Failed(12100) from None
        return list(root)

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
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        params.update({k: str(v) for k, v in extra.items() if v is not None})
        return params

    def _status(self, call: Call, status: str, event: str) -> None:
        """The call's status moves on; its status callback (if asked for) leaves, and the call goes on."""
        call.status = status
        if not (call.status_callback and event in call.status_events):
            return
        extra: dict[str, object] = {
            "SequenceNumber": next(call.sequence),
            "CallbackSource": "call-progress-events",
            "Timestamp": format_datetime(datetime.now(UTC)),
        }
        if call.over:
            extra.update(CallDuration=call.duration or 0)
        self._send(call, Posted(call.status_callback, self._params(call, **extra), 0))

    def _send(self, call: Call, posted: Posted) -> None:
        """An asynchronous callback about `call` leaves: in turn on the kind network; held back, repeated
        or lost on the hostile one."""
        if self.hostile is None:
            previous = call._queue
            call._queue = self._spawn(self._in_turn(previous, posted))
            call.outbox.append(call._queue)
            return
        if self.rng.random() < self.hostile.lose:
            self.lost.append(posted)
            return
        copies = 2 if self.rng.random() < self.hostile.duplicate else 1
        for _ in range(copies):
            call.outbox.append(self._spawn(self._later(self.rng.uniform(0, self.hostile.delay), posted)))

    async def _in_turn(self, previous: asyncio.Task[None] | None, posted: Posted) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        await self._deliver(posted)

    async def _later(self, delay: float, posted: Posted) -> None:
        await asyncio.sleep(delay)
        await self._deliver(posted)

    async def _deliver(self, posted: Posted) -> None:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # Ringback away: the callback is lost
            await self.post(posted.url, posted.params)

    def _end(self, call: Call, status: str, duration: int = 0) -> None:
        if call.over:
            return
        call.ended, call.duration = datetime.now(UTC), duration
        self._status(call, status, "completed")
        call.finished.set()

    # playing a call ---------------------------------------------------------------------------------

    async def _wait(self, call: Call, seconds: float) -> bool:
        """Let `seconds` of the call pass; True if it was hung up or redirected meanwhile."""
        try:
            await asyncio.wait_for(call.hangup.wait(), max(seconds * self.second, 0.001))
        except TimeoutError:
            return call.hangup.is_set()
        return True

    async def _run(self, call: Call) -> None:
        with contextlib.suppress(aiohttp.ClientError):  # Ringback went away (the test is over)
            await self._play_call(call)

    async def _ring(self, call: Call, person: Person, timeout: float) -> str | None:
        """Ring the phone: None once answered, else how the call ends (no-answer, canceled)."""
        if person.ring_for and not person.answers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.hangup.wait(), person.ring_for)
            if call.hangup.is_set():
                return "canceled"
        answers = person.answers and person.answer_after <= timeout
        if await self._wait(call, person.answer_after if answers else timeout):
            return "canceled"
        return None if answers else "no-answer"

    def _detect(self, call: Call, person: Person) -> None:
        if call.machine_detection:
            if not person.voicemail:
                call.answered_by = "human"
            else:
                call.answered_by = "machine_end_beep" if call.machine_detection == "DetectMessageEnd" else "machine_start"

    async def _play_call(self, call: Call) -> None:
        person = self.person(call.to)
        self._status(call, "initiated", "initiated")
        if await self._wait(call, 0):
            self._end(call, "canceled")
            return
        if person.busy:
            self._end(call, "busy")
            return
        self._status(call, "ringing", "ringing")
        ended = await self._ring(call, person, call.timeout)
        if ended is not None:
            self._end(call, ended)
            return
        call.started = datetime.now(UTC)
        self._detect(call, person)
        self._status(call, "in-progress", "answered")
        talked = 30 if person.voicemail else 20
        try:
            verbs = await self.fetch_twiml(call.url, self._params(call)) if call.url else []
        except _Failed as failed:
            verbs = await self._fallback(call, failed.code)
        talked += await self._play(call, person, verbs)
        self._end(call, "completed", duration=talked)

    async def _fallback(self, call: Call, code: int, failed: str | None = None) -> list[ET.Element]:
        if call.fallback_url:
            try:
                params = self._params(call, ErrorCode=code, ErrorUrl=failed or call.url)
                return await self.fetch_twiml(call.fallback_url, params)
            except _Failed:
                pass
        call.heard.append(APPLICATION_ERROR)
        return []

    async def _play(self, call: Call, person: Person, verbs: list[ET.Element]) -> int:
        """Follow TwiML (and the documents it leads to); returns the seconds the call lasted."""
        seconds = 0
        while True:
            next_verbs: list[ET.Element] | None = None
            for verb in verbs:
                if call.hangup.is_set():
                    if call.redirect is None:
                        return seconds
                    next_verbs, call.redirect = _verbs(call.redirect), None
                    call.hangup.clear()
                    break
                if verb.tag == "Say":
                    call.heard.append((verb.text or "").strip())
                    seconds += 3
                elif verb.tag == "Pause":
                    length = int(verb.get("length", "1"))
                    await self._wait(call, length)
                    seconds += length
                elif verb.tag == "Hangup":
                    return seconds
                elif verb.tag == "Gather":
                    call.heard.extend((say.text or "").strip() for say in verb.iter("Say"))
                    seconds += 6
                    digits = None if person.voicemail or call.pressed else person.presses
                    if digits:
                        call.pressed.append(digits)
                        if person.hangs_up_after is not None:
                            self._spawn(self._hang_up_later(call, person.hangs_up_after))
                        action = verb.get("action") or call.url or ""
                        next_verbs = await self._action(call, action, Digits=digits, FinishedOnKey="")
                        break
                    await self._wait(call, int(verb.get("timeout", "5")))
                elif verb.tag == "Dial":
                    talked, next_verbs = await self._dial(call, verb)
                    seconds += talked
                    break
                elif verb.tag == "Redirect":
                    next_verbs = await self._redirected(call, urljoin(call.url or "", (verb.text or "").strip()))
                    break
            if next_verbs is None:
                if call.hangup.is_set() and call.redirect is not None:
                    next_verbs, call.redirect = _verbs(call.redirect), None
                    call.hangup.clear()
                else:
                    return seconds
            verbs = next_verbs

    async def _redirected(self, call: Call, url: str) -> list[ET.Element]:
        try:
            return await self.fetch_twiml(url, self._params(call))
        except _Failed as failed:
            return await self._fallback(call, failed.code, url)

    async def _action(self, call: Call, url: str, **extra: object) -> list[ET.Element] | None:
        try:
            return await self.fetch_twiml(url, self._params(call, **extra))
        except _Failed:
            call.heard.append(APPLICATION_ERROR)
            return None

    async def _hang_up_later(self, call: Call, seconds: float) -> None:
        await asyncio.sleep(seconds * self.second)
        call.redirect = None
        call.hangup.set()

    async def _dial(self, parent: Call, dial: ET.Element) -> tuple[int, list[ET.Element] | None]:
        number = dial.find("Number")
        if number is None or not (number.text or "").strip():
            return 0, None
        attrs = dict(dial.attrib)
        child = Call(
            sid=self.new_sid(),
            account_sid=self.account_sid,
            to=(number.text or "").strip(),
            from_=attrs.get("callerId") or parent.from_,
            status_callback=number.get("statusCallback"),
            status_events=frozenset((number.get("statusCallbackEvent") or "completed").split()),
            timeout=int(attrs.get("timeout", "30")),
            machine_detection=number.get("machineDetection"),
            parent_sid=parent.sid,
            dial_attrs=attrs,
        )
        self.calls[child.sid] = child
        person = self.person(child.to)
        result: dict[str, object] = {"DialCallSid": child.sid}
        duration = 0
        if person.refuse_code is not None:
            self._end(child, "failed")
            result.update(DialCallStatus="failed")
        elif person.busy:
            self._end(child, "busy")
            result.update(DialCallStatus="busy")
        else:
            duration, status = await self._connect(parent, child, person, number)
            result.update(DialCallStatus=status, DialCallDuration=duration)
            recorded = attrs.get("record", "do-not-record").startswith("record")
            if child.bridged and recorded:
                parent.outbox.append(self._spawn(self._recorded(parent, attrs.get("recordingStatusCallback"),
                                                                duration)))
        result["DialBridged"] = "true" if child.bridged else "false"
        action = attrs.get("action")
        if parent.hangup.is_set() and parent.redirect is not None:
            return duration, None  # redirected through the REST API: the Dial ends, no action
        if parent.hangup.is_set():  # the caller hung up during the dial
            hostile = self.hostile
            if self.caller_status_first is not False:
                self._end(parent, "completed", duration=20 + duration)
                if self.caller_status_first:
                    await self.settled(parent)
            if action and (hostile is None or self.rng.random() < hostile.action_after_hangup):
                with contextlib.suppress(_Failed, TimeoutError):  # its answer is not played
                    await self.fetch_twiml(action, self._params(parent, **result, CallStatus="completed"))
            self._end(parent, "completed", duration=20 + duration)
            return duration, None
        if not action:
            return duration, None
        return duration, await self._action(parent, action, **result)

    async def _connect(self, parent: Call, child: Call, person: Person, number: ET.Element) -> tuple[int, str]:
        """Ring the dialed number and, once answered (and screened), bridge it: the duration and
        DialCallStatus."""
        self._status(child, "ringing", "ringing")
        ringing = asyncio.ensure_future(self._ring(child, person, child.timeout))
        hung_up = asyncio.ensure_future(parent.hangup.wait())
        await asyncio.wait({ringing, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        hung_up.cancel()
        if not ringing.done():  # the caller hung up (or was redirected) while it rang
            ringing.cancel()
            self._end(child, "canceled")
            return 0, "canceled"
        if ringing.result() is not None:
            self._end(child, ringing.result() or "no-answer")
            return 0, "no-answer"
        child.started = datetime.now(UTC)
        self._detect(child, person)
        self._status(child, "in-progress", "answered")
        seconds = 2 if child.machine_detection else 0
        if number.get("url"):
            try:
                screen = self._params(child)
                if not self.answered_by_on_screen:
                    screen.pop("AnsweredBy", None)
                verbs = await self.fetch_twiml(number.get("url") or "", screen)
            except _Failed:
                verbs = [ET.Element("Hangup")]
            child.heard.extend((v.text or "").strip() for v in verbs if v.tag == "Say")
            if self.person(parent.to).hangs_up_at_bridge:
                parent.redirect = None
                parent.hangup.set()
            if any(v.tag == "Hangup" for v in verbs) or parent.hangup.is_set():
                self._end(child, "completed", duration=seconds + 1)
                return seconds + 1, "completed"
        child.bridged = True
        talk = max(1, (30 if person.voicemail else person.talk_for) - seconds)  # `talk_for` counts from the answer
        started = asyncio.get_running_loop().time()
        await self._wait(parent, talk)  # the conversation, until one of them hangs up
        elapsed = (asyncio.get_running_loop().time() - started) / self.second
        duration = seconds + (talk if not parent.hangup.is_set() else max(1, round(elapsed)))
        self._end(child, "completed", duration=duration)
        return duration, "completed"

    async def _recorded(self, parent: Call, callback: str | None, duration: int) -> None:
        """The recording is processed for a moment after the dial, then completed and its status callback
        sent (https://www.twilio.com/docs/voice/twiml/dial#recordingstatuscallback): an asynchronous
        request that the hostile network may hold back, repeat or lose, like any other."""
        recording = Recording(self.new_sid("RE"), parent.sid, datetime.now(UTC), duration)
        self.recorded[recording.sid] = recording
        await asyncio.sleep(self.second)
        self.recordings[recording.sid] = b"RIFF" + secrets.token_bytes(64)
        recording.status = "completed"
        if not callback:
            return
        params = {
            "AccountSid": self.account_sid,
            "CallSid": parent.sid,
            "RecordingSid": recording.sid,
            "RecordingUrl": self.recording_url(recording),
            "RecordingStatus": "completed",
            "RecordingDuration": str(duration),
            "RecordingChannels": "2",
            "RecordingSource": "DialVerb",
        }
        posted = Posted(callback, params, 0)
        if self.lose_recording_callbacks:
            self.lost.append(posted)
            return
        self._send(parent, posted)

    def recording_url(self, recording: Recording) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording.sid}"

    def recording_json(self, recording: Recording) -> dict[str, Any]:
        """The Recording resource with the fields Twilio documents
        (https://www.twilio.com/docs/voice/api/recording#recording-properties)."""
        created = format_datetime(recording.created)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "call_sid": recording.call_sid,
            "conference_sid": None,
            "date_created": created,
            "date_updated": created,
            "start_time": created,
            "duration": str(recording.duration) if recording.status == "completed" else None,
            "sid": recording.sid,
            "price": None,
            "price_unit": "USD",
            "status": recording.status,
            "channels": 2,
            "source": "DialVerb",
            "error_code": None,
            "uri": uri,
            "encryption_details": None,
            "subresource_uris": {
                "add_on_results": uri.replace(".json", "/AddOnResults.json"),
                "transcriptions": uri.replace(".json", "/Transcriptions.json"),
            },
            "media_url": self.recording_url(recording),
        }

    def to_json(self, call: Call) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return format_datetime(value) if value else None

        return {
            "sid": call.sid,
            "account_sid": call.account_sid,
            "parent_call_sid": call.parent_sid,
            "to": call.to,
            "from": call.from_,
            "status": call.status,
            "answered_by": call.answered_by,
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


def _verbs(document: str) -> list[ET.Element]:
    try:
        return list(ET.fromstring(document))
    except ET.ParseError:
        return [ET.Element("Hangup")]
