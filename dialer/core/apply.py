"""A step on one lead, around the machine's decision: what the work does to the records before the
machine decides (`before_deciding`), then the decision applied to them (`apply_decision`): the lead's new
state, the legs about to be dialed, the managers claimed or freed, the timeline. What is left for the
engine to ask of the provider once it is all committed is the `Plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dialer.core.events import LegEvent
from dialer.core.legs import apply_report, claim_manager, end_leg, release_manager, who
from dialer.core.machine import Check, Decision, Hangup, PlaceCall, SendText, Trigger
from dialer.core.records import LeadRow, LegRow, ManagerRow, attempt_of
from dialer.core.states import TERMINAL, LeadStatus, LegRole, LegStatus
from dialer.core.step import Step


@dataclass
class Plan:
    """What to ask of the provider once the step is committed."""

    lead: LeadRow
    calls: list[tuple[LegRow, PlaceCall]] = field(default_factory=list)
    hangups: list[tuple[LegRow, Hangup]] = field(default_factory=list)
    checks: list[LegRow] = field(default_factory=list)  # calls to ask the provider about
    texts: list[SendText] = field(default_factory=list)
    status_changed: bool = False
    step_changed: bool = False  # a manager is rung: the live stream's step moves on
    released_managers: bool = False  # a manager became free: the site's queue moves
    step: int = 0  # managers rung in this attempt so far
    managers: int = 0  # active managers of the site: how many this attempt may ring at most
    started_waiting: bool = False  # it is queued behind busy managers (it was due): its place in line is news


def before_deciding(
    step: Step,
    lead: LeadRow,
    legs: list[LegRow],
    managers: list[ManagerRow],
    names: Mapping[int, str],
    trigger: Trigger,
    *,
    event: LegEvent | None = None,
    prefer: int | None = None,
    when: datetime | None = None,
    reports: Sequence[LegEvent] = (),
) -> bool:
    """Record what the work says (a provider's report on a leg, a manager's "call back now", the visitor's
    new time), after `reports`, oldest first (those held for this lead first: they could not be applied
    when they came): the machine then judges them all together. False when nothing is left to decide: the work is a
    report, and no report is about a leg of this lead or changes more than the leg itself."""
    changed = False
    for report in (*reports, *([event] if event is not None else [])):
        leg = next((leg for leg in legs if leg.id == report.leg_id), None)
        if leg is not None and apply_report(step, lead, leg, report, who(leg, names), managers):
            changed = True
    if trigger is Trigger.LEG and not changed:
        return False
    if trigger is Trigger.CALL_BACK:
        lead.preferred_manager_id = prefer
        lead.handled_at = step.now
    if trigger is Trigger.RESCHEDULE:
        lead.scheduled_for = when
    return True


def changes_nothing(lead: LeadRow, decision: Decision) -> bool:
    return (
        decision.status == lead.status
        and decision.wake_at == lead.wake_at
        and decision.attempt == lead.attempt
        and not decision.actions
        and not decision.notes
    )


def apply_decision(
    step: Step,
    lead: LeadRow,
    legs: list[LegRow],
    managers: list[ManagerRow],
    decision: Decision,
    new_id: Callable[[], str],
) -> Plan | None:
    """Apply a decision to the records (new legs are appended to `legs`); None when it changes nothing
    and freed no manager. Raises `ManagerTaken` when it would ring a manager another lead holds."""
    if changes_nothing(lead, decision):
        return Plan(lead, released_managers=True) if lead.id in step.freed else None
    now = step.now
    plan = Plan(lead, released_managers=lead.id in step.freed)
    by_id = {leg.id: leg for leg in legs}
    names = {m.id: m.name for m in managers}
    new_legs: list[LegRow] = []
    for action in decision.actions:
        if isinstance(action, SendText):
            plan.texts.append(action)
            step.timeline(lead.id, "sms", f"sending the visitor a text message: {action.kind}")
            if action.kind == "confirm":
                lead.confirmed_at = now
            elif action.kind == "reminder":
                lead.reminded_at = now
        elif isinstance(action, Check):
            leg = by_id[action.leg_id]
            leg.checked_at = now
            plan.checks.append(leg)
        elif isinstance(action, Hangup):
            leg = by_id[action.leg_id]
            if leg.status != LegStatus.ENDED:
                end_leg(leg, action.reason, now)
                if release_manager(managers, leg.manager_id, lead.id):
                    plan.released_managers = True
                text = f"{who(leg, names)}: hung up by us ({action.reason.replace('_', ' ')})"
                step.timeline(lead.id, "leg", text, leg_id=leg.id)
            if leg.provider_sid:
                plan.hangups.append((leg, action))
        else:
            if action.manager_id is not None:
                claim_manager(managers, action.manager_id, lead.id)
            leg = LegRow.fresh(
                id=new_id(), lead_id=lead.id, step=action.step, role=action.role, manager_id=action.manager_id,
                to_number=action.to, bridged_to=action.bridge_leg_id, status=LegStatus.PENDING, accepted=False,
                created_at=now,
            )
            new_legs.append(leg)
            plan.calls.append((leg, action))
            step.timeline(lead.id, "leg", f"{who(leg, names)}: dialing", leg_id=leg.id)
    plan.status_changed = decision.status != lead.status
    plan.step_changed = any(isinstance(a, PlaceCall) and a.role is LegRole.MANAGER for a in decision.actions)
    plan.step = sum(
        1 for leg in [*legs, *new_legs]
        if leg.role == LegRole.MANAGER and attempt_of(leg.step) == decision.attempt
    )
    plan.managers = sum(1 for m in managers if m.active)
    plan.started_waiting = (
        decision.status is LeadStatus.QUEUED and decision.wake_at is not None and decision.wake_at > now
        and (lead.wake_at is None or lead.wake_at <= now)
    )
    if plan.status_changed or decision.notes:
        step.timeline(lead.id, "status", "; ".join(decision.notes), status=decision.status)
    lead.status = decision.status.value
    lead.wake_at = decision.wake_at
    if decision.attempt != lead.attempt:  # a new attempt is a new promise, confirmed and reminded anew
        if not any(text.kind == "confirm" for text in plan.texts):
            lead.confirmed_at = None
        lead.reminded_at = None
    lead.attempt = decision.attempt
    lead.updated_at = now
    if decision.scheduled_for is not None:
        lead.scheduled_for = decision.scheduled_for
    if decision.outcome is not None:
        lead.outcome = decision.outcome
    if decision.status in TERMINAL:
        lead.ended_at = now
    legs.extend(new_legs)
    return plan
