"""requirements.lock is in step with pyproject.toml: what `make` installs is what the project asks for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _asked() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [Requirement(line) for line in [*project["dependencies"], *(r for group in extras for r in group)]]


def _locked(text: str) -> dict[str, Version]:
    return {canonicalize_name(m[1]): Version(m[2]) for m in map(PIN.match, text.splitlines()) if m}


def _out_of_step(asked: list[Requirement], locked: dict[str, Version]) -> list[str]:
    wrong = []
    for req in asked:
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        pinned = locked.get(canonicalize_name(req.name))
        if pinned is None:
            wrong.append(f"{req.name} is not in requirements.lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            wrong.append(f"{req.name}=={pinned} in requirements.lock does not satisfy {req}")
    return wrong


def test_every_dependency_is_locked_at_a_version_it_accepts() -> None:
    wrong = _out_of_step(_asked(), _locked((ROOT / "requirements.lock").read_text(encoding="utf-8")))
    assert not wrong, "; ".join(wrong) + ": run `make lock`"


def test_a_dependency_missing_from_the_lock_or_pinned_outside_its_range_is_reported() -> None:
    locked = _locked("rjsmin==1.2.0 \\\n    --hash=sha256:00\nredis==5.0.1 ; python_version >= '3.11'\n")
    asked = [Requirement("rjsmin==1.3.0"), Requirement("redis>=5"), Requirement("uv>=0.5")]
    assert _out_of_step(asked, locked) == [
        "rjsmin==1.2.0 in requirements.lock does not satisfy rjsmin==1.3.0",
        "uv is not in requirements.lock",
    ]
