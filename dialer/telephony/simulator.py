"""The simulated telephone network: a first-class provider for the demo, tests and benchmarks.

Every number can be given a behaviour (answers after N s, never answers, busy, voicemail, presses 1,
hangs up after pressing 1, or between the visitor's answer and the bridge). Numbers nobody scripted
answer after a few seconds and press 1. It runs on any `Clock`, is deterministic under a seed, bills
answered legs per started minute from a per-country rate table, and reports prices a little late, as
real networks do. Like a real network, it outlives the engine:
events it cannot deliver while no engine is attached wait until one is.

It models the same network as the Twilio stand-in (`tests/twilio_standin/network.py`, whose docstring
cites Twilio's documentation for each behaviour), with Ringback's TwiML already applied:
- What Twilio reports in asynchronous status callbacks (a manager's ringing, answer and end; the visitor's
  ringing; a recording being ready) is, with `hostile`, delayed, reordered, duplicated or lost (seeded);
  `lose_recording_reports` loses every recording's report. A recording is kept on the manager's call
  that dialed the visitor (Twilio's parent call) and listed by `recordings`. What Twilio learns from a
  webhook it waits for (a key press; the visitor's answer, judged by answering machine detection; the
  visitor's end, from the Dial action, which also says when the manager's call ended first) is never lost.
- The visitor's voicemail is detected as a machine and never connected: the visitor's leg ends as
  `voicemail`, with no answer reported.
- When the manager's call ends while the visitor's rings or talks, the visitor's call ends with it.
- `call_status` answers how a call stands now, as fetching it from Twilio's REST API does (the visitor's
  answering machine detection verdict in `answered_by`).
- With `calls_per_second`, the account keeps Twilio's pace (`dialer/telephony/account.py`, the model the
  stand-in keeps too): a REST-created call (a manager's) waits in the account's queue, `1 / cps` seconds
  after the one before it, and the create answers at once with the wait (`PlacedCall.queue_seconds`,
  Twilio's `queue_time`: https://www.twilio.com/docs/voice/api/call-resource, "Calls Per Second";
  https://help.twilio.com/articles/223180028). The call reports `initiated` (a status callback) as it
  leaves the queue and rings a moment later; hung up while queued, it ends `canceled` and never rings.
  The visitor's leg, dialed by `<Dial>` from the manager's call, is not paced (same page). With
  `concurrent_requests`, creates in flight together past it are refused unprocessed with 20429, and a
  full queue with 22005, each as the Twilio provider reports them: a rate-limited `ProviderError` the
  engine puts back (https://www.twilio.com/docs/api/errors/20429, /22005). The queue runs on the
  simulator's clock (a manual one in tests). Without `calls_per_second` (the default; `ringback demo`
  keeps Twilio's 1 per second) every call is placed at once and no `initiated` is reported.

With a dial log (`log_path`), several processes, each with its own simulator, share one record of what
was dialed and how it ended (`sim_log`), as they would share a real provider's call log.

Beside it: `sim_scripts` (a person's `Behaviour`, the network's `Hostility`), `sim_calls` (a simulated
call, what is known of it, what it cost) and `sim_log`. Its length (about 440 lines): `SimulatedProvider`
is one class, the network's state machine; its calls' steps, their ends and the reports' delivery share
the clock, the account's queue and the seeded randomness.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from dialer.clock import Clock
from dialer.core.call_status import CallState
from dialer.core.events import (
    EventSink,
    KeyPressed,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegInitiated,
    LegRinging,
    PriceKnown,
    RecordingReady,
)
from dialer.core.states import EndReason, LegRole
from dialer.telephony.account import QUEUE_FULL, QUEUE_LIMIT, TOO_MANY_REQUESTS, CallQueue, RequestLimit
from dialer.telephony.base import CALL_OVER, CallRequest, CallStatus, PlacedCall, ProviderError, metered
from dialer.telephony.sim_calls import (
    DEFAULT_RATES,
    Dialed,
    SimCall,
    TextMessage,
    bridged,
    detection_verdict,
    price,
    tone_wav,
)
from dialer.telephony.sim_log import log_ended, log_placed, logged_sid, logged_status
from dialer.telephony.sim_scripts import Behaviour, Hostility  # tests, bench, demo import Behaviour here

log = logging.getLogger("ringback.simulator")

RING_DELAY = 1.0  # seconds from dialing to the first ring
PRICE_DELAY = 5.0  # seconds after hang-up before the price is known (and a recording ready)
DETECTION_SECONDS = 2.0  # answering machine detection's verdict on the visitor's answer
RECORDING_PREFIX = "sim://recordings/"
PACE_KEY = "simulator"  # the simulated account whose calls per second Ringback's pacer keeps to
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_Step = Callable[[SimCall], Awaitable[None]]


class SimulatedProvider:
    name = "simulator"

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        rates: dict[str, Decimal] | None = None,
        currency: str = "USD",
        log_path: str | None = None,
        hostile: Hostility | None = None,
        calls_per_second: float | None = None,
        concurrent_requests: int | None = None,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.hostile = hostile
        # The account's limits, as Twilio's (dialer/telephony/account.py): None, None is a kind account,
        # every call placed at once (tests and benchmarks about other things keep their speed).
        self.calls_per_second = calls_per_second
        self.queue = CallQueue(calls_per_second, queue_limit)
        self.requests = RequestLimit(concurrent_requests)
        self.queue_times: dict[str, float] = {}  # sid -> seconds the create said it would wait (queue_time)
        self.left_queue: dict[str, datetime] = {}  # sid -> when it left the queue (its `initiated`)
        self.cancelled_in_queue: set[str] = set()  # hung up while queued: never rang
        self.lost = 0  # callbacks the hostile network lost (a test reports it)
        self.clock = clock
        self.rates = dict(DEFAULT_RATES if rates is None else rates)
        self.currency = currency
        self.dialed: list[Dialed] = []
        self.texts: list[TextMessage] = []
        self._rng = random.Random(seed)
        self._scripts: dict[str, Behaviour] = {}
        self._calls: dict[str, SimCall] = {}
        self._by_leg: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._sink: EventSink | None = None
        self._backlog: list[LegEvent] = []
        self.refuse: dict[str, ProviderError] = {}
        self._recordings: dict[str, list[str]] = {}  # call sid -> its recordings' addresses, once ready
        self.lose_recording_reports = False  # every recording's report is lost (a test's hostile network)
        self.log_path = log_path
        self._live = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        # Call ids must not collide between the processes sharing a dial log.
        self._sid_prefix = f"SIM{os.getpid()}-" if log_path else "SIM"

    # scripting -------------------------------------------------------------------------------------

    def script(self, number: str, behaviour: Behaviour) -> None:
        self._scripts[number] = behaviour

    def behaviour_for(self, number: str) -> Behaviour:
        if number not in self._scripts:
            # Someone nobody scripted: picks up after a few seconds, presses 1, talks a while.
            self._scripts[number] = Behaviour(
                answer_after=round(self._rng.uniform(2.0, 5.0), 1),
                press_after=round(self._rng.uniform(2.0, 4.0), 1),
                talk_for=round(self._rng.uniform(30.0, 120.0)),
            )
        return self._scripts[number]

    def active_calls(self) -> list[SimCall]:
        return [c for c in self._calls.values() if not c.ended]

    def calls_to(self, number: str) -> list[SimCall]:
        """Every call placed to `number`, in the order placed: when each rang and, once over, ended."""
        return [c for c in self._calls.values() if c.request.to == number]

    async def quiet(self) -> None:
        """Wait until no call is in progress (a worker shutting down lets its calls finish)."""
        await self._quiet.wait()

    # the provider interface -----------------------------------------------------------------------

    def attach(self, sink: EventSink | None) -> None:
        self._sink = sink
        if sink is not None and self._backlog:
            self.clock.call_later(0, self._flush)

    @property
    def pace_key(self) -> str | None:
        """The account Ringback's pacer keeps the pace of (`dialer.engine.pacing`); None: not paced."""
        return PACE_KEY if self.calls_per_second is not None else None

    @metered("place_call")
    async def place_call(self, request: CallRequest) -> str | None:
        if self._dialed_in_call(request):
            return self._place(request)  # dialed by `<Dial>` from the manager's call: neither REST nor paced
        # A REST create: refused unprocessed past the account's requests in flight (20429), or when the
        # queue is full (22005); then queued at the account's calls per second.
        if not self.requests.enter():
            raise ProviderError(f"Twilio's rate limit was reached (error {TOO_MANY_REQUESTS})",
                                code=str(TOO_MANY_REQUESTS), permanent=False, rate_limited=True)
        try:
            if self.requests.concurrent is not None:
                # The answer comes back on the loop's next turn (no time passes, on any clock): creates
                # sent together, not one after another's answer, are in flight together.
                await asyncio.sleep(0)
            if self.queue.full:
                raise ProviderError(f"Twilio's call queue is full (error {QUEUE_FULL})", code=str(QUEUE_FULL),
                                    permanent=False, rate_limited=True)
            return self._place(request)
        finally:
            self.requests.leave()

    @staticmethod
    def _dialed_in_call(request: CallRequest) -> bool:
        return request.role is LegRole.VISITOR or request.bridge_sid is not None

    def _place(self, request: CallRequest) -> PlacedCall:
        if request.to in self.refuse:
            raise self.refuse[request.to]
        partner = self._calls.get(request.bridge_sid or "")
        if partner is not None and partner.ended:
            # The visitor is dialed from inside the manager's call; once that is over there is nothing
            # to dial from (Twilio: https://www.twilio.com/docs/api/errors/21220).
            raise ProviderError("the manager's call is over: the visitor cannot be dialed into it",
                                code=CALL_OVER, permanent=False, call_over=True)
        sid = f"{self._sid_prefix}{next(self._ids):08d}"
        call = SimCall(sid, request, self.behaviour_for(request.to), self.clock.now())
        self._calls[sid] = call
        self._by_leg[request.leg_id] = sid
        self._live += 1
        self._quiet.clear()
        self.dialed.append(Dialed(request.to, request.leg_id, request.role, call.placed_at))
        if self.log_path:
            log_placed(self.log_path, call)
        if request.bridge_sid is not None:
            call.partner = self._calls.get(request.bridge_sid)
            if call.partner is not None:
                call.partner.partner = call
        if self._dialed_in_call(request):
            self._after(call, RING_DELAY, self._ring)
            return PlacedCall(sid)
        wait = self.queue.admit((call.placed_at - _EPOCH).total_seconds())
        if self.calls_per_second is None:  # a kind account: no queue, nothing `initiated` would add
            self._after(call, RING_DELAY, self._ring)
            return PlacedCall(sid)
        self.queue_times[sid] = wait
        call.queued = wait > 0
        # Twilio posts `initiated` as the call leaves the queue (at once when nothing waits before it).
        self._after(call, wait, self._leave_queue)
        return PlacedCall(sid, wait)

    async def _leave_queue(self, call: SimCall) -> None:
        if call.queued:
            call.queued = False
            self.queue.left()
        self.left_queue[call.sid] = self.clock.now()
        await self._emit(LegInitiated(call.request.leg_id, call.sid), callback=True)
        self._after(call, RING_DELAY, self._ring)

    @metered("find_call")
    async def find_call(self, request: CallRequest, since: datetime) -> str | None:
        return self._by_leg.get(request.leg_id) or logged_sid(self.log_path, request.leg_id)

    @metered("call_status")
    async def call_status(self, sid: str) -> CallStatus | None:
        """How the call stands now, as fetching it from Twilio's REST API tells (its answering machine
        detection verdict included)."""
        call = self._calls.get(sid)
        if call is None:
            return logged_status(self.log_path, sid)
        answered = call.answered_at is not None
        answered_by = detection_verdict(call, call.end_reason)
        if call.ended:
            return CallStatus(CallState.ENDED, reason=call.end_reason, duration=round(call.ended_at_s or 0),
                              answered=answered, answered_by=answered_by, bridged=bridged(call))
        if answered:
            return CallStatus(CallState.IN_PROGRESS, answered=True, answered_by=answered_by)
        return CallStatus(CallState.RINGING if call.ringing else CallState.QUEUED)

    @metered("hangup")
    async def hangup(self, sid: str, say: str | None = None) -> None:
        call = self._calls.get(sid)
        if call is None or call.ended:
            return
        # A visitor's call is `completed` only once connected (answered by a person, past detection).
        talked = call.connected if call.request.role is LegRole.VISITOR else call.answered_at is not None
        await self._end(call, EndReason.COMPLETED if talked else EndReason.CANCELED)

    @metered("send_text")
    async def send_text(self, to: str, body: str, sender: str | None = None, *,
                        text_id: str | None = None) -> str | None:
        self.texts.append(TextMessage(to, body, self.clock.now()))
        return None

    @metered("recordings")
    async def recordings(self, sid: str) -> list[str]:
        return list(self._recordings.get(sid, ()))

    async def fetch_recording(self, url: str) -> tuple[bytes, str]:
        sid = url.removeprefix(RECORDING_PREFIX).removesuffix(".wav")
        call = self._calls.get(sid)
        if not url.startswith(RECORDING_PREFIX) or call is None or call.answered_at is None:
            raise ProviderError("no such recording")
        return tone_wav(seconds=min(3.0, max(0.5, (call.ended_at_s or 1.0)))), "audio/wav"

    async def close(self) -> None:
        self._sink = None

    # what the people at the other end do ------------------------------------------------------------

    def _after(self, call: SimCall, delay: float, step: _Step) -> None:
        async def run() -> None:
            if not call.ended:
                await step(call)

        call.timers.append(self.clock.call_later(delay, run))

    async def _ring(self, call: SimCall) -> None:
        b, timeout = call.behaviour, call.request.timeout
        if b.busy:
            await self._end(call, EndReason.BUSY)
            return
        call.ringing = True
        await self._emit(LegRinging(call.request.leg_id, call.sid), callback=True)
        if b.answer_after is None or b.answer_after > timeout:
            self._after(call, max(0.0, timeout - RING_DELAY), self._no_answer)
        else:
            self._after(call, max(0.0, b.answer_after - RING_DELAY), self._answer)

    async def _no_answer(self, call: SimCall) -> None:
        await self._end(call, EndReason.NO_ANSWER)

    async def _answer(self, call: SimCall) -> None:
        call.answered_at = self.clock.now()
        b = call.behaviour
        if call.request.role is LegRole.VISITOR:
            # Answering machine detection runs before any bridge: a machine is hung up on, a person joined.
            self._after(call, DETECTION_SECONDS, self._voicemail if b.voicemail else self._connect)
            return
        await self._emit(LegAnswered(call.request.leg_id, call.sid), callback=True)
        if b.voicemail:
            self._after(call, b.voicemail_seconds, self._hang_up_by_person)
        elif b.presses:
            self._after(call, b.press_after, self._press)
        else:
            self._after(call, 15.0, self._hang_up_by_person)  # listened to the whisper, said nothing

    async def _voicemail(self, call: SimCall) -> None:
        await self._end(call, EndReason.VOICEMAIL)

    async def _connect(self, call: SimCall) -> None:
        manager = call.partner
        if manager is not None and manager.behaviour.hangs_up_at_bridge:
            await self._emit(LegAnswered(call.request.leg_id, call.sid))  # the screen said a person
            await self._end(manager, EndReason.COMPLETED)  # and the manager was gone before the bridge
            return
        call.connected = True
        await self._emit(LegAnswered(call.request.leg_id, call.sid))
        # The call lasts `talk_for` from the answer, detection included (as the provider bills it).
        self._after(call, max(0.0, call.behaviour.talk_for - DETECTION_SECONDS), self._hang_up_by_person)

    async def _press(self, call: SimCall) -> None:
        digits = call.behaviour.presses or ""
        await self._emit(KeyPressed(call.request.leg_id, call.sid, digits=digits))
        # After 1 the manager waits for the visitor; after another key the whisper ends the call.
        self._after(call, 60.0 if digits.startswith("1") else 1.0, self._hang_up_if_alone)
        if digits.startswith("1") and call.behaviour.hangs_up_after is not None:
            self._after(call, call.behaviour.hangs_up_after, self._hang_up_by_person)

    async def _hang_up_if_alone(self, call: SimCall) -> None:
        if call.partner is None or call.partner.ended:
            await self._end(call, EndReason.COMPLETED)

    async def _hang_up_by_person(self, call: SimCall) -> None:
        await self._end(call, EndReason.COMPLETED)

    async def _end(self, call: SimCall, reason: EndReason) -> None:
        if call.ended:
            return
        call.ended, call.ended_at, call.end_reason = True, self.clock.now(), reason
        if call.queued:  # cancelled in the account's queue: it never rings
            call.queued = False
            self.queue.left()
            self.cancelled_in_queue.add(call.sid)
        self._live -= 1
        if self._live == 0:
            self._quiet.set()
        for timer in call.timers:
            timer.cancel()
        now = self.clock.now()
        duration = round((now - call.answered_at).total_seconds()) if call.answered_at else 0
        if self.log_path:
            log_ended(self.log_path, call, reason, duration)
        call.ended_at_s = float(duration)
        ended = LegEnded(call.request.leg_id, call.sid, reason=reason, duration=duration, bridged=bridged(call))
        partner = call.partner
        in_dial = partner is not None and not partner.ended
        if in_dial and partner is not None and self.hostile is not None and call.request.role is LegRole.MANAGER:
            call.unreported = partner.unreported = self._rng.random() >= self.hostile.action_after_hangup
        if (call.request.role is LegRole.VISITOR or in_dial) and not call.unreported:
            # The visitor's end is the Dial action's; a manager's end during a Dial is said in it too.
            await self._emit(ended)
        if call.request.role is LegRole.MANAGER:
            await self._emit(ended, callback=True)  # the manager's own status callback
        cost = price(self.rates, call, duration)

        async def bill() -> None:
            await self._emit(PriceKnown(call.request.leg_id, call.sid, price=cost, unit=self.currency))

        self.clock.call_later(PRICE_DELAY, bill)
        if call.request.record and call.connected:
            url = f"{RECORDING_PREFIX}{call.sid}.wav"
            # Kept on the call that dialed the visitor, as Twilio keeps a <Dial>'s recording on the parent.
            parent = partner.sid if partner is not None else call.sid

            async def recorded() -> None:
                self._recordings.setdefault(parent, []).append(url)
                if not self.lose_recording_reports:
                    await self._emit(RecordingReady(call.request.leg_id, call.sid, url=url), callback=True)

            self.clock.call_later(PRICE_DELAY, recorded)
        if partner is not None and not partner.ended:
            if call.request.role is LegRole.MANAGER:
                # The manager's call is over: the Dial to the visitor ends with it, ringing or talking.
                await self._end(partner, EndReason.COMPLETED if partner.connected else EndReason.CANCELED)
            elif call.connected and partner.answered_at is not None:
                # A bridged conversation ends for both sides when one hangs up.
                await self._end(partner, EndReason.COMPLETED)

    async def _emit(self, event: LegEvent, *, callback: bool = False) -> None:
        """Deliver a report. A `callback` is an asynchronous status callback: a hostile network holds it
        back, repeats it or loses it."""
        if callback and self.hostile is not None:
            hostile, rng = self.hostile, self._rng
            if rng.random() < hostile.lose:
                self.lost += 1
                return
            copies = 2 if rng.random() < hostile.duplicate else 1
            for _ in range(copies):
                self.clock.call_later(rng.uniform(0, hostile.delay), lambda: self._emit(event))
            return
        if self._sink is None:
            self._backlog.append(event)
            return
        await self._sink(event)

    async def _flush(self) -> None:
        while self._backlog and self._sink is not None:
            await self._sink(self._backlog.pop(0))

