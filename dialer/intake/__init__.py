"""Accepting a visitor's request: validate every field, schedule it, write the lead."""
