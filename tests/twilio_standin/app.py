"""The stand-in's REST API: the part of Twilio's `2010-04-01` API Ringback uses, as JSON over HTTP
(https://www.twilio.com/docs/voice/api/call-resource, https://www.twilio.com/docs/voice/api/recording). What the calls then do is `network.py`'s."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.twilio_standin.network import Call, Network
from tests.twilio_standin.pace import Pace
from tests.twilio_standin.sms import Sms

REFUSED_AT_CREATE = {
    21211: "Invalid 'To' Phone Number",
    21214: "'To' phone number cannot be reached",
    21215: "Account not authorized to call this number: check your geo permissions",
}


def _error(status: int, code: int | None, message: str) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        body.update(code=code, more_info=f"https://www.twilio.com/docs/errors/{code}")
    return JSONResponse(body, status_code=status)


class Faults:
    """Misbehaviour a test asks for: errors before creates and updates, slow answers to them."""

    def __init__(self) -> None:
        self.create_errors: list[tuple[int, int | None]] = []  # (HTTP status, Twilio code), used in order
        self.slow_create: dict[str, float] = {}  # number -> seconds the answer is held after creating
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST request, in order
        self.created: dict[str, dict[str, str]] = {}  # call sid -> the create's parameters
        self.slow_update = 0.0  # seconds the answer to a call's update (hang up, redirect) is held
        self.update_errors: list[tuple[int, int | None]] = []  # answers to a call's updates, used in order


def create_app(network: Network, auth_token: str, faults: Faults, pace: Pace | None = None,
               sms: Sms | None = None) -> Starlette:
    pace = pace or Pace()
    sms = sms or Sms()

    def authorised(request: Request) -> bool:
        faults.requests.append((request.method, request.url.path.rsplit("/", 1)[-1]))
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == network.account_sid == request.path_params["account"] and password == auth_token

    async def calls(request: Request) -> Response:
        if not authorised(request):
            return _error(401, 20003, "Authenticate")
        if request.method == "GET":
            q = request.query_params
            found = [
                c for c in network.calls.values()
                if (not q.get("To") or c.to == q["To"]) and (not q.get("ParentCallSid") or c.parent_sid == q["ParentCallSid"])
            ]
            found.sort(key=lambda c: c.created, reverse=True)
            size = int(q.get("PageSize", "50"))
            return JSONResponse({"calls": [network.to_json(c) for c in found[:size]], "page": 0, "page_size": size,
                                 "start": 0, "end": min(size, len(found)), "uri": request.url.path,
                                 "first_page_uri": request.url.path, "next_page_uri": None, "previous_page_uri": None})
        if faults.create_errors:
            status, code = faults.create_errors.pop(0)
            return _error(status, code, "Injected failure")
        form = await request.form()
        to, from_ = str(form.get("To", "")), str(form.get("From", ""))
        refused = network.person(to).refuse_code
        if refused in REFUSED_AT_CREATE:
            return _error(400, refused, REFUSED_AT_CREATE[refused or 0])
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        if pace.full():
            return _error(429, 22005, "Call Queue Full")
        call = Call(
            sid=network.new_sid(),
            account_sid=network.account_sid,
            to=to,
            from_=from_,
            url=str(form.get("Url", "")) or None,
            fallback_url=str(form.get("FallbackUrl", "")) or None,
            machine_detection=str(form.get("MachineDetection", "")) or None,
            status_callback=str(form.get("StatusCallback", "")) or None,
            status_events=frozenset(str(v) for v in form.getlist("StatusCallbackEvent")) or frozenset({"completed"}),
            timeout=int(str(form.get("Timeout", "60"))),
        )
        faults.created[call.sid] = {key: str(value) for key, value in form.items()}
        queue_time = pace.place(network, call)  # started now, or when the account's pace allows (pace.py)
        if to in faults.slow_create:  # the call is placed, but the answer is lost on the way back
            await asyncio.sleep(faults.slow_create[to])
        return JSONResponse({**network.to_json(call), "queue_time": str(queue_time)}, status_code=201)

    async def call(request: Request) -> Response:
        if not authorised(request):
            return _error(401, 20003, "Authenticate")
        found = network.calls.get(request.path_params["sid"])
        if found is None:
            return _error(404, 20404, "The requested resource was not found")
        if request.method == "POST":
            form = await request.form()
            if faults.update_errors:
                status, code = faults.update_errors.pop(0)
                return _error(status, code, "Injected failure")
            if found.over:
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            if form.get("Twiml"):
                found.redirect = str(form["Twiml"])
            elif form.get("Status") in ("completed", "canceled"):
                found.redirect = None
            else:
                return JSONResponse(network.to_json(found))
            found.hangup.set()
            if faults.slow_update:
                await asyncio.sleep(faults.slow_update)
        return JSONResponse(network.to_json(found))

    async def recording(request: Request) -> Response:
        if not authorised(request):
            return _error(401, 20003, "Authenticate")
        audio = network.recordings.get(request.path_params["sid"])
        if audio is None:
            return _error(404, 20404, "The requested resource was not found")
        return Response(audio, media_type="audio/x-wav")

    async def recordings(request: Request) -> Response:
        """Read multiple Recording resources, newest first, filtered by `CallSid` (the parent call of a
        `<Dial>`): https://www.twilio.com/docs/voice/api/recording#read-multiple-recording-resources"""
        if not authorised(request):
            return _error(401, 20003, "Authenticate")
        q = request.query_params
        try:
            size = int(q.get("PageSize", "50"))
        except ValueError:
            return _error(400, 20001, "Invalid PageSize")
        found = [r for r in network.recorded.values() if not q.get("CallSid") or r.call_sid == q["CallSid"]]
        found.sort(key=lambda r: r.created, reverse=True)
        page = [network.recording_json(r) for r in found[:size]]
        return JSONResponse({"recordings": page, "page": 0, "page_size": size, "start": 0,
                             "end": max(0, len(page) - 1), "uri": request.url.path,
                             "first_page_uri": request.url.path, "next_page_uri": None, "previous_page_uri": None})

    async def messages(request: Request) -> Response:
        if not authorised(request):
            return _error(401, 20003, "Authenticate")
        refused = network.person(str((await request.form()).get("To", ""))).refuse_code
        if refused in REFUSED_AT_CREATE:
            return _error(400, refused, REFUSED_AT_CREATE[refused or 0])
        return await sms.create(request, network)  # refusals, delivery callbacks (sms.py)

    async def message(request: Request) -> Response:
        if not authorised(request):
            return _error(401, 20003, "Authenticate")
        return sms.fetch(network, request.path_params["sid"])

    prefix = "/2010-04-01/Accounts/{account}"
    return Starlette(routes=[
        Route(f"{prefix}/Calls.json", calls, methods=["GET", "POST"]),
        Route(f"{prefix}/Calls/{{sid}}.json", call, methods=["GET", "POST"]),
        Route(f"{prefix}/Recordings.json", recordings, methods=["GET"]),
        Route(f"{prefix}/Recordings/{{sid}}", recording, methods=["GET"]),
        Route(f"{prefix}/Messages.json", messages, methods=["POST"]),
        Route(f"{prefix}/Messages/{{sid}}.json", message, methods=["GET"]),
    ])
