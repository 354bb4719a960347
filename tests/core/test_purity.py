"""dialer/core holds the rules and nothing else: it imports nothing of the project outside core, no
database library, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).parents[2] / "dialer" / "core"
FORBIDDEN = ("sqlalchemy", "asyncio", "time", "dialer.clock")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_core_and_no_io(path: Path) -> None:
    for name in imported(path):
        if name.startswith("dialer"):
            assert name == "dialer.core" or name.startswith("dialer.core."), f"{path.name} imports {name}"
        assert name.split(".")[0] not in FORBIDDEN and name not in FORBIDDEN, f"{path.name} imports {name}"
