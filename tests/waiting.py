"""Waiting in async tests for state another task changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Return once ``check()`` holds; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls state of other objects, no event to wait on
            await asyncio.sleep(0.01)
