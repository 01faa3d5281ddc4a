"""`bench/decide.py`: what deciding a new order costs the hub, in process (no network, no database).

Submits `--orders` shelf-to-table orders (a lobster wok-fried and one as sashimi: two stations) to a fresh
`kds.hub.OrderHub` on the sample config, one frame at a time through `handle_frame`, and prints the time per order:
the best and every one of `--repeat` runs (each on a fresh hub), and one JSON object. The hub's clock is fixed, so the
runs differ only by the machine. Figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kds.config import load_config  # noqa: E402
from kds.hub import OrderHub  # noqa: E402

NOON = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def shelf(key: str) -> dict[str, object]:
    return {
        "key": key,
        "channel": "shelf",
        "fulfilment": {"type": "dine_in", "table": "12"},
        "items": [
            {"sku": "LOB-AUS", "weight_g": 800, "cook": "ginger_scallion", "tag": "T-1001"},
            {"sku": "LOB-AUS", "weight_g": 700, "cook": "sashimi", "tag": "T-1002"},
        ],
    }


def run(orders: int, repeat: int) -> list[float]:
    config = load_config(ROOT / "config" / "store.toml")
    dev = config.device("shelf-1")
    assert dev is not None and dev.token is not None
    hello = json.dumps({"type": "hello", "device": dev.id, "token": dev.token, "role": dev.role.value})
    per_order = []
    for r in range(repeat):
        hub = OrderHub(config, clock=lambda: NOON)
        session = hub.connect(hello)[0]
        frames = [
            json.dumps({"type": "order.submit", "ref": f"r{k}", "order": shelf(f"b{r}-{k}")}) for k in range(orders)
        ]
        start = time.perf_counter()
        for f in frames:
            hub.handle_frame(session, f)
        per_order.append((time.perf_counter() - start) / orders * 1e6)
    return per_order


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    times = run(args.orders, args.repeat)
    print(f"deciding a new two-station order: best {min(times):.0f} µs ({', '.join(f'{t:.0f}' for t in times)})")
    print(
        json.dumps({"orders": args.orders, "us_per_order": [round(t, 1) for t in times], "best": round(min(times), 1)})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
