"""Build the widget: the stylesheet is minified into the script, the script is minified, and the result is
written where the server ships it from (`server/static/widget.js`, committed). Prints raw and gzip bytes.

`python widget/build.py --check` fails when the committed file is not what the sources build to.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import rcssmin
import rjsmin

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "widget" / "src" / "widget.js"
STYLE = ROOT / "widget" / "src" / "widget.css"
TARGET = ROOT / "server" / "static" / "widget.js"
PLACEHOLDER = "'__CSS__'"
BUDGET_GZIP = 6 * 1024  # the widget's whole first load (script and styles), gzipped


def _js_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def build() -> bytes:
    script = SOURCE.read_text(encoding="utf-8")
    if script.count(PLACEHOLDER) != 1:
        raise SystemExit(f"{SOURCE} must hold the placeholder {PLACEHOLDER} exactly once")
    css = rcssmin.cssmin(STYLE.read_text(encoding="utf-8"))
    script = script.replace(PLACEHOLDER, _js_string(css))
    return (rjsmin.jsmin(script, keep_bang_comments=True).strip() + "\n").encode("utf-8")


def sizes(data: bytes) -> tuple[int, int]:
    return len(data), len(gzip.compress(data, 9, mtime=0))


def main(argv: list[str]) -> int:
    data = build()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_bytes() != data:
            print(f"{TARGET} is stale: run `python widget/build.py`", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(data)
    raw, packed = sizes(data)
    print(f"widget.js: {raw} bytes raw, {packed} bytes gzip -> {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
