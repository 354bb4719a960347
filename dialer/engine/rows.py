"""The engine's plain records now live with the rules that operate on them: `dialer/core/records.py`.
Re-exported here for code written against the old place."""

from dialer.core.records import LeadRow, LegRow, ManagerRow, Record

__all__ = ["LeadRow", "LegRow", "ManagerRow", "Record"]
