"""The stand-in's text messages: refusals, delivery callbacks, prices, and visitors who reply STOP.

- Refusals at create (HTTP 400), as Twilio answers them: a verified caller ID as the sender, 21601
  (https://www.twilio.com/docs/api/errors/21601); a sender that is not an SMS-capable number, 21606
  (https://www.twilio.com/docs/api/errors/21606); a recipient who replied STOP to this account, 21610
  on every send until they reply START (https://www.twilio.com/docs/api/errors/21610); a landline, 21614
  (https://www.twilio.com/docs/api/errors/21614). A Messaging Service SID (`MessagingServiceSid`) may be
  the sender instead of `From` (https://www.twilio.com/docs/messaging/api/message-resource).
- Delivery is asynchronous: the create answers `queued`, then the `StatusCallback` is posted (signed)
  with `MessageSid`, `MessageStatus` (`sent`, then `delivered`, or `undelivered`/`failed` with
  `ErrorCode`) (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status). With
  `reorder`, `delivered` comes before `sent`, and with `duplicate` every callback comes twice.
- The price is filled in only once the message is final (and `price_lag` fetches later), negative.
- A reply is posted to the number's Messaging webhook like an inbound text, and STOP / START change
  what later sends get (Twilio's default opt-out handling:
  https://help.twilio.com/articles/223134027).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.twilio_standin.network import Network

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}


@dataclass
class Text:
    sid: str
    to: str
    sender: str
    body: str
    status: str = "queued"
    status_callback: str | None = None
    price_fetches: int = 0


@dataclass
class Sms:
    verified_caller_ids: set[str] = field(default_factory=set)  # senders refused with 21601
    not_sms_capable: set[str] = field(default_factory=set)  # senders refused with 21606
    landlines: set[str] = field(default_factory=set)  # recipients refused with 21614
    undelivered: dict[str, int] = field(default_factory=dict)  # recipient -> ErrorCode of its failure
    opted_out: set[str] = field(default_factory=set)  # recipients who replied STOP
    reorder: bool = False
    duplicate: bool = False
    price_lag: int = 1
    texts: dict[str, Text] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def refusal(self, to: str, sender: str) -> tuple[int, str] | None:
        if sender in self.verified_caller_ids:
            return 21601, "Phone number is not a valid SMS-capable inbound phone number"
        if sender in self.not_sms_capable:
            return 21606, "The 'From' phone number provided is not a valid message-capable Twilio phone number"
        if to in self.opted_out:
            return 21610, "Attempt to send to unsubscribed recipient"
        if to in self.landlines:
            return 21614, "'To' number is not a valid mobile number"
        return None

    async def create(self, request: Request, network: Network) -> Response:
        form = await request.form()
        to, body = str(form.get("To", "")), str(form.get("Body", ""))
        sender = str(form.get("MessagingServiceSid") or form.get("From") or "")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        refused = self.refusal(to, sender)
        if refused is not None:
            return _error(400, *refused)
        text = Text("SM" + secrets.token_hex(16), to, sender, body,
                    status_callback=str(form.get("StatusCallback", "")) or None)
        self.texts[text.sid] = text
        network.messages.append((to, sender, body))
        task = asyncio.ensure_future(self._deliver(network, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse(self.to_json(network, text, counting=False), status_code=201)

    async def _deliver(self, network: Network, text: Text) -> None:
        code = self.undelivered.get(text.to)
        final = ("undelivered", code) if code else ("delivered", None)
        steps: list[tuple[str, int | None]] = [("sent", None), final]
        if self.reorder:
            steps.reverse()
        for status, error in steps:
            await asyncio.sleep(0.005)
            if text.status not in ("delivered", "undelivered", "failed"):
                text.status = status
            if text.status_callback:
                params = {"AccountSid": network.account_sid, "ApiVersion": "2010-04-01", "MessageSid": text.sid,
                          "SmsSid": text.sid, "MessageStatus": status, "SmsStatus": status, "To": text.to,
                          "From": text.sender}
                if error:
                    params["ErrorCode"] = str(error)
                for _ in range(2 if self.duplicate else 1):
                    await network.post(text.status_callback, params)

    async def reply(self, network: Network, webhook: str, from_: str, to: str, body: str) -> str:
        """The visitor at `from_` texts `body` to our number `to`: Twilio's opt-out handling, then the
        number's Messaging webhook."""
        word = body.strip().upper()
        if word in STOP_WORDS:
            self.opted_out.add(from_)
        elif word in START_WORDS:
            self.opted_out.discard(from_)
        params = {"AccountSid": network.account_sid, "ApiVersion": "2010-04-01", "MessageSid": "SM" + secrets.token_hex(16),
                  "From": from_, "To": to, "Body": body, "NumMedia": "0"}
        return await network.post(webhook, params)

    def to_json(self, network: Network, text: Text, *, counting: bool = True) -> dict[str, Any]:
        price = None
        if counting and text.status in ("delivered", "undelivered", "failed"):
            text.price_fetches += 1
            if text.price_fetches > self.price_lag:
                price = "-0.00790"
        return {"sid": text.sid, "account_sid": network.account_sid, "to": text.to, "from": text.sender,
                "body": text.body, "status": text.status, "direction": "outbound-api", "num_segments": "1",
                "price": price, "price_unit": "USD", "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{network.account_sid}/Messages/{text.sid}.json"}

    def fetch(self, network: Network, sid: str) -> Response:
        text = self.texts.get(sid)
        if text is None:
            return _error(404, 20404, "The requested resource was not found")
        return JSONResponse(self.to_json(network, text))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, "code": code,
                         "more_info": f"https://www.twilio.com/docs/errors/{code}"}, status_code=status)
