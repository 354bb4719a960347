"""Build the widget: copies `widget/src/widget.js` to the file the server ships, and prints its size."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "widget" / "src" / "widget.js"
TARGET = ROOT / "server" / "static" / "widget.js"


def build() -> bytes:
    return SOURCE.read_bytes()


def main() -> int:
    data = build()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(data)
    print(f"widget.js: {len(data)} bytes raw, {len(gzip.compress(data, 9))} bytes gzip -> {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
