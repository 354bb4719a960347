"""The dialer: leads, managers, call legs, the lead state machine, the engine and telephony providers.

This package never imports `server/` or Starlette, so the engine can run in a process of its own.
"""
