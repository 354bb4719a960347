"""The shipped widget file is what its sources build to, and fits its size budget."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_build():  # type: ignore[no-untyped-def]
    # widget/build.py is a script, not a package module.
    spec = importlib.util.spec_from_file_location("widget_build", ROOT / "widget" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_build = _load_build()
BUDGET_GZIP, build, sizes = _build.BUDGET_GZIP, _build.build, _build.sizes


def test_the_shipped_widget_is_built_from_the_current_sources() -> None:
    shipped = (ROOT / "server" / "static" / "widget.js").read_bytes()
    assert shipped == build(), "server/static/widget.js is stale: run `make widget`"


def test_the_first_load_fits_the_budget() -> None:
    raw, gzipped = sizes(build())
    assert gzipped <= BUDGET_GZIP, f"{gzipped} bytes gzip, budget {BUDGET_GZIP}"
    assert raw > gzipped


def test_the_stylesheet_is_inside_the_script_with_every_placeholder_known() -> None:
    script = build().decode()
    assert "__CSS__" not in script and ":host{all:initial!important}" in script
    # Only $A $T $P $X $S are filled in at run time; any other `$` word in the CSS would reach the browser.
    css = re.search(r"var CSS='(.*?)';", script)
    assert css is not None
    assert set(re.findall(r"\$([A-Za-z]+)", css.group(1))) == {"A", "T", "P", "X", "S"}


def test_the_package_ships_the_built_file() -> None:
    spec = importlib.util.find_spec("server")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "static" / "widget.js").is_file()
