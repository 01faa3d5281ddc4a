"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until `predicate()` holds, yielding to the event loop; fail after `timeout` seconds (bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.005)
