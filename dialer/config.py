"""Configuration, read from the environment once (a `.env` file in the working directory is read first)."""

from __future__ import annotations

import math
import os
import string
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./ringback.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEMO_SECRET_KEY = "demo-secret-key-do-not-use-in-production"


MIN_SECRET_BITS = 256  # 32 random bytes
MIN_DISTINCT = 8
NEW_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


class ConfigError(Exception):
    """A setting is missing or not usable; the message says which and what to do."""


def secret_bits(key: str) -> float:
    """An upper bound on a key's entropy: its length times the bits per character of the smallest usual
    alphabet holding all its characters (digits, hex, base64, printable ASCII; 8 for anything else), and
    nothing for a key of fewer than 8 distinct characters ("aaaa…", "abcabc…"). It catches the empty,
    short and repeated keys; it cannot tell a random key from a long passphrase."""
    chars = set(key)
    if len(chars) < MIN_DISTINCT:
        return 0.0
    alphabets = (string.digits, string.hexdigits.lower(), string.hexdigits.upper(),
                 string.ascii_letters + string.digits + "-_", string.ascii_letters + string.digits + "+/=",
                 string.digits + string.ascii_letters + string.punctuation + " ")
    size = next((len(set(a)) for a in alphabets if chars <= set(a)), 256)
    return len(key) * math.log2(size)


def check_secret_key(key: str) -> None:
    if secret_bits(key) < MIN_SECRET_BITS:
        raise ConfigError(
            f"RINGBACK_SECRET_KEY is missing or too weak: it needs at least 32 random bytes, e.g. `{NEW_SECRET}`"
            " (only `ringback demo` runs without one)"
        )


MIN_METRICS_TOKEN_BITS = 128


def check_metrics_token(token: str) -> None:
    """A bearer token travels in a header: visible ASCII without spaces, and long and random enough."""
    if any(not ("!" <= c <= "~") for c in token) or secret_bits(token) < MIN_METRICS_TOKEN_BITS:
        raise ConfigError(
            "RINGBACK_METRICS_TOKEN is too weak or holds spaces or non-ASCII characters: it needs at least 16 "
            f"random bytes, e.g. `{NEW_SECRET}` (or leave it unset: /metrics then answers this machine only)"
        )


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _simulator_cps(value: str) -> float | None:
    if value.strip().lower() in ("", "none", "off"):
        return None
    try:
        cps = float(value)
    except ValueError:
        raise ConfigError("RINGBACK_SIMULATOR_CALLS_PER_SECOND must be a number (e.g. 1), or empty for no pace") from None
    if not cps > 0:
        raise ConfigError("RINGBACK_SIMULATOR_CALLS_PER_SECOND must be greater than 0 (empty: no pace)")
    return cps


def _seconds(env: dict[str, str], name: str, default: int) -> int:
    """A positive whole number of seconds from `name`, or `default` when it is unset."""
    try:
        seconds = int(env.get(name, str(default)))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, e.g. {default}") from None
    if seconds <= 0:
        raise ConfigError(f"{name} must be greater than 0")
    return seconds


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    telephony: str = "simulator"
    public_url: str = DEFAULT_PUBLIC_URL
    secret_key: str = DEMO_SECRET_KEY
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_api_base_url: str | None = None
    twilio_calls_per_second: float = 1.0  # the account's pace for REST-created calls (Twilio's default: 1)
    twilio_concurrent_requests: int = 10  # REST requests in flight at once, per process
    simulator_speed: float = 1.0
    simulator_seed: int = 0
    simulator_log: str | None = None  # a file the simulator appends one JSON line to per placed call
    # The simulated account's pace for REST-created calls, as Twilio's (None: every call starts at once).
    # `ringback demo` keeps Twilio's default of 1, so that the demo shows what a real account does.
    simulator_calls_per_second: float | None = None
    redis_url: str | None = None
    redis_prefix: str = "ringback:"  # every Redis key and channel starts with it
    max_call_seconds: int = 4 * 3600  # a bridged call is ended after this long
    retry_seconds: int = 180  # before a visitor who did not answer is called again (Policy.retry_delay)
    log_format: str = "text"  # or "json": one object per line (dialer/logs.py)
    metrics_token: str | None = field(default=None, repr=False)  # /metrics wants it as a bearer token
    demo: bool = False
    public_url_given: bool = False  # RINGBACK_PUBLIC_URL was set; else `serve` and `demo` take their address

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, demo: bool = False) -> Settings:
        env = dict(_read_dotenv(Path(".env")))
        env.update(os.environ if environ is None else environ)
        try:
            speed = float(env.get("RINGBACK_SIMULATOR_SPEED", "1"))
        except ValueError:
            raise ConfigError("RINGBACK_SIMULATOR_SPEED must be a number, e.g. 1 or 50") from None
        if speed <= 0:
            raise ConfigError("RINGBACK_SIMULATOR_SPEED must be greater than 0")
        max_call = _seconds(env, "RINGBACK_MAX_CALL_SECONDS", 4 * 3600)
        retry = _seconds(env, "RINGBACK_RETRY_SECONDS", 180)
        try:
            cps = float(env.get("TWILIO_CALLS_PER_SECOND", "1"))
            concurrent = int(env.get("TWILIO_CONCURRENT_REQUESTS", "10"))
        except ValueError:
            raise ConfigError("TWILIO_CALLS_PER_SECOND must be a number (e.g. 1) and TWILIO_CONCURRENT_REQUESTS "
                              "a whole number (e.g. 10)") from None
        if cps <= 0 or concurrent <= 0:
            raise ConfigError("TWILIO_CALLS_PER_SECOND and TWILIO_CONCURRENT_REQUESTS must be greater than 0")
        sim_cps = _simulator_cps(env.get("RINGBACK_SIMULATOR_CALLS_PER_SECOND", "1" if demo else ""))
        telephony = env.get("RINGBACK_TELEPHONY", "simulator")
        if telephony not in ("simulator", "twilio"):
            raise ConfigError("RINGBACK_TELEPHONY must be 'simulator' or 'twilio'")
        log_format = env.get("RINGBACK_LOG_FORMAT", "text") or "text"
        if log_format not in ("text", "json"):
            raise ConfigError("RINGBACK_LOG_FORMAT must be 'text' or 'json'")
        settings = cls(
            database_url=env.get("RINGBACK_DATABASE_URL", DEFAULT_DATABASE_URL),
            telephony=telephony,
            public_url=env.get("RINGBACK_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/"),
            secret_key=env.get("RINGBACK_SECRET_KEY") or DEMO_SECRET_KEY,  # empty (.env.example's) is unset
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_api_base_url=env.get("TWILIO_API_BASE_URL") or None,
            twilio_calls_per_second=cps,
            twilio_concurrent_requests=concurrent,
            simulator_speed=speed,
            simulator_seed=int(env.get("RINGBACK_SIMULATOR_SEED", "0") or 0),
            simulator_log=env.get("RINGBACK_SIMULATOR_LOG") or None,
            simulator_calls_per_second=sim_cps,
            redis_url=env.get("RINGBACK_REDIS_URL") or None,
            redis_prefix=env.get("RINGBACK_REDIS_PREFIX") or "ringback:",
            max_call_seconds=max_call,
            retry_seconds=retry,
            log_format=log_format,
            metrics_token=env.get("RINGBACK_METRICS_TOKEN") or None,  # empty is unset, as for the secret key
            demo=demo,
            public_url_given=bool(env.get("RINGBACK_PUBLIC_URL")),
        )
        return settings

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """What the logs must never show (dialer/logs.py replaces each wherever it appears)."""
        return (self.secret_key, self.twilio_auth_token, self.metrics_token)

    def served_at(self, host: str, port: int) -> Settings:
        """These settings for a server listening on `host:port`: unless RINGBACK_PUBLIC_URL says otherwise,
        that is the public URL (the widget tag, the dashboard's embed snippet, links in text messages)."""
        if self.public_url_given:
            return self
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
        return replace(self, public_url=f"http://{shown}:{port}")

    def check(self) -> None:
        """Refuse to serve on settings that would be unsafe or cannot work (called before serving)."""
        if self.demo and self.telephony != "simulator":
            raise ConfigError(
                "`ringback demo` runs on the simulator only (its secret key is public): unset "
                "RINGBACK_TELEPHONY=twilio, or use `ringback serve` with your own RINGBACK_SECRET_KEY"
            )
        if not self.demo:
            check_secret_key("" if self.secret_key == DEMO_SECRET_KEY else self.secret_key)
        if self.metrics_token is not None:
            check_metrics_token(self.metrics_token)
        if self.telephony == "twilio" and not (self.twilio_account_sid and self.twilio_auth_token):
            raise ConfigError("RINGBACK_TELEPHONY=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
