"""Screening public requests before intake: origin, bots, number rules, rate limits, daily caps."""
