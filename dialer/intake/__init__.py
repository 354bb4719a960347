"""Accepting a visitor's request: validate every field (`accept.validate`), decide when to call
(`schedule.schedule`), write the lead (`accept.write`); `accept.accept` does all three for trusted callers."""
