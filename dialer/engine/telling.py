"""After a step is committed, what it tells the world besides dialing: hang up the calls it ended,
publish the lead's new status, send the visitor's text messages."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from dialer import metrics
from dialer.broadcast.memory import Broadcast
from dialer.clock import Clock
from dialer.core import apply
from dialer.core.notices import Notices
from dialer.core.states import LeadStatus
from dialer.engine import store
from dialer.engine.status import lead_channel, public_status, site_channel
from dialer.engine.texting import Texter
from dialer.telephony.base import Provider, ProviderError

log = logging.getLogger("ringback.engine")


class Teller:
    def __init__(
        self, database: AsyncEngine, provider: Provider, broadcast: Broadcast, notices: Notices, clock: Clock,
        slots: asyncio.Semaphore,
    ) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self.provider = provider
        self.broadcast = broadcast
        self.notices = notices
        self.clock = clock
        self._slots = slots
        self.texter = Texter(database, provider, clock)

    async def _hang_up(self, leg_id: str, sid: str, say: str | None) -> None:
        try:
            await self.provider.hangup(sid, say=say)
        except ProviderError as exc:
            log.warning("hanging up leg %s failed: %s", leg_id, exc.reason)

    async def tell(self, plan: apply.Plan, site: store.SiteRow) -> None:
        """Hang up what the step ended, publish the change, send the visitor's text messages."""
        lead = plan.lead
        metrics.lead_moved(lead.status, changed=plan.status_changed, calls=[leg.role for leg, _ in plan.calls])
        await asyncio.gather(*(self._hang_up(leg.id, leg.provider_sid or "", h.say) for leg, h in plan.hangups))
        if plan.status_changed or plan.step_changed or plan.started_waiting:
            position = None
            if lead.status == LeadStatus.QUEUED and (lead.wake_at is None or lead.wake_at > self.clock.now()):
                async with self._slots, self.autocommit.connect() as conn:
                    position = await store.queue_ahead(conn, lead) + 1
            # Managers rung one after another: the visitor is told which try it is ("2 of 3").
            hunt = plan.managers if site.routing != "simultaneous" else None
            message = public_status(lead, plan.step, position, managers=hunt)
            for channel in (lead_channel(lead.id), site_channel(lead.site_id)):
                try:
                    await self.broadcast.publish(channel, message)
                except Exception as exc:  # news, not truth: a lost update never stops the step's dial
                    log.warning("publishing lead %s's status failed: %s", lead.id, type(exc).__name__)
        for text in plan.texts:
            body = self.notices.body(text.kind, site=site.name, lead_id=lead.id, tz=lead.timezone,
                                     when=lead.scheduled_for)
            await self.texter.send(lead, text.kind, body, site.sms_sender)
