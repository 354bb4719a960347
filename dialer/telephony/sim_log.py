"""The simulators' shared dial log: every placed call appended to a file as one JSON line, how each ended
to a second file beside it (`…ended`). Several processes, each with its own simulator, share one record
of what was dialed, as they would share a real provider's call log, and any process can tell what
became of another's call. A call whose process died before it ended died with that process's simulated
network: nobody knows how it ended."""

from __future__ import annotations

import json
import os
from typing import Any

from dialer.core.call_status import CallState
from dialer.core.states import EndReason
from dialer.telephony.base import CallStatus
from dialer.telephony.sim_calls import SimCall, bridged, detection_verdict


def log_placed(path: str, call: SimCall) -> None:
    line = {
        "at": call.placed_at.isoformat(),
        "pid": os.getpid(),
        "sid": call.sid,
        "leg_id": call.request.leg_id,
        "role": str(call.request.role),
        "to": call.request.to,
    }
    _append(path, line)


def log_ended(path: str, call: SimCall, reason: EndReason, duration: int) -> None:
    line = {"sid": call.sid, "reason": str(reason), "duration": duration, "answered": call.answered_at is not None,
            "answered_by": detection_verdict(call, reason), "bridged": bridged(call), "connected": call.connected}
    _append(f"{path}.ended", line)


def logged_sid(path: str | None, leg_id: str) -> str | None:
    """A call another process placed for this leg (it died before it could record the call id)."""
    line = _logged_line(path, "leg_id", leg_id)
    return str(line["sid"]) if line is not None else None


def logged_status(path: str | None, sid: str) -> CallStatus | None:
    """Another process's call, from the shared logs: over (as it logged), still going on (its process
    lives), or unknown (its process died with the call: the simulated network went with it)."""
    placed = _logged_line(path, "sid", sid)
    if placed is None:
        return None
    ended = _logged_line(f"{path}.ended", "sid", sid)
    if ended is not None:
        return CallStatus(CallState.ENDED, reason=EndReason(ended["reason"]), duration=int(ended["duration"]),
                          answered=bool(ended["answered"]), answered_by=ended.get("answered_by"),
                          bridged=ended.get("bridged"))
    if int(placed["pid"]) != os.getpid() and _alive(int(placed["pid"])):
        # Going on, in a network only its own process sees: said as not ringing yet, which adds
        # nothing to what the leg records (its own process reports the rest).
        return CallStatus(CallState.QUEUED)
    return None


def _append(path: str, line: dict[str, object]) -> None:
    # One write of one line with O_APPEND: lines from several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _logged_line(path: str | None, key: str, value: str) -> dict[str, Any] | None:
    if not path or not os.path.exists(path):
        return None
    with open(path) as log_file:
        for raw in log_file:
            if value in raw:
                line: dict[str, Any] = json.loads(raw)
                if line.get(key) == value:
                    return line
    return None
