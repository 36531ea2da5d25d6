"""A bounded in-memory store of refine sessions that expire when left alone.

Sessions live only as long as the process (a refine loop is an interactive
minute, not a document); the least recently used one is evicted when the store
is full, and any untouched for ``ttl`` seconds is dropped.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    session: Any
    model: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One round at a time per session (a double click must not pick twice)."""
    touched: float = 0.0
    candidates: list[Any] = field(default_factory=list)


class SessionStore:
    def __init__(
        self, capacity: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, e in self._entries.items() if now - e.touched > self.ttl]:
            del self._entries[key]

    def add(self, session: Any, model: str) -> str:
        self._expire()
        while len(self._entries) >= self.capacity:
            self._entries.popitem(last=False)
        key = secrets.token_urlsafe(12)
        self._entries[key] = Entry(session=session, model=model, touched=self._clock())
        return key

    def get(self, key: str) -> Entry | None:
        self._expire()
        entry = self._entries.get(key)
        if entry is not None:
            entry.touched = self._clock()
            self._entries.move_to_end(key)
        return entry

    def remove(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None
