"""The widget's first load: raw and gzip bytes of the built file, beside its 6 KB gzip budget.

The reference measured in the same run is the unminified source (script plus stylesheet), gzipped the
same way, so the figure shows what the build saves as well as how far the budget is.

    python bench/widget_size.py
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _build_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("widget_build", ROOT / "widget" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gzip(data: bytes) -> int:
    return len(gzip.compress(data, 9, mtime=0))


def main() -> int:
    build = _build_module()
    built = build.build()
    shipped = build.TARGET.read_bytes()
    source = build.SOURCE.read_bytes() + build.STYLE.read_bytes()
    budget = build.BUDGET_GZIP
    rows = [
        ("shipped widget.js", len(shipped), _gzip(shipped)),
        ("reference: unminified sources", len(source), _gzip(source)),
    ]
    print(f"{'':32} {'raw bytes':>10} {'gzip bytes':>11}")
    for name, raw, packed in rows:
        print(f"{name:32} {raw:>10} {packed:>11}")
    packed = rows[0][2]
    print(f"budget: {budget} bytes gzip (6 KB); used {packed / budget:.0%}, {budget - packed} bytes to spare")
    if shipped != built:
        print("warning: server/static/widget.js is stale; run `make widget`", file=sys.stderr)
    return 0 if packed <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
