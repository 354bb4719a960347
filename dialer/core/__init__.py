"""The lead's rules, pure: no I/O, no SQLAlchemy, no clock (`now` is always passed in)."""
