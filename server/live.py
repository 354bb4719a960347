"""The visitor's live status: a WebSocket that pushes each change of their lead until it is over.

Changes come from the broadcast (in memory, or Redis across processes). A published change can be lost
(the process that made it died before publishing, Redis was away), so after `RECHECK_SECONDS` without
news the lead is read from the database, which is the truth: a lost last change cannot leave the
visitor's widget on "calling" for good.

Browsers send nothing on this socket or the dashboard's: a message of more than `MAX_CLIENT_MESSAGE`
bytes closes it with 1009 (uvicorn refuses one before it is even buffered, its `ws_max_size` being the
same, see server/cli.py; the check here holds under any server).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from dialer.core.errors import NotFound
from dialer.core.states import TERMINAL, LeadStatus
from dialer.engine.status import lead_channel
from server.api import load_lead, status_of

POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
MAX_CLIENT_MESSAGE = 4096  # bytes: what a browser may send on a socket it is only told things on
RECHECK_SECONDS = 15.0


async def wait_for_disconnect(websocket: WebSocket) -> int | None:
    """Read (and ignore) what the browser sends, text or bytes, until it goes away (None) or sends more
    than MAX_CLIENT_MESSAGE bytes (MESSAGE_TOO_BIG: the caller stops its sending, then `refuse`s)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("bytes") or message.get("text") or b""
        if len(data.encode() if isinstance(data, str) else data) > MAX_CLIENT_MESSAGE:
            return MESSAGE_TOO_BIG


async def refuse(websocket: WebSocket, code: int | None) -> None:
    """Close with `code` (from wait_for_disconnect), unless there is none or the socket is closed."""
    if code is not None and websocket.application_state == WebSocketState.CONNECTED:
        await websocket.close(code=code, reason=f"messages are at most {MAX_CLIENT_MESSAGE} bytes")


def _finished(status: str) -> bool:
    return status in TERMINAL or status == LeadStatus.RECEIVED


async def live_status(websocket: WebSocket) -> None:
    rt = websocket.app.state.runtime
    lead_id = websocket.path_params["lead_id"]
    async with rt.broadcast.subscribe(lead_channel(lead_id)) as updates:
        # Subscribed before reading, so no change falls between the snapshot and the stream.
        try:
            lead = await load_lead(rt, lead_id, websocket.query_params.get("token"))
        except NotFound:
            await websocket.close(code=POLICY_VIOLATION, reason="unknown lead or wrong token")
            return
        await websocket.accept()
        snapshot = await status_of(rt, lead)
        await websocket.send_json(snapshot)
        if _finished(lead.status):
            await websocket.close()
            return
        seen = snapshot["version"]

        news: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def listen() -> None:
            async for message in updates:
                news.put_nowait(message)

        async def forward() -> None:
            nonlocal seen
            while True:
                try:
                    message = await asyncio.wait_for(news.get(), RECHECK_SECONDS)
                except TimeoutError:  # quiet for a while: ask the database
                    message = await status_of(rt, await load_lead(rt, lead_id, websocket.query_params.get("token")))
                if message["version"] <= seen:
                    continue
                seen = message["version"]
                await websocket.send_json(message)
                if _finished(message["status"]):
                    await websocket.close()
                    break
            tg.cancel_scope.cancel()

        refused: int | None = None

        async def until_disconnect() -> None:
            nonlocal refused
            refused = await wait_for_disconnect(websocket)
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            tg.start_soon(forward)
            tg.start_soon(until_disconnect)
        await refuse(websocket, refused)


routes = [WebSocketRoute("/api/v1/callbacks/{lead_id}/live", live_status)]
